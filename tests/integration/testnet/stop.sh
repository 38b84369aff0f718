#!/bin/bash
# SPDX-License-Identifier: MIT
# Stop the servers that start.sh started in WORKDIR (by their recorded pids).
# Usage: stop.sh WORKDIR
set -u
W=${1:?usage: stop.sh WORKDIR}
[ -d "$W" ] || exit 0

# alive PID: running and not a zombie (orphans wait for whoever reaps them).
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

# stop_pid NAME PIDFILE: TERM, up to 5 s of grace, then KILL.
stop_pid() {
    local pid
    [ -s "$2" ] || return 0
    pid=$(cat "$2")
    if alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do
            alive "$pid" || break
            sleep 0.05
        done
        alive "$pid" && { echo "stop.sh: $1 ignored TERM" >&2; kill -KILL "$pid"; }
    fi
    rm -f "$2"
}

stop_pid policy-server "$W/run/https.pid"
stop_pid smtp-sinks "$W/run/sinks.pid"
stop_pid unbound "$W/unbound/unbound.pid"
stop_pid nsd "$W/dns/nsd.pid"
stop_pid dns-blackhole "$W/run/dns-blackhole.pid"
rm -f "$W/run/started"
exit 0
