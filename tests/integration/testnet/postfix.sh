#!/bin/bash
# SPDX-License-Identifier: MIT
# A private Postfix instance of the test internet, in WORKDIR/postfix/:
# etc/ (main.cf, master.cf), queue/, data/ and the log file maillog. It listens
# on 127.0.0.2:25 only (MX hosts on 127.0.0.1 would otherwise "loop back to
# myself"), finds MX hosts through the system resolver (the fixture bind-mounts
# WORKDIR/resolv.conf, i.e. the validating unbound on 127.0.0.1:53, onto
# /etc/resolv.conf) and asks strictmx-policyd for its TLS policy.
#
# Usage: postfix.sh WORKDIR setup|start|stop|flush
#        POLICY_MAPS=texthash:FILE postfix.sh WORKDIR setup   (a static table)
set -euo pipefail
W=$(cd "${1:?usage: postfix.sh WORKDIR setup|start|stop|flush}" && pwd)
P=$W/postfix
C=$P/etc
POLICY_MAPS=${POLICY_MAPS:-socketmap:inet:127.0.0.1:8461:postfix}

setup() {
    mkdir -p "$C" "$P/queue" "$P/data"
    cat > "$C/main.cf" <<EOF
compatibility_level = 3.6
queue_directory = $P/queue
data_directory = $P/data
mail_owner = postfix
setgid_group = postdrop
myhostname = mta.test
mydomain = test
mydestination =
relayhost =
local_transport = error:local delivery is disabled
alias_maps =
alias_database =
inet_interfaces = 127.0.0.2
inet_protocols = ipv4
mynetworks = 127.0.0.0/8
smtputf8_enable = no
biff = no
maillog_file = $P/maillog
maillog_file_prefixes = $P
smtp_host_lookup = dns
smtp_dns_support_level = dnssec
smtp_tls_security_level = may
smtp_tls_CAfile = $W/ca.pem
smtp_tls_CApath =
smtp_tls_loglevel = 1
smtp_tls_policy_maps = $POLICY_MAPS
smtp_connect_timeout = 5s
smtp_helo_timeout = 10s
queue_run_delay = 10s
minimal_backoff_time = 10s
maximal_backoff_time = 20s
EOF
    # Nothing chrooted: the queue lives in WORKDIR and the resolver in /etc.
    cat > "$C/master.cf" <<'EOF'
127.0.0.2:smtp inet n - n - - smtpd
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
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
EOF
    chown postfix: "$P/data"
    touch "$P/maillog"
}

case ${2:-} in
setup) setup ;;
start)
    [ -f "$C/main.cf" ] || setup
    postfix -c "$C" start
    ;;
stop)
    [ -f "$C/main.cf" ] || exit 0
    postfix -c "$C" status >/dev/null 2>&1 || exit 0
    postfix -c "$C" stop
    ;;
flush) postqueue -c "$C" -f ;;
*) echo "usage: postfix.sh WORKDIR setup|start|stop|flush" >&2; exit 2 ;;
esac
