#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A cache database full of garbage must not stop the service: the daemon
starts, logs the problem, and answers (fetching policies again).

Usage: t_corrupt_db.py WORKDIR
"""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

ENFORCE = "OK secure match=mx1.enforce.test:a.pool.enforce.test servername=hostname"


def main():
    w = itlib.workdir()
    t = itlib.Checks("corrupt_db")
    db = os.path.join(w, "cache.db")
    log = os.path.join(w, "policyd.log")
    try:
        t.eq(itlib.policyd(w, "stop"), 0, "daemon stops on SIGTERM")
        for suffix in ("-wal", "-shm", "-journal"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        with open(db, "wb") as f:
            f.write(b"this is not an SQLite database\n" + bytes(range(256)) * 64)
        offset = os.path.getsize(log) if os.path.exists(log) else 0
        t.eq(itlib.policyd(w, "start"), 0, "daemon starts with a corrupt cache.db")
        t.eq(itlib.socketmap_query("enforce.test"), ENFORCE, "enforce.test still answered")
        t.eq(itlib.socketmap_query("testing.test"), "NOTFOUND ", "testing.test still answered")
        rc, out, _ = itlib.postmap(w, "deliver-ok.test", "socketmap:inet:127.0.0.1:8461:postfix")
        t.eq(out, "secure match=mx.deliver-ok.test servername=hostname", "deliver-ok.test via postmap")
        with open(log, errors="replace") as f:
            f.seek(offset)
            new = f.read()
        t.ok(re.search(r"cache|database|sqlite|corrupt", new, re.I) is not None,
             "the daemon logged the cache problem", f"new log text: {new[-600:]!r}")
    finally:
        if itlib.policyd(w, "status") != 0:
            itlib.policyd(w, "start")
    t.done()


if __name__ == "__main__":
    main()
