#!/bin/sh
#
# Copyright (c) 2026 The Kairo developers.
# SPDX-License-Identifier: Apache-2.0
#
# kairo-dpdk-memcached.sh: memcached steering through real DPDK ports.
#
# usage: tests/kairo-dpdk-memcached.sh --ovs-build=DIR --vswitchd=FILE
#
# Starts the DPDK build of Kairo's ovs-vswitchd in a kairo-sandbox with
# DPDK initialized without hugepages or PCI devices (--no-huge --legacy-mem
# --no-pci) and a PMD thread on core 1.  A client and two "memcached -U"
# backends sit in network namespaces behind veth pairs whose host ends are
# DPDK ports (the af_packet poll-mode driver, net_af_packet), and a
# kairo-memcached-pmd port steers the client's UDP requests to the virtual
# address by key, rewriting addresses both ways (rewrite=ip).  It checks
# that the ports are polled by a PMD thread, that sets and gets through the
# virtual address work, that every key is stored on the backend that
# kairo/mc-route names, and that both backends got keys.
#
# Prints "dpdk-system: 1 passed, 0 failed, 0 skipped" (or failed, or
# skipped if not root or memcached is missing) and exits 0 unless it failed.
# Everything it starts is stopped by PID, and its namespaces and links are
# deleted, on exit.

me=kairo-dpdk-memcached
srcdir=$(cd "$(dirname "$0")" && pwd)
topdir=$(dirname "$srcdir")
N_KEYS=20
DPDK_PREFIX=kairo-dpdk-test     # Names DPDK's run-time files.

result() {
    case $1 in
        pass) echo "dpdk-system: 1 passed, 0 failed, 0 skipped"; exit 0 ;;
        skip) echo "dpdk-system: 0 passed, 0 failed, 1 skipped"; exit 0 ;;
        *) echo "dpdk-system: 0 passed, 1 failed, 0 skipped"; exit 1 ;;
    esac
}

fail() {
    echo "$me: FAILED: $*" >&2
    if [ -n "${OVS_RUNDIR:-}" ]; then
        echo "$me: last lines of ovs-vswitchd.log:" >&2
        tail -n 20 "$OVS_RUNDIR/ovs-vswitchd.log" >&2
    fi
    exit 1
}

