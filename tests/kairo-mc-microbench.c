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

/* kairo-mc-microbench: the memcached module's cost per request, in
 * nanoseconds, on one core.
 *
 * Usage: kairo-mc-microbench [--requests=N] [--runs=N] [--keys=N]
 *                            [--backends=N] [--cpu=N] [--format=text|csv]
 *
 * It builds N_PACKETS Ethernet/IPv4/UDP memcached "get" requests (keys
 * "key:0".. drawn uniformly from --keys, valid IPv4 and UDP checksums) and
 * times, over --requests requests per run:
 *
 *   restore     copying each packet's 64 header bytes back from a template,
 *               which the module stages below also do (their rewrites must
 *               be undone before a packet is used again): the baseline;
 *   parse       kairo_mc_parse_request() on the payload;
 *   route       parse plus kairo_ketama_lookup() (ketama, fnv1a_64);
 *   module-mac  a kairo-memcached netdev, rewrite=mac: netdev_send() of
 *               batches of 32 packets and netdev_rxq_recv() of them back,
 *               i.e. header checks, parse, route, rewrite, counters and the
 *               receive queue, as in the datapath;
 *   module-ip   the same with rewrite=ip (destination IP, port and both
 *               checksums rewritten);
 *   cache-hit   the hot-key cache's hit path alone: parse, hash, lock,
 *               lookup and the VALUE item written into a reply buffer, with
 *               every key cached;
 *   clone       dp_packet_clone() of each packet and dp_packet_delete()
 *               of the clone: the baseline of module-hit, which consumes
 *               its packets as a datapath does;
 *   module-hit  a kairo-memcached netdev with a cache holding every key
 *               (filled through the module from replies, as in the
 *               datapath): netdev_send() of batches of 32 cloned packets,
 *               each answered by a new reply packet, and netdev_rxq_recv()
 *               and deletion of the replies.
 *
 * Each stage is run --runs times; the median, minimum and maximum of the
 * per-run nanoseconds per request are printed, and for the module stages
 * also the median minus the baseline ("net": restore, or clone for
 * module-hit). */

#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "csum.h"
#include "dp-packet.h"
#include "kairo-ketama.h"
#include "kairo-mc-cache.h"
#include "kairo-mc-hash.h"
#include "kairo-mc-proto.h"
#include "netdev-kairo-memcached.h"
#include "netdev.h"
#include "openvswitch/vlog.h"
#include "ovs-rcu.h"
#include "packets.h"
#include "smap.h"
#include "util.h"

#define N_PACKETS 4096          /* Distinct request packets, a power of 2. */
#define HEADER_COPY 64          /* Bytes restored from the template. */
#define MAX_BACKENDS 64

struct options {
    unsigned long long requests;
    unsigned int runs;
    unsigned int keys;
    unsigned int backends;
    int cpu;
    bool csv;
};

struct bench {
    struct dp_packet *pkts[N_PACKETS];      /* Packets the stages use. */
    uint8_t templates[N_PACKETS][HEADER_COPY]; /* Their original headers. */
    struct kairo_ketama *ring;              /* For the route stage. */
    struct kairo_mc_cache *cache;           /* For the cache-hit stage. */
    struct ovs_mutex cache_mutex;           /* As the module takes it. */
};

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t) ts.tv_sec * 1000000000ULL + ts.tv_nsec;
}

static int
compare_doubles(const void *a_, const void *b_)
{
    double a = *(const double *) a_, b = *(const double *) b_;

    return a < b ? -1 : a > b;
}

/* Returns a new Ethernet/IPv4/UDP packet from 'eth_src' 'ip_src':'sport'
 * to 'eth_dst' 'ip_dst':'dport' (ports in network byte order) carrying the
 * 'n' bytes at 'payload', with valid IPv4 and UDP checksums. */
