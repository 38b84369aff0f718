#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Stand-alone checks of the TLSRPT test tools (no daemon, no fixture): the datagram
encoder's self-check, check_report and check_mail on a report and a mail built here, valid
and broken in one way each (each broken one must be caught), sendmail_sink.py, and
https_sink.py driven by curl (500 first, then 200) with a throw-away CA.

Usage: test_tlsrpt_tools.py
"""

import base64
import gzip
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import itlib  # noqa: E402
import tlsrpt_tools as tt  # noqa: E402

DAY = "2026-03-01"
BEGIN = tt.day_start(DAY)
SUB = "sender.example"
DOM = "b.test"
RID = "20260301.b-test.1@sender.example"


def report():
    return {
        "organization-name": "Example Org",
        "date-range": {"start-datetime": f"{DAY}T00:00:00Z", "end-datetime": f"{DAY}T23:59:59Z"},
        "contact-info": "tlsrpt@sender.example",
        "report-id": RID,
        "policies": [{
            "policy": {"policy-type": "sts", "policy-string": ["version: STSv1", "mode: enforce"],
                       "policy-domain": DOM, "mx-host": ["*.mx.b.test"]},
            "summary": {"total-successful-session-count": 3, "total-failure-session-count": 1},
            "failure-details": [{"result-type": "certificate-expired", "sending-mta-ip": "192.0.2.1",
                                 "receiving-mx-hostname": "mx1.b.test", "receiving-ip": "192.0.2.9",
                                 "failed-session-count": 1}],
        }],
    }


def mail(rep=None, *, subject_id=f"<{RID}>", report_type='"tlsrpt"', tls_required="No",
         nl="\r\n", filename=None, first_type="text/plain", long_line=False):
    js = json.dumps(report() if rep is None else rep).encode() if not isinstance(rep, bytes) else rep
    b64 = base64.encodebytes(gzip.compress(js)).decode().replace("\n", nl)
    fname = filename or f"{SUB}!{DOM}!{BEGIN}!{BEGIN + 86399}!1a2b.json.gz"
    hdr = [f"From: noreply@{SUB}", "To: rua@b.test", "Date: Sun, 01 Mar 2026 00:10:00 +0000",
           f"Message-ID: <x1.{BEGIN}@{SUB}>",
           f"Subject: Report Domain: {DOM} Submitter: {SUB} Report-ID: {subject_id}",
           f"TLS-Report-Domain: {DOM}", f"TLS-Report-Submitter: {SUB}"]
    if tls_required is not None:
        hdr.append(f"TLS-Required: {tls_required}")
    hdr += ["Auto-Submitted: auto-generated", "MIME-Version: 1.0",
            f"Content-Type: multipart/report; report-type={report_type};", ' boundary="BND"']
    text = "This is an aggregate TLS report." + ("x" * 1200 if long_line else "")
    body = ["", "--BND", f"Content-Type: {first_type}; charset=us-ascii", "", text, "",
            "--BND", "Content-Type: application/tlsrpt+gzip",
            "Content-Transfer-Encoding: base64",
            f'Content-Disposition: attachment; filename="{fname}"', "", b64.rstrip(nl), "--BND--", ""]
    return nl.join(hdr + body).encode()


def main():
    t = itlib.Checks("tlsrpt_tools")
    p = subprocess.run([sys.executable, os.path.join(HERE, "tlsrpt_tools.py"), "--selftest"],
                       capture_output=True, text=True)
    t.eq(p.returncode, 0, "datagram encoder self-check" + ("" if not p.returncode else p.stdout))

    # --- check_report -------------------------------------------------------------------
    t.eq(tt.check_report(json.dumps(report()).encode(), day=DAY, submitter=SUB,
                         policy_domain=DOM), [], "valid report: no problems")
    bad = {}
    r = report(); r["date-range"]["end-datetime"] = f"{DAY}T23:59:58Z"; bad["end-datetime wrong"] = r
    r = report(); r["date-range"]["start-datetime"] = "2026-02-28T00:00:00Z"; bad["start on another day"] = r
    r = report(); r["policies"][0]["policy"]["mx-host"] = "*.mx.b.test"; bad["mx-host a string (erratum 6241)"] = r
    r = report(); r["policies"][0]["policy"]["policy-type"] = "dane"; bad["policy-type dane"] = r
    r = report(); r["policies"][0]["summary"]["total-failure-session-count"] = -1; bad["negative count"] = r
    r = report(); r["policies"][0]["summary"]["total-successful-session-count"] = 1.5; bad["float count"] = r
    r = report(); r["policies"][0]["failure-details"][0]["failed-session-count"] = 0; bad["failed-session-count 0"] = r
    r = report(); r["policies"][0]["failure-details"][0]["result-type"] = "tls-failure"; bad["unknown result-type"] = r
    r = report(); r["policies"][0]["failure-details"][0]["receiving-ip"] = 5; bad["receiving-ip a number"] = r
    r = report(); del r["contact-info"]; bad["no contact-info"] = r
    r = report(); r["report-id"] = 7; bad["report-id a number"] = r
    r = report(); r["policies"] = []; bad["no policies"] = r
    r = report(); del r["policies"][0]["policy"]["policy-string"]; bad["no policy-string"] = r
    r = report(); r["policies"][0]["policy"]["policy-domain"] = "other.test"; bad["wrong policy-domain"] = r
    names = {"end-datetime wrong": "end-datetime", "start on another day": "start-datetime",
             "mx-host a string (erratum 6241)": "mx-host", "policy-type dane": "policy-type",
             "negative count": "total-failure-session-count",
             "float count": "total-successful-session-count",
             "failed-session-count 0": "failed-session-count",
             "unknown result-type": "result-type", "receiving-ip a number": "receiving-ip",
             "no contact-info": "contact-info", "report-id a number": "report-id",
             "no policies": "policies", "no policy-string": "policy-string",
             "wrong policy-domain": "policy-domain"}
    for what, r in bad.items():
        probs = tt.check_report(r, day=DAY, submitter=SUB, policy_domain=DOM)
        t.ok(len(probs) == 1 and names[what] in probs[0], f"report with {what}: caught",
             f"want one problem naming {names[what]!r}, got {probs!r}")
    good = json.dumps(report())
    raw_bad = {
        "duplicate key": good.replace('"contact-info"', '"report-id": "a@b", "contact-info"', 1).encode(),
        "invalid UTF-8": good.replace("Example Org", "Example \udcff Org").encode("utf-8", "surrogateescape"),
        "integer beyond 2**53-1": good.replace('"total-successful-session-count": 3',
                                               '"total-successful-session-count": 9007199254740992').encode(),
        "NaN": good.replace('"total-successful-session-count": 3', '"total-successful-session-count": NaN').encode(),
        "lone surrogate escape": good.replace("Example Org", "Example \\ud800 Org").encode(),
        "not JSON": b"{" + good.encode(),
    }
    says = {"duplicate key": "duplicate key", "invalid UTF-8": "UTF-8",
            "integer beyond 2**53-1": "2**53-1", "NaN": "NaN", "lone surrogate escape": "surrogate",
            "not JSON": "not I-JSON"}
    for what, data in raw_bad.items():
        probs = tt.check_report(data, day=DAY)
        t.ok(probs and says[what] in probs[0], f"report JSON with {what}: caught",
             f"want a problem saying {says[what]!r}, got {probs!r}")

    # --- check_mail ---------------------------------------------------------------------------
    probs, rep, fname = tt.check_mail(mail(), report_domain=DOM, submitter=SUB, to="rua@b.test")
    t.eq(probs, [], "valid mail (CRLF): no problems")
    t.eq(rep and rep.get("report-id"), RID, "valid mail: report decoded")
    t.eq(fname, f"{SUB}!{DOM}!{BEGIN}!{BEGIN + 86399}!1a2b.json.gz", "valid mail: file name")
    probs, _, _ = tt.check_mail(mail(nl="\n", report_type="tlsrpt",
                                     filename=f"{SUB}!{DOM}!{BEGIN}!{BEGIN + 86400}!9.json.gz"),
                                report_domain=DOM, submitter=SUB, day=DAY)
    t.eq(probs, [], "valid mail (LF, unquoted report-type, end = next midnight): no problems")
    r = report(); r["date-range"]["end-datetime"] = f"{DAY}T00:00:00Z"
    broken = {
        "':' in the Report-ID": dict(subject_id="<x:1@sender.example>"),
        "Report-ID without brackets": dict(subject_id=RID),
        "Report-ID other than report-id": dict(subject_id="<other@sender.example>"),
        "no TLS-Required": dict(tls_required=None),
        "TLS-Required: Yes": dict(tls_required="Yes"),
        "report-type=disposition-notification": dict(report_type="disposition-notification"),
        "end-datetime wrong": dict(rep=r),
        "file name without unique id": dict(filename=f"{SUB}!{DOM}!{BEGIN}!{BEGIN + 86399}.json.gz"),
        "file name begin not midnight": dict(filename=f"{SUB}!{DOM}!{BEGIN + 1}!{BEGIN + 86399}!1.json.gz"),
        "file name end a week later": dict(filename=f"{SUB}!{DOM}!{BEGIN}!{BEGIN + 7 * 86400}!1.json.gz"),
        "file name of another domain": dict(filename=f"{SUB}!a.test!{BEGIN}!{BEGIN + 86399}!1.json.gz"),
        "first part text/html": dict(first_type="text/html"),
        "a line over 998 octets": dict(long_line=True),
    }
    # What the (first) problem must say: the checker fails for the reason given.
    says = {"':' in the Report-ID": "not a msg-id", "Report-ID without brackets": "not a msg-id",
            "Report-ID other than report-id": "differs from the Subject",
            "no TLS-Required": "TLS-Required", "TLS-Required: Yes": "TLS-Required",
            "report-type=disposition-notification": "report-type",
            "end-datetime wrong": "end-datetime", "file name without unique id": "file name",
            "file name begin not midnight": "start of a UTC day",
            "file name end a week later": "file name end",
            "file name of another domain": "file name policy domain",
            "first part text/html": "first part", "a line over 998 octets": "> 998"}
    for what, kw in broken.items():
        probs, _, _ = tt.check_mail(mail(**kw), report_domain=DOM, submitter=SUB)
        t.ok(probs and says[what] in probs[0], f"mail with {what}: caught",
             f"want a problem saying {says[what]!r}, got {probs!r}")
    m = mail()
    variants = {
        "mixed line endings": m.replace(b"TLS-Report-Domain: b.test\r\n", b"TLS-Report-Domain: b.test\n"),
        "no Auto-Submitted": m.replace(b"Auto-Submitted: auto-generated\r\n", b""),
        "no Date": m.replace(b"Date: Sun, 01 Mar 2026 00:10:00 +0000\r\n", b""),
        "two To": m.replace(b"To: rua@b.test\r\n", b"To: rua@b.test\r\nTo: x@b.test\r\n"),
        "wrong TLS-Report-Submitter": m.replace(b"TLS-Report-Submitter: sender.example",
                                                b"TLS-Report-Submitter: other.example"),
        "report part not gzip": m.replace(b"Content-Type: application/tlsrpt+gzip",
                                          b"Content-Type: application/tlsrpt+json"),
        "Message-ID with ':'": m.replace(b"Message-ID: <x1.", b"Message-ID: <x:1."),
    }
    says = {"mixed line endings": "mixed line endings", "no Auto-Submitted": "Auto-Submitted",
            "no Date": "Date", "two To": "To", "wrong TLS-Report-Submitter": "TLS-Report-Submitter",
            "report part not gzip": "application/tlsrpt+gzip", "Message-ID with ':'": "Message-ID"}
    for what, data in variants.items():
        probs, _, _ = tt.check_mail(data, report_domain=DOM, submitter=SUB, to="rua@b.test")
        t.ok(probs and says[what] in probs[0], f"mail with {what}: caught",
             f"want a problem saying {says[what]!r}, got {probs!r}")
    probs, _, _ = tt.check_mail(m, report_domain=DOM, submitter=SUB, to="tls+rpt@b.test")
    t.ok(probs, "mail to another address than expected: caught")

    tmp = tempfile.mkdtemp(prefix="tlsrpt-tools.")
    try:
        # --- sendmail_sink.py -------------------------------------------------------------
        sink = [sys.executable, os.path.join(HERE, "sendmail_sink.py"), os.path.join(tmp, "mail"), "-i", "-t"]
        p = subprocess.run(sink, input=m)
        t.eq(p.returncode, 0, "sendmail_sink: exit 0")
        with open(os.path.join(tmp, "mail", "0001.eml"), "rb") as f:
            t.eq(f.read(), m, "sendmail_sink: message stored as 0001.eml byte for byte")
        open(os.path.join(tmp, "mail", "FAIL"), "w").close()
        p = subprocess.run(sink, input=m, capture_output=True)
        t.eq(p.returncode, 75, "sendmail_sink with DIR/FAIL: exit 75")
        t.eq(sorted(x for x in os.listdir(os.path.join(tmp, "mail")) if x.endswith(".eml")),
             ["0001.eml"], "sendmail_sink with DIR/FAIL: nothing written")

        # --- https_sink.py with curl --------------------------------------------------------
        env = dict(os.environ, OPENSSL_CONF=os.path.join(HERE, "..", "testnet", "openssl.cnf"),
                   SAN="unused", CADB=tmp)
        os.makedirs(os.path.join(tmp, "pki"))
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                        "-nodes", "-keyout", os.path.join(tmp, "pki", "ca.key"), "-out",
                        os.path.join(tmp, "ca.pem"), "-subj", "/CN=tlsrpt tools test CA", "-days", "1",
                        "-extensions", "v3_ca"], env=env, check=True, capture_output=True)
        cert, key = tt.make_leaf(tmp, os.path.join(tmp, "leaf"), "reports.test")
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        hdir = os.path.join(tmp, "https")
        srv = subprocess.Popen([sys.executable, os.path.join(HERE, "https_sink.py"), "--port", str(port),
                                "--cert", cert, "--key", key, "--dir", hdir],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            itlib.wait_for(lambda: os.path.exists(os.path.join(hdir, "")) and _connects(port), 10)
            body = os.path.join(tmp, "body.gz")
            with open(body, "wb") as f:
                f.write(gzip.compress(json.dumps(report()).encode()))

            def curl(ctype="application/tlsrpt+gzip", path="/tlsrpt"):
                p = subprocess.run(["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}",
                                    "--cacert", os.path.join(tmp, "ca.pem"),
                                    "--connect-to", f"reports.test:443:127.0.0.1:{port}",
                                    "-H", f"Content-Type: {ctype}", "--data-binary", "@" + body,
                                    f"https://reports.test{path}"], capture_output=True, text=True)
                return p.stdout
            t.eq(curl(), "500", "https_sink: first POST to /tlsrpt gets 500")
            t.eq(curl(), "200", "https_sink: second POST to /tlsrpt gets 200")
            t.eq(curl(path="/other"), "500", "https_sink: first POST to /other gets 500")
            t.eq(curl(ctype="application/json"), "415", "https_sink: wrong Content-Type gets 415")
            stored = sorted(x for x in os.listdir(hdir) if x.endswith(".body"))
            t.eq(stored, ["0001.body"], "https_sink: one body stored")
            with open(os.path.join(hdir, "0001.json")) as f:
                meta = json.load(f)
            t.eq(meta["content_type"], "application/tlsrpt+gzip", "https_sink: Content-Type recorded")
            with open(os.path.join(hdir, "0001.body"), "rb") as f:
                t.eq(tt.check_report(gzip.decompress(f.read()), day=DAY, submitter=SUB), [],
                     "https_sink: stored body is the report")
        finally:
            srv.terminate()
            srv.wait(10)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    t.done()


def _connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        time.sleep(0.05)
        return False


if __name__ == "__main__":
    main()
