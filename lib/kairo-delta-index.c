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
#include "kairo-delta-index.h"

#include <errno.h>
#include <string.h>

#include "flow.h"
#include "hash.h"
#include "hindex.h"
#include "openvswitch/hmap.h"
#include "openvswitch/list.h"
#include "openvswitch/match.h"
#include "openvswitch/util.h"
#include "util.h"

/* A group keeps at most this many secondary hashes.  A query whose B has no
 * secondary hash when the group is full scans the group. */
#define KDI_MAX_SECONDARIES 4

/* A group with fewer lookups than this is scanned rather than given a
 * secondary hash: scanning it is about as cheap as a probe. */
#define KDI_SECONDARY_MIN 16

/* A later lookup whose group has more mask words than this stores its whole
 * masked key, because its "explicit words" bitmap is one 64-bit word. */
#define KDI_BITMAP_BITS 64

/* Word maps are two 64-bit words, one bit per uint64_t of struct flow. */
BUILD_ASSERT_DECL(FLOW_U64S <= 128);

/* A lookup names its group in this many bits, so an index holds at most
 * KDI_MAX_GROUPS groups at once. */
#define KDI_GROUP_BITS 20
#define KDI_MAX_GROUPS ((UINT32_C(1) << KDI_GROUP_BITS) - 1)

/* A lookup's position in its megaflow takes the other 12 bits. */
#define KDI_POS_BITS (32 - KDI_GROUP_BITS)
BUILD_ASSERT_DECL(KAIRO_DELTA_INDEX_MAX_LOOKUPS <= 1 << KDI_POS_BITS);

/* The 'rule_idx' of a lookup that missed. */
#define KDI_MISS UINT32_MAX

/* One lookup of a megaflow.  It lives inside its megaflow's allocation, so
 * its address is stable while the megaflow is in the index.  It is kept to
 * 32 bytes, because it is most of a megaflow's memory. */
struct kdi_lookup {
    struct hindex_node node;    /* In its group's 'lookups', by the hash of
                                 * its masked key.  Many lookups may share
                                 * one key (e.g. every megaflow's lookup in
                                 * a table of catch-all rules), and an
                                 * hindex removes any of them in O(1). */
    uint32_t rule_idx;          /* Its rule's index in 'rule_slots', or
                                 * KDI_MISS. */
    uint32_t rule_pos;          /* Its position in its rule's 'hits'. */
    uint32_t member;            /* Its position in its group's 'members',
                                 * valid while the group has secondaries. */
    uint32_t group_idx : KDI_GROUP_BITS;  /* Its group's index in
                                           * 'group_slots'. */
    uint32_t pos : KDI_POS_BITS;          /* Its position in its megaflow. */
};
BUILD_ASSERT_DECL(sizeof(struct kdi_lookup) == 40);

/* One megaflow: this header, 'n_lookups' lookups, then 'n_words' words of
 * key data, all in one allocation.  The key data of the lookups follow one
 * another in order, so a lookup's data start where the previous lookup's
 * end. */
struct kdi_megaflow {
    struct hmap_node node;      /* In 'megaflows', by hash of 'owner'. */
    const void *owner;          /* The caller's identity for it. */
    uint64_t id;                /* The caller's 64-bit id. */
    uint16_t n_lookups;         /* Number of elements in 'lookups'. */
    uint32_t n_words;           /* Words of key data after 'lookups'. */
    struct kdi_lookup lookups[];  /* The lookups, in translation order. */
};

/* A table of pointers with small, stable indexes.  A freed index is reused,
 * so the table never has more slots than it once had items at a time. */
struct kdi_slots {
    void **items;               /* Items by index; NULL in a free slot. */
    size_t n;                   /* Slots, in use or free. */
    size_t allocated;           /* Capacity of 'items'. */
    uint32_t *free;             /* Free indexes, a stack. */
    size_t n_free;              /* Entries in 'free'. */
    size_t allocated_free;      /* Capacity of 'free'. */
};

/* The lookups of one table that share one mask. */
struct kdi_group {
    struct hmap_node node;      /* In 'groups_by_mask'. */
    struct ovs_list list_node;  /* In 'tables[table_id]'. */
    struct hindex lookups;      /* Contains "struct kdi_lookup"s. */
    size_t n_lookups;           /* Number of lookups in 'lookups'. */
    uint32_t index;             /* Its index in 'group_slots'. */
    uint8_t table_id;           /* The table its lookups consulted. */
    uint8_t n_words;            /* Nonzero words of the mask. */
    uint64_t map[2];            /* Bit w set: word w of the mask is nonzero. */

    /* Secondary hashes.  'members' exists only while 'n_secondaries' > 0. */
    struct kdi_lookup **members;  /* Every lookup, by its 'member'. */
    size_t n_members;             /* Number of lookups in 'members'. */
    size_t allocated_members;     /* Capacity of 'members' and of each
                                   * secondary's 'pos'. */
    struct kdi_secondary *secondaries[KDI_MAX_SECONDARIES];
    size_t n_secondaries;         /* Secondaries in use. */

    uint64_t mask[];            /* 'n_words' nonzero mask words, followed by
                                 * 'n_words' bytes of word indexes. */
};

/* A secondary hash of a group, over the bits B that a query mask and the
 * group mask both fix. */
struct kdi_secondary {
    struct hmap buckets;        /* Contains "struct kdi_sbucket"s. */
    uint32_t *pos;              /* A member's position in its bucket, indexed
                                 * by the lookup's 'member'. */
    uint64_t bits[];            /* B, one word per group mask word. */
};

/* The members of a secondary hash whose keys agree on B.  Many buckets of a
 * selective B hold one member, so that one is kept inline. */
struct kdi_sbucket {
    struct hmap_node node;      /* In its secondary's 'buckets'. */
    uint32_t n;                 /* Number of members. */
    uint32_t allocated;         /* Capacity of 'many', or 0 if inline. */
    union {
        uint32_t one;           /* The member, while 'allocated' is 0. */
        uint32_t *many;         /* The members, once 'allocated' > 0. */
    };
};

/* A rule that some lookup hit, with what the lookups that hit it through
 * this entry may depend on: one entry per distinct ('rule', 'priority',
 * 'conj', 'conj_id'), all in the same 'rules' bucket. */
struct kdi_rule {
    struct hmap_node node;      /* In 'rules', by hash of 'rule'. */
    const void *rule;           /* The caller's rule identity. */
    int priority;               /* The lookups' threshold priority. */
    enum kairo_delta_index_conj conj;  /* Which conj_id rules matter. */
    uint32_t conj_id;           /* With KAIRO_DELTA_INDEX_CONJ_ONE. */
    uint32_t index;             /* Its index in 'rule_slots'. */
    uint32_t n_hits;            /* Number of lookups in 'hits'. */
    uint32_t allocated_hits;    /* Capacity of 'hits'. */
    struct kdi_lookup **hits;   /* The lookups that hit it. */
};

