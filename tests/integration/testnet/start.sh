#!/bin/bash
# SPDX-License-Identifier: MIT
# Build and start the test internet in WORKDIR: test PKI, signed DNS tree on nsd
# (127.0.0.1:5353), a DNS blackhole that drops every query (127.0.0.1:5355), a
# validating unbound (127.0.0.1:53), the MTA-STS policy server (127.0.0.1:8443)
# and the SMTP sinks (port 25 of 127.0.0.10-13). Writes
# the client side configuration: trust-anchor, unbound-lib.conf, resolv.conf,
# ca.pem and strictmx.toml. The private Postfix is separate: postfix.sh.
#
# Usage: start.sh WORKDIR
# Must run inside a private network namespace, e.g.
#   unshare --net --mount -- bash -c 'ip link set lo up; start.sh /tmp/testnet'
set -euo pipefail
W=${1:?usage: start.sh WORKDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
PY=/usr/bin/python3

if [ "$(readlink /proc/self/ns/net)" = "$(readlink /proc/1/ns/net)" ] &&
   [ -z "${TESTNET_ALLOW_SHARED_NETNS:-}" ]; then
    echo "start.sh: refusing to run in the initial network namespace;" \
         "use unshare --net --mount" >&2
    exit 1
fi
for tool in nsd unbound ldns-keygen ldns-signzone ldns-key2ds openssl; do
    command -v "$tool" >/dev/null || { echo "start.sh: $tool is not installed" >&2; exit 1; }
done
$PY -c 'import aiosmtpd' 2>/dev/null ||
    { echo "start.sh: $PY cannot import aiosmtpd (python3-aiosmtpd)" >&2; exit 1; }
ip link set lo up 2>/dev/null || true
# Postfix wants its inet_interfaces address on an interface; the rest of
# 127.0.0.0/8 works as it is.
ip -4 addr show dev lo | grep -q ' 127\.0\.0\.2/' || ip addr add 127.0.0.2/8 dev lo

mkdir -p "$W"
W=$(cd "$W" && pwd)
if [ -e "$W/run/started" ]; then
    echo "start.sh: $W is in use; run stop.sh $W first" >&2
    exit 1
fi
rm -rf "$W/pki" "$W/dns" "$W/unbound" "$W/https" "$W/sinks" "$W/run"
mkdir -p "$W/run" "$W/unbound" "$W/https" "$W/sinks"
touch "$W/run/started"

# wait_tcp HOST PORT SECONDS
wait_tcp() {
    local end=$((SECONDS + $3))
    while ! (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; do
        [ $SECONDS -lt $end ] || { echo "start.sh: nothing on $1:$2" >&2; return 1; }
        sleep 0.05
    done
}

"$HERE/certs.sh" "$W"
$PY "$HERE/zonebuild.py" "$W" "$HERE/zones"

# --- nsd: authoritative for test. and its children -----------------------------
cat > "$W/dns/nsd.conf" <<EOF
server:
	ip-address: 127.0.0.1
	port: 5353
	username: ""
	chroot: ""
	database: ""
	zonelistfile: "$W/dns/zone.list"
	xfrdfile: "$W/dns/xfrd.state"
	xfrdir: "$W/dns"
	pidfile: "$W/dns/nsd.pid"
	logfile: "$W/dns/nsd.log"
	server-count: 1
	verbosity: 1
	hide-version: yes
remote-control:
	control-enable: no
include: "$W/dns/nsd-zones.conf"
EOF
nsd -c "$W/dns/nsd.conf" </dev/null >>"$W/dns/nsd.log" 2>&1

# --- the name server of zones whose queries go unanswered (children.list) -------
setsid $PY "$HERE/dns_blackhole.py" --listen 127.0.0.1:5355 --log "$W/dns/blackhole.log" \
    </dev/null >>"$W/dns/blackhole.out" 2>&1 &
echo $! > "$W/run/dns-blackhole.pid"

# --- resolver configuration ---------------------------------------------------
# local-zone nodefault: test. is one of unbound's built-in local zones, which
# would answer NXDOMAIN without asking nsd. No domain-insecure: bogus must stay bogus.
cat > "$W/unbound-lib.conf" <<EOF
server:
	trust-anchor-file: "$W/trust-anchor"
	local-zone: "test." nodefault
	do-not-query-localhost: no
	do-ip6: no
forward-zone:
	name: "."
	forward-addr: 127.0.0.1@5353
EOF
# Zones whose name server is not nsd (children.list): stub zones, in both resolvers.
cat "$W/dns/stub-zones.conf" >> "$W/unbound-lib.conf"
cat > "$W/unbound/unbound.conf" <<EOF
server:
	interface: 127.0.0.1
	port: 53
	do-ip6: no
	username: ""
	chroot: ""
	directory: "$W/unbound"
	pidfile: "$W/unbound/unbound.pid"
	logfile: "$W/unbound/unbound.log"
	use-syslog: no
	verbosity: 1
	val-log-level: 2
	num-threads: 1
	module-config: "validator iterator"
	trust-anchor-file: "$W/trust-anchor"
	local-zone: "test." nodefault
	do-not-query-localhost: no
	access-control: 127.0.0.0/8 allow
remote-control:
	control-enable: no
forward-zone:
	name: "."
	forward-addr: 127.0.0.1@5353
EOF
cat "$W/dns/stub-zones.conf" >> "$W/unbound/unbound.conf"
unbound -c "$W/unbound/unbound.conf" </dev/null >>"$W/unbound/unbound.log" 2>&1

# For Postfix: the fixture bind-mounts this onto /etc/resolv.conf. trust-ad:
# glibc passes the AD bit on only when told to (smtp_dns_support_level = dnssec).
printf 'nameserver 127.0.0.1\noptions edns0 trust-ad\n' > "$W/resolv.conf"

# --- HTTPS policy server and SMTP sinks -----------------------------------------
setsid $PY "$HERE/policy_server.py" --workdir "$W" --port 8443 \
    </dev/null >>"$W/https/server.log" 2>&1 &
echo $! > "$W/run/https.pid"
setsid $PY "$HERE/smtp_sink.py" --workdir "$W" \
    --sink good:127.0.0.10:mx.deliver-ok.test \
    --sink badcert:127.0.0.11:wrong-name.test \
    --sink plain:127.0.0.12:- \
    --sink dane:127.0.0.13:mx.dane-signed.test \
    </dev/null >>"$W/sinks/server.log" 2>&1 &
echo $! > "$W/run/sinks.pid"

# --- configuration of strictmx-policyd ------------------------------------------
cat > "$W/strictmx.toml" <<EOF
[daemon]
log = "stderr"
verbosity = 2
allow_root = true                      # the tests run as root in a private namespace
state_dir = "$W/state"                 # the control socket lives here
[resolver]
unbound_config = "$W/unbound-lib.conf"
[https]
ca_file = "$W/ca.pem"
connect_to = ["::127.0.0.1:8443"]      # curl CONNECT_TO: any host, port -> 127.0.0.1:8443
timeout_ms = 3000
[cache]
path = "$W/cache.db"
[policy]
lookup_deadline_ms = 8000
[policy.overrides]
"override.test" = "secure match=override.example"
[[listen]]
type = "socketmap"
address = "inet:127.0.0.1:8461"
[[listen]]
type = "tcp_table"
address = "inet:127.0.0.1:8462"
profile = "postfix"
[[listen]]
type = "socketmap"
address = "unix:$W/policyd.sock"
mode = "0666"
[[listen]]
type = "tcp_table"
address = "inet:127.0.0.1:8463"
profile = "postfix-tlsrpt"
[[listen]]
type = "tcp_table"
address = "inet:127.0.0.1:8464"
profile = "strict"
[[listen]]
type = "tcp_table"
address = "inet:127.0.0.1:8465"
profile = "strict-tlsrpt"
[[listen]]
type = "metrics"
address = "inet:127.0.0.1:8480"
EOF

wait_tcp 127.0.0.1 5353 10
wait_tcp 127.0.0.1 5355 10
wait_tcp 127.0.0.1 53 10
wait_tcp 127.0.0.1 8443 10
for a in 10 11 12 13; do wait_tcp 127.0.0.$a 25 10; done
echo "testnet: up in $W"
