#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Domains of 245-253 octets are valid, but "_mta-sts." in front passes the 255-octet
limit of a DNS name, so no MTA-STS record can exist for them; likewise "_25._tcp."
in front of an MX host of that length, so no TLSA record. Such a name is no policy
(NOTFOUND), answered promptly and remembered like any other answer, never a
resolver error that defers the mail forever:

  245 and 253 octets in long.test (signed), 253 in sts-insecure.test (unsigned):
      no such name: NOTFOUND, twice, the second from the cache
  244 octets in long.test: the longest name with a possible _mta-sts owner (the
      control: NOTFOUND already)
  250 octets in long.test: MX to a 253-octet host with an address: no TLSA can
      exist, DANE does not apply to that host, no MTA-STS: NOTFOUND, not TEMP
  253 octets in long.test: MX to mx.long.test, which has a usable TLSA record:
      dane-only (the impossible _mta-sts lookup must not make it TEMP)

Usage: t_long_names.py WORKDIR
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

PROMPT_S = 3.0  # an answer from DNS data that needs no timeout


def long_name(total, ch, suffix):
    """A host name of `total` octets: labels of up to 63 `ch`, then `suffix`.
    The same names are written out in testnet/zones/children/long.test.zone."""
    body = total - len(suffix) - 1
    labels = []
    while body > 0:
        n = min(63, body)
        labels.append(ch * n)
        body -= n + 1
    name = ".".join(labels) + "." + suffix
    assert len(name) == total and all(len(x) <= 63 for x in name.split(".")), name
    return name


MX_HOST = long_name(253, "h", "long.test")
CASES = [  # (name, expected answer, what)
    (long_name(245, "n", "long.test"), "NOTFOUND ", "245 octets, no such name (signed)"),
    (long_name(253, "n", "long.test"), "NOTFOUND ", "253 octets, no such name (signed)"),
    (long_name(253, "u", "sts-insecure.test"), "NOTFOUND ",
     "253 octets, no such name (unsigned)"),
    (long_name(244, "n", "long.test"), "NOTFOUND ", "244 octets (control), no such name"),
    (long_name(250, "d", "long.test"), "NOTFOUND ",
     "250 octets, MX host of 253 octets (no TLSA possible)"),
    (long_name(253, "e", "long.test"), "OK dane-only",
     "253 octets, MX host mx.long.test with a usable TLSA record"),
]


def short(name):
    return f"{name[:12]}...{name[-14:]} ({len(name)})"


def timed_socketmap(key):
    start = time.monotonic()
    try:
        reply = itlib.socketmap_query(key)
    except (OSError, ValueError) as e:
        reply = f"({type(e).__name__}: {e})"
    return reply, time.monotonic() - start


def main():
    w = itlib.workdir()
    t = itlib.Checks("long_names")
    log = os.path.join(w, "policyd.log")

    # The names exist as the zone file says (else NOTFOUND would prove nothing).
    dig = subprocess.run(["dig", "+short", "MX", CASES[4][0]], capture_output=True, text=True)
    t.eq(dig.stdout.strip(), f"10 {MX_HOST}.", "the 250-octet name has its long MX host")
    dig = subprocess.run(["dig", "+short", "A", MX_HOST], capture_output=True, text=True)
    t.eq(dig.stdout.strip(), "127.0.0.20", "the 253-octet MX host has an address")
    dig = subprocess.run(["dig", "+short", "MX", CASES[5][0]], capture_output=True, text=True)
    t.eq(dig.stdout.strip(), "10 mx.long.test.", "the 253-octet name has MX mx.long.test")

    for name, want, what in CASES:
        label = f"{short(name)} {what}"
        with open(log, "rb") as f:
            offset = f.seek(0, os.SEEK_END)
        reply, took = timed_socketmap(name)
        t.ok(not reply.startswith("TEMP"), f"{label}: not TEMP", reply[:200])
        t.eq(reply, want, f"{label}: {want.strip()}")
        t.ok(took <= PROMPT_S, f"{label}: answered in {took:.1f} s", f"limit {PROMPT_S} s")
        reply2, took2 = timed_socketmap(name)
        t.eq(reply2, want, f"{label}: second lookup {want.strip()}")
        with open(log, errors="replace") as f:
            f.seek(offset)
            lines = [ln for ln in f if f"decision domain={name} " in ln]
        # A cache hit repeating the answer already logged is counted, not logged: one
        # decision line means the second lookup resolved nothing.
        t.ok(len(lines) == 1 and "source=cache" not in lines[0],
             f"{label}: the second answer came from the cache",
             "\n       ".join(ln.strip()[:160] for ln in lines))
        code, text = itlib.tcp_query(name)
        got = {"200": f"OK {text}", "500": "NOTFOUND ", "400": f"TEMP {text}"}.get(
            code, f"?{code} {text}")
        t.eq(got, want, f"{label}: tcp_table {want.strip()}")
        rc, out, err = itlib.postmap(w, name, "socketmap:inet:127.0.0.1:8461:postfix")
        if want == "NOTFOUND ":
            t.ok(rc == 1 and out == "" and not re.search("error|fatal", err),
                 f"{label}: postmap not found", f"rc={rc} out={out!r} err={err.strip()[:200]!r}")
        else:
            t.ok(rc == 0 and out == want[3:], f"{label}: postmap {want[3:]}",
                 f"rc={rc} out={out!r} err={err.strip()[:200]!r}")
    t.done()


if __name__ == "__main__":
    main()
