#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""strictmx-milter in a private Postfix wired as contrib/postfix says (main.cf.strictmx-milter,
master.cf.strictmx-milter, milter_header_checks), against the test internet.

This test runs its own Postfix (WORKDIR/milter-test/postfix, smtpd on 127.0.0.4:25 with
STARTTLS) and its own strictmx-milter processes; the fixture's strictmx-policyd (socketmap
127.0.0.1:8461) answers the milter's "requiretls" lookups and the transports' policy lookups.

  127.0.0.4:25    smtpd, smtpd_milters = inet:127.0.0.1:8466 (the milter under test)
  127.0.0.4:2525  smtpd with the milter on 8467, whose policy_server is a closed port (8468)
  127.0.0.4:2526  smtpd with smtpd_milters = inet:127.0.0.1:8469, where nothing listens
  127.0.0.1:8470  a recording proxy in front of 8466 for miltertest (it shows the reply text
                  that miltertest itself does not)

Test domains (testnet/zones) and why each:
  deliver-plain.test      no policy, MX = sink "plain" (no STARTTLS): mail on the default
                          route arrives in clear; a TLS-requiring sender is refused (550)
  deliver-badcert.test    MTA-STS enforce, MX = sink "badcert" (certificate for another
                          name): the default route defers, only the relaxed route delivers
  deliver-nostarttls.test MTA-STS enforce, MX = sink "plain": the default route defers, the
                          relaxed route delivers in clear
  dane-signed.test        DANE (dane-only), MX = sink "dane": the requiretls route delivers
                          with a DANE-verified certificate
  deliver-ok.test         MTA-STS enforce, MX = sink "good": the requiretls route delivers
                          with a CA-verified certificate
  nopolicy.test           no policy at all: 550 5.7.30 for TLS-requiring mail
  testing.test            MTA-STS testing: the requiretls profile counts it (RCPT accepted,
                          nothing delivered: its MX has no server)
  dane-unusable.test      DANE with only unusable TLSA records, dane-mismatch.test with a
                          TLSA record of another key: never delivered on the requiretls route
  dane-tampered.test      bogus TLSA answer, the daemon answers TEMP: 451 4.4.3
  nsdown.test             its name server does not answer, TEMP: 451 4.4.3

Senders: alice@sender.test is listed in require_tls_senders, and so is the domain
@secure-sender.test; bob@sender.test, sub.secure-sender.test and client.test are not.

Usage: t_milter.py WORKDIR
"""

import email.parser
import email.policy
import glob
import os
import re
import shutil
import smtplib
import socket
import ssl
import struct
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
CONTRIB = os.path.join(os.path.dirname(os.path.dirname(HERE)), "contrib", "postfix")
ADDR = "127.0.0.4"
MILTER = ("127.0.0.1", 8466)
MILTER_DEAD_POLICY = ("127.0.0.1", 8467)
CLOSED_PORT = 8468
NO_MILTER = ("127.0.0.1", 8469)
PROXY = ("127.0.0.1", 8470)
LISTED = "alice@sender.test"
LISTED_DOMAIN = "secure-sender.test"
SESSIONS = 100

TLS_CTX = ssl.create_default_context()
TLS_CTX.check_hostname = False
TLS_CTX.verify_mode = ssl.CERT_NONE


class Env:
    def __init__(self, w):
        self.w = w
        self.d = os.path.join(w, "milter-test")
        self.pf = os.path.join(self.d, "postfix")
        self.etc = os.path.join(self.pf, "etc")
        self.maillog = os.path.join(self.pf, "maillog")
        self.milter_log = os.path.join(self.d, "milter.log")
        self.dead_log = os.path.join(self.d, "milter-deadpolicy.log")
        self.procs = []

    def offset(self, path):
        return os.path.getsize(path) if os.path.exists(path) else 0

    def read(self, path, offset=0):
        with open(path, errors="replace") as f:
            f.seek(offset)
            return f.read()


# --- setup ------------------------------------------------------------------------------

def postconf(env, *settings):
    subprocess.run(["postconf", "-c", env.etc, "-e"] + list(settings), check=True)


def contrib_main_cf(env):
    """The settings of contrib/postfix/main.cf.strictmx-milter, addresses made this test's."""
    out = []
    with open(os.path.join(CONTRIB, "main.cf.strictmx-milter")) as f:
        for line in f:
            m = re.match(r"^([a-z_]+)\s*=\s*(.*)$", line.rstrip("\n"))
            if not m:
                continue
            name, value = m.groups()
            value = value.replace("inet:127.0.0.1:8465", f"inet:{MILTER[0]}:{MILTER[1]}")
            value = value.replace("/etc/postfix/milter_header_checks",
                                  os.path.join(env.etc, "milter_header_checks"))
            out.append((name, value))
    return out


def contrib_master_cf():
    """contrib/postfix/master.cf.strictmx-milter with the chroot column set to n (the queue
    and the resolver of the test instance are outside any jail)."""
    lines = []
    with open(os.path.join(CONTRIB, "master.cf.strictmx-milter")) as f:
        for line in f:
            fields = line.split()
            if fields and not line[0].isspace() and not line.startswith("#") and len(fields) >= 8:
                fields[4] = "n"
                line = "  ".join(fields) + "\n"
            lines.append(line)
    return "".join(lines)


def write_milter_config(path, listen, policy_server):
    with open(path, "w") as f:
        f.write(f"""[daemon]
log = "stderr"
verbosity = 3
allow_root = true
[milter]
listen = "inet:{listen[0]}:{listen[1]}"
policy_server = "{policy_server}"
route_header = "X-Strictmx-Route"
tls_required_no = "route"
require_tls_senders = ["{LISTED}", "@{LISTED_DOMAIN}"]
lookup_timeout_ms = 9000
local_transports = ["local", "virtual"]
""")


