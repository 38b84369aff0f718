#!/usr/bin/env bash
# SPDX-License-Identifier: MIT
# The packages, end to end, on a Debian 12 machine, as root:
#
#   tests/packaging/t_packages.sh [SOURCE_DIR [BUILD_DIR]]
#
#  1. builds a release tree in BUILD_DIR (default SOURCE_DIR/build-pkg) with Debian's
#     hardening flags (dpkg-buildflags, hardening=+all) and checks the binaries for them;
#  2. builds the .deb and the .rpm with cpack; lintian must report no error, rpmlint
#     (with contrib/packaging/rpm/rpmlint.toml) none either;
#  3. installs the .deb (dpkg -i): units enabled as dh_installsystemd would, configuration
#     0640 root:_strictmx and a conffile, --check-config passes as _strictmx;
#  4. starts strictmx-policyd as _strictmx in a network namespace of its own, its resolver
#     pointed at nothing (no real name is ever resolved), with the packaged state
#     directory; asks it with postmap over socketmap, and over the Exim protocol on a
#     unix socket whose group the daemon gets only as a supplementary group (the
#     SupplementaryGroups= recipe of contrib/exim/README.md);
#  5. removes the package (units stopped, no longer enabled, configuration kept),
#     reinstalls it (enabled again), checks that an administrator's "disable" survives a
#     reinstall, and purges it (configuration, state, enablement state and masks gone; the
#     user stays, as on Debian).
#
# It installs and purges the package "strictmx" on this machine: it refuses to run when
# strictmx is installed by something else. Idempotent; cleans up on failure too.
# STRICTMX_PKG_JOBS: build parallelism (default: nproc). Exit 77 when not root.
set -euo pipefail

SRC=$(cd "${1:-$(dirname "$0")/../..}" && pwd)
BUILD=${2:-$SRC/build-pkg}
JOBS=${STRICTMX_PKG_JOBS:-$(nproc 2>/dev/null || echo 2)}
MARKER=/var/lib/strictmx-pkgtest.installed   # this script installed the package
CONF=/etc/strictmx/strictmx.toml
PORT=18461                                    # socketmap port inside the namespace
TESTGROUP=strictmx-pkgtest                    # stands in for Debian-exim

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: the package test installs a .deb and needs root"
    exit 77
fi

step() { printf '\n=== %s\n' "$*"; }
fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

TMP=$(mktemp -d /tmp/strictmx-pkgtest.XXXXXX)
DAEMON_PID=

purge_package() {
    if dpkg-query -W -f='${Status}' strictmx 2>/dev/null | grep -qv "not-installed"; then
        dpkg --purge strictmx >/dev/null 2>&1 || true
    fi
    rm -f "$MARKER"
}

