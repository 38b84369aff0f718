#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Partial DANE under an MTA-STS enforce policy (RFC 8461 section 2, RFC 7672 section
2.2). Each domain is signed, has two MX hosts, mx with a usable TLSA record and mx2
without any, and an enforce policy "mx: *.D" that covers both:

  dane-partial-sts.test      mx: nothing listens (blocked); mx2: the plain sink
  dane-partial-sts-tls.test  mx: nothing listens (blocked); mx2: the STARTTLS sink "good"
  dane-partial-sts-ok.test   mx: the dane sink (its key is in the TLSA record)

The answer must be dane-only in every profile and over every transport: a plain
"dane" lets Postfix reach mx2 with opportunistic TLS (or none), which an attacker who
blocks mx gets for free although the domain says "mode: enforce". Then real mail
through the private Postfix, whose smtp_tls_policy_maps is the daemon's socketmap:
  - the two blocked domains stay deferred, and nothing reaches mx2's sink, in clear
    or over TLS;
  - dane-partial-sts-ok.test is delivered to mx with DANE-verified TLS.

Usage: t_partial_dane.py WORKDIR
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

DOMAINS = ("dane-partial-sts.test", "dane-partial-sts-tls.test", "dane-partial-sts-ok.test")
POLICY_MAPS = "socketmap:inet:127.0.0.1:8461:postfix"


def wire(profile, via, key):
    try:
        if via == "socketmap":
            return itlib.socketmap_query(key, name=profile)
        code, text = itlib.tcp_query(key, address=itlib.TCP_TABLE_PROFILES[profile])
    except (OSError, ValueError) as e:
        return f"({type(e).__name__}: {e})"
    return {"200": f"OK {text}", "500": "NOTFOUND ", "400": f"TEMP {text}"}.get(
        code, f"?{code} {text}")


