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
#include "kairo-mc-cache.h"

#include <limits.h>
#include <string.h>

#include "hash.h"
#include "kairo-mc-proto.h"
#include "openvswitch/list.h"
#include "util.h"

BUILD_ASSERT_DECL(IS_POW2(KAIRO_MC_CACHE_SLOTS));
BUILD_ASSERT_DECL(IS_POW2(KAIRO_MC_CACHE_EXPECTATIONS));
BUILD_ASSERT_DECL(KAIRO_MC_MAX_KEY_LEN <= UINT8_MAX);

/* Longest relative memcached exptime, in seconds (30 days); larger values
 * are Unix times. */
#define REALTIME_MAXDELTA (60 * 60 * 24 * 30)

/* One key the cache knows: its value, its expiry hint, or both. */
struct cache_entry {
    struct hmap_node node;      /* In 'entries' of struct kairo_mc_cache. */
    struct ovs_list clock_node; /* In 'clock' of struct kairo_mc_cache. */
    uint8_t *data;              /* The value (malloc()ed), or NULL. */
    uint32_t data_len;          /* Length of 'data'. */
    uint32_t flags;             /* Client flags of the value. */
    uint64_t cas;               /* cas unique, if 'has_cas'. */
    uint64_t hits;              /* Lookups the value answered. */
    long long expires_ms;       /* When the value expires. */
    long long hint_ms;          /* When the key expires, if 'has_hint'. */
    bool has_cas;               /* Whether 'cas' is known. */
    bool has_hint;              /* Whether 'hint_ms' is known. */
    bool referenced;            /* Hit since the clock hand passed. */
    uint8_t key_len;            /* Length of 'key', 1 to 250. */
    uint8_t key[];              /* The key. */
};

/* The last write to the keys of one slot. */
struct write_slot {
    uint64_t seq;               /* Its sequence number, 0 if none. */
    long long time_ms;          /* When it was forwarded. */
};

/* A get waiting for its replies. */
struct expectation {
    uint64_t client;            /* Who sent it. */
    uint16_t request_id;        /* Its request id. */
    bool ambiguous;             /* Another get reused the id meanwhile. */
    unsigned int n_replies;     /* Replies still expected; 0 if unused. */
    long long expires_ms;       /* When to stop waiting. */
    struct kairo_mc_cache_ticket ticket; /* When it was forwarded. */
};

/* A reply message of several datagrams being reassembled. */
struct reassembly {
    uint64_t client;            /* Whom it goes to. */
    uint16_t request_id;        /* Its request id. */
    uint16_t next_seq;          /* The datagram expected next; 0 if the
                                 * slot is free. */
    uint16_t total;             /* Datagrams in the message. */
    long long expires_ms;       /* When to give it up. */
    uint8_t *buf;               /* Frame header of datagram 0, then the
                                 * payloads so far. */
    size_t size;                /* Bytes in 'buf'. */
    size_t capacity;            /* Bytes allocated for 'buf'. */
};

struct kairo_mc_cache {
    struct kairo_mc_cache_config cfg; /* Settings. */
    struct hmap entries;        /* Contains struct cache_entry. */
    struct ovs_list clock;      /* Entries, the clock hand at the front. */
    struct kairo_mc_sketch sketch; /* Gets that missed. */
    struct kairo_mc_cache_stats stats; /* Counters and sizes. */

    uint64_t write_seq;         /* Writes and flushes reported. */
    uint64_t flush_seq;         /* Sequence number of the last flush. */
    long long flush_ms;         /* When it was forwarded. */
    long long flush_until_ms;   /* When it takes effect. */
    struct write_slot slots[KAIRO_MC_CACHE_SLOTS];
    struct expectation expectations[KAIRO_MC_CACHE_EXPECTATIONS];
    struct reassembly reassemblies[KAIRO_MC_CACHE_REASSEMBLIES];
    size_t n_reassemblies;      /* Slots of 'reassemblies' in use. */
    uint8_t *message;           /* The last message reassembled, kept until
                                 * the next call. */
};

/* Returns the memory 'e' accounts for. */
static size_t
entry_size(const struct cache_entry *e)
{
    return sizeof *e + e->key_len + e->data_len;
}

struct kairo_mc_cache *
kairo_mc_cache_create(const struct kairo_mc_cache_config *cfg)
{
    struct kairo_mc_cache *cache = xzalloc(sizeof *cache);
    size_t width;

    cache->cfg = *cfg;
    cache->cfg.threshold = MAX(1, MIN(cfg->threshold, UINT8_MAX));
    hmap_init(&cache->entries);
    ovs_list_init(&cache->clock);

    /* About one counter per 64 bytes of cache, so that the sketch can tell
     * apart several times more keys than the cache holds. */
    width = MIN(cfg->max_bytes / 64, 1u << 20);
    kairo_mc_sketch_init(&cache->sketch, width, cfg->decay_period);
    return cache;
}

