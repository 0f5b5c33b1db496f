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

#ifndef KAIRO_MC_HEALTH_H
#define KAIRO_MC_HEALTH_H 1

/* Passive liveness of memcached backends, after twemproxy's
 * auto_eject_hosts, timeout, server_failure_limit and server_retry_timeout.
 *
 * A switch sees the requests it forwards to a backend and the replies that
 * come back, but keeps no state per request.  So liveness is judged from
 * two counters per backend, sampled by the owner every
 * kairo_mc_health_period() or so: the requests sent to it that await a
 * reply (not noreply, meta 'q' or quiet binary commands, which may get
 * none), and the replies seen from it.
 *
 *   - A backend answers if its reply counter moved since the last sample.
 *     That clears its failures.
 *
 *   - Otherwise, once a sample finds requests sent since the backend last
 *     answered, they are pending.  If it still has not answered 'timeout_ms'
 *     later, that is one failure, and pending starts again with the next
 *     request.  A lost datagram among answered ones is therefore never a
 *     failure: only a backend that answers nothing for 'timeout_ms' while
 *     requests wait fails, and only while it is sent requests.
 *
 *   - 'failure_limit' failures in a row eject the backend for 'retry_ms'.
 *     Then it is retried: it takes requests again with no failures, as
 *     twemproxy re-adds a server after server_retry_timeout, and is ejected
 *     again after 'failure_limit' more failures.
 *
 * A pending request is declared failed between 'timeout_ms' and 'timeout_ms'
 * plus two sample periods after it was sent, never sooner.
 *
 * Whether an ejected backend leaves the ring is the owner's decision (the
 * pool's auto_eject option); this module only tracks liveness.
 *
 * Thread-safety: none.  A tracker belongs to one owner, which serializes
 * every call (the memcached port's main thread).  Times are milliseconds on
 * a monotonic clock, given by the caller. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Settings of a tracker. */
struct kairo_mc_health_config {
    long long timeout_ms;       /* How long requests may wait for a reply;
                                 * 0 disables liveness tracking. */
    unsigned int failure_limit; /* Failures in a row that eject, >= 1. */
    long long retry_ms;         /* How long an ejected backend stays out. */
};

/* What a sample found. */
enum kairo_mc_health_event {
    KAIRO_MC_HEALTH_NONE,       /* Nothing changed. */
    KAIRO_MC_HEALTH_FAILURE,    /* A failure, below the limit. */
    KAIRO_MC_HEALTH_EJECT,      /* A failure that reached the limit: the
                                 * backend is now ejected. */
    KAIRO_MC_HEALTH_RETRY,      /* An ejection ended: the backend is back. */
    KAIRO_MC_HEALTH_RECOVER,    /* A backend with failures answered. */
};

/* The liveness of one backend. */
struct kairo_mc_health_backend {
    uint64_t awaited;           /* Awaiting requests at the last answer. */
    uint64_t replies;           /* Replies at the last sample. */
    long long pending_since;    /* When a sample first found requests
                                 * pending, or LLONG_MIN if none are. */
    unsigned int failures;      /* Failures in a row. */
    bool ejected;               /* Out until 'retry_at'. */
    long long retry_at;         /* When an ejected backend is retried. */
    uint64_t n_failures;        /* Failures in all. */
    uint64_t n_ejections;       /* Ejections in all. */
};

/* Liveness of the backends of one pool. */
struct kairo_mc_health {
    struct kairo_mc_health_config cfg; /* Settings. */
    struct kairo_mc_health_backend *backends; /* One per backend. */
    size_t n_backends;          /* Number of 'backends'. */
};

/* Initializes 'health' for 'n_backends' backends, all live, under 'cfg'. */
void kairo_mc_health_init(struct kairo_mc_health *health,
                          const struct kairo_mc_health_config *cfg,
                          size_t n_backends);

/* Frees what 'health' owns. */
void kairo_mc_health_destroy(struct kairo_mc_health *health);

/* Returns true if 'health' tracks liveness at all (a timeout is set). */
static inline bool
kairo_mc_health_enabled(const struct kairo_mc_health *health)
{
    return health->cfg.timeout_ms > 0 && health->n_backends > 0;
}

/* Returns how often the owner should call kairo_mc_health_sample(), in
 * ms. */
long long kairo_mc_health_period(const struct kairo_mc_health *health);

/* Samples backend 'idx' at 'now': 'awaited' is the number of requests sent
 * to it so far that await a reply, 'replies' the number of replies seen
 * from it so far (both only ever grow).  Returns what changed. */
enum kairo_mc_health_event kairo_mc_health_sample(
    struct kairo_mc_health *health, size_t idx, uint64_t awaited,
    uint64_t replies, long long now);

/* Returns true if backend 'idx' of 'health' is ejected. */
bool kairo_mc_health_is_ejected(const struct kairo_mc_health *health,
                                size_t idx);

/* Carries the liveness of backend 'old_idx' of 'old' over to backend
 * 'new_idx' of 'health' (the same server, after a reconfiguration). */
void kairo_mc_health_carry(struct kairo_mc_health *health, size_t new_idx,
                           const struct kairo_mc_health *old, size_t old_idx);

#endif /* kairo-mc-health.h */