def port_open(addr):
    try:
        socket.create_connection(addr, timeout=1).close()
        return True
    except OSError:
        return False


def start_milter(env, t, name, listen, policy_server, log):
    conf = os.path.join(env.d, f"{name}.toml")
    write_milter_config(conf, listen, policy_server)
    binary = itlib.milter_binary(env.w)
    if not t.ok(os.access(binary, os.X_OK), f"{name}: {binary} is executable"):
        return None
    p = subprocess.Popen([binary, "--config", conf], stdin=subprocess.DEVNULL,
                         stdout=open(log, "a"), stderr=subprocess.STDOUT, start_new_session=True)
    env.procs.append(p)
    with open(os.path.join(env.d, f"{name}.pid"), "w") as f:
        f.write(f"{p.pid}\n")
    t.ok(itlib.wait_for(lambda: port_open(listen) or p.poll() is not None, 10) and
         p.poll() is None, f"{name} listens on {listen[0]}:{listen[1]}", env.read(log)[-2000:])
    return p


def stop_leftovers(env):
    """A run that died halfway may have left its Postfix and milters running."""
    if os.path.exists(os.path.join(env.etc, "main.cf")):
        subprocess.run(["postfix", "-c", env.etc, "stop"], capture_output=True)
    for pidfile in glob.glob(os.path.join(env.d, "*.pid")):
        try:
            pid = int(open(pidfile).read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if b"strictmx-milter" in f.read():
                    os.kill(pid, 15)
        except (OSError, ValueError):
            pass


def setup(env, t):
    stop_leftovers(env)
    shutil.rmtree(env.d, ignore_errors=True)
    os.makedirs(env.d)
    # The address of this test's smtpd (the fixture added 127.0.0.2 for its own Postfix).
    if f" {ADDR}/" not in subprocess.run(["ip", "-4", "addr", "show", "dev", "lo"],
                                         capture_output=True, text=True).stdout:
        subprocess.run(["ip", "addr", "add", f"{ADDR}/8", "dev", "lo"], check=True)
    # The base configuration of the test internet's Postfix (DNS with DNSSEC, policy from
    # the daemon, nothing chrooted), then what differs for this instance.
    subprocess.run([os.path.join(HERE, "testnet", "postfix.sh"), env.d, "setup"], check=True)
    shutil.copy(os.path.join(CONTRIB, "milter_header_checks"),
                os.path.join(env.etc, "milter_header_checks"))
    pki = os.path.join(env.w, "pki")
    postconf(env,
             f"inet_interfaces = {ADDR}",
             "myhostname = milter-mta.test",
             f"smtp_tls_CAfile = {env.w}/ca.pem",
             "smtpd_tls_security_level = may",
             f"smtpd_tls_cert_file = {pki}/wrong-name.test.pem",
             f"smtpd_tls_key_file = {pki}/wrong-name.test.key",
             "smtpd_tls_received_header = yes",
             # More than the SESSIONS concurrent clients of the load case.
             "default_process_limit = 150",
             *[f"{n} = {v}" for n, v in contrib_main_cf(env)])
    with open(os.path.join(env.etc, "master.cf")) as f:
        master = f.read()
    master = master.replace("127.0.0.2:smtp inet n - n - - smtpd",
                            f"{ADDR}:smtp inet n - n - - smtpd")
    master += (f"{ADDR}:2525 inet n - n - - smtpd\n"
               f"  -o syslog_name=postfix/deadpolicy\n"
               f"  -o smtpd_milters=inet:{MILTER_DEAD_POLICY[0]}:{MILTER_DEAD_POLICY[1]}\n"
               f"{ADDR}:2526 inet n - n - - smtpd\n"
               f"  -o syslog_name=postfix/nomilter\n"
               f"  -o smtpd_milters=inet:{NO_MILTER[0]}:{NO_MILTER[1]}\n")
    master += contrib_master_cf()
    with open(os.path.join(env.etc, "master.cf"), "w") as f:
        f.write(master)

    for name, value in contrib_main_cf(env):
        got = subprocess.run(["postconf", "-c", env.etc, "-h", name], capture_output=True,
                             text=True).stdout.strip()
        t.eq(got, value, f"main.cf: {name} as in contrib/postfix/main.cf.strictmx-milter")
    for svc, want in (("strictmx-requiretls/unix", [
                          "smtp_tls_security_level=secure",
                          "smtp_tls_policy_maps=socketmap:inet:127.0.0.1:8461:requiretls"]),
                      ("strictmx-relaxed/unix", ["smtp_tls_security_level=may",
                                                 "smtp_tls_policy_maps="])):
        p = subprocess.run(["postconf", "-c", env.etc, "-P", f"{svc}/"], capture_output=True,
                           text=True)
        have = {ln.split(" = ", 1)[0].rsplit("/", 1)[-1]: ln.split(" = ", 1)[1]
                for ln in p.stdout.replace(" =\n", " = \n").splitlines() if " = " in ln}
        for setting in want:
            name, value = setting.split("=", 1)
            t.eq(have.get(name), value, f"master.cf: {svc.split('/')[0]} has -o {setting}")
    p = subprocess.run(["postfix", "-c", env.etc, "check"], capture_output=True, text=True)
    t.ok(p.returncode == 0 and "warning" not in p.stderr, "postfix check: no complaints",
         p.stderr)

    start_milter(env, t, "milter", MILTER, "inet:127.0.0.1:8461", env.milter_log)
    start_milter(env, t, "milter-deadpolicy", MILTER_DEAD_POLICY,
                 f"inet:127.0.0.1:{CLOSED_PORT}", env.dead_log)
    t.ok(not port_open(("127.0.0.1", CLOSED_PORT)), f"nothing listens on {CLOSED_PORT}")
    t.ok(not port_open(NO_MILTER), f"nothing listens on {NO_MILTER[1]}")
    p = subprocess.run(["postfix", "-c", env.etc, "start"], capture_output=True, text=True)
    t.ok(p.returncode == 0, "private Postfix of this test starts", p.stderr)
    return t.ok(itlib.wait_for(lambda: port_open((ADDR, 25)), 10), f"smtpd on {ADDR}:25")


def teardown(env):
    subprocess.run(["postfix", "-c", env.etc, "stop"], capture_output=True)
    for p in env.procs:
        if p.poll() is None:
            p.terminate()
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


# --- SMTP -------------------------------------------------------------------------------------

def message(sender, rcpts, subject, extra_headers=""):
    """Raw message text with CRLF line ends; extra_headers is raw text (folding allowed)."""
    return (f"From: <{sender}>\r\nTo: {', '.join(f'<{r}>' for r in rcpts)}\r\n"
            f"Subject: {subject}\r\n{extra_headers}"
            f"\r\nstrictmx-milter integration test: {subject}\r\n")


class Result:
    def __init__(self):
        self.mail = None
        self.rcpt = {}
        self.data = None
        self.qid = None
        self.error = None


def session(sender, rcpts, text=None, port=25, tls=True, sync=None):
    """One SMTP session: EHLO, STARTTLS (optional), MAIL, RCPT each, DATA if any RCPT got 250
    and text is given, else RSET. Returns the replies as (code, text) tuples."""
    r = Result()
    try:
        s = smtplib.SMTP(ADDR, port, local_hostname="client.test", timeout=90)
        try:
            if sync:
                sync.wait(60)
            s.ehlo("client.test")
            if tls:
                s.starttls(context=TLS_CTX)
                s.ehlo("client.test")
            code, msg = s.mail(sender)
            r.mail = (code, msg.decode(errors="replace"))
            if code == 250:
                for rc in rcpts:
                    code, msg = s.rcpt(rc)
                    r.rcpt[rc] = (code, msg.decode(errors="replace"))
            if text is not None and any(c == 250 for c, _ in r.rcpt.values()):
                code, msg = s.data(text.encode())
                r.data = (code, msg.decode(errors="replace"))
                m = re.search(r"queued as ([0-9A-Za-z]+)", r.data[1])
                r.qid = m.group(1) if m else None
            else:
                s.rset()
            s.quit()
        finally:
            s.close()
    except (OSError, smtplib.SMTPException) as e:
        r.error = f"{type(e).__name__}: {e}"
    return r


# --- what happened to a message -----------------------------------------------------------------

DELIVERY = re.compile(r"postfix(?:/([\w.-]+))?/smtp\[\d+\]: ([0-9A-Za-z]+): to=<([^>]*)>,"
                      r" relay=([^,]*),.* status=(\w+)")


def deliveries(env, offset):
    """{(qid, rcpt): (transport syslog name, relay, status)} from the maillog (first outcome)."""
    out = {}
    for m in DELIVERY.finditer(env.read(env.maillog, offset)):
        out.setdefault((m.group(2), m.group(3)), (m.group(1) or "smtp", m.group(4), m.group(5)))
    return out


def wait_deliveries(env, offset, wanted, timeout=60):
    """Waits until each (qid, rcpt) in wanted has an outcome in the maillog."""
    conf = env.etc
    end = time.monotonic() + timeout
    got = {}
    while time.monotonic() < end:
        got = deliveries(env, offset)
        if all(k in got for k in wanted):
            break
        subprocess.run(["postqueue", "-c", conf, "-f"], capture_output=True)
        itlib.wait_for(lambda: all(k in deliveries(env, offset) for k in wanted), 5, 0.2)
    return deliveries(env, offset)


def sink_messages(w, sink, rcpt):
    """Messages the sink received for rcpt, parsed (header names case-insensitive)."""
    out = []
    for path in glob.glob(os.path.join(w, "sinks", sink, "msg-*.eml")):
        with open(path, "rb") as f:
            raw = f.read()
        msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)
        if rcpt in (msg.get("X-Sink-Rcpt-To") or "").split(","):
            out.append(msg)
    return out


