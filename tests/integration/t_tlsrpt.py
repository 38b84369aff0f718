#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""TLSRPT end to end (RFC 8460), against a daemon of its own: datagrams as libtlsrpt sends
them (Postfix >= 3.10 smtp_tlsrpt_enable) go to the collector's socket, well-formed and
malformed mixed; `strictmx tlsrpt send --day` builds the day's reports and delivers them by
mail (a sendmail stand-in that stores each message) and HTTPS (a sink that answers 500 to the
first POST and 200 later); `tlsrpt flush` retries the queued delivery; `tlsrpt stats` counts.

Expectations encoded here:
- Counting as sys4's collector does: each policy block of a datagram is one session for
  that policy (f=0 one successful, f=1 one failed); each failure-details entry adds one to
  failed-session-count of that exact detail. A policy is (type, domain, strings, mx-host);
  a policy without policy-domain (no-policy-found from Postfix 3.10.0-3.10.4) takes `d`.
- One report per (UTC day, d, pr); delivered to every supported rua of that record; a
  record with only unsupported URIs is delivered nowhere; an invalid record (v=TLSRPTv2,
  or no version) gives no report. Such datagrams are still well-formed: they are counted
  in datagrams_received and not in datagrams_invalid.
- datagrams_received counts every datagram read from the socket, well-formed or not;
  datagrams_invalid those rejected as malformed (not JSON, not an object, dpv other than
  "1", no d, no policies, invalid UTF-8, and a well-formed one of 70,000 bytes: above the
  collector's size limit, although libtlsrpt sets none and sys4's collector reads up to
  16 MiB). Nothing of a malformed datagram reaches a report.
- Failure code 206 is not sent: libtlsrpt 0.5.x defines none (201-205, 301-306), and RFC
  8460 has no twelfth result type for it to map to. A `t` that disagrees with the number of
  failure details is not sent either: the expectation would be a guess.