static struct dp_packet *
build_udp(struct eth_addr eth_src, struct eth_addr eth_dst, ovs_be32 ip_src,
          ovs_be32 ip_dst, ovs_be16 sport, ovs_be16 dport,
          const void *payload, size_t n)
{
    size_t udp_len = UDP_HEADER_LEN + n;
    size_t ip_len = IP_HEADER_LEN + udp_len;
    struct dp_packet *pkt = dp_packet_new(ETH_HEADER_LEN + ip_len);
    struct eth_header *eth = dp_packet_put_zeros(pkt, ETH_HEADER_LEN);
    struct ip_header *ip = dp_packet_put_zeros(pkt, IP_HEADER_LEN);
    struct udp_header *udp = dp_packet_put_zeros(pkt, UDP_HEADER_LEN);

    dp_packet_put(pkt, payload, n);
    eth->eth_dst = eth_dst;
    eth->eth_src = eth_src;
    eth->eth_type = htons(ETH_TYPE_IP);
    ip->ip_ihl_ver = IP_IHL_VER(5, 4);
    ip->ip_tot_len = htons(ip_len);
    ip->ip_ttl = 64;
    ip->ip_proto = IPPROTO_UDP;
    put_16aligned_be32(&ip->ip_src, ip_src);
    put_16aligned_be32(&ip->ip_dst, ip_dst);
    ip->ip_csum = csum(ip, IP_HEADER_LEN);
    udp->udp_src = sport;
    udp->udp_dst = dport;
    udp->udp_len = htons(udp_len);
    udp->udp_csum = csum_finish(csum_continue(packet_csum_pseudoheader(ip),
                                              udp, udp_len));
    if (!udp->udp_csum) {
        udp->udp_csum = htons(0xffff);
    }
    return pkt;
}

/* Builds request packet 'i' for key 'key' into 'b'. */
static void
build_packet(struct bench *b, size_t i, unsigned int key)
{
    char payload[64];
    int n = snprintf(payload, sizeof payload,
                     "%c%c%c%c%c%c%c%cget key:%u\r\n",
                     (char) (i >> 8), (char) i, 0, 0, 0, 1, 0, 0, key);
    struct dp_packet *pkt;

    pkt = build_udp((struct eth_addr) ETH_ADDR_C(02, 00, 00, 00, 00, 0a),
                    (struct eth_addr) ETH_ADDR_C(02, 6b, 00, 00, 00, 64),
                    htonl(0x0a000a0a), htonl(0x0a000064),
                    htons(40000 + i % 1000), htons(11211), payload, n);
    b->pkts[i] = pkt;
    memcpy(b->templates[i], dp_packet_data(pkt),
           MIN(HEADER_COPY, dp_packet_size(pkt)));
}

/* Copies the template headers back into packet 'i'. */
static inline void
restore(struct bench *b, size_t i)
{
    memcpy(dp_packet_data(b->pkts[i]), b->templates[i],
           MIN(HEADER_COPY, dp_packet_size(b->pkts[i])));
}

static uint64_t
run_restore(struct bench *b, unsigned long long requests)
{
    uint64_t start = now_ns();

    for (unsigned long long r = 0; r < requests; r++) {
        restore(b, r % N_PACKETS);
    }
    return now_ns() - start;
}

/* Returns the UDP payload of packet 'i' and its size. */
static inline const uint8_t *
payload_of(struct bench *b, size_t i, size_t *size)
{
    size_t ofs = ETH_HEADER_LEN + IP_HEADER_LEN + UDP_HEADER_LEN;

    *size = dp_packet_size(b->pkts[i]) - ofs;
    return (const uint8_t *) dp_packet_data(b->pkts[i]) + ofs;
}

static uint64_t
run_parse(struct bench *b, unsigned long long requests, bool route)
{
    unsigned long long sum = 0;
    uint64_t start = now_ns();

    for (unsigned long long r = 0; r < requests; r++) {
        struct kairo_mc_request req;
        const uint8_t *payload;
        size_t size;

        payload = payload_of(b, r % N_PACKETS, &size);
        if (kairo_mc_parse_request(payload, size, &req) || !req.n_keys) {
            ovs_fatal(0, "a benchmark request does not parse");
        }
        sum += route ? kairo_ketama_lookup(b->ring, req.keys[0].data,
                                           req.keys[0].len)
                     : req.keys[0].len;
    }
    uint64_t elapsed = now_ns() - start;

    ovs_assert(sum);            /* Uses the results, so they are computed. */
    return elapsed;
}

/* Fills 'b->cache' with every key of the benchmark packets. */
static void
fill_cache(struct bench *b)
{
    struct kairo_mc_cache_config cfg = {
        .max_bytes = 64 << 20, .max_value = 1400, .threshold = 1,
        .decay_period = 1 << 20, .max_ttl_ms = 3600 * 1000,
    };

    b->cache = kairo_mc_cache_create(&cfg);
    ovs_mutex_init(&b->cache_mutex);
    for (size_t i = 0; i < N_PACKETS; i++) {
        struct kairo_mc_cache_ticket t = kairo_mc_cache_ticket(b->cache, 0);
        struct kairo_mc_request req;
        const uint8_t *payload;
        size_t size;
        uint32_t hash;

        payload = payload_of(b, i, &size);
        ovs_assert(!kairo_mc_parse_request(payload, size, &req));
        hash = kairo_mc_cache_hash(req.keys[0].data, req.keys[0].len);
        kairo_mc_cache_count_miss(b->cache, hash);
        kairo_mc_cache_fill(b->cache, &t, req.keys[0].data, req.keys[0].len,
                            hash, 0, false, 0, "hello", 5, 1);
    }
}

