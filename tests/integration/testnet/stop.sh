#!/bin/bash
# Stop the servers that start.sh started in WORKDIR (by their recorded pids).
# Usage: stop.sh WORKDIR
set -u
W=${1:?usage: stop.sh WORKDIR}
[ -d "$W" ] || exit 0

# stop_pid NAME PIDFILE: TERM, up to 5 s of grace, then KILL.
stop_pid() {
    local pid
    [ -s "$2" ] || return 0
    pid=$(cat "$2")
    if kill -0 "$pid" 2>/dev/null; then
        kill -TERM "$pid" 2>/dev/null
        for _ in $(seq 50); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.1
        done
        kill -0 "$pid" 2>/dev/null && { echo "stop.sh: $1 ignored TERM" >&2; kill -KILL "$pid"; }
    fi
    rm -f "$2"
}

stop_pid policy-server "$W/run/https.pid"
stop_pid smtp-sinks "$W/run/sinks.pid"
stop_pid unbound "$W/unbound/unbound.pid"
stop_pid nsd "$W/dns/nsd.pid"
rm -f "$W/run/started"
exit 0
