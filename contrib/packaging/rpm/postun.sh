# SPDX-License-Identifier: MIT
# strictmx %postun ($1: 0 erase, 1 upgrade): reload units; restart a running daemon on
# upgrade so the new binary serves.
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
    if [ "$1" -ge 1 ]; then
        systemctl try-restart strictmx-policyd.service || :
    fi
fi
