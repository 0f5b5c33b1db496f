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

/* Word maps are two 64-bit words, one bit per uint64_t of struct flow. */
BUILD_ASSERT_DECL(FLOW_U64S <= 128);

/* A rule that some lookup hit, with what the lookups that hit it through
 * this entry may depend on: one entry per distinct ('rule', 'priority',
 * 'conj', 'conj_id'), all in the same 'rules' bucket. */
struct kdi_rule {
    struct hmap_node node;      /* In 'rules', by hash of 'rule'. */
    const void *rule;           /* The caller's rule identity. */
    int priority;               /* The lookups' threshold priority. */
    enum kairo_delta_index_conj conj;  /* Which conj_id rules matter. */
    uint32_t conj_id;           /* With KAIRO_DELTA_INDEX_CONJ_ONE. */
    uint32_t n_nodes;           /* Elements in 'nodes'. */
    uint32_t allocated_nodes;   /* Capacity of 'nodes'. */
    struct kdi_node **nodes;    /* The lookup nodes that hit it. */
};

/* A mask: a group's (the lookups of one table with one mask of their own)
 * or a megaflow's common mask.  'n_words' nonzero mask words follow, then
 * 'n_words' bytes of word indexes. */
struct kdi_mask {
    uint64_t map[2];            /* Bit w set: word w is nonzero. */
    uint8_t n_words;            /* Nonzero words. */
    uint64_t words[];
};

/* The lookup nodes of one table that share one mask of their own. */
struct kdi_group {
    struct hmap_node node;      /* In 'groups', by table and mask. */
    struct ovs_list list_node;  /* In 'tables[table_id]'. */
    struct hindex nodes;        /* Contains "struct kdi_node"s, by the hash
                                 * of their key.  Many nodes may share a key
                                 * (another parent or rule), and an hindex
                                 * removes any of them in O(1). */
    size_t n_nodes;             /* Nodes in 'nodes'. */
    uint8_t table_id;           /* The table its lookups consulted. */
    struct kdi_mask mask;       /* Must be last. */
};

/* A megaflow's common mask, shared by the megaflows that have it. */
struct kdi_cmask {
    struct hmap_node node;      /* In 'cmasks', by mask. */
    size_t n_refs;              /* Megaflows with it. */
    struct kdi_mask mask;       /* Must be last. */
};

/* One lookup of one or more megaflows: a node of the trie of translation
 * paths.  Megaflows whose lookups agree up to some point share the nodes
 * of those lookups; each megaflow hangs from the node of its last lookup.
 * A node's key is its group's mask words of the lookups' own key. */
struct kdi_node {
    struct hindex_node hnode;   /* In its group's 'nodes', by key hash. */
    struct hmap_node id_node;   /* In 'nodes', by parent, rule and key. */
    struct kdi_node *parent;    /* The previous lookup's node, or NULL. */
    struct ovs_list children;   /* The next lookups' nodes, by 'sibling'. */
    struct ovs_list sibling;    /* In the parent's 'children'. */
    struct ovs_list megaflows;  /* Megaflows whose last lookup this is. */
    struct kdi_group *group;
    struct kdi_rule *rule;      /* The rule entry hit, or NULL for a miss. */
    uint32_t rule_pos;          /* Its index in 'rule->nodes'. */
    uint32_t n_refs;            /* Megaflows whose path goes through it. */
    uint64_t key[];             /* One word per mask word of 'group'. */
};

/* One megaflow, with the values of its common mask's words. */
struct kdi_megaflow {
    struct hmap_node node;      /* In 'megaflows', by hash of 'owner'. */
    const void *owner;          /* The caller's identity for it. */
    uint64_t id;                /* The caller's 64-bit id. */
    struct kdi_node *leaf;      /* Its last lookup's node, or NULL. */
    struct ovs_list leaf_node;  /* In 'leaf->megaflows'. */
    struct kdi_cmask *cmask;    /* Its common mask, or NULL. */
    uint64_t stamp;             /* The latest query that reported it. */
    uint16_t n_lookups;         /* Lookups in its path. */
    uint64_t common[];          /* One word per word of 'cmask'. */
};