cleanup() {
    local rc=$?
    if [ -n "$DAEMON_PID" ] && kill -0 "$DAEMON_PID" 2>/dev/null; then
        kill "$DAEMON_PID" 2>/dev/null || true
        wait "$DAEMON_PID" 2>/dev/null || true
    fi
    if [ -e "$MARKER" ]; then
        purge_package
    fi
    getent group "$TESTGROUP" >/dev/null && groupdel "$TESTGROUP" 2>/dev/null
    rm -rf "$TMP"
    if [ "$rc" -eq 0 ]; then
        echo "t_packages: PASS"
    else
        echo "t_packages: FAIL (exit $rc)"
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

for tool in cmake cpack dpkg-buildflags dpkg-shlibdeps lintian rpmlint rpmbuild rpm postmap \
            unshare setpriv readelf python3 systemctl deb-systemd-helper; do
    command -v "$tool" >/dev/null || fail "$tool is missing (scripts/quickstart.sh test installs it)"
done

# A leftover of an interrupted run of this script is purged; an installation of anybody
# else's is left alone.
if [ -e "$MARKER" ]; then
    echo "t_packages: purging the package a previous run left installed"
    purge_package
fi
if dpkg-query -W -f='${Status}' strictmx 2>/dev/null | grep -q "install ok"; then
    fail "the package strictmx is installed on this machine; this test would purge it"
fi

# --- 1. release build with Debian's hardening flags -------------------------------------
step "build $BUILD with dpkg-buildflags (hardening=+all)"
cd "$SRC"   # dpkg-buildflags maps the current directory away (-ffile-prefix-map)
export DEB_BUILD_MAINT_OPTIONS=hardening=+all
cxxflags="$(dpkg-buildflags --get CPPFLAGS) $(dpkg-buildflags --get CXXFLAGS)"
ldflags=$(dpkg-buildflags --get LDFLAGS)
echo "CXXFLAGS=$cxxflags"
echo "LDFLAGS=$ldflags"
# CMake reads CXXFLAGS and LDFLAGS only when it creates the cache: start over if the
# directory was configured with other flags.
if [ -f "$BUILD/CMakeCache.txt" ] &&
   ! grep -qxF "CMAKE_CXX_FLAGS:STRING=$cxxflags" "$BUILD/CMakeCache.txt"; then
    echo "t_packages: $BUILD was configured with other flags: configuring it again"
    rm -rf "$BUILD"
fi
CXXFLAGS="$cxxflags" LDFLAGS="$ldflags" \
    cmake -S "$SRC" -B "$BUILD" -DCMAKE_BUILD_TYPE=RelWithDebInfo -DBUILD_TESTING=OFF >/dev/null
cmake --build "$BUILD" -j "$JOBS"

for bin in policyd/strictmx-policyd policyd/strictmx milter/strictmx-milter; do
    # (into variables first: grep -q ending early would fail the pipe under pipefail)
    f=$BUILD/$bin
    headers=$(readelf -hlW "$f")
    dynamic=$(readelf -dW "$f")
    symbols=$(readelf -W --dyn-syms "$f")
    grep -q GNU_RELRO <<<"$headers" || fail "$bin: no RELRO"
    grep -q 'DYN (' <<<"$headers" || fail "$bin: not PIE"
    grep -Eq 'BIND_NOW|FLAGS_1.*NOW' <<<"$dynamic" || fail "$bin: no BIND_NOW"
    grep -q '__stack_chk_fail' <<<"$symbols" || fail "$bin: no stack protector"
    grep -Eq '__[a-z]+_chk@' <<<"$symbols" || fail "$bin: no fortified functions"
done
ok "RELRO, BIND_NOW, PIE, stack protector and _FORTIFY_SOURCE in all three binaries"

# --- 2. packages, lintian, rpmlint --------------------------------------------------------
step "cpack (DEB, RPM)"
rm -f "$BUILD"/strictmx_*.deb "$BUILD"/strictmx-*.rpm
(cd "$BUILD" && cpack -G "DEB;RPM" >"$TMP/cpack.log" 2>&1) ||
    { cat "$TMP/cpack.log"; fail "cpack"; }
DEB=$(ls "$BUILD"/strictmx_*.deb)
RPM=$(ls "$BUILD"/strictmx-*.rpm)
echo "$DEB"
echo "$RPM"

step "lintian $(basename "$DEB")"
lintian_rc=0
lintian --tag-display-limit 0 --fail-on error "$DEB" >"$TMP/lintian.out" 2>&1 || lintian_rc=$?
grep -v "running with root privileges" "$TMP/lintian.out" || true
if [ "$lintian_rc" -ne 0 ] || grep -q '^E: ' "$TMP/lintian.out"; then
    fail "lintian reports errors (exit $lintian_rc)"
fi
ok "lintian: $(grep -c '^E: ' "$TMP/lintian.out" || true) errors, $(grep -c '^W: ' "$TMP/lintian.out" || true) warnings"

step "rpmlint $(basename "$RPM")"
rpmlint_rc=0
rpmlint -c "$SRC/contrib/packaging/rpm/rpmlint.toml" "$RPM" >"$TMP/rpmlint.out" 2>&1 || rpmlint_rc=$?
grep -E ': [EW]: |packages and' "$TMP/rpmlint.out" || true
if [ "$rpmlint_rc" -ne 0 ] || grep -q ': E: ' "$TMP/rpmlint.out"; then
    fail "rpmlint reports errors (exit $rpmlint_rc)"
fi
rpm -qp --qf '[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILENAMES}\n]' "$RPM" 2>/dev/null |
    grep -qxF -- "-rw-r----- root:_strictmx $CONF" || fail "rpm: $CONF is not 0640 root:_strictmx"
[ "$(rpm -qp --qf '%{PREFIXES}' "$RPM" 2>/dev/null)" = "(none)" ] || fail "rpm: relocatable"
[ "$(rpm -qp --qf '%{URL}' "$RPM" 2>/dev/null)" != "(none)" ] || fail "rpm: no URL"
if rpm -qlp "$RPM" 2>/dev/null | grep -Exq '/usr(/s?bin|/share/man(/man[0-9])?|/lib/systemd(/system)?)'; then
    fail "rpm: owns a standard directory"
fi
ok "rpmlint: no errors; configuration 0640 root:_strictmx, not relocatable, URL set"

# --- 3. install ---------------------------------------------------------------------------
is_enabled() { systemctl is-enabled "$1" 2>/dev/null || true; }
expect_enabled() {
    local unit=$1 want=$2 got
    got=$(is_enabled "$unit")
    [ "$got" = "$want" ] || fail "$3: systemctl is-enabled $unit says '${got:-nothing}', expected '$want'"
    ok "$3: $unit $got"
}
check_conf_mode() {
    local got
    got=$(stat -c '%a %U:%G' "$CONF")
    [ "$got" = "640 root:_strictmx" ] || fail "$1: $CONF is $got, expected 640 root:_strictmx"
    ok "$1: $CONF 0640 root:_strictmx"
}

step "dpkg -i $(basename "$DEB")"
touch "$MARKER"
dpkg -i "$DEB"
expect_enabled strictmx-policyd.service enabled "install"
expect_enabled strictmx-tlsrpt.timer enabled "install"
expect_enabled strictmx-milter.service disabled "install"
check_conf_mode "install"
dpkg-query -W -f='${Conffiles}\n' strictmx | grep -q " $CONF " || fail "$CONF is not a conffile"
getent passwd _strictmx >/dev/null || fail "no user _strictmx"
[ "$(stat -c '%a %U:%G' /var/lib/strictmx)" = "750 _strictmx:_strictmx" ] ||
    fail "/var/lib/strictmx is $(stat -c '%a %U:%G' /var/lib/strictmx)"
for page in man1/strictmx.1 man5/strictmx.toml.5 man8/strictmx-policyd.8 man8/strictmx-milter.8; do
    gzip -t "/usr/share/man/$page.gz" || fail "$page.gz"
done
for f in README.md exim/README.md exim/debian/conf.d/router/190_strictmx copyright changelog.Debian.gz; do
    [ -f "/usr/share/doc/strictmx/$f" ] || fail "/usr/share/doc/strictmx/$f missing"
done
ok "conffile, user, state directory, manual pages, documentation"

as_strictmx() { setpriv --reuid=_strictmx --regid=_strictmx --init-groups -- "$@"; }
as_strictmx /usr/sbin/strictmx-policyd --check-config --config "$CONF" >/dev/null 2>"$TMP/check.err" ||
    { cat "$TMP/check.err"; fail "--check-config of the shipped configuration as _strictmx"; }
ok "$(cat "$TMP/check.err")"

# --- 4. the daemon as _strictmx, in a network namespace of its own ------------------------
step "strictmx-policyd as _strictmx in a private network namespace"
groupadd -r "$TESTGROUP"
mkdir -p "$TMP/run" "$TMP/postmap"
chown _strictmx:_strictmx "$TMP/run"
chmod 0755 "$TMP" "$TMP/run"
echo "compatibility_level = 3.6" >"$TMP/postmap/main.cf"
cat >"$TMP/strictmx.toml" <<EOF
# The package test: nothing is resolved (forwarder without a server), DANE off on purpose.
[daemon]
log = "stderr"
verbosity = 2
[resolver]
forwarders = ["127.0.0.1@5399"]
timeout_ms = 500
dnssec = false
[policy]
lookup_deadline_ms = 1000
[policy.overrides]
"pkgtest.example" = "secure match=mx.pkgtest.example"
[[listen]]
type = "socketmap"
address = "inet:127.0.0.1:$PORT"
[[listen]]
type = "exim"
address = "unix:$TMP/run/exim.sock"
group = "$TESTGROUP"
mode = "0660"
EOF
chmod 0644 "$TMP/strictmx.toml"

# Without the group, the daemon cannot give the socket its group and says what to do.
if as_strictmx /usr/sbin/strictmx-policyd --check-config --config "$TMP/strictmx.toml" \
        >/dev/null 2>"$TMP/check.err"; then
    fail "--check-config accepted a socket group _strictmx is not in"
fi
grep -q "SupplementaryGroups=" "$TMP/check.err" || { cat "$TMP/check.err"; fail "no hint"; }
ok "without the supplementary group: $(head -n 1 "$TMP/check.err")"

cat >"$TMP/exim_query.py" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.settimeout(5)
s.connect(sys.argv[1])
s.sendall(f"query {sys.argv[2]}\n".encode())
s.shutdown(socket.SHUT_WR)
data = b""
while chunk := s.recv(4096):
    data += chunk
print(data.decode().strip())
EOF

# In the namespace: loopback only, the daemon as _strictmx with the extra group (what
# SupplementaryGroups= gives the unit), then the queries.
unshare --net -- bash -c '
    set -eu
    TMP=$1; PORT=$2; GROUP=$3
    ip link set lo up
    setpriv --reuid=_strictmx --regid=_strictmx \
        --groups="$(getent group _strictmx | cut -d: -f3),$(getent group "$GROUP" | cut -d: -f3)" \
        -- /usr/sbin/strictmx-policyd --config "$TMP/strictmx.toml" 2>"$TMP/policyd.log" &
    pid=$!
    trap "kill $pid 2>/dev/null; wait $pid 2>/dev/null" EXIT
    for _ in $(seq 100); do
        grep -q "ready" "$TMP/policyd.log" 2>/dev/null && break
        kill -0 "$pid" 2>/dev/null || { cat "$TMP/policyd.log"; echo "daemon exited"; exit 1; }
        sleep 0.1
    done
    grep -q "ready" "$TMP/policyd.log" || { cat "$TMP/policyd.log"; echo "daemon not ready"; exit 1; }
    [ "$(ps -o euid= -p "$pid" | tr -d " ")" = "$(id -u _strictmx)" ] ||
        { echo "daemon not running as _strictmx"; exit 1; }
    echo "ok: daemon ready as _strictmx (pid $pid)"

    answer=$(postmap -c "$TMP/postmap" -q pkgtest.example "socketmap:inet:127.0.0.1:$PORT:postfix")
    [ "$answer" = "secure match=mx.pkgtest.example" ] ||
        { echo "postmap answered \"$answer\""; exit 1; }
    echo "ok: postmap -q pkgtest.example socketmap:inet:127.0.0.1:$PORT:postfix -> $answer"

    # A name that needs DNS: the resolver reaches nothing, so the answer is a temporary
    # failure (postmap exits 1 and prints nothing), never a policy.
    if other=$(postmap -c "$TMP/postmap" -q example.org "socketmap:inet:127.0.0.1:$PORT:postfix" 2>/dev/null); then
        echo "postmap answered \"$other\" for example.org without DNS"; exit 1
    fi
    echo "ok: example.org without DNS -> no answer (temporary failure)"

    sock=$(stat -c "%a %U:%G" "$TMP/run/exim.sock")
    [ "$sock" = "660 _strictmx:$GROUP" ] || { echo "exim socket is $sock"; exit 1; }
    exim=$(python3 "$TMP/exim_query.py" "$TMP/run/exim.sock" pkgtest.example)
    case $exim in
        *level=secure*) ;;
        *) echo "exim socket answered \"$exim\""; exit 1 ;;
    esac
    echo "ok: exim socket $sock: query pkgtest.example -> $exim"
    kill "$pid"
    wait "$pid" || true
    trap - EXIT
