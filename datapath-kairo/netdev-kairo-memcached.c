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

#include <config.h>
#include "netdev-kairo-memcached.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "coverage.h"
#include "csum.h"
#include "dp-packet.h"
#include "dpif-netdev.h"
#include "hash.h"
#include "kairo-ketama.h"
#include "kairo-mc-cache.h"
#include "kairo-mc-hash.h"
#include "kairo-mc-health.h"
#include "kairo-mc-pool.h"
#include "kairo-mc-proto.h"
#include "kairo-show.h"
#include "netdev-provider.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/hmap.h"
#include "openvswitch/list.h"
#include "openvswitch/poll-loop.h"
#include "openvswitch/vlog.h"
#include "ovs-atomic.h"
#include "ovs-rcu.h"
#include "ovs-thread.h"
#include "packets.h"
#include "seq.h"
#include "smap.h"
#include "timeval.h"
#include "unixctl.h"
#include "util.h"

VLOG_DEFINE_THIS_MODULE(netdev_kairo_memcached);

COVERAGE_DEFINE(kairo_mc_steered);
COVERAGE_DEFINE(kairo_mc_split);
COVERAGE_DEFINE(kairo_mc_pipelined);
COVERAGE_DEFINE(kairo_mc_reply_rewritten);
COVERAGE_DEFINE(kairo_mc_reply_passed);
COVERAGE_DEFINE(kairo_mc_malformed);
COVERAGE_DEFINE(kairo_mc_not_memcached);
COVERAGE_DEFINE(kairo_mc_no_backend);
COVERAGE_DEFINE(kairo_mc_unsteered_passed);
COVERAGE_DEFINE(kairo_mc_unsteered_dropped);
COVERAGE_DEFINE(kairo_mc_rx_repass);
COVERAGE_DEFINE(kairo_mc_queue_full);
COVERAGE_DEFINE(kairo_mc_ring_built);
COVERAGE_DEFINE(kairo_mc_backend_failure);
COVERAGE_DEFINE(kairo_mc_backend_ejected);
COVERAGE_DEFINE(kairo_mc_backend_retried);
COVERAGE_DEFINE(kairo_mc_backend_recovered);
COVERAGE_DEFINE(kairo_mc_cache_hit);
COVERAGE_DEFINE(kairo_mc_cache_miss);
COVERAGE_DEFINE(kairo_mc_cache_answered);
COVERAGE_DEFINE(kairo_mc_cache_partial);
COVERAGE_DEFINE(kairo_mc_cache_refused);
COVERAGE_DEFINE(kairo_mc_cache_fill);
COVERAGE_DEFINE(kairo_mc_cache_fill_refused);
COVERAGE_DEFINE(kairo_mc_cache_invalidate);
COVERAGE_DEFINE(kairo_mc_cache_flush);

/* Why a packet was not steered.  The first KAIRO_MC_N_ERRORS values are
 * the parser's own reasons (enum kairo_mc_error); KAIRO_MC_OK is never
 * counted. */
enum mc_reason {
    MC_R_NOT_IPV4_UDP = KAIRO_MC_N_ERRORS, /* Not Ethernet/IPv4/UDP. */
    MC_R_BAD_HEADERS,           /* IPv4 or UDP header lengths wrong. */
    MC_R_FRAGMENT,              /* An IPv4 fragment. */
    MC_R_NOT_MEMCACHED,         /* UDP, but not to vport (and vip). */
    MC_R_NO_KEY,                /* A request without a key. */
    MC_R_PIPELINE_MIXED,        /* Pipelined commands disagree. */
    MC_R_NO_BACKEND,            /* No backend, or none live. */
    MC_R_SPLIT_FAILED,          /* A multi-get could not be split. */
    MC_N_REASONS
};

/* Returns the counter name of 'reason'. */
static const char *
mc_reason_to_string(enum mc_reason reason)
{
    switch (reason) {
    case MC_R_NOT_IPV4_UDP:
        return "not-ipv4-udp";
    case MC_R_BAD_HEADERS:
        return "bad-headers";
    case MC_R_FRAGMENT:
        return "ip-fragment";
    case MC_R_NOT_MEMCACHED:
        return "not-memcached";
    case MC_R_NO_KEY:
        return "no-key";
    case MC_R_PIPELINE_MIXED:
        return "pipeline-mixed";
    case MC_R_NO_BACKEND:
        return "no-backend";
    case MC_R_SPLIT_FAILED:
        return "split-failed";
    case MC_N_REASONS:
        break;
    default:
        return kairo_mc_error_to_string((enum kairo_mc_error) reason);
    }
    return "unknown";
}

/* Counters of one backend, updated by packet threads. */
struct mc_backend_stats {
    atomic_ullong requests;     /* Datagrams steered to the backend. */
    atomic_ullong reads;        /* Read commands among them. */
    atomic_ullong writes;       /* Write commands among them. */
    atomic_ullong awaited;      /* Datagrams among them that await a
                                 * reply (for liveness). */
    atomic_ullong replies;      /* Replies from the backend that passed
                                 * through the port. */
};

/* Maps a backend's IPv4 address and UDP port to its index, to recognize
 * replies. */
struct mc_addr_node {
    struct hmap_node node;      /* In 'addrs' of struct mc_pool. */
    ovs_be32 ip;                /* Backend IP. */
    uint16_t port;              /* Backend UDP port. */
    size_t idx;                 /* Backend index. */
};

/* Maps a backend's Ethernet address to its index, to tell which backend a
 * reply comes from with rewrite=mac, where backends share the VIP. */
struct mc_mac_node {
    struct hmap_node node;      /* In 'macs' of struct mc_pool. */
    struct eth_addr mac;        /* Backend MAC. */
    size_t idx;                 /* Index of the first backend with it. */
};

/* Why the cache did not answer a get it saw (MC_CR_*). */
enum mc_cache_refusal {
    MC_CR_CLIENT,               /* The client is not in cache_clients. */
    MC_CR_REQUEST,              /* A request the cache does not answer:
                                 * binary, gat, mg with other flags, ... */
    MC_CR_SIZE,                 /* The reply would exceed cache_max_reply. */
    MC_N_CACHE_REFUSALS
};

/* Returns the counter name of 'refusal'. */
static const char *
mc_cache_refusal_to_string(enum mc_cache_refusal refusal)
{
    switch (refusal) {
    case MC_CR_CLIENT:
        return "not-client";
    case MC_CR_REQUEST:
        return "request";
    case MC_CR_SIZE:
        return "reply-size";
    case MC_N_CACHE_REFUSALS:
        break;
    }
    return "unknown";
}

/* The hot-key cache of a pool, shared by the packet threads. */
struct mc_cache {
    struct ovs_mutex mutex;     /* Serializes every use of 'cache'. */
    struct kairo_mc_cache *cache OVS_GUARDED; /* The cache. */
};

/* A configured pool.  Immutable once published, apart from the atomic
 * counters in 'stats' and the internally locked 'cache'.  Shared by the
 * states built from it. */
struct mc_pool {
    struct ovs_refcount ref;    /* Held by each struct mc_state. */
    struct kairo_mc_pool_config cfg; /* The parsed options. */
    struct hmap addrs;          /* Contains struct mc_addr_node. */
    struct hmap macs;           /* Contains struct mc_mac_node. */
    struct mc_backend_stats *stats; /* One per backend. */
    uint16_t reply_port;        /* The UDP port of every backend, if they
                                 * share one, else 0: a datagram from
                                 * another port is not a reply. */
    struct mc_cache *cache;     /* NULL if the pool has no cache. */
};

/* What the packet path reads, published by RCU: a pool and a ring built
 * for a given backend liveness. */
struct mc_state {
    struct mc_pool *pool;       /* Holds a reference. */
    struct kairo_ketama *ring;  /* NULL if the pool has no backends. */
    bool *alive;                /* Administrative state per backend. */
};

/* One receive queue: a bounded ring of packets. */
struct mc_queue {
    struct ovs_mutex mutex;     /* Protects the members below. */
    struct dp_packet **pkts OVS_GUARDED; /* KAIRO_MC_POOL_MAX_QUEUE_LEN. */
    size_t head OVS_GUARDED;    /* Index of the oldest packet. */
    size_t count OVS_GUARDED;   /* Number of packets held. */
    bool waiting OVS_GUARDED;   /* rxq_wait() found it empty since the
                                 * last change of 'seq'. */
    struct seq *seq;            /* Changed when a packet is added while
                                 * 'waiting'. */
};

/* Port-wide counters, updated by packet threads. */
struct mc_counters {
    atomic_ullong steered;      /* Requests sent towards a backend. */
    atomic_ullong reads;        /* Read commands steered. */
    atomic_ullong writes;       /* Write commands steered. */
    atomic_ullong splits;       /* Multi-gets split. */
    atomic_ullong split_requests; /* Requests those splits produced. */
    atomic_ullong pipelined;    /* Pipelined datagrams steered whole. */
    atomic_ullong replies_rewritten; /* Replies rewritten to the VIP. */
    atomic_ullong replies_passed; /* Replies passed unmodified. */
    atomic_ullong passed;       /* Unsteered packets passed. */
    atomic_ullong dropped;      /* Unsteered packets dropped. */
    atomic_ullong queue_full;   /* Packets dropped on a full queue. */
    atomic_ullong reasons[MC_N_REASONS]; /* Unsteered, per reason. */
    atomic_ullong cache_answered; /* Gets answered whole by the cache. */
    atomic_ullong cache_partial; /* Multi-gets answered in part. */
    atomic_ullong cache_refused[MC_N_CACHE_REFUSALS]; /* Not answered. */
    atomic_ullong cache_flush_unsteered; /* Flushes for passed requests. */
    atomic_ullong rx_packets, rx_bytes; /* Handed to the datapath. */
    atomic_ullong tx_packets, tx_bytes; /* Sent to the port. */
};

/* A kairo-memcached netdev. */
struct netdev_kairo_mc {
    struct netdev up;           /* Must be first. */
    struct ovs_list list_node;  /* In 'mc_devs'. */

    /* Read by packet threads. */
    OVSRCU_TYPE(struct mc_state *) state; /* NULL until configured. */
    atomic_uint queue_len;      /* Packets a queue may hold. */
    atomic_uint n_active_rxq;   /* Queues in use. */
    struct mc_queue queues[KAIRO_MC_POOL_MAX_RXQ]; /* Receive queues. */
    struct mc_counters counters; /* Port counters. */

    /* Main thread only. */
    struct smap options;        /* Options last applied. */
    unsigned int requested_n_rxq; /* Queues for the next reconfigure. */
    struct kairo_mc_health health; /* Liveness of the current backends. */
    long long health_next;      /* When to sample 'health' next. */

    struct ovs_mutex mutex;     /* Protects the members below. */
    struct eth_addr hwaddr OVS_GUARDED; /* Port MAC. */
    enum netdev_flags flags OVS_GUARDED; /* NETDEV_UP, NETDEV_PROMISC. */
};

/* A receive queue of a kairo-memcached netdev. */
struct netdev_rxq_kairo_mc {
    struct netdev_rxq up;       /* Must be first. */
};

/* Every kairo-memcached netdev, for the commands. */
static struct ovs_mutex mc_devs_mutex = OVS_MUTEX_INITIALIZER;
static struct ovs_list mc_devs OVS_GUARDED_BY(mc_devs_mutex)
    = OVS_LIST_INITIALIZER(&mc_devs);

static const struct netdev_class netdev_kairo_mc_class;
static const struct netdev_class netdev_kairo_mc_pmd_class;

static struct netdev_kairo_mc *
netdev_kairo_mc_cast(const struct netdev *netdev)
{
    ovs_assert(netdev->netdev_class == &netdev_kairo_mc_class
               || netdev->netdev_class == &netdev_kairo_mc_pmd_class);
    return CONTAINER_OF(netdev, struct netdev_kairo_mc, up);
}

/* Adds 1 to the counter 'c'. */
static inline void
mc_inc(atomic_ullong *c)
{
    unsigned long long orig;

    atomic_add_relaxed(c, 1, &orig);
}

/* Adds 'n' to the counter 'c'. */
static inline void
mc_add(atomic_ullong *c, unsigned long long n)
{
    unsigned long long orig;

    atomic_add_relaxed(c, n, &orig);
}

/* Adds 'n' to the counter 'c' unless 'n' is 0, which saves an atomic
 * operation on the packet path. */
static inline void
mc_add_nonzero(atomic_ullong *c, unsigned long long n)
{
    if (n) {
        mc_add(c, n);
    }
}

/* Returns the value of the counter 'c'. */
static inline unsigned long long
mc_read(const atomic_ullong *c)
{
    unsigned long long value;

    atomic_read_relaxed(CONST_CAST(atomic_ullong *, c), &value);
    return value;
}

/* Pool and state life cycle (main thread, except the RCU-postponed frees,
 * which run on the RCU thread). */

static void
mc_pool_unref(struct mc_pool *pool)
{
    if (pool && ovs_refcount_unref_relaxed(&pool->ref) == 1) {
        struct mc_addr_node *node;
        struct mc_mac_node *mac_node;

        HMAP_FOR_EACH_POP (node, node, &pool->addrs) {
            free(node);
        }
        hmap_destroy(&pool->addrs);
        HMAP_FOR_EACH_POP (mac_node, node, &pool->macs) {
            free(mac_node);
        }
        hmap_destroy(&pool->macs);
        if (pool->cache) {
            ovs_mutex_destroy(&pool->cache->mutex);
            kairo_mc_cache_destroy(pool->cache->cache);
            free(pool->cache);
        }
        free(pool->stats);
        kairo_mc_pool_config_destroy(&pool->cfg);
        free(pool);
    }
}

static void
mc_state_destroy(struct mc_state *state)
{
    if (state) {
        kairo_ketama_destroy(state->ring);
        mc_pool_unref(state->pool);
        free(state->alive);
        free(state);
    }
}

/* Returns a hash of the backend address 'ip':'port'. */
static uint32_t
mc_addr_hash(ovs_be32 ip, uint16_t port)
{
    return hash_2words((OVS_FORCE uint32_t) ip, port);
}

/* Returns the index of the backend at 'ip':'port' in 'pool', or -1. */
static int
mc_pool_find_addr(const struct mc_pool *pool, ovs_be32 ip, uint16_t port)
{
    const struct mc_addr_node *node;

    HMAP_FOR_EACH_WITH_HASH (node, node, mc_addr_hash(ip, port),
                             &pool->addrs) {
        if (node->ip == ip && node->port == port) {
            return node->idx;
        }
    }
    return -1;
}

/* Returns the index of the first backend whose MAC is 'mac' in 'pool', or
 * -1. */
static int
mc_pool_find_mac(const struct mc_pool *pool, struct eth_addr mac)
{
    const struct mc_mac_node *node;

    HMAP_FOR_EACH_WITH_HASH (node, node, hash_mac(mac, 0, 0), &pool->macs) {
        if (eth_addr_equals(node->mac, mac)) {
            return node->idx;
        }
    }
    return -1;
}

