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

/* Unit tests of lib/kairo-mc-sketch.c and lib/kairo-mc-cache.c. */

#include <config.h>

#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "kairo-mc-cache.h"
#include "kairo-mc-proto.h"
#include "kairo-mc-sketch.h"
#include "kairo-unit.h"
#include "util.h"

/* The sketch never underestimates, keeps cold keys low next to hot ones,
 * and forgets with decay. */
static void
test_sketch(void)
{
    struct kairo_mc_sketch sketch;
    unsigned int over = 0;

    kairo_mc_sketch_init(&sketch, 1024, 1000000);
    CU_ASSERT_EQUAL(kairo_mc_sketch_size(&sketch), 4 * 1024);
    for (int i = 0; i < 100; i++) {
        kairo_mc_sketch_add(&sketch, kairo_mc_cache_hash("hot", 3));
    }
    CU_ASSERT_EQUAL(kairo_mc_sketch_estimate(
                        &sketch, kairo_mc_cache_hash("hot", 3)), 100);

    /* 2000 cold keys, each once: a few may collide everywhere. */
    for (int i = 0; i < 2000; i++) {
        char key[16];

        snprintf(key, sizeof key, "cold%d", i);
        CU_ASSERT(kairo_mc_sketch_add(&sketch, kairo_mc_cache_hash(
                                          key, strlen(key))) >= 1);
    }
    for (int i = 0; i < 2000; i++) {
        char key[16];

        snprintf(key, sizeof key, "cold%d", i);
        over += kairo_mc_sketch_estimate(
            &sketch, kairo_mc_cache_hash(key, strlen(key))) >= 3;
    }
    CU_ASSERT(over < 20);

    /* Saturation at 255. */
    for (int i = 0; i < 300; i++) {
        kairo_mc_sketch_add(&sketch, kairo_mc_cache_hash("hot", 3));
    }
    CU_ASSERT_EQUAL(kairo_mc_sketch_estimate(
                        &sketch, kairo_mc_cache_hash("hot", 3)), 255);
    kairo_mc_sketch_decay(&sketch);
    CU_ASSERT_EQUAL(kairo_mc_sketch_estimate(
                        &sketch, kairo_mc_cache_hash("hot", 3)), 127);
    kairo_mc_sketch_destroy(&sketch);

    /* Decay by period. */
    kairo_mc_sketch_init(&sketch, 64, 4);
    for (int i = 0; i < 4; i++) {
        kairo_mc_sketch_add(&sketch, 42);
    }
    CU_ASSERT_EQUAL(sketch.n_decays, 1);
    CU_ASSERT_EQUAL(kairo_mc_sketch_estimate(&sketch, 42), 2);
    kairo_mc_sketch_destroy(&sketch);
}

/* A cache with small, test-friendly settings. */
static struct kairo_mc_cache *
make_cache(size_t max_bytes, unsigned int threshold, long long settle)
{
    struct kairo_mc_cache_config cfg = {
        .max_bytes = max_bytes,
        .max_value = 1000,
        .threshold = threshold,
        .decay_period = 1000000,
        .max_ttl_ms = 10000,
        .settle_ms = settle,
    };
    return kairo_mc_cache_create(&cfg);
}

/* Counts 'n' misses of 'key' in 'cache'; returns whether it ends hot. */
static bool
miss(struct kairo_mc_cache *cache, const char *key, int n)
{
    bool hot = false;

    for (int i = 0; i < n; i++) {
        hot = kairo_mc_cache_count_miss(cache, kairo_mc_cache_hash(
                                            key, strlen(key)));
    }
    return hot;
}

/* Fills 'key' with 'value' from a get forwarded at 'sent', at 'now'. */
static enum kairo_mc_cache_fill
fill(struct kairo_mc_cache *cache, const struct kairo_mc_cache_ticket *t,
     const char *key, const char *value, long long now)
{
    return kairo_mc_cache_fill(cache, t, key, strlen(key),
                               kairo_mc_cache_hash(key, strlen(key)), 7,
                               false, 0, value, strlen(value), now);
}