Usage: t_tlsrpt.py WORKDIR   (the CLI comes from WORKDIR/fixture.env, STRICTMX_CLI)
"""

import collections
import datetime
import email.parser
import email.policy
import email.utils
import gzip
import json
import os
import re
import shlex
import shutil
import socket
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402
import tlsrpt_tools as tt  # noqa: E402
from tlsrpt_tools import failure, policy, POLICY_NONE, POLICY_STS, POLICY_TLSA  # noqa: E402

PORT = 8474          # the daemon's socketmap listener (exim tests use it too: same lock)
HTTPS_PORT = 8477    # https_sink.py for reports.test
SUBMITTER = "sender.example"  # expected: the domain of tlsrpt.sender_address
HTTPS_URI = "https://reports.test/tlsrpt"

# Report groups: (d, pr) -> the destinations the report must reach, in rua order
# (index, "mailto" address after percent-decoding | "https" URI).
A1 = ("a.rpt.test", "v=TLSRPTv1; rua=mailto:a1@x.test")
A2 = ("a.rpt.test", "v=TLSRPTv1; ext=1; rua=mailto:a2@x.test")
B = ("b.rpt.test", f"v=TLSRPTv1 ;rua=mailto:b@x.test , {HTTPS_URI}")
C = ("c.rpt.test", "v=TLSRPTv1; rua=mailto:tls%2Brpt@x.test")
H = ("h.rpt.test", "v=TLSRPTv1; rua=mailto:h@x.test")
UNSUPPORTED = ("d.rpt.test", "v=TLSRPTv1; rua=ftp://x.test/tlsrpt,xmpp:d@x.test")
BAD_V2 = ("e1.rpt.test", "v=TLSRPTv2; rua=mailto:e1@x.test")
BAD_NOV = ("e2.rpt.test", "rua=mailto:e2@x.test")
DESTINATIONS = {
    A1: [(1, "mailto", "a1@x.test")],
    A2: [(1, "mailto", "a2@x.test")],
    B: [(1, "mailto", "b@x.test"), (2, "https", HTTPS_URI)],
    C: [(1, "mailto", "tls+rpt@x.test")],
    H: [(1, "mailto", "h@x.test")],
}
# Text that only malformed or undeliverable datagrams carry: it must appear nowhere.
NEVER_SEEN = ["m1.rpt.test", "m2.rpt.test", "m3@x.test", "m4.rpt.test", "m5.rpt.test",
              "m6.rpt.test", "d.rpt.test", "e1.rpt.test", "e2.rpt.test", "e1@x.test",
              "e2@x.test", "d@x.test"]

STS_A = ["version: STSv1", "mode: enforce", "mx: *.mx.a.rpt.test", "max_age: 86400"]
STS_A2 = ["version: STSv1", "mode: testing", "mx: mx.a.rpt.test", "max_age: 604800"]
STS_C = ["version: STSv1", 'mode: enforce', 'mx: "quoted\\back\u00e9"', "max_age: 86400"]
TLSA_A = ["3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B56664C5D3D6"]
TLSA_B = ["2 0 1 1F850A337E6DB9C609C522D136A475638CC43E1ED424F8EEC8513D747D1D085D",
          "3 1 1 12350A337E6DB9C6123522D136A475638CC43E1ED424F8EEC8513D747D1D1234"]
FULL = dict(s="192.0.2.1", n="mx1.a.rpt.test", h="mx1.a.rpt.test", r="192.0.2.10",
            a="certificate verification failed", f="X509_V_ERR_HOSTNAME_MISMATCH")


def valid_datagrams():
    """[(d, pr, policies)]: the well-formed datagrams, in sending order."""
    sts_a = dict(domain="a.rpt.test", strings=STS_A, mx=["*.mx.a.rpt.test"])
    return [
        (*A1, [policy(POLICY_STS, **sts_a, failures=[failure(201, **FULL), failure(202, **FULL)])]),
        (*A1, [policy(POLICY_STS, **sts_a)]),
        (*A1, [policy(POLICY_STS, **sts_a)]),
        (*A1, [policy(POLICY_STS, **sts_a, failures=[
            failure(202, **FULL), failure(203, s="192.0.2.1", r="192.0.2.11")])]),
        (*A1, [policy(POLICY_TLSA, "mx1.a.rpt.test", TLSA_A, failures=[
            failure(204, s="192.0.2.1", n="mx1.a.rpt.test", r="192.0.2.10"),
            failure(205, n="mx1.a.rpt.test", a="no usable TLSA record matched")])]),
        (*A1, [policy(POLICY_STS, **sts_a),
               policy(POLICY_TLSA, "mx1.a.rpt.test", TLSA_A,
                      failures=[failure(304, n="mx1.a.rpt.test", f="bad selector")])]),
        (*A2, [policy(POLICY_STS, "a.rpt.test", STS_A2, ["mx.a.rpt.test"], failures=[
            failure(301, a="HTTP 404"), failure(302, a="mode missing"),
            failure(303, n="mta-sts.a.rpt.test", a="certificate expired")])]),
        (*A2, [policy(POLICY_NONE, "a.rpt.test", failures=[failure(201, r="192.0.2.12")])]),
        (*B, [policy(POLICY_TLSA, "mx.b.rpt.test", TLSA_B, failures=[
            failure(305, n="mx.b.rpt.test"), failure(306, n="mx.b.rpt.test", s="192.0.2.2")])]),
        (*B, [policy(POLICY_TLSA, "mx.b.rpt.test", TLSA_B)]),
        (*B, [policy(POLICY_TLSA, "mx.b.rpt.test", TLSA_B)]),
        (*C, [policy(POLICY_STS, "c.rpt.test", STS_C, ["*.c.rpt.test"])]),
        (*C, [policy(POLICY_STS, "c.rpt.test", STS_C, ["*.c.rpt.test"])]),
        # Postfix 3.10.0-3.10.4: no-policy-found without policy-domain.
        (*H, [policy(POLICY_NONE, None, failures=[failure(201, n="mx.h.rpt.test", r="192.0.2.13")])]),
        (*H, [policy(POLICY_NONE, None)]),
        (*H, [policy(POLICY_NONE, None, result=1)]),  # failed, but no detail given
        (*UNSUPPORTED, [policy(POLICY_STS, "d.rpt.test", ["version: STSv1", "mode: enforce"])]),
        (*BAD_V2, [policy(POLICY_STS, "e1.rpt.test", ["version: STSv1", "mode: enforce"])]),
        (*BAD_NOV, [policy(POLICY_STS, "e2.rpt.test", ["version: STSv1", "mode: enforce"])]),
    ]


def malformed_datagrams():
    rec = "v=TLSRPTv1; rua=mailto:m3@x.test"
    pol = '"policies":[{"policy-type":2,"policy-domain": "m3.rpt.test","t":0,"f":0}]'
    big = lambda pad: tt.datagram("m6.rpt.test", "v=TLSRPTv1; rua=mailto:m6@x.test", [
        policy(POLICY_STS, "m6.rpt.test", ["version: STSv1", "x" * pad])])
    n = 70000 - len(big(0))
    oversize = big(n)
    assert len(oversize) == 70000
    return [
        ("not JSON", b"this is not JSON"),
        ("a JSON array", b'[{"dpv": "1","d": "m1.rpt.test","pr": "v=TLSRPTv1; '
                         b'rua=mailto:m1@x.test","policies":[]}]'),
        ("dpv 2", tt.datagram("m2.rpt.test", "v=TLSRPTv1; rua=mailto:m2@x.test",
                              [policy(POLICY_STS, "m2.rpt.test", ["version: STSv1"])], dpv="2")),
        ("no d", ('{"dpv": "1","pr": "%s",%s}' % (rec, pol)).encode()),
        ("no policies", b'{"dpv": "1","d": "m4.rpt.test","pr": "v=TLSRPTv1; rua=mailto:m4@x.test"}'),
        ("invalid UTF-8", tt.datagram("m5.rpt.test", "v=TLSRPTv1; rua=mailto:m5@x.test",
                                      [policy(POLICY_STS, "m5.rpt.test", [b"mode: \xff\xfe"])])),
        ("70,000 bytes", oversize),
    ]


# --- the expected reports ------------------------------------------------------------------------

def new_stats():
    return {"ok": 0, "fail": 0, "details": collections.Counter()}


def detail_key(d):
    return tuple(sorted((k, v) for k, v in d.items() if k != "failed-session-count"))


def expected_reports(datagrams):
    """(d, pr) -> {policy key -> {"ok", "fail", "details": Counter(detail key)}}."""
    want = collections.defaultdict(lambda: collections.defaultdict(new_stats))
    for d, pr, pols in datagrams:
        if (d, pr) not in DESTINATIONS:
            continue
        for p in pols:
            key = (tt.POLICY_TYPE_NAMES[p["type"]], p["domain"] or d, tuple(p["strings"]),
                   tuple(p["mx"]))
            s = want[(d, pr)][key]
            s["fail" if p["result"] else "ok"] += 1
            for f in p["failures"]:
                det = {"result-type": tt.RESULT_TYPES[f["c"]]}
                for short, long in tt.DETAIL_KEYS:
                    if f.get(short) is not None:
                        det[long] = f[short]
                s["details"][detail_key(det)] += 1
    return {g: dict(v) for g, v in want.items()}


def report_counts(report):
    """The same structure as expected_reports() gives for one group, from a report."""
    got = {}
    for entry in report.get("policies", []):
        pol = entry.get("policy", {})
        key = (pol.get("policy-type"), pol.get("policy-domain"),
               tuple(pol.get("policy-string") or ()), tuple(pol.get("mx-host") or ()))
        s = got.setdefault(key, new_stats())
        summ = entry.get("summary", {})
        s["ok"] += summ.get("total-successful-session-count", 0)
        s["fail"] += summ.get("total-failure-session-count", 0)
        for fd in entry.get("failure-details", []):
            s["details"][detail_key(fd)] += fd.get("failed-session-count", 0)
    return got


def show(counts):
    return {k: {"ok": v["ok"], "fail": v["fail"], "details": dict(v["details"])}
            for k, v in counts.items()}


# --- running things -----------------------------------------------------------------------------------

class Cli:
    def __init__(self, binary, conf):
        self.binary, self.conf = binary, conf

    def run(self, *args, timeout=120):
        cmd = [self.binary, "--config", self.conf, "tlsrpt", *args]
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        # Kept where the fixture's cleanup looks for sanitizer reports (*.log).
        with open(os.path.join(os.path.dirname(self.conf), "cli.log"), "a") as f:
            f.write(f"$ {shlex.join(cmd)}\n{p.stdout}{p.stderr}exit {p.returncode}\n")
        return p.returncode, p.stdout + p.stderr

    def stats(self):
        rc, out = self.run("stats", timeout=30)
        vals = {}
        for m in re.finditer(r"(?m)^\s*([A-Za-z_][\w.]*)\s*=\s*(-?\d+)\s*$", out):
            vals[m.group(1)] = int(m.group(2))
        return rc, vals, out


def write_config(w, d):
    resolver, https = itlib.fixture_sections(w)
    # CURLOPT_CONNECT_TO uses the first entry that matches: ours goes before the fixture's
    # catch-all "::127.0.0.1:8443".
    ours = f'"reports.test:443:127.0.0.1:{HTTPS_PORT}"'
    m = re.search(r"(?m)^connect_to\s*=\s*\[(.*)\]\s*(#.*)?$", https)
    if m:
        rest = m.group(1).strip()
        https = https[:m.start()] + f"connect_to = [{ours}{', ' + rest if rest else ''}]" + \
            https[m.end():]
    else:
        https += f"connect_to = [{ours}]\n"
    lib = itlib.HERE
    conf = os.path.join(d, "strictmx.toml")
    with open(conf, "w") as f:
        f.write(f"""[daemon]
