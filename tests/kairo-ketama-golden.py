#! /usr/bin/env python3
#
# Copyright (c) 2026 The Kairo developers.
# SPDX-License-Identifier: Apache-2.0

"""Regenerates the golden key-to-server tables of tests/test-kairo-ketama.c.

The tables record where real programs put keys, so that the unit test can
check that lib/kairo-ketama.c agrees with them bit for bit:

  * nutcracker (twemproxy) 0.5.0: for each pool configuration below, the
    script starts memcached servers on 127.0.0.1, starts nutcracker in front
    of them, stores every key through nutcracker, then asks each memcached
    directly which keys it holds.  One configuration lists a server nobody
    listens on, with auto_eject_hosts, so that nutcracker ejects it.

  * libmemcached (libmemcached.so.11, through ctypes) with
    MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED: memcached_generate_hash() gives the
    server index directly; no server is needed.

Usage (Debian 12 packages memcached, nutcracker and libmemcached11), from
the top of the source tree:

    python3 tests/kairo-ketama-golden.py > /tmp/golden.c

then replace the text between the "BEGIN GOLDEN" and "END GOLDEN" lines of
tests/test-kairo-ketama.c with /tmp/golden.c.  The script uses only
127.0.0.1, ports 22100 to 22110 (and 11211 when it is free), starts every
process itself, bounds every wait, and kills exactly the processes it
started.  It needs python3's standard library only.
"""

import argparse
import ctypes
import ctypes.util
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

ADDR = "127.0.0.1"
PROXY_PORT = 22100
STATS_PORT = 22110
DEAD_PORT = 22105          # Nothing listens here.
DEFAULT_PORT = 11211       # twemproxy and libmemcached name this "host".
IO_TIMEOUT = 5.0           # Seconds for any one socket operation.
TOTAL_TIMEOUT = 300.0      # Seconds for the whole run.

# Hash names in twemproxy's configuration and in lib/kairo-mc-hash.h.
HASHES = ["one_at_a_time", "md5", "crc16", "crc32", "crc32a", "fnv1_64",
          "fnv1a_64", "fnv1_32", "fnv1a_32", "hsieh", "murmur", "jenkins"]

DEADLINE = time.monotonic() + TOTAL_TIMEOUT


def check_deadline():
    if time.monotonic() > DEADLINE:
        sys.exit("kairo-ketama-golden: overall time limit exceeded")


