#! /usr/bin/env python3
# Copyright (c) 2026 The Kairo developers.
# SPDX-License-Identifier: Apache-2.0
"""Seeded OVN churn against a running OVN chassis, with a staleness oracle.

Runs inside "kairo-sandbox --ovn" (OVN_NB_DB, OVS_RUNDIR and PATH point at
the sandbox), where ovn-controller programs bridge br-int of the switch.  It
builds a logical topology, sends TCP connections through it so that the
datapath holds megaflows, then makes seeded northbound changes of the kinds
OVN operators make, one at a time:

  acl      ACL add, remove, and modify (match or verdict)
  as       address-set member add and remove
  pg       port-group member add and remove
  lb       load-balancer VIP add and remove, backend add and remove
  vm       logical port (VM) add and remove, and rebinding an interface
  route    logical router static route add and remove
  nat      logical router NAT rule add and remove

After each change: "ovn-nbctl --wait=hv sync", "kairo/wait" and two
"revalidator/wait"s; then some connections again, and the oracle.  The
oracle is independent of Kairo's own kairo/verify: it asks Open vSwitch's
ofproto/trace for a fresh translation of every installed megaflow's key,
and of a point of its region picked at random (wildcarded bits changed),
recirculated megaflows included, and compares the datapath actions with the
installed ones.  A megaflow whose recirculation id no longer exists cannot
be reached by any packet and is counted as orphaned, not stale.

Used by tests/kairo-ovn.at (the "ovn" suite) and, as a library, by
utilities/kairo-ovn-bench.  The last line printed is a summary; the exit
status is 1 if any megaflow was stale.
"""

import argparse
import glob
import json
import os
import random
import re
import socket
import subprocess
import sys
import time

KINDS = ("acl", "as", "pg", "lb", "vm", "route", "nat")
BATCH = 100                     # Packets per netdev-dummy/receive.
WEB_PORTS = (80, 443, 8080)
DB_PORT = 5432
OTHER_PORTS = (22, 53, 3306, 9000)


def log(msg):
    sys.stdout.write(msg + "\n")
    sys.stdout.flush()


class Error(Exception):
    pass


def run(*args, check=True):
    p = subprocess.run(args, text=True, capture_output=True)
    if check and p.returncode:
        raise Error("%s: %s" % (" ".join(args), p.stderr.strip()))
    return p.stdout


# ---------------------------------------------------------------------------
# Talking to the switch.

class Unixctl:
    """A JSON-RPC client of a daemon's unixctl socket: one connection for
    many commands, which ovs-appctl would each pay a process start for."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(120)
        self.sock.connect(path)
        self.buf = ""
        self.decoder = json.JSONDecoder()
        self.next_id = 0

    @staticmethod
    def for_daemon(name, rundir=None):
        rundir = rundir or os.environ["OVS_RUNDIR"]
        with open(os.path.join(rundir, name + ".pid")) as f:
            pid = int(f.read())
        return Unixctl(os.path.join(rundir, "%s.%d.ctl" % (name, pid)))

    def call(self, method, *params):
        """Runs 'method' with string 'params' and returns its output; raises
        Error with the daemon's message if it reports one."""
        self.next_id += 1
        req = {"method": method, "params": [str(p) for p in params],
               "id": self.next_id}
        self.sock.sendall(json.dumps(req).encode())
        while True:
            text = self.buf.lstrip()
            if text:
                try:
                    msg, end = self.decoder.raw_decode(text)
                    self.buf = text[end:]
                    break
                except ValueError:
                    pass
            data = self.sock.recv(1 << 20)
            if not data:
                raise Error("%s: connection closed" % self.path)
            self.buf += data.decode("utf-8", "replace")
        if msg.get("error") is not None:
            raise Error("%s: %s" % (method, msg["error"]))
        return msg.get("result") or ""


def nbctl(*args):
    return run("ovn-nbctl", "--timeout=60", *args)


def vsctl(*args):
    return run("ovs-vsctl", "--timeout=60", *args)


def hv_sync():
    nbctl("--wait=hv", "sync")


def quiesce(ctl):
    """Waits until the switch has applied every change: Kairo's deltas
    mapped and their megaflows re-translated, and two revalidator passes
    (a full revalidation ends within them)."""
    ctl.call("kairo/wait")
    ctl.call("revalidator/wait")
    ctl.call("revalidator/wait")