def route_headers(msg):
    return [re.sub(r"\s+", " ", v).strip() for v in (msg.get_all("X-Strictmx-Route") or [])]


# --- the cases ------------------------------------------------------------------------------------

def premises(env, t):
    """What the daemon's requiretls map says about the domains this test relies on."""
    for domain, want in (("dane-signed.test", "OK dane-only"),
                         ("deliver-ok.test", "OK secure match=mx.deliver-ok.test "
                                             "servername=hostname"),
                         ("testing.test", "OK secure match=mx1.testing.test "
                                          "servername=hostname"),
                         ("deliver-badcert.test", "OK secure match=mx.deliver-badcert.test "
                                                  "servername=hostname"),
                         ("nopolicy.test", "NOTFOUND "), ("deliver-plain.test", "NOTFOUND "),
                         ("dane-tampered.test", "TEMP")):
        try:
            got = itlib.socketmap_query(domain, name="requiretls")
        except (OSError, ValueError) as e:
            got = f"({type(e).__name__}: {e})"
        if want == "TEMP":
            t.ok(got.startswith("TEMP "), f"socketmap requiretls {domain}: TEMP", got)
        else:
            t.eq(got, want, f"socketmap requiretls {domain}: {want.strip()}")


def unlisted_and_relaxed(env, t, tag):
    """No sender requires TLS: no requiretls lookup at all; TLS-Required: No and forged route
    headers."""
    pd_log = os.path.join(env.w, "policyd.log")
    pd_off, ml_off, m_off = env.offset(pd_log), env.offset(env.maillog), env.offset(env.milter_log)
    sender = f"bob-{tag}@client.test"
    # name: (recipient domain, extra headers, expected route, expected delivery outcome)
    cases = {
        "plain": ("deliver-plain.test", "", "default", "sent"),
        "tlsreq-no": ("deliver-badcert.test", "TLS-Required: No\r\n", "relaxed", "sent"),
        "tlsreq-lower": ("deliver-plain.test", "tls-required: no\r\n", "relaxed", "sent"),
        "tlsreq-spaces": ("deliver-plain.test", "TLS-REQUIRED:    No   \r\n", "relaxed", "sent"),
        "tlsreq-folded": ("deliver-plain.test", "TLS-Required:\r\n No\r\n", "relaxed", "sent"),
        "tlsreq-folded-tab": ("deliver-nostarttls.test", "TLS-Required:\r\n\tNO \r\n",
                              "relaxed", "sent"),
        "tlsreq-nothanks": ("deliver-plain.test", "TLS-Required: No thanks\r\n", "default",
                            "sent"),
        "tlsreq-yes": ("deliver-badcert.test", "TLS-Required: Yes\r\n", "default", "deferred"),
        "tlsreq-other-name": ("deliver-plain.test", "X-TLS-Required: No\r\n", "default",
                              "sent"),
        "forged-one": ("deliver-plain.test", "X-Strictmx-Route: requiretls\r\n", "default",
                       "sent"),
        "forged-several": ("deliver-plain.test",
                           "X-Strictmx-Route: relaxed\r\nx-strictmx-route: requiretls\r\n"
                           "X-Strictmx-Route-Note: keep\r\nX-STRICTMX-ROUTE:\r\n\trelaxed\r\n",
                           "default", "sent"),
        "forged-relaxed-badcert": ("deliver-badcert.test", "X-Strictmx-Route: relaxed\r\n",
                                   "default", "deferred"),
        "forged-and-tlsreq-no": ("deliver-plain.test",
                                 "X-Strictmx-Route: requiretls\r\nTLS-Required: No\r\n",
                                 "relaxed", "sent"),
    }
    rcpt = {name: f"{name}-{tag}@{d}" for name, (d, _, _, _) in cases.items()}
    qid = {}
    for name, (d, headers, _, _) in cases.items():
        r = session(sender, [rcpt[name]], message(sender, [rcpt[name]], f"{name} {tag}", headers),
                    tls=(len(qid) % 2 == 0))
        ok = (r.error is None and r.mail and r.mail[0] == 250 and
              r.rcpt.get(rcpt[name], (0,))[0] == 250 and r.data and r.data[0] == 250 and r.qid)
        t.ok(ok, f"{name}: accepted (MAIL, RCPT, DATA 250)", f"{vars(r)}")
        qid[name] = r.qid
    got = wait_deliveries(env, ml_off, [(qid[n], rcpt[n]) for n in cases if qid[n]])
    mlog = env.read(env.milter_log, m_off)
    for name, (d, headers, route, outcome) in cases.items():
        if not qid[name]:
            continue
        transport, relay, status = got.get((qid[name], rcpt[name]), (None, None, None))
        want_transport = {"default": "smtp", "relaxed": "strictmx-relaxed"}[route]
        t.eq(transport, want_transport, f"{name}: delivered through {want_transport}")
        t.eq(status, outcome, f"{name}: {outcome}")
        m = re.search(rf"message queue_id={qid[name]} .*", mlog)
        want_log = "default" if route == "default" else route
        if route != "default" or "Strictmx-Route" in headers or "STRICTMX-ROUTE" in headers:
            t.ok(m and f" route={want_log} " in m.group(0),
                 f"{name}: milter log: message queue_id=... route={want_log}",
                 m.group(0) if m else "no message line")
        sink = {"deliver-plain.test": "plain", "deliver-nostarttls.test": "plain",
                "deliver-badcert.test": "badcert"}[d]
        msgs = sink_messages(env.w, sink, rcpt[name])
        if outcome == "sent":
            if not t.eq(len(msgs), 1, f"{name}: sink {sink} received it once"):
                continue
            want = ["relaxed"] if route == "relaxed" else []
            t.eq(route_headers(msgs[0]), want,
                 f"{name}: delivered with X-Strictmx-Route {want or 'absent'}")
        else:
            t.eq(len(msgs), 0, f"{name}: sink {sink} received nothing")
    # What each route means at the receiving end.
    m = sink_messages(env.w, "badcert", rcpt["tlsreq-no"])
    t.ok(m and m[0].get("X-Sink-TLS") == "yes",
         "tlsreq-no: deliver-badcert.test (enforce, wrong certificate) reached over "
         "unverified TLS: the relaxed route ignores the policy")
    m = sink_messages(env.w, "plain", rcpt["tlsreq-folded-tab"])
    t.ok(m and m[0].get("X-Sink-TLS") == "no",
         "tlsreq-folded-tab: deliver-nostarttls.test (enforce, no STARTTLS) reached in clear")
    for name in ("forged-several",):
        m = sink_messages(env.w, "plain", rcpt[name])
        t.ok(m and m[0].get("X-Strictmx-Route-Note") == "keep",
             f"{name}: a header that only starts with the route header's name is kept")
    ml = re.search(rf"message queue_id={qid['forged-several']} .*", mlog)
    t.ok(ml and "route_headers_removed=3" in ml.group(0),
         "forged-several: milter log: route_headers_removed=3", ml.group(0) if ml else "")
    maillog = env.read(env.maillog, ml_off)
    t.ok(re.search(rf"{qid['tlsreq-no']}: (?:milter-header-)?filter: header "
                   r"X-Strictmx-Route: relaxed .*strictmx-relaxed:", maillog),
         "tlsreq-no: cleanup logs the milter_header_checks FILTER strictmx-relaxed:")
    # The milter logs every lookup's verdict (recipient accepted/rejected/deferred, the first
    # at verbosity 3); the daemon logs uncached decisions.
    lookups = [ln for ln in mlog.splitlines() if re.match(r"\S+ recipient ", ln)]
    t.eq(lookups, [], "no requiretls lookup for mail whose sender does not require TLS "
         "(milter log)")
    asked = env.read(pd_log, pd_off)
    t.ok(" profile=requiretls " not in asked,
         "no requiretls lookup for mail whose sender does not require TLS (policyd log)",
         "\n".join(ln for ln in asked.splitlines() if "profile=requiretls" in ln)[:1000])
    return [qid[n] for n in ("tlsreq-yes", "forged-relaxed-badcert") if qid[n]]


