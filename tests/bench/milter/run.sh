#!/bin/bash
# SPDX-License-Identifier: MIT
# Messages per second through a private Postfix with and without strictmx-milter, and the
# milter's CPU per message. Postfix's own smtp-source sends, smtp-sink receives; everything
# runs in a private network namespace on loopback (re-executed under unshare).
#
# Usage (as root): tests/bench/milter/run.sh BUILD_DIR [MESSAGES] [SESSIONS] [ROUNDS]
#
# Variants, each ROUNDS times (default 3), MESSAGES messages (default 5000) over SESSIONS
# parallel sessions (default 20), one recipient each:
#   none       smtpd_milters empty: the baseline
#   filter     no milter, but Postfix's own header_checks sends every message through the
#              strictmx-relaxed transport with FILTER: what the routing alone costs
#   null       strictmx-null-milter (libmilter, same negotiation, decides nothing): the floor
#              of any libmilter milter on this machine
#   plain      the milter, mail that requires nothing (no lookup, no header change)
#   relaxed    the milter, every message "TLS-Required: No" (header added, FILTER route)
#   listed     the milter, a sender in require_tls_senders: one requiretls lookup per
#              recipient to strictmx-policyd (answered from a static override, no DNS), route
#              header added, FILTER to the strict transport
# A round's time runs from the first SMTP connection to the last message leaving the queue
# (smtp-sink has it). CPU: utime+stime of the milter process over the round.
set -euo pipefail
BUILD=$(cd "${1:?usage: run.sh BUILD_DIR [MESSAGES] [SESSIONS] [ROUNDS]}" && pwd)
N=${2:-5000}
S=${3:-20}
ROUNDS=${4:-3}
if [ -z "${STRICTMX_BENCH_NS:-}" ]; then
    exec env STRICTMX_BENCH_NS=1 unshare --net --mount -- "$0" "$BUILD" "$N" "$S" "$ROUNDS"
