#!/bin/bash
# SPDX-License-Identifier: MIT
# Memory of strictmx-policyd while DNS is unreachable: N distinct cold domains, each answered
# TEMP, then the resident size as the failures expire. Runs in a private network namespace
# (nothing can leave the machine): the daemon forwards to a DNS server that never answers.
#
#   run_failmem.sh POLICYD [N] [OUTDIR]      e.g. run_failmem.sh build-rel/policyd/strictmx-policyd 20000
set -euo pipefail
if [ "${1:-}" = "--inside" ]; then
    shift
    BIN=$1 N=$2 OUT=$3 HERE=$4
    ip link set lo up
    python3 "$HERE/blackhole.py" 5399 & BH=$!
    cat > "$OUT/strictmx.toml" <<EOT
[daemon]
log = "stderr"
verbosity = 1
state_dir = "$OUT/state"
allow_root = true
[resolver]
forwarders = ["127.0.0.1@5399"]
timeout_ms = 2000
# No DNS at all, so no DNSSEC probe can succeed: with validation on, the daemon would answer
# TEMP without resolving anything. Off, every lookup goes through the resolver and fails.
dnssec = false
[policy]
lookup_deadline_ms = 3000
[[listen]]
type = "socketmap"
address = "inet:127.0.0.1:8461"
EOT
    "$BIN" --config "$OUT/strictmx.toml" 2> "$OUT/daemon.log" & P=$!
    for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8461) 2>/dev/null && break; sleep 0.1; done
    rss() { awk '/VmRSS/ {print $2}' "/proc/$P/status"; }
    hwm() { awk '/VmHWM/ {print $2}' "/proc/$P/status"; }
    echo "start_kib=$(rss)"
    echo "answers: $(python3 "$HERE/client.py" 0 "$N" 100 8461)"
    echo "after_kib=$(rss) peak_kib=$(hwm)"
    for t in 30 60 60 60; do sleep $t; echo "plus_${t}s_kib=$(rss)"; done
    kill $P $BH; wait 2>/dev/null || true
    exit 0
fi
BIN=$(realpath "${1:?usage: run_failmem.sh POLICYD [N] [OUTDIR]}")
N=${2:-3000}
OUT=${3:-/tmp/strictmx-failmem}
HERE=$(cd "$(dirname "$0")" && pwd)
rm -rf "$OUT"; mkdir -p "$OUT/state"
exec unshare --net -- "$0" --inside "$BIN" "$N" "$OUT" "$HERE"