/* The index. */
struct kairo_delta_index {
    struct hmap megaflows;      /* Contains "struct kdi_megaflow"s. */
    struct hmap groups_by_mask; /* Contains "struct kdi_group"s. */
    struct ovs_list tables[256];  /* Each table's "struct kdi_group"s. */
    struct hmap rules;          /* Contains "struct kdi_rule"s. */
    struct kdi_slots group_slots;  /* "struct kdi_group"s by index. */
    struct kdi_slots rule_slots;   /* "struct kdi_rule"s by index. */

    size_t n_secondaries;       /* Secondary hashes over all groups. */
    uint64_t n_lookups;         /* Lookups over all megaflows. */
    size_t memory;              /* Bytes allocated, not counting hmap
                                 * bucket arrays. */
    struct kairo_delta_index_stats stats;  /* Operation counters only. */
};

/* An insert query, expanded once so that any word is one load. */
struct kdi_query {
    const uint64_t *value;      /* m.value, FLOW_U64S words. */
    const uint64_t *mask;       /* m.mask, FLOW_U64S words. */
    uint8_t table_id;           /* Table of the inserted rule. */
    int priority;               /* Priority of the inserted rule. */
    bool conj_filter;           /* Inserting a rule on conj_id 'conj_id'. */
    uint32_t conj_id;           /* With 'conj_filter'. */
    kairo_delta_index_cb *cb;   /* Called per affected megaflow. */
    void *aux;                  /* Passed to 'cb'. */
    size_t n_reported;          /* Calls of 'cb' so far. */
};

/* Allocation with accounting. */

/* Returns 'size' new bytes and charges them to 'idx'. */
static void *
kdi_alloc(struct kairo_delta_index *idx, size_t size)
{
    idx->memory += size;
    return xmalloc(size);
}

/* Frees 'p', of 'size' bytes, and credits them to 'idx'. */
static void
kdi_free(struct kairo_delta_index *idx, void *p, size_t size)
{
    if (p) {
        idx->memory -= size;
        free(p);
    }
}

/* Resizes 'p' from 'old_size' to 'new_size' bytes, adjusting the charge to
 * 'idx', and returns the new block. */
static void *
kdi_realloc(struct kairo_delta_index *idx, void *p, size_t old_size,
            size_t new_size)
{
    idx->memory += new_size;
    idx->memory -= old_size;
    return xrealloc(p, new_size);
}

/* Returns the bytes of 'hmap''s bucket array. */
static size_t
kdi_hmap_bytes(const struct hmap *hmap)
{
    return hmap->buckets == &hmap->one
           ? 0 : (hmap->mask + 1) * sizeof *hmap->buckets;
}

/* Returns true if a hash map with 'mask' + 1 buckets that hashes 'n'
 * entries is mostly empty and should shrink.  The wide margin keeps a map
 * that hovers around a power of two from being resized back and forth. */
static bool
kdi_should_shrink(size_t mask, size_t n)
{
    return mask > 15 && n < mask / 8;
}

/* Shrinks 'hmap' once it is mostly empty. */
static void
kdi_hmap_maybe_shrink(struct hmap *hmap)
{
    if (kdi_should_shrink(hmap->mask, hmap_count(hmap))) {
        hmap_shrink(hmap);
    }
}

/* Puts 'item' into a free slot of 'slots' and returns the slot's index. */
static uint32_t
kdi_slots_add(struct kairo_delta_index *idx, struct kdi_slots *slots,
              void *item)
{
    uint32_t index;

    if (slots->n_free) {
        index = slots->free[--slots->n_free];
    } else {
        if (slots->n >= slots->allocated) {
            size_t old = slots->allocated;
            size_t new = old ? 2 * old : 16;

            slots->items = kdi_realloc(idx, slots->items,
                                       old * sizeof *slots->items,
                                       new * sizeof *slots->items);
            slots->allocated = new;
        }
        index = slots->n++;
    }
    slots->items[index] = item;
    return index;
}

/* Frees slot 'index' of 'slots'. */
static void
kdi_slots_remove(struct kairo_delta_index *idx, struct kdi_slots *slots,
                 uint32_t index)
{
    if (slots->n_free >= slots->allocated_free) {
        size_t old = slots->allocated_free;
        size_t new = old ? 2 * old : 16;

        slots->free = kdi_realloc(idx, slots->free, old * sizeof *slots->free,
                                  new * sizeof *slots->free);
        slots->allocated_free = new;
    }
    slots->items[index] = NULL;
    slots->free[slots->n_free++] = index;
}

/* Frees the arrays of 'slots', whose items are all gone. */
static void
kdi_slots_destroy(struct kairo_delta_index *idx, struct kdi_slots *slots)
{
    kdi_free(idx, slots->items, slots->allocated * sizeof *slots->items);
    kdi_free(idx, slots->free, slots->allocated_free * sizeof *slots->free);
}

/* Word maps and keys. */

/* Returns the word indexes of group 'g', ascending. */
static inline const uint8_t *
kdi_group_widx(const struct kdi_group *g)
{
    return (const uint8_t *) &g->mask[g->n_words];
}

/* Returns true if word 'w' is set in 'map'. */
static inline bool
kdi_map_has(const uint64_t map[2], unsigned int w)
{
    return (map[w / 64] >> (w % 64)) & 1;
}

/* Returns how many words below word 'w' are set in 'map'. */
static inline unsigned int
kdi_map_rank(const uint64_t map[2], unsigned int w)
{
    uint64_t below = (UINT64_C(1) << (w % 64)) - 1;

    return (w >= 64 ? count_1bits(map[0]) : 0)
           + count_1bits(map[w / 64] & below);
}

/* Returns a megaflow's key data, which follows its lookups. */
static inline uint64_t *
kdi_mf_words(const struct kdi_megaflow *mf)
{
    return (uint64_t *) (void *) &mf->lookups[mf->n_lookups];
}

/* Returns the megaflow that contains 'l'. */
static inline struct kdi_megaflow *
kdi_lookup_megaflow(const struct kdi_lookup *l)
{
    return CONTAINER_OF(l - l->pos, struct kdi_megaflow, lookups);
}

/* Returns the group of lookup 'l' in 'idx'. */
static inline struct kdi_group *
kdi_lookup_group(const struct kairo_delta_index *idx,
                 const struct kdi_lookup *l)
{
    return idx->group_slots.items[l->group_idx];
}

/* Returns the rule that lookup 'l' in 'idx' hit, or NULL if it missed. */
static inline struct kdi_rule *
kdi_lookup_rule(const struct kairo_delta_index *idx,
                const struct kdi_lookup *l)
{
    return (l->rule_idx == KDI_MISS
            ? NULL : idx->rule_slots.items[l->rule_idx]);
}

/* Returns true if a lookup at position 'pos' in a group of 'n_words' mask
 * words stores every word of its key itself. */
