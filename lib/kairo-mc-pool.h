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

#ifndef KAIRO_MC_POOL_H
#define KAIRO_MC_POOL_H 1

/* Configuration of a memcached pool: the options of a "kairo-memcached"
 * Interface, parsed and checked.
 *
 * The options (all optional; an Interface with none is a pool without
 * backends, whose traffic follows the bad-request policy):
 *
 *   backends      Comma-separated list of backends, each
 *                 "IP[:PORT]=MAC[*WEIGHT][;name=NAME]": an IPv4 address,
 *                 a UDP port (default 11211), the backend's Ethernet
 *                 address, a weight from 1 to 65535 (default 1) and an
 *                 explicit ketama name (default: none, so twemproxy's
 *                 "IP" or "IP:PORT" naming applies).  Spaces around
 *                 entries are ignored.  No two backends may share
 *                 a name, and backends may share an IP:PORT only if both
 *                 have explicit names (backends sharing the virtual IP,
 *                 told apart by MAC).  At most KAIRO_MC_POOL_MAX_BACKENDS.
 *   hash          A twemproxy key hash name (kairo-mc-hash.h); fnv1a_64.
 *   distribution  ketama (default), modula, random or libmemcached.
 *   hash_tag      Empty or exactly two characters, e.g. "{}".
 *   auto_eject    "true" or "false" (default): whether backends marked
 *                 down, or ejected for failing, leave the ring, as
 *                 twemproxy's auto_eject_hosts.
 *   timeout       Milliseconds a backend may leave requests unanswered
 *                 before that counts as a failure (kairo-mc-health.h): 0
 *                 (default: failures are not tracked) or 10 to
 *                 KAIRO_MC_POOL_MAX_TIMEOUT.  Replies must pass through
 *                 the port to be seen.
 *   server_failure_limit  Failures in a row that eject a backend, 1 to
 *                 1000; 2.
 *   server_retry_timeout  Milliseconds an ejected backend stays out of
 *                 the ring before it is retried, 10 to
 *                 KAIRO_MC_POOL_MAX_TIMEOUT; 30000.
 *   rewrite       "mac" (default: only the destination MAC changes) or
 *                 "ip" (destination MAC, IP and UDP port change, and
 *                 replies from backends are rewritten back to vip, vport
 *                 and vmac).
 *   vip           The virtual server IPv4 address.  Required with
 *                 rewrite=ip; optional otherwise (then requests to any
 *                 address are steered).
 *   vport         The virtual server UDP port, 1 to 65535; 11211.  Only
 *                 UDP datagrams to this port are requests.
 *   vmac          The virtual server's Ethernet address, written as the
 *                 source of rewritten replies.  Required with rewrite=ip.
 *   bad-request   "pass" (default: forward unmodified) or "drop": what to do
 *                 with traffic that cannot be steered.
 *   n_rxq         Receive queues of the port, 1 to KAIRO_MC_POOL_MAX_RXQ;
 *                 1.
 *   queue_len     Packets each receive queue holds before it drops, 1 to
 *                 KAIRO_MC_POOL_MAX_QUEUE_LEN; 1024.
 *
 * The hot-key cache (off unless cache_size is set; see kairo-mc-cache.h):
 *
 *   cache_size      Memory for cached entries in bytes, with an optional
 *                   K, M or G suffix (powers of 1024): 0 (default, no
 *                   cache) or 4K to 64G.
 *   cache_clients   Comma-separated IPv4 subnets ("10.0.0.0/24", or an
 *                   address for a /32) whose gets the cache may answer.
 *                   Required with a cache: the switch never answers anyone
 *                   else.
 *   cache_threshold Gets that must miss before a key is admitted (its
 *                   count-min estimate), 1 to 255; 2.
 *   cache_max_ttl   Longest life of a cached value in seconds, 1 to
 *                   86400; 10.  Bounds how long a write that bypassed the
 *                   switch can go unseen.
 *   cache_settle    Milliseconds after a write during which replies to
 *                   gets are not cached, 0 to 10000; 10.
 *   cache_max_reply Largest reply the switch sends, in bytes of frame
 *                   header and reply text, 64 to KAIRO_MC_POOL_MAX_REPLY;
 *                   1400 (one datagram).  Also the largest value cached.
 *                   A longer reply is cut into datagrams of
 *                   KAIRO_MC_REPLY_DATAGRAM bytes, as memcached does.  A
 *                   hit whose reply would be larger is forwarded to its
 *                   backend instead.
 *
 * Any other option is an error.
 *
 * Thread-safety: the functions are reentrant and touch no global state;
 * a config is owned by its caller, who must not share one being modified.
 * Parsing allocates, so it belongs on the main thread, not on a packet
 * path. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kairo-ketama.h"
#include "kairo-mc-hash.h"
#include "openvswitch/types.h"
#include "packets.h"

struct ds;
struct smap;

/* Largest number of backends in one pool. */
#define KAIRO_MC_POOL_MAX_BACKENDS 1024

