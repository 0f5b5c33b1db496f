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

#ifndef KAIRO_DELTA_H
#define KAIRO_DELTA_H 1

/* Delta propagation: incremental maintenance of the megaflow cache.
 *
 * This module is the glue between OVS's ofproto layer and the pure index of
 * lib/kairo-delta-index.h (DESIGN.md section 2).  It sets the hooks of the
 * patch series in utilities/ovs-patches:
 *
 *   - the table-lookup hook and the ukey observer record, for every
 *     installed megaflow, the lookups its translation made (table, flow as
 *     the table saw it, wildcards, rule hit or miss);
 *
 *   - the rule- and group-change hooks turn each flow-table change into a
 *     delta, and the tables-version hook keeps that change from requesting a
 *     full revalidation (REV_FLOW_TABLE) while delta mode is on;
 *
 *   - the main thread maps each delta to the megaflows it can affect and has
 *     the revalidators re-translate only those (udpif_revalidate_ukeys()).
 *     Whatever it cannot map precisely falls back to a full revalidation,
 *     counted by reason.
 *
 * Handler, PMD and revalidator threads only copy events into a queue under
 * a leaf lock; the index belongs to the main thread. */

struct smap;

void kairo_delta_init(void);
void kairo_delta_set_config(const struct smap *other_config);
void kairo_delta_run(void);
void kairo_delta_wait(void);

#endif /* kairo-delta.h */
