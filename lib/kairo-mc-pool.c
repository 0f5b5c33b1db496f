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
#include "kairo-mc-pool.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "openvswitch/dynamic-string.h"
#include "openvswitch/util.h"
#include "smap.h"
#include "util.h"

/* Default memcached UDP port. */
#define KAIRO_MC_POOL_DEFAULT_PORT 11211

/* Every option name the pool accepts, for the unknown-option message. */
static const char *const kairo_mc_pool_options[] = {
    "backends", "hash", "distribution", "hash_tag", "auto_eject", "rewrite",
    "vip", "vport", "vmac", "bad-request", "n_rxq", "queue_len",
    "cache_size", "cache_clients", "cache_threshold", "cache_max_ttl",
    "cache_settle", "cache_max_reply", "timeout", "server_failure_limit",
    "server_retry_timeout",
};

void
kairo_mc_pool_config_init(struct kairo_mc_pool_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->hash = KAIRO_MC_HASH_FNV1A_64;
    cfg->distribution = KAIRO_KETAMA_KETAMA;
    cfg->rewrite = KAIRO_MC_REWRITE_MAC;
    cfg->bad_request = KAIRO_MC_POLICY_PASS;
    cfg->vport = KAIRO_MC_POOL_DEFAULT_PORT;
    cfg->n_rxq = 1;
    cfg->queue_len = KAIRO_MC_POOL_DEFAULT_QUEUE_LEN;
    cfg->cache_threshold = 2;
    cfg->cache_max_ttl = 10;
    cfg->cache_settle = 10;
    cfg->cache_max_reply = 1400;
    cfg->server_failure_limit = 2;
    cfg->server_retry_timeout = 30000;
}

void
kairo_mc_pool_backends_free(struct kairo_mc_backend *backends, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(backends[i].name);
        free(backends[i].host);
    }
    free(backends);
}

void
kairo_mc_pool_config_destroy(struct kairo_mc_pool_config *cfg)
{
    if (cfg) {
        kairo_mc_pool_backends_free(cfg->backends, cfg->n_backends);
        free(cfg->hash_tag);
        free(cfg->cache_clients);
        cfg->cache_clients = NULL;
        cfg->n_cache_clients = 0;
        cfg->backends = NULL;
        cfg->n_backends = 0;
        cfg->hash_tag = NULL;
    }
}

/* Parses 's' as a plain decimal number (digits only, no sign, no spaces)
 * from 'min' to 'max' into '*valuep'.  Returns true on success. */
static bool
kairo_mc_pool_parse_uint(const char *s, unsigned long min, unsigned long max,
                         unsigned long *valuep)
{
    unsigned long value = 0;

    if (!*s || strlen(s) > 10) {
        return false;
    }
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') {
            return false;
        }
        value = value * 10 + (unsigned long) (*p - '0');
    }
    if (value < min || value > max) {
        return false;
    }
    *valuep = value;
    return true;
}

/* Returns true if 'name' may be an explicit backend name: 1 to
 * KAIRO_MC_POOL_MAX_NAME_LEN printable, non-space ASCII bytes other than the
 * separators ',', ';', '=' and '*'. */
static bool
kairo_mc_pool_name_is_valid(const char *name)
{
    size_t len = strlen(name);

    if (!len || len > KAIRO_MC_POOL_MAX_NAME_LEN) {
        return false;
    }
    for (const char *p = name; *p; p++) {
        unsigned char c = *p;

        if (c < 0x21 || c > 0x7e || strchr(",;=*", c)) {
            return false;
        }
    }
    return true;
}

/* Parses an ordinary MAC address 's' into '*mac': six colon-separated
 * hex octets, not multicast and not all-zeros.  On error returns a
 * malloc()ed description of the problem, otherwise NULL. */
static char *
kairo_mc_pool_parse_mac(const char *s, struct eth_addr *mac)
{
    if (!eth_addr_from_string(s, mac)) {
        return xasprintf("bad MAC address \"%s\"", s);
    }
    if (eth_addr_is_zero(*mac) || eth_addr_is_multicast(*mac)) {
        return xasprintf("MAC address \"%s\" is not a unicast address", s);
    }
    return NULL;
}

