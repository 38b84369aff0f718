#!/bin/bash
# SPDX-License-Identifier: MIT
# ctest fixture: the test internet and strictmx-policyd in a private network and
# mount namespace that outlives this script.
#
#   fixture.sh setup WORKDIR STRICTMX_POLICYD [STRICTMX_CLI [STRICTMX_MILTER]]
#   fixture.sh cleanup WORKDIR
#
# setup starts a holder process in new namespaces ("unshare --net --mount",
# pid in WORKDIR/netns.pid) and, inside them: loopback up, testnet/start.sh,
# WORKDIR/resolv.conf bind-mounted onto /etc/resolv.conf, the private Postfix,
# strictmx-policyd. Tests enter with nsrun.sh. Nothing binds or mounts anything
# outside the namespaces, whether or not ctest itself runs in one.
# Exit 77 (ctest SKIP_RETURN_CODE) when not root.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
ACTION=${1:-}
W=${2:?usage: fixture.sh setup|cleanup WORKDIR [POLICYD [CLI]]}

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the test internet needs root (namespaces, ports 25 and 53)"
    exit 77
fi

cleanup() {
    local holder ns pid
    [ -s "$W/netns.pid" ] || return 0
    holder=$(cat "$W/netns.pid")
    if kill -0 "$holder" 2>/dev/null; then
        nsenter -t "$holder" -n -m -- bash -c "
            '$HERE/policyd.sh' '$W' stop
            '$HERE/testnet/postfix.sh' '$W' stop >/dev/null 2>&1
            '$HERE/testnet/stop.sh' '$W'"
        # Whatever still runs in our private network namespace was started by us.
        ns=$(readlink "/proc/$holder/ns/net" | sed 's/[][]/\\&/g')  # a find -lname pattern
        for pid in $(find /proc/[0-9]*/ns/net -maxdepth 0 -lname "$ns" 2>/dev/null |
                     cut -d/ -f3); do
            [ "$pid" = "$holder" ] && continue
            echo "fixture: stopping leftover process $pid ($(cat /proc/$pid/comm 2>/dev/null))"
            kill -KILL "$pid" 2>/dev/null
        done
        kill -KILL "$holder" 2>/dev/null
    fi
    rm -f "$W/netns.pid"
}

show_logs() {
    local f
    for f in dns/nsd.log unbound/unbound.log https/server.log sinks/server.log \
             postfix/maillog policyd.log; do
        [ -s "$W/$f" ] || continue
        echo "----- $W/$f (last lines)"
        tail -n 15 "$W/$f"
    done
}

case $ACTION in
setup)
    POLICYD=${3:?fixture.sh setup WORKDIR STRICTMX_POLICYD [STRICTMX_CLI [STRICTMX_MILTER]]}
    CLI=${4:-}
    MILTER=${5:-}
    cleanup
    rm -rf "$W"
    mkdir -p "$W"
    W=$(cd "$W" && pwd)
    printf 'STRICTMX_POLICYD=%q\nSTRICTMX_CLI=%q\nSTRICTMX_MILTER=%q\n' \
        "$POLICYD" "$CLI" "$MILTER" > "$W/fixture.env"
    mkdir -p "$W/postmap"   # a main.cf for "postmap -c" (no running Postfix needed)
    echo "compatibility_level = 3.6" > "$W/postmap/main.cf"
    [ -x "$POLICYD" ] || { echo "fixture: $POLICYD is not executable"; exit 1; }

    unshare --net --mount --propagation private -- sleep infinity </dev/null >/dev/null 2>&1 &
    holder=$!
    own=$(readlink /proc/self/ns/net)
    for _ in $(seq 100); do
        ns=$(readlink "/proc/$holder/ns/net" 2>/dev/null) || break
        [ "$ns" != "$own" ] && break
        sleep 0.05
    done
    if [ -z "${ns:-}" ] || [ "$ns" = "$own" ]; then
        echo "fixture: could not create a network namespace (unshare --net --mount)"
        kill "$holder" 2>/dev/null
        exit 1
    fi
    echo "$holder" > "$W/netns.pid"
    start=$SECONDS
    if ! nsenter -t "$holder" -n -m -- bash -c "
            set -e
            ip link set lo up
            '$HERE/testnet/start.sh' '$W'
            mount --bind '$W/resolv.conf' /etc/resolv.conf
            '$HERE/testnet/postfix.sh' '$W' start
            '$HERE/policyd.sh' '$W' start"; then
        echo "fixture: setup failed"
        show_logs
        cleanup
        exit 1
    fi
    echo "fixture: test internet and strictmx-policyd up in $((SECONDS - start)) s ($W)"
    ;;
cleanup)
    cleanup
    # The daemons run under AddressSanitizer and UndefinedBehaviorSanitizer in the test
    # build: a report in any daemon log fails the run.
    reports=$(grep -rlE 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$W" \
              --include='*.log' 2>/dev/null)
    if [ -n "$reports" ]; then
        for f in $reports; do
            echo "fixture: sanitizer report in $f:"
            grep -E -A 12 'ERROR: (AddressSanitizer|LeakSanitizer)|runtime error:' "$f" | head -n 60
        done
        exit 1
    fi
    ;;
*)
    echo "usage: fixture.sh setup|cleanup WORKDIR [POLICYD [CLI [MILTER]]]" >&2
    exit 2
    ;;
esac
