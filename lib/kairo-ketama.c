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
#include "kairo-ketama.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kairo-md5.h"
#include "random.h"
#include "util.h"

/* Hashes per server at equal weights in twemproxy and libmemcached; each
 * hash yields four points, so 160 points per server. */
#define KETAMA_HASHES_PER_SERVER 40

/* Size of twemproxy's buffer for "<name>-<i>", terminator included. */
#define TWEMPROXY_POINT_NAME_SIZE 86

/* Longest host for the libmemcached profile, whose buffer holds a maximal
 * host name (1025 bytes with its terminator) plus ":port-i". */
#define LIBMEMCACHED_MAX_HOST_LEN 1024

/* One server of a pool, as the pool keeps it. */
struct ketama_server {
    char *explicit_name;        /* Configured name, or NULL. */
    char *host;                 /* Configured host. */
    char *name;                 /* Name hashed into the continuum. */
    uint16_t port;              /* Configured port. */
    uint32_t weight;            /* Configured weight. */
    bool alive;                 /* Configured liveness. */
    bool live;                  /* Whether the server takes part. */
    uint32_t points;            /* Points (or modula slots) it owns. */
};

/* One point of the continuum. */
struct ketama_point {
    uint32_t value;             /* Position on the 32-bit circle. */
    uint32_t server;            /* Index of the owning server. */
};

/* A built, immutable distribution (see the header). */
struct kairo_ketama {
    enum kairo_ketama_distribution distribution; /* How keys spread. */
    enum kairo_mc_hash_type hash;  /* Key hash function. */
    bool has_hash_tag;          /* Whether 'hash_tag' is set. */
    char hash_tag[2];           /* Opening and closing tag characters. */
    bool auto_eject_hosts;      /* Whether dead servers leave the ring. */

    struct ketama_server *servers; /* All servers, in configured order. */
    size_t n_servers;           /* Number of 'servers'. */

    uint32_t *live;             /* Indexes of the live servers, ascending. */
    size_t n_live;              /* Number of 'live'. */

    struct ketama_point *points; /* Sorted continuum (KETAMA flavours). */
    size_t n_points;            /* Number of 'points'. */
    uint32_t *buckets;          /* Index into 'points' by the top bits of a
                                 * hash: 'buckets[b]' is the first point
                                 * whose value is at least b << shift, so a
                                 * lookup scans about one point instead of
                                 * binary searching them all. */
    unsigned int bucket_shift;  /* 32 minus the bits 'buckets' is indexed
                                 * by. */

    uint64_t *cum_weights;      /* Modula: running weight sum per 'live'. */
    uint64_t total_weight;      /* Total weight of the live servers. */
};

/* Returns whether 'dist' uses a continuum of MD5 points. */
static bool
is_ketama(enum kairo_ketama_distribution dist)
{
    return dist == KAIRO_KETAMA_KETAMA || dist == KAIRO_KETAMA_LIBMEMCACHED;
}

/* Returns the number of decimal digits of 'n'. */
static int
n_digits(uint64_t n)
{
    int digits = 1;

    while (n >= 10) {
        n /= 10;
        digits++;
    }
    return digits;
}

/* Returns the number of points that twemproxy gives a server of weight
 * 'weight' when the live servers weigh 'total' in all and number 'n_live',
 * with twemproxy's mix of float and double arithmetic. */
static uint32_t
twemproxy_points(uint32_t weight, uint64_t total, size_t n_live)
{
    float pct = (float) weight / (float) total;
    float hashes = pct * (float) (KETAMA_HASHES_PER_SERVER * 4) / 4.0f
                   * (float) n_live;
    double biased = (double) hashes + 0.0000000001;

    return (uint32_t) (floorf((float) biased) * 4.0f);
}

/* Returns the number of points that libmemcached's KETAMA_WEIGHTED gives a
 * server of weight 'weight' among 'n_live' live servers of weight 'total',
 * with libmemcached's all-float arithmetic. */
