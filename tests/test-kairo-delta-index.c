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

/* Unit tests for lib/kairo-delta-index.c.
 *
 * The hand-written cases pin down the definition's corners: equal priority,
 * misses, megaflows that hit a rule or a table twice, rewritten fields,
 * errors that must leave the index unchanged, and each query path.  The
 * differential test drives the index with a seeded random mix of adds,
 * removes, replaces and queries and checks every answer against a brute-force
 * evaluation of DESIGN.md section 2's definition over every word of struct
 * flow: the sets must be equal, and each megaflow reported exactly once. */

#include <config.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "flow.h"
#include "kairo-delta-index.h"
#include "kairo-unit.h"
#include "openvswitch/match.h"
#include "util.h"

/* A small deterministic generator (xorshift64*), so that every run of the
 * differential test is the same. */
struct test_rng {
    uint64_t state;             /* Never zero. */
};

/* Returns the next 64 random bits from 'rng'. */
static uint64_t
rng_next(struct test_rng *rng)
{
    rng->state ^= rng->state >> 12;
    rng->state ^= rng->state << 25;
    rng->state ^= rng->state >> 27;
    return rng->state * UINT64_C(0x2545f4914f6cdd1d);
}

/* Returns a random number in [0, n) from 'rng'. */
static unsigned int
rng_below(struct test_rng *rng, unsigned int n)
{
    return (rng_next(rng) >> 33) % n;
}

/* One field the tests use: where it is in struct flow and how wide. */
struct test_field {
    size_t ofs;                 /* Byte offset in struct flow. */
    size_t len;                 /* Width in bytes: 2, 4 or 8. */
};

/* The fields the tests match on.  The last four are the ones that random
 * megaflows "write" before a later lookup. */
static const struct test_field test_fields[] = {
    { offsetof(struct flow, nw_src), 4 },
    { offsetof(struct flow, nw_dst), 4 },
    { offsetof(struct flow, tp_dst), 2 },
    { offsetof(struct flow, dl_type), 2 },
    { offsetof(struct flow, metadata), 8 },
    { offsetof(struct flow, regs[0]), 4 },
    { offsetof(struct flow, regs[1]), 4 },
    { offsetof(struct flow, regs[2]), 4 },
};
#define N_FIELDS ARRAY_SIZE(test_fields)
#define FIRST_WRITTEN_FIELD 4

/* Sets field 'f' of 'flow' to the low bytes of 'value'. */
static void
field_set(struct flow *flow, unsigned int f, uint64_t value)
{
    const struct test_field *tf = &test_fields[f];

    memcpy((char *) flow + tf->ofs, &value, tf->len);
}

/* Returns field 'f' of 'flow'. */
static uint64_t
field_get(const struct flow *flow, unsigned int f)
{
    uint64_t value = 0;

    memcpy(&value, (const char *) flow + test_fields[f].ofs,
           test_fields[f].len);
    return value;
}

/* Returns the low 'len' bytes of 'value', zero-extended: an all-ones mask of
 * field 'f' when 'value' is UINT64_MAX. */
static uint64_t
field_trim(unsigned int f, uint64_t value)
{
    size_t len = test_fields[f].len;

    return len == 8 ? value : value & ((UINT64_C(1) << (8 * len)) - 1);
}

/* Returns a random mask for field 'f': all ones, a high part, a low part or
 * one bit. */
static uint64_t
random_mask(struct test_rng *rng, unsigned int f)
{
    static const uint64_t palette[] = {
        UINT64_MAX, UINT64_MAX, UINT64_C(0xff00ff00ff00ff00),
        UINT64_C(0x3), UINT64_C(0x1), UINT64_C(0xfffffffffffffffe),
    };

    return field_trim(f, palette[rng_below(rng, ARRAY_SIZE(palette))]);
}

/* Returns a random value for a field: a few bits, so that regions often
 * intersect, under one of two fixed high patterns. */
static uint64_t
random_value(struct test_rng *rng)
{
    static const uint64_t highs[] = {
        UINT64_C(0x0a000000), UINT64_C(0xc0a80000ff000000),
    };

    return highs[rng_below(rng, 2)] | rng_below(rng, 8);
}

/* Returns true if the region of lookup ('key', 'mask') intersects match
 * ('value', 'qmask'), word by word over the whole struct flow. */
static bool
regions_intersect(const struct flow *key, const struct flow_wildcards *mask,
                  const struct flow *value, const struct flow_wildcards *qmask)
{
    const uint64_t *k = (const uint64_t *) key;
    const uint64_t *m = (const uint64_t *) &mask->masks;
    const uint64_t *v = (const uint64_t *) value;
    const uint64_t *q = (const uint64_t *) &qmask->masks;

    for (size_t w = 0; w < FLOW_U64S; w++) {
        if ((k[w] ^ v[w]) & m[w] & q[w]) {
            return false;
        }
    }
    return true;
}

/* Hand-written cases. */

/* A megaflow built by hand for the fixed cases: up to 4 lookups. */
struct hand_mf {
    struct flow keys[4];                    /* key_t per lookup. */
    struct flow_wildcards masks[4];         /* mask_t per lookup. */
    struct kairo_delta_index_words_buf bufs[4];  /* Their words. */
    struct kairo_delta_index_lookup l[4];   /* What is passed to the index. */
    size_t n;                               /* Lookups in use. */
    struct kairo_delta_index_entry *entry;  /* Its entry, or NULL. */
};

/* Appends to 'mf' a lookup in 'table' whose key has 'nw_src' (masked by
 * 'src_mask') and 'reg0' (all ones), hitting 'rule' with 'priority' (or
 * missing if 'rule' is NULL). */
static void
hand_add(struct hand_mf *mf, uint8_t table, uint32_t nw_src,
         uint32_t src_mask, uint32_t reg0, const void *rule, int priority)
{
    size_t i = mf->n++;

    ovs_assert(i < ARRAY_SIZE(mf->keys));
    memset(&mf->keys[i], 0, sizeof mf->keys[i]);
    memset(&mf->masks[i], 0, sizeof mf->masks[i]);
    mf->keys[i].nw_src = htonl(nw_src);
    mf->masks[i].masks.nw_src = htonl(src_mask);
    mf->keys[i].regs[0] = reg0;
    mf->masks[i].masks.regs[0] = UINT32_MAX;
    mf->keys[i].tp_dst = htons(80);     /* Unmasked: must be ignored. */
    mf->l[i] = (struct kairo_delta_index_lookup) {
        .table_id = table,
        .region = kairo_delta_index_words_from_flow(&mf->keys[i],
                                                    &mf->masks[i],
                                                    &mf->bufs[i]),
        .rule = rule, .priority = priority,
    };
}

/* Counts callback calls per owner in a small array of owners. */
struct hand_result {
    const void *owners[16];     /* Owners reported, in order. */
    size_t n;                   /* Calls so far. */
};

/* Query callback for the hand-written cases: records 'owner' in 'aux_'. */
static void
hand_cb(const void *owner, void *aux_)
{
    struct hand_result *r = aux_;

    if (r->n < ARRAY_SIZE(r->owners)) {
        r->owners[r->n] = owner;
    }
    r->n++;
}

/* Runs an insert query on 'idx' for 'table', 'priority' and nw_src
 * 'value'/'mask' and reg0 'reg0'/'reg0_mask'; returns the result count and
 * stores the owners in 'r'. */
static size_t
hand_query(struct kairo_delta_index *idx, uint8_t table, int priority,
           uint32_t value, uint32_t mask, uint32_t reg0, uint32_t reg0_mask,
           struct hand_result *r)
{
    struct match match;

    match_init_catchall(&match);
    match_set_nw_src_masked(&match, htonl(value), htonl(mask));
    match_set_reg_masked(&match, 0, reg0, reg0_mask);
    r->n = 0;
    return kairo_delta_index_query_insert_match(idx, table, priority, &match,
                                                hand_cb, r);
}

/* Rule identities for the hand-written cases. */
static const char rule_a, rule_b, rule_c;

/* Rule references the index holds, through its rule hooks. */
static long long int n_rules_held;

static void
hold_rule(const void *rule OVS_UNUSED)
{
    n_rules_held++;
}

static void
release_rule(const void *rule OVS_UNUSED)
{
    CU_ASSERT(n_rules_held > 0);
    n_rules_held--;
}

/* Adds, finds, refuses a duplicate, removes, and cleans up. */
static void
test_basic(void)
{
    struct kairo_delta_index *idx = kairo_delta_index_create();
    struct kairo_delta_index_stats st0, st;
    struct hand_mf mf1 = { .n = 0 }, mf2 = { .n = 0 };
    struct hand_result r;

    kairo_delta_index_set_rule_hooks(idx, hold_rule, release_rule);
    n_rules_held = 0;
    kairo_delta_index_get_stats(idx, &st0);
    hand_add(&mf1, 0, 0x0a000001, 0xffffffff, 1, &rule_a, 10);
    hand_add(&mf1, 1, 0x0a000001, 0xffffffff, 7, NULL, 0);
    hand_add(&mf2, 0, 0x0a000002, 0xffffffff, 1, &rule_a, 10);

    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &mf1.entry, &mf1, NULL,
                                          mf1.l, mf1.n), 0);
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &mf2.entry, &mf2, NULL,
                                          mf2.l, mf2.n), 0);
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &mf2.entry, &mf2, NULL,
                                          mf1.l, mf1.n), EEXIST);
    CU_ASSERT(mf1.entry != NULL);

    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_megaflows, 2);
    CU_ASSERT_EQUAL(st.n_lookups, 3);
    CU_ASSERT_EQUAL(st.n_groups, 2);
    CU_ASSERT_EQUAL(st.n_rules, 1);
    CU_ASSERT_EQUAL(n_rules_held, 1);  /* One per rule, not per lookup. */
    CU_ASSERT(st.memory > st0.memory);
    CU_ASSERT_EQUAL(st.n_keys, 3);     /* One per group and own key. */

    /* The breakdown adds up, and each kind holds something but secondary
     * hashes, which groups this small do not get. */
    uint64_t sum = 0;
    for (size_t i = 0; i < KAIRO_DELTA_INDEX_N_MEM; i++) {
        CU_ASSERT((st.memory_by[i] > 0)
                  == (i != KAIRO_DELTA_INDEX_MEM_SECONDARIES));
        CU_ASSERT(strcmp(kairo_delta_index_mem_name(i), "unknown"));
        sum += st.memory_by[i];
    }
    CU_ASSERT_EQUAL(sum, st.memory);

    r.n = 0;
    CU_ASSERT_EQUAL(kairo_delta_index_query_rule(idx, &rule_a, hand_cb, &r),
                    2);
    CU_ASSERT_EQUAL(kairo_delta_index_query_rule(idx, &rule_b, hand_cb, &r),
                    0);

    CU_ASSERT(kairo_delta_index_remove(idx, &mf1.entry));
    CU_ASSERT(!kairo_delta_index_remove(idx, &mf1.entry));
    CU_ASSERT(!mf1.entry);
    CU_ASSERT_EQUAL(n_rules_held, 1);
    CU_ASSERT(kairo_delta_index_remove(idx, &mf2.entry));
    CU_ASSERT_EQUAL(n_rules_held, 0);

    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_megaflows, 0);
    CU_ASSERT_EQUAL(st.n_lookups, 0);
    CU_ASSERT_EQUAL(st.n_groups, 0);
    CU_ASSERT_EQUAL(st.n_rules, 0);
    CU_ASSERT_EQUAL(st.n_keys, 0);

    /* What the megaflows took is given back, kind by kind. */
    for (size_t i = 0; i < KAIRO_DELTA_INDEX_N_MEM; i++) {
        if (i != KAIRO_DELTA_INDEX_MEM_HASHES) {
            CU_ASSERT_EQUAL(st.memory_by[i], st0.memory_by[i]);
        }
    }

    /* Megaflows without lookups are in the index too, and the index frees
     * the megaflows left in it, with lookups or not. */
    struct hand_mf none[3] = { { .n = 0 } };
    for (size_t i = 0; i < ARRAY_SIZE(none); i++) {
        CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &none[i].entry, &none[i],
                                              NULL, NULL, 0), 0);
    }
    CU_ASSERT(kairo_delta_index_remove(idx, &none[0].entry));
    CU_ASSERT(!kairo_delta_index_is_empty(idx));
    CU_ASSERT(kairo_delta_index_remove(idx, &none[2].entry));
    CU_ASSERT(kairo_delta_index_remove(idx, &none[1].entry));
    CU_ASSERT(kairo_delta_index_is_empty(idx));
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &none[0].entry, &none[0],
                                          NULL, NULL, 0), 0);
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &mf1.entry, &mf1, NULL,
                                          mf1.l, mf1.n), 0);
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_megaflows, 2);
    kairo_delta_index_destroy(idx);
    CU_ASSERT_EQUAL(n_rules_held, 0);
}

