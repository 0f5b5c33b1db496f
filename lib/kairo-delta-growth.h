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

#ifndef KAIRO_DELTA_GROWTH_H
#define KAIRO_DELTA_GROWTH_H 1

/* How the delta modules' arrays and hash tables grow and shrink.
 *
 * Arrays whose elements come and go as megaflows are re-translated (member
 * sets, a rule's steps, the owners of a dependency record) grow by half and
 * shrink once below half full, so that they stay between half and fully
 * used; doubling and shrinking below a quarter full left OVN's rule arrays
 * at 42%.  Hash tables shrink once at most an eighth full: the wide margin
 * keeps a table that hovers around a power of two from being resized back
 * and forth. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "openvswitch/hmap.h"

/* Returns the capacity an array of 'n' elements is resized to. */
static inline uint32_t
kairo_delta_capacity_for(uint32_t n)
{
    return n + n / 2 + 1;
}

/* Returns true if an array of capacity 'allocated' holding 'n' elements is
 * to shrink (to kairo_delta_capacity_for(n)). */
static inline bool
kairo_delta_capacity_is_slack(uint32_t n, uint32_t allocated)
{
    return allocated > 16 && n < allocated / 2;
}

/* Shrinks 'hmap' once it is at most an eighth full.  Not while iterating
 * over it. */
static inline void
kairo_delta_hmap_maybe_shrink(struct hmap *hmap)
{
    if (hmap->mask && hmap_count(hmap) <= hmap->mask / 8) {
        hmap_shrink(hmap);
    }
}

/* Returns the bytes of 'hmap''s bucket array, 0 while it has none of its
 * own. */
static inline size_t
kairo_delta_hmap_bytes(const struct hmap *hmap)
{
    return (hmap->buckets == &hmap->one
            ? 0 : (hmap->mask + 1) * sizeof *hmap->buckets);
}

#endif /* kairo-delta-growth.h */
