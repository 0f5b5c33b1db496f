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

#include "kairo-delta.h"

#include <errno.h>
#include <stdlib.h>

#include "classifier.h"
#include "coverage.h"
#include "openvswitch/ofp-group.h"
#include "dpif.h"
#include "flow.h"
#include "hash.h"
#include "kairo-delta-conj.h"
#include "kairo-delta-deps.h"
#include "kairo-delta-growth.h"
#include "kairo-delta-index.h"
#include "kairo-show.h"
#include "mac-learning.h"
#include "netdev.h"
#include "odp-util.h"
#include "ofproto/ofproto-dpif-upcall.h"
#include "ofproto/ofproto-dpif-xlate-cache.h"
#include "ofproto/ofproto-dpif-xlate.h"
#include "ofproto/ofproto-dpif.h"
#include "ofproto/ofproto-provider.h"
#include "openvswitch/dynamic-string.h"
#include "openvswitch/hmap.h"
#include "openvswitch/list.h"
#include "openvswitch/ofp-actions.h"
#include "openvswitch/ofp-flow.h"
#include "openvswitch/ofp-port.h"
#include "openvswitch/poll-loop.h"
#include "openvswitch/vlog.h"
#include "ovs-atomic.h"
#include "ovs-thread.h"
#include "seq.h"
#include "simap.h"
#include "smap.h"
#include "sset.h"
#include "svec.h"
#include "timeval.h"
#include "unixctl.h"
#include "util.h"

VLOG_DEFINE_THIS_MODULE(kairo_delta);

COVERAGE_DEFINE(kairo_delta_absorbed);
COVERAGE_DEFINE(kairo_delta_rule);
COVERAGE_DEFINE(kairo_delta_marked);
COVERAGE_DEFINE(kairo_delta_raced);
COVERAGE_DEFINE(kairo_delta_opaque);
COVERAGE_DEFINE(kairo_delta_fallback);
COVERAGE_DEFINE(kairo_delta_round_inline);
COVERAGE_DEFINE(kairo_delta_round_shared);
COVERAGE_DEFINE(kairo_delta_round_kicked);
COVERAGE_DEFINE(kairo_delta_capture_lost);
COVERAGE_DEFINE(kairo_delta_conj_id);
COVERAGE_DEFINE(kairo_delta_clause_gone);
COVERAGE_DEFINE(kairo_delta_group);
COVERAGE_DEFINE(kairo_delta_port);
COVERAGE_DEFINE(kairo_delta_mac);
COVERAGE_DEFINE(kairo_delta_switch_full);
COVERAGE_DEFINE(kairo_delta_bridge_freed);

/* Limits on what a translating thread keeps for the ukey observer.  A
 * translation with more lookups, or one whose capture is pushed out, makes
 * an "opaque" megaflow: sound, but marked by every delta. */
#define KD_MAX_SLOTS 128        /* Pending captures per thread. */
#define KD_MAX_SPARES 8         /* Captures a thread keeps for reuse. */
#define KD_MAX_LOOKUPS 255      /* Lookups kept per translation. */

/* Default share of a udpif's megaflows, in percent, above which one run's
 * marks are replaced by a full revalidation. */
#define KD_DEFAULT_FULL_SHARE 50

/* A batch that marks fewer megaflows than this never falls back for cost. */
#define KD_MIN_FULL 64

/* A batch that marks at most this many megaflows of a datapath has them
 * re-translated at once on the main thread, which costs a few translations;
 * a larger one is left to the revalidator threads, kicked for a pass over
 * the marked megaflows alone (hook patch 0013), while the main thread
 * re-translates its share of them, at most this many too (see
 * kd_round_main_share()). */
#define KD_MAX_INLINE 256

/* Why the delta path chose a full revalidation. */
#define KD_FALLBACKS                                                    \
    KD_FALLBACK(COST, "cost")               /* Marks over the full share. */ \
    KD_FALLBACK(TUNNEL, "tunnel")           /* A tunnel port changed. */ \
    KD_FALLBACK(SWITCH_OFF, "switch-off")   /* kairo-delta set to false. */

enum kd_fallback {
#define KD_FALLBACK(ENUM, NAME) KD_FB_##ENUM,
    KD_FALLBACKS
#undef KD_FALLBACK
    KD_N_FALLBACKS
};

static const char *const kd_fallback_names[] = {
#define KD_FALLBACK(ENUM, NAME) NAME,
    KD_FALLBACKS
#undef KD_FALLBACK
};

/* Upper bounds, in microseconds, of the buckets of the histogram of the time
 * from a delta to the re-translation of a megaflow it marked.  The last
 * bucket is unbounded. */
static const long long int kd_latency_bounds[] = {
    1000, 10 * 1000, 100 * 1000, 1000 * 1000,
};
#define KD_N_LATENCY (ARRAY_SIZE(kd_latency_bounds) + 1)

/* Translating threads.
 * ====================
 *
 * Between xlate_token() and the ukey event that follows a translation, a
 * thread keeps the lookups of that translation in a "capture", found by the
 * xlate cache the translation fills.  A handler translates a batch before
 * installing it, so a thread may hold several. */

/* The flow as a table saw it, and the wildcards of the translation so far
 * (the bits consulted up to and including that lookup). */
struct kd_flow_wc {
    struct flow flow;
    struct flow_wildcards wc;
};

/* One table lookup.  Its region is the flow's words under the wildcards at
 * the lookup, with the translation state whole (see KD_STATE_FIRST).  On
 * the upcall path a lookup keeps only the words of its region that differ
 * from the previous lookup's, 'n_deltas' of them from 'ofs' in the
 * capture's 'deltas': the wildcards only grow and actions change few
 * fields, so a translation's regions cost a few words per lookup.  What the
 * lookups have in common comes from the translation's first flow (see
 * kd_common_part()).  A 'full' capture (kairo/verify) keeps the whole flow
 * and wildcards as well, in 'full'. */
struct kd_lookup {
    const struct ofproto *ofproto;
    struct rule *rule;          /* Referenced, or NULL for a miss. */
    int threshold;              /* If 'rule': no rule inserted below this
                                 * priority can change the result. */
    uint8_t table_id;
    uint8_t conj;               /* enum kairo_delta_index_conj. */
    uint16_t n_deltas;
    uint32_t conj_id;           /* With KAIRO_DELTA_INDEX_CONJ_ONE. */
    uint32_t ofs;
    struct kd_flow_wc *full;    /* Whole flow and wildcards, or NULL. */
};

/* A word of a lookup's region that differs from the previous lookup's. */
struct kd_delta {
    uint64_t mask;
    uint64_t value;             /* Under 'mask'. */
    uint32_t w;                 /* Its index among struct flow's words. */
};

/* How a translation used a group (a group dependency's low byte). */
enum {
    KD_GROUP_LOOKUP = 1 << 0,   /* Looked up to execute it (maybe missing). */
    KD_GROUP_BUCKETS = 1 << 1,  /* Executed its bucket 'bucket_id'. */
    KD_GROUP_LIVENESS = 1 << 2, /* Tested its liveness (watch_group). */
    KD_GROUP_DP_HASH_ZERO = 1 << 3, /* Looked up with dp_hash 0: a dp_hash
                                     * select group only hashes and
                                     * recirculates then. */
};

/* What a translation depends on besides its lookups, as keys of the
 * dependency set (lib/kairo-delta-deps.h): the kind in the top 4 bits.
 *
 *   - A group: space the ofproto, the group id; payload: data[0] has the
 *     KD_GROUP_* bits in its low byte and the dp_hash at its first lookup
 *     in its high 32 bits, data[1] the bucket id with KD_GROUP_BUCKETS.
 *
 *   - A port: space the ofproto (NULL: any bridge), the OpenFlow port
 *     number (OFPP_ALL: the set of the bridge's ports).
 *
 *   - A MAC table entry: space the table (struct mac_learning), the MAC in
 *     bits 12 to 59 and the VLAN in bits 0 to 11. */
#define KD_DEP_GROUP (UINT64_C(1) << 60)
#define KD_DEP_PORT (UINT64_C(2) << 60)
#define KD_DEP_MAC (UINT64_C(3) << 60)
#define KD_MAX_DEPS 128         /* Dependencies kept per translation. */

/* A conjunctive match of the classifier lookup under way on a thread. */
struct kd_conj_match {
    const struct classifier *cls;
    uint32_t id;
    int priority;
    const struct cls_rule *rule;    /* Returned for the conj_id, or NULL. */
};
#define KD_MAX_CONJ_MATCHES 8

/* The translation state of a flow: the metadata and registers, which the
 * path of a translation determines (they start as zero, or as a frozen
 * state's, and actions set them to constants or to packet bits that they
 * unwildcard), so they are the same for every packet of a megaflow at each
 * lookup.  A lookup's region has the state whole, exact. */
#define KD_STATE_FIRST (offsetof(struct flow, metadata) / 8)
#define KD_STATE_END (DIV_ROUND_UP(offsetof(struct flow, regs) \
                                   + sizeof ((struct flow *) 0)->regs, 8))
#define KD_STATE_WORDS (KD_STATE_END - KD_STATE_FIRST)
BUILD_ASSERT_DECL(offsetof(struct flow, metadata) % 8 == 0);
BUILD_ASSERT_DECL((offsetof(struct flow, regs)
                   + sizeof ((struct flow *) 0)->regs) % 8 == 0);

/* The flow at a translation's first lookup, and the bits that differed from
 * it at some later lookup (written by actions, whether or not the
 * translation unwildcarded them). */
struct kd_first {
    struct flow flow;
    struct flow changed;
};

/* A region as a mask and a value per word of struct flow, with a map of
 * the words whose mask is nonzero, for replaying lookups' deltas. */
struct kd_region {
    uint64_t map[2];
    uint64_t mask[FLOW_U64S];
    uint64_t value[FLOW_U64S];
};
BUILD_ASSERT_DECL(FLOW_U64S <= 128);

/* A translating thread owns its captures and reuses them, arrays and all,
 * so that the upcall path does not allocate for them; a ukey event carries
 * a packed copy (see kd_capture_pack()). */
struct kd_capture {
    const struct xlate_cache *xcache;   /* NULL until known. */
    bool full;                  /* Keep whole flows too. */
    bool overflow;              /* More than KD_MAX_LOOKUPS lookups, or
                                 * more than KD_MAX_DEPS dependencies. */
    size_t n, allocated;
    struct kd_lookup *lookups;
    size_t n_deltas, allocated_deltas;
    struct kd_delta *deltas;
    size_t n_deps, allocated_deps;
    struct kairo_delta_dep *deps;
    struct kd_first *first;     /* The flow at the first lookup, and what
                                 * changed since. */
    struct kd_region *last;     /* The latest lookup's region (not in a
                                 * packed copy). */
};

struct kd_thread {
    size_t n_conj;              /* Conjunctive matches of the lookup under
                                 * way, or KD_MAX_CONJ_MATCHES + 1 if there
                                 * were more than fit. */
    struct kd_conj_match conj[KD_MAX_CONJ_MATCHES];
    size_t n;
    struct kd_capture *slots[KD_MAX_SLOTS];     /* Oldest first. */
    size_t n_spares;
    struct kd_capture *spares[KD_MAX_SPARES];   /* Empty, for reuse. */
    struct ovs_list spare_events;   /* Ukey event blocks, for reuse. */
};

static ovsthread_key_t kd_thread_key;

/* The event queue.
 * ================
 *
 * Every hook appends to one FIFO, so that the events of one ukey, and the
 * deltas relative to the tokens, stay in order.  Its lock is a leaf.
 *
 * A delta wakes the main thread at once.  A ukey event wakes it if it
 * sleeps, or if a delta came after the event's translation began, since the
 * megaflow may then need marking again.  While the main thread is mapping a
 * burst of ukey events (the upcalls of new megaflows, or the re-translations
 * of a round) it comes back for the queue every KD_BURST_MS, so that the
 * translations of a burst do not each pay for a wake-up.  That delays no
 * datapath flow, which the translating thread has already updated, nor the
 * latencies, which each event times itself; kairo/wait, which waits for
 * the mapping, answers up to KD_BURST_MS later. */

enum kd_event_type {
    KD_EV_RULE,                 /* A rule was added, replaced or removed. */
    KD_EV_GROUP,                /* A group was added, modified or deleted. */
    KD_EV_PORTS,                /* Ports changed, the new xlate
                                 * configuration is in use. */
    KD_EV_MAC,                  /* A MAC table entry changed. */
    KD_EV_UKEY,                 /* A ukey was installed, translated or
                                 * deleted. */
};

struct kd_event {
    struct ovs_list list_node;  /* In 'kd_queue', or a list of spares. */
    size_t block_size;          /* Ukey events: bytes allocated, for reuse;
                                 * others: 0. */
    enum kd_event_type type;
    uint64_t gen;               /* Deltas: their generation; ukey events: the
                                 * token of their translation. */

    /* KD_EV_RULE, KD_EV_GROUP. */
    const struct ofproto *ofproto;
    bool delta;                 /* Delta mode was on when it happened. */
    long long int time;         /* kd_clock_usec() when it happened. */
    enum ofp_flow_update_event rule_event;
    struct rule *rule;          /* Referenced. */
    struct rule *old_rule;      /* Referenced, or NULL. */
    struct kd_group_changes *groups;  /* KD_EV_GROUP: what changed. */
    struct kd_port_changes *ports;    /* KD_EV_PORTS: what changed. */
    const struct mac_learning *ml;    /* KD_EV_MAC: the table, */
    uint64_t mac_key;                 /* ...and kd_mac_key() of the entry. */

    /* KD_EV_UKEY. */
    struct udpif *udpif;
    enum udpif_ukey_event ukey_event;
    struct udpif_ukey_id id;
    struct kd_capture *capture; /* NULL if the lookups are unknown. */
    const struct nlattr *key;   /* The megaflow's key and mask, with a */
    const struct nlattr *mask;  /* capture only, in the event's block. */
    size_t key_len, mask_len;
    bool learns;                /* The translation executed a learn. */
};

/* What a group mod changed in one group, as the main thread maps it: the
 * megaflows that looked the group up, unless 'refined' says which of them
 * cannot be affected.  A modify of a dp_hash select group that keeps its
 * type and selection parameters leaves alone the megaflows that only hashed
 * and recirculated through it, and those whose dp_hash still picks the same
 * bucket, with the same contents, from the new hash map. */
struct kd_group_change {
    uint32_t group_id;
    bool refined;               /* Only some users are affected. */
    uint32_t old_hash_mask;     /* If 'refined': the old group's. */
    uint32_t hash_mask;         /* If 'refined': the new group's. */
    uint32_t *hash_map;         /* If 'refined': bucket id per hash slot,
                                 * UINT32_MAX for a bucket whose contents
                                 * changed. */
};

/* One port that changed: (ofproto, ofp_port), OFPP_ALL if the set of the
 * bridge's ports or bundles did. */
struct kd_port_change {
    const struct ofproto *ofproto;
    ofp_port_t ofp_port;
};

/* The port changes of one xlate configuration rebuild (KD_EV_PORTS). */
struct kd_port_changes {
    size_t n, allocated;
    struct kd_port_change *changes;
};

/* One group mod's changes (KD_EV_GROUP). */
struct kd_group_changes {
    size_t n;
    struct kd_group_change changes[];
};

static struct ovs_mutex kd_queue_mutex = OVS_MUTEX_INITIALIZER;
static struct ovs_list kd_queue OVS_GUARDED_BY(kd_queue_mutex)
    = OVS_LIST_INITIALIZER(&kd_queue);
static struct seq *kd_queue_seq;
static atomic_size_t kd_n_queued = ATOMIC_VAR_INIT(0);  /* In 'kd_queue'. */
static atomic_bool kd_main_sleeps = ATOMIC_VAR_INIT(true);

/* Ukey event blocks go back to the translating threads for reuse instead of
 * being freed by the main thread: a block freed by a thread other than the
 * one that allocated it costs the allocating thread's arena lock, which the
 * upcall path then contends for.  The main thread gathers the blocks of a
 * run and hands them over at once; a translating thread takes them all
 * when its own run out. */
static struct ovs_mutex kd_spare_mutex = OVS_MUTEX_INITIALIZER;
static struct ovs_list kd_spare_events OVS_GUARDED_BY(kd_spare_mutex)
    = OVS_LIST_INITIALIZER(&kd_spare_events);
static size_t kd_n_spare_events OVS_GUARDED_BY(kd_spare_mutex);
#define KD_MAX_SPARE_EVENTS 4096    /* Beyond this, blocks are freed. */
#define KD_EVENT_BLOCK 512          /* Block sizes are multiples of this. */

/* Offset of the bytes that follow a ukey event in its block. */
#define KD_EVENT_HEAD ROUND_UP(sizeof(struct kd_event), 8)

/* While a burst of ukey events lasts, how often the main thread maps them,
 * in milliseconds. */
#define KD_BURST_MS 10

/* Deltas are mapped as they arrive, but their marks are gathered into one
 * round, which is re-translated once the deltas pause for this long, in
 * microseconds, or this long after the round's first delta: the flow-mods
 * of a burst (a controller's batch, several bundles) then cost one
 * re-translation of each megaflow, against the final tables, rather than
 * one per intermediate commit. */
#define KD_ROUND_QUIET_US 1000
#define KD_ROUND_MAX_US 4000

/* Kairo's clock, in microseconds: real monotonic time.  Not time_usec(),
 * which "ovs-appctl time/stop" freezes and "time/warp" moves: a round must
 * be re-translated a few real milliseconds after its deltas, as stock's
 * revalidators start at once whatever the test clock says, and the
 * latencies kairo/show reports are real. */
static long long int
kd_clock_usec(void)
{
    struct timespec ts;

    xclock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long int) ts.tv_sec * 1000 * 1000 + ts.tv_nsec / 1000;
}

/* The generation of the latest delta.  Written under 'kd_queue_mutex' so
 * that generations increase along the queue; read by xlate_token(). */
static atomic_uint64_t kd_gen = ATOMIC_VAR_INIT(0);

/* other_config:kairo-delta.  Read from any thread. */
static atomic_bool kd_enabled = ATOMIC_VAR_INIT(true);

/* Main thread.
 * ============ */

/* One bridge's index. */
struct kd_bridge {
    struct hmap_node node;      /* In 'kd_bridges', by 'ofproto'. */
    const struct ofproto *ofproto;
    struct kairo_delta_index *index;
    uint64_t round;             /* 'kd_round_seq' of the index's open round
                                 * of queries, or 0. */
};

