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
    struct kdd_ref *refs;       /* The dependencies on this key. */
};

/* One owner's dependency, from its key's side. */
struct kdd_ref {
    struct kdd_owner *owner;
    uint32_t slot;              /* Its index in 'owner->deps'. */
};

/* One owner's dependency, from the owner's side. */
struct kdd_owner_dep {
    struct kdd_key *key;
    uint32_t pos;               /* Its index in 'key->refs'. */
    uint64_t data[2];           /* The payload. */
};

/* An owner and its dependencies, in one allocation. */
struct kdd_owner {
    struct hmap_node node;      /* In 'owners', by hash of 'owner'. */
    const void *owner;
    size_t n;                   /* Elements in 'deps'. */
    struct kdd_owner_dep deps[];
};

struct kairo_delta_deps {
    struct hmap keys;           /* Contains "struct kdd_key"s. */
    struct hmap owners;         /* Contains "struct kdd_owner"s. */
    size_t n_deps;              /* Dependencies over all owners. */
    size_t memory;              /* Bytes allocated, but bucket arrays. */
};

static uint32_t
kdd_key_hash(const void *space, uint64_t key)
{
    return hash_uint64_basis(key, hash_pointer(space, 0));
}

struct kairo_delta_deps *
kairo_delta_deps_create(void)
{
    struct kairo_delta_deps *deps = xzalloc(sizeof *deps);

    hmap_init(&deps->keys);
    hmap_init(&deps->owners);
    deps->memory = sizeof *deps;
    return deps;
}

void
kairo_delta_deps_destroy(struct kairo_delta_deps *deps)
{
    if (deps) {
        struct kdd_owner *o;
        struct kdd_key *k;

        HMAP_FOR_EACH_POP (o, node, &deps->owners) {
            free(o);
        }
        HMAP_FOR_EACH_POP (k, node, &deps->keys) {
            free(k->refs);
            free(k);
        }
        hmap_destroy(&deps->owners);
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

static struct kdd_owner *
kdd_owner_find(const struct kairo_delta_deps *deps, const void *owner)
{
    struct kdd_owner *o;

    HMAP_FOR_EACH_WITH_HASH (o, node, hash_pointer(owner, 0), &deps->owners) {
        if (o->owner == owner) {
            return o;
        }
    }
    return NULL;
}

/* Drops dependency 'slot' of 'o' from its key's side, freeing the key if
 * nothing depends on it any more. */
static void
kdd_unref(struct kairo_delta_deps *deps, struct kdd_owner *o, size_t slot)
{
    struct kdd_owner_dep *d = &o->deps[slot];
    struct kdd_key *k = d->key;
    struct kdd_ref *last = &k->refs[--k->n];

    k->refs[d->pos] = *last;
    last->owner->deps[last->slot].pos = d->pos;
    if (!k->n) {
        hmap_remove(&deps->keys, &k->node);
        deps->memory -= sizeof *k + k->allocated * sizeof *k->refs;
        free(k->refs);
        free(k);
    }
}

bool
kairo_delta_deps_remove(struct kairo_delta_deps *deps, const void *owner)
{
    struct kdd_owner *o = kdd_owner_find(deps, owner);

    if (!o) {
        return false;
    }
    for (size_t i = 0; i < o->n; i++) {
        kdd_unref(deps, o, i);
    }
    deps->n_deps -= o->n;
    deps->memory -= sizeof *o + o->n * sizeof *o->deps;
    hmap_remove(&deps->owners, &o->node);
    free(o);
    return true;
}

void
kairo_delta_deps_set(struct kairo_delta_deps *deps, const void *owner,
                     const struct kairo_delta_dep in[], size_t n)
{
    kairo_delta_deps_remove(deps, owner);
    if (!n) {
        return;
    }

    struct kdd_owner *o = xmalloc(sizeof *o + n * sizeof *o->deps);
    o->owner = owner;
    o->n = n;
    hmap_insert(&deps->owners, &o->node, hash_pointer(owner, 0));
    deps->memory += sizeof *o + n * sizeof *o->deps;
    deps->n_deps += n;

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
            uint32_t new = k->allocated ? 2 * k->allocated : 1;

            k->refs = xrealloc(k->refs, new * sizeof *k->refs);
            deps->memory += (new - k->allocated) * sizeof *k->refs;
            k->allocated = new;
        }
        o->deps[i].key = k;
        o->deps[i].pos = k->n;
        memcpy(o->deps[i].data, in[i].data, sizeof o->deps[i].data);
        k->refs[k->n++] = (struct kdd_ref) { .owner = o, .slot = i };
    }
}

/* Reports every dependency on 'k' through 'cb'. */
static size_t
kdd_report(const struct kdd_key *k, kairo_delta_deps_cb *cb, void *aux)
{
    for (uint32_t i = 0; i < k->n; i++) {
        const struct kdd_owner *o = k->refs[i].owner;
        const struct kdd_owner_dep *d = &o->deps[k->refs[i].slot];
        struct kairo_delta_dep dep = {
            .space = k->space,
            .key = k->key,
            .data = { d->data[0], d->data[1] },
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
    return hmap_count(&deps->owners);
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
            + (deps->keys.mask + 1) * sizeof *deps->keys.buckets
            + (deps->owners.mask + 1) * sizeof *deps->owners.buckets);
}
