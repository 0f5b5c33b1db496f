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

/* Unit tests of lib/kairo-delta-deps: hand-written cases, then a random
 * sequence of sets and removes checked against a brute-force model. */

#include <config.h>
#include "kairo-delta-deps.h"

#include <stdlib.h>
#include <string.h>

#include "kairo-unit.h"
#include "util.h"

static const char space_a, space_b;

/* An owner of dependencies. */
struct deps_owner {
    struct kairo_delta_deps_handle handle;
};

static struct kairo_delta_deps *
deps_create(void)
{
    return kairo_delta_deps_create(offsetof(struct deps_owner, handle));
}

/* Counts the owners a query reports and checks their payloads. */
struct deps_result {
    const void *owners[8];
    uint64_t data0[8];
    size_t n;
};

static void
deps_cb(const void *owner, const struct kairo_delta_dep *dep, void *r_)
{
    struct deps_result *r = r_;

    if (r->n < ARRAY_SIZE(r->owners)) {
        r->owners[r->n] = owner;
        r->data0[r->n] = dep->data[0];
    }
    r->n++;
}

static size_t
deps_query(const struct kairo_delta_deps *deps, const void *space,
           uint64_t key, struct deps_result *r)
{
    memset(r, 0, sizeof *r);
    return kairo_delta_deps_query(deps, space, key, deps_cb, r);
}

/* Set, replace, query by key and by space, remove. */
static void
test_basic(void)
{
    struct kairo_delta_deps *deps = deps_create();
    struct deps_owner x = { .handle.set = NULL }, y = x, z = x;
    struct deps_result r;

    struct kairo_delta_dep dx[] = {
        { .space = &space_a, .key = 1, .data = { 10, 0 } },
        { .space = &space_a, .key = 2, .data = { 20, 0 } },
        { .space = &space_b, .key = 1, .data = { 30, 0 } },
    };
    struct kairo_delta_dep dy[] = {
        { .space = &space_a, .key = 1, .data = { 11, 0 } },
    };
    kairo_delta_deps_set(deps, &x, dx, ARRAY_SIZE(dx));
    kairo_delta_deps_set(deps, &y, dy, ARRAY_SIZE(dy));
    CU_ASSERT_EQUAL(kairo_delta_deps_n_owners(deps), 2);
    CU_ASSERT_EQUAL(kairo_delta_deps_n_deps(deps), 4);

    /* z has x's dependencies, in another order: they share x's record. */
    struct kairo_delta_dep dz[] = { dx[2], dx[0], dx[1] };
    size_t memory = kairo_delta_deps_memory(deps);
    kairo_delta_deps_set(deps, &z, dz, ARRAY_SIZE(dz));
    CU_ASSERT_PTR_EQUAL(z.handle.set, x.handle.set);
    CU_ASSERT(kairo_delta_deps_memory(deps) - memory <= 2 * sizeof(void *));
    CU_ASSERT_EQUAL(deps_query(deps, &space_b, 1, &r), 2);
    CU_ASSERT_EQUAL(r.data0[0] + r.data0[1], 60);
    CU_ASSERT(kairo_delta_deps_remove(deps, &z));
    CU_ASSERT_EQUAL(deps_query(deps, &space_b, 1, &r), 1);

    /* The same keys with another payload are a record of their own. */
    dz[0].data[1] = 1;
    kairo_delta_deps_set(deps, &z, dz, ARRAY_SIZE(dz));
    CU_ASSERT_PTR_NOT_EQUAL(z.handle.set, x.handle.set);
    CU_ASSERT(kairo_delta_deps_remove(deps, &z));

    CU_ASSERT_EQUAL(deps_query(deps, &space_a, 1, &r), 2);
    CU_ASSERT_EQUAL(r.data0[0] + r.data0[1], 21);
    CU_ASSERT_EQUAL(deps_query(deps, &space_b, 1, &r), 1);
    CU_ASSERT_PTR_EQUAL(r.owners[0], &x);
    CU_ASSERT_EQUAL(r.data0[0], 30);
    CU_ASSERT_EQUAL(deps_query(deps, &space_b, 2, &r), 0);
    memset(&r, 0, sizeof r);
    CU_ASSERT_EQUAL(kairo_delta_deps_query_space(deps, &space_a, deps_cb,
                                                 &r), 3);

    /* Replacing x's set drops its old keys. */
    kairo_delta_deps_set(deps, &x, &dx[2], 1);
    CU_ASSERT_EQUAL(deps_query(deps, &space_a, 2, &r), 0);
    CU_ASSERT_EQUAL(deps_query(deps, &space_a, 1, &r), 1);
    CU_ASSERT_PTR_EQUAL(r.owners[0], &y);
    CU_ASSERT_EQUAL(kairo_delta_deps_n_deps(deps), 2);

    CU_ASSERT(kairo_delta_deps_remove(deps, &x));
    CU_ASSERT(!x.handle.set);
    CU_ASSERT(!kairo_delta_deps_remove(deps, &x));
    kairo_delta_deps_set(deps, &y, NULL, 0);
    CU_ASSERT(!y.handle.set);
    CU_ASSERT_EQUAL(kairo_delta_deps_n_owners(deps), 0);
    CU_ASSERT_EQUAL(kairo_delta_deps_n_deps(deps), 0);
    CU_ASSERT_EQUAL(deps_query(deps, &space_a, 1, &r), 0);
    kairo_delta_deps_destroy(deps);
}