/* The megaflows of one udpif (datapath backer). */
struct kd_udpif {
    struct hmap_node node;      /* In 'kd_udpifs', by 'udpif'. */
    struct udpif *udpif;
    struct hmap megaflows;      /* "struct kd_megaflow"s, by id. */

    /* The megaflows whose lookups are unknown, each at its 'opaque_pos'. */
    struct kd_megaflow **opaque;
    size_t n_opaque, allocated_opaque;

    /* This run's marks. */
    struct udpif_ukey_id *marks;
    size_t n_marks, allocated_marks;
};

/* A megaflow's entry in one bridge's index. */
struct kd_index_ref {
    struct kd_bridge *bridge;
    struct kairo_delta_index_entry *entry;
};

/* One installed megaflow (ukey).  The indexes report it by its address. */
struct kd_megaflow {
    struct hmap_node node;      /* In its kd_udpif's 'megaflows'. */
    struct kd_udpif *kdu;
    ovs_u128 ufid;              /* The ukey's id: 'ufid' and 'pmd_id'. */
    unsigned int pmd_id;
    uint32_t opaque_pos;        /* Its index in 'kdu->opaque' if 'opaque'. */

    /* Its entries in the indexes of the bridges its lookups went through,
     * 'n_refs' of them, in 'ref' if there is one (a patch port takes a
     * translation to another bridge). */
    union {
        struct kd_index_ref ref;
        struct kd_index_ref *refs;
    };
    struct kairo_delta_deps_handle deps;  /* What else it depends on. */
    uint32_t n_refs;
    bool opaque;                /* Marked by every delta: lookups unknown,
                                 * or the translation learns. */
    bool marked;                /* In 'kdu->marks', the open round's. */
    bool pending;               /* Awaits a translation, in 'kd_pending'. */
};

/* A megaflow marked and not re-translated since.  Few megaflows are at any
 * time, so that this lives apart from struct kd_megaflow. */
struct kd_pending {
    struct hmap_node node;      /* In 'kd_pending', by hash_pointer(mf). */
    struct kd_megaflow *mf;
    uint64_t gen;               /* A translation with a token at least this
                                 * resolves it. */
    long long int since;        /* Delta time of the first mark. */
};

static struct hmap kd_bridges = HMAP_INITIALIZER(&kd_bridges);
static struct hmap kd_udpifs = HMAP_INITIALIZER(&kd_udpifs);
static struct hmap kd_pending = HMAP_INITIALIZER(&kd_pending);

/* The operation counters of the bridges' indexes freed so far, which
 * kairo/show adds to those of the indexes there are. */
static struct kairo_delta_index_stats kd_freed_index_stats;

/* What megaflows depend on besides their lookups: the groups, ports and MAC
 * table entries each looked up (see KD_DEP_*). */
static struct kairo_delta_deps *kd_deps;

/* The clauses of every conjunctive match, as the rule changes mapped so far
 * left them. */
static struct kairo_delta_conjs *kd_conjs;

static uint64_t kd_last_queue_seq;
static uint64_t kd_round_seq = 1;   /* Incremented once per round. */
static long long int kd_round_first;    /* kd_clock_usec() of the open
                                         * round's first delta, or 0. */
static long long int kd_round_last;     /* ...and of its latest. */
static uint64_t kd_applied_gen;     /* Generation of the last delta mapped. */
static unsigned int kd_full_share = KD_DEFAULT_FULL_SHARE;
static bool kd_burst;               /* The latest run mapped ukey events. */
static uint64_t kd_main_loops;      /* Calls of kairo_delta_run(). */
static struct unixctl_conn **kd_waiters;
static size_t kd_n_waiters;

static struct {
    uint64_t inserts, replaces, removes, clauses, groups, stock;
    uint64_t group_spared;      /* Group users a refinement spared. */
    uint64_t port_changes, mac_changes;
    uint64_t switch_full;       /* Full revalidations Open vSwitch requested
                                 * for changes not taken (any mode). */
    uint64_t ukey_events[3];    /* By enum udpif_ukey_event. */
    uint64_t marked, raced, opaque_marks, inline_rounds, kicks, rounds;
    uint64_t shared_rounds;     /* Kicked rounds the main thread took a
                                 * share of. */
    long long int latest_latency;   /* Slowest megaflow re-translated after
                                     * the latest delta, in microseconds. */
    long long int last_change;      /* kd_clock_usec() of the latest
                                     * flow-table, group, port or MAC
                                     * change, in either mode. */
    long long int last_retranslation;   /* kd_clock_usec() of the latest ukey
                                         * re-translation or deletion. */
    uint64_t fallbacks[KD_N_FALLBACKS];
    uint64_t latency[KD_N_LATENCY];
} kd_stats;

static bool
kd_is_enabled(void)
{
    bool enabled;

    atomic_read_relaxed(&kd_enabled, &enabled);
    return enabled;
}

/* Captures (translating threads). */

/* Drops the lookups of 'c' (their rule references and whole flows), but
 * keeps its arrays. */
static void
kd_capture_clear(struct kd_capture *c)
{
    for (size_t i = 0; i < c->n; i++) {
        ofproto_rule_unref(c->lookups[i].rule);
        free(c->lookups[i].full);
    }
    c->n = 0;
    c->n_deltas = 0;
    c->n_deps = 0;
}

static void
kd_capture_destroy(struct kd_capture *c)
{
    if (c) {
        kd_capture_clear(c);
        free(c->lookups);
        free(c->deltas);
        free(c->deps);
        free(c->first);
        free(c->last);
        free(c);
    }
}

/* Starts 'r' as the region before a translation's first lookup: nothing
 * fixed but the translation state, zero. */
static void
kd_region_init(struct kd_region *r)
{
    memset(r, 0, sizeof *r);
    for (size_t w = KD_STATE_FIRST; w < KD_STATE_END; w++) {
        r->mask[w] = UINT64_MAX;
        r->map[w / 64] |= UINT64_C(1) << (w % 64);
    }
}

/* Sets word 'w' of 'r' to 'mask' and 'value'. */
static void
kd_region_set(struct kd_region *r, size_t w, uint64_t mask, uint64_t value)
{
    uint64_t bit = UINT64_C(1) << (w % 64);

    r->mask[w] = mask;
    r->value[w] = value;
    r->map[w / 64] = mask ? r->map[w / 64] | bit : r->map[w / 64] & ~bit;
}

/* Per word of struct flow, the bits of the wildcards that a lookup's region
 * takes ('keep') and those it fixes whatever the wildcards say ('force'):
 *
 *   - the translation state whole (see KD_STATE_FIRST);
 *
 *   - not conj_id: the flow's conj_id is 0 at a lookup, while the wildcards
 *     may fix it for the conj_id lookups the classifier made inside, and
 *     'l->conj' says what the lookup depends on there;
 *
 *   - not the tunnel metadata's table pointer, which the wildcards carry as
 *     is: it is not a field.
 *
 * Set up once by kairo_delta_init(), read-only after. */
static struct {
    uint64_t keep[FLOW_U64S];
    uint64_t force[FLOW_U64S];
} kd_region_bits;

static void
kd_region_bits_init(void)
{
    const size_t tab_word = offsetof(struct flow, tunnel.metadata.tab) / 8;
    BUILD_ASSERT_DECL(offsetof(struct flow, tunnel.metadata.tab) % 8 == 0);
    union {
        struct flow flow;
        uint64_t words[FLOW_U64S];
    } keep;

    memset(&keep, 0xff, sizeof keep);
    keep.flow.conj_id = 0;
    for (size_t i = 0; i < FLOW_U64S; i++) {
        bool state = i >= KD_STATE_FIRST && i < KD_STATE_END;

        kd_region_bits.keep[i] = (state || i == tab_word ? 0
                                  : keep.words[i]);
        kd_region_bits.force[i] = state ? UINT64_MAX : 0;
    }
}

/* Returns the mask of word 'i' of a lookup's region, given the wildcards'
 * words 'mw'. */
static inline uint64_t
kd_region_mask(const uint64_t *mw, size_t i)
{
    return (mw[i] & kd_region_bits.keep[i]) | kd_region_bits.force[i];
}

/* For each word of struct flow, given a lookup's flow 'fw' and wildcards
 * 'mw', ORs into 'changed' how 'fw' differs from 'first', and sets 'differ'
 * nonzero where the lookup's region differs from 'last'.  One pass without
 * branches over arrays that do not overlap, which the compiler vectorizes. */
static void
kd_region_compare(const uint64_t *restrict fw, const uint64_t *restrict mw,
                  const uint64_t *restrict first,
                  const struct kd_region *restrict last,
                  uint64_t *restrict changed, uint64_t *restrict differ)
{
    for (size_t i = 0; i < FLOW_U64S; i++) {
        uint64_t m = kd_region_mask(mw, i);
        uint64_t v = fw[i] & m;

        changed[i] |= fw[i] ^ first[i];
        differ[i] = (m ^ last->mask[i]) | (v ^ last->value[i]);
    }
}

/* Records in 'l' (of 'c') its region, 'flow' under 'wc', as the words that
 * differ from the previous lookup's.  This runs for every lookup of every
 * translation, upcalls included: kd_region_compare() finds the words that
 * differ, then only those are stored. */
static void
kd_capture_store(struct kd_capture *c, struct kd_lookup *l,
                 const struct flow *flow, const struct flow_wildcards *wc)
{
    const size_t tab_word = offsetof(struct flow, tunnel.metadata.tab) / 8;
    const uint64_t *fw = (const uint64_t *) flow;
    const uint64_t *mw = (const uint64_t *) &wc->masks;

    if (l == c->lookups) {
        if (!c->first) {
            c->first = xmalloc(sizeof *c->first);
            c->last = xmalloc(sizeof *c->last);
        }
        c->first->flow = *flow;
        memset(&c->first->changed, 0, sizeof c->first->changed);
        kd_region_init(c->last);
    }

    if (c->n_deltas + FLOW_U64S > c->allocated_deltas) {
        c->allocated_deltas = 2 * (c->n_deltas + FLOW_U64S);
        c->deltas = xrealloc(c->deltas,
                             c->allocated_deltas * sizeof *c->deltas);
    }

    /* What changed since the first lookup (nothing, at the first), and
     * which words of the region differ from the previous lookup's. */
    uint64_t differ[FLOW_U64S];
    kd_region_compare(fw, mw, (const uint64_t *) &c->first->flow,
                      c->last, (uint64_t *) &c->first->changed, differ);
    ((uint64_t *) &c->first->changed)[tab_word] = 0;

    struct kd_region *last = c->last;
    struct kd_delta *d = &c->deltas[c->n_deltas];
    for (size_t i = 0; i < FLOW_U64S; i++) {
        if (differ[i]) {
            uint64_t m = kd_region_mask(mw, i);
            uint64_t v = fw[i] & m;

            last->mask[i] = m;
            last->value[i] = v;
            *d++ = (struct kd_delta) { .mask = m, .value = v, .w = i };
        }
    }
    l->ofs = c->n_deltas;
    l->n_deltas = d - &c->deltas[c->n_deltas];
    c->n_deltas += l->n_deltas;
}

/* Advances 'r', the region of the lookup before 'l' in 'c' (see
 * kd_region_init() for the first), to the region of 'l'. */
static void
kd_region_replay(struct kd_region *r, const struct kd_capture *c,
                 const struct kd_lookup *l)
{
    for (size_t i = 0; i < l->n_deltas; i++) {
        const struct kd_delta *d = &c->deltas[l->ofs + i];

        kd_region_set(r, d->w, d->mask, d->value);
    }
}

static void
kd_thread_destroy(void *t_)
{
    struct kd_thread *t = t_;

    for (size_t i = 0; i < t->n; i++) {
        kd_capture_destroy(t->slots[i]);
    }
    for (size_t i = 0; i < t->n_spares; i++) {
        kd_capture_destroy(t->spares[i]);
    }
    struct kd_event *ev;
    LIST_FOR_EACH_POP (ev, list_node, &t->spare_events) {
        free(ev);
    }
    free(t);
}

static struct kd_thread *
kd_thread_get(void)
{
    struct kd_thread *t = ovsthread_getspecific(kd_thread_key);

    if (!t) {
        t = xzalloc(sizeof *t);
        ovs_list_init(&t->spare_events);
        ovsthread_setspecific(kd_thread_key, t);
    }
    return t;
}

/* Removes and returns slot 'i' of 't'. */
static struct kd_capture *
kd_thread_remove(struct kd_thread *t, size_t i)
{
    struct kd_capture *c = t->slots[i];

    memmove(&t->slots[i], &t->slots[i + 1],
            (t->n - i - 1) * sizeof t->slots[0]);
    t->n--;
    return c;
}

/* Returns capture 'c', taken from this thread with kd_capture_take(), to
 * the thread for reuse. */
static void
kd_capture_release(struct kd_capture *c)
{
    if (c) {
        struct kd_thread *t = ovsthread_getspecific(kd_thread_key);

        kd_capture_clear(c);
        if (t && t->n_spares < KD_MAX_SPARES) {
            t->spares[t->n_spares++] = c;
        } else {
            kd_capture_destroy(c);
        }
    }
}

static ssize_t
kd_thread_find(const struct kd_thread *t, const struct xlate_cache *xcache)
{
    for (size_t i = t->n; i-- > 0;) {
        if (t->slots[i]->xcache == xcache) {
            return i;
        }
    }
    return -1;
}

/* Returns true if the newest capture of 't' is still waiting for its
 * translation to name its xlate cache. */
static bool
kd_thread_has_unbound(const struct kd_thread *t)
{
    const struct kd_capture *c = t->n ? t->slots[t->n - 1] : NULL;

    return c && !c->xcache && !c->n && !c->overflow;
}

/* Starts capturing, on this thread, the lookups of a translation into
 * 'xcache' (NULL if not known yet), with whole flows if 'full'. */
static void
kd_capture_start(const struct xlate_cache *xcache, bool full)
{
    struct kd_thread *t = kd_thread_get();

    t->n_conj = 0;
    if (kd_thread_has_unbound(t)) {
        t->slots[t->n - 1]->xcache = xcache;
        t->slots[t->n - 1]->full = full;
    } else {
        ssize_t old = xcache ? kd_thread_find(t, xcache) : -1;

        if (old >= 0) {
            /* A translation into the same cache that was never installed. */
            kd_capture_release(kd_thread_remove(t, old));
        } else if (t->n >= KD_MAX_SLOTS) {
            kd_capture_release(kd_thread_remove(t, 0));
            COVERAGE_INC(kairo_delta_capture_lost);
        }
        struct kd_capture *c = (t->n_spares ? t->spares[--t->n_spares]
                                : xzalloc(sizeof *c));
        c->xcache = xcache;
        c->full = full;
        c->overflow = false;
        t->slots[t->n++] = c;
    }
}

/* udpif_ukey_observer's 'xlate_token': a translation into 'xcache' (NULL if
 * not known yet) starts on this thread. */
static uint64_t
kd_xlate_token(const struct xlate_cache *xcache)
{
    uint64_t token;

    atomic_read_explicit(&kd_gen, &token, memory_order_acquire);
    if (!kd_is_enabled()) {
        /* No capture in stock mode: the megaflow is opaque until delta mode
         * is on and re-translates it. */
        return token;
    }

    kd_capture_start(xcache, false);
    return token;
}

/* Returns this thread's capture of the translation into 'xcache' under way,
 * or NULL if it is not one the observer reports. */
static struct kd_capture *
kd_capture_find(struct kd_thread *t, const struct xlate_cache *xcache)
{
    ssize_t i;

    if (!t || !t->n) {
        return NULL;
    }
    i = kd_thread_find(t, xcache);
    if (i >= 0) {
        return t->slots[i];
    } else if (kd_thread_has_unbound(t)) {
        t->slots[t->n - 1]->xcache = xcache;
        return t->slots[t->n - 1];
    } else {
        /* A lookup into a cache of its own, as native tunnelling makes for
         * the underlay bridge, inside the translation under way, which is
         * the newest: what it depends on there is not known. */
        t->slots[t->n - 1]->overflow = true;
        return NULL;
    }
}

/* classifier_conjunction_hook: a conjunctive match in a lookup under way on
 * this thread.  The lookup hook that follows the lookup takes it. */
static void
kd_conj_hook(const struct classifier *cls, uint32_t id, int priority,
             const struct cls_rule *rule)
{
    struct kd_thread *t = ovsthread_getspecific(kd_thread_key);

    if (t && t->n) {
        if (t->n_conj < KD_MAX_CONJ_MATCHES) {
            t->conj[t->n_conj++] = (struct kd_conj_match) {
                .cls = cls, .id = id, .priority = priority, .rule = rule,
            };
        } else {
            t->n_conj = KD_MAX_CONJ_MATCHES + 1;
        }
    }
}

/* Sets 'l''s threshold and conjunctions for a lookup in 'cls' that returned
 * 'rule', from the conjunctive matches of 't' (which it consumes).  The
 * classifier returns the first rule that the lookup with a complete
 * conjunction's conj_id finds, trying conjunctions from the highest
 * priority down: so a rule inserted at or above the lower of that
 * conjunction's priority and the rule's can change the result.  If one of
 * those lookups found nothing, any rule can, as with a miss. */
static void
kd_lookup_set_conj(struct kd_thread *t, const struct classifier *cls,
                   const struct rule *rule, struct kd_lookup *l)
{
    size_t n = 0;
    bool found_nothing = false, overflow = t->n_conj > KD_MAX_CONJ_MATCHES;
    const struct kd_conj_match *last = NULL;

    l->threshold = rule ? rule->cr.priority : INT_MIN;
    l->conj = KAIRO_DELTA_INDEX_CONJ_NONE;
    l->conj_id = 0;
    for (size_t i = 0; i < MIN(t->n_conj, KD_MAX_CONJ_MATCHES); i++) {
        const struct kd_conj_match *m = &t->conj[i];

        if (m->cls != cls) {
            continue;           /* Some other classifier's lookup. */
        }
        if (n++ && m->id != last->id) {
            l->conj = KAIRO_DELTA_INDEX_CONJ_ANY;
        }
        found_nothing |= !m->rule;
        last = m;
    }
    t->n_conj = 0;

    if (overflow) {
        l->threshold = INT_MIN;
        l->conj = KAIRO_DELTA_INDEX_CONJ_ANY;
    } else if (n) {
        if (l->conj == KAIRO_DELTA_INDEX_CONJ_NONE) {
            l->conj = KAIRO_DELTA_INDEX_CONJ_ONE;
            l->conj_id = last->id;
        }
        if (found_nothing || !rule || last->rule != &rule->cr) {
            l->threshold = INT_MIN;
        } else {
            l->threshold = MIN(last->priority, rule->cr.priority);
        }
    }
}