/* Parses one backend entry 'entry' (already trimmed) into '*b'.  Returns
 * NULL on success, or a malloc()ed description of the problem, leaving
 * nothing allocated in '*b'. */
static char *
kairo_mc_pool_parse_entry(char *entry, struct kairo_mc_backend *b)
{
    unsigned long value;
    char *attrs, *mac, *weight, *port;

    memset(b, 0, sizeof *b);
    b->port = KAIRO_MC_POOL_DEFAULT_PORT;
    b->weight = 1;

    attrs = strchr(entry, ';');
    if (attrs) {
        *attrs++ = '\0';
    }
    mac = strchr(entry, '=');
    if (!mac) {
        return xstrdup("expected IP[:PORT]=MAC[*WEIGHT][;name=NAME]");
    }
    *mac++ = '\0';

    port = strchr(entry, ':');
    if (port) {
        *port++ = '\0';
        if (!kairo_mc_pool_parse_uint(port, 1, UINT16_MAX, &value)) {
            return xasprintf("bad UDP port \"%s\" (1 to 65535)", port);
        }
        b->port = value;
    }
    if (!ip_parse(entry, &b->ip)) {
        return xasprintf("bad IPv4 address \"%s\"", entry);
    }
    if (!b->ip || ip_is_multicast(b->ip) || b->ip == htonl(0xffffffff)) {
        return xasprintf("IPv4 address \"%s\" is not a unicast address",
                         entry);
    }

    weight = strchr(mac, '*');
    if (weight) {
        *weight++ = '\0';
        if (!kairo_mc_pool_parse_uint(weight, 1, KAIRO_KETAMA_MAX_WEIGHT,
                                      &value)) {
            return xasprintf("bad weight \"%s\" (1 to %d)", weight,
                             KAIRO_KETAMA_MAX_WEIGHT);
        }
        b->weight = value;
    }
    char *error = kairo_mc_pool_parse_mac(mac, &b->mac);
    if (error) {
        return error;
    }

    if (attrs) {
        if (strncmp(attrs, "name=", 5)) {
            return xasprintf("unknown attribute \"%s\" (only name=NAME)",
                             attrs);
        }
        if (!kairo_mc_pool_name_is_valid(attrs + 5)) {
            return xasprintf("bad name \"%s\" (1 to %d printable characters "
                             "other than space , ; = *)", attrs + 5,
                             KAIRO_MC_POOL_MAX_NAME_LEN);
        }
        b->name = xstrdup(attrs + 5);
    }
    b->host = xasprintf(IP_FMT, IP_ARGS(b->ip));
    return NULL;
}

/* Returns a malloc()ed description of why backend 'i' in 'backends' clashes
 * with an earlier one, or NULL if it does not.  Two backends may share an
 * IP:PORT (MemSwitch style, where backends share the virtual IP and differ
 * by MAC) only if both have explicit, distinct names, since ketama names
 * them by address otherwise. */
static char *
kairo_mc_pool_check_duplicate(const struct kairo_mc_backend *backends,
                              size_t i)
{
    const struct kairo_mc_backend *b = &backends[i];

    for (size_t j = 0; j < i; j++) {
        const struct kairo_mc_backend *o = &backends[j];

        if (o->ip == b->ip && o->port == b->port && (!o->name || !b->name)) {
            return xasprintf("duplicate backend "IP_FMT":%"PRIu16
                             " (also entry %"PRIuSIZE"; backends that share "
                             "an address need a name= each)",
                             IP_ARGS(b->ip), b->port, j + 1);
        }
        if (b->name && o->name && !strcmp(b->name, o->name)) {
            return xasprintf("duplicate name \"%s\" (also entry %"PRIuSIZE
                             ")", b->name, j + 1);
        }
    }
    return NULL;
}

