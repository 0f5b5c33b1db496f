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
#include "kairo-delta-deps.h"

#include <string.h>

#include "hash.h"
#include "kairo-delta-growth.h"
#include "openvswitch/hmap.h"
#include "openvswitch/util.h"
#include "util.h"

/* A key that some owner depends on, with the records that depend on it. */
struct kdd_key {
    struct hmap_node node;      /* In 'keys', by kdd_key_hash(). */
    const void *space;
    uint64_t key;
    uint32_t n;                 /* Dependents in 'refs'. */
    uint32_t allocated;         /* Capacity of 'refs'. */
    struct kdd_set_dep **refs;  /* The records' dependencies on it. */
};

/* One dependency of a record. */
struct kdd_set_dep {
    struct kdd_key *key;
    uint32_t pos;               /* Its index in 'key->refs'. */
    uint32_t slot;              /* Its index in its record's 'deps'. */
};

/* The dependencies that one or more owners have, exactly: 'n' of them, by
 * ascending key address, then, if 'has_data', their payloads, two words
 * each, in one allocation. */
struct kdd_set {
    struct hmap_node node;      /* In 'sets', by kdd_set_hash(). */
    void **owners;              /* The owners that have it. */
    uint32_t n_owners;          /* Elements in 'owners'. */
    uint32_t allocated_owners;  /* Capacity of 'owners'. */
    uint32_t n;                 /* Elements in 'deps'. */
    bool has_data;              /* Some payload is nonzero. */
    struct kdd_set_dep deps[];
};

struct kairo_delta_deps {
    struct hmap keys;           /* Contains "struct kdd_key"s. */
    struct hmap sets;           /* Contains "struct kdd_set"s. */
    size_t handle_ofs;          /* Offset of an owner's handle. */
    size_t n_owners;            /* Owners with dependencies. */
    size_t n_deps;              /* Dependencies over all owners. */
    size_t memory;              /* Bytes allocated, but bucket arrays. */
};

/* A dependency's payload. */
typedef uint64_t kdd_data[2];

/* One dependency of kairo_delta_deps_set()'s input, its key found. */
struct kdd_in {
    struct kdd_key *key;
    const uint64_t *data;
};

static uint32_t
kdd_key_hash(const void *space, uint64_t key)
{
    return hash_uint64_basis(key, hash_pointer(space, 0));
}

/* Returns the bytes of a record of 'n' dependencies, with their payloads
 * if 'has_data'. */
static size_t
kdd_set_size(size_t n, bool has_data)
{
    return (sizeof(struct kdd_set)
            + n * (sizeof(struct kdd_set_dep)
                   + (has_data ? sizeof(kdd_data) : 0)));
}

/* Returns the payloads of 's', meaningful if 's->has_data'. */
static const kdd_data *
kdd_set_data(const struct kdd_set *s)
{
    return ALIGNED_CAST(const kdd_data *, &s->deps[s->n]);
}

/* Returns the record of dependency 'd'. */
static struct kdd_set *
kdd_dep_set(const struct kdd_set_dep *d)
{
    return CONTAINER_OF(d - d->slot, struct kdd_set, deps);
}

static struct kairo_delta_deps_handle *
kdd_handle(const struct kairo_delta_deps *deps, void *owner)
{
    return ALIGNED_CAST(struct kairo_delta_deps_handle *,
                        (char *) owner + deps->handle_ofs);
}

struct kairo_delta_deps *
kairo_delta_deps_create(size_t handle_ofs)
{
    struct kairo_delta_deps *deps = xzalloc(sizeof *deps);

    hmap_init(&deps->keys);
    hmap_init(&deps->sets);
    deps->handle_ofs = handle_ofs;
    deps->memory = sizeof *deps;
    return deps;
}

void
kairo_delta_deps_destroy(struct kairo_delta_deps *deps)
{
    if (deps) {
        ovs_assert(!deps->n_owners);
        ovs_assert(hmap_is_empty(&deps->keys));
        hmap_destroy(&deps->sets);
        hmap_destroy(&deps->keys);
        free(deps);
    }
}

static struct kdd_key *
kdd_key_find(const struct kairo_delta_deps *deps, const void *space,
             uint64_t key)
{
    struct kdd_key *k;

    HMAP_FOR_EACH_WITH_HASH (k, node, kdd_key_hash(space, key),
                             &deps->keys) {
        if (k->space == space && k->key == key) {
            return k;
        }
    }
    return NULL;
}

/* Returns the key ('space', 'key'), created without dependents if there was
 * none. */
static struct kdd_key *
kdd_key_get(struct kairo_delta_deps *deps, const void *space, uint64_t key)
{
    struct kdd_key *k = kdd_key_find(deps, space, key);

    if (!k) {
        k = xzalloc(sizeof *k);
        k->space = space;
        k->key = key;
        hmap_insert(&deps->keys, &k->node, kdd_key_hash(space, key));
        deps->memory += sizeof *k;
    }
    return k;
}