static uint64_t
run_cache_hit(struct bench *b, unsigned long long requests)
{
    unsigned long long sum = 0;
    uint64_t start = now_ns();

    for (unsigned long long r = 0; r < requests; r++) {
        struct kairo_mc_cache_item item;
        struct kairo_mc_request req;
        const uint8_t *payload;
        uint8_t reply[1400];
        size_t size;
        uint32_t hash;

        payload = payload_of(b, r % N_PACKETS, &size);
        if (kairo_mc_parse_request(payload, size, &req) || !req.n_keys) {
            ovs_fatal(0, "a benchmark request does not parse");
        }
        hash = kairo_mc_cache_hash(req.keys[0].data, req.keys[0].len);
        ovs_mutex_lock(&b->cache_mutex);
        if (!kairo_mc_cache_lookup(b->cache, req.keys[0].data,
                                   req.keys[0].len, hash, false, 2, &item)) {
            ovs_fatal(0, "a benchmark key is not cached");
        }
        sum += kairo_mc_put_value(reply + 8, sizeof reply - 8, item.key,
                                  item.key_len, item.flags, false, 0,
                                  item.data, item.data_len);
        ovs_mutex_unlock(&b->cache_mutex);
        kairo_mc_put_frame(reply, &req.frame);
        sum += reply[0];
    }
    uint64_t elapsed = now_ns() - start;

    ovs_assert(sum);
    return elapsed;
}

static uint64_t
run_clone(struct bench *b, unsigned long long requests)
{
    uint64_t start = now_ns();

    for (unsigned long long r = 0; r < requests; r++) {
        dp_packet_delete(dp_packet_clone(b->pkts[r % N_PACKETS]));
    }
    return now_ns() - start;
}

/* Sends clones of the 'n' packets from 'first' to 'netdev' and receives
 * from 'rxq' as many packets as it queues; returns how many of those were
 * answers (from UDP port 11211). */
static size_t
send_clones(struct bench *b, size_t first, size_t n, struct netdev *netdev,
            struct netdev_rxq *rxq)
{
    struct dp_packet_batch batch;
    size_t got = 0, answers = 0;

    dp_packet_batch_init(&batch);
    for (size_t i = 0; i < n; i++) {
        dp_packet_batch_add(&batch, dp_packet_clone(b->pkts[first + i]));
    }
    netdev_send(netdev, 0, &batch, false);
    while (got < n) {
        struct dp_packet *pkt;

        dp_packet_batch_init(&batch);
        if (netdev_rxq_recv(rxq, &batch, NULL)) {
            ovs_fatal(0, "the module lost packets");
        }
        DP_PACKET_BATCH_FOR_EACH (i, pkt, &batch) {
            const uint8_t *udp = ((const uint8_t *) dp_packet_data(pkt)
                                  + ETH_HEADER_LEN + IP_HEADER_LEN);

            /* The UDP source port, 11211 in an answer. */
            answers += udp[0] == (11211 >> 8) && udp[1] == (11211 & 0xff);
            dp_packet_delete(pkt);
        }
        got += dp_packet_batch_size(&batch);
    }
    return answers;
}

/* Returns the reply a backend would send to request packet 'i' of 'b':
 * its key with value "hello". */
static struct dp_packet *
build_reply(struct bench *b, size_t i)
{
    const struct eth_header *eth = dp_packet_data(b->pkts[i]);
    const struct ip_header *ip = (const struct ip_header *) (eth + 1);
    const struct udp_header *udp = (const struct udp_header *) (ip + 1);
    struct kairo_mc_request req;
    const uint8_t *payload;
    uint8_t reply[300];
    size_t size;
    int n;

    payload = payload_of(b, i, &size);
    ovs_assert(!kairo_mc_parse_request(payload, size, &req));
    memcpy(reply, payload, KAIRO_MC_FRAME_HEADER_LEN);
    n = snprintf((char *) reply + KAIRO_MC_FRAME_HEADER_LEN,
                 sizeof reply - KAIRO_MC_FRAME_HEADER_LEN,
                 "VALUE %.*s 0 5\r\nhello\r\nEND\r\n",
                 (int) req.keys[0].len, req.keys[0].data);
    return build_udp(eth->eth_dst, eth->eth_src,
                     get_16aligned_be32(&ip->ip_dst),
                     get_16aligned_be32(&ip->ip_src), udp->udp_dst,
                     udp->udp_src, reply, KAIRO_MC_FRAME_HEADER_LEN + n);
}