fi
ip link set lo up
# Postfix listens only on addresses an interface has: give lo the two it uses.
ip addr add 127.0.0.5/32 dev lo
ip addr add 127.0.0.6/32 dev lo
W=$(mktemp -d /tmp/strictmx-milter-bench.XXXXXX)
chmod 755 "$W"
P=$W/postfix
C=$P/etc
mkdir -p "$C" "$P/queue" "$P/data"
pids=()
cleanup() {
    postfix -c "$C" stop >/dev/null 2>&1 || true
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
[ -z "${STRICTMX_BENCH_KEEP:-}" ] || trap - EXIT

# The receiver: counts messages, answers 250 at once.
smtp-sink -u postfix -c 127.0.0.6:25 1024 >"$W/sink.count" 2>&1 &
pids+=($!)

# STRICTMX_BENCH_SOCKET=unix: both milters on unix sockets instead of loopback TCP.
if [ "${STRICTMX_BENCH_SOCKET:-inet}" = unix ]; then
    MILTER_LISTEN="unix:$W/milter.sock"; PF_MILTER="unix:$W/milter.sock"
    NULL_LISTEN="unix:$W/null.sock"; PF_NULL="unix:$W/null.sock"
else
    MILTER_LISTEN="inet:127.0.0.1:8465"; PF_MILTER="inet:127.0.0.1:8465"
    NULL_LISTEN="inet:8468@127.0.0.1"; PF_NULL="inet:127.0.0.1:8468"
fi

# strictmx-policyd: a static answer for the sink's domain, DNSSEC explicitly off, a
# forwarder where nothing listens: nothing can be resolved, nothing leaves.
cat > "$W/strictmx.toml" <<TOML
[daemon]
log = "stderr"
verbosity = 1
allow_root = true
state_dir = "$W/state"
[resolver]
dnssec = false
forwarders = ["127.0.0.1@5399"]
[policy.overrides]
"sink.test" = "secure match=sink.test"
[milter]
listen = "$MILTER_LISTEN"
policy_server = "inet:127.0.0.1:8461"
require_tls_senders = ["@listed.test"]
TOML
mkdir -p "$W/state"
"$BUILD/policyd/strictmx-policyd" --config "$W/strictmx.toml" 2>"$W/policyd.log" &
pids+=($!)
"$BUILD/milter/strictmx-milter" --config "$W/strictmx.toml" 2>"$W/milter.log" &
milter_pid=$!
pids+=($milter_pid)
"$BUILD/tests/bench/strictmx-null-milter" "$NULL_LISTEN" 2>"$W/null-milter.log" &
null_pid=$!
pids+=($null_pid)

cat > "$C/main.cf" <<CF
compatibility_level = 3.6
queue_directory = $P/queue
data_directory = $P/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.bench.test
mydestination =
relayhost = [127.0.0.6]:25
default_filter_nexthop = [127.0.0.6]:25
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
inet_interfaces = 127.0.0.5
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtputf8_enable = no
biff = no
maillog_file = $P/maillog
maillog_file_prefixes = $P
smtp_host_lookup = native
disable_dns_lookups = yes
smtp_tls_security_level = none
default_process_limit = 200
smtpd_milters =
non_smtpd_milters =
milter_default_action = tempfail
milter_header_checks = regexp:$C/milter_header_checks
CF
cp "$(dirname "$0")/../../../contrib/postfix/milter_header_checks" "$C/milter_header_checks"
cat > "$C/master.cf" <<'CF'
127.0.0.5:smtp inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
# The two routes of contrib/postfix/master.cf.strictmx-milter, to the sink without TLS:
# this measures the milter and the routing, not TLS handshakes.
strictmx-requiretls unix - - n - - smtp
strictmx-relaxed unix - - n - - smtp
CF
echo '/^Subject:/ FILTER strictmx-relaxed:' > "$C/filter_all"
chown postfix: "$P/data"
touch "$P/maillog"
postfix -c "$C" start >"$W/postfix-start.log" 2>&1 || { cat "$W/postfix-start.log" "$P/maillog" >&2; exit 1; }
sleep 1

queue_empty() {
    [ -z "$(find "$P/queue/incoming" "$P/queue/active" "$P/queue/deferred" "$P/queue/maildrop" -type f 2>/dev/null | head -1)" ]
}
ticks() {  # utime + stime of a process, in clock ticks
    awk '{print $14 + $15}' "/proc/$1/stat"
}
hz=$(getconf CLK_TCK)
busy() {  # all CPUs: non-idle ticks since boot
    awk '/^cpu / {print $2 + $3 + $4 + $7 + $8}' /proc/stat
}

round() {  # VARIANT
    local variant=$1 from=bench@plain.test hdr=()
    local pid=$milter_pid
    case $variant in
        none) postconf -c "$C" -e "smtpd_milters =" "header_checks =" ;;
        filter) postconf -c "$C" -e "smtpd_milters =" \
                    "header_checks = regexp:$C/filter_all" ;;
        null) postconf -c "$C" -e "smtpd_milters = $PF_NULL" "header_checks ="; pid=$null_pid ;;
        *) postconf -c "$C" -e "smtpd_milters = $PF_MILTER" "header_checks =" ;;
    esac
    [ "$variant" = listed ] && from=bench@listed.test
    postfix -c "$C" reload >/dev/null 2>&1
    sleep 1
    # Every variant sends the same message file (about 1 KB); only the relaxed one carries
    # the header field.
    local tlsreq=""
    [ "$variant" = relaxed ] && tlsreq=$'TLS-Required: No\n'
    printf 'From: %s\nTo: rcpt@sink.test\nSubject: bench\n%s\n%s\n' "$from" "$tlsreq" \
        "$(head -c 900 /dev/zero | tr '\0' x)" > "$W/msg"
    local opts=(-m "$N" -s "$S" -F "$W/msg" -f "$from" -t rcpt@sink.test)
    local c0 t0 t1 c1 b0 b1
    c0=$(ticks "$pid")
    b0=$(busy)
    t0=$(date +%s.%N)
    smtp-source "${opts[@]}" 127.0.0.5:25
    while ! queue_empty; do sleep 0.05; done
    t1=$(date +%s.%N)
    c1=$(ticks "$pid")
    b1=$(busy)
    awk -v v="$variant" -v n="$N" -v t0="$t0" -v t1="$t1" -v c0="$c0" -v c1="$c1" -v hz="$hz" \
        -v b0="$b0" -v b1="$b1" -v cores="$(nproc)" \
        'BEGIN { t = t1 - t0; printf "%-8s %6d msgs %7.2f s %8.0f msg/s  milter CPU %6.1f us/msg  machine busy %3.0f%%\n", v, n, t, n / t, (c1 - c0) / hz * 1e6 / n, (b1 - b0) / hz / t / cores * 100 }'
}

chmod 666 "$W"/*.sock 2>/dev/null || true
echo "# milter sockets: ${STRICTMX_BENCH_SOCKET:-inet}; $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), Postfix $(postconf -c "$C" -h mail_version), $N messages x $ROUNDS rounds, $S sessions"
# STRICTMX_BENCH_VARIANTS="plain listed" runs only those; STRICTMX_BENCH_PERF=FILE records a
# perf profile of the milter over all rounds.
if [ -n "${STRICTMX_BENCH_PERF:-}" ]; then
    perf record -g -o "$STRICTMX_BENCH_PERF" -p "$milter_pid" >/dev/null 2>&1 &
    perf_pid=$!
fi
for r in $(seq 1 "$ROUNDS"); do
    for v in ${STRICTMX_BENCH_VARIANTS:-none filter null plain relaxed listed}; do round "$v"; done
done
if [ -n "${perf_pid:-}" ]; then kill -INT "$perf_pid"; wait "$perf_pid" || true; fi
grep -E "status=(deferred|bounced)" "$P/maillog" | head -3 | sed 's/^/# not delivered: /' || true
grep -cE "milter-header-filter" "$P/maillog" | sed 's/^/# milter-header-filter log lines: /' || true
