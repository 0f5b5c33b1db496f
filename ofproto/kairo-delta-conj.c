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

#include "kairo-delta-conj.h"

#include "classifier.h"
#include "coverage.h"
#include "hash.h"
#include "openvswitch/hmap.h"
#include "openvswitch/match.h"
#include "openvswitch/ofp-actions.h"
#include "ofproto/ofproto-provider.h"
#include "util.h"

COVERAGE_DEFINE(kairo_delta_conj_precise);
COVERAGE_DEFINE(kairo_delta_conj_incomplete);
COVERAGE_DEFINE(kairo_delta_conj_wide);

/* A clause insert whose smallest other dimension has more clauses than
 * this is mapped by its own match alone (a superset), rather than by its
 * match narrowed by each clause of that dimension. */
#define KDC_MAX_QUERIES KAIRO_DELTA_INDEX_MAX_ALTS

/* The clauses of one dimension of a conjunction. */
struct kdc_dim {
    struct rule **rules;        /* Referenced. */
    size_t n, allocated;
};

/* One conjunction: the clauses with action conjunction(id, k/n) at
 * 'priority' in one table of one bridge, by dimension k. */
struct kdc_conj {
    struct hmap_node node;      /* In 'conjs', by kdc_hash(). */
    const struct ofproto *ofproto;
    uint8_t table_id;
    int priority;
    uint32_t id;
    unsigned int n_dims;        /* The n of its first clause. */
    bool inconsistent;          /* A clause gave another n: then the
                                 * classifier's result depends on the order
                                 * it meets the clauses in. */
    size_t n_clauses;           /* Over all dimensions. */
    struct kdc_dim *dims;       /* 'n_dims' of them. */
};

struct kairo_delta_conjs {
    struct hmap conjs;
    size_t n_clauses;
    uint64_t precise, incomplete, wide;
};

struct kairo_delta_conjs *
kairo_delta_conjs_create(void)
{
    struct kairo_delta_conjs *kc = xzalloc(sizeof *kc);

    hmap_init(&kc->conjs);
    return kc;
}

static void
kdc_conj_destroy(struct kdc_conj *c)
{
    for (size_t d = 0; d < c->n_dims; d++) {
        for (size_t i = 0; i < c->dims[d].n; i++) {
            ofproto_rule_unref(c->dims[d].rules[i]);
        }
        free(c->dims[d].rules);
    }
    free(c->dims);
    free(c);
}

void
kairo_delta_conjs_destroy(struct kairo_delta_conjs *kc)
{
    if (kc) {
        struct kdc_conj *c;

        HMAP_FOR_EACH_POP (c, node, &kc->conjs) {
            kdc_conj_destroy(c);
        }
        hmap_destroy(&kc->conjs);
        free(kc);
    }
}

static uint32_t
kdc_hash(const struct ofproto *ofproto, uint8_t table_id, int priority,
         uint32_t id)
{
    return hash_pointer(ofproto, hash_3words(table_id, priority, id));
}

static struct kdc_conj *
kdc_find(const struct kairo_delta_conjs *kc, const struct ofproto *ofproto,
         uint8_t table_id, int priority, uint32_t id)
{
    struct kdc_conj *c;

    HMAP_FOR_EACH_WITH_HASH (c, node,
                             kdc_hash(ofproto, table_id, priority, id),
                             &kc->conjs) {
        if (c->ofproto == ofproto && c->table_id == table_id
            && c->priority == priority && c->id == id) {
            return c;
        }
    }
    return NULL;
}

/* Adds clause 'rule' to dimension 'k' of conjunction 'id' with 'n'
 * dimensions.  OpenFlow decoding ensures 2 <= n <= 64 and k < n. */
static void
kdc_add(struct kairo_delta_conjs *kc, struct rule *rule, uint32_t id,
        unsigned int k, unsigned int n)
{
    const struct ofproto *ofproto = rule->ofproto;
    int priority = rule->cr.priority;
    struct kdc_conj *c = kdc_find(kc, ofproto, rule->table_id, priority, id);

    if (!c) {
        c = xzalloc(sizeof *c);
        c->ofproto = ofproto;
        c->table_id = rule->table_id;
        c->priority = priority;
        c->id = id;
        c->n_dims = n;
        c->dims = xcalloc(n, sizeof *c->dims);
        hmap_insert(&kc->conjs, &c->node,
                    kdc_hash(ofproto, rule->table_id, priority, id));
    }
    if (n != c->n_dims) {
        c->inconsistent = true;
        k = MIN(k, c->n_dims - 1);  /* Somewhere it can be removed from. */
    }

    struct kdc_dim *dim = &c->dims[k];
    if (dim->n >= dim->allocated) {
        dim->rules = x2nrealloc(dim->rules, &dim->allocated,
                                sizeof *dim->rules);
    }
    ofproto_rule_ref(rule);
    dim->rules[dim->n++] = rule;
    c->n_clauses++;
    kc->n_clauses++;
}