' _ "$TMP" "$PORT" "$TESTGROUP" || { echo "----- daemon log"; cat "$TMP/policyd.log"; fail "daemon in the namespace"; }
[ -f /var/lib/strictmx/cache.db ] || fail "no cache in /var/lib/strictmx"
[ "$(stat -c '%U' /var/lib/strictmx/cache.db)" = "_strictmx" ] || fail "cache.db not owned by _strictmx"
ok "cache /var/lib/strictmx/cache.db owned by _strictmx"

# --- 5. remove, reinstall, purge ----------------------------------------------------------
step "dpkg -r strictmx"
dpkg -r strictmx
[ "$(dpkg-query -W -f='${Status}' strictmx)" = "deinstall ok config-files" ] ||
    fail "state after remove: $(dpkg-query -W -f='${Status}' strictmx)"
state=$(is_enabled strictmx-policyd.service)
case $state in
    enabled*) fail "strictmx-policyd.service is still enabled after remove" ;;
esac
ok "remove: strictmx-policyd.service ${state:-unknown} (not enabled; its unit file is gone)"
[ ! -e /usr/lib/systemd/system/strictmx-policyd.service ] || fail "unit file left after remove"
[ ! -e /usr/sbin/strictmx-policyd ] || fail "binary left after remove"
[ -f "$CONF" ] || fail "$CONF removed with the package (a conffile stays until purge)"
ok "remove: configuration kept"

