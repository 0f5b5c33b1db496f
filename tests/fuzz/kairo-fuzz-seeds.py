#! /usr/bin/env python3
#
# Copyright (c) 2026 The Kairo developers.
# SPDX-License-Identifier: Apache-2.0

"""Writes the seed corpus of tests/fuzz/kairo-fuzz-mc-proto.c.

Each seed is one memcached UDP payload: the 8-byte frame header, then
ASCII, meta or binary commands, valid or malformed, covering every command
form lib/kairo-mc-proto.c parses and each way it rejects a payload.

Usage, from anywhere:

    python3 tests/fuzz/kairo-fuzz-seeds.py [OUTDIR]

OUTDIR defaults to tests/fuzz/corpus/mc-proto next to this script.  The
script owns that directory: it writes every seed and deletes any other
file there, so the output depends on this script only.  To keep an input
the fuzzer found (a regression seed), add it to SEEDS below rather than
copying it into the directory.  Standard library only; the output is the
same on every run.
"""

import os
import struct
import sys

# Request id of every seed's frame header.
REQUEST_ID = 0x1234


def frame(total=1, seq=0, request_id=REQUEST_ID, reserved=0):
    """Returns an 8-byte frame header."""
    return struct.pack(">HHHH", request_id, seq, total, reserved)


def text(s, **kwargs):
    """Returns a datagram holding the ASCII or meta commands 's'."""
    return frame(**kwargs) + s.encode("latin-1")


def binary_cmd(opcode, key=b"", extras=b"", value=b"", opaque=0x01020304,
               cas=0, body_len=None, key_len=None, ext_len=None,
               data_type=0, magic=0x80):
    """Returns one binary request.  'body_len', 'key_len' and 'ext_len'
    default to the true lengths; passing them makes the header lie."""
    if key_len is None:
        key_len = len(key)
    if ext_len is None:
        ext_len = len(extras)
    if body_len is None:
        body_len = len(extras) + len(key) + len(value)
    header = struct.pack(">BBHBBHIIQ", magic, opcode, key_len, ext_len,
                         data_type, 0, body_len, opaque, cas)
    return header + extras + key + value


def binary(*cmds, **kwargs):
    """Returns a datagram holding the binary requests 'cmds'."""
    return frame(**kwargs) + b"".join(cmds)


def set_extras(flags, exptime):
    """Returns the extras of a binary SET, ADD or REPLACE."""
    return struct.pack(">II", flags, exptime)


def arith_extras(delta, initial, exptime):
    """Returns the extras of a binary INCR or DECR."""
    return struct.pack(">QQI", delta, initial, exptime)


def exptime_extras(exptime):
    """Returns the extras of a binary TOUCH, GAT or FLUSH."""
    return struct.pack(">I", exptime)


# Binary opcodes used below.
GET = 0x00
SET = 0x01
DELETE = 0x04
INCR = 0x05
DECR = 0x06
FLUSH = 0x08
NOOP = 0x0a
VERSION = 0x0b
GETK = 0x0c
GETKQ = 0x0d
APPEND = 0x0e
TOUCH = 0x1c
GAT = 0x1d