/* Checks priorities (equal counts), misses, tables and intersection. */
static void
test_insert_definition(void)
{
    struct kairo_delta_index *idx = kairo_delta_index_create();
    struct hand_mf hit = { .n = 0 }, miss = { .n = 0 };
    struct hand_result r;

    hand_add(&hit, 0, 0x0a000001, 0xffffffff, 1, &rule_a, 10);
    hand_add(&miss, 0, 0x0a000002, 0xffffffff, 1, NULL, 0);
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &hit.entry, &hit, NULL,
                                          hit.l, hit.n), 0);
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &miss.entry, &miss, NULL,
                                          miss.l, miss.n), 0);

    /* A /24 covers both; priority decides for the hit. */
    CU_ASSERT_EQUAL(hand_query(idx, 0, 9, 0x0a000000, 0xffffff00, 0, 0, &r),
                    1);
    CU_ASSERT_PTR_EQUAL(r.owners[0], &miss);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 10, 0x0a000000, 0xffffff00, 0, 0, &r),
                    2);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 11, 0x0a000000, 0xffffff00, 0, 0, &r),
                    2);

    /* Exact matches pick one; another table or subnet picks none. */
    CU_ASSERT_EQUAL(hand_query(idx, 0, 99, 0x0a000001, 0xffffffff, 0, 0, &r),
                    1);
    CU_ASSERT_PTR_EQUAL(r.owners[0], &hit);
    CU_ASSERT_EQUAL(hand_query(idx, 1, 99, 0x0a000001, 0xffffffff, 0, 0, &r),
                    0);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 99, 0x0b000000, 0xff000000, 0, 0, &r),
                    0);

    /* Bits the lookup does not fix never prevent an intersection. */
    CU_ASSERT_EQUAL(hand_query(idx, 0, 99, 0, 0, 5, 0xffffff00, &r), 2);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 99, 0, 0, 2, 0xff, &r), 0);

    kairo_delta_index_destroy(idx);
}

/* A megaflow that meets a table or a rule twice is reported once, and a
 * rewritten field is matched with its value at the lookup. */
static void
test_dedup_and_rewrite(void)
{
    struct kairo_delta_index *idx = kairo_delta_index_create();
    struct hand_mf mf = { .n = 0 };
    struct hand_result r;

    /* reg0 is 1 at the first lookup and rewritten to 9 before the later
     * ones; table 2 is consulted twice and rule_b hit twice. */
    hand_add(&mf, 0, 0x0a000001, 0xffffff00, 1, &rule_a, 5);
    hand_add(&mf, 2, 0x0a000001, 0xffffff00, 9, &rule_b, 5);
    hand_add(&mf, 2, 0x0a000001, 0xffffffff, 9, &rule_b, 5);
    hand_add(&mf, 3, 0x0a000001, 0xffffff00, 9, NULL, 0);
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &mf.entry, &mf, NULL,
                                          mf.l, mf.n), 0);

    r.n = 0;
    CU_ASSERT_EQUAL(kairo_delta_index_query_rule(idx, &rule_b, hand_cb, &r),
                    1);
    CU_ASSERT_EQUAL(hand_query(idx, 2, 5, 0, 0, 9, UINT32_MAX, &r), 1);
    CU_ASSERT_EQUAL(hand_query(idx, 2, 5, 0x0a000001, 0xffffffff, 0, 0, &r),
                    1);
    CU_ASSERT_EQUAL(hand_query(idx, 3, 0, 0, 0, 9, UINT32_MAX, &r), 1);
    CU_ASSERT_EQUAL(hand_query(idx, 3, 0, 0, 0, 1, UINT32_MAX, &r), 0);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 5, 0, 0, 1, UINT32_MAX, &r), 1);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 5, 0, 0, 9, UINT32_MAX, &r), 0);

    kairo_delta_index_destroy(idx);
}

/* Thresholds and conjunctions: one rule hit with different thresholds and
 * conjunction kinds makes separate entries, all found by a rule query; an
 * insert query compares the threshold, not the rule's priority; a conj_id
 * insert query reaches only the lookups made with that conj_id or any. */
static void
test_conjunctions(void)
{
    struct kairo_delta_index *idx = kairo_delta_index_create();
    struct hand_mf a = { .n = 0 }, b = { .n = 0 }, c = { .n = 0 };
    struct kairo_delta_index_stats st;
    struct hand_result r;
    struct minimatch mm;
    struct match match;

    /* A: a conjunction (id 7) won at priority 5 and gave rule_a. */
    hand_add(&a, 0, 0x0a000001, 0xffffffff, 1, &rule_a, 5);
    a.l[0].conj = KAIRO_DELTA_INDEX_CONJ_ONE;
    a.l[0].conj_id = 7;
    /* B: rule_a hit without a conjunction. */
    hand_add(&b, 0, 0x0a000001, 0xffffffff, 1, &rule_a, 10);
    /* C: several conjunctions looked up, one of which found nothing. */
    hand_add(&c, 0, 0x0a000001, 0xffffffff, 1, &rule_b, INT_MIN);
    c.l[0].conj = KAIRO_DELTA_INDEX_CONJ_ANY;
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &a.entry, &a, NULL,
                                          a.l, a.n), 0);
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &b.entry, &b, NULL,
                                          b.l, b.n), 0);
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &c.entry, &c, NULL,
                                          c.l, c.n), 0);
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_rules, 3);

    CU_ASSERT_EQUAL(hand_query(idx, 0, 6, 0x0a000001, 0xffffffff, 0, 0, &r),
                    2);
    CU_ASSERT(r.owners[0] != &b && r.owners[1] != &b);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 10, 0x0a000001, 0xffffffff, 0, 0, &r),
                    3);

    match_init_catchall(&match);
    match_set_nw_src(&match, htonl(0x0a000001));
    match_set_conj_id(&match, 7);
    minimatch_init(&mm, &match);
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL(kairo_delta_index_query_conj_insert(idx, 0, 20, &mm, 7,
                                                        hand_cb, &r), 2);
    CU_ASSERT(r.owners[0] != &b && r.owners[1] != &b);
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL(kairo_delta_index_query_conj_insert(idx, 0, 20, &mm, 8,
                                                        hand_cb, &r), 1);
    CU_ASSERT_PTR_EQUAL(r.owners[0], &c);
    /* Below A's threshold, id 7 does not reach A. */
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL(kairo_delta_index_query_conj_insert(idx, 0, 4, &mm, 7,
                                                        hand_cb, &r), 1);
    minimatch_destroy(&mm);

    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL(kairo_delta_index_query_rule(idx, &rule_a, hand_cb, &r),
                    2);
    CU_ASSERT(kairo_delta_index_remove(idx, &a.entry));
    CU_ASSERT(kairo_delta_index_remove(idx, &b.entry));
    CU_ASSERT(kairo_delta_index_remove(idx, &c.entry));
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_rules, 0);
    kairo_delta_index_destroy(idx);
}

/* Errors leave the index unchanged; replace swaps lookups and keeps the old
 * entry when the new one is refused. */
static void
test_errors_and_replace(void)
{
    struct kairo_delta_index *idx = kairo_delta_index_create();
    struct kairo_delta_index_stats before, after;
    struct hand_mf mf = { .n = 0 }, bad = { .n = 0 }, next = { .n = 0 };
    struct kairo_delta_index_lookup *many;
    struct hand_result r;

    hand_add(&mf, 0, 0x0a000001, 0xffffffff, 1, &rule_a, 10);
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &mf.entry, &mf, NULL,
                                          mf.l, mf.n), 0);
    kairo_delta_index_get_stats(idx, &before);

    /* rule_c is new, rule_a comes with a bad conjunction kind: refused,
     * and the entry made for rule_c must be gone again. */
    hand_add(&bad, 0, 0x0a000002, 0xffffffff, 1, &rule_c, 3);
    hand_add(&bad, 1, 0x0a000002, 0xffffffff, 1, &rule_a, 11);
    bad.l[1].conj = KAIRO_DELTA_INDEX_CONJ_ANY + 1;
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &bad.entry, &bad, NULL,
                                          bad.l, bad.n),
                    EINVAL);
    CU_ASSERT_EQUAL(kairo_delta_index_replace(idx, &mf.entry, &mf, NULL,
                                              bad.l, bad.n),
                    EINVAL);

    many = xcalloc(KAIRO_DELTA_INDEX_MAX_LOOKUPS + 1, sizeof *many);
    for (size_t i = 0; i <= KAIRO_DELTA_INDEX_MAX_LOOKUPS; i++) {
        many[i] = mf.l[0];
    }
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &bad.entry, &bad, NULL, many,
                                          KAIRO_DELTA_INDEX_MAX_LOOKUPS + 1),
                    E2BIG);
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &bad.entry, &bad, NULL, many,
                                          KAIRO_DELTA_INDEX_MAX_LOOKUPS), 0);
    CU_ASSERT(kairo_delta_index_remove(idx, &bad.entry));
    free(many);

    kairo_delta_index_get_stats(idx, &after);
    CU_ASSERT_EQUAL(after.n_megaflows, before.n_megaflows);
    CU_ASSERT_EQUAL(after.n_lookups, before.n_lookups);
    CU_ASSERT_EQUAL(after.n_rules, before.n_rules);
    CU_ASSERT_EQUAL(after.n_groups, before.n_groups);
    CU_ASSERT(mf.entry != NULL);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 10, 0x0a000001, 0xffffffff, 0, 0, &r),
                    1);

    /* Replace moves the megaflow to table 4. */
    hand_add(&next, 4, 0x0a000001, 0xffffffff, 1, NULL, 0);
    CU_ASSERT_EQUAL(kairo_delta_index_replace(idx, &mf.entry, &mf, NULL,
                                              next.l, next.n),
                    0);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 10, 0x0a000001, 0xffffffff, 0, 0, &r),
                    0);
    CU_ASSERT_EQUAL(hand_query(idx, 4, 0, 0x0a000001, 0xffffffff, 0, 0, &r),
                    1);
    r.n = 0;
    CU_ASSERT_EQUAL(kairo_delta_index_query_rule(idx, &rule_a, hand_cb, &r),
                    0);

    /* Replace of an absent owner adds it. */
    CU_ASSERT_EQUAL(kairo_delta_index_replace(idx, &next.entry, &next, NULL,
                                              mf.l, mf.n), 0);
    CU_ASSERT(next.entry != NULL);
    kairo_delta_index_destroy(idx);
}