def listed_senders(env, t, tag):
    ml_off, m_off = env.offset(env.maillog), env.offset(env.milter_log)

    def rcpt_ok(r, rc, what):
        got = r.rcpt.get(rc)
        return t.ok(r.error is None and got and got[0] == 250, what, f"{vars(r)}")

    def rcpt_code(r, rc, code, xcode, what, text=None):
        got = r.rcpt.get(rc)
        ok = (r.error is None and got is not None and got[0] == code and
              got[1].startswith(xcode + " ") and (text is None or text in got[1]))
        return t.ok(ok, what, f"{vars(r)}")

    # Delivered through strictmx-requiretls, verified TLS.
    deliver = {
        "dane": (LISTED, f"rt-dane-{tag}@dane-signed.test", "dane", "mx.dane-signed.test"),
        "sts": (f"carol-{tag}@{LISTED_DOMAIN}", f"rt-sts-{tag}@deliver-ok.test", "good",
                "mx.deliver-ok.test"),
    }
    qid = {}
    for name, (sender, rc, _, _) in deliver.items():
        # A forged route header goes; with TLS required, "TLS-Required: No" is ignored
        # (RFC 8689 section 5).
        r = session(sender, [rc], message(sender, [rc], f"requiretls {name} {tag}",
                                          "X-Strictmx-Route: relaxed\r\nTLS-Required: No\r\n"))
        rcpt_ok(r, rc, f"{name}: listed sender {sender} to {rc.split('@')[1]}: RCPT 250")
        t.ok(r.data and r.data[0] == 250 and r.qid, f"{name}: DATA 250", f"{vars(r)}")
        qid[name] = r.qid

    # Multi-recipient: only the domain without policy is refused; the message goes on.
    good, bad = f"rt-multi-{tag}@dane-signed.test", f"rt-multi-{tag}@deliver-plain.test"
    r = session(LISTED, [good, bad], message(LISTED, [good, bad], f"requiretls multi {tag}"))
    rcpt_ok(r, good, "multi: RCPT to dane-signed.test 250")
    rcpt_code(r, bad, 550, "5.7.30", "multi: RCPT to deliver-plain.test 550 5.7.30 naming it",
              "deliver-plain.test")
    t.ok(r.data and r.data[0] == 250 and r.qid, "multi: DATA 250", f"{vars(r)}")
    qid["multi"] = r.qid

    # Refused recipients, seen by the client.
    r = session("ALICE@Sender.Test", [f"rt-np-{tag}@nopolicy.test",
                                      f"rt-plain-{tag}@deliver-plain.test"])
    rcpt_code(r, f"rt-np-{tag}@nopolicy.test", 550, "5.7.30",
              "listed sender (other case) to nopolicy.test: 550 5.7.30 naming the domain",
              "nopolicy.test")
    rcpt_code(r, f"rt-plain-{tag}@deliver-plain.test", 550, "5.7.30",
              "listed sender to deliver-plain.test: 550 5.7.30")
    r = session(f"dave-{tag}@{LISTED_DOMAIN.upper()}", [f"rt-np2-{tag}@nopolicy.test"],
                tls=False)
    rcpt_code(r, f"rt-np2-{tag}@nopolicy.test", 550, "5.7.30",
              "@secure-sender.test sender (no STARTTLS on the way in) to nopolicy.test: 550 5.7.30")
    r = session(LISTED, [f"rt-bogus-{tag}@dane-tampered.test", f"rt-down-{tag}@nsdown.test"])
    rcpt_code(r, f"rt-bogus-{tag}@dane-tampered.test", 451, "4.4.3",
              "listed sender to dane-tampered.test (TEMP: bogus TLSA): 451 4.4.3")
    got = r.rcpt.get(f"rt-down-{tag}@nsdown.test")
    t.ok(got and got[0] == 451 and re.match(r"4\.\d+\.\d+ ", got[1]),
         "listed sender to nsdown.test (TEMP: no name server answers): 451 4.x.x", f"{vars(r)}")
    r = session(LISTED, [f"rt-testing-{tag}@testing.test"])
    rcpt_ok(r, f"rt-testing-{tag}@testing.test",
            "listed sender to testing.test (MTA-STS testing counts for requiretls): RCPT 250")

    # Senders that are not listed: a subdomain of a listed domain, another user of the
    # listed address's domain.
    for sender in (f"erin-{tag}@sub.{LISTED_DOMAIN}", f"bob-{tag}@sender.test"):
        rc = f"unlisted-{tag}@nopolicy.test"
        r = session(sender, [rc])
        rcpt_ok(r, rc, f"{sender} is not listed: RCPT to nopolicy.test 250")

    # DANE that cannot authenticate: only unusable TLSA records (dane-unusable.test: refused
    # at RCPT), or a TLSA record that matches no key of the server (dane-mismatch.test: its
    # TLSA is usable, so accepted, then never sent). Nothing reaches the sink.
    failclosed = {}
    for d in ("dane-unusable.test", "dane-mismatch.test"):
        rc = f"rt-fc-{tag}@{d}"
        r = session(LISTED, [rc], message(LISTED, [rc], f"requiretls failclosed {d} {tag}"))
        got = r.rcpt.get(rc)
        if d == "dane-unusable.test":
            # TLSA records exist but none is usable: the requiretls profile says NOTFOUND.
            t.ok(got and got[0] == 550 and got[1].startswith("5.7.30 "),
                 f"{d}: refused at RCPT with 550 5.7.30 (no usable TLSA record)", f"{got}")
        elif got and got[0] == 550:
            t.ok(got[1].startswith("5.7.30 "), f"{d}: refused at RCPT with 5.7.30", f"{got}")
        else:
            t.ok(got and got[0] == 250 and r.qid, f"{d}: RCPT 250 and DATA 250", f"{vars(r)}")
            failclosed[d] = (r.qid, rc)

    wanted = [(qid[n], rc) for n, (_, rc, _, _) in deliver.items() if qid[n]]
    wanted += list(failclosed.values())
    if qid["multi"]:
        wanted.append((qid["multi"], good))
    got = wait_deliveries(env, ml_off, wanted)
    maillog = env.read(env.maillog, ml_off)
    for name, (sender, rc, sink, mx) in deliver.items():
        if not qid[name]:
            continue
        transport, relay, status = got.get((qid[name], rc), (None, None, None))
        t.eq((transport, status), ("strictmx-requiretls", "sent"),
             f"{name}: sent through strictmx-requiretls")
        t.ok(re.search(rf"postfix/strictmx-requiretls/smtp\[\d+\]: Verified TLS connection "
                       rf"established to {re.escape(mx)}\[", maillog),
             f"{name}: Verified TLS to {mx} by the strictmx-requiretls transport")
        msgs = sink_messages(env.w, sink, rc)
        if t.eq(len(msgs), 1, f"{name}: sink {sink} received it once"):
            t.eq(msgs[0].get("X-Sink-TLS"), "yes", f"{name}: received over TLS")
            t.eq(route_headers(msgs[0]), ["requiretls"],
                 f"{name}: delivered with one X-Strictmx-Route: requiretls (the client's "
                 f"'relaxed' removed)")
    for d, (q, rc) in failclosed.items():
        t.eq(got.get((q, rc), (None, None, None))[::2], ("strictmx-requiretls", "deferred"),
             f"{d}: deferred by strictmx-requiretls (no authenticated server)")
        t.eq(sink_messages(env.w, "dane", rc), [], f"{d}: sink dane received nothing")
    if qid["multi"]:
        t.eq(got.get((qid["multi"], good), (None, None, None))[::2],
             ("strictmx-requiretls", "sent"), "multi: sent to dane-signed.test")
        t.ok(f"{qid['multi']}: to=<{bad}>" not in maillog,
             "multi: no delivery attempt for the refused recipient")
        t.eq(len(sink_messages(env.w, "dane", good)), 1, "multi: sink dane received it")
        t.eq(sink_messages(env.w, "plain", bad), [], "multi: sink plain received nothing")
    mlog = env.read(env.milter_log, m_off)
    t.ok(re.search(rf"recipient rejected .*to=rt-np-{tag}@nopolicy\.test .*"
                   r'reply="550 5\.7\.30 ', mlog),
         "milter log: recipient rejected ... reply=\"550 5.7.30 ...\"")
    t.ok(re.search(rf"recipient deferred .*to=rt-bogus-{tag}@dane-tampered\.test .*"
                   r'reply="451 4\.4\.3 ', mlog),
         "milter log: recipient deferred ... reply=\"451 4.4.3 ...\"")
    if qid["dane"]:
        m = re.search(rf"message queue_id={qid['dane']} .*", mlog)
        t.ok(m and " route=requiretls " in m.group(0) and "route_headers_removed=1" in m.group(0),
             "dane: milter log: message queue_id=... route=requiretls route_headers_removed=1",
             m.group(0) if m else "")
    for name, level in (("dane", "dane-only"), ("sts", "secure")):
        rc = deliver[name][1]
        t.ok(re.search(rf"recipient accepted .*to={re.escape(rc)} level={level}", mlog),
             f"{name}: milter log: recipient accepted level={level}")