/* Removes 'e' from 'cache' and frees it. */
static void
entry_remove(struct kairo_mc_cache *cache, struct cache_entry *e)
{
    cache->stats.bytes -= entry_size(e);
    if (e->data) {
        cache->stats.n_values--;
    } else {
        cache->stats.n_hints--;
    }
    hmap_remove(&cache->entries, &e->node);
    ovs_list_remove(&e->clock_node);
    free(e->data);
    free(e);
}

void
kairo_mc_cache_destroy(struct kairo_mc_cache *cache)
{
    if (cache) {
        struct cache_entry *e;

        HMAP_FOR_EACH_SAFE (e, node, &cache->entries) {
            entry_remove(cache, e);
        }
        hmap_destroy(&cache->entries);
        kairo_mc_sketch_destroy(&cache->sketch);
        for (size_t i = 0; i < KAIRO_MC_CACHE_REASSEMBLIES; i++) {
            free(cache->reassemblies[i].buf);
        }
        free(cache->message);
        free(cache);
    }
}

uint32_t
kairo_mc_cache_hash(const void *key, size_t len)
{
    return hash_bytes(key, len, 0x6b616972);
}

/* Returns the entry for 'key' in 'cache', or NULL. */
static struct cache_entry *
entry_find(const struct kairo_mc_cache *cache, const void *key, size_t len,
           uint32_t hash)
{
    struct cache_entry *e;

    HMAP_FOR_EACH_WITH_HASH (e, node, hash, &cache->entries) {
        if (e->key_len == len && !memcmp(e->key, key, len)) {
            return e;
        }
    }
    return NULL;
}

/* Drops the value of 'e', keeping the entry if it has a hint and removing
 * it otherwise. */
static void
entry_drop_value(struct kairo_mc_cache *cache, struct cache_entry *e)
{
    if (!e->has_hint) {
        entry_remove(cache, e);
    } else if (e->data) {
        cache->stats.bytes -= e->data_len;
        cache->stats.n_values--;
        cache->stats.n_hints++;
        free(e->data);
        e->data = NULL;
        e->data_len = 0;
    }
}

/* Evicts entries of 'cache' other than 'keep' (may be NULL) until its
 * memory is within its limit, or nothing else is left. */
static void
cache_evict(struct kairo_mc_cache *cache, const struct cache_entry *keep)
{
    /* Each entry is passed at most twice: once to clear 'referenced', once
     * to evict it. */
    size_t budget = 2 * hmap_count(&cache->entries) + 2;

    while (cache->stats.bytes > cache->cfg.max_bytes && budget--
           && !ovs_list_is_empty(&cache->clock)) {
        struct cache_entry *e = CONTAINER_OF(ovs_list_front(&cache->clock),
                                             struct cache_entry, clock_node);

        if (e == keep || e->referenced) {
            e->referenced = false;
            ovs_list_remove(&e->clock_node);
            ovs_list_push_back(&cache->clock, &e->clock_node);
        } else {
            cache->stats.evictions++;
            entry_remove(cache, e);
        }
    }
}

/* Returns a new, valueless entry for 'key' in 'cache'. */
static struct cache_entry *
entry_create(struct kairo_mc_cache *cache, const void *key, size_t len,
             uint32_t hash)
{
    struct cache_entry *e = xzalloc(sizeof *e + len);

    e->key_len = len;
    memcpy(e->key, key, len);
    hmap_insert(&cache->entries, &e->node, hash);
    ovs_list_push_back(&cache->clock, &e->clock_node);
    cache->stats.bytes += entry_size(e);
    cache->stats.n_hints++;
    return e;
}

bool
kairo_mc_cache_lookup(struct kairo_mc_cache *cache, const void *key,
                      size_t len, uint32_t hash, bool need_cas,
                      long long now, struct kairo_mc_cache_item *item)
{
    struct cache_entry *e = entry_find(cache, key, len, hash);

    if (!e || !e->data || (need_cas && !e->has_cas)) {
        cache->stats.misses++;
        return false;
    }
    if (now >= e->expires_ms) {
        cache->stats.expirations++;
        cache->stats.misses++;
        entry_drop_value(cache, e);
        return false;
    }

    e->referenced = true;
    e->hits++;
    cache->stats.hits++;
    item->key = e->key;
    item->key_len = e->key_len;
    item->data = e->data;
    item->data_len = e->data_len;
    item->flags = e->flags;
    item->has_cas = e->has_cas;
    item->cas = e->cas;
    item->expires_ms = e->expires_ms;
    item->hits = e->hits;
    return true;
}

