#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Answers survive a daemon restart: policies come back from the SQLite cache
(cache.path in strictmx.toml). While the daemon is down and after it is back,
the policy server answers 503 to everything, so an OK answer can only come
from the cache. Also: the daemon stops cleanly on SIGTERM.

Usage: t_restart.py WORKDIR
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

EXPECTED = {
    "enforce.test": "OK secure match=mx1.enforce.test:a.pool.enforce.test servername=hostname",
    "wild.test": "OK secure match=zz.wild.test:aa.wild.test:a.pool.wild.test:"
                 "b.pool.wild.test:c.pool.wild.test servername=hostname",
    "deliver-ok.test": "OK secure match=mx.deliver-ok.test servername=hostname",
    "testing.test": "NOTFOUND ",
}


def main():
    w = itlib.workdir()
    t = itlib.Checks("restart")
    for key, want in EXPECTED.items():
        t.eq(itlib.socketmap_query(key), want, f"{key} before the restart")
    try:
        t.eq(itlib.policyd(w, "stop"), 0, "daemon stops on SIGTERM within 10 s")
        itlib.https_down(w, True)
        t.eq(itlib.policyd(w, "start"), 0, "daemon starts again and listens")
        for key, want in EXPECTED.items():
            t.eq(itlib.socketmap_query(key), want, f"{key} after the restart, policy server down")
            rc, out, _ = itlib.postmap(w, key, "socketmap:inet:127.0.0.1:8461:postfix")
            t.eq(out, want[3:] if want.startswith("OK ") else "", f"{key} through postmap")
    finally:
        itlib.https_down(w, False)
        if itlib.policyd(w, "status") != 0:
            itlib.policyd(w, "start")
    t.done()


if __name__ == "__main__":
    main()