static uint32_t
libmemcached_points(uint32_t weight, uint64_t total, size_t n_live)
{
    float pct = (float) weight / (float) total;
    float hashes = pct * (float) (KETAMA_HASHES_PER_SERVER * 4) / 4.0f
                   * (float) n_live + 0.0000000001f;

    return (uint32_t) (floor(hashes) * 4.0);
}

/* qsort() comparator ordering continuum points by value, then server. */
static int
compare_points(const void *a_, const void *b_)
{
    const struct ketama_point *a = a_;
    const struct ketama_point *b = b_;

    if (a->value != b->value) {
        return a->value < b->value ? -1 : 1;
    } else if (a->server != b->server) {
        return a->server < b->server ? -1 : 1;
    }
    return 0;
}

/* Reads the little-endian 32-bit value at 'p'. */
static uint32_t
get_le32(const uint8_t *p)
{
    return (uint32_t) p[0] | ((uint32_t) p[1] << 8)
           | ((uint32_t) p[2] << 16) | ((uint32_t) p[3] << 24);
}

/* Builds 'k->buckets' for the sorted 'k->points': about two buckets per
 * point, at most 2^16 of them. */
static void
ketama_build_buckets(struct kairo_ketama *k)
{
    unsigned int bits = MIN(16, log_2_ceil(MAX(k->n_points, 1)) + 1);
    size_t n_buckets = (size_t) 1 << bits;
    size_t p = 0;

    k->bucket_shift = 32 - bits;
    k->buckets = xmalloc(n_buckets * sizeof *k->buckets);
    for (size_t b = 0; b < n_buckets; b++) {
        uint64_t floor = (uint64_t) b << k->bucket_shift;

        while (p < k->n_points && k->points[p].value < floor) {
            p++;
        }
        k->buckets[b] = p;
    }
}

/* Fills in the liveness, point counts and lookup structures of 'k', whose
 * configuration and 'servers' are set. */
static void
ketama_build(struct kairo_ketama *k)
{
    uint64_t total = 0;

    k->live = xmalloc(k->n_servers * sizeof *k->live);
    k->n_live = 0;
    for (size_t i = 0; i < k->n_servers; i++) {
        struct ketama_server *s = &k->servers[i];

        s->live = s->alive || !k->auto_eject_hosts;
        s->points = 0;
        if (s->live) {
            k->live[k->n_live++] = i;
            total += s->weight;
        }
    }
    k->total_weight = total;

    if (!k->n_live) {
        return;
    }

    switch (k->distribution) {
    case KAIRO_KETAMA_KETAMA:
    case KAIRO_KETAMA_LIBMEMCACHED: {
        size_t n_points = 0;

        for (size_t i = 0; i < k->n_live; i++) {
            struct ketama_server *s = &k->servers[k->live[i]];

            s->points = (k->distribution == KAIRO_KETAMA_KETAMA
                         ? twemproxy_points(s->weight, total, k->n_live)
                         : libmemcached_points(s->weight, total, k->n_live));
            n_points += s->points;
        }

        k->points = xmalloc(n_points * sizeof *k->points);
        k->n_points = 0;
        for (size_t i = 0; i < k->n_live; i++) {
            uint32_t idx = k->live[i];
            struct ketama_server *s = &k->servers[idx];

            for (uint32_t h = 0; h < s->points / 4; h++) {
                uint8_t digest[KAIRO_MD5_DIGEST_LEN];
                char *text = xasprintf("%s-%"PRIu32, s->name, h);

                kairo_md5(text, strlen(text), digest);
                free(text);
                for (int j = 0; j < 4; j++) {
                    struct ketama_point *p = &k->points[k->n_points++];

                    p->value = get_le32(digest + 4 * j);
                    p->server = idx;
                }
            }
        }
        qsort(k->points, k->n_points, sizeof *k->points, compare_points);
        ketama_build_buckets(k);
        break;
    }

    case KAIRO_KETAMA_MODULA: {
        uint64_t sum = 0;

        k->cum_weights = xmalloc(k->n_live * sizeof *k->cum_weights);
        for (size_t i = 0; i < k->n_live; i++) {
            struct ketama_server *s = &k->servers[k->live[i]];

            s->points = s->weight;
            sum += s->weight;
            k->cum_weights[i] = sum;
        }
        break;
    }

    case KAIRO_KETAMA_RANDOM:
    default:
        for (size_t i = 0; i < k->n_live; i++) {
            k->servers[k->live[i]].points = 1;
        }
        break;
    }
}