/* Drives each query path once on purpose and checks its counter. */
static void
test_paths(void)
{
    struct kairo_delta_index *idx = kairo_delta_index_create();
    struct kairo_delta_index_stats st;
    struct hand_mf big[40] = { { .n = 0 } }, small[4] = { { .n = 0 } };
    struct hand_result r;

    /* Table 0: a group of 40 lookups; table 1: a group of 4. */
    for (size_t i = 0; i < ARRAY_SIZE(big); i++) {
        big[i].n = 0;
        hand_add(&big[i], 0, 0x0a000000 + i, 0xffffffff, i % 4, NULL, 0);
        CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &big[i].entry, &big[i],
                                              NULL, big[i].l, big[i].n), 0);
    }
    for (size_t i = 0; i < ARRAY_SIZE(small); i++) {
        small[i].n = 0;
        hand_add(&small[i], 1, 0x0a000000 + i, 0xffffffff, i, NULL, 0);
        CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &small[i].entry,
                                              &small[i], NULL, small[i].l,
                                              small[i].n), 0);
    }

    /* Covering mask: one probe. */
    CU_ASSERT_EQUAL(hand_query(idx, 0, 0, 0x0a000005, 0xffffffff,
                               1, UINT32_MAX, &r), 1);
    /* Partial masks: a new secondary, then the same one again. */
    CU_ASSERT_EQUAL(hand_query(idx, 0, 0, 0, 0, 2, UINT32_MAX, &r), 10);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 0, 0, 0, 3, UINT32_MAX, &r), 10);
    /* Disjoint: all. */
    CU_ASSERT_EQUAL(hand_query(idx, 0, 0, 0, 0, 0, 0, &r), 40);
    /* Small group, partial mask: scan. */
    CU_ASSERT_EQUAL(hand_query(idx, 1, 0, 0, 0, 3, UINT32_MAX, &r), 1);

    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.path_probe, 1);
    CU_ASSERT_EQUAL(st.path_secondary_new, 1);
    CU_ASSERT_EQUAL(st.path_secondary, 1);
    CU_ASSERT_EQUAL(st.path_all, 1);
    CU_ASSERT_EQUAL(st.path_scan, 1);
    /* The big group's exact hash, and the one for the partial mask. */
    CU_ASSERT_EQUAL(st.n_secondaries, 2);

    /* Four more bit sets: three new secondaries, then the bound. */
    for (uint32_t m = 1; m <= 4; m++) {
        CU_ASSERT_EQUAL(hand_query(idx, 0, 0, 0x0a000000,
                                   0xffffffc0 << (m - 1), 0, 0, &r), 40);
    }
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.path_secondary_new, 4);
    CU_ASSERT_EQUAL(st.path_scan, 2);
    CU_ASSERT_EQUAL(st.n_secondaries, 5);

    /* Secondaries stay right while lookups come and go. */
    for (size_t i = 0; i < ARRAY_SIZE(big); i += 3) {
        CU_ASSERT(kairo_delta_index_remove(idx, &big[i].entry));
    }
    CU_ASSERT_EQUAL(hand_query(idx, 0, 0, 0, 0, 2, UINT32_MAX, &r), 7);
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &big[0].entry, &big[0], NULL,
                                          big[0].l, big[0].n), 0);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 0, 0, 0, 0, UINT32_MAX, &r), 7);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 0, 0x0a000000, 0xffffffe0,
                               0, 0, &r), 22);
    kairo_delta_index_destroy(idx);
}

/* Queries table 'table' of 'idx' for a rule on 10.0.0.1, as
 * test_chains() adds megaflows, and stores in '*walked' the node chains the
 * query walked. */
static size_t
chain_query(struct kairo_delta_index *idx, uint8_t table,
            struct hand_result *r, uint64_t *walked)
{
    struct kairo_delta_index_stats before, after;
    size_t n;

    kairo_delta_index_get_stats(idx, &before);
    n = hand_query(idx, table, 0, 0x0a000001, 0xffffffff, 0, 0, r);
    kairo_delta_index_get_stats(idx, &after);
    *walked = after.nodes_walked - before.nodes_walked;
    return n;
}

/* A group whose own mask has more words than a key's map covers keeps its
 * keys whole; a narrower one leaves the zero words out.  Both answer the
 * exact probe, a partial query and the removals alike. */
static void
test_wide_keys(void)
{
    for (int wide = 0; wide < 2; wide++) {
        struct kairo_delta_index *idx = kairo_delta_index_create();
        struct kairo_delta_index_words_buf bufs[32];
        struct kairo_delta_index_lookup l[32];
        struct kairo_delta_index_stats empty, st;
        struct kairo_delta_index_entry *entries[32] = { NULL };
        struct flow keys[32];
        struct flow_wildcards mask;
        struct hand_result r;
        struct match match;

        kairo_delta_index_get_stats(idx, &empty);
        if (wide) {
            memset(&mask, 0xff, sizeof mask);
            mask.masks.conj_id = 0;
        } else {
            flow_wildcards_init_catchall(&mask);
            mask.masks.nw_src = OVS_BE32_MAX;
            mask.masks.regs[0] = UINT32_MAX;
            mask.masks.regs[3] = UINT32_MAX;
            mask.masks.metadata = OVS_BE64_MAX;
        }
        for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
            memset(&keys[i], 0, sizeof keys[i]);
            keys[i].nw_src = htonl(0x0a000000 + i % 8);
            keys[i].regs[0] = i % 2;
            keys[i].metadata = htonll(7);
            flow_zero_wildcards(&keys[i], &mask);
            l[i] = (struct kairo_delta_index_lookup) {
                .table_id = 0,
                .region = kairo_delta_index_words_from_flow(&keys[i], &mask,
                                                            &bufs[i]),
                .rule = i / 8 % 2 ? &rule_a : &rule_b,
                .priority = 10,
            };
            CU_ASSERT_EQUAL(l[i].region.n > 32, wide);
            CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &entries[i], &keys[i],
                                                  NULL, &l[i], 1), 0);
        }
        /* Eight keys, each of two steps (rules), and an exact hash. */
        kairo_delta_index_get_stats(idx, &st);
        CU_ASSERT_EQUAL(st.n_steps, 16);
        CU_ASSERT_EQUAL(st.n_groups, 1);
        CU_ASSERT_EQUAL(st.n_secondaries, 1);

        /* The exact probe: the megaflows whose key is keys[5]'s. */
        match_init(&match, &keys[5], &mask);
        r.n = 0;
        CU_ASSERT_EQUAL(kairo_delta_index_query_insert_match(
                            idx, 0, 100, &match, hand_cb, &r), 4);
        /* A partial query, on nw_src only. */
        CU_ASSERT_EQUAL(hand_query(idx, 0, 100, 0x0a000003, 0xffffffff,
                                   0, 0, &r), 4);
        kairo_delta_index_get_stats(idx, &st);
        CU_ASSERT_EQUAL(st.path_probe, 1);

        for (size_t i = 0; i < ARRAY_SIZE(keys); i += 2) {
            CU_ASSERT(kairo_delta_index_remove(idx, &entries[i]));
        }
        r.n = 0;
        CU_ASSERT_EQUAL(kairo_delta_index_query_insert_match(
                            idx, 0, 100, &match, hand_cb, &r), 4);
        match_init(&match, &keys[4], &mask);
        CU_ASSERT_EQUAL(kairo_delta_index_query_insert_match(
                            idx, 0, 100, &match, hand_cb, &r), 0);
        for (size_t i = 1; i < ARRAY_SIZE(keys); i += 2) {
            CU_ASSERT(kairo_delta_index_remove(idx, &entries[i]));
        }
        kairo_delta_index_get_stats(idx, &st);
        CU_ASSERT_EQUAL(st.n_steps, 0);
        CU_ASSERT_EQUAL(st.n_secondaries, 0);
        CU_ASSERT(st.memory - empty.memory <= 5 * 16 * sizeof(void *));
        kairo_delta_index_destroy(idx);
    }
}

/* Adds to 'idx' megaflow 'key' with one lookup in table 0 under 'mask',
 * hitting rule_a. */
static void
key_words_add(struct kairo_delta_index *idx,
              struct kairo_delta_index_entry **entry, const struct flow *key,
              const struct flow_wildcards *mask)
{
    struct kairo_delta_index_words_buf buf;
    struct kairo_delta_index_lookup l = {
        .table_id = 0,
        .region = kairo_delta_index_words_from_flow(key, mask, &buf),
        .rule = &rule_a, .priority = 10,
    };

    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, entry, key, NULL, &l, 1), 0);
}

/* Checks that 'idx', whose megaflows are all removed, keeps no key or key
 * word, nor more key bytes than it had when empty ('empty'), and destroys
 * it. */
static void
key_words_destroy_empty(struct kairo_delta_index *idx,
                        const struct kairo_delta_index_stats *empty)
{
    struct kairo_delta_index_stats st;

    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_keys, 0);
    CU_ASSERT_EQUAL(st.n_key_words, 0);
    CU_ASSERT_EQUAL(st.memory_by[KAIRO_DELTA_INDEX_MEM_KEYS],
                    empty->memory_by[KAIRO_DELTA_INDEX_MEM_KEYS]);
    kairo_delta_index_destroy(idx);
}

/* The words of the steps' keys are kept once each, in a table that grows,
 * frees words from the middle of its probe runs and finds the others
 * still, and goes away when the last key does: queries stay exact
 * throughout. */
