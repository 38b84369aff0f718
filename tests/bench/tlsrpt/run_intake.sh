#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# TLSRPT intake in one run: the bare receive loop (the cheapest possible collector),
# strictmx-policyd and the peer, sys4's tlsrpt-collectd, each fed by strictmx-tlsrpt-flood
# paced at each RATE for 5 s (MSG_DONTWAIT, as libtlsrpt sends). Prints, per collector and
# rate, what the sender could not queue (refused) and what the collector counted.
#
#   run_intake.sh BUILD_DIR PEER_SRC [RATE...]
# BUILD_DIR: a release build with the bench programs; PEER_SRC: a directory holding the
# tlsrpt_reporter package (its Python source; it needs only the standard library).
# Run as root inside a private network namespace (unshare --net): it sets
# net.unix.max_dgram_qlen = 512 there, as the package does on a host.
set -euo pipefail
B=$1 PEER=$2; shift 2
rates=("${@:-50000 100000}")
read -r -a rates <<<"${rates[*]}"
W=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$W"' EXIT
sysctl -qw net.unix.max_dgram_qlen=512
# The peer finds its storage back end through package entry points: describe the source
# tree as an installed distribution, in the work directory (PYTHONPATH), without installing.
mkdir -p "$W/py/tlsrpt_reporter-0.dist-info"
printf 'Metadata-Version: 2.1\nName: tlsrpt_reporter\nVersion: 0\n' \
    >"$W/py/tlsrpt_reporter-0.dist-info/METADATA"
printf '[tlsrpt.collectd]\nsqlite = tlsrpt_reporter.tlsrpt:TLSRPTCollectdSQLite\n' \
    >"$W/py/tlsrpt_reporter-0.dist-info/entry_points.txt"
flood() { "$B/tests/bench/strictmx-tlsrpt-flood" "$1" $(($2 * 5)) 1000 --rate "$2"; }
wait_sock() { for _ in $(seq 100); do [ -S "$1" ] && return 0; sleep 0.1; done; return 1; }

for r in "${rates[@]}"; do
    # bare loop
    "$B/tests/bench/strictmx-tlsrpt-sink" "$W/sink.sock" >"$W/sink.out" & pid=$!
    wait_sock "$W/sink.sock"
    f=$(flood "$W/sink.sock" "$r"); sleep 1; kill "$pid"; wait "$pid" || true
    echo "bare     rate=$r $f counted=$(sed 's/received=//' "$W/sink.out")"

    # strictmx-policyd
    rm -f "$W"/tlsrpt.db*
    cat >"$W/s.toml" <<TOML
[daemon]
log = "stderr"
allow_root = true
state_dir = "$W"
[resolver]
dnssec = false
forwarders = ["127.0.0.1@5399"]
[tlsrpt]
socket = "$W/s.sock"
[[listen]]
type = "socketmap"
address = "inet:127.0.0.1:8499"
TOML
    "$B/policyd/strictmx-policyd" --config "$W/s.toml" 2>"$W/s.log" & pid=$!
    wait_sock "$W/s.sock"; sleep 0.5
    f=$(flood "$W/s.sock" "$r"); sleep 2; kill "$pid"; wait "$pid" || true
    n=$("$B/policyd/strictmx" --config "$W/s.toml" tlsrpt stats | sed -n 's/^sessions_recorded=//p')
    echo "strictmx rate=$r $f counted=$n"

    # peer: tlsrpt-collectd
    rm -f "$W"/peer.db*
    (cd "$PEER" && PYTHONPATH="$PEER:$W/py" exec python3 -c 'import sys
sys.argv = ["tlsrpt-collectd"] + sys.argv[1:]
from tlsrpt_reporter.tlsrpt import tlsrpt_collectd_main
tlsrpt_collectd_main()' --storage "sqlite://$W/peer.db" --socketname "$W/p.sock" \
        --logfilename "$W/peer.log") & pid=$!
    wait_sock "$W/p.sock"; sleep 0.5
    f=$(flood "$W/p.sock" "$r"); sleep 3; kill -TERM "$pid"; wait "$pid" || true
    n=$(python3 -c 'import sqlite3,sys
c = sqlite3.connect(sys.argv[1])
print(c.execute("SELECT COALESCE(SUM(cntrtotal),0) FROM finalresults").fetchone()[0])' "$W/peer.db")
    echo "peer     rate=$r $f counted=$n"
done