/* Removes clause 'rule' from conjunction 'id', wherever it is. */
static void
kdc_remove(struct kairo_delta_conjs *kc, struct rule *rule, uint32_t id)
{
    struct kdc_conj *c = kdc_find(kc, rule->ofproto, rule->table_id,
                                  rule->cr.priority, id);
    if (!c) {
        return;
    }
    for (size_t d = 0; d < c->n_dims; d++) {
        struct kdc_dim *dim = &c->dims[d];

        for (size_t i = 0; i < dim->n; i++) {
            if (dim->rules[i] == rule) {
                dim->rules[i] = dim->rules[--dim->n];
                ofproto_rule_unref(rule);
                kc->n_clauses--;
                if (!--c->n_clauses) {
                    hmap_remove(&kc->conjs, &c->node);
                    kdc_conj_destroy(c);
                }
                return;
            }
        }
    }
}

/* Calls kdc_add() or kdc_remove() ('add') for each conjunction action of
 * 'rule'. */
static void
kdc_update_rule(struct kairo_delta_conjs *kc, struct rule *rule, bool add)
{
    const struct rule_actions *actions = rule_get_actions(rule);
    const struct ofpact *a;

    OFPACT_FOR_EACH (a, actions->ofpacts, actions->ofpacts_len) {
        if (a->type == OFPACT_CONJUNCTION) {
            const struct ofpact_conjunction *oc = ofpact_get_CONJUNCTION(a);

            if (add) {
                kdc_add(kc, rule, oc->id, oc->clause, oc->n_clauses);
            } else {
                kdc_remove(kc, rule, oc->id);
            }
        }
    }
}

void
kairo_delta_conjs_update(struct kairo_delta_conjs *kc, struct rule *removed,
                         struct rule *added)
{
    if (removed) {
        kdc_update_rule(kc, removed, false);
    }
    if (added) {
        kdc_update_rule(kc, added, true);
    }
}

void
kairo_delta_conjs_get_stats(const struct kairo_delta_conjs *kc,
                            struct kairo_delta_conjs_stats *stats)
{
    *stats = (struct kairo_delta_conjs_stats) {
        .n_conjunctions = hmap_count(&kc->conjs),
        .n_clauses = kc->n_clauses,
        .precise = kc->precise,
        .incomplete = kc->incomplete,
        .wide = kc->wide,
    };
}

/* Narrows 'm' to the packets that also match 'other'.  Returns false if no
 * packet matches both. */
static bool
kdc_match_narrow(struct match *m, const struct minimatch *other)
{
    struct match o;

    minimatch_expand(other, &o);

    uint64_t *mv = (uint64_t *) &m->flow;
    uint64_t *mm = (uint64_t *) &m->wc.masks;
    const uint64_t *ov = (const uint64_t *) &o.flow;
    const uint64_t *om = (const uint64_t *) &o.wc.masks;
    for (size_t w = 0; w < FLOW_U64S; w++) {
        if ((mv[w] ^ ov[w]) & mm[w] & om[w]) {
            return false;
        }
        mv[w] = (mv[w] & mm[w]) | (ov[w] & om[w]);
        mm[w] |= om[w];
    }
    return true;
}

/* Queries 'index' for the lookups in 'table_id' at or below 'priority' whose
 * region meets one of the 'n' matches 'ms'.  A lookup's region never fixes
 * conj_id, and neither do clauses, so conj_id is left out. */
static size_t
kdc_query(struct kairo_delta_index *index, uint8_t table_id, int priority,
          struct match ms[], size_t n, kairo_delta_index_cb *cb, void *aux)
{
    for (size_t i = 0; i < n; i++) {
        ms[i].flow.conj_id = 0;
        ms[i].wc.masks.conj_id = 0;
    }
    return kairo_delta_index_query_insert_any(index, table_id, priority, ms,
                                              n, cb, aux);
}

/* The queries for conjunction 'id' with 'n' dimensions gaining, in
 * dimension 'k', a clause with 'match'. */
