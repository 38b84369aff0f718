#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Exim itself as the client of strictmx-policyd's Exim listener, no mail sent:

 1. exim -be: ${readsocket} with the socket and timeout macros of
    contrib/exim/strictmx-main.conf, one "query" and "mxcheck" request per kind of
    answer (enforce, testing under the postfix and the strict profile, none, no
    policy, dane-only, dane, DANE over MTA-STS, tempfail for a bogus zone, a static
    override, malformed requests), over TCP and over a unix socket; the contrib
    macros STRICTMX_QUERY and STRICTMX_MXCHECK when the daemon is down; the
    strictmx_mxcheck ACL.
 2. exim -bt: the contrib routers send each domain to the right router and
    transport, or defer it (tempfail, daemon down, no usable MX host).

Usage: t_exim_expand.py WORKDIR EXIM_CACHE
"""

import os
import re
import sys

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eximlib  # noqa: E402
from eximlib import itlib  # noqa: E402

PORT = 8471          # profile postfix (the default)
PORT_STRICT = 8472   # profile strict: MTA-STS testing policies are enforced too
PORT_DEAD = 8479     # nothing listens here

ENFORCE = ("level=secure mode=enforce mx=mx1.enforce.test:*.pool.enforce.test "
           "match=mx1.enforce.test:a.pool.enforce.test")
WILD = ("level=secure mode=enforce mx=zz.wild.test:aa.wild.test:*.pool.wild.test "
        "match=zz.wild.test:aa.wild.test:a.pool.wild.test:b.pool.wild.test:c.pool.wild.test")
NOT_ALLOWED = "MX host {h} is not allowed by the MTA-STS policy of {d}"
MALFORMED = ("level=tempfail reason=\"malformed request: expected 'query DOMAIN', "
             "'mxcheck DOMAIN HOST' or 'tlsrpt RESULT MSGID DOMAIN MXHOST IP [TEXT]'\"")


def ask(request):
    """What the contrib macros do with an answer: one line, the newline removed."""
    return ("[${sg{${readsocket{STRICTMX_SOCKET}{" + request + "\\n}{STRICTMX_TIMEOUT}"
            "{\\n}{FAILED}}}{\\N\\n\\N}{}}]")


def check_answers(t, exim, label, cases):
    """cases: [(request, expected text or compiled regex)]."""
    try:
        got = exim.expand([ask(req) for req, _ in cases])
    except Exception as e:  # noqa: BLE001
        t.ok(False, f"{label}: exim -be ran", str(e))
        return
    for (req, want), result in zip(cases, got):
        m = re.fullmatch(r"\[(.*)\]", result)
        text = m.group(1) if m else result
        what = f"{label}: {req!r} -> {text!r}"
        if isinstance(want, re.Pattern):
            t.ok(bool(want.fullmatch(text)), what, f"want {want.pattern!r}")
        else:
            t.ok(text == want, what, f"want {want!r}")


def check_route(t, exim, address, router=None, transport=None, deferred=None, hosts=()):
    rc, out = exim.route(address)
    if deferred is not None:
        ok = rc == 1 and f"{address} cannot be resolved at this time: " in out and \
            re.search(deferred, out) is not None
        t.ok(ok, f"exim -bt {address}: deferred ({out.splitlines()[0] if out else ''})",
             f"exit {rc}:\n{out}")
        return
    want = f"router = {router}, transport = {transport}"
    ok = rc == 0 and want in out and all(re.search(rf"host {re.escape(h)}\s", out) for h in hosts)
    t.ok(ok, f"exim -bt {address}: {want}" + (f", hosts {' '.join(hosts)}" if hosts else ""),
         f"exit {rc}:\n{out}")


def main():
    w, cache = eximlib.args()
    t = itlib.Checks("exim_expand")
    base = os.path.join(w, "exim-expand")
    users = eximlib.Users(os.path.join(base, "etc"))
    sock = os.path.join(base, "policyd", "exim.sock")
    daemon = eximlib.Policyd(w, os.path.join(base, "policyd"), [
        {"type": "exim", "address": f"inet:127.0.0.1:{PORT}"},
        {"type": "exim", "address": f"inet:127.0.0.1:{PORT_STRICT}", "profile": "strict"},
        {"type": "exim", "address": f"unix:{sock}", "mode": "0666"},
    ])
    try:
        daemon.start()
    except Exception as e:  # noqa: BLE001
        t.ok(False, "strictmx-policyd with Exim listeners starts", str(e))
        t.done()
    try:
        run(t, w, cache, base, users, sock)
    finally:
        daemon.stop()
    if t.failed:
        print("----- strictmx-policyd log (last lines)\n" + daemon.tail(25))
    t.done()


def run(t, w, cache, base, users, sock):
    inet = eximlib.Exim(os.path.join(base, "inet"), cache, users, f"inet:127.0.0.1:{PORT}")
    p = inet.run(["-bV"])
    if not t.ok(p.returncode == 0 and "DANE" in p.stdout and "Event" in p.stdout,
                "exim -bV: the configuration with contrib/exim loads; Exim has DANE and Event",
                p.stdout[-600:] + p.stderr):
        return
    print("       " + p.stdout.splitlines()[0])

    dane_expired = re.compile(r'level=tempfail reason="DNS lookup of dane-expired\.test MX failed: '
                              r'[^"]*"')
    check_answers(t, inet, "tcp", [
        ("query enforce.test", ENFORCE),
        ("query ENFORCE.Test.", ENFORCE),
        ("query wild.test", WILD),
        ("query deliver-ok.test",
         "level=secure mode=enforce mx=mx.deliver-ok.test match=mx.deliver-ok.test"),
        ("query testing.test", "level=none mode=testing"),
        ("query none.test", "level=none mode=none"),
        ("query nopolicy.test", "level=none"),
        ("query dane-signed.test", "level=dane-only"),
        ("query dane-partial.test", "level=dane"),
        ("query dane-sts.test", "level=dane-only"),
        ("query dane-expired.test", dane_expired),
        ("query override.test", 'level=secure override="secure match=override.example"'),
        ("query [192.0.2.1]", "level=none"),
        ("mxcheck enforce.test mx1.enforce.test", ""),
        ("mxcheck enforce.test a.pool.enforce.test", ""),
        ("mxcheck enforce.test MX1.Enforce.Test.", ""),
        ("mxcheck enforce.test b.c.pool.enforce.test",
         NOT_ALLOWED.format(h="b.c.pool.enforce.test", d="enforce.test")),
        ("mxcheck enforce.test pool.enforce.test",
         NOT_ALLOWED.format(h="pool.enforce.test", d="enforce.test")),
        ("mxcheck enforce.test mx1.enforce.test.evil.test",
         NOT_ALLOWED.format(h="mx1.enforce.test.evil.test", d="enforce.test")),
        ("mxcheck wild.test c.pool.wild.test", ""),
        ("mxcheck wild.test x.y.pool.wild.test",
         NOT_ALLOWED.format(h="x.y.pool.wild.test", d="wild.test")),
        ("mxcheck wild.test other.wild.test", NOT_ALLOWED.format(h="other.wild.test", d="wild.test")),
        ("mxcheck deliver-ok.test mx.deliver-badcert.test",
         NOT_ALLOWED.format(h="mx.deliver-badcert.test", d="deliver-ok.test")),
        ("mxcheck testing.test elsewhere.test", ""),
        ("mxcheck none.test elsewhere.test", ""),
        ("mxcheck nopolicy.test elsewhere.test", ""),
        ("mxcheck dane-signed.test elsewhere.test", ""),
        ("mxcheck override.test elsewhere.test", ""),
        ("mxcheck dane-expired.test mx.dane-expired.test",
         re.compile(r"policy lookup failed: DNS lookup of dane-expired\.test MX failed: .+")),
        ("mxcheck enforce.test bad_host!", "veto: not a host name: bad_host!"),
        ("mxcheck enforce.test", MALFORMED),
        ("query", MALFORMED),
        ("hello", MALFORMED),
    ])

    strict = eximlib.Exim(os.path.join(base, "strict"), cache, users,
                          f"inet:127.0.0.1:{PORT_STRICT}")
    check_answers(t, strict, "tcp, profile strict", [
        ("query testing.test",
         "level=secure mode=testing mx=mx1.testing.test match=mx1.testing.test"),
        ("query none.test", "level=none mode=none"),
        ("query enforce.test", ENFORCE),
        ("mxcheck testing.test mx1.testing.test", ""),
        ("mxcheck testing.test elsewhere.test",
         NOT_ALLOWED.format(h="elsewhere.test", d="testing.test")),
    ])

    unix = eximlib.Exim(os.path.join(base, "unix"), cache, users, sock)
    check_answers(t, unix, "unix socket", [
        ("query enforce.test", ENFORCE),
        ("query dane-signed.test", "level=dane-only"),
        ("mxcheck enforce.test b.c.pool.enforce.test",
         NOT_ALLOWED.format(h="b.c.pool.enforce.test", d="enforce.test")),
    ])

    # The contrib macros themselves when nothing answers. ($domain and $host are empty
    # in -be, which does not matter: the request never gets anywhere.)
    for label, spec in (("down (tcp)", f"inet:127.0.0.1:{PORT_DEAD}"),
                        ("down (unix)", os.path.join(base, "no-such.sock"))):
        dead = eximlib.Exim(os.path.join(base, "dead-" + label[6:10]), cache, users, spec)
        try:
            got = dead.expand(["[STRICTMX_QUERY]", "[STRICTMX_MXCHECK]"])
        except Exception as e:  # noqa: BLE001
            t.ok(False, f"{label}: exim -be ran", str(e))
            continue
        t.eq(got[0], f'[level=tempfail reason="no answer from strictmx-policyd at {spec}"]',
             f"{label}: STRICTMX_QUERY -> {got[0]}")
        t.eq(got[1], f"[no answer from strictmx-policyd at {spec}]",
             f"{label}: STRICTMX_MXCHECK -> {got[1]} (non-empty: vetoes the host)")
        for address in ("user@deliver-ok.test", "user@nopolicy.test"):
            check_route(t, dead, address,
                        deferred=re.escape(f"no answer from strictmx-policyd at {spec}"))

    # The ACL behind the transport's event_action: empty lets the connection go ahead,
    # anything else is returned (a veto). (Its log line: t_exim_delivery.py; exim -be
    # writes no log.)
    got = inet.expand(["[${acl{strictmx_mxcheck}{}}]", "[${acl{strictmx_mxcheck}{not allowed}}]"])
    t.eq(got, ["[]", "[not allowed]"], f"ACL strictmx_mxcheck: '' -> {got[0]}, reason -> {got[1]}")

    # Routing with the contrib routers.
    check_route(t, inet, "user@deliver-ok.test", "strictmx_sts", "strictmx_sts_smtp",
                hosts=["mx.deliver-ok.test"])
    check_route(t, inet, "user@enforce.test", "strictmx_sts", "strictmx_sts_smtp",
                hosts=["mx1.enforce.test"])
    check_route(t, inet, "user@dane-signed.test", "strictmx_dane", "strictmx_dane_smtp",
                hosts=["mx.dane-signed.test"])
    check_route(t, inet, "user@dane-partial.test", "strictmx_dane", "strictmx_dane_smtp",
                hosts=["mx.dane-partial.test", "mx2.dane-partial.test"])
    check_route(t, inet, "user@dane-sts.test", "strictmx_dane", "strictmx_dane_smtp")
    check_route(t, inet, "user@testing.test", "dnslookup", "remote_smtp")
    check_route(t, strict, "user@testing.test", "strictmx_sts", "strictmx_sts_smtp",
                hosts=["mx1.testing.test"])
    check_route(t, inet, "user@none.test", "dnslookup", "remote_smtp")
    check_route(t, inet, "user@nopolicy.test", "dnslookup", "remote_smtp")
    check_route(t, inet, "user@deliver-plain.test", "dnslookup", "remote_smtp")
    for d in ("dane-expired.test", "dane-tampered.test", "sts-bogus.test"):
        check_route(t, inet, f"user@{d}",
                    deferred=rf"MTA-STS/DANE policy of {re.escape(d)} unknown: DNS lookup of ")
    # A static override asking for "secure" for a domain without any DNS: the MTA-STS
    # routers take it, find no MX host, and defer rather than fall through.
    check_route(t, inet, "user@override.test",
                deferred=r"no MX host of override\.test is usable under its MTA-STS policy")

    for exim in (inet, strict, unix):
        t.eq(exim.panics(), [], f"no Exim panic log lines ({os.path.basename(exim.dir)})")


if __name__ == "__main__":
    main()