/* ofproto_dpif_lookup_hook. */
static void
kd_lookup_hook(struct ofproto_dpif *ofproto, uint8_t table_id,
               const struct flow *flow, const struct flow_wildcards *wc,
               struct rule_dpif *rule, struct xlate_cache *xcache)
{
    struct kd_thread *t = ovsthread_getspecific(kd_thread_key);
    struct kd_capture *c = kd_capture_find(t, xcache);

    if (!c) {
        if (t) {
            t->n_conj = 0;
        }
        return;
    }
    if (c->n >= KD_MAX_LOOKUPS) {
        c->overflow = true;
        t->n_conj = 0;
        return;
    }
    if (c->n >= c->allocated) {
        /* Most translations make a few lookups: one allocation for them. */
        c->allocated = MAX(4, 2 * c->allocated);
        c->lookups = xrealloc(c->lookups, c->allocated * sizeof *c->lookups);
    }

    struct kd_lookup *l = &c->lookups[c->n++];
    l->ofproto = &ofproto->up;
    l->table_id = table_id;
    /* A rule that is going away cannot be kept; recording a miss instead
     * only widens what the lookup is affected by. */
    l->rule = rule && ofproto_rule_try_ref(&rule->up) ? &rule->up : NULL;
    kd_lookup_set_conj(t, &ofproto->up.tables[table_id].cls, l->rule, l);

    struct flow_wildcards catchall;
    if (!wc) {
        flow_wildcards_init_catchall(&catchall);
        wc = &catchall;
    }
    kd_capture_store(c, l, flow, wc);
    l->full = NULL;
    if (c->full) {
        l->full = xmalloc(sizeof *l->full);
        l->full->flow = *flow;
        l->full->wc = *wc;
    }
}

/* Returns the entry of capture 'c' for a dependency on ('space', 'key'),
 * a new one with a zero payload if there was none, or NULL if 'c' has no
 * room for another (then it is opaque). */
static struct kairo_delta_dep *
kd_capture_dep(struct kd_capture *c, const void *space, uint64_t key)
{
    for (size_t i = 0; i < c->n_deps; i++) {
        struct kairo_delta_dep *d = &c->deps[i];

        if (d->space == space && d->key == key) {
            return d;
        }
    }
    if (c->n_deps >= KD_MAX_DEPS) {
        c->overflow = true;
        return NULL;
    }
    if (c->n_deps >= c->allocated_deps) {
        c->allocated_deps = MAX(4, 2 * c->allocated_deps);
        c->deps = xrealloc(c->deps, c->allocated_deps * sizeof *c->deps);
    }

    struct kairo_delta_dep *d = &c->deps[c->n_deps++];
    *d = (struct kairo_delta_dep) { .space = space, .key = key };
    return d;
}

/* Returns this thread's capture of the translation under way, or NULL if
 * none is.  For the hooks that are not told the translation's xlate cache:
 * translations on one thread do not nest, and a capture starts with its
 * translation, so the newest is the one under way.  (A lookup outside any
 * translation on a thread that has captures waiting to be installed adds to
 * the newest one a dependency it does not have, which is sound.) */
static struct kd_capture *
kd_capture_current(void)
{
    struct kd_thread *t = ovsthread_getspecific(kd_thread_key);

    return t && t->n ? t->slots[t->n - 1] : NULL;
}

/* xlate_group_hook. */
static void
kd_xlate_group_hook(const struct ofproto_dpif *ofproto, uint32_t group_id,
                    bool liveness, const struct flow *flow,
                    const struct xlate_cache *xcache)
{
    struct kd_thread *t = ovsthread_getspecific(kd_thread_key);
    struct kd_capture *c = kd_capture_find(t, xcache);
    struct kairo_delta_dep *d = (c ? kd_capture_dep(c, &ofproto->up,
                                                    KD_DEP_GROUP | group_id)
                                 : NULL);

    if (d) {
        if (!d->data[0]) {
            d->data[0] = (uint64_t) flow->dp_hash << 32;
        }
        d->data[0] |= (liveness ? KD_GROUP_LIVENESS
                       : KD_GROUP_LOOKUP | (flow->dp_hash
                                            ? 0 : KD_GROUP_DP_HASH_ZERO));
    }
}

/* xlate_port_hook. */
static void
kd_xlate_port_hook(const struct ofproto_dpif *ofproto, ofp_port_t ofp_port)
{
    struct kd_capture *c = kd_capture_current();

    if (c) {
        kd_capture_dep(c, ofproto ? &ofproto->up : NULL,
                       KD_DEP_PORT | ofp_to_u16(ofp_port));
    }
}

/* Returns the dependency key of 'mac' on 'vlan'. */
static uint64_t
kd_mac_key(struct eth_addr mac, uint16_t vlan)
{
    return KD_DEP_MAC | eth_addr_to_uint64(mac) << 12 | (vlan & 0xfff);
}

/* xlate_mac_hook. */
static void
kd_xlate_mac_hook(const struct mac_learning *ml, struct eth_addr mac,
                  uint16_t vlan)
{
    struct kd_capture *c = kd_capture_current();

    if (c) {
        kd_capture_dep(c, ml, kd_mac_key(mac, vlan));
    }
}

/* Takes this thread's capture for a translation into 'xcache'.  The caller
 * gives it back with kd_capture_release(). */
static struct kd_capture *
kd_capture_take(const struct xlate_cache *xcache)
{
    struct kd_thread *t = ovsthread_getspecific(kd_thread_key);
    if (!t || !xcache) {
        return NULL;
    }

    ssize_t i = kd_thread_find(t, xcache);
    if (i < 0 && kd_thread_has_unbound(t)) {
        /* A revalidator translation that made no table lookup. */
        i = t->n - 1;
    }
    return i >= 0 ? kd_thread_remove(t, i) : NULL;
}

/* Returns the bytes kd_capture_pack() needs for 'c' (may be NULL). */
static size_t
kd_capture_packed_size(const struct kd_capture *c)
{
    return (c ? sizeof *c + c->n * sizeof *c->lookups
                + c->n_deltas * sizeof *c->deltas
                + c->n_deps * sizeof *c->deps
                + (c->n ? sizeof *c->first : 0)
            : 0);
}

/* Copies 'c' and its lookups, deltas and dependencies into the
 * kd_capture_packed_size(c) bytes at 'p', 8-byte aligned, and returns the
 * copy, which owns them: the lookups' rule references and whole flows move
 * from 'c' to it.  The copy is never freed by itself (see
 * kd_event_destroy()). */
static struct kd_capture *
kd_capture_pack(struct kd_capture *c, void *p_)
{
    BUILD_ASSERT_DECL(sizeof(struct kd_capture) % 8 == 0);
    BUILD_ASSERT_DECL(sizeof(struct kd_lookup) % 8 == 0);
    BUILD_ASSERT_DECL(sizeof(struct kd_delta) % 8 == 0);
    BUILD_ASSERT_DECL(sizeof(struct kairo_delta_dep) % 8 == 0);

    struct kd_capture *p = p_;
    size_t lookups_size = c->n * sizeof *c->lookups;
    size_t deltas_size = c->n_deltas * sizeof *c->deltas;

    *p = *c;
    p->last = NULL;
    p->lookups = (struct kd_lookup *) (p + 1);
    p->allocated = p->n;
    memcpy(p->lookups, c->lookups, lookups_size);
    p->deltas = ALIGNED_CAST(struct kd_delta *,
                             (char *) p->lookups + lookups_size);
    p->allocated_deltas = p->n_deltas;
    memcpy(p->deltas, c->deltas, deltas_size);
    p->deps = ALIGNED_CAST(struct kairo_delta_dep *,
                           (char *) p->deltas + deltas_size);
    p->allocated_deps = p->n_deps;
    memcpy(p->deps, c->deps, c->n_deps * sizeof *c->deps);
    p->first = NULL;
    if (c->n) {
        p->first = (struct kd_first *) (p->deps + p->n_deps);
        *p->first = *c->first;
    }
    c->n = c->n_deltas = c->n_deps = 0;
    return p;
}

/* Returns a zeroed ukey event followed by 'extra' bytes (not zeroed) at
 * KD_EVENT_HEAD, from this thread's spare blocks if one is big enough. */
static struct kd_event *
kd_event_alloc(size_t extra)
{
    struct kd_thread *t = kd_thread_get();
    size_t size = KD_EVENT_HEAD + extra;
    struct kd_event *ev = NULL;

    if (ovs_list_is_empty(&t->spare_events)) {
        ovs_mutex_lock(&kd_spare_mutex);
        ovs_list_push_back_all(&t->spare_events, &kd_spare_events);
        kd_n_spare_events = 0;
        ovs_mutex_unlock(&kd_spare_mutex);
    }
    while (!ev && !ovs_list_is_empty(&t->spare_events)) {
        ev = CONTAINER_OF(ovs_list_pop_front(&t->spare_events),
                          struct kd_event, list_node);
        if (ev->block_size < size) {
            free(ev);
            ev = NULL;
        }
    }

    size_t block_size = ev ? ev->block_size : ROUND_UP(size, KD_EVENT_BLOCK);
    if (!ev) {
        ev = xmalloc(block_size);
    }
    memset(ev, 0, sizeof *ev);
    ev->block_size = block_size;
    return ev;
}

/* Hooks (any thread). */

/* Appends 'ev' to the queue.  A delta gets the next generation. */
static void
kd_enqueue(struct kd_event *ev, bool is_delta)
{
    bool raced = false;
    size_t n_queued;
    bool sleeps;
    uint64_t gen;

    ovs_mutex_lock(&kd_queue_mutex);
    atomic_read_relaxed(&kd_gen, &gen);
    if (is_delta) {
        ev->gen = gen + 1;
        atomic_store_explicit(&kd_gen, ev->gen, memory_order_release);
    } else if (ev->type == KD_EV_UKEY
               && ev->ukey_event != UDPIF_UKEY_DELETED) {
        /* A delta came after the translation began: the main thread may
         * have to mark the megaflow again, which should not wait for the
         * next KD_BURST_MS. */
        raced = ev->gen < gen;
    }
    ovs_list_push_back(&kd_queue, &ev->list_node);
    atomic_add(&kd_n_queued, 1, &n_queued);
    ovs_mutex_unlock(&kd_queue_mutex);

    /* Sequentially consistent with kairo_delta_wait(): either it sees the
     * event queued, or this sees it asleep. */
    atomic_read(&kd_main_sleeps, &sleeps);
    if (is_delta || (!n_queued && (sleeps || raced))) {
        seq_change(kd_queue_seq);
    }
}

static void
kd_rule_hook(struct ofproto *ofproto, enum ofp_flow_update_event event,
             enum ofp_flow_removed_reason reason OVS_UNUSED,
             struct rule *rule, struct rule *old_rule)
{
    struct kd_event *ev = xzalloc(sizeof *ev);

    ev->type = KD_EV_RULE;
    ev->ofproto = ofproto;
    ev->delta = kd_is_enabled();
    ev->time = kd_clock_usec();
    ev->rule_event = event;
    ev->rule = rule;
    ofproto_rule_ref(rule);
    ev->old_rule = old_rule;
    ofproto_rule_ref(old_rule);
    kd_enqueue(ev, true);
}

static const struct group_dpif *
kd_group_dpif(const struct ofgroup *group)
{
    return CONTAINER_OF(group, struct group_dpif, up);
}

/* Returns true if buckets 'a' and 'b' execute the same actions with the
 * same liveness. */
static bool
kd_bucket_equal(const struct ofputil_bucket *a, const struct ofputil_bucket *b)
{
    return (a->watch_port == b->watch_port
            && a->watch_group == b->watch_group
            && ofpacts_equal(a->ofpacts, a->ofpacts_len,
                             b->ofpacts, b->ofpacts_len));
}

/* Returns the bucket of 'group' with 'bucket_id', or NULL. */
static const struct ofputil_bucket *
kd_group_bucket(const struct ofgroup *group, uint32_t bucket_id)
{
    const struct ofputil_bucket *b;

    LIST_FOR_EACH (b, list_node, &group->buckets) {
        if (b->bucket_id == bucket_id) {
            return b;
        }
    }
    return NULL;
}

/* Fills 'gc', for group 'old' replaced by 'new' (same id), with what lets
 * the main thread spare the megaflows the modify cannot affect: if both are
 * dp_hash select groups with the same hashing, a megaflow that only hashed
 * and recirculated still does the same, and one that picked a bucket by its
 * dp_hash picks the same one, with the same contents, if the new hash map
 * has it in the same slot.  (With another selection method the choice
 * depends on every bucket, so every user is affected.) */
static void
kd_group_change_refine(struct kd_group_change *gc,
                       const struct group_dpif *old,
                       const struct group_dpif *new)
{
    if (old->up.type != OFPGT11_SELECT || new->up.type != OFPGT11_SELECT
        || old->selection_method != SEL_METHOD_DP_HASH
        || new->selection_method != SEL_METHOD_DP_HASH
        || old->hash_alg != new->hash_alg
        || old->hash_basis != new->hash_basis
        || !old->hash_map || !new->hash_map) {
        return;
    }

    size_t n_slots = (size_t) new->hash_mask + 1;
    gc->refined = true;
    gc->old_hash_mask = old->hash_mask;
    gc->hash_mask = new->hash_mask;
    gc->hash_map = xmalloc(n_slots * sizeof *gc->hash_map);
    for (size_t i = 0; i < n_slots; i++) {
        const struct ofputil_bucket *b = new->hash_map[i];
        const struct ofputil_bucket *was
            = b ? kd_group_bucket(&old->up, b->bucket_id) : NULL;

        gc->hash_map[i] = (was && kd_bucket_equal(was, b)
                           ? b->bucket_id : UINT32_MAX);
    }
}

static void
kd_group_hook(struct ofproto *ofproto, const struct ofproto_group_mod *ogm)
{
    struct kd_event *ev = xzalloc(sizeof *ev);
    size_t n = MAX(group_collection_n(&ogm->old_groups), 1);

    ev->type = KD_EV_GROUP;
    ev->ofproto = ofproto;
    ev->delta = kd_is_enabled();
    ev->time = kd_clock_usec();
    ev->groups = xzalloc(sizeof *ev->groups + n * sizeof *ev->groups->changes);
    if (!group_collection_n(&ogm->old_groups)) {
        /* An add: what looked the group up found nothing.  (A delete of
         * every group when there is none changes nothing.) */
        if (ogm->new_group) {
            ev->groups->n = 1;
            ev->groups->changes[0].group_id = ogm->new_group->group_id;
        }
    } else {
        struct ofgroup *old;

        GROUP_COLLECTION_FOR_EACH (old, &ogm->old_groups) {
            struct kd_group_change *gc
                = &ev->groups->changes[ev->groups->n++];

            gc->group_id = old->group_id;
            if (ogm->new_group && ogm->new_group->group_id == old->group_id) {
                kd_group_change_refine(gc, kd_group_dpif(old),
                                       kd_group_dpif(ogm->new_group));
            }
        }
    }
    kd_enqueue(ev, true);
}

/* Port changes taken since the last xlate configuration rebuild (main
 * thread), and the value of 'kd_main_loops' when the latest was taken. */
static struct kd_port_changes kd_pending_ports;
static uint64_t kd_pending_ports_loop;

/* ofproto_dpif_change_hooks' 'port_changed': takes a change of 'port' (NULL:
 * of the set of 'ofproto''s ports or bundles) while delta mode is on, except
 * for tunnel ports, whose changes also change how received packets map to
 * ports (left to a full revalidation, counted). */
static bool
kd_port_changed(struct ofproto_dpif *ofproto, const struct ofport *port,
                enum revalidate_reason reason OVS_UNUSED)
{
    struct kd_port_changes *pc = &kd_pending_ports;

    if (!kd_is_enabled()) {
        return false;
    }
    if (port && netdev_get_tunnel_config(port->netdev)) {
        kd_stats.fallbacks[KD_FB_TUNNEL]++;
        COVERAGE_INC(kairo_delta_fallback);
        return false;
    }

    struct kd_port_change change = {
        .ofproto = &ofproto->up,
        .ofp_port = port ? port->ofp_port : OFPP_ALL,
    };
    for (size_t i = 0; i < pc->n; i++) {
        if (pc->changes[i].ofproto == change.ofproto
            && pc->changes[i].ofp_port == change.ofp_port) {
            return true;
        }
    }
    if (pc->n >= pc->allocated) {
        pc->changes = x2nrealloc(pc->changes, &pc->allocated,
                                 sizeof *pc->changes);
    }
    pc->changes[pc->n++] = change;
    kd_pending_ports_loop = kd_main_loops;
    return true;
}

/* ofproto_dpif_change_hooks' 'xcfg_committed': every thread translates with
 * the configuration that has the changes taken, so the megaflows that
 * looked the changed ports up can be re-translated: queues the changes as
 * one delta, unless a full revalidation ('full') went with the
 * configuration, for a change not taken (in stock mode, every change). */
static void
kd_xcfg_committed(struct dpif_backer *backer OVS_UNUSED, bool full)
{
    if (full) {
        kd_stats.switch_full++;
        COVERAGE_INC(kairo_delta_switch_full);
        free(kd_pending_ports.changes);
        memset(&kd_pending_ports, 0, sizeof kd_pending_ports);
        return;
    }

    struct kd_event *ev = xzalloc(sizeof *ev);

    ev->type = KD_EV_PORTS;
    ev->delta = true;
    ev->time = kd_clock_usec();
    ev->ports = xmemdup(&kd_pending_ports, sizeof kd_pending_ports);
    memset(&kd_pending_ports, 0, sizeof kd_pending_ports);
    kd_enqueue(ev, true);
}

/* ofproto_dpif_change_hooks' 'mac_learning_changed': in delta mode, every
 * change was queued by kd_mac_change_hook(). */
static bool
kd_mac_learning_changed(struct ofproto_dpif *ofproto OVS_UNUSED)
{
    return kd_is_enabled();
}

/* mac_learning_change_hook: the entry for 'mac' on 'vlan' in 'ml' changed,
 * on any thread, with 'ml''s lock held for writing.  A translation that
 * looked it up before reads a token older than this delta's. */
static void
kd_mac_change_hook(const struct mac_learning *ml, struct eth_addr mac,
                   uint16_t vlan)
{
    if (kd_is_enabled()) {
        struct kd_event *ev = xzalloc(sizeof *ev);

        ev->type = KD_EV_MAC;
        ev->delta = true;
        ev->time = kd_clock_usec();
        ev->ml = ml;
        ev->mac_key = kd_mac_key(mac, vlan);
        kd_enqueue(ev, true);
    }
}