/* Returns true if backends 'a' and 'b' are the same server (address and
 * name), for carrying state across a reconfiguration. */
static bool
mc_backend_same(const struct kairo_mc_backend *a,
                const struct kairo_mc_backend *b)
{
    return (a->ip == b->ip && a->port == b->port
            && !a->name == !b->name && (!a->name || !strcmp(a->name,
                                                             b->name)));
}

/* Builds a pool that takes over 'cfg' (which is left empty), carrying
 * counters over from 'old' (may be NULL) for backends it keeps. */
static struct mc_pool *
mc_pool_create(struct kairo_mc_pool_config *cfg, const struct mc_pool *old)
{
    struct mc_pool *pool = xzalloc(sizeof *pool);

    ovs_refcount_init(&pool->ref);
    pool->cfg = *cfg;
    kairo_mc_pool_config_init(cfg);
    hmap_init(&pool->addrs);
    hmap_init(&pool->macs);
    pool->stats = xcalloc(MAX(pool->cfg.n_backends, 1),
                          sizeof *pool->stats);
    if (pool->cfg.cache_size) {
        const struct kairo_mc_pool_config *c = &pool->cfg;
        struct kairo_mc_cache_config ccfg = {
            .max_bytes = MIN(c->cache_size, SIZE_MAX),
            .max_value = c->cache_max_reply,
            .threshold = c->cache_threshold,
            /* About 8 gets per sketch counter between decays. */
            .decay_period = MIN(c->cache_size / 8, UINT32_MAX),
            .max_ttl_ms = c->cache_max_ttl * 1000LL,
            .settle_ms = c->cache_settle,
        };

        pool->cache = xmalloc(sizeof *pool->cache);
        ovs_mutex_init(&pool->cache->mutex);
        pool->cache->cache = kairo_mc_cache_create(&ccfg);
    }
    for (size_t i = 0; i < pool->cfg.n_backends; i++) {
        const struct kairo_mc_backend *b = &pool->cfg.backends[i];

        if (mc_pool_find_addr(pool, b->ip, b->port) < 0) {
            struct mc_addr_node *node = xmalloc(sizeof *node);

            node->ip = b->ip;
            node->port = b->port;
            node->idx = i;
            hmap_insert(&pool->addrs, &node->node,
                        mc_addr_hash(b->ip, b->port));
        }
        if (mc_pool_find_mac(pool, b->mac) < 0) {
            struct mc_mac_node *node = xmalloc(sizeof *node);

            node->mac = b->mac;
            node->idx = i;
            hmap_insert(&pool->macs, &node->node, hash_mac(b->mac, 0, 0));
        }
        pool->reply_port = (!i || b->port == pool->reply_port
                            ? b->port : 0);
        for (size_t j = 0; old && j < old->cfg.n_backends; j++) {
            if (mc_backend_same(b, &old->cfg.backends[j])) {
                const struct mc_backend_stats *o = &old->stats[j];
                struct mc_backend_stats *s = &pool->stats[i];

                atomic_init(&s->requests, mc_read(&o->requests));
                atomic_init(&s->reads, mc_read(&o->reads));
                atomic_init(&s->writes, mc_read(&o->writes));
                atomic_init(&s->awaited, mc_read(&o->awaited));
                atomic_init(&s->replies, mc_read(&o->replies));
                break;
            }
        }
    }
    return pool;
}

/* Returns a malloc()ed array that tells, for each of the 'n' backends,
 * whether it takes part in the ring: administratively up ('alive') and not
 * ejected by 'health'. */
static bool *
mc_ring_liveness(size_t n, const bool *alive,
                 const struct kairo_mc_health *health)
{
    bool *live = xmalloc(MAX(n, 1) * sizeof *live);

    for (size_t i = 0; i < n; i++) {
        live[i] = (alive[i] && !(kairo_mc_health_enabled(health)
                                 && kairo_mc_health_is_ejected(health, i)));
    }
    return live;
}

/* Builds a state for 'pool' (taking a reference) with the administrative
 * backend liveness in 'alive' (copied) and the ejections in 'health'.
 * Returns 0, or an errno value with a malloc()ed message in '*errp'. */
static int
mc_state_create(struct mc_pool *pool, const bool *alive,
                const struct kairo_mc_health *health,
                struct mc_state **statep, char **errp)
{
    const struct kairo_mc_pool_config *cfg = &pool->cfg;
    struct mc_state *state = xzalloc(sizeof *state);
    size_t n = cfg->n_backends;

    state->alive = xmemdup(alive, MAX(n, 1) * sizeof *alive);
    if (n) {
        struct kairo_ketama_server *servers = xmalloc(n * sizeof *servers);
        bool *live = mc_ring_liveness(n, alive, health);
        struct kairo_ketama_config kcfg;
        int error;

        kairo_mc_pool_to_ketama(cfg, live, servers, &kcfg);
        error = kairo_ketama_create(&kcfg, servers, n, &state->ring);
        free(servers);
        free(live);
        if (error) {
            free(state->alive);
            free(state);
            *errp = xasprintf("the ring cannot be built (%s)",
                              ovs_strerror(error));
            return error;
        }
        COVERAGE_INC(kairo_mc_ring_built);
    }
    ovs_refcount_ref(&pool->ref);
    state->pool = pool;
    *statep = state;
    return 0;
}

/* Publishes 'state' as 'dev''s current state and frees the previous one
 * once no packet thread can be using it. */
static void
mc_state_publish(struct netdev_kairo_mc *dev, struct mc_state *state)
{
    struct mc_state *old = ovsrcu_get_protected(struct mc_state *,
                                                &dev->state);

    ovsrcu_set(&dev->state, state);
    if (old) {
        ovsrcu_postpone(mc_state_destroy, old);
    }
}

/* Returns the current state of 'dev' (main thread). */
static struct mc_state *
mc_get_state(const struct netdev_kairo_mc *dev)
{
    return ovsrcu_get_protected(struct mc_state *, &dev->state);
}

/* Appends to 'out' how backend 'idx' of 'state' is called: its name if it
 * has one, otherwise IP:PORT. */
static void
mc_put_backend_label(struct ds *out, const struct mc_state *state,
                     size_t idx)
{
    const struct kairo_mc_backend *b = &state->pool->cfg.backends[idx];

    if (b->name) {
        ds_put_cstr(out, b->name);
    } else {
        ds_put_format(out, "%s:%"PRIu16, b->host, b->port);
    }
}

/* Receive queues. */

/* Appends the 'n' packets in 'pkts' to queue 'qid' of 'dev', in order,
 * dropping those that do not fit.  Any thread. */
static void
mc_queue_push(struct netdev_kairo_mc *dev, unsigned int qid,
              struct dp_packet **pkts, size_t n)
{
    struct mc_queue *q = &dev->queues[qid];
    unsigned int limit;
    size_t added = 0;
    bool wake;

    atomic_read_relaxed(&dev->queue_len, &limit);
    ovs_mutex_lock(&q->mutex);
    for (; added < n && q->count < limit; added++) {
        size_t tail = (q->head + q->count) % KAIRO_MC_POOL_MAX_QUEUE_LEN;

        q->pkts[tail] = pkts[added];
        q->count++;
    }
    /* Only a thread that found the queue empty in rxq_wait() needs waking
     * (seq_change() takes a global lock): the thread that polls the queue
     * and has not yet waited will see the packets when it does, and PMD
     * threads never wait. */
    wake = added && q->waiting;
    if (wake) {
        q->waiting = false;
    }
    ovs_mutex_unlock(&q->mutex);

    if (wake) {
        seq_change(q->seq);
    }
    if (added < n) {
        static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 5);

        COVERAGE_ADD(kairo_mc_queue_full, n - added);
        mc_add(&dev->counters.queue_full, n - added);
        VLOG_INFO_RL(&rl, "%s: receive queue %u full (%u packets), "
                     "dropping %"PRIuSIZE, netdev_get_name(&dev->up), qid,
                     limit, n - added);
        for (size_t i = added; i < n; i++) {
            dp_packet_delete(pkts[i]);
        }
    }
}

/* Frees every packet in 'q'. */
static void
mc_queue_drain(struct mc_queue *q)
{
    ovs_mutex_lock(&q->mutex);
    while (q->count) {
        dp_packet_delete(q->pkts[q->head]);
        q->head = (q->head + 1) % KAIRO_MC_POOL_MAX_QUEUE_LEN;
        q->count--;
    }
    q->head = 0;
    ovs_mutex_unlock(&q->mutex);
}

/* Returns the queue for traffic of backend 'idx' (or 0 for none, -1). */
static unsigned int
mc_queue_for(struct netdev_kairo_mc *dev, int idx)
{
    unsigned int n;

    atomic_read_relaxed(&dev->n_active_rxq, &n);
    return idx > 0 && n > 1 ? (unsigned int) idx % n : 0;
}

/* The packet path. */

/* Backends whose counts struct mc_tx gathers; others count directly. */
#define MC_TX_BACKENDS 64

/* The work of one send() call: the packets it queues, per receive queue,
 * and the counts it adds to the port's hottest counters.  Both are handed
 * over once per call (mc_tx_flush()), so the path takes each queue's mutex
 * once per batch and touches shared counters once per batch, not per
 * packet. */
struct mc_tx {
    struct netdev_kairo_mc *dev;        /* The port. */
    const struct mc_state *state;       /* Its state, or NULL. */
    long long now;                      /* time_msec() at the start. */
    struct dp_packet *pkts[KAIRO_MC_POOL_MAX_RXQ][NETDEV_MAX_BURST];
    size_t n_pkts[KAIRO_MC_POOL_MAX_RXQ]; /* Packets in 'pkts' per queue. */
    unsigned long long steered;         /* For 'counters.steered'. */
    unsigned long long reads;           /* For 'counters.reads'. */
    unsigned long long writes;          /* For 'counters.writes'. */
    unsigned long long replies;         /* For 'counters.replies_rewritten'. */

    /* Per-backend counts for backends below MC_TX_BACKENDS ('touched' has
     * bit i set if backend i has any); others count directly. */
    uint64_t touched;
    struct mc_tx_backend {
        uint32_t requests, reads, writes, awaited, replies;
    } backends[MC_TX_BACKENDS];
};

/* Returns the per-backend counts of 'tx' for backend 'idx', or NULL if
 * 'idx' is counted directly in the pool. */
static inline struct mc_tx_backend *
mc_tx_backend(struct mc_tx *tx, int idx)
{
    uint64_t bit;

    if (idx >= MC_TX_BACKENDS) {
        return NULL;
    }
    bit = UINT64_C(1) << idx;
    if (!(tx->touched & bit)) {
        tx->touched |= bit;
        memset(&tx->backends[idx], 0, sizeof tx->backends[idx]);
    }
    return &tx->backends[idx];
}

/* Adds the counts in 'd' to the counters of backend 'idx' for 'tx'. */
static inline void
mc_tx_count_backend(struct mc_tx *tx, int idx, const struct mc_tx_backend d)
{
    struct mc_tx_backend *b = mc_tx_backend(tx, idx);

    if (b) {
        b->requests += d.requests;
        b->reads += d.reads;
        b->writes += d.writes;
        b->awaited += d.awaited;
        b->replies += d.replies;
    } else {
        struct mc_backend_stats *s = &tx->state->pool->stats[idx];

        mc_add_nonzero(&s->requests, d.requests);
        mc_add_nonzero(&s->reads, d.reads);
        mc_add_nonzero(&s->writes, d.writes);
        mc_add_nonzero(&s->awaited, d.awaited);
        mc_add_nonzero(&s->replies, d.replies);
    }
}

/* Initializes 'tx' for a send() call on 'dev'.  The packet and backend
 * arrays are left alone: they are big, and only their used parts are read. */
static void
mc_tx_init(struct mc_tx *tx, struct netdev_kairo_mc *dev)
{
    tx->dev = dev;
    tx->state = ovsrcu_get(struct mc_state *, &dev->state);
    tx->now = tx->state && tx->state->pool->cache ? time_msec() : 0;
    memset(tx->n_pkts, 0, sizeof tx->n_pkts);
    tx->steered = tx->reads = tx->writes = tx->replies = 0;
    tx->touched = 0;
}

/* Queues 'pkt' on receive queue 'qid' for 'tx'. */
static void
mc_tx_queue(struct mc_tx *tx, unsigned int qid, struct dp_packet *pkt)
{
    if (tx->n_pkts[qid] == NETDEV_MAX_BURST) {
        /* A split can yield more packets than a batch holds. */
        mc_queue_push(tx->dev, qid, tx->pkts[qid], tx->n_pkts[qid]);
        tx->n_pkts[qid] = 0;
    }
    tx->pkts[qid][tx->n_pkts[qid]++] = pkt;
}

/* Hands what 'tx' gathered to the port's queues and counters. */
static void
mc_tx_flush(struct mc_tx *tx)
{
    struct mc_counters *c = &tx->dev->counters;

    for (size_t qid = 0; qid < KAIRO_MC_POOL_MAX_RXQ; qid++) {
        if (tx->n_pkts[qid]) {
            mc_queue_push(tx->dev, qid, tx->pkts[qid], tx->n_pkts[qid]);
        }
    }
    if (tx->steered) {
        COVERAGE_ADD(kairo_mc_steered, tx->steered);
        mc_add(&c->steered, tx->steered);
        mc_add(&c->reads, tx->reads);
        mc_add(&c->writes, tx->writes);
    }
    if (tx->replies) {
        COVERAGE_ADD(kairo_mc_reply_rewritten, tx->replies);
        mc_add(&c->replies_rewritten, tx->replies);
    }
    for (uint64_t t = tx->touched; t; t = zero_rightmost_1bit(t)) {
        int idx = raw_ctz(t);
        const struct mc_tx_backend *b = &tx->backends[idx];
        struct mc_backend_stats *s = &tx->state->pool->stats[idx];

        mc_add_nonzero(&s->requests, b->requests);
        mc_add_nonzero(&s->reads, b->reads);
        mc_add_nonzero(&s->writes, b->writes);
        mc_add_nonzero(&s->awaited, b->awaited);
        mc_add_nonzero(&s->replies, b->replies);
    }
}

/* The headers of an Ethernet/IPv4/UDP packet, pointing into its data. */
struct mc_headers {
    struct eth_header *eth;     /* Ethernet header. */
    struct ip_header *ip;       /* IPv4 header. */
    struct udp_header *udp;     /* UDP header. */
    uint8_t *payload;           /* UDP payload. */
    size_t payload_len;         /* UDP payload length, in bytes. */
    size_t headers_len;         /* Bytes from Ethernet to UDP payload. */
};

/* Locates the headers of 'pkt' in 'h'.  Returns 0 if 'pkt' is a whole
 * (unfragmented) Ethernet/IPv4/UDP packet with consistent lengths, otherwise
 * the reason it is not. */
