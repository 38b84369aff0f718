#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Mail through a private Exim whose configuration includes contrib/exim, to the SMTP
sinks of the test internet, with real MX lookups (the test internet's validating
resolver) and a strictmx-policyd of this test's own (Exim listener on 8473):

  deliver-ok.test          MTA-STS enforce, certificate matches -> sent, CV=yes, SNI
  deliver-badcert.test     enforce, certificate for another name -> deferred, nothing sent
  deliver-nostarttls.test  enforce, no STARTTLS -> deferred, nothing in clear
  deliver-plain.test       no policy, same plain sink -> sent in clear by the default
                           router (the control: the plain sink records clear mail)
  dane-signed.test         level=dane-only -> sent, CV=dane
  dane-partial.test        level=dane -> sent to the host with TLSA records, CV=dane
  dane-expired.test        bogus zone, level=tempfail -> deferred by the router

An attacker who spoofs MX records (a second resolver that lies to Exim only):
  deliver-badcert.test     first MX mx.deliver-ok.test, whose certificate is valid for
                           its own name: left out by the router, never contacted
  deliver-ok.test          first MX mx.deliver-badcert.test: left out; sent to the real
                           MX (which the previous case did not mark as failed)
  deliver-nostarttls.test  only a spoofed MX host: deferred by strictmx_sts_defer
  enforce.test             exim -bt keeps exactly the hosts the policy allows (RFC 8461:
                           "*." is one label; no substring or dot-as-wildcard matches)
The transport's event_action veto (the policy changed between routing and
connection: the daemon's answer reaches the router without its mx= field):
  deliver-ok.test          connection to the spoofed MX vetoed with the daemon's
                           reason in the main log, then sent to the real MX
The daemon down:
  deliver-ok.test, deliver-plain.test  deferred (nothing sent, not even in clear);
                           sent by a queue run once the daemon is back