static size_t
kdc_query_conjunction(struct kairo_delta_conjs *kc,
                      struct kairo_delta_index *index,
                      const struct ofproto *ofproto, uint8_t table_id,
                      int priority, const struct minimatch *match,
                      uint32_t id, unsigned int k, unsigned int n,
                      kairo_delta_index_cb *cb, void *aux)
{
    const struct kdc_conj *c = kdc_find(kc, ofproto, table_id, priority, id);
    const struct kdc_dim *fewest = NULL;
    struct match m;

    minimatch_expand(match, &m);
    if (!c) {
        /* No clause of any other dimension (kairo/explain's clause, which
         * is not in its table yet): the conjunction cannot complete. */
        kc->incomplete++;
        COVERAGE_INC(kairo_delta_conj_incomplete);
        return 0;
    }
    if (!c->inconsistent && c->n_dims == n) {
        for (unsigned int d = 0; d < n; d++) {
            if (d != k && (!fewest || c->dims[d].n < fewest->n)) {
                fewest = &c->dims[d];
            }
        }
    }

    if (fewest && !fewest->n) {
        kc->incomplete++;
        COVERAGE_INC(kairo_delta_conj_incomplete);
        return 0;
    } else if (fewest && fewest->n <= KDC_MAX_QUERIES) {
        struct match *narrowed = xmalloc(fewest->n * sizeof *narrowed);
        size_t n_narrowed = 0;

        kc->precise++;
        COVERAGE_INC(kairo_delta_conj_precise);
        for (size_t i = 0; i < fewest->n; i++) {
            narrowed[n_narrowed] = m;
            n_narrowed += kdc_match_narrow(&narrowed[n_narrowed],
                                           &fewest->rules[i]->cr.match);
        }

        size_t n_reported = (n_narrowed
                             ? kdc_query(index, table_id, priority, narrowed,
                                         n_narrowed, cb, aux)
                             : 0);
        free(narrowed);
        return n_reported;
    }

    kc->wide++;
    COVERAGE_INC(kairo_delta_conj_wide);
    return kdc_query(index, table_id, priority, &m, 1, cb, aux);
}

size_t
kairo_delta_conjs_query_insert(struct kairo_delta_conjs *kc,
                               struct kairo_delta_index *index,
                               const struct ofproto *ofproto,
                               uint8_t table_id, int priority,
                               const struct minimatch *match,
                               const struct ofpact *ofpacts,
                               size_t ofpacts_len,
                               kairo_delta_index_cb *cb, void *aux)
{
    const struct ofpact *a;
    size_t n_reported = 0;

    OFPACT_FOR_EACH (a, ofpacts, ofpacts_len) {
        if (a->type == OFPACT_CONJUNCTION) {
            const struct ofpact_conjunction *oc = ofpact_get_CONJUNCTION(a);

            n_reported += kdc_query_conjunction(kc, index, ofproto, table_id,
                                                priority, match, oc->id,
                                                oc->clause, oc->n_clauses,
                                                cb, aux);
        }
    }
    return n_reported;
}

/* Auditing a lookup. */

/* A conjunction at one priority, as far as the clauses that meet a region
 * go. */
struct kdc_seen {
    uint32_t id;
    int priority;
    unsigned int n;             /* Its clauses' n (the largest seen). */
    uint64_t dims;              /* Bit k: a clause of dimension k meets the
                                 * region. */
};

struct kairo_delta_conj_region {
    const struct flow *key;     /* The region. */
    const struct flow_wildcards *mask;
    size_t n, allocated;
    struct kdc_seen *seen;      /* Conjunctions with a clause that meets
                                 * the region. */
};

/* Returns true if 'rule' matches some packet of the region of 'key' under
 * 'mask', conj_id aside. */
static bool
kdc_rule_meets(const struct rule *rule, const struct flow *key,
               const struct flow_wildcards *mask)
{
    struct flow_wildcards both;
    struct match match;

    minimatch_expand(&rule->cr.match, &match);
    match.wc.masks.conj_id = 0;
    flow_wildcards_and(&both, &match.wc, mask);
    return flow_equal_except(key, &match.flow, &both);
}

/* Returns true if 'rule' matches every packet of the region of 'key' under
 * 'mask', conj_id aside. */
static bool
kdc_rule_covers(const struct rule *rule, const struct flow *key,
                const struct flow_wildcards *mask)
{
    struct match match;

    minimatch_expand(&rule->cr.match, &match);
    match.wc.masks.conj_id = 0;

    const uint64_t *rm = (const uint64_t *) &match.wc.masks;
    const uint64_t *rv = (const uint64_t *) &match.flow;
    const uint64_t *m = (const uint64_t *) &mask->masks;
    const uint64_t *k = (const uint64_t *) key;
    for (size_t w = 0; w < FLOW_U64S; w++) {
        if (rm[w] & ~m[w] || (rv[w] ^ k[w]) & rm[w]) {
            return false;
        }
    }
    return true;
}

