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

/* kairo-delta-index-bench: time and memory of lib/kairo-delta-index.c.
 *
 * Usage: kairo-delta-index-bench [N...]
 *
 * For each N (default 1000 10000 100000 200000) it adds N synthetic
 * megaflows, runs insert and rule queries, and removes them all, and prints
 * nanoseconds per operation and bytes per megaflow.
 *
 * The megaflows model a three-stage pipeline.  Table 0 matches the input
 * port and writes reg0 and metadata; table 10 is an ACL on the source
 * address and destination port (hit or miss); table 20 routes on the
 * destination address and writes dl_dst.  The megaflow mask is one of 8
 * templates; a later lookup's mask adds the fields written before it.  So a
 * megaflow has 2 or 3 lookups and 1 to 3 rule hits.
 *
 * Bytes per megaflow are shown twice: "acct" is what the index accounts
 * (kairo_delta_index_stats.memory: requested sizes plus hash bucket
 * arrays), "heap" is glibc's view (mallinfo2(), which includes the
 * allocator's per-block overhead). */

#include <config.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "flow.h"
#include "kairo-delta-index.h"
#include "openvswitch/match.h"
#include "util.h"

/* Rules per table: ports, ACL entries, routes. */
#define N_PORTS 64
#define N_ACLS 256
#define N_ROUTES 256
#define N_TEMPLATES 8
#define N_QUERIES 2000

/* Rule identities: the index never dereferences them. */
static char port_rules[N_PORTS], acl_rules[N_ACLS], route_rules[N_ROUTES];

/* Returns the current monotonic time in nanoseconds. */
static long long int
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Returns the bytes glibc has handed out. */
static size_t
heap_bytes(void)
{
    return mallinfo2().uordblks;
}

/* Returns the next number of a fixed xorshift sequence in '*state'. */
static uint64_t
bench_rand(uint64_t *state)
{
    *state ^= *state << 13;
    *state ^= *state >> 7;
    *state ^= *state << 17;
    return *state;
}

/* Sets 'mask' to template 't': which packet fields the megaflow fixes. */
static void
bench_template(unsigned int t, struct flow_wildcards *mask)
{
    memset(mask, 0, sizeof *mask);
    mask->masks.in_port.ofp_port = u16_to_ofp(UINT16_MAX);
    mask->masks.recirc_id = UINT32_MAX;
    mask->masks.dl_type = OVS_BE16_MAX;
    mask->masks.nw_frag = 0xff;
    mask->masks.nw_dst = htonl(t & 1 ? 0xffffff00 : 0xffff0000);
    mask->masks.nw_src = htonl(t & 2 ? 0xffffffff : 0xffffff00);
    if (t & 4) {
        mask->masks.nw_proto = 0xff;
        mask->masks.tp_dst = OVS_BE16_MAX;
    }
}

/* Builds megaflow number 'i' into 'keys', 'masks' and 'l' and returns its
 * number of lookups. */
static size_t
bench_megaflow(uint64_t *rng, struct flow keys[3],
               struct flow_wildcards masks[3],
               struct kairo_delta_index_words_buf bufs[3],
               struct kairo_delta_index_lookup l[3])
{
    uint64_t r = bench_rand(rng);
    unsigned int port = r % N_PORTS;
    struct flow key;
    struct flow_wildcards mask;
    size_t n = 0;

    memset(&key, 0, sizeof key);
    key.in_port.ofp_port = u16_to_ofp(port + 1);
    key.dl_type = htons(0x0800);
    key.nw_src = htonl(0x0a000000 | ((r >> 8) & 0xffff));
    key.nw_dst = htonl(0x0a800000 | ((r >> 24) & 0xffff));
    key.nw_proto = 6;
    key.tp_dst = htons(r >> 40 & 1 ? 80 : 443 + (r >> 41) % 16);
    bench_template((r >> 48) % N_TEMPLATES, &mask);

    /* Table 0: hit the port's rule. */
    keys[n] = key;
    masks[n] = mask;
    l[n] = (struct kairo_delta_index_lookup) {
        .table_id = 0, .rule = &port_rules[port], .priority = 100,
    };
    n++;

