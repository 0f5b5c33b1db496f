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

#ifndef KAIRO_MC_CACHE_H
#define KAIRO_MC_CACHE_H 1

/* A bounded cache of hot memcached values, kept coherent with the writes a
 * switch forwards.
 *
 * What it holds.  Entries keyed by the memcached key: the value, its client
 * flags, its cas unique if known, and an expiry time.  Their memory (the
 * entry, key and value) stays under 'max_bytes'; beyond it the least
 * recently useful entry is evicted (CLOCK: an entry hit since the clock hand
 * last passed it gets a second chance).  Only hot keys are admitted: every
 * get that misses is counted in a count-min sketch (kairo-mc-sketch.h), and
 * a key may be filled only while its estimate is at least 'threshold'.
 *
 * How it is filled.  The cache never asks a backend.  A caller that forwards
 * a get takes a ticket (kairo_mc_cache_ticket()), and may later fill the
 * cache from the VALUE items of the reply with that ticket.  Expectations
 * (kairo_mc_cache_expect() and kairo_mc_cache_take()) remember the ticket of
 * each forwarded get by client and request id until its replies come back.
 * A reply message cut into several datagrams (memcached cuts replies into
 * datagrams of at most KAIRO_MC_REPLY_DATAGRAM bytes) is reassembled
 * first (kairo_mc_cache_take_part()): its datagrams must come in order, as
 * one server sends them; any gap or reordering drops it, unfilled.
 *
 * Coherence.  The caller reports every write it forwards, before forwarding
 * it (kairo_mc_cache_write(), kairo_mc_cache_flush()).  A write removes the
 * key's value at once, so no later lookup returns it, and it marks the key's
 * write slot (one of KAIRO_MC_CACHE_SLOTS, chosen by the key's hash) with
 * the write's sequence number and time.  A fill is refused ("raced") if its
 * key's slot, or a flush, has a write at or after the ticket, or less than
 * 'settle_ms' before it: a backend that runs requests on several threads
 * may answer a get with the value from before a write it received first, so
 * a reply is trusted only if the last write had time to land.  Keys that
 * share a slot refuse each other's fills, which is conservative.  So once
 * the caller has reported a write, the cache never returns a value older
 * than that write.
 *
 * Expiry.  Every entry expires at most 'max_ttl_ms' after it is filled.  A
 * write that sets an expiry time (set, touch, ...) also leaves a valueless
 * "hint" entry with that time, and a later fill of the key expires no later
 * than the hint; conditional writes (add, replace, cas) only ever shorten a
 * known hint, as they may fail.  Hints count towards 'max_bytes' and may be
 * evicted, after which 'max_ttl_ms' alone bounds the key's lifetime.  Writes
 * that reach a backend without passing through the caller are not seen:
 * 'max_ttl_ms' bounds how long a value they changed may still be served.
 *
 * Times are milliseconds on a monotonic clock, given by the caller.
 *
 * Thread-safety: none.  A cache belongs to one owner, who serializes every
 * call (the memcached port holds a mutex).  Lookups return pointers into the
 * cache that stay valid until the next call that may change it. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kairo-mc-sketch.h"
#include "openvswitch/hmap.h"

struct ds;

/* Write slots that tell whether a fill raced with a write. */
#define KAIRO_MC_CACHE_SLOTS 16384

/* Expectations remembered at once; older ones are overwritten. */
#define KAIRO_MC_CACHE_EXPECTATIONS 4096

/* How long an expectation waits for its replies, in ms. */
#define KAIRO_MC_CACHE_EXPECT_MS 1000

/* Reply messages of several datagrams reassembled at once; a datagram that
 * would start one more is not kept. */
#define KAIRO_MC_CACHE_REASSEMBLIES 64

/* Settings of a cache. */
struct kairo_mc_cache_config {
    size_t max_bytes;           /* Memory for entries, in bytes. */
    size_t max_value;           /* Largest value admitted, in bytes. */
    unsigned int threshold;     /* Sketch estimate that admits a key, 1 to
                                 * 255. */
    uint32_t decay_period;      /* Counted gets between two decays. */
    long long max_ttl_ms;       /* Longest life of an entry, > 0. */
    long long settle_ms;        /* See "Coherence" above, >= 0. */
};

/* The result of a fill. */
enum kairo_mc_cache_fill {
    KAIRO_MC_FILL_OK,           /* Filled (or refreshed). */
    KAIRO_MC_FILL_NOT_HOT,      /* The key is not hot enough. */
    KAIRO_MC_FILL_RACED,        /* A write or flush may have raced. */
    KAIRO_MC_FILL_TOO_BIG,      /* Value over 'max_value' or memory. */
    KAIRO_MC_FILL_EXPIRED,      /* The key's hint says it has expired. */
    KAIRO_MC_N_FILLS
};