static const struct ofproto_dpif_change_hooks kd_change_hooks = {
    .port_changed = kd_port_changed,
    .xcfg_committed = kd_xcfg_committed,
    .mac_learning_changed = kd_mac_learning_changed,
};

static bool
kd_tables_version_hook(struct ofproto_dpif *ofproto OVS_UNUSED,
                       ovs_version_t version OVS_UNUSED)
{
    if (kd_is_enabled()) {
        COVERAGE_INC(kairo_delta_absorbed);
        return true;
    }
    return false;
}

/* Returns true if 'xcache' holds a learn action's entry.  Notes in 'c'
 * (if nonnull) the bucket of each group whose buckets the translation
 * executed. */
static bool
kd_xcache_scan(const struct xlate_cache *xcache, struct kd_capture *c)
{
    struct ofpbuf entries = xcache->entries;    /* The loop pulls a copy. */
    struct xc_entry *entry;
    bool learns = false;

    XC_ENTRY_FOR_EACH (entry, &entries) {
        if (entry->type == XC_LEARN) {
            learns = true;
        } else if (entry->type == XC_GROUP && c) {
            const struct ofgroup *group = &entry->group.group->up;
            const struct ofputil_bucket *bucket = entry->group.bucket;
            struct kairo_delta_dep *d
                = kd_capture_dep(c, group->ofproto,
                                 KD_DEP_GROUP | group->group_id);
            if (d) {
                d->data[0] |= KD_GROUP_BUCKETS;
                d->data[1] = bucket ? bucket->bucket_id : UINT32_MAX;
            }
        }
    }
    return learns;
}

static void
kd_ukey_changed(struct udpif *udpif, enum udpif_ukey_event event,
                const struct udpif_ukey_id *id,
                const struct nlattr *key, size_t key_len,
                const struct nlattr *mask, size_t mask_len,
                const struct xlate_cache *xcache, uint64_t token)
{
    struct kd_capture *c = (event != UDPIF_UKEY_DELETED
                            ? kd_capture_take(xcache) : NULL);
    bool learns = (event != UDPIF_UKEY_DELETED && xcache
                   && kd_xcache_scan(xcache, c));
    size_t capture_size = kd_capture_packed_size(c);
    size_t attrs_size = c ? ROUND_UP(key_len, 8) + ROUND_UP(mask_len, 8) : 0;
    struct kd_event *ev = kd_event_alloc(capture_size + attrs_size);

    if (c) {
        char *p = (char *) ev + KD_EVENT_HEAD;

        ev->capture = kd_capture_pack(c, p);
        kd_capture_release(c);
        p += capture_size;
        ev->key = memcpy(p, key, key_len);
        ev->key_len = key_len;
        p += ROUND_UP(key_len, 8);
        ev->mask = memcpy(p, mask, mask_len);
        ev->mask_len = mask_len;
    }
    ev->type = KD_EV_UKEY;
    ev->gen = token;
    if (event != UDPIF_UKEY_INSTALLED) {
        ev->time = kd_clock_usec();     /* Not on the upcall path. */
    }
    ev->udpif = udpif;
    ev->ukey_event = event;
    ev->id = *id;
    ev->learns = learns;
    kd_enqueue(ev, false);
}

static void kd_udpif_destroyed(struct udpif *);

static const struct udpif_ukey_observer kd_observer = {
    .xlate_token = kd_xlate_token,
    .ukey_changed = kd_ukey_changed,
    .udpif_destroyed = kd_udpif_destroyed,
};

/* Main thread: bridges, udpifs, megaflows. */

static struct kd_bridge *
kd_bridge_find(const struct ofproto *ofproto)
{
    struct kd_bridge *b;

    HMAP_FOR_EACH_WITH_HASH (b, node, hash_pointer(ofproto, 0),
                             &kd_bridges) {
        if (b->ofproto == ofproto) {
            return b;
        }
    }
    return NULL;
}

/* An index holds a reference to each rule it names, so that no other rule
 * takes its address while it does. */
static void
kd_hold_rule(const void *rule)
{
    ofproto_rule_ref(CONST_CAST(struct rule *, rule));
}

static void
kd_release_rule(const void *rule)
{
    ofproto_rule_unref(CONST_CAST(struct rule *, rule));
}

static struct kd_bridge *
kd_bridge_get(const struct ofproto *ofproto)
{
    struct kd_bridge *b = kd_bridge_find(ofproto);

    if (!b) {
        b = xmalloc(sizeof *b);
        b->ofproto = ofproto;
        b->index = kairo_delta_index_create();
        kairo_delta_index_set_rule_hooks(b->index, kd_hold_rule,
                                         kd_release_rule);
        b->round = 0;
        hmap_insert(&kd_bridges, &b->node, hash_pointer(ofproto, 0));
    }
    return b;
}

/* Frees the bridges whose indexes hold no megaflow: a deleted bridge's,
 * once its megaflows are gone, and an idle one's, which kd_bridge_get()
 * makes anew when a translation goes through it again.  No megaflow and no
 * pending event refers to a bridge whose index is empty. */
static void
kd_bridges_sweep(void)
{
    struct kd_bridge *b;

    HMAP_FOR_EACH_SAFE (b, node, &kd_bridges) {
        if (kairo_delta_index_is_empty(b->index)) {
            struct kairo_delta_index_stats s;
            struct kairo_delta_index_stats *f = &kd_freed_index_stats;

            kairo_delta_index_get_stats(b->index, &s);
            f->lookups_examined += s.lookups_examined;
            f->nodes_walked += s.nodes_walked;
            f->subtrees_skipped += s.subtrees_skipped;
            f->megaflows_examined += s.megaflows_examined;
            f->megaflows_reported += s.megaflows_reported;

            kairo_delta_index_destroy(b->index);
            hmap_remove(&kd_bridges, &b->node);
            free(b);
            COVERAGE_INC(kairo_delta_bridge_freed);
        }
    }
}

/* Returns 'b''s index with the open round of marks as its round of
 * queries: the megaflows already marked in the round are not reported
 * again. */
static struct kairo_delta_index *
kd_bridge_marking_index(struct kd_bridge *b)
{
    if (b->round != kd_round_seq) {
        kairo_delta_index_begin_round(b->index);
        b->round = kd_round_seq;
    }
    return b->index;
}

/* Returns 'b''s index outside any round of queries, for queries that must
 * hear of every megaflow. */
static struct kairo_delta_index *
kd_bridge_whole_index(struct kd_bridge *b)
{
    if (b->round) {
        kairo_delta_index_end_round(b->index);
        b->round = 0;
    }
    return b->index;
}

static struct kd_udpif *
kd_udpif_find(const struct udpif *udpif)
{
    struct kd_udpif *kdu;

    HMAP_FOR_EACH_WITH_HASH (kdu, node, hash_pointer(udpif, 0), &kd_udpifs) {
        if (kdu->udpif == udpif) {
            return kdu;
        }
    }
    return NULL;
}

static struct kd_udpif *
kd_udpif_get(struct udpif *udpif)
{
    struct kd_udpif *kdu = kd_udpif_find(udpif);

    if (!kdu) {
        kdu = xzalloc(sizeof *kdu);
        kdu->udpif = udpif;
        hmap_init(&kdu->megaflows);
        hmap_insert(&kd_udpifs, &kdu->node, hash_pointer(udpif, 0));
    }
    return kdu;
}

static uint32_t
kd_id_hash(const struct udpif_ukey_id *id)
{
    return hash_bytes(&id->ufid, sizeof id->ufid, id->pmd_id);
}

static struct kd_megaflow *
kd_megaflow_find(const struct kd_udpif *kdu, const struct udpif_ukey_id *id)
{
    struct kd_megaflow *mf;

    HMAP_FOR_EACH_WITH_HASH (mf, node, kd_id_hash(id), &kdu->megaflows) {
        if (ovs_u128_equals(mf->ufid, id->ufid) && mf->pmd_id == id->pmd_id) {
            return mf;
        }
    }
    return NULL;
}

static void
kd_latency_record(long long int usec)
{
    size_t i;

    for (i = 0; i < ARRAY_SIZE(kd_latency_bounds); i++) {
        if (usec < kd_latency_bounds[i]) {
            break;
        }
    }
    kd_stats.latency[i]++;
}

/* Returns 'mf''s entry in 'kd_pending', or NULL if it awaits nothing. */
static struct kd_pending *
kd_pending_find(const struct kd_megaflow *mf)
{
    struct kd_pending *p;

    if (mf->pending) {
        HMAP_FOR_EACH_WITH_HASH (p, node, hash_pointer(mf, 0), &kd_pending) {
            if (p->mf == mf) {
                return p;
            }
        }
    }
    return NULL;
}

/* Notes that 'mf' was re-translated or deleted at 'time' (kd_clock_usec()),
 * which resolves its mark. */
static void
kd_megaflow_resolve(struct kd_megaflow *mf, long long int time)
{
    struct kd_pending *p = kd_pending_find(mf);

    if (p) {
        long long int latency = MAX(time - p->since, 0);

        kd_latency_record(latency);
        kd_stats.latest_latency = MAX(kd_stats.latest_latency, latency);
        hmap_remove(&kd_pending, &p->node);
        kairo_delta_hmap_maybe_shrink(&kd_pending);
        free(p);
        mf->pending = false;
    }
}

/* Notes a delta that happened at 'time' in the round of marks, opening one
 * if none is. */
static void
kd_round_note(long long int time)
{
    if (!kd_round_first) {
        kd_round_first = kd_round_last = time;
        kd_stats.rounds++;
    } else {
        kd_round_last = MAX(kd_round_last, time);
    }
}

/* Returns the kd_clock_usec() at which the open round is due, or
 * LLONG_MAX. */
static long long int
kd_round_due(void)
{
    return (kd_round_first
            ? MIN(kd_round_last + KD_ROUND_QUIET_US,
                  kd_round_first + KD_ROUND_MAX_US)
            : LLONG_MAX);
}

/* Returns true if the open round is to be re-translated now: it is due, and
 * no port change was taken in this iteration of the main loop or the
 * previous one that is not yet in use.  Such a change belongs to the same
 * reconfiguration (a port added is then found enabled, say), and its
 * configuration is rebuilt in the next iteration: it joins the round,
 * rather than having the same megaflows re-translated again in a round of
 * its own.  One iteration is the bound: a bridge destroyed after taking a
 * change never rebuilds its configuration. */
static bool
kd_round_is_due(void)
{
    return (kd_clock_usec() >= kd_round_due()
            && (!kd_pending_ports.n
                || kd_main_loops > kd_pending_ports_loop + 1));
}

/* Has 'mf' await a translation that begins after the latest delta, which
 * happened at 'time'. */
static void
kd_await(struct kd_megaflow *mf, long long int time)
{
    struct kd_pending *p = kd_pending_find(mf);
    uint64_t gen;

    if (!p) {
        p = xmalloc(sizeof *p);
        p->mf = mf;
        p->since = time;
        hmap_insert(&kd_pending, &p->node, hash_pointer(mf, 0));
        mf->pending = true;
    }
    atomic_read_relaxed(&kd_gen, &gen);
    p->gen = MAX(gen, 1);
}

/* Marks 'mf' for re-translation by a delta that happened at 'time'. */
static void
kd_mark(struct kd_megaflow *mf, long long int time)
{
    kd_await(mf, time);
    kd_round_note(time);
    if (!mf->marked) {
        struct kd_udpif *kdu = mf->kdu;

        mf->marked = true;
        if (kdu->n_marks >= kdu->allocated_marks) {
            kdu->marks = x2nrealloc(kdu->marks, &kdu->allocated_marks,
                                    sizeof *kdu->marks);
        }
        kdu->marks[kdu->n_marks++] = (struct udpif_ukey_id) {
            .ufid = mf->ufid, .pmd_id = mf->pmd_id,
        };
        kd_stats.marked++;
        COVERAGE_INC(kairo_delta_marked);
    }
}

/* Returns 'mf''s entries in the indexes, 'mf->n_refs' of them. */
static const struct kd_index_ref *
kd_megaflow_refs(const struct kd_megaflow *mf)
{
    return mf->n_refs > 1 ? mf->refs : &mf->ref;
}

/* Notes that 'mf''s entry in 'b''s index is 'entry'. */
static void
kd_megaflow_add_ref(struct kd_megaflow *mf, struct kd_bridge *b,
                    struct kairo_delta_index_entry *entry)
{
    struct kd_index_ref ref = { .bridge = b, .entry = entry };

    if (!mf->n_refs) {
        mf->ref = ref;
    } else {
        struct kd_index_ref *refs = xmalloc((mf->n_refs + 1) * sizeof *refs);

        memcpy(refs, kd_megaflow_refs(mf), mf->n_refs * sizeof *refs);
        if (mf->n_refs > 1) {
            free(mf->refs);
        }
        refs[mf->n_refs] = ref;
        mf->refs = refs;
    }
    mf->n_refs++;
}

/* A megaflow's entries in the indexes while it is being indexed anew. */
struct kd_old_index {
    union {                     /* As in struct kd_megaflow; an entry */
        struct kd_index_ref ref;    /* replaced in place is NULL. */
        struct kd_index_ref *refs;
    };
    size_t n_refs;
};

/* Takes from 'mf' its entries in the indexes, leaving them there, and makes
 * it neither opaque nor dependent on anything else, to be indexed anew. */
static struct kd_old_index
kd_megaflow_take_index(struct kd_megaflow *mf)
{
    struct kd_old_index old = { .ref = mf->ref, .n_refs = mf->n_refs };

    mf->ref = (struct kd_index_ref) { .bridge = NULL };
    mf->n_refs = 0;
    if (mf->opaque) {
        struct kd_udpif *kdu = mf->kdu;
        struct kd_megaflow *last = kdu->opaque[--kdu->n_opaque];

        kdu->opaque[mf->opaque_pos] = last;
        last->opaque_pos = mf->opaque_pos;
        mf->opaque = false;
    }
    kairo_delta_deps_remove(kd_deps, mf);
    return old;
}

/* Returns the entries of 'old'. */
static struct kd_index_ref *
kd_old_index_refs(struct kd_old_index *old)
{
    return old->n_refs > 1 ? old->refs : &old->ref;
}

/* Returns 'old''s entry in 'b''s index, or NULL if it has none. */
static struct kd_index_ref *
kd_old_index_find(struct kd_old_index *old, const struct kd_bridge *b)
{
    struct kd_index_ref *refs = kd_old_index_refs(old);

    for (size_t i = 0; i < old->n_refs; i++) {
        if (refs[i].bridge == b) {
            return &refs[i];
        }
    }
    return NULL;
}

/* Removes the entries of 'old' that were not replaced in place. */
static void
kd_old_index_release(struct kd_old_index *old)
{
    struct kd_index_ref *refs = kd_old_index_refs(old);

    for (size_t i = 0; i < old->n_refs; i++) {
        kairo_delta_index_remove(refs[i].bridge->index, &refs[i].entry);
    }
    if (old->n_refs > 1) {
        free(old->refs);
    }
}

/* Removes 'mf''s lookups from every index. */
static void
kd_megaflow_unindex(struct kd_megaflow *mf)
{
    struct kd_old_index old = kd_megaflow_take_index(mf);

    kd_old_index_release(&old);
}

static void
kd_megaflow_set_opaque(struct kd_megaflow *mf)
{
    struct kd_udpif *kdu = mf->kdu;

    if (kdu->n_opaque >= kdu->allocated_opaque) {
        kdu->opaque = x2nrealloc(kdu->opaque, &kdu->allocated_opaque,
                                 sizeof *kdu->opaque);
    }
    mf->opaque = true;
    mf->opaque_pos = kdu->n_opaque;
    kdu->opaque[kdu->n_opaque++] = mf;
}

/* Returns true if 'ofpacts' (or a clone within them) has a learn action. */
static bool
kd_ofpacts_learn(const struct ofpact *ofpacts, size_t ofpacts_len)
{
    const struct ofpact *a;

    OFPACT_FOR_EACH (a, ofpacts, ofpacts_len) {
        if (a->type == OFPACT_LEARN) {
            return true;
        } else if (a->type == OFPACT_CLONE) {
            const struct ofpact_nest *clone = ofpact_get_CLONE(a);

            if (kd_ofpacts_learn(clone->actions,
                                 ofpact_nest_get_action_len(clone))) {
                return true;
            }
        }
    }
    return false;
}

/* Returns true if a rule hit by the lookups of 'c' has a learn action.  A
 * learn that failed (limit reached) leaves no XC_LEARN entry, but the
 * megaflow still depends on the table it learns into. */
static bool
kd_capture_learns(const struct kd_capture *c)
{
    for (size_t i = 0; i < c->n; i++) {
        const struct rule *rule = c->lookups[i].rule;

        if (rule) {
            const struct rule_actions *actions = rule_get_actions(rule);

            if (kd_ofpacts_learn(actions->ofpacts, actions->ofpacts_len)) {
                return true;
            }
        }
    }
    return false;
}

/* The fields of struct flow, as byte spans: kd_field_of[i] is the offset
 * and length of the field that byte 'i' belongs to.  The tunnel metadata
 * and anything not listed count as whole 64-bit words. */
static struct {
    uint16_t ofs;
    uint16_t len;
} kd_field_of[sizeof(struct flow)];

static void
kd_field_add(size_t ofs, size_t len)
{
    for (size_t i = ofs; i < ofs + len; i++) {
        kd_field_of[i].ofs = ofs;
        kd_field_of[i].len = len;
    }
}

