#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""HTTPS MTA-STS policy server of the test internet: one listener, a certificate
chosen by SNI, and a behaviour per host (RFC 8461 section 3.3 fetch rules).

Usage:
  policy_server.py --hosts                      print every mta-sts.D host name
  policy_server.py --workdir W [--port 8443]    serve; logs go to W/https/

Every host is mta-sts.<D> for a domain D below. Requests are logged one per line to
W/https/requests.log (time, SNI, Host, method, path, status, User-Agent) and TLS handshakes to
W/https/tls.log, so tests can count fetches. While W/https/down exists every
request gets a 503 (used to prove that an answer came from the cache).
"""

import argparse
import http.server
import os
import socketserver
import ssl
import sys
import threading
import time

CRLF, LF = "\r\n", "\n"
WELL_KNOWN = "/.well-known/mta-sts.txt"


def policy(mode="enforce", mx=(), max_age=86400, eol=CRLF, extra=(),
           version="STSv1"):
    lines = []
    if version is not None:
        lines.append(f"version: {version}")
    if mode is not None:
        lines.append(f"mode: {mode}")
    lines += [f"mx: {m}" for m in mx]
    if max_age is not None:
        lines.append(f"max_age: {max_age}")
    lines += list(extra)
    return (eol.join(lines) + eol).encode()


def raw(*lines, eol=CRLF):
    return (eol.join(lines) + eol).encode()


# domain -> behaviour. Keys: body (bytes; default: a valid enforce policy with
# "mx: mx1.D"), status, ctype, cert (certificate name in W/pki; default the host),
# delay (seconds before answering), drip (seconds between body bytes), headers.
HOSTS = {}


def host(domain, **kw):
    kw.setdefault("body", policy(mx=[f"mx1.{domain}"]))
    kw.setdefault("status", 200)
    kw.setdefault("ctype", "text/plain")
    kw.setdefault("cert", f"mta-sts.{domain}")
    kw.setdefault("delay", 0)
    kw.setdefault("drip", 0)
    kw.setdefault("headers", {})
    HOSTS[f"mta-sts.{domain}"] = kw


# Valid policies.
host("enforce.test", body=policy(mx=["mx1.enforce.test", "*.pool.enforce.test"]))
host("testing.test", body=policy("testing", ["mx1.testing.test"]))
host("none.test", body=policy("none", ["mx1.none.test"]))
host("lf.test", body=policy(mx=["mx1.lf.test"], eol=LF))
host("charset.test", ctype="text/plain; charset=utf-8")
host("maxage.test", body=policy(mx=["mx1.maxage.test"], max_age=99999999))
host("wild.test", body=policy(mx=["zz.wild.test", "aa.wild.test", "*.pool.wild.test"]))
host("extrakeys.test", body=policy(mx=["mx1.extrakeys.test"],
                                     extra=["x-unknown-key: some value", "comment: ignored"]))
# RFC 8461 section 3.2: a repeated non-mx field keeps its first value.
host("dupmode.test", body=raw("version: STSv1", "mode: enforce", "mode: none",
                              "mx: mx1.dupmode.test", "max_age: 86400", "max_age: 1"))

# Transport and HTTP failures: each serves an otherwise valid enforce policy, so
# an OK answer means the check was skipped.
host("redirect.test", status=301,
     headers={"Location": "https://mta-sts.enforce.test/.well-known/mta-sts.txt"})
host("wrongcert.test", cert="wrong-name.test")
host("untrusted.test", cert="untrusted")
host("expiredcert.test", cert="expired")
host("wrongtype.test", ctype="text/html")
host("notfound.test", status=404)
host("slow.test", delay=30)
# Headers at once, then one body byte every half second (about 47 s in all):
# only a timeout on the whole transfer stops this.
host("drip.test", drip=0.5)
host("oversized.test", body=policy(mx=["mx1.oversized.test"]) +
     b"".join(b"x-pad: " + b"a" * 92 + b"\r\n" for _ in range(700)))  # ~70 KB

# Invalid policy bodies.
host("badpolicy.test", body=policy(mode=None, mx=["mx1.badpolicy.test"]))
host("badversion.test", body=policy(mx=["mx1.badversion.test"], version="STSv2"))
host("badmode.test", body=policy("enforcing", ["mx1.badmode.test"]))
host("nomx.test", body=policy(mx=[]))
host("badmaxage.test", body=policy(mx=["mx1.badmaxage.test"], max_age="-1"))
host("nulbyte.test", body=policy(mx=["mx1.nulbyte.test\x00.evil.test", "mx1.nulbyte.test"]))
# 2000 exact mx names (about 46 KB of policy, 38 KB of match=): fits a socketmap
# reply (100,000 bytes), not a tcp_table reply (4,096 bytes).
host("manymx.test", body=policy(mx=[f"h{i:04d}.manymx.test" for i in range(2000)]))

# Hostile mx: values: each makes its policy invalid.
host("ippattern.test", body=policy(mx=["192.0.2.1", "[127.0.0.1]", "mx1.ippattern.test"]))
host("badwild.test", body=policy(mx=["*.*.x.test", "foo.*.test", "*", "*.", ".test",
                                     "mx1.badwild.test"]))
host("injection.test", body=policy(mx=[
    "mx1.inj.test match=evil",
    "mx2.injection.test}",
    "{ mx3.injection.test }",
    "mx4.injection.test servername=evil",
    "mx5.injection.test:evil.test",
    "mx6.injection.test;evil",
    "mx7.injection.test\tservername=evil",
    "mx1.injection.test",
]))
host("allbad.test", body=policy(mx=["192.0.2.1", "*.*.allbad.test", "evil.test match=x"]))
# Hostile text in unknown fields: the policy is valid; only the policy_string
# attributes of the postfix-tlsrpt profile could carry it.
host("tlsrptinject.test", body=policy(mx=["mx1.tlsrptinject.test"], extra=[
    "x-inject: } match=evil.test {",
    "x-brace: {",
    "x-close: }",
    "x-attr: servername=evil.test policy_type=evil",
]))

# TXT record edge cases (the policy itself is valid).
for d in ("badtxt", "twotxt", "notxt", "splittxt", "extra-fields", "wstxt", "nospacetxt",
          "casetxt", "upperidtxt", "longidtxt", "id32txt", "spfmix"):
    host(f"{d}.test")

# Child zones with other DNSSEC states.
for d in ("sts-insecure", "sts-bogus", "sts-tampered"):
    host(f"{d}.test")

# DANE and MTA-STS together: the policy is valid, DANE must win.
host("dane-sts.test", body=policy(mx=["mx.dane-sts.test"]))

# Hostile MX host names in DNS (t_hostile_dns.py): valid enforce policies whose *.
# pattern the forged names under it would match as text.
for d in ("hostile-sts", "hostile-only", "hostile-bytes", "hostile-signed",
          "hostile-signed-only"):
    host(f"{d}.test", body=policy(mx=[f"*.pool.{d}.test"]))
host("hostile-dane.test", body=policy(mx=["*.hostile-dane.test"]))

# Partial DANE under an enforce policy that covers every MX host (t_partial_dane.py).
for d in ("dane-partial-sts", "dane-partial-sts-tls", "dane-partial-sts-ok"):
    host(f"{d}.test", body=policy(mx=[f"*.{d}.test"]))

# Delivery tests.
for d in ("deliver-ok", "deliver-badcert", "deliver-nostarttls"):
    host(f"{d}.test", body=policy(mx=[f"mx.{d}.test"]))


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(self, addr, workdir):
        self.workdir = workdir
        self.logdir = os.path.join(workdir, "https")
        self.lock = threading.Lock()
        self.contexts = {}
        pki = os.path.join(workdir, "pki")
        for name in {h["cert"] for h in HOSTS.values()}:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(os.path.join(pki, name + ".pem"),
                                os.path.join(pki, name + ".key"))
            self.contexts[name] = ctx
        self.default_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.default_ctx.load_cert_chain(os.path.join(pki, "mta-sts.enforce.test.pem"),
                                         os.path.join(pki, "mta-sts.enforce.test.key"))
        self.default_ctx.sni_callback = self.choose_cert
        super().__init__(addr, Handler)

    def log(self, fname, *fields):
        line = "\t".join([f"{time.time():.3f}"] + [str(f) for f in fields]) + "\n"
        with self.lock, open(os.path.join(self.logdir, fname), "a") as f:
            f.write(line)

    def choose_cert(self, sslobj, server_name, _ctx):
        spec = HOSTS.get((server_name or "").lower())
        certname = spec["cert"] if spec else "mta-sts.enforce.test"
        sslobj.testnet_sni = server_name
        sslobj.context = self.contexts.get(certname, self.default_ctx)
        self.log("tls.log", server_name or "-", certname)
        return None

    def finish_request(self, request, client_address):
        # Handshake in the worker thread, so a slow client blocks nobody.
        request.settimeout(10)
        try:
            tls = self.default_ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError) as e:
            self.log("tls.log", "-", "handshake-failed", type(e).__name__, str(e)[:120])
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "testnet-mta-sts"
    sys_version = ""

    def log_message(self, *args):
        pass

    def do_GET(self):
        srv = self.server
        sni = getattr(self.connection, "testnet_sni", None) or "-"
        hostname = (self.headers.get("Host") or "").split(":")[0].lower()
        spec = HOSTS.get(hostname)
        if os.path.exists(os.path.join(srv.logdir, "down")):
            status, body, ctype, headers, delay, drip = 503, b"down\r\n", "text/plain", {}, 0, 0
        elif spec is None or self.path != WELL_KNOWN:
            status, body, ctype, headers, delay, drip = 404, b"not found\r\n", "text/plain", {}, 0, 0
        else:
            status, body, ctype = spec["status"], spec["body"], spec["ctype"]
            headers, delay, drip = spec["headers"], spec["delay"], spec["drip"]
        agent = (self.headers.get("User-Agent") or "-").replace("\t", " ")[:80]
        srv.log("requests.log", sni, hostname or "-", "GET", self.path, status, agent)
        if delay:
            time.sleep(delay)
        try:
            self.send_response(status)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Connection", "close")
            self.end_headers()
            if drip:
                self.wfile.flush()
                for i in range(len(body)):
                    self.wfile.write(body[i:i + 1])
                    self.wfile.flush()
                    time.sleep(drip)
            else:
                self.wfile.write(body)
        except OSError:
            pass


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--hosts", action="store_true")
    ap.add_argument("--workdir")
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8443)
    a = ap.parse_args()
    if a.hosts:
        for h in sorted(HOSTS):
            print(h)
        return 0
    os.makedirs(os.path.join(a.workdir, "https"), exist_ok=True)
    srv = Server((a.address, a.port), a.workdir)
    with open(os.path.join(a.workdir, "https", "ready"), "w") as f:
        f.write(f"{os.getpid()}\n")
    srv.serve_forever()
    return 0


if __name__ == "__main__":
    sys.exit(main())