Usage: t_exim_delivery.py WORKDIR EXIM_CACHE
"""

import os
import re
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eximlib  # noqa: E402
from eximlib import itlib  # noqa: E402

PORT = 8473          # strictmx-policyd, Exim listener, profile postfix
PORT_PROXY = 8474    # AnswerRewriter in front of it
LIAR = "127.0.0.4"   # the lying resolver

SPOOFED = [
    # deliver-ok.test: a real host of the test internet, outside the policy, first.
    "deliver-ok.test. 300 IN MX 5 mx.deliver-badcert.test.",
    "deliver-ok.test. 300 IN MX 10 mx.deliver-ok.test.",
    # deliver-badcert.test: first a host whose certificate is valid for its own name.
    "deliver-badcert.test. 300 IN MX 5 mx.deliver-ok.test.",
    "deliver-badcert.test. 300 IN MX 10 mx.deliver-badcert.test.",
    # deliver-nostarttls.test: nothing but a host outside the policy.
    "deliver-nostarttls.test. 300 IN MX 10 mx.deliver-ok.test.",
    # enforce.test (policy: mx1.enforce.test, *.pool.enforce.test), one address per
    # host: Exim drops MX hosts that repeat an address, as in the real zone.
    "enforce.test. 300 IN MX 10 mx1.enforce.test.",
    "enforce.test. 300 IN MX 20 a.pool.enforce.test.",
    "enforce.test. 300 IN MX 30 b.c.pool.enforce.test.",
    "enforce.test. 300 IN MX 40 pool.enforce.test.",
    "enforce.test. 300 IN MX 50 mx1.enforce.test.evil.test.",
    "enforce.test. 300 IN MX 60 xmx1.enforce.test.",
    "enforce.test. 300 IN MX 70 mx1xenforce.test.",
    "mx1.enforce.test. 300 IN A 127.0.0.21",
    "a.pool.enforce.test. 300 IN A 127.0.0.22",
    "b.c.pool.enforce.test. 300 IN A 127.0.0.23",
    "pool.enforce.test. 300 IN A 127.0.0.24",
    "mx1.enforce.test.evil.test. 300 IN A 127.0.0.25",
    "xmx1.enforce.test. 300 IN A 127.0.0.26",
    "mx1xenforce.test. 300 IN A 127.0.0.27",
]


class Run:
    def __init__(self, t, w):
        self.t = t
        self.w = w
        self.tag = f"{int(time.time())}{os.getpid()}"

    def rcpt(self, case, domain):
        return f"{case}-{self.tag}@{domain}"

    def sink_has(self, sink, rcpt, tls=None, sni=None):
        for line in eximlib.sink_messages(self.w, sink):
            f = dict(x.split("=", 1) for x in line.split("\t")[1:] if "=" in x)
            if rcpt in f.get("rcpt", "").split(","):
                return (tls is None or f.get("tls") == tls) and (sni is None or f.get("sni") == sni)
        return False

    def sent(self, exim, case, domain, sink, router, transport, host, cv, resolv=None,
             sni=None, tls="yes"):
        """Deliver one message; expect it delivered to HOST by ROUTER/TRANSPORT."""
        r = self.rcpt(case, domain)
        lines = exim.send(r, f"{case} {self.tag}", resolv=resolv)
        pat = (rf"=> {re.escape(r)} R={router} T={transport} H={re.escape(host)} "
               rf"\[[0-9.]+\]:25 .*" + (rf"CV={cv}\b" if cv else ""))
        hit = [line for line in lines if re.search(pat, line)]
        self.t.ok(bool(hit), f"{case}: {domain} delivered: {hit[0] if hit else '(no => line)'}",
                  "\n       ".join(lines))
        if sink:
            self.t.ok(self.sink_has(sink, r, tls=tls, sni=sni),
                      f"{case}: sink {sink} got it (tls={tls}" + (f", sni={sni})" if sni else ")"),
                      "\n       ".join(eximlib.sink_messages(self.w, sink)[-3:]))
        return lines

    def deferred(self, exim, case, domain, pattern, no_sinks=(), resolv=None):
        """Deliver one message; expect it deferred with a line matching PATTERN and no
        copy in any of NO_SINKS."""
        r = self.rcpt(case, domain)
        lines = exim.send(r, f"{case} {self.tag}", resolv=resolv)
        defer = [line for line in lines if f"== {r} " in line]
        hit = [line for line in defer if re.search(pattern, line)]
        self.t.ok(bool(hit) and not any(f"=> {r}" in line for line in lines),
                  f"{case}: {domain} deferred: {hit[0] if hit else '(no matching == line)'}",
                  "\n       ".join(lines))
        for sink in no_sinks:
            self.t.ok(not self.sink_has(sink, r), f"{case}: nothing reached sink {sink}")
        return lines


def main():
    w, cache = eximlib.args()
    t = itlib.Checks("exim_delivery")
    base = os.path.join(w, "exim-delivery")
    users = eximlib.Users(os.path.join(base, "etc"))
    daemon = eximlib.Policyd(w, os.path.join(base, "policyd"),
                             [{"type": "exim", "address": f"inet:127.0.0.1:{PORT}"}])
    liar = eximlib.LyingResolver(w, os.path.join(base, "liar"), LIAR, SPOOFED)
    proxy = None
    try:
        daemon.start()
        liar.start()
    except Exception as e:  # noqa: BLE001
        t.ok(False, "strictmx-policyd and the lying resolver start", str(e))
        daemon.stop()
        liar.stop()
        t.done()
    try:
        proxy = eximlib.AnswerRewriter(PORT_PROXY, ("127.0.0.1", PORT),
                                       lambda req, ans: re.sub(r" mx=\S*", "", ans))
        run(t, w, cache, base, users, daemon, liar, proxy)
    finally:
        if proxy:
            proxy.close()
        daemon.stop()
        liar.stop()
    if t.failed:
        print("----- strictmx-policyd log (last lines)\n" + daemon.tail(20))
    t.done()


def run(t, w, cache, base, users, daemon, liar, proxy):
    r = Run(t, w)

    def instance(name, spec):
        e = eximlib.Exim(os.path.join(base, name), cache, users, spec)
        e.set_ca(os.path.join(w, "ca.pem"))
        return e

    # --- MTA-STS and DANE with the test internet's DNS -----------------------------------
    tls = instance("tls", f"inet:127.0.0.1:{PORT}")
    r.sent(tls, "sts-ok", "deliver-ok.test", "good", "strictmx_sts", "strictmx_sts_smtp",
           "mx.deliver-ok.test", "yes", sni="mx.deliver-ok.test")
    r.deferred(tls, "sts-badcert", "deliver-badcert.test",
               r"R=strictmx_sts T=strictmx_sts_smtp defer \(-37\) H=mx\.deliver-badcert\.test "
               r"\[127\.0\.0\.11\].*certificate verification failed", no_sinks=["badcert"])
    r.deferred(tls, "sts-nostarttls", "deliver-nostarttls.test",
               r"R=strictmx_sts T=strictmx_sts_smtp defer \(-38\) .*is required, "
               r"but the server did not offer TLS support", no_sinks=["plain"])
    r.sent(tls, "control-plain", "deliver-plain.test", "plain", "dnslookup", "remote_smtp",
           "mx.deliver-plain.test", None, tls="no")
    r.sent(tls, "dane-only", "dane-signed.test", "dane", "strictmx_dane", "strictmx_dane_smtp",
           "mx.dane-signed.test", "dane")
    r.sent(tls, "dane", "dane-partial.test", "dane", "strictmx_dane", "strictmx_dane_smtp",
           "mx.dane-partial.test", "dane")
    r.deferred(tls, "tempfail", "dane-expired.test",
               r"R=strictmx_policy defer \(-1\): MTA-STS/DANE policy of dane-expired\.test "
               r"unknown: DNS lookup of dane-expired\.test MX failed: .*signature expired",
               no_sinks=["dane"])

    # --- an attacker spoofs MX records ---------------------------------------------------
    spoof = instance("spoof", f"inet:127.0.0.1:{PORT}")
    # First make sure that Exim does see the spoofed MX records.
    seen = spoof.expand(["${lookup dnsdb{>, mxh=deliver-badcert.test}}",
                         "${lookup dnsdb{>, mxh=deliver-ok.test}}"], resolv=liar.resolv)
    t.ok("mx.deliver-ok.test" in seen[0] and "mx.deliver-badcert.test" in seen[1],
         f"Exim sees the spoofed MX records: deliver-badcert.test -> {seen[0]}, "
         f"deliver-ok.test -> {seen[1]}")
    rc, out = spoof.route("user@enforce.test", resolv=liar.resolv)
    hosts = re.findall(r"host (\S+)\s+\[([0-9.]+)\]", out)
    t.eq(hosts, [("mx1.enforce.test", "127.0.0.21"), ("a.pool.enforce.test", "127.0.0.22")],
         "spoofed enforce.test MX set (7 hosts): exim -bt keeps mx1.enforce.test and "
         "a.pool.enforce.test only")
    lines = r.deferred(spoof, "spoof-validcert", "deliver-badcert.test",
                       r"R=strictmx_sts T=strictmx_sts_smtp defer \(-37\) "
                       r"H=mx\.deliver-badcert\.test", no_sinks=["good"], resolv=liar.resolv)
    t.ok(not any("mx.deliver-ok.test" in line for line in lines),
         "spoof-validcert: the spoofed MX mx.deliver-ok.test was never tried")
    lines = r.sent(spoof, "spoof-first", "deliver-ok.test", "good", "strictmx_sts",
                   "strictmx_sts_smtp", "mx.deliver-ok.test", "yes", resolv=liar.resolv,
                   sni="mx.deliver-ok.test")
    t.ok(not any("127.0.0.11" in line for line in lines),
         "spoof-first: the spoofed MX mx.deliver-badcert.test was never tried")
    r.deferred(spoof, "spoof-only", "deliver-nostarttls.test",
               r"R=strictmx_sts_defer defer \(-\d+\): no MX host of deliver-nostarttls\.test "
               r"is usable under its MTA-STS policy", no_sinks=["good", "plain"],
               resolv=liar.resolv)

    # --- the event_action veto ------------------------------------------------------------
    veto = instance("veto", f"inet:127.0.0.1:{PORT_PROXY}")
    lines = r.sent(veto, "veto", "deliver-ok.test", "good", "strictmx_sts", "strictmx_sts_smtp",
                   "mx.deliver-ok.test", "yes", resolv=liar.resolv)
    want = ("H=mx.deliver-badcert.test [127.0.0.11] not used for deliver-ok.test: MX host "
            "mx.deliver-badcert.test is not allowed by the MTA-STS policy of deliver-ok.test")
    hit = [line for line in lines if want in line]
    t.ok(bool(hit), f"veto: logged: {hit[0] if hit else '(no veto line)'}", "\n       ".join(lines))
    t.ok("mxcheck deliver-ok.test mx.deliver-badcert.test" in proxy.requests,
         "veto: Exim asked mxcheck before connecting", repr(proxy.requests))
    t.ok(not r.sink_has("badcert", r.rcpt("veto", "deliver-ok.test")),
         "veto: nothing reached sink badcert")

    # --- the daemon down --------------------------------------------------------------------
    down = instance("down", f"inet:127.0.0.1:{PORT}")
    daemon.stop()
    for case, domain, sink in (("down-sts", "deliver-ok.test", "good"),
                               ("down-nopolicy", "deliver-plain.test", "plain")):
        r.deferred(down, case, domain,
                   rf"R=strictmx_policy defer \(-1\): MTA-STS/DANE policy of {re.escape(domain)} "
                   rf"unknown: no answer from strictmx-policyd at inet:127\.0\.0\.1:{PORT}",
                   no_sinks=[sink])
    daemon.start()
    before = down.mainlog()
    p = down.run(["-qff"])
    new = down.mainlog()[len(before):]
    for case, domain, sink, cv in (("down-sts", "deliver-ok.test", "good", "CV=yes"),
                                   ("down-nopolicy", "deliver-plain.test", "plain", "")):
        rc = r.rcpt(case, domain)
        hit = [line for line in new.splitlines() if f"=> {rc} " in line and cv in line]
        t.ok(bool(hit) and r.sink_has(sink, rc),
             f"{case}: sent by a queue run once the daemon is back: {hit[0] if hit else '-'}",
             f"exim -qff exit {p.returncode} {p.stderr}\n{new}")

    for e in (tls, spoof, veto, down):
        t.eq(e.panics(), [], f"no Exim panic log lines ({os.path.basename(e.dir)})")


if __name__ == "__main__":
    main()