static void
kd_fields_init(void)
{
    for (size_t ofs = 0; ofs < sizeof(struct flow); ofs += 8) {
        kd_field_add(ofs, 8);
    }
#define KD_FIELD(FIELD) kd_field_add(offsetof(struct flow, FIELD), \
                                     sizeof ((struct flow *) 0)->FIELD)
    KD_FIELD(metadata);
    for (size_t i = 0; i < FLOW_N_REGS; i++) {
        KD_FIELD(regs[i]);
    }
    KD_FIELD(skb_priority);
    KD_FIELD(pkt_mark);
    KD_FIELD(dp_hash);
    KD_FIELD(in_port);
    KD_FIELD(recirc_id);
    KD_FIELD(ct_state);
    KD_FIELD(ct_nw_proto);
    KD_FIELD(ct_zone);
    KD_FIELD(ct_mark);
    KD_FIELD(packet_type);
    KD_FIELD(ct_label);
    KD_FIELD(conj_id);
    KD_FIELD(actset_output);
    KD_FIELD(dl_dst);
    KD_FIELD(dl_src);
    KD_FIELD(dl_type);
    KD_FIELD(vlans);
    KD_FIELD(mpls_lse);
    KD_FIELD(nw_src);
    KD_FIELD(nw_dst);
    KD_FIELD(ct_nw_src);
    KD_FIELD(ct_nw_dst);
    KD_FIELD(ipv6_src);
    KD_FIELD(ipv6_dst);
    KD_FIELD(ct_ipv6_src);
    KD_FIELD(ct_ipv6_dst);
    KD_FIELD(ipv6_label);
    KD_FIELD(nw_frag);
    KD_FIELD(nw_tos);
    KD_FIELD(nw_ttl);
    KD_FIELD(nw_proto);
    KD_FIELD(nd_target);
    KD_FIELD(arp_sha);
    KD_FIELD(arp_tha);
    KD_FIELD(tcp_flags);
    KD_FIELD(tp_src);
    KD_FIELD(tp_dst);
    KD_FIELD(ct_tp_src);
    KD_FIELD(ct_tp_dst);
    KD_FIELD(igmp_group_ip4);
#undef KD_FIELD
}

/* Stores in 'fields' (FLOW_U64S words) every field of struct flow that has
 * a bit set in 'bits'. */
static void
kd_widen_to_fields(const struct flow *bits, struct flow *fields)
{
    const uint8_t *b = (const uint8_t *) bits;
    uint8_t *f = (uint8_t *) fields;

    memset(fields, 0, sizeof *fields);
    for (size_t i = 0; i < sizeof *bits; i++) {
        if (b[i]) {
            memset(&f[kd_field_of[i].ofs], 0xff, kd_field_of[i].len);
            i = kd_field_of[i].ofs + kd_field_of[i].len - 1;
        }
    }
}

/* Fills 'common' with the part of a megaflow's lookups' regions that its
 * installed datapath key 'key' and mask 'mask' give: every packet of the
 * megaflow reaches each lookup with the same values in the bits the mask
 * fixes, and those are the values of 'first->flow', the flow at the
 * translation's first lookup, in every field that no action changed at a
 * later lookup ('first->changed').  The changed fields are left out, whole
 * (so that what is left does not depend on the values written): a lookup's
 * own wildcards fix the bits it consulted (an action that writes a field
 * the translation depends on unwildcards it), the others are left
 * wildcarded, which is sound.  A narrower region is met by fewer rule
 * changes, and lookups whose own bits agree share their index node.  The
 * datapath's in_port is its own numbering, but the one it fixes stands for
 * one OpenFlow port, which is the first flow's.  Returns false if the key or
 * mask cannot be parsed: then there is no common part. */
static bool
kd_common_part(const struct kd_first *first,
               const struct nlattr *key, size_t key_len,
               const struct nlattr *mask, size_t mask_len,
               struct flow_wildcards *common)
{
    struct flow dp_key;

    if (!key || !first
        || odp_flow_key_to_flow(key, key_len, &dp_key, NULL) == ODP_FIT_ERROR
        || odp_flow_key_to_mask(mask, mask_len, common, &dp_key, NULL)
           == ODP_FIT_ERROR) {
        return false;
    }

    struct flow changed;
    kd_widen_to_fields(&first->changed, &changed);

    uint64_t *cm = (uint64_t *) &common->masks;
    const uint64_t *ch = (const uint64_t *) &changed;
    for (size_t w = 0; w < FLOW_U64S; w++) {
        cm[w] &= ~ch[w];
    }
    return true;
}

/* The own parts of a megaflow's lookups, in one buffer (main thread). */
struct kd_own {
    size_t n, allocated;        /* Words used and room. */
    uint8_t *idx;
    uint64_t *mask;
    uint64_t *value;
};

/* Makes room in 'own' for 'n' more words. */
static void
kd_own_reserve(struct kd_own *own, size_t n)
{
    if (own->n + n > own->allocated) {
        own->allocated = MAX(own->n + n, 2 * own->allocated);
        own->idx = xrealloc(own->idx, own->allocated * sizeof *own->idx);
        own->mask = xrealloc(own->mask, own->allocated * sizeof *own->mask);
        own->value = xrealloc(own->value,
                              own->allocated * sizeof *own->value);
    }
}

/* Appends to 'own' the part of region 'r' that is a lookup's own, given the
 * megaflow's common mask 'common' (NULL: none) and the rule the lookup hit
 * (NULL: a miss): the translation state and what actions changed, which
 * the common part does not have, and the bits the rule matches.  Every
 * megaflow that hit the rule agrees on those, so they do not keep lookups
 * apart, and they let the index find the lookups by the rule's fields. */
static void
kd_own_append(struct kd_own *own, const struct kd_region *r,
              const struct flow_wildcards *common, const struct rule *rule)
{
    const uint64_t *cm = common ? (const uint64_t *) &common->masks : NULL;
    const struct miniflow *rm = rule ? &rule->cr.match.mask->masks : NULL;

    kd_own_reserve(own, FLOW_U64S);
    for (size_t i = 0; i < 2; i++) {
        unsigned int bit;

        ULLONG_FOR_EACH_1 (bit, r->map[i]) {
            size_t w = i * 64 + bit;
            uint64_t m = r->mask[w];

            if (cm && cm[w]) {
                m &= ~(cm[w] & ~(rm ? miniflow_get(rm, w) : 0));
            }
            if (m) {
                own->idx[own->n] = w;
                own->mask[own->n] = m;
                own->value[own->n] = r->value[w] & m;
                own->n++;
            }
        }
    }
}

/* Replaces 'mf''s lookups by those of 'c' (NULL if unknown); the indexes
 * take their own references to the rules they name, and 'c' keeps its
 * own.  A megaflow whose translation executes a learn action is made
 * opaque instead: its side effects (the learned rule's refresh, a learn
 * limit) depend on the table it learns into, which stock revalidation
 * re-translates it for on every change. */
static void
kd_megaflow_index(struct kd_megaflow *mf, struct kd_capture *c, bool learns,
                  const struct nlattr *key, size_t key_len,
                  const struct nlattr *mask, size_t mask_len)
{
    if (!c || c->overflow || learns || kd_capture_learns(c)) {
        kd_megaflow_unindex(mf);
        kd_megaflow_set_opaque(mf);
        return;
    }

    /* The old entries are replaced in place, so that the new path finds
     * the nodes it keeps without hashing. */
    struct kd_old_index old = kd_megaflow_take_index(mf);

    /* The common part, and each lookup's own part, replayed from the
     * capture's deltas (main thread only). */
    static struct flow_wildcards common_mask;
    static struct kairo_delta_index_words_buf common_buf;
    bool has_common = kd_common_part(c->first, key, key_len, mask, mask_len,
                                     &common_mask);
    struct kairo_delta_index_words common = {0};
    if (has_common) {
        common = kairo_delta_index_words_from_flow(&c->first->flow,
                                                   &common_mask, &common_buf);
    }

    static struct kd_own own;
    static struct kd_region region;
    size_t *own_ofs = xmalloc((c->n + 1) * sizeof *own_ofs);
    own.n = 0;
    kd_region_init(&region);
    for (size_t i = 0; i < c->n; i++) {
        kd_region_replay(&region, c, &c->lookups[i]);
        own_ofs[i] = own.n;
        kd_own_append(&own, &region, has_common ? &common_mask : NULL,
                      c->lookups[i].rule);
    }
    own_ofs[c->n] = own.n;

    /* One index per bridge: a patch port takes a translation to another. */
    struct kairo_delta_index_lookup *lookups = xmalloc(c->n * sizeof *lookups);
    for (size_t i = 0; i < c->n; i++) {
        const struct ofproto *ofproto = c->lookups[i].ofproto;
        size_t n = 0;

        for (size_t j = 0; j < i && !n; j++) {
            n = c->lookups[j].ofproto == ofproto;
        }
        if (n) {
            continue;           /* This bridge is done. */
        }
        for (size_t j = i; j < c->n; j++) {
            const struct kd_lookup *l = &c->lookups[j];

            if (l->ofproto == ofproto) {
                lookups[n++] = (struct kairo_delta_index_lookup) {
                    .table_id = l->table_id,
                    .region = {
                        .n = own_ofs[j + 1] - own_ofs[j],
                        .idx = &own.idx[own_ofs[j]],
                        .mask = &own.mask[own_ofs[j]],
                        .value = &own.value[own_ofs[j]],
                    },
                    .rule = l->rule,
                    .priority = l->threshold,
                    .conj = l->conj,
                    .conj_id = l->conj_id,
                };
            }
        }

        struct kd_bridge *b = kd_bridge_get(ofproto);
        struct kd_index_ref *old_ref = kd_old_index_find(&old, b);
        struct kairo_delta_index_entry *entry = (old_ref ? old_ref->entry
                                                 : NULL);
        int error = kairo_delta_index_replace(b->index, &entry, mf,
                                              has_common ? &common : NULL,
                                              lookups, n);
        if (error) {
            static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(5, 5);

            VLOG_WARN_RL(&rl, "megaflow lookups not indexed (%s); it will "
                         "be revalidated on every flow table change",
                         ovs_strerror(error));
            kd_megaflow_unindex(mf);
            kd_old_index_release(&old);
            kd_megaflow_set_opaque(mf);
            free(lookups);
            free(own_ofs);
            return;
        }
        if (old_ref) {
            old_ref->entry = NULL;      /* Replaced in place. */
        }
        kd_megaflow_add_ref(mf, b, entry);
    }
    free(lookups);
    free(own_ofs);
    kd_old_index_release(&old);

    /* The groups, ports and MAC entries it looked up. */
    kairo_delta_deps_set(kd_deps, mf, c->deps, c->n_deps);
}

/* Forgets 'mf', deleted at 'time'. */
static void
kd_megaflow_destroy(struct kd_megaflow *mf, long long int time)
{
    kd_megaflow_resolve(mf, time);
    kd_megaflow_unindex(mf);
    hmap_remove(&mf->kdu->megaflows, &mf->node);
    free(mf);
}

static void
kd_udpif_destroy(struct kd_udpif *kdu)
{
    long long int now = kd_clock_usec();
    struct kd_megaflow *mf;

    HMAP_FOR_EACH_SAFE (mf, node, &kdu->megaflows) {
        kd_megaflow_destroy(mf, now);
    }
    hmap_destroy(&kdu->megaflows);
    hmap_remove(&kd_udpifs, &kdu->node);
    free(kdu->marks);
    free(kdu->opaque);
    free(kdu);
}

/* Main thread: mapping events. */

static void
kd_mark_cb(const void *owner, void *time_)
{
    const long long int *time = time_;

    kd_mark(CONST_CAST(struct kd_megaflow *, owner), *time);
}

/* Marks every megaflow whose lookups are unknown. */
static void
kd_mark_opaque(long long int time)
{
    struct kd_udpif *kdu;

    HMAP_FOR_EACH (kdu, node, &kd_udpifs) {
        for (size_t i = 0; i < kdu->n_opaque; i++) {
            kd_mark(kdu->opaque[i], time);
            kd_stats.opaque_marks++;
            COVERAGE_INC(kairo_delta_opaque);
        }
    }
}

/* Returns true if 'ofpacts' are those of a conjunctive match's clause. */
static bool
kd_ofpacts_are_clause(const struct ofpact *ofpacts, size_t ofpacts_len)
{
    const struct ofpact *a;

    OFPACT_FOR_EACH (a, ofpacts, ofpacts_len) {
        if (a->type == OFPACT_CONJUNCTION) {
            return true;
        }
    }
    return false;
}

/* Returns true if 'rule' (may be NULL) is a clause of a conjunctive match:
 * the classifier never returns it, but whether a conjunction matches
 * depends on it. */
static bool
kd_rule_is_clause(const struct rule *rule)
{
    if (!rule) {
        return false;
    }

    const struct rule_actions *actions = rule_get_actions(rule);
    return kd_ofpacts_are_clause(actions->ofpacts, actions->ofpacts_len);
}

/* Queries 'index' for the megaflows with a lookup in 'table_id' whose
 * region meets 'match' and whose threshold is at most 'priority': those
 * that a rule with that match and priority can affect by appearing or
 * disappearing, clause or not (see DESIGN-NOTES.md, "Conjunctive matches").
 * A rule on a conj_id other than 0 reaches only the lookups that looked
 * that conj_id up; on conj_id 0 it is an ordinary rule.  Returns the
 * number of megaflows reported. */
static size_t
kd_query_region(struct kairo_delta_index *index, uint8_t table_id,
                int priority, const struct minimatch *match,
                kairo_delta_index_cb *cb, void *aux)
{
    uint32_t conj_mask = MINIFLOW_GET_U32(&match->mask->masks, conj_id);
    uint32_t conj_id = MINIFLOW_GET_U32(match->flow, conj_id) & conj_mask;

    if (conj_mask == UINT32_MAX && conj_id) {
        COVERAGE_INC(kairo_delta_conj_id);
        return kairo_delta_index_query_conj_insert(index, table_id, priority,
                                                   match, conj_id, cb, aux);
    } else {
        /* The lookups' regions never fix conj_id, so a partly masked one
         * meets every lookup, which is sound. */
        return kairo_delta_index_query_insert(index, table_id, priority,
                                              match, cb, aux);
    }
}

/* The queries that map one rule change: the megaflows that hit 'hit' (if
 * nonnull), those whose lookups' regions meet 'region''s match at its
 * priority (if nonnull), and those whose lookups meet the match of a
 * clause that went, 'gone_clause', and depend on one of its conjunctions
 * (if nonnull). */
struct kd_rule_queries {
    const struct rule *hit;
    const struct rule *region;
    const struct rule *gone_clause;
};

/* Returns the queries for a change in which 'rule' was removed ('removed')
 * or inserted, replacing 'old_rule' if nonnull (same table, match and
 * priority).  A megaflow that hit a rule that goes is affected; one that did
 * not hit it is not, unless the rule is a clause, whose presence decides
 * whether a conjunction matches; an inserted rule, clause or not, affects
 * what its region meets (DESIGN-NOTES.md, "Conjunctive matches").  A rule
 * that replaces another with the same kind of actions affects only what
 * the old one did, but one that replaces a clause with ordinary actions
 * appears where the clause was never a result: its whole region. */
static struct kd_rule_queries
kd_rule_change_queries(bool removed, const struct rule *rule,
                       const struct rule *old_rule)
{
    if (removed) {
        return (struct kd_rule_queries) {
            .hit = rule,
            .gone_clause = kd_rule_is_clause(rule) ? rule : NULL,
        };
    } else if (old_rule) {
        return (struct kd_rule_queries) {
            .hit = old_rule,
            .region = (kd_rule_is_clause(rule) || kd_rule_is_clause(old_rule)
                       ? rule : NULL),
            .gone_clause = kd_rule_is_clause(old_rule) ? old_rule : NULL,
        };
    } else {
        return (struct kd_rule_queries) { .region = rule };
    }
}

/* Queries 'index' for the megaflows that a rule of 'ofproto' with 'match'
 * and 'priority' appearing in 'table_id' can affect: with 'ofpacts' that
 * make it a clause of conjunctive matches, those its conjunctions can reach
 * (kairo-delta-conj.h), otherwise those whose lookups' regions meet the
 * match at or below the priority. */
static size_t
kd_query_appears(struct kairo_delta_index *index,
                 const struct ofproto *ofproto, uint8_t table_id,
                 int priority, const struct minimatch *match,
                 const struct ofpact *ofpacts, size_t ofpacts_len,
                 kairo_delta_index_cb *cb, void *aux)
{
    if (kd_ofpacts_are_clause(ofpacts, ofpacts_len)) {
        return kairo_delta_conjs_query_insert(kd_conjs, index, ofproto,
                                              table_id, priority, match,
                                              ofpacts, ofpacts_len, cb, aux);
    }
    return kd_query_region(index, table_id, priority, match, cb, aux);
}

/* Queries 'index' for the megaflows that removing clause 'clause' can
 * affect: a clause that goes can only keep one of its conjunctions from
 * matching, so only the lookups that depended on one of them and whose
 * region meets its match.  (A rule with the same match that it hid, the
 * head of its subtable's list of identical matches, was found behind it by
 * every lookup where its conjunctions did not complete: DESIGN-NOTES.md
 * 5e.)  Returns the number of megaflows reported (a megaflow may be counted
 * once per conjunction of the clause). */
static size_t
kd_query_gone_clause(struct kairo_delta_index *index,
                     const struct rule *clause,
                     kairo_delta_index_cb *cb, void *aux)
{
    const uint8_t table_id = clause->table_id;
    const int priority = clause->cr.priority;
    const struct rule_actions *actions = rule_get_actions(clause);
    const struct ofpact *a;
    size_t n = 0;

    COVERAGE_INC(kairo_delta_clause_gone);
    OFPACT_FOR_EACH (a, actions->ofpacts, actions->ofpacts_len) {
        if (a->type == OFPACT_CONJUNCTION) {
            n += kairo_delta_index_query_conj_insert(
                index, table_id, priority, &clause->cr.match,
                ofpact_get_CONJUNCTION(a)->id, cb, aux);
        }
    }
    return n;
}