def policy_unreachable(env, t, tag):
    off = env.offset(env.dead_log)
    rc = f"dead-{tag}@dane-signed.test"
    r = session(LISTED, [rc], message(LISTED, [rc], f"dead policy {tag}"), port=2525)
    got = r.rcpt.get(rc)
    t.ok(r.error is None and got and got[0] == 451 and got[1].startswith("4.4.3 "),
         "policy daemon unreachable: listed sender's RCPT 451 4.4.3 (never accepted)",
         f"{vars(r)}")
    t.eq(r.data, None, "policy daemon unreachable: no DATA")
    rc2 = f"dead-plain-{tag}@deliver-plain.test"
    r = session(f"bob-{tag}@client.test", [rc2], port=2525)
    got = r.rcpt.get(rc2)
    t.ok(got and got[0] == 250, "policy daemon unreachable: mail not requiring TLS still 250",
         f"{vars(r)}")
    log = env.read(env.dead_log, off)
    t.ok(re.search(rf"recipient deferred .*to={re.escape(rc)} .*{CLOSED_PORT}", log),
         f"milter log: recipient deferred, naming the closed port {CLOSED_PORT}", log[-1500:])


def milter_down(env, t, tag):
    r = session(f"bob-{tag}@client.test", [f"down-{tag}@deliver-plain.test"], port=2526,
                tls=False)
    t.ok(r.error is None and r.mail and r.mail[0] == 451 and r.mail[1].startswith("4.7.1 "),
         "milter not running: MAIL FROM answered 451 4.7.1 (milter_default_action = tempfail)",
         f"{vars(r)}")
    t.eq(r.rcpt, {}, "milter not running: no RCPT accepted")
    # With STARTTLS the refusal comes one step earlier: smtpd declines TLS (454 4.3.0).
    r = session(LISTED, [f"down-{tag}@dane-signed.test"], port=2526, tls=True)
    t.ok(r.mail is None and r.error and "454" in r.error,
         "milter not running: STARTTLS answered 454, no MAIL FROM", f"{vars(r)}")


