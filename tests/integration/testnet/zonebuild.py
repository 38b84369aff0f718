#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Build and sign the DNS tree of the test internet, fresh on every run.

Usage: zonebuild.py WORKDIR ZONESDIR

Reads ZONESDIR/test.zone, ZONESDIR/children.list and ZONESDIR/children/*.zone,
writes to WORKDIR/dns/: one signed (or unsigned) zone file per zone, the keys,
nsd-zones.conf (the zone: clauses for nsd.conf) and stub-zones.conf (unbound
stub-zone: clauses, see below). Writes the trust anchor, the DS of test., to
WORKDIR/trust-anchor (and its DNSKEY to WORKDIR/trust-anchor.dnskey). Keys are
ECDSAP256SHA256 (one combined signing key per zone); signatures are valid from
one hour ago for 14 days, except in "expired" zones.

A child zone listed with a name server address (third column of
children.list, IP@PORT) is built and, by its mode, signed for its DS, but not
given to nsd: WORKDIR/dns/stub-zones.conf gets an unbound stub-zone clause that
sends its queries to that address instead.

Template placeholders: @SPKI_SHA256:CERT@ and @CERT_SHA256:CERT@ become the
SHA-256 of the public key or of the whole certificate WORKDIR/pki/CERT.pem
(for TLSA 3 1 1 and 3 0 1 records).
"""

import concurrent.futures
import functools
import hashlib
import os
import re
import ssl
import subprocess
import sys
import time

ALG = "ECDSAP256SHA256"


def run(args, cwd=None):
    return subprocess.run(args, cwd=cwd, check=True, capture_output=True,
                          text=True).stdout


@functools.lru_cache(maxsize=None)
def spki_sha256(pem_path):
    der = subprocess.run(
        f"openssl x509 -in '{pem_path}' -noout -pubkey | openssl pkey -pubin -outform DER",
        shell=True, check=True, capture_output=True).stdout
    return hashlib.sha256(der).hexdigest()


@functools.lru_cache(maxsize=None)
def cert_sha256(pem_path):
    with open(pem_path) as f:
        return hashlib.sha256(ssl.PEM_cert_to_DER_cert(f.read())).hexdigest()


def substitute(text, pki):
    def repl(m):
        kind, name = m.group(1), m.group(2)
        path = os.path.join(pki, name + ".pem")
        return spki_sha256(path) if kind == "SPKI" else cert_sha256(path)
    return re.sub(r"@(SPKI|CERT)_SHA256:([A-Za-z0-9._-]+)@", repl, text)


def keygen(keydir, zone):
    base = run(["ldns-keygen", "-a", ALG, "-k", zone + "."], cwd=keydir).strip()
    return os.path.join(keydir, base)


def sign(zonefile, out, origin, key, inception, expiration):
    run(["ldns-signzone", "-i", str(inception), "-e", str(expiration),
         "-o", origin + ".", "-f", out, zonefile, key])


def tamper(signed_path, origin, directives):
    """Replace the data of RRsets after signing, leaving their RRSIGs alone."""
    lines = open(signed_path).read().splitlines()
    for owner, rtype, rdata in directives:
        fqdn = (origin + ".") if owner == "@" else f"{owner}.{origin}."
        hits = 0
        for i, line in enumerate(lines):
            f = line.split()
            if len(f) >= 5 and f[0].lower() == fqdn.lower() and f[3] == rtype:
                lines[i] = "\t".join(f[:4]) + "\t" + rdata
                hits += 1
        if hits == 0:
            sys.exit(f"zonebuild: TAMPER {owner} {rtype}: no such RRset in {origin}")
    with open(signed_path, "w") as f:
        f.write("\n".join(lines) + "\n")


def main():
    workdir, zonesdir = sys.argv[1], sys.argv[2]
    dnsdir = os.path.join(workdir, "dns")
    keydir = os.path.join(dnsdir, "keys")
    pki = os.path.join(workdir, "pki")
    os.makedirs(keydir, exist_ok=True)
    now = int(time.time())
    valid = (now - 3600, now + 14 * 86400)
    expired = (now - 30 * 86400, now - 15 * 86400)

    children = []       # (name, mode, server or None, template text, source file)
    for line in open(os.path.join(zonesdir, "children.list")):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        fields = line.split()
        if len(fields) not in (2, 3):
            sys.exit(f"zonebuild: children.list: bad line {line!r}")
        name, mode = fields[:2]
        server = fields[2] if len(fields) == 3 else None
        if mode not in ("signed", "unsigned", "expired", "tampered"):
            sys.exit(f"zonebuild: {name}: unknown mode {mode}")
        if server and not re.fullmatch(r"\d+\.\d+\.\d+\.\d+@\d+", server):
            sys.exit(f"zonebuild: {name}: name server must be IP@PORT, not {server!r}")
        text = substitute(open(os.path.join(zonesdir, "children", name + ".zone")).read(), pki)
        src = os.path.join(dnsdir, name + ".zone")
        with open(src, "w") as f:
            f.write(text)
        children.append((name, mode, server, text, src))

    def build(child):
        """Sign one child zone: (delegation lines for test., file for nsd or None)."""
        name, mode, server, text, src = child
        delegations = [f"{name[:-len('.test')]}\tNS\tns.test."]
        if mode == "unsigned":
            return delegations, None if server else src
        key = keygen(keydir, name)
        out = src + ".signed"
        sign(src, out, name, key, *(expired if mode == "expired" else valid))
        if mode == "tampered":
            directives = re.findall(r"^;TAMPER\s+(\S+)\s+(\S+)\s+(.*)$", text, re.M)
            if not directives:
                sys.exit(f"zonebuild: {name}: mode tampered but no ;TAMPER line")
            tamper(out, name, directives)
        for ds in run(["ldns-key2ds", "-n", "-2", key + ".key"]).splitlines():
            if ds.strip():
                delegations.append(ds.strip())
        return delegations, None if server else out

    zones = []          # (name, file served by nsd)
    delegations = []    # lines appended to test.
    stubs = [(c[0], c[2]) for c in children if c[2]]  # (name, IP@PORT of its name server)
    # Key generation and signing are one process per call: do the zones side by side.
    with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
        for child, (lines, served) in zip(children, pool.map(build, children)):
            delegations += lines
            if served:
                zones.append((child[0], served))

    parent_src = os.path.join(dnsdir, "test.zone")
    with open(parent_src, "w") as f:
        f.write(substitute(open(os.path.join(zonesdir, "test.zone")).read(), pki))
        f.write("\n;; Delegations to the child zones (generated)\n")
        f.write("\n".join(delegations) + "\n")
    key = keygen(keydir, "test")
    sign(parent_src, parent_src + ".signed", "test", key, *valid)
    zones.insert(0, ("test", parent_src + ".signed"))

    with open(os.path.join(workdir, "trust-anchor"), "w") as f:
        f.write(run(["ldns-key2ds", "-n", "-2", key + ".key"]))
    with open(os.path.join(workdir, "trust-anchor.dnskey"), "w") as f:
        f.write(open(key + ".key").read())
    with open(os.path.join(dnsdir, "nsd-zones.conf"), "w") as f:
        for name, path in zones:
            f.write(f"zone:\n\tname: \"{name}.\"\n\tzonefile: \"{path}\"\n")
    with open(os.path.join(dnsdir, "stub-zones.conf"), "w") as f:
        for name, server in stubs:
            f.write(f"stub-zone:\n\tname: \"{name}.\"\n\tstub-addr: {server}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
