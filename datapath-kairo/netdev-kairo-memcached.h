/*
 * Copyright (c) 2026 The Kairo developers.
 *
 * Licensed under the Apache License, Version 2.0 (the "License");
 * you may not use this file except in compliance with the License.
 * You may obtain a copy of the License at:
 *
 *     http://www.apache.org/licenses/LICENSE-2.0
 *
 * Unless required by applicable law or agreed to in writing, software
 * distributed under the License is distributed on an "AS IS" BASIS,
 * WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
 * See the License for the specific language governing permissions and
 * limitations under the License.
 */

#ifndef NETDEV_KAIRO_MEMCACHED_H
#define NETDEV_KAIRO_MEMCACHED_H 1

/* The "kairo-memcached" port type: memcached UDP steering by key.
 *
 * "kairo-memcached-pmd" is the same port with PMD receive queues: PMD
 * threads busy-poll them instead of the main thread polling them when
 * woken, for datapaths with PMD threads (DPDK).
 *
 * A kairo-memcached port is a loop-back device for the userspace (netdev)
 * datapath, the dummy datapath of the tests included.  Packets the datapath
 * outputs to the port (netdev send()) are examined, steered and queued;
 * the datapath then receives them back from the port's receive queues with
 * in_port set to the port, so ordinary OpenFlow rules bring memcached
 * traffic in ("udp,tp_dst=11211,actions=output:mc0") and forward what comes
 * out ("in_port=mc0,actions=NORMAL").
 *
 * What happens to each packet sent to the port:
 *
 *   - An IPv4/UDP request (to options:vport, and to options:vip if set)
 *     that parses (lib/kairo-mc-proto.h) is steered: its key goes through
 *     the pool's ring (lib/kairo-ketama.h) and the destination MAC is set to
 *     the chosen backend's; with rewrite=ip, the destination IP and UDP
 *     port too, with the IPv4 and UDP checksums updated.  An ASCII
 *     get/gets/gat/gats whose keys live on several backends is split into
 *     one request per backend (kairo_mc_build_get(): same request id,
 *     sequence 0, total 1), keys in their original order.  A pipelined
 *     datagram goes, whole, to the backend of its keys if every key maps to
 *     the same backend and every keyless command in it is mn or noop.
 *
 *   - With rewrite=ip, a reply from a backend (UDP from a backend's IP and
 *     port) gets its source IP, UDP port and MAC set to options:vip, vport
 *     and vmac.  With rewrite=mac, a datagram from vport to another port is
 *     a reply and passes unmodified.  Replies ignore the policy below.
 *
 *   - Everything else cannot be steered: other traffic, malformed requests,
 *     requests without a key, mixed pipelines, or no live backend.  Such a
 *     packet passes unmodified or is dropped, as options:bad-request says,
 *     and is counted under its reason (a kairo_mc_error_to_string() name
 *     for parser errors).
 *
 * Options and their syntax: lib/kairo-mc-pool.h.  A new configuration is
 * parsed, checked and built completely before it replaces the running one,
 * so a bad one changes nothing in the module (OVS's bridge then removes the
 * Interface from the datapath and puts the message in its "error" column,
 * as for any netdev whose configuration fails).
 *
 * Commands: kairo/mc-show [PORT], kairo/mc-route PORT KEY and
 * kairo/mc-backend PORT BACKEND up|down (see kairo(8)), plus a "memcached"
 * section in kairo/show.  Marking a backend down is runtime-only state; it
 * survives reconfiguration of the same port while the backend (same
 * IP:PORT and name) stays configured, and is lost when the port is
 * recreated or the switch restarts.
 *
 * Threads and ownership:
 *
 *   - Configuration, commands and ring rebuilds run on the main thread.
 *     A port's pool and ring are immutable once built and are published to
 *     packet threads by RCU; the packet path takes no lock to read them.
 *
 *   - send() may run concurrently on any datapath thread (PMD, handler,
 *     main).  It gathers a batch's packets per receive queue and its
 *     counts, then appends each queue's share under that queue's mutex and
 *     adds the counts to relaxed atomic counters, once per batch.  Each queue is bounded
 *     (options:queue_len); a packet that finds it full is dropped and
 *     counted.  Requests for one backend always use the same queue, so
 *     their order is kept.
 *
 *   - rxq_recv() and rxq_wait() run on the thread polling that queue.
 *
 *   - The port owns the packets in its queues; they are freed when drained,
 *     on reconfiguration to fewer queues, or when the port is destroyed.
 */

/* Registers the "kairo-memcached" netdev provider, the kairo/mc-*
 * commands and the kairo/show section.  Call once, from the main thread,
 * after kairo_show_init() and before bridge_init(). */
void netdev_kairo_mc_register(void);

#endif /* netdev-kairo-memcached.h */