static enum mc_reason
mc_parse_headers(struct dp_packet *pkt, struct mc_headers *h)
{
    uint8_t *data = dp_packet_data(pkt);
    size_t size = dp_packet_size(pkt);
    size_t ihl, ip_len, udp_len;

    if (!dp_packet_is_eth(pkt) || size < ETH_HEADER_LEN) {
        return MC_R_NOT_IPV4_UDP;
    }
    h->eth = ALIGNED_CAST(struct eth_header *, data);
    if (h->eth->eth_type != htons(ETH_TYPE_IP)) {
        return MC_R_NOT_IPV4_UDP;
    }
    data += ETH_HEADER_LEN;
    size -= ETH_HEADER_LEN;

    if (size < IP_HEADER_LEN) {
        return MC_R_BAD_HEADERS;
    }
    h->ip = ALIGNED_CAST(struct ip_header *, data);
    ihl = IP_IHL(h->ip->ip_ihl_ver) * 4;
    ip_len = ntohs(h->ip->ip_tot_len);
    if (IP_VER(h->ip->ip_ihl_ver) != 4 || ihl < IP_HEADER_LEN
        || ip_len < ihl || ip_len > size) {
        return MC_R_BAD_HEADERS;
    }
    if (h->ip->ip_frag_off & htons(IP_MORE_FRAGMENTS | IP_FRAG_OFF_MASK)) {
        return MC_R_FRAGMENT;
    }
    if (h->ip->ip_proto != IPPROTO_UDP) {
        return MC_R_NOT_IPV4_UDP;
    }
    if (ip_len - ihl < UDP_HEADER_LEN) {
        return MC_R_BAD_HEADERS;
    }
    h->udp = ALIGNED_CAST(struct udp_header *, data + ihl);
    udp_len = ntohs(h->udp->udp_len);
    if (udp_len < UDP_HEADER_LEN || udp_len > ip_len - ihl) {
        return MC_R_BAD_HEADERS;
    }
    h->payload = data + ihl + UDP_HEADER_LEN;
    h->payload_len = udp_len - UDP_HEADER_LEN;
    h->headers_len = ETH_HEADER_LEN + ihl + UDP_HEADER_LEN;
    return 0;
}

/* Returns the ones' complement sum of the 16-bit words of 'new' and of the
 * complements of those of 'old', both as stored: what replacing 'old' by
 * 'new' adds to a checksum (RFC 1624).  The sum does not depend on byte
 * order as long as every word is taken alike. */
static inline uint32_t
mc_csum_delta32(ovs_be32 old_, ovs_be32 new_)
{
    uint32_t old = (OVS_FORCE uint32_t) old_;
    uint32_t new = (OVS_FORCE uint32_t) new_;

    return ((uint16_t) ~(old >> 16) + (uint16_t) ~old
            + (new >> 16) + (new & 0xffff));
}

/* Returns checksum field 'csum' updated by 'delta' (see mc_csum_delta32()):
 * HC' = ~(~HC + delta), as RFC 1624 eqn. 3. */
static inline ovs_be16
mc_csum_apply(ovs_be16 csum, uint32_t delta)
{
    uint32_t sum = (uint16_t) ~(OVS_FORCE uint16_t) csum + delta;

    sum = (sum & 0xffff) + (sum >> 16);
    sum = (sum & 0xffff) + (sum >> 16);
    return (OVS_FORCE ovs_be16) (uint16_t) ~sum;
}

/* Sets the IPv4 address at 'ip_field' and the UDP port at 'port_field' in
 * 'h' to 'ip' and 'port', updating the IPv4 checksum and the UDP checksum
 * (if there is one) once each. */
static void
mc_set_addr(struct mc_headers *h, ovs_16aligned_be32 *ip_field, ovs_be32 ip,
            ovs_be16 *port_field, ovs_be16 port)
{
    ovs_be32 old_ip = get_16aligned_be32(ip_field);
    uint32_t delta = 0;

    if (old_ip != ip) {
        delta = mc_csum_delta32(old_ip, ip);
        h->ip->ip_csum = mc_csum_apply(h->ip->ip_csum, delta);
        put_16aligned_be32(ip_field, ip);
    }
    if (*port_field != port) {
        delta += ((uint16_t) ~(OVS_FORCE uint16_t) *port_field
                  + (OVS_FORCE uint16_t) port);
        *port_field = port;
    }
    if (delta && h->udp->udp_csum) {
        h->udp->udp_csum = mc_csum_apply(h->udp->udp_csum, delta);
        if (!h->udp->udp_csum) {
            h->udp->udp_csum = htons(0xffff);
        }
    }
}

/* Rewrites the request 'pkt' (headers 'h') for backend 'idx' of 'state',
 * counts it and queues it.  'n_reads' and 'n_writes' count the read and
 * write commands it carries; 'awaits_reply' tells whether the backend
 * answers it (not only noreply or quiet commands). */
static void
mc_steer(struct mc_tx *tx, struct dp_packet *pkt, struct mc_headers *h,
         int idx, unsigned int n_reads, unsigned int n_writes,
         bool awaits_reply)
{
    const struct mc_pool *pool = tx->state->pool;
    const struct kairo_mc_backend *b = &pool->cfg.backends[idx];

    h->eth->eth_dst = b->mac;
    if (pool->cfg.rewrite == KAIRO_MC_REWRITE_IP) {
        mc_set_addr(h, &h->ip->ip_dst, b->ip, &h->udp->udp_dst,
                    htons(b->port));
    }
    dp_packet_reset_offload(pkt);

    tx->steered++;
    tx->reads += n_reads;
    tx->writes += n_writes;
    mc_tx_count_backend(tx, idx, (struct mc_tx_backend) {
                            .requests = 1, .reads = n_reads,
                            .writes = n_writes, .awaited = awaits_reply });
    mc_tx_queue(tx, mc_queue_for(tx->dev, idx), pkt);
}

/* The hot-key cache: snooping writes, answering gets, filling from
 * replies. */

static struct dp_packet *mc_build_part(const struct dp_packet *,
                                       const struct mc_headers *,
                                       const struct kairo_mc_request *,
                                       uint64_t mask);

/* Returns true if a request passed unsteered for 'reason' may hold a write
 * the cache did not see. */
static bool
mc_reason_may_write(enum mc_reason reason)
{
    return ((int) reason < (int) KAIRO_MC_N_ERRORS
            || reason == MC_R_BAD_HEADERS || reason == MC_R_FRAGMENT
            || reason == MC_R_PIPELINE_MIXED || reason == MC_R_NO_BACKEND
            || reason == MC_R_SPLIT_FAILED);
}

/* Empties 'cache' at 'now' for a flush that takes effect 'delay_ms' later,
 * and returns how many values it held.  Any thread. */
static size_t
mc_cache_flush__(struct mc_cache *cache, long long now, long long delay_ms)
{
    struct kairo_mc_cache_stats st;

    COVERAGE_INC(kairo_mc_cache_flush);
    ovs_mutex_lock(&cache->mutex);
    kairo_mc_cache_get_stats(cache->cache, &st);
    kairo_mc_cache_flush(cache->cache, now, delay_ms);
    ovs_mutex_unlock(&cache->mutex);
    return st.n_values;
}

/* Empties the cache of 'tx''s pool, which must have one, for a flush that
 * takes effect 'delay_ms' from now. */
static void
mc_cache_flush(struct mc_tx *tx, long long delay_ms)
{
    mc_cache_flush__(tx->state->pool->cache, tx->now, delay_ms);
}

/* Returns true if the meta request 'req' has flag 'flag'. */
static bool
mc_meta_has_flag(const struct kairo_mc_request *req, char flag)
{
    const uint8_t *p = req->meta_flags.data;
    const uint8_t *end = p + req->meta_flags.len;

    /* Each flag starts the text or follows a space. */
    for (; p < end; p++) {
        if (*p == flag && (p == req->meta_flags.data || p[-1] == ' ')) {
            return true;
        }
    }
    return false;
}

/* Returns what the write 'req' does to its keys' expiry, and in '*expires'
 * the time it sets, for kairo_mc_cache_write(). */
static enum kairo_mc_cache_expiry
mc_cache_write_expiry(const struct mc_tx *tx,
                      const struct kairo_mc_request *req, long long *expires)
{
    bool conditional = false;

    *expires = (req->has_exptime
                ? kairo_mc_exptime_to_ms(req->exptime, tx->now,
                                         time_wall())
                : LLONG_MAX);
    switch (req->op) {
    case KAIRO_MC_OP_SET:
        /* A binary SET with a cas value may fail. */
        conditional = req->protocol == KAIRO_MC_BINARY && req->cas;
        return conditional ? KAIRO_MC_EXPIRY_AT_MOST : KAIRO_MC_EXPIRY_SET;
    case KAIRO_MC_OP_TOUCH:
    case KAIRO_MC_OP_GAT:
    case KAIRO_MC_OP_GATS:
        return KAIRO_MC_EXPIRY_SET;
    case KAIRO_MC_OP_ADD:
    case KAIRO_MC_OP_REPLACE:
    case KAIRO_MC_OP_CAS:
    case KAIRO_MC_OP_MS:
        /* ms without 'T' stores with no expiry, unless its mode keeps the
         * old one: either way no sooner than "never". */
        return KAIRO_MC_EXPIRY_AT_MOST;
    case KAIRO_MC_OP_APPEND:
    case KAIRO_MC_OP_PREPEND:
    case KAIRO_MC_OP_INCR:
    case KAIRO_MC_OP_DECR:
        return KAIRO_MC_EXPIRY_KEEP;
    case KAIRO_MC_OP_MG:
        /* mg with 'T' touches; with 'N' it may create the item. */
        return (req->has_exptime && !mc_meta_has_flag(req, 'N')
                ? KAIRO_MC_EXPIRY_SET : KAIRO_MC_EXPIRY_FORGET);
    case KAIRO_MC_OP_GET:
    case KAIRO_MC_OP_GETS:
    case KAIRO_MC_OP_DELETE:
    case KAIRO_MC_OP_FLUSH_ALL:
    case KAIRO_MC_OP_MD:
    case KAIRO_MC_OP_MA:
    case KAIRO_MC_OP_MN:
    case KAIRO_MC_OP_NOOP:
    case KAIRO_MC_N_OPS:
    default:
        return KAIRO_MC_EXPIRY_FORGET;
    }
}

/* Reports the write 'req', about to be forwarded, to the cache of 'tx''s
 * pool, which must have one.  Does nothing for other requests. */
static void
mc_cache_snoop(struct mc_tx *tx, const struct kairo_mc_request *req)
{
    struct mc_cache *cache = tx->state->pool->cache;
    enum kairo_mc_cache_expiry expiry;
    long long expires;

    if (!req->is_write) {
        return;
    }
    if (req->op == KAIRO_MC_OP_FLUSH_ALL) {
        mc_cache_flush(tx, (req->exptime > 0
                            ? kairo_mc_exptime_to_ms(req->exptime, tx->now,
                                                     time_wall()) - tx->now
                            : 0));
        return;
    }
    if (req->key_base64) {
        /* The key memcached stores is not the text we have. */
        mc_cache_flush(tx, 0);
        return;
    }

    expiry = mc_cache_write_expiry(tx, req, &expires);
    COVERAGE_ADD(kairo_mc_cache_invalidate, req->n_keys);
    ovs_mutex_lock(&cache->mutex);
    for (size_t i = 0; i < req->n_keys; i++) {
        const struct kairo_mc_span *key = &req->keys[i];

        kairo_mc_cache_write(cache->cache, key->data, key->len,
                             kairo_mc_cache_hash(key->data, key->len),
                             expiry, expires, tx->now);
    }
    ovs_mutex_unlock(&cache->mutex);
}

/* Returns true if the cache may answer the meta get 'req': flags among v,
 * f, c, k, s and O only (others, such as q, t or b, change the reply in
 * ways the cache does not reproduce). */
static bool
mc_mg_answerable(const struct kairo_mc_request *req)
{
    const uint8_t *p = req->meta_flags.data;
    const uint8_t *end = p + req->meta_flags.len;

    for (; p < end; p++) {
        if (p == req->meta_flags.data || p[-1] == ' ') {
            if (!strchr("vfcksO", *p) || !*p) {
                return false;
            }
        }
    }
    return !req->is_write && !req->key_base64;
}

/* Appends the 'len' bytes at 'data' to '*p' and returns true if they fit
 * before 'end'; otherwise returns false. */
static bool
mc_put(uint8_t **p, const uint8_t *end, const void *data, size_t len)
{
    if (len > (size_t) (end - *p)) {
        return false;
    }
    memcpy(*p, data, len);
    *p += len;
    return true;
}

/* Appends 'lead' and then 'x' in decimal to '*p' as mc_put() does. */
static bool
mc_put_number(uint8_t **p, const uint8_t *end, const char *lead, uint64_t x)
{
    char digits[20];
    size_t n = sizeof digits;

    do {
        digits[--n] = '0' + x % 10;
        x /= 10;
    } while (x);
    return (mc_put(p, end, lead, strlen(lead))
            && mc_put(p, end, digits + n, sizeof digits - n));
}

/* Appends to '*p' (with 'end' the end of the buffer) the answer of the
 * meta get 'req' from 'item': "VA <size> <flags>*" and the value with
 * 'v', else "HD <flags>*", with the flags asked for in their order.
 * Returns false, with '*p' unchanged, if it does not fit or needs what the
 * item lacks. */
static bool
mc_put_mg_answer(uint8_t **p, const uint8_t *end,
                 const struct kairo_mc_request *req,
                 const struct kairo_mc_cache_item *item)
{
    const uint8_t *f = req->meta_flags.data;
    const uint8_t *f_end = f + req->meta_flags.len;
    bool with_value = mc_meta_has_flag(req, 'v');
    uint8_t *q = *p;
    bool ok;

    ok = (with_value
          ? mc_put_number(&q, end, "VA ", item->data_len)
          : mc_put(&q, end, "HD", 2));
    while (f < f_end && ok) {
        const uint8_t *tok_end = memchr(f, ' ', f_end - f);

        tok_end = tok_end ? tok_end : f_end;
        switch (*f) {
        case 'f':
            ok = mc_put_number(&q, end, " f", item->flags);
            break;
        case 'c':
            ok = item->has_cas && mc_put_number(&q, end, " c", item->cas);
            break;
        case 'k':
            ok = (mc_put(&q, end, " k", 2)
                  && mc_put(&q, end, item->key, item->key_len));
            break;
        case 's':
            ok = mc_put_number(&q, end, " s", item->data_len);
            break;
        case 'O':
            ok = (mc_put(&q, end, " ", 1)
                  && mc_put(&q, end, f, tok_end - f));
            break;
        }
        f = tok_end + (tok_end < f_end);
    }
    ok = ok && mc_put(&q, end, "\r\n", 2);
    if (ok && with_value) {
        ok = (mc_put(&q, end, item->data, item->data_len)
              && mc_put(&q, end, "\r\n", 2));
    }
    if (ok) {
        *p = q;
    }
    return ok;
}

