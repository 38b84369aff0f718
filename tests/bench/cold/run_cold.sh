#!/bin/bash
# SPDX-License-Identifier: MIT
# Cold-miss benchmark (README.md in this directory): strictmx-policyd answering lookups for
# domains it has never seen, against a loopback internet built afresh in private network and
# mount namespaces: nsd with a DNSSEC-signed cold.test. (NSEC3) on 127.0.0.1:5353, an HTTPS
# MTA-STS policy server on 127.0.0.1:8443, the daemon's libunbound forwarding to nsd.
#
# For each connection count the daemon starts with an empty cache (a fresh cache.db and a
# fresh libunbound), strictmx-loadgen sends REQUESTS lookups, each for a different domain
# (half DANE, half MTA-STS), then the same domains again REQUESTS*WARM_FACTOR times (warm).
# The daemon's verbosity-3 log gives one "resolution" line per cold miss: dns_rounds,
# dns_queries, fetch, ms.
#
# usage: run_cold.sh BUILD_DIR          (as root: unshare, mount --bind)
# environment: REQUESTS (cold lookups per run, 2000), CONNECTIONS ("8 32"), WARM_FACTOR (4),
#   POLICYD (daemon binary; default BUILD_DIR/policyd/strictmx-policyd),
#   KEEP_WORK=1 (keep the work directory; it is always kept when something fails)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z "${STRICTMX_COLD_NETNS:-}" ]]; then
    if [[ $# -ne 1 ]]; then
        echo "usage: $0 BUILD_DIR" >&2
        exit 2
    fi
    if [[ $(id -u) -ne 0 ]]; then
        echo "$0: needs root (network and mount namespaces)" >&2
        exit 2
    fi
    export STRICTMX_COLD_NETNS=1
    exec unshare --net --mount --propagation private "$0" "$@"
fi

build=$(cd "$1" && pwd)
: "${REQUESTS:=2000}" "${CONNECTIONS:=8 32}" "${WARM_FACTOR:=4}"
policyd=${POLICYD:-$build/policyd/strictmx-policyd}
loadgen=$build/tests/bench/strictmx-loadgen
py=/usr/bin/python3
net=$here/coldnet.py
for f in "$policyd" "$loadgen" "$py"; do
    [[ -x $f ]] || { echo "missing: $f" >&2; exit 2; }
done
for tool in nsd nsd-control ldns-keygen ldns-signzone ldns-key2ds dig; do
    command -v "$tool" >/dev/null || { echo "missing: $tool" >&2; exit 2; }
done
"$py" -c 'import cryptography' 2>/dev/null || { echo "missing: $py module cryptography" >&2; exit 2; }

t_start=$(date +%s%3N)
ip link set lo up
work=$(mktemp -d /tmp/strictmx-cold.XXXXXX)
# Nothing here should use the system resolver; if something does, it asks loopback, where
# nothing answers on port 53.
echo "nameserver 127.0.0.1" >"$work/resolv.conf"
mount --bind "$work/resolv.conf" /etc/resolv.conf

pids=()
table=("phase connections lookups lookups/s p50_ms p99_ms resolutions dns_rounds dns_queries fetches")
ms() { awk -v u="$1" 'BEGIN{printf "%.3f", u/1000}'; }
daemon_pid=
failed=0
# shellcheck disable=SC2317  # called by the EXIT trap
cleanup() {
    local rc=$?
    [[ -n $daemon_pid ]] && kill "$daemon_pid" 2>/dev/null
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    [[ -s $work/dns/nsd.pid ]] && kill "$(cat "$work/dns/nsd.pid")" 2>/dev/null
    wait 2>/dev/null || true
    if [[ $rc -eq 0 && $failed -eq 0 && -z ${KEEP_WORK:-} ]]; then
        rm -rf "$work"
    else
        echo "work directory kept: $work" >&2
    fi
}
trap cleanup EXIT
results=$work/results.txt
note() { echo "$*" | tee -a "$results"; }
check() {  # MESSAGE TEST...: notes a failure when the test command fails
    local msg=$1
    shift
    if ! "$@"; then
        note "FAIL: $msg"
        failed=1
    fi
}
now_ms() { date +%s%3N; }
wait_tcp() {  # HOST PORT SECONDS
    local end=$((SECONDS + $3))
    while ! (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
        [[ $SECONDS -lt $end ]] || { echo "nothing on $1:$2" >&2; return 1; }
        sleep 0.05
    done
}
cpu_ms() {  # PID: user+system CPU time so far
    awk -v hz="$(getconf CLK_TCK)" '{ printf "%d", ($14 + $15) * 1000 / hz }' "/proc/$1/stat"
}
tree() {  # PID: PID and all its descendants
    local p
    echo "$1"
    for p in $(pgrep -P "$1"); do tree "$p"; done
}
net_cpu_ms() {  # CPU time so far of the bench internet: nsd (all its processes), policy server
    local p total=0
    for p in $https_pid $(tree "$(cat "$work/dns/nsd.pid")"); do
        [[ -r /proc/$p/stat ]] && total=$((total + $(cpu_ms "$p")))
    done
    echo "$total"
}
kv() {  # KEY LINE: the value of KEY=VALUE in LINE
    sed -n "s/.*\\b$1=\\([^ ]*\\).*/\\1/p" <<<"$2"
}
nsd_queries() {
    nsd-control -c "$work/dns/nsd.conf" stats_noreset 2>/dev/null | sed -n 's/^num\.queries=//p'
}
udp_errors() {  # receive-buffer drops in this namespace so far
    awk '$1 == "Udp:" && $2 ~ /^[0-9]/ { print $6 }' /proc/net/snmp
}
https_count() {  # requests answered 200 so far
    awk -F'\t' '$3 == 200' "$work/https/requests.log" 2>/dev/null | wc -l
}

note "# cold-miss benchmark: requests=$REQUESTS connections=\"$CONNECTIONS\" warm_factor=$WARM_FACTOR" \
    "nproc=$(nproc) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\" date=$(date -u +%FT%TZ)"
note "# strictmx $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$here" diff --quiet HEAD 2>/dev/null || echo +changes)" \
    "policyd=$policyd"

# --- the bench internet -------------------------------------------------------------------
t=$(now_ms)
summary=$("$py" "$net" build --workdir "$work" --requests "$REQUESTS" --connections "$CONNECTIONS")
note "setup: $summary build_ms=$(( $(now_ms) - t ))"

mkdir -p "$work/https"
cat >"$work/dns/nsd.conf" <<EOF
server:
	ip-address: 127.0.0.1
	port: 5353
	username: ""
	chroot: ""
	database: ""
	zonelistfile: "$work/dns/zone.list"
	xfrdfile: "$work/dns/xfrd.state"
	xfrdir: "$work/dns"
	pidfile: "$work/dns/nsd.pid"
	logfile: "$work/dns/nsd.log"
	server-count: 1
	verbosity: 1
	hide-version: yes
	# No response rate limiting: its default (200 a second per /24 and answer kind) drops
	# the resolver's AAAA nodata queries under this load, and retries would be measured.
	rrl-ratelimit: 0
	rrl-whitelist-ratelimit: 0
	receive-buffer-size: 4194304
	send-buffer-size: 4194304
remote-control:
	control-enable: yes
	control-interface: "$work/dns/nsd.ctl"
zone:
	name: "cold.test."
	zonefile: "$work/dns/cold.test.zone.signed"
EOF
t=$(now_ms)
nsd -c "$work/dns/nsd.conf" </dev/null >>"$work/dns/nsd.log" 2>&1
setsid "$py" "$net" serve --workdir "$work" --port 8443 </dev/null >>"$work/https/server.log" 2>&1 &
https_pid=$!
pids+=("$https_pid")
for _ in $(seq 200); do
    dig +short +norec +time=1 +tries=1 -p 5353 @127.0.0.1 SOA cold.test. 2>/dev/null | grep -q . && break
    sleep 0.05
done
dig +short +norec -p 5353 @127.0.0.1 SOA cold.test. | grep -q . || { echo "nsd did not load cold.test." >&2; failed=1; exit 1; }
wait_tcp 127.0.0.1 8443 10
note "setup: nsd_and_https_ready_ms=$(( $(now_ms) - t ))"

# The daemon's libunbound: validating with the cold.test. trust anchor, forwarding to nsd.
# local-zone nodefault: test. is one of unbound's built-in local zones (NXDOMAIN without asking).
cat >"$work/unbound-lib.conf" <<EOF
server:
	trust-anchor-file: "$work/trust-anchor"
	local-zone: "test." nodefault
	do-not-query-localhost: no
	do-ip6: no
forward-zone:
	name: "."
	forward-addr: 127.0.0.1@5353
EOF

# --- one run per connection count ----------------------------------------------------------
stop_daemon() {
    kill "$daemon_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$daemon_pid" 2>/dev/null || break; sleep 0.05; done
    kill -KILL "$daemon_pid" 2>/dev/null || true
    wait "$daemon_pid" 2>/dev/null || true
    daemon_pid=
}

for c in $CONNECTIONS; do
    run=$work/run-c$c
    rm -rf "$run"
    mkdir -p "$run/state"
    cat >"$run/strictmx.toml" <<EOF
[daemon]
log = "stderr"
verbosity = 3
state_dir = "$run/state"
allow_root = true
[resolver]
unbound_config = "$work/unbound-lib.conf"
[https]
ca_file = "$work/ca.pem"
connect_to = ["::127.0.0.1:8443"]      # any policy host, port 443 -> 127.0.0.1:8443
timeout_ms = 5000
[cache]
path = "$run/cache.db"                 # fresh: every first lookup is a cold miss
[policy]
lookup_deadline_ms = 20000
[[listen]]
type = "socketmap"
address = "inet:127.0.0.1:8461"
EOF
    log=$run/policyd.log
    "$policyd" --config "$run/strictmx.toml" </dev/null 2>"$log" &
    daemon_pid=$!
    for _ in $(seq 200); do
        grep -q '\bready\b' "$log" 2>/dev/null && break
        kill -0 "$daemon_pid" 2>/dev/null || break
        sleep 0.05
    done
    grep -q '\bready\b' "$log" || { echo "strictmx-policyd did not start; see $log" >&2; failed=1; exit 1; }
    check "c=$c: cache not empty at start" grep -q 'cached_domains=0\b' "$log"

    # cold
    q0=$(nsd_queries) f0=$(https_count) u0=$(udp_errors) cpu0=$(cpu_ms "$daemon_pid") n0=$(net_cpu_ms)
    cold=$("$loadgen" --address inet:127.0.0.1:8461 --keys "$work/keys/cold-$c.keys" \
        --requests "$REQUESTS" --connections "$c" --pid "$daemon_pid")
    cpu1=$(cpu_ms "$daemon_pid") q1=$(nsd_queries) f1=$(https_count) u1=$(udp_errors) n1=$(net_cpu_ms)
    mark=$(wc -l <"$log")
    lstats=$("$py" "$net" stats "$log" --domains-out "$run/requested.keys")
    n=$(kv lookups "$cold")
    note "cold c=$c: lookups=$n seconds=$(kv seconds "$cold") lookups_per_s=$(kv lookups_per_s "$cold")" \
        "p50_ms=$(ms "$(kv p50_us "$cold")")" \
        "p99_ms=$(ms "$(kv p99_us "$cold")")" \
        "ok=$(kv ok_replies "$cold") errors=$(kv errors "$cold")" \
        "daemon_cpu_ms_per_lookup=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$n" 'BEGIN{printf "%.2f", (b-a)/(n>0?n:1)}')" \
        "net_cpu_ms_per_lookup=$(awk -v a="$n0" -v b="$n1" -v n="$n" 'BEGIN{printf "%.2f", (b-a)/(n>0?n:1)}')" \
        "upstream_dns_queries=$((q1 - q0)) udp_rcvbuf_drops=$((u1 - u0)) https_fetches=$((f1 - f0))" \
        "peak_rss_kb=$(kv server_peak_rss_kb "$cold")"
    note "cold c=$c log: $lstats"
    table+=("cold $c $n $(kv lookups_per_s "$cold") $(ms "$(kv p50_us "$cold")") $(ms "$(kv p99_us "$cold")") \
        $(kv resolutions "$lstats") $(kv dns_rounds "$lstats") $(kv dns_queries "$lstats") $(kv fetches "$lstats")")
    res=$(kv resolutions "$lstats")
    if [[ $res -eq 0 ]]; then
        check "c=$c: no resolution lines in the verbosity-3 log (is $policyd older than the dns_rounds log line?)" false
    else
        check "c=$c: max dns_rounds $(kv max_rounds "$lstats") != 2" test "$(kv max_rounds "$lstats")" -eq 2
        check "c=$c: fetches in the log ($(kv fetches "$lstats")) != policy server 200s ($((f1 - f0)))" \
            test "$(kv fetches "$lstats")" -eq $((f1 - f0))
        [[ $res -eq $n ]] || note "note: c=$c: $res resolutions for $n lookups (walks of connections overlapped)"
    fi
    check "c=$c: cold errors" test "$(kv errors "$cold")" -eq 0
    check "c=$c: cold OK answers $(kv ok_replies "$cold") of $n" test "$(kv ok_replies "$cold")" -eq "$n"

    # warm: the same domains (those the cold run's decision lines name), now cached
    wkeys=$run/requested.keys
    cpu0=$(cpu_ms "$daemon_pid") q0=$(nsd_queries)
    warm=$("$loadgen" --address inet:127.0.0.1:8461 --keys "$wkeys" \
        --requests $((REQUESTS * WARM_FACTOR)) --connections "$c" --pid "$daemon_pid")
    cpu1=$(cpu_ms "$daemon_pid") q1=$(nsd_queries)
    n=$(kv lookups "$warm")
    wstats=$("$py" "$net" stats "$log" --skip "$mark")
    note "warm c=$c: lookups=$n seconds=$(kv seconds "$warm") lookups_per_s=$(kv lookups_per_s "$warm")" \
        "p50_ms=$(ms "$(kv p50_us "$warm")")" \
        "p99_ms=$(ms "$(kv p99_us "$warm")")" \
        "ok=$(kv ok_replies "$warm") errors=$(kv errors "$warm")" \
        "daemon_cpu_ms_per_lookup=$(awk -v a="$cpu0" -v b="$cpu1" -v n="$n" 'BEGIN{printf "%.3f", (b-a)/(n>0?n:1)}')" \
        "upstream_dns_queries=$((q1 - q0)) resolutions=$(kv resolutions "$wstats")"
    table+=("warm $c $n $(kv lookups_per_s "$warm") $(ms "$(kv p50_us "$warm")") $(ms "$(kv p99_us "$warm")") \
        $(kv resolutions "$wstats") - - -")
    check "c=$c: warm errors" test "$(kv errors "$warm")" -eq 0
    check "c=$c: warm lookups resolved again" test "$(kv resolutions "$wstats")" -eq 0
    stop_daemon
done

printf '%s\n' "${table[@]}" | column -t | tee -a "$results"
note "total_s=$(awk -v ms=$(( $(now_ms) - t_start )) 'BEGIN{printf "%.1f", ms/1000}')" \
    "result=$([[ $failed -eq 0 ]] && echo pass || echo FAIL)"
exit "$failed"
