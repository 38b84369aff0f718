# SPDX-License-Identifier: MIT
# strictmx %post ($1: 1 install, 2 upgrade): the service user, the state directory, and
# the unit. The service is not enabled here; enable it with
# "systemctl enable --now strictmx-policyd".
systemd-sysusers /usr/lib/sysusers.d/strictmx.conf || :
systemd-tmpfiles --create /usr/lib/tmpfiles.d/strictmx.conf || :
if [ -d /run/systemd/system ]; then
    systemctl daemon-reload || :
fi