/* Returns whether 'cache' answers 'key' at 'now', with 'value' if not
 * NULL. */
static bool
hit(struct kairo_mc_cache *cache, const char *key, const char *value,
    long long now)
{
    struct kairo_mc_cache_item item;

    if (!kairo_mc_cache_lookup(cache, key, strlen(key),
                               kairo_mc_cache_hash(key, strlen(key)), false,
                               now, &item)) {
        return false;
    }
    CU_ASSERT_EQUAL(item.flags, 7);
    return !value || (item.data_len == strlen(value)
                      && !memcmp(item.data, value, item.data_len));
}

/* Reports a write of 'key' at 'now'. */
static void
write_key(struct kairo_mc_cache *cache, const char *key,
          enum kairo_mc_cache_expiry expiry, long long expires,
          long long now)
{
    kairo_mc_cache_write(cache, key, strlen(key),
                         kairo_mc_cache_hash(key, strlen(key)), expiry,
                         expires, now);
}

/* Only hot keys are admitted; hits return the value; max_ttl bounds it. */
static void
test_admission(void)
{
    struct kairo_mc_cache *cache = make_cache(1 << 20, 3, 0);
    struct kairo_mc_cache_ticket t = kairo_mc_cache_ticket(cache, 1000);
    struct kairo_mc_cache_stats stats;

    CU_ASSERT(!miss(cache, "k", 2));
    CU_ASSERT_EQUAL(fill(cache, &t, "k", "v1", 1001), KAIRO_MC_FILL_NOT_HOT);
    CU_ASSERT(!hit(cache, "k", NULL, 1002));
    CU_ASSERT(miss(cache, "k", 1));
    CU_ASSERT_EQUAL(fill(cache, &t, "k", "v1", 1003), KAIRO_MC_FILL_OK);
    CU_ASSERT(hit(cache, "k", "v1", 1004));
    CU_ASSERT(hit(cache, "k", "v1", 1003 + 9999));
    CU_ASSERT(!hit(cache, "k", NULL, 1003 + 10000));

    kairo_mc_cache_get_stats(cache, &stats);
    CU_ASSERT_EQUAL(stats.hits, 2);
    CU_ASSERT_EQUAL(stats.misses, 2);
    CU_ASSERT_EQUAL(stats.expirations, 1);
    CU_ASSERT_EQUAL(stats.fills[KAIRO_MC_FILL_OK], 1);
    CU_ASSERT_EQUAL(stats.fills[KAIRO_MC_FILL_NOT_HOT], 1);
    CU_ASSERT_EQUAL(stats.n_values, 0);
    CU_ASSERT_EQUAL(stats.bytes, 0);

    /* Too big a value. */
    char big[1002];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    CU_ASSERT_EQUAL(fill(cache, &t, "k", big, 1005), KAIRO_MC_FILL_TOO_BIG);
    kairo_mc_cache_destroy(cache);
}

/* Writes invalidate at once and refuse fills from gets forwarded before
 * them, or within the settle time after them. */