step "dpkg -i $(basename "$DEB") (reinstall after remove)"
dpkg -i "$DEB"
expect_enabled strictmx-policyd.service enabled "reinstall"
expect_enabled strictmx-tlsrpt.timer enabled "reinstall"
expect_enabled strictmx-milter.service disabled "reinstall"
check_conf_mode "reinstall"

step "an administrator's disable survives a reinstall"
systemctl disable strictmx-policyd.service 2>/dev/null
dpkg -i "$DEB" >/dev/null
expect_enabled strictmx-policyd.service disabled "reinstall after disable"
systemctl enable strictmx-policyd.service 2>/dev/null

step "dpkg --purge strictmx"
dpkg --purge strictmx
rm -f "$MARKER"
dpkg-query -W -f='${Status}' strictmx 2>/dev/null | grep -qv "not-installed" &&
    fail "strictmx still known to dpkg: $(dpkg-query -W -f='${Status}' strictmx)"
for p in /etc/strictmx /var/lib/strictmx /usr/lib/systemd/system/strictmx-policyd.service \
         /usr/sbin/strictmx-policyd /usr/share/doc/strictmx; do
    [ ! -e "$p" ] || fail "$p left after purge"
done
left=$(find /etc/systemd/system /var/lib/systemd/deb-systemd-helper-enabled \
            /var/lib/systemd/deb-systemd-helper-masked -name 'strictmx*' 2>/dev/null || true)
[ -z "$left" ] || fail "enablement links, masks or state left after purge: $left"
[ -z "$(is_enabled strictmx-policyd.service | grep -E 'enabled|masked' || true)" ] ||
    fail "strictmx-policyd.service is $(is_enabled strictmx-policyd.service) after purge"
getent passwd _strictmx >/dev/null || fail "_strictmx removed (Debian keeps system users)"
ok "purge: configuration, state, units, enablement state and masks gone; user _strictmx kept"
