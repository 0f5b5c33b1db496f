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
#include "kairo-mc-sketch.h"

#include "util.h"

/* Returns the index in row 'row' of the key whose hash is 'hash'. */
static inline uint32_t
sketch_index(const struct kairo_mc_sketch *sketch, uint32_t hash, int row)
{
    /* Double hashing: row i uses hash + i * step, with an odd step derived
     * from the hash, so that keys colliding in one row rarely collide in
     * the others. */
    uint32_t step = ((hash >> 17) | (hash << 15)) * 0x9e3779b1u | 1;

    return (hash + row * step) & sketch->mask;
}

void
kairo_mc_sketch_init(struct kairo_mc_sketch *sketch, size_t width,
                     uint32_t period)
{
    size_t w = 64;

    while (w < width && w < (SIZE_MAX / KAIRO_MC_SKETCH_DEPTH) / 2
           && w < UINT32_MAX / 2) {
        w *= 2;
    }
    sketch->counters = xcalloc(KAIRO_MC_SKETCH_DEPTH, w);
    sketch->mask = w - 1;
    sketch->period = MAX(period, 1);
    sketch->until_decay = sketch->period;
    sketch->n_decays = 0;
}

void
kairo_mc_sketch_destroy(struct kairo_mc_sketch *sketch)
{
    free(sketch->counters);
    sketch->counters = NULL;
}

unsigned int
kairo_mc_sketch_add(struct kairo_mc_sketch *sketch, uint32_t hash)
{
    size_t width = (size_t) sketch->mask + 1;
    uint8_t *c[KAIRO_MC_SKETCH_DEPTH];
    unsigned int min = UINT8_MAX;

    for (int i = 0; i < KAIRO_MC_SKETCH_DEPTH; i++) {
        c[i] = &sketch->counters[i * width + sketch_index(sketch, hash, i)];
        min = MIN(min, *c[i]);
    }
    if (min < UINT8_MAX) {
        for (int i = 0; i < KAIRO_MC_SKETCH_DEPTH; i++) {
            if (*c[i] == min) {
                (*c[i])++;
            }
        }
        min++;
    }
    if (!--sketch->until_decay) {
        kairo_mc_sketch_decay(sketch);
    }
    return min;
}

unsigned int
kairo_mc_sketch_estimate(const struct kairo_mc_sketch *sketch, uint32_t hash)
{
    size_t width = (size_t) sketch->mask + 1;
    unsigned int min = UINT8_MAX;

    for (int i = 0; i < KAIRO_MC_SKETCH_DEPTH; i++) {
        min = MIN(min, sketch->counters[i * width
                                        + sketch_index(sketch, hash, i)]);
    }
    return min;
}

void
kairo_mc_sketch_decay(struct kairo_mc_sketch *sketch)
{
    size_t n = kairo_mc_sketch_size(sketch);

    for (size_t i = 0; i < n; i++) {
        sketch->counters[i] >>= 1;
    }
    sketch->until_decay = sketch->period;
    sketch->n_decays++;
}

size_t
kairo_mc_sketch_size(const struct kairo_mc_sketch *sketch)
{
    return KAIRO_MC_SKETCH_DEPTH * ((size_t) sketch->mask + 1);
}
