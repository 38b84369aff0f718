#!/bin/bash
# SPDX-License-Identifier: MIT
# The test internet itself, without strictmx: DNSSEC states as seen by nsd, by
# the unbound daemon and by libunbound with WORKDIR/unbound-lib.conf (the
# daemon's resolver configuration), the policy server's certificates, the SMTP
# sinks' STARTTLS, and the resolver Postfix sees.
# Usage: t_testnet.sh WORKDIR   (inside the fixture: nsrun.sh WORKDIR t_testnet.sh WORKDIR)
set -u
W=${1:?usage: t_testnet.sh WORKDIR}
pass=0 fail=0
check() {  # check DESCRIPTION COMMAND...  (passes when COMMAND succeeds)
    local what=$1; shift
    if "$@" >/dev/null 2>&1; then
        pass=$((pass + 1)); echo "ok     $what"
    else
        fail=$((fail + 1)); echo "FAIL   $what"; echo "       command: $*"
    fi
}
contains() { grep -q -- "$1" <<<"$2"; }
for tool in dig unbound-host curl openssl getent; do
    command -v $tool >/dev/null || { echo "FAIL   $tool is not installed"; exit 1; }
done

# nsd: authoritative, signed
a=$(dig +dnssec +norec @127.0.0.1 -p 5353 _mta-sts.enforce.test TXT)
check "nsd answers authoritatively" contains "flags: qr aa" "$a"
check "nsd answer carries an RRSIG" contains "RRSIG	TXT 13 " "$a"
check "nsd serves the enforce TXT" contains '"v=STSv1; id=enforce1;"' "$a"

# unbound daemon on :53: validating
a=$(dig +dnssec @127.0.0.1 _mta-sts.enforce.test TXT)
check "unbound :53 validates test. (ad flag)" contains "flags: qr rd ra ad;" "$a"
a=$(dig @127.0.0.1 _mta-sts.sts-bogus.test TXT)
check "unbound :53 answers SERVFAIL for a bogus zone" contains "status: SERVFAIL" "$a"
a=$(dig +dnssec @127.0.0.1 _mta-sts.sts-insecure.test TXT)
check "unbound :53 answers an insecure zone without ad" \
    bash -c '! grep -q "flags: qr rd ra ad;" <<<"$0" && grep -q "status: NOERROR" <<<"$0"' "$a"

# libunbound with the daemon's configuration
ub() { unbound-host -C "$W/unbound-lib.conf" -v -t "$1" "$2" 2>&1; }
check "libunbound: _mta-sts.enforce.test TXT is secure" contains "(secure)" "$(ub TXT _mta-sts.enforce.test)"
check "libunbound: enforce.test MX is secure" contains "b.c.pool.enforce.test. (secure)" "$(ub MX enforce.test)"
check "libunbound: split TXT is one record of two strings" \
    contains '"v=STSv1; id=split" "2024;" (secure)' "$(ub TXT _mta-sts.splittxt.test)"
check "libunbound: sts-insecure.test is insecure" contains "(insecure)" "$(ub TXT _mta-sts.sts-insecure.test)"
check "libunbound: sts-bogus.test is bogus (expired)" contains "signature expired" "$(ub TXT _mta-sts.sts-bogus.test)"
check "libunbound: sts-tampered.test is bogus" contains "BOGUS" "$(ub TXT _mta-sts.sts-tampered.test)"
check "libunbound: dane-signed.test TLSA is secure" contains "(secure)" "$(ub TLSA _25._tcp.mx.dane-signed.test)"
check "libunbound: dane-insecure.test TLSA is insecure" contains "(insecure)" "$(ub TLSA _25._tcp.mx.dane-insecure.test)"
check "libunbound: dane-expired.test TLSA is bogus" contains "BOGUS" "$(ub TLSA _25._tcp.mx.dane-expired.test)"
check "libunbound: dane-tampered.test TLSA is bogus" contains "BOGUS" "$(ub TLSA _25._tcp.mx.dane-tampered.test)"
check "libunbound: no _mta-sts name for nopolicy.test (secure NXDOMAIN)" contains "NXDOMAIN).*(secure)" "$(ub TXT _mta-sts.nopolicy.test)"
check "libunbound: dane-unusable.test has six TLSA records, secure" \
    test "$(ub TLSA _25._tcp.mx.dane-unusable.test | grep -c 'has TLSA record .* (secure)')" = 6
check "libunbound: dane-unusable.test TLSA digest of 33 bytes kept as served" \
    contains "3 1 1 [0-9A-F]\{66\} (secure)" "$(ub TLSA _25._tcp.mx.dane-unusable.test)"
check "libunbound: mx.dane-cname.test is a secure CNAME to mx.dane-target.test" \
    contains "mx.dane-cname.test is an alias for mx.dane-target.test. (secure)" "$(ub A mx.dane-cname.test)"
check "libunbound: TLSA at the CNAME target of dane-cname.test is secure" \
    contains "has TLSA record 3 1 1 .* (secure)" "$(ub TLSA _25._tcp.mx.dane-target.test)"
check "libunbound: no TLSA at the CNAME target of dane-cname-orig.test (secure NXDOMAIN)" \
    contains "NXDOMAIN).*(secure)" "$(ub TLSA _25._tcp.notlsa.dane-target.test)"
check "libunbound: mx.dane-cname-insecure.test: the CNAME itself is secure" \
    contains "has CNAME record mx.dane-insecure.test. (secure)" "$(ub CNAME mx.dane-cname-insecure.test)"