static void
test_key_words(void)
{
    enum { N = 2000 };
    struct kairo_delta_index *idx = kairo_delta_index_create();
    struct kairo_delta_index_entry **entries = xcalloc(2 * N,
                                                       sizeof *entries);
    struct flow *keys = xmalloc(2 * N * sizeof *keys);
    struct kairo_delta_index_stats empty, st;
    struct flow_wildcards mask;
    struct hand_result r;

    kairo_delta_index_get_stats(idx, &empty);
    flow_wildcards_init_catchall(&mask);
    mask.masks.nw_src = OVS_BE32_MAX;
    mask.masks.regs[0] = UINT32_MAX;
    mask.masks.regs[1] = UINT32_MAX;

    /* Megaflow i < N: a key word of its own (reg0 and reg1) and one it
     * shares with three others (nw_src).  Megaflow N + i: megaflow i's
     * first word and one of its own. */
    for (size_t i = 0; i < 2 * N; i++) {
        memset(&keys[i], 0, sizeof keys[i]);
        keys[i].regs[0] = i % N + 1;
        keys[i].regs[1] = 7;
        keys[i].nw_src = htonl(i < N ? 0x0a000000 + i / 4 : 0x0b000000 + i);
    }

    for (size_t i = 0; i < N; i++) {
        key_words_add(idx, &entries[i], &keys[i], &mask);
    }
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_keys, N);
    CU_ASSERT_EQUAL(st.n_key_words, N + N / 4);

    /* Freeing the even megaflows' own words leaves holes in the table's
     * probe runs, which must not hide the odd ones' words. */
    for (size_t i = 0; i < N; i += 2) {
        CU_ASSERT(kairo_delta_index_remove(idx, &entries[i]));
    }
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_key_words, N / 2 + N / 4);
    for (size_t i = N + 1; i < 2 * N; i += 2) {
        key_words_add(idx, &entries[i], &keys[i], &mask);
    }
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_keys, N);
    CU_ASSERT_EQUAL(st.n_key_words, N / 2 + N / 4 + N / 2);
    for (size_t i = 0; i < N; i++) {
        CU_ASSERT_EQUAL(hand_query(idx, 0, 100, 0, 0, i + 1, UINT32_MAX, &r),
                        i % 2 ? 2 : 0);
        CU_ASSERT_EQUAL(hand_query(idx, 0, 100, 0x0a000000 + i / 4,
                                   0xffffffff, i + 1, UINT32_MAX, &r),
                        i % 2);
    }

    for (size_t i = 0; i < 2 * N; i++) {
        if (entries[i]) {
            CU_ASSERT(kairo_delta_index_remove(idx, &entries[i]));
        }
    }
    key_words_destroy_empty(idx, &empty);
    free(keys);
    free(entries);
}

/* Keys keep their words' ids in 16 bits until the word table hands out an
 * id above UINT16_MAX, then in 32 bits, key by key: narrow and wide keys
 * of one group answer alike, and ids freed below the limit are reused by
 * narrow keys again. */
static void
test_wide_key_ids(void)
{
    enum { N = 70000, GONE = 40000, MORE = 10000 };
    struct kairo_delta_index *idx = kairo_delta_index_create();
    struct kairo_delta_index_entry **entries = xcalloc(N + MORE,
                                                       sizeof *entries);
    struct kairo_delta_index_stats empty, st;
    struct flow_wildcards mask;
    struct hand_result r;
    struct flow key;

    kairo_delta_index_get_stats(idx, &empty);
    flow_wildcards_init_catchall(&mask);
    mask.masks.regs[0] = UINT32_MAX;
    mask.masks.regs[2] = UINT32_MAX;
    memset(&key, 0, sizeof key);
    key.regs[2] = UINT32_MAX;

    /* Megaflow i: a word of its own (reg0 = i + 1) and one they all share
     * (reg2), so that the ids of the last few thousand pass UINT16_MAX. */
    for (uint32_t i = 0; i < N; i++) {
        key.regs[0] = i + 1;
        key_words_add(idx, &entries[i], &key, &mask);
    }
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_keys, N);
    CU_ASSERT_EQUAL(st.n_key_words, N + 1);
    for (uint32_t i = 0; i < N; i += 1009) {
        CU_ASSERT_EQUAL(hand_query(idx, 0, 100, 0, 0, i + 1, UINT32_MAX, &r),
                        1);
        CU_ASSERT_PTR_EQUAL(r.owners[0], &key);
    }
    CU_ASSERT_EQUAL(hand_query(idx, 0, 100, 0, 0, N, UINT32_MAX, &r), 1);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 100, 0, 0, N + 1, UINT32_MAX, &r), 0);

    /* Freed ids, all below the limit, go to new narrow keys. */
    for (uint32_t i = 0; i < GONE; i++) {
        CU_ASSERT(kairo_delta_index_remove(idx, &entries[i]));
    }
    for (uint32_t i = N; i < N + MORE; i++) {
        key.regs[0] = i + 1;
        key_words_add(idx, &entries[i], &key, &mask);
    }
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_keys, N - GONE + MORE);
    CU_ASSERT_EQUAL(st.n_key_words, N - GONE + MORE + 1);
    for (uint32_t i = 0; i < N + MORE; i += 997) {
        CU_ASSERT_EQUAL(hand_query(idx, 0, 100, 0, 0, i + 1, UINT32_MAX, &r),
                        i >= GONE);
    }
    CU_ASSERT_EQUAL(hand_query(idx, 0, 100, 0, 0, N + MORE, UINT32_MAX, &r),
                    1);

    for (uint32_t i = GONE; i < N + MORE; i++) {
        CU_ASSERT(kairo_delta_index_remove(idx, &entries[i]));
    }
    key_words_destroy_empty(idx, &empty);
    free(entries);
}

/* A subtree walk passes by the nodes of a chain, which have one child and
 * no megaflow of their own, as paths part, join and end. */
static void
test_chains(void)
{
    struct kairo_delta_index *idx = kairo_delta_index_create();
    struct hand_mf a = { .n = 0 }, b = { .n = 0 }, c = { .n = 0 };
    struct kairo_delta_index_stats st;
    struct hand_result r;
    uint64_t walked;

    /* 'a': tables 0 to 3; 'b' shares its first two lookups, then parts;
     * 'c' ends at the second. */
    for (uint8_t t = 0; t < 4; t++) {
        hand_add(&a, t, 0x0a000001, 0xffffffff, t, NULL, 0);
        hand_add(&b, t, 0x0a000001, 0xffffffff, t < 2 ? t : 10 + t, NULL,
                 0);
        if (t < 2) {
            hand_add(&c, t, 0x0a000001, 0xffffffff, t, NULL, 0);
        }
    }
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &a.entry, &a, NULL,
                                          a.l, a.n), 0);
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &b.entry, &b, NULL,
                                          b.l, b.n), 0);
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_steps, 6);
    CU_ASSERT_EQUAL(st.n_nodes, 3);     /* 'b' split 'a''s node. */

    /* The chain from table 0 to where they part, then one chain each. */
    CU_ASSERT_EQUAL(chain_query(idx, 0, &r, &walked), 2);
    CU_ASSERT_EQUAL(walked, 3);

    /* Without 'b', one chain from table 0 to 'a''s last lookup, of two
     * nodes. */
    CU_ASSERT(kairo_delta_index_remove(idx, &b.entry));
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_nodes, 2);
    CU_ASSERT_EQUAL(chain_query(idx, 0, &r, &walked), 1);
    CU_ASSERT_PTR_EQUAL(r.owners[0], &a);
    CU_ASSERT_EQUAL(walked, 1);

    /* 'c' hangs from the second lookup, which so ends a chain. */
    CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &c.entry, &c, NULL,
                                          c.l, c.n), 0);
    CU_ASSERT_EQUAL(chain_query(idx, 1, &r, &walked), 2);
    CU_ASSERT_EQUAL(walked, 2);
    CU_ASSERT_EQUAL(chain_query(idx, 3, &r, &walked), 1);
    CU_ASSERT_PTR_EQUAL(r.owners[0], &a);

    /* Without 'a', 'c''s path is one chain again. */
    CU_ASSERT(kairo_delta_index_remove(idx, &a.entry));
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_steps, 2);
    CU_ASSERT_EQUAL(st.n_nodes, 1);
    CU_ASSERT_EQUAL(chain_query(idx, 0, &r, &walked), 1);
    CU_ASSERT_PTR_EQUAL(r.owners[0], &c);
    CU_ASSERT_EQUAL(walked, 1);
    kairo_delta_index_destroy(idx);
}

/* Megaflows whose lookups agree share their nodes and differ by their
 * common parts; a lookup's own bits take precedence over the common
 * part's.  A common mask of at most KDI_COMMON_MAP_WORDS words leaves its
 * zero words out (here metadata's), a wider one keeps them: both alike. */
static void
test_common_and_sharing(void)
{
    for (int wide = 0; wide < 2; wide++) {
        struct kairo_delta_index *idx = kairo_delta_index_create();
        struct hand_mf a = { .n = 0 }, b = { .n = 0 };
        struct kairo_delta_index_stats empty, st;
        struct flow ckey_a, ckey_b;
        struct flow_wildcards cmask;
        struct hand_result r;

        kairo_delta_index_get_stats(idx, &empty);

        /* Same lookups: reg0 only, 1 then 2. */
        hand_add(&a, 0, 0, 0, 1, &rule_a, 5);
        hand_add(&a, 1, 0, 0, 2, &rule_b, 5);
        hand_add(&b, 0, 0, 0, 1, &rule_a, 5);
        hand_add(&b, 1, 0, 0, 2, &rule_b, 5);

        /* Common parts: nw_src exact, and reg0 fixed to 3, which the
         * lookups' own reg0 overrides; metadata fixed to 0, or every word
         * fixed, most to 0. */
        memset(&ckey_a, 0, sizeof ckey_a);
        if (wide) {
            memset(&cmask, 0xff, sizeof cmask);
            cmask.masks.conj_id = 0;
        } else {
            memset(&cmask, 0, sizeof cmask);
            cmask.masks.nw_src = OVS_BE32_MAX;
            cmask.masks.regs[0] = UINT32_MAX;
            cmask.masks.metadata = OVS_BE64_MAX;
        }
        ckey_a.regs[0] = 3;
        ckey_b = ckey_a;
        ckey_a.nw_src = htonl(0x0a000001);
        ckey_b.nw_src = htonl(0x0a000002);
        struct kairo_delta_index_words_buf cabuf, cbbuf;
        struct kairo_delta_index_words ca
            = kairo_delta_index_words_from_flow(&ckey_a, &cmask, &cabuf);
        struct kairo_delta_index_words cb
            = kairo_delta_index_words_from_flow(&ckey_b, &cmask, &cbbuf);
        CU_ASSERT_EQUAL(ca.n > 16, wide);
        CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &a.entry, &a, &ca,
                                              a.l, a.n), 0);
        CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &b.entry, &b, &cb,
                                              b.l, b.n), 0);

        kairo_delta_index_get_stats(idx, &st);
        CU_ASSERT_EQUAL(st.n_lookups, 4);
        CU_ASSERT_EQUAL(st.n_steps, 2);
        CU_ASSERT_EQUAL(st.n_common_masks, 1);

        CU_ASSERT_EQUAL(hand_query(idx, 1, 9, 0x0a000001, 0xffffffff, 0, 0,
                                   &r), 1);
        CU_ASSERT_PTR_EQUAL(r.owners[0], &a);
        CU_ASSERT_EQUAL(hand_query(idx, 1, 9, 0x0a000002, 0xffffffff, 0, 0,
                                   &r), 1);
        CU_ASSERT_PTR_EQUAL(r.owners[0], &b);
        CU_ASSERT_EQUAL(hand_query(idx, 1, 9, 0x0a000000, 0xfffffffc, 0, 0,
                                   &r), 2);
        CU_ASSERT_EQUAL(hand_query(idx, 1, 9, 0x0a000003, 0xffffffff, 0, 0,
                                   &r), 0);
        CU_ASSERT_EQUAL(hand_query(idx, 1, 9, 0, 0, 2, UINT32_MAX, &r), 2);
        CU_ASSERT_EQUAL(hand_query(idx, 1, 9, 0, 0, 3, UINT32_MAX, &r), 0);
        CU_ASSERT_EQUAL(hand_query(idx, 1, 4, 0, 0, 2, UINT32_MAX, &r), 0);
        memset(&r, 0, sizeof r);
        CU_ASSERT_EQUAL(kairo_delta_index_query_rule(idx, &rule_a, hand_cb,
                                                     &r), 2);

        CU_ASSERT(kairo_delta_index_remove(idx, &a.entry));
        kairo_delta_index_get_stats(idx, &st);
        CU_ASSERT_EQUAL(st.n_steps, 2);
        CU_ASSERT_EQUAL(hand_query(idx, 1, 9, 0x0a000002, 0xffffffff, 0, 0,
                                   &r), 1);
        CU_ASSERT_PTR_EQUAL(r.owners[0], &b);
        CU_ASSERT(kairo_delta_index_remove(idx, &b.entry));
        kairo_delta_index_get_stats(idx, &st);
        CU_ASSERT_EQUAL(st.n_steps, 0);
        CU_ASSERT_EQUAL(st.n_common_masks, 0);
        CU_ASSERT_EQUAL(st.n_groups, 0);
        CU_ASSERT_EQUAL(st.n_rules, 0);
        CU_ASSERT(st.memory - empty.memory <= 16 * sizeof(void *));
        kairo_delta_index_destroy(idx);
    }
}

