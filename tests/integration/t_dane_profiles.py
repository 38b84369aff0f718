#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""DANE answers are the same in every profile and over every transport. For each
domain of sts_cases.tsv where DANE applies ("OK dane" or "OK dane-only": a
DNSSEC-signed MX with TLSA records), the lookup goes through the profiles
postfix, postfix-tlsrpt, strict and strict-tlsrpt, each by socketmap (own client
and postmap -q) and by tcp_table (the listener of that profile, own client and
postmap -q). The answer must be the expected DANE level: never NOTFOUND (which
would let Postfix fall back to its default level) and never a "secure" answer
(an MTA-STS policy must not replace DANE, RFC 8461 section 2). Every TEMP case
of sts_cases.tsv must be TEMP in every profile too.

Usage: t_dane_profiles.py WORKDIR
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402


def load_cases():
    dane, temp = [], []
    with open(os.path.join(itlib.TOP, "sts_cases.tsv")) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            key, expected, _ = line.split("\t")
            if expected in ("OK dane", "OK dane-only"):
                dane.append((key, expected))
            elif expected == "TEMP":
                temp.append(key)
    return dane, temp


def wire_socketmap(profile, key):
    try:
        return itlib.socketmap_query(key, name=profile)
    except (OSError, ValueError) as e:
        return f"({type(e).__name__}: {e})"


def wire_tcp(profile, key):
    try:
        code, text = itlib.tcp_query(key, address=itlib.TCP_TABLE_PROFILES[profile])
    except (OSError, ValueError) as e:
        return f"({type(e).__name__}: {e})"
    return {"200": f"OK {text}", "500": "NOTFOUND ", "400": f"TEMP {text}"}.get(
        code, f"?{code} {text}")


def tables(profile):
    host, port = itlib.TCP_TABLE_PROFILES[profile]
    return (("socketmap", f"socketmap:inet:127.0.0.1:8461:{profile}"),
            ("tcp_table", f"tcp:{host}:{port}"))


def main():
    w = itlib.workdir()
    t = itlib.Checks("dane_profiles")
    dane, temp = load_cases()
    t.ok(len(dane) >= 8, f"{len(dane)} DANE domains in sts_cases.tsv",
         "expected dane-signed, dane-sts, dane-cname, dane-implicit, ... ")

    for key, expected in dane:
        for profile in itlib.PROFILES:
            for via, reply in (("socketmap", wire_socketmap(profile, key)),
                               ("tcp_table", wire_tcp(profile, key))):
                what = f"{key} [{profile}, {via}]"
                t.ok(not reply.startswith("NOTFOUND"), f"{what}: not NOTFOUND", reply)
                t.ok("secure" not in reply, f"{what}: no secure answer", reply)
                t.eq(reply, expected, f"{what}: {expected}")
            for via, table in tables(profile):
                rc, out, err = itlib.postmap(w, key, table)
                t.ok(rc == 0 and out == expected[3:],
                     f"{key} [{profile}, postmap {via}]: {expected[3:]}",
                     f"rc={rc} out={out!r} err={err.strip()!r}")

    # Failures on the DANE path (and bogus MTA-STS records) defer in every profile.
    for key in temp:
        for profile in itlib.PROFILES:
            for via, reply in (("socketmap", wire_socketmap(profile, key)),
                               ("tcp_table", wire_tcp(profile, key))):
                t.ok(reply.startswith("TEMP ") and len(reply) > 5,
                     f"{key} [{profile}, {via}]: TEMP", f"got {reply!r}")
    t.done()


if __name__ == "__main__":
    main()