/* Returns the name 'k' hashes for server 's': its explicit name (not in the
 * libmemcached profile), else "host" for port 11211, else "host:port". */
static char *
derive_name(const struct kairo_ketama *k, const struct ketama_server *s)
{
    if (s->explicit_name && k->distribution != KAIRO_KETAMA_LIBMEMCACHED) {
        return xstrdup(s->explicit_name);
    } else if (s->port == 11211) {
        return xstrdup(s->host);
    } else {
        return xasprintf("%s:%"PRIu16, s->host, s->port);
    }
}

/* Allocates a pool with the settings of 'cfg' or, if 'cfg' is NULL, of
 * 'model', without servers. */
static struct kairo_ketama *
ketama_alloc(const struct kairo_ketama_config *cfg,
             const struct kairo_ketama *model)
{
    struct kairo_ketama *k = xzalloc(sizeof *k);

    if (cfg) {
        k->distribution = cfg->distribution;
        k->hash = cfg->hash;
        k->auto_eject_hosts = cfg->auto_eject_hosts;
        if (cfg->hash_tag && cfg->hash_tag[0]) {
            k->has_hash_tag = true;
            k->hash_tag[0] = cfg->hash_tag[0];
            k->hash_tag[1] = cfg->hash_tag[1];
        }
    } else {
        k->distribution = model->distribution;
        k->hash = model->hash;
        k->auto_eject_hosts = model->auto_eject_hosts;
        k->has_hash_tag = model->has_hash_tag;
        memcpy(k->hash_tag, model->hash_tag, sizeof k->hash_tag);
    }
    return k;
}

/* Checks 'cfg' and the 'n' servers in 'servers' as kairo_ketama_create()
 * documents, and returns 0 or EINVAL. */
static int
validate(const struct kairo_ketama_config *cfg,
         const struct kairo_ketama_server *servers, size_t n)
{
    if (!n || n > KAIRO_KETAMA_MAX_SERVERS) {
        return EINVAL;
    }
    if ((unsigned int) cfg->distribution > KAIRO_KETAMA_LIBMEMCACHED
        || (unsigned int) cfg->hash >= KAIRO_MC_N_HASHES) {
        return EINVAL;
    }
    if (cfg->hash_tag && cfg->hash_tag[0] && strlen(cfg->hash_tag) != 2) {
        return EINVAL;
    }

    for (size_t i = 0; i < n; i++) {
        const struct kairo_ketama_server *s = &servers[i];
        size_t name_len;

        if (!s->weight || s->weight > KAIRO_KETAMA_MAX_WEIGHT
            || !s->host || !s->host[0]) {
            return EINVAL;
        }

        if (cfg->distribution == KAIRO_KETAMA_LIBMEMCACHED) {
            if (strlen(s->host) > LIBMEMCACHED_MAX_HOST_LEN) {
                return EINVAL;
            }
            continue;
        }

        /* twemproxy's "<name>-<i>" must fit its buffer for every 'i' the
         * server may ever get, which stays below 40 per server of the
         * pool whatever the weights and liveness. */
        if (s->name && s->name[0]) {
            name_len = strlen(s->name);
        } else {
            name_len = strlen(s->host) + (s->port == 11211 ? 0 : 6);
        }
        if (name_len + 1 + n_digits(KETAMA_HASHES_PER_SERVER * n - 1)
            >= TWEMPROXY_POINT_NAME_SIZE) {
            return EINVAL;
        }
    }
    return 0;
}

