#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Mail through the private Postfix, whose smtp_tls_policy_maps is
socketmap:inet:127.0.0.1:8461:postfix:
  deliver-ok.test          enforce, MX cert matches   -> sent, "Verified TLS", sink saw TLS
  deliver-badcert.test     enforce, MX cert wrong name -> deferred, sink got nothing
  deliver-nostarttls.test  enforce, MX without STARTTLS -> deferred, nothing in clear
  deliver-plain.test       no policy, same plain MX   -> sent in clear (the control:
                           it proves the plain sink records clear-text mail)
  dane-signed.test         dane-only, TLSA 3 1 1 matches -> sent, "Verified TLS"
  dane-tampered.test       bogus TLSA, the policy is TEMP -> deferred, sink got nothing
  dane-mismatch.test       dane-only, TLSA 3 1 1 of another key -> deferred, "no matching
                           DANE TLSA records", sink got nothing
  dane-cname.test          dane-only, MX host a CNAME, TLSA at the target -> sent, "Verified
                           TLS" (the original name has only an unusable record)
  dane-cname-orig.test     dane-only, MX host a CNAME, TLSA at the original name -> sent,
                           "Verified TLS"
  dane-implicit.test       dane-only, no MX, TLSA at the domain -> sent, "Verified TLS"
  dane-unusable.test       dane, only unusable TLSA -> sent over TLS without authentication