static void
kd_process_rule(struct kd_event *ev)
{
    struct rule *rule = ev->rule;
    bool removed = ev->rule_event == OFPFME_REMOVED;

    COVERAGE_INC(kairo_delta_rule);
    kd_stats.latest_latency = 0;
    kairo_delta_conjs_update(kd_conjs, removed ? rule : ev->old_rule,
                             removed ? NULL : rule);
    if (!ev->delta) {
        kd_stats.stock++;       /* REV_FLOW_TABLE took care of it. */
        return;
    }

    if (removed) {
        kd_stats.removes++;
    } else if (ev->old_rule) {
        /* Even with unchanged actions the megaflows that hit the old rule
         * are re-translated, so that their xlate caches (stats, timeouts)
         * name the rule that is in the table. */
        kd_stats.replaces++;
    } else {
        kd_stats.inserts++;
    }
    if (kd_rule_is_clause(rule) || kd_rule_is_clause(ev->old_rule)) {
        kd_stats.clauses++;
    }

    struct kd_bridge *b = kd_bridge_find(ev->ofproto);
    if (b) {
        struct kd_rule_queries q = kd_rule_change_queries(removed, rule,
                                                          ev->old_rule);
        struct kairo_delta_index *index = kd_bridge_marking_index(b);
        size_t n_hit = 0, n_region = 0;

        if (q.hit) {
            n_hit = kairo_delta_index_query_rule(index, q.hit, kd_mark_cb,
                                                 &ev->time);
        }
        if (q.region) {
            const struct rule_actions *actions = rule_get_actions(q.region);

            n_region = kd_query_appears(index, ev->ofproto,
                                        q.region->table_id,
                                        q.region->cr.priority,
                                        &q.region->cr.match,
                                        actions->ofpacts,
                                        actions->ofpacts_len, kd_mark_cb,
                                        &ev->time);
        }
        if (q.gone_clause) {
            n_region += kd_query_gone_clause(index, q.gone_clause,
                                             kd_mark_cb, &ev->time);
        }
        if (kd_round_first) {
            /* The delta is part of the burst even if all it affects was
             * marked already. */
            kd_round_note(ev->time);
        }
        if (VLOG_IS_DBG_ENABLED()) {
            struct ds s = DS_EMPTY_INITIALIZER;

            ds_put_format(&s, "%s table %"PRIu8" ",
                          removed ? "remove" : ev->old_rule ? "replace"
                          : "insert", rule->table_id);
            cls_rule_format(&rule->cr, ofproto_get_tun_tab(ev->ofproto),
                            NULL, &s);
            VLOG_DBG("%s: %"PRIuSIZE" megaflows not yet marked hit it, %"
                     PRIuSIZE" meet its region", ds_cstr(&s), n_hit,
                     n_region);
            ds_destroy(&s);
        }
    }
    kd_mark_opaque(ev->time);
    kd_applied_gen = ev->gen;
}

/* A group change being mapped. */
struct kd_group_query {
    const struct kd_group_change *gc;
    long long int time;
    size_t n_spared;
};

/* Returns true if a megaflow whose dp_hash was 'dp_hash' under the old
 * group's hash mask picks bucket 'bucket_id' from the new hash map in
 * 'gc' for every packet it covers. */
static bool
kd_group_same_pick(const struct kd_group_change *gc, uint32_t dp_hash,
                   uint32_t bucket_id)
{
    uint32_t old_mask = gc->old_hash_mask, new_mask = gc->hash_mask;

    if (new_mask <= old_mask) {
        /* Coarser or the same: one slot. */
        return gc->hash_map[dp_hash & new_mask] == bucket_id;
    }
    /* Finer: every slot its packets' dp_hash values reach. */
    for (uint32_t slot = 0; slot <= new_mask; slot++) {
        if ((slot & old_mask) == (dp_hash & old_mask)
            && gc->hash_map[slot] != bucket_id) {
            return false;
        }
    }
    return true;
}

/* kairo_delta_deps_query() callback for a group change: marks the megaflow
 * unless the change's refinement spares it. */
static void
kd_group_dep_cb(const void *owner, const struct kairo_delta_dep *dep,
                void *q_)
{
    struct kd_group_query *q = q_;
    uint8_t use = dep->data[0] & 0xff;

    if (q->gc->refined && !(use & KD_GROUP_LIVENESS)) {
        bool spared = (use & KD_GROUP_BUCKETS
                       ? kd_group_same_pick(q->gc, dep->data[0] >> 32,
                                            dep->data[1])
                       : (use & KD_GROUP_DP_HASH_ZERO) != 0);
        if (spared) {
            q->n_spared++;
            return;
        }
    }
    kd_mark(CONST_CAST(struct kd_megaflow *, owner), q->time);
}

/* kairo_delta_deps_query() callback that marks the megaflow. */
static void
kd_dep_mark_cb(const void *owner, const struct kairo_delta_dep *dep OVS_UNUSED,
               void *time_)
{
    const long long int *time = time_;

    kd_mark(CONST_CAST(struct kd_megaflow *, owner), *time);
}

/* Maps port changes: the megaflows that looked a changed port up, found or
 * not, and those that depend on the set of the bridge's ports or on every
 * bridge's. */
static void
kd_process_ports(struct kd_event *ev)
{
    const struct kd_port_changes *pc = ev->ports;
    const struct ofproto *done = NULL;

    kd_stats.port_changes += pc->n;
    COVERAGE_ADD(kairo_delta_port, pc->n);
    for (size_t i = 0; i < pc->n; i++) {
        const struct kd_port_change *c = &pc->changes[i];

        if (c->ofp_port != OFPP_ALL) {
            kairo_delta_deps_query(kd_deps, c->ofproto,
                                   KD_DEP_PORT | ofp_to_u16(c->ofp_port),
                                   kd_dep_mark_cb, &ev->time);
        }
        if (c->ofproto != done) {
            kairo_delta_deps_query(kd_deps, c->ofproto,
                                   KD_DEP_PORT | ofp_to_u16(OFPP_ALL),
                                   kd_dep_mark_cb, &ev->time);
            done = c->ofproto;
        }
    }
    if (pc->n) {
        kairo_delta_deps_query(kd_deps, NULL,
                               KD_DEP_PORT | ofp_to_u16(OFPP_ALL),
                               kd_dep_mark_cb, &ev->time);
        kd_mark_opaque(ev->time);
    }
    kd_applied_gen = ev->gen;
}

/* Maps a MAC table change: the megaflows that looked the entry up. */
static void
kd_process_mac(struct kd_event *ev)
{
    kd_stats.mac_changes++;
    COVERAGE_INC(kairo_delta_mac);
    kairo_delta_deps_query(kd_deps, ev->ml, ev->mac_key, kd_dep_mark_cb,
                           &ev->time);
    kd_mark_opaque(ev->time);
    kd_applied_gen = ev->gen;
}

/* Maps a group mod: the megaflows that looked up a group it changed. */
static void
kd_process_group(struct kd_event *ev)
{
    if (!ev->delta) {
        kd_stats.stock++;
        return;
    }

    kd_stats.groups++;
    COVERAGE_INC(kairo_delta_group);
    for (size_t i = 0; i < ev->groups->n; i++) {
        struct kd_group_query q = {
            .gc = &ev->groups->changes[i], .time = ev->time,
        };

        kairo_delta_deps_query(kd_deps, ev->ofproto,
                               KD_DEP_GROUP | q.gc->group_id,
                               kd_group_dep_cb, &q);
        kd_stats.group_spared += q.n_spared;
    }
    kd_mark_opaque(ev->time);
    kd_applied_gen = ev->gen;
}

static void
kd_process_ukey(struct kd_event *ev)
{
    struct kd_udpif *kdu;
    struct kd_megaflow *mf;

    if (ev->ukey_event == UDPIF_UKEY_DELETED) {
        kdu = kd_udpif_find(ev->udpif);
        mf = kdu ? kd_megaflow_find(kdu, &ev->id) : NULL;
        if (mf) {
            kd_megaflow_destroy(mf, ev->time);
        }
        return;
    }

    kdu = kd_udpif_get(ev->udpif);
    mf = kd_megaflow_find(kdu, &ev->id);
    if (!mf) {
        mf = xzalloc(sizeof *mf);
        mf->kdu = kdu;
        mf->ufid = ev->id.ufid;
        mf->pmd_id = ev->id.pmd_id;
        hmap_insert(&kdu->megaflows, &mf->node, kd_id_hash(&ev->id));
    }
    kd_megaflow_index(mf, ev->capture, ev->learns, ev->key, ev->key_len,
                      ev->mask, ev->mask_len);

    struct kd_pending *p = kd_pending_find(mf);
    if (p && ev->gen >= p->gen) {
        /* An install is not timed on the upcall path. */
        kd_megaflow_resolve(mf, (ev->ukey_event == UDPIF_UKEY_INSTALLED
                                 ? kd_clock_usec() : ev->time));
    }
    if (ev->gen < kd_applied_gen) {
        /* The translation began before a delta that is already mapped, so
         * it may not reflect it, and the delta did not see this megaflow. */
        kd_stats.raced++;
        COVERAGE_INC(kairo_delta_raced);
        kd_mark(mf, kd_clock_usec());
    }
}

/* Ukey event blocks this run has finished with (main thread). */
static struct ovs_list kd_done_events = OVS_LIST_INITIALIZER(&kd_done_events);
static size_t kd_n_done_events;

static void
kd_event_destroy(struct kd_event *ev)
{
    ofproto_rule_unref(ev->rule);
    ofproto_rule_unref(ev->old_rule);
    if (ev->groups) {
        for (size_t i = 0; i < ev->groups->n; i++) {
            free(ev->groups->changes[i].hash_map);
        }
        free(ev->groups);
    }
    if (ev->ports) {
        free(ev->ports->changes);
        free(ev->ports);
    }
    if (ev->capture) {
        kd_capture_clear(ev->capture);  /* Packed into 'ev'. */
    }
    if (ev->block_size) {
        ovs_list_push_back(&kd_done_events, &ev->list_node);
        kd_n_done_events++;
    } else {
        free(ev);
    }
}

/* Hands the ukey event blocks of this run back to the translating threads,
 * or frees them if the threads hold enough. */
static void
kd_events_recycle(void)
{
    if (!kd_n_done_events) {
        return;
    }

    /* Free the blocks beyond the limit, and only those: a burst bigger than
     * the limit must not leave the next burst to allocate every block
     * anew. */
    size_t room;
    ovs_mutex_lock(&kd_spare_mutex);
    room = KD_MAX_SPARE_EVENTS - MIN(kd_n_spare_events, KD_MAX_SPARE_EVENTS);
    ovs_mutex_unlock(&kd_spare_mutex);
    while (kd_n_done_events > room) {
        free(CONTAINER_OF(ovs_list_pop_back(&kd_done_events),
                          struct kd_event, list_node));
        kd_n_done_events--;
    }

    ovs_mutex_lock(&kd_spare_mutex);
    ovs_list_push_back_all(&kd_spare_events, &kd_done_events);
    kd_n_spare_events += kd_n_done_events;
    ovs_mutex_unlock(&kd_spare_mutex);
    kd_n_done_events = 0;
}

/* Requests a full revalidation of every udpif and awaits every megaflow. */
static void
kd_revalidate_all(void)
{
    struct kd_udpif *kdu;
    long long int now = kd_clock_usec();

    HMAP_FOR_EACH (kdu, node, &kd_udpifs) {
        struct kd_megaflow *mf;

        /* The full revalidation takes the open round's marks too. */
        HMAP_FOR_EACH (mf, node, &kdu->megaflows) {
            kd_await(mf, now);
            mf->marked = false;
        }
        kdu->n_marks = 0;
        udpif_revalidate(kdu->udpif);
    }

    /* The indexes' rounds of queries end with those marks: a later delta
     * must report, and so mark again, a megaflow that the full pass may
     * have re-translated before it. */
    kd_round_seq++;
}

/* How a round of marks in one datapath gets re-translated. */
enum kd_round {
    KD_ROUND_FULL,              /* Full revalidation: cheaper (cost). */
    KD_ROUND_INLINE,            /* At once, on the main thread. */
    KD_ROUND_KICK,              /* By the revalidators, kicked. */
};

/* Chooses how to re-translate 'n_marks' of the 'n_megaflows' megaflows of a
 * datapath. */
static enum kd_round
kd_round_plan(size_t n_marks, size_t n_megaflows)
{
    if (n_marks >= KD_MIN_FULL
        && n_marks * 100 > n_megaflows * kd_full_share) {
        return KD_ROUND_FULL;
    }
    return n_marks <= KD_MAX_INLINE ? KD_ROUND_INLINE : KD_ROUND_KICK;
}

/* Returns how many of the 'n_marks' megaflows of a round that 'udpif''s
 * revalidators are kicked for the main thread re-translates itself
 * meanwhile: an equal share, as one more revalidator, up to KD_MAX_INLINE.
 * On a machine with one revalidator thread, such as a 2-core one, the
 * re-translations of a round of a few hundred megaflows then take about
 * half as long, for the same CPU; the cap keeps the main thread away from
 * its other work no longer than a round it re-translates all by itself. */
static size_t
kd_round_main_share(struct udpif *udpif, size_t n_marks)
{
    struct simap usage = SIMAP_INITIALIZER(&usage);

    udpif_get_memory_usage(udpif, &usage);
    size_t n_threads = simap_get(&usage, "revalidators");
    simap_destroy(&usage);

    return MIN(n_marks / (n_threads + 1), KD_MAX_INLINE);
}

/* Closes 'kdu''s round of marks, whose ids stay in 'kdu->marks' until the
 * caller empties it: has every megaflow marked in it await a translation
 * that began after the latest delta, since the round's later deltas did
 * not mark again the megaflows that its earlier ones had
 * (kd_bridge_marking_index()), and unmarks them. */
static void
kd_marks_close(struct kd_udpif *kdu)
{
    uint64_t gen;

    atomic_read_relaxed(&kd_gen, &gen);
    for (size_t i = 0; i < kdu->n_marks; i++) {
        struct kd_megaflow *mf = kd_megaflow_find(kdu, &kdu->marks[i]);

        if (mf) {
            struct kd_pending *p = kd_pending_find(mf);

            if (p) {
                p->gen = MAX(p->gen, gen);
            }
            mf->marked = false;
        }
    }
}

/* Re-translates the 'n' megaflows of 'kdu' that 'ids' name, at once, on
 * this thread. */
static void
kd_translate_now(struct kd_udpif *kdu, const struct udpif_ukey_id *ids,
                 size_t n)
{
    if (udpif_revalidate_ukeys_now(kdu->udpif, ids, n)) {
        /* Some flows were still being installed. */
        udpif_kick_revalidators(kdu->udpif);
        kd_stats.kicks++;
    }
}

/* Has the round's marks re-translated, at once if there are few and
 * 'may_translate', otherwise by the revalidators, or falls back to a full
 * revalidation where that is cheaper. */
static void
kd_flush_marks(bool may_translate)
{
    struct kd_udpif *kdu;

    kd_round_first = kd_round_last = 0;
    kd_round_seq++;

    HMAP_FOR_EACH (kdu, node, &kd_udpifs) {
        if (!kdu->n_marks) {
            continue;
        }
        kd_marks_close(kdu);

        enum kd_round round = kd_round_plan(kdu->n_marks,
                                            hmap_count(&kdu->megaflows));
        if (round == KD_ROUND_FULL) {
            kd_stats.fallbacks[KD_FB_COST]++;
            COVERAGE_INC(kairo_delta_fallback);
            udpif_revalidate(kdu->udpif);
        } else if (may_translate && round == KD_ROUND_INLINE) {
            kd_stats.inline_rounds++;
            COVERAGE_INC(kairo_delta_round_inline);
            kd_translate_now(kdu, kdu->marks, kdu->n_marks);
        } else {
            /* The revalidators start on theirs while the main thread
             * re-translates its share, the first marks. */
            size_t n_main = (may_translate
                             ? kd_round_main_share(kdu->udpif, kdu->n_marks)
                             : 0);

            udpif_revalidate_ukeys(kdu->udpif, kdu->marks + n_main,
                                   kdu->n_marks - n_main);
            udpif_kick_revalidators(kdu->udpif);
            kd_stats.kicks++;
            if (n_main) {
                kd_stats.shared_rounds++;
                COVERAGE_INC(kairo_delta_round_shared);
                kd_translate_now(kdu, kdu->marks, n_main);
            } else {
                COVERAGE_INC(kairo_delta_round_kicked);
            }
        }
        kdu->n_marks = 0;
    }
}

static void
kd_reply_waiters(void)
{
    if (kd_n_waiters && !hmap_count(&kd_pending)) {
        for (size_t i = 0; i < kd_n_waiters; i++) {
            unixctl_command_reply(kd_waiters[i], NULL);
        }
        free(kd_waiters);
        kd_waiters = NULL;
        kd_n_waiters = 0;
    }
}

/* Maps every queued event, skipping the ukey events of 'dying' (or none). */
static void
kd_run__(const struct udpif *dying)
{
    struct ovs_list events;

    kd_last_queue_seq = seq_read(kd_queue_seq);
    ovs_mutex_lock(&kd_queue_mutex);
    ovs_list_move(&events, &kd_queue);
    ovs_list_init(&kd_queue);
    atomic_store(&kd_n_queued, 0);
    ovs_mutex_unlock(&kd_queue_mutex);

    kd_burst = false;
    struct kd_event *ev;
    LIST_FOR_EACH_POP (ev, list_node, &events) {
        if (ev->type != KD_EV_UKEY) {
            kd_stats.last_change = MAX(kd_stats.last_change, ev->time);
        } else {
            kd_stats.ukey_events[ev->ukey_event]++;
            if (ev->ukey_event != UDPIF_UKEY_INSTALLED) {
                kd_stats.last_retranslation
                    = MAX(kd_stats.last_retranslation, ev->time);
            }
        }
        switch (ev->type) {
        case KD_EV_RULE:
            kd_process_rule(ev);
            break;
        case KD_EV_GROUP:
            kd_process_group(ev);
            break;
        case KD_EV_PORTS:
            kd_process_ports(ev);
            break;
        case KD_EV_MAC:
            kd_process_mac(ev);
            break;
        case KD_EV_UKEY:
            if (ev->udpif != dying) {
                kd_process_ukey(ev);
            }
            kd_burst = true;
            break;
        }
        kd_event_destroy(ev);
    }
    kd_events_recycle();
    if (dying) {
        struct kd_udpif *kdu = kd_udpif_find(dying);

        if (kdu) {
            kd_udpif_destroy(kdu);
        }
    }
    /* A round is flushed when it is due; at once while a datapath is being
     * torn down, but with no translation then. */
    if (dying || kd_round_is_due()) {
        kd_flush_marks(!dying);
    }
    kd_bridges_sweep();
    kd_reply_waiters();
}

static void
kd_udpif_destroyed(struct udpif *udpif)
{
    kd_run__(udpif);
}

static bool
kd_queue_is_empty(void)
{
    size_t n_queued;

    atomic_read(&kd_n_queued, &n_queued);
    return !n_queued;
}

void
kairo_delta_run(void)
{
    kd_main_loops++;

    /* A round re-translated at once queues the events of its translations:
     * map them in a second pass, so that kairo/wait and the latencies see
     * the round finished without waiting for the next poll loop. */
    for (int i = 0; i < 2 && (!kd_queue_is_empty()
                              || kd_round_is_due()); i++) {
        kd_run__(NULL);
    }
}

void
kairo_delta_wait(void)
{
    if (kd_burst) {
        atomic_store(&kd_main_sleeps, false);
        poll_timer_wait(KD_BURST_MS);
    } else {
        atomic_store(&kd_main_sleeps, true);
        if (!kd_queue_is_empty()) {
            poll_immediate_wake();
        }
    }
    if (kd_round_first) {
        long long int left = kd_round_due() - kd_clock_usec();

        poll_timer_wait(left > 0 ? DIV_ROUND_UP(left, 1000) : 0);
    }
    seq_wait(kd_queue_seq, kd_last_queue_seq);
}

