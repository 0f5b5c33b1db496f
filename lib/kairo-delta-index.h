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

#ifndef KAIRO_DELTA_INDEX_H
#define KAIRO_DELTA_INDEX_H 1

/* The delta index: which installed megaflows a flow-table change affects.
 *
 * For every installed megaflow the index holds the lookups its translation
 * made (DESIGN.md section 2).  A lookup is (table t, key_t, mask_t, hit rule
 * or miss).  The index answers two questions:
 *
 *   - Insert query: a rule with priority 'p' and match 'm' is inserted into
 *     table 't'.  Which megaflows have a lookup L in 't' such that
 *     (L.key XOR m.value) AND L.mask AND m.mask == 0, and L missed or has a
 *     threshold <= 'p'?  Equal priority counts as affected.  A lookup's
 *     threshold is the priority below which no rule can change its result:
 *     the priority of the rule it hit, lower if a conjunctive match took
 *     part (see struct kairo_delta_index_lookup).  For a rule whose match
 *     fixes conj_id, only lookups whose result came through that conj_id
 *     count (kairo_delta_index_query_conj_insert()).
 *
 *   - Rule query: which megaflows hit rule R?
 *
 * Both answers are exact: every megaflow that satisfies the definition is
 * reported once, and no other.  Soundness does not depend on hashing: hash
 * collisions only cost comparisons.
 *
 * A megaflow may also have a common part (a struct kairo_delta_index_words):
 * bits that every one of its lookups fixes, to the same values, unless the
 * lookup's own mask fixes them (then the lookup's own values count).  The
 * caller uses it for the bits the installed megaflow's mask fixes, which
 * every packet of the megaflow has.  L.key and L.mask above are then the
 * lookup's own part together with the common part.
 *
 * A caller that does not know a lookup's exact key and mask must clear the
 * mask bits it is unsure of.  A zero mask bit widens the lookup's region, so
 * the insert query then reports a superset, which is sound.  Setting a mask
 * bit that the translation did not fix is unsound.
 *
 * Data structure.  A trie of translation paths.  Each lookup is a step,
 * and the steps that the same megaflows make one after the other form a
 * node, whose parent ends with the megaflows' previous lookup: megaflows
 * whose lookups agree up to some point share those steps, a node ends where
 * paths part or one ends (adding a path splits a node there), and each
 * megaflow hangs from the node of its last lookup.  A node's steps are a
 * run, which the nodes with the same lookups share whatever their parents:
 * paths that part at one lookup and then run on alike (OVN's, at an ACL on
 * the transport port) keep their later lookups once.  A re-translation
 * (kairo_delta_index_replace()) that parts from the path it replaces in,
 * or at the start of, a node that only that path goes through and ends in
 * rewrites the node's steps in place from there: most keep their group,
 * key and rule entry.  A step is keyed by what
 * the lookup does not take from the common part: the table, the rule hit
 * with its threshold and conjunctions, and the lookup's own key under its
 * own mask (in OVS, the registers and metadata and the bits actions
 * changed: what the path determines).  Steps are grouped by (table, own
 * mask), the way the classifier groups rules into subtables, and a group
 * of 16 steps or more hashes them on their whole key (its exact hash, which
 * it keeps).  An insert query visits the groups of its table only: for a
 * group whose mask the query's covers, one probe of its exact hash; if
 * the masks share no bit, every step of the group; otherwise a secondary
 * hash keyed on the bits both masks fix, built on first use, kept up to
 * date, and bounded per group; a group that has no room for another, or is
 * too small to deserve one, is scanned.
 * Each step found reports the megaflows of its node's subtree whose common
 * part meets the query outside the step's own mask; the walk passes by
 * chains of nodes with one child and no megaflow of their own, which
 * removals leave.  The megaflows that hang from one node are kept in parts,
 * one per common mask, and a part is matched the same way as a group, by a
 * secondary hash on the bits the query fixes once it is big enough.  A rule
 * query reports the subtrees of the nodes of the steps that hit the rule.
 *
 * Memory.  A step costs 32 bytes, a node about 100 and a run 56.  A step's key is
 * interned in its group: each distinct key costs 16 bytes and 4 per
 * nonzero word under its own mask, the id of the word in the index's table
 * of the keys' distinct words, where each costs about 20 bytes once.  (The
 * keys' words are mostly the translation state, which takes few values.)
 * A megaflow costs a 32-byte entry, which
 * the caller keeps (the index has no table of its megaflows), 8 bytes per
 * nonzero word of its common part (per word if its common mask, which is
 * interned, has more than 16), and about 10 in its leaf part's member
 * set; a secondary hash 4 bytes per member its set has room for and 2 per
 * chain (a chain for every one or two), twice that in a set with room for
 * more than 32,767 members.  Member sets and a rule's steps
 * have room for up to half as many again as they hold.  Megaflows that
 * share a path cost no step, nor do nodes that share a run: what costs
 * steps is lookups that no other path makes, in the same run, after the
 * same parting.
 *
 * Ownership.  The index copies what it needs from the lookups passed to
 * kairo_delta_index_add() and keeps no pointer into them.  It never
 * dereferences 'owner' or 'rule' pointers: they are opaque identities,
 * which queries report, and rules must stay unique while they are in the
 * index.  For rules the index can see to it:
 * kairo_delta_index_set_rule_hooks() has it hold a reference to each rule
 * it names, one per rule rather than one per lookup.
 *
 * Thread-safety.  None.  An index belongs to one thread, in Kairo the main
 * thread; other threads hand events over through a queue.  No function
 * blocks.  A query's callback must not modify the index. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "flow.h"

struct match;
struct minimatch;

/* The largest number of lookups one megaflow may have. */
#define KAIRO_DELTA_INDEX_MAX_LOOKUPS 4096