bool
kairo_mc_cache_count_miss(struct kairo_mc_cache *cache, uint32_t hash)
{
    return kairo_mc_sketch_add(&cache->sketch, hash) >= cache->cfg.threshold;
}

struct kairo_mc_cache_ticket
kairo_mc_cache_ticket(const struct kairo_mc_cache *cache, long long now)
{
    struct kairo_mc_cache_ticket ticket = {
        .seq = cache->write_seq,
        .time_ms = now,
    };
    return ticket;
}

void
kairo_mc_cache_write(struct kairo_mc_cache *cache, const void *key,
                     size_t len, uint32_t hash,
                     enum kairo_mc_cache_expiry expiry, long long expires_ms,
                     long long now)
{
    struct write_slot *slot = &cache->slots[hash
                                            & (KAIRO_MC_CACHE_SLOTS - 1)];
    struct cache_entry *e = entry_find(cache, key, len, hash);

    cache->stats.writes++;
    slot->seq = ++cache->write_seq;
    slot->time_ms = now;

    if (e && e->data) {
        cache->stats.invalidations++;
    }
    switch (expiry) {
    case KAIRO_MC_EXPIRY_SET:
        if (!e && len && len <= KAIRO_MC_MAX_KEY_LEN) {
            e = entry_create(cache, key, len, hash);
        }
        if (e) {
            e->has_hint = true;
            e->hint_ms = expires_ms;
        }
        break;
    case KAIRO_MC_EXPIRY_AT_MOST:
        if (e && e->has_hint) {
            e->hint_ms = MIN(e->hint_ms, expires_ms);
        }
        break;
    case KAIRO_MC_EXPIRY_KEEP:
        break;
    case KAIRO_MC_EXPIRY_FORGET:
        if (e) {
            e->has_hint = false;
        }
        break;
    }
    if (e) {
        entry_drop_value(cache, e);
    }
    cache_evict(cache, NULL);
}

void
kairo_mc_cache_flush(struct kairo_mc_cache *cache, long long now,
                     long long delay_ms)
{
    struct cache_entry *e;

    cache->stats.flushes++;
    cache->stats.invalidations += cache->stats.n_values;
    HMAP_FOR_EACH_SAFE (e, node, &cache->entries) {
        entry_remove(cache, e);
    }
    cache->flush_seq = ++cache->write_seq;
    cache->flush_ms = now;
    cache->flush_until_ms = MAX(cache->flush_until_ms,
                                now + MAX(delay_ms, 0));
}

/* Returns true if a fill of the key with hash 'hash' for 'ticket' at 'now'
 * may have raced with a write. */
static bool
fill_raced(const struct kairo_mc_cache *cache, uint32_t hash,
           const struct kairo_mc_cache_ticket *ticket, long long now)
{
    const struct write_slot *slot
        = &cache->slots[hash & (KAIRO_MC_CACHE_SLOTS - 1)];
    long long settle = cache->cfg.settle_ms;

    return (slot->seq > ticket->seq
            || (slot->seq && ticket->time_ms - slot->time_ms < settle)
            || cache->flush_seq > ticket->seq
            || (cache->flush_seq && ticket->time_ms - cache->flush_ms < settle)
            || now < cache->flush_until_ms
            || ticket->time_ms < cache->flush_until_ms);
}

enum kairo_mc_cache_fill
kairo_mc_cache_fill(struct kairo_mc_cache *cache,
                    const struct kairo_mc_cache_ticket *ticket,
                    const void *key, size_t len, uint32_t hash,
                    uint32_t flags, bool has_cas, uint64_t cas,
                    const void *data, size_t data_len, long long now)
{
    enum kairo_mc_cache_fill result;
    struct cache_entry *e;
    long long expires;

    if (fill_raced(cache, hash, ticket, now)) {
        result = KAIRO_MC_FILL_RACED;
    } else if (kairo_mc_sketch_estimate(&cache->sketch, hash)
               < cache->cfg.threshold) {
        result = KAIRO_MC_FILL_NOT_HOT;
    } else if (!len || len > KAIRO_MC_MAX_KEY_LEN
               || data_len > cache->cfg.max_value
               || sizeof *e + len + data_len > cache->cfg.max_bytes) {
        result = KAIRO_MC_FILL_TOO_BIG;
    } else {
        e = entry_find(cache, key, len, hash);
        expires = now + cache->cfg.max_ttl_ms;
        if (e && e->has_hint) {
            expires = MIN(expires, e->hint_ms);
        }
        if (expires <= now) {
            result = KAIRO_MC_FILL_EXPIRED;
        } else {
            if (!e) {
                e = entry_create(cache, key, len, hash);
            }
            if (e->data) {
                cache->stats.bytes -= e->data_len;
                free(e->data);
            } else {
                cache->stats.n_hints--;
                cache->stats.n_values++;
            }
            e->data = xmemdup(data, MAX(data_len, 1));
            e->data_len = data_len;
            e->flags = flags;
            e->has_cas = has_cas;
            e->cas = cas;
            e->expires_ms = expires;
            e->hits = 0;
            cache->stats.bytes += data_len;
            cache_evict(cache, e);
            result = KAIRO_MC_FILL_OK;
        }
    }
    cache->stats.fills[result]++;
    return result;
}