# The part that runs inside the sandbox.
inner() {
    set -u
    mc_pids=

    cleanup() {
        for pid in $mc_pids; do
            kill "$pid" 2>/dev/null
        done
        for ns in kdpdk_c kdpdk_b1 kdpdk_b2; do
            ip netns del $ns 2>/dev/null
        done
        for dev in kdpdk-c-h kdpdk-b1-h kdpdk-b2-h; do
            ip link del $dev 2>/dev/null
        done
    }
    trap cleanup 0

    ovs-vsctl set Open_vSwitch . other_config:dpdk-init=true \
        "other_config:dpdk-extra=--no-huge --legacy-mem -m 1024 --no-pci --file-prefix=$DPDK_PREFIX" \
        other_config:pmd-cpu-mask=0x2 || fail "DPDK does not initialize"
    ovs-vsctl add-br br0 -- set bridge br0 datapath_type=netdev \
        fail-mode=secure || fail "no netdev bridge"

    # add_host NAME IP MAC OFPORT: a namespace kdpdk_NAME with a veth whose
    # host end is DPDK port d-NAME.  The af_packet driver needs as many
    # queue pairs as OVS uses transmit queues (PMD threads plus one).
    add_host() {
        ns=kdpdk_$1 dev=kdpdk-$1
        ip netns add $ns || fail "ip netns add $ns"
        ip link add $dev type veth peer name $dev-h || fail "veth $dev"
        ip link set $dev netns $ns
        ip link set $dev-h up
        ip netns exec $ns ip link set lo up
        ip netns exec $ns ip link set $dev address $3
        ip netns exec $ns ip addr add $2/24 dev $dev
        ip netns exec $ns ip link set $dev up
        # The kernel leaves UDP checksums to offload otherwise.
        ip netns exec $ns ethtool -K $dev tx off > /dev/null
        ovs-vsctl add-port br0 d-$1 -- set Interface d-$1 type=dpdk \
            "options:dpdk-devargs=net_af_packet$4,iface=$dev-h,qpairs=2" \
            options:n_rxq=2 ofport_request=$4 \
            || fail "DPDK port d-$1 not added"
    }
    add_host c 10.233.0.10 02:00:0a:e9:00:0a 1
    add_host b1 10.233.0.1 02:00:0a:e9:00:01 2
    add_host b2 10.233.0.2 02:00:0a:e9:00:02 3
    for h in 1 2; do
        ip netns exec kdpdk_b$h memcached -u root -l 10.233.0.$h -p 11211 \
            -U 11211 -t 1 -m 16 -c 64 &
        mc_pids="$mc_pids $!"
    done
    ip netns exec kdpdk_c ip neigh add 10.233.0.100 \
        lladdr 02:00:0a:e9:00:64 dev kdpdk-c

    ovs-vsctl add-port br0 mc0 -- set Interface mc0 \
        type=kairo-memcached-pmd ofport_request=9 \
        "options:backends=10.233.0.1=02:00:0a:e9:00:01;name=m1,10.233.0.2=02:00:0a:e9:00:02;name=m2" \
        options:rewrite=ip options:vip=10.233.0.100 \
        options:vmac=02:00:0a:e9:00:64 || fail "kairo-memcached-pmd port"
    ovs-ofctl add-flows br0 - <<EOF || fail "flows"
priority=0,actions=normal
priority=10,udp,in_port=1,nw_dst=10.233.0.100,tp_dst=11211,actions=output:9
priority=10,udp,in_port=2,nw_dst=10.233.0.10,tp_src=11211,actions=output:9
priority=10,udp,in_port=3,nw_dst=10.233.0.10,tp_src=11211,actions=output:9
priority=10,ip,in_port=9,nw_dst=10.233.0.1,actions=output:2
priority=10,ip,in_port=9,nw_dst=10.233.0.2,actions=output:3
priority=10,ip,in_port=9,nw_dst=10.233.0.10,actions=output:1
priority=5,in_port=9,actions=drop
EOF

    for port in d-c d-b1 d-b2 mc0; do
        ovs-appctl dpif-netdev/pmd-rxq-show | grep -q "port: $port " \
            || fail "$port is not polled by a PMD thread"
    done

    # udp NAME ARGS: kairo-mc-udp.py ARGS from namespace kdpdk_NAME.
    udp() {
        ns=$1
        shift
        ip netns exec kdpdk_$ns python3 "$srcdir/kairo-mc-udp.py" \
            --timeout 1 "$@"
    }
    # Wait (bounded) until the backends answer in their own namespaces, and
    # then the VIP through the switch.
    for h in 1 2; do
        i=0
        until udp b$h 10.233.0.$h 11211 version 2>/dev/null \
                | grep -q VERSION; do
            i=$((i + 1))
            [ $i -lt 20 ] || fail "backend 10.233.0.$h does not answer"
            sleep 0.5
        done
    done
    i=0
    until udp c 10.233.0.100 11211 "get key0" 2>/dev/null | grep -q END; do
        i=$((i + 1))
        [ $i -lt 20 ] || fail "the VIP does not answer"
        sleep 0.5
    done

    on_b1=0 on_b2=0
    for k in $(seq 1 $N_KEYS); do
        out=$(udp c --id $k 10.233.0.100 11211 "set key$k 0 0 6" \
              "value$((k % 10))")
        [ "$out" = STORED ] || fail "set key$k through the VIP: '$out'"
        out=$(udp c --id $k 10.233.0.100 11211 "get key$k" | head -n 2 \
              | tr '\n' ' ')
        [ "$out" = "VALUE key$k 0 6 value$((k % 10)) " ] \
            || fail "get key$k through the VIP: '$out'"

        # The key is on the backend kairo/mc-route names, not the other, as
        # each backend says in its own namespace.
        route=$(ovs-appctl kairo/mc-route mc0 key$k) \
            || fail "kairo/mc-route mc0 key$k"
        case $route in
            *10.233.0.1:11211*) on=1 off=2; on_b1=$((on_b1 + 1)) ;;
            *10.233.0.2:11211*) on=2 off=1; on_b2=$((on_b2 + 1)) ;;
            *) fail "kairo/mc-route mc0 key$k: '$route'" ;;
        esac
        udp b$on 10.233.0.$on 11211 "get key$k" | grep -q "^VALUE key$k " \
            || fail "key$k is not on 10.233.0.$on, where it is routed"
        udp b$off 10.233.0.$off 11211 "get key$k" | grep -q "^VALUE" \
            && fail "key$k is also on 10.233.0.$off"
    done
    [ $on_b1 -gt 0 ] && [ $on_b2 -gt 0 ] \
        || fail "keys not spread: $on_b1 on m1, $on_b2 on m2"
    # The sets and gets, and the VIP probes' gets.
    steered=$(ovs-appctl kairo/mc-show mc0 \
              | sed -n 's/.*counters: steered \([0-9]*\) .*/\1/p')
    [ "${steered:-0}" -gt $((2 * N_KEYS)) ] \
        || fail "mc0 steered ${steered:-no} requests, not over $((2 * N_KEYS))"
    echo "$me: $N_KEYS keys set and read through DPDK ports, $on_b1 on m1," \
         "$on_b2 on m2"
}

if [ "${1:-}" = --inner ]; then
    inner
    exit 0
fi

ovs_build= vswitchd=
for arg; do
    case $arg in
        --ovs-build=*) ovs_build=${arg#*=} ;;
        --vswitchd=*) vswitchd=${arg#*=} ;;
        *) echo "$me: unknown option $arg" >&2; result fail ;;
    esac
done
[ -n "$ovs_build" ] && [ -n "$vswitchd" ] \
    || { echo "$me: needs --ovs-build and --vswitchd" >&2; result fail; }
if [ "$(id -u)" != 0 ] || ! command -v memcached > /dev/null \
   || ! command -v ethtool > /dev/null; then
    echo "$me: needs root, memcached and ethtool" >&2
    result skip
fi
"$vswitchd" --version | grep -q DPDK \
    || { echo "$me: $vswitchd is not built with DPDK" >&2; result fail; }

sandbox=$(mktemp -d /tmp/kairo-dpdk.XXXXXX)
if timeout 180 sh "$topdir/utilities/kairo-sandbox" --ovs-build="$ovs_build" \
       --vswitchd="$vswitchd" --sandbox-dir="$sandbox/sb" \
       -- sh "$0" --inner; then
    rm -rf "$sandbox" "/var/run/dpdk/$DPDK_PREFIX"
    result pass
fi
rm -rf "/var/run/dpdk/$DPDK_PREFIX"
echo "$me: sandbox kept in $sandbox" >&2
result fail
