# utilities/: the developer entry point, OVS preparation, the hook patch
# series and the sandbox.
EXTRA_DIST += \
	utilities/kairo-dev \
	utilities/kairo-delta-bench \
	utilities/kairo-mc-bench \
	utilities/kairo-ovn-bench \
	utilities/kairo-prepare-ovs \
	utilities/kairo-sandbox \
	utilities/ovs-patches/DESIGN-NOTES.md \
	utilities/ovs-patches/series \
	utilities/ovs-patches/0001-ofproto-rule-change-hook.patch \
	utilities/ovs-patches/0002-ofproto-group-change-hook.patch \
	utilities/ovs-patches/0003-ofproto-dpif-tables-version-hook.patch \
	utilities/ovs-patches/0004-upcall-targeted-revalidation.patch \
	utilities/ovs-patches/0005-upcall-ukey-observer.patch \
	utilities/ovs-patches/0006-ofproto-dpif-lookup-hook.patch \
	utilities/ovs-patches/0007-dpif-netdev-modify-by-ufid.patch \
	utilities/ovs-patches/0008-dpif-netdev-rx-pending-hook.patch \
	utilities/ovs-patches/0009-classifier-conjunction-hook.patch \
	utilities/ovs-patches/0010-xlate-group-hook.patch \
	utilities/ovs-patches/0011-xlate-port-mac-hooks.patch \
	utilities/ovs-patches/0012-ofproto-dpif-port-mac-change-hooks.patch \
	utilities/ovs-patches/0013-upcall-targeted-pass.patch \
	utilities/ovs-patches/0014-xlate-cache-geometric-growth.patch

# The UDP memcached load generator (open-loop rate, latency percentiles).
# It is standalone: it uses no OVS library.
bin_PROGRAMS += utilities/kairo-mc-load
utilities_kairo_mc_load_SOURCES = utilities/kairo-mc-load.c
utilities_kairo_mc_load_LDADD = -lm -lpthread
