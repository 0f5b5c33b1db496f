# utilities/: the developer entry point, OVS preparation, the hook patch
# series and the sandbox.
EXTRA_DIST += \
	utilities/kairo-dev \
	utilities/kairo-prepare-ovs \
	utilities/kairo-sandbox \
	utilities/ovs-patches/series
