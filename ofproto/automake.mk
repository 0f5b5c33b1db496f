# ofproto/: delta-propagation glue between OVS's ofproto layer and Kairo's
# pure delta index (the incremental view maintenance work).  It has no
# sources yet.
EXTRA_DIST += ofproto/automake.mk
