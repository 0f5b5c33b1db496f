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
#include "kairo-delta-growth.h"
#include "openvswitch/hmap.h"
#include "openvswitch/list.h"
#include "openvswitch/match.h"
#include "openvswitch/util.h"
#include "util.h"

/* Word maps are two 64-bit words, one bit per uint64_t of struct flow. */
BUILD_ASSERT_DECL(FLOW_U64S <= 128);

/* A query's alternatives are bits of a uint64_t. */
BUILD_ASSERT_DECL(KAIRO_DELTA_INDEX_MAX_ALTS <= 64);

/* A member set keeps at most this many secondary hashes, a group's exact
 * hash among them.  A query whose bits have no secondary hash when the set
 * is full scans the set. */
#define KDI_MAX_SECONDARIES 5

/* A member set with fewer members than this is scanned rather than given a
 * secondary hash: scanning it is about as cheap as a probe. */
#define KDI_SECONDARY_MIN 16

/* A rule that some lookup hit, with what the lookups that hit it through
 * this entry may depend on: one entry per distinct ('rule', 'priority',
 * 'conj', 'conj_id'), all in the same 'rules' bucket. */
struct kdi_rule {
    struct hmap_node node;      /* In 'rules', by hash of 'rule'. */
    const void *rule;           /* The caller's rule identity. */
    int priority;               /* The lookups' threshold priority. */
    enum kairo_delta_index_conj conj;  /* Which conj_id rules matter. */
    uint32_t conj_id;           /* With KAIRO_DELTA_INDEX_CONJ_ONE. */
    uint32_t n_steps;           /* Elements in 'steps'. */
    uint32_t allocated_steps;   /* Capacity of 'steps'. */
    struct kdi_step **steps;    /* The lookups that hit it. */
};

/* A mask: a group's (the lookups of one table with one mask of their own)
 * or a megaflow's common mask.  'n_words' nonzero mask words follow, then
 * 'n_words' bytes of word indexes. */
struct kdi_mask {
    uint64_t map[2];            /* Bit w set: word w is nonzero. */
    uint8_t n_words;            /* Nonzero words. */
    uint64_t words[];
};

/* How a member set's members keep their keys. */
enum kdi_key_form {
    KDI_KEY_INLINE,             /* The words, at 'key_ofs'. */
    KDI_KEY_INTERNED,           /* A pointer to a struct kdi_key. */
    KDI_KEY_PACKED,             /* The nonzero words, at 'key_ofs', after a
                                 * uint16_t map of them (bit j: word j). */
};

/* A set of members that each have a key: a group's nodes, keyed by their own
 * key, or a leaf part's megaflows, keyed by their common part.  A member's
 * key is 'n_words' words at byte offset 'key_ofs' in it, in 'key_form';
 * its position in 'members' is a uint32_t at 'pos_ofs'.  A query
 * that fixes only some bits B of the keys probes a secondary hash on B,
 * built on the first such query once the set is big enough, or scans the
 * set. */
struct kdi_mset {
    void **members;             /* The members, by position. */
    uint32_t n;                 /* Members in 'members'. */
    uint32_t allocated;         /* Capacity of 'members' and of each
                                 * secondary's links. */
    uint16_t key_ofs;           /* Offset of a member's key. */
    uint16_t pos_ofs;           /* Offset of a member's position. */
    uint8_t n_words;            /* Words in a member's key. */
    uint8_t n_secondaries;      /* Secondaries in use. */
    uint8_t key_form;           /* An enum kdi_key_form. */
    struct kdi_secondary **secondaries;  /* KDI_MAX_SECONDARIES slots, once
                                          * the first is built. */
};

/* A secondary hash of a member set, over the bits B that a query mask and
 * the members' mask both fix: chains of member positions, doubly linked, so
 * that it costs 4 bytes per member of the set's capacity and 2 per chain
 * (twice that for a set with room for more than KDI_NARROW_MAX members),
 * and removes any member in O(1).  Members that agree on B share a
 * chain. */
struct kdi_secondary {
    void *heads;                /* First member of each chain, by hash of
                                 * the key under B; kdi_mset_n_chains()
                                 * chains. */
    void *links;                /* Per member position: 2 * i is the
                                 * previous member of its chain, or for
                                 * the first the chain's number with
                                 * KDI_CHAIN, 2 * i + 1 the next one
                                 * (KDI_NONE: none).  Removing a member
                                 * and moving one then need no hash. */
    bool narrow;                /* 'heads' and 'links' hold uint16_t
                                 * (see kdi_link_get()), else uint32_t. */
    uint64_t bits[];            /* B, one word per key word. */
};

/* kdi_group_get() compares up to this many of a table's most recently got
 * groups before it hashes the mask. */
#define KDI_GROUP_SCAN 8

/* kdi_node_find_child() compares up to this many of a parent's children
 * before it probes the node table instead. */
#define KDI_MAX_CHILD_SCAN 8

/* No member: the end of a chain. */
#define KDI_NONE UINT32_MAX

/* Marks the chain's number that a chain's first member keeps where the
 * others keep their predecessor (struct kdi_secondary). */
#define KDI_CHAIN UINT32_C(0x80000000)

/* The secondaries of a member set with room for at most this many members
 * keep 16-bit positions: no position then has bit 15 or is UINT16_MAX, and
 * no chain's number (below the largest power of 2 no greater) either. */
#define KDI_NARROW_MAX 0x7fff

/* The lookup nodes of one table that share one mask of their own. */
struct kdi_group {
    struct hmap_node node;      /* In 'groups', by table and mask. */
    struct ovs_list list_node;  /* In 'tables[table_id]'. */
    struct kdi_mset members;    /* Its steps, keyed by their 'key'. */
    struct kdi_secondary *exact;  /* Secondary of 'members' on every bit of
                                   * 'mask', once it has had
                                   * KDI_SECONDARY_MIN members, or NULL. */
    const struct kdi_wordtab *words;  /* The words of its keys. */
    uint8_t table_id;           /* The table its lookups consulted. */
    struct kdi_mask mask;       /* Must be last. */
};

/* A megaflow's common mask, shared by the megaflows that have it. */
struct kdi_cmask {
    struct hmap_node node;      /* In 'cmasks', by mask. */
    size_t n_refs;              /* Megaflows with it. */
    struct kdi_mask mask;       /* Must be last. */
};

/* One lookup of one or more megaflows, a step of a run.  Its key is its
 * group's mask words of the lookup's own key. */
struct kdi_step {
    struct kdi_run *run;        /* The run it is in. */
    struct kdi_rule *rule;      /* The rule entry hit, or NULL for a miss. */
    const struct kdi_key *key;  /* Its own key, interned in its group. */
    uint32_t pos;               /* Its position in its group's 'members'. */
    uint32_t rule_pos;          /* Its index in 'rule->steps'. */
};

/* A run of lookups one after the other: the steps of one or more nodes.
 * Nodes whose lookups are the same, whatever their parents, share one run:
 * OVN's paths part at one lookup (an ACL on the transport port, say) and
 * then run on alike, so that at 10k megaflows two nodes in five repeat
 * another's lookups.  A run is sealed, in 'runs' by its steps' keys and
 * rule entries, once kdi_add() has filled it; until then, and while a node
 * rewrites it (which it then has alone), it is open.  A query that finds a
 * step reports the subtrees of all of its run's nodes: their megaflows all
 * made that lookup. */
struct kdi_run {
    struct hmap_node hmap_node; /* In 'runs' while 'sealed'. */
    struct ovs_list nodes;      /* Its nodes, by their 'twin'. */
    struct kdi_step *steps;     /* Room for exactly 'n_steps', but while
                                 * kdi_add() fills it. */
    uint32_t n_steps;           /* Steps in 'steps'. */
    uint32_t n_nodes;           /* Nodes in 'nodes'. */
    bool sealed;                /* In 'runs'. */
};

/* A node of the trie of translation paths: a chain of lookups that the same
 * megaflows make one after the other.  Megaflows whose lookups agree up to
 * some point share the nodes of those lookups, a node ends where paths part
 * or a megaflow's path ends, and each megaflow hangs from the node of its
 * last lookup, in the part for its common mask.  OVN's paths part and then
 * run apart for several lookups: a node of its own for each of those would
 * cost more than the lookup. */
struct kdi_node {
    struct hmap_node id_node;   /* In 'nodes', by parent and first step. */
    struct kdi_node *parent;    /* The previous lookup's node, or NULL. */
    struct ovs_list children;   /* The next lookups' nodes, by 'sibling'. */
    struct ovs_list sibling;    /* In the parent's 'children'. */
    struct kdi_part *parts;     /* Megaflows whose last lookup ends it. */
    struct kdi_node *down;      /* The first node at or below it that has
                                 * parts or other than one child: it and
                                 * the single children above it have the
                                 * same megaflows (see kdi_chain_update()).
                                 * Removals leave such single children. */
    struct kdi_run *run;        /* Its lookups, in order. */
    struct ovs_list twin;       /* In its run's 'nodes'. */
    uint32_t n_refs;            /* Megaflows whose path goes through it. */
    uint32_t round;             /* The round in which a query reported
                                 * every megaflow of its subtree, or 0. */
};

/* A key of the steps of a group, shared by those that have it: OVN's paths
 * part and join again, so that about half of the steps repeat another's
 * registers and metadata.  The group's exact hash finds it.  Of the key's
 * words, one per word of the group's mask, those that are zero are left
 * out: a lookup's own part has the registers whole, and most are zero.
 * The others are kept as ids in the index's word table. */
struct kdi_key {
    struct kdi_group *group;    /* The group it is interned in. */
    uint32_t n_refs;            /* Steps with it. */
    uint32_t map;               /* Bit j: word j is in 'ids'.  A group of
                                 * more than KDI_KEY_MAP_WORDS mask words
                                 * keeps every word (then only
                                 * KDI_KEY_WIDE may be set).  With
                                 * KDI_KEY_WIDE, 'ids' are uint32_t. */
    uint16_t ids[];             /* Ids of the words that 'map' says, in
                                 * order. */
};
BUILD_ASSERT_DECL(offsetof(struct kdi_key, ids) % sizeof(uint32_t) == 0);

/* The distinct words of the steps' keys, each kept once and named by an
 * id, which a key keeps in 16 bits if it can (KDI_KEY_WIDE): the
 * translation state, which most of a key is, takes few
 * values (at 10k OVN megaflows, about 1,200 distinct words in 145,000).
 * Id 0 is the word 0, which is never stored.  A hash of the ids in use,
 * by open addressing with linear probing, finds a word's id.  Freed ids
 * are reused; the arrays keep the size of the most words the table has
 * held (about 20 bytes a word, with its slots) until it empties. */
struct kdi_wordtab {
    uint64_t *values;           /* By id: the word, or for a free id the
                                 * next free id (0: none). */
    uint32_t *n_refs;           /* By id: keys' words with it, 0 if free. */
    uint32_t n_ids;             /* Ids handed out so far, 0 included. */
    uint32_t allocated;         /* Capacity of 'values' and 'n_refs'. */
    uint32_t n_used;            /* Ids in use. */
    uint32_t free;              /* First free id, or 0 for none. */
    uint32_t *slots;            /* Ids in use, 0 in an empty slot. */
    uint32_t n_slots;           /* Power of 2 above twice 'n_used', or 0. */
};

/* A group with more mask words than this keeps its keys' words whole.  OVN's
 * have at most 16. */
#define KDI_KEY_MAP_WORDS 31

/* In a key's map: its ids are 32-bit.  A key keeps 16-bit ids unless one of
 * its words has an id above UINT16_MAX, which takes a word table of more
 * than 65,535 distinct words at once (about 1,200 at 10k OVN megaflows,
 * 17,000 at 100k): the table reuses the ids it frees. */
#define KDI_KEY_WIDE (UINT32_C(1) << 31)

/* The megaflows that hang from one node and share one common mask.  A leaf
 * node may have many: after the same lookups, the bits a change may fix
 * that no lookup consulted lie in the common part, so that its hash is what
 * keeps such a change from visiting all of them. */
struct kdi_part {
    struct kdi_part *next;      /* The node's next part, or NULL. */
    struct kdi_node *leaf;      /* The node. */
    struct kdi_cmask *cmask;    /* The common mask, or NULL for none. */
    struct kdi_mset megaflows;  /* Keyed by their 'common'. */
};

/* One megaflow, with the values of its common mask's words: the entry
 * that the caller keeps (struct kairo_delta_index_entry). */
struct kairo_delta_index_entry {
    const void *owner;          /* The caller's identity for it. */
    struct kdi_part *part;      /* Where it hangs, or NULL (no lookups). */
    uint64_t stamp;             /* The latest query that reported it. */
    uint32_t pos;               /* Its position in 'part->megaflows', or
                                 * without a part in 'unplaced'. */
    uint16_t n_lookups;         /* Lookups in its path. */
    uint16_t common_map;        /* Bit j: word j of the common part is
                                 * nonzero, with KDI_KEY_PACKED. */
    uint64_t common[];          /* The common part's words, per word of
                                 * 'part->cmask': the nonzero ones if its
                                 * mask has at most KDI_COMMON_MAP_WORDS
                                 * words (KDI_KEY_PACKED), otherwise all. */
};

/* A common mask with more words than this keeps its megaflows' words whole.
 * OVN's have about 9. */
#define KDI_COMMON_MAP_WORDS 16
BUILD_ASSERT_DECL(offsetof(struct kairo_delta_index_entry, common_map)
                  + sizeof(uint16_t)
                  == offsetof(struct kairo_delta_index_entry, common));

/* The index. */
struct kairo_delta_index {
    size_t n_megaflows;         /* Megaflows in the index. */
    struct kairo_delta_index_entry **unplaced;  /* The megaflows without
                                                 * lookups. */
    size_t n_unplaced, allocated_unplaced;
    struct hmap groups;         /* Contains "struct kdi_group"s. */
    struct ovs_list tables[256];  /* Each table's "struct kdi_group"s. */
    struct hmap nodes;          /* Contains "struct kdi_node"s, by
                                 * kdi_node_id_hash(). */
    struct hmap runs;           /* Sealed "struct kdi_run"s, by
                                 * kdi_run_hash(). */
    size_t n_steps;             /* Steps of all nodes. */
    size_t n_keys;              /* Interned keys of all groups. */
    struct hmap cmasks;         /* Contains "struct kdi_cmask"s. */
    struct hmap rules;          /* Contains "struct kdi_rule"s. */
    struct kdi_wordtab words;   /* The words of the steps' keys. */
    uint64_t n_lookups;         /* Lookups over all megaflows. */
    uint64_t stamp;             /* Incremented by every query outside a
                                 * round and by every round. */
    uint32_t round;             /* The open round, or 0. */
    uint32_t last_round;        /* The latest round opened. */
    uint64_t round_stamp;       /* The open round's stamp. */
    size_t n_secondaries;       /* Secondary hashes of all member sets. */
    size_t memory[KAIRO_DELTA_INDEX_N_MEM];  /* Bytes allocated, not
                                              * counting hmap bucket
                                              * arrays. */
    kairo_delta_index_rule_hook *hold_rule;     /* May be NULL. */
    kairo_delta_index_rule_hook *release_rule;  /* May be NULL. */
    struct kairo_delta_index_stats stats;  /* Operation counters only. */
};

