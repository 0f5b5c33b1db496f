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
#include "openvswitch/hmap.h"
#include "openvswitch/util.h"
#include "util.h"

/* A key that some owner depends on, with its dependents. */
struct kdd_key {
    struct hmap_node node;      /* In 'keys', by kdd_key_hash(). */
    const void *space;
    uint64_t key;
    uint32_t n;                 /* Dependents in 'refs'. */
    uint32_t allocated;         /* Capacity of 'refs'. */
    struct kdd_owner_dep **refs;  /* The dependencies on this key. */
};

/* One owner's dependency. */
struct kdd_owner_dep {
    struct kdd_key *key;
    uint32_t pos;               /* Its index in 'key->refs'. */
    uint32_t slot;              /* Its index in its owner's 'deps'. */
};

/* An owner and its dependencies, in one allocation: 'n' dependencies, then,
 * if 'has_data', their payloads, two words each. */
struct kairo_delta_deps_owner {
    const void *owner;
    uint32_t n;                 /* Elements in 'deps'. */
    bool has_data;              /* Some payload is nonzero. */
    struct kdd_owner_dep deps[];
};

struct kairo_delta_deps {
    struct hmap keys;           /* Contains "struct kdd_key"s. */
    size_t n_owners;            /* Records of owners. */
    size_t n_deps;              /* Dependencies over all owners. */
    size_t memory;              /* Bytes allocated, but bucket arrays. */
};

/* A dependency's payload. */
typedef uint64_t kdd_data[2];

static uint32_t
kdd_key_hash(const void *space, uint64_t key)
{
    return hash_uint64_basis(key, hash_pointer(space, 0));
}

/* Returns the bytes of an owner's record of 'n' dependencies, with their
 * payloads if 'has_data'. */
static size_t
kdd_owner_size(size_t n, bool has_data)
{
    return (sizeof(struct kairo_delta_deps_owner)
            + n * (sizeof(struct kdd_owner_dep)
                   + (has_data ? sizeof(kdd_data) : 0)));
}

/* Returns the owner of dependency 'd'. */
static struct kairo_delta_deps_owner *
kdd_dep_owner(const struct kdd_owner_dep *d)
{
    return CONTAINER_OF(d - d->slot, struct kairo_delta_deps_owner, deps);
}

/* Returns the payload of 'o''s dependency 'slot', or NULL if all of 'o''s
 * payloads are zero. */
static const uint64_t *
kdd_dep_data(const struct kairo_delta_deps_owner *o, size_t slot)
{
    const kdd_data *data = ALIGNED_CAST(const kdd_data *, &o->deps[o->n]);

    return o->has_data ? data[slot] : NULL;
}

struct kairo_delta_deps *
kairo_delta_deps_create(void)
{
    struct kairo_delta_deps *deps = xzalloc(sizeof *deps);

    hmap_init(&deps->keys);
    deps->memory = sizeof *deps;
    return deps;
}

/* Frees the set.  The caller frees the owners' records it still holds
 * first, with kairo_delta_deps_remove(). */
void
kairo_delta_deps_destroy(struct kairo_delta_deps *deps)
{
    if (deps) {
        struct kdd_key *k;

        ovs_assert(!deps->n_owners);
        HMAP_FOR_EACH_POP (k, node, &deps->keys) {
            free(k->refs);
            free(k);
        }
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

/* Gives 'k''s 'refs' room for half as many again as it holds, and one. */
static void
kdd_key_resize(struct kairo_delta_deps *deps, struct kdd_key *k)
{
    uint32_t allocated = k->n + k->n / 2 + 1;

    k->refs = xrealloc(k->refs, allocated * sizeof *k->refs);
    deps->memory += allocated * sizeof *k->refs;
    deps->memory -= k->allocated * sizeof *k->refs;
    k->allocated = allocated;
}

/* Drops dependency 'd' from its key's side, freeing the key if nothing
 * depends on it any more. */
static void
kdd_unref(struct kairo_delta_deps *deps, struct kdd_owner_dep *d)
{
    struct kdd_key *k = d->key;
    struct kdd_owner_dep *last = k->refs[--k->n];

    k->refs[d->pos] = last;
    last->pos = d->pos;
    if (!k->n) {
        hmap_remove(&deps->keys, &k->node);
        deps->memory -= sizeof *k + k->allocated * sizeof *k->refs;
        free(k->refs);
        free(k);
        if (deps->keys.mask
            && hmap_count(&deps->keys) <= deps->keys.mask / 8) {
            hmap_shrink(&deps->keys);
        }
    } else if (k->allocated > 16 && k->n < k->allocated / 2) {
        kdd_key_resize(deps, k);
    }
}

bool
kairo_delta_deps_remove(struct kairo_delta_deps *deps,
                        struct kairo_delta_deps_owner **record)
{
    struct kairo_delta_deps_owner *o = *record;

    if (!o) {
        return false;
    }
    for (size_t i = 0; i < o->n; i++) {
        kdd_unref(deps, &o->deps[i]);
    }
    deps->n_deps -= o->n;
    deps->n_owners--;
    deps->memory -= kdd_owner_size(o->n, o->has_data);
    free(o);
    *record = NULL;
    return true;
}

void
kairo_delta_deps_set(struct kairo_delta_deps *deps,
                     struct kairo_delta_deps_owner **record,
                     const void *owner, const struct kairo_delta_dep in[],
                     size_t n)
{
    kairo_delta_deps_remove(deps, record);
    if (!n) {
        return;
    }

    bool has_data = false;
    for (size_t i = 0; i < n && !has_data; i++) {
        has_data = in[i].data[0] || in[i].data[1];
    }

    struct kairo_delta_deps_owner *o = xmalloc(kdd_owner_size(n, has_data));
    o->owner = owner;
    o->n = n;
    o->has_data = has_data;
    deps->memory += kdd_owner_size(n, has_data);
    deps->n_deps += n;
    deps->n_owners++;

    kdd_data *data = ALIGNED_CAST(kdd_data *, &o->deps[n]);
    for (size_t i = 0; i < n; i++) {
        struct kdd_key *k = kdd_key_find(deps, in[i].space, in[i].key);

        if (!k) {
            k = xzalloc(sizeof *k);
            k->space = in[i].space;
            k->key = in[i].key;
            hmap_insert(&deps->keys, &k->node,
                        kdd_key_hash(in[i].space, in[i].key));
            deps->memory += sizeof *k;
        }
        if (k->n >= k->allocated) {
            kdd_key_resize(deps, k);
        }
        o->deps[i] = (struct kdd_owner_dep) {
            .key = k, .pos = k->n, .slot = i,
        };
        k->refs[k->n++] = &o->deps[i];
        if (has_data) {
            memcpy(data[i], in[i].data, sizeof data[i]);
        }
    }
    *record = o;
}

/* Reports every dependency on 'k' through 'cb'. */
static size_t
kdd_report(const struct kdd_key *k, kairo_delta_deps_cb *cb, void *aux)
{
    for (uint32_t i = 0; i < k->n; i++) {
        const struct kdd_owner_dep *d = k->refs[i];
        const struct kairo_delta_deps_owner *o = kdd_dep_owner(d);
        const uint64_t *data = kdd_dep_data(o, d->slot);
        struct kairo_delta_dep dep = {
            .space = k->space,
            .key = k->key,
            .data = { data ? data[0] : 0, data ? data[1] : 0 },
        };

        cb(o->owner, &dep, aux);
    }
    return k->n;
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
    return deps->memory + (deps->keys.mask + 1) * sizeof *deps->keys.buckets;
}