def local_submission(env, t, tag):
    """non_smtpd_milters: sendmail(1) submissions pass the milter too."""
    ml_off, m_off = env.offset(env.maillog), env.offset(env.milter_log)
    menv = dict(os.environ, MAIL_CONFIG=env.etc)
    rc = f"sendmail-{tag}@deliver-badcert.test"
    p = subprocess.run(["sendmail", "-f", f"bob-{tag}@client.test", rc], env=menv,
                       input=message(f"bob-{tag}@client.test", [rc], f"sendmail relaxed {tag}",
                                     "TLS-Required: No\r\n").replace("\r\n", "\n"),
                       text=True, capture_output=True)
    t.ok(p.returncode == 0, "sendmail: submitted with TLS-Required: No", p.stderr)
    got = {}

    def seen():
        got.update({k[1]: v for k, v in deliveries(env, ml_off).items()})
        return rc in got
    itlib.wait_for(seen, 40, 0.3)
    t.eq(got.get(rc, (None, None, None))[::2], ("strictmx-relaxed", "sent"),
         "sendmail + TLS-Required: No: sent through strictmx-relaxed (non_smtpd_milters)")

    # MILTER_README: a non_smtpd_milters application must not reject or tempfail a
    # (simulated) RCPT TO; Postfix then reports a configuration error and keeps the mail.
    rc = f"sendmail-np-{tag}@nopolicy.test"
    off = env.offset(env.maillog)
    p = subprocess.run(["sendmail", "-f", LISTED, rc], env=menv,
                       input=message(LISTED, [rc], f"sendmail refused {tag}").replace("\r\n", "\n"),
                       text=True, capture_output=True)
    t.ok(p.returncode == 0, "sendmail: listed sender to nopolicy.test is accepted by sendmail",
         p.stderr)
    itlib.wait_for(lambda: "nopolicy" in env.read(env.maillog, off) or
                   "milter" in env.read(env.maillog, off), 15, 0.3)
    time.sleep(2)
    text = env.read(env.maillog, off)
    t.ok(not re.search(rf"to=<{re.escape(rc)}>.* status=", text),
         "sendmail: the refused recipient gets no delivery attempt")
    q = subprocess.run(["postqueue", "-c", env.etc, "-j"], capture_output=True, text=True).stdout
    maildrop = glob.glob(os.path.join(env.pf, "queue", "maildrop", "*"))
    t.ok(rc in q or maildrop, "sendmail: the message stays in the queue (maildrop or queue)",
         f"postqueue -j: {q[:500]!r}; maildrop: {maildrop}")
    t.ok(re.search(rf"cleanup\[\d+\]: (\w+): milter-reject: RCPT from .*5\.7\.30 .*"
                   rf"to=<{re.escape(rc)}>", text),
         "sendmail: cleanup logs milter-reject: RCPT ... 5.7.30", text[-1500:])
    t.ok("milter configuration error: can't reject recipient in non-smtpd(8) submission"
         in text and "message not accepted, try again later" in text,
         "sendmail: Postfix logs a milter configuration error and keeps the message "
         "(MILTER_README)", text[-1500:])
    # Leave nothing behind for pickup to retry.
    for path in maildrop:
        os.unlink(path)