static struct kdc_seen *
kdc_seen_get(struct kairo_delta_conj_region *r, uint32_t id, int priority)
{
    for (size_t i = 0; i < r->n; i++) {
        if (r->seen[i].id == id && r->seen[i].priority == priority) {
            return &r->seen[i];
        }
    }
    if (r->n >= r->allocated) {
        r->seen = x2nrealloc(r->seen, &r->allocated, sizeof *r->seen);
    }
    r->seen[r->n] = (struct kdc_seen) { .id = id, .priority = priority };
    return &r->seen[r->n++];
}

static bool
kdc_seen_complete(const struct kdc_seen *s)
{
    return s->dims == (s->n >= 64 ? UINT64_MAX
                       : (UINT64_C(1) << s->n) - 1);
}

struct kairo_delta_conj_region *
kairo_delta_conj_region_create(const struct ofproto *ofproto,
                               uint8_t table_id, const struct flow *key,
                               const struct flow_wildcards *mask)
{
    struct kairo_delta_conj_region *r = xzalloc(sizeof *r);
    r->key = key;
    r->mask = mask;

    const struct classifier *cls = &ofproto->tables[table_id].cls;
    struct rule *rule;

    CLS_FOR_EACH_TARGET (rule, cr, cls, NULL, ofproto->tables_version) {
        const struct rule_actions *actions = rule_get_actions(rule);
        const struct ofpact *a;

        OFPACT_FOR_EACH (a, actions->ofpacts, actions->ofpacts_len) {
            if (a->type == OFPACT_CONJUNCTION
                && kdc_rule_meets(rule, key, mask)) {
                const struct ofpact_conjunction *oc
                    = ofpact_get_CONJUNCTION(a);
                struct kdc_seen *s = kdc_seen_get(r, oc->id,
                                                  rule->cr.priority);

                s->n = MAX(s->n, oc->n_clauses);
                s->dims |= UINT64_C(1) << oc->clause;
            }
        }
    }
    return r;
}

void
kairo_delta_conj_region_destroy(struct kairo_delta_conj_region *r)
{
    if (r) {
        free(r->seen);
        free(r);
    }
}

/* Returns true if 'rule' may make the result of a lookup in the region,
 * whose threshold is 'threshold', differ between packets of the region.  A
 * rule that matches none of them, or all of them, cannot: the classifier's
 * answer, conjunctions and conj_id lookups included, depends only on which
 * rules a packet matches, so packets that match the same rules get the same
 * answer. */
bool
kairo_delta_conj_region_may_split(const struct kairo_delta_conj_region *r,
                                   const struct rule *rule, int threshold)
{
    if (!kdc_rule_meets(rule, r->key, r->mask)
        || kdc_rule_covers(rule, r->key, r->mask)) {
        return false;
    }

    const struct rule_actions *actions = rule_get_actions(rule);
    uint32_t conj_mask = MINIFLOW_GET_U32(&rule->cr.match.mask->masks,
                                          conj_id);
    uint32_t conj_id = MINIFLOW_GET_U32(rule->cr.match.flow, conj_id);
    bool is_clause = false;
    const struct ofpact *a;

    OFPACT_FOR_EACH (a, actions->ofpacts, actions->ofpacts_len) {
        if (a->type == OFPACT_CONJUNCTION) {
            const struct ofpact_conjunction *oc = ofpact_get_CONJUNCTION(a);

            is_clause = true;
            for (size_t i = 0; i < r->n; i++) {
                if (r->seen[i].id == oc->id
                    && r->seen[i].priority == rule->cr.priority
                    && rule->cr.priority >= threshold
                    && kdc_seen_complete(&r->seen[i])) {
                    return true;
                }
            }
        }
    }
    if (is_clause) {
        return false;
    }
    if (conj_mask == UINT32_MAX && conj_id) {
        /* Only a lookup with that conj_id returns it, whatever its
         * priority: one made for a conjunction that completes above the
         * threshold. */
        for (size_t i = 0; i < r->n; i++) {
            if (r->seen[i].id == conj_id
                && r->seen[i].priority >= threshold
                && kdc_seen_complete(&r->seen[i])) {
                return true;
            }
        }
        return false;
    }
    return rule->cr.priority >= threshold;
}