/* How a write changes what the cache knows of a key's expiry. */
enum kairo_mc_cache_expiry {
    KAIRO_MC_EXPIRY_KEEP,       /* Unchanged (append, incr, ...). */
    KAIRO_MC_EXPIRY_SET,        /* Set to the given time (set, touch). */
    KAIRO_MC_EXPIRY_AT_MOST,    /* Maybe set to the given time: keeps a
                                 * known hint if it is sooner (add,
                                 * replace, cas). */
    KAIRO_MC_EXPIRY_FORGET,     /* Forgotten (delete, unknown writes). */
};

/* A ticket: when a get was forwarded, in the order of writes. */
struct kairo_mc_cache_ticket {
    uint64_t seq;               /* Writes reported before the get. */
    long long time_ms;          /* When the get was forwarded. */
};

/* A cached item, pointing into the cache. */
struct kairo_mc_cache_item {
    const uint8_t *key;         /* The key. */
    size_t key_len;             /* Its length. */
    const uint8_t *data;        /* The value. */
    size_t data_len;            /* Its length. */
    uint32_t flags;             /* Client flags. */
    bool has_cas;               /* Whether 'cas' is known. */
    uint64_t cas;               /* cas unique, if 'has_cas'. */
    long long expires_ms;       /* When the entry expires. */
    uint64_t hits;              /* Lookups it answered. */
};

/* Counters of a cache. */
struct kairo_mc_cache_stats {
    uint64_t hits;              /* Lookups answered. */
    uint64_t misses;            /* Lookups not answered. */
    uint64_t fills[KAIRO_MC_N_FILLS]; /* Fill attempts, by result. */
    uint64_t invalidations;     /* Writes that removed a value. */
    uint64_t writes;            /* Writes reported. */
    uint64_t flushes;           /* Flushes. */
    uint64_t evictions;         /* Entries evicted for memory. */
    uint64_t expirations;       /* Entries found expired. */
    uint64_t expectations;      /* Expectations recorded. */
    uint64_t expect_ambiguous;  /* Expectations spoiled by a reused id. */
    uint64_t reassembled;       /* Multi-datagram messages reassembled. */
    uint64_t reassembly_dropped; /* Multi-datagram messages given up: out
                                 * of order, too big, too many at once. */
    size_t n_values;            /* Entries with a value. */
    size_t n_hints;             /* Entries without one. */
    size_t bytes;               /* Memory the entries use. */
};

struct kairo_mc_cache;

/* Creates a cache with the settings in 'cfg'. */
struct kairo_mc_cache *kairo_mc_cache_create(
    const struct kairo_mc_cache_config *cfg);

/* Frees 'cache' and everything in it.  NULL is allowed. */
void kairo_mc_cache_destroy(struct kairo_mc_cache *cache);

/* Returns a hash of the 'len'-byte 'key', for the functions below. */
uint32_t kairo_mc_cache_hash(const void *key, size_t len);

/* Looks up the 'len'-byte 'key' (hash 'hash') at time 'now'.  Returns true
 * and fills '*item' if the cache holds an unexpired value for it, with its
 * cas unique if 'need_cas', otherwise returns false (dropping an expired
 * value). */
bool kairo_mc_cache_lookup(struct kairo_mc_cache *cache, const void *key,
                           size_t len, uint32_t hash, bool need_cas,
                           long long now, struct kairo_mc_cache_item *item);

/* Counts a get of the key with hash 'hash' that missed.  Returns true if
 * the key is now hot enough to be filled. */
bool kairo_mc_cache_count_miss(struct kairo_mc_cache *cache, uint32_t hash);

/* Returns a ticket for a get forwarded at 'now'. */
struct kairo_mc_cache_ticket kairo_mc_cache_ticket(
    const struct kairo_mc_cache *cache, long long now);

/* Reports a write of the 'len'-byte 'key' (hash 'hash'), forwarded at
 * 'now'.  Removes its value; 'expiry' and 'expires_ms' (absolute, LLONG_MAX
 * for never) say what the write does to its expiry. */
void kairo_mc_cache_write(struct kairo_mc_cache *cache, const void *key,
                          size_t len, uint32_t hash,
                          enum kairo_mc_cache_expiry expiry,
                          long long expires_ms, long long now);