/* One match of an insert query, expanded once so that any word is one
 * load. */
struct kdi_alt {
    const uint64_t *value;      /* m.value, FLOW_U64S words. */
    const uint64_t *mask;       /* m.mask, FLOW_U64S words. */
};

/* A lookup an insert query found, with the alternatives whose own bits it
 * meets. */
struct kdi_found {
    struct kdi_step *step;
    uint64_t alts;              /* Bit i: alternative i. */
};

/* A query. */
struct kdi_query {
    const struct kdi_alt *alts; /* Insert queries: the matches, any of which
                                 * may be inserted. */
    size_t n_alts;              /* 1 to KAIRO_DELTA_INDEX_MAX_ALTS. */
    uint8_t table_id;           /* Table of the inserted rule. */
    int priority;               /* Priority of the inserted rule. */
    bool conj_filter;           /* Inserting a rule on conj_id 'conj_id'. */
    uint32_t conj_id;           /* With 'conj_filter'. */
    kairo_delta_index_cb *cb;   /* Called per affected megaflow. */
    void *aux;                  /* Passed to 'cb'. */
    uint64_t stamp;             /* This query's. */
    size_t n_reported;          /* Calls of 'cb' so far. */
    const uint64_t *outside;    /* Insert queries: the bits the group being
                                 * answered does not fix, FLOW_U64S
                                 * words. */
    uint64_t cur_alts;          /* Insert queries: the alternatives being
                                 * searched for or walked. */

    /* Insert queries: the lookups whose nodes' subtrees hold the
     * answer. */
    struct kdi_found *found;
    size_t n_found, allocated_found;
};

/* Allocation with accounting. */

static void *
kdi_alloc(struct kairo_delta_index *idx, enum kairo_delta_index_mem kind,
          size_t size)
{
    idx->memory[kind] += size;
    return xmalloc(size);
}

static void
kdi_free(struct kairo_delta_index *idx, enum kairo_delta_index_mem kind,
         void *p, size_t size)
{
    if (p) {
        idx->memory[kind] -= size;
        free(p);
    }
}

static void *
kdi_realloc(struct kairo_delta_index *idx, enum kairo_delta_index_mem kind,
            void *p, size_t old_size, size_t new_size)
{
    idx->memory[kind] += new_size;
    idx->memory[kind] -= old_size;
    return xrealloc(p, new_size);
}

/* The word table. */

/* Returns the word whose id is 'id' in 'wt'. */
static inline uint64_t
kdi_word(const struct kdi_wordtab *wt, uint32_t id)
{
    return id ? wt->values[id] : 0;
}

/* Returns the slot of 'wt' where a search for 'value' starts. */
static inline uint32_t
kdi_wordtab_home(const struct kdi_wordtab *wt, uint64_t value)
{
    return hash_uint64(value) & (wt->n_slots - 1);
}

/* Puts id 'id', in use, in an empty slot of 'wt'. */
static void
kdi_wordtab_place(struct kdi_wordtab *wt, uint32_t id)
{
    uint32_t i = kdi_wordtab_home(wt, wt->values[id]);

    while (wt->slots[i]) {
        i = (i + 1) & (wt->n_slots - 1);
    }
    wt->slots[i] = id;
}

/* Gives 'wt' 'n_slots' slots, a power of 2, and places every id in use. */
static void
kdi_wordtab_rehash(struct kairo_delta_index *idx, struct kdi_wordtab *wt,
                   uint32_t n_slots)
{
    uint32_t *old = wt->slots;
    uint32_t old_n_slots = wt->n_slots;

    wt->slots = kdi_alloc(idx, KAIRO_DELTA_INDEX_MEM_KEYS,
                          n_slots * sizeof *wt->slots);
    memset(wt->slots, 0, n_slots * sizeof *wt->slots);
    wt->n_slots = n_slots;
    for (uint32_t i = 0; i < old_n_slots; i++) {
        if (old[i]) {
            kdi_wordtab_place(wt, old[i]);
        }
    }
    kdi_free(idx, KAIRO_DELTA_INDEX_MEM_KEYS, old,
             old_n_slots * sizeof *old);
}

/* Returns the id of 'value' in 'wt', taking a reference to it and adding
 * it if needed. */
static uint32_t
kdi_wordtab_ref(struct kairo_delta_index *idx, struct kdi_wordtab *wt,
                uint64_t value)
{
    if (!value) {
        return 0;
    }
    if (wt->n_slots) {
        for (uint32_t i = kdi_wordtab_home(wt, value); wt->slots[i];
             i = (i + 1) & (wt->n_slots - 1)) {
            uint32_t id = wt->slots[i];

            if (wt->values[id] == value) {
                wt->n_refs[id]++;
                return id;
            }
        }
    }

    uint32_t id = wt->free;
    if (id) {
        wt->free = wt->values[id];
    } else {
        if (!wt->n_ids) {
            wt->n_ids = 1;      /* Id 0 is the word 0. */
        }
        if (wt->n_ids >= wt->allocated) {
            uint32_t allocated = MAX(64, 2 * wt->allocated);

            wt->values = kdi_realloc(idx, KAIRO_DELTA_INDEX_MEM_KEYS,
                                     wt->values,
                                     wt->allocated * sizeof *wt->values,
                                     allocated * sizeof *wt->values);
            wt->n_refs = kdi_realloc(idx, KAIRO_DELTA_INDEX_MEM_KEYS,
                                     wt->n_refs,
                                     wt->allocated * sizeof *wt->n_refs,
                                     allocated * sizeof *wt->n_refs);
            wt->allocated = allocated;
        }
        id = wt->n_ids++;
    }
    wt->values[id] = value;
    wt->n_refs[id] = 1;
    if (2 * ++wt->n_used > wt->n_slots) {
        kdi_wordtab_rehash(idx, wt, MAX(64, 2 * wt->n_slots));
    }
    kdi_wordtab_place(wt, id);
    return id;
}

/* Drops a reference to id 'id' of 'wt'.  The table is freed whole once no
 * id is in use. */
static void
kdi_wordtab_unref(struct kairo_delta_index *idx, struct kdi_wordtab *wt,
                  uint32_t id)
{
    if (!id || --wt->n_refs[id]) {
        return;
    }

    /* Empties its slot, moving back the ids after it in its run that would
     * no longer be found from their home slot. */
    uint32_t mask = wt->n_slots - 1;
    uint32_t i = kdi_wordtab_home(wt, wt->values[id]);
    while (wt->slots[i] != id) {
        i = (i + 1) & mask;
    }
    for (uint32_t j = (i + 1) & mask; wt->slots[j]; j = (j + 1) & mask) {
        uint32_t home = kdi_wordtab_home(wt, wt->values[wt->slots[j]]);

        if (((j - home) & mask) >= ((j - i) & mask)) {
            wt->slots[i] = wt->slots[j];
            i = j;
        }
    }
    wt->slots[i] = 0;

    wt->values[id] = wt->free;
    wt->free = id;
    if (!--wt->n_used) {
        kdi_free(idx, KAIRO_DELTA_INDEX_MEM_KEYS, wt->values,
                 wt->allocated * sizeof *wt->values);
        kdi_free(idx, KAIRO_DELTA_INDEX_MEM_KEYS, wt->n_refs,
                 wt->allocated * sizeof *wt->n_refs);
        kdi_free(idx, KAIRO_DELTA_INDEX_MEM_KEYS, wt->slots,
                 wt->n_slots * sizeof *wt->slots);
        memset(wt, 0, sizeof *wt);
    }
}

/* Masks. */

/* Returns the word indexes of 'm', ascending. */
static inline const uint8_t *
kdi_mask_widx(const struct kdi_mask *m)
{
    return (const uint8_t *) &m->words[m->n_words];
}

/* Returns the size of a struct kdi_mask with 'n_words' words. */
static size_t
kdi_mask_size(unsigned int n_words)
{
    return sizeof(struct kdi_mask) + n_words * (sizeof(uint64_t) + 1);
}

/* Fills 'm', which has room for them, with the words of 'mask'. */
static void
kdi_mask_init(struct kdi_mask *m, const struct kairo_delta_index_words *mask)
{
    uint8_t *widx = (uint8_t *) &m->words[mask->n];

    m->map[0] = m->map[1] = 0;
    for (size_t j = 0; j < mask->n; j++) {
        unsigned int w = mask->idx[j];

        m->map[w / 64] |= UINT64_C(1) << (w % 64);
        m->words[j] = mask->mask[j];
        widx[j] = w;
    }
    m->n_words = mask->n;
}

/* Returns true if 'm' is the mask of 'mask'. */
static bool
kdi_mask_equals(const struct kdi_mask *m,
                const struct kairo_delta_index_words *mask)
{
    return (m->n_words == mask->n
            && !memcmp(kdi_mask_widx(m), mask->idx, mask->n)
            && !memcmp(m->words, mask->mask, mask->n * sizeof *m->words));
}

/* Returns a hash of the mask of 'mask' and 'basis'. */
static uint32_t
kdi_mask_hash(const struct kairo_delta_index_words *mask, uint32_t basis)
{
    uint32_t hash = basis;

    for (size_t j = 0; j < mask->n; j++) {
        hash = hash_add(hash, mask->idx[j]);
        hash = hash_add64(hash, mask->mask[j]);
    }
    return hash_finish(hash, mask->n);
}

