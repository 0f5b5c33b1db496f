#! /bin/sh
# Generates configure and the Makefile templates from a fresh checkout.
set -e
autoreconf --install --force
