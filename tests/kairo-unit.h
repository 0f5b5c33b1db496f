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

#ifndef KAIRO_UNIT_H
#define KAIRO_UNIT_H 1

/* The CUnit unit-test runner, tests/kairo-unit.
 *
 * Each tests/test-kairo-<module>.c file defines one function that adds its
 * suite (or suites) to the CUnit registry and returns CUE_SUCCESS or a CUnit
 * error code.  tests/kairo-unit-main.c calls every function listed in
 * KAIRO_UNIT_SUITES below, so adding a unit-test file means adding one line
 * here and one source file to tests/automake.mk. */

#include <CUnit/CUnit.h>

#define KAIRO_UNIT_SUITES                       \
    KAIRO_UNIT_SUITE(version)                   \
    KAIRO_UNIT_SUITE(delta_index)               \
    KAIRO_UNIT_SUITE(delta_deps)                \
    KAIRO_UNIT_SUITE(mc_proto)                  \
    KAIRO_UNIT_SUITE(mc_cache)                  \
    KAIRO_UNIT_SUITE(mc_hash)                   \
    KAIRO_UNIT_SUITE(mc_health)                 \
    KAIRO_UNIT_SUITE(mc_pool)                   \
    KAIRO_UNIT_SUITE(ketama)

#define KAIRO_UNIT_SUITE(NAME) CU_ErrorCode kairo_unit_register_##NAME(void);
KAIRO_UNIT_SUITES
#undef KAIRO_UNIT_SUITE

#endif /* kairo-unit.h */