static void
test_coherence(void)
{
    struct kairo_mc_cache *cache = make_cache(1 << 20, 1, 50);
    struct kairo_mc_cache_ticket before, after, late;

    miss(cache, "k", 1);
    before = kairo_mc_cache_ticket(cache, 1000);
    CU_ASSERT_EQUAL(fill(cache, &before, "k", "old", 1001),
                    KAIRO_MC_FILL_OK);
    CU_ASSERT(hit(cache, "k", "old", 1002));

    write_key(cache, "k", KAIRO_MC_EXPIRY_KEEP, 0, 1003);
    CU_ASSERT(!hit(cache, "k", NULL, 1003));
    /* The reply to a get forwarded before the write is stale. */
    CU_ASSERT_EQUAL(fill(cache, &before, "k", "old", 1004),
                    KAIRO_MC_FILL_RACED);
    /* So may be one forwarded right after it. */
    after = kairo_mc_cache_ticket(cache, 1010);
    CU_ASSERT_EQUAL(fill(cache, &after, "k", "new", 1011),
                    KAIRO_MC_FILL_RACED);
    late = kairo_mc_cache_ticket(cache, 1053);
    CU_ASSERT_EQUAL(fill(cache, &late, "k", "new", 1054), KAIRO_MC_FILL_OK);
    CU_ASSERT(hit(cache, "k", "new", 1055));

    /* Other keys are not disturbed by the write. */
    miss(cache, "other", 1);
    CU_ASSERT_EQUAL(fill(cache, &before, "other", "o", 1056),
                    KAIRO_MC_FILL_OK);

    /* A flush removes everything and refuses earlier and delayed fills. */
    kairo_mc_cache_flush(cache, 2000, 500);
    CU_ASSERT(!hit(cache, "k", NULL, 2001));
    CU_ASSERT(!hit(cache, "other", NULL, 2001));
    late = kairo_mc_cache_ticket(cache, 2100);
    CU_ASSERT_EQUAL(fill(cache, &late, "k", "x", 2101), KAIRO_MC_FILL_RACED);
    late = kairo_mc_cache_ticket(cache, 2600);
    CU_ASSERT_EQUAL(fill(cache, &late, "k", "x", 2601), KAIRO_MC_FILL_OK);
    kairo_mc_cache_destroy(cache);
}

/* Expiry hints from writes bound the life of later fills. */
static void
test_expiry(void)
{
    struct kairo_mc_cache *cache = make_cache(1 << 20, 1, 0);
    struct kairo_mc_cache_ticket t;

    miss(cache, "k", 1);
    write_key(cache, "k", KAIRO_MC_EXPIRY_SET, 3000, 1000);
    t = kairo_mc_cache_ticket(cache, 1001);
    CU_ASSERT_EQUAL(fill(cache, &t, "k", "v", 1002), KAIRO_MC_FILL_OK);
    CU_ASSERT(hit(cache, "k", "v", 2999));
    CU_ASSERT(!hit(cache, "k", NULL, 3000));
    t = kairo_mc_cache_ticket(cache, 3001);
    CU_ASSERT_EQUAL(fill(cache, &t, "k", "v", 3002), KAIRO_MC_FILL_EXPIRED);

    /* A conditional write only shortens a hint... */
    write_key(cache, "k", KAIRO_MC_EXPIRY_SET, 9000, 4000);
    write_key(cache, "k", KAIRO_MC_EXPIRY_AT_MOST, 20000, 4001);
    t = kairo_mc_cache_ticket(cache, 4002);
    CU_ASSERT_EQUAL(fill(cache, &t, "k", "v", 4003), KAIRO_MC_FILL_OK);
    CU_ASSERT(!hit(cache, "k", NULL, 9000));
    write_key(cache, "k", KAIRO_MC_EXPIRY_AT_MOST, 5000, 4004);
    t = kairo_mc_cache_ticket(cache, 4005);
    CU_ASSERT_EQUAL(fill(cache, &t, "k", "v", 4006), KAIRO_MC_FILL_OK);
    CU_ASSERT(!hit(cache, "k", NULL, 5000));

    /* ...and a delete forgets it: max_ttl applies again. */
    write_key(cache, "k", KAIRO_MC_EXPIRY_FORGET, 0, 6000);
    t = kairo_mc_cache_ticket(cache, 6001);
    CU_ASSERT_EQUAL(fill(cache, &t, "k", "v", 6002), KAIRO_MC_FILL_OK);
    CU_ASSERT(hit(cache, "k", "v", 6002 + 9999));
    CU_ASSERT(!hit(cache, "k", NULL, 6002 + 10000));

    /* exptime conversions. */
    CU_ASSERT_EQUAL(kairo_mc_exptime_to_ms(0, 100, 1700000000), LLONG_MAX);
    CU_ASSERT_EQUAL(kairo_mc_exptime_to_ms(-1, 100, 1700000000), 100);
    CU_ASSERT_EQUAL(kairo_mc_exptime_to_ms(2, 100, 1700000000), 2100);
    CU_ASSERT_EQUAL(kairo_mc_exptime_to_ms(2592000, 0, 1700000000),
                    2592000000LL);
    CU_ASSERT_EQUAL(kairo_mc_exptime_to_ms(1700000005, 100, 1700000000),
                    5100);
    CU_ASSERT_EQUAL(kairo_mc_exptime_to_ms(1699999999, 100, 1700000000),
                    100);
    kairo_mc_cache_destroy(cache);
}