/* The largest number of matches one kairo_delta_index_query_insert_any()
 * may take. */
#define KAIRO_DELTA_INDEX_MAX_ALTS 64

/* Which rules on conj_id a lookup's result can depend on.  A classifier
 * lookup whose conjunctive clauses all matched for some conjunction looks
 * the flow up again with conj_id set to its id; only rules on those ids can
 * then change the result. */
enum kairo_delta_index_conj {
    KAIRO_DELTA_INDEX_CONJ_NONE,  /* No conjunction matched: none. */
    KAIRO_DELTA_INDEX_CONJ_ONE,   /* Only rules on 'conj_id'. */
    KAIRO_DELTA_INDEX_CONJ_ANY,   /* Several ids, or unknown: any. */
};

/* A mask and a value over the 64-bit words of struct flow, sparse: the
 * 'n' words whose mask is nonzero, in ascending order of their index in
 * struct flow, and the value under the mask of each.  The pointers need to
 * stay valid only during the call they are passed to. */
struct kairo_delta_index_words {
    size_t n;
    const uint8_t *idx;         /* Word indexes, ascending. */
    const uint64_t *mask;       /* Nonzero. */
    const uint64_t *value;      /* Zero outside 'mask'. */
};

/* Room for a struct kairo_delta_index_words of a whole flow. */
struct kairo_delta_index_words_buf {
    uint8_t idx[FLOW_U64S];
    uint64_t mask[FLOW_U64S];
    uint64_t value[FLOW_U64S];
};

/* Fills 'buf' with the words 'mask' fixes in 'key' and returns them. */
struct kairo_delta_index_words kairo_delta_index_words_from_flow(
    const struct flow *key, const struct flow_wildcards *mask,
    struct kairo_delta_index_words_buf *buf);

/* One lookup made while translating a megaflow, as passed to
 * kairo_delta_index_add().  The index copies the data.  'region' must not
 * fix conj_id: 'conj' says what the lookup depends on there. */
