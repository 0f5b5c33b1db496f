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

#ifndef KAIRO_KETAMA_H
#define KAIRO_KETAMA_H 1

/* Key-to-backend distribution, bit-compatible with real memcached proxies.
 *
 * A "struct kairo_ketama" maps a memcached key to the index of one server of
 * a pool, exactly as one of these does:
 *
 *   - twemproxy (nutcracker 0.5.0) with "distribution: ketama", "modula" or
 *     "random", any "hash:" (kairo-mc-hash.h), an optional two-character
 *     "hash_tag:" and "auto_eject_hosts:";
 *
 *   - libmemcached 1.x with MEMCACHED_BEHAVIOR_KETAMA_WEIGHTED (which also
 *     selects the md5 key hash: configure KAIRO_MC_HASH_MD5 to match it).
 *
 * twemproxy's rules, which KAIRO_KETAMA_KETAMA follows:
 *
 *   - Server name: the explicit name when there is one, otherwise "host"
 *     when the port is 11211 and "host:port" otherwise.
 *
 *   - Points: each live server gets floorf(weight / total_live_weight * 40 *
 *     live_servers + 1e-10) * 4 points, computed in float32 as twemproxy
 *     does.  For i in 0 .. points/4 - 1, md5("<name>-<i>") is cut into four
 *     little-endian u32 points.  All points are sorted (ties by server
 *     index) and a key goes to the first point >= its hash, wrapping to the
 *     first point.
 *
 *   - Key hash: with a hash tag "ab", if the key holds an 'a' and, after the
 *     first 'a', a 'b', and at least one byte lies between them, only those
 *     bytes are hashed; otherwise the whole key is.  An empty key hashes to
 *     0.  A pool configured with a single server (dead or alive) maps every
 *     key to it without hashing.
 *
 *   - Liveness: with auto_eject_hosts, servers whose 'alive' is false are
 *     left out of the continuum and out of the weight total and live count,
 *     and keep their index; without it, 'alive' is ignored and every server
 *     takes part, as in twemproxy.
 *
 * KAIRO_KETAMA_MODULA puts each live server 'weight' times in a row and
 * picks entry hash % total_live_weight.  KAIRO_KETAMA_RANDOM picks a live
 * server uniformly at random (random_range() of lib/random.h).
 *
 * KAIRO_KETAMA_LIBMEMCACHED differs from KAIRO_KETAMA_KETAMA only in that it
 * ignores explicit names (libmemcached has none and always uses "host" or
 * "host:port"), hashes an empty key like any other (libmemcached has no
 * empty-key shortcut) and computes the point count with libmemcached's
 * float rounding, which gives the same counts in practice.
 *
 * Limits: at most KAIRO_KETAMA_MAX_SERVERS servers, weights from 1 to
 * KAIRO_KETAMA_MAX_WEIGHT.  twemproxy formats "<name>-<i>" into an 86-byte
 * buffer and hashes past its end when the text does not fit, so a name for
 * which "<name>-<i>" exceeds 85 bytes is rejected (EINVAL) rather than
 * silently mapped differently.
 *
 * Thread-safety and ownership: kairo_ketama_create() and
 * kairo_ketama_rebuild() return a new, immutable object that the caller owns
 * and frees with kairo_ketama_destroy().  Once built, every other function
 * only reads it, so any number of threads (PMD threads included) may look
 * keys up concurrently without locks.  To change liveness, weights or
 * servers, build a new object and publish it to readers by RCU
 * (ovsrcu_set(), then ovsrcu_postpone(kairo_ketama_destroy, old)): this
 * module does not do the swap itself.  Creation allocates and may be slow
 * (it computes about 40 MD5 digests per server), so do it on the main
 * thread, not per packet.  Lookups do not allocate and cost one key hash
 * plus a binary search. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kairo-mc-hash.h"

/* Largest number of servers in one pool. */
#define KAIRO_KETAMA_MAX_SERVERS 4096

/* Largest weight of one server. */
#define KAIRO_KETAMA_MAX_WEIGHT 65535

/* How keys are spread over servers. */
enum kairo_ketama_distribution {
    KAIRO_KETAMA_KETAMA,        /* twemproxy "distribution: ketama". */
    KAIRO_KETAMA_MODULA,        /* twemproxy "distribution: modula". */
    KAIRO_KETAMA_RANDOM,        /* twemproxy "distribution: random". */
    KAIRO_KETAMA_LIBMEMCACHED,  /* libmemcached KETAMA_WEIGHTED. */
};

/* One server of a pool, as the caller describes it to
 * kairo_ketama_create(), which copies what it needs. */
struct kairo_ketama_server {
    const char *name;           /* Explicit name, or NULL for none. */
    const char *host;           /* Host text as configured, e.g. an IP. */
    uint16_t port;              /* TCP or UDP port of the server. */
    uint32_t weight;            /* Relative share, 1 to MAX_WEIGHT. */
    bool alive;                 /* False if ejected (auto_eject_hosts). */
};

