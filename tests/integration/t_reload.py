#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""SIGHUP re-reads the configuration without dropping connections or the cache: a changed
override answers at once on a connection opened before the reload; a file that does not
parse is refused with the reason and the old configuration stays; a changed listener is
reported as needing a restart and the old one keeps answering. Its own daemon on 8481
(socketmap), with the fixture's resolver and HTTPS settings.

Usage: t_reload.py WORKDIR
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

PORT = 8481


def write(conf, d, fixture, override, verbosity=2, port=PORT, broken=False):
    resolver, https = fixture
    with open(conf, "w") as f:
        f.write(f"""[daemon]
log = "stderr"
verbosity = {verbosity}
allow_root = true
state_dir = "{d}/state"
[resolver]
{resolver}
[https]
{https}
[cache]
path = "{d}/cache.db"
[policy.overrides]
"reload.test" = "{override}"
[[listen]]
type = "socketmap"
address = "inet:127.0.0.1:{port}"
""" + ("this is not = = toml\n" if broken else ""))


def main():
    w = itlib.workdir()
    t = itlib.Checks("reload")
    d = os.path.join(w, "reload-test")
    os.makedirs(os.path.join(d, "state"), exist_ok=True)
    fixture = itlib.fixture_sections(w)
    conf = os.path.join(d, "strictmx.toml")
    log_path = os.path.join(d, "policyd.log")
    write(conf, d, fixture, "secure match=a.example")
    log = open(log_path, "w")
    p = subprocess.Popen([itlib.policyd_binary(w), "--config", conf], stdout=log,
                         stderr=subprocess.STDOUT)
    cli = itlib.cli_path(w)

    def logtext():
        with open(log_path, errors="replace") as f:
            return f.read()

    def cache_entries():
        r = subprocess.run([cli, "--config", conf, "status", "--json"], capture_output=True,
                           text=True, timeout=30)
        return json.loads(r.stdout).get("cache_entries") if r.returncode == 0 else None

    try:
        t.ok(itlib.wait_for(lambda: "]: ready " in logtext(), 20), "daemon starts", logtext()[-500:])
        conn = itlib.Socketmap(("127.0.0.1", PORT))
        t.eq(conn.query("postfix", "reload.test"), "OK secure match=a.example", "before: override")
        t.eq(conn.query("postfix", "enforce.test")[:9], "OK secure", "before: a cached policy")
        entries = cache_entries()

        write(conf, d, fixture, "dane-only", verbosity=3)
        p.send_signal(signal.SIGHUP)
        t.ok(itlib.wait_for(lambda: "configuration reloaded" in logtext(), 10),
             "SIGHUP: configuration reloaded", logtext()[-500:])
        t.eq(conn.query("postfix", "reload.test"), "OK dane-only",
             "after the reload: the new override, on the connection opened before")
        t.eq(cache_entries(), entries, "after the reload: the cache is kept")
        t.ok(itlib.wait_for(lambda: "decision domain=reload.test" in logtext().split(
            "configuration reloaded")[-1], 5), "after the reload: verbosity 3 logs every lookup")

        write(conf, d, fixture, "none", broken=True)
        p.send_signal(signal.SIGHUP)
        t.ok(itlib.wait_for(lambda: "reload refused" in logtext(), 10),
             "a file that does not parse: reload refused, with the reason", logtext()[-500:])
        t.eq(conn.query("postfix", "reload.test"), "OK dane-only",
             "after a refused reload: the old configuration answers")

        write(conf, d, fixture, "dane-only", port=PORT + 1)
        p.send_signal(signal.SIGHUP)
        t.ok(itlib.wait_for(lambda: re.search(r"needs_restart=\S*listen", logtext()), 10),
             "a changed listener: the log says it needs a restart", logtext()[-500:])
        t.eq(itlib.socketmap_query("reload.test", address=("127.0.0.1", PORT)), "OK dane-only",
             "the old listener keeps answering")
        conn.close()
        t.ok(p.poll() is None, "the daemon kept running through every reload")
    finally:
        p.terminate()
        try:
            p.wait(10)
        except subprocess.TimeoutExpired:
            p.kill()
        log.close()
    t.done()


if __name__ == "__main__":
    main()