/* Memory stays under the limit; entries hit recently survive eviction. */
static void
test_eviction(void)
{
    struct kairo_mc_cache *cache = make_cache(4000, 1, 0);
    struct kairo_mc_cache_ticket t = kairo_mc_cache_ticket(cache, 0);
    struct kairo_mc_cache_stats stats;
    char value[101];

    memset(value, 'v', 100);
    value[100] = '\0';
    miss(cache, "keep", 1);
    CU_ASSERT_EQUAL(fill(cache, &t, "keep", value, 1), KAIRO_MC_FILL_OK);
    for (int i = 0; i < 200; i++) {
        char key[16];

        snprintf(key, sizeof key, "key%d", i);
        miss(cache, key, 1);
        CU_ASSERT_EQUAL(fill(cache, &t, key, value, 2), KAIRO_MC_FILL_OK);
        CU_ASSERT(hit(cache, "keep", NULL, 3));
        kairo_mc_cache_get_stats(cache, &stats);
        CU_ASSERT(stats.bytes <= 4000);
    }
    kairo_mc_cache_get_stats(cache, &stats);
    CU_ASSERT(stats.evictions > 150);
    CU_ASSERT(stats.n_values > 10 && stats.n_values < 40);
    CU_ASSERT(hit(cache, "keep", value, 4));
    kairo_mc_cache_destroy(cache);
}

/* Expectations match replies to gets by client and request id, and a
 * reused id spoils both. */
static void
test_expectations(void)
{
    struct kairo_mc_cache *cache = make_cache(1 << 20, 1, 0);
    struct kairo_mc_cache_ticket t;

    kairo_mc_cache_expect(cache, 1, 10, 2, 1000);
    write_key(cache, "x", KAIRO_MC_EXPIRY_KEEP, 0, 1001);
    CU_ASSERT(kairo_mc_cache_take(cache, 1, 10, 1002, &t));
    CU_ASSERT_EQUAL(t.seq, 0);
    CU_ASSERT_EQUAL(t.time_ms, 1000);
    CU_ASSERT(!kairo_mc_cache_take(cache, 2, 10, 1002, &t));
    CU_ASSERT(!kairo_mc_cache_take(cache, 1, 11, 1002, &t));
    CU_ASSERT(kairo_mc_cache_take(cache, 1, 10, 1003, &t));
    /* Both replies are in: no more. */
    CU_ASSERT(!kairo_mc_cache_take(cache, 1, 10, 1004, &t));

    /* Expired. */
    kairo_mc_cache_expect(cache, 1, 10, 1, 2000);
    CU_ASSERT(!kairo_mc_cache_take(cache, 1, 10,
                                   2000 + KAIRO_MC_CACHE_EXPECT_MS, &t));

    /* Reused while outstanding. */
    kairo_mc_cache_expect(cache, 1, 10, 1, 3000);
    kairo_mc_cache_expect(cache, 1, 10, 1, 3001);
    CU_ASSERT(!kairo_mc_cache_take(cache, 1, 10, 3002, &t));
    CU_ASSERT(!kairo_mc_cache_take(cache, 1, 10, 3002, &t));
    kairo_mc_cache_expect(cache, 1, 10, 1, 3003);
    CU_ASSERT(kairo_mc_cache_take(cache, 1, 10, 3004, &t));
    kairo_mc_cache_destroy(cache);
}

