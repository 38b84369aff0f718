# SPDX-License-Identifier: MIT
# strictmx %postun ($1: 0 erase, 1 upgrade), as %systemd_postun_with_restart: reload the
# units; on upgrade restart those that run, so the new binaries serve. /var/lib/strictmx
# (cache, trust anchor) stays after an erase.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload >/dev/null 2>&1 || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart strictmx-policyd.service strictmx-milter.service \
            strictmx-tlsrpt.timer >/dev/null 2>&1 || :
    fi
fi
