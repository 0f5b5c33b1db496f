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

#ifndef KAIRO_MC_SKETCH_H
#define KAIRO_MC_SKETCH_H 1

/* A count-min sketch that tells hot keys from cold ones.
 *
 * KAIRO_MC_SKETCH_DEPTH rows of 'width' 8-bit saturating counters.  Adding
 * a key increments, in each row, the counter its hash selects, but only
 * those equal to the row minimum ("conservative update"), which keeps the
 * estimate of cold keys low when hot keys share their counters.  The
 * estimate of a key is the minimum of its counters: never below the true
 * count since the last decay (up to 255), and above it only by collisions.
 *
 * Decay: after every 'period' additions, every counter is halved, so a key
 * stays hot only while it keeps being asked for.  Halving walks the whole
 * sketch (DEPTH * width bytes) once per period, so a period should be a few
 * times the width or more.
 *
 * Keys are given by a 32-bit hash of the key computed by the caller; the
 * rows use independent functions of it.
 *
 * Thread-safety: none.  A sketch belongs to one owner, who serializes
 * access. */

#include <stddef.h>
#include <stdint.h>

/* Rows of a sketch. */
#define KAIRO_MC_SKETCH_DEPTH 4

struct kairo_mc_sketch {
    uint8_t *counters;          /* DEPTH rows of 'width' counters. */
    uint32_t mask;              /* 'width' - 1; 'width' is a power of 2. */
    uint32_t period;            /* Additions between two decays. */
    uint32_t until_decay;       /* Additions left before the next decay. */
    uint64_t n_decays;          /* Decays so far. */
};

/* Initializes 'sketch' with at least 'width' counters per row (rounded up to
 * a power of 2, at least 64) and a decay every 'period' additions (at least
 * 1). */
void kairo_mc_sketch_init(struct kairo_mc_sketch *sketch, size_t width,
                          uint32_t period);

/* Frees what 'sketch' owns. */
void kairo_mc_sketch_destroy(struct kairo_mc_sketch *sketch);

/* Counts one occurrence of the key whose hash is 'hash' and returns its new
 * estimate (1 to 255). */
unsigned int kairo_mc_sketch_add(struct kairo_mc_sketch *sketch,
                                 uint32_t hash);

/* Returns the estimate of the key whose hash is 'hash' (0 to 255). */
unsigned int kairo_mc_sketch_estimate(const struct kairo_mc_sketch *sketch,
                                      uint32_t hash);

/* Halves every counter now. */
void kairo_mc_sketch_decay(struct kairo_mc_sketch *sketch);

/* Returns the memory 'sketch' uses for counters, in bytes. */
size_t kairo_mc_sketch_size(const struct kairo_mc_sketch *sketch);

#endif /* kairo-mc-sketch.h */