# ---------------------------------------------------------------------------
# The logical topology.

class Port:
    def __init__(self, n, ls, k):
        self.n = n                          # Global number: lspN, vmN.
        self.ls = ls                        # Switch number, from 1.
        self.name = "lsp%d" % n
        self.iface = "vm%d" % n
        self.mac = "0a:00:00:%02x:%02x:%02x" % (ls, k >> 8, k & 0xff)
        self.ip = "10.%d.%d.%d" % (ls, k // 200, k % 200 + 1)
        self.bound = False


class Topology:
    """A router lr1 and 'switches' logical switches ls1..lsN with 'ports'
    VM ports in all, port groups pg_web and pg_db, address sets as_clients
    and as_admin, ACLs (allow-related and drop, with conjunctive matches),
    a load balancer lb_web on the switches, and static routes and NAT on
    the router, a gateway router on this chassis."""

    def __init__(self, rng, switches, ports):
        self.rng = rng
        self.switches = switches
        self.ports = []
        self.next_port = 1
        self.per_switch = {s: 0 for s in range(1, switches + 1)}
        for i in range(ports):
            self.new_port()
        self.acls = []                      # [uuid, pg, direction, match]
        self.routes = []                    # (prefix, nexthop)
        self.nats = []                      # (type, external, logical)
        self.vips = {}                      # vip -> [backend ip]
        self.next_route = 0
        self.next_nat = 0
        self.next_vip = 0

    def new_port(self):
        n = self.next_port
        self.next_port += 1
        ls = (n - 1) % self.switches + 1
        self.per_switch[ls] += 1
        p = Port(n, ls, self.per_switch[ls])
        self.ports.append(p)
        return p

    @staticmethod
    def rmac(ls):
        return "0a:00:00:%02x:ff:fe" % ls

    @staticmethod
    def rip(ls):
        return "10.%d.255.254" % ls

    def lsp_add_cmds(self, p):
        addr = "%s %s" % (p.mac, p.ip)
        return ["--", "lsp-add", "ls%d" % p.ls, p.name,
                "--", "lsp-set-addresses", p.name, addr,
                "--", "lsp-set-port-security", p.name, addr]

    def bind(self, p):
        vsctl("--", "--may-exist", "add-port", "br-int", p.iface,
              "--", "set", "interface", p.iface, "type=dummy",
              "ofport_request=%d" % p.n,
              "external_ids:iface-id=%s" % p.name)
        p.bound = True

    def web(self):
        return [p for p in self.ports if p.n % 3 == 0]

    def db(self):
        return [p for p in self.ports if p.n % 5 == 0]

    def build(self):
        cmds = []
        for s in range(1, self.switches + 1):
            cmds += ["--", "ls-add", "ls%d" % s]
        for p in self.ports:
            cmds += self.lsp_add_cmds(p)
        cmds += ["--", "lr-add", "lr1",
                 "--", "set", "logical_router", "lr1", "options:chassis=hv1"]
        for s in range(1, self.switches + 1):
            cmds += ["--", "lrp-add", "lr1", "lrp%d" % s, self.rmac(s),
                     "%s/16" % self.rip(s),
                     "--", "lsp-add", "ls%d" % s, "ls%d-lr1" % s,
                     "--", "lsp-set-type", "ls%d-lr1" % s, "router",
                     "--", "lsp-set-addresses", "ls%d-lr1" % s, "router",
                     "--", "lsp-set-options", "ls%d-lr1" % s,
                     "router-port=lrp%d" % s]
        nbctl(*cmds)

        cmds = ["--", "pg-add", "pg_web"] + [p.name for p in self.web()]
        cmds += ["--", "pg-add", "pg_db"] + [p.name for p in self.db()]
        clients = [p.ip for p in self.ports if p.n % 2 == 1]
        admins = [p.ip for p in self.ports if p.n % 7 == 1]
        cmds += ["--", "create", "address_set", "name=as_clients",
                 "addresses=%s" % ",".join(clients)]
        cmds += ["--", "create", "address_set", "name=as_admin",
                 "addresses=%s" % ",".join(admins)]
        nbctl(*cmds)
        for pg, direction, prio, match, verdict in (
                ("pg_web", "from-lport", 1002, "inport == @pg_web && ip4",
                 "allow-related"),
                ("pg_web", "to-lport", 1002,
                 "outport == @pg_web && ip4.src == $as_clients && "
                 "tcp.dst == {80, 443, 8080}", "allow-related"),
                ("pg_web", "to-lport", 1001, "outport == @pg_web && ip4",
                 "drop"),
                ("pg_db", "to-lport", 1002,
                 "outport == @pg_db && ip4.src == $as_admin && "
                 "tcp.dst == 5432", "allow-related"),
                ("pg_db", "to-lport", 1001, "outport == @pg_db && ip4",
                 "drop")):
            self.acl_add(pg, direction, prio, match, verdict)

        web = self.web()
        self.vips["10.1.255.100:80"] = [p.ip for p in web[:3]]
        nbctl("lb-add", "lb_web", "10.1.255.100:80",
              ",".join("%s:80" % ip for ip in self.vips["10.1.255.100:80"]),
              "tcp")
        for s in range(1, self.switches + 1):
            nbctl("ls-lb-add", "ls%d" % s, "lb_web")
        for i in range(2):
            self.route_add()
        self.nat_add()
        for p in self.ports:
            self.bind(p)
        hv_sync()

    def acl_add(self, pg, direction, prio, match, verdict):
        out = nbctl("--id=@acl", "create", "acl", "direction=%s" % direction,
                    "priority=%d" % prio, "match=%s" % json.dumps(match),
                    "action=%s" % verdict,
                    "--", "add", "port_group", pg, "acls", "@acl")
        uuid = out.strip().splitlines()[-1]
        self.acls.append([uuid, pg, direction, match])
        return uuid

    def route_add(self):
        self.next_route += 1
        s = self.rng.randrange(1, self.switches + 1)
        hop = self.rng.choice([p for p in self.ports if p.ls == s])
        prefix = "172.%d.%d.0/24" % (16 + self.next_route // 256,
                                     self.next_route % 256)
        nbctl("lr-route-add", "lr1", prefix, hop.ip)
        self.routes.append((prefix, hop.ip))

    def nat_add(self):
        self.next_nat += 1
        p = self.rng.choice(self.ports)
        ext = "192.168.%d.%d" % (self.next_nat // 250, self.next_nat % 250 + 1)
        kind = self.rng.choice(("dnat_and_snat", "dnat", "snat"))
        logical = p.ip if kind != "snat" else "10.%d.0.0/16" % p.ls
        if kind == "snat" and any(n[0] == "snat" and n[2] == logical
                                  for n in self.nats):
            kind, logical = "dnat_and_snat", p.ip
        nbctl("lr-nat-add", "lr1", kind, ext, logical)
        self.nats.append((kind, ext, logical))


# ---------------------------------------------------------------------------
# Traffic.

def syn(src, dst_ip, dmac, sport, dport):
    return ("in_port(1),eth(src=%s,dst=%s),eth_type(0x0800),"
            "ipv4(src=%s,dst=%s,proto=6,tos=0,ttl=64,frag=no),"
            "tcp(src=%d,dst=%d),tcp_flags(syn)"
            % (src.mac, dmac, src.ip, dst_ip, sport, dport))


class Traffic:
    """TCP SYNs from every bound port to peers on its own switch, through
    the router to other switches, to the load balancer's VIPs and to NAT
    and routed addresses, over a spread of destination ports, so that
    megaflows cover every stage of the pipeline."""

    def __init__(self, topo, ctl, seed):
        self.topo = topo
        self.ctl = ctl
        self.rng = random.Random(seed)

    def dports(self, i):
        base = WEB_PORTS + (DB_PORT,) + OTHER_PORTS
        return base[i] if i < len(base) else 10000 + i

    def packets(self, n_dports, limit=None, first=0):
        """Yields (iface, packet) for every bound port, peer and destination
        port from 'first' to below 'n_dports', in a seeded order."""
        topo = self.topo
        bound = [p for p in topo.ports if p.bound]
        rng = random.Random(self.rng.random())
        specs = []
        for src in bound:
            peers = [q for q in bound if q is not src]
            rng.shuffle(peers)
            for dst in peers[:8]:
                dmac = dst.mac if dst.ls == src.ls else topo.rmac(src.ls)
                specs.append((src, dst.ip, dmac))
            for vip in topo.vips:
                specs.append((src, vip, topo.rmac(src.ls)))
            for prefix, _ in topo.routes[:2]:
                specs.append((src, prefix.replace(".0/24", ".9"),
                              topo.rmac(src.ls)))
            for nat in topo.nats[:2]:
                specs.append((src, nat[1], topo.rmac(src.ls)))
        rng.shuffle(specs)
        n = 0
        for i in range(first, n_dports):
            for src, ip, dmac in specs:
                if ":" in ip:
                    # A VIP and its port: the same connection whatever i.
                    if i:
                        continue
                    ip, dport = ip.split(":")
                    dport = int(dport)
                else:
                    dport = self.dports(i)
                yield src.iface, syn(src, ip, dmac,
                                     30000 + rng.randrange(20000), dport)
                n += 1
                if limit is not None and n >= limit:
                    return

    def send(self, packets):
        by_iface = {}
        for iface, pkt in packets:
            q = by_iface.setdefault(iface, [])
            q.append(pkt)
            if len(q) >= BATCH:
                self.ctl.call("netdev-dummy/receive", iface, *q)
                q.clear()
        for iface, q in by_iface.items():
            if q:
                self.ctl.call("netdev-dummy/receive", iface, *q)

    def n_megaflows(self):
        m = re.search(r"flows\s*: \(current (\d+)\)",
                      self.ctl.call("upcall/show"))
        return int(m.group(1)) if m else 0

    def fill(self, target, max_dports=400):
        """Sends connections over more and more destination ports until
        the datapath holds at least 'target' megaflows, and keeps them for
        replay().  Returns the number of destination ports used."""
        n_dports = 0
        step = 1
        ports = {p.iface: p for p in self.topo.ports if p.bound}
        self.filled = []        # (port, packet), to replay.
        while True:
            packets = list(self.packets(n_dports + step, first=n_dports))
            self.filled += [(ports[iface], pkt) for iface, pkt in packets]
            self.send(packets)
            n_dports += step
            self.ctl.call("revalidator/wait")
            n = self.n_megaflows()
            if n >= target or n_dports >= max_dports:
                return n_dports
            # Aim for the target from the megaflows per port so far.
            per_dport = max(n / n_dports, 1)
            step = max(1, min(max_dports - n_dports,
                              int((target - n) / per_dport) + 1,
                              n_dports))

    def replay(self):
        """Sends the connections of fill() from the ports still bound again,
        the same ones in the same order (from a port's interface of the
        moment), into an emptied connection tracker: they set up again the
        megaflows that changes deleted.  (Open vSwitch 3.1.0's userspace
        conntrack aborted, in conn_update_state(), when the benchmark sent
        connections over NAT again with the earlier ones still in its
        tables.)"""
        self.ctl.call("dpctl/flush-conntrack")
        self.send((p.iface, pkt) for p, pkt in self.filled if p.bound)

    def refresh(self, n_dports, n):
        """Sends 'n' connections (or fewer) from the usual mix, new
        source ports each time."""
        self.send(self.packets(n_dports, limit=n))


# ---------------------------------------------------------------------------
# The changes.

class Churn:
    """Makes one seeded northbound change of a kind at a time, and keeps
    the topology's model in step with it."""

    def __init__(self, topo, seed):
        self.topo = topo
        self.rng = random.Random(seed)
        self.acl_prio = 1100

    def change(self, kind):
        """Makes one change of 'kind' and returns its description."""
        return getattr(self, "change_" + kind)()

    def rand_acl_match(self, pg):
        rng = self.rng
        port_dir = rng.choice(("outport", "inport"))
        terms = ["%s == @%s" % (port_dir, pg), "ip4"]
        r = rng.random()
        if r < 0.3:
            terms.append("ip4.src == $%s" % rng.choice(("as_clients",
                                                        "as_admin")))
        elif r < 0.6:
            terms.append("ip4.src == %s" % rng.choice(self.topo.ports).ip)
        if rng.random() < 0.6:
            ports = rng.sample(WEB_PORTS + (DB_PORT,) + OTHER_PORTS,
                               rng.randrange(1, 4))
            terms.append("tcp.dst == {%s}" % ", ".join(map(str, ports)))
        return port_dir, " && ".join(terms)

    def change_acl(self):
        rng = self.rng
        topo = self.topo
        extra = topo.acls[5:]
        r = rng.random()
        if extra and r < 0.3:
            acl = rng.choice(extra)
            nbctl("--", "remove", "port_group", acl[1], "acls", acl[0])
            topo.acls.remove(acl)
            return "acl remove %s" % acl[3]
        if extra and r < 0.55:
            acl = rng.choice(extra)
            if rng.random() < 0.5:
                verdict = rng.choice(("allow-related", "drop", "allow"))
                nbctl("set", "acl", acl[0], "action=%s" % verdict)
                return "acl modify verdict %s: %s" % (verdict, acl[3])
            port_dir, match = self.rand_acl_match(acl[1])
            direction = "to-lport" if port_dir == "outport" else "from-lport"
            nbctl("set", "acl", acl[0], "match=%s" % json.dumps(match),
                  "direction=%s" % direction)
            acl[2], acl[3] = direction, match
            return "acl modify match %s" % match
        pg = rng.choice(("pg_web", "pg_db"))
        port_dir, match = self.rand_acl_match(pg)
        direction = "to-lport" if port_dir == "outport" else "from-lport"
        self.acl_prio += 1
        verdict = rng.choice(("allow-related", "drop", "allow", "reject"))
        topo.acl_add(pg, direction, self.acl_prio % 1000 + 1003, match,
                     verdict)
        return "acl add %s %s" % (verdict, match)

    def change_as(self):
        rng = self.rng
        name = rng.choice(("as_clients", "as_admin"))
        members = run("ovn-nbctl", "get", "address_set", name,
                      "addresses").strip("[]\n ")
        members = [m.strip('" ') for m in members.split(",") if m.strip()]
        candidates = [p.ip for p in self.topo.ports if p.ip not in members]
        if members and (not candidates or rng.random() < 0.5):
            ip = rng.choice(members)
            nbctl("remove", "address_set", name, "addresses", '"%s"' % ip)
            return "as remove %s %s" % (name, ip)
        ip = rng.choice(candidates)
        nbctl("add", "address_set", name, "addresses", '"%s"' % ip)
        return "as add %s %s" % (name, ip)

    def change_pg(self):
        rng = self.rng
        name = rng.choice(("pg_web", "pg_db"))
        out = run("ovn-nbctl", "--bare", "--columns=ports", "find",
                  "port_group", "name=%s" % name)
        members = set(out.split())
        ports = {}
        for p in self.topo.ports:
            uuid = run("ovn-nbctl", "--bare", "--columns=_uuid", "find",
                       "logical_switch_port", "name=%s" % p.name).strip()
            if uuid:
                ports[uuid] = p
        inside = [u for u in ports if u in members]
        outside = [u for u in ports if u not in members]
        if inside and (not outside or rng.random() < 0.5):
            u = rng.choice(inside)
            nbctl("remove", "port_group", name, "ports", u)
            return "pg remove %s %s" % (name, ports[u].name)
        u = rng.choice(outside)
        nbctl("add", "port_group", name, "ports", u)
        return "pg add %s %s" % (name, ports[u].name)

    def lb_set(self, vip):
        backends = ",".join("%s:%s" % (ip, vip.split(":")[1])
                            for ip in self.topo.vips[vip])
        nbctl("set", "load_balancer", "lb_web",
              'vips:"%s"="%s"' % (vip, backends))

    def change_lb(self):
        rng = self.rng
        topo = self.topo
        vip = rng.choice(sorted(topo.vips))
        backends = topo.vips[vip]
        r = rng.random()
        if r < 0.2 and len(topo.vips) > 1:
            nbctl("remove", "load_balancer", "lb_web", "vips",
                  '"%s"' % vip)
            del topo.vips[vip]
            return "lb remove vip %s" % vip
        if r < 0.4:
            topo.next_vip += 1
            vip = "10.1.255.%d:%d" % (100 + topo.next_vip % 100,
                                      rng.choice(WEB_PORTS))
            topo.vips[vip] = [p.ip for p in rng.sample(topo.ports, 2)]
            self.lb_set(vip)
            return "lb add vip %s" % vip
        if r < 0.7 and len(backends) > 1:
            ip = rng.choice(backends)
            backends.remove(ip)
            self.lb_set(vip)
            return "lb remove backend %s from %s" % (ip, vip)
        candidates = [p.ip for p in topo.ports if p.ip not in backends]
        ip = rng.choice(candidates)
        backends.append(ip)
        self.lb_set(vip)
        return "lb add backend %s to %s" % (ip, vip)

    def change_vm(self):
        rng = self.rng
        topo = self.topo
        bound = [p for p in topo.ports if p.bound]
        r = rng.random()
        if r < 0.35 or len(bound) < 4:
            p = topo.new_port()
            nbctl(*topo.lsp_add_cmds(p))
            topo.bind(p)
            return "vm add %s" % p.name
        if r < 0.7:
            p = rng.choice(bound)
            vsctl("del-port", "br-int", p.iface)
            nbctl("lsp-del", p.name)
            topo.ports.remove(p)
            p.bound = False
            return "vm remove %s" % p.name
        # Rebind: interface vmA takes lspB's identity and vmB lspA's, as
        # when VMs move between interfaces.
        a, b = rng.sample(bound, 2)
        vsctl("set", "interface", a.iface, "external_ids:iface-id=%s" % b.name,
              "--", "set", "interface", b.iface,
              "external_ids:iface-id=%s" % a.name)
        a.iface, b.iface = b.iface, a.iface
        return "vm rebind %s <-> %s" % (a.name, b.name)

    def change_route(self):
        topo = self.topo
        if topo.routes and self.rng.random() < 0.5:
            prefix, hop = self.rng.choice(topo.routes)
            nbctl("lr-route-del", "lr1", prefix)
            topo.routes.remove((prefix, hop))
            return "route remove %s" % prefix
        topo.route_add()
        return "route add %s via %s" % topo.routes[-1]

    def change_nat(self):
        topo = self.topo
        if topo.nats and self.rng.random() < 0.5:
            kind, ext, logical = self.rng.choice(topo.nats)
            nbctl("lr-nat-del", "lr1", kind,
                  logical if kind == "snat" else ext)
            topo.nats.remove((kind, ext, logical))
            return "nat remove %s %s %s" % (kind, ext, logical)
        topo.nat_add()
        return "nat add %s %s %s" % topo.nats[-1]


# ---------------------------------------------------------------------------
# The oracle.

FLOW_RE = re.compile(r"^(?:ufid:\S+, )?(?P<key>.*?), packets:.*?"
                     r", actions:(?P<actions>[^ ]*)")


def dump_megaflows(ctl):
    """Returns [(key, actions)] of every installed datapath flow.  The key
    is the whole key of the packet that set the flow up, every field with
    its mask ("-m"), with port numbers rather than names."""
    flows = []
    for line in ctl.call("dpctl/dump-flows", "-m", "--no-names").splitlines():
        m = FLOW_RE.match(line)
        if m:
            flows.append((m.group("key"), m.group("actions").rstrip(",")))
    return flows


MAC = r"[0-9a-f]{2}(?::[0-9a-f]{2}){5}"
IP4 = r"\d+\.\d+\.\d+\.\d+"

# The packet fields a region point changes: attribute, field, bits.
REGION_FIELDS = (("eth", "src", 48), ("eth", "dst", 48),
                 ("ipv4", "src", 32), ("ipv4", "dst", 32),
                 ("ipv4", "tos", 8), ("ipv4", "ttl", 8),
                 ("tcp", "src", 16), ("tcp", "dst", 16),
                 ("udp", "src", 16), ("udp", "dst", 16))


def to_int(text, bits):
    if re.fullmatch(MAC, text):
        return int(text.replace(":", ""), 16)
    if re.fullmatch(IP4, text):
        return int.from_bytes(bytes(int(x) for x in text.split(".")), "big")
    return int(text, 0)


def from_int(value, like, bits):
    if re.fullmatch(MAC, like):
        return ":".join("%02x" % b for b in value.to_bytes(6, "big"))
    if re.fullmatch(IP4, like):
        return ".".join(str(b) for b in value.to_bytes(4, "big"))
    return str(value)


def region_point(rng, key):
    """Returns 'key', a whole datapath flow key with masks, with the packet
    bits its mask leaves out (value/mask) set at random: another packet of
    the same megaflow, as far as its mask says."""
    for attr, field, bits in REGION_FIELDS:
        m = re.search(r"\b%s\(([^)]*)\)" % attr, key)
        if not m:
            continue
        body = m.group(1)
        f = re.search(r"\b%s=([^,/]+)/([^,]+)" % field, body)
        if not f:
            continue
        value, mask = f.group(1), f.group(2)
        v, msk = to_int(value, bits), to_int(mask, bits)
        full = (1 << bits) - 1
        new = (v & msk) | (rng.getrandbits(bits) & ~msk & full)
        body = (body[:f.start()] + "%s=%s/%s" % (field,
                                                 from_int(new, value, bits),
                                                 mask)
                + body[f.end():])
        key = key[:m.start(1)] + body + key[m.end(1):]
    return key


TRACE_ACTIONS_RE = re.compile(r"^Datapath actions: (.*)$", re.M)
DONT_SEND_RE = re.compile(r"\bdont_send=\d,")


def same_actions(installed, fresh):
    """Returns true if datapath actions 'installed' are those of a fresh
    translation.  A traced controller action says dont_send=1 because a
    trace sends no packet-in; what a packet-in carries is the same."""
    return DONT_SEND_RE.sub("", installed) == DONT_SEND_RE.sub("", fresh)


def trace_actions(ctl, key):
    """Returns the datapath actions of a fresh translation of 'key', "slow"
    if its translation is slow-pathed, or None if its recirculation id no
    longer exists."""
    try:
        out = ctl.call("ofproto/trace", key)
    except Error as e:
        if "no recirculation data" in str(e):
            return None
        raise
    first = out.split("\n=====", 1)[0]
    if "handled by the userspace slow path" in first:
        return "slow"
    # The first pass's actions come first; ofproto/trace then follows the
    # recirculations it sets up, each with its own "Datapath actions".
    m = TRACE_ACTIONS_RE.search(first)
    if not m:
        raise Error("ofproto/trace %s: no datapath actions" % key)
    return m.group(1).strip()


class Verdict:
    def __init__(self):
        self.checked = self.stale = self.orphaned = self.slow = 0
        self.details = []

    def __str__(self):
        return ("%d megaflows checked, %d stale, %d orphaned, %d slow-path"
                % (self.checked, self.stale, self.orphaned, self.slow))


def check(ctl, rng, details=5):
    """The oracle: every installed megaflow's actions against a fresh
    translation of its key and of a random point of its region."""
    v = Verdict()
    for key, actions in dump_megaflows(ctl):
        v.checked += 1
        fresh = trace_actions(ctl, key)
        if fresh is None:
            v.orphaned += 1
            continue
        if fresh == "slow":
            v.slow += 1
            continue
        point = region_point(rng, key)
        same = same_actions(actions, fresh)
        fresh_point = trace_actions(ctl, point) if same else None
        if not same or (fresh_point not in (None, "slow")
                        and not same_actions(actions, fresh_point)):
            v.stale += 1
            if len(v.details) < details:
                v.details.append("stale: %s\n  installed: %s\n  fresh: %s%s"
                                 % (key, actions, fresh,
                                    "" if not same else
                                    "\n  at %s: %s" % (point, fresh_point)))
    return v


# ---------------------------------------------------------------------------
# The command line.

def set_mode(ctl, mode):
    vsctl("set", "Open_vSwitch", ".",
          "other_config:kairo-delta=%s" % ("true" if mode == "delta"
                                          else "false"),
          "other_config:max-idle=3600000")
    deadline = time.monotonic() + 30
    while "mode: %s" % mode not in ctl.call("kairo/show"):
        if time.monotonic() > deadline:
            raise Error("the switch did not enter %s mode" % mode)
        time.sleep(0.1)


# Open vSwitch's own reasons for a full revalidation.
def full_revalidations(ctl):
    """Returns {reason: count} of the full revalidations so far: Kairo's
    fallbacks by reason, and those Open vSwitch requested for changes Kairo
    did not take.  (The rev_* coverage counters count every revalidation,
    full or Kairo's, by its reason.)"""
    counts = {}
    show = ctl.call("kairo/show")
    m = re.search(r"full revalidations:(.*)", show)
    for name, n in re.findall(r"([a-z-]+) (\d+)", m.group(1) if m else ""):
        counts["kairo " + name] = int(n)
    m = re.search(r"full revalidations by Open vSwitch: (\d+)", show)
    counts["open vswitch"] = int(m.group(1)) if m else 0
    return counts


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--changes", type=int, default=20,
                    help="changes per kind (default 20)")
    ap.add_argument("--kinds", default=",".join(KINDS),
                    help="comma-separated change kinds (default: all)")
    ap.add_argument("--mode", choices=("delta", "stock"), default="delta")
    ap.add_argument("--switches", type=int, default=2)
    ap.add_argument("--ports", type=int, default=12)
    ap.add_argument("--megaflows", type=int, default=300,
                    help="megaflows to install first (default 300)")
    ap.add_argument("--refresh", type=int, default=60,
                    help="connections sent after each change (default 60)")
    ap.add_argument("--expect-no-full", action="store_true",
                    help="fail if the churn caused a full revalidation, "
                    "other than one Kairo chose as cheaper")
    ap.add_argument("--negative-control", action="store_true",
                    help="with the revalidators paused, a change must "
                    "leave stale megaflows that the oracle finds")
    args = ap.parse_args()
    kinds = [k for k in args.kinds.split(",") if k]
    for k in kinds:
        if k not in KINDS:
            ap.error("unknown change kind '%s' (kinds: %s)"
                     % (k, ", ".join(KINDS)))

    rng = random.Random(args.seed)
    ctl = Unixctl.for_daemon("ovs-vswitchd")
    set_mode(ctl, args.mode)
    topo = Topology(random.Random(rng.random()), args.switches, args.ports)
    topo.build()
    traffic = Traffic(topo, ctl, rng.random())
    n_dports = traffic.fill(args.megaflows)
    quiesce(ctl)
    v = check(ctl, random.Random(rng.random()))
    log("seed %d, %s mode: %d ports, %d megaflows over %d destination "
        "ports; before any change: %s" % (args.seed, args.mode,
                                         len(topo.ports), v.checked,
                                         n_dports, v))
    if args.negative_control:
        return negative_control(ctl, topo, v)

    churn = Churn(topo, rng.random())
    full0 = full_revalidations(ctl)
    total_stale = v.stale
    n = 0
    for details in v.details:
        log(details)
    for i in range(args.changes):
        for kind in kinds:
            n += 1
            what = churn.change(kind)
            hv_sync()
            quiesce(ctl)
            v = check(ctl, random.Random(rng.random()))
            total_stale += v.stale
            log("change %d: %s: %s" % (n, what, v))
            for details in v.details:
                log(details)
            # New connections, then the check again: megaflows set up
            # after the change must be right as well.
            traffic.refresh(n_dports, args.refresh)
            quiesce(ctl)
            v = check(ctl, random.Random(rng.random()))
            total_stale += v.stale
            for details in v.details:
                log(details)
    full1 = full_revalidations(ctl)
    full = {k: full1[k] - full0.get(k, 0) for k in full1
            if full1[k] != full0.get(k, 0)}
    log("full revalidations during the churn: %s"
        % (", ".join("%s %d" % kv for kv in sorted(full.items()))
           or "none"))
    unexpected = {k: v for k, v in full.items() if k != "kairo cost"}
    if args.expect_no_full and unexpected:
        log("FAILED: full revalidations that delta mode should not need")
    log("seed %d, %s mode: %d changes, %d stale" % (args.seed, args.mode, n,
                                                    total_stale))
    return 1 if total_stale or (args.expect_no_full and unexpected) else 0


def negative_control(ctl, topo, before):
    """Pauses the revalidators, changes an ACL that the installed megaflows
    go through, and expects the oracle to find stale megaflows; then
    resumes them and expects none."""
    ctl.call("revalidator/pause")
    try:
        for pg in ("pg_web", "pg_db"):
            topo.acl_add(pg, "to-lport", 1999, "outport == @%s && ip4" % pg,
                         "drop")
            topo.acl_add(pg, "from-lport", 1999, "inport == @%s && ip4" % pg,
                         "drop")
        hv_sync()
        ctl.call("kairo/wait")
        paused = check(ctl, random.Random(1))
    finally:
        ctl.call("revalidator/resume")
    quiesce(ctl)
    resumed = check(ctl, random.Random(2))
    log("negative control: revalidators paused: %s" % paused)
    log("negative control: resumed: %s" % resumed)
    ok = paused.stale > 0 and resumed.stale == 0
    log("negative control: %s" % ("oracle found the stale megaflows" if ok
                                  else "FAILED"))
    return 0 if ok else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Error as e:
        sys.stderr.write("kairo-ovn-churn: %s\n" % e)
        sys.exit(2)
