#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The cold-miss bench internet (see README.md in this directory).

  coldnet.py build --workdir W --requests N --connections "8 32"
      Chooses how many domains the zone needs (keys_for), writes W/dns/cold.test.zone and
      signs it (ldns-keygen, ldns-signzone; NSEC3, no salt, 0 iterations), writes
      W/trust-anchor (DS of cold.test.), the PKI (W/pki: a CA, one certificate per
      mta-sts.cI.cold.test host, all on one key) and one key file per connection count
      (W/keys/cold-C.keys). Prints one summary line.
  coldnet.py serve --workdir W [--port 8443]
      HTTPS MTA-STS policy server for every mta-sts.cI.cold.test host (certificate chosen
      by SNI). Counts requests in W/https/requests.log, one line each.
  coldnet.py stats LOG [--skip LINES]
      Summary of the daemon's verbosity-3 log from line SKIP on: resolutions, their
      dns_rounds, dns_queries, fetches and durations, and the decisions by answer;
      --domains-out FILE: the domains decided, once each (keys for the warm run).

Domain cI.cold.test (I = 0 .. M-1) has MX 10 mx1.cI.cold.test and MX 20 mx2.cI.cold.test,
each with an A record. Even I: DANE, a TLSA 3 1 1 record on _25._tcp of both MX hosts.
Odd I: MTA-STS, a _mta-sts TXT record and an enforce policy naming both MX hosts.
"""

import argparse
import collections
import datetime
import hashlib
import http.server
import os
import re
import socketserver
import ssl
import subprocess
import sys
import threading
import time

ZONE = "cold.test"
LOADGEN_STRIDE = 7919  # strictmx-loadgen: connection c starts at key c * 7919 % keys


def domain(i):
    return f"c{i}.{ZONE}"


def is_dane(i):
    return i % 2 == 0


def policy_body(i):
    d = domain(i)
    return (f"version: STSv1\r\nmode: enforce\r\nmx: mx1.{d}\r\nmx: mx2.{d}\r\n"
            f"max_age: 604800\r\n").encode()


# --- key files ----------------------------------------------------------------------------
def min_gap(length, connections):
    starts = sorted({c * LOADGEN_STRIDE % length for c in range(connections)})
    if len(starts) < connections:
        return 0
    return min((starts[(i + 1) % connections] - starts[i]) % length for i in range(connections))


def keys_for(requests, connections, slack=1.5):
    """Smallest key-file length for which no connection's walk (about requests/connections
    consecutive keys from its start) reaches the start of another's: every request is then
    for a domain nobody asked for before, with room for connections running at different
    speeds (slack)."""
    need = slack * requests / connections
    for length in range(max(requests, connections), 8 * requests + 8 * connections):
        if min_gap(length, connections) >= need:
            return length
    sys.exit(f"coldnet: no key layout for {requests} requests on {connections} connections")


# --- build -----------------------------------------------------------------------------------
def run(args, cwd=None):
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True, text=True).stdout


def build_pki(w, sts_indexes):
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    pki = os.path.join(w, "pki")
    os.makedirs(os.path.join(pki, "sts"), exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    start, end = now - datetime.timedelta(hours=1), now + datetime.timedelta(days=30)

    def pem_key(key):
        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "strictmx bench"),
                         x509.NameAttribute(NameOID.COMMON_NAME, "strictmx bench CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False),
                         critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
          .sign(ca_key, hashes.SHA256()))
    with open(os.path.join(w, "ca.pem"), "wb") as f:
        f.write(ca.public_bytes(serialization.Encoding.PEM))

    # One key for every policy host: certificates are cheap to sign, keys less so.
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    with open(os.path.join(pki, "leaf.key"), "wb") as f:
        f.write(pem_key(leaf_key))
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key())
    ski = x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key())
    for i in sts_indexes:
        host = f"mta-sts.{domain(i)}"
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)]))
                .issuer_name(ca_name).public_key(leaf_key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(start).not_valid_after(end)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                               critical=True)
                .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
                .add_extension(ski, critical=False).add_extension(aki, critical=False)
                .sign(ca_key, hashes.SHA256()))
        with open(os.path.join(pki, "sts", f"c{i}.pem"), "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))

    # The MX hosts' key: only its SPKI digest is needed, for TLSA 3 1 1 (nothing connects
    # to the MX hosts; the daemon answers from DNS).
    mx_key = ec.generate_private_key(ec.SECP256R1())
    spki = mx_key.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(spki).hexdigest()


def build(a):
    w = os.path.abspath(a.workdir)
    conns = [int(c) for c in a.connections.split()]
    lengths = {c: keys_for(a.requests, c) for c in conns}
    m = max(lengths.values())
    sts = [i for i in range(m) if not is_dane(i)]
    t0 = time.monotonic()
    tlsa = build_pki(w, sts)
    t_pki = time.monotonic() - t0

    dnsdir = os.path.join(w, "dns")
    os.makedirs(dnsdir, exist_ok=True)
    src = os.path.join(dnsdir, f"{ZONE}.zone")
    with open(src, "w") as f:
        f.write(f"$ORIGIN {ZONE}.\n$TTL 3600\n"
                f"@\tSOA\tns.{ZONE}. hostmaster.{ZONE}. 1 3600 600 86400 300\n"
                f"@\tNS\tns.{ZONE}.\nns\tA\t127.0.0.1\n")
        for i in range(m):
            d = f"c{i}"
            a1, a2 = f"127.1.{i // 250}.{i % 250 + 1}", f"127.2.{i // 250}.{i % 250 + 1}"
            f.write(f"{d}\tMX\t10 mx1.{d}\n{d}\tMX\t20 mx2.{d}\n"
                    f"mx1.{d}\tA\t{a1}\nmx2.{d}\tA\t{a2}\n")
            if is_dane(i):
                f.write(f"_25._tcp.mx1.{d}\tTLSA\t3 1 1 {tlsa}\n"
                        f"_25._tcp.mx2.{d}\tTLSA\t3 1 1 {tlsa}\n")
            else:
                f.write(f'_mta-sts.{d}\tTXT\t"v=STSv1; id=20260101T000000"\n'
                        f"mta-sts.{d}\tA\t127.0.0.1\n")
    keydir = os.path.join(dnsdir, "keys")
    os.makedirs(keydir, exist_ok=True)
    t0 = time.monotonic()
    key = os.path.join(keydir, run(["ldns-keygen", "-a", "ECDSAP256SHA256", "-k", ZONE + "."],
                                   cwd=keydir).strip())
    now = int(time.time())
    # NSEC3 (RFC 9276: no salt, no extra iterations): unbound does not synthesise answers
    # from cached NSEC3 records, so one domain's denials cannot answer another's queries.
    run(["ldns-signzone", "-n", "-t", "0", "-i", str(now - 3600),
         "-e", str(now + 14 * 86400), "-o", ZONE + ".", "-f", src + ".signed", src, key])
    t_sign = time.monotonic() - t0
    with open(os.path.join(w, "trust-anchor"), "w") as f:
        f.write(run(["ldns-key2ds", "-n", "-2", key + ".key"]))

    keysdir = os.path.join(w, "keys")
    os.makedirs(keysdir, exist_ok=True)
    for c, length in lengths.items():
        with open(os.path.join(keysdir, f"cold-{c}.keys"), "w") as f:
            f.write("".join(domain(i) + "\n" for i in range(length)))
    print(f"zone_domains={m} dane_domains={m - len(sts)} sts_domains={len(sts)} "
          + " ".join(f"keys_c{c}={n}" for c, n in lengths.items())
          + f" pki_s={t_pki:.1f} sign_s={t_sign:.1f}")
    return 0


# --- HTTPS policy server ---------------------------------------------------------------------
HOST_RE = re.compile(r"^mta-sts\.c(\d+)\." + re.escape(ZONE) + r"$")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 256

    def __init__(self, addr, workdir):
        self.workdir = workdir
        self.lock = threading.Lock()
        self.contexts = {}
        self.log = open(os.path.join(workdir, "https", "requests.log"), "a", buffering=1)
        self.ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.ctx.sni_callback = self.choose_cert
        super().__init__(addr, Handler)

    def context_for(self, index):
        with self.lock:
            ctx = self.contexts.get(index)
            if ctx is None:
                ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
                ctx.load_cert_chain(os.path.join(self.workdir, "pki", "sts", f"c{index}.pem"),
                                    os.path.join(self.workdir, "pki", "leaf.key"))
                self.contexts[index] = ctx
            return ctx

    def choose_cert(self, sslobj, server_name, _ctx):
        m = HOST_RE.match((server_name or "").lower())
        if not m or is_dane(int(m.group(1))) or not os.path.exists(
                os.path.join(self.workdir, "pki", "sts", f"c{m.group(1)}.pem")):
            return ssl.ALERT_DESCRIPTION_UNRECOGNIZED_NAME
        sslobj.context = self.context_for(int(m.group(1)))
        return None

    def finish_request(self, request, client_address):
        request.settimeout(10)
        try:
            tls = self.ctx.wrap_socket(request, server_side=True)
        except (ssl.SSLError, OSError):
            with self.lock:
                self.log.write(f"{time.time():.3f}\t-\thandshake-failed\n")
            return
        try:
            self.RequestHandlerClass(tls, client_address, self)
        finally:
            try:
                tls.close()
            except OSError:
                pass


class Handler(http.server.BaseHTTPRequestHandler):
    server_version = "coldnet"
    sys_version = ""

    def log_message(self, *args):
        pass

    def do_GET(self):
        host = (self.headers.get("Host") or "").split(":")[0].lower()
        m = HOST_RE.match(host)
        if m and not is_dane(int(m.group(1))) and self.path == "/.well-known/mta-sts.txt":
            status, body = 200, policy_body(int(m.group(1)))
        else:
            status, body = 404, b"not found\r\n"
        with self.server.lock:
            self.server.log.write(f"{time.time():.3f}\t{host or '-'}\t{status}\n")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)


def serve(a):
    w = os.path.abspath(a.workdir)
    os.makedirs(os.path.join(w, "https"), exist_ok=True)
    Server(("127.0.0.1", a.port), w).serve_forever()
    return 0


# --- log summary -----------------------------------------------------------------------------
RES_RE = re.compile(r"\bresolution domain=(\S+) dns_queries=(\d+) dns_rounds=(\d+) fetch=(\w+) ms=(\d+)")
DEC_RE = re.compile(r"\bdecision domain=(\S+) profile=\S+ answer=(\"[^\"]*\"|\S+)")


def pct(sorted_values, p):
    if not sorted_values:
        return 0
    return sorted_values[min(len(sorted_values) - 1, int(p * len(sorted_values)))]


def hist(counter):
    return ",".join(f"{k}:{counter[k]}" for k in sorted(counter)) or "-"


def stats(a):
    res, answers, decided = [], collections.Counter(), {}
    with open(a.log, errors="replace") as f:
        for n, line in enumerate(f):
            if n < a.skip:
                continue
            m = RES_RE.search(line)
            if m:
                res.append((m.group(1), int(m.group(2)), int(m.group(3)), m.group(4), int(m.group(5))))
                continue
            m = DEC_RE.search(line)
            if m:
                answers[m.group(2).strip('"').split(" ")[0]] += 1
                decided[m.group(1)] = True
    if a.domains_out:
        with open(a.domains_out, "w") as f:
            f.write("".join(d + "\n" for d in decided))
    rounds = collections.Counter(r[2] for r in res)
    queries = collections.Counter(r[1] for r in res)
    ms = sorted(r[4] for r in res)
    print(f"resolutions={len(res)} distinct_domains={len({r[0] for r in res})} "
          f"dns_rounds={hist(rounds)} max_rounds={max(rounds) if rounds else 0} "
          f"dns_queries={hist(queries)} queries_total={sum(r[1] for r in res)} "
          f"fetches={sum(1 for r in res if r[3] == 'yes')} "
          f"resolution_ms_p50={pct(ms, 0.5)} resolution_ms_p99={pct(ms, 0.99)} "
          f"resolution_ms_max={ms[-1] if ms else 0} answers={hist(answers)}")
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    b = sub.add_parser("build")
    b.add_argument("--workdir", required=True)
    b.add_argument("--requests", type=int, default=2000)
    b.add_argument("--connections", default="8 32")
    s = sub.add_parser("serve")
    s.add_argument("--workdir", required=True)
    s.add_argument("--port", type=int, default=8443)
    t = sub.add_parser("stats")
    t.add_argument("log")
    t.add_argument("--skip", type=int, default=0)
    t.add_argument("--domains-out")
    a = ap.parse_args()
    return {"build": build, "serve": serve, "stats": stats}[a.cmd](a)


if __name__ == "__main__":
    sys.exit(main())