/* Returns a new packet that answers the request whose headers are 'h',
 * with room for a 'size'-byte UDP payload, and stores the payload's start in
 * '*payload'.  mc_reply_finish() completes it. */
static struct dp_packet *
mc_reply_start(const struct mc_headers *h, size_t size, uint8_t **payload)
{
    size_t headers = ETH_HEADER_LEN + IP_HEADER_LEN + UDP_HEADER_LEN;
    struct dp_packet *reply;
    struct eth_header *eth;
    struct ip_header *ip;
    struct udp_header *udp;

    reply = dp_packet_new_with_headroom(headers + size, DP_NETDEV_HEADROOM);
    eth = dp_packet_put_zeros(reply, headers);
    eth->eth_dst = h->eth->eth_src;
    eth->eth_src = h->eth->eth_dst;
    eth->eth_type = htons(ETH_TYPE_IP);

    ip = (struct ip_header *) (eth + 1);
    ip->ip_ihl_ver = IP_IHL_VER(5, 4);
    ip->ip_tos = h->ip->ip_tos;
    ip->ip_ttl = 64;
    ip->ip_proto = IPPROTO_UDP;
    put_16aligned_be32(&ip->ip_src, get_16aligned_be32(&h->ip->ip_dst));
    put_16aligned_be32(&ip->ip_dst, get_16aligned_be32(&h->ip->ip_src));

    udp = (struct udp_header *) (ip + 1);
    udp->udp_src = h->udp->udp_dst;
    udp->udp_dst = h->udp->udp_src;

    *payload = (uint8_t *) (udp + 1);
    return reply;
}

/* Completes 'reply', from mc_reply_start(), whose payload is 'size' bytes:
 * lengths and checksums. */
static void
mc_reply_finish(struct dp_packet *reply, size_t size)
{
    struct ip_header *ip;
    struct udp_header *udp;
    uint32_t partial;

    dp_packet_put_uninit(reply, size);
    ip = (struct ip_header *) ((struct eth_header *) dp_packet_data(reply)
                               + 1);
    udp = (struct udp_header *) (ip + 1);
    ip->ip_tot_len = htons(IP_HEADER_LEN + UDP_HEADER_LEN + size);
    ip->ip_csum = csum(ip, IP_HEADER_LEN);
    udp->udp_len = htons(UDP_HEADER_LEN + size);
    partial = packet_csum_pseudoheader(ip);
    partial = csum_continue(partial, udp, UDP_HEADER_LEN + size);
    udp->udp_csum = csum_finish(partial);
    if (!udp->udp_csum) {
        udp->udp_csum = htons(0xffff);
    }
}

/* Returns the identity of the client of a request from 'ip':'port' (both
 * in network byte order), for expectations. */
static uint64_t
mc_client_id(ovs_be32 ip, ovs_be16 port)
{
    return ((uint64_t) ntohl(ip) << 16) | ntohs(port);
}

/* What mc_cache_answer() did with a get. */
enum mc_answer {
    MC_ANSWER_NONE,             /* Nothing: forward the request as is. */
    MC_ANSWER_PART,             /* Answered some keys: the request now asks
                                 * for the others. */
    MC_ANSWER_ALL,              /* Answered: the request is gone. */
};

/* A buffer for replies longer than one datagram, per thread that needs
 * one. */
DEFINE_PER_THREAD_MALLOCED_DATA(uint8_t *, mc_reply_buf);

/* Queues for 'tx' the reply message 'msg' ('size' bytes, without frame
 * header) to the request whose headers are 'h' and request id is
 * 'request_id', cut into datagrams of at most KAIRO_MC_REPLY_DATAGRAM
 * bytes, as memcached cuts its replies. */
static void
mc_reply_queue(struct mc_tx *tx, const struct mc_headers *h,
               uint16_t request_id, const uint8_t *msg, size_t size)
{
    size_t chunk = KAIRO_MC_REPLY_DATAGRAM - KAIRO_MC_FRAME_HEADER_LEN;
    struct kairo_mc_frame frame = {
        .request_id = request_id,
        .total = DIV_ROUND_UP(size, chunk),
    };

    for (size_t ofs = 0; ofs < size; ofs += chunk, frame.seq++) {
        size_t len = MIN(chunk, size - ofs);
        struct dp_packet *reply;
        uint8_t *payload;

        reply = mc_reply_start(h, KAIRO_MC_FRAME_HEADER_LEN + len, &payload);
        kairo_mc_put_frame(payload, &frame);
        memcpy(payload + KAIRO_MC_FRAME_HEADER_LEN, msg + ofs, len);
        mc_reply_finish(reply, KAIRO_MC_FRAME_HEADER_LEN + len);
        mc_tx_queue(tx, 0, reply);
    }
}

/* Answers what it can of the get 'req' in '*pktp' (headers 'h') from the
 * cache of 'tx''s pool, which must have one.  For MC_ANSWER_PART, replaces
 * '*pktp', '*h' and '*req' with a request for the keys that missed.  Sets
 * '*expect' if a key that missed is hot, so that the reply to the forwarded
 * request may fill the cache.
 *
 * A reply of one datagram is written straight into its packet.  One longer
 * than a datagram (up to cache_max_reply) is written into a buffer and cut
 * into datagrams, and only answers a request whose keys all hit: the
 * client could not tell its datagrams from those of a backend's reply with
 * the same request id. */
static enum mc_answer
mc_cache_answer(struct mc_tx *tx, struct dp_packet **pktp,
                struct mc_headers *h, struct kairo_mc_request *req,
                bool *expect)
{
    const struct kairo_mc_pool_config *cfg = &tx->state->pool->cfg;
    struct mc_cache *cache = tx->state->pool->cache;
    struct mc_counters *c = &tx->dev->counters;
    bool gets = req->op == KAIRO_MC_OP_GETS;
    bool mg = req->op == KAIRO_MC_OP_MG;
    struct dp_packet *reply = NULL;
    uint8_t *msg, *p, *end;
    uint64_t missed = 0;
    size_t n_hits = 0;
    bool too_big = false;

    *expect = false;
    if (!(req->protocol == KAIRO_MC_ASCII
          && (req->op == KAIRO_MC_OP_GET || gets))
        && !(req->protocol == KAIRO_MC_META && mg && mc_mg_answerable(req))) {
        if (req->is_read) {
            COVERAGE_INC(kairo_mc_cache_refused);
            mc_inc(&c->cache_refused[MC_CR_REQUEST]);
        }
        return MC_ANSWER_NONE;
    }
    if (!kairo_mc_pool_is_cache_client(cfg,
                                       get_16aligned_be32(&h->ip->ip_src))) {
        COVERAGE_INC(kairo_mc_cache_refused);
        mc_inc(&c->cache_refused[MC_CR_CLIENT]);
        return MC_ANSWER_NONE;
    }

    if (cfg->cache_max_reply <= KAIRO_MC_REPLY_DATAGRAM) {
        reply = mc_reply_start(h, cfg->cache_max_reply, &msg);
        msg += KAIRO_MC_FRAME_HEADER_LEN;
    } else {
        msg = mc_reply_buf_get();
        if (!msg) {
            msg = xmalloc(KAIRO_MC_POOL_MAX_REPLY);
            mc_reply_buf_set_unsafe(msg);
        }
    }
    p = msg;
    end = (msg + cfg->cache_max_reply - KAIRO_MC_FRAME_HEADER_LEN
           - (mg ? 0 : 5)); /* "END\r\n". */

    ovs_mutex_lock(&cache->mutex);
    for (size_t i = 0; i < req->n_keys; i++) {
        const struct kairo_mc_span *key = &req->keys[i];
        uint32_t hash = kairo_mc_cache_hash(key->data, key->len);
        struct kairo_mc_cache_item item;
        bool hit = false;

        if (kairo_mc_cache_lookup(cache->cache, key->data, key->len, hash,
                                  gets || mc_meta_has_flag(req, 'c'),
                                  tx->now, &item)) {
            if (mg) {
                hit = mc_put_mg_answer(&p, end, req, &item);
            } else {
                size_t n = kairo_mc_put_value(p, end - p, key->data,
                                              key->len, item.flags, gets,
                                              item.cas, item.data,
                                              item.data_len);
                hit = n > 0;
                p += n;
            }
            too_big = too_big || !hit;
        }
        if (hit) {
            n_hits++;
        } else {
            missed |= UINT64_C(1) << i;
            *expect = (kairo_mc_cache_count_miss(cache->cache, hash)
                       || *expect);
        }
    }
    ovs_mutex_unlock(&cache->mutex);

    COVERAGE_ADD(kairo_mc_cache_hit, n_hits);
    COVERAGE_ADD(kairo_mc_cache_miss, req->n_keys - n_hits);
    if (!missed && !mg) {
        memcpy(p, "END\r\n", 5);
        p += 5;
    }
    if (missed && p - msg > KAIRO_MC_REPLY_DATAGRAM
                            - KAIRO_MC_FRAME_HEADER_LEN) {
        /* Part of the keys would need a reply of several datagrams. */
        too_big = true;
        n_hits = 0;
    }
    if (too_big) {
        COVERAGE_INC(kairo_mc_cache_refused);
        mc_inc(&c->cache_refused[MC_CR_SIZE]);
    }
    if (!n_hits) {
        dp_packet_delete(reply);
        return MC_ANSWER_NONE;
    }

    struct dp_packet *rest = NULL;
    if (missed) {
        /* The keys that missed go on, without the ones answered. */
        rest = mc_build_part(*pktp, h, req, missed);
        if (!rest) {
            /* Forward the whole request rather than answer in part. */
            dp_packet_delete(reply);
            return MC_ANSWER_NONE;
        }
    }
    if (reply) {
        struct kairo_mc_frame frame = {
            .request_id = req->frame.request_id,
            .total = 1,
        };

        kairo_mc_put_frame(msg - KAIRO_MC_FRAME_HEADER_LEN, &frame);
        mc_reply_finish(reply, KAIRO_MC_FRAME_HEADER_LEN + (p - msg));
        mc_tx_queue(tx, 0, reply);
    } else {
        mc_reply_queue(tx, h, req->frame.request_id, msg, p - msg);
    }
    dp_packet_delete(*pktp);

    if (rest) {
        *pktp = rest;
        ovs_assert(!mc_parse_headers(rest, h));
        ovs_assert(!kairo_mc_parse_request(h->payload, h->payload_len,
                                           req));
        COVERAGE_INC(kairo_mc_cache_partial);
        mc_inc(&c->cache_partial);
        return MC_ANSWER_PART;
    }
    COVERAGE_INC(kairo_mc_cache_answered);
    mc_inc(&c->cache_answered);
    return MC_ANSWER_ALL;
}

/* Remembers that the get 'req' (headers 'h') is forwarded now in
 * 'n_replies' datagrams, so that mc_cache_fill() may fill the cache of
 * 'tx''s pool from its replies. */
static void
mc_cache_expect(struct mc_tx *tx, const struct mc_headers *h,
                const struct kairo_mc_request *req, unsigned int n_replies)
{
    struct mc_cache *cache = tx->state->pool->cache;

    ovs_mutex_lock(&cache->mutex);
    kairo_mc_cache_expect(cache->cache,
                          mc_client_id(get_16aligned_be32(&h->ip->ip_src),
                                       h->udp->udp_src),
                          req->frame.request_id, n_replies, tx->now);
    ovs_mutex_unlock(&cache->mutex);
}

/* Fills the cache of 'tx''s pool, which must have one, from the reply
 * whose headers are 'h', if it answers a get the cache expects.  A reply
 * message of several datagrams fills it once its last datagram is in. */
static void
mc_cache_fill(struct mc_tx *tx, const struct mc_headers *h)
{
    struct mc_cache *cache = tx->state->pool->cache;
    uint64_t client = mc_client_id(get_16aligned_be32(&h->ip->ip_dst),
                                   h->udp->udp_dst);
    struct kairo_mc_cache_ticket ticket;
    struct kairo_mc_frame frame;
    unsigned int n_filled = 0, n_refused = 0;
    size_t ofs = KAIRO_MC_FRAME_HEADER_LEN;
    const uint8_t *msg = h->payload;
    size_t size = h->payload_len;
    bool take;

    if (kairo_mc_parse_frame(h->payload, h->payload_len, &frame)) {
        return;
    }

    ovs_mutex_lock(&cache->mutex);
    if (frame.total == 1 && !frame.seq) {
        take = kairo_mc_cache_take(cache->cache, client, frame.request_id,
                                   tx->now, &ticket);
    } else {
        take = (kairo_mc_cache_take_part(cache->cache, client,
                                         frame.request_id, frame.seq,
                                         frame.total, h->payload,
                                         h->payload_len, tx->now, &ticket,
                                         &msg, &size)
                == KAIRO_MC_PART_COMPLETE);
    }
    if (take) {
        struct kairo_mc_value v;

        while (kairo_mc_parse_reply_item(msg, size, ofs, &v, &ofs)
               == KAIRO_MC_REPLY_VALUE) {
            enum kairo_mc_cache_fill result;

            result = kairo_mc_cache_fill(
                cache->cache, &ticket, v.key.data, v.key.len,
                kairo_mc_cache_hash(v.key.data, v.key.len), v.flags,
                v.has_cas, v.cas, v.data.data, v.data.len, tx->now);
            if (result == KAIRO_MC_FILL_OK) {
                n_filled++;
            } else {
                n_refused++;
            }
        }
    }
    ovs_mutex_unlock(&cache->mutex);
    COVERAGE_ADD(kairo_mc_cache_fill, n_filled);
    COVERAGE_ADD(kairo_mc_cache_fill_refused, n_refused);
}

/* Handles 'pkt', which cannot be steered for 'reason', under the policy of
 * 'state' (pass if 'state' is NULL). */
static void
mc_unsteered(struct mc_tx *tx, struct dp_packet *pkt, enum mc_reason reason)
{
    struct netdev_kairo_mc *dev = tx->dev;
    const struct mc_state *state = tx->state;
    static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);
    bool drop = (state
                 && state->pool->cfg.bad_request == KAIRO_MC_POLICY_DROP);

    mc_inc(&dev->counters.reasons[reason]);
    if ((int) reason < (int) KAIRO_MC_N_ERRORS) {
        COVERAGE_INC(kairo_mc_malformed);
    } else if (reason == MC_R_NO_BACKEND) {
        COVERAGE_INC(kairo_mc_no_backend);
    } else if (reason == MC_R_NOT_IPV4_UDP || reason == MC_R_NOT_MEMCACHED
               || reason == MC_R_FRAGMENT) {
        COVERAGE_INC(kairo_mc_not_memcached);
    }
    VLOG_DBG_RL(&rl, "%s: %s packet that cannot be steered (%s)",
                netdev_get_name(&dev->up), drop ? "dropping" : "passing",
                mc_reason_to_string(reason));
    if (!drop && state && state->pool->cache && mc_reason_may_write(reason)) {
        /* The request reaches a server unread: it may be a write. */
        mc_cache_flush(tx, 0);
        mc_inc(&dev->counters.cache_flush_unsteered);
    }
    if (drop) {
        COVERAGE_INC(kairo_mc_unsteered_dropped);
        mc_inc(&dev->counters.dropped);
        dp_packet_delete(pkt);
    } else {
        COVERAGE_INC(kairo_mc_unsteered_passed);
        mc_inc(&dev->counters.passed);
        mc_tx_queue(tx, 0, pkt);
    }
}