/* Returns 'array', of '*allocated' elements of 'elem_size' bytes, given the
 * capacity for the 'n' it holds (kairo_delta_capacity_for()), which it
 * stores in '*allocated'. */
static void *
kdd_array_resize(struct kairo_delta_deps *deps, void *array,
                 uint32_t *allocated, uint32_t n, size_t elem_size)
{
    uint32_t new_allocated = kairo_delta_capacity_for(n);

    deps->memory += new_allocated * elem_size;
    deps->memory -= *allocated * elem_size;
    *allocated = new_allocated;
    return xrealloc(array, new_allocated * elem_size);
}

static void
kdd_key_resize(struct kairo_delta_deps *deps, struct kdd_key *k)
{
    k->refs = kdd_array_resize(deps, k->refs, &k->allocated, k->n,
                               sizeof *k->refs);
}

/* Drops dependency 'd' from its key's side, freeing the key if nothing
 * depends on it any more. */
static void
kdd_unref(struct kairo_delta_deps *deps, struct kdd_set_dep *d)
{
    struct kdd_key *k = d->key;
    struct kdd_set_dep *last = k->refs[--k->n];

    k->refs[d->pos] = last;
    last->pos = d->pos;
    if (!k->n) {
        hmap_remove(&deps->keys, &k->node);
        deps->memory -= sizeof *k + k->allocated * sizeof *k->refs;
        free(k->refs);
        free(k);
        kairo_delta_hmap_maybe_shrink(&deps->keys);
    } else if (kairo_delta_capacity_is_slack(k->n, k->allocated)) {
        kdd_key_resize(deps, k);
    }
}

/* Orders 'struct kdd_in's by key address. */
static int
kdd_in_cmp(const void *a_, const void *b_)
{
    const struct kdd_in *a = a_, *b = b_;
    uintptr_t a_key = (uintptr_t) a->key, b_key = (uintptr_t) b->key;

    return a_key < b_key ? -1 : a_key > b_key;
}

/* Hashes the 'n' dependencies in 'in', with their payloads if
 * 'has_data'. */
static uint32_t
kdd_set_hash(const struct kdd_in in[], size_t n, bool has_data)
{
    uint32_t hash = n;

    for (size_t i = 0; i < n; i++) {
        hash = hash_pointer(in[i].key, hash);
        if (has_data) {
            hash = hash_uint64_basis(in[i].data[0], hash);
            hash = hash_uint64_basis(in[i].data[1], hash);
        }
    }
    return hash;
}

/* Returns true if 's' is the 'n' dependencies in 'in', with their payloads
 * if 'has_data'. */
static bool
kdd_set_equals(const struct kdd_set *s, const struct kdd_in in[], size_t n,
               bool has_data)
{
    const kdd_data *data = kdd_set_data(s);

    if (s->n != n || s->has_data != has_data) {
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        if (s->deps[i].key != in[i].key
            || (has_data && memcmp(data[i], in[i].data, sizeof data[i]))) {
            return false;
        }
    }
    return true;
}

/* Returns the record of the 'n' dependencies in 'in', sorted by key, with
 * their payloads if 'has_data', creating it without owners if there was
 * none. */
static struct kdd_set *
kdd_set_get(struct kairo_delta_deps *deps, const struct kdd_in in[],
            size_t n, bool has_data)
{
    uint32_t hash = kdd_set_hash(in, n, has_data);
    struct kdd_set *s;

    HMAP_FOR_EACH_WITH_HASH (s, node, hash, &deps->sets) {
        if (kdd_set_equals(s, in, n, has_data)) {
            return s;
        }
    }

    s = xzalloc(kdd_set_size(n, has_data));
    s->n = n;
    s->has_data = has_data;
    kdd_data *data = CONST_CAST(kdd_data *, kdd_set_data(s));
    for (size_t i = 0; i < n; i++) {
        struct kdd_key *k = in[i].key;

        if (k->n >= k->allocated) {
            kdd_key_resize(deps, k);
        }
        s->deps[i] = (struct kdd_set_dep) {
            .key = k, .pos = k->n, .slot = i,
        };
        k->refs[k->n++] = &s->deps[i];
        if (has_data) {
            memcpy(data[i], in[i].data, sizeof data[i]);
        }
    }
    hmap_insert(&deps->sets, &s->node, hash);
    deps->memory += kdd_set_size(n, has_data);
    return s;
}

