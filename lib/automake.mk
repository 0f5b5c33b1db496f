# lib/: Kairo's pure logic, with no ofproto internals (see DESIGN.md).
noinst_LTLIBRARIES += lib/libkairo.la
lib_libkairo_la_SOURCES = \
	lib/kairo-delta-deps.c \
	lib/kairo-delta-deps.h \
	lib/kairo-delta-growth.h \
	lib/kairo-delta-index.c \
	lib/kairo-delta-index.h \
	lib/kairo-ketama.c \
	lib/kairo-ketama.h \
	lib/kairo-mc-cache.c \
	lib/kairo-mc-cache.h \
	lib/kairo-mc-hash.c \
	lib/kairo-mc-hash.h \
	lib/kairo-mc-health.c \
	lib/kairo-mc-health.h \
	lib/kairo-mc-pool.c \
	lib/kairo-mc-pool.h \
	lib/kairo-mc-proto.c \
	lib/kairo-mc-proto.h \
	lib/kairo-mc-sketch.c \
	lib/kairo-mc-sketch.h \
	lib/kairo-md5.c \
	lib/kairo-md5.h \
	lib/kairo-show.c \
	lib/kairo-show.h
lib_libkairo_la_CPPFLAGS = $(AM_CPPFLAGS) \
	-DKAIRO_VERSION='"$(PACKAGE_VERSION)"' \
	-DKAIRO_OVS_PATCHES=$(KAIRO_OVS_PATCHES)
