#!/bin/bash
# SPDX-License-Identifier: MIT
# Run the integration tests without ctest: fixture up, every test, fixture down.
# Usage: run-all.sh STRICTMX_POLICYD [STRICTMX_CLI]
#   WORKDIR=DIR  work directory (default /tmp/strictmx-it)
#   KEEP=1       leave the test internet running afterwards (stop: fixture.sh cleanup DIR)
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
POLICYD=${1:?usage: run-all.sh STRICTMX_POLICYD [STRICTMX_CLI]}
CLI=${2:-}
W=${WORKDIR:-/tmp/strictmx-it}
PY=/usr/bin/python3

"$HERE/fixture.sh" setup "$W" "$POLICYD" "$CLI"
rc=$?
[ $rc -eq 77 ] && exit 77
[ $rc -eq 0 ] || exit 1

pass=0 fail=0 failed=()
run() {
    local name=$1; shift
    echo "===== $name"
    if "$HERE/nsrun.sh" "$W" "$@"; then
        pass=$((pass + 1))
    else
        fail=$((fail + 1)); failed+=("$name")
    fi
}
run testnet "$HERE/t_testnet.sh" "$W"
for via in socketmap unix tcp; do
    run "sts_$via" $PY "$HERE/t_sts_answers.py" "$W" $via
done
for t in tlsrpt_profile dane_profiles protocol cache cli delivery restart corrupt_db \
         hostile_dns partial_dane long_names milter; do
    run "$t" $PY "$HERE/t_$t.py" "$W"
done
[ -n "${KEEP:-}" ] || "$HERE/fixture.sh" cleanup "$W"
[ $fail -eq 0 ] || echo "failed: ${failed[*]}"
echo "integration: $pass passed, $fail failed"
[ $fail -eq 0 ]
