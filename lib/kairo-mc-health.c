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
#include "kairo-mc-health.h"

#include <limits.h>

#include "util.h"

/* Bounds of the sampling period, in ms. */
#define MIN_PERIOD_MS 5
#define MAX_PERIOD_MS 1000

/* Resets 'b' to no requests pending and no failures, counting from the
 * counter values 'awaited' and 'replies'. */
static void
health_backend_reset(struct kairo_mc_health_backend *b, uint64_t awaited,
                     uint64_t replies)
{
    b->awaited = awaited;
    b->replies = replies;
    b->pending_since = LLONG_MIN;
    b->failures = 0;
}

void
kairo_mc_health_init(struct kairo_mc_health *health,
                     const struct kairo_mc_health_config *cfg,
                     size_t n_backends)
{
    health->cfg = *cfg;
    health->cfg.failure_limit = MAX(cfg->failure_limit, 1);
    health->n_backends = n_backends;
    health->backends = xcalloc(MAX(n_backends, 1), sizeof *health->backends);
    for (size_t i = 0; i < n_backends; i++) {
        health_backend_reset(&health->backends[i], 0, 0);
    }
}

void
kairo_mc_health_destroy(struct kairo_mc_health *health)
{
    free(health->backends);
    health->backends = NULL;
    health->n_backends = 0;
}

long long
kairo_mc_health_period(const struct kairo_mc_health *health)
{
    long long period = health->cfg.timeout_ms / 4;

    return MIN(MAX(period, MIN_PERIOD_MS), MAX_PERIOD_MS);
}

enum kairo_mc_health_event
kairo_mc_health_sample(struct kairo_mc_health *health, size_t idx,
                       uint64_t awaited, uint64_t replies, long long now)
{
    struct kairo_mc_health_backend *b = &health->backends[idx];

    if (b->ejected) {
        if (now < b->retry_at) {
            return KAIRO_MC_HEALTH_NONE;
        }
        b->ejected = false;
        health_backend_reset(b, awaited, replies);
        return KAIRO_MC_HEALTH_RETRY;
    }

    if (replies != b->replies) {
        /* It answers: whatever it was sent so far counts as answered. */
        bool had_failures = b->failures > 0;

        health_backend_reset(b, awaited, replies);
        return had_failures ? KAIRO_MC_HEALTH_RECOVER : KAIRO_MC_HEALTH_NONE;
    }
    if (awaited == b->awaited) {
        return KAIRO_MC_HEALTH_NONE;
    }
    if (b->pending_since == LLONG_MIN) {
        b->pending_since = now;
        return KAIRO_MC_HEALTH_NONE;
    }
    if (now - b->pending_since < health->cfg.timeout_ms) {
        return KAIRO_MC_HEALTH_NONE;
    }

    /* Requests waited 'timeout_ms' without a single reply: a failure.
     * The next one needs requests sent from now on. */
    b->n_failures++;
    b->awaited = awaited;
    b->pending_since = LLONG_MIN;
    if (++b->failures < health->cfg.failure_limit) {
        return KAIRO_MC_HEALTH_FAILURE;
    }
    b->failures = 0;
    b->ejected = true;
    b->retry_at = now + health->cfg.retry_ms;
    b->n_ejections++;
    return KAIRO_MC_HEALTH_EJECT;
}

bool
kairo_mc_health_is_ejected(const struct kairo_mc_health *health, size_t idx)
{
    return idx < health->n_backends && health->backends[idx].ejected;
}

void
kairo_mc_health_carry(struct kairo_mc_health *health, size_t new_idx,
                      const struct kairo_mc_health *old, size_t old_idx)
{
    health->backends[new_idx] = old->backends[old_idx];
}