/* Reports a flush forwarded at 'now' that takes effect 'delay_ms' later (0
 * for at once): removes every entry now and refuses fills until then. */
void kairo_mc_cache_flush(struct kairo_mc_cache *cache, long long now,
                          long long delay_ms);

/* Fills the cache with the value of the 'len'-byte 'key' (hash 'hash'),
 * read from the reply to a get forwarded with 'ticket', at 'now'. */
enum kairo_mc_cache_fill kairo_mc_cache_fill(
    struct kairo_mc_cache *cache, const struct kairo_mc_cache_ticket *ticket,
    const void *key, size_t len, uint32_t hash, uint32_t flags,
    bool has_cas, uint64_t cas, const void *data, size_t data_len,
    long long now);

/* Remembers that a get from 'client' with request id 'request_id' was
 * forwarded at 'now', in 'n_replies' datagrams (one per backend). */
void kairo_mc_cache_expect(struct kairo_mc_cache *cache, uint64_t client,
                           uint16_t request_id, unsigned int n_replies,
                           long long now);

/* Looks for the expectation of a reply to 'client' with request id
 * 'request_id' at 'now'.  Returns true and stores its ticket in '*ticket'
 * if there is one, unexpired and unambiguous; counts the reply against it
 * either way. */
bool kairo_mc_cache_take(struct kairo_mc_cache *cache, uint64_t client,
                         uint16_t request_id, long long now,
                         struct kairo_mc_cache_ticket *ticket);

/* What kairo_mc_cache_take_part() did with one datagram of a reply
 * message of several. */
enum kairo_mc_cache_part {
    KAIRO_MC_PART_IGNORED,      /* Not kept: unexpected, or its message was
                                 * dropped (see reassembly_dropped). */
    KAIRO_MC_PART_KEPT,         /* Kept; more datagrams are to come. */
    KAIRO_MC_PART_COMPLETE,     /* The last one: the message is complete. */
};

/* Adds datagram 'seq' of 'total' (at least 2) of a reply to 'client' with
 * request id 'request_id', received at 'now', to the message being
 * reassembled.  'payload' and 'size' are the whole UDP payload, frame header
 * included.  Datagram 0 starts a message if a get is expected from 'client'
 * with 'request_id'; every other must follow the one before.  A message is
 * dropped if a datagram is missing, repeated or out of order, if it would
 * exceed the largest value admitted plus 512 bytes (at most
 * KAIRO_MC_MAX_DATAGRAM, what the reply parser reads), or if
 * KAIRO_MC_CACHE_REASSEMBLIES others are in progress.
 *
 * On KAIRO_MC_PART_COMPLETE, counts the message against its expectation as
 * kairo_mc_cache_take() does, stores the get's ticket in '*ticket' and the
 * message in '*message' and '*size': the frame header of datagram 0, then
 * the payloads of every datagram after their frame headers, in order, valid
 * until the next call on 'cache'.  Returns KAIRO_MC_PART_IGNORED for a
 * complete message whose expectation is ambiguous. */
enum kairo_mc_cache_part kairo_mc_cache_take_part(
    struct kairo_mc_cache *cache, uint64_t client, uint16_t request_id,
    uint16_t seq, uint16_t total, const void *payload, size_t size,
    long long now, struct kairo_mc_cache_ticket *ticket,
    const uint8_t **message, size_t *message_size);

/* Stores the counters of 'cache' in '*stats'. */
void kairo_mc_cache_get_stats(const struct kairo_mc_cache *cache,
                              struct kairo_mc_cache_stats *stats);

/* Calls 'cb' with 'aux' for every value in 'cache' (hints are skipped), in
 * no particular order. */
void kairo_mc_cache_for_each(const struct kairo_mc_cache *cache,
                             void (*cb)(const struct kairo_mc_cache_item *,
                                        void *aux),
                             void *aux);

/* Returns the settings of 'cache'. */
const struct kairo_mc_cache_config *kairo_mc_cache_get_config(
    const struct kairo_mc_cache *cache);

/* Returns the name of 'fill' ("filled", "not-hot", ...); a static string. */
const char *kairo_mc_cache_fill_to_string(enum kairo_mc_cache_fill fill);

/* Converts the memcached 'exptime' (0 never, negative already expired, up
 * to 30 days relative, beyond that a Unix time), received at 'now' when the
 * Unix time is 'unix_now', to an absolute time on the clock of 'now', or
 * LLONG_MAX for never. */
long long kairo_mc_exptime_to_ms(int64_t exptime, long long now,
                                 long long unix_now);

#endif /* kairo-mc-cache.h */