/* The differential test. */

#define DT_MAX_SLOTS 1000       /* Megaflow slots, at most. */
#define DT_TABLES 3             /* Tables used. */
#define DT_RULES_PER_TABLE 12   /* Rules per table. */
#define DT_MAX_LOOKUPS 4        /* Lookups per megaflow, at most. */
#define DT_MAX_TEMPLATES 8      /* Megaflow mask templates, at most. */
#define DT_CONJ_IDS 3           /* Conjunction ids used. */

/* One run of the differential test. */
struct dt_config {
    const char *name;           /* For messages. */
    uint64_t seed;              /* Seed of the generator. */
    size_t n_slots;             /* Megaflow slots, <= DT_MAX_SLOTS. */
    unsigned int n_templates;   /* Mask templates, <= DT_MAX_TEMPLATES. */
    unsigned int n_ops;         /* Random operations. */
    unsigned int derived_odds;  /* Insert queries built from a megaflow's
                                 * lookup, out of 4. */
    unsigned int common_odds;   /* Of the others, insert queries on a
                                 * megaflow's common part, out of 4.  Then
                                 * every megaflow has a common part, with
                                 * one of a few masks over packet fields, as
                                 * every megaflow of a switch has its
                                 * mask. */
    unsigned int any_odds;      /* Insert queries with several matches
                                 * (kairo_delta_index_query_insert_any()),
                                 * out of 4. */
    bool shared_paths;          /* Most megaflows take another's whole path
                                 * and common mask, as many connections
                                 * through one pipeline do. */
    bool joined_paths;          /* Many megaflows end with another's last
                                 * lookups after a start of their own, as
                                 * OVN's paths part at one lookup and run
                                 * on alike: nodes share runs. */
    bool rounds;                /* Queries run in rounds, now and then. */
};

/* One megaflow slot of the differential test; its address is the owner. */
struct dt_megaflow {
    bool live;                  /* In the index? */
    struct kairo_delta_index_entry *entry;  /* Its entry, if 'live'. */
    size_t n;                   /* Lookups. */
    uint8_t table[DT_MAX_LOOKUPS];                  /* Per lookup. */
    struct flow key[DT_MAX_LOOKUPS];                /* Per lookup. */
    struct flow_wildcards mask[DT_MAX_LOOKUPS];     /* Per lookup. */
    int rule[DT_MAX_LOOKUPS];   /* Rule index, or -1 for a miss. */
    int threshold[DT_MAX_LOOKUPS];  /* Per lookup that hit a rule. */
    enum kairo_delta_index_conj conj[DT_MAX_LOOKUPS];   /* Per lookup. */
    uint32_t conj_id[DT_MAX_LOOKUPS];   /* With KAIRO_DELTA_INDEX_CONJ_ONE. */
    bool has_common;            /* Has a common part: */
    struct flow ckey;           /* ...its key */
    struct flow_wildcards cmask;    /* ...and mask. */
};

/* The whole state of the differential test. */
struct dt {
    const struct dt_config *cfg;              /* This run's parameters. */
    struct test_rng rng;                      /* The generator. */
    struct kairo_delta_index *idx;            /* Index under test. */
    struct dt_megaflow mfs[DT_MAX_SLOTS];     /* The megaflows. */
    struct flow_wildcards templates[DT_MAX_TEMPLATES];  /* Megaflow masks. */
    struct flow_wildcards ctemplates[DT_MAX_TEMPLATES]; /* Common masks,
                                                         * with
                                                         * 'common_odds'. */
    char rules[DT_TABLES * DT_RULES_PER_TABLE];     /* Rule identities. */
    int priorities[DT_TABLES * DT_RULES_PER_TABLE]; /* Their priorities. */
    unsigned int calls[DT_MAX_SLOTS];         /* Callback calls per slot. */
    bool expected[DT_MAX_SLOTS];              /* Brute force's answer. */
    bool in_round;                            /* A round is open. */
    bool round_reported[DT_MAX_SLOTS];        /* Reported in the round. */
    unsigned int n_rounds;                    /* Rounds begun. */
    unsigned int mismatches;                  /* Wrong answers. */
    unsigned int n_insert_queries;            /* Insert queries checked. */
    unsigned int n_any_queries;               /* Those with several
                                               * matches. */
    unsigned int n_rule_queries;              /* Rule queries checked. */
    unsigned int n_changes;                   /* Adds, removes, replaces. */
    unsigned int n_affected;                  /* Affected, summed. */
};

/* Callback of the differential test: counts the call for 'owner'. */
static void
dt_cb(const void *owner, void *dt_)
{
    struct dt *dt = dt_;
    const struct dt_megaflow *mf = owner;
    size_t slot = mf - dt->mfs;

    dt->calls[slot]++;
}

/* Makes lookup 'i' of 'dst' that of 'src'. */
static void
dt_copy_lookup(struct dt_megaflow *dst, const struct dt_megaflow *src,
               size_t i)
{
    dst->table[i] = src->table[i];
    dst->key[i] = src->key[i];
    dst->mask[i] = src->mask[i];
    dst->rule[i] = src->rule[i];
    dst->threshold[i] = src->threshold[i];
    dst->conj[i] = src->conj[i];
    dst->conj_id[i] = src->conj_id[i];
}

/* Gives slot 'mf' a fresh random megaflow, not yet in the index. */
static void
dt_generate(struct dt *dt, struct dt_megaflow *mf)
{
    struct test_rng *rng = &dt->rng;
    struct flow key;
    struct flow_wildcards mask;

    memset(&key, 0, sizeof key);
    for (unsigned int f = 0; f < N_FIELDS; f++) {
        field_set(&key, f, random_value(rng));
    }
    key.nw_tos = rng_next(rng);          /* Never masked. */
    mask = dt->templates[rng_below(rng, dt->cfg->n_templates)];

    mf->n = 1 + rng_below(rng, DT_MAX_LOOKUPS);

    /* Often the first lookups of another megaflow, so that paths share
     * nodes. */
    const struct dt_megaflow *other = &dt->mfs[rng_below(rng,
                                                         dt->cfg->n_slots)];
    size_t n_copied = 0;
    if (other != mf && other->live && rng_below(rng, 3)) {
        n_copied = MIN(other->n, mf->n);
        n_copied = rng_below(rng, n_copied + 1);
        for (size_t i = 0; i < n_copied; i++) {
            dt_copy_lookup(mf, other, i);
        }
        if (n_copied) {
            key = other->key[n_copied - 1];
            mask = other->mask[n_copied - 1];
        }
    }

    /* With shared paths, the whole path and common mask of one of the
     * first slots' megaflows, with a common key of its own. */
    const struct dt_megaflow *leader = (dt->cfg->shared_paths
                                        ? &dt->mfs[rng_below(rng, 8)]
                                        : NULL);
    if (leader && leader != mf && leader->live
        && leader->has_common && rng_below(rng, 4)) {
        const uint64_t *cm = (const uint64_t *) &leader->cmask.masks;
        uint64_t *ck = (uint64_t *) &mf->ckey;

        other = leader;

        memcpy(mf->table, other->table, sizeof mf->table);
        memcpy(mf->key, other->key, sizeof mf->key);
        memcpy(mf->mask, other->mask, sizeof mf->mask);
        memcpy(mf->rule, other->rule, sizeof mf->rule);
        memcpy(mf->threshold, other->threshold, sizeof mf->threshold);
        memcpy(mf->conj, other->conj, sizeof mf->conj);
        memcpy(mf->conj_id, other->conj_id, sizeof mf->conj_id);
        mf->n = other->n;
        mf->has_common = true;
        mf->cmask = other->cmask;
        for (size_t w = 0; w < FLOW_U64S; w++) {
            ck[w] = (rng_below(rng, 2) ? ((const uint64_t *) &other->ckey)[w]
                     : rng_next(rng)) & cm[w];
        }
        return;
    }

    /* Half of the megaflows have a common part: random fields and masks,
     * some of them over bits the lookups fix too. */
    mf->has_common = dt->cfg->common_odds || rng_below(rng, 2);
    memset(&mf->ckey, 0, sizeof mf->ckey);
    memset(&mf->cmask, 0, sizeof mf->cmask);
    if (dt->cfg->common_odds) {
        const struct flow_wildcards *t
            = &dt->ctemplates[rng_below(rng, DT_MAX_TEMPLATES)];
        const uint64_t *tm = (const uint64_t *) &t->masks;
        uint64_t *ck = (uint64_t *) &mf->ckey;

        mf->cmask = *t;
        for (size_t w = 0; w < FLOW_U64S; w++) {
            ck[w] = rng_next(rng) & tm[w];
        }
    } else if (mf->has_common) {
        for (unsigned int f = 0; f < N_FIELDS; f++) {
            if (!rng_below(rng, 3)) {
                field_set(&mf->ckey, f, rng_below(rng, 2)
                          ? field_get(&key, f) : random_value(rng));
                field_set(&mf->cmask.masks, f, random_mask(rng, f));
            }
        }
    }

    for (size_t i = n_copied; i < mf->n; i++) {
        uint8_t table = i ? rng_below(rng, DT_TABLES) : 0;

        if (i && rng_below(rng, 2)) {
            /* A set_field before this lookup: the field is all-ones in this
             * and every later mask. */
            unsigned int f = FIRST_WRITTEN_FIELD
                             + rng_below(rng, N_FIELDS - FIRST_WRITTEN_FIELD);

            field_set(&key, f, random_value(rng));
            field_set(&mask.masks, f, field_trim(f, UINT64_MAX));
        }
        mf->table[i] = table;
        mf->key[i] = key;
        mf->mask[i] = mask;
        if (!rng_below(rng, 8)) {
            /* A field this lookup is unsure of: narrowed here only. */
            unsigned int f = rng_below(rng, N_FIELDS);

            field_set(&mf->mask[i].masks, f,
                      field_trim(f, rng_below(rng, 2) ? 0 : 0xff00));
        }
        mf->rule[i] = (rng_below(rng, 10) < 3
                       ? -1
                       : table * DT_RULES_PER_TABLE
                         + rng_below(rng, DT_RULES_PER_TABLE));
        /* Mostly the rule's own priority; sometimes lower, as when a
         * conjunction took part, then with one conj_id or any. */
        mf->threshold[i] = mf->rule[i] < 0 ? 0 : dt->priorities[mf->rule[i]];
        mf->conj[i] = KAIRO_DELTA_INDEX_CONJ_NONE;
        mf->conj_id[i] = 0;
        if (mf->rule[i] >= 0 && !rng_below(rng, 4)) {
            mf->threshold[i] -= rng_below(rng, 3);
            mf->conj[i] = 1 + rng_below(rng, 2);
            mf->conj_id[i] = (mf->conj[i] == KAIRO_DELTA_INDEX_CONJ_ONE
                              ? rng_below(rng, DT_CONJ_IDS) : 0);
        }
    }

    /* With joined paths, often another megaflow's lookups from some point
     * on, after this one's own. */
    const struct dt_megaflow *tail = (dt->cfg->joined_paths
                                      ? &dt->mfs[rng_below(rng,
                                                           dt->cfg->n_slots)]
                                      : NULL);
    if (tail && tail != mf && tail->live && tail->n > 1
        && rng_below(rng, 4)) {
        size_t from = 1 + rng_below(rng, MIN(mf->n, tail->n - 1));

        for (size_t i = from; i < tail->n; i++) {
            dt_copy_lookup(mf, tail, i);
        }
        mf->n = tail->n;
    }
}

