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

/* Kairo's main: the drop-in ovs-vswitchd.
 *
 * It accepts every option of Open vSwitch 3.1's ovs-vswitchd and runs OVS's
 * bridge layer the same way, so stock ovsdb-server, ovs-vsctl, ovs-ofctl and
 * ovs-appctl drive it unchanged.  On top of that it initializes Kairo's own
 * modules and gives each a turn in the main loop. */

#include <config.h>

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#ifdef HAVE_MLOCKALL
#include <sys/mman.h>
#endif

#include "bridge.h"
#include "command-line.h"
#include "daemon.h"
#include "dirs.h"
#include "dns-resolve.h"
#include "dpdk.h"
#include "dpif.h"
#include "dummy.h"
#include "fatal-signal.h"
#include "kairo-config.h"
#include "kairo-delta.h"
#include "kairo-show.h"
#include "memory.h"
#include "netdev.h"
#include "netdev-kairo-memcached.h"
#include "openvswitch/poll-loop.h"
#include "openvswitch/usdt-probes.h"
#include "openvswitch/vlog.h"
#include "ovs-numa.h"
#include "ovs-rcu.h"
#include "ovs-router.h"
#include "ovs-thread.h"
#include "simap.h"
#include "stream-ssl.h"
#include "stream.h"
#include "timeval.h"
#include "unixctl.h"
#include "util.h"

/* The module keeps stock ovs-vswitchd's name, so that "vlog/set vswitchd:..."
 * and log filters written for stock OVS keep working. */
VLOG_DEFINE_THIS_MODULE(vswitchd);

/* What the command line asked for. */
struct kairo_vswitchd_config {
    char *db_remote;            /* OVSDB remote to connect to.  Owned. */
    const char *unixctl_path;   /* --unixctl, or NULL for the default. */
    bool mlockall;              /* --mlockall: lock memory into RAM. */
};

/* State shared with the "exit" unixctl command. */
struct kairo_vswitchd_exit {
    bool requested;             /* "exit" was received. */
    bool cleanup;               /* It carried --cleanup. */
};

OVS_NO_RETURN static void kairo_vswitchd_usage(void);

/* Prints the version of OVS this binary is built from (as stock does, so
 * scripts that parse it keep working), then Kairo's own, and exits. */
OVS_NO_RETURN static void
kairo_vswitchd_version(void)
{
    struct ds kairo = DS_EMPTY_INITIALIZER;

    ovs_print_version(0, 0);
    print_dpdk_version();
    kairo_show_format_version(&kairo);
    fputs(ds_cstr(&kairo), stdout);
    ds_destroy(&kairo);
    exit(EXIT_SUCCESS);
}

/* Parses 'argc' and 'argv' into 'cfg', acting at once on the options that
 * configure OVS libraries (logging, daemon, SSL, dummy devices, routing). */