static inline bool
kdi_stores_all(unsigned int pos, unsigned int n_words)
{
    return !pos || n_words > KDI_BITMAP_BITS;
}

/* Returns the key data of the lookup at position 'pos' of megaflow 'mf' in
 * 'idx', by walking over the data of the lookups before it.  O('pos'). */
static const uint64_t *
kdi_lookup_data(const struct kairo_delta_index *idx,
                const struct kdi_megaflow *mf, unsigned int pos)
{
    const uint64_t *data = kdi_mf_words(mf);

    for (unsigned int i = 0; i < pos; i++) {
        const struct kdi_group *g = kdi_lookup_group(idx, &mf->lookups[i]);

        data += (kdi_stores_all(i, g->n_words)
                 ? g->n_words : 1 + count_1bits(*data));
    }
    return data;
}

/* Stores in 'key' the masked key of lookup 'l' (group 'g'), one word per
 * mask word of 'g'.  A later lookup takes the words it did not store from
 * its megaflow's first lookup. */
static void
kdi_lookup_key(const struct kairo_delta_index *idx, const struct kdi_lookup *l,
               const struct kdi_group *g, uint64_t key[])
{
    const struct kdi_megaflow *mf = kdi_lookup_megaflow(l);
    const uint64_t *data = kdi_lookup_data(idx, mf, l->pos);

    if (kdi_stores_all(l->pos, g->n_words)) {
        memcpy(key, data, g->n_words * sizeof *key);
    } else {
        const struct kdi_lookup *first = &mf->lookups[0];
        const struct kdi_group *fg = kdi_lookup_group(idx, first);
        const uint64_t *fdata = kdi_mf_words(mf);
        const uint8_t *widx = kdi_group_widx(g);
        uint64_t explicit = *data++;

        for (unsigned int j = 0; j < g->n_words; j++) {
            if (explicit & (UINT64_C(1) << j)) {
                key[j] = *data++;
            } else {
                key[j] = fdata[kdi_map_rank(fg->map, widx[j])] & g->mask[j];
            }
        }
    }
}

/* Returns the hash of the 'n' words in 'key'. */
static uint32_t
kdi_hash_words(const uint64_t key[], unsigned int n)
{
    uint32_t hash = 0;

    for (unsigned int j = 0; j < n; j++) {
        hash = hash_add64(hash, key[j]);
    }
    return hash_finish(hash, n * 8);
}

/* Returns the hash of 'key' (one word per mask word of a group) restricted to
 * 'bits', skipping words where 'bits' is zero. */
static uint32_t
kdi_hash_bits(const uint64_t key[], const uint64_t bits[], unsigned int n)
{
    uint32_t hash = 0;

    for (unsigned int j = 0; j < n; j++) {
        if (bits[j]) {
            hash = hash_add64(hash, key[j] & bits[j]);
        }
    }
    return hash_finish(hash, n);
}

/* Groups. */

/* Fills 'map' with the nonzero words of 'mask' and returns their count. */
static unsigned int
kdi_mask_map(const struct flow_wildcards *mask, uint64_t map[2])
{
    const uint64_t *m = (const uint64_t *) &mask->masks;
    unsigned int n = 0;

    map[0] = map[1] = 0;
    for (unsigned int w = 0; w < FLOW_U64S; w++) {
        if (m[w]) {
            map[w / 64] |= UINT64_C(1) << (w % 64);
            n++;
        }
    }
    return n;
}

/* Returns the hash of a group for 'table_id' and 'mask'. */
static uint32_t
kdi_group_hash(uint8_t table_id, const struct flow_wildcards *mask)
{
    const uint64_t *m = (const uint64_t *) &mask->masks;
    uint32_t hash = hash_int(table_id, 0);

    for (unsigned int w = 0; w < FLOW_U64S; w++) {
        if (m[w]) {
            hash = hash_add(hash, w);
            hash = hash_add64(hash, m[w]);
        }
    }
    return hash_finish(hash, FLOW_U64S);
}

/* Returns the size in bytes of a group with 'n_words' mask words. */
static size_t
kdi_group_size(unsigned int n_words)
{
    return sizeof(struct kdi_group) + n_words * (sizeof(uint64_t) + 1);
}

/* Returns the group of 'idx' for 'table_id' and 'mask' (whose word map is
 * 'map' and hash 'hash'), creating it if needed. */
static struct kdi_group *
kdi_group_get(struct kairo_delta_index *idx, uint8_t table_id,
              const struct flow_wildcards *mask, const uint64_t map[2],
              unsigned int n_words, uint32_t hash)
{
    const uint64_t *m = (const uint64_t *) &mask->masks;
    struct kdi_group *g;

    HMAP_FOR_EACH_WITH_HASH (g, node, hash, &idx->groups_by_mask) {
        if (g->table_id == table_id && g->map[0] == map[0]
            && g->map[1] == map[1]) {
            const uint8_t *widx = kdi_group_widx(g);
            unsigned int j;

            for (j = 0; j < n_words; j++) {
                if (g->mask[j] != m[widx[j]]) {
                    break;
                }
            }
            if (j == n_words) {
                return g;
            }
        }
    }

    g = kdi_alloc(idx, kdi_group_size(n_words));
    memset(g, 0, sizeof *g);
    hindex_init(&g->lookups);
    g->table_id = table_id;
    g->n_words = n_words;
    g->map[0] = map[0];
    g->map[1] = map[1];

    uint8_t *widx = (uint8_t *) &g->mask[n_words];
    unsigned int j = 0;
    for (unsigned int w = 0; w < FLOW_U64S; w++) {
        if (m[w]) {
            g->mask[j] = m[w];
            widx[j] = w;
            j++;
        }
    }

    g->index = kdi_slots_add(idx, &idx->group_slots, g);
    hmap_insert(&idx->groups_by_mask, &g->node, hash);
    ovs_list_push_back(&idx->tables[table_id], &g->list_node);
    return g;
}

/* Returns the 'member' indexes of the lookups in bucket 'b'. */
static inline uint32_t *
kdi_sbucket_members(struct kdi_sbucket *b)
{
    return b->allocated ? b->many : &b->one;
}

/* Frees bucket 'b' (already out of its hmap). */
static void
kdi_sbucket_free(struct kairo_delta_index *idx, struct kdi_sbucket *b)
{
    if (b->allocated) {
        kdi_free(idx, b->many, b->allocated * sizeof *b->many);
    }
    kdi_free(idx, b, sizeof *b);
}

/* Frees secondary 's' of group 'g'. */
static void
kdi_secondary_destroy(struct kairo_delta_index *idx,
                      const struct kdi_group *g, struct kdi_secondary *s)
{
    struct kdi_sbucket *b;

    HMAP_FOR_EACH_POP (b, node, &s->buckets) {
        kdi_sbucket_free(idx, b);
    }
    hmap_destroy(&s->buckets);
    kdi_free(idx, s->pos, g->allocated_members * sizeof *s->pos);
    kdi_free(idx, s, sizeof *s + g->n_words * sizeof *s->bits);
    idx->n_secondaries--;
}

