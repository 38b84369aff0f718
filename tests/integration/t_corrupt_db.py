#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A cache database full of garbage must not stop the service: the daemon moves
the file aside to PATH.corrupt-TIME with one error line naming it, starts a new
database, answers (fetching policies again), and persists again: after a
restart with the policy server down the answers come from the new file.

Each check names what the daemon must have done, so a daemon that leaves the
file in place, caches in memory only, or logs nothing fails here.

Usage: t_corrupt_db.py WORKDIR
"""

import glob
import os
import re
import sqlite3
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

ENFORCE = "OK secure match=mx1.enforce.test:a.pool.enforce.test servername=hostname"
GARBAGE = b"this is not an SQLite database\n" + bytes(range(256)) * 64
# store.cc: log::error("cache database unusable, moved it aside ...", path=, error=, moved_to=)
MOVED_LINE = re.compile(r"cache database unusable, moved it aside.*")
FIELD = r'(?:^|\s){}=(?:"((?:[^"\\]|\\.)*)"|(\S+))'


def field(line, name):
    m = re.search(FIELD.format(re.escape(name)), line)
    if not m:
        return None
    return m.group(1).replace('\\"', '"') if m.group(1) is not None else m.group(2)


def sqlite_ok(path):
    """(True, '') when PATH is a readable SQLite database passing integrity_check."""
    try:
        con = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
        try:
            row = con.execute("PRAGMA integrity_check").fetchone()
            tables = [r[0] for r in
                      con.execute("SELECT name FROM sqlite_master WHERE type='table'")]
        finally:
            con.close()
    except sqlite3.Error as e:
        return False, f"{type(e).__name__}: {e}"
    return row == ("ok",) and bool(tables), f"integrity_check={row!r} tables={tables!r}"


def main():
    w = itlib.workdir()
    t = itlib.Checks("corrupt_db")
    db = os.path.join(w, "cache.db")
    log = os.path.join(w, "policyd.log")
    created = []
    try:
        t.eq(itlib.policyd(w, "stop"), 0, "daemon stops on SIGTERM")
        for suffix in ("-wal", "-shm", "-journal"):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)
        before = set(glob.glob(db + ".corrupt-*"))
        with open(db, "wb") as f:
            f.write(GARBAGE)
        offset = os.path.getsize(log) if os.path.exists(log) else 0
        fetches = itlib.fetch_count(w, "enforce.test")
        t0 = int(time.time())
        t.eq(itlib.policyd(w, "start"), 0, "daemon starts with a corrupt cache.db")
        t1 = int(time.time())

        # 1. The file itself: moved (not copied, not deleted) to PATH.corrupt-TIME.
        new = sorted(set(glob.glob(db + ".corrupt-*")) - before)
        created = new
        t.eq(len(new), 1, "exactly one new cache.db.corrupt-TIME file")
        aside = new[0] if new else ""
        m = re.fullmatch(re.escape(db) + r"\.corrupt-(\d+)", aside)
        t.ok(m is not None and t0 - 2 <= int(m.group(1)) <= t1 + 2,
             "the moved-aside name carries the start time", f"{aside!r}, started {t0}..{t1}")
        content = open(aside, "rb").read() if aside else b""
        t.ok(content == GARBAGE, "the moved-aside file holds the damaged bytes, unchanged",
             f"{len(content)} bytes, first {content[:40]!r}")

        # 2. The error line names the file and where it went.
        with open(log, errors="replace") as f:
            f.seek(offset)
            lines = f.read().splitlines()
        moved = [ln for ln in lines if MOVED_LINE.search(ln)]
        t.eq(len(moved), 1, "one 'cache database unusable, moved it aside' line")
        line = moved[0] if moved else ""
        t.ok("[error]: " in line, "it is logged as an error", line)
        t.eq(field(line, "moved_to"), aside, "the log line's moved_to= is the moved-aside file")
        t.eq(field(line, "path"), db, "the log line's path= is the cache file")
        memory_only = [ln for ln in lines if "memory only" in ln]
        t.ok(not memory_only, "no fall back to a memory-only cache", "; ".join(memory_only))

        # 3. It serves: fresh resolutions, so the policy server sees a fetch again.
        t.eq(itlib.socketmap_query("enforce.test"), ENFORCE, "enforce.test still answered")
        t.ok(itlib.fetch_count(w, "enforce.test") > fetches,
             "enforce.test was fetched again (nothing came from the damaged file)")
        t.eq(itlib.socketmap_query("testing.test"), "NOTFOUND ", "testing.test still answered")
        rc, out, _ = itlib.postmap(w, "deliver-ok.test", "socketmap:inet:127.0.0.1:8461:postfix")
        t.eq(out, "secure match=mx.deliver-ok.test servername=hostname",
             "deliver-ok.test via postmap")

        # 4. It persists again: a new, sound database that a restart reads back.
        t.eq(itlib.policyd(w, "stop"), 0, "daemon stops on SIGTERM after the rebuild")
        good, detail = sqlite_ok(db)
        t.ok(good, "cache.db is a sound SQLite database again", detail)
        itlib.https_down(w, True)
        t.eq(itlib.policyd(w, "start"), 0, "daemon starts on the rebuilt cache.db")
        t.eq(itlib.socketmap_query("enforce.test"), ENFORCE,
             "enforce.test answered from the rebuilt cache, policy server down")
        rc, out, _ = itlib.postmap(w, "deliver-ok.test", "socketmap:inet:127.0.0.1:8461:postfix")
        t.eq(out, "secure match=mx.deliver-ok.test servername=hostname",
             "deliver-ok.test from the rebuilt cache via postmap")
        t.eq(sorted(set(glob.glob(db + ".corrupt-*")) - before), new,
             "the rebuilt database is not moved aside at the next start")
    finally:
        itlib.https_down(w, False)
        if itlib.policyd(w, "status") != 0:
            itlib.policyd(w, "start")
        for path in created:
            os.unlink(path)
    t.done()


if __name__ == "__main__":
    main()
