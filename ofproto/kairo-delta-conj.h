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

#ifndef KAIRO_DELTA_CONJ_H
#define KAIRO_DELTA_CONJ_H 1

/* Conjunctive matches: which megaflows a clause inserted can affect.
 *
 * A clause, a rule with action conjunction(id, k/n), matters only where
 * the conjunction 'id' at its priority can complete: a packet must match a
 * clause of every one of its n dimensions.  A clause of dimension k that
 * appears can change a lookup only if the lookup's region meets the
 * clause's match and, for every other dimension, the match of one of that
 * dimension's clauses.  This module keeps, per bridge, table, priority and
 * conjunction id, the clauses of each dimension, as the rule changes are
 * mapped in order, and turns a clause insert into insert queries of the
 * delta index over the clause's match combined with each clause of the
 * other dimension that has the fewest (DESIGN-NOTES.md section 5e).
 *
 * Main thread only. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kairo-delta-index.h"

struct flow;
struct flow_wildcards;
struct minimatch;
struct ofpact;
struct ofproto;
struct rule;

struct kairo_delta_conjs *kairo_delta_conjs_create(void);
void kairo_delta_conjs_destroy(struct kairo_delta_conjs *);

/* Keeps the registry in step with a rule change: 'removed' (may be NULL)
 * left its table and 'added' (may be NULL) entered it.  Rules that are not
 * clauses are ignored.  The registry holds a reference to each clause. */
void kairo_delta_conjs_update(struct kairo_delta_conjs *,
                              struct rule *removed, struct rule *added);

/* Counters, for kairo/show. */
struct kairo_delta_conjs_stats {
    size_t n_conjunctions;      /* (bridge, table, priority, id) known. */
    size_t n_clauses;           /* Clause memberships held. */
    uint64_t precise;           /* Conjunctions mapped dimension by
                                 * dimension. */
    uint64_t incomplete;        /* ...that could not complete: no query. */
    uint64_t wide;              /* Mapped by the clause's match alone: too
                                 * many clauses in every other dimension,
                                 * or inconsistent dimensions. */
};
void kairo_delta_conjs_get_stats(const struct kairo_delta_conjs *,
                                 struct kairo_delta_conjs_stats *);

/* Reports through 'cb' the megaflows of 'index' that a clause of bridge
 * 'ofproto' with 'ofpacts' (its conjunction actions), 'match' and
 * 'priority' in 'table_id' can affect by appearing, given the clauses the
 * registry holds for the other dimensions of its conjunctions.  Returns the
 * number of reports (a megaflow may be counted once per query outside a
 * round). */
size_t kairo_delta_conjs_query_insert(struct kairo_delta_conjs *,
                                      struct kairo_delta_index *,
                                      const struct ofproto *,
                                      uint8_t table_id, int priority,
                                      const struct minimatch *match,
                                      const struct ofpact *ofpacts,
                                      size_t ofpacts_len,
                                      kairo_delta_index_cb *cb, void *aux);

/* Auditing a lookup (kairo/verify).
 *
 * Which rules of a table can make a lookup's answer differ between packets
 * of a region: one that matches some of its packets but not all, at or
 * above the lookup's threshold, but a clause only if one of its
 * conjunctions can complete in the region (each dimension has a clause that
 * meets it), and a rule on conj_id X, whatever its priority, only if a
 * conjunction X can, at or above the threshold.  Read from the classifier itself, so that
 * it holds whatever rule changes are still queued. */
struct kairo_delta_conj_region *kairo_delta_conj_region_create(
    const struct ofproto *, uint8_t table_id, const struct flow *key,
    const struct flow_wildcards *mask);
void kairo_delta_conj_region_destroy(struct kairo_delta_conj_region *);
bool kairo_delta_conj_region_may_split(
    const struct kairo_delta_conj_region *, const struct rule *,
    int threshold);

#endif /* kairo-delta-conj.h */