SEEDS = {
    # ASCII retrievals.
    "ascii-get-1key": text("get foo\r\n"),
    "ascii-get-32keys": text(
        "get " + " ".join("key:%02d" % i for i in range(32)) + "\r\n"),
    "ascii-gets-3keys": text("gets user:1  user:2 user:3\r\n"),
    "ascii-gat-1key": text("gat 300 foo\r\n"),
    "ascii-gats-3keys": text("gats -1 a b c\r\n"),
    "ascii-get-key250": text("get " + "k" * 250 + "\r\n"),

    # ASCII storage, with data blocks.
    "ascii-set": text("set foo 0 0 5\r\nhello\r\n"),
    "ascii-set-noreply": text("set foo 42 3600 3 noreply\r\nbar\r\n"),
    "ascii-add-empty": text("add k 1 0 0\r\n\r\n"),
    "ascii-replace": text("replace foo 4294967295 -1 4\r\nab\r\n\r\n"),
    "ascii-append": text("append foo 0 0 3\r\nxyz\r\n"),
    "ascii-prepend": text("prepend foo 0 0 3 noreply\r\nxyz\r\n"),
    "ascii-cas": text("cas foo 0 0 3 12345\r\nbaz\r\n"),

    # Other ASCII commands.
    "ascii-delete-0-noreply": text("delete foo 0 noreply\r\n"),
    "ascii-incr": text("incr counter 1\r\n"),
    "ascii-decr-max": text("decr counter 18446744073709551615 noreply\r\n"),
    "ascii-touch": text("touch foo 60\r\n"),
    "ascii-flush-all": text("flush_all\r\n"),
    "ascii-flush-all-delay": text("flush_all 10 noreply\r\n"),

    # Meta commands.
    "meta-mg": text("mg foo v f t k\r\n"),
    "meta-mg-touch-quiet": text("mg foo T30 v q\r\n"),
    "meta-mg-base64": text("mg Zm9vYmFy b v\r\n"),
    "meta-mg-vivify": text("mg foo N30 s Oabc\r\n"),
    "meta-ms": text("ms foo 5 T60 F3 q\r\nhello\r\n"),
    "meta-md": text("md foo q\r\n"),
    "meta-ma": text("ma counter D5 N0 MI\r\n"),
    "meta-mn": text("mn\r\n"),

    # Binary commands.
    "bin-get": binary(binary_cmd(GET, key=b"foo")),
    "bin-getk": binary(binary_cmd(GETK, key=b"\x00\xffbin\r\n")),
    "bin-set": binary(binary_cmd(SET, key=b"foo",
                                 extras=set_extras(0xdeadbeef, 3600),
                                 value=b"hello", cas=7)),
    "bin-append": binary(binary_cmd(APPEND, key=b"foo", value=b"tail")),
    "bin-delete": binary(binary_cmd(DELETE, key=b"foo")),
    "bin-incr": binary(binary_cmd(INCR, key=b"counter",
                                  extras=arith_extras(5, 1, 0xffffffff))),
    "bin-flush": binary(binary_cmd(FLUSH)),
    "bin-flush-delay": binary(binary_cmd(FLUSH, extras=exptime_extras(10))),
    "bin-noop": binary(binary_cmd(NOOP)),
    "bin-touch": binary(binary_cmd(TOUCH, key=b"foo",
                                   extras=exptime_extras(60))),
    "bin-gat": binary(binary_cmd(GAT, key=b"foo",
                                 extras=exptime_extras(60))),

    # Pipelined datagrams.
    "pipe-meta": text("mg a v q\r\nmg b v q\r\nmg c v\r\nmn\r\n"),
    "pipe-ascii": text("get a b\r\nset b 0 0 1\r\nx\r\ndelete c\r\n"),
    "pipe-binary": binary(binary_cmd(GETKQ, key=b"a"),
                          binary_cmd(GETKQ, key=b"b"),
                          binary_cmd(NOOP)),
    "pipe-mixed": text("gets x y\r\n")
    + binary_cmd(DECR, key=b"n", extras=arith_extras(1, 0, 0))
    + b"mn\r\n",

    # Replies, as a cache reads them.
    "reply-values": text("VALUE a 0 1\r\nx\r\nVALUE bb 4294967295 3 "
                         "18446744073709551615\r\nx\r\n\r\nEND\r\n"),
    "reply-empty-value": text("VALUE a 1 0\r\n\r\nEND\r\n"),
    "reply-cut": text("VALUE a 0 10\r\nshort\r\nEND\r\n"),
    "reply-meta": text("VA 2 f0\r\nhi\r\n"),

    # Malformed payloads.
    "bad-truncated-frame": frame()[:5],
    "bad-frame-only": frame(),
    "bad-total-2": text("get foo\r\n", total=2),
    "bad-key251": text("get " + "k" * 251 + "\r\n"),
    "bad-key-ctrl": text("get fo\x01o bar\r\n"),
    "bad-33keys": text(
        "get " + " ".join("key:%02d" % i for i in range(33)) + "\r\n"),
    "bad-bare-lf": text("get foo\n"),
    "bad-data-short": text("set foo 0 0 10\r\nhello\r\n"),
    "bad-number": text("touch foo 2147483648\r\n"),
    "bad-meta-dup-flag": text("mg foo v v\r\n"),
    "bad-unsupported": text("stats\r\n"),
    "bad-bin-body-lies": binary(binary_cmd(GET, key=b"foo", body_len=40)),
    "bad-bin-key-lies": binary(binary_cmd(GET, key=b"foo", key_len=9)),
    "bad-bin-header-cut": binary(binary_cmd(GET, key=b"foo")[:20]),
    "bad-bin-key251": binary(binary_cmd(GET, key=b"k" * 251)),
    "bad-bin-response": binary(binary_cmd(GET, key=b"foo", magic=0x81)),
    "bad-bin-version": binary(binary_cmd(VERSION)),
}


def main():
    """Writes SEEDS into the directory named on the command line, or into
    the default one, and removes any other file there."""
    if len(sys.argv) > 2:
        sys.stderr.write("usage: %s [OUTDIR]\n" % sys.argv[0])
        return 2
    if len(sys.argv) == 2:
        outdir = sys.argv[1]
    else:
        outdir = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                              "corpus", "mc-proto")
    os.makedirs(outdir, exist_ok=True)

    for name in sorted(os.listdir(outdir)):
        path = os.path.join(outdir, name)
        if name not in SEEDS and os.path.isfile(path):
            os.remove(path)
    for name in sorted(SEEDS):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(SEEDS[name])
    return 0


if __name__ == "__main__":
    sys.exit(main())
