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

/* Unit tests of lib/kairo-mc-health.c. */

#include <config.h>

#include "kairo-mc-health.h"
#include "kairo-unit.h"

/* A tracker with a 100 ms timeout, 2 failures to eject, 1 s out. */
static void
health_init(struct kairo_mc_health *h, size_t n)
{
    struct kairo_mc_health_config cfg = {
        .timeout_ms = 100,
        .failure_limit = 2,
        .retry_ms = 1000,
    };

    kairo_mc_health_init(h, &cfg, n);
}

/* A backend that answers is never failed, whatever it is sent, and a
 * tracker without a timeout is off. */
static void
test_answering(void)
{
    struct kairo_mc_health h;
    uint64_t awaited = 0, replies = 0;

    health_init(&h, 1);
    CU_ASSERT(kairo_mc_health_enabled(&h));
    CU_ASSERT_EQUAL(kairo_mc_health_period(&h), 25);
    for (long long now = 0; now < 10000; now += 25) {
        awaited += 10;
        replies += 9;           /* Some datagrams are lost. */
        CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, awaited, replies, now),
                        KAIRO_MC_HEALTH_NONE);
    }
    CU_ASSERT(!kairo_mc_health_is_ejected(&h, 0));
    CU_ASSERT_EQUAL(h.backends[0].n_failures, 0);
    kairo_mc_health_destroy(&h);

    struct kairo_mc_health_config off = { .timeout_ms = 0 };
    kairo_mc_health_init(&h, &off, 3);
    CU_ASSERT(!kairo_mc_health_enabled(&h));
    kairo_mc_health_destroy(&h);
}

/* Requests left unanswered for the timeout are a failure, never sooner;
 * two in a row eject; the backend is retried after the retry time and
 * ejected again if it still does not answer. */
static void
test_eject_and_retry(void)
{
    struct kairo_mc_health h;

    health_init(&h, 2);

    /* Backend 1 answers throughout; backend 0 stops answering at 0. */
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 5, 5, 0),
                    KAIRO_MC_HEALTH_NONE);
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 6, 5, 25),
                    KAIRO_MC_HEALTH_NONE);      /* Pending from 25. */
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 7, 5, 124),
                    KAIRO_MC_HEALTH_NONE);      /* 99 ms: not yet. */
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 8, 5, 125),
                    KAIRO_MC_HEALTH_FAILURE);
    CU_ASSERT_EQUAL(h.backends[0].failures, 1);
    CU_ASSERT(!kairo_mc_health_is_ejected(&h, 0));

    /* No new request: no new failure, however long. */
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 8, 5, 1000),
                    KAIRO_MC_HEALTH_NONE);
    /* A new request, pending from 1025, fails at 1125: ejected. */
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 9, 5, 1025),
                    KAIRO_MC_HEALTH_NONE);
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 9, 5, 1100),
                    KAIRO_MC_HEALTH_NONE);
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 9, 5, 1125),
                    KAIRO_MC_HEALTH_EJECT);
    CU_ASSERT(kairo_mc_health_is_ejected(&h, 0));
    CU_ASSERT(!kairo_mc_health_is_ejected(&h, 1));
    CU_ASSERT_EQUAL(h.backends[0].n_failures, 2);
    CU_ASSERT_EQUAL(h.backends[0].n_ejections, 1);

    /* Out until 2125, then retried with a clean slate. */
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 9, 5, 2124),
                    KAIRO_MC_HEALTH_NONE);
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 9, 5, 2125),
                    KAIRO_MC_HEALTH_RETRY);
    CU_ASSERT(!kairo_mc_health_is_ejected(&h, 0));

    /* Still silent: two more failures eject it again. */
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 10, 5, 2150),
                    KAIRO_MC_HEALTH_NONE);
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 10, 5, 2250),
                    KAIRO_MC_HEALTH_FAILURE);
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 11, 5, 2275),
                    KAIRO_MC_HEALTH_NONE);
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 11, 5, 2375),
                    KAIRO_MC_HEALTH_EJECT);
    CU_ASSERT_EQUAL(h.backends[0].n_ejections, 2);

    /* Retried again, and this time it answers. */
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 11, 5, 3375),
                    KAIRO_MC_HEALTH_RETRY);
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 12, 6, 3400),
                    KAIRO_MC_HEALTH_NONE);
    CU_ASSERT(!kairo_mc_health_is_ejected(&h, 0));
    kairo_mc_health_destroy(&h);
}

/* A reply clears failures below the limit. */
static void
test_recover(void)
{
    struct kairo_mc_health h;

    health_init(&h, 1);
    kairo_mc_health_sample(&h, 0, 1, 0, 0);
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 1, 0, 100),
                    KAIRO_MC_HEALTH_FAILURE);
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 2, 1, 150),
                    KAIRO_MC_HEALTH_RECOVER);
    CU_ASSERT_EQUAL(h.backends[0].failures, 0);

    /* The next silence starts from zero again. */
    kairo_mc_health_sample(&h, 0, 3, 1, 175);
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 3, 1, 275),
                    KAIRO_MC_HEALTH_FAILURE);
    CU_ASSERT(!kairo_mc_health_is_ejected(&h, 0));
    kairo_mc_health_destroy(&h);
}

/* A failure limit of 1 ejects at the first failure; carrying keeps an
 * ejection across a reconfiguration. */
static void
test_limit_one_and_carry(void)
{
    struct kairo_mc_health_config cfg = {
        .timeout_ms = 10,
        .failure_limit = 1,
        .retry_ms = 50,
    };
    struct kairo_mc_health h, h2;

    kairo_mc_health_init(&h, &cfg, 1);
    CU_ASSERT_EQUAL(kairo_mc_health_period(&h), 5);
    kairo_mc_health_sample(&h, 0, 1, 0, 0);
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h, 0, 1, 0, 10),
                    KAIRO_MC_HEALTH_EJECT);

    kairo_mc_health_init(&h2, &cfg, 3);
    kairo_mc_health_carry(&h2, 2, &h, 0);
    kairo_mc_health_destroy(&h);
    CU_ASSERT(kairo_mc_health_is_ejected(&h2, 2));
    CU_ASSERT(!kairo_mc_health_is_ejected(&h2, 0));
    CU_ASSERT(!kairo_mc_health_is_ejected(&h2, 7));
    CU_ASSERT_EQUAL(kairo_mc_health_sample(&h2, 2, 1, 0, 60),
                    KAIRO_MC_HEALTH_RETRY);
    kairo_mc_health_destroy(&h2);
}

CU_ErrorCode
kairo_unit_register_mc_health(void)
{
    CU_pSuite suite = CU_add_suite("kairo-mc-health", NULL, NULL);

    if (!suite
        || !CU_add_test(suite, "answering", test_answering)
        || !CU_add_test(suite, "eject and retry", test_eject_and_retry)
        || !CU_add_test(suite, "recover", test_recover)
        || !CU_add_test(suite, "limit one, carry",
                        test_limit_one_and_carry)) {
        return CU_get_error();
    }
    return CUE_SUCCESS;
}