/* Frees group 'g', which has no lookups left. */
static void
kdi_group_destroy(struct kairo_delta_index *idx, struct kdi_group *g)
{
    for (size_t i = 0; i < g->n_secondaries; i++) {
        kdi_secondary_destroy(idx, g, g->secondaries[i]);
    }
    kdi_free(idx, g->members, g->allocated_members * sizeof *g->members);
    hindex_destroy(&g->lookups);
    hmap_remove(&idx->groups_by_mask, &g->node);
    ovs_list_remove(&g->list_node);

    kdi_slots_remove(idx, &idx->group_slots, g->index);
    kdi_free(idx, g, kdi_group_size(g->n_words));
}

/* Secondary hashes. */

/* Returns the bucket of secondary 's' in group 'g' whose members agree with
 * 'key' (one word per mask word of 'g') on the secondary's bits, or NULL.
 * 'hash' is kdi_hash_bits() of 'key'. */
static struct kdi_sbucket *
kdi_sbucket_find(const struct kairo_delta_index *idx,
                 const struct kdi_group *g, const struct kdi_secondary *s,
                 const uint64_t key[], uint32_t hash)
{
    uint64_t other[FLOW_U64S];
    struct kdi_sbucket *b;

    HMAP_FOR_EACH_WITH_HASH (b, node, hash, &s->buckets) {
        unsigned int j;

        kdi_lookup_key(idx, g->members[kdi_sbucket_members(b)[0]], g, other);
        for (j = 0; j < g->n_words; j++) {
            if ((other[j] ^ key[j]) & s->bits[j]) {
                break;
            }
        }
        if (j == g->n_words) {
            return b;
        }
    }
    return NULL;
}

/* Adds lookup 'l', which is member 'l->member' of 'g', to secondary 's'. */
static void
kdi_secondary_insert(struct kairo_delta_index *idx, const struct kdi_group *g,
                     struct kdi_secondary *s, const struct kdi_lookup *l)
{
    uint64_t key[FLOW_U64S];
    struct kdi_sbucket *b;
    uint32_t hash;

    kdi_lookup_key(idx, l, g, key);
    hash = kdi_hash_bits(key, s->bits, g->n_words);
    b = kdi_sbucket_find(idx, g, s, key, hash);
    if (!b) {
        b = kdi_alloc(idx, sizeof *b);
        b->n = b->allocated = 0;
        hmap_insert(&s->buckets, &b->node, hash);
    } else if (!b->allocated) {
        uint32_t one = b->one;

        b->allocated = 4;
        b->many = kdi_alloc(idx, b->allocated * sizeof *b->many);
        b->many[0] = one;
    } else if (b->n >= b->allocated) {
        uint32_t new = 2 * b->allocated;

        b->many = kdi_realloc(idx, b->many, b->allocated * sizeof *b->many,
                              new * sizeof *b->many);
        b->allocated = new;
    }
    s->pos[l->member] = b->n;
    kdi_sbucket_members(b)[b->n++] = l->member;
}

/* Returns the bucket of secondary 's' in 'g' that holds lookup 'l'. */
static struct kdi_sbucket *
kdi_secondary_bucket_of(const struct kairo_delta_index *idx,
                        const struct kdi_group *g,
                        const struct kdi_secondary *s,
                        const struct kdi_lookup *l)
{
    uint64_t key[FLOW_U64S];
    struct kdi_sbucket *b;

    kdi_lookup_key(idx, l, g, key);
    b = kdi_sbucket_find(idx, g, s, key,
                         kdi_hash_bits(key, s->bits, g->n_words));
    ovs_assert(b);
    return b;
}

/* Removes lookup 'l' from secondary 's' of group 'g'. */
static void
kdi_secondary_remove(struct kairo_delta_index *idx, const struct kdi_group *g,
                     struct kdi_secondary *s, const struct kdi_lookup *l)
{
    struct kdi_sbucket *b = kdi_secondary_bucket_of(idx, g, s, l);
    uint32_t *members = kdi_sbucket_members(b);
    uint32_t p = s->pos[l->member];
    uint32_t last = members[--b->n];

    ovs_assert(members[p] == l->member);
    members[p] = last;
    s->pos[last] = p;
    if (!b->n) {
        hmap_remove(&s->buckets, &b->node);
        kdi_sbucket_free(idx, b);
        kdi_hmap_maybe_shrink(&s->buckets);
    }
}

/* Records in every secondary of 'g' that lookup 'l' moved from member index
 * 'from' to 'l->member'. */
static void
kdi_secondaries_renumber(const struct kairo_delta_index *idx,
                         const struct kdi_group *g, const struct kdi_lookup *l,
                         uint32_t from)
{
    for (size_t i = 0; i < g->n_secondaries; i++) {
        struct kdi_secondary *s = g->secondaries[i];
        struct kdi_sbucket *b = kdi_secondary_bucket_of(idx, g, s, l);
        uint32_t *members = kdi_sbucket_members(b);
        uint32_t p = s->pos[from];

        ovs_assert(members[p] == from);
        members[p] = l->member;
        s->pos[l->member] = p;
    }
}

/* Appends lookup 'l' to the members of 'g', growing 'members' and every
 * secondary's 'pos' as needed. */
static void
kdi_group_add_member(struct kairo_delta_index *idx, struct kdi_group *g,
                     struct kdi_lookup *l)
{
    if (g->n_members >= g->allocated_members) {
        size_t old = g->allocated_members;
        size_t new = old ? 2 * old : 16;

        g->members = kdi_realloc(idx, g->members, old * sizeof *g->members,
                                 new * sizeof *g->members);
        for (size_t i = 0; i < g->n_secondaries; i++) {
            struct kdi_secondary *s = g->secondaries[i];

            s->pos = kdi_realloc(idx, s->pos, old * sizeof *s->pos,
                                 new * sizeof *s->pos);
        }
        g->allocated_members = new;
    }
    l->member = g->n_members;
    g->members[g->n_members++] = l;
}

/* Builds a secondary hash of 'g' on 'bits' (one word per mask word of 'g')
 * and returns it.  The caller checked that 'g' has room for it. */
static struct kdi_secondary *
kdi_secondary_create(struct kairo_delta_index *idx, struct kdi_group *g,
                     const uint64_t bits[])
{
    struct kdi_secondary *s;

    if (!g->n_secondaries) {
        struct kdi_lookup *l;

        ovs_assert(!g->members && !g->n_members);
        HINDEX_FOR_EACH (l, node, &g->lookups) {
            kdi_group_add_member(idx, g, l);
        }
    }

    s = kdi_alloc(idx, sizeof *s + g->n_words * sizeof *s->bits);
    hmap_init(&s->buckets);
    memcpy(s->bits, bits, g->n_words * sizeof *s->bits);
    s->pos = kdi_alloc(idx, g->allocated_members * sizeof *s->pos);
    g->secondaries[g->n_secondaries++] = s;
    idx->n_secondaries++;

    for (size_t i = 0; i < g->n_members; i++) {
        kdi_secondary_insert(idx, g, s, g->members[i]);
    }
    return s;
}