static void
kairo_vswitchd_parse_options(int argc, char *argv[],
                             struct kairo_vswitchd_config *cfg)
{
    enum {
        OPT_UNIXCTL = UCHAR_MAX + 1,
        VLOG_OPTION_ENUMS,
        DAEMON_OPTION_ENUMS,
        SSL_OPTION_ENUMS,
        OPT_MLOCKALL,
        OPT_ENABLE_DUMMY,
        OPT_DISABLE_SYSTEM,
        OPT_DISABLE_SYSTEM_ROUTE,
        OPT_DUMMY_NUMA,
        OPT_DPDK,
        OPT_PEER_CA_CERT,
        OPT_BOOTSTRAP_CA_CERT,
    };
    static const struct option options[] = {
        VLOG_LONG_OPTIONS,
        DAEMON_LONG_OPTIONS,
        STREAM_SSL_LONG_OPTIONS,
        {"unixctl", required_argument, NULL, OPT_UNIXCTL},
        {"mlockall", no_argument, NULL, OPT_MLOCKALL},
        {"enable-dummy", optional_argument, NULL, OPT_ENABLE_DUMMY},
        {"disable-system", no_argument, NULL, OPT_DISABLE_SYSTEM},
        {"disable-system-route", no_argument, NULL,
         OPT_DISABLE_SYSTEM_ROUTE},
        {"dummy-numa", required_argument, NULL, OPT_DUMMY_NUMA},
        {"dpdk", optional_argument, NULL, OPT_DPDK},
        {"peer-ca-cert", required_argument, NULL, OPT_PEER_CA_CERT},
        {"bootstrap-ca-cert", required_argument, NULL,
         OPT_BOOTSTRAP_CA_CERT},
        {"version", no_argument, NULL, 'V'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char *short_options = ovs_cmdl_long_options_to_short_options(options);
    int c;

    memset(cfg, 0, sizeof *cfg);
    while ((c = getopt_long(argc, argv, short_options, options, NULL))
           != -1) {
        switch (c) {
        VLOG_OPTION_HANDLERS
        DAEMON_OPTION_HANDLERS
        STREAM_SSL_OPTION_HANDLERS

        case OPT_UNIXCTL:
            cfg->unixctl_path = optarg;
            break;
        case OPT_MLOCKALL:
            cfg->mlockall = true;
            break;
        case OPT_PEER_CA_CERT:
            stream_ssl_set_peer_ca_cert_file(optarg);
            break;
        case OPT_BOOTSTRAP_CA_CERT:
            stream_ssl_set_ca_cert_file(optarg, true);
            break;
        case OPT_DISABLE_SYSTEM_ROUTE:
            ovs_router_disable_system_routing_table();
            break;
        case OPT_DISABLE_SYSTEM:
            dp_disallow_provider("system");
            break;
        case OPT_ENABLE_DUMMY:
            dummy_enable(optarg);
            break;
        case OPT_DUMMY_NUMA:
            ovs_numa_set_dummy(optarg);
            break;
        case OPT_DPDK:
            ovs_fatal(0, "Using --dpdk to configure DPDK is not supported.");
        case 'V':
            kairo_vswitchd_version();
        case 'h':
            kairo_vswitchd_usage();
        case '?':
            exit(EXIT_FAILURE);
        default:
            OVS_NOT_REACHED();
        }
    }
    free(short_options);

    if (optind == argc) {
        cfg->db_remote = xasprintf("unix:%s/db.sock", ovs_rundir());
    } else if (optind + 1 == argc) {
        cfg->db_remote = xstrdup(argv[optind]);
    } else {
        VLOG_FATAL("at most one non-option argument accepted; "
                   "use --help for usage");
    }
}

static void
kairo_vswitchd_usage(void)
{
    const char *rundir = ovs_rundir();

    printf("%s: Open vSwitch daemon, with Kairo\n"
           "usage: %s [OPTIONS] [DATABASE]\n"
           "DATABASE is the ovsdb-server socket to connect to "
           "(default: \"unix:%s/db.sock\").\n",
           program_name, program_name, rundir);
    stream_usage("DATABASE", true, false, true);
    daemon_usage();
    vlog_usage();
    fputs("\nDPDK options:\n"
          "DPDK is configured through the database (other_config:dpdk-*),\n"
          "not on the command line.\n"
          "\nOther options:\n"
          "  --unixctl=SOCKET          override default control socket name\n"
          "  --mlockall                lock all memory into RAM\n"
          "  --enable-dummy[=override] enable dummy network devices\n"
          "  --disable-system          disable the system datapath\n"
          "  --disable-system-route    ignore the kernel routing table\n"
          "  -h, --help                display this help message\n"
          "  -V, --version             display version information\n"
          "\nKairo's commands are the kairo/* entries of "
          "\"ovs-appctl list-commands\";\nsee kairo(8).\n", stdout);
    exit(EXIT_SUCCESS);
}

/* Locks the process's memory into RAM, as --mlockall asks. */
static void
kairo_vswitchd_lock_memory(void)
{
#ifdef HAVE_MLOCKALL
    if (!mlockall(MCL_CURRENT | MCL_FUTURE)) {
        set_memory_locked();
    } else {
        VLOG_ERR("mlockall failed: %s", ovs_strerror(errno));
    }
#else
    VLOG_ERR("mlockall not supported on this system");
#endif
}

/* The "exit [--cleanup]" unixctl command. */
static void
kairo_vswitchd_unixctl_exit(struct unixctl_conn *conn, int argc,
                            const char *argv[], void *req_)
{
    struct kairo_vswitchd_exit *req = req_;

    req->requested = true;
    req->cleanup = argc > 1 && !strcmp(argv[1], "--cleanup");
    unixctl_command_reply(conn, NULL);
}

/* Logs a memory-usage report when OVS's memory module asks for one. */
static void
kairo_vswitchd_report_memory(void)
{
    struct simap usage = SIMAP_INITIALIZER(&usage);

    bridge_get_memory_usage(&usage);
    memory_report(&usage);
    simap_destroy(&usage);
}

/* Runs one iteration of the main loop: gives every module a turn, then
 * sleeps until one of them has work. */
static void
kairo_vswitchd_run_once(struct unixctl_server *unixctl,
                        const struct kairo_vswitchd_exit *exit_req)
{
    OVS_USDT_PROBE(main, run_start);

    memory_run();
    if (memory_should_report()) {
        kairo_vswitchd_report_memory();
    }
    kairo_config_run();
    bridge_run();
    kairo_delta_run();
    unixctl_server_run(unixctl);
    netdev_run();

    memory_wait();
    kairo_config_wait();
    bridge_wait();
    kairo_delta_wait();
    unixctl_server_wait(unixctl);
    netdev_wait();
    if (exit_req->requested) {
        poll_immediate_wake();
    }

    OVS_USDT_PROBE(main, poll_block);
    poll_block();
}

int
main(int argc, char *argv[])
{
    struct kairo_vswitchd_exit exit_req = { .requested = false };
    struct kairo_vswitchd_config cfg;
    struct unixctl_server *unixctl;

    set_program_name(argv[0]);
    ovsthread_id_init();
    dns_resolve_init(true);
    ovs_cmdl_proctitle_init(argc, argv);
    service_start(&argc, &argv);
    kairo_vswitchd_parse_options(argc, argv, &cfg);
    fatal_ignore_sigpipe();

    daemonize_start(true);
    if (cfg.mlockall) {
        kairo_vswitchd_lock_memory();
    }
    if (unixctl_server_create(cfg.unixctl_path, &unixctl)) {
        exit(EXIT_FAILURE);
    }
    unixctl_command_register("exit", "[--cleanup]", 0, 1,
                             kairo_vswitchd_unixctl_exit, &exit_req);
    kairo_show_init();
    kairo_delta_init();
    netdev_kairo_mc_register();

    kairo_config_init(cfg.db_remote);
    bridge_init(cfg.db_remote);
    free(cfg.db_remote);

    while (!exit_req.requested) {
        kairo_vswitchd_run_once(unixctl, &exit_req);
        if (should_service_stop()) {
            exit_req.requested = true;
        }
    }

    bridge_exit(exit_req.cleanup);
    kairo_config_destroy();
    kairo_show_destroy();
    unixctl_server_destroy(unixctl);
    service_stop();
    vlog_disable_async();
    ovsrcu_exit();
    dns_resolve_destroy();
    return 0;
}