/* Returns the backend that 'key' maps to in 'state', or -1. */
static int
mc_route(const struct mc_state *state, const struct kairo_mc_span *key)
{
    return kairo_ketama_lookup(state->ring, key->data, key->len);
}

/* Returns true if 'req' is a retrieval command that may be split. */
static bool
mc_is_splittable(const struct kairo_mc_request *req)
{
    return (req->protocol == KAIRO_MC_ASCII
            && (req->op == KAIRO_MC_OP_GET || req->op == KAIRO_MC_OP_GETS
                || req->op == KAIRO_MC_OP_GAT || req->op == KAIRO_MC_OP_GATS));
}

/* Builds a copy of 'pkt' (headers 'h') whose payload holds the keys of
 * 'req' selected by 'mask'.  Returns the copy, or NULL on failure. */
static struct dp_packet *
mc_build_part(const struct dp_packet *pkt, const struct mc_headers *h,
              const struct kairo_mc_request *req, uint64_t mask)
{
    size_t room = h->payload_len + 64;
    struct dp_packet *part;
    struct mc_headers ph;
    size_t n;

    part = dp_packet_new_with_headroom(h->headers_len + room,
                                       DP_NETDEV_HEADROOM);
    dp_packet_put(part, dp_packet_data(pkt), h->headers_len);
    n = kairo_mc_build_get(req, mask, dp_packet_tail(part), room);
    if (!n || h->headers_len + n > UINT16_MAX) {
        dp_packet_delete(part);
        return NULL;
    }
    dp_packet_put_uninit(part, n);

    /* Fix the lengths and checksums. */
    ph.eth = dp_packet_data(part);
    ph.ip = (struct ip_header *) (ph.eth + 1);
    ph.udp = ALIGNED_CAST(struct udp_header *, (uint8_t *) ph.eth
                          + h->headers_len - UDP_HEADER_LEN);
    ph.ip->ip_tot_len = htons(h->headers_len - ETH_HEADER_LEN + n);
    ph.ip->ip_csum = 0;
    ph.ip->ip_csum = csum(ph.ip, IP_IHL(ph.ip->ip_ihl_ver) * 4);
    ph.udp->udp_len = htons(UDP_HEADER_LEN + n);
    if (ph.udp->udp_csum) {
        uint32_t partial = packet_csum_pseudoheader(ph.ip);

        ph.udp->udp_csum = 0;
        partial = csum_continue(partial, ph.udp, UDP_HEADER_LEN + n);
        ph.udp->udp_csum = csum_finish(partial);
        if (!ph.udp->udp_csum) {
            ph.udp->udp_csum = htons(0xffff);
        }
    }
    return part;
}

/* Handles a multi-key retrieval 'req' in 'pkt' whose keys map to the
 * backends in 'idx' (at least two distinct ones): one request per backend,
 * or the policy if that fails. */
static void
mc_split(struct mc_tx *tx, struct dp_packet *pkt, const struct mc_headers *h,
         const struct kairo_mc_request *req, const int *idx)
{
    struct netdev_kairo_mc *dev = tx->dev;
    struct dp_packet *parts[KAIRO_MC_MAX_KEYS];
    int part_idx[KAIRO_MC_MAX_KEYS];
    uint64_t done = 0;
    size_t n_parts = 0;

    for (size_t i = 0; i < req->n_keys; i++) {
        uint64_t mask = 0;

        if (done & (UINT64_C(1) << i)) {
            continue;
        }
        for (size_t j = i; j < req->n_keys; j++) {
            if (idx[j] == idx[i]) {
                mask |= UINT64_C(1) << j;
            }
        }
        done |= mask;

        parts[n_parts] = mc_build_part(pkt, h, req, mask);
        if (!parts[n_parts]) {
            for (size_t k = 0; k < n_parts; k++) {
                dp_packet_delete(parts[k]);
            }
            mc_unsteered(tx, pkt, MC_R_SPLIT_FAILED);
            return;
        }
        part_idx[n_parts++] = idx[i];
    }

    COVERAGE_INC(kairo_mc_split);
    mc_inc(&dev->counters.splits);
    mc_add(&dev->counters.split_requests, n_parts);
    for (size_t k = 0; k < n_parts; k++) {
        struct mc_headers ph;

        ovs_assert(!mc_parse_headers(parts[k], &ph));
        mc_steer(tx, parts[k], &ph, part_idx[k],
                 req->is_read, req->is_write, true);
    }
    dp_packet_delete(pkt);
}

/* Handles the pipelined datagram in 'pkt', whose first command is 'first'.
 * Steers it whole if every key maps to one backend. */
static void
mc_pipeline(struct mc_tx *tx, struct dp_packet *pkt, struct mc_headers *h,
            const struct kairo_mc_request *first)
{
    const struct mc_state *state = tx->state;
    struct kairo_mc_request next;
    const struct kairo_mc_request *req = first;
    unsigned int n_reads = 0, n_writes = 0;
    bool awaits_reply = false;
    int backend = -1;

    for (;;) {
        if (!req->n_keys && req->op != KAIRO_MC_OP_MN
            && req->op != KAIRO_MC_OP_NOOP) {
            mc_unsteered(tx, pkt, MC_R_PIPELINE_MIXED);
            return;
        }
        for (size_t i = 0; i < req->n_keys; i++) {
            int idx = mc_route(state, &req->keys[i]);

            if (idx < 0) {
                mc_unsteered(tx, pkt, MC_R_NO_BACKEND);
                return;
            } else if (backend < 0) {
                backend = idx;
            } else if (backend != idx) {
                mc_unsteered(tx, pkt, MC_R_PIPELINE_MIXED);
                return;
            }
        }
        n_reads += req->is_read;
        n_writes += req->is_write;
        awaits_reply = awaits_reply || !req->noreply;
        if (state->pool->cache) {
            mc_cache_snoop(tx, req);
        }

        if (req->cmd_end >= h->payload_len) {
            break;
        }
        enum kairo_mc_error error = kairo_mc_parse_next(h->payload,
                                                        h->payload_len,
                                                        req->cmd_end, &next);
        if (error) {
            mc_unsteered(tx, pkt, (enum mc_reason) error);
            return;
        }
        req = &next;
    }

    if (backend < 0) {
        mc_unsteered(tx, pkt, MC_R_NO_KEY);
        return;
    }
    COVERAGE_INC(kairo_mc_pipelined);
    mc_inc(&tx->dev->counters.pipelined);
    mc_steer(tx, pkt, h, backend, n_reads, n_writes, awaits_reply);
}

/* Handles the request in 'pkt' (headers 'h'). */
static void
mc_request(struct mc_tx *tx, struct dp_packet *pkt, struct mc_headers *h)
{
    const struct mc_state *state = tx->state;
    struct kairo_mc_request req;
    enum kairo_mc_error error;
    int idx[KAIRO_MC_MAX_KEYS];
    bool expect = false;
    bool same = true;

    error = kairo_mc_parse_request(h->payload, h->payload_len, &req);
    if (error && error != KAIRO_MC_ERR_PIPELINED) {
        static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);

        VLOG_INFO_RL(&rl, "%s: malformed memcached request (%s)",
                     netdev_get_name(&tx->dev->up),
                     kairo_mc_error_to_string(error));
        mc_unsteered(tx, pkt, (enum mc_reason) error);
        return;
    }
    if (!state->ring) {
        mc_unsteered(tx, pkt, MC_R_NO_BACKEND);
        return;
    }
    if (error == KAIRO_MC_ERR_PIPELINED) {
        mc_pipeline(tx, pkt, h, &req);
        return;
    }
    if (state->pool->cache) {
        mc_cache_snoop(tx, &req);
        if (req.is_read && !req.is_write
            && mc_cache_answer(tx, &pkt, h, &req, &expect) == MC_ANSWER_ALL) {
            return;
        }
    }
    if (!req.n_keys) {
        mc_unsteered(tx, pkt, MC_R_NO_KEY);
        return;
    }

    for (size_t i = 0; i < req.n_keys; i++) {
        idx[i] = mc_route(state, &req.keys[i]);
        if (idx[i] < 0) {
            mc_unsteered(tx, pkt, MC_R_NO_BACKEND);
            return;
        }
        same = same && idx[i] == idx[0];
        if (!same && !mc_is_splittable(&req)) {
            /* Only the first key of other commands matters. */
            same = true;
            break;
        }
    }
    if (expect) {
        /* One reply per backend the get goes to. */
        uint64_t backends = 0;
        unsigned int n_replies = 1;

        if (!same) {
            for (size_t i = 0; i < req.n_keys && idx[i] < 64; i++) {
                backends |= UINT64_C(1) << idx[i];
            }
            n_replies = count_1bits(backends);
        }
        mc_cache_expect(tx, h, &req, n_replies);
    }
    if (same) {
        mc_steer(tx, pkt, h, idx[0], req.is_read, req.is_write,
                 !req.noreply);
    } else {
        mc_split(tx, pkt, h, &req, idx);
    }
}

/* Handles one packet sent to 'dev' under 'state' (may be NULL). */
static void
mc_process(struct mc_tx *tx, struct dp_packet *pkt)
{
    struct netdev_kairo_mc *dev = tx->dev;
    const struct mc_state *state = tx->state;
    const struct kairo_mc_pool_config *cfg;
    enum mc_reason reason;
    struct mc_headers h;

    reason = mc_parse_headers(pkt, &h);
    if (reason) {
        mc_unsteered(tx, pkt, reason);
        return;
    }
    if (!state) {
        mc_unsteered(tx, pkt, MC_R_NO_BACKEND);
        return;
    }
    cfg = &state->pool->cfg;

    /* Replies. */
    if (cfg->rewrite == KAIRO_MC_REWRITE_IP) {
        uint16_t sport = ntohs(h.udp->udp_src);
        int idx = (state->pool->reply_port && sport != state->pool->reply_port
                   ? -1
                   : mc_pool_find_addr(state->pool,
                                       get_16aligned_be32(&h.ip->ip_src),
                                       sport));
        if (idx >= 0) {
            if (state->pool->cache) {
                mc_cache_fill(tx, &h);
            }
            h.eth->eth_src = cfg->vmac;
            mc_set_addr(&h, &h.ip->ip_src, cfg->vip, &h.udp->udp_src,
                        htons(cfg->vport));
            dp_packet_reset_offload(pkt);
            tx->replies++;
            mc_tx_count_backend(tx, idx,
                                (struct mc_tx_backend) { .replies = 1 });
            mc_tx_queue(tx, mc_queue_for(dev, idx), pkt);
            return;
        }
    } else if (h.udp->udp_src == htons(cfg->vport)
               && h.udp->udp_dst != htons(cfg->vport)) {
        int idx = mc_pool_find_mac(state->pool, h.eth->eth_src);

        if (idx >= 0) {
            mc_tx_count_backend(tx, idx,
                                (struct mc_tx_backend) { .replies = 1 });
        }
        if (state->pool->cache) {
            mc_cache_fill(tx, &h);
        }
        COVERAGE_INC(kairo_mc_reply_passed);
        mc_inc(&dev->counters.replies_passed);
        mc_tx_queue(tx, 0, pkt);
        return;
    }

    /* Requests. */
    if (h.udp->udp_dst != htons(cfg->vport)
        || (cfg->has_vip && get_16aligned_be32(&h.ip->ip_dst) != cfg->vip)) {
        mc_unsteered(tx, pkt, MC_R_NOT_MEMCACHED);
        return;
    }
    mc_request(tx, pkt, &h);
}

/* netdev provider functions. */

static struct netdev *
netdev_kairo_mc_alloc(void)
{
    struct netdev_kairo_mc *dev = xzalloc(sizeof *dev);

    return &dev->up;
}

static int
netdev_kairo_mc_construct(struct netdev *netdev)
{
    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(netdev);
    uint32_t h = hash_string(netdev_get_name(netdev), 0);

    ovsrcu_init(&dev->state, NULL);
    atomic_init(&dev->queue_len, KAIRO_MC_POOL_DEFAULT_QUEUE_LEN);
    atomic_init(&dev->n_active_rxq, 1);
    for (size_t i = 0; i < KAIRO_MC_POOL_MAX_RXQ; i++) {
        struct mc_queue *q = &dev->queues[i];

        ovs_mutex_init(&q->mutex);
        q->pkts = xcalloc(KAIRO_MC_POOL_MAX_QUEUE_LEN, sizeof *q->pkts);
        q->head = q->count = 0;
        q->waiting = false;
        q->seq = seq_create();
    }
    smap_init(&dev->options);
    dev->requested_n_rxq = 1;
    kairo_mc_health_init(&dev->health, &(struct kairo_mc_health_config) {
                             .timeout_ms = 0 }, 0);

    ovs_mutex_init(&dev->mutex);
    /* A locally administered unicast MAC derived from the name. */
    dev->hwaddr = (struct eth_addr) ETH_ADDR_C(02, 6b, 00, 00, 00, 00);
    dev->hwaddr.ea[2] = h >> 24;
    dev->hwaddr.ea[3] = h >> 16;
    dev->hwaddr.ea[4] = h >> 8;
    dev->hwaddr.ea[5] = h;
    dev->flags = NETDEV_UP;

    ovs_mutex_lock(&mc_devs_mutex);
    ovs_list_push_back(&mc_devs, &dev->list_node);
    ovs_mutex_unlock(&mc_devs_mutex);
    return 0;
}

static void
netdev_kairo_mc_destruct(struct netdev *netdev)
{
    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(netdev);
    struct mc_state *state;

    ovs_mutex_lock(&mc_devs_mutex);
    ovs_list_remove(&dev->list_node);
    ovs_mutex_unlock(&mc_devs_mutex);

    state = ovsrcu_get_protected(struct mc_state *, &dev->state);
    ovsrcu_set(&dev->state, NULL);
    if (state) {
        ovsrcu_postpone(mc_state_destroy, state);
    }
    for (size_t i = 0; i < KAIRO_MC_POOL_MAX_RXQ; i++) {
        struct mc_queue *q = &dev->queues[i];

        mc_queue_drain(q);
        free(q->pkts);
        seq_destroy(q->seq);
        ovs_mutex_destroy(&q->mutex);
    }
    smap_destroy(&dev->options);
    kairo_mc_health_destroy(&dev->health);
    ovs_mutex_destroy(&dev->mutex);
}

