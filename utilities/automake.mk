# utilities/: the developer entry point, OVS preparation, the hook patch
# series and the sandbox.
EXTRA_DIST += \
	utilities/kairo-dev \
	utilities/kairo-mc-bench \
	utilities/kairo-prepare-ovs \
	utilities/kairo-sandbox \
	utilities/ovs-patches/series

# The UDP memcached load generator (open-loop rate, latency percentiles).
# It is standalone: it uses no OVS library.
bin_PROGRAMS += utilities/kairo-mc-load
utilities_kairo_mc_load_SOURCES = utilities/kairo-mc-load.c
utilities_kairo_mc_load_LDADD = -lm -lpthread