struct kairo_delta_index_lookup {
    uint8_t table_id;                  /* OpenFlow table consulted. */
    struct kairo_delta_index_words region;  /* key_t under mask_t. */
    const void *rule;                  /* Rule hit, or NULL for a miss. */
    int priority;                      /* Threshold, if 'rule' is nonnull:
                                        * no rule inserted below it can
                                        * change the result.  The priority
                                        * of 'rule', or lower when a
                                        * conjunctive match took part. */
    enum kairo_delta_index_conj conj;  /* Conjunctions that took part. */
    uint32_t conj_id;                  /* With KAIRO_DELTA_INDEX_CONJ_ONE. */
};


/* What an index's bytes hold, for kairo_delta_index_stats.memory_by. */
enum kairo_delta_index_mem {
    KAIRO_DELTA_INDEX_MEM_STEPS,       /* The nodes' steps. */
    KAIRO_DELTA_INDEX_MEM_NODES,       /* The nodes themselves. */
    KAIRO_DELTA_INDEX_MEM_KEYS,        /* The steps' interned keys. */
    KAIRO_DELTA_INDEX_MEM_GROUPS,      /* Groups and their masks. */
    KAIRO_DELTA_INDEX_MEM_MEMBERS,     /* Member arrays of groups and
                                        * leaf parts. */
    KAIRO_DELTA_INDEX_MEM_SECONDARIES, /* Secondary hashes. */
    KAIRO_DELTA_INDEX_MEM_RULES,       /* Rule entries and their steps. */
    KAIRO_DELTA_INDEX_MEM_MEGAFLOWS,   /* Megaflow entries, leaf parts and
                                        * common masks. */
    KAIRO_DELTA_INDEX_MEM_HASHES,      /* Hash-table bucket arrays and the
                                        * index itself. */
    KAIRO_DELTA_INDEX_N_MEM
};

/* Returns a short name for 'kind', such as "steps". */
const char *kairo_delta_index_mem_name(enum kairo_delta_index_mem kind);

/* Counters and sizes of an index, from kairo_delta_index_get_stats().  The
 * query-path counters count groups, not queries: one insert query adds one to
 * a path counter for every group of its table. */
struct kairo_delta_index_stats {
    /* Contents. */
    uint64_t n_megaflows;         /* Megaflows in the index. */
    uint64_t n_lookups;           /* Lookups over all megaflows. */
    uint64_t n_steps;             /* Distinct lookups, shared by
                                   * megaflows. */
    uint64_t n_keys;              /* Distinct keys of steps, interned. */
    uint64_t n_key_words;         /* Distinct words of those keys. */
    uint64_t n_nodes;             /* Nodes: chains of steps. */
    uint64_t n_runs;              /* Runs of steps, shared by the nodes
                                   * with the same lookups. */
    uint64_t n_groups;            /* (table, own mask) groups. */
    uint64_t n_common_masks;      /* Distinct common masks. */
    uint64_t n_secondaries;       /* Secondary hashes over all groups. */
    uint64_t n_rules;             /* Distinct (rule, threshold, conj)
                                   * entries hit by some lookup. */
    uint64_t memory;              /* Bytes the index allocated, including
                                   * hash-table bucket arrays but not the
                                   * allocator's own overhead. */
    uint64_t memory_by[KAIRO_DELTA_INDEX_N_MEM];  /* 'memory', by what it
                                                   * holds. */

    /* Operations. */
    uint64_t n_adds;              /* Successful kairo_delta_index_add(). */
    uint64_t n_removes;           /* Megaflows removed (remove, replace). */
    uint64_t n_insert_queries;    /* Insert queries answered. */
    uint64_t n_rule_queries;      /* Rule queries answered. */
    uint64_t n_rounds;            /* Rounds begun. */

