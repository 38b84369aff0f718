#!/bin/bash
# SPDX-License-Identifier: MIT
# Test PKI: a CA, a certificate for every MTA-STS policy host, SMTP sink
# certificates, and the hostile ones (wrong name, self-signed, expired).
# Usage: certs.sh WORKDIR    (writes WORKDIR/pki/NAME.{pem,key} and WORKDIR/ca.pem)
set -euo pipefail
W=$1
HERE=$(cd "$(dirname "$0")" && pwd)
PKI=$W/pki
export OPENSSL_CONF=$HERE/openssl.cnf SAN=unused CADB=$PKI/cadb
mkdir -p "$PKI" "$CADB"
: > "$CADB/index.txt"
EC=(-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes)

openssl req -x509 "${EC[@]}" -keyout "$PKI/ca.key" -out "$PKI/ca.pem" \
    -subj "/O=strictmx test/CN=strictmx test CA" -days 30 -extensions v3_ca 2>/dev/null
cp "$PKI/ca.pem" "$W/ca.pem"

# leaf NAME DNSNAME: CA-signed, valid for 30 days.
leaf() {
    SAN=$2 openssl req -x509 "${EC[@]}" -keyout "$PKI/$1.key" -out "$PKI/$1.pem" \
        -subj "/CN=$2" -CA "$PKI/ca.pem" -CAkey "$PKI/ca.key" -days 30 \
        -extensions v3_leaf 2>/dev/null
}

names=$(/usr/bin/python3 "$HERE/policy_server.py" --hosts)
names+=" wrong-name.test mx.deliver-ok.test mx.dane-signed.test"
n=0
for name in $names; do
    leaf "$name" "$name" &
    n=$((n + 1))
    if [ $((n % 8)) -eq 0 ]; then wait; fi
done

# Self-signed, with the right name: untrusted.
SAN=mta-sts.untrusted.test openssl req -x509 "${EC[@]}" -keyout "$PKI/untrusted.key" \
    -out "$PKI/untrusted.pem" -subj "/CN=mta-sts.untrusted.test" -days 30 \
    -extensions v3_leaf 2>/dev/null &

# CA-signed, right name, expired in 2020.
SAN=mta-sts.expiredcert.test openssl req -new "${EC[@]}" -keyout "$PKI/expired.key" \
    -out "$CADB/expired.csr" -subj "/CN=mta-sts.expiredcert.test" 2>/dev/null
SAN=mta-sts.expiredcert.test openssl ca -batch -notext -cert "$PKI/ca.pem" \
    -keyfile "$PKI/ca.key" -in "$CADB/expired.csr" -out "$PKI/expired.pem" \
    -startdate 20200101000000Z -enddate 20200201000000Z 2>/dev/null
wait
chmod 0644 "$PKI"/*.pem
chmod 0600 "$PKI"/*.key
for name in $names untrusted expired; do
    [ -s "$PKI/$name.pem" ] || { echo "certs.sh: $name.pem missing" >&2; exit 1; }
done