int
kairo_mc_pool_parse_backends(const char *s,
                             struct kairo_mc_backend **backendsp,
                             size_t *np, char **errp)
{
    struct kairo_mc_backend *backends = NULL;
    size_t n = 0, allocated = 0;
    char *copy = xstrdup(s);
    char *save_ptr = NULL;
    char *error = NULL;
    size_t index = 0;

    *backendsp = NULL;
    *np = 0;

    /* strtok_r() would silently merge empty entries, so split by hand. */
    for (char *entry = copy; entry; entry = save_ptr) {
        char *comma = strchr(entry, ',');
        char *original;

        save_ptr = comma ? comma + 1 : NULL;
        if (comma) {
            *comma = '\0';
        }
        index++;

        /* Trim spaces and tabs around the entry. */
        entry += strspn(entry, " \t");
        size_t len = strlen(entry);
        while (len && (entry[len - 1] == ' ' || entry[len - 1] == '\t')) {
            entry[--len] = '\0';
        }
        if (!len) {
            if (comma || index > 1) {
                error = xasprintf("backends: entry %"PRIuSIZE" is empty",
                                  index);
                break;
            }
            continue;
        }
        if (n >= KAIRO_MC_POOL_MAX_BACKENDS) {
            error = xasprintf("backends: more than %d backends",
                              KAIRO_MC_POOL_MAX_BACKENDS);
            break;
        }
        if (n >= allocated) {
            backends = x2nrealloc(backends, &allocated, sizeof *backends);
        }

        original = xstrdup(entry);
        char *problem = kairo_mc_pool_parse_entry(entry, &backends[n]);
        if (!problem) {
            n++;
            problem = kairo_mc_pool_check_duplicate(backends, n - 1);
        }
        if (problem) {
            error = xasprintf("backends: entry %"PRIuSIZE" \"%s\": %s",
                              index, original, problem);
            free(problem);
        }
        free(original);
        if (error) {
            break;
        }
    }
    free(copy);

    if (error) {
        kairo_mc_pool_backends_free(backends, n);
        *errp = error;
        return EINVAL;
    }
    *backendsp = backends;
    *np = n;
    return 0;
}

/* Parses 's', a byte count with an optional K, M or G suffix, into
 * '*valuep'.  Returns true on success. */
static bool
kairo_mc_pool_parse_size(const char *s, uint64_t *valuep)
{
    static const char suffixes[] = "KMG";
    size_t len = strlen(s);
    unsigned long long n;
    int shift = 0;

    if (len && strchr(suffixes, s[len - 1])) {
        shift = 10 * (strchr(suffixes, s[len - 1]) - suffixes + 1);
        len--;
    }
    if (!len || len > 12 || strspn(s, "0123456789") != len) {
        return false;
    }
    n = strtoull(s, NULL, 10);
    *valuep = (uint64_t) n << shift;
    return true;
}

/* Parses the cache_clients value 's' into 'cfg'.  Returns NULL or a
 * malloc()ed message. */
static char *
kairo_mc_pool_parse_clients(struct kairo_mc_pool_config *cfg, const char *s)
{
    char *copy = xstrdup(s), *save_ptr = NULL, *error = NULL;
    size_t allocated = 0;

    free(cfg->cache_clients);
    cfg->cache_clients = NULL;
    cfg->n_cache_clients = 0;
    for (char *tok = strtok_r(copy, ", ", &save_ptr); tok && !error;
         tok = strtok_r(NULL, ", ", &save_ptr)) {
        struct kairo_mc_subnet subnet;
        char *problem = ip_parse_masked(tok, &subnet.ip, &subnet.mask);

        if (problem) {
            error = xasprintf("cache_clients: bad subnet \"%s\" (%s)", tok,
                              problem);
            free(problem);
            break;
        }
        subnet.ip &= subnet.mask;
        if (cfg->n_cache_clients >= allocated) {
            cfg->cache_clients = x2nrealloc(cfg->cache_clients, &allocated,
                                            sizeof *cfg->cache_clients);
        }
        cfg->cache_clients[cfg->n_cache_clients++] = subnet;
    }
    free(copy);
    return error;
}

bool
kairo_mc_pool_is_cache_client(const struct kairo_mc_pool_config *cfg,
                              ovs_be32 ip)
{
    for (size_t i = 0; i < cfg->n_cache_clients; i++) {
        if ((ip & cfg->cache_clients[i].mask) == cfg->cache_clients[i].ip) {
            return true;
        }
    }
    return false;
}

/* Parses the boolean option 'key' with value 's' into '*valuep'.  Returns
 * NULL or a malloc()ed message. */