Usage: t_delivery.py WORKDIR
"""

import os
import re
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402


def main():
    w = itlib.workdir()
    t = itlib.Checks("delivery")
    conf = os.path.join(w, "postfix", "etc")
    maillog = os.path.join(w, "postfix", "maillog")
    env = dict(os.environ, MAIL_CONFIG=conf)

    if not t.ok(subprocess.run(["postfix", "-c", conf, "status"],
                               capture_output=True).returncode == 0, "private Postfix runs"):
        t.done()
    tag = f"t{int(time.time())}{os.getpid()}"
    rcpt = {d: f"{d.replace('-', '')}-{tag}@{d}.test"
            for d in ("deliver-ok", "deliver-badcert", "deliver-nostarttls", "deliver-plain",
                      "dane-signed", "dane-tampered", "dane-mismatch", "dane-cname",
                      "dane-cname-orig", "dane-implicit", "dane-unusable")}
    offset = os.path.getsize(maillog)
    for d, r in rcpt.items():
        msg = (f"From: sender@mta.test\nTo: {r}\nSubject: strictmx delivery test {d} {tag}\n"
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
        # A destination marked dead after a TLS failure is retried only on a flush.
        subprocess.run(["postqueue", "-c", conf, "-f"], capture_output=True)
        itlib.wait_for(all_reported, 8, 0.2)
    text = log_text()

    t.eq(status.get("deliver-ok"), "sent", "deliver-ok.test: sent")
    t.ok("Verified TLS connection established to mx.deliver-ok.test[127.0.0.10]:25" in text,
         "deliver-ok.test: Verified TLS in the maillog")
    t.eq(status.get("deliver-badcert"), "deferred", "deliver-badcert.test: deferred")
    t.eq(status.get("deliver-nostarttls"), "deferred", "deliver-nostarttls.test: deferred")
    t.eq(status.get("deliver-plain"), "sent", "deliver-plain.test (no policy): sent")
    t.eq(status.get("dane-signed"), "sent", "dane-signed.test: sent")
    t.ok("Verified TLS connection established to mx.dane-signed.test[127.0.0.13]:25" in text,
         "dane-signed.test: Verified TLS in the maillog")
    t.eq(status.get("dane-tampered"), "deferred", "dane-tampered.test: deferred")

    def rcpt_lines(d):
        return [ln for ln in text.splitlines() if f"to=<{rcpt[d]}>" in ln]

    # A usable TLSA record that matches no key of the server: the policy is
    # dane-only, and only Postfix can see the mismatch.
    t.eq(status.get("dane-mismatch"), "deferred", "dane-mismatch.test: deferred")
    t.ok(re.search(r"certificate verification failed for "
                   r"mx\.dane-mismatch\.test\[127\.0\.0\.13\]:25:.*no matching DANE TLSA records",
                   text),
         "dane-mismatch.test: maillog says no matching DANE TLSA records")
    t.ok(any("dsn=4.7.5" in ln and "Server certificate not verified" in ln
             for ln in rcpt_lines("dane-mismatch")),
         "dane-mismatch.test: deferred with 4.7.5 Server certificate not verified",
         f"{rcpt_lines('dane-mismatch')}")
    t.ok("Verified TLS connection established to mx.dane-mismatch.test" not in text,
         "dane-mismatch.test: no verified TLS connection")
    for d, host in (("dane-cname", "mx.dane-cname.test"),
                    ("dane-cname-orig", "mx.dane-cname-orig.test"),
                    ("dane-implicit", "dane-implicit.test")):
        t.eq(status.get(d), "sent", f"{d}.test: sent")
        t.ok(f"Verified TLS connection established to {host}[127.0.0.13]:25" in text,
             f"{d}.test: Verified TLS to {host} in the maillog")
    t.eq(status.get("dane-unusable"), "sent", "dane-unusable.test: sent")
    t.ok("mx.dane-unusable.test[127.0.0.13]:25: all TLSA records unusable, fallback to "
         "unauthenticated TLS" in text,
         "dane-unusable.test: Postfix finds every TLSA record unusable (as the daemon did)")
    for d in ("deliver-ok", "deliver-badcert", "deliver-nostarttls", "deliver-plain",
              "dane-signed", "dane-mismatch", "dane-cname", "dane-cname-orig", "dane-implicit",
              "dane-unusable"):
        lines = [ln for ln in text.splitlines() if f"to=<{rcpt[d]}>" in ln]
        t.ok(not any("client TLS configuration problem" in ln for ln in lines),
             f"{d}.test: no policy lookup failure (4.7.5 client TLS configuration problem)")

    def sink_lines(name, r):
        with open(os.path.join(w, "sinks", name, "messages.log")) as f:
            return [line for line in f if f"rcpt={r}" in line.rstrip("\n").split("\t")[-1]]

    got = sink_lines("good", rcpt["deliver-ok"])
    t.ok(len(got) == 1 and "\ttls=yes\t" in got[0] and "\tsni=mx.deliver-ok.test\t" in got[0],
         "sink good received deliver-ok mail over TLS with SNI mx.deliver-ok.test", f"{got}")
    got = sink_lines("badcert", rcpt["deliver-badcert"])
    t.eq(got, [], "sink badcert received nothing for deliver-badcert")
    got = sink_lines("plain", rcpt["deliver-nostarttls"])
    t.eq(got, [], "sink plain received nothing (in clear) for deliver-nostarttls")
    got = sink_lines("plain", rcpt["deliver-plain"])
    t.ok(len(got) == 1 and "\ttls=no\t" in got[0], "sink plain received deliver-plain in clear",
         f"{got}")
    got = sink_lines("dane", rcpt["dane-signed"])
    t.ok(len(got) == 1 and "\ttls=yes\t" in got[0], "sink dane received dane-signed over TLS",
         f"{got}")
    got = sink_lines("dane", rcpt["dane-tampered"])
    t.eq(got, [], "sink dane received nothing for dane-tampered")
    got = sink_lines("dane", rcpt["dane-mismatch"])
    t.eq(got, [], "sink dane received nothing for dane-mismatch")
    for d in ("dane-cname", "dane-cname-orig", "dane-implicit", "dane-unusable"):
        got = sink_lines("dane", rcpt[d])
        t.ok(len(got) == 1 and "\ttls=yes\t" in got[0], f"sink dane received {d} over TLS",
             f"{got}")

    # Leave an empty queue behind for later runs.
    subprocess.run(["postsuper", "-c", conf, "-d", "ALL"], capture_output=True)
    t.done()


if __name__ == "__main__":
    main()
