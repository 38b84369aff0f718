#!/bin/bash
# SPDX-License-Identifier: MIT
# Unpack Debian's Exim (exim4-daemon-light, exim4-base, exim4-config) into a private
# folder, without installing it: Debian's exim4 packages conflict with postfix, which
# the other integration tests need. Missing shared libraries of Exim are installed the
# normal way (apt-get install), which removes nothing. No maintainer script runs, so no
# Exim daemon starts. The result is cached: a second run returns at once.
#
# Usage: install-exim.sh DEST
#   DEST/root/usr/sbin/exim4                     the Exim binary
#   DEST/root/etc/exim4/conf.d                   Debian's split configuration
#   DEST/root/usr/sbin/update-exim4.conf         its generator
# Exit 0 ready, 77 (ctest SKIP_RETURN_CODE) when it cannot be done here (not root, not
# Debian), 1 on failure.
set -euo pipefail
DEST=${1:?usage: install-exim.sh DEST}
PACKAGES=(exim4-daemon-light exim4-base exim4-config)

if [ "$(id -u)" != 0 ]; then
    echo "SKIP: fetching Exim needs root (apt-get)"
    exit 77
fi
for tool in apt-get dpkg-deb dpkg-query flock; do
    command -v "$tool" >/dev/null || { echo "SKIP: $tool not found (not Debian?)"; exit 77; }
done

mkdir -p "$DEST"
DEST=$(cd "$DEST" && pwd)
exec 9>"$DEST/.lock"
flock 9

ready() {
    [ -f "$DEST/ready" ] && [ -x "$DEST/root/usr/sbin/exim4" ] || return 1
    # Libraries can disappear with a later apt-get autoremove: check them each time.
    ! ldd "$DEST/root/usr/sbin/exim4" 2>/dev/null | grep -q 'not found'
}

if ready; then
    echo "install-exim: cached in $DEST ($(cat "$DEST/ready"))"
    exit 0
fi

dl=$DEST/download
rm -rf "$dl" "$DEST/root.new"
mkdir -p "$dl"
# _apt cannot write into a root-only folder: let it, or apt-get warns and works as root.
chmod 0755 "$dl"
fetch() { (cd "$dl" && apt-get download -q "${PACKAGES[@]}"); }
if ! fetch >"$dl/apt.log" 2>&1; then
    echo "install-exim: apt-get download failed; updating the package lists once"
    apt-get update -q >>"$dl/apt.log" 2>&1 || true
    fetch >>"$dl/apt.log" 2>&1 || { cat "$dl/apt.log"; echo "install-exim: cannot fetch ${PACKAGES[*]}"; exit 1; }
fi

# Shared libraries named in Depends: (first alternative, version constraints dropped)
# that are not installed yet.
missing=()
for deb in "$dl"/exim4-daemon-light_*.deb "$dl"/exim4-base_*.deb; do
    for dep in $(dpkg-deb -f "$deb" Depends | tr ',' '\n' | sed -e 's/|.*//' -e 's/(.*)//' \
                 -e 's/[[:space:]]//g' | grep '^lib' || true); do
        status=$(dpkg-query -W -f='${Status}' "$dep" 2>/dev/null || true)
        [ "$status" = "install ok installed" ] || missing+=("$dep")
    done
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "install-exim: installing the libraries Exim needs: ${missing[*]}"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        "${missing[@]}" >>"$dl/apt.log" 2>&1 ||
        { tail -n 20 "$dl/apt.log"; echo "install-exim: cannot install ${missing[*]}"; exit 1; }
fi

mkdir -p "$DEST/root.new"
for deb in "$dl"/*.deb; do
    dpkg-deb -x "$deb" "$DEST/root.new"
done
if ldd "$DEST/root.new/usr/sbin/exim4" | grep 'not found'; then
    echo "install-exim: Exim still misses the libraries above"
    exit 1
fi
rm -rf "$DEST/root"
mv "$DEST/root.new" "$DEST/root"
version=$(dpkg-deb -f "$dl"/exim4-daemon-light_*.deb Version)
rm -rf "$dl"
echo "exim4-daemon-light $version" > "$DEST/ready"
echo "install-exim: Exim $version unpacked in $DEST/root"