    /* It wrote reg0 (the logical port) and metadata (the datapath). */
    key.regs[0] = port;
    key.metadata = htonll(port / 8);
    mask.masks.regs[0] = UINT32_MAX;
    mask.masks.metadata = OVS_BE64_MAX;

    /* Table 10: the ACL, a hit two times out of three. */
    keys[n] = key;
    masks[n] = mask;
    l[n] = (struct kairo_delta_index_lookup) { .table_id = 10 };
    if ((r >> 56) % 3) {
        unsigned int acl = (ntohl(key.nw_src) >> 8) % N_ACLS;

        l[n].rule = &acl_rules[acl];
        l[n].priority = 1000 + acl % 10;
    }
    n++;

    /* Table 20: routed flows only (half of them). */
    if (r >> 60 & 1) {
        unsigned int route = (ntohl(key.nw_dst) >> 8) % N_ROUTES;

        keys[n] = key;
        masks[n] = mask;
        l[n] = (struct kairo_delta_index_lookup) {
            .table_id = 20, .rule = &route_rules[route], .priority = 24,
        };
        n++;
    }

    for (size_t i = 0; i < n; i++) {
        l[i].region = kairo_delta_index_words_from_flow(&keys[i], &masks[i],
                                                        &bufs[i]);
    }
    return n;
}

/* Counts query results. */
static void
bench_cb(const void *owner OVS_UNUSED, void *n_)
{
    size_t *n = n_;

    (*n)++;
}

/* Fills 'match', '*table' and '*priority' with the 'q'th rule insertion:
 * a new port rule, ACL entry or route, in turn. */
static void
bench_query(uint64_t *rng, unsigned int q, struct match *match,
            uint8_t *table, int *priority)
{
    uint64_t r = bench_rand(rng);

    match_init_catchall(match);
    match_set_dl_type(match, htons(0x0800));
    switch (q % 3) {
    case 0:
        *table = 0;
        *priority = 100;
        match_set_in_port(match, u16_to_ofp(r % N_PORTS + 1));
        break;
    case 1:
        *table = 10;
        *priority = 1000 + r % 10;
        match_set_reg(match, 0, r % N_PORTS);
        match_set_nw_src_masked(match, htonl(0x0a000000 | (r >> 8 & 0xffff)),
                                htonl(0xffffffff));
        match_set_nw_proto(match, 6);
        match_set_tp_dst(match, htons(80));
        break;
    default:
        *table = 20;
        *priority = 24;
        match_set_metadata(match, htonll(r % (N_PORTS / 8)));
        match_set_nw_dst_masked(match,
                                htonl(0x0a800000 | (r >> 8 & 0xff00)),
                                htonl(0xffffff00));
        break;
    }
}