    /* Insert-query paths, per group visited. */
    uint64_t path_probe;          /* Mask covered: one exact hash probe. */
    uint64_t path_secondary;      /* Probed an existing secondary hash. */
    uint64_t path_secondary_new;  /* Built a secondary hash, then probed. */
    uint64_t path_all;            /* Masks disjoint: every node matches. */
    uint64_t path_scan;           /* Partly covered, no secondary: scan. */

    /* Leaf parts visited by insert queries, by how their megaflows' common
     * parts were matched. */
    uint64_t part_all;            /* The query fixes none of their bits. */
    uint64_t part_secondary;      /* Probed (perhaps built) a secondary. */
    uint64_t part_scan;           /* Compared every megaflow. */

    /* Selectivity. */
    uint64_t lookups_examined;    /* Nodes compared by insert queries. */
    uint64_t nodes_walked;        /* Chains of nodes visited in subtrees:
                                   * a node with one child and no
                                   * megaflow of its own is passed by. */
    uint64_t subtrees_skipped;    /* Subtrees not walked, because the open
                                   * round had reported them whole. */
    uint64_t megaflows_examined;  /* Megaflows visited in subtrees. */
    uint64_t megaflows_reported;  /* Megaflows reported by all queries. */
};

/* A query callback: 'owner' is one affected megaflow, as given to
 * kairo_delta_index_add(); 'aux' is the query's 'aux'.  It must not modify
 * the index. */
typedef void kairo_delta_index_cb(const void *owner, void *aux);

/* A megaflow's entry in an index, which the caller keeps for it: the index
 * has no table of its megaflows. */
struct kairo_delta_index_entry;

/* Creation and destruction.  O(1) and O(size) respectively. */
struct kairo_delta_index *kairo_delta_index_create(void);
void kairo_delta_index_destroy(struct kairo_delta_index *);

/* Called with a rule that the index starts naming ('hold'), while the
 * lookup that names it is passed in, or stops naming ('release'), possibly
 * from kairo_delta_index_destroy(). */
typedef void kairo_delta_index_rule_hook(const void *rule);
void kairo_delta_index_set_rule_hooks(struct kairo_delta_index *,
                                      kairo_delta_index_rule_hook *hold,
                                      kairo_delta_index_rule_hook *release);

/* Changes.
 *
 * Each takes the megaflow's entry '*entry', which the caller keeps for it,
 * NULL while the megaflow is not in the index.
 *
 * kairo_delta_index_add() adds the megaflow 'owner', its common part
 * 'common' (NULL for none) and its 'n' lookups ('n' may be 0), in
 * translation order, and stores its entry in '*entry'.  It returns 0,
 * EEXIST if '*entry' is nonnull, E2BIG if 'n' exceeds
 * KAIRO_DELTA_INDEX_MAX_LOOKUPS, or EINVAL if a lookup's 'conj' is not one
 * of enum kairo_delta_index_conj, or a word list is not ascending or has a
 * zero mask.  On error the index is unchanged.  Cost: O(the words of the
 * lookups and the common part).
 *
 * kairo_delta_index_remove() removes the megaflow of '*entry', sets
 * '*entry' to NULL and returns true, or returns false if '*entry' is NULL.
 * O(its lookups).
 *
 * kairo_delta_index_replace() gives megaflow 'owner', whose entry is
 * '*entry' (NULL: not in the index), the common part and lookups passed,
 * for example after re-translation, and stores its new entry in '*entry'.
 * It returns as kairo_delta_index_add(); on error the old entry, if any,
 * is kept. */
int kairo_delta_index_add(struct kairo_delta_index *,
                          struct kairo_delta_index_entry **entry,
                          const void *owner,
                          const struct kairo_delta_index_words *common,
                          const struct kairo_delta_index_lookup lookups[],
                          size_t n);
bool kairo_delta_index_remove(struct kairo_delta_index *,
                              struct kairo_delta_index_entry **entry);
