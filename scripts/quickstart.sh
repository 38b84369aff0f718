#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# strictmx quick start on Debian 12: install what is missing, build, then serve or test.
#
#   bash scripts/quickstart.sh serve   # build (release) and run strictmx-policyd on the
#                                      # built-in defaults: socketmap on 127.0.0.1:8461,
#                                      # SQLite cache in ./var, logs on stderr
#   bash scripts/quickstart.sh test    # build with ASan+UBSan and run the whole test suite
#                                      # (unit, fuzz replay, integration against a loopback
#                                      # test internet inside a private network namespace),
#                                      # then fuzz each parser with libFuzzer for a bounded
#                                      # time (clang build in build-fuzz; FUZZ_SECONDS, 40 s),
#                                      # then builds the .deb and the .rpm (release build with
#                                      # dpkg-buildflags in build-pkg), lints them, and installs,
#                                      # runs, removes, reinstalls and purges the .deb
#                                      # (tests/packaging/t_packages.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
top=$(pwd)
jobs=$(nproc 2>/dev/null || echo 2)

build_pkgs=(cmake g++ make pkg-config libunbound-dev libevent-dev libcurl4-openssl-dev
            libsqlite3-dev libidn2-dev libpsl-dev publicsuffix libtomlplusplus-dev libfmt-dev nlohmann-json3-dev zlib1g-dev libmilter-dev libpq-dev catch2 dns-root-data
            ca-certificates)
test_pkgs=(nsd ldnsutils unbound unbound-host dnsutils postfix python3 python3-aiosmtpd swaks
           libnet-ssleay-perl openssl curl iproute2 util-linux sqlite3 miltertest
           clang-19 libclang-rt-19-dev lintian rpmlint rpm dpkg-dev postgresql)

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_missing() {
    local missing=()
    for p in "$@"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    echo "quickstart: installing ${missing[*]}"
    # Postfix asks how to configure the system MTA; the tests run private instances only.
    echo "postfix postfix/main_mailer_type select No configuration" | as_root debconf-set-selections
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

build() {
    local dir=$1; shift
    cmake -S "$top" -B "$dir" "$@" >/dev/null
    cmake --build "$dir" -j "$jobs"
}

case "${1:-}" in
    serve)
        install_missing "${build_pkgs[@]}"
        build "$top/build-release" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF
        mkdir -p "$top/var"
        echo "quickstart: strictmx-policyd on socketmap:inet:127.0.0.1:8461:postfix (Ctrl-C stops)"
        # As root (a fresh machine's first login), say so: the packaged unit runs as _strictmx.
        root_flag=()
        [ "$(id -u)" -ne 0 ] || root_flag=(--allow-root)
        exec "$top/build-release/policyd/strictmx-policyd" --state-dir "$top/var" "${root_flag[@]}" ${2:+--config "$2"}
        ;;
    test)
        install_missing "${build_pkgs[@]}" "${test_pkgs[@]}"
        build "$top/build-test" -DCMAKE_BUILD_TYPE=Debug -DSTRICTMX_SANITIZE=ON
        # Debian's Exim conflicts with Postfix: the Exim tests use a copy unpacked into the
        # build tree. Fetch it here, while the network is still reachable.
        bash "$top/tests/integration/exim/install-exim.sh" "$top/build-test/exim-cache"
        # libFuzzer: a second build of the fuzz targets only, with clang (19: the first whose
        # concepts let libstdc++ 12 offer std::expected), the whole library instrumented.
        CC=clang-19 CXX=clang++-19 cmake -S "$top" -B "$top/build-fuzz" -DCMAKE_BUILD_TYPE=Debug \
            -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" -DSTRICTMX_SANITIZE=ON -DSTRICTMX_LIBFUZZER=ON \
            -DSTRICTMX_INTEGRATION=OFF -DSTRICTMX_FUZZ_SECONDS="${FUZZ_SECONDS:-40}" >/dev/null
        cmake --build "$top/build-fuzz" -j "$jobs" --target fuzz_all
        # ThreadSanitizer: a third build of the unit tests only, for the code libmilter runs
        # on one thread per SMTP session (ctest label tsan).
        cmake -S "$top" -B "$top/build-tsan" -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g -O1" \
            -DSTRICTMX_TSAN=ON -DSTRICTMX_INTEGRATION=OFF >/dev/null
        cmake --build "$top/build-tsan" -j "$jobs" --target unit_tests
        # Everything the tests start lives in a private network and mount namespace: its own
        # loopback, its own /etc/resolv.conf; no packet can leave the machine. The bounded
        # fuzzing runs after the suite, two targets at a time, whatever the suite's result;
        # then the packages are built, checked, installed and purged (the package's sysctl
        # setting lands in the namespace, not on the host).
        exec unshare --net --mount -- bash -c \
            'ip link set lo up
             ctest --test-dir "$1" --output-on-failure -j 2; suite=$?
             ctest --test-dir "$3" -L tsan --output-on-failure; tsan=$?
             ctest --test-dir "$2" -L libfuzzer --output-on-failure -j 2; fuzz=$?
             bash "$4/tests/packaging/t_packages.sh" "$4" "$4/build-pkg"; pkg=$?
             [ "$suite" -eq 0 ] && [ "$tsan" -eq 0 ] && [ "$fuzz" -eq 0 ] && [ "$pkg" -eq 0 ]' \
            _ "$top/build-test" "$top/build-fuzz" "$top/build-tsan" "$top"
        ;;
    *)
        echo "usage: bash scripts/quickstart.sh serve [CONFIG] | test" >&2
        exit 2
        ;;
esac