/* Runs the benchmark for 'n' megaflows and prints one line. */
static void
bench_run(size_t n)
{
    struct kairo_delta_index_stats st;
    struct kairo_delta_index *idx;
    struct kairo_delta_index_lookup l[3];
    struct kairo_delta_index_words_buf bufs[3];
    struct flow_wildcards masks[3];
    struct flow keys[3];
    uint64_t rng = 0x9e3779b97f4a7c15ULL;
    size_t heap0, heap1, n_lookups = 0, n_reported = 0, n_hits = 0;
    long long int t0, t_add, t_query, t_rule, t_remove;
    struct kairo_delta_index_entry **entries = xcalloc(n, sizeof *entries);
    char *owners = xmalloc(n);

    heap0 = heap_bytes();
    idx = kairo_delta_index_create();
    t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        size_t k = bench_megaflow(&rng, keys, masks, bufs, l);

        n_lookups += k;
        if (kairo_delta_index_add(idx, &entries[i], &owners[i], NULL, l, k)) {
            ovs_fatal(0, "add failed");
        }
    }
    t_add = now_ns() - t0;
    heap1 = heap_bytes();
    kairo_delta_index_get_stats(idx, &st);
    size_t acct_before_queries = st.memory;

    /* The first query of each kind is timed apart from the steady state
     * (cold caches). */
    long long int t_build;
    t0 = now_ns();
    for (unsigned int q = 0; q < 3; q++) {
        struct match match;
        uint8_t table;
        int priority;

        bench_query(&rng, q, &match, &table, &priority);
        kairo_delta_index_query_insert_match(idx, table, priority, &match,
                                             bench_cb, &n_hits);
    }
    t_build = now_ns() - t0;

    long long int t_kind[3] = { 0, 0, 0 };
    size_t n_kind[3] = { 0, 0, 0 };
    for (unsigned int q = 0; q < N_QUERIES; q++) {
        struct match match;
        uint8_t table;
        int priority;
        size_t k;

        bench_query(&rng, q, &match, &table, &priority);
        t0 = now_ns();
        k = kairo_delta_index_query_insert_match(idx, table, priority,
                                                 &match, bench_cb, &n_hits);
        t_kind[q % 3] += now_ns() - t0;
        n_kind[q % 3] += k;
        n_reported += k;
    }
    t_query = t_kind[0] + t_kind[1] + t_kind[2];

    size_t n_rule_hits = 0;
    t0 = now_ns();
    for (unsigned int q = 0; q < N_QUERIES; q++) {
        const void *rule = (q % 2 ? (const void *) &acl_rules[q % N_ACLS]
                            : (const void *) &route_rules[q % N_ROUTES]);

        n_rule_hits += kairo_delta_index_query_rule(idx, rule, bench_cb,
                                                    &n_hits);
    }
    t_rule = now_ns() - t0;
    kairo_delta_index_get_stats(idx, &st);
    size_t heap2 = heap_bytes();

    t0 = now_ns();
    for (size_t i = 0; i < n; i++) {
        kairo_delta_index_remove(idx, &entries[i]);
    }
    t_remove = now_ns() - t0;

    printf("%7"PRIuSIZE" %5.2f %5.0f %5.0f %5.0f %5.0f %6.0f %6.0f %6.1f "
           "%8.1f %6.0f %6.0f %5"PRIu64" %6"PRIu64" %6"PRIu64" %6"PRIu64
           " %6"PRIu64"\n",
           n, (double) n_lookups / n,
           (double) acct_before_queries / n,
           (double) (heap1 - heap0) / n,
           (double) st.memory / n,
           (double) (heap2 - heap0) / n,
           (double) t_add / n, (double) t_remove / n,
           (double) t_build / 1e6,
           (double) t_query / N_QUERIES / 1000.0,
           (double) n_reported / N_QUERIES,
           (double) t_rule / N_QUERIES,
           st.n_groups, st.n_steps, st.path_probe, st.path_all,
           st.path_scan);
    for (int k = 0; k < 3; k++) {
        static const char *const names[3] = { "port", "acl", "route" };
        unsigned int n_q = N_QUERIES / 3 + (k < N_QUERIES % 3);

        printf("#   %-5s insert: %8.0f ns/query, %8.1f affected/query\n",
               names[k], (double) t_kind[k] / n_q, (double) n_kind[k] / n_q);
    }
    kairo_delta_index_destroy(idx);
    free(entries);
    free(owners);
}

int
main(int argc, char *argv[])
{
    static const size_t defaults[] = { 1000, 10000, 100000, 200000 };

    set_program_name(argv[0]);
    printf("# %d insert queries and %d rule queries per size\n",
           N_QUERIES, N_QUERIES);
    printf("#                  B/mf (+q: after queries)    ns/mf  "
           "first   insert query      rule_q            group paths\n");
    printf("#     N lk/mf  acct  heap +q:   acct  heap    add    rm build_ms "
           "us/query affect   ns/q groups  steps  probe    all   scan\n");
    if (argc > 1) {
        for (int i = 1; i < argc; i++) {
            bench_run(strtoul(argv[i], NULL, 10));
        }
    } else {
        for (size_t i = 0; i < ARRAY_SIZE(defaults); i++) {
            bench_run(defaults[i]);
        }
    }
    return 0;
}
