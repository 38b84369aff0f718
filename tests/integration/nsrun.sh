#!/bin/bash
# SPDX-License-Identifier: MIT
# Run a command inside the fixture's namespaces (see fixture.sh).
# Usage: nsrun.sh WORKDIR COMMAND [ARG...]
# Exit 77 (ctest SKIP_RETURN_CODE) when not root.
set -u
W=${1:?usage: nsrun.sh WORKDIR COMMAND [ARG...]}
shift
if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the test internet needs root (namespaces, ports 25 and 53)"
    exit 77
fi
holder=$(cat "$W/netns.pid" 2>/dev/null) && kill -0 "$holder" 2>/dev/null ||
    { echo "nsrun: no running fixture in $W (run fixture.sh setup first)"; exit 1; }
exec nsenter -t "$holder" -n -m --wd="$PWD" -- "$@"