/* Frees record 's', which has no owners. */
static void
kdd_set_destroy(struct kairo_delta_deps *deps, struct kdd_set *s)
{
    for (size_t i = 0; i < s->n; i++) {
        kdd_unref(deps, &s->deps[i]);
    }
    hmap_remove(&deps->sets, &s->node);
    kairo_delta_hmap_maybe_shrink(&deps->sets);
    deps->memory -= (kdd_set_size(s->n, s->has_data)
                     + s->allocated_owners * sizeof *s->owners);
    free(s->owners);
    free(s);
}

static void
kdd_set_resize(struct kairo_delta_deps *deps, struct kdd_set *s)
{
    s->owners = kdd_array_resize(deps, s->owners, &s->allocated_owners,
                                 s->n_owners, sizeof *s->owners);
}

bool
kairo_delta_deps_remove(struct kairo_delta_deps *deps, void *owner)
{
    struct kairo_delta_deps_handle *h = kdd_handle(deps, owner);
    struct kdd_set *s = h->set;

    if (!s) {
        return false;
    }

    void *last = s->owners[--s->n_owners];
    s->owners[h->pos] = last;
    kdd_handle(deps, last)->pos = h->pos;
    deps->n_deps -= s->n;
    deps->n_owners--;
    *h = (struct kairo_delta_deps_handle) { .set = NULL };

    if (!s->n_owners) {
        kdd_set_destroy(deps, s);
    } else if (kairo_delta_capacity_is_slack(s->n_owners,
                                             s->allocated_owners)) {
        kdd_set_resize(deps, s);
    }
    return true;
}

void
kairo_delta_deps_set(struct kairo_delta_deps *deps, void *owner,
                     const struct kairo_delta_dep in[], size_t n)
{
    /* The new record first, so that the keys it shares with the old one are
     * not freed and made again. */
    struct kdd_set *s = NULL;
    if (n) {
        struct kdd_in *sorted = xmalloc(n * sizeof *sorted);
        bool has_data = false;

        for (size_t i = 0; i < n; i++) {
            sorted[i] = (struct kdd_in) {
                .key = kdd_key_get(deps, in[i].space, in[i].key),
                .data = in[i].data,
            };
            has_data = has_data || in[i].data[0] || in[i].data[1];
        }
        qsort(sorted, n, sizeof *sorted, kdd_in_cmp);
        s = kdd_set_get(deps, sorted, n, has_data);
        free(sorted);
    }

    struct kairo_delta_deps_handle *h = kdd_handle(deps, owner);
    if (h->set == s) {
        return;                 /* The same dependencies. */
    }
    kairo_delta_deps_remove(deps, owner);
    if (s) {
        if (s->n_owners >= s->allocated_owners) {
            kdd_set_resize(deps, s);
        }
        *h = (struct kairo_delta_deps_handle) {
            .set = s, .pos = s->n_owners,
        };
        s->owners[s->n_owners++] = owner;
        deps->n_deps += s->n;
        deps->n_owners++;
    }
}

/* Reports every dependency on 'k' through 'cb'. */
static size_t
kdd_report(const struct kdd_key *k, kairo_delta_deps_cb *cb, void *aux)
{
    size_t n = 0;

    for (uint32_t i = 0; i < k->n; i++) {
        const struct kdd_set_dep *d = k->refs[i];
        const struct kdd_set *s = kdd_dep_set(d);
        const kdd_data *data = kdd_set_data(s);
        struct kairo_delta_dep dep = {
            .space = k->space,
            .key = k->key,
            .data = { s->has_data ? data[d->slot][0] : 0,
                      s->has_data ? data[d->slot][1] : 0 },
        };

        for (uint32_t j = 0; j < s->n_owners; j++) {
            cb(s->owners[j], &dep, aux);
        }
        n += s->n_owners;
    }
    return n;
}

size_t
kairo_delta_deps_query(const struct kairo_delta_deps *deps,
                       const void *space, uint64_t key,
                       kairo_delta_deps_cb *cb, void *aux)
{
    const struct kdd_key *k = kdd_key_find(deps, space, key);

    return k ? kdd_report(k, cb, aux) : 0;
}

size_t
kairo_delta_deps_query_space(const struct kairo_delta_deps *deps,
                             const void *space, kairo_delta_deps_cb *cb,
                             void *aux)
{
    const struct kdd_key *k;
    size_t n = 0;

    HMAP_FOR_EACH (k, node, &deps->keys) {
        if (k->space == space) {
            n += kdd_report(k, cb, aux);
        }
    }
    return n;
}

size_t
kairo_delta_deps_n_owners(const struct kairo_delta_deps *deps)
{
    return deps->n_owners;
}

size_t
kairo_delta_deps_n_deps(const struct kairo_delta_deps *deps)
{
    return deps->n_deps;
}

size_t
kairo_delta_deps_memory(const struct kairo_delta_deps *deps)
{
    return (deps->memory
            + kairo_delta_hmap_bytes(&deps->keys)
            + kairo_delta_hmap_bytes(&deps->sets));
}
