# vswitchd/: Kairo's own main, built as the drop-in ovs-vswitchd.  It links
# OVS's bridge object, libofproto, libsflow and libopenvswitch from the
# prepared tree.
sbin_PROGRAMS += vswitchd/ovs-vswitchd
vswitchd_ovs_vswitchd_SOURCES = \
	vswitchd/kairo-config.c \
	vswitchd/kairo-config.h \
	vswitchd/kairo-vswitchd.c
vswitchd_ovs_vswitchd_LDADD = \
	datapath-kairo/libkairo-datapath.la \
	ofproto/libkairo-ofproto.la \
	lib/libkairo.la \
	$(OVS_BRIDGE_OBJS) \
	$(OVS_LIBOFPROTO) \
	$(OVS_LIBSFLOW) \
	$(OVS_LIBOPENVSWITCH) \
	$(OVS_LIBS)
vswitchd_ovs_vswitchd_LDFLAGS = $(AM_LDFLAGS) $(OVS_DPDK_LDFLAGS)
vswitchd_ovs_vswitchd_DEPENDENCIES = datapath-kairo/libkairo-datapath.la \
	ofproto/libkairo-ofproto.la lib/libkairo.la $(OVS_BRIDGE_OBJS)
dist_man_MANS += vswitchd/kairo.8