static void
netdev_kairo_mc_dealloc(struct netdev *netdev)
{
    free(netdev_kairo_mc_cast(netdev));
}

static int
netdev_kairo_mc_get_config(const struct netdev *netdev, struct smap *args)
{
    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(netdev);

    /* Main thread only, as 'options' is. */
    smap_clone(args, &dev->options);
    return 0;
}

/* Returns a copy of the administrative liveness of the backends of 'cfg',
 * taken from 'old' for backends it also has; new backends are up.
 * Initializes 'health' for 'cfg', carrying over from 'old_health' (the
 * liveness of the backends of 'old') what it knows of the same
 * backends. */
static bool *
mc_carry_liveness(const struct kairo_mc_pool_config *cfg,
               const struct mc_state *old,
               const struct kairo_mc_health *old_health,
               struct kairo_mc_health *health)
{
    bool *alive = xmalloc(MAX(cfg->n_backends, 1) * sizeof *alive);
    struct kairo_mc_health_config hcfg = {
        .timeout_ms = cfg->timeout,
        .failure_limit = cfg->server_failure_limit,
        .retry_ms = cfg->server_retry_timeout,
    };

    kairo_mc_health_init(health, &hcfg, cfg->n_backends);
    for (size_t i = 0; i < cfg->n_backends; i++) {
        alive[i] = true;
        for (size_t j = 0; old && j < old->pool->cfg.n_backends; j++) {
            if (mc_backend_same(&cfg->backends[i],
                                &old->pool->cfg.backends[j])) {
                alive[i] = old->alive[j];
                if (j < old_health->n_backends) {
                    kairo_mc_health_carry(health, i, old_health, j);
                }
                break;
            }
        }
    }
    return alive;
}

static int
netdev_kairo_mc_set_config(struct netdev *netdev, const struct smap *args,
                           char **errp)
{
    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(netdev);
    const char *name = netdev_get_name(netdev);
    struct kairo_mc_pool_config cfg;
    struct kairo_mc_health health;
    struct mc_state *old, *state;
    struct mc_pool *pool;
    char *error = NULL;
    bool *alive;
    int retval;

    old = ovsrcu_get_protected(struct mc_state *, &dev->state);
    if (old && smap_equal(args, &dev->options)) {
        /* OVS's bridge applies every Interface's options again on each
         * database change: nothing to do. */
        return 0;
    }

    retval = kairo_mc_pool_parse(args, &cfg, &error);
    if (retval) {
        *errp = xasprintf("%s: %s", name, error);
        VLOG_WARN("%s", *errp);
        free(error);
        return retval;
    }

    alive = mc_carry_liveness(&cfg, old, &dev->health, &health);
    pool = mc_pool_create(&cfg, old ? old->pool : NULL);
    retval = mc_state_create(pool, alive, &health, &state, &error);
    free(alive);
    mc_pool_unref(pool);   /* The state holds it now, if it was built. */
    if (retval) {
        kairo_mc_health_destroy(&health);
        *errp = xasprintf("%s: %s", name, error);
        VLOG_WARN("%s", *errp);
        free(error);
        return retval;
    }
    kairo_mc_health_destroy(&dev->health);
    dev->health = health;
    dev->health_next = time_msec();

    pool = state->pool;
    atomic_store_relaxed(&dev->queue_len, pool->cfg.queue_len);
    if (pool->cfg.n_rxq != dev->requested_n_rxq) {
        dev->requested_n_rxq = pool->cfg.n_rxq;
        netdev_request_reconfigure(netdev);
    }
    mc_state_publish(dev, state);
    smap_destroy(&dev->options);
    smap_clone(&dev->options, args);

    VLOG_DBG("%s: %"PRIuSIZE" backends, %s, %s, rewrite %s", name,
             pool->cfg.n_backends,
             kairo_ketama_distribution_to_string(pool->cfg.distribution),
             kairo_mc_hash_to_string(pool->cfg.hash),
             kairo_mc_rewrite_to_string(pool->cfg.rewrite));
    return 0;
}

static int
netdev_kairo_mc_reconfigure(struct netdev *netdev)
{
    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(netdev);
    unsigned int n = dev->requested_n_rxq;

    /* The datapath neither sends nor receives during this call. */
    for (unsigned int i = n; i < KAIRO_MC_POOL_MAX_RXQ; i++) {
        mc_queue_drain(&dev->queues[i]);
    }
    netdev->n_rxq = n;
    atomic_store_relaxed(&dev->n_active_rxq, n);
    return 0;
}

static int
netdev_kairo_mc_send(struct netdev *netdev, int qid OVS_UNUSED,
                     struct dp_packet_batch *batch,
                     bool concurrent_txq OVS_UNUSED)
{
    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(netdev);
    unsigned long long bytes = 0;
    struct dp_packet *pkt;
    struct mc_tx tx;

    mc_tx_init(&tx, dev);

    DP_PACKET_BATCH_FOR_EACH (i, pkt, batch) {
        bytes += dp_packet_size(pkt);
        mc_process(&tx, pkt);
    }
    mc_tx_flush(&tx);
    mc_add(&dev->counters.tx_packets, dp_packet_batch_size(batch));
    mc_add(&dev->counters.tx_bytes, bytes);
    dp_packet_batch_init(batch);
    return 0;
}

static int
netdev_kairo_mc_set_etheraddr(struct netdev *netdev,
                              const struct eth_addr mac)
{
    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(netdev);

    ovs_mutex_lock(&dev->mutex);
    dev->hwaddr = mac;
    ovs_mutex_unlock(&dev->mutex);
    netdev_change_seq_changed(netdev);
    return 0;
}

static int
netdev_kairo_mc_get_etheraddr(const struct netdev *netdev,
                              struct eth_addr *mac)
{
    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(netdev);

    ovs_mutex_lock(&dev->mutex);
    *mac = dev->hwaddr;
    ovs_mutex_unlock(&dev->mutex);
    return 0;
}

static int
netdev_kairo_mc_get_stats(const struct netdev *netdev,
                          struct netdev_stats *stats)
{
    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(netdev);
    const struct mc_counters *c = &dev->counters;

    stats->rx_packets = mc_read(&c->rx_packets);
    stats->rx_bytes = mc_read(&c->rx_bytes);
    stats->tx_packets = mc_read(&c->tx_packets);
    stats->tx_bytes = mc_read(&c->tx_bytes);
    stats->tx_dropped = mc_read(&c->dropped) + mc_read(&c->queue_full);
    return 0;
}

static int
netdev_kairo_mc_update_flags(struct netdev *netdev, enum netdev_flags off,
                             enum netdev_flags on,
                             enum netdev_flags *old_flagsp)
{
    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(netdev);

    if ((off | on) & ~(NETDEV_UP | NETDEV_PROMISC)) {
        return EINVAL;
    }
    ovs_mutex_lock(&dev->mutex);
    *old_flagsp = dev->flags;
    dev->flags |= on;
    dev->flags &= ~off;
    ovs_mutex_unlock(&dev->mutex);
    if (*old_flagsp != ((*old_flagsp | on) & ~off)) {
        netdev_change_seq_changed(netdev);
    }
    return 0;
}

static struct netdev_rxq *
netdev_kairo_mc_rxq_alloc(void)
{
    struct netdev_rxq_kairo_mc *rx = xzalloc(sizeof *rx);

    return &rx->up;
}

static int
netdev_kairo_mc_rxq_construct(struct netdev_rxq *rxq OVS_UNUSED)
{
    return 0;
}

static void
netdev_kairo_mc_rxq_destruct(struct netdev_rxq *rxq OVS_UNUSED)
{
}

static void
netdev_kairo_mc_rxq_dealloc(struct netdev_rxq *rxq)
{
    free(CONTAINER_OF(rxq, struct netdev_rxq_kairo_mc, up));
}

static int
netdev_kairo_mc_rxq_recv(struct netdev_rxq *rxq,
                         struct dp_packet_batch *batch, int *qfill)
{
    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(rxq->netdev);
    struct mc_queue *q = &dev->queues[rxq->queue_id];
    unsigned long long bytes = 0;
    size_t n = 0;

    dp_packet_batch_init(batch);
    ovs_mutex_lock(&q->mutex);
    while (q->count && n < NETDEV_MAX_BURST) {
        struct dp_packet *pkt = q->pkts[q->head];

        q->head = (q->head + 1) % KAIRO_MC_POOL_MAX_QUEUE_LEN;
        q->count--;
        bytes += dp_packet_size(pkt);
        dp_packet_batch_add(batch, pkt);
        n++;
    }
    if (qfill) {
        *qfill = q->count;
    }
    ovs_mutex_unlock(&q->mutex);

    if (!n) {
        return EAGAIN;
    }
    mc_add(&dev->counters.rx_packets, n);
    mc_add(&dev->counters.rx_bytes, bytes);
    return 0;
}

/* Returns true if 'q' is empty.  If 'wait', the caller is about to wait for
 * that to change, on 'q->seq' read before this call. */
static bool
mc_queue_is_empty(struct mc_queue *q, bool wait)
{
    bool empty;

    ovs_mutex_lock(&q->mutex);
    empty = !q->count;
    if (empty && wait) {
        q->waiting = true;
    }
    ovs_mutex_unlock(&q->mutex);
    return empty;
}

static void
netdev_kairo_mc_rxq_wait(struct netdev_rxq *rxq)
{
    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(rxq->netdev);
    struct mc_queue *q = &dev->queues[rxq->queue_id];
    uint64_t seq = seq_read(q->seq);

    if (mc_queue_is_empty(q, true)) {
        seq_wait(q->seq, seq);
    } else {
        poll_immediate_wake();
    }
}

static int
netdev_kairo_mc_rxq_drain(struct netdev_rxq *rxq)
{
    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(rxq->netdev);

    mc_queue_drain(&dev->queues[rxq->queue_id]);
    return 0;
}

/* Backend liveness (main thread). */

/* Publishes for 'dev' a state with the pool of 'state' and a ring rebuilt
 * for the administrative liveness 'alive' (copied) and the ejections in
 * 'dev->health', and empties the pool's cache, whose keys may have moved.
 * Returns the new state. */
static struct mc_state *
mc_state_relive(struct netdev_kairo_mc *dev, const struct mc_state *state,
                const bool *alive)
{
    size_t n = state->pool->cfg.n_backends;
    struct mc_state *new_state = xzalloc(sizeof *new_state);
    bool *live = mc_ring_liveness(n, alive, &dev->health);

    new_state->alive = xmemdup(alive, n * sizeof *alive);
    kairo_ketama_rebuild(state->ring, live, &new_state->ring);
    free(live);
    COVERAGE_INC(kairo_mc_ring_built);
    ovs_refcount_ref(&state->pool->ref);
    new_state->pool = state->pool;
    mc_state_publish(dev, new_state);
    if (new_state->pool->cache) {
        /* Keys move: start again from what the new owners answer. */
        mc_cache_flush__(new_state->pool->cache, time_msec(), 0);
    }
    return new_state;
}

/* Logs and counts 'event', which kairo_mc_health_sample() reported for
 * backend 'idx' of 'dev' under 'state'. */
static void
mc_health_report(const struct netdev_kairo_mc *dev,
                 const struct mc_state *state, size_t idx,
                 enum kairo_mc_health_event event)
{
    static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 20);
    const struct kairo_mc_pool_config *cfg = &state->pool->cfg;
    const struct kairo_mc_health_backend *b = &dev->health.backends[idx];
    struct ds label = DS_EMPTY_INITIALIZER;

    mc_put_backend_label(&label, state, idx);
    switch (event) {
    case KAIRO_MC_HEALTH_FAILURE:
        COVERAGE_INC(kairo_mc_backend_failure);
        VLOG_INFO_RL(&rl, "%s: backend %s left requests unanswered for %u "
                     "ms (failure %u of %u)", netdev_get_name(&dev->up),
                     ds_cstr(&label), cfg->timeout, b->failures,
                     cfg->server_failure_limit);
        break;
    case KAIRO_MC_HEALTH_EJECT:
        COVERAGE_INC(kairo_mc_backend_failure);
        COVERAGE_INC(kairo_mc_backend_ejected);
        VLOG_WARN("%s: backend %s ejected for %u ms: requests unanswered for "
                  "%u ms, %u times in a row%s%s", netdev_get_name(&dev->up),
                  ds_cstr(&label), cfg->server_retry_timeout, cfg->timeout,
                  cfg->server_failure_limit,
                  cfg->auto_eject ? "" : " (auto_eject is false: routing "
                  "unchanged)",
                  cfg->rewrite == KAIRO_MC_REWRITE_MAC
                  && !mc_read(&state->pool->stats[idx].replies)
                  ? "; no reply from it ever passed through the port (with "
                  "rewrite=mac, send backends' replies to the port)" : "");
        break;
    case KAIRO_MC_HEALTH_RETRY:
        COVERAGE_INC(kairo_mc_backend_retried);
        VLOG_INFO("%s: backend %s retried after %u ms",
                  netdev_get_name(&dev->up), ds_cstr(&label),
                  cfg->server_retry_timeout);
        break;
    case KAIRO_MC_HEALTH_RECOVER:
        COVERAGE_INC(kairo_mc_backend_recovered);
        VLOG_INFO_RL(&rl, "%s: backend %s answers again",
                     netdev_get_name(&dev->up), ds_cstr(&label));
        break;
    case KAIRO_MC_HEALTH_NONE:
        break;
    }
    ds_destroy(&label);
}

/* Samples the liveness of every backend of 'dev' at 'now', and rebuilds
 * the ring if an ejection began or ended and auto_eject is on. */
static void
mc_health_run(struct netdev_kairo_mc *dev, long long now)
{
    const struct mc_state *state = mc_get_state(dev);
    bool rebuild = false;

    dev->health_next = now + kairo_mc_health_period(&dev->health);
    if (!state || state->pool->cfg.n_backends != dev->health.n_backends) {
        return;
    }
    for (size_t i = 0; i < dev->health.n_backends; i++) {
        const struct mc_backend_stats *s = &state->pool->stats[i];
        enum kairo_mc_health_event event;

        event = kairo_mc_health_sample(&dev->health, i, mc_read(&s->awaited),
                                       mc_read(&s->replies), now);
        mc_health_report(dev, state, i, event);
        if ((event == KAIRO_MC_HEALTH_EJECT
             || event == KAIRO_MC_HEALTH_RETRY)
            && state->pool->cfg.auto_eject && state->alive[i]) {
            rebuild = true;
        }
    }
    if (rebuild) {
        mc_state_relive(dev, state, state->alive);
    }
}

/* netdev_class 'run': samples the liveness of the backends of the ports of
 * 'netdev_class' that track it, when due. */
