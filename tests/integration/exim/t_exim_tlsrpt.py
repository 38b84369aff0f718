#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""TLSRPT outcomes that strictmx-policyd records itself (RFC 8460): Exim's delivery events
through the exim listener's `tlsrpt` verb (contrib/exim with STRICTMX_TLSRPT), and the
daemon's own policy failures answered to an MTA that does not report them. A daemon of this
test's own (Exim listener on 8478, socketmap on 8479, a [tlsrpt] store), a private Exim
whose configuration includes contrib/exim, the test internet's sinks; then
`strictmx tlsrpt send --day TODAY --dry-run DIR` and an independent RFC 8460 check of every
report:

  deliver-ok.test          MTA-STS enforce, sent: sts, 1 successful session
  deliver-badcert.test     enforce, certificate for another name: sts, 1 failed session,
                           certificate-host-mismatch or -not-trusted, receiving-ip
                           127.0.0.11 (Exim's msg:host:defer text classified)
  deliver-nostarttls.test  enforce, no STARTTLS: sts, starttls-not-supported
  dane-signed.test         DANE, sent: tlsa with the MX host as policy domain and its
                           TLSA record as policy string, 1 success
  dane-mismatch.test       DANE, the TLSA record is another host's key: tlsa, a failed
                           session with the result type of Exim's dane:fail event
  notfound.test            MTA-STS TXT but the policy is 404: asked through the exim
                           listener and through socketmap map "postfix" (each records one
                           sts-policy-fetch-error session), and through "postfix-tlsrpt"
                           (Postfix >= 3.10 reports itself: nothing recorded)
Repeats of one event for the same message, host and result count once; malformed verbs are
refused with the reason.

Usage: t_exim_tlsrpt.py WORKDIR EXIM_CACHE
"""

import datetime
import glob
import gzip
import json
import os
import re
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eximlib  # noqa: E402
from eximlib import itlib  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "lib"))
import tlsrpt_tools as tt  # noqa: E402

PORT = 8478       # strictmx-policyd, Exim listener
SOCKETMAP = 8479  # and socketmap
SUBMITTER = "sender.test"


def ask(port, line, timeout=20):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(line.encode() + b"\n")
        s.shutdown(socket.SHUT_WR)
        data = b""
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            data += chunk
    return data.decode(errors="replace").strip()


def main():
    w, cache = eximlib.args()
    t = itlib.Checks("exim_tlsrpt")
    base = os.path.join(w, "exim-tlsrpt")
    subprocess.run(["rm", "-rf", base])
    tl = os.path.join(base, "tlsrpt")
    os.makedirs(tl)
    users = eximlib.Users(os.path.join(base, "etc"))
    daemon = eximlib.Policyd(
        w, os.path.join(base, "policyd"),
        [{"type": "exim", "address": f"inet:127.0.0.1:{PORT}"},
         {"type": "socketmap", "address": f"inet:127.0.0.1:{SOCKETMAP}"}],
        extra={"tlsrpt": {"socket": os.path.join(tl, "tlsrpt.sock"),
                          "db": os.path.join(tl, "tlsrpt.db"),
                          "spool_dir": os.path.join(tl, "spool"),
                          "organization_name": "Exim Test Org",
                          "contact_info": "tlsrpt@" + SUBMITTER,
                          "sender_address": "noreply@" + SUBMITTER,
                          "commit_interval_ms": 100}})
    try:
        daemon.start()
    except Exception as e:  # noqa: BLE001
        t.ok(False, "strictmx-policyd with [tlsrpt] starts", str(e))
        t.done()
    try:
        run(t, w, cache, base, users, daemon, tl)
    finally:
        daemon.stop()
    if t.failed:
        print("----- strictmx-policyd log (last lines)\n" + daemon.tail(30))
    t.done()


def run(t, w, cache, base, users, daemon, tl):
    tag = f"{int(time.time())}{os.getpid()}"
    exim = eximlib.Exim(os.path.join(base, "exim"), cache, users, f"inet:127.0.0.1:{PORT}",
                        extra_macros=[("STRICTMX_TLSRPT", "yes")])
    exim.set_ca(os.path.join(w, "ca.pem"))

    def send(case, domain, pattern):
        rcpt = f"{case}-{tag}@{domain}"
        lines = exim.send(rcpt, f"{case} {tag}")
        t.ok(any(re.search(pattern.replace("RCPT", re.escape(rcpt)), x) for x in lines),
             f"{case}: Exim's log for {domain}", "\n       ".join(lines))

    send("ok", "deliver-ok.test", r"=> RCPT R=strictmx_sts T=strictmx_sts_smtp")
    send("badcert", "deliver-badcert.test", r"== RCPT R=strictmx_sts T=strictmx_sts_smtp defer")
    send("nostarttls", "deliver-nostarttls.test", r"== RCPT R=strictmx_sts T=strictmx_sts_smtp defer")
    send("dane", "dane-signed.test", r"=> RCPT R=strictmx_dane T=strictmx_dane_smtp .*CV=dane")
    send("danefail", "dane-mismatch.test", r"== RCPT R=strictmx_dane T=strictmx_dane_smtp defer")

    # The verb itself: refusals name the problem; a repeat of one event counts once.
    t.eq(ask(PORT, "tlsrpt success"), "expected: tlsrpt RESULT MSGID DOMAIN MXHOST IP [TEXT]",
         "tlsrpt verb: too few words")
    t.ok(ask(PORT, "tlsrpt no-such-type X1 deliver-ok.test - -").startswith(
        "unknown result type"), "tlsrpt verb: unknown result type refused")
    t.ok(ask(PORT, "tlsrpt success X1 not_a_domain - -").startswith("not a domain name"),
         "tlsrpt verb: a domain that is not one refused")
    t.ok(ask(PORT, "tlsrpt success X1 deliver-ok.test mx.deliver-ok.test 999.1.1.1").startswith(
        "not an IP address"), "tlsrpt verb: a bad IP refused")
    t.eq(ask(PORT, "tlsrpt defer X1 deliver-ok.test mx.deliver-ok.test 127.0.0.10 "
                   "Connection refused"), "ignored: not a TLS failure",
         "tlsrpt verb: a deferral that is not about TLS is not counted")
    for _ in range(3):
        t.eq(ask(PORT, f"tlsrpt success R{tag} deliver-ok.test mx.deliver-ok.test 127.0.0.10"),
             "ok", "tlsrpt verb: a success accepted (sent three times, counted once)")

    # Hostile text from a remote server inside Exim's error string: escaped, never a new
    # member or a broken report (check_mail below parses every report strictly).
    hostile = 'x"},{"result-type":"evil", = : , { } \x01\x7f\u00e9\u00ff end'
    t.eq(ask(PORT, f"tlsrpt validation-failure H{tag} dane-mismatch.test "
                   f"mx.dane-mismatch.test 127.0.0.13 {hostile}"), "ok",
         "tlsrpt verb: a failure with hostile text accepted")

    # The daemon's own policy failures: notfound.test's policy is 404 (nothing cached).
    r = ask(PORT, "query notfound.test")
    t.ok(r.startswith("level=none"), "exim query notfound.test: level=none", r)
    for name in ("postfix", "postfix-tlsrpt"):
        payload = f"{name} notfound.test".encode()
        with socket.create_connection(("127.0.0.1", SOCKETMAP), timeout=20) as s:
            s.sendall(str(len(payload)).encode() + b":" + payload + b",")
            got = s.recv(1000).decode(errors="replace")
        t.ok("NOTFOUND" in got, f"socketmap {name} notfound.test: NOTFOUND", got)

    # Give the collector a commit (100 ms) and the record lookups time, then build the day.
    time.sleep(2.0)
    day = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d")
    dry = os.path.join(tl, "dry-run")
    os.makedirs(dry, exist_ok=True)
    cli = itlib.cli_path(w)
    p = subprocess.run([cli, "--config", daemon.conf, "tlsrpt", "send", "--day", day,
                        "--dry-run", dry], capture_output=True, text=True, timeout=120)
    with open(os.path.join(tl, "cli.log"), "a") as f:
        f.write(p.stdout + p.stderr)
    t.eq(p.returncode, 0, "strictmx tlsrpt send --dry-run: exit 0" +
         ("" if p.returncode == 0 else f" ({(p.stdout + p.stderr)[-400:]!r})"))
    reports = {}
    for eml in sorted(glob.glob(os.path.join(dry, "*.eml"))):
        name = os.path.basename(eml)
        domain = name.split("!")[1]
        with open(eml, "rb") as f:
            probs, rep, _ = tt.check_mail(f.read(), report_domain=domain, submitter=SUBMITTER,
                                          day=day, to="tlsrpt@reports.test")
        t.eq(probs, [], f"{name}: an RFC 8460 report mail")
        reports[domain] = rep
    t.eq(sorted(reports), sorted(["dane-mismatch.test", "dane-signed.test",
                                  "deliver-badcert.test", "deliver-nostarttls.test",
                                  "deliver-ok.test", "notfound.test"]),
         "one report per domain with a TLSRPT record and outcomes")

    def policies(domain):
        rep = reports.get(domain) or {}
        return rep.get("policies", [])

    def one(domain, ptype):
        ps = [p for p in policies(domain) if p["policy"]["policy-type"] == ptype]
        t.ok(len(ps) == 1, f"{domain}: one {ptype} policy", json.dumps(policies(domain))[:600])
        return ps[0] if ps else {"policy": {}, "summary": {}}

    ok = one("deliver-ok.test", "sts")
    t.eq((ok["summary"].get("total-successful-session-count"),
          ok["summary"].get("total-failure-session-count")), (2, 0),
         "deliver-ok.test: 2 successes (Exim's delivery and the verb's, repeats counted once)")
    t.ok("mode: enforce" in ok["policy"].get("policy-string", []),
         "deliver-ok.test: the policy's lines as policy-string", str(ok["policy"]))
    t.eq(ok["policy"].get("mx-host"), ["mx.deliver-ok.test"], "deliver-ok.test: mx-host")

    bad = one("deliver-badcert.test", "sts")
    t.eq(bad["summary"].get("total-failure-session-count"), 1, "deliver-badcert.test: 1 failure")
    fd = bad.get("failure-details", [{}])
    t.ok(fd and fd[0].get("result-type") in ("certificate-host-mismatch", "certificate-not-trusted")
         and fd[0].get("receiving-ip") == "127.0.0.11"
         and fd[0].get("receiving-mx-hostname") == "mx.deliver-badcert.test",
         "deliver-badcert.test: a certificate failure at 127.0.0.11", json.dumps(fd))

    nst = one("deliver-nostarttls.test", "sts")
    fd = nst.get("failure-details", [{}])
    t.ok(fd and fd[0].get("result-type") == "starttls-not-supported",
         "deliver-nostarttls.test: starttls-not-supported", json.dumps(fd))

    dane = one("dane-signed.test", "tlsa")
    t.eq(dane["policy"].get("policy-domain"), "mx.dane-signed.test",
         "dane-signed.test: the policy domain is the MX host (TLSA base domain)")
    t.ok(any(s.startswith("3 1 1 ") for s in dane["policy"].get("policy-string", [])),
         "dane-signed.test: its TLSA record as policy-string", str(dane["policy"]))
    t.eq(dane["summary"].get("total-successful-session-count"), 1, "dane-signed.test: 1 success")

    df = one("dane-mismatch.test", "tlsa")
    fd = df.get("failure-details", [{}])
    adds = [x.get("additional-information", "") for x in fd]
    t.ok(any("result-type" in a for a in adds) and
         all(all(0x20 <= ord(ch) < 0x7f for ch in a) for a in adds) and
         all(x.get("result-type") != "evil" for x in fd),
         "dane-mismatch.test: hostile text kept as escaped additional-information only",
         json.dumps(fd)[:600])
    t.ok(df["summary"].get("total-failure-session-count", 0) >= 1 and fd and
         fd[0].get("result-type") in ("validation-failure", "tlsa-invalid", "dane-required"),
         "dane-mismatch.test: a DANE failure from Exim's dane:fail event", json.dumps(df))

    nf = one("notfound.test", "sts")
    fd = nf.get("failure-details", [{}])
    t.eq(nf["summary"].get("total-failure-session-count"), 2,
         "notfound.test: 2 failed sessions (exim listener, profile postfix; not postfix-tlsrpt)")
    t.ok(fd and fd[0].get("result-type") == "sts-policy-fetch-error",
         "notfound.test: sts-policy-fetch-error", json.dumps(fd))
    t.eq(nf["policy"].get("policy-domain"), "notfound.test", "notfound.test: policy domain")


if __name__ == "__main__":
    main()