/* Fills the cache of 'netdev' through the module: each get misses and is
 * forwarded, and its reply passes back through the port.  Returns the
 * share of the benchmark packets then answered from the cache. */
static double
fill_module(struct bench *b, struct netdev *netdev, struct netdev_rxq *rxq)
{
    size_t answered = 0;

    for (size_t first = 0; first < N_PACKETS; first += NETDEV_MAX_BURST) {
        struct dp_packet_batch batch;

        send_clones(b, first, NETDEV_MAX_BURST, netdev, rxq);
        dp_packet_batch_init(&batch);
        for (size_t i = 0; i < NETDEV_MAX_BURST; i++) {
            dp_packet_batch_add(&batch, build_reply(b, first + i));
        }
        netdev_send(netdev, 0, &batch, false);
        for (size_t got = 0; got < NETDEV_MAX_BURST; ) {
            struct dp_packet *pkt;

            dp_packet_batch_init(&batch);
            ovs_assert(!netdev_rxq_recv(rxq, &batch, NULL));
            got += dp_packet_batch_size(&batch);
            DP_PACKET_BATCH_FOR_EACH (i, pkt, &batch) {
                dp_packet_delete(pkt);
            }
        }
    }
    for (size_t first = 0; first < N_PACKETS; first += NETDEV_MAX_BURST) {
        answered += send_clones(b, first, NETDEV_MAX_BURST, netdev, rxq);
    }
    return (double) answered / N_PACKETS;
}

static uint64_t
run_module_hit(struct bench *b, struct netdev *netdev,
               struct netdev_rxq *rxq, unsigned long long requests)
{
    uint64_t start = now_ns();

    for (unsigned long long n = 0; n < requests; n += NETDEV_MAX_BURST) {
        send_clones(b, n % N_PACKETS, NETDEV_MAX_BURST, netdev, rxq);
    }
    return now_ns() - start;
}

/* Returns the "backends" option for 'n' backends. */
static char *
backends_option(unsigned int n)
{
    struct ds s = DS_EMPTY_INITIALIZER;

    for (unsigned int i = 0; i < n; i++) {
        ds_put_format(&s, "%s10.0.1.%u=02:00:00:00:01:%02x",
                      i ? "," : "", i + 1, i + 1);
    }
    return ds_steal_cstr(&s);
}

/* Opens a kairo-memcached netdev named 'name' for 'n_backends' backends
 * with 'rewrite', and its receive queue. */
static struct netdev *
open_module(const char *name, unsigned int n_backends, const char *rewrite,
            bool cache, struct netdev_rxq **rxqp)
{
    struct smap args = SMAP_INITIALIZER(&args);
    struct netdev *netdev;
    char *err = NULL;
    int error;

    error = netdev_open(name, "kairo-memcached", &netdev);
    if (error) {
        ovs_fatal(error, "%s: cannot open kairo-memcached netdev", name);
    }
    smap_add_nocopy(&args, xstrdup("backends"), backends_option(n_backends));
    smap_add(&args, "rewrite", rewrite);
    smap_add(&args, "vip", "10.0.0.100");
    smap_add(&args, "vmac", "02:6b:00:00:00:64");
    smap_add(&args, "queue_len", "4096");
    if (cache) {
        smap_add(&args, "cache_size", "64M");
        smap_add(&args, "cache_clients", "10.0.0.0/8");
        smap_add(&args, "cache_threshold", "1");
        smap_add(&args, "cache_max_ttl", "86400");
    }
    error = netdev_set_config(netdev, &args, &err);
    if (error) {
        ovs_fatal(error, "%s: %s", name, err ? err : "bad configuration");
    }
    smap_destroy(&args);
    error = netdev_rxq_open(netdev, rxqp, 0);
    if (error) {
        ovs_fatal(error, "%s: cannot open receive queue", name);
    }
    return netdev;
}