static char *
kairo_mc_pool_parse_bool(const char *key, const char *s, bool *valuep)
{
    if (!strcmp(s, "true")) {
        *valuep = true;
    } else if (!strcmp(s, "false")) {
        *valuep = false;
    } else {
        return xasprintf("%s: \"%s\" is not true or false", key, s);
    }
    return NULL;
}

/* Parses option 'key' with value 'value' into 'cfg'.  Returns NULL or a
 * malloc()ed message. */
static char *
kairo_mc_pool_parse_option(struct kairo_mc_pool_config *cfg,
                           const char *key, const char *value)
{
    unsigned long n;

    if (!strcmp(key, "backends")) {
        char *error = NULL;

        kairo_mc_pool_backends_free(cfg->backends, cfg->n_backends);
        cfg->backends = NULL;
        cfg->n_backends = 0;
        kairo_mc_pool_parse_backends(value, &cfg->backends, &cfg->n_backends,
                                     &error);
        return error;
    } else if (!strcmp(key, "hash")) {
        if (!kairo_mc_hash_from_string(value, &cfg->hash)) {
            struct ds s = DS_EMPTY_INITIALIZER;

            for (int i = 0; i < KAIRO_MC_N_HASHES; i++) {
                ds_put_format(&s, "%s%s", i ? ", " : "",
                              kairo_mc_hash_to_string(i));
            }
            char *error = xasprintf("hash: unknown hash \"%s\" (one of %s)",
                                    value, ds_cstr(&s));
            ds_destroy(&s);
            return error;
        }
    } else if (!strcmp(key, "distribution")) {
        if (!kairo_ketama_distribution_from_string(value,
                                                   &cfg->distribution)) {
            return xasprintf("distribution: unknown distribution \"%s\" "
                             "(ketama, modula, random or libmemcached)",
                             value);
        }
    } else if (!strcmp(key, "hash_tag")) {
        if (strlen(value) != 0 && strlen(value) != 2) {
            return xasprintf("hash_tag: \"%s\" is not empty or two "
                             "characters", value);
        }
        free(cfg->hash_tag);
        cfg->hash_tag = value[0] ? xstrdup(value) : NULL;
    } else if (!strcmp(key, "auto_eject")) {
        return kairo_mc_pool_parse_bool(key, value, &cfg->auto_eject);
    } else if (!strcmp(key, "timeout")) {
        if (!kairo_mc_pool_parse_uint(value, 0, KAIRO_MC_POOL_MAX_TIMEOUT,
                                      &n) || (n && n < 10)) {
            return xasprintf("timeout: bad time \"%s\" (0 for none, or 10 "
                             "to %d ms)", value, KAIRO_MC_POOL_MAX_TIMEOUT);
        }
        cfg->timeout = n;
    } else if (!strcmp(key, "server_failure_limit")) {
        if (!kairo_mc_pool_parse_uint(value, 1, 1000, &n)) {
            return xasprintf("server_failure_limit: bad count \"%s\" (1 to "
                             "1000)", value);
        }
        cfg->server_failure_limit = n;
    } else if (!strcmp(key, "server_retry_timeout")) {
        if (!kairo_mc_pool_parse_uint(value, 10, KAIRO_MC_POOL_MAX_TIMEOUT,
                                      &n)) {
            return xasprintf("server_retry_timeout: bad time \"%s\" (10 to "
                             "%d ms)", value, KAIRO_MC_POOL_MAX_TIMEOUT);
        }
        cfg->server_retry_timeout = n;
    } else if (!strcmp(key, "rewrite")) {
        if (!strcmp(value, "mac")) {
            cfg->rewrite = KAIRO_MC_REWRITE_MAC;
        } else if (!strcmp(value, "ip")) {
            cfg->rewrite = KAIRO_MC_REWRITE_IP;
        } else {
            return xasprintf("rewrite: \"%s\" is not mac or ip", value);
        }
    } else if (!strcmp(key, "bad-request")) {
        if (!strcmp(value, "pass")) {
            cfg->bad_request = KAIRO_MC_POLICY_PASS;
        } else if (!strcmp(value, "drop")) {
            cfg->bad_request = KAIRO_MC_POLICY_DROP;
        } else {
            return xasprintf("bad-request: \"%s\" is not pass or drop",
                             value);
        }
    } else if (!strcmp(key, "vip")) {
        if (!ip_parse(value, &cfg->vip) || !cfg->vip
            || ip_is_multicast(cfg->vip)) {
            return xasprintf("vip: bad unicast IPv4 address \"%s\"", value);
        }
        cfg->has_vip = true;
    } else if (!strcmp(key, "vport")) {
        if (!kairo_mc_pool_parse_uint(value, 1, UINT16_MAX, &n)) {
            return xasprintf("vport: bad UDP port \"%s\" (1 to 65535)",
                             value);
        }
        cfg->vport = n;
    } else if (!strcmp(key, "vmac")) {
        char *problem = kairo_mc_pool_parse_mac(value, &cfg->vmac);

        if (problem) {
            char *error = xasprintf("vmac: %s", problem);
            free(problem);
            return error;
        }
        cfg->has_vmac = true;
    } else if (!strcmp(key, "n_rxq")) {
        if (!kairo_mc_pool_parse_uint(value, 1, KAIRO_MC_POOL_MAX_RXQ, &n)) {
            return xasprintf("n_rxq: bad queue count \"%s\" (1 to %d)",
                             value, KAIRO_MC_POOL_MAX_RXQ);
        }
        cfg->n_rxq = n;
    } else if (!strcmp(key, "queue_len")) {
        if (!kairo_mc_pool_parse_uint(value, 1, KAIRO_MC_POOL_MAX_QUEUE_LEN,
                                      &n)) {
            return xasprintf("queue_len: bad length \"%s\" (1 to %d)",
                             value, KAIRO_MC_POOL_MAX_QUEUE_LEN);
        }
        cfg->queue_len = n;
    } else if (!strcmp(key, "cache_size")) {
        uint64_t max = UINT64_C(64) << 30;

        if (!kairo_mc_pool_parse_size(value, &cfg->cache_size)
            || (cfg->cache_size
                && (cfg->cache_size < 4096 || cfg->cache_size > max))) {
            return xasprintf("cache_size: bad size \"%s\" (0, or 4K to 64G)",
                             value);
        }
    } else if (!strcmp(key, "cache_clients")) {
        return kairo_mc_pool_parse_clients(cfg, value);
    } else if (!strcmp(key, "cache_threshold")) {
        if (!kairo_mc_pool_parse_uint(value, 1, 255, &n)) {
            return xasprintf("cache_threshold: bad threshold \"%s\" (1 to "
                             "255)", value);
        }
        cfg->cache_threshold = n;
    } else if (!strcmp(key, "cache_max_ttl")) {
        if (!kairo_mc_pool_parse_uint(value, 1, 86400, &n)) {
            return xasprintf("cache_max_ttl: bad time \"%s\" (1 to 86400 "
                             "seconds)", value);
        }
        cfg->cache_max_ttl = n;
    } else if (!strcmp(key, "cache_settle")) {
        if (!kairo_mc_pool_parse_uint(value, 0, 10000, &n)) {
            return xasprintf("cache_settle: bad time \"%s\" (0 to 10000 "
                             "ms)", value);
        }
        cfg->cache_settle = n;
    } else if (!strcmp(key, "cache_max_reply")) {
        if (!kairo_mc_pool_parse_uint(value, 64, KAIRO_MC_POOL_MAX_REPLY,
                                      &n)) {
            return xasprintf("cache_max_reply: bad size \"%s\" (64 to "
                             "%d bytes)", value, KAIRO_MC_POOL_MAX_REPLY);
        }
        cfg->cache_max_reply = n;
    } else {
        struct ds s = DS_EMPTY_INITIALIZER;

        for (size_t i = 0; i < ARRAY_SIZE(kairo_mc_pool_options); i++) {
            ds_put_format(&s, "%s%s", i ? ", " : "",
                          kairo_mc_pool_options[i]);
        }
        char *error = xasprintf("unknown option \"%s\" (known: %s)", key,
                                ds_cstr(&s));
        ds_destroy(&s);
        return error;
    }
    return NULL;
}