void
kairo_delta_set_config(const struct smap *other_config)
{
    bool enable = smap_get_bool(other_config, "kairo-delta", true);
    bool was = kd_is_enabled();

    if (enable != was) {
        atomic_store_relaxed(&kd_enabled, enable);
        VLOG_INFO("delta mode %s", enable ? "enabled" : "disabled");
        if (!enable) {
            /* A change absorbed just before the switch may come with an
             * event that says delta mode was off. */
            kd_stats.fallbacks[KD_FB_SWITCH_OFF]++;
            COVERAGE_INC(kairo_delta_fallback);
        }
        /* Switching on: the megaflows translated in stock mode have no
         * captured lookups (opaque), so have them all re-translated. */
        kd_revalidate_all();
    }

    unsigned int share = smap_get_uint(other_config, "kairo-delta-full-share",
                                       KD_DEFAULT_FULL_SHARE);
    if (share < 1 || share > 100) {
        static struct vlog_rate_limit rl = VLOG_RATE_LIMIT_INIT(1, 5);

        VLOG_WARN_RL(&rl, "other_config:kairo-delta-full-share=%u is not a "
                     "percentage from 1 to 100; using %d", share,
                     KD_DEFAULT_FULL_SHARE);
        share = KD_DEFAULT_FULL_SHARE;
    }
    kd_full_share = share;
}

/* Inspection. */

static void
kd_show(struct ds *out, void *aux OVS_UNUSED)
{
    struct kairo_delta_index_stats total;
    size_t n_megaflows = 0, n_opaque = 0;
    uint64_t records = 0;
    struct kd_udpif *kdu;
    struct kd_bridge *b;

    total = kd_freed_index_stats;
    HMAP_FOR_EACH (b, node, &kd_bridges) {
        struct kairo_delta_index_stats s;

        kairo_delta_index_get_stats(b->index, &s);
        total.n_lookups += s.n_lookups;
        total.n_steps += s.n_steps;
        total.n_keys += s.n_keys;
        total.n_key_words += s.n_key_words;
        total.n_nodes += s.n_nodes;
        total.n_runs += s.n_runs;
        total.n_groups += s.n_groups;
        total.memory += s.memory;
        for (size_t i = 0; i < KAIRO_DELTA_INDEX_N_MEM; i++) {
            total.memory_by[i] += s.memory_by[i];
        }
        total.lookups_examined += s.lookups_examined;
        total.nodes_walked += s.nodes_walked;
        total.subtrees_skipped += s.subtrees_skipped;
        total.megaflows_examined += s.megaflows_examined;
        total.megaflows_reported += s.megaflows_reported;
    }
    HMAP_FOR_EACH (kdu, node, &kd_udpifs) {
        const struct kd_megaflow *mf;

        n_megaflows += hmap_count(&kdu->megaflows);
        n_opaque += kdu->n_opaque;

        /* The megaflows' own records count as the index's memory. */
        records += ((kdu->megaflows.mask + 1) * sizeof(void *)
                    + kdu->allocated_opaque * sizeof *kdu->opaque);
        HMAP_FOR_EACH (mf, node, &kdu->megaflows) {
            records += sizeof *mf + (mf->n_refs > 1
                                     ? mf->n_refs * sizeof *mf->refs : 0);
        }
    }
    records += (kairo_delta_hmap_bytes(&kd_pending)
                + hmap_count(&kd_pending) * sizeof(struct kd_pending));

    ds_put_format(out, "  mode: %s (other_config:kairo-delta), full share "
                  "%u%%\n", kd_is_enabled() ? "delta" : "stock",
                  kd_full_share);
    ds_put_format(out, "  deltas: %"PRIu64" inserts, %"PRIu64" replaces, "
                  "%"PRIu64" removes (%"PRIu64" of clauses), %"PRIu64
                  " groups (%"PRIu64" users spared), %"PRIu64" ports, %"
                  PRIu64" MAC entries, %"PRIu64" left to stock "
                  "revalidation\n",
                  kd_stats.inserts, kd_stats.replaces, kd_stats.removes,
                  kd_stats.clauses, kd_stats.groups, kd_stats.group_spared,
                  kd_stats.port_changes, kd_stats.mac_changes,
                  kd_stats.stock);
    struct kairo_delta_conjs_stats cs;
    kairo_delta_conjs_get_stats(kd_conjs, &cs);
    ds_put_format(out, "  conjunctions: %"PRIuSIZE" with %"PRIuSIZE
                  " clauses; clause inserts mapped by dimension %"PRIu64
                  ", that could not complete %"PRIu64", by their own match %"
                  PRIu64"\n", cs.n_conjunctions, cs.n_clauses, cs.precise,
                  cs.incomplete, cs.wide);
    ds_put_format(out, "  megaflows marked: %"PRIu64" in %"PRIu64" rounds (%"
                  PRIu64" raced, %"PRIu64" opaque), %zu awaiting "
                  "re-translation, %"PRIu64" rounds re-translated at once, %"
                  PRIu64" shared with the revalidators, %"PRIu64
                  " revalidator kicks\n", kd_stats.marked,
                  kd_stats.rounds, kd_stats.raced, kd_stats.opaque_marks,
                  hmap_count(&kd_pending), kd_stats.inline_rounds,
                  kd_stats.shared_rounds, kd_stats.kicks);
    ds_put_cstr(out, "  full revalidations:");
    for (size_t i = 0; i < KD_N_FALLBACKS; i++) {
        ds_put_format(out, " %s %"PRIu64, kd_fallback_names[i],
                      kd_stats.fallbacks[i]);
    }
    ds_put_format(out, "\n  full revalidations by Open vSwitch: %"PRIu64
                  "\n", kd_stats.switch_full);
    uint64_t lookups = total.memory;
    uint64_t deps = kairo_delta_deps_memory(kd_deps);
    total.memory += records + deps;
    ds_put_format(out, "  index: %zu megaflows (%zu opaque), %"PRIu64
                  " lookups in %"PRIu64" shared steps (%"PRIu64" nodes, %"
                  PRIu64" runs, %"PRIu64" keys of %"PRIu64" distinct words)"
                  " of %"PRIu64" groups, "
                  "%zu other dependencies, %"PRIu64" bytes", n_megaflows,
                  n_opaque, total.n_lookups, total.n_steps, total.n_nodes,
                  total.n_runs, total.n_keys, total.n_key_words,
                  total.n_groups,
                  kairo_delta_deps_n_deps(kd_deps), total.memory);
    if (n_megaflows) {
        ds_put_format(out, " (%"PRIu64" per megaflow)",
                      total.memory / n_megaflows);
    }
    ds_put_format(out, "\n  index bytes: %"PRIu64" lookups, %"PRIu64
                  " megaflow records, %"PRIu64" other dependencies\n",
                  lookups, records, deps);
    ds_put_cstr(out, "  lookup bytes:");
    for (size_t i = 0; i < KAIRO_DELTA_INDEX_N_MEM; i++) {
        ds_put_format(out, "%s %"PRIu64" %s", i ? "," : "",
                      total.memory_by[i], kairo_delta_index_mem_name(i));
    }
    ds_put_char(out, '\n');
    ds_put_format(out, "  selectivity: %"PRIu64" lookups examined, %"PRIu64
                  " nodes walked (%"PRIu64" subtrees skipped as marked), %"
                  PRIu64" megaflows examined, %"PRIu64" reported\n",
                  total.lookups_examined, total.nodes_walked,
                  total.subtrees_skipped, total.megaflows_examined,
                  total.megaflows_reported);
    ds_put_cstr(out, "  delta to re-translation:");
    for (size_t i = 0; i < KD_N_LATENCY; i++) {
        if (i < ARRAY_SIZE(kd_latency_bounds)) {
            ds_put_format(out, " <%lldms %"PRIu64,
                          kd_latency_bounds[i] / 1000, kd_stats.latency[i]);
        } else {
            ds_put_format(out, " more %"PRIu64, kd_stats.latency[i]);
        }
    }
    ds_put_char(out, '\n');
    ds_put_format(out, "  megaflow events: %"PRIu64" installed, %"PRIu64
                  " translated by revalidation, %"PRIu64" deleted\n",
                  kd_stats.ukey_events[UDPIF_UKEY_INSTALLED],
                  kd_stats.ukey_events[UDPIF_UKEY_TRANSLATED],
                  kd_stats.ukey_events[UDPIF_UKEY_DELETED]);
    ds_put_format(out, "  latest change: slowest re-translation after %lld "
                  "us; %lld us from the change to the last re-translation or "
                  "deletion since\n", kd_stats.latest_latency,
                  (kd_stats.last_retranslation > kd_stats.last_change
                   ? kd_stats.last_retranslation - kd_stats.last_change
                   : 0));
}

/* For an installed flow with mask 'dp_mask' whose fresh translation made the
 * lookups in 'c' and wants a narrower mask: returns true if each of those
 * lookups takes the same rule (or misses) for every packet of the flow, that
 * is, no rule of the table that could be the answer for some of them splits
 * the lookup's region (matches some of its packets but not all: one of at
 * least the threshold of the rule hit, a clause only where its conjunction
 * can complete, a rule on a conj_id only where that conjunction can): the
 * flow as the table saw it, under 'dp_mask' (exact on registers and
 * metadata, which every packet enters with the same value and which change
 * alike along the same path).  Then the flow's mask is only wider than a
 * fresh translation's, as when a rule is inserted that none of its packets
 * can match, and it is not stale.
 * Otherwise describes the rule in 'why' and returns false. */
static bool
kd_verify_regions(const struct kd_capture *c,
                  const struct flow_wildcards *dp_mask, struct ds *why)
{
    if (c->overflow) {
        ds_put_cstr(why, "mask too wide, and too many lookups to audit");
        return false;
    }

    struct flow_wildcards region = *dp_mask;
    memset(region.masks.regs, 0xff, sizeof region.masks.regs);
    region.masks.metadata = OVS_BE64_MAX;

    for (size_t i = 0; i < c->n; i++) {
        const struct kd_lookup *l = &c->lookups[i];
        const struct ofproto *ofproto = l->ofproto;
        int priority = l->rule ? l->threshold : INT_MIN;
        struct rule *rule;

        if (l->table_id >= ofproto->n_tables) {
            continue;
        }

        struct kairo_delta_conj_region *conjs
            = kairo_delta_conj_region_create(ofproto, l->table_id,
                                             &l->full->flow, &region);
        CLS_FOR_EACH_TARGET (rule, cr, &ofproto->tables[l->table_id].cls,
                             NULL, ofproto->tables_version) {
            if (rule != l->rule
                && kairo_delta_conj_region_may_split(conjs, rule,
                                                      priority)) {
                ds_put_format(why, "mask too wide for table %"PRIu8" rule ",
                              l->table_id);
                cls_rule_format(&rule->cr, ofproto_get_tun_tab(ofproto),
                                NULL, why);
                kairo_delta_conj_region_destroy(conjs);
                return false;
            }
        }
        kairo_delta_conj_region_destroy(conjs);
    }
    return true;
}

/* One "kairo/verify": its tallies and report. */
struct kd_audit {
    size_t checked, stale, wider, skipped;
    struct ds out;
};

/* Audits one datapath flow 'f' of 'backer': translates its key against the
 * current tables, as a revalidator would, and reports it in 'audit_' (a
 * struct kd_audit) if the installed actions differ, or if the installed
 * mask is wider than the translation needs and not shown sound by
 * kd_verify_regions(). */
static void
kd_verify_flow(const struct dpif_backer *backer, const struct dpif_flow *f,
               void *audit_)
{
    struct kd_audit *audit = audit_;
    struct ds *out = &audit->out;
    struct flow_wildcards wc, dp_mask;
    struct ofproto_dpif *ofproto;
    struct xlate_out xout;
    ofp_port_t ofp_in_port;
    struct xlate_in xin;
    struct flow flow;

    audit->checked++;
    if (odp_flow_key_to_flow(f->key, f->key_len, &flow, NULL) == ODP_FIT_ERROR
        || xlate_lookup(backer, &flow, &ofproto, NULL, NULL, NULL,
                        &ofp_in_port, NULL)
        || odp_flow_key_to_mask(f->mask, f->mask_len, &dp_mask, &flow,
                                NULL) == ODP_FIT_ERROR) {
        audit->skipped++;
        return;
    }

    uint64_t stub[1024 / 8];
    struct ofpbuf odp_actions = OFPBUF_STUB_INITIALIZER(stub);
    struct xlate_cache *xcache = xlate_cache_new();
    xlate_in_init(&xin, ofproto, ofproto_dpif_get_tables_version(ofproto),
                  &flow, ofp_in_port, NULL, 0, NULL, &wc, &odp_actions);
    xin.allow_side_effects = false;
    xin.xcache = xcache;
    kd_capture_start(xcache, true);
    enum xlate_error error = xlate_actions(&xin, &xout);
    struct kd_capture *c = kd_capture_take(xcache);

    struct ds why = DS_EMPTY_INITIALIZER;
    if (error != XLATE_OK || xout.slow || xout.avoid_caching) {
        /* Slow-pathed flows carry a userspace action that only the upcall
         * module composes; they are not audited. */
        audit->skipped++;
    } else if (odp_actions.size != f->actions_len
               || memcmp(odp_actions.data, f->actions, f->actions_len)) {
        ds_put_cstr(&why, "tables say:");
        format_odp_actions(&why, odp_actions.data, odp_actions.size, NULL);
    } else if (flow_wildcards_has_extra(&dp_mask, &wc)) {
        if (c && kd_verify_regions(c, &dp_mask, &why)) {
            audit->wider++;
        } else if (!why.length) {
            ds_put_cstr(&why, "mask too wide, lookups unknown");
        }
    }
    if (why.length) {
        audit->stale++;
        ds_put_cstr(out, "stale: ");
        odp_flow_format(f->key, f->key_len, f->mask, f->mask_len, NULL,
                        out, false);
        ds_put_cstr(out, ", installed actions:");
        format_odp_actions(out, f->actions, f->actions_len, NULL);
        ds_put_format(out, ", %s\n", ds_cstr(&why));
    }
    ds_destroy(&why);
    kd_capture_release(c);
    xlate_cache_delete(xcache);
    xlate_out_uninit(&xout);
    ofpbuf_uninit(&odp_actions);
}

/* Returns the datapath backers of every bridge, each once, in '*n'. */
static const struct dpif_backer **
kd_collect_backers(size_t *n)
{
    const struct dpif_backer **backers = NULL;
    struct sset types, names;
    const char *type, *name;

    *n = 0;
    sset_init(&types);
    sset_init(&names);
    ofproto_enumerate_types(&types);
    SSET_FOR_EACH (type, &types) {
        struct sset type_names;

        sset_init(&type_names);
        ofproto_enumerate_names(type, &type_names);
        SSET_FOR_EACH (name, &type_names) {
            sset_add(&names, name);
        }
        sset_destroy(&type_names);
    }
    sset_destroy(&types);
    SSET_FOR_EACH (name, &names) {
        const struct ofproto_dpif *ofproto = ofproto_dpif_lookup_by_name(name);
        const struct dpif_backer *backer = ofproto ? ofproto->backer : NULL;
        bool seen = !backer;

        for (size_t i = 0; i < *n && !seen; i++) {
            seen = backers[i] == backer;
        }
        if (!seen) {
            backers = xrealloc(backers, (*n + 1) * sizeof *backers);
            backers[(*n)++] = backer;
        }
    }
    sset_destroy(&names);
    return backers;
}

/* Calls 'cb' for every flow installed in 'backer''s datapath. */
static void
kd_for_each_dp_flow(const struct dpif_backer *backer,
                    void (*cb)(const struct dpif_backer *,
                               const struct dpif_flow *, void *aux),
                    void *aux)
{
    struct dpif_flow_dump *dump = dpif_flow_dump_create(backer->dpif, false,
                                                        NULL);
    struct dpif_flow_dump_thread *thread = dpif_flow_dump_thread_create(dump);
    struct dpif_flow flows[64];
    int n;

    while ((n = dpif_flow_dump_next(thread, flows, ARRAY_SIZE(flows)))) {
        for (int i = 0; i < n; i++) {
            cb(backer, &flows[i], aux);
        }
    }
    dpif_flow_dump_thread_destroy(thread);
    dpif_flow_dump_destroy(dump);
}

/* "kairo/verify": re-translates every installed datapath flow against the
 * current tables and lists every stale one.  Meaningful when the switch is
 * quiescent, e.g. after kairo/wait and revalidator/wait. */
static void
kd_unixctl_verify(struct unixctl_conn *conn, int argc OVS_UNUSED,
                  const char *argv[] OVS_UNUSED, void *aux OVS_UNUSED)
{
    struct kd_audit audit = { .out = DS_EMPTY_INITIALIZER };
    const struct dpif_backer **backers;
    size_t n_backers;

    backers = kd_collect_backers(&n_backers);
    for (size_t i = 0; i < n_backers; i++) {
        kd_for_each_dp_flow(backers[i], kd_verify_flow, &audit);
    }
    free(backers);

    ds_put_format(&audit.out, "%zu datapath flows checked, %zu stale, %zu "
                  "with a sound mask wider than a fresh translation's, %zu "
                  "not audited (slow path or untranslatable)\n",
                  audit.checked, audit.stale, audit.wider, audit.skipped);
    unixctl_command_reply(conn, ds_cstr(&audit.out));
    ds_destroy(&audit.out);
}

/* "kairo/explain": a dry run of one flow-mod.
 * ============================================
 *
 * Maps the rule changes that a flow-mod would make, as ofproto would make
 * them, through the same index queries as a real delta, and lists the
 * installed megaflows they reach.  Nothing is marked or changed. */

/* Why a megaflow would be re-translated. */
enum kd_why {
    KD_WHY_INSERT,              /* A lookup of it overlaps an inserted rule. */
    KD_WHY_RULE,                /* It hit a rule that would be replaced or
                                 * removed. */
    KD_WHY_OPAQUE,              /* Its lookups are unknown. */
};

struct kd_explained {
    struct hmap_node node;      /* In 'megaflows' of struct kd_explain. */
    const struct kd_megaflow *mf;
    enum kd_why why;
    const struct rule *rule;    /* KD_WHY_RULE: the rule it hit. */
    uint8_t table_id;           /* KD_WHY_INSERT: the table of the lookup. */
    int priority;               /* KD_WHY_INSERT: the inserted priority. */
    bool dumped;                /* Found in the datapath. */
};

