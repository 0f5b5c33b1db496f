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
#include "kairo-show.h"

#include <stdlib.h>

#include "openvswitch/dynamic-string.h"
#include "openvswitch/util.h"
#include "openvswitch/vlog.h"
#include "timeval.h"
#include "unixctl.h"
#include "util.h"

VLOG_DEFINE_THIS_MODULE(kairo_show);

#ifndef KAIRO_VERSION
#error "KAIRO_VERSION must be defined by the build"
#endif
#ifndef KAIRO_OVS_PATCHES
#error "KAIRO_OVS_PATCHES must be defined by the build"
#endif

/* One registered kairo/show section. */
struct kairo_show_section {
    char *title;                  /* Printed as the section's heading. */
    kairo_show_section_cb *cb;    /* Appends the section's body. */
    void *aux;                    /* Passed to 'cb'. */
};

/* The registered sections, in registration order.  Main thread only. */
static struct kairo_show_section *sections;
static size_t n_sections, allocated_sections;

/* Time at which kairo_show_init() ran, in msec since the epoch. */
static long long int start_time;

static bool initialized;

/* Appends to 'out' the one-line version summary that kairo/version prints. */
void
kairo_show_format_version(struct ds *out)
{
    ds_put_format(out, "Kairo %s (Open vSwitch %s, %d hook patch%s%s)\n",
                  KAIRO_VERSION, PACKAGE_VERSION, KAIRO_OVS_PATCHES,
                  KAIRO_OVS_PATCHES == 1 ? "" : "es",
#ifdef DPDK_NETDEV
                  ", DPDK"
#else
                  ""
#endif
                  );
}

/* Appends the whole kairo/show overview to 'out': the build summary, then
 * every registered section. */
void
kairo_show_format(struct ds *out)
{
    kairo_show_format_version(out);
    ds_put_format(out, "uptime: %lld s\n",
                  (time_wall_msec() - start_time) / 1000);
    if (!n_sections) {
        ds_put_cstr(out, "no Kairo modules are active\n");
    }
    for (size_t i = 0; i < n_sections; i++) {
        const struct kairo_show_section *s = &sections[i];

        ds_put_format(out, "%s:\n", s->title);
        s->cb(out, s->aux);
    }
}

/* Adds a section titled 'title' to kairo/show, whose body 'cb' appends when
 * called with 'aux'.  A title may be registered only once. */
void
kairo_show_register_section(const char *title, kairo_show_section_cb *cb,
                            void *aux)
{
    for (size_t i = 0; i < n_sections; i++) {
        ovs_assert(strcmp(sections[i].title, title));
    }
    if (n_sections >= allocated_sections) {
        sections = x2nrealloc(sections, &allocated_sections,
                              sizeof *sections);
    }
    sections[n_sections++] = (struct kairo_show_section) {
        .title = xstrdup(title),
        .cb = cb,
        .aux = aux,
    };
}

static void
kairo_show_unixctl_version(struct unixctl_conn *conn, int argc OVS_UNUSED,
                           const char *argv[] OVS_UNUSED,
                           void *aux OVS_UNUSED)
{
    struct ds out = DS_EMPTY_INITIALIZER;

    kairo_show_format_version(&out);
    unixctl_command_reply(conn, ds_cstr(&out));
    ds_destroy(&out);
}

static void
kairo_show_unixctl_show(struct unixctl_conn *conn, int argc OVS_UNUSED,
                        const char *argv[] OVS_UNUSED, void *aux OVS_UNUSED)
{
    struct ds out = DS_EMPTY_INITIALIZER;

    kairo_show_format(&out);
    unixctl_command_reply(conn, ds_cstr(&out));
    ds_destroy(&out);
}

/* Registers the kairo/version and kairo/show commands.  Calling it again has
 * no effect. */
void
kairo_show_init(void)
{
    if (initialized) {
        return;
    }
    initialized = true;
    start_time = time_wall_msec();
    unixctl_command_register("kairo/version", "", 0, 0,
                             kairo_show_unixctl_version, NULL);
    unixctl_command_register("kairo/show", "", 0, 0,
                             kairo_show_unixctl_show, NULL);
    VLOG_DBG("kairo/show ready");
}

/* Forgets every registered section.  The unixctl commands stay registered,
 * because unixctl has no way to remove a command. */
void
kairo_show_destroy(void)
{
    for (size_t i = 0; i < n_sections; i++) {
        free(sections[i].title);
    }
    free(sections);
    sections = NULL;
    n_sections = allocated_sections = 0;
}
