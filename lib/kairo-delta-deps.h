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
 * (for example the group id).  The module never dereferences 'space' or
 * 'owner': they are identities, which the caller keeps unique while they
 * are in the set.
 *
 * An owner's dependencies are one record, which kairo_delta_deps_set()
 * hands back to the caller: the caller finds it there, so that the set
 * needs no table of owners.
 *
 * Cost.  kairo_delta_deps_set() and _remove() are O(the owner's keys);
 * a query is O(the owners of the key).  Memory, which
 * kairo_delta_deps_memory() counts: 16 bytes per owner and about 26 per
 * dependency, 16 more for a payload if any of the owner's is nonzero (a
 * port's is not), and 48 per distinct key.
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

struct kairo_delta_deps *kairo_delta_deps_create(void);
void kairo_delta_deps_destroy(struct kairo_delta_deps *);

/* One owner's dependencies, as kairo_delta_deps_set() records them. */
struct kairo_delta_deps_owner;

/* Makes 'owner' depend on exactly the 'n' dependencies in 'deps' (each key
 * at most once; 'n' may be 0), replacing those of '*record' (NULL: none),
 * which must be 'owner''s.  Stores in '*record' the new record, or NULL if
 * 'n' is 0. */
void kairo_delta_deps_set(struct kairo_delta_deps *,
                          struct kairo_delta_deps_owner **record,
                          const void *owner,
                          const struct kairo_delta_dep deps[], size_t n);

/* Forgets the dependencies of '*record' and sets it to NULL.  Returns false
 * if it was already NULL. */
bool kairo_delta_deps_remove(struct kairo_delta_deps *,
                             struct kairo_delta_deps_owner **record);

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

/* Returns the number of owners with dependencies, and of dependencies. */
size_t kairo_delta_deps_n_owners(const struct kairo_delta_deps *);
size_t kairo_delta_deps_n_deps(const struct kairo_delta_deps *);

/* Returns the bytes the set allocated, bucket arrays included. */
size_t kairo_delta_deps_memory(const struct kairo_delta_deps *);

#endif /* kairo-delta-deps.h */