/* Returns the expectation slot of 'client' and 'request_id'. */
static struct expectation *
expectation_slot(struct kairo_mc_cache *cache, uint64_t client,
                 uint16_t request_id)
{
    uint32_t h = hash_uint64_basis(client, request_id);

    return &cache->expectations[h & (KAIRO_MC_CACHE_EXPECTATIONS - 1)];
}

/* Returns true if 'x' is in use for 'client' and 'request_id' at 'now'. */
static bool
expectation_matches(const struct expectation *x, uint64_t client,
                    uint16_t request_id, long long now)
{
    return (x->n_replies && x->client == client
            && x->request_id == request_id && now < x->expires_ms);
}

void
kairo_mc_cache_expect(struct kairo_mc_cache *cache, uint64_t client,
                      uint16_t request_id, unsigned int n_replies,
                      long long now)
{
    struct expectation *x = expectation_slot(cache, client, request_id);

    cache->stats.expectations++;
    if (expectation_matches(x, client, request_id, now)) {
        /* Replies to the two gets cannot be told apart: trust neither. */
        cache->stats.expect_ambiguous++;
        x->ambiguous = true;
        x->n_replies += n_replies;
        x->expires_ms = now + KAIRO_MC_CACHE_EXPECT_MS;
        return;
    }
    x->client = client;
    x->request_id = request_id;
    x->ambiguous = false;
    x->n_replies = MAX(n_replies, 1);
    x->expires_ms = now + KAIRO_MC_CACHE_EXPECT_MS;
    x->ticket = kairo_mc_cache_ticket(cache, now);
}

bool
kairo_mc_cache_take(struct kairo_mc_cache *cache, uint64_t client,
                    uint16_t request_id, long long now,
                    struct kairo_mc_cache_ticket *ticket)
{
    struct expectation *x = expectation_slot(cache, client, request_id);
    bool ok;

    if (!expectation_matches(x, client, request_id, now)) {
        return false;
    }
    ok = !x->ambiguous;
    *ticket = x->ticket;
    x->n_replies--;
    return ok;
}

/* Frees the reassembly 'r' of 'cache' and counts it as dropped. */
static void
reassembly_drop(struct kairo_mc_cache *cache, struct reassembly *r)
{
    free(r->buf);
    memset(r, 0, sizeof *r);
    cache->n_reassemblies--;
    cache->stats.reassembly_dropped++;
}

/* Returns the reassembly of 'cache' for 'client' and 'request_id' at
 * 'now', or NULL; drops the expired ones it meets. */
static struct reassembly *
reassembly_find(struct kairo_mc_cache *cache, uint64_t client,
                uint16_t request_id, long long now)
{
    struct reassembly *found = NULL;

    for (size_t i = 0; cache->n_reassemblies
                       && i < KAIRO_MC_CACHE_REASSEMBLIES; i++) {
        struct reassembly *r = &cache->reassemblies[i];

        if (!r->next_seq) {
            continue;
        } else if (now >= r->expires_ms) {
            reassembly_drop(cache, r);
        } else if (r->client == client && r->request_id == request_id) {
            found = r;
        }
    }
    return found;
}