/* Longest explicit backend name, in bytes. */
#define KAIRO_MC_POOL_MAX_NAME_LEN 64

/* Most receive queues of one port. */
#define KAIRO_MC_POOL_MAX_RXQ 8

/* Largest receive queue, in packets. */
#define KAIRO_MC_POOL_MAX_QUEUE_LEN 4096

/* Longest timeout and server_retry_timeout, in ms (an hour). */
#define KAIRO_MC_POOL_MAX_TIMEOUT 3600000

/* Largest cache_max_reply, in bytes: the most a UDP datagram carries. */
#define KAIRO_MC_POOL_MAX_REPLY 65507

/* Default receive queue length, in packets. */
#define KAIRO_MC_POOL_DEFAULT_QUEUE_LEN 1024

/* How a steered request is rewritten. */
enum kairo_mc_rewrite {
    KAIRO_MC_REWRITE_MAC,       /* Destination MAC only (shared VIP). */
    KAIRO_MC_REWRITE_IP,        /* Destination MAC, IP and port; replies
                                 * are rewritten back to the VIP. */
};

/* What happens to traffic that cannot be steered. */
enum kairo_mc_policy {
    KAIRO_MC_POLICY_PASS,       /* Forward it unmodified. */
    KAIRO_MC_POLICY_DROP,       /* Drop it. */
};

/* One backend server. */
struct kairo_mc_backend {
    ovs_be32 ip;                /* IPv4 address. */
    uint16_t port;              /* UDP port, host byte order. */
    struct eth_addr mac;        /* Ethernet address. */
    uint32_t weight;            /* 1 to KAIRO_KETAMA_MAX_WEIGHT. */
    char *name;                 /* Explicit name, or NULL.  Owned. */
    char *host;                 /* IP in dotted-quad text.  Owned. */
};

/* A parsed pool configuration. */
struct kairo_mc_pool_config {
    struct kairo_mc_backend *backends; /* Array of 'n_backends'.  Owned. */
    size_t n_backends;          /* Number of backends, may be 0. */
    enum kairo_mc_hash_type hash; /* Key hash. */
    enum kairo_ketama_distribution distribution; /* Key distribution. */
    char *hash_tag;             /* NULL or two characters.  Owned. */
    bool auto_eject;            /* Down backends leave the ring. */
    unsigned int timeout;       /* Request timeout in ms, 0 for none. */
    unsigned int server_failure_limit; /* Failures that eject. */
    unsigned int server_retry_timeout; /* Ejection length in ms. */
    enum kairo_mc_rewrite rewrite; /* How requests are rewritten. */
    enum kairo_mc_policy bad_request; /* Unsteerable traffic policy. */
    bool has_vip;               /* Whether 'vip' was given. */
    ovs_be32 vip;               /* Virtual server IP. */
    uint16_t vport;             /* Virtual server UDP port, host order. */
    bool has_vmac;              /* Whether 'vmac' was given. */
    struct eth_addr vmac;       /* Virtual server MAC. */
    unsigned int n_rxq;         /* Receive queues. */
    unsigned int queue_len;     /* Packets per receive queue. */

