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

/* tests/kairo-unit: runs every CUnit suite listed in kairo-unit.h.
 *
 * Usage: kairo-unit [SUITE...]
 * With no argument every suite runs; otherwise only the named ones.  The exit
 * status is 0 only if every test passed. */

#include <config.h>
#include "kairo-unit.h"

#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "util.h"

/* One entry of the suite table. */
struct kairo_unit_entry {
    const char *name;                     /* Suite name, as in the macro. */
    CU_ErrorCode (*add)(void);            /* Adds the suite to the registry. */
};

static const struct kairo_unit_entry kairo_unit_entries[] = {
#define KAIRO_UNIT_SUITE(NAME) { #NAME, kairo_unit_register_##NAME },
    KAIRO_UNIT_SUITES
#undef KAIRO_UNIT_SUITE
};

/* Returns true if suite 'name' was selected on the command line ('argc' and
 * 'argv' as given to main()), or if nothing was. */
static bool
kairo_unit_selected(const char *name, int argc, char *argv[])
{
    if (argc < 2) {
        return true;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], name)) {
            return true;
        }
    }
    return false;
}

int
main(int argc, char *argv[])
{
    unsigned int failures;

    set_program_name(argv[0]);
    if (CU_initialize_registry() != CUE_SUCCESS) {
        fprintf(stderr, "%s: %s\n", program_name, CU_get_error_msg());
        return 2;
    }
    for (size_t i = 0; i < ARRAY_SIZE(kairo_unit_entries); i++) {
        const struct kairo_unit_entry *e = &kairo_unit_entries[i];

        if (kairo_unit_selected(e->name, argc, argv)
            && e->add() != CUE_SUCCESS) {
            fprintf(stderr, "%s: cannot add suite %s: %s\n", program_name,
                    e->name, CU_get_error_msg());
            CU_cleanup_registry();
            return 2;
        }
    }

    CU_basic_set_mode(CU_BRM_VERBOSE);
    CU_basic_run_tests();
    failures = CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    printf("\nkairo-unit: %u passed, %u failed\n",
           CU_get_number_of_tests_run() - CU_get_number_of_tests_failed(),
           CU_get_number_of_tests_failed());
    CU_cleanup_registry();
    return failures ? 1 : 0;
}
