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

#ifndef KAIRO_CONFIG_H
#define KAIRO_CONFIG_H 1

/* Kairo's switch-wide settings: the other_config:kairo-* keys of the
 * Open_vSwitch table.  OVS's bridge module keeps its database connection to
 * itself, so this module reads those keys over a connection of its own to
 * the same 'remote', monitoring that one column. */

void kairo_config_init(const char *remote);
void kairo_config_run(void);
void kairo_config_wait(void);
void kairo_config_destroy(void);

#endif /* kairo-config.h */
