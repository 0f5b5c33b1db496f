# Copyright (c) 2026 The Kairo developers.
# SPDX-License-Identifier: Apache-2.0

# KAIRO_OVS_MAKE_VAR(VARIABLE)
#
# Prints the value of VARIABLE as the prepared OVS build's Makefile expands
# it, with OVS's relative top_srcdir and top_builddir made absolute.
AC_DEFUN([KAIRO_OVS_MAKE_VAR], [dnl
$(printf 'kairo-print-%%:\n\t@echo $(%s)\n' '$[]*' > conftest.ovsvar.mk && \
  make -s --no-print-directory -C "$OVS_BUILDDIR" -f Makefile \
       -f "$ac_pwd/conftest.ovsvar.mk" top_srcdir="$OVS_SRCDIR" \
       top_builddir="$OVS_BUILDDIR" kairo-print-$1 2>/dev/null; \
  rm -f conftest.ovsvar.mk)])

# KAIRO_CHECK_OVS
#
# Handles --with-ovs-source and --with-ovs-build, checks that they name a
# prepared Open vSwitch 3.1.0 tree and takes OVS's compiler and linker flags
# from it.
AC_DEFUN([KAIRO_CHECK_OVS], [
  AC_ARG_WITH([ovs-source],
    [AS_HELP_STRING([--with-ovs-source=DIR],
                    [patched Open vSwitch source tree (required)])],
    [OVS_SRCDIR=$withval], [OVS_SRCDIR=])
  AC_ARG_WITH([ovs-build],
    [AS_HELP_STRING([--with-ovs-build=DIR],
                    [built Open vSwitch tree (default: the source tree)])],
    [OVS_BUILDDIR=$withval], [OVS_BUILDDIR=$OVS_SRCDIR])

  AC_MSG_CHECKING([for the Open vSwitch source tree])
  AS_IF([test -z "$OVS_SRCDIR"],
        [AC_MSG_ERROR([--with-ovs-source is required; run utilities/kairo-prepare-ovs])])
  OVS_SRCDIR=$(cd "$OVS_SRCDIR" 2>/dev/null && pwd)
  AS_IF([test ! -f "$OVS_SRCDIR/vswitchd/bridge.h"],
        [AC_MSG_ERROR([$with_ovs_source is not an Open vSwitch source tree])])
  AC_MSG_RESULT([$OVS_SRCDIR])

  AC_MSG_CHECKING([for the Open vSwitch build tree])
  OVS_BUILDDIR=$(cd "$OVS_BUILDDIR" 2>/dev/null && pwd)
  AS_IF([test ! -f "$OVS_BUILDDIR/config.h" || \
         test ! -f "$OVS_BUILDDIR/lib/libopenvswitch.la" || \
         test ! -f "$OVS_BUILDDIR/vswitchd/bridge.o"],
        [AC_MSG_ERROR([$OVS_BUILDDIR is not a built Open vSwitch tree])])
  AC_MSG_RESULT([$OVS_BUILDDIR])

  AC_MSG_CHECKING([the Open vSwitch version])
  OVS_VERSION=$(sed -n 's/^#define PACKAGE_VERSION "\(.*\)"$/\1/p' \
                    "$OVS_BUILDDIR/config.h")
  AC_MSG_RESULT([$OVS_VERSION])
  AS_IF([test "$OVS_VERSION" != 3.1.0],
        [AC_MSG_ERROR([Kairo needs Open vSwitch 3.1.0, found '$OVS_VERSION'])])

  AC_MSG_CHECKING([how many Kairo hook patches the OVS tree carries])
  AS_IF([test ! -f "$OVS_SRCDIR/.kairo-series"],
        [AC_MSG_ERROR([$OVS_SRCDIR was not prepared by utilities/kairo-prepare-ovs])])
  KAIRO_OVS_PATCHES=$(grep -c . "$OVS_SRCDIR/.kairo-series")
  AC_MSG_RESULT([$KAIRO_OVS_PATCHES])
  AC_SUBST([KAIRO_OVS_PATCHES])

  AC_MSG_CHECKING([the Open vSwitch compiler flags])
  OVS_CFLAGS="KAIRO_OVS_MAKE_VAR([AM_CFLAGS]) KAIRO_OVS_MAKE_VAR([CFLAGS])"
  OVS_CPPFLAGS="-I$OVS_BUILDDIR -I$OVS_SRCDIR KAIRO_OVS_MAKE_VAR([AM_CPPFLAGS]) KAIRO_OVS_MAKE_VAR([CPPFLAGS]) -I$OVS_SRCDIR/ofproto -I$OVS_BUILDDIR/ofproto -I$OVS_SRCDIR/vswitchd -I$OVS_BUILDDIR/vswitchd"
  OVS_LDFLAGS="KAIRO_OVS_MAKE_VAR([AM_LDFLAGS]) KAIRO_OVS_MAKE_VAR([LDFLAGS])"
  OVS_LIBS="KAIRO_OVS_MAKE_VAR([LIBS])"
  OVS_DPDK_LDFLAGS="KAIRO_OVS_MAKE_VAR([DPDK_vswitchd_LDFLAGS])"
  AC_MSG_RESULT([$OVS_CFLAGS])
  AS_IF([grep -q '^#define DPDK_NETDEV 1' "$OVS_BUILDDIR/config.h"],
        [OVS_WITH_DPDK=yes], [OVS_WITH_DPDK=no])
  AC_MSG_CHECKING([whether Open vSwitch was built with DPDK])
  AC_MSG_RESULT([$OVS_WITH_DPDK])

  dnl Kairo uses OVS's config.h and flags for every object it builds,
  dnl because it compiles against OVS's internal struct layouts.
  save_CPPFLAGS=$CPPFLAGS
  save_CFLAGS=$CFLAGS
  CPPFLAGS="$OVS_CPPFLAGS $CPPFLAGS"
  CFLAGS="$OVS_CFLAGS $CFLAGS"
  AC_CHECK_HEADER([ofproto/ofproto-dpif.h], [],
    [AC_MSG_ERROR([cannot compile against the OVS tree in $OVS_SRCDIR])],
    [#include <config.h>])
  CPPFLAGS=$save_CPPFLAGS
  CFLAGS=$save_CFLAGS

  AC_SUBST([OVS_SRCDIR])
  AC_SUBST([OVS_BUILDDIR])
  AC_SUBST([OVS_VERSION])
  AC_SUBST([OVS_CFLAGS])
  AC_SUBST([OVS_CPPFLAGS])
  AC_SUBST([OVS_LDFLAGS])
  AC_SUBST([OVS_LIBS])
  AC_SUBST([OVS_DPDK_LDFLAGS])
  AC_SUBST([OVS_WITH_DPDK])
  AM_CONDITIONAL([OVS_WITH_DPDK], [test "$OVS_WITH_DPDK" = yes])
])
