# datapath-kairo/: the memcached-aware netdev module (port type
# kairo-memcached): its packet path and its kairo/mc-* commands.
# It touches OVS netdev internals, so it is a library of its own that only
# vswitchd/ovs-vswitchd links, apart from the pure lib/libkairo.la.
noinst_LTLIBRARIES += datapath-kairo/libkairo-datapath.la
datapath_kairo_libkairo_datapath_la_SOURCES = \
	datapath-kairo/netdev-kairo-memcached.c \
	datapath-kairo/netdev-kairo-memcached.h
EXTRA_DIST += datapath-kairo/automake.mk
