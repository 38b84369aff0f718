#!/bin/bash
# SPDX-License-Identifier: MIT
# The side-by-side benchmark, every workload in one run (docs/benchmarks.md):
#   hit      cache hits over 1,000 domains: strictmx-epoll (the upper bound: a bare epoll
#            server answering NOTFOUND), strictmx-policyd at its default verbosity and
#            mta-sts-daemon (postfix-mta-sts-resolver, the peer); 32 connections repeated
#            REPS times with the servers interleaved, then each of CONNECTIONS once
#   parent   parent-domain probes (".DOMAIN" keys, as Postfix sends them) against strictmx
#   big      strictmx with a 1,000,000-domain cache: start to first OK answer, peak RSS, and
#            latency next to the 1,000-domain cache
# Everything runs inside a private network namespace (only lo, only 127.0.0.1) whose
# /etc/resolv.conf points at a DNS sink that never answers and counts queries: a cache hit
# must not send any.
#
# usage: run_all.sh BUILD_DIR OUTDIR      (as root: unshare, mount --bind)
# environment: WORKLOADS (any of "hit parent big", default all three),
#   DURATION (seconds a run, 10), REPS (32-connection hit repetitions, 3),
#   CONNECTIONS (the other connection counts of the hit workload, "1 8 256"),
#   ECHO (1: also strictmx-echo, the libevent bufferevent server answering NOTFOUND),
#   THREADS (written as daemon.threads of strictmx when set), VERBOSITY (daemon.verbosity
#   of strictmx when set; unset, the daemon's default applies),
#   BIG_DOMAINS (1000000), SMALL_DOMAINS (1000), BIG_DB (an already filled strictmx cache
#   of BIG_DOMAINS domains to reuse instead of filling one; it is copied, not changed)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
if [[ -z "${STRICTMX_BENCH_NETNS:-}" ]]; then
    if [[ $# -ne 2 ]]; then
        echo "usage: $0 BUILD_DIR OUTDIR" >&2
        exit 2
    fi
    export STRICTMX_BENCH_NETNS=1
    exec unshare --net --mount --propagation private /bin/bash "$0" "$@"
fi

build=$(cd "$1" && pwd)
mkdir -p "$2"
out=$(cd "$2" && pwd)
work=$out/work
mkdir -p "$work"
: "${DURATION:=10}" "${REPS:=3}" "${BIG_DOMAINS:=1000000}" "${SMALL_DOMAINS:=1000}"
: "${WORKLOADS:=hit parent big}" "${CONNECTIONS=1 8 256}" "${ECHO:=0}"
py=/usr/bin/python3
util=$here/benchutil.py
loadgen=$build/tests/bench/strictmx-loadgen
epoll_bin=$build/tests/bench/strictmx-epoll
echo_bin=$build/tests/bench/strictmx-echo
fill=$build/tests/bench/strictmx-bench-fill
policyd=$build/policyd/strictmx-policyd
peer=/usr/bin/mta-sts-daemon
needed=("$loadgen" "$epoll_bin" "$fill" "$policyd" "$peer" "$py")
[[ $ECHO == 1 ]] && needed+=("$echo_bin")
for f in "${needed[@]}"; do
    [[ -x $f ]] || { echo "missing: $f" >&2; exit 2; }
done
results=$out/results.txt
: >"$results"

ip link set lo up
echo "nameserver 127.0.0.1" >"$work/resolv.conf"
mount --bind "$work/resolv.conf" /etc/resolv.conf

pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
}
trap cleanup EXIT
stop() {  # PID: ends one server started here and waits for it
    kill "$1" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$1" 2>/dev/null || return 0; sleep 0.05; done
    kill -KILL "$1" 2>/dev/null || true
}
note() { echo "$*" | tee -a "$results"; }
now_ms() { date +%s%3N; }
hz=$(getconf CLK_TCK)
proc_ticks() { awk '{ sub(/.*\) /, ""); print $12 + $13 }' "/proc/$1/stat"; }  # utime + stime, all threads
machine_ticks() { awk '/^cpu / { print $2 + $3 + $4 + $7 + $8 + $9, $5 + $6 }' /proc/stat; }  # busy idle

"$py" "$util" dnssink "$work/dns.count" 2>"$work/dnssink.log" &
pids+=($!)

note "# machine nproc=$(nproc) cpu=\"$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ *//')\"" \
    "mem_kb=$(awk '/MemTotal/ {print $2}' /proc/meminfo) load=\"$(cut -d' ' -f1-3 /proc/loadavg)\"" \
    "workloads=\"$WORKLOADS\" duration=$DURATION reps=$REPS connections=\"32 $CONNECTIONS\" threads=${THREADS:-unset}" \
    "verbosity=${VERBOSITY:-default} date=$(date -u +%FT%TZ)"
note "# strictmx $(git -C "$here" rev-parse --short HEAD 2>/dev/null || echo unknown)$(git -C "$here" diff --quiet HEAD 2>/dev/null || echo +changes)," \
    "peer postfix-mta-sts-resolver $(dpkg-query -W -f='${Version}' postfix-mta-sts-resolver 2>/dev/null || echo unknown)"

# --- caches ------------------------------------------------------------------------------
smx_config() {  # DB PORT FILE
    cat >"$3" <<EOF
[daemon]
log = "stderr"  # to a file: one write(2) per line, as a syslog datagram would be one send(2)
state_dir = "$work/state"
allow_root = true
${VERBOSITY:+verbosity = $VERBOSITY}
${THREADS:+threads = $THREADS}
[resolver]
forwarders = ["127.0.0.1"]  # the DNS sink: counted, never answered
dnssec = false  # no trust anchor can be proven against the sink; a cache hit needs no DNS
[cache]
path = "$1"
[[listen]]
type = "socketmap"
address = "inet:127.0.0.1:$2"
EOF
}
mkdir -p "$work/state"
rm -f "$work"/small.db* "$work"/big.db* "$work"/miss.*
"$fill" "$work/small.db" "$SMALL_DOMAINS" >/dev/null
"$py" "$here/fill_peer_cache.py" "$work/peer.db" "$SMALL_DOMAINS" >/dev/null
if [[ " $WORKLOADS " == *" big "* ]]; then
    t=$(now_ms)
    if [[ -n "${BIG_DB:-}" ]]; then
        cp "$BIG_DB" "$work/big.db"
        how=copied
    else
        "$fill" "$work/big.db" "$BIG_DOMAINS" >/dev/null 2>&1
        how=filled
    fi
    note "workload=setup what=big_cache domains=$BIG_DOMAINS $how=$(( $(now_ms) - t ))ms size_kb=$(du -k "$work/big.db" | cut -f1)"
fi
smx_config "$work/small.db" 8461 "$work/small.toml"
smx_config "$work/big.db" 8463 "$work/big.toml"
sed "s|@CACHE@|$work/peer.db|" "$here/mta-sts-daemon.yml" >"$work/peer.yml"
# 1,000 keys spread over the big cache, for its latency runs.
awk -v n="$BIG_DOMAINS" 'BEGIN { s = int(n / 1000); if (s < 1) s = 1; for (i = 0; i < 1000; i++) printf "d%d.bench.test\n", i * s + (i * 7919) % s }' >"$work/big.keys"

# --- servers -------------------------------------------------------------------------------
start() {  # NAME PORT KEY COMMAND...: starts a server, waits for its first OK (any reply: epoll, echo)
    local name=$1 port=$2 key=$3
    shift 3
    if [[ $name == epoll || $name == echo ]]; then
        "$@" >"$work/$name.log" 2>&1 &
        echo $! >"$work/$name.pid"
        for _ in $(seq 200); do
            "$py" "$util" query 127.0.0.1:$port x 2>/dev/null | grep -q NOTFOUND && break
            sleep 0.05
        done
        note "workload=startup server=$name"
    else
        local r
        r=$("$py" "$util" first-ok 127.0.0.1:$port "$key" "$work/$name.pid" "$work/$name.log" -- "$@") || {
            echo "$name did not answer OK: $r" >&2
            tail -20 "$work/$name.log" >&2
            exit 1
        }
        note "workload=startup server=$name $r rss_kb=$(awk '/VmRSS/ {print $2}' /proc/$(cat "$work/$name.pid")/status)"
    fi
    pids+=($(cat "$work/$name.pid"))
}
port_of() { case $1 in echo) echo 8470 ;; epoll) echo 8471 ;; strictmx) echo 8461 ;; peer) echo 8462 ;; strictmx-1M) echo 8463 ;; esac; }