check "libunbound: mx.dane-cname-insecure.test: its address answer is insecure" \
    contains "has address 127.0.0.13 (insecure)" "$(ub A mx.dane-cname-insecure.test)"
check "libunbound: dane-implicit.test has no MX (secure)" \
    contains "has no mail handler record (secure)" "$(ub MX dane-implicit.test)"
check "libunbound: dane-implicit.test TLSA at the domain is secure" \
    contains "(secure)" "$(ub TLSA _25._tcp.dane-implicit.test)"
check "libunbound: dane-mismatch.test TLSA is secure" \
    contains "(secure)" "$(ub TLSA _25._tcp.mx.dane-mismatch.test)"
check "libunbound: dane-nsdrop.test is a signed delegation (DS)" \
    contains "has DS record .* (secure)" "$(ub DS dane-nsdrop.test)"
check "libunbound: nsdown.test is an unsigned delegation (no DS, secure)" \
    contains "has no DS record (secure)" "$(ub DS nsdown.test)"
check "stub zones for dane-nsdrop.test and nsdown.test in both resolvers" \
    bash -c 'for f in "$0/unbound-lib.conf" "$0/unbound/unbound.conf"; do
                 grep -q "stub-addr: 127.0.0.1@5355" "$f" && grep -q "stub-addr: 127.0.0.1@5354" "$f" || exit 1
             done' "$W"

# The unanswering name servers: a blackhole that reads and drops (its log proves
# the query arrived), and a port where nothing listens.
probe=probe$$.dane-nsdrop.test
a=$(dig +time=1 +tries=1 @127.0.0.1 -p 5355 "$probe" A 2>&1)
check "blackhole 127.0.0.1:5355 does not answer" bash -c '! grep -q "status:" <<<"$0"' "$a"
check "blackhole 127.0.0.1:5355 received the query" grep -q "	$probe.	1$" "$W/dns/blackhole.log"
a=$(dig +time=1 +tries=1 @127.0.0.1 -p 5354 nsdown.test MX 2>&1)
check "nothing answers on 127.0.0.1:5354" bash -c '! grep -q "status:" <<<"$0"' "$a"

# The system resolver (Postfix's view): /etc/resolv.conf is WORKDIR/resolv.conf.
check "/etc/resolv.conf is the test internet's" cmp /etc/resolv.conf "$W/resolv.conf"
check "getent finds mx.deliver-ok.test at 127.0.0.10" \
    contains "127.0.0.10" "$(getent ahostsv4 mx.deliver-ok.test)"

# Policy server
fetch() {
    curl -sS -A testnet-check --max-time 5 --connect-to ::127.0.0.1:8443 --cacert "$W/ca.pem" --capath /nonexistent \
        -o "$W/run/t_testnet.body" -w '%{http_code} %{content_type}' \
        "https://mta-sts.$1/.well-known/mta-sts.txt"
}
check "HTTPS: enforce.test policy, 200 text/plain" contains "^200 text/plain$" "$(fetch enforce.test)"
check "HTTPS: enforce.test policy has CRLF lines" \
    contains "^mode: enforce"$'\r'"$" "$(cat "$W/run/t_testnet.body")"
no_cr() { [ -s "$1" ] && ! grep -q $'\r' "$1"; }
fetch lf.test >/dev/null
check "HTTPS: lf.test policy has LF-only lines" no_cr "$W/run/t_testnet.body"
check "HTTPS: redirect.test answers 301" contains "^301 " "$(fetch redirect.test)"
check "HTTPS: wrongcert.test fails name verification" contains "no alternative certificate subject name" "$(fetch wrongcert.test 2>&1)"
check "HTTPS: untrusted.test fails trust" contains "self-signed certificate" "$(fetch untrusted.test 2>&1)"
check "HTTPS: expiredcert.test certificate has expired" contains "certificate has expired" "$(fetch expiredcert.test 2>&1)"
check "HTTPS: wrongtype.test is text/html" contains "^200 text/html" "$(fetch wrongtype.test)"
check "HTTPS: notfound.test answers 404" contains "^404 " "$(fetch notfound.test)"
check "HTTPS: requests are logged" grep -q "mta-sts.enforce.test	GET	/.well-known/mta-sts.txt	200	testnet-check" "$W/https/requests.log"

# SMTP sinks
starttls() { echo QUIT | timeout 10 openssl s_client -starttls smtp -connect "$1:25" \
    -servername "$2" -CAfile "$W/ca.pem" -verify_hostname "$2" 2>&1; }
check "sink good (127.0.0.10): verified certificate for mx.deliver-ok.test" \
    contains "Verify return code: 0 (ok)" "$(starttls 127.0.0.10 mx.deliver-ok.test)"
check "sink badcert (127.0.0.11): hostname mismatch" \
    contains "Verify return code: 62 (hostname mismatch)" "$(starttls 127.0.0.11 mx.deliver-badcert.test)"
check "sink plain (127.0.0.12): no STARTTLS" \
    contains "Didn't find STARTTLS" "$(starttls 127.0.0.12 mx.deliver-nostarttls.test)"
check "sink dane (127.0.0.13): certificate for mx.dane-signed.test" \
    contains "Verify return code: 0 (ok)" "$(starttls 127.0.0.13 mx.dane-signed.test)"

echo "testnet: $pass passed, $fail failed"
[ $fail -eq 0 ]