/* Stores in 'full' (FLOW_U64S words) the mask 'm'. */
static void
kdi_mask_expand(const struct kdi_mask *m, uint64_t full[])
{
    const uint8_t *widx = kdi_mask_widx(m);

    memset(full, 0, FLOW_U64S * sizeof *full);
    for (unsigned int j = 0; j < m->n_words; j++) {
        full[widx[j]] = m->words[j];
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

/* Member sets and their secondary hashes. */

static void
kdi_mset_init(struct kdi_mset *ms, size_t key_ofs,
              enum kdi_key_form key_form, size_t pos_ofs,
              unsigned int n_words)
{
    *ms = (struct kdi_mset) {
        .key_ofs = key_ofs,
        .pos_ofs = pos_ofs,
        .n_words = n_words,
        .key_form = key_form,
    };
}

/* Returns the map of the nonzero words of the 'n' in 'words' (bit j: word
 * j), which is at most 32. */
static uint32_t
kdi_words_map(const uint64_t words[], unsigned int n)
{
    uint32_t map = 0;

    for (unsigned int j = 0; j < n; j++) {
        map |= words[j] ? UINT32_C(1) << j : 0;
    }
    return map;
}

/* Stores in 'kept' the nonzero words of the 'n' in 'words' if 'packed',
 * otherwise all of them. */
static void
kdi_words_pack(const uint64_t words[], unsigned int n, bool packed,
               uint64_t kept[])
{
    for (unsigned int j = 0; j < n; j++) {
        if (words[j] || !packed) {
            *kept++ = words[j];
        }
    }
}

/* Returns in 'buf' the 'n' words whose nonzero ones 'map' and 'kept'
 * say. */
static const uint64_t *
kdi_words_unpack(uint32_t map, const uint64_t kept[], unsigned int n,
                 uint64_t buf[FLOW_U64S])
{
    for (unsigned int j = 0; j < n; j++) {
        buf[j] = map & (UINT32_C(1) << j) ? *kept++ : 0;
    }
    return buf;
}

/* Returns the number of words that a key of 'n' words with map 'map'
 * keeps. */
static unsigned int
kdi_key_n_kept(uint32_t map, unsigned int n)
{
    return n > KDI_KEY_MAP_WORDS ? n : count_1bits(map & ~KDI_KEY_WIDE);
}

/* Returns the bytes of a key of 'n' words with map 'map'. */
static size_t
kdi_key_size(uint32_t map, unsigned int n)
{
    return (sizeof(struct kdi_key)
            + kdi_key_n_kept(map, n) * (map & KDI_KEY_WIDE
                                        ? sizeof(uint32_t)
                                        : sizeof(uint16_t)));
}

/* Returns the id of the 'i'th word that key 'k' keeps. */
static inline uint32_t
kdi_key_id(const struct kdi_key *k, unsigned int i)
{
    return (k->map & KDI_KEY_WIDE
            ? ALIGNED_CAST(const uint32_t *, k->ids)[i]
            : k->ids[i]);
}

/* Returns in 'buf' the 'n' words of key 'k'. */
static const uint64_t *
kdi_key_words(const struct kdi_key *k, unsigned int n,
              uint64_t buf[FLOW_U64S])
{
    const struct kdi_wordtab *wt = k->group->words;

    if (n > KDI_KEY_MAP_WORDS) {
        for (unsigned int j = 0; j < n; j++) {
            buf[j] = kdi_word(wt, kdi_key_id(k, j));
        }
    } else {
        /* The words kept are nonzero, so their ids are too. */
        unsigned int i = 0;

        memset(buf, 0, n * sizeof *buf);
        for (uint32_t map = k->map & ~KDI_KEY_WIDE; map;
             map = zero_rightmost_1bit(map)) {
            buf[raw_ctz(map)] = wt->values[kdi_key_id(k, i++)];
        }
    }
    return buf;
}

/* Returns word 'j' of the 'n' words of key 'k'. */
static inline uint64_t
kdi_key_word(const struct kdi_key *k, unsigned int n, unsigned int j)
{
    const struct kdi_wordtab *wt = k->group->words;

    if (n > KDI_KEY_MAP_WORDS) {
        return kdi_word(wt, kdi_key_id(k, j));
    }

    uint32_t bit = UINT32_C(1) << j;
    return (k->map & bit
            ? wt->values[kdi_key_id(k, count_1bits(k->map & (bit - 1)))]
            : 0);
}

/* Returns true if key 'k' has the 'n' words 'key'. */
static bool
kdi_key_equals(const struct kdi_key *k, const uint64_t key[], unsigned int n)
{
    const struct kdi_wordtab *wt = k->group->words;
    bool all = n > KDI_KEY_MAP_WORDS;
    unsigned int i = 0;

    for (unsigned int j = 0; j < n; j++) {
        if (key[j] != (all || k->map & (UINT32_C(1) << j)
                       ? kdi_word(wt, kdi_key_id(k, i++)) : 0)) {
            return false;
        }
    }
    return true;
}

/* Returns the key of 'member' of 'ms', in 'buf' if it has to be
 * unpacked. */
static inline const uint64_t *
kdi_mset_key(const struct kdi_mset *ms, const void *member,
             uint64_t buf[FLOW_U64S])
{
    const char *p = (const char *) member + ms->key_ofs;

    switch ((enum kdi_key_form) ms->key_form) {
    case KDI_KEY_INTERNED:
        return kdi_key_words(*ALIGNED_CAST(const struct kdi_key *const *, p),
                             ms->n_words, buf);
    case KDI_KEY_PACKED:
        return kdi_words_unpack(*ALIGNED_CAST(const uint16_t *,
                                              p - sizeof(uint16_t)),
                                ALIGNED_CAST(const uint64_t *, p),
                                ms->n_words, buf);
    case KDI_KEY_INLINE:
    default:
        return ALIGNED_CAST(const uint64_t *, p);
    }
}

/* Returns the word among 'n' that 'map' and 'kept' say is word 'j' (see
 * kdi_words_unpack()). */
static inline uint64_t
kdi_packed_word(uint32_t map, const uint64_t kept[], unsigned int j)
{
    uint32_t bit = UINT32_C(1) << j;

    return map & bit ? kept[count_1bits(map & (bit - 1))] : 0;
}

/* Returns word 'j' of the key of 'member' of 'ms', without unpacking the
 * others. */
static inline uint64_t
kdi_mset_key_word(const struct kdi_mset *ms, const void *member,
                  unsigned int j)
{
    const char *p = (const char *) member + ms->key_ofs;

    switch ((enum kdi_key_form) ms->key_form) {
    case KDI_KEY_INTERNED:
        return kdi_key_word(*ALIGNED_CAST(const struct kdi_key *const *, p),
                            ms->n_words, j);
    case KDI_KEY_PACKED:
        return kdi_packed_word(*ALIGNED_CAST(const uint16_t *,
                                             p - sizeof(uint16_t)),
                               ALIGNED_CAST(const uint64_t *, p), j);
    case KDI_KEY_INLINE:
    default:
        return ALIGNED_CAST(const uint64_t *, p)[j];
    }
}

/* Returns true if the key of 'member' of 'ms' agrees with 'value' on
 * 'bits', which are zero but in the 'n_js' words 'js'. */
static inline bool
kdi_mset_member_meets(const struct kdi_mset *ms, const void *member,
                      const uint64_t value[], const uint64_t bits[],
                      const uint8_t js[], unsigned int n_js)
{
    for (unsigned int i = 0; i < n_js; i++) {
        unsigned int j = js[i];

        if ((kdi_mset_key_word(ms, member, j) ^ value[j]) & bits[j]) {
            return false;
        }
    }
    return true;
}

/* Returns where 'member' of 'ms' keeps its position. */
static inline uint32_t *
kdi_mset_pos(const struct kdi_mset *ms, void *member)
{
    return ALIGNED_CAST(uint32_t *, (char *) member + ms->pos_ofs);
}

/* Returns the hash of the 'n' words of 'key' restricted to 'bits'. */
static uint32_t
kdi_hash_bits(const uint64_t key[], const uint64_t bits[], unsigned int n)
{
    uint32_t hash = 0;

    for (unsigned int j = 0; j < n; j++) {
        if (bits[j]) {
            hash = hash_add(hash, j);
            hash = hash_add64(hash, key[j] & bits[j]);
        }
    }
    return hash_finish(hash, n);
}

/* Returns element 'k' of 'a', the heads or links of a secondary: of
 * uint16_t if 'narrow', which stand for KDI_NONE as UINT16_MAX and for
 * KDI_CHAIN as bit 15, else of uint32_t. */
static inline uint32_t
kdi_link_get(const void *a, uint32_t k, bool narrow)
{
    if (narrow) {
        uint16_t v = ((const uint16_t *) a)[k];

        return (v == UINT16_MAX ? KDI_NONE
                : v & 0x8000 ? KDI_CHAIN | (v & 0x7fff)
                : v);
    }
    return ((const uint32_t *) a)[k];
}

/* Sets element 'k' of 'a', as kdi_link_get() reads it, to 'v'. */
static inline void
kdi_link_set(void *a, uint32_t k, uint32_t v, bool narrow)
{
    if (narrow) {
        ((uint16_t *) a)[k] = (v == KDI_NONE ? UINT16_MAX
                               : v & KDI_CHAIN ? 0x8000 | (v & 0x7fff)
                               : v);
    } else {
        ((uint32_t *) a)[k] = v;
    }
}

/* Returns the bytes of an element of the heads and links of a secondary
 * that is 'narrow' or not. */
static inline size_t
kdi_link_size(bool narrow)
{
    return narrow ? sizeof(uint16_t) : sizeof(uint32_t);
}

/* Returns the next member of the chain of secondary 's' after the one at
 * position 'i', or KDI_NONE. */
static inline uint32_t
kdi_secondary_next(const struct kdi_secondary *s, uint32_t i)
{
    return kdi_link_get(s->links, 2 * i + 1, s->narrow);
}

/* Returns the number of chains of each secondary of a member set with room
 * for 'allocated' members: the largest power of 2 no greater. */
static inline uint32_t
kdi_mset_n_chains(uint32_t allocated)
{
    return allocated ? UINT32_C(1) << log_2_floor(allocated) : 0;
}

/* Returns the number of the chain of a secondary of 'ms' for a key whose
 * kdi_hash_bits() under the secondary's bits is 'hash'. */
static inline uint32_t
kdi_mset_chain(const struct kdi_mset *ms, uint32_t hash)
{
    return hash & (kdi_mset_n_chains(ms->allocated) - 1);
}

/* Returns the first member of the chain of secondary 's' of 'ms' for the
 * key under its bits whose kdi_hash_bits() is 'hash', or KDI_NONE. */
static inline uint32_t
kdi_secondary_first(const struct kdi_mset *ms, const struct kdi_secondary *s,
                    uint32_t hash)
{
    return kdi_link_get(s->heads, kdi_mset_chain(ms, hash), s->narrow);
}

/* Returns the number of the chain of secondary 's' of 'ms' for the member
 * at position 'i'. */
static uint32_t
kdi_secondary_chain_of(const struct kdi_mset *ms,
                       const struct kdi_secondary *s, uint32_t i)
{
    uint64_t buf[FLOW_U64S];

    return kdi_mset_chain(ms, kdi_hash_bits(kdi_mset_key(ms, ms->members[i],
                                                         buf),
                                            s->bits, ms->n_words));
}

/* Adds the member at position 'i' to chain 'chain' of secondary 's'. */
static void
kdi_secondary_insert_chain(struct kdi_secondary *s, uint32_t i,
                           uint32_t chain)
{
    uint32_t head = kdi_link_get(s->heads, chain, s->narrow);

    kdi_link_set(s->links, 2 * i, KDI_CHAIN | chain, s->narrow);
    kdi_link_set(s->links, 2 * i + 1, head, s->narrow);
    if (head != KDI_NONE) {
        kdi_link_set(s->links, 2 * head, i, s->narrow);
    }
    kdi_link_set(s->heads, chain, i, s->narrow);
}

/* Adds the member at position 'i' of 'ms' to its secondary 's'. */
static void
kdi_secondary_insert(const struct kdi_mset *ms, struct kdi_secondary *s,
                     uint32_t i)
{
    kdi_secondary_insert_chain(s, i, kdi_secondary_chain_of(ms, s, i));
}

/* Points the neighbours 'prev' and 'next' of a member of secondary 's' (as
 * its links name them) at 'after_prev' and 'before_next': the next member
 * of 'prev', or its chain's head if 'prev' is one, and the previous member
 * of 'next'. */
static void
kdi_secondary_relink(struct kdi_secondary *s, uint32_t prev, uint32_t next,
                     uint32_t after_prev, uint32_t before_next)
{
    if (prev & KDI_CHAIN) {
        kdi_link_set(s->heads, prev & ~KDI_CHAIN, after_prev, s->narrow);
    } else {
        kdi_link_set(s->links, 2 * prev + 1, after_prev, s->narrow);
    }
    if (next != KDI_NONE) {
        kdi_link_set(s->links, 2 * next, before_next, s->narrow);
    }
}

/* Removes the member at position 'i' from secondary 's'. */
static void
kdi_secondary_remove(struct kdi_secondary *s, uint32_t i)
{
    uint32_t prev = kdi_link_get(s->links, 2 * i, s->narrow);
    uint32_t next = kdi_link_get(s->links, 2 * i + 1, s->narrow);

    kdi_secondary_relink(s, prev, next, next, prev);
}

/* Moves the member at position 'from' of secondary 's' to position 'to',
 * which is not in it, in its place in its chain. */
static void
kdi_secondary_move(struct kdi_secondary *s, uint32_t from, uint32_t to)
{
    uint32_t prev = kdi_link_get(s->links, 2 * from, s->narrow);
    uint32_t next = kdi_link_get(s->links, 2 * from + 1, s->narrow);

    kdi_link_set(s->links, 2 * to, prev, s->narrow);
    kdi_link_set(s->links, 2 * to + 1, next, s->narrow);
    kdi_secondary_relink(s, prev, next, to, to);
}

/* (Re)allocates the chains of secondary 's' for the capacity of 'ms', whose
 * old capacity was 'old_allocated' (0 if 's' is new), and chains every
 * member, hashing them again only if the number of chains changed. */
static void
kdi_secondary_rebuild(struct kairo_delta_index *idx, const struct kdi_mset *ms,
                      struct kdi_secondary *s, uint32_t old_allocated)
{
    uint32_t n_chains = kdi_mset_n_chains(ms->allocated);
    uint32_t old_n_chains = kdi_mset_n_chains(old_allocated);
    bool narrow = ms->allocated <= KDI_NARROW_MAX;
    size_t old_size = kdi_link_size(s->narrow);
    size_t size = kdi_link_size(narrow);

    s->links = kdi_realloc(idx, KAIRO_DELTA_INDEX_MEM_SECONDARIES, s->links,
                           2 * old_allocated * old_size,
                           2 * ms->allocated * size);
    if (s->heads && n_chains == old_n_chains && narrow == s->narrow) {
        return;                 /* Same chains: the members stay put. */
    }
    s->heads = kdi_realloc(idx, KAIRO_DELTA_INDEX_MEM_SECONDARIES, s->heads,
                           old_n_chains * old_size, n_chains * size);
    s->narrow = narrow;
    memset(s->heads, 0xff, n_chains * size);    /* KDI_NONE. */
    for (uint32_t i = 0; i < ms->n; i++) {
        kdi_secondary_insert(ms, s, i);
    }
}

/* Builds a secondary hash of 'ms' on 'bits' and returns it.  The caller
 * checked that 'ms' has room for it. */
static struct kdi_secondary *
kdi_secondary_create(struct kairo_delta_index *idx, struct kdi_mset *ms,
                     const uint64_t bits[])
{
    size_t bits_size = ms->n_words * sizeof *bits;
    struct kdi_secondary *s;

    if (!ms->secondaries) {
        ms->secondaries = kdi_alloc(idx, KAIRO_DELTA_INDEX_MEM_MEMBERS,
                                    KDI_MAX_SECONDARIES
                                    * sizeof *ms->secondaries);
    }
    s = kdi_alloc(idx, KAIRO_DELTA_INDEX_MEM_SECONDARIES,
                  sizeof *s + bits_size);
    s->heads = NULL;
    s->links = NULL;
    s->narrow = true;
    memcpy(s->bits, bits, bits_size);
    ms->secondaries[ms->n_secondaries++] = s;
    idx->n_secondaries++;
    kdi_secondary_rebuild(idx, ms, s, 0);
    return s;
}

static void
kdi_secondary_destroy(struct kairo_delta_index *idx,
                      const struct kdi_mset *ms, struct kdi_secondary *s)
{
    size_t size = kdi_link_size(s->narrow);

    kdi_free(idx, KAIRO_DELTA_INDEX_MEM_SECONDARIES, s->heads,
             kdi_mset_n_chains(ms->allocated) * size);
    kdi_free(idx, KAIRO_DELTA_INDEX_MEM_SECONDARIES, s->links,
             2 * ms->allocated * size);
    kdi_free(idx, KAIRO_DELTA_INDEX_MEM_SECONDARIES, s,
             sizeof *s + ms->n_words * sizeof *s->bits);
    idx->n_secondaries--;
}

/* Returns the secondary hash of 'ms' on 'bits', building it if 'ms' is
 * worth one and has room (then setting '*built'), or NULL: scan. */
static struct kdi_secondary *
kdi_mset_secondary(struct kairo_delta_index *idx, struct kdi_mset *ms,
                   const uint64_t bits[], bool *built)
{
    *built = false;
    for (size_t i = 0; i < ms->n_secondaries; i++) {
        if (!memcmp(ms->secondaries[i]->bits, bits,
                    ms->n_words * sizeof *bits)) {
            return ms->secondaries[i];
        }
    }
    if (ms->n >= KDI_SECONDARY_MIN
        && ms->n_secondaries < KDI_MAX_SECONDARIES) {
        *built = true;
        return kdi_secondary_create(idx, ms, bits);
    }
    return NULL;
}

/* Gives 'ms' the capacity for its members (kairo_delta_capacity_for()), and
 * resizes its secondaries. */
static void
kdi_mset_resize(struct kairo_delta_index *idx, struct kdi_mset *ms)
{
    uint32_t old_allocated = ms->allocated;
    uint32_t allocated = kairo_delta_capacity_for(ms->n);

    ms->members = kdi_realloc(idx, KAIRO_DELTA_INDEX_MEM_MEMBERS, ms->members,
                              old_allocated * sizeof *ms->members,
                              allocated * sizeof *ms->members);
    ms->allocated = allocated;
    for (size_t i = 0; i < ms->n_secondaries; i++) {
        kdi_secondary_rebuild(idx, ms, ms->secondaries[i], old_allocated);
    }
}

/* Adds 'member' to 'ms' and to its secondaries.  If 'known' is nonnull,
 * 'hash' is the hash of the member's key under its bits (kdi_hash_bits()),
 * which then need not be computed again. */
static void
kdi_mset_add(struct kairo_delta_index *idx, struct kdi_mset *ms,
             void *member, const struct kdi_secondary *known, uint32_t hash)
{
    ovs_assert(ms->n < KDI_CHAIN);
    if (ms->n >= ms->allocated) {
        kdi_mset_resize(idx, ms);
    }

    uint32_t i = ms->n++;
    ms->members[i] = member;
    *kdi_mset_pos(ms, member) = i;
    for (size_t j = 0; j < ms->n_secondaries; j++) {
        struct kdi_secondary *s = ms->secondaries[j];

        if (s == known) {
            kdi_secondary_insert_chain(s, i, kdi_mset_chain(ms, hash));
        } else {
            kdi_secondary_insert(ms, s, i);
        }
    }
}

/* Removes 'member' from 'ms' and its secondaries.  The last member takes
 * its position. */
static void
kdi_mset_remove(struct kairo_delta_index *idx, struct kdi_mset *ms,
                void *member)
{
    uint32_t i = *kdi_mset_pos(ms, member);
    uint32_t last = ms->n - 1;

    ovs_assert(ms->members[i] == member);
    for (size_t j = 0; j < ms->n_secondaries; j++) {
        kdi_secondary_remove(ms->secondaries[j], i);
    }
    if (i != last) {
        void *moved = ms->members[last];

        ms->members[i] = moved;
        *kdi_mset_pos(ms, moved) = i;
        for (size_t j = 0; j < ms->n_secondaries; j++) {
            kdi_secondary_move(ms->secondaries[j], last, i);
        }
    }
    ms->n = last;
    if (kairo_delta_capacity_is_slack(ms->n, ms->allocated)) {
        kdi_mset_resize(idx, ms);
    }
}

/* Frees the members array and secondaries of 'ms', which is empty. */
static void
kdi_mset_destroy(struct kairo_delta_index *idx, struct kdi_mset *ms)
{
    ovs_assert(!ms->n);
    for (size_t i = 0; i < ms->n_secondaries; i++) {
        kdi_secondary_destroy(idx, ms, ms->secondaries[i]);
    }
    kdi_free(idx, KAIRO_DELTA_INDEX_MEM_MEMBERS, ms->secondaries,
             KDI_MAX_SECONDARIES * sizeof *ms->secondaries);
    kdi_free(idx, KAIRO_DELTA_INDEX_MEM_MEMBERS, ms->members,
             ms->allocated * sizeof *ms->members);
}

/* Groups. */

static struct kdi_group *
kdi_group_get(struct kairo_delta_index *idx, uint8_t table_id,
              const struct kairo_delta_index_words *mask)
{
    struct ovs_list *table = &idx->tables[table_id];
    struct kdi_group *g;

    /* The table's groups are kept most recently got first: the lookups of
     * one table that megaflows added one after the other make have one of
     * a few masks, and comparing one is cheaper than hashing it. */
    size_t n_scanned = 0;
    LIST_FOR_EACH (g, list_node, table) {
        if (kdi_mask_equals(&g->mask, mask)) {
            goto found;
        }
        if (++n_scanned >= KDI_GROUP_SCAN) {
            break;
        }
    }

    uint32_t hash = kdi_mask_hash(mask, table_id);
    HMAP_FOR_EACH_WITH_HASH (g, node, hash, &idx->groups) {
        if (g->table_id == table_id && kdi_mask_equals(&g->mask, mask)) {
            goto found;
        }
    }

    unsigned int n_words = mask->n;
    g = kdi_alloc(idx, KAIRO_DELTA_INDEX_MEM_GROUPS,
                  offsetof(struct kdi_group, mask) + kdi_mask_size(n_words));
    g->exact = NULL;
    g->words = &idx->words;
    kdi_mset_init(&g->members, offsetof(struct kdi_step, key),
                  KDI_KEY_INTERNED, offsetof(struct kdi_step, pos), n_words);
    g->table_id = table_id;
    kdi_mask_init(&g->mask, mask);
    hmap_insert(&idx->groups, &g->node, hash);
    ovs_list_push_front(table, &g->list_node);
    return g;

found:
    ovs_list_remove(&g->list_node);
    ovs_list_push_front(table, &g->list_node);
    return g;
}

static void
kdi_group_destroy(struct kairo_delta_index *idx, struct kdi_group *g)
{
    kdi_mset_destroy(idx, &g->members);
    hmap_remove(&idx->groups, &g->node);
    ovs_list_remove(&g->list_node);
    kdi_free(idx, KAIRO_DELTA_INDEX_MEM_GROUPS, g,
             offsetof(struct kdi_group, mask)
             + kdi_mask_size(g->mask.n_words));
    kairo_delta_hmap_maybe_shrink(&idx->groups);
}

/* Common masks. */

static struct kdi_cmask *
kdi_cmask_get(struct kairo_delta_index *idx,
              const struct kairo_delta_index_words *mask)
{
    uint32_t hash = kdi_mask_hash(mask, 0);
    struct kdi_cmask *cm;

    HMAP_FOR_EACH_WITH_HASH (cm, node, hash, &idx->cmasks) {
        if (kdi_mask_equals(&cm->mask, mask)) {
            cm->n_refs++;
            return cm;
        }
    }

    unsigned int n_words = mask->n;
    cm = kdi_alloc(idx, KAIRO_DELTA_INDEX_MEM_MEGAFLOWS,
                   offsetof(struct kdi_cmask, mask) + kdi_mask_size(n_words));
    cm->n_refs = 1;
    kdi_mask_init(&cm->mask, mask);
    hmap_insert(&idx->cmasks, &cm->node, hash);
    return cm;
}

static void
kdi_cmask_unref(struct kairo_delta_index *idx, struct kdi_cmask *cm)
{
    if (cm && !--cm->n_refs) {
        hmap_remove(&idx->cmasks, &cm->node);
        kdi_free(idx, KAIRO_DELTA_INDEX_MEM_MEGAFLOWS, cm,
                 offsetof(struct kdi_cmask, mask)
                 + kdi_mask_size(cm->mask.n_words));
        kairo_delta_hmap_maybe_shrink(&idx->cmasks);
    }
}

/* Rules. */

/* Returns true if 'r' is the entry for what lookup 'in' hit. */
static bool
kdi_rule_is(const struct kdi_rule *r,
            const struct kairo_delta_index_lookup *in)
{
    return (r->rule == in->rule && r->priority == in->priority
            && r->conj == in->conj
            && (in->conj != KAIRO_DELTA_INDEX_CONJ_ONE
                || r->conj_id == in->conj_id));
}

/* Returns the entry for lookups that hit 'in->rule' with 'in''s threshold
 * and conjunctions, or NULL. */
static struct kdi_rule *
kdi_rule_find(const struct kairo_delta_index *idx,
              const struct kairo_delta_index_lookup *in)
{
    struct kdi_rule *r;

    HMAP_FOR_EACH_WITH_HASH (r, node, hash_pointer(in->rule, 0),
                             &idx->rules) {
        if (kdi_rule_is(r, in)) {
            return r;
        }
    }
    return NULL;
}

/* Returns the entry for 'in''s rule, threshold and conjunctions, creating
 * it if needed, or NULL for a miss. */
static struct kdi_rule *
kdi_rule_get(struct kairo_delta_index *idx,
             const struct kairo_delta_index_lookup *in)
{
    struct kdi_rule *r;

    if (!in->rule) {
        return NULL;
    }
    r = kdi_rule_find(idx, in);
    if (!r) {
        r = kdi_alloc(idx, KAIRO_DELTA_INDEX_MEM_RULES, sizeof *r);
        r->rule = in->rule;
        r->priority = in->priority;
        r->conj = in->conj;
        r->conj_id = in->conj == KAIRO_DELTA_INDEX_CONJ_ONE ? in->conj_id : 0;
        r->n_steps = r->allocated_steps = 0;
        r->steps = NULL;
        hmap_insert(&idx->rules, &r->node, hash_pointer(in->rule, 0));
        if (idx->hold_rule) {
            idx->hold_rule(r->rule);
        }
    }
    return r;
}

/* Gives rule entry 'r' the capacity for its steps
 * (kairo_delta_capacity_for()). */
static void
kdi_rule_resize(struct kairo_delta_index *idx, struct kdi_rule *r)
{
    uint32_t new = kairo_delta_capacity_for(r->n_steps);

    r->steps = kdi_realloc(idx, KAIRO_DELTA_INDEX_MEM_RULES, r->steps,
                           r->allocated_steps * sizeof *r->steps,
                           new * sizeof *r->steps);
    r->allocated_steps = new;
}

/* Records that step 's' hit rule entry 'r'. */
static void
kdi_rule_add_step(struct kairo_delta_index *idx, struct kdi_rule *r,
                  struct kdi_step *s)
{
    if (r->n_steps >= r->allocated_steps) {
        kdi_rule_resize(idx, r);
    }
    s->rule_pos = r->n_steps;
    r->steps[r->n_steps++] = s;
}

/* Forgets step 's''s hit of its rule, freeing the entry if nothing else
 * hits it. */
static void
kdi_rule_remove_step(struct kairo_delta_index *idx, struct kdi_step *s)
{
    struct kdi_rule *r = s->rule;
    struct kdi_step *last = r->steps[--r->n_steps];

    ovs_assert(r->steps[s->rule_pos] == s);
    r->steps[s->rule_pos] = last;
    last->rule_pos = s->rule_pos;
    if (!r->n_steps) {
        if (idx->release_rule) {
            idx->release_rule(r->rule);
        }
        hmap_remove(&idx->rules, &r->node);
        kdi_free(idx, KAIRO_DELTA_INDEX_MEM_RULES, r->steps,
                 r->allocated_steps * sizeof *r->steps);
        kdi_free(idx, KAIRO_DELTA_INDEX_MEM_RULES, r, sizeof *r);
        kairo_delta_hmap_maybe_shrink(&idx->rules);
    } else if (kairo_delta_capacity_is_slack(r->n_steps, r->allocated_steps)) {
        kdi_rule_resize(idx, r);
    }
}

/* Keys. */

/* Returns a step of group 'g' whose key is 'key', or NULL: by its exact
 * hash, whose hash of 'key' is 'hash', or by a scan while it is small. */
static const struct kdi_step *
kdi_group_find_key(const struct kdi_group *g, const uint64_t key[],
                   uint32_t hash)
{
    const struct kdi_mset *ms = &g->members;

    if (g->exact) {
        for (uint32_t i = kdi_secondary_first(ms, g->exact, hash);
             i != KDI_NONE; i = kdi_secondary_next(g->exact, i)) {
            const struct kdi_step *s = ms->members[i];

            if (kdi_key_equals(s->key, key, ms->n_words)) {
                return s;
            }
        }
        return NULL;
    }
    for (uint32_t i = 0; i < ms->n; i++) {
        const struct kdi_step *s = ms->members[i];

        if (kdi_key_equals(s->key, key, ms->n_words)) {
            return s;
        }
    }
    return NULL;
}

/* Returns group 'g''s key record for 'key', taking a reference to it and
 * creating it if needed.  'hash' is as for kdi_group_find_key(). */
static const struct kdi_key *
kdi_key_ref(struct kairo_delta_index *idx, struct kdi_group *g,
            const uint64_t key[], uint32_t hash)
{
    unsigned int n = g->mask.n_words;
    const struct kdi_step *s = kdi_group_find_key(g, key, hash);
    struct kdi_key *k;

    if (s) {
        k = CONST_CAST(struct kdi_key *, s->key);
        k->n_refs++;
        return k;
    }

    bool packed = n <= KDI_KEY_MAP_WORDS;
    uint32_t map = packed ? kdi_words_map(key, n) : 0;
    uint32_t ids[FLOW_U64S];
    unsigned int n_kept = 0;
    for (unsigned int j = 0; j < n; j++) {
        if (key[j] || !packed) {
            ids[n_kept] = kdi_wordtab_ref(idx, &idx->words, key[j]);
            if (ids[n_kept++] > UINT16_MAX) {
                map |= KDI_KEY_WIDE;
            }
        }
    }

    k = kdi_alloc(idx, KAIRO_DELTA_INDEX_MEM_KEYS, kdi_key_size(map, n));
    k->group = g;
    k->n_refs = 1;
    k->map = map;
    idx->n_keys++;
    for (unsigned int i = 0; i < n_kept; i++) {
        if (map & KDI_KEY_WIDE) {
            ALIGNED_CAST(uint32_t *, k->ids)[i] = ids[i];
        } else {
            k->ids[i] = ids[i];
        }
    }
    return k;
}

/* Drops a reference to key record 'k' of group 'g'. */
static void
kdi_key_unref(struct kairo_delta_index *idx, struct kdi_group *g,
              const struct kdi_key *k_)
{
    struct kdi_key *k = CONST_CAST(struct kdi_key *, k_);

    if (!--k->n_refs) {
        unsigned int n = g->mask.n_words;
        unsigned int n_kept = kdi_key_n_kept(k->map, n);

        for (unsigned int i = 0; i < n_kept; i++) {
            kdi_wordtab_unref(idx, &idx->words, kdi_key_id(k, i));
        }
        kdi_free(idx, KAIRO_DELTA_INDEX_MEM_KEYS, k, kdi_key_size(k->map, n));
        idx->n_keys--;
    }
}

/* Steps. */

/* Returns the group of step 's'. */
static inline struct kdi_group *
kdi_step_group(const struct kdi_step *s)
{
    return s->key->group;
}

/* Returns true if step 's' is a lookup in group 'g' that hit rule entry 'r'
 * with key 'key'. */
static bool
kdi_step_is(const struct kdi_step *s, const struct kdi_group *g,
            const struct kdi_rule *r, const uint64_t key[])
{
    return (kdi_step_group(s) == g && s->rule == r
            && kdi_key_equals(s->key, key, g->mask.n_words));
}

/* Returns the hash of 'key' in group 'g''s exact hash, or 0 if it has
 * none. */
static uint32_t
kdi_group_key_hash(const struct kdi_group *g, const uint64_t key[])
{
    return (g->exact
            ? kdi_hash_bits(key, g->exact->bits, g->members.n_words)
            : 0);
}

/* Puts step 's' in group 'g' with key 'key'.  A group that grows big
 * enough gets its exact hash, which it keeps. */
static void
kdi_step_link(struct kairo_delta_index *idx, struct kdi_step *s,
              struct kdi_group *g, const uint64_t key[])
{
    /* The key's exact hash serves both to find its record and to chain
     * the step. */
    const struct kdi_secondary *exact = g->exact;
    uint32_t hash = kdi_group_key_hash(g, key);

    s->key = kdi_key_ref(idx, g, key, hash);
    kdi_mset_add(idx, &g->members, s, exact, hash);
    if (!g->exact && g->members.n >= KDI_SECONDARY_MIN) {
        bool built;

        g->exact = kdi_mset_secondary(idx, &g->members, g->mask.words,
                                      &built);
        ovs_assert(g->exact);
    }
    idx->n_steps++;
}

/* Takes step 's' out of its group, which the caller frees if it is left
 * empty. */
static void
kdi_step_unlink(struct kairo_delta_index *idx, struct kdi_step *s)
{
    struct kdi_group *g = kdi_step_group(s);

    kdi_mset_remove(idx, &g->members, s);
    kdi_key_unref(idx, g, s->key);
    idx->n_steps--;
}

/* Makes 's', a step of run 'run' with room for it, the lookup in group 'g'
 * that hit rule entry 'r' with key 'key'. */
static void
kdi_step_init(struct kairo_delta_index *idx, struct kdi_step *s,
              struct kdi_run *run, struct kdi_group *g, struct kdi_rule *r,
              const uint64_t key[])
{
    s->run = run;
    s->rule = r;
    kdi_step_link(idx, s, g, key);
    if (r) {
        kdi_rule_add_step(idx, r, s);
    }
}

/* Makes step 's' the lookup in group 'g' that hit rule entry 'r' with key
 * 'key', in its place in its run, which is open.  What it had and still
 * has, it keeps: neither a group nor a rule entry that it is the last of is
 * freed and made again. */
static void
kdi_step_rewrite(struct kairo_delta_index *idx, struct kdi_step *s,
                 struct kdi_group *g, struct kdi_rule *r,
                 const uint64_t key[])
{
    struct kdi_group *old_g = kdi_step_group(s);

    if (s->rule != r) {
        if (s->rule) {
            kdi_rule_remove_step(idx, s);
        }
        s->rule = r;
        if (r) {
            kdi_rule_add_step(idx, r, s);
        }
    }
    if (old_g != g || !kdi_key_equals(s->key, key, g->mask.n_words)) {
        kdi_step_unlink(idx, s);
        kdi_step_link(idx, s, g, key);
        if (!old_g->members.n) {
            kdi_group_destroy(idx, old_g);
        }
    }
}

/* Moves step 'from' to 'to', in run 'run', keeping its place in its group
 * and rule entry. */
static void
kdi_step_move(struct kdi_step *to, struct kdi_step *from, struct kdi_run *run)
{
    *to = *from;
    to->run = run;
    kdi_step_group(to)->members.members[to->pos] = to;
    if (to->rule) {
        to->rule->steps[to->rule_pos] = to;
    }
}

/* Removes step 's' from its group and rule entry. */
static void
kdi_step_uninit(struct kairo_delta_index *idx, struct kdi_step *s)
{
    struct kdi_group *g = kdi_step_group(s);

    if (s->rule) {
        kdi_rule_remove_step(idx, s);
    }
    kdi_step_unlink(idx, s);
    if (!g->members.n) {
        kdi_group_destroy(idx, g);
    }
}

/* Runs. */

/* Returns a new open run, of no node yet, with room for 'n_steps' steps and
 * none yet. */
static struct kdi_run *
kdi_run_alloc(struct kairo_delta_index *idx, uint32_t n_steps)
{
    struct kdi_run *run = kdi_alloc(idx, KAIRO_DELTA_INDEX_MEM_NODES,
                                    sizeof *run);

    ovs_list_init(&run->nodes);
    run->steps = kdi_alloc(idx, KAIRO_DELTA_INDEX_MEM_STEPS,
                           n_steps * sizeof *run->steps);
    run->n_steps = 0;
    run->n_nodes = 0;
    run->sealed = false;
    return run;
}

/* Returns the hash of the 'n' 'steps' of a run: of their keys and rule
 * entries, which are interned, so that the same lookups hash alike. */
static uint32_t
kdi_run_hash(const struct kdi_step steps[], uint32_t n)
{
    uint32_t hash = 0;

    for (uint32_t i = 0; i < n; i++) {
        hash = hash_add64(hash, (uintptr_t) steps[i].key);
        hash = hash_add64(hash, (uintptr_t) steps[i].rule);
    }
    return hash_finish(hash, n);
}

/* Returns the sealed run whose steps are the same lookups as the 'n'
 * 'steps', whose kdi_run_hash() is 'hash', or NULL. */
static struct kdi_run *
kdi_run_find(const struct kairo_delta_index *idx,
             const struct kdi_step steps[], uint32_t n, uint32_t hash)
{
    struct kdi_run *run;

    HMAP_FOR_EACH_WITH_HASH (run, hmap_node, hash, &idx->runs) {
        if (run->n_steps == n) {
            uint32_t i;

            for (i = 0; i < n; i++) {
                if (run->steps[i].key != steps[i].key
                    || run->steps[i].rule != steps[i].rule) {
                    break;
                }
            }
            if (i == n) {
                return run;
            }
        }
    }
    return NULL;
}

/* Makes 'run' node 'n''s. */
static void
kdi_run_attach(struct kdi_run *run, struct kdi_node *n)
{
    n->run = run;
    ovs_list_push_back(&run->nodes, &n->twin);
    run->n_nodes++;
}

/* Seals open run 'run', whose kdi_run_hash() is 'hash'. */
static void
kdi_run_insert(struct kairo_delta_index *idx, struct kdi_run *run,
               uint32_t hash)
{
    hmap_insert(&idx->runs, &run->hmap_node, hash);
    run->sealed = true;
}

/* Takes 'run' out of 'runs', if it is there: it is to change. */
static void
kdi_run_unseal(struct kairo_delta_index *idx, struct kdi_run *run)
{
    if (run->sealed) {
        hmap_remove(&idx->runs, &run->hmap_node);
        run->sealed = false;
        kairo_delta_hmap_maybe_shrink(&idx->runs);
    }
}

/* Takes node 'n' off its run, and frees the run if no other node has it,
 * taking its steps out of their groups and rule entries. */
static void
kdi_run_detach(struct kairo_delta_index *idx, struct kdi_node *n)
{
    struct kdi_run *run = n->run;

    ovs_list_remove(&n->twin);
    n->run = NULL;
    if (!--run->n_nodes) {
        kdi_run_unseal(idx, run);
        for (uint32_t i = 0; i < run->n_steps; i++) {
            kdi_step_uninit(idx, &run->steps[i]);
        }
        kdi_free(idx, KAIRO_DELTA_INDEX_MEM_STEPS, run->steps,
                 run->n_steps * sizeof *run->steps);
        kdi_free(idx, KAIRO_DELTA_INDEX_MEM_NODES, run, sizeof *run);
    }
}

/* Returns a new open run, of no node yet, of copies of the 'n' 'steps'. */
static struct kdi_run *
kdi_run_copy(struct kairo_delta_index *idx, const struct kdi_step steps[],
             uint32_t n)
{
    struct kdi_run *run = kdi_run_alloc(idx, n);

    for (uint32_t i = 0; i < n; i++) {
        const struct kdi_step *s = &steps[i];
        struct kdi_group *g = kdi_step_group(s);
        uint64_t buf[FLOW_U64S];

        kdi_step_init(idx, &run->steps[i], run, g, s->rule,
                      kdi_key_words(s->key, g->mask.n_words, buf));
    }
    run->n_steps = n;
    return run;
}

/* Returns the sealed run with the same lookups as the 'n' 'steps', making
 * one of copies of them if there is none. */
static struct kdi_run *
kdi_run_get(struct kairo_delta_index *idx, const struct kdi_step steps[],
            uint32_t n)
{
    uint32_t hash = kdi_run_hash(steps, n);
    struct kdi_run *run = kdi_run_find(idx, steps, n, hash);

    if (!run) {
        run = kdi_run_copy(idx, steps, n);
        kdi_run_insert(idx, run, hash);
    }
    return run;
}

/* Seals node 'n''s run, if it is open, or gives 'n' instead a sealed run
 * with the same lookups, if there is one, and frees its own. */
static void
kdi_run_seal(struct kairo_delta_index *idx, struct kdi_node *n)
{
    struct kdi_run *run = n->run;

    if (!run->sealed) {
        uint32_t hash = kdi_run_hash(run->steps, run->n_steps);
        struct kdi_run *twin = kdi_run_find(idx, run->steps, run->n_steps,
                                            hash);

        ovs_assert(run->n_nodes == 1);
        if (twin) {
            kdi_run_detach(idx, n);
            kdi_run_attach(twin, n);
        } else {
            kdi_run_insert(idx, run, hash);
        }
    }
}

/* Gives open run 'run' room for exactly 'size' steps, keeping its first
 * ones (they move).  The caller has uninitialized or moved away any beyond
 * 'size', and fills any room it adds. */
static void
kdi_run_resize(struct kairo_delta_index *idx, struct kdi_run *run,
               uint32_t size)
{
    struct kdi_step *steps = kdi_alloc(idx, KAIRO_DELTA_INDEX_MEM_STEPS,
                                       size * sizeof *steps);
    uint32_t kept = MIN(size, run->n_steps);

    ovs_assert(!run->sealed);
    for (uint32_t i = 0; i < kept; i++) {
        kdi_step_move(&steps[i], &run->steps[i], run);
    }
    kdi_free(idx, KAIRO_DELTA_INDEX_MEM_STEPS, run->steps,
             run->n_steps * sizeof *run->steps);
    run->steps = steps;
    run->n_steps = kept;
}

/* Nodes. */

/* Returns the first step of node 'n'. */
static inline const struct kdi_step *
kdi_node_first(const struct kdi_node *n)
{
    return &n->run->steps[0];
}

/* Returns the hash of the identity of a node: its parent and first step. */
static uint32_t
kdi_node_id_hash(const struct kdi_node *parent, const struct kdi_group *g,
                 const struct kdi_rule *r, uint32_t key_hash)
{
    return hash_pointer(parent, hash_pointer(g, hash_pointer(r, key_hash)));
}

/* Returns the child of 'parent' (NULL: a root) whose first step is the
 * lookup in group 'g' that hit rule entry 'r' with 'key', or NULL. */
static struct kdi_node *
kdi_node_find_child(const struct kairo_delta_index *idx,
                    const struct kdi_node *parent, const struct kdi_group *g,
                    const struct kdi_rule *r, const uint64_t key[])
{
    struct kdi_node *n;

    /* A parent's few children are compared, rather than the node table
     * probed: a path that parted from the others has new nodes, with no
     * children yet, and a probe would miss the cache. */
    size_t n_compared = 0;
    if (parent) {
        LIST_FOR_EACH (n, sibling, &parent->children) {
            if (kdi_step_is(kdi_node_first(n), g, r, key)) {
                return n;
            }
            if (++n_compared >= KDI_MAX_CHILD_SCAN) {
                break;
            }
        }
        if (n_compared < KDI_MAX_CHILD_SCAN) {
            return NULL;
        }
    }

    uint32_t key_hash = kdi_hash_words(key, g->mask.n_words);
    HMAP_FOR_EACH_WITH_HASH (n, id_node,
                             kdi_node_id_hash(parent, g, r, key_hash),
                             &idx->nodes) {
        if (n->parent == parent && kdi_step_is(kdi_node_first(n), g, r, key)) {
            return n;
        }
    }
    return NULL;
}

/* Returns a new node with run 'run', the last child of 'parent' (NULL: a
 * root), with no children, parts or megaflows. */
static struct kdi_node *
kdi_node_alloc(struct kairo_delta_index *idx, struct kdi_node *parent,
               struct kdi_run *run)
{
    struct kdi_node *n = kdi_alloc(idx, KAIRO_DELTA_INDEX_MEM_NODES,
                                   sizeof *n);

    n->parent = parent;
    ovs_list_init(&n->children);
    if (parent) {
        ovs_list_push_back(&parent->children, &n->sibling);
    } else {
        ovs_list_init(&n->sibling);
    }
    n->parts = NULL;
    n->down = NULL;             /* Set by kdi_chain_update(). */
    n->n_refs = 0;
    n->round = 0;
    if (run) {
        kdi_run_attach(run, n);
    }
    return n;
}

/* Inserts node 'n', whose first step is set, into the node table. */
static void
kdi_node_insert_id(struct kairo_delta_index *idx, struct kdi_node *n)
{
    const struct kdi_step *first = kdi_node_first(n);
    struct kdi_group *g = kdi_step_group(first);
    unsigned int n_words = g->mask.n_words;
    uint64_t buf[FLOW_U64S];

    hmap_insert(&idx->nodes, &n->id_node,
                kdi_node_id_hash(n->parent, g, first->rule,
                                 kdi_hash_words(kdi_key_words(first->key,
                                                              n_words, buf),
                                                n_words)));
}

/* Returns a new node, a child of 'parent' (NULL: a root), with an open run
 * with room for 'n_steps' steps, whose first is the lookup in group 'g'
 * that hit rule entry 'r' with 'key'.  The caller fills the others, and
 * seals the run. */
static struct kdi_node *
kdi_node_create(struct kairo_delta_index *idx, struct kdi_node *parent,
                uint32_t n_steps, struct kdi_group *g, struct kdi_rule *r,
                const uint64_t key[])
{
    struct kdi_run *run = kdi_run_alloc(idx, n_steps);
    struct kdi_node *n = kdi_node_alloc(idx, parent, run);

    kdi_step_init(idx, &run->steps[0], run, g, r, key);
    run->n_steps = 1;
    kdi_node_insert_id(idx, n);
    return n;
}

/* Returns true if node 'n' ends a chain: it has parts, or other than one
 * child. */
static bool
kdi_node_ends_chain(const struct kdi_node *n)
{
    return n->parts || !ovs_list_is_singleton(&n->children);
}

/* Returns the 'down' that node 'n' should have, from its children's. */
static struct kdi_node *
kdi_node_down(const struct kdi_node *n)
{
    if (kdi_node_ends_chain(n)) {
        return CONST_CAST(struct kdi_node *, n);
    } else {
        struct kdi_node *child = CONTAINER_OF(ovs_list_front(&n->children),
                                              struct kdi_node, sibling);
        return child->down;
    }
}

/* Brings the 'down' pointers of node 'n' and of its ancestors up to date
 * after a change of 'n''s parts or children.  A subtree walk goes from a
 * node straight to its 'down', because the nodes in between lead only
 * there. */
static void
kdi_chain_update(struct kdi_node *n)
{
    for (; n; n = n->parent) {
        struct kdi_node *down = kdi_node_down(n);

        if (n->down == down) {
            break;              /* The ancestors' are too. */
        }
        n->down = down;
    }
}

/* Gives node 'n' an open run that it has alone, with the same steps: its
 * own, unsealed, or a copy of the one it shares. */
static void
kdi_node_own_run(struct kairo_delta_index *idx, struct kdi_node *n)
{
    struct kdi_run *run = n->run;

    if (run->n_nodes == 1) {
        kdi_run_unseal(idx, run);
    } else {
        kdi_run_detach(idx, n);     /* The other nodes keep 'run'. */
        kdi_run_attach(kdi_run_copy(idx, run->steps, run->n_steps), n);
    }
}

/* Splits node 'n', which the path being added goes through, after its first
 * 'at' steps (0 < 'at' < its steps): a new node takes the others with the
 * children and parts of 'n', whose only child it becomes, and the
 * megaflows of 'n' but the one being added.  Both runs end up sealed. */
static void
kdi_node_split(struct kairo_delta_index *idx, struct kdi_node *n,
               uint32_t at)
{
    struct kdi_run *run = n->run;
    uint32_t n_tail = run->n_steps - at;
    struct kdi_node *child, *tail;
    struct kdi_part *p;

    /* The tail goes last among the children of 'n', and takes the others
     * from it. */
    tail = kdi_node_alloc(idx, n, NULL);
    ovs_list_splice(&tail->children, n->children.next, &tail->sibling);
    LIST_FOR_EACH (child, sibling, &tail->children) {
        child->parent = tail;
    }

    if (run->n_nodes == 1) {
        /* The tail's steps move to a run of its own, and the head's to an
         * array of their own, so that each array holds exactly its run's
         * steps. */
        struct kdi_run *tail_run = kdi_run_alloc(idx, n_tail);

        kdi_run_unseal(idx, run);
        for (uint32_t i = 0; i < n_tail; i++) {
            kdi_step_move(&tail_run->steps[i], &run->steps[at + i],
                          tail_run);
        }
        tail_run->n_steps = n_tail;
        kdi_run_resize(idx, run, at);
        kdi_run_attach(tail_run, tail);
        kdi_run_seal(idx, tail);
        kdi_run_seal(idx, n);
    } else {
        /* The other nodes keep the run; 'n' and the tail take the runs
         * with the same lookups as its two parts. */
        kdi_run_attach(kdi_run_get(idx, &run->steps[at], n_tail), tail);
        kdi_run_detach(idx, n);
        kdi_run_attach(kdi_run_get(idx, run->steps, at), n);
    }

    tail->parts = n->parts;
    for (p = tail->parts; p; p = p->next) {
        p->leaf = tail;
    }
    n->parts = NULL;
    tail->n_refs = n->n_refs - 1;
    tail->round = n->round;     /* Its subtree is the old one's. */
    tail->down = kdi_node_down(tail);
    n->down = tail->down;
    kdi_node_insert_id(idx, tail);
}

/* A step of a megaflow's path: the node it is in and its place in the
 * node's run. */
struct kdi_hint {
    struct kdi_node *node;
    uint32_t at;
};

/* Returns the step that hint 'h' stands for. */
static inline const struct kdi_step *
kdi_hint_step(const struct kdi_hint *h)
{
    return &h->node->run->steps[h->at];
}

/* Stores in 'hints' the steps of the path of 'mf', which has one, from its
 * root. */
static void
kdi_path_steps(const struct kairo_delta_index_entry *mf,
               struct kdi_hint hints[])
{
    size_t i = mf->n_lookups;

    for (struct kdi_node *n = mf->part->leaf; n; n = n->parent) {
        for (uint32_t j = n->run->n_steps; j-- > 0;) {
            hints[--i] = (struct kdi_hint) { .node = n, .at = j };
        }
    }
    ovs_assert(!i);
}

/* Has the path being added, which parts from the path of the megaflow it
 * replaces at node 'n''s step 'at', write its rest over the node's own from
 * there: its lookup there, in group 'g' that hit rule entry 'r' with 'key',
 * and 'n_rest' in all.  The megaflow it replaces alone goes through 'n'
 * and ends in it.  A re-translation mostly changes one lookup and keeps the
 * others, and rewriting the node keeps them where they are, rather than
 * making a node for the new path and freeing the old one's.  Gives 'n' an
 * open run of its own with room for the lookups (the hints of the old path
 * still hold) and rewrites step 'at'; the caller, the others, and seals
 * the run. */
static void
kdi_node_rewrite(struct kairo_delta_index *idx, struct kdi_node *n,
                 uint32_t at, struct kdi_group *g, struct kdi_rule *r,
                 const uint64_t key[], size_t n_rest)
{
    kdi_node_own_run(idx, n);
    if (at + n_rest > n->run->n_steps) {
        kdi_run_resize(idx, n->run, at + n_rest);
    }
    if (!at) {
        /* The node's identity changes. */
        hmap_remove(&idx->nodes, &n->id_node);
        kdi_step_rewrite(idx, &n->run->steps[0], g, r, key);
        kdi_node_insert_id(idx, n);
    } else {
        kdi_step_rewrite(idx, &n->run->steps[at], g, r, key);
    }
}

/* Frees node 'n', which no megaflow goes through any more. */
static void
kdi_node_destroy(struct kairo_delta_index *idx, struct kdi_node *n)
{
    ovs_assert(!n->n_refs && ovs_list_is_empty(&n->children)
               && !n->parts);
    kdi_run_detach(idx, n);
    if (n->parent) {
        ovs_list_remove(&n->sibling);
    }
    hmap_remove(&idx->nodes, &n->id_node);
    kdi_free(idx, KAIRO_DELTA_INDEX_MEM_NODES, n, sizeof *n);
    kairo_delta_hmap_maybe_shrink(&idx->nodes);
}

/* Returns how the megaflows with common mask 'cm' (NULL for none) keep
 * their common part's words. */
static enum kdi_key_form
kdi_common_form(const struct kdi_cmask *cm)
{
    return (cm && cm->mask.n_words <= KDI_COMMON_MAP_WORDS
            ? KDI_KEY_PACKED : KDI_KEY_INLINE);
}

/* Returns the number of common words that a megaflow with common mask 'cm'
 * (NULL for none) and map 'map' keeps. */
static unsigned int
kdi_common_n_kept(const struct kdi_cmask *cm, uint16_t map)
{
    return (!cm ? 0
            : kdi_common_form(cm) == KDI_KEY_PACKED ? count_1bits(map)
            : cm->mask.n_words);
}

/* Leaf parts. */

/* Returns the part of leaf 'n' for common mask 'cm', creating it if
 * needed. */
static struct kdi_part *
kdi_part_get(struct kairo_delta_index *idx, struct kdi_node *n,
             struct kdi_cmask *cm)
{
    struct kdi_part *p;

    for (p = n->parts; p; p = p->next) {
        if (p->cmask == cm) {
            return p;
        }
    }

    p = kdi_alloc(idx, KAIRO_DELTA_INDEX_MEM_MEGAFLOWS, sizeof *p);
    p->next = n->parts;
    p->leaf = n;
    p->cmask = cm;
    kdi_mset_init(&p->megaflows,
                  offsetof(struct kairo_delta_index_entry, common),
                  kdi_common_form(cm),
                  offsetof(struct kairo_delta_index_entry, pos),
                  cm ? cm->mask.n_words : 0);
    n->parts = p;
    return p;
}

/* Removes empty part 'p' from its leaf and frees it. */
static void
kdi_part_destroy(struct kairo_delta_index *idx, struct kdi_part *p)
{
    struct kdi_part **prev = &p->leaf->parts;

    while (*prev != p) {
        prev = &(*prev)->next;
    }
    *prev = p->next;
    kdi_mset_destroy(idx, &p->megaflows);
    kdi_free(idx, KAIRO_DELTA_INDEX_MEM_MEGAFLOWS, p, sizeof *p);
}

/* Megaflows. */

static size_t
kdi_megaflow_size(const struct kairo_delta_index_entry *mf)
{
    const struct kdi_cmask *cm = mf->part ? mf->part->cmask : NULL;

    return (sizeof *mf
            + kdi_common_n_kept(cm, mf->common_map) * sizeof *mf->common);
}

/* Removes 'mf' from its path, freeing the nodes nothing else goes through,
 * and frees it. */
static void
kdi_megaflow_destroy(struct kairo_delta_index *idx,
                     struct kairo_delta_index_entry *mf)
{
    struct kdi_part *p = mf->part;
    struct kdi_node *n = p ? p->leaf : NULL;
    struct kdi_node *kept = NULL;
    size_t size = kdi_megaflow_size(mf);

    if (p) {
        struct kdi_cmask *cm = p->cmask;

        kdi_mset_remove(idx, &p->megaflows, mf);
        if (!p->megaflows.n) {
            kdi_part_destroy(idx, p);
        }
        kdi_cmask_unref(idx, cm);
    } else {
        struct kairo_delta_index_entry *last
            = idx->unplaced[--idx->n_unplaced];

        idx->unplaced[mf->pos] = last;
        last->pos = mf->pos;
    }
    while (n) {
        struct kdi_node *parent = n->parent;

        if (!--n->n_refs) {
            kdi_node_destroy(idx, n);
        } else if (!kept) {
            kept = n;           /* The deepest node left: it lost a part
                                 * or a child. */
        }
        n = parent;
    }
    kdi_chain_update(kept);
    idx->n_megaflows--;
    idx->n_lookups -= mf->n_lookups;
    idx->stats.n_removes++;
    kdi_free(idx, KAIRO_DELTA_INDEX_MEM_MEGAFLOWS, mf, size);
}

struct kairo_delta_index *
kairo_delta_index_create(void)
{
    struct kairo_delta_index *idx = xzalloc(sizeof *idx);

    hmap_init(&idx->groups);
    hmap_init(&idx->nodes);
    hmap_init(&idx->runs);
    hmap_init(&idx->cmasks);
    hmap_init(&idx->rules);
    for (size_t i = 0; i < ARRAY_SIZE(idx->tables); i++) {
        ovs_list_init(&idx->tables[i]);
    }
    return idx;
}

void
kairo_delta_index_destroy(struct kairo_delta_index *idx)
{
    if (idx) {
        struct kairo_delta_index_entry **all;
        const struct kdi_node *node;
        size_t n = 0;

        /* The megaflows hang from the nodes, which freeing them frees. */
        all = xmalloc(idx->n_megaflows * sizeof *all);
        HMAP_FOR_EACH (node, id_node, &idx->nodes) {
            for (const struct kdi_part *p = node->parts; p; p = p->next) {
                memcpy(&all[n], p->megaflows.members,
                       p->megaflows.n * sizeof *all);
                n += p->megaflows.n;
            }
        }
        memcpy(&all[n], idx->unplaced, idx->n_unplaced * sizeof *all);
        n += idx->n_unplaced;
        ovs_assert(n == idx->n_megaflows);
        for (size_t i = 0; i < n; i++) {
            kdi_megaflow_destroy(idx, all[i]);
        }
        free(all);
        free(idx->unplaced);
        hmap_destroy(&idx->groups);
        hmap_destroy(&idx->nodes);
        hmap_destroy(&idx->runs);
        hmap_destroy(&idx->cmasks);
        hmap_destroy(&idx->rules);
        free(idx);
    }
}

void
kairo_delta_index_set_rule_hooks(struct kairo_delta_index *idx,
                                 kairo_delta_index_rule_hook *hold,
                                 kairo_delta_index_rule_hook *release)
{
    ovs_assert(hmap_is_empty(&idx->rules));
    idx->hold_rule = hold;
    idx->release_rule = release;
}

/* Returns true if 'w' lists word indexes within struct flow in ascending
 * order, with nonzero masks and values within them. */
static bool
kdi_words_valid(const struct kairo_delta_index_words *w)
{
    for (size_t j = 0; j < w->n; j++) {
        if (w->idx[j] >= FLOW_U64S || (j && w->idx[j] <= w->idx[j - 1])
            || !w->mask[j] || w->value[j] & ~w->mask[j]) {
            return false;
        }
    }
    return true;
}

struct kairo_delta_index_words
kairo_delta_index_words_from_flow(const struct flow *key,
                                  const struct flow_wildcards *mask,
                                  struct kairo_delta_index_words_buf *buf)
{
    const uint64_t *k = (const uint64_t *) key;
    const uint64_t *m = (const uint64_t *) &mask->masks;
    size_t n = 0;

    for (size_t w = 0; w < FLOW_U64S; w++) {
        if (m[w]) {
            buf->idx[n] = w;
            buf->mask[n] = m[w];
            buf->value[n] = k[w] & m[w];
            n++;
        }
    }
    return (struct kairo_delta_index_words) {
        .n = n, .idx = buf->idx, .mask = buf->mask, .value = buf->value,
    };
}

/* Stores in '*g' and '*r' the group and rule entry of lookup 'in',
 * creating them if needed.  'hint', if nonnull, is a step that is likely
 * to be in the same group or to hit the same rule entry: checking it spares
 * the hash lookups. */
static void
kdi_lookup_resolve(struct kairo_delta_index *idx,
                   const struct kairo_delta_index_lookup *in,
                   const struct kdi_step *hint,
                   struct kdi_group **g, struct kdi_rule **r)
{
    struct kdi_group *hint_g = hint ? kdi_step_group(hint) : NULL;

    if (hint_g && hint_g->table_id == in->table_id
        && kdi_mask_equals(&hint_g->mask, &in->region)) {
        *g = hint_g;
    } else {
        *g = kdi_group_get(idx, in->table_id, &in->region);
    }

    if (hint && (hint->rule ? kdi_rule_is(hint->rule, in) : !in->rule)) {
        *r = hint->rule;
    } else {
        *r = kdi_rule_get(idx, in);
    }
}

/* Returns the sealed run whose steps are the 'n_prefix' steps 'prefix' and
 * then the 'n' 'lookups', the first in group 'g' that hit rule entry 'r',
 * or NULL if there is none.  'hints' are the lookups' hints, the first
 * 'n_hints' of them.  A path that parts from the others mostly runs on as
 * another already does; finding that run before making or rewriting a
 * node's spares making steps and freeing them again.  Lookups that it
 * resolves to a new group or rule entry leave it empty, for the caller to
 * fill. */
static struct kdi_run *
kdi_run_find_path(struct kairo_delta_index *idx,
                  const struct kdi_step prefix[], size_t n_prefix,
                  const struct kairo_delta_index_lookup lookups[], size_t n,
                  struct kdi_group *g, struct kdi_rule *r,
                  const struct kdi_hint hints[], size_t n_hints)
{
    size_t n_steps = n_prefix + n;
    struct kdi_step stub[64];
    struct kdi_step *steps = (n_steps > ARRAY_SIZE(stub)
                              ? xmalloc(n_steps * sizeof *steps) : stub);
    struct kdi_run *run = NULL;
    size_t i;

    for (i = 0; i < n_prefix; i++) {
        steps[i].key = prefix[i].key;
        steps[i].rule = prefix[i].rule;
    }
    for (i = 0; i < n; i++) {
        const uint64_t *key = lookups[i].region.value;
        const struct kdi_step *same;

        if (i) {
            kdi_lookup_resolve(idx, &lookups[i],
                               i < n_hints ? kdi_hint_step(&hints[i]) : NULL,
                               &g, &r);
        }
        same = kdi_group_find_key(g, key, kdi_group_key_hash(g, key));
        if (!same) {
            break;              /* A new key: no run has the lookup. */
        }
        steps[n_prefix + i].key = same->key;
        steps[n_prefix + i].rule = r;
    }
    if (i == n) {
        run = kdi_run_find(idx, steps, n_steps, kdi_run_hash(steps, n_steps));
    }
    if (steps != stub) {
        free(steps);
    }
    return run;
}

/* Adds a megaflow as kairo_delta_index_add().  'old', if nonnull, is the
 * entry the new one replaces, still indexed: its path is the hint for the
 * new path's groups, rules and nodes, which a re-translation mostly leaves
 * as they were. */
static int
kdi_add(struct kairo_delta_index *idx, const void *owner,
        const struct kairo_delta_index_words *common,
        const struct kairo_delta_index_lookup lookups[], size_t n,
        const struct kairo_delta_index_entry *old,
        struct kairo_delta_index_entry **entry)
{
    if (n > KAIRO_DELTA_INDEX_MAX_LOOKUPS) {
        return E2BIG;
    }
    for (size_t i = 0; i < n; i++) {
        if (lookups[i].conj > KAIRO_DELTA_INDEX_CONJ_ANY
            || !kdi_words_valid(&lookups[i].region)) {
            return EINVAL;
        }
    }
    if (common && !kdi_words_valid(common)) {
        return EINVAL;
    }

    /* The old path's steps, from its root, as hints. */
    struct kdi_hint stub[64];
    struct kdi_hint *hints = stub;
    size_t n_hints = old && old->part ? old->n_lookups : 0;
    if (n_hints > ARRAY_SIZE(stub)) {
        hints = xmalloc(n_hints * sizeof *hints);
    }
    if (n_hints) {
        kdi_path_steps(old, hints);
    }

    /* The path.  'node' is the node the path is in, of which it went
     * through the first 'at' steps.  The path's rest fills it if it is
     * 'own': a new node, or the tail of the path that the new one
     * replaces (see below).  A megaflow without lookups is in no path, and
     * no insert query needs its common part. */
    struct kdi_node *node = NULL;
    uint32_t at = 0;
    bool own = false;
    for (size_t i = 0; i < n; i++) {
        const struct kairo_delta_index_lookup *in = &lookups[i];
        const struct kdi_hint *hint = i < n_hints ? &hints[i] : NULL;
        const uint64_t *key = in->region.value;
        struct kdi_group *g;
        struct kdi_rule *r;

        kdi_lookup_resolve(idx, in, hint ? kdi_hint_step(hint) : NULL,
                           &g, &r);
        if (own) {
            struct kdi_run *run = node->run;

            if (at >= run->n_steps) {
                kdi_step_init(idx, &run->steps[at], run, g, r, key);
                run->n_steps = at + 1;
            } else if (!kdi_step_is(&run->steps[at], g, r, key)) {
                kdi_step_rewrite(idx, &run->steps[at], g, r, key);
            }
            at++;
            continue;
        }
        if (node && at < node->run->n_steps) {
            if (kdi_step_is(&node->run->steps[at], g, r, key)) {
                at++;
                continue;
            }
            if (hint && hint->node == node && hint->at == at
                && node->n_refs == 2 && ovs_list_is_empty(&node->children)) {
                /* The path parts here from the one it replaces, which
                 * alone goes through the node and ends in it.  If other
                 * nodes share its run, the node takes the run of its new
                 * lookups if there is one, else its own copy to rewrite. */
                struct kdi_run *twin = (node->run->n_nodes > 1
                                        ? kdi_run_find_path(
                                              idx, node->run->steps, at,
                                              &lookups[i], n - i, g, r,
                                              hint, n_hints - i)
                                        : NULL);
                if (twin) {
                    kdi_run_detach(idx, node);
                    kdi_run_attach(twin, node);
                    at = twin->n_steps;
                    break;
                }
                kdi_node_rewrite(idx, node, at++, g, r, key, n - i);
                own = true;
                continue;
            }
            /* The path parts from the node's run here.  The split moves
             * steps to another node, the hints' among them. */
            kdi_node_split(idx, node, at);
            if (n_hints) {
                kdi_path_steps(old, hints);
            }
        }

        struct kdi_node *child;
        struct kdi_node *hint_node = (hint && !hint->at
                                      && hint->node->parent == node
                                      ? hint->node : NULL);
        if (hint_node && kdi_step_is(kdi_node_first(hint_node), g, r, key)) {
            child = hint_node;
        } else {
            child = kdi_node_find_child(idx, node, g, r, key);
        }
        if (!child && hint_node && hint_node->n_refs == 1
            && ovs_list_is_empty(&hint_node->children)
            && hint_node->run->n_nodes == 1) {
            /* The path parts here from the one it replaces, whose next
             * node is its last, and no other path goes through it. */
            child = hint_node;
            kdi_node_rewrite(idx, child, 0, g, r, key, n - i);
            own = true;
        } else if (!child) {
            struct kdi_run *twin = kdi_run_find_path(
                idx, NULL, 0, &lookups[i], n - i, g, r,
                hint, hint ? n_hints - i : 0);

            if (twin) {
                /* The rest of the path is a sealed run: it ends there. */
                node = kdi_node_alloc(idx, node, twin);
                kdi_node_insert_id(idx, node);
                at = twin->n_steps;
                node->n_refs++;
                break;
            }
            child = kdi_node_create(idx, node, n - i, g, r, key);
            own = true;
        }
        node = child;
        at = 1;
        node->n_refs++;
    }
    if (node && at < node->run->n_steps) {
        if (own) {
            /* The path is shorter than the one it rewrote. */
            for (uint32_t j = at; j < node->run->n_steps; j++) {
                kdi_step_uninit(idx, &node->run->steps[j]);
            }
            kdi_run_resize(idx, node->run, at);
        } else {
            /* The path ends inside the node's run. */
            kdi_node_split(idx, node, at);
        }
    }
    if (own) {
        kdi_run_seal(idx, node);
    }
    if (hints != stub) {
        free(hints);
    }

    struct kdi_cmask *cm = NULL;
    if (node && common && common->n) {
        cm = kdi_cmask_get(idx, common);
    }

    bool packed = kdi_common_form(cm) == KDI_KEY_PACKED;
    uint16_t map = packed ? kdi_words_map(common->value, common->n) : 0;
    size_t n_kept = kdi_common_n_kept(cm, map);
    struct kairo_delta_index_entry *mf
        = kdi_alloc(idx, KAIRO_DELTA_INDEX_MEM_MEGAFLOWS,
                    sizeof *mf + n_kept * sizeof *mf->common);
    mf->owner = owner;
    mf->stamp = 0;              /* No query's. */
    mf->n_lookups = n;
    mf->common_map = map;
    if (cm) {
        kdi_words_pack(common->value, common->n, packed, mf->common);
    }
    mf->part = node ? kdi_part_get(idx, node, cm) : NULL;
    if (mf->part) {
        kdi_mset_add(idx, &mf->part->megaflows, mf, NULL, 0);
    } else {
        if (idx->n_unplaced >= idx->allocated_unplaced) {
            size_t allocated = kairo_delta_capacity_for(idx->n_unplaced);

            idx->unplaced = kdi_realloc(
                idx, KAIRO_DELTA_INDEX_MEM_MEGAFLOWS, idx->unplaced,
                idx->allocated_unplaced * sizeof *idx->unplaced,
                allocated * sizeof *idx->unplaced);
            idx->allocated_unplaced = allocated;
        }
        mf->pos = idx->n_unplaced;
        idx->unplaced[idx->n_unplaced++] = mf;
    }
    kdi_chain_update(node);
    for (struct kdi_node *up = node; up; up = up->parent) {
        up->round = 0;          /* Its subtree has a megaflow not yet
                                 * reported. */
    }
    idx->n_megaflows++;
    idx->n_lookups += n;
    idx->stats.n_adds++;
    *entry = mf;
    return 0;
}

int
kairo_delta_index_add(struct kairo_delta_index *idx,
                      struct kairo_delta_index_entry **entry,
                      const void *owner,
                      const struct kairo_delta_index_words *common,
                      const struct kairo_delta_index_lookup lookups[],
                      size_t n)
{
    return (*entry ? EEXIST
            : kdi_add(idx, owner, common, lookups, n, NULL, entry));
}

bool
kairo_delta_index_remove(struct kairo_delta_index *idx,
                         struct kairo_delta_index_entry **entry)
{
    if (!*entry) {
        return false;
    }
    kdi_megaflow_destroy(idx, *entry);
    *entry = NULL;
    return true;
}

int
kairo_delta_index_replace(struct kairo_delta_index *idx,
                          struct kairo_delta_index_entry **entry,
                          const void *owner,
                          const struct kairo_delta_index_words *common,
                          const struct kairo_delta_index_lookup lookups[],
                          size_t n)
{
    struct kairo_delta_index_entry *old = *entry;
    int error;

    if (!old) {
        return kdi_add(idx, owner, common, lookups, n, NULL, entry);
    }

    /* The old entry's path stays indexed until the new entry is in
     * (sharing its nodes), and stays if the new one is refused. */
    error = kdi_add(idx, owner, common, lookups, n, old, entry);
    if (!error) {
        kdi_megaflow_destroy(idx, old);
    }
    return error;
}

bool
kairo_delta_index_is_empty(const struct kairo_delta_index *idx)
{
    return !idx->n_megaflows;
}

/* Queries. */

/* Returns true if a lookup that hit 'r' (NULL for a miss) can be affected
 * by insert query 'q' as far as priorities and conjunctions go: it missed,
 * or its threshold is at most the query's priority and, for a rule on a
 * conj_id, it looked up with that conj_id. */
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

/* How kdi_mset_query() found the members it visited. */
enum kdi_path {
    KDI_PATH_ALL,               /* No bits fixed: every member. */
    KDI_PATH_SECONDARY,         /* An existing secondary hash. */
    KDI_PATH_SECONDARY_NEW,     /* A secondary hash built for the query. */
    KDI_PATH_SCAN,              /* A scan of every member. */
};

typedef void kdi_visit_func(struct kairo_delta_index *, void *member,
                            struct kdi_query *);

/* Calls 'visit' for each member of 'ms' whose key agrees with 'value' on
 * 'bits' (one word per key word), or for every member if 'any' is false
 * (then 'value' and 'bits' are not read), and returns how it found them.
 * 'visit' must not change 'ms'. */
static enum kdi_path
kdi_mset_query(struct kairo_delta_index *idx, struct kdi_mset *ms,
               const uint64_t value[], const uint64_t bits[], bool any,
               kdi_visit_func *visit, struct kdi_query *q)
{
    struct kdi_secondary *s;
    bool built;

    if (!any) {
        for (uint32_t i = 0; i < ms->n; i++) {
            visit(idx, ms->members[i], q);
        }
        return KDI_PATH_ALL;
    }

    /* The words 'bits' has, usually a few of the keys' words: a member is
     * compared on those only. */
    uint8_t js[FLOW_U64S];
    unsigned int n_js = 0;
    for (unsigned int j = 0; j < ms->n_words; j++) {
        if (bits[j]) {
            js[n_js++] = j;
        }
    }

    s = kdi_mset_secondary(idx, ms, bits, &built);
    if (s) {
        uint32_t hash = kdi_hash_bits(value, bits, ms->n_words);

        for (uint32_t i = kdi_secondary_first(ms, s, hash); i != KDI_NONE;
             i = kdi_secondary_next(s, i)) {
            void *m = ms->members[i];

            if (kdi_mset_member_meets(ms, m, value, bits, js, n_js)) {
                visit(idx, m, q);
            }
        }
        return built ? KDI_PATH_SECONDARY_NEW : KDI_PATH_SECONDARY;
    }

    for (uint32_t i = 0; i < ms->n; i++) {
        void *m = ms->members[i];

        if (kdi_mset_member_meets(ms, m, value, bits, js, n_js)) {
            visit(idx, m, q);
        }
    }
    return KDI_PATH_SCAN;
}

/* Reports megaflow 'mf_' for query 'q' unless it already was. */
static void
kdi_visit_megaflow(struct kairo_delta_index *idx, void *mf_,
                   struct kdi_query *q)
{
    struct kairo_delta_index_entry *mf = mf_;

    idx->stats.megaflows_examined++;
    if (mf->stamp != q->stamp) {
        mf->stamp = q->stamp;
        q->cb(mf->owner, q->aux);
        q->n_reported++;
    }
}

/* Stores in 'bits' the bits of common mask 'cm' that alternative 'a'
 * fixes outside 'outside' (FLOW_U64S words), one per word of 'cm', and in
 * 'value' the alternative's values there.  Returns false if there are
 * none. */
static bool
kdi_common_bits(const struct kdi_cmask *cm, const struct kdi_alt *a,
                const uint64_t outside[], uint64_t bits[], uint64_t value[])
{
    const uint8_t *widx = kdi_mask_widx(&cm->mask);
    bool any = false;

    for (unsigned int j = 0; j < cm->mask.n_words; j++) {
        unsigned int w = widx[j];

        bits[j] = cm->mask.words[j] & a->mask[w] & outside[w];
        value[j] = a->value[w];
        any = any || bits[j];
    }
    return any;
}

/* Reports the megaflows of leaf part 'p' whose common part agrees with
 * 'value' on 'bits', or all of them if 'any' is false. */
static void
kdi_part_search(struct kairo_delta_index *idx, struct kdi_part *p,
                const uint64_t value[], const uint64_t bits[], bool any,
                struct kdi_query *q)
{
    switch (kdi_mset_query(idx, &p->megaflows, value, bits, any,
                           kdi_visit_megaflow, q)) {
    case KDI_PATH_ALL:
        idx->stats.part_all++;
        break;
    case KDI_PATH_SECONDARY:
    case KDI_PATH_SECONDARY_NEW:
        idx->stats.part_secondary++;
        break;
    case KDI_PATH_SCAN:
        idx->stats.part_scan++;
        break;
    }
}

/* Reports the megaflows of leaf part 'p' whose common part meets one of
 * the alternatives 'q->cur_alts' of insert query 'q' on 'q->outside': all
 * of them for a rule query, or if they have no common part. */
static void
kdi_part_query(struct kairo_delta_index *idx, struct kdi_part *p,
               struct kdi_query *q)
{
    uint64_t value[FLOW_U64S];
    uint64_t bits[FLOW_U64S];

    if (!q->outside || !p->cmask) {
        kdi_part_search(idx, p, NULL, NULL, false, q);
        return;
    }
    for (uint64_t alts = q->cur_alts; alts;
         alts = zero_rightmost_1bit(alts)) {
        const struct kdi_alt *a = &q->alts[rightmost_1bit_idx(alts)];
        bool any = kdi_common_bits(p->cmask, a, q->outside, bits, value);

        kdi_part_search(idx, p, value, bits, any, q);
        if (!any) {
            break;              /* All of them. */
        }
    }
}

/* Returns true if every megaflow of the subtree of 'n' was reported in the
 * open round.  Walks mark the nodes that end chains, whose megaflows are
 * those of the chain's other nodes. */
static bool
kdi_node_reported_whole(const struct kairo_delta_index *idx,
                        const struct kdi_node *n)
{
    return idx->round && n->down->round == idx->round;
}

/* As kdi_node_reported_whole(), counting the subtree as skipped. */
static bool
kdi_subtree_reported(struct kairo_delta_index *idx, const struct kdi_node *n)
{
    if (kdi_node_reported_whole(idx, n)) {
        idx->stats.subtrees_skipped++;
        return true;
    }
    return false;
}

/* Returns the first node in 'list' onwards, a list of the children of
 * 'parent', whose subtree still has megaflows to report, or NULL. */
static struct kdi_node *
kdi_next_unreported(struct kairo_delta_index *idx,
                    const struct kdi_node *parent, const struct ovs_list *list)
{
    for (; list != &parent->children; list = list->next) {
        struct kdi_node *n = CONTAINER_OF(list, struct kdi_node, sibling);

        if (!kdi_subtree_reported(idx, n)) {
            return n;
        }
    }
    return NULL;
}

/* Reports, as kdi_part_query(), the megaflows whose path goes through node
 * 'top', skipping the subtrees that the open round reported whole.  A rule
 * query reports every megaflow it walks, so it marks the nodes it walks as
 * reported whole in the round.
 *
 * The walk enters each child's chain and goes straight to its end (see
 * kdi_chain_update()), keeping a stack of the chains it entered, so that
 * it comes back up without visiting the nodes in between either. */
static void
kdi_report_subtree(struct kairo_delta_index *idx, struct kdi_node *top,
                   struct kdi_query *q)
{
    bool mark = idx->round && !q->outside;
    struct kdi_node *stub[64];
    struct kdi_node **stack = stub;
    size_t n_stack = 0, allocated = ARRAY_SIZE(stub);
    struct kdi_node *entry = top;   /* The chain being walked. */

    if (kdi_subtree_reported(idx, top)) {
        return;
    }
    for (;;) {
        struct kdi_node *end = entry->down;
        struct kdi_node *next;

        idx->stats.nodes_walked++;
        if (mark) {
            end->round = idx->round;
        }
        for (struct kdi_part *p = end->parts; p; p = p->next) {
            kdi_part_query(idx, p, q);
        }

        /* Depth first: the first child's chain, else the chain of the next
         * sibling of this chain's entry or of the nearest entry on the
         * stack that has one. */
        next = kdi_next_unreported(idx, end, end->children.next);
        if (next) {
            if (n_stack >= allocated) {
                if (stack == stub) {
                    stack = xmemdup(stub, sizeof stub);
                }
                stack = x2nrealloc(stack, &allocated, sizeof *stack);
            }
            stack[n_stack++] = entry;
        }
        while (!next && entry != top) {
            next = kdi_next_unreported(idx, entry->parent,
                                       entry->sibling.next);
            if (!next) {
                entry = stack[--n_stack];
            }
        }
        if (!next) {
            break;
        }
        entry = next;
    }
    if (stack != stub) {
        free(stack);
    }
}

/* Reports, as kdi_report_subtree(), the megaflows whose path goes through a
 * node of 'run': they all made its lookups. */
static void
kdi_report_run(struct kairo_delta_index *idx, const struct kdi_run *run,
               struct kdi_query *q)
{
    struct kdi_node *n;

    LIST_FOR_EACH (n, twin, &run->nodes) {
        kdi_report_subtree(idx, n, q);
    }
}

/* Returns true if the open round reported the subtrees of all of the nodes
 * of 'run' whole. */
static bool
kdi_run_reported(struct kairo_delta_index *idx, const struct kdi_run *run)
{
    const struct kdi_node *n;

    if (!idx->round) {
        return false;
    }
    LIST_FOR_EACH (n, twin, &run->nodes) {
        if (!kdi_node_reported_whole(idx, n)) {
            return false;
        }
    }
    idx->stats.subtrees_skipped++;
    return true;
}

/* Adds step 's_', whose key meets the alternatives 'q->cur_alts' of insert
 * query 'q', to the query's found steps if its rule admits the query and
 * its run's nodes' subtrees have megaflows left to report. */
static void
kdi_visit_step(struct kairo_delta_index *idx, void *s_, struct kdi_query *q)
{
    struct kdi_step *s = s_;

    idx->stats.lookups_examined++;
    if (kdi_rule_admits(s->rule, q) && !kdi_run_reported(idx, s->run)) {
        if (q->n_found >= q->allocated_found) {
            q->found = x2nrealloc(q->found, &q->allocated_found,
                                  sizeof *q->found);
        }
        q->found[q->n_found++] = (struct kdi_found) {
            .step = s,
            .alts = q->cur_alts,
        };
    }
}

/* Stores in 'bits' the bits of group mask 'gm' that alternative 'a' fixes,
 * one per word of 'gm', and in 'value' the alternative's values there.
 * Sets '*covered' to whether 'a' fixes every bit of 'gm', and returns
 * false if it fixes none. */
static bool
kdi_group_bits(const struct kdi_mask *gm, const struct kdi_alt *a,
               uint64_t bits[], uint64_t value[], bool *covered)
{
    const uint8_t *widx = kdi_mask_widx(gm);
    bool any = false;

    *covered = true;
    for (unsigned int j = 0; j < gm->n_words; j++) {
        unsigned int w = widx[j];

        bits[j] = gm->words[j] & a->mask[w];
        value[j] = a->value[w] & bits[j];
        *covered = *covered && bits[j] == gm->words[j];
        any = any || bits[j];
    }
    return any;
}

/* Finds the steps of group 'g' that meet the alternatives of insert query
 * 'q', for kdi_visit_step().  Alternatives that fix the same bits of the
 * group to the same values search once. */
static void
kdi_group_query(struct kairo_delta_index *idx, struct kdi_group *g,
                struct kdi_query *q)
{
    const struct kdi_mask *gm = &g->mask;
    size_t n_words = gm->n_words;
    size_t size = n_words * sizeof(uint64_t);
    uint64_t left = (q->n_alts >= 64 ? UINT64_MAX
                     : (UINT64_C(1) << q->n_alts) - 1);

    /* Each alternative's bits of the group and values there, once:
     * 'bv[2 * i]' and 'bv[2 * i + 1]' of 'n_words' words each. */
    uint64_t stub[2 * 4 * 16];  /* Room for 4 alternatives of 16 words. */
    uint64_t *bv = stub;
    bool any[KAIRO_DELTA_INDEX_MAX_ALTS];
    bool covered[KAIRO_DELTA_INDEX_MAX_ALTS];
    if (2 * q->n_alts * n_words > ARRAY_SIZE(stub)) {
        bv = xmalloc(2 * q->n_alts * size);
    }
    for (size_t i = 0; i < q->n_alts; i++) {
        any[i] = kdi_group_bits(gm, &q->alts[i], &bv[2 * i * n_words],
                                &bv[(2 * i + 1) * n_words], &covered[i]);
    }

    while (left) {
        size_t i = rightmost_1bit_idx(left);
        const uint64_t *bits = &bv[2 * i * n_words];
        const uint64_t *value = &bv[(2 * i + 1) * n_words];

        q->cur_alts = rightmost_1bit(left);
        for (uint64_t o = zero_rightmost_1bit(left); o;
             o = zero_rightmost_1bit(o)) {
            size_t k = rightmost_1bit_idx(o);

            if (!memcmp(bits, &bv[2 * k * n_words], 2 * size)) {
                q->cur_alts |= rightmost_1bit(o);
            }
        }
        left &= ~q->cur_alts;

        if (any[i] && covered[i]) {
            /* The query fixes every bit the group fixes: the steps it
             * meets are exactly those whose key is 'value', which the
             * group's exact hash finds (a small group is scanned). */
            idx->stats.path_probe++;
            kdi_mset_query(idx, &g->members, value, bits, true,
                           kdi_visit_step, q);
            continue;
        }

        switch (kdi_mset_query(idx, &g->members, value, bits, any[i],
                               kdi_visit_step, q)) {
        case KDI_PATH_ALL:
            idx->stats.path_all++;
            break;
        case KDI_PATH_SECONDARY:
            idx->stats.path_secondary++;
            break;
        case KDI_PATH_SECONDARY_NEW:
            idx->stats.path_secondary_new++;
            break;
        case KDI_PATH_SCAN:
            idx->stats.path_scan++;
            break;
        }
    }
    if (bv != stub) {
        free(bv);
    }
}

static int
kdi_found_cmp(const void *a_, const void *b_)
{
    const struct kdi_found *a = a_;
    const struct kdi_found *b = b_;

    return a->step < b->step ? -1 : a->step > b->step;
}

/* Merges the entries of the found steps of 'q' for one step, which
 * alternatives that fix different bits of its group may each have found. */
static void
kdi_found_merge(struct kdi_query *q)
{
    size_t n = 0;

    qsort(q->found, q->n_found, sizeof *q->found, kdi_found_cmp);
    for (size_t i = 0; i < q->n_found; i++) {
        if (n && q->found[n - 1].step == q->found[i].step) {
            q->found[n - 1].alts |= q->found[i].alts;
        } else {
            q->found[n++] = q->found[i];
        }
    }
    q->n_found = n;
}

/* Returns the stamp for a new query: the open round's, else a new one. */
static uint64_t
kdi_query_stamp(struct kairo_delta_index *idx)
{
    return idx->round ? idx->round_stamp : ++idx->stamp;
}

/* Reports the megaflows of the subtrees of the nodes of the steps insert
 * query 'q' found, as kdi_part_query() filters them. */
static void
kdi_report_found(struct kairo_delta_index *idx, struct kdi_query *q)
{
    const struct kdi_group *g = NULL;
    uint64_t outside[FLOW_U64S];

    q->outside = outside;
    for (size_t i = 0; i < q->n_found; i++) {
        const struct kdi_step *st = q->found[i].step;

        if (kdi_step_group(st) != g) {
            g = kdi_step_group(st);
            kdi_mask_expand(&g->mask, outside);
            for (size_t w = 0; w < FLOW_U64S; w++) {
                outside[w] = ~outside[w];
            }
        }
        q->cur_alts = q->found[i].alts;
        kdi_report_run(idx, st->run, q);
    }
    q->outside = NULL;
}

/* Runs insert query 'q' for its alternatives over 'idx' and returns how many
 * megaflows it reported.  The query first finds the nodes of its table
 * that meet an alternative, then walks each one's subtree once. */
static size_t
kdi_query_insert(struct kairo_delta_index *idx, struct kdi_query *q)
{
    struct kdi_group *g;

    q->stamp = kdi_query_stamp(idx);
    q->n_reported = 0;
    idx->stats.n_insert_queries++;
    LIST_FOR_EACH (g, list_node, &idx->tables[q->table_id]) {
        kdi_group_query(idx, g, q);
    }
    if (q->n_alts > 1) {
        kdi_found_merge(q);
    }
    kdi_report_found(idx, q);
    free(q->found);
    idx->stats.megaflows_reported += q->n_reported;
    return q->n_reported;
}

/* Runs insert query 'q', whose alternatives are still to be set, for the
 * 'n' matches 'ms'. */
static size_t
kdi_query_matches(struct kairo_delta_index *idx, struct kdi_query *q,
                  const struct match ms[], size_t n)
{
    struct kdi_alt alts[KAIRO_DELTA_INDEX_MAX_ALTS];

    ovs_assert(n <= KAIRO_DELTA_INDEX_MAX_ALTS);
    if (!n) {
        return 0;
    }
    for (size_t i = 0; i < n; i++) {
        alts[i] = (struct kdi_alt) {
            .value = (const uint64_t *) &ms[i].flow,
            .mask = (const uint64_t *) &ms[i].wc.masks,
        };
    }
    q->alts = alts;
    q->n_alts = n;
    return kdi_query_insert(idx, q);
}

size_t
kairo_delta_index_query_insert_any(struct kairo_delta_index *idx,
                                   uint8_t table_id, int priority,
                                   const struct match ms[], size_t n,
                                   kairo_delta_index_cb *cb, void *aux)
{
    struct kdi_query q = {
        .table_id = table_id,
        .priority = priority,
        .cb = cb,
        .aux = aux,
    };

    return kdi_query_matches(idx, &q, ms, n);
}

size_t
kairo_delta_index_query_insert_match(struct kairo_delta_index *idx,
                                     uint8_t table_id, int priority,
                                     const struct match *m,
                                     kairo_delta_index_cb *cb, void *aux)
{
    return kairo_delta_index_query_insert_any(idx, table_id, priority, m, 1,
                                              cb, aux);
}

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

size_t
kairo_delta_index_query_conj_insert(struct kairo_delta_index *idx,
                                    uint8_t table_id, int priority,
                                    const struct minimatch *m,
                                    uint32_t conj_id,
                                    kairo_delta_index_cb *cb, void *aux)
{
    struct match match;

    minimatch_expand(m, &match);
    match.flow.conj_id = 0;
    match.wc.masks.conj_id = 0;

    struct kdi_query q = {
        .table_id = table_id,
        .priority = priority,
        .conj_filter = true,
        .conj_id = conj_id,
        .cb = cb,
        .aux = aux,
    };
    return kdi_query_matches(idx, &q, &match, 1);
}

size_t
kairo_delta_index_query_rule(struct kairo_delta_index *idx, const void *rule,
                             kairo_delta_index_cb *cb, void *aux)
{
    struct kdi_query q = {
        .cb = cb,
        .aux = aux,
        .stamp = kdi_query_stamp(idx),
    };
    struct kdi_rule *r;

    idx->stats.n_rule_queries++;
    HMAP_FOR_EACH_WITH_HASH (r, node, hash_pointer(rule, 0), &idx->rules) {
        if (r->rule == rule) {
            for (uint32_t i = 0; i < r->n_steps; i++) {
                kdi_report_run(idx, r->steps[i]->run, &q);
            }
        }
    }
    idx->stats.megaflows_reported += q.n_reported;
    return q.n_reported;
}

/* Rounds. */

void
kairo_delta_index_begin_round(struct kairo_delta_index *idx)
{
    if (++idx->last_round == 0) {
        /* The round numbers wrapped: forget every node's. */
        struct kdi_node *n;

        HMAP_FOR_EACH (n, id_node, &idx->nodes) {
            n->round = 0;
        }
        idx->last_round = 1;
    }
    idx->round = idx->last_round;
    idx->round_stamp = ++idx->stamp;
    idx->stats.n_rounds++;
}

void
kairo_delta_index_end_round(struct kairo_delta_index *idx)
{
    idx->round = 0;
}

/* Statistics. */

void
kairo_delta_index_get_stats(const struct kairo_delta_index *idx,
                            struct kairo_delta_index_stats *stats)
{
    *stats = idx->stats;
    stats->n_megaflows = idx->n_megaflows;
    stats->n_lookups = idx->n_lookups;
    stats->n_steps = idx->n_steps;
    stats->n_keys = idx->n_keys;
    stats->n_key_words = idx->words.n_used;
    stats->n_nodes = hmap_count(&idx->nodes);
    stats->n_runs = hmap_count(&idx->runs);
    stats->n_groups = hmap_count(&idx->groups);
    stats->n_common_masks = hmap_count(&idx->cmasks);
    stats->n_rules = hmap_count(&idx->rules);
    stats->n_secondaries = idx->n_secondaries;

    stats->memory = 0;
    for (size_t i = 0; i < KAIRO_DELTA_INDEX_N_MEM; i++) {
        stats->memory_by[i] = idx->memory[i];
    }
    stats->memory_by[KAIRO_DELTA_INDEX_MEM_HASHES]
        += (sizeof *idx
            + kairo_delta_hmap_bytes(&idx->groups)
            + kairo_delta_hmap_bytes(&idx->nodes)
            + kairo_delta_hmap_bytes(&idx->runs)
            + kairo_delta_hmap_bytes(&idx->cmasks)
            + kairo_delta_hmap_bytes(&idx->rules));
    for (size_t i = 0; i < KAIRO_DELTA_INDEX_N_MEM; i++) {
        stats->memory += stats->memory_by[i];
    }
}

const char *
kairo_delta_index_mem_name(enum kairo_delta_index_mem kind)
{
    static const char *const names[KAIRO_DELTA_INDEX_N_MEM] = {
        [KAIRO_DELTA_INDEX_MEM_STEPS] = "steps",
        [KAIRO_DELTA_INDEX_MEM_NODES] = "nodes",
        [KAIRO_DELTA_INDEX_MEM_KEYS] = "keys",
        [KAIRO_DELTA_INDEX_MEM_GROUPS] = "groups",
        [KAIRO_DELTA_INDEX_MEM_MEMBERS] = "member arrays",
        [KAIRO_DELTA_INDEX_MEM_SECONDARIES] = "secondary hashes",
        [KAIRO_DELTA_INDEX_MEM_RULES] = "rules",
        [KAIRO_DELTA_INDEX_MEM_MEGAFLOWS] = "megaflows",
        [KAIRO_DELTA_INDEX_MEM_HASHES] = "hash tables",
    };

    return kind < KAIRO_DELTA_INDEX_N_MEM ? names[kind] : "unknown";
}
