#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Policy fetching and caching: a cached policy is not fetched again while its
TXT id is unchanged and max_age has not run out (RFC 8461 section 5.1), and a
domain whose _mta-sts TXT record is missing, invalid or bogus is never fetched
(section 3.1: no policy, skip the remaining steps of discovery).

Usage: t_cache.py WORKDIR
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

ENFORCE = "OK secure match=mx1.enforce.test:a.pool.enforce.test servername=hostname"
NO_FETCH = ["nopolicy.test", "notxt.test", "badtxt.test", "twotxt.test", "casetxt.test",
            "upperidtxt.test", "longidtxt.test", "sts-bogus.test", "sts-tampered.test"]


def main():
    w = itlib.workdir()
    t = itlib.Checks("cache")

    t.eq(itlib.socketmap_query("enforce.test"), ENFORCE, "enforce.test answer")
    before = itlib.fetch_count(w, "enforce.test")
    t.ok(before >= 1, "enforce.test policy was fetched at least once", f"{before}")
    for i in range(3):
        t.eq(itlib.socketmap_query("enforce.test"), ENFORCE, f"enforce.test answer again ({i + 1})")
    t.eq(itlib.fetch_count(w, "enforce.test"), before, "no new fetch for a cached policy")

    # The policy hosts of these domains exist and serve valid policies.
    for d in NO_FETCH:
        itlib.socketmap_query(d)
        t.eq(itlib.fetch_count(w, d), 0, f"{d}: policy never fetched")
    t.done()


if __name__ == "__main__":
    main()
