# SPDX-License-Identifier: MIT
# strictmx %preun ($1: 0 erase, 1 upgrade), as %systemd_preun: on erase, disable and stop
# the units.
if [ "$1" -eq 0 ]; then
    systemctl --no-reload disable --now strictmx-tlsrpt.timer strictmx-milter.service \
        strictmx-policyd.socket strictmx-policyd.service >/dev/null 2>&1 || :
    if [ -d /run/systemd/system ]; then
        systemctl stop strictmx-tlsrpt.service >/dev/null 2>&1 || :
    fi
fi