/* Stores in 'key' and 'mask' the region of lookup 'i' of 'mf': its own key
 * and mask, and the common part's where its own mask does not fix a bit. */
static void
dt_region(const struct dt_megaflow *mf, size_t i, struct flow *key,
          struct flow_wildcards *mask)
{
    const uint64_t *ok = (const uint64_t *) &mf->key[i];
    const uint64_t *om = (const uint64_t *) &mf->mask[i].masks;
    const uint64_t *ck = (const uint64_t *) &mf->ckey;
    const uint64_t *cm = (const uint64_t *) &mf->cmask.masks;
    uint64_t *k = (uint64_t *) key;
    uint64_t *m = (uint64_t *) &mask->masks;

    for (size_t w = 0; w < FLOW_U64S; w++) {
        uint64_t common = mf->has_common ? cm[w] & ~om[w] : 0;

        m[w] = om[w] | common;
        k[w] = (ok[w] & om[w]) | (ck[w] & common);
    }
}

/* Fills 'l' with the index's view of 'mf''s lookups, valid until the next
 * call. */
static void
dt_lookups(const struct dt *dt, const struct dt_megaflow *mf,
           struct kairo_delta_index_lookup l[])
{
    static struct kairo_delta_index_words_buf bufs[DT_MAX_LOOKUPS];

    for (size_t i = 0; i < mf->n; i++) {
        int r = mf->rule[i];

        l[i] = (struct kairo_delta_index_lookup) {
            .table_id = mf->table[i],
            .region = kairo_delta_index_words_from_flow(&mf->key[i],
                                                        &mf->mask[i],
                                                        &bufs[i]),
            .rule = r < 0 ? NULL : &dt->rules[r],
            .priority = mf->threshold[i],
            .conj = mf->conj[i],
            .conj_id = mf->conj_id[i],
        };
    }
}

/* Makes lookup 'i' of 'mf' a miss. */
static void
dt_make_miss(struct dt_megaflow *mf, size_t i)
{
    mf->rule[i] = -1;
    mf->threshold[i] = 0;
    mf->conj[i] = KAIRO_DELTA_INDEX_CONJ_NONE;
    mf->conj_id[i] = 0;
}

/* Adds (or, if 'replace', replaces) slot 'mf' with a new random megaflow,
 * or if 'retranslate', replaces live 'mf' with a megaflow that keeps a
 * prefix of its path, as most re-translations do, or all of it but one
 * lookup's rule entry, as when a rule inserted takes over one lookup, or
 * that and then a path cut short or made longer after that lookup. */
static void
dt_put__(struct dt *dt, struct dt_megaflow *mf, bool replace,
         bool retranslate)
{
    struct kairo_delta_index_lookup l[DT_MAX_LOOKUPS];
    unsigned int variant = retranslate ? rng_below(&dt->rng, 3) : 0;
    int error;

    if (retranslate && variant < 2) {
        size_t i = rng_below(&dt->rng, mf->n);

        dt_make_miss(mf, i);
        if (variant == 1) {
            /* The lookups that follow: as many as there were, fewer or
             * more, each with a rule drawn anew; a new one repeats the
             * lookup before it. */
            size_t n = i + 1 + rng_below(&dt->rng, DT_MAX_LOOKUPS - i);

            for (size_t j = i + 1; j < n; j++) {
                if (j >= mf->n) {
                    mf->table[j] = mf->table[j - 1];
                    mf->key[j] = mf->key[j - 1];
                    mf->mask[j] = mf->mask[j - 1];
                }
                dt_make_miss(mf, j);
                if (rng_below(&dt->rng, 2)) {
                    mf->rule[j] = (mf->table[j] * DT_RULES_PER_TABLE
                                   + rng_below(&dt->rng,
                                               DT_RULES_PER_TABLE));
                    mf->threshold[j] = dt->priorities[mf->rule[j]];
                }
            }
            mf->n = n;
        }
    } else if (retranslate) {
        mf->n = 1 + rng_below(&dt->rng, mf->n);
    } else {
        dt_generate(dt, mf);
    }
    dt_lookups(dt, mf, l);
    static struct kairo_delta_index_words_buf cbuf;
    struct kairo_delta_index_words c
        = kairo_delta_index_words_from_flow(&mf->ckey, &mf->cmask, &cbuf);
    const struct kairo_delta_index_words *common = (mf->has_common ? &c
                                                    : NULL);
    error = (replace
             ? kairo_delta_index_replace(dt->idx, &mf->entry, mf, common, l,
                                         mf->n)
             : kairo_delta_index_add(dt->idx, &mf->entry, mf, common, l,
                                     mf->n));
    CU_ASSERT_EQUAL(error, 0);
    mf->live = !error;
    dt->round_reported[mf - dt->mfs] = false;     /* New to the round. */
    dt->n_changes++;
}

static void
dt_put(struct dt *dt, struct dt_megaflow *mf, bool replace)
{
    dt_put__(dt, mf, replace, false);
}

/* Checks the callback counts against 'dt->expected', less what the open
 * round already reported, and the returned count 'n', then clears the
 * counts. */
static void
dt_compare(struct dt *dt, size_t n, const char *what)
{
    size_t n_expected = 0;

    for (size_t s = 0; s < dt->cfg->n_slots; s++) {
        bool expected = dt->expected[s];

        if (dt->in_round) {
            expected = expected && !dt->round_reported[s];
            dt->round_reported[s] = dt->round_reported[s] || expected;
        }
        if (dt->calls[s] != (expected ? 1 : 0)) {
            if (dt->mismatches++ < 5) {
                fprintf(stderr, "%s: %s: slot %"PRIuSIZE" reported %u "
                        "times, expected %d\n", dt->cfg->name, what, s,
                        dt->calls[s], expected ? 1 : 0);
            }
        }
        n_expected += expected;
        dt->calls[s] = 0;
    }
    if (n != n_expected) {
        dt->mismatches++;
    }
    dt->n_affected += n_expected;
}

/* Fills 'match' with a random match: either random fields and masks, or a
 * live megaflow's lookup with every field it fixes (so the query covers its
 * group's mask), maybe one more, and maybe one value changed. */
static void
dt_random_match(struct dt *dt, struct match *match, uint8_t *table)
{
    struct test_rng *rng = &dt->rng;
    const struct dt_megaflow *mf = &dt->mfs[rng_below(rng,
                                                      dt->cfg->n_slots)];

    match_init_catchall(match);
    if (mf->live && rng_below(rng, 4) < dt->cfg->derived_odds) {
        size_t i = rng_below(rng, mf->n);

        *table = mf->table[i];
        match->flow = mf->key[i];
        match->wc = mf->mask[i];
        if (rng_below(rng, 2)) {
            unsigned int f = rng_below(rng, N_FIELDS);

            field_set(&match->wc.masks, f, field_trim(f, UINT64_MAX));
        }
        if (rng_below(rng, 2)) {
            field_set(&match->flow, rng_below(rng, N_FIELDS),
                      random_value(rng));
        }
    } else if (mf->live && mf->has_common
               && rng_below(rng, 4) < dt->cfg->common_odds) {
        /* Its table and a field or two of its common part, often with its
         * value, as a change to an ACL on addresses or ports is. */
        *table = mf->table[rng_below(rng, mf->n)];
        for (unsigned int f = 0; f < N_FIELDS; f++) {
            uint64_t m = field_get(&mf->cmask.masks, f);

            if (m && rng_below(rng, 2)) {
                field_set(&match->flow, f, (rng_below(rng, 4)
                                            ? field_get(&mf->ckey, f)
                                            : random_value(rng)));
                field_set(&match->wc.masks, f, m);
            }
        }
    } else {
        *table = rng_below(rng, DT_TABLES);
        for (unsigned int f = 0; f < N_FIELDS; f++) {
            if (!rng_below(rng, 3)) {
                field_set(&match->flow, f, random_value(rng));
                field_set(&match->wc.masks, f, random_mask(rng, f));
            }
        }
    }
}

/* Returns true if lookup 'i' of 'mf' passes the priority and conjunction
 * tests of an insert query at 'priority', for a rule on conj_id 'conj_id'
 * if 'conj_id' is nonnegative. */
static bool
dt_lookup_admits(const struct dt_megaflow *mf, size_t i, int priority,
                 int64_t conj_id)
{
    if (mf->rule[i] < 0) {
        return true;
    }
    return (mf->threshold[i] <= priority
            && (conj_id < 0
                || mf->conj[i] == KAIRO_DELTA_INDEX_CONJ_ANY
                || (mf->conj[i] == KAIRO_DELTA_INDEX_CONJ_ONE
                    && mf->conj_id[i] == conj_id)));
}

/* Sets 'dt->expected' to the megaflows that inserting a rule with any of
 * the 'n' matches 'ms' into 'table' at 'priority' affects, by brute force;
 * for a rule on conj_id 'conj_id' if it is nonnegative. */
static void
dt_expect(struct dt *dt, const struct match ms[], size_t n, uint8_t table,
          int priority, int64_t conj_id)
{
    for (size_t s = 0; s < dt->cfg->n_slots; s++) {
        const struct dt_megaflow *mf = &dt->mfs[s];

        dt->expected[s] = false;
        for (size_t i = 0; mf->live && i < mf->n && !dt->expected[s]; i++) {
            struct flow key;
            struct flow_wildcards mask;

            dt_region(mf, i, &key, &mask);
            for (size_t a = 0; a < n && !dt->expected[s]; a++) {
                dt->expected[s] = (mf->table[i] == table
                                   && dt_lookup_admits(mf, i, priority,
                                                       conj_id)
                                   && regions_intersect(&key, &mask,
                                                        &ms[a].flow,
                                                        &ms[a].wc));
            }
        }
    }
}

/* Runs a random insert query, sometimes for a rule on a conj_id, and checks
 * it. */
