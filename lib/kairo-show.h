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

#ifndef KAIRO_SHOW_H
#define KAIRO_SHOW_H 1

/* The overview of a running Kairo switch: "ovs-appctl kairo/version" and
 * "ovs-appctl kairo/show".
 *
 * This module owns those two commands and a registry of show sections.  Each
 * Kairo module that has state worth an overview (the delta engine, the
 * memcached pools, ...) registers one section at its own initialization;
 * kairo/show prints the build summary and then every section, in
 * registration order.  Detailed per-module commands stay with their module.
 *
 * Threads: every function here is for the main thread only, as are the
 * section callbacks, which run from the unixctl server. */

#include <stdbool.h>

struct ds;

/* Appends a human-readable section body to 'out'.  'aux' is the pointer given
 * to kairo_show_register_section().  Lines should be indented by two spaces,
 * under the section title that kairo/show prints itself. */
typedef void kairo_show_section_cb(struct ds *out, void *aux);

void kairo_show_init(void);
void kairo_show_register_section(const char *title,
                                 kairo_show_section_cb *, void *aux);
void kairo_show_format(struct ds *out);
void kairo_show_format_version(struct ds *out);
void kairo_show_destroy(void);

#endif /* kairo-show.h */