/* The index. */
struct kairo_delta_index {
    struct hmap megaflows;      /* Contains "struct kdi_megaflow"s. */
    struct hmap groups;         /* Contains "struct kdi_group"s. */
    struct ovs_list tables[256];  /* Each table's "struct kdi_group"s. */
    struct hmap nodes;          /* Contains "struct kdi_node"s, by
                                 * kdi_node_id_hash(). */
    struct hmap cmasks;         /* Contains "struct kdi_cmask"s. */
    struct hmap rules;          /* Contains "struct kdi_rule"s. */
    uint64_t n_lookups;         /* Lookups over all megaflows. */
    uint64_t stamp;             /* Incremented by every query. */
    size_t memory;              /* Bytes allocated, not counting hmap
                                 * bucket arrays. */
    struct kairo_delta_index_stats stats;  /* Operation counters only. */
};

/* A query, expanded once so that any word is one load. */
struct kdi_query {
    const uint64_t *value;      /* Insert queries: m.value, FLOW_U64S words. */
    const uint64_t *mask;       /* Insert queries: m.mask, FLOW_U64S words. */
    uint8_t table_id;           /* Table of the inserted rule. */
    int priority;               /* Priority of the inserted rule. */
    bool conj_filter;           /* Inserting a rule on conj_id 'conj_id'. */
    uint32_t conj_id;           /* With 'conj_filter'. */
    kairo_delta_index_cb *cb;   /* Called per affected megaflow. */
    void *aux;                  /* Passed to 'cb'. */
    uint64_t stamp;             /* This query's. */
    size_t n_reported;          /* Calls of 'cb' so far. */
};

/* Allocation with accounting. */

static void *
kdi_alloc(struct kairo_delta_index *idx, size_t size)
{
    idx->memory += size;
    return xmalloc(size);
}

static void
kdi_free(struct kairo_delta_index *idx, void *p, size_t size)
{
    if (p) {
        idx->memory -= size;
        free(p);
    }
}

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

/* Shrinks 'hmap' once it is mostly empty.  The wide margin keeps a map that
 * hovers around a power of two from being resized back and forth. */
