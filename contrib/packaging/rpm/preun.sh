# SPDX-License-Identifier: MIT
# strictmx %preun ($1: 0 erase, 1 upgrade): stop and disable the daemon on erase only.
if [ "$1" -eq 0 ]; then
    if [ -d /run/systemd/system ]; then
        systemctl stop strictmx-milter.service strictmx-policyd.service || :
    fi
    systemctl disable strictmx-milter.service strictmx-policyd.service >/dev/null 2>&1 || :
fi
