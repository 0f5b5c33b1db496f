# ofproto/: delta propagation, the glue between OVS's ofproto layer and
# Kairo's pure delta index (incremental maintenance of the megaflow cache).
# It sets the hooks of utilities/ovs-patches, so like datapath-kairo it is a
# library that only vswitchd/ovs-vswitchd links.
noinst_LTLIBRARIES += ofproto/libkairo-ofproto.la
ofproto_libkairo_ofproto_la_SOURCES = \
	ofproto/kairo-delta.c \
	ofproto/kairo-delta-conj.c \
	ofproto/kairo-delta-conj.h \
	ofproto/kairo-delta.h
EXTRA_DIST += ofproto/automake.mk