int kairo_delta_index_replace(struct kairo_delta_index *,
                              struct kairo_delta_index_entry **entry,
                              const void *owner,
                              const struct kairo_delta_index_words *common,
                              const struct kairo_delta_index_lookup lookups[],
                              size_t n);
bool kairo_delta_index_is_empty(const struct kairo_delta_index *);

/* Queries.  Each calls 'cb' once per affected megaflow, in no particular
 * order, and returns the number of calls.  In a round (see below), megaflows
 * that an earlier query of the round reported are left out.
 *
 * The insert queries report the megaflows that inserting a rule with
 * 'priority' and match 'm' into 'table_id' affects (see the definition at
 * the top).  Cost: one step per group of 'table_id', plus the nodes in the
 * probed buckets (every node of a group that must be scanned), plus the
 * megaflows under the nodes found.  A query changes nothing in the index
 * but the megaflows' report stamps.
 *
 * kairo_delta_index_query_insert_any() reports what inserting a rule with
 * any of the 'n' matches in 'ms' would ('n' at most
 * KAIRO_DELTA_INDEX_MAX_ALTS), each megaflow once: the union of the
 * answers of one insert query per match.  It walks a subtree that several
 * matches meet once: matches that fix the same bits of a group to the same
 * values (say, differing in packet fields only) search it once, and a
 * megaflow is checked against each of them only where it hangs.
 *
 * kairo_delta_index_query_conj_insert() is the insert query for a rule
 * whose match fixes conj_id to 'conj_id' (not 0, which is an ordinary
 * match): its other fields as 'm', and only lookups that depend on rules on
 * 'conj_id' (KAIRO_DELTA_INDEX_CONJ_ONE with that id, or _ANY).
 *
 * kairo_delta_index_query_rule() reports the megaflows that hit 'rule'.
 * Cost: O(the megaflows under the nodes that hit 'rule'). */
size_t kairo_delta_index_query_insert(struct kairo_delta_index *,
                                      uint8_t table_id, int priority,
                                      const struct minimatch *m,
                                      kairo_delta_index_cb *cb, void *aux);
size_t kairo_delta_index_query_insert_match(struct kairo_delta_index *,
                                            uint8_t table_id, int priority,
                                            const struct match *m,
                                            kairo_delta_index_cb *cb,
                                            void *aux);
size_t kairo_delta_index_query_insert_any(struct kairo_delta_index *,
                                          uint8_t table_id, int priority,
                                          const struct match *ms, size_t n,
                                          kairo_delta_index_cb *cb,
                                          void *aux);
size_t kairo_delta_index_query_conj_insert(struct kairo_delta_index *,
                                           uint8_t table_id, int priority,
                                           const struct minimatch *m,
                                           uint32_t conj_id,
                                           kairo_delta_index_cb *cb,
                                           void *aux);
size_t kairo_delta_index_query_rule(struct kairo_delta_index *,
                                    const void *rule,
                                    kairo_delta_index_cb *cb, void *aux);

/* Rounds.
 *
 * A caller that collects the megaflows of a series of changes, to
 * re-translate each once, need not hear of a megaflow twice.  Between
 * kairo_delta_index_begin_round() and kairo_delta_index_end_round() (or the
 * next begin), the queries report each megaflow at most once between them:
 * one that an earlier query of the round reported is neither reported nor
 * counted again, and a subtree of the trie whose megaflows a rule query
 * reported is not walked again.  A megaflow added or replaced during the
 * round is new to it.  Outside a round every query reports all it finds.
 * O(1), except once every 2**32 rounds O(nodes). */
void kairo_delta_index_begin_round(struct kairo_delta_index *);
void kairo_delta_index_end_round(struct kairo_delta_index *);

/* Fills '*stats' with the index's current counters and sizes.  O(groups
 * and secondary hashes). */
void kairo_delta_index_get_stats(const struct kairo_delta_index *,
                                 struct kairo_delta_index_stats *stats);

#endif /* kairo-delta-index.h */