int
kairo_mc_pool_parse(const struct smap *options,
                    struct kairo_mc_pool_config *cfg, char **errp)
{
    const struct smap_node **nodes;
    char *error = NULL;

    kairo_mc_pool_config_init(cfg);

    /* Sorted, so that the first error reported does not depend on hash
     * order. */
    nodes = smap_sort(options);
    for (size_t i = 0; i < smap_count(options) && !error; i++) {
        error = kairo_mc_pool_parse_option(cfg, nodes[i]->key,
                                           nodes[i]->value);
    }
    free(nodes);

    if (!error && cfg->rewrite == KAIRO_MC_REWRITE_IP) {
        if (!cfg->has_vip) {
            error = xstrdup("rewrite=ip needs options:vip");
        } else if (!cfg->has_vmac) {
            error = xstrdup("rewrite=ip needs options:vmac");
        }
    }
    if (!error && cfg->cache_size && !cfg->n_cache_clients) {
        error = xstrdup("cache_size needs options:cache_clients (the "
                        "subnets whose gets the cache may answer)");
    }
    if (!error && cfg->n_backends) {
        /* Let the ring builder check what it checks (name lengths, ...), so
         * that a config accepted here always builds. */
        struct kairo_ketama_server *servers;
        struct kairo_ketama_config kcfg;
        struct kairo_ketama *ketama;

        servers = xmalloc(cfg->n_backends * sizeof *servers);
        kairo_mc_pool_to_ketama(cfg, NULL, servers, &kcfg);
        if (kairo_ketama_create(&kcfg, servers, cfg->n_backends, &ketama)) {
            error = xstrdup("backends: the ring cannot be built from this "
                            "configuration");
        } else {
            kairo_ketama_destroy(ketama);
        }
        free(servers);
    }