enum kairo_mc_cache_part
kairo_mc_cache_take_part(struct kairo_mc_cache *cache, uint64_t client,
                         uint16_t request_id, uint16_t seq, uint16_t total,
                         const void *payload, size_t size, long long now,
                         struct kairo_mc_cache_ticket *ticket,
                         const uint8_t **message, size_t *message_size)
{
    size_t max_size = MIN(cache->cfg.max_value + 512, KAIRO_MC_MAX_DATAGRAM);
    struct reassembly *r;
    size_t len;

    free(cache->message);
    cache->message = NULL;
    if (size < KAIRO_MC_FRAME_HEADER_LEN || total < 2 || seq >= total) {
        return KAIRO_MC_PART_IGNORED;
    }
    len = size - KAIRO_MC_FRAME_HEADER_LEN;

    r = reassembly_find(cache, client, request_id, now);
    if (seq == 0) {
        const struct expectation *x = expectation_slot(cache, client,
                                                       request_id);

        if (r) {
            /* A new message with the same id: the old one is cut short,
             * and its slot is taken again below. */
            reassembly_drop(cache, r);
        }
        if (!expectation_matches(x, client, request_id, now)) {
            return KAIRO_MC_PART_IGNORED;
        }
        for (size_t i = 0; i < KAIRO_MC_CACHE_REASSEMBLIES && !r; i++) {
            if (!cache->reassemblies[i].next_seq) {
                r = &cache->reassemblies[i];
            }
        }
        if (!r || size > max_size) {
            cache->stats.reassembly_dropped++;
            return KAIRO_MC_PART_IGNORED;
        }
        r->client = client;
        r->request_id = request_id;
        r->total = total;
        r->expires_ms = now + KAIRO_MC_CACHE_EXPECT_MS;
        r->capacity = MIN(max_size, (size_t) total * size);
        r->buf = xmalloc(r->capacity);
        memcpy(r->buf, payload, size);
        r->size = size;
        r->next_seq = 1;
        cache->n_reassemblies++;
        return KAIRO_MC_PART_KEPT;
    }

    if (!r) {
        return KAIRO_MC_PART_IGNORED;
    }
    if (seq != r->next_seq || total != r->total || r->size + len > max_size) {
        reassembly_drop(cache, r);
        return KAIRO_MC_PART_IGNORED;
    }
    if (r->size + len > r->capacity) {
        r->capacity = MIN(max_size, MAX(2 * r->capacity, r->size + len));
        r->buf = xrealloc(r->buf, r->capacity);
    }
    memcpy(r->buf + r->size, (const uint8_t *) payload
           + KAIRO_MC_FRAME_HEADER_LEN, len);
    r->size += len;
    if (++r->next_seq < total) {
        return KAIRO_MC_PART_KEPT;
    }

    /* Complete. */
    cache->message = r->buf;
    *message = r->buf;
    *message_size = r->size;
    memset(r, 0, sizeof *r);
    cache->n_reassemblies--;
    cache->stats.reassembled++;
    return (kairo_mc_cache_take(cache, client, request_id, now, ticket)
            ? KAIRO_MC_PART_COMPLETE : KAIRO_MC_PART_IGNORED);
}

void
kairo_mc_cache_get_stats(const struct kairo_mc_cache *cache,
                         struct kairo_mc_cache_stats *stats)
{
    *stats = cache->stats;
}

void
kairo_mc_cache_for_each(const struct kairo_mc_cache *cache,
                        void (*cb)(const struct kairo_mc_cache_item *,
                                   void *aux),
                        void *aux)
{
    const struct cache_entry *e;

    HMAP_FOR_EACH (e, node, &cache->entries) {
        if (e->data) {
            struct kairo_mc_cache_item item = {
                .key = e->key,
                .key_len = e->key_len,
                .data = e->data,
                .data_len = e->data_len,
                .flags = e->flags,
                .has_cas = e->has_cas,
                .cas = e->cas,
                .expires_ms = e->expires_ms,
                .hits = e->hits,
            };
            cb(&item, aux);
        }
    }
}

const struct kairo_mc_cache_config *
kairo_mc_cache_get_config(const struct kairo_mc_cache *cache)
{
    return &cache->cfg;
}

const char *
kairo_mc_cache_fill_to_string(enum kairo_mc_cache_fill fill)
{
    switch (fill) {
    case KAIRO_MC_FILL_OK:
        return "filled";
    case KAIRO_MC_FILL_NOT_HOT:
        return "not-hot";
    case KAIRO_MC_FILL_RACED:
        return "raced";
    case KAIRO_MC_FILL_TOO_BIG:
        return "too-big";
    case KAIRO_MC_FILL_EXPIRED:
        return "expired";
    case KAIRO_MC_N_FILLS:
        break;
    }
    return "unknown";
}

long long
kairo_mc_exptime_to_ms(int64_t exptime, long long now, long long unix_now)
{
    if (!exptime) {
        return LLONG_MAX;
    } else if (exptime < 0) {
        return now;
    } else if (exptime <= REALTIME_MAXDELTA) {
        return now + exptime * 1000;
    } else {
        /* memcached counts an absolute time in whole seconds from its own
         * start; a time at or before now has already expired. */
        return exptime <= unix_now ? now : now + (exptime - unix_now) * 1000;
    }
}