static void
netdev_kairo_mc_run(const struct netdev_class *netdev_class)
{
    long long now = time_msec();
    struct netdev_kairo_mc *dev;

    ovs_mutex_lock(&mc_devs_mutex);
    LIST_FOR_EACH (dev, list_node, &mc_devs) {
        if (dev->up.netdev_class == netdev_class
            && kairo_mc_health_enabled(&dev->health)
            && now >= dev->health_next) {
            mc_health_run(dev, now);
        }
    }
    ovs_mutex_unlock(&mc_devs_mutex);
}

/* netdev_class 'wait': wakes the main loop when a port of 'netdev_class'
 * is due to sample its backends' liveness. */
static void
netdev_kairo_mc_wait(const struct netdev_class *netdev_class)
{
    struct netdev_kairo_mc *dev;

    ovs_mutex_lock(&mc_devs_mutex);
    LIST_FOR_EACH (dev, list_node, &mc_devs) {
        if (dev->up.netdev_class == netdev_class
            && kairo_mc_health_enabled(&dev->health)) {
            poll_timer_wait_until(dev->health_next);
        }
    }
    ovs_mutex_unlock(&mc_devs_mutex);
}

/* The class of a kairo-memcached netdev of type 'TYPE': "kairo-memcached",
 * whose receive queues the datapath's main thread polls (woken by
 * rxq_wait()), or "kairo-memcached-pmd", whose receive queues PMD threads
 * busy-poll, for datapaths whose other ports are PMD ports (DPDK). */
#define NETDEV_KAIRO_MC_CLASS(TYPE, IS_PMD)                  \
    {                                                        \
        .type = TYPE,                                        \
        .is_pmd = IS_PMD,                                    \
        .run = netdev_kairo_mc_run,                          \
        .wait = netdev_kairo_mc_wait,                        \
        .alloc = netdev_kairo_mc_alloc,                      \
        .construct = netdev_kairo_mc_construct,              \
        .destruct = netdev_kairo_mc_destruct,                \
        .dealloc = netdev_kairo_mc_dealloc,                  \
        .get_config = netdev_kairo_mc_get_config,            \
        .set_config = netdev_kairo_mc_set_config,            \
        .reconfigure = netdev_kairo_mc_reconfigure,          \
        .send = netdev_kairo_mc_send,                        \
        .set_etheraddr = netdev_kairo_mc_set_etheraddr,      \
        .get_etheraddr = netdev_kairo_mc_get_etheraddr,      \
        .get_stats = netdev_kairo_mc_get_stats,              \
        .update_flags = netdev_kairo_mc_update_flags,        \
        .rxq_alloc = netdev_kairo_mc_rxq_alloc,              \
        .rxq_construct = netdev_kairo_mc_rxq_construct,      \
        .rxq_destruct = netdev_kairo_mc_rxq_destruct,        \
        .rxq_dealloc = netdev_kairo_mc_rxq_dealloc,          \
        .rxq_recv = netdev_kairo_mc_rxq_recv,                \
        .rxq_wait = netdev_kairo_mc_rxq_wait,                \
        .rxq_drain = netdev_kairo_mc_rxq_drain,              \
    }

static const struct netdev_class netdev_kairo_mc_class =
    NETDEV_KAIRO_MC_CLASS("kairo-memcached", false);
static const struct netdev_class netdev_kairo_mc_pmd_class =
    NETDEV_KAIRO_MC_CLASS("kairo-memcached-pmd", true);

/* dpif_netdev_rx_pending_hook: whether 'netdev' is a kairo-memcached port
 * (polled by the main thread) whose receive queues hold packets.  What a
 * port sends into it (steered requests, rewritten replies, answers from the
 * cache) then leaves it in the same run of the datapath, not one main loop
 * later: one pass through the switch costs no extra iteration of
 * ovs-vswitchd's main loop. */
static bool
netdev_kairo_mc_rx_pending(const struct netdev *netdev)
{
    if (netdev_get_class(netdev) != &netdev_kairo_mc_class) {
        return false;
    }

    struct netdev_kairo_mc *dev = netdev_kairo_mc_cast(netdev);
    unsigned int n;

    atomic_read_relaxed(&dev->n_active_rxq, &n);
    for (unsigned int i = 0; i < n && i < KAIRO_MC_POOL_MAX_RXQ; i++) {
        if (!mc_queue_is_empty(&dev->queues[i], false)) {
            COVERAGE_INC(kairo_mc_rx_repass);
            return true;
        }
    }
    return false;
}

/* Commands (main thread). */

/* Returns the kairo-memcached netdev named 'name', or NULL. */
static struct netdev_kairo_mc *
mc_find_dev(const char *name)
{
    struct netdev_kairo_mc *dev, *found = NULL;

    ovs_mutex_lock(&mc_devs_mutex);
    LIST_FOR_EACH (dev, list_node, &mc_devs) {
        if (!strcmp(netdev_get_name(&dev->up), name)) {
            found = dev;
            break;
        }
    }
    ovs_mutex_unlock(&mc_devs_mutex);
    return found;
}



/* One value of a cache, for the hottest keys and kairo/mc-cache-dump. */
struct mc_cache_row {
    char *key;                  /* Printable key (malloc()ed). */
    uint64_t hits;              /* Lookups it answered. */
    size_t bytes;               /* Value length. */
    uint32_t flags;             /* Client flags. */
    long long ttl_ms;           /* Time left. */
};

/* Gathers rows for kairo_mc_cache_for_each(). */
struct mc_cache_rows {
    struct mc_cache_row *rows;  /* The rows. */
    size_t n, allocated;        /* Used and allocated rows. */
    long long now;              /* For 'ttl_ms'. */
};

static void
mc_cache_collect(const struct kairo_mc_cache_item *item, void *rows_)
{
    struct mc_cache_rows *rows = rows_;
    struct mc_cache_row *row;

    if (rows->n >= rows->allocated) {
        rows->rows = x2nrealloc(rows->rows, &rows->allocated,
                                sizeof *rows->rows);
    }
    row = &rows->rows[rows->n++];
    row->key = xmemdup0((const char *) item->key, item->key_len);
    for (char *p = row->key; *p; p++) {
        if ((unsigned char) *p < 0x21 || (unsigned char) *p >= 0x7f) {
            *p = '?';
        }
    }
    row->hits = item->hits;
    row->bytes = item->data_len;
    row->flags = item->flags;
    row->ttl_ms = item->expires_ms - rows->now;
}

/* Orders rows by hits, most first, then by key. */
static int
mc_cache_row_cmp(const void *a_, const void *b_)
{
    const struct mc_cache_row *a = a_, *b = b_;

    if (a->hits != b->hits) {
        return a->hits > b->hits ? -1 : 1;
    }
    return strcmp(a->key, b->key);
}

/* Collects the values in the cache of 'pool', which must have one, sorted
 * by hits, into '*rows' and the cache's counters into '*stats'. */
static void
mc_cache_snapshot(const struct mc_pool *pool, struct mc_cache_rows *rows,
                  struct kairo_mc_cache_stats *stats)
{
    memset(rows, 0, sizeof *rows);
    rows->now = time_msec();
    ovs_mutex_lock(&pool->cache->mutex);
    kairo_mc_cache_for_each(pool->cache->cache, mc_cache_collect, rows);
    kairo_mc_cache_get_stats(pool->cache->cache, stats);
    ovs_mutex_unlock(&pool->cache->mutex);
    if (rows->n) {
        qsort(rows->rows, rows->n, sizeof *rows->rows, mc_cache_row_cmp);
    }
}

static void
mc_cache_rows_destroy(struct mc_cache_rows *rows)
{
    for (size_t i = 0; i < rows->n; i++) {
        free(rows->rows[i].key);
    }
    free(rows->rows);
}

/* Number of hottest keys kairo/mc-show lists. */
#define MC_SHOW_HOTTEST 5

/* Appends the cache part of kairo/mc-show for 'state', whose pool has a
 * cache, and the port counters 'c', to 'out'. */
static void
mc_show_cache(struct ds *out, const struct mc_state *state,
              const struct mc_counters *c)
{
    const struct kairo_mc_pool_config *cfg = &state->pool->cfg;
    struct kairo_mc_cache_stats st;
    struct mc_cache_rows rows;

    mc_cache_snapshot(state->pool, &rows, &st);
    ds_put_format(out, "  cache: %"PRIuSIZE" values, %"PRIuSIZE" hints, "
                  "%"PRIuSIZE" of %"PRIu64" bytes, threshold %u, max_ttl "
                  "%us, settle %ums, max_reply %u, clients",
                  st.n_values, st.n_hints, st.bytes, cfg->cache_size,
                  cfg->cache_threshold, cfg->cache_max_ttl,
                  cfg->cache_settle, cfg->cache_max_reply);
    for (size_t i = 0; i < cfg->n_cache_clients; i++) {
        const struct kairo_mc_subnet *sn = &cfg->cache_clients[i];

        ds_put_format(out, "%s"IP_FMT"/%d", i ? "," : " ", IP_ARGS(sn->ip),
                      ip_count_cidr_bits(sn->mask));
    }
    ds_put_char(out, '\n');
    ds_put_format(out, "  cache counters: hits %"PRIu64" misses %"PRIu64
                  " answered %llu partial %llu fills %"PRIu64
                  " invalidations %"PRIu64" evictions %"PRIu64
                  " expirations %"PRIu64" flushes %"PRIu64" reassembled %"
                  PRIu64"\n",
                  st.hits, st.misses, mc_read(&c->cache_answered),
                  mc_read(&c->cache_partial), st.fills[KAIRO_MC_FILL_OK],
                  st.invalidations, st.evictions, st.expirations,
                  st.flushes, st.reassembled);
    ds_put_cstr(out, "  cache refused:");
    for (int r = 0; r < MC_N_CACHE_REFUSALS; r++) {
        unsigned long long n = mc_read(&c->cache_refused[r]);

        ds_put_format(out, " %s %llu", mc_cache_refusal_to_string(r), n);
    }
    for (int f = 1; f < KAIRO_MC_N_FILLS; f++) {
        ds_put_format(out, " fill-%s %"PRIu64,
                      kairo_mc_cache_fill_to_string(f), st.fills[f]);
    }
    ds_put_format(out, " flush-unsteered %llu ambiguous-id %"PRIu64
                  " reassembly-dropped %"PRIu64"\n",
                  mc_read(&c->cache_flush_unsteered), st.expect_ambiguous,
                  st.reassembly_dropped);
    ds_put_cstr(out, "  cache hottest:");
    for (size_t i = 0; i < rows.n && i < MC_SHOW_HOTTEST; i++) {
        ds_put_format(out, " %s (%"PRIu64")", rows.rows[i].key,
                      rows.rows[i].hits);
    }
    ds_put_cstr(out, rows.n ? "\n" : " none\n");
    mc_cache_rows_destroy(&rows);
}

/* Appends the liveness line of kairo/mc-show for backend 'idx' of
 * 'health' to 'out'. */
static void
mc_show_health(struct ds *out, const struct kairo_mc_health *health,
               size_t idx)
{
    const struct kairo_mc_health_backend *b = &health->backends[idx];

    if (b->ejected) {
        ds_put_format(out, "      liveness: ejected, retry in %lld ms",
                      MAX(b->retry_at - time_msec(), 0));
    } else if (b->failures) {
        ds_put_format(out, "      liveness: failing (%u of %u)",
                      b->failures, health->cfg.failure_limit);
    } else {
        ds_put_cstr(out, "      liveness: ok");
    }
    ds_put_format(out, ", failures %"PRIu64", ejections %"PRIu64"\n",
                  b->n_failures, b->n_ejections);
}

/* Appends the kairo/mc-show text of 'dev' to 'out'. */
static void
mc_show_dev(struct ds *out, const struct netdev_kairo_mc *dev)
{
    const struct mc_state *state = mc_get_state(dev);
    const struct mc_counters *c = &dev->counters;
    bool any = false;

    ds_put_format(out, "%s:\n", netdev_get_name(&dev->up));
    if (state) {
        const struct kairo_mc_pool_config *cfg = &state->pool->cfg;
        unsigned int n_rxq;

        atomic_read_relaxed(&CONST_CAST(struct netdev_kairo_mc *,
                                        dev)->n_active_rxq, &n_rxq);
        ds_put_format(out, "  distribution %s, hash %s, hash_tag %s, "
                      "auto_eject %s\n",
                      kairo_ketama_distribution_to_string(cfg->distribution),
                      kairo_mc_hash_to_string(cfg->hash),
                      cfg->hash_tag ? cfg->hash_tag : "none",
                      cfg->auto_eject ? "true" : "false");
        ds_put_format(out, "  rewrite %s", kairo_mc_rewrite_to_string(
                          cfg->rewrite));
        if (cfg->has_vip) {
            ds_put_format(out, ", vip "IP_FMT, IP_ARGS(cfg->vip));
        }
        ds_put_format(out, ", vport %"PRIu16, cfg->vport);
        if (cfg->has_vmac) {
            ds_put_format(out, ", vmac "ETH_ADDR_FMT,
                          ETH_ADDR_ARGS(cfg->vmac));
        }
        ds_put_format(out, ", bad-request %s, rxqs %u, queue_len %u\n",
                      kairo_mc_policy_to_string(cfg->bad_request), n_rxq,
                      cfg->queue_len);
        if (cfg->timeout) {
            ds_put_format(out, "  liveness: timeout %u ms, "
                          "server_failure_limit %u, server_retry_timeout %u "
                          "ms\n", cfg->timeout, cfg->server_failure_limit,
                          cfg->server_retry_timeout);
        }
        ds_put_format(out, "  backends: %"PRIuSIZE" (%"PRIuSIZE" live), "
                      "ring points: %"PRIuSIZE"\n", cfg->n_backends,
                      state->ring ? kairo_ketama_n_live(state->ring) : 0,
                      state->ring ? kairo_ketama_n_points(state->ring) : 0);
        for (size_t i = 0; i < cfg->n_backends; i++) {
            const struct kairo_mc_backend *b = &cfg->backends[i];
            const struct mc_backend_stats *s = &state->pool->stats[i];

            ds_put_cstr(out, "    ");
            mc_put_backend_label(out, state, i);
            ds_put_format(out, ": %s:%"PRIu16" "ETH_ADDR_FMT" weight %"PRIu32
                          " %s %s points %"PRIu32" requests %llu reads %llu "
                          "writes %llu replies %llu\n",
                          b->host, b->port, ETH_ADDR_ARGS(b->mac), b->weight,
                          state->alive[i] ? "up" : "down",
                          kairo_ketama_server_is_live(state->ring, i)
                          ? "live" : "ejected",
                          kairo_ketama_server_points(state->ring, i),
                          mc_read(&s->requests), mc_read(&s->reads),
                          mc_read(&s->writes), mc_read(&s->replies));
            if (kairo_mc_health_enabled(&dev->health)) {
                mc_show_health(out, &dev->health, i);
            }
        }
    } else {
        ds_put_cstr(out, "  not configured\n");
    }
    ds_put_format(out, "  counters: steered %llu reads %llu writes %llu "
                  "splits %llu split-requests %llu pipelined %llu\n",
                  mc_read(&c->steered), mc_read(&c->reads),
                  mc_read(&c->writes), mc_read(&c->splits),
                  mc_read(&c->split_requests), mc_read(&c->pipelined));
    ds_put_format(out, "  counters: replies-rewritten %llu replies-passed "
                  "%llu passed %llu dropped %llu queue-full %llu\n",
                  mc_read(&c->replies_rewritten), mc_read(&c->replies_passed),
                  mc_read(&c->passed), mc_read(&c->dropped),
                  mc_read(&c->queue_full));
    if (state && state->pool->cache) {
        mc_show_cache(out, state, c);
    }
    ds_put_cstr(out, "  unsteered:");
    for (int r = 1; r < MC_N_REASONS; r++) {
        unsigned long long n = mc_read(&c->reasons[r]);

        if (n) {
            ds_put_format(out, " %s %llu", mc_reason_to_string(r), n);
            any = true;
        }
    }
    ds_put_cstr(out, any ? "\n" : " none\n");
}