struct kd_explain {
    const struct ofproto *ofproto;
    struct ofputil_port_map *port_map;
    struct hmap megaflows;      /* "struct kd_explained"s, by megaflow. */
    size_t n_deltas;            /* Rule changes the flow-mod makes. */
    struct kd_explained query;  /* Reason for the query under way. */
    const struct kd_udpif *kdu; /* The datapath being dumped. */
    struct svec lines;          /* Its megaflows, described. */
    struct ds out;
};

static struct kd_explained *
kd_explained_find(const struct kd_explain *ex, const struct kd_megaflow *mf)
{
    struct kd_explained *e;

    HMAP_FOR_EACH_WITH_HASH (e, node, hash_pointer(mf, 0), &ex->megaflows) {
        if (e->mf == mf) {
            return e;
        }
    }
    return NULL;
}

static void
kd_explain_add(struct kd_explain *ex, const struct kd_megaflow *mf)
{
    if (!kd_explained_find(ex, mf)) {
        struct kd_explained *e = xmemdup(&ex->query, sizeof *e);

        e->mf = mf;
        hmap_insert(&ex->megaflows, &e->node, hash_pointer(mf, 0));
    }
}

static void
kd_explain_cb(const void *owner, void *ex)
{
    kd_explain_add(ex, owner);
}

static void
kd_explain_format_rule(const struct kd_explain *ex, const struct rule *rule,
                       struct ds *s)
{
    const struct rule_actions *actions = rule_get_actions(rule);
    struct ofpact_format_params fp = { .port_map = ex->port_map, .s = s };

    ds_put_format(s, "table=%"PRIu8", ", rule->table_id);
    cls_rule_format(&rule->cr, ofproto_get_tun_tab(ex->ofproto),
                    ex->port_map, s);
    ds_put_cstr(s, " actions=");
    ofpacts_format(actions->ofpacts, actions->ofpacts_len, &fp);
}

/* Queries, for flow-mod 'fm', the megaflows whose lookups in 'table_id' a
 * rule with 'priority', 'match' and the flow-mod's actions appearing
 * affects. */
static void
kd_explain_region(struct kd_explain *ex, struct kd_bridge *b,
                  uint8_t table_id, int priority,
                  const struct minimatch *match,
                  const struct ofputil_flow_mod *fm)
{
    ex->query = (struct kd_explained) {
        .why = KD_WHY_INSERT, .table_id = table_id, .priority = priority,
    };
    if (b) {
        kd_query_appears(kd_bridge_whole_index(b), ex->ofproto, table_id,
                         priority, match, fm->ofpacts, fm->ofpacts_len,
                         kd_explain_cb, ex);
    }
}

/* Flow-mod 'fm' would insert a rule with 'priority' and 'match' in
 * 'table_id'. */
static void
kd_explain_insert(struct kd_explain *ex, struct kd_bridge *b,
                  uint8_t table_id, int priority,
                  const struct minimatch *match,
                  const struct ofputil_flow_mod *fm)
{
    ex->n_deltas++;
    ds_put_format(&ex->out, "inserts %sinto table %"PRIu8" at priority %d\n",
                  (kd_ofpacts_are_clause(fm->ofpacts, fm->ofpacts_len)
                   ? "a conjunctive match's clause " : ""), table_id,
                  priority);
    kd_explain_region(ex, b, table_id, priority, match, fm);
}

/* Flow-mod 'fm' would replace ('removing' false) or remove 'rule'. */
static void
kd_explain_rule(struct kd_explain *ex, struct kd_bridge *b,
                const struct rule *rule, bool removing,
                const struct ofputil_flow_mod *fm)
{
    ex->n_deltas++;
    ds_put_cstr(&ex->out, removing ? "removes " : "replaces ");
    kd_explain_format_rule(ex, rule, &ex->out);
    ds_put_char(&ex->out, '\n');
    ex->query = (struct kd_explained) { .why = KD_WHY_RULE, .rule = rule };
    if (b) {
        kairo_delta_index_query_rule(kd_bridge_whole_index(b), rule,
                                     kd_explain_cb, ex);
    }
    if (kd_rule_is_clause(rule) && b) {
        ex->query = (struct kd_explained) {
            .why = KD_WHY_INSERT, .table_id = rule->table_id,
            .priority = rule->cr.priority,
        };
        kd_query_gone_clause(kd_bridge_whole_index(b), rule, kd_explain_cb,
                             ex);
    }
    if (!removing && (kd_rule_is_clause(rule)
                      || kd_ofpacts_are_clause(fm->ofpacts,
                                               fm->ofpacts_len))) {
        kd_explain_region(ex, b, rule->table_id, rule->cr.priority,
                          &rule->cr.match, fm);
    }
}

/* Returns true if 'rule' is one that 'fm' selects for a modify or delete, as
 * ofproto's collect_rule() would, apart from the match. */
static bool
kd_explain_selects(const struct ofputil_flow_mod *fm, const struct rule *rule,
                   bool check_out)
{
    const struct rule_actions *actions = rule_get_actions(rule);

    return (!rule_is_hidden(rule)
            && !((rule->flow_cookie ^ fm->cookie) & fm->cookie_mask)
            && (!check_out
                || ofproto_rule_has_out_port(rule, fm->out_port))
            && (!check_out || fm->out_group == OFPG_ANY
                || ofpacts_output_to_group(actions->ofpacts,
                                           actions->ofpacts_len,
                                           fm->out_group)));
}

/* Collects the rules that modify or delete flow-mod 'fm' selects, loosely or
 * with 'strict', in '*rules' ('*n' of them).  Returns false if 'fm' names a
 * table that does not exist. */
static bool
kd_explain_collect(const struct ofproto *ofproto,
                   const struct ofputil_flow_mod *fm, bool strict,
                   bool check_out, const struct rule ***rules, size_t *n)
{
    struct cls_rule target;

    *rules = NULL;
    *n = 0;
    if (fm->table_id != 0xff && fm->table_id >= ofproto->n_tables) {
        return false;
    }

    cls_rule_init_from_minimatch(&target, &fm->match, fm->priority);
    for (size_t t = 0; t < ofproto->n_tables; t++) {
        const struct oftable *table = &ofproto->tables[t];
        struct rule *rule;

        if ((fm->table_id != 0xff && fm->table_id != t)
            || table->flags & (OFTABLE_HIDDEN | OFTABLE_READONLY)) {
            continue;
        }
        CLS_FOR_EACH_TARGET (rule, cr, &table->cls, &target,
                             ofproto->tables_version) {
            if ((!strict || cls_rule_equal(&rule->cr, &target))
                && kd_explain_selects(fm, rule, check_out)) {
                *rules = xrealloc(*rules, (*n + 1) * sizeof **rules);
                (*rules)[(*n)++] = rule;
            }
        }
    }
    cls_rule_destroy(&target);
    return true;
}

/* Maps 'fm' to the rule changes ofproto would make and queries the index
 * for each.  Returns an error message, or NULL. */
static const char *
kd_explain_flow_mod(struct kd_explain *ex, const struct ofputil_flow_mod *fm)
{
    const struct ofproto *ofproto = ex->ofproto;
    struct kd_bridge *b = kd_bridge_find(ofproto);
    bool is_delete = (fm->command == OFPFC_DELETE
                      || fm->command == OFPFC_DELETE_STRICT);
    bool strict = (fm->command == OFPFC_MODIFY_STRICT
                   || fm->command == OFPFC_DELETE_STRICT);
    bool may_add = fm->command == OFPFC_ADD;

    if (fm->command != OFPFC_ADD) {
        const struct rule **rules;
        size_t n;

        if (!kd_explain_collect(ofproto, fm, strict, is_delete, &rules, &n)) {
            return "no such table";
        }
        for (size_t i = 0; i < n; i++) {
            kd_explain_rule(ex, b, rules[i], is_delete, fm);
        }
        free(rules);
        may_add = (!n && !is_delete && fm->new_cookie != OVS_BE64_MAX
                   && fm->cookie_mask == htonll(0));
    }
    if (may_add) {
        uint8_t table_id = fm->table_id == 0xff ? 0 : fm->table_id;
        struct cls_rule target;
        const struct rule *old;

        if (table_id >= ofproto->n_tables) {
            return "no such table";
        }
        cls_rule_init_from_minimatch(&target, &fm->match, fm->priority);
        old = rule_from_cls_rule(classifier_find_rule_exactly(
                                     &ofproto->tables[table_id].cls, &target,
                                     ofproto->tables_version));
        cls_rule_destroy(&target);
        if (old) {
            kd_explain_rule(ex, b, old, false, fm);
        } else {
            kd_explain_insert(ex, b, table_id, fm->priority, &fm->match, fm);
        }
    }
    return NULL;
}

static void
kd_explain_dp_flow(const struct dpif_backer *backer OVS_UNUSED,
                   const struct dpif_flow *f, void *ex_)
{
    struct kd_explain *ex = ex_;
    struct udpif_ukey_id id = { .ufid = f->ufid, .pmd_id = f->pmd_id };
    const struct kd_megaflow *mf = kd_megaflow_find(ex->kdu, &id);
    struct kd_explained *e = mf ? kd_explained_find(ex, mf) : NULL;

    if (!e || e->dumped) {
        return;
    }
    e->dumped = true;

    struct ds s_ = DS_EMPTY_INITIALIZER, *s = &s_;
    ds_put_cstr(s, "  ");
    odp_flow_format(f->key, f->key_len, f->mask, f->mask_len, NULL, s,
                    false);
    ds_put_cstr(s, ", actions:");
    format_odp_actions(s, f->actions, f->actions_len, NULL);
    ds_put_cstr(s, "\n    ");
    odp_format_ufid(&f->ufid, s);
    ds_put_cstr(s, ", why: ");
    switch (e->why) {
    case KD_WHY_INSERT:
        ds_put_format(s, "a lookup in table %"PRIu8" that missed, or "
                      "whose result a rule of priority %d can change, "
                      "overlaps the rule's match", e->table_id, e->priority);
        break;
    case KD_WHY_RULE:
        ds_put_cstr(s, "hit ");
        kd_explain_format_rule(ex, e->rule, s);
        break;
    case KD_WHY_OPAQUE:
        ds_put_cstr(s, "its lookups are unknown (it learns, or made too "
                    "many lookups to keep), so every change re-translates "
                    "it");
        break;
    }
    svec_add_nocopy(&ex->lines, ds_steal_cstr(s));
}

/* Reports, for each datapath, what the megaflows found cost and which they
 * are. */
static void
kd_explain_report(struct kd_explain *ex)
{
    const struct dpif_backer **backers;
    size_t n_backers;

    if (!ex->n_deltas) {
        ds_put_cstr(&ex->out, "changes no rule, so no megaflow\n");
        return;
    }
    if (!kd_is_enabled()) {
        ds_put_cstr(&ex->out, "delta mode is off: stock revalidation would "
                    "re-translate every megaflow\n");
        return;
    }
    /* Every delta marks the opaque megaflows. */
    struct kd_udpif *kdu;
    ex->query = (struct kd_explained) { .why = KD_WHY_OPAQUE };
    HMAP_FOR_EACH (kdu, node, &kd_udpifs) {
        for (size_t i = 0; i < kdu->n_opaque; i++) {
            kd_explain_add(ex, kdu->opaque[i]);
        }
    }

    backers = kd_collect_backers(&n_backers);
    for (size_t i = 0; i < n_backers; i++) {
        const struct dpif_backer *backer = backers[i];
        struct kd_explained *e;
        size_t n = 0, n_why[3] = { 0 };

        kdu = kd_udpif_find(backer->udpif);
        if (!kdu) {
            continue;
        }
        HMAP_FOR_EACH (e, node, &ex->megaflows) {
            if (e->mf->kdu == kdu) {
                n++;
                n_why[e->why]++;
            }
        }

        size_t total = hmap_count(&kdu->megaflows);
        ds_put_format(&ex->out, "%s: %zu of %zu megaflows (%zu by an "
                      "insert, %zu by the rules they hit, %zu opaque) "
                      "would be re-translated", dpif_name(backer->dpif), n,
                      total, n_why[KD_WHY_INSERT], n_why[KD_WHY_RULE],
                      n_why[KD_WHY_OPAQUE]);
        if (n) {
            switch (kd_round_plan(n, total)) {
            case KD_ROUND_FULL:
                ds_put_format(&ex->out, ": more than %u%% "
                              "(other_config:kairo-delta-full-share), so by "
                              "a full revalidation", kd_full_share);
                break;
            case KD_ROUND_INLINE:
                ds_put_cstr(&ex->out, " at once");
                break;
            case KD_ROUND_KICK:
                ds_put_format(&ex->out, " by the revalidators, %zu of them "
                              "at once", kd_round_main_share(kdu->udpif, n));
                break;
            }
        }
        ds_put_char(&ex->out, '\n');

        /* In the order of their text, not of the dump. */
        ex->kdu = kdu;
        kd_for_each_dp_flow(backer, kd_explain_dp_flow, ex);
        svec_sort(&ex->lines);
        for (size_t j = 0; j < ex->lines.n; j++) {
            ds_put_format(&ex->out, "%s\n", ex->lines.names[j]);
        }
        svec_clear(&ex->lines);
        HMAP_FOR_EACH (e, node, &ex->megaflows) {
            if (e->mf->kdu == kdu && !e->dumped) {
                ds_put_cstr(&ex->out, "  ");
                odp_format_ufid(&e->mf->ufid, &ex->out);
                ds_put_cstr(&ex->out, " (no longer in the datapath)\n");
            }
        }
    }
    free(backers);
}

/* "kairo/explain BRIDGE FLOW-MOD...": the words after BRIDGE form one
 * flow-mod in ovs-ofctl syntax, optionally led by "add", "modify",
 * "modify_strict", "delete" or "delete_strict". */
static void
kd_unixctl_explain(struct unixctl_conn *conn, int argc, const char *argv[],
                   void *aux OVS_UNUSED)
{
    const struct ofproto_dpif *ofproto = ofproto_dpif_lookup_by_name(argv[1]);
    if (!ofproto) {
        unixctl_command_reply_error(conn, "no such bridge");
        return;
    }

    struct ds fm_s = DS_EMPTY_INITIALIZER;
    for (int i = 2; i < argc; i++) {
        ds_put_format(&fm_s, "%s%s", i > 2 ? " " : "", argv[i]);
    }

    struct ofputil_port_map port_map = OFPUTIL_PORT_MAP_INITIALIZER(&port_map);
    const struct ofport *port;
    HMAP_FOR_EACH (port, hmap_node, &ofproto->up.ports) {
        ofputil_port_map_put(&port_map, port->ofp_port,
                             netdev_get_name(port->netdev));
    }

    struct ofputil_flow_mod fm;
    enum ofputil_protocol usable_protocols;
    char *error = parse_ofp_flow_mod_str(&fm, ds_cstr(&fm_s), &port_map, NULL,
                                         -2, &usable_protocols);
    ds_destroy(&fm_s);
    if (error) {
        unixctl_command_reply_error(conn, error);
        free(error);
        ofputil_port_map_destroy(&port_map);
        return;
    }

    /* Bring the index up to date with the queued events first. */
    kd_run__(NULL);

    struct kd_explain ex = {
        .ofproto = &ofproto->up,
        .port_map = &port_map,
        .megaflows = HMAP_INITIALIZER(&ex.megaflows),
        .lines = SVEC_EMPTY_INITIALIZER,
        .out = DS_EMPTY_INITIALIZER,
    };
    const char *bad = kd_explain_flow_mod(&ex, &fm);
    if (bad) {
        unixctl_command_reply_error(conn, bad);
    } else {
        kd_explain_report(&ex);
        unixctl_command_reply(conn, ds_cstr(&ex.out));
    }

    struct kd_explained *e;
    HMAP_FOR_EACH_POP (e, node, &ex.megaflows) {
        free(e);
    }
    hmap_destroy(&ex.megaflows);
    svec_destroy(&ex.lines);
    ds_destroy(&ex.out);
    minimatch_destroy(&fm.match);
    free(fm.ofpacts);
    ofputil_port_map_destroy(&port_map);
}

/* "kairo/wait": replies once every delta queued so far has been mapped and
 * every megaflow it marked has been re-translated or deleted. */
static void
kd_unixctl_wait(struct unixctl_conn *conn, int argc OVS_UNUSED,
                const char *argv[] OVS_UNUSED, void *aux OVS_UNUSED)
{
    kd_run__(NULL);
    kd_waiters = xrealloc(kd_waiters,
                          (kd_n_waiters + 1) * sizeof *kd_waiters);
    kd_waiters[kd_n_waiters++] = conn;
    kd_reply_waiters();
}

void
kairo_delta_init(void)
{
    static struct ovsthread_once once = OVSTHREAD_ONCE_INITIALIZER;

    if (ovsthread_once_start(&once)) {
        ovsthread_key_create(&kd_thread_key, kd_thread_destroy);
        kd_fields_init();
        kd_region_bits_init();
        kd_queue_seq = seq_create();
        kd_last_queue_seq = seq_read(kd_queue_seq);

        ofproto_rule_change_hook = kd_rule_hook;
        ofproto_group_change_hook = kd_group_hook;
        ofproto_dpif_tables_version_hook = kd_tables_version_hook;
        ofproto_dpif_lookup_hook = kd_lookup_hook;
        classifier_conjunction_hook = kd_conj_hook;
        xlate_group_hook = kd_xlate_group_hook;
        xlate_port_hook = kd_xlate_port_hook;
        xlate_mac_hook = kd_xlate_mac_hook;
        mac_learning_change_hook = kd_mac_change_hook;
        ofproto_dpif_change_hooks = &kd_change_hooks;
        kd_deps = kairo_delta_deps_create(offsetof(struct kd_megaflow,
                                                   deps));
        kd_conjs = kairo_delta_conjs_create();
        udpif_ukey_observer = &kd_observer;
        xlate_cache_grows_geometrically = true;

        kairo_show_register_section("delta", kd_show, NULL);
        unixctl_command_register("kairo/verify", "", 0, 0,
                                 kd_unixctl_verify, NULL);
        unixctl_command_register("kairo/wait", "", 0, 0, kd_unixctl_wait,
                                 NULL);
        unixctl_command_register("kairo/explain", "BRIDGE FLOW-MOD", 2,
                                 INT_MAX, kd_unixctl_explain, NULL);
        ovsthread_once_done(&once);
    }
}
