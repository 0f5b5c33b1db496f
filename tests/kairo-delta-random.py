#! /usr/bin/env python3
# Copyright (c) 2026 The Kairo developers.
# SPDX-License-Identifier: Apache-2.0
"""Randomized differential test of delta propagation.

Drives a running switch (bridge br0 on the dummy datapath, OpenFlow ports 1
to 4, packets received on p1) through random multi-table pipelines and
random changes, reproducibly from --seed:

  - rules in tables 0 to 3 with distinct random priorities and overlapping wildcards
    on reg0, reg1, dl_src, nw_dst (prefixes) and tp_dst; actions that
    load or move registers and rewrite nw_dst before resubmitting to a later
    table, or output;
  - conjunctive matches: clauses (conjunction(ID,k/2), sometimes of two
    ids at once) and conj_id=ID rules, for three ids per table at fixed
    priorities, so that several conjunctions at different priorities and
    clauses shared between ids compete with the other rules;
  - changes: add, modify (actions), modify-strict, delete, delete-strict,
    and bundles of several of them;
  - after every --batch changes, packets from a fixed set of random flows,
    then "kairo/wait" and "revalidator/wait", then "kairo/verify", which
    re-translates every installed megaflow against the current tables: any
    stale megaflow, one whose installed actions are not what a fresh
    translation (what stock revalidation installs) gives, or whose mask is
    wider than that translation's without being shown sound lookup by
    lookup, is a failure.

The last line is a summary; the exit status is 1 on any stale megaflow.
"""

import argparse
import random
import subprocess
import sys

TABLES = 4
N_FLOWS = 24
MAX_RULES = 120                 # Past this many rules, adds become deletes.
CONJ_IDS = 3                    # Conjunction ids per table.


def conj_priority(table, conj_id):
    """The priority of conjunction 'conj_id''s clauses in 'table', one per
    id, amid the other rules' priorities (which avoid it)."""
    return 500 + 10 * table + conj_id


def run(*args, stdin=None):
    return subprocess.run(args, input=stdin, check=True, text=True,
                          capture_output=True).stdout


def rand_priority(rng, table, rules):
    """Returns a priority that no rule of 'table' has.  Overlapping rules of
    equal priority make the classifier's choice, and so a fresh translation,
    depend on more than the megaflow's key: OpenFlow leaves it undefined."""
    used = {int(m.split(",")[1].split("=")[1])
            for m in rules if m.startswith("table=%d," % table)}
    used |= {conj_priority(table, i) for i in range(1, CONJ_IDS + 1)}
    return rng.choice([p for p in range(1, 1000) if p not in used])


def rand_match(rng, table, rules):
    parts = ["table=%d" % table, "priority=%d" % rand_priority(rng, table,
                                                               rules)]
    if rng.random() < 0.4:
        parts.append("reg0=%d" % rng.randrange(4))
    if rng.random() < 0.2:
        parts.append("reg1=%d" % rng.randrange(3))
    if rng.random() < 0.3:
        parts.append("dl_src=50:54:00:00:00:%02x" % rng.randrange(1, 7))
    if rng.random() < 0.5:
        parts.append("ip")
        if rng.random() < 0.5:
            plen = rng.choice((8, 16, 24, 32))
            parts.append("nw_dst=10.%d.%d.%d/%d" % (rng.randrange(2),
                                                     rng.randrange(3),
                                                     rng.randrange(4), plen))
        if rng.random() < 0.3:
            parts.append("udp,tp_dst=%d" % rng.choice((53, 80, 2000)))
    return parts


def rand_clause(rng, table):
    """Returns a clause of a conjunction of 'table': its match (one or two
    of the generator's fields) and its conjunction actions."""
    conj_id = rng.randrange(1, CONJ_IDS + 1)
    parts = ["table=%d" % table,
             "priority=%d" % conj_priority(table, conj_id)]
    dim = rng.randrange(1, 3)
    if dim == 1:
        if rng.random() < 0.5:
            parts.append("dl_src=50:54:00:00:00:%02x" % rng.randrange(1, 7))
        else:
            parts.append("reg0=%d" % rng.randrange(4))
    else:
        parts.append("ip")
        if rng.random() < 0.5:
            parts.append("nw_dst=10.%d.0.0/16" % rng.randrange(2))
        else:
            parts.append("udp,tp_dst=%d" % rng.choice((53, 80, 2000)))
    acts = ["conjunction(%d,%d/2)" % (conj_id, dim)]
    other = rng.randrange(1, CONJ_IDS + 1)
    if other != conj_id and rng.random() < 0.2:
        # Shared with another id: only clauses of one priority combine, so
        # the other id's conjunction at this priority.
        acts.append("conjunction(%d,%d/2)" % (other, dim))
    return ",".join(parts), ",".join(acts)