/* Builds a pool from 'cfg' and 'servers'. */
int
kairo_ketama_create(const struct kairo_ketama_config *cfg,
                    const struct kairo_ketama_server *servers,
                    size_t n_servers, struct kairo_ketama **ketamap)
{
    struct kairo_ketama *k;
    int error;

    *ketamap = NULL;
    error = validate(cfg, servers, n_servers);
    if (error) {
        return error;
    }

    k = ketama_alloc(cfg, NULL);
    k->n_servers = n_servers;
    k->servers = xcalloc(n_servers, sizeof *k->servers);
    for (size_t i = 0; i < n_servers; i++) {
        const struct kairo_ketama_server *src = &servers[i];
        struct ketama_server *s = &k->servers[i];

        s->explicit_name = (src->name && src->name[0]
                            ? xstrdup(src->name) : NULL);
        s->host = xstrdup(src->host);
        s->port = src->port;
        s->weight = src->weight;
        s->alive = src->alive;
        s->name = derive_name(k, s);
    }
    ketama_build(k);

    *ketamap = k;
    return 0;
}

/* Builds a copy of 'old' with liveness from 'alive'. */
int
kairo_ketama_rebuild(const struct kairo_ketama *old, const bool *alive,
                     struct kairo_ketama **ketamap)
{
    struct kairo_ketama *k = ketama_alloc(NULL, old);

    k->n_servers = old->n_servers;
    k->servers = xcalloc(old->n_servers, sizeof *k->servers);
    for (size_t i = 0; i < old->n_servers; i++) {
        const struct ketama_server *src = &old->servers[i];
        struct ketama_server *s = &k->servers[i];

        s->explicit_name = nullable_xstrdup(src->explicit_name);
        s->host = xstrdup(src->host);
        s->name = xstrdup(src->name);
        s->port = src->port;
        s->weight = src->weight;
        s->alive = alive[i];
    }
    ketama_build(k);

    *ketamap = k;
    return 0;
}

/* Frees 'k'. */
void
kairo_ketama_destroy(struct kairo_ketama *k)
{
    if (!k) {
        return;
    }
    for (size_t i = 0; i < k->n_servers; i++) {
        free(k->servers[i].explicit_name);
        free(k->servers[i].host);
        free(k->servers[i].name);
    }
    free(k->servers);
    free(k->live);
    free(k->points);
    free(k->buckets);
    free(k->cum_weights);
    free(k);
}

/* Returns the hash 'k' dispatches the 'len'-byte 'key' on. */
uint32_t
kairo_ketama_key_hash(const struct kairo_ketama *k, const void *key_,
                      size_t len)
{
    const uint8_t *key = key_;

    if (k->n_servers == 1 || k->distribution == KAIRO_KETAMA_RANDOM) {
        return 0;
    }

    if (k->has_hash_tag && len) {
        const uint8_t *end = key + len;
        const uint8_t *open = memchr(key, (uint8_t) k->hash_tag[0], len);

        if (open) {
            const uint8_t *close = memchr(open + 1, (uint8_t) k->hash_tag[1],
                                          end - (open + 1));
            if (close && close - open > 1) {
                key = open + 1;
                len = close - key;
            }
        }
    }

    if (!len && k->distribution != KAIRO_KETAMA_LIBMEMCACHED) {
        return 0;
    }
    return kairo_mc_hash(k->hash, key, len);
}