log = "stderr"
verbosity = 2
allow_root = true
state_dir = "{d}/state"
[resolver]
{resolver}
[https]
{https}
[cache]
path = "{d}/cache.db"
[tlsrpt]
socket = "{d}/tlsrpt.sock"
db = "{d}/tlsrpt.db"
spool_dir = "{d}/spool"
organization_name = "Example Org"
contact_info = "tlsrpt@sender.example"
sender_address = "noreply@sender.example"
sendmail = "/usr/bin/python3 {lib}/sendmail_sink.py {d}/mail -i -t"
https_ca_file = "{w}/ca.pem"
[[listen]]
type = "socketmap"
address = "inet:127.0.0.1:{PORT}"
""")
    return conf


def tail(path, n=25):
    try:
        with open(path, errors="replace") as f:
            return "".join(f.readlines()[-n:])
    except OSError as e:
        return str(e)


def files(d, suffix):
    return sorted(x for x in os.listdir(d) if x.endswith(suffix)) if os.path.isdir(d) else []


def mail_to(raw):
    msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
    return [a for _, a in email.utils.getaddresses(msg.get_all("To") or [])]


def https_requests(d):
    path = os.path.join(d, "requests.log")
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [line.rstrip("\n").split("\t") for line in f if line.strip()]


def main():
    w = itlib.workdir()
    t = itlib.Checks("tlsrpt")
    cli_bin = itlib.cli_path(w)
    if not cli_bin or not os.access(cli_bin, os.X_OK):
        t.ok(False, "the strictmx CLI exists",
             f"no executable strictmx binary ({cli_bin!r}; STRICTMX_CLI in fixture.env)")
        t.done()
    policyd_bin = itlib.policyd_binary(w)
    if not os.access(policyd_bin, os.X_OK):
        t.ok(False, "strictmx-policyd exists", f"{policyd_bin!r} is not executable")
        t.done()
    d = os.path.join(w, "tlsrpt-test")
    shutil.rmtree(d, ignore_errors=True)
    maildir, httpsdir, dry = (os.path.join(d, x) for x in ("mail", "https", "dry-run"))
    for x in (maildir, httpsdir, dry, os.path.join(d, "spool")):
        os.makedirs(x)
    conf = write_config(w, d)
    cli = Cli(cli_bin, conf)
    sock_path = os.path.join(d, "tlsrpt.sock")

    # A UTC day must hold the whole run: not within a minute of midnight.
    now = time.time()
    if 86400 - now % 86400 < 60:
        time.sleep(86400 - now % 86400 + 1)
    day = datetime.datetime.now(datetime.timezone.utc).date().isoformat()

    cert, key = tt.make_leaf(w, os.path.join(d, "pki"), "reports.test")
    sink_log = open(os.path.join(d, "https_sink.log"), "w")
    sink = subprocess.Popen([sys.executable, os.path.join(itlib.HERE, "https_sink.py"),
                             "--port", str(HTTPS_PORT), "--cert", cert, "--key", key,
                             "--dir", httpsdir], stdout=sink_log, stderr=subprocess.STDOUT)
    log_path = os.path.join(d, "policyd.log")
    log = open(log_path, "w")
    daemon = subprocess.Popen([policyd_bin, "--config", conf], stdout=log,
                              stderr=subprocess.STDOUT)
    try:
        run(t, w, d, day, cli, daemon, log_path, sock_path, maildir, httpsdir, dry)
    finally:
        daemon.terminate()
        try:
            daemon.wait(15)
        except subprocess.TimeoutExpired:
            daemon.kill()
            daemon.wait()
        sink.terminate()
        sink.wait(10)
    t.done()


def connects(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


def run(t, w, d, day, cli, daemon, log_path, sock_path, maildir, httpsdir, dry):
    def ready():
        with open(log_path, errors="replace") as f:
            return "]: ready " in f.read() or daemon.poll() is not None

    itlib.wait_for(ready, 30)
    if not t.ok(daemon.poll() is None and ready(), "daemon with a [tlsrpt] section starts",
                f"exit {daemon.poll()}; log:\n{tail(log_path)}"):
        return
    t.ok(itlib.wait_for(lambda: os.path.exists(sock_path), 5), "collector socket exists",
         sock_path)
    t.ok(itlib.wait_for(lambda: connects(HTTPS_PORT), 10), "https sink listens",
         tail(os.path.join(d, "https_sink.log")))

    rc, st, out = cli.stats()
    keys = ("datagrams_received", "datagrams_invalid", "deliveries_pending", "reports_delivered")
    if not t.ok(rc == 0 and all(k in st for k in keys),
                "strictmx tlsrpt stats works and prints " + ", ".join(keys),
                f"exit {rc}: {out[-600:]!r} (is the 'tlsrpt' verb there?)"):
        return
    t.eq({k: st.get(k) for k in ("datagrams_received", "datagrams_invalid",
                                 "deliveries_pending")},
         {"datagrams_received": 0, "datagrams_invalid": 0, "deliveries_pending": 0},
         "stats before any datagram")
    delivered_before = st.get("reports_delivered")

    # --- send: malformed datagrams between the valid ones -----------------------------------
    valid = valid_datagrams()
    bad = malformed_datagrams()
    order = []
    for i, v in enumerate(valid):
        order.append(("valid", tt.datagram(*v)))
        if i % 3 == 1 and bad:
            order.append(bad.pop(0))
    order += bad
    n_bad = sum(1 for what, _ in order if what != "valid")
    for what, data in order:
        try:
            tt.send(sock_path, data)
        except OSError as e:
            t.ok(False, f"datagram ({what}) sent", str(e))
    total = len(order)

    def received():
        return cli.stats()[1].get("datagrams_received", -1) >= total

    itlib.wait_for(received, 10, step=0.3)
    time.sleep(1)  # anything beyond the expected number would show now
    rc, st, out = cli.stats()
    t.eq(st.get("datagrams_received"), total,
         f"stats: datagrams_received counts all {total} datagrams ({n_bad} of them malformed)")
    t.eq(st.get("datagrams_invalid"), n_bad, "stats: datagrams_invalid counts the malformed ones")
    t.ok(daemon.poll() is None, "daemon still runs after the malformed datagrams",
         tail(log_path))
    # The running daemon shows the same counters (strictmx status, over its control socket).
    p = subprocess.run([cli.binary, "--config", cli.conf, "status", "--json"],
                       capture_output=True, text=True, timeout=30)
    try:
        sc = json.loads(p.stdout).get("tlsrpt", {}).get("store_counters", {})
    except ValueError:
        sc = {}
    t.eq((sc.get("datagrams_received"), sc.get("datagrams_invalid")), (total, n_bad),
         "strictmx status: the collector's counters", )

    want = expected_reports(valid)
    want_mails = {dest[2]: g for g, dests in DESTINATIONS.items()
                  for dest in dests if dest[1] == "mailto"}

    def check_counts(report, group, what):
        got = report_counts(report) if isinstance(report, dict) else {}
        t.eq(show(got), show(want[group]), f"{what}: sessions and failure details per policy")

    def check_never_seen(blob, what):
        hits = [s for s in NEVER_SEEN if s.encode() in blob]
        t.ok(not hits, f"{what}: nothing from malformed or undeliverable datagrams", str(hits))

    # --- dry run ------------------------------------------------------------------------------
    rc, out = cli.run("send", "--day", day, "--dry-run", dry)
    t.eq(rc, 0, "send --dry-run: exit 0" + ("" if rc == 0 else f" ({out[-500:]!r})"))
    names = sorted(os.listdir(dry))
    by_f = collections.defaultdict(dict)
    for n in names:
        m = re.fullmatch(r"(.+)\.(\d+)\.(eml|json\.gz)", n)
        if not t.ok(m, f"dry run file name {n!r} is F.<i>.eml or F.<i>.json.gz"):
            continue
        by_f[m.group(1)][(int(m.group(2)), m.group(3))] = os.path.join(dry, n)
    submitter = SUBMITTER
    firsts = [f.split("!")[0] for f in by_f]
    if firsts:
        t.eq(firsts[0], SUBMITTER, "submitter is the domain of tlsrpt.sender_address")
        submitter = firsts[0]
    seen_groups = collections.Counter()
    for f, parts in sorted(by_f.items()):
        probs, fp = tt.check_filename(f + ".json.gz", submitter=submitter, day=day)
        t.eq(probs, [], f"dry run {f}: RFC 8460 file name")
        eml = parts.get((1, "eml"))
        if not t.ok(eml, f"dry run {f}: a mail to the first rua (every record here has mailto first)",
                    str(sorted(parts))):
            continue
        with open(eml, "rb") as fh:
            raw = fh.read()
        check_never_seen(raw, f"dry run {f}.1.eml")
        to = mail_to(raw)
        group = want_mails.get(to[0] if to else None)
        if not t.ok(group, f"dry run {f}: To: is a known rua address", repr(to)):
            continue
        seen_groups[group] += 1
        t.eq(fp and fp[1], group[0], f"dry run {f}: policy domain is {group[0]}")
        probs, rep, fname = tt.check_mail(raw, report_domain=group[0], submitter=submitter,
                                          day=day, to=to[0])
        t.eq(probs, [], f"dry run {f}.1.eml: RFC 8460 report mail")
        check_never_seen(json.dumps(rep, ensure_ascii=False).encode(), f"report in dry run {f}.1.eml")
        t.eq(fname, f + ".json.gz", f"dry run {f}.1.eml: attachment named {f}.json.gz")
        check_counts(rep, group, f"dry run {f}.1.eml")
        wanted = {(i, "eml" if kind == "mailto" else "json.gz") for i, kind, _ in DESTINATIONS[group]}
        t.eq(sorted(parts), sorted(wanted), f"dry run {f}: one file per destination of {group[1]!r}")
        gz = parts.get((2, "json.gz"))
        if gz:
            with open(gz, "rb") as fh:
                js = gzip.decompress(fh.read())
            check_never_seen(js, f"dry run {f}.2.json.gz")
            t.eq(tt.check_report(js, day=day, submitter=submitter, policy_domain=group[0]), [],
                 f"dry run {f}.2.json.gz: RFC 8460 report")
            rj = json.loads(js)
            check_counts(rj, group, f"dry run {f}.2.json.gz")
            t.eq(rj.get("report-id"), rep and rep.get("report-id"),
                 f"dry run {f}: the same report for both destinations")
    t.eq(dict(seen_groups), {g: 1 for g in DESTINATIONS}, "dry run: one report per (day, d, pr) "
         "with a supported rua, none for unsupported-only or invalid records")
    rc, st, out = cli.stats()
    t.eq(st.get("deliveries_pending"), 0, "dry run: nothing queued")
    t.eq(st.get("reports_delivered"), delivered_before, "dry run: nothing counted as delivered")
    t.eq(files(maildir, ".eml"), [], "dry run: no mail sent")
    t.eq(https_requests(httpsdir), [], "dry run: no HTTPS request")

    # --- real send: mail goes out, the HTTPS POST gets a 500 and is queued ------------------
    rc, out = cli.run("send", "--day", day)
    t.eq(rc, 0, "send: exit 0 (everything delivered or queued)"
         + ("" if rc == 0 else f" ({out[-500:]!r})"))
    mails = files(maildir, ".eml")
    t.eq(len(mails), len(want_mails), f"send: {len(want_mails)} mails")
    report_ids = {}
    got_to = collections.Counter()
    for n in mails:
        with open(os.path.join(maildir, n), "rb") as fh:
            raw = fh.read()
        check_never_seen(raw, f"mail {n}")
        to = mail_to(raw)
        group = want_mails.get(to[0] if to else None)
        if not t.ok(group, f"mail {n}: To: is a known rua address (percent-decoded)", repr(to)):
            continue
        got_to[to[0]] += 1
        probs, rep, fname = tt.check_mail(raw, report_domain=group[0], submitter=submitter,
                                          day=day, to=to[0])
        t.eq(probs, [], f"mail {n} to {to[0]}: RFC 8460 report mail")
        check_counts(rep, group, f"mail {n} to {to[0]}")
        check_never_seen(json.dumps(rep, ensure_ascii=False).encode(), f"report in mail {n}")
        if rep:
            report_ids[group] = rep.get("report-id")
    t.eq(dict(got_to), {a: 1 for a in want_mails}, "send: one mail to every mailto rua")
    t.eq(len(set(report_ids.values())), len(report_ids), "send: report-ids differ between reports")
    reqs = https_requests(httpsdir)
    t.eq([(r[1], r[2], r[3], r[5]) for r in reqs],
         [("POST", "/tlsrpt", "application/tlsrpt+gzip", "500")],
         "send: one POST to https://reports.test/tlsrpt, answered 500")
    t.eq(files(httpsdir, ".body"), [], "send: no HTTPS body accepted yet")
    rc, st, out = cli.stats()
    t.eq(st.get("deliveries_pending"), 1, "send: the failed HTTPS delivery is queued")

    # --- flush: the queued delivery goes out ------------------------------------------------------
    rc, out = cli.run("flush")
    t.eq(rc, 0, "flush: exit 0" + ("" if rc == 0 else f" ({out[-500:]!r})"))
    bodies = files(httpsdir, ".body")
    t.eq(len(bodies), 1, "flush: the HTTPS sink accepted one report")
    if bodies:
        with open(os.path.join(httpsdir, bodies[0].replace(".body", ".json"))) as fh:
            meta = json.load(fh)
        t.eq((meta["method"], meta["path"], meta["content_type"]),
             ("POST", "/tlsrpt", "application/tlsrpt+gzip"), "flush: POST with application/tlsrpt+gzip")
        with open(os.path.join(httpsdir, bodies[0]), "rb") as fh:
            body = fh.read()
        try:
            js = gzip.decompress(body)
        except (OSError, EOFError) as e:
            js = b""
            t.ok(False, "flush: body is gzip", str(e))
        check_never_seen(js, "HTTPS report")
        t.eq(tt.check_report(js, day=day, submitter=submitter, policy_domain=B[0]), [],
             "flush: RFC 8460 report over HTTPS")
        try:
            rj = json.loads(js)
        except ValueError:
            rj = {}
        check_counts(rj, B, "HTTPS report")
        t.eq(rj.get("report-id"), report_ids.get(B), "HTTPS report: the report mailed to b@x.test")
    rc, st, out = cli.stats()
    t.eq(st.get("deliveries_pending"), 0, "flush: nothing queued any more")
    n_reports = len(DESTINATIONS)
    n_deliveries = sum(len(v) for v in DESTINATIONS.values())
    delivered = (st.get("reports_delivered") or 0) - (delivered_before or 0)
    # reports_delivered: per report fully delivered, or per delivery; both are plausible.
    t.ok(delivered in (n_reports, n_deliveries),
         f"stats: reports_delivered rose by {n_reports} (reports) or {n_deliveries} (deliveries)",
         f"rose by {delivered}: {out[-400:]!r}")

    # --- a second send delivers nothing twice --------------------------------------------------
    rc, out = cli.run("send", "--day", day)
    t.eq(rc, 0, "second send: exit 0" + ("" if rc == 0 else f" ({out[-500:]!r})"))
    t.eq(files(maildir, ".eml"), mails, "second send: no mail again")
    t.eq(len(https_requests(httpsdir)), 2, "second send: no HTTPS request again")
    rc, st2, out = cli.stats()
    t.eq(st2.get("deliveries_pending"), 0, "second send: nothing queued")
    t.eq(st2.get("reports_delivered"), st.get("reports_delivered"),
         "second send: reports_delivered unchanged")
    rc, out = cli.run("flush")
    t.eq((rc, len(https_requests(httpsdir)), files(maildir, ".eml")), (0, 2, mails),
         "flush with nothing queued: exit 0, nothing sent")
    t.ok(daemon.poll() is None, "daemon still runs at the end", tail(log_path))


if __name__ == "__main__":
    main()
