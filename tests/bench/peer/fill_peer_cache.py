#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Pre-fills the SQLite cache of postfix-mta-sts-resolver (mta-sts-daemon) with N domains.

Each domain gets the same MTA-STS policy that strictmx-bench-fill writes into the strictmx
cache (mode enforce, mx mx1.DOMAIN and *.pool.DOMAIN, max_age one year), stamped "fetched
now", so that a lookup in mta-sts-daemon is a pure cache hit:

  * table sts_policy_cache(domain text, ts integer, pol_id text, pol_body text), unique index
    on domain: one row per domain, domain lower case without a trailing dot (the daemon's
    filter_domain());
  * ts is the Unix time of the last fetch, pol_id the TXT record's id=, pol_body the parsed
    policy as JSON ({"version", "mode", "mx": [...], "max_age": integer});
  * the daemon re-resolves (TXT lookup, then HTTPS if the id changed) whenever
    now - ts > cache_grace (default 60 s) or ts + max_age < now; so its configuration must
    set cache_grace longer than the age of these rows (mta-sts-daemon.yml: one year);
  * proactive_policy_fetching must stay disabled (its default), or the daemon walks the
    table by rowid and refreshes rows older than interval / grace_ratio.

Usage: fill_peer_cache.py DB N [PATTERN (default d%d.bench.test)]
"""
import json
import os
import sqlite3
import sys
import time

MAX_AGE = 31557600  # the largest max_age RFC 8461 allows; the daemon rejects larger ones


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__.split("\n\n")[-1].strip() + "\n")
        return 2
    path, n = sys.argv[1], int(sys.argv[2])
    pattern = sys.argv[3] if len(sys.argv) > 3 else "d%d.bench.test"
    now = int(time.time())
    for suffix in ("", "-wal", "-shm"):
        try:
            os.unlink(path + suffix)
        except FileNotFoundError:
            pass
    db = sqlite3.connect(path)
    # The daemon's own schema (sqlite_cache.SqliteCache.setup) and connection pragmas.
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=NORMAL")
    db.execute("create table if not exists proactive_fetch_ts "
               "(id integer primary key, last_fetch_ts integer)")
    db.execute("create table if not exists sts_policy_cache "
               "(domain text, ts integer, pol_id text, pol_body text)")
    db.execute("create unique index if not exists sts_policy_domain on sts_policy_cache (domain)")
    db.execute("create index if not exists sts_policy_domain_ts on sts_policy_cache (domain, ts)")

    def rows():
        for i in range(n):
            domain = (pattern % i).lower().rstrip(".")
            body = {
                "version": "STSv1",
                "mode": "enforce",
                "mx": ["mx1." + domain, "*.pool." + domain],
                "max_age": MAX_AGE,
            }
            yield (domain, now, "bench1", json.dumps(body))

    with db:
        db.executemany("insert or replace into sts_policy_cache (domain, ts, pol_id, pol_body) "
                       "values (?, ?, ?, ?)", rows())
        # Marks a proactive fetch as just done: harmless while proactive fetching is disabled,
        # and keeps an accidentally enabled fetcher asleep for its whole interval.
        db.execute("insert or replace into proactive_fetch_ts (id, last_fetch_ts) values (1, ?)", (now,))
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    print("%d domains written to %s" % (n, path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