# One measurement. Besides the load generator's figures it records the CPU the server used
# (server_cpu_us_per_lookup: what one lookup costs it) and what the rest of the machine did
# meanwhile (other_cpu_pct: every process but the server and the generator, plus time the
# hypervisor stole, in per cent of one core), since the machine may be shared.
run() {  # WORKLOAD SERVER CONNECTIONS REP [LOADGEN ARGS...]
    local wl=$1 srv=$2 conns=$3 rep=$4
    shift 4
    local pid line s0 s1 m0 m1 t0 t1 lines0 log=$work/$srv.log
    pid=$(cat "$work/$srv.pid")
    lines0=$(wc -l <"$log")
    s0=$(proc_ticks "$pid")
    m0=$(machine_ticks)
    t0=$(now_ms)
    line=$("$loadgen" --address inet:127.0.0.1:$(port_of "$srv") --connections "$conns" --duration "$DURATION" \
        --pid "$pid" "$@")
    t1=$(now_ms)
    m1=$(machine_ticks)
    s1=$(proc_ticks "$pid")
    local extra
    extra=$(awk -v line="$line" -v s="$((s1 - s0))" -v m0="$m0" -v m1="$m1" -v hz="$hz" -v ms="$((t1 - t0))" \
        -v ncpu="$(nproc)" 'BEGIN {
            n = split(line, kv, " "); for (i = 1; i <= n; i++) { split(kv[i], p, "="); f[p[1]] = p[2] }
            split(m0, a, " "); split(m1, b, " "); busy = b[1] - a[1]; idle = b[2] - a[2]
            secs = ms / 1000
            printf "server_cpu_pct=%.0f server_cpu_us_per_lookup=%.1f machine_busy_pct=%.0f other_cpu_pct=%.0f",
                100 * s / hz / secs, f["lookups"] ? 1e6 * s / hz / f["lookups"] : 0,
                100 * busy / (busy + idle), 100 * ((busy - s) / hz - f["client_cpu_s"]) / secs }')
    note "workload=$wl server=$srv rep=$rep $line $extra load1=$(cut -d' ' -f1 /proc/loadavg)" \
        "log_lines=$(( $(wc -l <"$log") - lines0 ))"
    # At the default verbosity strictmx writes a line per lookup: keep the start-up lines,
    # drop the rest (the daemon appends, O_APPEND, so it goes on at the new end).
    if [[ $srv == strictmx* ]]; then
        [[ -f $log.head ]] || head -200 "$log" >"$log.head"
        : >"$log"
    fi
}