def concurrent(env, t, tag):
    ml_off = env.offset(env.maillog)
    sync = threading.Barrier(SESSIONS, timeout=90)
    results = [None] * SESSIONS
    plan = []
    for i in range(SESSIONS):
        kind = i % 3
        if kind == 0:
            sender, rc, want = f"bob-{tag}@client.test", f"load{i}-{tag}@deliver-plain.test", 250
        elif kind == 1:
            sender, rc, want = LISTED, f"load{i}-{tag}@nopolicy.test", 550
        else:
            sender, rc, want = f"load{i}@{LISTED_DOMAIN}", f"load{i}-{tag}@dane-signed.test", 250
        plan.append((sender, rc, want))

    def run(i):
        sender, rc, want = plan[i]
        text = message(sender, [rc], f"load {i} {tag}") if want == 250 else None
        results[i] = session(sender, [rc], text, tls=(i % 2 == 0), sync=sync)

    threads = [threading.Thread(target=run, args=(i,)) for i in range(SESSIONS)]
    start = time.monotonic()
    for th in threads:
        th.start()
    for th in threads:
        th.join(180)
    took = time.monotonic() - start
    bad = []
    wanted = []
    for i, (sender, rc, want) in enumerate(plan):
        r = results[i]
        got = r.rcpt.get(rc) if r else None
        ok = r is not None and r.error is None and got is not None and got[0] == want
        if ok and want == 550:
            ok = got[1].startswith("5.7.30 ")
        if ok and want == 250:
            ok = bool(r.data and r.data[0] == 250 and r.qid)
            wanted.append((r.qid, rc))
        if not ok:
            bad.append((i, plan[i], vars(r) if r else None))
    t.ok(not bad, f"{SESSIONS} concurrent sessions ({took:.1f} s): every RCPT and DATA reply "
         f"as expected", f"{len(bad)} wrong, first: {bad[:3]}")
    got = wait_deliveries(env, ml_off, wanted, timeout=120)
    wrong = []
    for q, rc in wanted:
        transport, _, status = got.get((q, rc), (None, None, None))
        want_t = "strictmx-requiretls" if rc.endswith("@dane-signed.test") else "smtp"
        if (transport, status) != (want_t, "sent"):
            wrong.append((q, rc, transport, status))
    t.ok(not wrong, f"{len(wanted)} accepted messages of the concurrent sessions sent, each "
         f"through its route", f"{wrong[:5]}")