/* Sends datagram 'seq' of 'total', holding 'text' after a frame header, to
 * kairo_mc_cache_take_part() for client 1, request id 7, at 'now'. */
static enum kairo_mc_cache_part
take_part(struct kairo_mc_cache *cache, uint16_t seq, uint16_t total,
          const char *text, long long now, const uint8_t **msg, size_t *size)
{
    uint8_t dgram[512];
    struct kairo_mc_cache_ticket t;
    struct kairo_mc_frame frame = {
        .request_id = 7, .seq = seq, .total = total,
    };
    size_t len = strlen(text);

    ovs_assert(len + KAIRO_MC_FRAME_HEADER_LEN <= sizeof dgram);
    kairo_mc_put_frame(dgram, &frame);
    memcpy(dgram + KAIRO_MC_FRAME_HEADER_LEN, text, len);
    return kairo_mc_cache_take_part(cache, 1, 7, seq, total, dgram,
                                    len + KAIRO_MC_FRAME_HEADER_LEN, now, &t,
                                    msg, size);
}

/* Multi-datagram replies are reassembled in order, for expected gets
 * only, within the size limit; anything out of order drops the message. */
static void
test_reassembly(void)
{
    struct kairo_mc_cache *cache = make_cache(1 << 20, 1, 0);
    struct kairo_mc_cache_stats st;
    const uint8_t *msg;
    char big[400];
    size_t size;

    /* Not expected. */
    CU_ASSERT_EQUAL(take_part(cache, 0, 2, "VALUE ", 1000, &msg, &size),
                    KAIRO_MC_PART_IGNORED);
    CU_ASSERT_EQUAL(take_part(cache, 1, 2, "x", 1000, &msg, &size),
                    KAIRO_MC_PART_IGNORED);

    /* Expected: three datagrams in order. */
    kairo_mc_cache_expect(cache, 1, 7, 1, 1000);
    CU_ASSERT_EQUAL(take_part(cache, 0, 3, "VALUE k 0 5\r\nab", 1001, &msg,
                              &size), KAIRO_MC_PART_KEPT);
    CU_ASSERT_EQUAL(take_part(cache, 1, 3, "cd", 1002, &msg, &size),
                    KAIRO_MC_PART_KEPT);
    CU_ASSERT_EQUAL(take_part(cache, 2, 3, "e\r\nEND\r\n", 1003, &msg,
                              &size), KAIRO_MC_PART_COMPLETE);
    CU_ASSERT_EQUAL(size, KAIRO_MC_FRAME_HEADER_LEN + 25);
    CU_ASSERT(!memcmp(msg + KAIRO_MC_FRAME_HEADER_LEN,
                      "VALUE k 0 5\r\nabcde\r\nEND\r\n", 25));
    /* The expectation was counted: a second message is not expected. */
    CU_ASSERT_EQUAL(take_part(cache, 0, 2, "VALUE ", 1004, &msg, &size),
                    KAIRO_MC_PART_IGNORED);

    /* A gap, a repeat or a changed total drops the message. */
    kairo_mc_cache_expect(cache, 1, 7, 1, 2000);
    CU_ASSERT_EQUAL(take_part(cache, 0, 3, "a", 2001, &msg, &size),
                    KAIRO_MC_PART_KEPT);
    CU_ASSERT_EQUAL(take_part(cache, 2, 3, "c", 2002, &msg, &size),
                    KAIRO_MC_PART_IGNORED);
    CU_ASSERT_EQUAL(take_part(cache, 1, 3, "b", 2003, &msg, &size),
                    KAIRO_MC_PART_IGNORED);
    CU_ASSERT_EQUAL(take_part(cache, 0, 2, "a", 2004, &msg, &size),
                    KAIRO_MC_PART_KEPT);
    CU_ASSERT_EQUAL(take_part(cache, 0, 2, "a", 2005, &msg, &size),
                    KAIRO_MC_PART_KEPT);
    CU_ASSERT_EQUAL(take_part(cache, 1, 3, "b", 2006, &msg, &size),
                    KAIRO_MC_PART_IGNORED);

    /* Over max_value (1000) + 512 bytes: dropped. */
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    kairo_mc_cache_expect(cache, 1, 7, 1, 3000);
    CU_ASSERT_EQUAL(take_part(cache, 0, 5, big, 3001, &msg, &size),
                    KAIRO_MC_PART_KEPT);
    CU_ASSERT_EQUAL(take_part(cache, 1, 5, big, 3001, &msg, &size),
                    KAIRO_MC_PART_KEPT);
    CU_ASSERT_EQUAL(take_part(cache, 2, 5, big, 3001, &msg, &size),
                    KAIRO_MC_PART_KEPT);
    CU_ASSERT_EQUAL(take_part(cache, 3, 5, big, 3001, &msg, &size),
                    KAIRO_MC_PART_IGNORED);

    /* Expired while incomplete. */
    kairo_mc_cache_expect(cache, 1, 7, 1, 4000);
    CU_ASSERT_EQUAL(take_part(cache, 0, 2, "a", 4000, &msg, &size),
                    KAIRO_MC_PART_KEPT);
    CU_ASSERT_EQUAL(take_part(cache, 1, 2, "b",
                              4000 + KAIRO_MC_CACHE_EXPECT_MS, &msg, &size),
                    KAIRO_MC_PART_IGNORED);

    kairo_mc_cache_get_stats(cache, &st);
    CU_ASSERT_EQUAL(st.reassembled, 1);
    CU_ASSERT_EQUAL(st.reassembly_dropped, 5);
    kairo_mc_cache_destroy(cache);
}

