#!/bin/bash
# SPDX-License-Identifier: MIT
# Start or stop strictmx-policyd on the test internet's configuration.
# Usage: policyd.sh WORKDIR start|stop|restart|status
# The binary comes from STRICTMX_POLICYD, else from WORKDIR/fixture.env.
# Output goes to WORKDIR/policyd.log; the pid to WORKDIR/run/policyd.pid.
set -u
W=${1:?usage: policyd.sh WORKDIR start|stop|restart|status}
PIDFILE=$W/run/policyd.pid
LOG=$W/policyd.log
if [ -z "${STRICTMX_POLICYD:-}" ] && [ -f "$W/fixture.env" ]; then
    . "$W/fixture.env"
fi

# alive PID: running and not a zombie (orphans wait for whoever reaps them).
alive() {
    local state
    state=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
    [ -n "$state" ] && [ "$state" != Z ]
}

running() { [ -s "$PIDFILE" ] && alive "$(cat "$PIDFILE")"; }

listening() {
    (exec 3<>/dev/tcp/127.0.0.1/8461) 2>/dev/null &&
    (exec 3<>/dev/tcp/127.0.0.1/8462) 2>/dev/null &&
    [ -S "$W/policyd.sock" ]
}

start() {
    if running; then echo "policyd.sh: already running" >&2; return 1; fi
    [ -x "${STRICTMX_POLICYD:-}" ] ||
        { echo "policyd.sh: no strictmx-policyd binary (STRICTMX_POLICYD)" >&2; return 1; }
    mkdir -p "$W/run"
    echo "=== $(date -u +%FT%TZ) start" >> "$LOG"
    local mark
    mark=$(wc -l < "$LOG")
    setsid "$STRICTMX_POLICYD" --config "$W/strictmx.toml" </dev/null >>"$LOG" 2>&1 &
    echo $! > "$PIDFILE"
    for _ in $(seq 150); do
        # Bound sockets accept connections into the listen queue before the daemon serves:
        # wait for its "ready" line (cache loaded, DNSSEC proven, accepting).
        listening && tail -n +"$((mark + 1))" "$LOG" | grep -q ']: ready ' && return 0
        if ! running; then
            echo "policyd.sh: strictmx-policyd exited during start; log tail:" >&2
            tail -n 20 "$LOG" >&2
            return 1
        fi
        sleep 0.1
    done
    echo "policyd.sh: strictmx-policyd did not listen on 8461, 8462 and policyd.sock" >&2
    tail -n 20 "$LOG" >&2
    return 1
}

# Exit 0 after a clean stop, 3 if the daemon needed SIGKILL.
stop() {
    running || { rm -f "$PIDFILE"; return 0; }
    local pid rc=0
    pid=$(cat "$PIDFILE")
    kill -TERM "$pid"
    for _ in $(seq 200); do
        alive "$pid" || break
        sleep 0.05
    done
    if alive "$pid"; then
        echo "policyd.sh: strictmx-policyd ignored SIGTERM for 10 s" >&2
        kill -KILL "$pid"
        rc=3
    fi
    rm -f "$PIDFILE"
    echo "=== $(date -u +%FT%TZ) stopped" >> "$LOG"
    return $rc
}

case ${2:-} in
start) start ;;
stop) stop ;;
restart) stop; start ;;
status) running ;;
*) echo "usage: policyd.sh WORKDIR start|stop|restart|status" >&2; exit 2 ;;
esac