static void
dt_insert_query(struct dt *dt)
{
    struct test_rng *rng = &dt->rng;
    int priority = rng_below(rng, 7);
    int64_t conj_id = rng_below(rng, 4) ? -1 : rng_below(rng, DT_CONJ_IDS);
    struct minimatch mm;
    struct match match;
    uint8_t table;
    size_t n;

    dt_random_match(dt, &match, &table);
    dt_expect(dt, &match, 1, table, priority, conj_id);

    if (conj_id >= 0) {
        match_set_conj_id(&match, conj_id);
        minimatch_init(&mm, &match);
        n = kairo_delta_index_query_conj_insert(dt->idx, table, priority,
                                                &mm, conj_id, dt_cb, dt);
        minimatch_destroy(&mm);
    } else if (rng_below(rng, 2)) {
        /* The match's unmasked value bits are often nonzero here, and must
         * not matter. */
        n = kairo_delta_index_query_insert_match(dt->idx, table, priority,
                                                 &match, dt_cb, dt);
    } else {
        minimatch_init(&mm, &match);
        n = kairo_delta_index_query_insert(dt->idx, table, priority, &mm,
                                           dt_cb, dt);
        minimatch_destroy(&mm);
    }
    dt_compare(dt, n, "insert query");
    dt->n_insert_queries++;
}

/* Runs a random insert query with several matches and checks it: mostly a
 * match narrowed by each of several values of one field, as a conjunctive
 * clause by the clauses of another dimension; else unrelated matches. */
static void
dt_insert_any_query(struct dt *dt)
{
    struct test_rng *rng = &dt->rng;
    int priority = rng_below(rng, 7);
    size_t n_alts = (rng_below(rng, 8) ? 2 + rng_below(rng, 7)
                     : KAIRO_DELTA_INDEX_MAX_ALTS);
    struct match *ms = xmalloc(n_alts * sizeof *ms);
    unsigned int f = rng_below(rng, N_FIELDS);
    bool narrowed = rng_below(rng, 4);
    uint8_t table;

    dt_random_match(dt, &ms[0], &table);
    for (size_t a = 1; a < n_alts; a++) {
        if (narrowed) {
            ms[a] = ms[0];
        } else {
            uint8_t other_table;

            dt_random_match(dt, &ms[a], &other_table);
        }
    }
    for (size_t a = 0; narrowed && a < n_alts; a++) {
        field_set(&ms[a].flow, f, (rng_below(rng, 2)
                                   ? field_get(&ms[0].flow, f)
                                   : random_value(rng)));
        field_set(&ms[a].wc.masks, f, field_trim(f, UINT64_MAX));
    }

    dt_expect(dt, ms, n_alts, table, priority, -1);
    size_t n = kairo_delta_index_query_insert_any(dt->idx, table, priority,
                                                  ms, n_alts, dt_cb, dt);
    dt_compare(dt, n, "insert query with several matches");
    dt->n_insert_queries++;
    dt->n_any_queries++;
    free(ms);
}

/* Runs a random rule query and checks it. */
static void
dt_rule_query(struct dt *dt)
{
    int rule = rng_below(&dt->rng, ARRAY_SIZE(dt->rules));
    size_t n;

    for (size_t s = 0; s < dt->cfg->n_slots; s++) {
        const struct dt_megaflow *mf = &dt->mfs[s];

        dt->expected[s] = false;
        for (size_t i = 0; mf->live && i < mf->n; i++) {
            dt->expected[s] = dt->expected[s] || mf->rule[i] == rule;
        }
    }
    n = kairo_delta_index_query_rule(dt->idx, &dt->rules[rule], dt_cb, dt);
    dt_compare(dt, n, "rule query");
    dt->n_rule_queries++;
}

/* Runs the differential test under 'cfg': random adds, removes, replaces and
 * queries, each query checked against brute force.  Every run with the same
 * 'cfg' performs the same operations. */
static void
dt_run(const struct dt_config *cfg)
{
    struct kairo_delta_index_stats st;
    struct dt *dt = xzalloc(sizeof *dt);
    size_t n_live;

    dt->cfg = cfg;
    dt->rng.state = cfg->seed;
    dt->idx = kairo_delta_index_create();
    kairo_delta_index_set_rule_hooks(dt->idx, hold_rule, release_rule);
    n_rules_held = 0;
    kairo_delta_index_get_stats(dt->idx, &st);
    size_t empty_memory = st.memory;
    for (size_t r = 0; r < ARRAY_SIZE(dt->priorities); r++) {
        dt->priorities[r] = rng_below(&dt->rng, 6);
    }
    for (size_t t = 0; t < cfg->n_templates; t++) {
        memset(&dt->templates[t], 0, sizeof dt->templates[t]);
        for (unsigned int f = 0; f < FIRST_WRITTEN_FIELD + 1; f++) {
            if (rng_below(&dt->rng, 3)) {
                field_set(&dt->templates[t].masks, f,
                          random_mask(&dt->rng, f));
            }
        }
    }
    for (size_t t = 0; cfg->common_odds && t < DT_MAX_TEMPLATES; t++) {
        memset(&dt->ctemplates[t], 0, sizeof dt->ctemplates[t]);
        for (unsigned int f = 0; f < FIRST_WRITTEN_FIELD; f++) {
            if (rng_below(&dt->rng, 2)) {
                field_set(&dt->ctemplates[t].masks, f,
                          field_trim(f, UINT64_MAX));
            }
        }
    }
    for (size_t s = 0; s < cfg->n_slots * 3 / 4; s++) {
        dt_put(dt, &dt->mfs[s], false);
    }

    for (unsigned int op = 0; op < cfg->n_ops; op++) {
        unsigned int kind = rng_below(&dt->rng, 20);
        struct dt_megaflow *mf = &dt->mfs[rng_below(&dt->rng,
                                                    cfg->n_slots)];

        if (cfg->rounds && !rng_below(&dt->rng, 25)) {
            /* End the round, or begin another (ending the open one). */
            if (dt->in_round && rng_below(&dt->rng, 3)) {
                kairo_delta_index_end_round(dt->idx);
                dt->in_round = false;
            } else {
                kairo_delta_index_begin_round(dt->idx);
                dt->in_round = true;
                dt->n_rounds++;
                memset(dt->round_reported, 0, sizeof dt->round_reported);
            }
        }

        if (kind < 9) {
            if (rng_below(&dt->rng, 4) < cfg->any_odds) {
                dt_insert_any_query(dt);
            } else {
                dt_insert_query(dt);
            }
        } else if (kind < 11) {
            dt_rule_query(dt);
        } else if (kind < 15) {
            if (!mf->live) {
                dt_put(dt, mf, false);
            }
        } else if (kind < 18) {
            CU_ASSERT_EQUAL(kairo_delta_index_remove(dt->idx, &mf->entry),
                            mf->live);
            mf->live = false;
            dt->n_changes++;
        } else {
            dt_put__(dt, mf, true, mf->live && !rng_below(&dt->rng, 3));
        }
    }

    n_live = 0;
    for (size_t s = 0; s < cfg->n_slots; s++) {
        n_live += dt->mfs[s].live;
    }
    kairo_delta_index_get_stats(dt->idx, &st);
    CU_ASSERT_EQUAL(st.n_megaflows, n_live);
    CU_ASSERT_EQUAL(dt->mismatches, 0);
    CU_ASSERT(dt->n_insert_queries > cfg->n_ops * 2 / 5);
    CU_ASSERT(dt->n_affected > 0);

    /* Every path ran, so every path was checked, and paths were shared. */
    CU_ASSERT(st.path_probe > 0);
    CU_ASSERT(st.path_secondary > 0);
    CU_ASSERT(st.path_secondary_new > 0);
    CU_ASSERT(st.path_scan > 0);
    CU_ASSERT(st.path_all > 0);
    CU_ASSERT(st.n_steps < st.n_lookups);
    CU_ASSERT(st.part_all > 0);
    CU_ASSERT(st.part_scan > 0);
    if (cfg->shared_paths) {
        CU_ASSERT(st.part_secondary > 0);
    }
    if (cfg->any_odds) {
        CU_ASSERT(dt->n_any_queries > cfg->n_ops / 20);
    }
    CU_ASSERT_EQUAL(st.n_rounds, dt->n_rounds);
    CU_ASSERT_EQUAL(n_rules_held, st.n_rules);
    if (cfg->rounds) {
        CU_ASSERT(dt->n_rounds > cfg->n_ops / 50);
        CU_ASSERT(st.subtrees_skipped > 0);
    } else {
        CU_ASSERT_EQUAL(st.subtrees_skipped, 0);
    }
    if (getenv("KAIRO_UNIT_VERBOSE")) {
        fprintf(stderr, "\n%s: %u changes, %u insert (%u with several "
                "matches) + %u rule queries, "
                "%u affected; %"PRIu64" steps for %"PRIu64" lookups; "
                "groups: probe %"PRIu64", secondary %"PRIu64", all %"PRIu64
                ", scan %"PRIu64"; parts: secondary %"PRIu64", all %"PRIu64
                ", scan %"PRIu64"; %u rounds, %"PRIu64" nodes walked, %"
                PRIu64" subtrees skipped\n",
                cfg->name, dt->n_changes, dt->n_insert_queries,
                dt->n_any_queries, dt->n_rule_queries, dt->n_affected,
                st.n_steps, st.n_lookups,
                st.path_probe, st.path_secondary, st.path_all, st.path_scan,
                st.part_secondary, st.part_all, st.part_scan, dt->n_rounds,
                st.nodes_walked, st.subtrees_skipped);
    }

    /* Emptied, the index holds no megaflow, group or rule. */
    for (size_t s = 0; s < cfg->n_slots; s++) {
        if (dt->mfs[s].live) {
            CU_ASSERT(kairo_delta_index_remove(dt->idx, &dt->mfs[s].entry));
        }
    }
    kairo_delta_index_get_stats(dt->idx, &st);
    CU_ASSERT_EQUAL(st.n_megaflows, 0);
    CU_ASSERT_EQUAL(st.n_lookups, 0);
    CU_ASSERT_EQUAL(st.n_groups, 0);
    CU_ASSERT_EQUAL(st.n_steps, 0);
    CU_ASSERT_EQUAL(st.n_common_masks, 0);
    CU_ASSERT_EQUAL(st.n_secondaries, 0);
    CU_ASSERT_EQUAL(st.n_rules, 0);
    CU_ASSERT_EQUAL(n_rules_held, 0);

    /* What the index counts as allocated came back, but for the bucket
     * arrays of its five hash tables, which shrink no further than 16
     * buckets. */
    CU_ASSERT(st.memory >= empty_memory);
    CU_ASSERT(st.memory - empty_memory <= 5 * 16 * sizeof(void *));

    kairo_delta_index_destroy(dt->idx);
    free(dt);
}

/* Differential test with many small groups: mostly scans. */
static void
test_differential_small_groups(void)
{
    static const struct dt_config cfg = {
        .name = "small groups", .seed = UINT64_C(0x4b4149524f2d3031),
        .n_slots = 160, .n_templates = 5, .n_ops = 12000,
        .derived_odds = 1,
    };

    dt_run(&cfg);
}

/* Differential test with fewer, larger groups and many covering queries:
 * mostly probes and secondary hashes. */
static void
test_differential_large_groups(void)
{
    static const struct dt_config cfg = {
        .name = "large groups", .seed = UINT64_C(0x6b6169726f2d3032),
        .n_slots = 1000, .n_templates = 2, .n_ops = 8000,
        .derived_odds = 2,
    };

    dt_run(&cfg);
}

