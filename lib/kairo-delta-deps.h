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

#ifndef KAIRO_DELTA_DEPS_H
#define KAIRO_DELTA_DEPS_H 1

/* Dependency sets: which megaflows depend on which named objects.
 *
 * The delta index (kairo-delta-index.h) maps flow-table changes to
 * megaflows by their lookups.  What a translation consulted besides the
 * flow tables, such as the groups it looked up, is named by a key and
 * recorded here: each owner (a megaflow) depends on a set of keys, each
 * with a few words of payload that say how (which bucket it took, say).  A
 * query for one key reports every owner that depends on it, with its
 * payload, and the caller decides from the payload whether the change at
 * hand affects it.
 *
 * A key is a 'space' pointer (for example the bridge) and a 64-bit value
 * (for example the group id).  The module never dereferences 'space'.  An
 * owner is a caller's object with a struct kairo_delta_deps_handle at a
 * fixed offset, which only this module writes.
 *
 * Owners that have exactly the same dependencies, payloads included, share
 * one record of them: the megaflows of one path through the switch depend
 * on the same ports.  A key refers to the records that depend on it, and a
 * record to its owners, so that an owner costs one pointer in its record
 * and its handle.
 *
 * Cost.  kairo_delta_deps_set() is O(the owner's keys, log of them, and
 * their payloads), _remove() O(1) unless it frees the last owner's record,
 * O(its keys); a query is O(the owners of the key).  Memory, which
 * kairo_delta_deps_memory() counts: about 10 bytes per owner besides its
 * handle, and per distinct set of dependencies 56 bytes, 24 per dependency
 * and 16 more if some payload is nonzero (a port's is not); 48 per key.
 *
 * Thread-safety.  None: a set belongs to one thread (Kairo's main thread).
 * No function blocks.  A query's callback must not modify the set. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One dependency: on key ('space', 'key'), with payload 'data'. */
struct kairo_delta_dep {
    const void *space;
    uint64_t key;
    uint64_t data[2];
};

/* A query callback: 'owner' depends on the key queried, as 'dep' says.
 * 'aux' is the query's.  It must not modify the set. */
typedef void kairo_delta_deps_cb(const void *owner,
                                 const struct kairo_delta_dep *dep,
                                 void *aux);

/* Where an owner keeps its dependencies: zero-initialize it (no
 * dependencies); only this module writes it. */
struct kairo_delta_deps_handle {
    struct kdd_set *set;        /* Its record, or NULL. */
    uint32_t pos;               /* Its index in the record's owners. */
};

/* Creates a set whose owners keep their struct kairo_delta_deps_handle at
 * byte offset 'handle_ofs'. */
struct kairo_delta_deps *kairo_delta_deps_create(size_t handle_ofs);

/* Frees the set.  Its owners' handles must all be empty first. */
void kairo_delta_deps_destroy(struct kairo_delta_deps *);

/* Makes 'owner' depend on exactly the 'n' dependencies in 'deps' (each key
 * at most once, in any order; 'n' may be 0), replacing whatever it depended
 * on. */
void kairo_delta_deps_set(struct kairo_delta_deps *, void *owner,
                          const struct kairo_delta_dep deps[], size_t n);

/* Forgets 'owner''s dependencies.  Returns false if it had none. */
bool kairo_delta_deps_remove(struct kairo_delta_deps *, void *owner);

/* Calls 'cb' once for each owner that depends on ('space', 'key'), in no
 * particular order, and returns how many. */
size_t kairo_delta_deps_query(const struct kairo_delta_deps *,
                              const void *space, uint64_t key,
                              kairo_delta_deps_cb *cb, void *aux);

/* Calls 'cb' once for each dependency of every owner on any key of
 * 'space', and returns how many. */
size_t kairo_delta_deps_query_space(const struct kairo_delta_deps *,
                                    const void *space,
                                    kairo_delta_deps_cb *cb, void *aux);

/* Returns the number of owners with dependencies, and of dependencies over
 * all owners. */
size_t kairo_delta_deps_n_owners(const struct kairo_delta_deps *);
size_t kairo_delta_deps_n_deps(const struct kairo_delta_deps *);

/* Returns the bytes the set allocated, bucket arrays included. */
size_t kairo_delta_deps_memory(const struct kairo_delta_deps *);

#endif /* kairo-delta-deps.h */