def delivery(t, w):
    conf = os.path.join(w, "postfix", "etc")
    maillog = os.path.join(w, "postfix", "maillog")
    policyd_log = os.path.join(w, "policyd.log")
    env = dict(os.environ, MAIL_CONFIG=conf)

    if not t.ok(subprocess.run(["postfix", "-c", conf, "status"],
                               capture_output=True).returncode == 0, "private Postfix runs"):
        return
    maps = subprocess.run(["postconf", "-c", conf, "-h", "smtp_tls_policy_maps"],
                          capture_output=True, text=True).stdout.strip()
    t.eq(maps, POLICY_MAPS, "Postfix takes its TLS policy from the daemon")
    level = subprocess.run(["postconf", "-c", conf, "-h", "smtp_dns_support_level"],
                           capture_output=True, text=True).stdout.strip()
    t.eq(level, "dnssec", "Postfix does DNSSEC lookups (needed for DANE)")

    tag = f"t{int(time.time())}{os.getpid()}"
    rcpt = {d: f"partial-{tag}@{d}" for d in DOMAINS}
    offset = os.path.getsize(maillog)
    log_offset = os.path.getsize(policyd_log)
    for d, r in rcpt.items():
        msg = (f"From: sender@mta.test\nTo: {r}\nSubject: strictmx partial DANE {d} {tag}\n"
               f"\nThis message tests {d}.\n")
        p = subprocess.run(["sendmail", "-f", "sender@mta.test", r], input=msg, text=True,
                           env=env, capture_output=True)
        t.ok(p.returncode == 0, f"submitted to {r}", p.stderr)

    status = {}

    def log_text():
        with open(maillog, errors="replace") as f:
            f.seek(offset)
            return f.read()

    def all_reported():
        text = log_text()
        for d, r in rcpt.items():
            m = re.search(rf"to=<{re.escape(r)}>.*status=(\w+)", text)
            if m:
                status[d] = m.group(1)
        return len(status) == len(rcpt)

    deadline = time.monotonic() + 40
    while not all_reported() and time.monotonic() < deadline:
        subprocess.run(["postqueue", "-c", conf, "-f"], capture_output=True)
        itlib.wait_for(all_reported, 8, 0.2)
    text = log_text()
    with open(policyd_log, errors="replace") as f:
        f.seek(log_offset)
        asked = f.read()

    for d in DOMAINS:
        # Postfix asked the daemon about the domain while delivering (nothing else
        # asks before the wire checks below).
        t.ok(re.search(rf"decision domain={re.escape(d)} profile=postfix ", asked),
             f"{d}: Postfix asked strictmx-policyd during delivery")
        lines = [ln for ln in text.splitlines() if f"to=<{rcpt[d]}>" in ln]
        t.ok(not any("client TLS configuration problem" in ln for ln in lines),
             f"{d}: no policy lookup failure", f"{lines}")

    for d, sink in (("dane-partial-sts.test", "plain"), ("dane-partial-sts-tls.test", "good")):
        t.eq(status.get(d), "deferred", f"{d}: deferred (mx blocked, mx2 has no TLSA)")
        mx2 = f"mx2.{d}"
        t.ok(not re.search(rf"(Untrusted|Anonymous|Trusted|Verified) TLS connection "
                           rf"established to {re.escape(mx2)}\[", text),
             f"{d}: no TLS session with {mx2}")
        t.ok(not any(f"to=<{rcpt[d]}>" in ln and "status=sent" in ln
                     for ln in text.splitlines()), f"{d}: never sent")
        # Postfix skipped mx2 for want of TLSA records (what dane-only means there).
        t.ok(f"TLS policy lookup for {d}/{mx2}: no TLSA records found" in text,
             f"{d}: Postfix skipped {mx2}: no TLSA records found")
        got = sink_lines(w, sink, rcpt[d])
        t.eq(got, [], f"sink {sink} ({mx2}) received nothing for {d}")

    d = "dane-partial-sts-ok.test"
    t.eq(status.get(d), "sent", f"{d}: sent")
    t.ok(f"Verified TLS connection established to mx.{d}[127.0.0.13]:25" in text,
         f"{d}: Verified TLS to mx.{d} (DANE) in the maillog")
    got = sink_lines(w, "dane", rcpt[d])
    t.ok(len(got) == 1 and "\ttls=yes\t" in got[0], f"sink dane received {d} over TLS", f"{got}")
    t.eq(sink_lines(w, "plain", rcpt[d]), [], f"sink plain (mx2) received nothing for {d}")

    # Leave the queue as we found it: remove only this test's messages (the delivery
    # test may have mail of its own in the queue).
    ids = set()
    for ln in text.splitlines():
        m = re.search(r"\]: ([0-9A-F]{6,}): to=<partial-" + re.escape(tag), ln)
        if m:
            ids.add(m.group(1))
    for qid in ids:
        subprocess.run(["postsuper", "-c", conf, "-d", qid], capture_output=True)


def sink_lines(w, name, r):
    with open(os.path.join(w, "sinks", name, "messages.log")) as f:
        return [line for line in f if f"rcpt={r}" in line.rstrip("\n").split("\t")[-1]]


def main():
    w = itlib.workdir()
    t = itlib.Checks("partial_dane")
    delivery(t, w)
    for d in DOMAINS:
        for profile in itlib.PROFILES:
            for via in ("socketmap", "tcp_table"):
                t.eq(wire(profile, via, d), "OK dane-only", f"{d} [{profile}, {via}]: dane-only")
        for via, table in (("socketmap", POLICY_MAPS), ("tcp_table", "tcp:127.0.0.1:8462")):
            rc, out, err = itlib.postmap(w, d, table)
            t.ok(rc == 0 and out == "dane-only", f"{d} [postfix, postmap {via}]: dane-only",
                 f"rc={rc} out={out!r} err={err.strip()!r}")
    t.done()


if __name__ == "__main__":
    main()