/* Many megaflows on one path, told apart by their common parts only: the
 * leaf part answers by a secondary hash on the bits the query fixes, and
 * stays right as megaflows leave it. */
static void
test_leaf_parts(void)
{
    struct kairo_delta_index *idx = kairo_delta_index_create();
    struct kairo_delta_index_stats st;
    struct hand_mf mfs[40] = { { .n = 0 } };
    struct flow ckeys[40];
    struct flow_wildcards cmask;
    struct hand_result r;

    memset(&cmask, 0, sizeof cmask);
    cmask.masks.nw_src = OVS_BE32_MAX;
    for (size_t i = 0; i < ARRAY_SIZE(mfs); i++) {
        struct kairo_delta_index_words_buf cbuf;
        struct kairo_delta_index_words c;

        mfs[i].n = 0;
        hand_add(&mfs[i], 0, 0, 0, 1, &rule_a, 5);
        memset(&ckeys[i], 0, sizeof ckeys[i]);
        ckeys[i].nw_src = htonl(0x0a000000 + i);
        c = kairo_delta_index_words_from_flow(&ckeys[i], &cmask, &cbuf);
        CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &mfs[i].entry, &mfs[i], &c,
                                              mfs[i].l, mfs[i].n), 0);
    }
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_steps, 1);
    CU_ASSERT_EQUAL(st.n_megaflows, ARRAY_SIZE(mfs));

    /* Exact source: a new secondary, one megaflow. */
    CU_ASSERT_EQUAL(hand_query(idx, 0, 9, 0x0a000005, 0xffffffff,
                               1, UINT32_MAX, &r), 1);
    CU_ASSERT_PTR_EQUAL(r.owners[0], &mfs[5]);
    /* A /30: another secondary, four megaflows; again, the same one. */
    CU_ASSERT_EQUAL(hand_query(idx, 0, 9, 0x0a000004, 0xfffffffc,
                               1, UINT32_MAX, &r), 4);
    CU_ASSERT_EQUAL(hand_query(idx, 0, 9, 0x0a000008, 0xfffffffc,
                               1, UINT32_MAX, &r), 4);
    /* No source bits: every megaflow of the part. */
    CU_ASSERT_EQUAL(hand_query(idx, 0, 9, 0, 0, 1, UINT32_MAX, &r), 40);
    /* Below the rule's priority, nothing. */
    CU_ASSERT_EQUAL(hand_query(idx, 0, 4, 0x0a000005, 0xffffffff,
                               1, UINT32_MAX, &r), 0);

    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.part_secondary, 3);
    CU_ASSERT_EQUAL(st.part_all, 1);
    CU_ASSERT_EQUAL(st.part_scan, 0);
    CU_ASSERT_EQUAL(st.n_secondaries, 2);

    /* Removing megaflows moves others into their places: the secondaries
     * follow. */
    for (size_t i = 0; i < ARRAY_SIZE(mfs); i += 3) {
        CU_ASSERT(kairo_delta_index_remove(idx, &mfs[i].entry));
    }
    for (uint32_t i = 0; i < ARRAY_SIZE(mfs); i++) {
        CU_ASSERT_EQUAL(hand_query(idx, 0, 9, 0x0a000000 + i, 0xffffffff,
                                   1, UINT32_MAX, &r), i % 3 != 0);
        if (i % 3) {
            CU_ASSERT_PTR_EQUAL(r.owners[0], &mfs[i]);
        }
    }
    CU_ASSERT_EQUAL(hand_query(idx, 0, 9, 0x0a000000, 0xfffffffc,
                               1, UINT32_MAX, &r), 2);

    for (size_t i = 0; i < ARRAY_SIZE(mfs); i++) {
        CU_ASSERT_EQUAL(kairo_delta_index_remove(idx, &mfs[i].entry),
                        i % 3 != 0);
    }
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_megaflows, 0);
    CU_ASSERT_EQUAL(st.n_steps, 0);
    CU_ASSERT_EQUAL(st.n_secondaries, 0);
    CU_ASSERT_EQUAL(st.n_common_masks, 0);
    kairo_delta_index_destroy(idx);
}

/* A leaf part that grows past 32,767 megaflows: its secondary hash goes from
 * 16-bit positions to 32-bit ones, and back as the part shrinks, and keeps
 * answering. */
static void
test_wide_secondaries(void)
{
    enum { N = 40000 };
    struct kairo_delta_index *idx = kairo_delta_index_create();
    struct kairo_delta_index_entry **entries = xcalloc(N, sizeof *entries);
    struct kairo_delta_index_stats st;
    struct hand_mf mf = { .n = 0 };
    struct flow_wildcards cmask;
    struct hand_result r;
    struct flow ckey;

    memset(&cmask, 0, sizeof cmask);
    cmask.masks.nw_src = OVS_BE32_MAX;
    memset(&ckey, 0, sizeof ckey);
    hand_add(&mf, 0, 0, 0, 1, &rule_a, 5);
    for (uint32_t i = 0; i < N; i++) {
        struct kairo_delta_index_words_buf cbuf;
        struct kairo_delta_index_words c;

        ckey.nw_src = htonl(0x0a000000 + i);
        c = kairo_delta_index_words_from_flow(&ckey, &cmask, &cbuf);
        CU_ASSERT_EQUAL(kairo_delta_index_add(idx, &entries[i], &entries[i],
                                              &c, mf.l, mf.n), 0);
        if (i == 100) {
            /* The secondary, built now, grows with the part. */
            CU_ASSERT_EQUAL(hand_query(idx, 0, 9, 0x0a000007, 0xffffffff,
                                       1, UINT32_MAX, &r), 1);
        }
    }
    for (uint32_t i = 0; i < N; i += 997) {
        CU_ASSERT_EQUAL(hand_query(idx, 0, 9, 0x0a000000 + i, 0xffffffff,
                                   1, UINT32_MAX, &r), 1);
        CU_ASSERT_PTR_EQUAL(r.owners[0], &entries[i]);
    }
    CU_ASSERT_EQUAL(hand_query(idx, 0, 9, 0x0a009c3c, 0xfffffffc,
                               1, UINT32_MAX, &r), 4);

    /* Down to a third: narrow again. */
    for (uint32_t i = 0; i < N; i++) {
        if (i % 3 != 1) {
            CU_ASSERT(kairo_delta_index_remove(idx, &entries[i]));
        }
    }
    for (uint32_t i = 0; i < N; i += 991) {
        CU_ASSERT_EQUAL(hand_query(idx, 0, 9, 0x0a000000 + i, 0xffffffff,
                                   1, UINT32_MAX, &r), i % 3 == 1);
        if (i % 3 == 1) {
            CU_ASSERT_PTR_EQUAL(r.owners[0], &entries[i]);
        }
    }
    CU_ASSERT_EQUAL(hand_query(idx, 0, 9, 0x0a009c3c, 0xfffffffc,
                               1, UINT32_MAX, &r), 1);
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.part_scan, 0);

    for (uint32_t i = 0; i < N; i++) {
        kairo_delta_index_remove(idx, &entries[i]);
    }
    kairo_delta_index_get_stats(idx, &st);
    CU_ASSERT_EQUAL(st.n_megaflows, 0);
    CU_ASSERT_EQUAL(st.n_secondaries, 0);
    kairo_delta_index_destroy(idx);
    free(entries);
}

/* Differential test where most megaflows share whole paths: large leaf
 * parts, answered by their secondary hashes. */
static void
test_differential_shared_paths(void)
{
    static const struct dt_config cfg = {
        .name = "shared paths", .seed = UINT64_C(0x6b6169726f2d3033),
        .n_slots = 1000, .n_templates = 2, .n_ops = 8000,
        .derived_odds = 3, .common_odds = 3, .any_odds = 1,
        .shared_paths = true,
    };

    dt_run(&cfg);
}

/* Differential test where paths part and join again: nodes of different
 * parents share runs, and are split and rewritten while they do. */
static void
test_differential_joined_paths(void)
{
    static const struct dt_config cfg = {
        .name = "joined paths", .seed = UINT64_C(0x6b6169726f2d3036),
        .n_slots = 400, .n_templates = 2, .n_ops = 12000,
        .derived_odds = 2, .any_odds = 1, .joined_paths = true,
    };
    static const struct dt_config rounds = {
        .name = "joined paths, rounds", .seed = UINT64_C(0x6b6169726f2d3037),
        .n_slots = 400, .n_templates = 2, .n_ops = 12000,
        .derived_odds = 2, .any_odds = 1, .joined_paths = true,
        .rounds = true,
    };

    dt_run(&cfg);
    dt_run(&rounds);
}

/* Differential test in rounds: queries between the beginning and the end of
 * a round report each megaflow once between them, while megaflows come and
 * go, and rule queries leave subtrees that later queries skip. */
static void
test_differential_rounds(void)
{
    static const struct dt_config small = {
        .name = "rounds, small groups", .seed = UINT64_C(0x6b6169726f2d3034),
        .n_slots = 160, .n_templates = 5, .n_ops = 12000,
        .derived_odds = 1, .rounds = true,
    };
    static const struct dt_config shared = {
        .name = "rounds, shared paths", .seed = UINT64_C(0x6b6169726f2d3035),
        .n_slots = 1000, .n_templates = 2, .n_ops = 8000,
        .derived_odds = 3, .common_odds = 3, .any_odds = 1,
        .shared_paths = true, .rounds = true,
    };

    dt_run(&small);
    dt_run(&shared);
}

/* Declared here as well, so that this file compiles before kairo-unit.h
 * lists the suite in KAIRO_UNIT_SUITES. */
CU_ErrorCode kairo_unit_register_delta_index(void);

/* Adds the delta_index suite to the CUnit registry. */
CU_ErrorCode
kairo_unit_register_delta_index(void)
{
    CU_pSuite suite = CU_add_suite("kairo-delta-index", NULL, NULL);

    if (!suite
        || !CU_add_test(suite, "add, remove, stats", test_basic)
        || !CU_add_test(suite, "insert query definition",
                        test_insert_definition)
        || !CU_add_test(suite, "dedup and rewritten fields",
                        test_dedup_and_rewrite)
        || !CU_add_test(suite, "thresholds and conjunctions",
                        test_conjunctions)
        || !CU_add_test(suite, "errors and replace",
                        test_errors_and_replace)
        || !CU_add_test(suite, "query paths", test_paths)
        || !CU_add_test(suite, "wide and packed keys", test_wide_keys)
        || !CU_add_test(suite, "key words", test_key_words)
        || !CU_add_test(suite, "common parts and shared paths",
                        test_common_and_sharing)
        || !CU_add_test(suite, "leaf parts", test_leaf_parts)
        || !CU_add_test(suite, "wide secondaries", test_wide_secondaries)
        || !CU_add_test(suite, "wide key ids", test_wide_key_ids)
        || !CU_add_test(suite, "chains", test_chains)
        || !CU_add_test(suite, "differential, small groups",
                        test_differential_small_groups)
        || !CU_add_test(suite, "differential, large groups",
                        test_differential_large_groups)
        || !CU_add_test(suite, "differential, shared paths",
                        test_differential_shared_paths)
        || !CU_add_test(suite, "differential, joined paths",
                        test_differential_joined_paths)
        || !CU_add_test(suite, "differential, rounds",
                        test_differential_rounds)) {
        return CU_get_error();
    }
    return CUE_SUCCESS;
}
