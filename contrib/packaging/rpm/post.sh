# SPDX-License-Identifier: MIT
# strictmx %post ($1: 1 install, 2 upgrade), as %systemd_post: the state directory, a root
# trust anchor, and on first install "systemctl preset" for the units, so the
# distribution's preset policy decides whether they are enabled (Fedora and RHEL: not
# enabled; enable with "systemctl enable --now strictmx-policyd").
systemd-tmpfiles --create /usr/lib/tmpfiles.d/strictmx.conf >/dev/null 2>&1 || :

# The DNSSEC root trust anchor. strictmx-policyd keeps an RFC 5011-managed copy in
# /var/lib/strictmx/root.key and seeds it from /usr/share/dns/root.key (Debian's
# dns-root-data), which RPM-based systems do not have. Seed it here from unbound's
# anchor (unbound-libs or unbound-anchor: /var/lib/unbound/root.key) instead.
ta=/var/lib/strictmx/root.key
if [ ! -e "$ta" ] && [ ! -e /usr/share/dns/root.key ]; then
    for seed in /var/lib/unbound/root.key /etc/unbound/root.key; do
        if [ -s "$seed" ]; then
            install -m 0640 -o _strictmx -g _strictmx "$seed" "$ta" 2>/dev/null || :
            break
        fi
    done
    if [ ! -e "$ta" ]; then
        echo "strictmx: no DNSSEC root trust anchor found. Create one with" >&2
        echo "  unbound-anchor -a $ta; chown _strictmx:_strictmx $ta" >&2
        echo "(package unbound-anchor or unbound-libs), or set resolver.trust_anchor_file" >&2
        echo "in /etc/strictmx/strictmx.toml; strictmx-policyd does not start without one." >&2
    fi
fi

if [ "$1" -eq 1 ]; then
    systemctl --no-reload preset strictmx-policyd.service strictmx-tlsrpt.timer \
        strictmx-milter.service >/dev/null 2>&1 || :
fi
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
fi