static void
kdi_hmap_maybe_shrink(struct hmap *hmap)
{
    if (hmap->mask > 15 && hmap_count(hmap) < hmap->mask / 8) {
        hmap_shrink(hmap);
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

/* Returns the number of nonzero words of 'mask' (FLOW_U64S words). */
static unsigned int
kdi_count_words(const uint64_t mask[])
{
    unsigned int n = 0;

    for (unsigned int w = 0; w < FLOW_U64S; w++) {
        n += mask[w] != 0;
    }
    return n;
}

/* Fills 'm', which has room for them, with the nonzero words of 'mask'. */
static void
kdi_mask_init(struct kdi_mask *m, const uint64_t mask[])
{
    uint8_t *widx = (uint8_t *) &m->words[kdi_count_words(mask)];
    unsigned int j = 0;

    m->map[0] = m->map[1] = 0;
    for (unsigned int w = 0; w < FLOW_U64S; w++) {
        if (mask[w]) {
            m->map[w / 64] |= UINT64_C(1) << (w % 64);
            m->words[j] = mask[w];
            widx[j++] = w;
        }
    }
    m->n_words = j;
}

/* Returns true if 'm' is 'mask' (FLOW_U64S words). */
static bool
kdi_mask_equals(const struct kdi_mask *m, const uint64_t mask[])
{
    const uint8_t *widx = kdi_mask_widx(m);
    unsigned int j = 0;

    for (unsigned int w = 0; w < FLOW_U64S; w++) {
        if (mask[w]) {
            if (j >= m->n_words || widx[j] != w || m->words[j] != mask[w]) {
                return false;
            }
            j++;
        }
    }
    return j == m->n_words;
}

/* Returns a hash of 'mask' (FLOW_U64S words) and 'basis'. */
static uint32_t
kdi_mask_hash(const uint64_t mask[], uint32_t basis)
{
    uint32_t hash = basis;

    for (unsigned int w = 0; w < FLOW_U64S; w++) {
        if (mask[w]) {
            hash = hash_add(hash, w);
            hash = hash_add64(hash, mask[w]);
        }
    }
    return hash_finish(hash, FLOW_U64S);
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

/* Groups. */

static struct kdi_group *
kdi_group_get(struct kairo_delta_index *idx, uint8_t table_id,
              const uint64_t mask[])
{
    uint32_t hash = kdi_mask_hash(mask, table_id);
    struct kdi_group *g;

    HMAP_FOR_EACH_WITH_HASH (g, node, hash, &idx->groups) {
        if (g->table_id == table_id && kdi_mask_equals(&g->mask, mask)) {
            return g;
        }
    }

    unsigned int n_words = kdi_count_words(mask);
    g = kdi_alloc(idx, offsetof(struct kdi_group, mask)
                  + kdi_mask_size(n_words));
    hindex_init(&g->nodes);
    g->n_nodes = 0;
    g->table_id = table_id;
    kdi_mask_init(&g->mask, mask);
    hmap_insert(&idx->groups, &g->node, hash);
    ovs_list_push_back(&idx->tables[table_id], &g->list_node);
    return g;
}

static void
kdi_group_destroy(struct kairo_delta_index *idx, struct kdi_group *g)
{
    hindex_destroy(&g->nodes);
    hmap_remove(&idx->groups, &g->node);
    ovs_list_remove(&g->list_node);
    kdi_free(idx, g, offsetof(struct kdi_group, mask)
                     + kdi_mask_size(g->mask.n_words));
    kdi_hmap_maybe_shrink(&idx->groups);
}

/* Common masks. */

static struct kdi_cmask *
kdi_cmask_get(struct kairo_delta_index *idx, const uint64_t mask[])
{
    uint32_t hash = kdi_mask_hash(mask, 0);
    struct kdi_cmask *cm;

    HMAP_FOR_EACH_WITH_HASH (cm, node, hash, &idx->cmasks) {
        if (kdi_mask_equals(&cm->mask, mask)) {
            cm->n_refs++;
            return cm;
        }
    }

    unsigned int n_words = kdi_count_words(mask);
    cm = kdi_alloc(idx, offsetof(struct kdi_cmask, mask)
                   + kdi_mask_size(n_words));
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
        kdi_free(idx, cm, offsetof(struct kdi_cmask, mask)
                          + kdi_mask_size(cm->mask.n_words));
        kdi_hmap_maybe_shrink(&idx->cmasks);
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
        r = kdi_alloc(idx, sizeof *r);
        r->rule = in->rule;
        r->priority = in->priority;
        r->conj = in->conj;
        r->conj_id = in->conj == KAIRO_DELTA_INDEX_CONJ_ONE ? in->conj_id : 0;
        r->n_nodes = r->allocated_nodes = 0;
        r->nodes = NULL;
        hmap_insert(&idx->rules, &r->node, hash_pointer(in->rule, 0));
    }
    return r;
}

/* Records that node 'n' hit rule entry 'r'. */
static void
kdi_rule_add_node(struct kairo_delta_index *idx, struct kdi_rule *r,
                  struct kdi_node *n)
{
    if (r->n_nodes >= r->allocated_nodes) {
        uint32_t new = r->allocated_nodes ? 2 * r->allocated_nodes : 1;

        r->nodes = kdi_realloc(idx, r->nodes,
                               r->allocated_nodes * sizeof *r->nodes,
                               new * sizeof *r->nodes);
        r->allocated_nodes = new;
    }
    n->rule_pos = r->n_nodes;
    r->nodes[r->n_nodes++] = n;
}

/* Forgets node 'n''s hit of its rule, freeing the entry if nothing else
 * hits it. */
static void
kdi_rule_remove_node(struct kairo_delta_index *idx, struct kdi_node *n)
{
    struct kdi_rule *r = n->rule;
    struct kdi_node *last = r->nodes[--r->n_nodes];

    ovs_assert(r->nodes[n->rule_pos] == n);
    r->nodes[n->rule_pos] = last;
    last->rule_pos = n->rule_pos;
    if (!r->n_nodes) {
        hmap_remove(&idx->rules, &r->node);
        kdi_free(idx, r->nodes, r->allocated_nodes * sizeof *r->nodes);
        kdi_free(idx, r, sizeof *r);
        kdi_hmap_maybe_shrink(&idx->rules);
    } else if (r->allocated_nodes > 16 && r->n_nodes < r->allocated_nodes / 4) {
        uint32_t new = r->allocated_nodes / 2;

        r->nodes = kdi_realloc(idx, r->nodes,
                               r->allocated_nodes * sizeof *r->nodes,
                               new * sizeof *r->nodes);
        r->allocated_nodes = new;
    }
}

/* Nodes. */

/* Returns the hash of a node's identity. */
static uint32_t
kdi_node_id_hash(const struct kdi_node *parent, const struct kdi_group *g,
                 const struct kdi_rule *r, uint32_t key_hash)
{
    return hash_pointer(parent, hash_pointer(g, hash_pointer(r, key_hash)));
}

static size_t
kdi_node_size(const struct kdi_group *g)
{
    return sizeof(struct kdi_node) + g->mask.n_words * sizeof(uint64_t);
}

/* Returns the child of 'parent' (NULL: a root) in group 'g' for rule entry
 * 'r' and 'key', creating it if needed. */
static struct kdi_node *
kdi_node_get(struct kairo_delta_index *idx, struct kdi_node *parent,
             struct kdi_group *g, struct kdi_rule *r, const uint64_t key[])
{
    size_t key_size = g->mask.n_words * sizeof *key;
    uint32_t key_hash = kdi_hash_words(key, g->mask.n_words);
    uint32_t id_hash = kdi_node_id_hash(parent, g, r, key_hash);
    struct kdi_node *n;

    HMAP_FOR_EACH_WITH_HASH (n, id_node, id_hash, &idx->nodes) {
        if (n->parent == parent && n->group == g && n->rule == r
            && !memcmp(n->key, key, key_size)) {
            return n;
        }
    }

    n = kdi_alloc(idx, kdi_node_size(g));
    n->parent = parent;
    ovs_list_init(&n->children);
    if (parent) {
        ovs_list_push_back(&parent->children, &n->sibling);
    } else {
        ovs_list_init(&n->sibling);
    }
    ovs_list_init(&n->megaflows);
    n->group = g;
    n->rule = r;
    n->n_refs = 0;
    memcpy(n->key, key, key_size);
    hmap_insert(&idx->nodes, &n->id_node, id_hash);
    hindex_insert(&g->nodes, &n->hnode, key_hash);
    g->n_nodes++;
    if (r) {
        kdi_rule_add_node(idx, r, n);
    }
    return n;
}

/* Frees node 'n', which no megaflow goes through any more. */
static void
kdi_node_destroy(struct kairo_delta_index *idx, struct kdi_node *n)
{
    struct kdi_group *g = n->group;

    ovs_assert(!n->n_refs && ovs_list_is_empty(&n->children)
               && ovs_list_is_empty(&n->megaflows));
    if (n->rule) {
        kdi_rule_remove_node(idx, n);
    }
    if (n->parent) {
        ovs_list_remove(&n->sibling);
    }
    hmap_remove(&idx->nodes, &n->id_node);
    hindex_remove(&g->nodes, &n->hnode);
    kdi_free(idx, n, kdi_node_size(g));
    kdi_hmap_maybe_shrink(&idx->nodes);
    if (!--g->n_nodes) {
        kdi_group_destroy(idx, g);
    }
}

/* Megaflows. */

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

static size_t
kdi_megaflow_size(const struct kdi_megaflow *mf)
{
    return (sizeof *mf
            + (mf->cmask ? mf->cmask->mask.n_words * sizeof(uint64_t) : 0));
}

/* Removes 'mf' from its path, freeing the nodes nothing else goes through,
 * and frees it. */
static void
kdi_megaflow_destroy(struct kairo_delta_index *idx, struct kdi_megaflow *mf)
{
    struct kdi_node *n = mf->leaf;

    if (n) {
        ovs_list_remove(&mf->leaf_node);
    }
    while (n) {
        struct kdi_node *parent = n->parent;

        if (!--n->n_refs) {
            kdi_node_destroy(idx, n);
        }
        n = parent;
    }
    hmap_remove(&idx->megaflows, &mf->node);
    kdi_hmap_maybe_shrink(&idx->megaflows);
    idx->n_lookups -= mf->n_lookups;
    idx->stats.n_removes++;
    kdi_cmask_unref(idx, mf->cmask);
    kdi_free(idx, mf, kdi_megaflow_size(mf));
}

struct kairo_delta_index *
kairo_delta_index_create(void)
{
    struct kairo_delta_index *idx = xzalloc(sizeof *idx);

    hmap_init(&idx->megaflows);
    hmap_init(&idx->groups);
    hmap_init(&idx->nodes);
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
        struct kdi_megaflow *mf;

        HMAP_FOR_EACH_SAFE (mf, node, &idx->megaflows) {
            kdi_megaflow_destroy(idx, mf);
        }
        hmap_destroy(&idx->megaflows);
        hmap_destroy(&idx->groups);
        hmap_destroy(&idx->nodes);
        hmap_destroy(&idx->cmasks);
        hmap_destroy(&idx->rules);
        free(idx);
    }
}

/* Stores in 'mask' the part of 'in''s own mask that the common part does
 * not already give with the same value, and in 'key' (one word per word of
 * 'mask') the key under it.  'ckey' and 'cmask' are the common key and mask
 * (FLOW_U64S words each), or NULL. */
static void
kdi_own_part(const struct kairo_delta_index_lookup *in, const uint64_t *ckey,
             const uint64_t *cmask, uint64_t mask[])
{
    const uint64_t *k = (const uint64_t *) in->key;
    const uint64_t *m = (const uint64_t *) &in->mask->masks;

    for (unsigned int w = 0; w < FLOW_U64S; w++) {
        mask[w] = m[w];
        if (cmask) {
            /* Bits the common part fixes to the same value come from it. */
            mask[w] &= ~(cmask[w] & ~(k[w] ^ ckey[w]));
        }
    }
}

/* Stores in 'key' the words of lookup 'in''s key under group mask 'gm'. */
static void
kdi_own_key(const struct kairo_delta_index_lookup *in, const struct kdi_mask *gm,
            uint64_t key[])
{
    const uint64_t *k = (const uint64_t *) in->key;
    const uint8_t *widx = kdi_mask_widx(gm);

    for (unsigned int j = 0; j < gm->n_words; j++) {
        key[j] = k[widx[j]] & gm->words[j];
    }
}

int
kairo_delta_index_add(struct kairo_delta_index *idx, uint64_t megaflow_id,
                      const void *owner,
                      const struct kairo_delta_index_common *common,
                      const struct kairo_delta_index_lookup lookups[],
                      size_t n)
{
    if (kdi_megaflow_find(idx, owner)) {
        return EEXIST;
    }
    if (n > KAIRO_DELTA_INDEX_MAX_LOOKUPS) {
        return E2BIG;
    }
    for (size_t i = 0; i < n; i++) {
        if (lookups[i].conj > KAIRO_DELTA_INDEX_CONJ_ANY) {
            return EINVAL;
        }
    }

    const uint64_t *ckey = NULL, *cmask = NULL;
    struct kdi_cmask *cm = NULL;
    if (common && common->mask
        && kdi_count_words((const uint64_t *) &common->mask->masks)) {
        ckey = (const uint64_t *) common->key;
        cmask = (const uint64_t *) &common->mask->masks;
        cm = kdi_cmask_get(idx, cmask);
    }

    size_t n_common = cm ? cm->mask.n_words : 0;
    struct kdi_megaflow *mf = kdi_alloc(idx, sizeof *mf
                                        + n_common * sizeof *mf->common);
    mf->owner = owner;
    mf->id = megaflow_id;
    mf->cmask = cm;
    mf->stamp = idx->stamp;
    mf->n_lookups = n;
    if (cm) {
        const uint8_t *widx = kdi_mask_widx(&cm->mask);

        for (size_t j = 0; j < n_common; j++) {
            mf->common[j] = ckey[widx[j]] & cm->mask.words[j];
        }
    }

    struct kdi_node *node = NULL;
    for (size_t i = 0; i < n; i++) {
        uint64_t mask[FLOW_U64S], key[FLOW_U64S];
        struct kdi_group *g;

        kdi_own_part(&lookups[i], ckey, cmask, mask);
        g = kdi_group_get(idx, lookups[i].table_id, mask);
        kdi_own_key(&lookups[i], &g->mask, key);
        node = kdi_node_get(idx, node, g, kdi_rule_get(idx, &lookups[i]),
                            key);
        node->n_refs++;
    }
    mf->leaf = node;
    if (node) {
        ovs_list_push_back(&node->megaflows, &mf->leaf_node);
    }
    hmap_insert(&idx->megaflows, &mf->node, hash_pointer(owner, 0));
    idx->n_lookups += n;
    idx->stats.n_adds++;
    return 0;
}

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

int
kairo_delta_index_replace(struct kairo_delta_index *idx,
                          uint64_t megaflow_id, const void *owner,
                          const struct kairo_delta_index_common *common,
                          const struct kairo_delta_index_lookup lookups[],
                          size_t n)
{
    struct kdi_megaflow *mf = kdi_megaflow_find(idx, owner);
    int error;

    if (!mf) {
        return kairo_delta_index_add(idx, megaflow_id, owner, common,
                                     lookups, n);
    }

    /* Unlink the old entry from 'megaflows' only, so that the add does not
     * see 'owner' as taken; its path stays indexed until the new entry is
     * in (sharing its nodes), and it goes back if the new one is
     * refused. */
    hmap_remove(&idx->megaflows, &mf->node);
    error = kairo_delta_index_add(idx, megaflow_id, owner, common, lookups,
                                  n);
    hmap_insert(&idx->megaflows, &mf->node, hash_pointer(owner, 0));
    if (!error) {
        kdi_megaflow_destroy(idx, mf);
    }
    return error;
}

bool
kairo_delta_index_contains(const struct kairo_delta_index *idx,
                           const void *owner)
{
    return kdi_megaflow_find(idx, owner) != NULL;
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

/* Returns true if megaflow 'mf''s common part meets insert query 'q' on the
 * bits that are not in 'own' (FLOW_U64S words), the mask of the lookup's
 * own part. */
static bool
kdi_common_meets(const struct kdi_megaflow *mf, const uint64_t own[],
                 const struct kdi_query *q)
{
    const struct kdi_cmask *cm = mf->cmask;

    if (cm) {
        const uint8_t *widx = kdi_mask_widx(&cm->mask);

        for (unsigned int j = 0; j < cm->mask.n_words; j++) {
            unsigned int w = widx[j];
            uint64_t bits = cm->mask.words[j] & q->mask[w] & ~own[w];

            if ((mf->common[j] ^ q->value[w]) & bits) {
                return false;
            }
        }
    }
    return true;
}

/* Reports 'mf' for query 'q' unless it already was. */
static void
kdi_report(struct kdi_megaflow *mf, struct kdi_query *q)
{
    if (mf->stamp != q->stamp) {
        mf->stamp = q->stamp;
        q->cb(mf->owner, mf->id, q->aux);
        q->n_reported++;
    }
}

/* Reports every megaflow whose path goes through node 'top' and, if 'own'
 * is nonnull, whose common part meets insert query 'q' outside 'own'. */
static void
kdi_report_subtree(struct kairo_delta_index *idx, struct kdi_node *top,
                   const uint64_t own[], struct kdi_query *q)
{
    struct kdi_node *n = top;

    for (;;) {
        struct kdi_megaflow *mf;

        LIST_FOR_EACH (mf, leaf_node, &n->megaflows) {
            idx->stats.megaflows_examined++;
            if (mf->stamp != q->stamp
                && (!own || kdi_common_meets(mf, own, q))) {
                kdi_report(mf, q);
            }
        }

        /* Depth first: the first child, else the next sibling of this
         * node or of the nearest ancestor below 'top' that has one. */
        if (!ovs_list_is_empty(&n->children)) {
            n = CONTAINER_OF(ovs_list_front(&n->children), struct kdi_node,
                             sibling);
            continue;
        }
        while (n != top && n->sibling.next == &n->parent->children) {
            n = n->parent;
        }
        if (n == top) {
            return;
        }
        n = CONTAINER_OF(n->sibling.next, struct kdi_node, sibling);
    }
}

/* Answers insert query 'q' for group 'g'. */
static void
kdi_group_query(struct kairo_delta_index *idx, struct kdi_group *g,
                struct kdi_query *q)
{
    const struct kdi_mask *gm = &g->mask;
    const uint8_t *widx = kdi_mask_widx(gm);
    uint64_t value[FLOW_U64S];
    uint64_t bits[FLOW_U64S];
    uint64_t own[FLOW_U64S];
    bool covered = true;
    bool any = false;
    struct kdi_node *n;

    for (unsigned int j = 0; j < gm->n_words; j++) {
        unsigned int w = widx[j];

        bits[j] = gm->words[j] & q->mask[w];
        value[j] = q->value[w] & bits[j];
        covered = covered && bits[j] == gm->words[j];
        any = any || bits[j];
    }
    kdi_mask_expand(gm, own);

    if (!any) {
        /* The query fixes none of the group's bits: every node of the
         * group meets it there. */
        idx->stats.path_all++;
        HINDEX_FOR_EACH (n, hnode, &g->nodes) {
            idx->stats.lookups_examined++;
            if (kdi_rule_admits(n->rule, q)) {
                kdi_report_subtree(idx, n, own, q);
            }
        }
    } else if (covered) {
        /* The query fixes every bit the group fixes: the nodes it meets
         * are exactly those whose key is 'value'. */
        uint32_t hash = kdi_hash_words(value, gm->n_words);

        idx->stats.path_probe++;
        HINDEX_FOR_EACH_WITH_HASH (n, hnode, hash, &g->nodes) {
            idx->stats.lookups_examined++;
            if (!memcmp(n->key, value, gm->n_words * sizeof *value)
                && kdi_rule_admits(n->rule, q)) {
                kdi_report_subtree(idx, n, own, q);
            }
        }
    } else {
        idx->stats.path_scan++;
        HINDEX_FOR_EACH (n, hnode, &g->nodes) {
            unsigned int j;

            idx->stats.lookups_examined++;
            for (j = 0; j < gm->n_words; j++) {
                if ((n->key[j] ^ value[j]) & bits[j]) {
                    break;
                }
            }
            if (j == gm->n_words && kdi_rule_admits(n->rule, q)) {
                kdi_report_subtree(idx, n, own, q);
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
    q->stamp = ++idx->stamp;
    q->n_reported = 0;
    idx->stats.n_insert_queries++;
    LIST_FOR_EACH (g, list_node, &idx->tables[q->table_id]) {
        kdi_group_query(idx, g, q);
    }
    idx->stats.megaflows_reported += q->n_reported;
    return q->n_reported;
}

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

size_t
kairo_delta_index_query_rule(struct kairo_delta_index *idx, const void *rule,
                             kairo_delta_index_cb *cb, void *aux)
{
    struct kdi_query q = {
        .cb = cb,
        .aux = aux,
        .stamp = ++idx->stamp,
    };
    struct kdi_rule *r;

    idx->stats.n_rule_queries++;
    HMAP_FOR_EACH_WITH_HASH (r, node, hash_pointer(rule, 0), &idx->rules) {
        if (r->rule == rule) {
            for (uint32_t i = 0; i < r->n_nodes; i++) {
                kdi_report_subtree(idx, r->nodes[i], NULL, &q);
            }
        }
    }
    idx->stats.megaflows_reported += q.n_reported;
    return q.n_reported;
}

/* Statistics. */

void
kairo_delta_index_get_stats(const struct kairo_delta_index *idx,
                            struct kairo_delta_index_stats *stats)
{
    size_t memory = idx->memory + sizeof *idx;
    const struct kdi_group *g;

    *stats = idx->stats;
    stats->n_megaflows = hmap_count(&idx->megaflows);
    stats->n_lookups = idx->n_lookups;
    stats->n_nodes = hmap_count(&idx->nodes);
    stats->n_groups = hmap_count(&idx->groups);
    stats->n_common_masks = hmap_count(&idx->cmasks);
    stats->n_rules = hmap_count(&idx->rules);

    memory += kdi_hmap_bytes(&idx->megaflows);
    memory += kdi_hmap_bytes(&idx->groups);
    memory += kdi_hmap_bytes(&idx->nodes);
    memory += kdi_hmap_bytes(&idx->cmasks);
    memory += kdi_hmap_bytes(&idx->rules);
    HMAP_FOR_EACH (g, node, &idx->groups) {
        memory += (g->nodes.mask + 1) * sizeof *g->nodes.buckets;
    }
    stats->memory = memory;
}