class RecordingProxy:
    """Between miltertest and the milter: forwards bytes both ways and records the reply
    text of each SMFIR_REPLYCODE packet ('y') the milter sends."""

    def __init__(self, listen, target):
        self.replies = []
        self.srv = socket.create_server(listen)
        self.target = target
        threading.Thread(target=self.accept, daemon=True).start()

    def accept(self):
        while True:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            m = socket.create_connection(self.target)
            threading.Thread(target=self.pump, args=(c, m, False), daemon=True).start()
            threading.Thread(target=self.pump, args=(m, c, True), daemon=True).start()

    def pump(self, src, dst, record):
        buf = b""
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                dst.sendall(data)
                if record:
                    buf += data
                    while len(buf) >= 5:
                        (n,) = struct.unpack(">I", buf[:4])
                        if len(buf) < 4 + n:
                            break
                        cmd, payload = buf[4:5], buf[5:4 + n]
                        buf = buf[4 + n:]
                        if cmd == b"y":
                            self.replies.append(payload.rstrip(b"\0").decode(errors="replace"))
        except OSError:
            pass
        finally:
            for s in (src, dst):
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.srv.close()


def miltertest(env, t, tag):
    if not t.ok(shutil.which("miltertest") is not None, "miltertest is installed"):
        return
    proxy = RecordingProxy(PROXY, MILTER)
    try:
        for script, replies in (("requiretls_tls", ["550 5.7.30 "]),
                                ("requiretls_notls", ["530 5.7.10 "])):
            off = env.offset(env.milter_log)
            before = len(proxy.replies)
            p = subprocess.run(["miltertest", "-D", f"socket=inet:{PROXY[1]}@{PROXY[0]}",
                                "-D", f"tag={tag}",
                                "-s", os.path.join(HERE, "milter", f"{script}.lua")],
                               capture_output=True, text=True, timeout=120)
            t.ok(p.returncode == 0, f"miltertest {script}.lua passes", p.stdout + p.stderr)
            time.sleep(0.3)
            got = proxy.replies[before:]
            t.ok(len(got) == len(replies) and all(g.startswith(w) for g, w in zip(got, replies)),
                 f"{script}: the milter's reply text starts with {replies}", f"{got}")
            log = env.read(env.milter_log, off)
            if script == "requiretls_tls":
                t.ok(re.search(rf"recipient rejected queue_id=MT{tag}A .*to=rt-{tag}@nopolicy\.test"
                               r' .*requires=REQUIRETLS .*reply="550 5\.7\.30 ', log),
                     "requiretls_tls: milter log: nopolicy.test rejected 550 5.7.30", log)
                t.ok(re.search(rf"recipient accepted queue_id=MT{tag}A "
                               rf"to=rt-{tag}@dane-signed\.test level=dane-only", log),
                     "requiretls_tls: milter log: dane-signed.test accepted (dane-only)", log)
                t.ok(re.search(rf"message queue_id=MT{tag}A .*route=requiretls why=REQUIRETLS",
                               log), "requiretls_tls: milter log: route=requiretls why=REQUIRETLS",
                     log)
            else:
                t.ok(re.search(rf"REQUIRETLS without TLS rejected .*from=rt-{tag}@client\.test",
                               log), "requiretls_notls: milter log: REQUIRETLS without TLS "
                     "rejected", log)
    finally:
        proxy.close()


def main():
    w = itlib.workdir()
    t = itlib.Checks("milter")
    env = Env(w)
    tag = f"t{int(time.time())}{os.getpid()}"
    try:
        if setup(env, t):
            premises(env, t)
            unlisted_and_relaxed(env, t, tag)
            listed_senders(env, t, tag)
            policy_unreachable(env, t, tag)
            milter_down(env, t, tag)
            miltertest(env, t, tag)
            local_submission(env, t, tag)
            concurrent(env, t, tag)
            for p, name in zip(env.procs, ("milter", "milter-deadpolicy")):
                t.ok(p.poll() is None, f"{name} still runs at the end")
    finally:
        teardown(env)
    for p, name in zip(env.procs, ("milter", "milter-deadpolicy")):
        t.eq(p.returncode, 0, f"{name} exits 0 on SIGTERM")
    t.done()


if __name__ == "__main__":
    main()