/* Returns the server owning 'hash' in 'k', or -1. */
int
kairo_ketama_lookup_hash(const struct kairo_ketama *k, uint32_t hash)
{
    if (!k->n_live || (is_ketama(k->distribution) && !k->n_points)) {
        return -1;
    }

    switch (k->distribution) {
    case KAIRO_KETAMA_KETAMA:
    case KAIRO_KETAMA_LIBMEMCACHED: {
        /* Find the first point whose value is at least 'hash': it is in
         * the bucket of 'hash', or it is the first point of a later one,
         * which is where the bucket's scan stops. */
        size_t b = hash >> k->bucket_shift;
        size_t i = k->buckets[b];
        size_t end = (b + 1 < ((size_t) 1 << (32 - k->bucket_shift))
                      ? k->buckets[b + 1] : k->n_points);

        while (i < end && k->points[i].value < hash) {
            i++;
        }
        return k->points[i < k->n_points ? i : 0].server;
    }

    case KAIRO_KETAMA_MODULA: {
        uint64_t slot = hash % k->total_weight;
        size_t lo = 0;
        size_t hi = k->n_live - 1;

        /* Find the first live server whose running sum exceeds 'slot'. */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;

            if (k->cum_weights[mid] <= slot) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return k->live[lo];
    }

    case KAIRO_KETAMA_RANDOM:
    default:
        return k->live[random_range(k->n_live)];
    }
}

/* Returns the server owning the 'len'-byte 'key' in 'k', or -1. */
int
kairo_ketama_lookup(const struct kairo_ketama *k, const void *key,
                    size_t len)
{
    if (!k->n_live) {
        return -1;
    } else if (k->n_servers == 1) {
        return 0;
    }
    return kairo_ketama_lookup_hash(k, kairo_ketama_key_hash(k, key, len));
}

/* Returns the number of servers of 'k'. */
size_t
kairo_ketama_n_servers(const struct kairo_ketama *k)
{
    return k->n_servers;
}

/* Returns the number of live servers of 'k'. */
size_t
kairo_ketama_n_live(const struct kairo_ketama *k)
{
    return k->n_live;
}

/* Returns the hashed name of server 'idx' of 'k'. */
const char *
kairo_ketama_server_name(const struct kairo_ketama *k, size_t idx)
{
    ovs_assert(idx < k->n_servers);
    return k->servers[idx].name;
}

/* Returns whether server 'idx' of 'k' takes part in lookups. */
bool
kairo_ketama_server_is_live(const struct kairo_ketama *k, size_t idx)
{
    ovs_assert(idx < k->n_servers);
    return k->servers[idx].live;
}

/* Returns the number of points of server 'idx' of 'k'. */
uint32_t
kairo_ketama_server_points(const struct kairo_ketama *k, size_t idx)
{
    ovs_assert(idx < k->n_servers);
    return k->servers[idx].points;
}

/* Returns the number of continuum points of 'k'. */
size_t
kairo_ketama_n_points(const struct kairo_ketama *k)
{
    return is_ketama(k->distribution) ? k->n_points : 0;
}

/* Stores continuum point 'i' of 'k' in '*value' and '*server'. */
void
kairo_ketama_get_point(const struct kairo_ketama *k, size_t i,
                       uint32_t *value, size_t *server)
{
    ovs_assert(i < kairo_ketama_n_points(k));
    *value = k->points[i].value;
    *server = k->points[i].server;
}

/* The name of each distribution, indexed by distribution. */
static const char *const dist_names[] = {
    [KAIRO_KETAMA_KETAMA] = "ketama",
    [KAIRO_KETAMA_MODULA] = "modula",
    [KAIRO_KETAMA_RANDOM] = "random",
    [KAIRO_KETAMA_LIBMEMCACHED] = "libmemcached",
};

/* Returns the name of 'dist'. */
const char *
kairo_ketama_distribution_to_string(enum kairo_ketama_distribution dist)
{
    return ((unsigned int) dist < ARRAY_SIZE(dist_names)
            ? dist_names[dist] : "unknown");
}

/* Parses distribution 'name' into '*dist'. */
bool
kairo_ketama_distribution_from_string(const char *name,
                                      enum kairo_ketama_distribution *dist)
{
    for (size_t i = 0; i < ARRAY_SIZE(dist_names); i++) {
        if (!strcmp(name, dist_names[i])) {
            *dist = i;
            return true;
        }
    }
    return false;
}