/* Adds lookup 'l', whose masked key hashes to 'hash', to group 'g'. */
static void
kdi_group_insert(struct kairo_delta_index *idx, struct kdi_group *g,
                 struct kdi_lookup *l, uint32_t hash)
{
    hindex_insert(&g->lookups, &l->node, hash);
    g->n_lookups++;
    if (g->n_secondaries) {
        kdi_group_add_member(idx, g, l);
        for (size_t i = 0; i < g->n_secondaries; i++) {
            kdi_secondary_insert(idx, g, g->secondaries[i], l);
        }
    }
}

/* Removes lookup 'l' from its group, and frees the group if it is left
 * empty. */
static void
kdi_group_remove(struct kairo_delta_index *idx, struct kdi_lookup *l)
{
    struct kdi_group *g = kdi_lookup_group(idx, l);

    if (g->n_secondaries) {
        uint32_t last = g->n_members - 1;

        for (size_t i = 0; i < g->n_secondaries; i++) {
            kdi_secondary_remove(idx, g, g->secondaries[i], l);
        }
        ovs_assert(g->members[l->member] == l);
        if (l->member != last) {
            struct kdi_lookup *moved = g->members[last];

            g->members[l->member] = moved;
            moved->member = l->member;
            kdi_secondaries_renumber(idx, g, moved, last);
        }
        g->n_members--;
    }

    hindex_remove(&g->lookups, &l->node);
    if (!--g->n_lookups) {
        kdi_group_destroy(idx, g);
    } else if (kdi_should_shrink(g->lookups.mask, g->lookups.n_unique)) {
        hindex_shrink(&g->lookups);
    }
}

/* Rules. */

/* Returns the entry for lookups that hit 'in->rule' with 'in''s threshold
 * and conjunctions, or NULL. */
static struct kdi_rule *
kdi_rule_find(const struct kairo_delta_index *idx,
              const struct kairo_delta_index_lookup *in)
{
    struct kdi_rule *r;

    HMAP_FOR_EACH_WITH_HASH (r, node, hash_pointer(in->rule, 0),
                             &idx->rules) {
        if (r->rule == in->rule && r->priority == in->priority
            && r->conj == in->conj
            && (in->conj != KAIRO_DELTA_INDEX_CONJ_ONE
                || r->conj_id == in->conj_id)) {
            return r;
        }
    }
    return NULL;
}

/* Frees rule entry 'r', which no lookup hits any more. */
static void
kdi_rule_destroy(struct kairo_delta_index *idx, struct kdi_rule *r)
{
    kdi_slots_remove(idx, &idx->rule_slots, r->index);
    hmap_remove(&idx->rules, &r->node);
    kdi_free(idx, r->hits, r->allocated_hits * sizeof *r->hits);
    kdi_free(idx, r, sizeof *r);
    kdi_hmap_maybe_shrink(&idx->rules);
}

/* Records that lookup 'l' hit rule entry 'r'. */
static void
kdi_rule_add_hit(struct kairo_delta_index *idx, struct kdi_rule *r,
                 struct kdi_lookup *l)
{
    if (r->n_hits >= r->allocated_hits) {
        uint32_t new = r->allocated_hits ? 2 * r->allocated_hits : 2;

        r->hits = kdi_realloc(idx, r->hits,
                              r->allocated_hits * sizeof *r->hits,
                              new * sizeof *r->hits);
        r->allocated_hits = new;
    }
    l->rule_idx = r->index;
    l->rule_pos = r->n_hits;
    r->hits[r->n_hits++] = l;
}

/* Forgets that lookup 'l' hit its rule, freeing the rule entry if no other
 * lookup hits it. */
static void
kdi_rule_remove_hit(struct kairo_delta_index *idx, struct kdi_lookup *l)
{
    struct kdi_rule *r = kdi_lookup_rule(idx, l);
    struct kdi_lookup *last = r->hits[--r->n_hits];

    ovs_assert(r->hits[l->rule_pos] == l);
    r->hits[l->rule_pos] = last;
    last->rule_pos = l->rule_pos;
    l->rule_idx = KDI_MISS;
    if (!r->n_hits) {
        kdi_rule_destroy(idx, r);
    } else if (r->allocated_hits > 16 && r->n_hits < r->allocated_hits / 4) {
        uint32_t new = r->allocated_hits / 2;

        r->hits = kdi_realloc(idx, r->hits,
                              r->allocated_hits * sizeof *r->hits,
                              new * sizeof *r->hits);
        r->allocated_hits = new;
    }
}

/* Megaflows. */

/* Returns the megaflow of 'owner' in 'idx', or NULL. */
static struct kdi_megaflow *
kdi_megaflow_find(const struct kairo_delta_index *idx, const void *owner)
{
    struct kdi_megaflow *mf;

    HMAP_FOR_EACH_WITH_HASH (mf, node, hash_pointer(owner, 0),
                             &idx->megaflows) {
        if (mf->owner == owner) {
            return mf;
        }
    }
    return NULL;
}

/* Returns the size in bytes of a megaflow with 'n_lookups' lookups and
 * 'n_words' words of key data. */
static size_t
kdi_megaflow_size(size_t n_lookups, size_t n_words)
{
    return (sizeof(struct kdi_megaflow)
            + n_lookups * sizeof(struct kdi_lookup)
            + n_words * sizeof(uint64_t));
}

/* What kairo_delta_index_add() works out about one lookup before it changes
 * anything. */
struct kdi_prep {
    uint64_t map[2];            /* Nonzero words of the lookup's mask. */
    uint64_t explicit;          /* Words it stores itself, if it has a
                                 * bitmap. */
    unsigned int n_words;       /* Nonzero words of the lookup's mask. */
    unsigned int n_stored;      /* Words of key data it takes, bitmap
                                 * included. */
};

/* Works out into 'p' what lookup 'l', at position 'pos' of its megaflow,
 * stores.  'first' is the megaflow's first lookup and 'first_map' its word
 * map (both unused when 'pos' is 0). */
