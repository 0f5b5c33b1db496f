#! /usr/bin/env python3
#
# Copyright (c) 2026 The Kairo developers.
# SPDX-License-Identifier: Apache-2.0

"""kairo-mc-udp.py: send one memcached request over UDP and print the reply.

Usage: kairo-mc-udp.py [--id N] [--timeout SEC] [--replies N] HOST PORT
                       COMMAND [DATA]

COMMAND is one command line without its "\\r\\n" (for example "get a b" or
"set k 0 0 5"); DATA, if given, is sent as the data block after it.  The
request carries the 8-byte memcached UDP frame header with request id N
(default 1), sequence 0 and total 1.  Every reply datagram must carry the
same request id; their payloads are joined in sequence order and printed
with "\\r\\n" shown as newlines.  Reading stops at a final line (END, STORED,
DELETED, ...) or when the timeout expires; a timeout exits with status 1.

With --replies N, N reply messages are awaited, each ending with its own
final line (a multi-key get that a switch split over N servers gets N
replies with the same request id); they are printed in arrival order.
"""

import argparse
import socket
import struct
import sys
import time

FINAL = (b"END", b"STORED", b"NOT_STORED", b"EXISTS", b"NOT_FOUND",
         b"DELETED", b"TOUCHED", b"OK", b"ERROR", b"CLIENT_ERROR",
         b"SERVER_ERROR", b"HD", b"NS", b"EX", b"NF", b"EN", b"MN",
         b"VERSION")


def complete(text):
    """Returns true if 'text' ends with a line that ends a reply."""
    if not text.endswith(b"\r\n"):
        return False
    last = text[:-2].split(b"\r\n")[-1]
    if last.isdigit():
        return True                     # incr/decr reply.
    return last.split(b" ")[0] in FINAL and not last.startswith(b"VALUE")


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--id", type=int, default=1)
    p.add_argument("--timeout", type=float, default=2.0)
    p.add_argument("--replies", type=int, default=1)
    p.add_argument("host")
    p.add_argument("port", type=int)
    p.add_argument("command")
    p.add_argument("data", nargs="?")
    args = p.parse_args()

    payload = args.command.encode() + b"\r\n"
    if args.data is not None:
        payload += args.data.encode() + b"\r\n"
    frame = struct.pack("!HHHH", args.id, 0, 1, 0)

    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(frame + payload, (args.host, args.port))
    deadline = time.monotonic() + args.timeout
    parts = []
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            sys.stderr.write("timeout\n")
            sys.stdout.write(b"".join(p for _, p in sorted(parts)).decode(
                errors="replace").replace("\r\n", "\n"))
            return 1
        s.settimeout(left)
        try:
            data = s.recv(65535)
        except socket.timeout:
            continue
        if len(data) < 8:
            continue
        rid, seq, total, _ = struct.unpack("!HHHH", data[:8])
        if rid != args.id:
            sys.stderr.write("unexpected request id %d\n" % rid)
            return 2
        parts.append((len(parts), data[8:]))
        text = b"".join(p for _, p in parts)
        if complete(text) and (args.replies == 1 or sum(
                1 for _, p in parts if complete(p)) >= args.replies):
            sys.stdout.write(text.decode(errors="replace")
                             .replace("\r\n", "\n"))
            return 0


if __name__ == "__main__":
    sys.exit(main())