def rand_actions(rng, table, match):
    acts = []
    if rng.random() < 0.4:
        acts.append("load:%d->NXM_NX_REG0[]" % rng.randrange(4))
    if rng.random() < 0.2:
        acts.append("move:NXM_NX_REG0[0..1]->NXM_NX_REG1[0..1]")
    if "ip" in match.split(",") and rng.random() < 0.3:
        acts.append("mod_nw_dst:10.%d.%d.1" % (rng.randrange(2),
                                               rng.randrange(3)))
    if table + 1 < TABLES and rng.random() < 0.6:
        acts.append("resubmit(,%d)" % rng.randrange(table + 1, TABLES))
    elif rng.random() < 0.8:
        acts.append("output:%d" % rng.randrange(2, 5))
    return ",".join(acts) if acts else "drop"


def rand_packet(rng):
    return ("in_port(1),eth(src=50:54:00:00:00:%02x,dst=50:54:00:00:00:ff),"
            "eth_type(0x0800),ipv4(src=10.9.0.1,dst=10.%d.%d.%d,proto=17,"
            "tos=0,ttl=64,frag=no),udp(src=1000,dst=%d)"
            % (rng.randrange(1, 7), rng.randrange(2), rng.randrange(3),
               rng.randrange(4), rng.choice((53, 80, 2000, 9999))))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--changes", type=int, default=400)
    ap.add_argument("--batch", type=int, default=10)
    opts = ap.parse_args()

    rng = random.Random(opts.seed)
    packets = [rand_packet(rng) for _ in range(N_FLOWS)]
    rules = []                  # Match strings of the rules we added.
    n_changes = n_checks = n_stale = n_wider = n_flows = 0

    for table in range(TABLES):
        run("ovs-ofctl", "add-flow", "br0",
            "table=%d,priority=0,actions=%s"
            % (table, rand_actions(rng, table, "")))

    while n_changes < opts.changes:
        mods = []
        for _ in range(opts.batch):
            table = rng.randrange(TABLES)
            kind = rng.random()
            if kind < 0.5 and len(rules) >= MAX_RULES:
                kind = 0.8      # Keep the tables from filling up.
            if kind < 0.12:
                match, acts = rand_clause(rng, table)
                if match not in rules:
                    rules.append(match)
                mods.append("add %s,actions=%s" % (match, acts))
            elif kind < 0.18:
                conj_id = rng.randrange(1, CONJ_IDS + 1)
                parts = rand_match(rng, table, rules)
                parts.insert(2, "conj_id=%d" % conj_id)
                match = ",".join(parts)
                rules.append(match)
                mods.append("add %s,actions=%s"
                            % (match, rand_actions(rng, table, match)))
            elif kind < 0.5 or not rules:
                match = ",".join(rand_match(rng, table, rules))
                rules.append(match)
                mods.append("add %s,actions=%s"
                            % (match, rand_actions(rng, table, match)))
            elif kind < 0.65:
                match = rng.choice(rules)
                table = int(match.split(",")[0].split("=")[1])
                mods.append("modify_strict %s,actions=%s"
                            % (match, rand_actions(rng, table, match)))
            elif kind < 0.75:
                match = rng.choice(rules)
                table = int(match.split(",")[0].split("=")[1])
                loose = ",".join(p for p in match.split(",")
                                 if not p.startswith("priority="))
                mods.append("modify %s,actions=%s"
                            % (loose, rand_actions(rng, table, match)))
            elif kind < 0.9:
                match = rules.pop(rng.randrange(len(rules)))
                mods.append("delete_strict %s" % match)
            else:
                match = rules.pop(rng.randrange(len(rules)))
                loose = ",".join(p for p in match.split(",")
                                 if not p.startswith("priority="))
                mods.append("delete %s" % loose)
        n_changes += len(mods)
        bundle = ["--bundle"] if rng.random() < 0.3 else []
        run("ovs-ofctl", "-O", "OpenFlow14", *bundle, "add-flows", "br0",
            "-", stdin="\n".join(mods) + "\n")

        for p in rng.sample(packets, N_FLOWS // 2):
            run("ovs-appctl", "netdev-dummy/receive", "p1", p)
        run("ovs-appctl", "kairo/wait")
        run("ovs-appctl", "revalidator/wait")
        out = run("ovs-appctl", "kairo/verify")
        n_checks += 1
        last = out.strip().splitlines()[-1]
        n_flows += int(last.split()[0])
        stale = int(last.split(", ")[1].split()[0])
        n_wider += int(last.split(", ")[2].split()[0])
        if stale:
            n_stale += stale
            sys.stdout.write("after change %d:\n%s\nchanges:\n%s\n"
                             % (n_changes, out, "\n".join(mods)))

    print("seed %d: %d changes, %d checks of %d megaflows in all (%d with a "
          "sound mask wider than a fresh translation's), %d stale"
          % (opts.seed, n_changes, n_checks, n_flows, n_wider, n_stale))
    return 1 if n_stale else 0


if __name__ == "__main__":
    sys.exit(main())
