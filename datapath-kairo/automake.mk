# datapath-kairo/: the memcached-aware netdev module (port type
# kairo-memcached): its packet path and its kairo/mc-* commands.  It has no
# sources yet.
EXTRA_DIST += datapath-kairo/automake.mk
