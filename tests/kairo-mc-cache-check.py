#! /usr/bin/env python3
# Copyright (c) 2026 The Kairo developers.
# SPDX-License-Identifier: Apache-2.0
"""Checks a memcached switch cache against real servers.

  stats HOST NAME        prints statistic NAME of the memcached at HOST:11211,
                         read over TCP.
  stale HOST [options]   runs writers and readers concurrently over UDP
                         against HOST:11211 and fails on any stale read.

A read is stale if it returns a version of a key older than one whose write
was acknowledged (STORED) before the read was sent.  Writers and readers
run in their own threads with their own sockets; every key has one writer,
which writes increasing versions.  The run is bounded by --ops and
--seconds.  The last line is a summary; the exit status is 1 if any read
was stale or a key ends wrong.
"""

import argparse
import random
import socket
import struct
import sys
import threading
import time


def stats(host, name):
    s = socket.create_connection((host, 11211), timeout=2)
    s.sendall(b"stats\r\n")
    data = b""
    while not data.endswith(b"END\r\n"):
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    for line in data.split(b"\r\n"):
        parts = line.split()
        if len(parts) == 3 and parts[1].decode() == name:
            print(parts[2].decode())
            return 0
    return 1


class Client:
    """A UDP memcached client with its own socket and request ids."""

    def __init__(self, host, timeout):
        self.addr = (host, 11211)
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.settimeout(timeout)
        self.reqid = random.randrange(65536)

    def request(self, text):
        """Sends 'text'; returns the reply payload, or None on timeout."""
        self.reqid = (self.reqid + 1) % 65536
        self.sock.sendto(struct.pack("!HHHH", self.reqid, 0, 1, 0) + text,
                         self.addr)
        deadline = time.monotonic() + self.sock.gettimeout()
        while time.monotonic() < deadline:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                return None
            if len(data) >= 8 and struct.unpack("!H", data[:2])[0] == self.reqid:
                return data[8:]
        return None


def stale(args):
    keys = ["stale%d" % i for i in range(args.keys)]
    acked = {k: 0 for k in keys}          # Highest acknowledged version.
    lock = threading.Lock()
    counts = {"writes": 0, "reads": 0, "values": 0, "misses": 0,
              "timeouts": 0, "stale": 0}
    deadline = time.monotonic() + args.seconds
    ops_left = [args.ops]

    def take_op():
        with lock:
            if ops_left[0] <= 0 or time.monotonic() > deadline:
                return False
            ops_left[0] -= 1
            return True

    def count(name, n=1):
        with lock:
            counts[name] += n

    def writer(my_keys, seed):
        rng = random.Random(seed)
        c = Client(args.host, args.timeout)
        version = {k: 0 for k in my_keys}
        while take_op():
            k = rng.choice(my_keys)
            version[k] += 1
            v = str(version[k]).encode()
            reply = c.request(b"set %s 0 0 %d\r\n%s\r\n"
                              % (k.encode(), len(v), v))
            if reply is None:
                count("timeouts")
            elif reply == b"STORED\r\n":
                with lock:
                    acked[k] = max(acked[k], version[k])
                count("writes")
            time.sleep(rng.random() * args.write_pause)

    def reader(seed):
        rng = random.Random(seed)
        c = Client(args.host, args.timeout)
        while take_op():
            k = rng.choice(keys)
            with lock:
                floor = acked[k]
            reply = c.request(b"get %s\r\n" % k.encode())
            if reply is None:
                count("timeouts")
                continue
            count("reads")
            lines = reply.split(b"\r\n")
            if lines[0].startswith(b"VALUE "):
                got = int(lines[1])
                count("values")
                if got < floor:
                    count("stale")
                    print("stale read: %s gave %d after %d was stored"
                          % (k, got, floor), file=sys.stderr)
            else:
                count("misses")

    # Every key starts at version 0, stored before the run.
    setup = Client(args.host, args.timeout)
    for k in keys:
        if setup.request(b"set %s 0 0 1\r\n0\r\n" % k.encode()) \
                != b"STORED\r\n":
            print("cannot store %s" % k, file=sys.stderr)
            return 1

    threads = []
    for w in range(args.writers):
        mine = keys[w::args.writers]
        threads.append(threading.Thread(target=writer,
                                        args=(mine, args.seed + w)))
    for r in range(args.readers):
        threads.append(threading.Thread(target=reader,
                                        args=(args.seed + 100 + r,)))
    for t in threads:
        t.start()
    for t in threads:
        t.join()

    # Afterwards, every key reads back as its last acknowledged version, or
    # newer (a write whose STORED was lost).
    wrong = 0
    for k in keys:
        reply = setup.request(b"get %s\r\n" % k.encode())
        lines = (reply or b"").split(b"\r\n")
        if not lines[0].startswith(b"VALUE ") or int(lines[1]) < acked[k]:
            print("%s ends as %r, stored %d" % (k, reply, acked[k]),
                  file=sys.stderr)
            wrong += 1

    print("writes %(writes)d reads %(reads)d values %(values)d "
          "misses %(misses)d timeouts %(timeouts)d stale %(stale)d"
          % counts + " wrong %d" % wrong)
    return 1 if counts["stale"] or wrong else 0


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("stats")
    s.add_argument("host")
    s.add_argument("name")
    s = sub.add_parser("stale")
    s.add_argument("host")
    s.add_argument("--keys", type=int, default=8)
    s.add_argument("--ops", type=int, default=4000)
    s.add_argument("--seconds", type=float, default=30)
    s.add_argument("--writers", type=int, default=2)
    s.add_argument("--readers", type=int, default=2)
    s.add_argument("--write-pause", type=float, default=0.002)
    s.add_argument("--timeout", type=float, default=1.0)
    s.add_argument("--seed", type=int, default=1)
    args = p.parse_args()
    if args.cmd == "stats":
        return stats(args.host, args.name)
    return stale(args)


if __name__ == "__main__":
    sys.exit(main())