/* Pool-wide settings. */
struct kairo_ketama_config {
    enum kairo_ketama_distribution distribution; /* How to distribute. */
    enum kairo_mc_hash_type hash;  /* Key hash; ignored by RANDOM. */
    const char *hash_tag;       /* NULL, "", or exactly two characters. */
    bool auto_eject_hosts;      /* Whether dead servers leave the ring. */
};

struct kairo_ketama;

/* Builds a distribution for the 'n_servers' servers in 'servers' under
 * 'cfg'.  On success stores the new object in '*ketamap' and returns 0.
 * Returns EINVAL, leaving '*ketamap' NULL, if 'n_servers' is 0 or above
 * KAIRO_KETAMA_MAX_SERVERS, a weight is out of range, a host is NULL or
 * empty, a name is too long for twemproxy's buffer (see above), the hash
 * tag is not NULL, "" or two characters, or the distribution or hash is
 * invalid.  Servers with 'alive' false are still indexed; lookups never
 * return them when 'cfg->auto_eject_hosts' is true.  Nothing in 'servers' or
 * 'cfg' is referenced after the call. */
int kairo_ketama_create(const struct kairo_ketama_config *cfg,
                        const struct kairo_ketama_server *servers,
                        size_t n_servers, struct kairo_ketama **ketamap);

/* Builds a new distribution with the same servers and settings as 'old'
 * but with liveness taken from 'alive', an array with one entry per server
 * of 'old'.  Returns 0 and stores the new object in '*ketamap'; 'old' is
 * left unchanged and still owned by the caller.  Cannot fail other than by
 * aborting on memory exhaustion. */
int kairo_ketama_rebuild(const struct kairo_ketama *old, const bool *alive,
                         struct kairo_ketama **ketamap);

/* Frees 'ketama', which may be NULL.  No reader may still be using it. */
void kairo_ketama_destroy(struct kairo_ketama *ketama);

/* Returns the index (into the server array given at creation) of the
 * server that owns the 'len'-byte key at 'key', or -1 if no server is
 * live.  'key' may be NULL when 'len' is 0.  Safe to call concurrently
 * from any number of threads. */
int kairo_ketama_lookup(const struct kairo_ketama *ketama,
                        const void *key, size_t len);

/* Returns the hash that kairo_ketama_lookup() would dispatch on for the
 * 'len'-byte key at 'key': after the hash tag, the empty-key rule and the
 * single-server rule.  Always 0 for KAIRO_KETAMA_RANDOM. */
uint32_t kairo_ketama_key_hash(const struct kairo_ketama *ketama,
                               const void *key, size_t len);

/* Returns the index of the server owning 'hash' in 'ketama', or -1 if no
 * server is live.  For KAIRO_KETAMA_RANDOM, 'hash' is ignored and a live
 * server is drawn at random. */
int kairo_ketama_lookup_hash(const struct kairo_ketama *ketama,
                             uint32_t hash);

/* Introspection, for tests and for the kairo commands.  All are read-only and
 * thread-safe like lookups. */

/* Returns the number of servers 'ketama' was built with. */
size_t kairo_ketama_n_servers(const struct kairo_ketama *ketama);

/* Returns the number of servers of 'ketama' that take part in lookups. */
size_t kairo_ketama_n_live(const struct kairo_ketama *ketama);

/* Returns the name that 'ketama' hashes for server 'idx' (see the naming
 * rule above).  The string belongs to 'ketama'. */
const char *kairo_ketama_server_name(const struct kairo_ketama *ketama,
                                     size_t idx);

/* Returns whether server 'idx' takes part in lookups of 'ketama'. */
bool kairo_ketama_server_is_live(const struct kairo_ketama *ketama,
                                 size_t idx);

/* Returns the number of continuum points of server 'idx' in 'ketama': its
 * point count for KETAMA and LIBMEMCACHED, its weight for MODULA, 1 for
 * RANDOM, and 0 if it does not take part. */
uint32_t kairo_ketama_server_points(const struct kairo_ketama *ketama,
                                    size_t idx);

/* Returns the number of points on the continuum of 'ketama' (0 for MODULA
 * and RANDOM, which have none). */
size_t kairo_ketama_n_points(const struct kairo_ketama *ketama);

/* Stores the value and server index of the continuum point at position
 * 'i' (in ascending order, i < kairo_ketama_n_points()) in '*value' and
 * '*server'. */
void kairo_ketama_get_point(const struct kairo_ketama *ketama, size_t i,
                            uint32_t *value, size_t *server);

/* Returns the name of 'dist' ("ketama", "modula", "random",
 * "libmemcached"), a static string. */
const char *kairo_ketama_distribution_to_string(
    enum kairo_ketama_distribution dist);

/* Sets '*dist' to the distribution named 'name' (one of the names above) and
 * returns true, or returns false if 'name' is not one of them. */
bool kairo_ketama_distribution_from_string(
    const char *name, enum kairo_ketama_distribution *dist);

#endif /* kairo-ketama.h */