static void
kdi_prepare(const struct kairo_delta_index_lookup *l, size_t pos,
            const struct kairo_delta_index_lookup *first,
            const uint64_t first_map[2], struct kdi_prep *p)
{
    p->n_words = kdi_mask_map(l->mask, p->map);
    p->explicit = 0;
    if (kdi_stores_all(pos, p->n_words)) {
        p->n_stored = p->n_words;
    } else {
        const uint64_t *key = (const uint64_t *) l->key;
        const uint64_t *mask = (const uint64_t *) &l->mask->masks;
        const uint64_t *fkey = (const uint64_t *) first->key;
        const uint64_t *fmask = (const uint64_t *) &first->mask->masks;
        unsigned int j = 0;

        for (unsigned int w = 0; w < FLOW_U64S; w++) {
            if (!mask[w]) {
                continue;
            }
            if (!kdi_map_has(first_map, w)
                || (fkey[w] & fmask[w] & mask[w]) != (key[w] & mask[w])) {
                p->explicit |= UINT64_C(1) << j;
            }
            j++;
        }
        p->n_stored = 1 + count_1bits(p->explicit);
    }
}

/* Writes at 'data' the key data of lookup 'l', as worked out in 'p'. */
static void
kdi_store_key(const struct kairo_delta_index_lookup *l, size_t pos,
              const struct kdi_prep *p, uint64_t *data)
{
    const uint64_t *key = (const uint64_t *) l->key;
    const uint64_t *mask = (const uint64_t *) &l->mask->masks;
    bool all = kdi_stores_all(pos, p->n_words);
    unsigned int j = 0;

    if (!all) {
        *data++ = p->explicit;
    }
    for (unsigned int w = 0; w < FLOW_U64S; w++) {
        if (mask[w]) {
            if (all || p->explicit & (UINT64_C(1) << j)) {
                *data++ = key[w] & mask[w];
            }
            j++;
        }
    }
}

/* Removes megaflow 'mf' from 'idx' and frees it. */
static void
kdi_megaflow_destroy(struct kairo_delta_index *idx, struct kdi_megaflow *mf)
{
    /* A later lookup reads part of its key through the first lookup's group,
     * so the lookups are unlinked last to first. */
    for (size_t i = mf->n_lookups; i-- > 0;) {
        struct kdi_lookup *l = &mf->lookups[i];

        if (l->rule_idx != KDI_MISS) {
            kdi_rule_remove_hit(idx, l);
        }
        kdi_group_remove(idx, l);
    }
    idx->n_lookups -= mf->n_lookups;
    hmap_remove(&idx->megaflows, &mf->node);
    kdi_hmap_maybe_shrink(&idx->megaflows);
    kdi_free(idx, mf, kdi_megaflow_size(mf->n_lookups, mf->n_words));
    idx->stats.n_removes++;
}

/* Creates an empty index. */
struct kairo_delta_index *
kairo_delta_index_create(void)
{
    struct kairo_delta_index *idx = xzalloc(sizeof *idx);

    idx->memory = sizeof *idx;
    hmap_init(&idx->megaflows);
    hmap_init(&idx->groups_by_mask);
    hmap_init(&idx->rules);
    for (size_t i = 0; i < ARRAY_SIZE(idx->tables); i++) {
        ovs_list_init(&idx->tables[i]);
    }
    return idx;
}

/* Frees 'idx' and everything in it.  'idx' may be NULL. */
void
kairo_delta_index_destroy(struct kairo_delta_index *idx)
{
    if (idx) {
        struct kdi_megaflow *mf;

        HMAP_FOR_EACH_SAFE (mf, node, &idx->megaflows) {
            kdi_megaflow_destroy(idx, mf);
        }
        hmap_destroy(&idx->megaflows);
        hmap_destroy(&idx->groups_by_mask);
        hmap_destroy(&idx->rules);
        kdi_slots_destroy(idx, &idx->group_slots);
        kdi_slots_destroy(idx, &idx->rule_slots);
        free(idx);
    }
}

/* Removes the rule entries that the first 'n' of 'lookups' may have created
 * and that no lookup hits, undoing a failed kairo_delta_index_add(). */
static void
kdi_rules_rollback(struct kairo_delta_index *idx,
                   const struct kairo_delta_index_lookup lookups[], size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (lookups[i].rule) {
            struct kdi_rule *r = kdi_rule_find(idx, &lookups[i]);

            if (r && !r->n_hits) {
                kdi_rule_destroy(idx, r);
            }
        }
    }
}

/* Adds megaflow 'owner' with id 'megaflow_id' and its 'n' 'lookups' to
 * 'idx'.  See the header for the return values. */
int
kairo_delta_index_add(struct kairo_delta_index *idx, uint64_t megaflow_id,
                      const void *owner,
                      const struct kairo_delta_index_lookup lookups[],
                      size_t n)
{
    struct kdi_prep stack_preps[8];
    struct kdi_prep *preps;
    struct kdi_megaflow *mf;
    size_t n_words = 0;
    int error = 0;

    if (kdi_megaflow_find(idx, owner)) {
        return EEXIST;
    }
    if (n > KAIRO_DELTA_INDEX_MAX_LOOKUPS
        || hmap_count(&idx->groups_by_mask) + n > KDI_MAX_GROUPS) {
        return E2BIG;
    }

    preps = n <= ARRAY_SIZE(stack_preps) ? stack_preps
                                         : xmalloc(n * sizeof *preps);
    for (size_t i = 0; i < n; i++) {
        kdi_prepare(&lookups[i], i, &lookups[0], preps[0].map, &preps[i]);
        n_words += preps[i].n_stored;
    }

    /* Create the rule entries. */
    for (size_t i = 0; i < n; i++) {
        const struct kairo_delta_index_lookup *l = &lookups[i];
        struct kdi_rule *r;

        if (l->conj > KAIRO_DELTA_INDEX_CONJ_ANY) {
            kdi_rules_rollback(idx, lookups, i);
            error = EINVAL;
            goto out;
        }
        if (!l->rule || kdi_rule_find(idx, l)) {
            continue;
        }
        r = kdi_alloc(idx, sizeof *r);
        r->rule = l->rule;
        r->priority = l->priority;
        r->conj = l->conj;
        r->conj_id = l->conj == KAIRO_DELTA_INDEX_CONJ_ONE ? l->conj_id : 0;
        r->index = kdi_slots_add(idx, &idx->rule_slots, r);
        r->n_hits = r->allocated_hits = 0;
        r->hits = NULL;
        hmap_insert(&idx->rules, &r->node, hash_pointer(l->rule, 0));
    }

    mf = kdi_alloc(idx, kdi_megaflow_size(n, n_words));
    mf->owner = owner;
    mf->id = megaflow_id;
    mf->n_lookups = n;
    mf->n_words = n_words;

    size_t ofs = 0;
    for (size_t i = 0; i < n; i++) {
        const struct kairo_delta_index_lookup *in = &lookups[i];
        struct kdi_lookup *l = &mf->lookups[i];
        uint64_t key[FLOW_U64S];
        struct kdi_group *g;

        g = kdi_group_get(idx, in->table_id, in->mask, preps[i].map,
                          preps[i].n_words,
                          kdi_group_hash(in->table_id, in->mask));
        l->group_idx = g->index;
        l->rule_idx = KDI_MISS;
        l->rule_pos = 0;
        l->member = 0;
        l->pos = i;
        kdi_store_key(in, i, &preps[i], kdi_mf_words(mf) + ofs);
        ofs += preps[i].n_stored;

        kdi_lookup_key(idx, l, g, key);
        kdi_group_insert(idx, g, l, kdi_hash_words(key, g->n_words));
        if (in->rule) {
            kdi_rule_add_hit(idx, kdi_rule_find(idx, in), l);
        }
    }
    hmap_insert(&idx->megaflows, &mf->node, hash_pointer(owner, 0));
    idx->n_lookups += n;
    idx->stats.n_adds++;

out:
    if (preps != stack_preps) {
        free(preps);
    }
    return error;
}