/* At most KAIRO_MC_CACHE_REASSEMBLIES messages are reassembled at once. */
static void
test_reassembly_limit(void)
{
    struct kairo_mc_cache *cache = make_cache(1 << 20, 1, 0);
    struct kairo_mc_cache_ticket t;
    const uint8_t *msg;
    uint8_t dgram[16] = { 0 };
    size_t size;

    for (uint64_t client = 0; client <= KAIRO_MC_CACHE_REASSEMBLIES;
         client++) {
        kairo_mc_cache_expect(cache, client, 1, 1, 0);
        CU_ASSERT_EQUAL(kairo_mc_cache_take_part(cache, client, 1, 0, 2,
                                                 dgram, sizeof dgram, 0, &t,
                                                 &msg, &size),
                        (client < KAIRO_MC_CACHE_REASSEMBLIES
                         ? KAIRO_MC_PART_KEPT : KAIRO_MC_PART_IGNORED));
    }
    CU_ASSERT_EQUAL(kairo_mc_cache_take_part(cache, 3, 1, 1, 2, dgram,
                                             sizeof dgram, 0, &t, &msg,
                                             &size),
                    KAIRO_MC_PART_COMPLETE);
    CU_ASSERT_EQUAL(size, 16 + 8);
    kairo_mc_cache_destroy(cache);
}

/* Adds the mc_cache suite to the CUnit registry. */
CU_ErrorCode
kairo_unit_register_mc_cache(void)
{
    CU_pSuite suite = CU_add_suite("kairo-mc-cache", NULL, NULL);

    if (!suite
        || !CU_add_test(suite, "sketch", test_sketch)
        || !CU_add_test(suite, "admission", test_admission)
        || !CU_add_test(suite, "coherence", test_coherence)
        || !CU_add_test(suite, "expiry", test_expiry)
        || !CU_add_test(suite, "eviction", test_eviction)
        || !CU_add_test(suite, "expectations", test_expectations)
        || !CU_add_test(suite, "reassembly", test_reassembly)
        || !CU_add_test(suite, "reassembly limit", test_reassembly_limit)) {
        return CU_get_error();
    }
    return CUE_SUCCESS;
}