/* Returns the kairo-memcached devices sorted by name, in a malloc()ed
 * array of '*n' elements. */
static struct netdev_kairo_mc **
mc_sorted_devs(size_t *n)
{
    struct netdev_kairo_mc **devs = NULL, *dev;
    size_t allocated = 0;

    *n = 0;
    ovs_mutex_lock(&mc_devs_mutex);
    LIST_FOR_EACH (dev, list_node, &mc_devs) {
        if (*n >= allocated) {
            devs = x2nrealloc(devs, &allocated, sizeof *devs);
        }
        devs[(*n)++] = dev;
    }
    ovs_mutex_unlock(&mc_devs_mutex);

    /* Few ports: an insertion sort is enough. */
    for (size_t i = 1; i < *n; i++) {
        for (size_t j = i; j > 0 && strcmp(netdev_get_name(&devs[j]->up),
                                           netdev_get_name(&devs[j - 1]->up))
                 < 0; j--) {
            struct netdev_kairo_mc *tmp = devs[j];

            devs[j] = devs[j - 1];
            devs[j - 1] = tmp;
        }
    }
    return devs;
}

static void
mc_unixctl_show(struct unixctl_conn *conn, int argc, const char *argv[],
                void *aux OVS_UNUSED)
{
    struct ds out = DS_EMPTY_INITIALIZER;

    if (argc > 1) {
        struct netdev_kairo_mc *dev = mc_find_dev(argv[1]);

        if (!dev) {
            unixctl_command_reply_error(conn, "no such kairo-memcached port");
            return;
        }
        mc_show_dev(&out, dev);
    } else {
        struct netdev_kairo_mc **devs;
        size_t n;

        devs = mc_sorted_devs(&n);
        for (size_t i = 0; i < n; i++) {
            mc_show_dev(&out, devs[i]);
        }
        free(devs);
        if (!n) {
            ds_put_cstr(&out, "no kairo-memcached ports\n");
        }
    }
    unixctl_command_reply(conn, ds_cstr(&out));
    ds_destroy(&out);
}

/* Appends to 'out' where 'key' goes in 'state' and why. */
static void
mc_explain_route(struct ds *out, const struct mc_state *state,
                 const char *key)
{
    const struct kairo_mc_pool_config *cfg = &state->pool->cfg;
    size_t len = strlen(key);
    int idx = kairo_ketama_lookup(state->ring, key, len);
    uint32_t hash = kairo_ketama_key_hash(state->ring, key, len);

    if (idx < 0) {
        ds_put_cstr(out, "backend: none (no live backend)\n");
    } else {
        const struct kairo_mc_backend *b = &cfg->backends[idx];

        ds_put_cstr(out, "backend: ");
        mc_put_backend_label(out, state, idx);
        ds_put_format(out, " (%s:%"PRIu16", "ETH_ADDR_FMT")\n",
                      b->host, b->port, ETH_ADDR_ARGS(b->mac));
    }
    if (kairo_ketama_n_servers(state->ring) == 1) {
        ds_put_cstr(out, "hash: none (single backend)");
    } else {
        ds_put_format(out, "hash: %s 0x%08"PRIx32,
                      kairo_mc_hash_to_string(cfg->hash), hash);
    }
    if (cfg->hash_tag) {
        ds_put_format(out, " (hash_tag %s)", cfg->hash_tag);
    }
    ds_put_char(out, '\n');

    ds_put_format(out, "distribution: %s",
                  kairo_ketama_distribution_to_string(cfg->distribution));
    if (kairo_ketama_n_servers(state->ring) == 1) {
        ds_put_cstr(out, ", single backend: no hashing\n");
    } else if (cfg->distribution == KAIRO_KETAMA_KETAMA
               || cfg->distribution == KAIRO_KETAMA_LIBMEMCACHED) {
        size_t n = kairo_ketama_n_points(state->ring);
        size_t lo = 0, hi = n;

        /* The first point >= hash, wrapping to the first one. */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            uint32_t value;
            size_t server;

            kairo_ketama_get_point(state->ring, mid, &value, &server);
            if (value < hash) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        if (n) {
            uint32_t value;
            size_t server;

            if (lo == n) {
                lo = 0;
            }
            kairo_ketama_get_point(state->ring, lo, &value, &server);
            ds_put_format(out, ", point 0x%08"PRIx32" (%"PRIuSIZE" of %"
                          PRIuSIZE")\n", value, lo, n);
        } else {
            ds_put_cstr(out, ", empty ring\n");
        }
    } else if (cfg->distribution == KAIRO_KETAMA_MODULA) {
        ds_put_cstr(out, ", hash modulo the total live weight\n");
    } else {
        ds_put_cstr(out, ", a live backend at random\n");
    }
}

static void
mc_unixctl_route(struct unixctl_conn *conn, int argc OVS_UNUSED,
                 const char *argv[], void *aux OVS_UNUSED)
{
    struct netdev_kairo_mc *dev = mc_find_dev(argv[1]);
    const struct mc_state *state;
    struct ds out = DS_EMPTY_INITIALIZER;

    if (!dev) {
        unixctl_command_reply_error(conn, "no such kairo-memcached port");
        return;
    }
    state = mc_get_state(dev);
    if (!state || !state->ring) {
        unixctl_command_reply_error(conn, "port has no backends");
        return;
    }
    if (strlen(argv[2]) > KAIRO_MC_MAX_KEY_LEN) {
        unixctl_command_reply_error(conn, "key longer than 250 bytes");
        return;
    }
    mc_explain_route(&out, state, argv[2]);
    unixctl_command_reply(conn, ds_cstr(&out));
    ds_destroy(&out);
}

static void
mc_unixctl_backend(struct unixctl_conn *conn, int argc OVS_UNUSED,
                   const char *argv[], void *aux OVS_UNUSED)
{
    struct netdev_kairo_mc *dev = mc_find_dev(argv[1]);
    const struct mc_state *state;
    struct ds out = DS_EMPTY_INITIALIZER;
    bool up;
    int idx;

    if (!dev) {
        unixctl_command_reply_error(conn, "no such kairo-memcached port");
        return;
    }
    if (!strcmp(argv[3], "up")) {
        up = true;
    } else if (!strcmp(argv[3], "down")) {
        up = false;
    } else {
        unixctl_command_reply_error(conn, "state must be \"up\" or "
                                    "\"down\"");
        return;
    }
    state = mc_get_state(dev);
    idx = state ? kairo_mc_pool_find_backend(&state->pool->cfg, argv[2])
                : -1;
    if (idx < 0) {
        unixctl_command_reply_error(conn, "no such backend (give its name, "
                                    "IP:PORT, or IP if unique)");
        return;
    }

    if (state->alive[idx] != up) {
        size_t n = state->pool->cfg.n_backends;
        bool *alive = xmemdup(state->alive, n * sizeof *state->alive);

        alive[idx] = up;
        state = mc_state_relive(dev, state, alive);
        free(alive);
    }

    ds_put_format(&out, "%s: backend ", netdev_get_name(&dev->up));
    mc_put_backend_label(&out, state, idx);
    ds_put_format(&out, " is %s", up ? "up" : "down");
    if (!state->pool->cfg.auto_eject) {
        ds_put_cstr(&out, " (auto_eject is false: routing unchanged)");
    }
    ds_put_format(&out, "; %"PRIuSIZE" of %"PRIuSIZE" backends live\n",
                  kairo_ketama_n_live(state->ring),
                  state->pool->cfg.n_backends);
    VLOG_INFO("%s", ds_cstr(&out));
    unixctl_command_reply(conn, ds_cstr(&out));
    ds_destroy(&out);
}

/* Finds the ports kairo/mc-cache-dump and kairo/mc-cache-flush act on:
 * the one named 'argv[1]' if 'argc' > 1, else all those with a cache.
 * Returns a malloc()ed array of '*n' ports, or NULL after replying with an
 * error on 'conn'. */
static struct netdev_kairo_mc **
mc_cache_devs(struct unixctl_conn *conn, int argc, const char *argv[],
              size_t *n)
{
    struct netdev_kairo_mc **devs;

    if (argc > 1) {
        struct netdev_kairo_mc *dev = mc_find_dev(argv[1]);
        const struct mc_state *state = dev ? mc_get_state(dev) : NULL;

        if (!dev) {
            unixctl_command_reply_error(conn, "no such kairo-memcached port");
            return NULL;
        }
        if (!state || !state->pool->cache) {
            unixctl_command_reply_error(conn, "port has no cache (set "
                                        "options:cache_size)");
            return NULL;
        }
        devs = xmalloc(sizeof *devs);
        devs[0] = dev;
        *n = 1;
        return devs;
    }

    size_t n_all, j = 0;
    devs = mc_sorted_devs(&n_all);
    for (size_t i = 0; i < n_all; i++) {
        const struct mc_state *state = mc_get_state(devs[i]);

        if (state && state->pool->cache) {
            devs[j++] = devs[i];
        }
    }
    *n = j;
    return devs;
}

static void
mc_unixctl_cache_dump(struct unixctl_conn *conn, int argc,
                      const char *argv[], void *aux OVS_UNUSED)
{
    struct ds out = DS_EMPTY_INITIALIZER;
    struct netdev_kairo_mc **devs;
    size_t n;

    devs = mc_cache_devs(conn, argc, argv, &n);
    if (!devs) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct mc_state *state = mc_get_state(devs[i]);
        struct kairo_mc_cache_stats st;
        struct mc_cache_rows rows;

        mc_cache_snapshot(state->pool, &rows, &st);
        ds_put_format(&out, "%s: %"PRIuSIZE" values, %"PRIuSIZE" bytes\n",
                      netdev_get_name(&devs[i]->up), st.n_values, st.bytes);
        for (size_t j = 0; j < rows.n; j++) {
            const struct mc_cache_row *r = &rows.rows[j];

            ds_put_format(&out, "  %s flags %"PRIu32" bytes %"PRIuSIZE
                          " hits %"PRIu64" ttl %lld.%03llds\n", r->key,
                          r->flags, r->bytes, r->hits, r->ttl_ms / 1000,
                          r->ttl_ms % 1000);
        }
        mc_cache_rows_destroy(&rows);
    }
    if (!n) {
        ds_put_cstr(&out, "no kairo-memcached port has a cache\n");
    }
    free(devs);
    unixctl_command_reply(conn, ds_cstr(&out));
    ds_destroy(&out);
}

static void
mc_unixctl_cache_flush(struct unixctl_conn *conn, int argc,
                       const char *argv[], void *aux OVS_UNUSED)
{
    struct ds out = DS_EMPTY_INITIALIZER;
    struct netdev_kairo_mc **devs;
    size_t n;

    devs = mc_cache_devs(conn, argc, argv, &n);
    if (!devs) {
        return;
    }
    for (size_t i = 0; i < n; i++) {
        const struct mc_state *state = mc_get_state(devs[i]);

        ds_put_format(&out, "%s: flushed %"PRIuSIZE" values\n",
                      netdev_get_name(&devs[i]->up),
                      mc_cache_flush__(state->pool->cache, time_msec(), 0));
    }
    if (!n) {
        ds_put_cstr(&out, "no kairo-memcached port has a cache\n");
    }
    free(devs);
    VLOG_INFO("kairo/mc-cache-flush: %s", ds_cstr(&out));
    unixctl_command_reply(conn, ds_cstr(&out));
    ds_destroy(&out);
}

/* The "memcached" section of kairo/show. */
static void
mc_show_section(struct ds *out, void *aux OVS_UNUSED)
{
    struct netdev_kairo_mc **devs;
    size_t n;

    devs = mc_sorted_devs(&n);
    if (!n) {
        ds_put_cstr(out, "  no kairo-memcached ports\n");
    }
    for (size_t i = 0; i < n; i++) {
        const struct mc_state *state = mc_get_state(devs[i]);
        const struct mc_counters *c = &devs[i]->counters;

        ds_put_format(out, "  %s: ", netdev_get_name(&devs[i]->up));
        if (state) {
            const struct kairo_mc_pool_config *cfg = &state->pool->cfg;

            ds_put_format(out, "%"PRIuSIZE" backends (%"PRIuSIZE" live), "
                          "%s/%s, rewrite %s, ", cfg->n_backends,
                          state->ring ? kairo_ketama_n_live(state->ring) : 0,
                          kairo_ketama_distribution_to_string(
                              cfg->distribution),
                          kairo_mc_hash_to_string(cfg->hash),
                          kairo_mc_rewrite_to_string(cfg->rewrite));
        } else {
            ds_put_cstr(out, "not configured, ");
        }
        ds_put_format(out, "%llu steered, %llu passed, %llu dropped\n",
                      mc_read(&c->steered), mc_read(&c->passed),
                      mc_read(&c->dropped) + mc_read(&c->queue_full));
    }
    free(devs);
}

void
netdev_kairo_mc_register(void)
{
    static struct ovsthread_once once = OVSTHREAD_ONCE_INITIALIZER;

    if (ovsthread_once_start(&once)) {
        netdev_register_provider(&netdev_kairo_mc_class);
        netdev_register_provider(&netdev_kairo_mc_pmd_class);
        dpif_netdev_rx_pending_hook = netdev_kairo_mc_rx_pending;
        unixctl_command_register("kairo/mc-show", "[PORT]", 0, 1,
                                 mc_unixctl_show, NULL);
        unixctl_command_register("kairo/mc-route", "PORT KEY", 2, 2,
                                 mc_unixctl_route, NULL);
        unixctl_command_register("kairo/mc-backend", "PORT BACKEND up|down",
                                 3, 3, mc_unixctl_backend, NULL);
        unixctl_command_register("kairo/mc-cache-dump", "[PORT]", 0, 1,
                                 mc_unixctl_cache_dump, NULL);
        unixctl_command_register("kairo/mc-cache-flush", "[PORT]", 0, 1,
                                 mc_unixctl_cache_flush, NULL);
        kairo_show_register_section("memcached", mc_show_section, NULL);
        ovsthread_once_done(&once);
    }
}