#define RD_OWNERS 64
#define RD_KEYS 12
#define RD_MAX_DEPS 6

/* Random sets and removes against a model: owner i depends on key k with
 * payload model[i][k] - 1 (model[i][k] == 0: not at all).  Half of the sets
 * have all-zero payloads, which the set does not store; the others' are 1
 * to 3, so that owners often share a record, with or without payloads. */
static void
test_random(void)
{
    struct kairo_delta_deps *deps = deps_create();
    size_t empty_memory = kairo_delta_deps_memory(deps);
    static struct deps_owner owners[RD_OWNERS];
    uint64_t model[RD_OWNERS][RD_KEYS];
    uint32_t state = 12345;
    unsigned int bad = 0;

    memset(model, 0, sizeof model);
    for (int op = 0; op < 20000; op++) {
        state = state * 1103515245 + 12345;
        size_t i = (state >> 8) % RD_OWNERS;

        if ((state >> 20) % 4 == 0) {
            kairo_delta_deps_remove(deps, &owners[i]);
            memset(model[i], 0, sizeof model[i]);
        } else {
            struct kairo_delta_dep d[RD_MAX_DEPS];
            size_t n = (state >> 24) % (RD_MAX_DEPS + 1);
            bool zero = (state >> 28) % 2;
            bool used[RD_KEYS] = { false };

            memset(model[i], 0, sizeof model[i]);
            for (size_t j = 0; j < n; j++) {
                size_t k;

                state = state * 1103515245 + 12345;
                k = (state >> 10) % RD_KEYS;
                if (used[k]) {
                    n = j;
                    break;
                }
                used[k] = true;
                d[j] = (struct kairo_delta_dep) {
                    .space = k % 2 ? &space_a : &space_b, .key = k,
                    .data = { zero ? 0 : 1 + op % 3, zero ? 0 : k },
                };
                model[i][k] = d[j].data[0] + 1;
            }
            kairo_delta_deps_set(deps, &owners[i], d, n);
        }

        /* Check one key against the model. */
        state = state * 1103515245 + 12345;
        size_t k = (state >> 12) % RD_KEYS;
        size_t expected = 0;
        struct deps_result r;
        size_t n = deps_query(deps, k % 2 ? &space_a : &space_b, k, &r);

        for (size_t o = 0; o < RD_OWNERS; o++) {
            expected += model[o][k] != 0;
        }
        for (size_t j = 0; j < MIN(n, ARRAY_SIZE(r.owners)); j++) {
            size_t o = (const struct deps_owner *) r.owners[j] - owners;

            bad += model[o][k] != r.data0[j] + 1;
        }
        bad += n != expected;
    }
    CU_ASSERT_EQUAL(bad, 0);
    for (size_t i = 0; i < RD_OWNERS; i++) {
        kairo_delta_deps_remove(deps, &owners[i]);
    }
    CU_ASSERT_EQUAL(kairo_delta_deps_n_deps(deps), 0);
    CU_ASSERT_EQUAL(kairo_delta_deps_n_owners(deps), 0);
    CU_ASSERT_EQUAL(kairo_delta_deps_memory(deps), empty_memory);
    kairo_delta_deps_destroy(deps);
}

CU_ErrorCode kairo_unit_register_delta_deps(void);

/* Adds the delta_deps suite to the CUnit registry. */
CU_ErrorCode
kairo_unit_register_delta_deps(void)
{
    CU_pSuite suite = CU_add_suite("kairo-delta-deps", NULL, NULL);

    if (!suite
        || !CU_add_test(suite, "set, query, remove", test_basic)
        || !CU_add_test(suite, "random against a model", test_random)) {
        return CU_get_error();
    }
    return CUE_SUCCESS;
}