    /* The hot-key cache. */
    uint64_t cache_size;        /* Bytes, 0 for no cache. */
    struct kairo_mc_subnet *cache_clients; /* Owned. */
    size_t n_cache_clients;     /* Entries in 'cache_clients'. */
    unsigned int cache_threshold; /* Admission threshold. */
    unsigned int cache_max_ttl; /* Seconds. */
    unsigned int cache_settle;  /* Milliseconds. */
    unsigned int cache_max_reply; /* Bytes of UDP payload. */
};

/* An IPv4 subnet. */
struct kairo_mc_subnet {
    ovs_be32 ip;                /* Network address, host bits zero. */
    ovs_be32 mask;              /* Netmask. */
};

/* Returns true if 'ip' is in one of the cache_clients subnets of 'cfg'. */
bool kairo_mc_pool_is_cache_client(const struct kairo_mc_pool_config *cfg,
                                   ovs_be32 ip);

/* Initializes 'cfg' to the defaults: no backends, fnv1a_64, ketama, no
 * hash tag, no auto-eject, no timeout (failure limit 2, retry after 30 s),
 * mac rewrite, pass, vport 11211, 1 queue of KAIRO_MC_POOL_DEFAULT_QUEUE_LEN
 * packets, no cache. */
void kairo_mc_pool_config_init(struct kairo_mc_pool_config *cfg);

/* Frees what 'cfg' owns (not 'cfg' itself).  'cfg' may then be
 * reinitialized or dropped. */
void kairo_mc_pool_config_destroy(struct kairo_mc_pool_config *cfg);

/* Parses the Interface 'options' into 'cfg', which this function
 * initializes.  Returns 0 on success.  On error returns EINVAL, stores in
 * '*errp' a malloc()ed message naming the option and the problem (the
 * caller frees it), and leaves 'cfg' initialized to the defaults, so that
 * kairo_mc_pool_config_destroy() is always safe. */
int kairo_mc_pool_parse(const struct smap *options,
                        struct kairo_mc_pool_config *cfg, char **errp);

/* Parses the "backends" option value 's' into a new array stored in
 * '*backendsp' with '*np' entries (both 0/NULL for an empty or all-blank
 * 's').  Returns 0, or EINVAL with a malloc()ed message in '*errp' and
 * nothing allocated. */
int kairo_mc_pool_parse_backends(const char *s,
                                 struct kairo_mc_backend **backendsp,
                                 size_t *np, char **errp);

/* Frees the 'n' backends in 'backends' and the array. */
void kairo_mc_pool_backends_free(struct kairo_mc_backend *backends, size_t n);

/* Appends 'b' to 'out' in the "backends" syntax, for example
 * "10.0.0.1:11211=aa:bb:cc:dd:ee:01*2;name=srv1". */
void kairo_mc_pool_format_backend(const struct kairo_mc_backend *b,
                                  struct ds *out);

/* Fills 'servers' (room for 'cfg->n_backends' entries) and 'kcfg' with what
 * kairo_ketama_create() needs for 'cfg'.  'alive' gives each backend's
 * liveness, or is NULL for all alive.  The filled structures point into
 * 'cfg', which must outlive them. */
void kairo_mc_pool_to_ketama(const struct kairo_mc_pool_config *cfg,
                             const bool *alive,
                             struct kairo_ketama_server *servers,
                             struct kairo_ketama_config *kcfg);

/* Returns the index in 'cfg' of the backend that 'id' names: its explicit
 * name, "IP:PORT", or "IP" if exactly one backend has that IP; or -1. */
int kairo_mc_pool_find_backend(const struct kairo_mc_pool_config *cfg,
                               const char *id);

/* Returns "mac" or "ip" for 'rewrite'; a static string. */
const char *kairo_mc_rewrite_to_string(enum kairo_mc_rewrite rewrite);

/* Returns "pass" or "drop" for 'policy'; a static string. */
const char *kairo_mc_policy_to_string(enum kairo_mc_policy policy);

#endif /* kairo-mc-pool.h */
