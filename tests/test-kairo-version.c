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

/* Unit tests of lib/kairo-show: the version line and the section registry
 * behind kairo/show. */

#include <config.h>
#include "kairo-unit.h"

#include <string.h>

#include "kairo-show.h"
#include "openvswitch/dynamic-string.h"

/* A section callback that appends the string 'aux'. */
static void
put_aux(struct ds *out, void *aux)
{
    ds_put_format(out, "  %s\n", (const char *) aux);
}

static void
test_version_line(void)
{
    struct ds out = DS_EMPTY_INITIALIZER;

    kairo_show_format_version(&out);
    CU_ASSERT_STRING_EQUAL(ds_cstr(&out) + strlen(ds_cstr(&out)) - 1, "\n");
    CU_ASSERT_PTR_NOT_NULL(strstr(ds_cstr(&out), "Kairo "));
    CU_ASSERT_PTR_NOT_NULL(strstr(ds_cstr(&out), "(Open vSwitch 3.1.0, "));
    CU_ASSERT_PTR_NOT_NULL(strstr(ds_cstr(&out), " hook patch"));
    ds_destroy(&out);
}

static void
test_show_without_sections(void)
{
    struct ds out = DS_EMPTY_INITIALIZER;

    kairo_show_format(&out);
    CU_ASSERT_PTR_NOT_NULL(strstr(ds_cstr(&out), "uptime: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(ds_cstr(&out),
                                  "no Kairo modules are active\n"));
    ds_destroy(&out);
}

static void
test_show_sections_in_order(void)
{
    struct ds out = DS_EMPTY_INITIALIZER;
    const char *first, *second;

    kairo_show_register_section("first", put_aux, "one");
    kairo_show_register_section("second", put_aux, "two");
    kairo_show_format(&out);

    first = strstr(ds_cstr(&out), "first:\n  one\n");
    second = strstr(ds_cstr(&out), "second:\n  two\n");
    CU_ASSERT_PTR_NOT_NULL(first);
    CU_ASSERT_PTR_NOT_NULL(second);
    CU_ASSERT(first && second && first < second);
    CU_ASSERT_PTR_NULL(strstr(ds_cstr(&out), "no Kairo modules"));

    kairo_show_destroy();
    ds_clear(&out);
    kairo_show_format(&out);
    CU_ASSERT_PTR_NULL(strstr(ds_cstr(&out), "first:"));
    ds_destroy(&out);
}

CU_ErrorCode
kairo_unit_register_version(void)
{
    CU_pSuite suite = CU_add_suite("kairo-show", NULL, NULL);

    if (!suite
        || !CU_add_test(suite, "version line", test_version_line)
        || !CU_add_test(suite, "show without sections",
                        test_show_without_sections)
        || !CU_add_test(suite, "show sections in order",
                        test_show_sections_in_order)) {
        return CU_get_error();
    }
    return CUE_SUCCESS;
}
