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

/* Unit tests for lib/kairo-mc-pool.c: the options of a kairo-memcached
 * Interface. */

#include <config.h>

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "kairo-mc-pool.h"
#include "kairo-unit.h"
#include "openvswitch/dynamic-string.h"
#include "smap.h"
#include "util.h"

/* Parses the backends list 's', expecting success with 'n' backends, and
 * returns them (the caller frees them). */
static struct kairo_mc_backend *
parse_ok(const char *s, size_t n)
{
    struct kairo_mc_backend *backends;
    char *error = NULL;
    size_t got;

    CU_ASSERT_EQUAL(kairo_mc_pool_parse_backends(s, &backends, &got, &error),
                    0);
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_EQUAL(got, n);
    free(error);
    return backends;
}

/* Parses the backends list 's', expecting an error that contains
 * 'expected'. */
static void
parse_bad(const char *s, const char *expected)
{
    struct kairo_mc_backend *backends = NULL;
    char *error = NULL;
    size_t n = 0;

    CU_ASSERT_EQUAL(kairo_mc_pool_parse_backends(s, &backends, &n, &error),
                    EINVAL);
    CU_ASSERT_PTR_NULL(backends);
    CU_ASSERT_EQUAL(n, 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    if (!strstr(error, expected)) {
        fprintf(stderr, "\n\"%s\": got \"%s\", expected \"%s\"\n",
                s, error, expected);
        CU_FAIL("wrong error message");
    }
    free(error);
}

static void
test_backends_syntax(void)
{
    struct kairo_mc_backend *b;
    struct ds s = DS_EMPTY_INITIALIZER;

    b = parse_ok("10.0.0.1=aa:bb:cc:dd:ee:01", 1);
    CU_ASSERT_EQUAL(b[0].ip, htonl(0x0a000001));
    CU_ASSERT_EQUAL(b[0].port, 11211);
    CU_ASSERT_EQUAL(b[0].weight, 1);
    CU_ASSERT_PTR_NULL(b[0].name);
    CU_ASSERT_STRING_EQUAL(b[0].host, "10.0.0.1");
    CU_ASSERT(eth_addr_equals(b[0].mac, (struct eth_addr) ETH_ADDR_C(
                                  aa, bb, cc, dd, ee, 01)));
    kairo_mc_pool_backends_free(b, 1);

    b = parse_ok(" 10.0.0.1:11211=aa:bb:cc:dd:ee:01*2;name=srv1 ,"
                 "\t10.0.0.2:11300=aa:bb:cc:dd:ee:02 ", 2);
    CU_ASSERT_EQUAL(b[0].weight, 2);
    CU_ASSERT_STRING_EQUAL(b[0].name, "srv1");
    CU_ASSERT_EQUAL(b[1].port, 11300);
    kairo_mc_pool_format_backend(&b[0], &s);
    ds_put_char(&s, ',');
    kairo_mc_pool_format_backend(&b[1], &s);
    CU_ASSERT_STRING_EQUAL(ds_cstr(&s),
                           "10.0.0.1:11211=aa:bb:cc:dd:ee:01*2;name=srv1,"
                           "10.0.0.2:11300=aa:bb:cc:dd:ee:02");
    kairo_mc_pool_backends_free(b, 2);
    ds_destroy(&s);

    b = parse_ok("", 0);
    CU_ASSERT_PTR_NULL(b);
    b = parse_ok("  ", 0);
    CU_ASSERT_PTR_NULL(b);

    /* Same IP, different ports; same port, different IPs. */
    b = parse_ok("10.0.0.1:1=aa:bb:cc:dd:ee:01,10.0.0.1:2=aa:bb:cc:dd:ee:01,"
                 "10.0.0.2:1=aa:bb:cc:dd:ee:02*65535", 3);
    CU_ASSERT_EQUAL(b[2].weight, 65535);
    kairo_mc_pool_backends_free(b, 3);

    /* Shared address, told apart by name and MAC. */
    b = parse_ok("10.0.0.1=aa:bb:cc:dd:ee:01;name=a,"
                 "10.0.0.1=aa:bb:cc:dd:ee:02;name=b", 2);
    kairo_mc_pool_backends_free(b, 2);
}

static void
test_backends_errors(void)
{
    parse_bad("10.0.0.1", "entry 1 \"10.0.0.1\": expected IP[:PORT]=MAC");
    parse_bad("10.0.0.300=aa:bb:cc:dd:ee:01", "bad IPv4 address");
    parse_bad("224.0.0.1=aa:bb:cc:dd:ee:01", "not a unicast address");
    parse_bad("0.0.0.0=aa:bb:cc:dd:ee:01", "not a unicast address");
    parse_bad("10.0.0.1:0=aa:bb:cc:dd:ee:01", "bad UDP port \"0\"");
    parse_bad("10.0.0.1:65536=aa:bb:cc:dd:ee:01", "bad UDP port");
    parse_bad("10.0.0.1:+1=aa:bb:cc:dd:ee:01", "bad UDP port");
    parse_bad("10.0.0.1:=aa:bb:cc:dd:ee:01", "bad UDP port");
    parse_bad("10.0.0.1=zz:bb:cc:dd:ee:01", "bad MAC address \"zz:");
    parse_bad("10.0.0.1=aa:bb:cc:dd:ee", "bad MAC address");
    parse_bad("10.0.0.1=01:00:5e:00:00:01", "not a unicast address");
    parse_bad("10.0.0.1=00:00:00:00:00:00", "not a unicast address");
    parse_bad("10.0.0.1=aa:bb:cc:dd:ee:01*0", "bad weight \"0\"");
    parse_bad("10.0.0.1=aa:bb:cc:dd:ee:01*65536", "bad weight");
    parse_bad("10.0.0.1=aa:bb:cc:dd:ee:01*", "bad weight");
    parse_bad("10.0.0.1=aa:bb:cc:dd:ee:01;nom=x", "unknown attribute");
    parse_bad("10.0.0.1=aa:bb:cc:dd:ee:01;name=", "bad name");
    parse_bad("10.0.0.1=aa:bb:cc:dd:ee:01;name=a b", "bad name");
    parse_bad("10.0.0.1=aa:bb:cc:dd:ee:01;name="
              "01234567890123456789012345678901234567890123456789"
              "012345678901234", "bad name");
    parse_bad("10.0.0.1=aa:bb:cc:dd:ee:01,,10.0.0.2=aa:bb:cc:dd:ee:02",
              "entry 2 is empty");
    parse_bad("10.0.0.1=aa:bb:cc:dd:ee:01,", "entry 2 is empty");
    parse_bad("10.0.0.1=aa:bb:cc:dd:ee:01,10.0.0.1:11211=aa:bb:cc:dd:ee:02",
              "entry 2 \"10.0.0.1:11211=aa:bb:cc:dd:ee:02\": duplicate "
              "backend 10.0.0.1:11211 (also entry 1;");
    parse_bad("10.0.0.1=aa:bb:cc:dd:ee:01;name=a,"
              "10.0.0.1=aa:bb:cc:dd:ee:02", "duplicate backend");
    parse_bad("10.0.0.1=aa:bb:cc:dd:ee:01;name=a,"
              "10.0.0.2=aa:bb:cc:dd:ee:02;name=a", "duplicate name \"a\"");
}

/* Parses 'options' (alternating keys and values, NULL-terminated) and
 * returns the error message, or NULL on success; 'cfg' receives the
 * result. */
static char *
parse_options(struct kairo_mc_pool_config *cfg, const char *const *options)
{
    struct smap smap = SMAP_INITIALIZER(&smap);
    char *error = NULL;
    int retval;

    for (size_t i = 0; options[i]; i += 2) {
        smap_add(&smap, options[i], options[i + 1]);
    }
    retval = kairo_mc_pool_parse(&smap, cfg, &error);
    CU_ASSERT_EQUAL(retval, error ? EINVAL : 0);
    smap_destroy(&smap);
    return error;
}

static void
test_options(void)
{
    struct kairo_mc_pool_config cfg;
    char *error;

    error = parse_options(&cfg, (const char *const[]) { NULL });
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_EQUAL(cfg.n_backends, 0);
    CU_ASSERT_EQUAL(cfg.hash, KAIRO_MC_HASH_FNV1A_64);
    CU_ASSERT_EQUAL(cfg.distribution, KAIRO_KETAMA_KETAMA);
    CU_ASSERT_EQUAL(cfg.rewrite, KAIRO_MC_REWRITE_MAC);
    CU_ASSERT_EQUAL(cfg.bad_request, KAIRO_MC_POLICY_PASS);
    CU_ASSERT_EQUAL(cfg.vport, 11211);
    CU_ASSERT_EQUAL(cfg.n_rxq, 1);
    CU_ASSERT_FALSE(cfg.auto_eject);
    CU_ASSERT_EQUAL(cfg.timeout, 0);
    CU_ASSERT_EQUAL(cfg.server_failure_limit, 2);
    CU_ASSERT_EQUAL(cfg.server_retry_timeout, 30000);
    kairo_mc_pool_config_destroy(&cfg);

    error = parse_options(&cfg, (const char *const[]) {
        "backends", "10.0.0.1=aa:bb:cc:dd:ee:01,10.0.0.2=aa:bb:cc:dd:ee:02",
        "hash", "md5", "distribution", "modula", "hash_tag", "{}",
        "auto_eject", "true", "rewrite", "ip", "vip", "10.0.0.100",
        "vport", "11311", "vmac", "aa:bb:cc:dd:ee:ff", "bad-request", "drop",
        "n_rxq", "4", "queue_len", "16", "timeout", "250",
        "server_failure_limit", "3", "server_retry_timeout", "5000", NULL });
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_EQUAL(cfg.n_backends, 2);
    CU_ASSERT_EQUAL(cfg.hash, KAIRO_MC_HASH_MD5);
    CU_ASSERT_EQUAL(cfg.distribution, KAIRO_KETAMA_MODULA);
    CU_ASSERT_STRING_EQUAL(cfg.hash_tag, "{}");
    CU_ASSERT_TRUE(cfg.auto_eject);
    CU_ASSERT_EQUAL(cfg.rewrite, KAIRO_MC_REWRITE_IP);
    CU_ASSERT_EQUAL(cfg.vip, htonl(0x0a000064));
    CU_ASSERT_EQUAL(cfg.vport, 11311);
    CU_ASSERT_TRUE(cfg.has_vmac);
    CU_ASSERT_EQUAL(cfg.bad_request, KAIRO_MC_POLICY_DROP);
    CU_ASSERT_EQUAL(cfg.n_rxq, 4);
    CU_ASSERT_EQUAL(cfg.queue_len, 16);
    CU_ASSERT_EQUAL(cfg.timeout, 250);
    CU_ASSERT_EQUAL(cfg.server_failure_limit, 3);
    CU_ASSERT_EQUAL(cfg.server_retry_timeout, 5000);
    CU_ASSERT_EQUAL(kairo_mc_pool_find_backend(&cfg, "10.0.0.2"), 1);
    CU_ASSERT_EQUAL(kairo_mc_pool_find_backend(&cfg, "10.0.0.2:11211"), 1);
    CU_ASSERT_EQUAL(kairo_mc_pool_find_backend(&cfg, "10.0.0.3"), -1);
    CU_ASSERT_EQUAL(cfg.cache_size, 0);
    kairo_mc_pool_config_destroy(&cfg);

    error = parse_options(&cfg, (const char *const[]) {
        "cache_size", "64M", "cache_clients", "10.1.0.0/16, 192.168.1.7",
        "cache_threshold", "5", "cache_max_ttl", "60", "cache_settle", "0",
        "cache_max_reply", "9000", NULL });
    CU_ASSERT_PTR_NULL(error);
    CU_ASSERT_EQUAL(cfg.cache_size, 64 << 20);
    CU_ASSERT_EQUAL(cfg.n_cache_clients, 2);
    CU_ASSERT_EQUAL(cfg.cache_threshold, 5);
    CU_ASSERT_EQUAL(cfg.cache_max_ttl, 60);
    CU_ASSERT_EQUAL(cfg.cache_settle, 0);
    CU_ASSERT_EQUAL(cfg.cache_max_reply, 9000);
    CU_ASSERT(kairo_mc_pool_is_cache_client(&cfg, htonl(0x0a01ff01)));
    CU_ASSERT(kairo_mc_pool_is_cache_client(&cfg, htonl(0xc0a80107)));
    CU_ASSERT(!kairo_mc_pool_is_cache_client(&cfg, htonl(0xc0a80108)));
    CU_ASSERT(!kairo_mc_pool_is_cache_client(&cfg, htonl(0x0a020001)));
    kairo_mc_pool_config_destroy(&cfg);
}

/* Expects 'options' to be rejected with a message containing
 * 'expected'. */
static void
options_bad(const char *const *options, const char *expected)
{
    struct kairo_mc_pool_config cfg;
    char *error = parse_options(&cfg, options);

    CU_ASSERT_PTR_NOT_NULL_FATAL(error);
    if (!strstr(error, expected)) {
        fprintf(stderr, "\ngot \"%s\", expected \"%s\"\n", error, expected);
        CU_FAIL("wrong error message");
    }
    /* The config is left at the defaults. */
    CU_ASSERT_EQUAL(cfg.n_backends, 0);
    CU_ASSERT_EQUAL(cfg.hash, KAIRO_MC_HASH_FNV1A_64);
    free(error);
    kairo_mc_pool_config_destroy(&cfg);
}

static void
test_options_errors(void)
{
    options_bad((const char *const[]) { "hash", "sha1", NULL },
                "hash: unknown hash \"sha1\" (one of one_at_a_time, md5");
    options_bad((const char *const[]) { "hash", "MD5", NULL },
                "unknown hash");
    options_bad((const char *const[]) { "distribution", "rendezvous",
                                        NULL }, "unknown distribution");
    options_bad((const char *const[]) { "hash_tag", "{", NULL },
                "hash_tag: \"{\" is not empty or two characters");
    options_bad((const char *const[]) { "auto_eject", "yes", NULL },
                "auto_eject: \"yes\" is not true or false");
    options_bad((const char *const[]) { "rewrite", "nat", NULL },
                "rewrite: \"nat\" is not mac or ip");
    options_bad((const char *const[]) { "rewrite", "ip", "vmac",
                                        "aa:bb:cc:dd:ee:ff", NULL },
                "rewrite=ip needs options:vip");
    options_bad((const char *const[]) { "rewrite", "ip", "vip", "10.0.0.1",
                                        NULL },
                "rewrite=ip needs options:vmac");
    options_bad((const char *const[]) { "vip", "10.0.0", NULL },
                "vip: bad unicast IPv4 address");
    options_bad((const char *const[]) { "vport", "0", NULL },
                "vport: bad UDP port");
    options_bad((const char *const[]) { "vmac", "ff:ff:ff:ff:ff:ff", NULL },
                "vmac: MAC address");
    options_bad((const char *const[]) { "bad-request", "reject", NULL },
                "bad-request: \"reject\" is not pass or drop");
    options_bad((const char *const[]) { "n_rxq", "9", NULL },
                "n_rxq: bad queue count");
    options_bad((const char *const[]) { "queue_len", "0", NULL },
                "queue_len: bad length");
    options_bad((const char *const[]) { "cache_size", "1M", NULL },
                "cache_size needs options:cache_clients");
    options_bad((const char *const[]) { "cache_size", "1000", NULL },
                "cache_size: bad size \"1000\" (0, or 4K to 64G)");
    options_bad((const char *const[]) { "cache_size", "65G", NULL },
                "cache_size: bad size");
    options_bad((const char *const[]) { "cache_size", "-1", NULL },
                "cache_size: bad size");
    options_bad((const char *const[]) { "cache_clients", "10.0.0.0/33",
                                        NULL },
                "cache_clients: bad subnet \"10.0.0.0/33\"");
    options_bad((const char *const[]) { "cache_threshold", "0", NULL },
                "cache_threshold: bad threshold");
    options_bad((const char *const[]) { "cache_max_ttl", "0", NULL },
                "cache_max_ttl: bad time");
    options_bad((const char *const[]) { "cache_max_reply", "65508", NULL },
                "cache_max_reply: bad size");
    options_bad((const char *const[]) { "timeout", "5", NULL },
                "timeout: bad time \"5\" (0 for none, or 10 to 3600000 ms)");
    options_bad((const char *const[]) { "timeout", "3600001", NULL },
                "timeout: bad time");
    options_bad((const char *const[]) { "server_failure_limit", "0", NULL },
                "server_failure_limit: bad count");
    options_bad((const char *const[]) { "server_retry_timeout", "1s",
                                        NULL },
                "server_retry_timeout: bad time");
    options_bad((const char *const[]) { "tx_pcap", "x.pcap", NULL },
                "unknown option \"tx_pcap\" (known: backends,");
    options_bad((const char *const[]) { "backends", "10.0.0.1", "hash",
                                        "md5", NULL },
                "backends: entry 1");
}

CU_ErrorCode
kairo_unit_register_mc_pool(void)
{
    CU_pSuite suite = CU_add_suite("kairo-mc-pool", NULL, NULL);

    if (!suite
        || !CU_add_test(suite, "backends syntax", test_backends_syntax)
        || !CU_add_test(suite, "backends errors", test_backends_errors)
        || !CU_add_test(suite, "options", test_options)
        || !CU_add_test(suite, "options errors", test_options_errors)) {
        return CU_get_error();
    }
    return CUE_SUCCESS;
}
