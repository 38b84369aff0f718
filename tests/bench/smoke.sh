#!/bin/bash
# SPDX-License-Identifier: MIT
# The load generator against a NOTFOUND server for a moment: both programs work.
# usage: smoke.sh LOADGEN SERVER [ARG...]   (@PORT@ in an ARG becomes the port chosen)
set -eu
loadgen=$1
shift
port=$((20000 + RANDOM % 20000))
"${@//@PORT@/$port}" >/dev/null &
pid=$!
trap 'kill $pid 2>/dev/null' EXIT
for _ in $(seq 50); do (exec 3<>/dev/tcp/127.0.0.1/$port) 2>/dev/null && break; sleep 0.1; done
out=$("$loadgen" --address inet:127.0.0.1:$port --connections 4 --requests 2000 --pid $pid)
echo "$out"
case "$out" in *"lookups=2000 "*"errors=0"*) exit 0 ;; esac
echo "unexpected loadgen output" >&2
exit 1