def make_keys(n):
    """Returns 'n' distinct, deterministic keys (bytes) of many shapes:
    plain, bytes >= 0x80, hash tags in various positions, 1 and 250 bytes.
    The shapes cycle with period 8, so every 5th key also covers them all.
    """
    keys = []
    i = 0
    while len(keys) < n:
        kind = i % 8
        if kind == 0:
            k = b"key:%d" % i
        elif kind == 1:
            k = b"user:%d:profile" % (i * 7919)
        elif kind == 2:
            k = "caf\u00e9-%d-\u043a\u043b\u044e\u0447" % i
            k = k.encode("utf-8")
        elif kind == 3:
            k = bytes([0x80 + (i % 0x7f), 0xff, 0xfe]) + b"%d" % i
        elif kind == 4:
            k = b"{user%d}:session:%d" % (i % 37, i)
        elif kind == 5:
            shapes = [b"x{}y%d", b"{%d", b"a}b{c%d}", b"%d{tag", b"{{%d}}",
                      b"p{q}r{s}%d", b"}{%d", b"%d{}"]
            k = shapes[(i // 8) % len(shapes)] % i
        elif kind == 6:
            k = (b"%d-" % i) * 100
            k = k[:250 - (i % 3)]
        else:
            k = bytes([0x21 + (i % 90)])
            if k in keys:
                k = b"z%x" % i
        if k not in keys:
            keys.append(k)
        i += 1
    return keys


class Memcached:
    """A memcached we started, listening on TCP 'port' of 127.0.0.1."""

    def __init__(self, binary, port):
        self.port = port
        args = [binary, "-l", ADDR, "-p", str(port), "-U", "0", "-m", "16",
                "-t", "1", "-c", "64"]
        if os.geteuid() == 0:
            args += ["-u", "root"]
        self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL)
        wait_listening(port, self.proc)

    def stop(self):
        stop_process(self.proc)


def stop_process(proc):
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


def port_is_free(port):
    s = socket.socket()
    try:
        s.bind((ADDR, port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def wait_listening(port, proc):
    for _ in range(100):
        check_deadline()
        if proc.poll() is not None:
            sys.exit("kairo-ketama-golden: process for port %d died" % port)
        try:
            socket.create_connection((ADDR, port), timeout=IO_TIMEOUT).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit("kairo-ketama-golden: nothing listens on port %d" % port)


class Conn:
    """A memcached text-protocol connection."""

    def __init__(self, port):
        self.sock = socket.create_connection((ADDR, port), timeout=IO_TIMEOUT)
        self.buf = b""

    def close(self):
        self.sock.close()

    def send(self, data):
        self.sock.sendall(data)

    def _fill(self):
        check_deadline()
        data = self.sock.recv(65536)
        if not data:
            raise EOFError("connection closed")
        self.buf += data

    def line(self):
        while b"\r\n" not in self.buf:
            self._fill()
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line

    def exact(self, n):
        while len(self.buf) < n:
            self._fill()
        data, self.buf = self.buf[:n], self.buf[n:]
        return data


def flush(ports):
    for port in ports:
        c = Conn(port)
        c.send(b"flush_all\r\n")
        if c.line() != b"OK":
            sys.exit("kairo-ketama-golden: flush_all failed")
        c.close()


def set_all(port, keys):
    """Stores every key through the proxy at 'port'; returns the number of
    keys that were not stored."""
    c = Conn(port)
    failed = 0
    for start in range(0, len(keys), 100):
        batch = keys[start:start + 100]
        c.send(b"".join(b"set %s 0 0 1\r\nv\r\n" % k for k in batch))
        for _ in batch:
            if c.line() != b"STORED":
                failed += 1
    c.close()
    return failed


def held_keys(port, keys):
    """Returns the set of 'keys' that the memcached on 'port' holds."""
    c = Conn(port)
    held = set()
    for start in range(0, len(keys), 50):
        batch = keys[start:start + 50]
        c.send(b"get " + b" ".join(batch) + b"\r\n")
        while True:
            line = c.line()
            if line == b"END":
                break
            parts = line.split(b" ")
            if parts[0] != b"VALUE":
                sys.exit("kairo-ketama-golden: unexpected %r" % line)
            c.exact(int(parts[3]) + 2)
            held.add(parts[1])
    c.close()
    return held


def run_nutcracker(binary, tmpdir, name, pool, servers, keys, warmup=False):
    """Runs nutcracker with 'pool' (dict of settings) over 'servers' (list of
    (host, port, weight, name or None)), stores 'keys' through it, and
    returns the list of server indexes, one per key."""
    lines = ["kairo:", "  listen: %s:%d" % (ADDR, PROXY_PORT)]
    for k, v in pool.items():
        lines.append("  %s: %s" % (k, v))
    lines.append("  servers:")
    for host, port, weight, sname in servers:
        entry = "   - %s:%d:%d" % (host, port, weight)
        if sname:
            entry += " " + sname
        lines.append(entry)
    conf = os.path.join(tmpdir, name + ".yml")
    with open(conf, "w") as f:
        f.write("\n".join(lines) + "\n")

    proc = subprocess.Popen(
        [binary, "-c", conf, "-s", str(STATS_PORT), "-a", ADDR,
         "-o", os.path.join(tmpdir, name + ".log"), "-v", "4",
         "-p", os.path.join(tmpdir, name + ".pid")],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        wait_listening(PROXY_PORT, proc)
        if warmup:
            # Send gets until a key maps to the dead server, which makes
            # nutcracker eject it (server_failure_limit: 1).
            c = Conn(PROXY_PORT)
            for k in keys[:200]:
                c.send(b"get " + k + b"\r\n")
                while True:
                    line = c.line()
                    if line == b"END" or line.startswith(b"SERVER_ERROR"):
                        break
            c.close()
        flush([s[1] for s in servers if s[1] != DEAD_PORT])
        failed = set_all(PROXY_PORT, keys)
        if failed:
            sys.exit("kairo-ketama-golden: %s: %d keys not stored"
                     % (name, failed))
        owner = {}
        for idx, (host, port, weight, sname) in enumerate(servers):
            if port == DEAD_PORT:
                continue
            for k in held_keys(port, keys):
                if k in owner:
                    sys.exit("kairo-ketama-golden: %r held twice" % k)
                owner[k] = idx
        if len(owner) != len(keys):
            sys.exit("kairo-ketama-golden: %s: %d keys not found"
                     % (name, len(keys) - len(owner)))
        return [owner[k] for k in keys]
    finally:
        stop_process(proc)


def libmemcached_mapping(servers, keys):
    """Returns libmemcached's server index for each key with
    MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED, or None if the library is missing."""
    path = ctypes.util.find_library("memcached") or "libmemcached.so.11"
    try:
        lib = ctypes.CDLL(path)
    except OSError:
        return None
    lib.memcached_create.restype = ctypes.c_void_p
    lib.memcached_create.argtypes = [ctypes.c_void_p]
    lib.memcached_server_add_with_weight.argtypes = [
        ctypes.c_void_p, ctypes.c_char_p, ctypes.c_uint16, ctypes.c_uint32]
    lib.memcached_behavior_set.argtypes = [ctypes.c_void_p, ctypes.c_int,
                                           ctypes.c_uint64]
    lib.memcached_generate_hash.restype = ctypes.c_uint32
    lib.memcached_generate_hash.argtypes = [ctypes.c_void_p, ctypes.c_char_p,
                                            ctypes.c_size_t]
    lib.memcached_free.argtypes = [ctypes.c_void_p]

    KETAMA_WEIGHTED = 16        # enum memcached_behavior_t
    memc = lib.memcached_create(None)
    for host, port, weight, _ in servers:
        if lib.memcached_server_add_with_weight(memc, host.encode(), port,
                                                weight):
            sys.exit("kairo-ketama-golden: memcached_server_add failed")
    if lib.memcached_behavior_set(memc, KETAMA_WEIGHTED, 1):
        sys.exit("kairo-ketama-golden: memcached_behavior_set failed")
    result = [lib.memcached_generate_hash(memc, k, len(k)) for k in keys]
    lib.memcached_free(memc)
    return result


def c_string(b):
    """Returns 'b' as a C string literal, with octal escapes (which, unlike
    hex ones, cannot swallow the following characters)."""
    out = []
    for byte in b:
        ch = chr(byte)
        if ch in "\"\\?":
            out.append("\\" + ch)
        elif 0x20 <= byte < 0x7f:
            out.append(ch)
        else:
            out.append("\\%03o" % byte)
    return '"' + "".join(out) + '"'


def emit(configs, sample_keys, n_keys):
    w = sys.stdout.write
    w("/* Generated by tests/kairo-ketama-golden.py from nutcracker 0.5.0\n"
      " * and libmemcached (%d keys stored per configuration, every 5th\n"
      " * kept here).  Do not edit by hand. */\n" % n_keys)
    w("static const char *const golden_keys[] = {\n")
    for k in sample_keys:
        lit = c_string(k)
        if len(lit) + 5 <= 79:
            w("    %s,\n" % lit)
        else:
            # Split long literals; adjacent literals concatenate.
            chunks = []
            cur = ""
            for piece in split_literal(lit[1:-1]):
                if len(cur) + len(piece) > 66:
                    chunks.append(cur)
                    cur = ""
                cur += piece
            chunks.append(cur)
            for i, c in enumerate(chunks):
                w('    "%s"%s\n' % (c, "," if i == len(chunks) - 1 else ""))
    w("};\n\n")
    w("static const struct golden_config golden_configs[] = {\n")
    for cfg in configs:
        w("    {\n")
        w('        .name = "%s",\n' % cfg["name"])
        w("        .distribution = %s,\n" % cfg["dist"])
        w("        .hash = KAIRO_MC_HASH_%s,\n" % cfg["hash"].upper())
        if cfg.get("hash_tag"):
            w('        .hash_tag = "%s",\n' % cfg["hash_tag"])
        if cfg.get("auto_eject"):
            w("        .auto_eject_hosts = true,\n")
        w("        .n_servers = %d,\n" % len(cfg["servers"]))
        w("        .servers = {\n")
        for host, port, weight, sname in cfg["servers"]:
            w('            { %s, "%s", %d, %d, %s },\n'
              % ('"%s"' % sname if sname else "NULL", host, port, weight,
                 "false" if port == DEAD_PORT else "true"))
        w("        },\n")
        w("        .expected =\n")
        exp = "".join(str(i) for i in cfg["result"])
        for i in range(0, len(exp), 60):
            w('            "%s"%s\n' % (exp[i:i + 60],
                                       "," if i + 60 >= len(exp) else ""))
        w("    },\n")
    w("};\n")


def split_literal(body):
    """Splits the inside of a C string literal into escape-sized pieces."""
    i = 0
    while i < len(body):
        if body[i] == "\\":
            n = 4 if body[i + 1].isdigit() else 2
            yield body[i:i + n]
            i += n
        else:
            yield body[i]
            i += 1


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--memcached", default="/usr/bin/memcached")
    ap.add_argument("--nutcracker", default="/usr/sbin/nutcracker")
    ap.add_argument("--keys", type=int, default=1000)
    args = ap.parse_args()

    keys = make_keys(args.keys)
    sample = list(range(0, len(keys), 5))

    for p in list(range(PROXY_PORT, STATS_PORT + 1)):
        if not port_is_free(p):
            sys.exit("kairo-ketama-golden: port %d is busy" % p)
    use_default_port = port_is_free(DEFAULT_PORT)

    weighted = [(ADDR, 22101, 1, None), (ADDR, 22102, 2, None),
                (ADDR, 22103, 3, None), (ADDR, 22104, 5, None)]
    equal = [(ADDR, p, 1, None) for p in range(22101, 22105)]
    named = [(ADDR, 22101, 1, "alpha"), (ADDR, 22102, 1, "beta"),
             (ADDR, 22103, 2, "gamma"), (ADDR, 22104, 1, "delta")]
    with_dead = [weighted[0], (ADDR, DEAD_PORT, 4, None)] + weighted[1:]

    plan = [
        ("ketama-fnv1a_64-weighted", "KAIRO_KETAMA_KETAMA", "fnv1a_64",
         weighted, {}),
        ("ketama-md5-weighted", "KAIRO_KETAMA_KETAMA", "md5", weighted, {}),
        ("ketama-fnv1a_64-hash-tag", "KAIRO_KETAMA_KETAMA", "fnv1a_64",
         weighted, {"hash_tag": '"{}"'}),
        ("ketama-fnv1a_64-named", "KAIRO_KETAMA_KETAMA", "fnv1a_64",
         named, {}),
        ("modula-fnv1a_64-weighted", "KAIRO_KETAMA_MODULA", "fnv1a_64",
         weighted, {}),
        ("ketama-fnv1a_64-ejected", "KAIRO_KETAMA_KETAMA", "fnv1a_64",
         with_dead, {"auto_eject_hosts": "true",
                     "server_failure_limit": "1",
                     "server_retry_timeout": "600000"}),
    ]
    for h in HASHES:
        if h not in ("fnv1a_64", "md5"):
            plan.append(("ketama-%s-equal" % h, "KAIRO_KETAMA_KETAMA", h,
                         equal, {}))
    if use_default_port:
        default = [(ADDR, DEFAULT_PORT, 1, None)] + equal[1:]
        plan.append(("ketama-fnv1a_64-port-11211", "KAIRO_KETAMA_KETAMA",
                     "fnv1a_64", default, {}))
    else:
        sys.stderr.write("port 11211 busy: skipping its configuration\n")

    ports = sorted({s[1] for _, _, _, servers, _ in plan for s in servers
                    if s[1] != DEAD_PORT})
    tmpdir = tempfile.mkdtemp(prefix="kairo-golden-")
    started = []
    configs = []
    try:
        for p in ports:
            started.append(Memcached(args.memcached, p))
        for name, dist, hash_name, servers, extra in plan:
            check_deadline()
            pool = {"hash": hash_name,
                    "distribution": dist.split("_")[-1].lower(),
                    "timeout": 2000}
            pool.update(extra)
            result = run_nutcracker(args.nutcracker, tmpdir, name, pool,
                                    servers, keys,
                                    warmup="auto_eject_hosts" in extra)
            cfg = {"name": name, "dist": dist, "hash": hash_name,
                   "servers": servers, "result": [result[i] for i in sample]}
            if "hash_tag" in extra:
                cfg["hash_tag"] = "{}"
            if "auto_eject_hosts" in extra:
                cfg["auto_eject"] = True
            configs.append(cfg)
            sys.stderr.write("%s: %d keys mapped\n" % (name, len(keys)))
    finally:
        for m in started:
            m.stop()
        shutil.rmtree(tmpdir, ignore_errors=True)

    lm_plans = [("libmemcached-weighted", weighted),
                ("libmemcached-equal-port-11211",
                 [(ADDR, DEFAULT_PORT, 1, None)] + equal[1:])]
    for name, servers in lm_plans:
        result = libmemcached_mapping(servers, keys)
        if result is None:
            sys.stderr.write("libmemcached not found: skipping %s\n" % name)
            continue
        configs.append({"name": name, "dist": "KAIRO_KETAMA_LIBMEMCACHED",
                        "hash": "md5", "servers": servers,
                        "result": [result[i] for i in sample]})
        sys.stderr.write("%s: %d keys mapped\n" % (name, len(keys)))

    emit(configs, [keys[i] for i in sample], len(keys))


if __name__ == "__main__":
    main()