/* Removes megaflow 'owner' from 'idx'.  Returns false if it was not there. */
bool
kairo_delta_index_remove(struct kairo_delta_index *idx, const void *owner)
{
    struct kdi_megaflow *mf = kdi_megaflow_find(idx, owner);

    if (!mf) {
        return false;
    }
    kdi_megaflow_destroy(idx, mf);
    return true;
}

/* Gives megaflow 'owner' in 'idx' the id 'megaflow_id' and the 'n'
 * 'lookups', whether or not it was in 'idx'.  See the header for the return
 * values. */
int
kairo_delta_index_replace(struct kairo_delta_index *idx,
                          uint64_t megaflow_id, const void *owner,
                          const struct kairo_delta_index_lookup lookups[],
                          size_t n)
{
    struct kdi_megaflow *mf = kdi_megaflow_find(idx, owner);
    int error;

    if (!mf) {
        return kairo_delta_index_add(idx, megaflow_id, owner, lookups, n);
    }

    /* Unlink the old entry from 'megaflows' only, so that the add does not
     * see 'owner' as taken; its lookups stay indexed until the new entry is
     * in, and it goes back if the new one is refused. */
    hmap_remove(&idx->megaflows, &mf->node);
    error = kairo_delta_index_add(idx, megaflow_id, owner, lookups, n);
    hmap_insert(&idx->megaflows, &mf->node, hash_pointer(owner, 0));
    if (!error) {
        kdi_megaflow_destroy(idx, mf);
    }
    return error;
}

/* Returns true if megaflow 'owner' is in 'idx'. */
bool
kairo_delta_index_contains(const struct kairo_delta_index *idx,
                           const void *owner)
{
    return kdi_megaflow_find(idx, owner) != NULL;
}

/* Insert queries. */

/* Returns true if a lookup that hit 'r' (NULL for a miss) can be affected
 * by insert query 'q' as far as priorities and conjunctions go: it missed,
 * or its threshold is at most the query's priority and, for a rule on a
 * conj_id, it looked up with that conj_id.  A miss is affected by any
 * rule. */
static bool
kdi_rule_admits(const struct kdi_rule *r, const struct kdi_query *q)
{
    return (!r
            || (r->priority <= q->priority
                && (!q->conj_filter
                    || r->conj == KAIRO_DELTA_INDEX_CONJ_ANY
                    || (r->conj == KAIRO_DELTA_INDEX_CONJ_ONE
                        && r->conj_id == q->conj_id))));
}

/* Returns true if lookup 'l' satisfies insert query 'q': same table, its
 * region intersects the match, and it missed or hit a rule of priority at
 * most the query's. */
static bool
kdi_lookup_affected(const struct kairo_delta_index *idx,
                    const struct kdi_lookup *l, const struct kdi_query *q)
{
    const struct kdi_group *g = kdi_lookup_group(idx, l);
    const struct kdi_rule *r = kdi_lookup_rule(idx, l);
    uint64_t key[FLOW_U64S];
    const uint8_t *widx;

    if (g->table_id != q->table_id || !kdi_rule_admits(r, q)) {
        return false;
    }
    widx = kdi_group_widx(g);
    kdi_lookup_key(idx, l, g, key);
    for (unsigned int j = 0; j < g->n_words; j++) {
        unsigned int w = widx[j];

        if ((key[j] ^ q->value[w]) & g->mask[j] & q->mask[w]) {
            return false;
        }
    }
    return true;
}

/* Reports the megaflow of lookup 'l', which intersects query 'q''s match,
 * if 'l' passes the priority test and no earlier lookup of the same megaflow
 * is affected (that one reports it instead). */
static void
kdi_report(struct kairo_delta_index *idx, const struct kdi_lookup *l,
           struct kdi_query *q)
{
    const struct kdi_rule *r = kdi_lookup_rule(idx, l);
    const struct kdi_megaflow *mf;

    if (!kdi_rule_admits(r, q)) {
        return;
    }
    mf = kdi_lookup_megaflow(l);
    for (size_t i = 0; i < l->pos; i++) {
        if (kdi_lookup_affected(idx, &mf->lookups[i], q)) {
            return;
        }
    }
    q->cb(mf->owner, mf->id, q->aux);
    q->n_reported++;
}

/* Reports every lookup of 'g' whose masked key agrees with 'value' (one word
 * per mask word of 'g') on 'bits'. */
static void
kdi_group_scan(struct kairo_delta_index *idx, const struct kdi_group *g,
               const uint64_t value[], const uint64_t bits[],
               struct kdi_query *q)
{
    uint64_t key[FLOW_U64S];
    struct kdi_lookup *l;

    HINDEX_FOR_EACH (l, node, &g->lookups) {
        unsigned int j;

        idx->stats.lookups_examined++;
        kdi_lookup_key(idx, l, g, key);
        for (j = 0; j < g->n_words; j++) {
            if ((key[j] ^ value[j]) & bits[j]) {
                break;
            }
        }
        if (j == g->n_words) {
            kdi_report(idx, l, q);
        }
    }
}

/* Answers query 'q' for group 'g'. */
static void
kdi_group_query(struct kairo_delta_index *idx, struct kdi_group *g,
                struct kdi_query *q)
{
    const uint8_t *widx = kdi_group_widx(g);
    uint64_t value[FLOW_U64S];
    uint64_t bits[FLOW_U64S];
    bool covered = true;
    bool any = false;

    for (unsigned int j = 0; j < g->n_words; j++) {
        unsigned int w = widx[j];

        bits[j] = g->mask[j] & q->mask[w];
        value[j] = q->value[w] & bits[j];
        covered = covered && bits[j] == g->mask[j];
        any = any || bits[j];
    }