static uint64_t
run_module(struct bench *b, struct netdev *netdev, struct netdev_rxq *rxq,
           unsigned long long requests)
{
    unsigned long long n = 0;
    uint64_t start = now_ns();

    while (n < requests) {
        struct dp_packet_batch batch;
        size_t first = n % N_PACKETS;

        dp_packet_batch_init(&batch);
        for (size_t i = 0; i < NETDEV_MAX_BURST; i++) {
            restore(b, first + i);
            dp_packet_batch_add(&batch, b->pkts[first + i]);
        }
        netdev_send(netdev, 0, &batch, false);

        /* The module queues the same packets, rewritten; take them back. */
        size_t got = 0;
        while (got < NETDEV_MAX_BURST) {
            dp_packet_batch_init(&batch);
            if (netdev_rxq_recv(rxq, &batch, NULL)) {
                ovs_fatal(0, "the module lost packets");
            }
            got += dp_packet_batch_size(&batch);
        }
        n += NETDEV_MAX_BURST;
    }
    return now_ns() - start;
}

static void
parse_options(int argc, char *argv[], struct options *o)
{
    static const struct option long_options[] = {
        {"requests", required_argument, NULL, 'n'},
        {"runs", required_argument, NULL, 'r'},
        {"keys", required_argument, NULL, 'k'},
        {"backends", required_argument, NULL, 'b'},
        {"cpu", required_argument, NULL, 'c'},
        {"format", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };

    *o = (struct options) {
        .requests = 10000000, .runs = 7, .keys = 100000, .backends = 8,
        .cpu = -1,
    };
    for (;;) {
        int c = getopt_long(argc, argv, "h", long_options, NULL);

        if (c == -1) {
            break;
        }
        switch (c) {
        case 'n':
            o->requests = strtoull(optarg, NULL, 10);
            break;
        case 'r':
            o->runs = atoi(optarg);
            break;
        case 'k':
            o->keys = atoi(optarg);
            break;
        case 'b':
            o->backends = atoi(optarg);
            break;
        case 'c':
            o->cpu = atoi(optarg);
            break;
        case 'f':
            if (!strcmp(optarg, "csv")) {
                o->csv = true;
            } else if (strcmp(optarg, "text")) {
                ovs_fatal(0, "--format must be text or csv");
            }
            break;
        case 'h':
            printf("usage: %s [--requests=N] [--runs=N] [--keys=N] "
                   "[--backends=N] [--cpu=N] [--format=text|csv]\n",
                   argv[0]);
            exit(EXIT_SUCCESS);
        default:
            exit(EXIT_FAILURE);
        }
    }
    if (o->requests < N_PACKETS || o->requests > 1000000000ULL
        || o->runs < 1 || o->runs > 101 || o->keys < 1
        || o->backends < 1 || o->backends > MAX_BACKENDS) {
        ovs_fatal(0, "--requests must be %d..1e9, --runs 1..101, --keys at "
                  "least 1 and --backends 1..%d", N_PACKETS, MAX_BACKENDS);
    }
    o->requests -= o->requests % N_PACKETS;
}

enum stage {
    RESTORE, PARSE, ROUTE, MODULE_MAC, MODULE_IP, CACHE_HIT, CLONE,
    MODULE_HIT, N_STAGES
};

static const char *stage_names[N_STAGES] = {
    "restore", "parse", "route", "module-mac", "module-ip", "cache-hit",
    "clone", "module-hit",
};

int
main(int argc, char *argv[])
{
    struct netdev_rxq *rxq_mac, *rxq_ip, *rxq_hit;
    struct netdev *mac, *ip, *hit;
    double hit_share;
    struct options o;
    struct bench *b;

    set_program_name(argv[0]);
    vlog_set_levels(NULL, VLF_ANY_DESTINATION, VLL_OFF);
    parse_options(argc, argv, &o);
    if (o.cpu >= 0) {
        cpu_set_t set;

        CPU_ZERO(&set);
        CPU_SET(o.cpu, &set);
        if (sched_setaffinity(0, sizeof set, &set)) {
            ovs_fatal(errno, "cannot pin to CPU %d", o.cpu);
        }
    }

    b = xzalloc(sizeof *b);
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    for (size_t i = 0; i < N_PACKETS; i++) {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        build_packet(b, i, rng % o.keys);
    }

    struct kairo_ketama_server servers[MAX_BACKENDS];
    char hosts[MAX_BACKENDS][16];
    struct kairo_ketama_config kcfg = {
        .distribution = KAIRO_KETAMA_KETAMA,
        .hash = KAIRO_MC_HASH_FNV1A_64,
    };

    for (size_t i = 0; i < o.backends; i++) {
        snprintf(hosts[i], sizeof hosts[i], "10.0.1.%"PRIuSIZE, i + 1);
        servers[i] = (struct kairo_ketama_server) {
            .host = hosts[i], .port = 11211, .weight = 1, .alive = true,
        };
    }
    if (kairo_ketama_create(&kcfg, servers, o.backends, &b->ring)) {
        ovs_fatal(0, "cannot build the ring");
    }

    netdev_kairo_mc_register();
    mac = open_module("mcbench-mac", o.backends, "mac", false, &rxq_mac);
    ip = open_module("mcbench-ip", o.backends, "ip", false, &rxq_ip);
    hit = open_module("mcbench-hit", o.backends, "mac", true, &rxq_hit);
    fill_cache(b);
    hit_share = fill_module(b, hit, rxq_hit);
    if (hit_share < 0.99) {
        ovs_fatal(0, "only %.1f%% of the requests hit the module's cache",
                  hit_share * 100);
    }

    double *ns[N_STAGES];
    for (size_t s = 0; s < N_STAGES; s++) {
        ns[s] = xcalloc(o.runs, sizeof *ns[s]);
    }

    /* One warm-up request pass per stage, then interleaved runs, so that
     * drifts in machine speed affect every stage alike. */
    for (int run = -1; run < (int) o.runs; run++) {
        unsigned long long n = run < 0 ? N_PACKETS : o.requests;

        for (size_t s = 0; s < N_STAGES; s++) {
            uint64_t t;

            switch ((enum stage) s) {
            case RESTORE:
                t = run_restore(b, n);
                break;
            case PARSE:
                t = run_parse(b, n, false);
                break;
            case ROUTE:
                t = run_parse(b, n, true);
                break;
            case MODULE_MAC:
                t = run_module(b, mac, rxq_mac, n);
                break;
            case MODULE_IP:
                t = run_module(b, ip, rxq_ip, n);
                break;
            case CACHE_HIT:
                t = run_cache_hit(b, n);
                break;
            case CLONE:
                t = run_clone(b, n);
                break;
            case MODULE_HIT:
                t = run_module_hit(b, hit, rxq_hit, n);
                break;
            case N_STAGES:
            default:
                OVS_NOT_REACHED();
            }
            if (run >= 0) {
                ns[s][run] = (double) t / n;
            }
        }
    }

    double median[N_STAGES];
    if (o.csv) {
        printf("stage,requests,runs,median_ns,min_ns,max_ns,net_ns\n");
    } else {
        printf("%llu requests per run, %u runs, %u keys, %u backends"
               "%s, %.1f%% answered by module-hit\n", o.requests, o.runs,
               o.keys, o.backends, o.cpu >= 0 ? ", pinned" : "",
               hit_share * 100);
        printf("%-12s %9s %9s %9s %9s %12s\n", "stage", "median", "min",
               "max", "net", "Mrequests/s");
    }
    for (size_t s = 0; s < N_STAGES; s++) {
        qsort(ns[s], o.runs, sizeof *ns[s], compare_doubles);
        median[s] = ns[s][o.runs / 2];

        double net = (s == MODULE_MAC || s == MODULE_IP
                      ? median[s] - median[RESTORE]
                      : s == MODULE_HIT ? median[s] - median[CLONE]
                      : median[s]);
        if (o.csv) {
            printf("%s,%llu,%u,%.2f,%.2f,%.2f,%.2f\n", stage_names[s],
                   o.requests, o.runs, median[s], ns[s][0],
                   ns[s][o.runs - 1], net);
        } else {
            printf("%-12s %9.2f %9.2f %9.2f %9.2f %12.1f\n", stage_names[s],
                   median[s], ns[s][0], ns[s][o.runs - 1], net,
                   net > 0 ? 1e3 / net : 0.0);
        }
        free(ns[s]);
    }

    netdev_rxq_close(rxq_mac);
    netdev_rxq_close(rxq_ip);
    netdev_rxq_close(rxq_hit);
    netdev_close(mac);
    netdev_close(ip);
    netdev_close(hit);
    kairo_mc_cache_destroy(b->cache);
    kairo_ketama_destroy(b->ring);
    for (size_t i = 0; i < N_PACKETS; i++) {
        dp_packet_delete(b->pkts[i]);
    }
    free(b);
    return 0;
}
