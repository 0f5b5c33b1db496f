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

#include "kairo-config.h"

#include "kairo-delta.h"
#include "ovsdb-idl.h"
#include "smap.h"
#include "vswitch-idl.h"

static struct ovsdb_idl *idl;
static unsigned int idl_seqno;

void
kairo_config_init(const char *remote)
{
    idl = ovsdb_idl_create(remote, &ovsrec_idl_class, false, true);
    ovsdb_idl_add_table(idl, &ovsrec_table_open_vswitch);
    ovsdb_idl_add_column(idl, &ovsrec_open_vswitch_col_other_config);
    idl_seqno = ovsdb_idl_get_seqno(idl);
}

void
kairo_config_run(void)
{
    ovsdb_idl_run(idl);
    if (ovsdb_idl_get_seqno(idl) != idl_seqno) {
        const struct ovsrec_open_vswitch *cfg;

        idl_seqno = ovsdb_idl_get_seqno(idl);
        cfg = ovsrec_open_vswitch_first(idl);
        if (cfg) {
            kairo_delta_set_config(&cfg->other_config);
        }
    }
}

void
kairo_config_wait(void)
{
    ovsdb_idl_wait(idl);
}

void
kairo_config_destroy(void)
{
    ovsdb_idl_destroy(idl);
    idl = NULL;
}