    if (error) {
        kairo_mc_pool_config_destroy(cfg);
        kairo_mc_pool_config_init(cfg);
        *errp = error;
        return EINVAL;
    }
    return 0;
}

void
kairo_mc_pool_format_backend(const struct kairo_mc_backend *b,
                             struct ds *out)
{
    ds_put_format(out, IP_FMT":%"PRIu16"="ETH_ADDR_FMT, IP_ARGS(b->ip),
                  b->port, ETH_ADDR_ARGS(b->mac));
    if (b->weight != 1) {
        ds_put_format(out, "*%"PRIu32, b->weight);
    }
    if (b->name) {
        ds_put_format(out, ";name=%s", b->name);
    }
}

void
kairo_mc_pool_to_ketama(const struct kairo_mc_pool_config *cfg,
                        const bool *alive,
                        struct kairo_ketama_server *servers,
                        struct kairo_ketama_config *kcfg)
{
    for (size_t i = 0; i < cfg->n_backends; i++) {
        const struct kairo_mc_backend *b = &cfg->backends[i];

        servers[i].name = b->name;
        servers[i].host = b->host;
        servers[i].port = b->port;
        servers[i].weight = b->weight;
        servers[i].alive = alive ? alive[i] : true;
    }
    kcfg->distribution = cfg->distribution;
    kcfg->hash = cfg->hash;
    kcfg->hash_tag = cfg->hash_tag;
    kcfg->auto_eject_hosts = cfg->auto_eject;
}

int
kairo_mc_pool_find_backend(const struct kairo_mc_pool_config *cfg,
                           const char *id)
{
    int found = -1;

    for (size_t i = 0; i < cfg->n_backends; i++) {
        const struct kairo_mc_backend *b = &cfg->backends[i];

        if (b->name && !strcmp(b->name, id)) {
            return i;
        }
    }
    for (size_t i = 0; i < cfg->n_backends; i++) {
        const struct kairo_mc_backend *b = &cfg->backends[i];
        char *ip_port = xasprintf("%s:%"PRIu16, b->host, b->port);
        bool match = !strcmp(ip_port, id);

        free(ip_port);
        if (match) {
            return i;
        }
    }
    for (size_t i = 0; i < cfg->n_backends; i++) {
        if (!strcmp(cfg->backends[i].host, id)) {
            if (found >= 0) {
                return -1;
            }
            found = i;
        }
    }
    return found;
}

const char *
kairo_mc_rewrite_to_string(enum kairo_mc_rewrite rewrite)
{
    return rewrite == KAIRO_MC_REWRITE_IP ? "ip" : "mac";
}

const char *
kairo_mc_policy_to_string(enum kairo_mc_policy policy)
{
    return policy == KAIRO_MC_POLICY_DROP ? "drop" : "pass";
}