has() { [[ " $WORKLOADS " == *" $1 "* ]]; }
servers=()
hit_servers=(epoll strictmx peer)
[[ $ECHO == 1 ]] && hit_servers=(epoll echo strictmx peer)
if has hit; then servers+=("${hit_servers[@]}"); elif has parent; then servers+=(strictmx); fi
for s in "${servers[@]}"; do
    case $s in
    epoll) start epoll 8471 - "$epoll_bin" --address inet:127.0.0.1:8471 ;;
    echo) start echo 8470 - "$echo_bin" 127.0.0.1:8470 ;;
    strictmx) start strictmx 8461 d$((SMALL_DOMAINS - 1)).bench.test "$policyd" --config "$work/small.toml" ;;
    peer) start peer 8462 d$((SMALL_DOMAINS - 1)).bench.test "$peer" -c "$work/peer.yml" ;;
    esac
    if [[ $s != echo && $s != epoll ]]; then
        "$py" "$util" query 127.0.0.1:$(port_of $s) d7.bench.test .d7.bench.test |
            sed "s/^/# sample $s: /" | tee -a "$results"
    fi
done
dns_before=$(cat "$work/dns.count")

if has hit; then
    # (a) hits, 32 connections, the servers interleaved in each repetition
    for rep in $(seq "$REPS"); do
        for s in "${hit_servers[@]}"; do run hit "$s" 32 "$rep" --domains "$SMALL_DOMAINS"; done
    done
    # hits at the other connection counts, once each
    for c in $CONNECTIONS; do
        for s in "${hit_servers[@]}"; do run hit "$s" "$c" 1 --domains "$SMALL_DOMAINS"; done
    done
fi
if has parent; then
    # (b) parent-domain probes: Postfix asks for ".example.com" when example.com has no entry
    run parent strictmx 32 1 --domains "$SMALL_DOMAINS" --parent-probe
fi
# (c) cold misses against the test internet: to be added here.
if ((${#servers[@]})); then
    note "workload=dns what=queries_during_measurements count=$(( $(cat "$work/dns.count") - dns_before ))"
    # Names in no cache, after the measurements (a miss starts resolutions that go on in the
    # background), with the DNS sink never answering: how each daemon answers when it cannot
    # resolve. Unbound answers names under .test itself (RFC 6761 local zone), c-ares asks.
    queries=()
    for s in "${servers[@]}"; do
        [[ $s == echo || $s == epoll ]] && continue
        "$py" "$util" query 127.0.0.1:$(port_of $s) d$SMALL_DOMAINS.nocache.test d$SMALL_DOMAINS.nocache.unreachable |
            sed "s/^/# sample $s, DNS unreachable: /" >"$work/miss.$s" &
        queries+=($!)
    done
    for j in "${queries[@]}"; do wait "$j" || true; done
    for s in "${servers[@]}"; do
        if [[ -f $work/miss.$s ]]; then tee -a "$results" <"$work/miss.$s"; fi
    done
    for s in "${servers[@]}"; do stop "$(cat "$work/$s.pid")"; done
fi

if has big; then
    # (d) the 1,000,000-domain cache: start to first OK, peak RSS, latency next to the hits
    start strictmx-1M 8463 d$((BIG_DOMAINS - 1)).bench.test "$policyd" --config "$work/big.toml"
    run big strictmx-1M 32 1 --keys "$work/big.keys"
    run big strictmx-1M 1 1 --keys "$work/big.keys"
    stop "$(cat "$work/strictmx-1M.pid")"
fi
note "workload=dns what=queries_total count=$(cat "$work/dns.count")"
note "# load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

"$py" "$util" summary "$results" | tee "$out/summary.txt"