    if (!any) {
        /* The query fixes none of the group's bits: every lookup of the
         * group intersects it. */
        struct kdi_lookup *l;

        idx->stats.path_all++;
        HINDEX_FOR_EACH (l, node, &g->lookups) {
            idx->stats.lookups_examined++;
            kdi_report(idx, l, q);
        }
    } else if (covered) {
        /* The query fixes every bit the group fixes: the lookups it
         * intersects are exactly those whose masked key is 'value'. */
        uint32_t hash = kdi_hash_words(value, g->n_words);
        uint64_t key[FLOW_U64S];
        struct kdi_lookup *l;

        idx->stats.path_probe++;
        HINDEX_FOR_EACH_WITH_HASH (l, node, hash, &g->lookups) {
            idx->stats.lookups_examined++;
            kdi_lookup_key(idx, l, g, key);
            if (!memcmp(key, value, g->n_words * sizeof *key)) {
                kdi_report(idx, l, q);
            }
        }
    } else {
        /* The lookups it intersects are those that agree with 'value' on
         * 'bits'. */
        struct kdi_secondary *s = NULL;

        for (size_t i = 0; i < g->n_secondaries; i++) {
            if (!memcmp(g->secondaries[i]->bits, bits,
                        g->n_words * sizeof *bits)) {
                s = g->secondaries[i];
                break;
            }
        }
        if (s) {
            idx->stats.path_secondary++;
        } else if (g->n_lookups < KDI_SECONDARY_MIN) {
            idx->stats.path_scan_small++;
            kdi_group_scan(idx, g, value, bits, q);
            return;
        } else if (g->n_secondaries >= KDI_MAX_SECONDARIES) {
            idx->stats.path_scan_bound++;
            kdi_group_scan(idx, g, value, bits, q);
            return;
        } else {
            idx->stats.path_secondary_new++;
            s = kdi_secondary_create(idx, g, bits);
        }

        struct kdi_sbucket *b;
        b = kdi_sbucket_find(idx, g, s, value,
                             kdi_hash_bits(value, bits, g->n_words));
        if (b) {
            const uint32_t *members = kdi_sbucket_members(b);

            for (uint32_t i = 0; i < b->n; i++) {
                idx->stats.lookups_examined++;
                kdi_report(idx, g->members[members[i]], q);
            }
        }
    }
}

/* Runs insert query 'q' for match 'm' over 'idx' and returns how many
 * megaflows it reported. */
static size_t
kdi_query_insert(struct kairo_delta_index *idx, const struct match *m,
                 struct kdi_query *q)
{
    struct kdi_group *g;

    q->value = (const uint64_t *) &m->flow;
    q->mask = (const uint64_t *) &m->wc.masks;
    q->n_reported = 0;
    idx->stats.n_insert_queries++;
    LIST_FOR_EACH (g, list_node, &idx->tables[q->table_id]) {
        kdi_group_query(idx, g, q);
    }
    idx->stats.megaflows_reported += q->n_reported;
    return q->n_reported;
}

/* Reports through 'cb' the megaflows of 'idx' that inserting a rule with
 * 'priority' and match 'm' into table 'table_id' affects, and returns how
 * many. */
size_t
kairo_delta_index_query_insert_match(struct kairo_delta_index *idx,
                                     uint8_t table_id, int priority,
                                     const struct match *m,
                                     kairo_delta_index_cb *cb, void *aux)
{
    struct kdi_query q = {
        .table_id = table_id,
        .priority = priority,
        .cb = cb,
        .aux = aux,
    };

    return kdi_query_insert(idx, m, &q);
}

/* Like kairo_delta_index_query_insert_match(), for a minimatch 'm'. */
size_t
kairo_delta_index_query_insert(struct kairo_delta_index *idx,
                               uint8_t table_id, int priority,
                               const struct minimatch *m,
                               kairo_delta_index_cb *cb, void *aux)
{
    struct match match;

    minimatch_expand(m, &match);
    return kairo_delta_index_query_insert_match(idx, table_id, priority,
                                                &match, cb, aux);
}

/* Like kairo_delta_index_query_insert(), for a rule whose match 'm' fixes
 * conj_id to 'conj_id': only lookups made with that conj_id, or with any,
 * are affected.  'm''s own conj_id is ignored. */
size_t
kairo_delta_index_query_conj_insert(struct kairo_delta_index *idx,
                                    uint8_t table_id, int priority,
                                    const struct minimatch *m,
                                    uint32_t conj_id,
                                    kairo_delta_index_cb *cb, void *aux)
{
    struct kdi_query q = {
        .table_id = table_id,
        .priority = priority,
        .conj_filter = true,
        .conj_id = conj_id,
        .cb = cb,
        .aux = aux,
    };
    struct match match;

    minimatch_expand(m, &match);
    match.flow.conj_id = 0;
    match.wc.masks.conj_id = 0;
    return kdi_query_insert(idx, &match, &q);
}

/* Reports through 'cb' every megaflow of 'idx' with a lookup that hit
 * 'rule', and returns how many. */
size_t
kairo_delta_index_query_rule(struct kairo_delta_index *idx, const void *rule,
                             kairo_delta_index_cb *cb, void *aux)
{
    size_t n = 0;
    struct kdi_rule *r;

    idx->stats.n_rule_queries++;
    HMAP_FOR_EACH_WITH_HASH (r, node, hash_pointer(rule, 0), &idx->rules) {
        if (r->rule != rule) {
            continue;
        }
        for (uint32_t i = 0; i < r->n_hits; i++) {
            const struct kdi_lookup *l = r->hits[i];
            const struct kdi_megaflow *mf = kdi_lookup_megaflow(l);
            size_t j;

            /* A megaflow that hit 'rule' more than once is reported for its
             * first such lookup only. */
            for (j = 0; j < l->pos; j++) {
                const struct kdi_rule *rj = kdi_lookup_rule(idx,
                                                            &mf->lookups[j]);
                if (rj && rj->rule == rule) {
                    break;
                }
            }
            if (j == l->pos) {
                cb(mf->owner, mf->id, aux);
                n++;
            }
        }
    }
    idx->stats.megaflows_reported += n;
    return n;
}

/* Statistics. */

/* Fills 'stats' with the counters and sizes of 'idx'. */
void
kairo_delta_index_get_stats(const struct kairo_delta_index *idx,
                            struct kairo_delta_index_stats *stats)
{
    size_t memory = idx->memory;

    *stats = idx->stats;
    stats->n_megaflows = hmap_count(&idx->megaflows);
    stats->n_lookups = idx->n_lookups;
    stats->n_groups = hmap_count(&idx->groups_by_mask);
    stats->n_secondaries = idx->n_secondaries;
    stats->n_rules = hmap_count(&idx->rules);

    memory += kdi_hmap_bytes(&idx->megaflows);
    memory += kdi_hmap_bytes(&idx->groups_by_mask);
    memory += kdi_hmap_bytes(&idx->rules);
    for (size_t i = 0; i < idx->group_slots.n; i++) {
        const struct kdi_group *g = idx->group_slots.items[i];

        if (g) {
            memory += (g->lookups.mask
                       ? (g->lookups.mask + 1) * sizeof *g->lookups.buckets
                       : 0);
            for (size_t j = 0; j < g->n_secondaries; j++) {
                memory += kdi_hmap_bytes(&g->secondaries[j]->buckets);
            }
        }
    }
    stats->memory = memory;
}
