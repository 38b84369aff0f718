#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The Debian split-configuration variant, contrib/exim/debian/conf.d:

 1. It says the same as the monolithic files (strictmx-*.conf), apart from the
    documented Debian differences (STRICTMX_DOMAINS, STRICTMX_IGNORE_TARGET_HOSTS
    equal to Debian's own ROUTER_DNSLOOKUP_IGNORE_TARGET_HOSTS, no dns_dnssec_ok,
    the DCconfig_internet guard, the remote_smtp macro hooks).
 2. Dropped into the conf.d of Debian's exim4-config package (unpacked beside the
    Exim binary), update-exim4.conf builds a configuration that Exim loads; routing
    (exim -bt) goes through the strictmx routers before Debian's dnslookup router;
    a message to deliver-ok.test leaves through strictmx_sts_smtp with a verified
    certificate, and one to deliver-badcert.test is deferred.

Usage: t_exim_debian.py WORKDIR EXIM_CACHE
"""

import os
import re
import shutil
import subprocess
import sys
import time

sys.dont_write_bytecode = True  # keep the source tree clean
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import eximlib  # noqa: E402
from eximlib import itlib  # noqa: E402

PORT = 8475
DEBIAN = os.path.join(eximlib.CONTRIB, "debian", "conf.d")
PAIRS = [("main/50_strictmx", "strictmx-main.conf"),
         ("acl/50_strictmx", "strictmx-acl.conf"),
         ("router/190_strictmx", "strictmx-routers.conf"),
         ("transport/30_strictmx", "strictmx-transports.conf")]


def logical_lines(text, debian):
    """Exim's view of a file: comments and blank lines dropped, continuation lines
    joined. For Debian files, the DCconfig_internet guard and the .ifdef blocks of
    Debian's remote_smtp macro hooks are dropped too (strictmx's own .ifdef STRICTMX_
    switches stay)."""
    joined, cur = [], None
    for raw in text.splitlines():
        s = raw.strip()
        if cur is None and (not s or s.startswith("#")):
            continue
        if cur is not None:
            s = cur + s
        if s.endswith("\\"):
            cur = s[:-1]
            continue
        cur = None
        joined.append(s)
    if not debian:
        return joined
    out, stack = [], []
    for s in joined:
        if s.startswith(".ifdef STRICTMX_"):  # strictmx's own switches (STRICTMX_TLSRPT)
            stack.append("keep")
            out.append(s)
            continue
        if s.startswith(".ifdef "):
            stack.append("guard" if s == ".ifdef DCconfig_internet" else "hook")
            continue
        if s.startswith(".ifndef "):
            stack.append("keep")
        elif s == ".endif":
            kind = stack.pop()
            if kind != "keep":
                continue
        if "hook" in stack:
            continue
        out.append(s)
    return out


def macro_value(lines, name):
    for s in lines:
        m = re.fullmatch(rf"{name}\s*=\s*(.*)", s)
        if m:
            return m.group(1)
    return None


def check_same(t, cache):
    for deb, mono in PAIRS:
        with open(os.path.join(DEBIAN, deb)) as f:
            d = logical_lines(f.read(), True)
        with open(os.path.join(eximlib.CONTRIB, mono)) as f:
            m = logical_lines(f.read(), False)
        if deb.startswith("main/"):
            t.eq(macro_value(d, "STRICTMX_DOMAINS"), "! +local_domains : ! +relay_to_domains",
                 "debian main: STRICTMX_DOMAINS leaves out local and relayed domains")
            with open(os.path.join(cache, "root/etc/exim4/conf.d/router/"
                                   "200_exim4-config_primary")) as f:
                primary = logical_lines(f.read(), False)
            want = macro_value(primary, "ROUTER_DNSLOOKUP_IGNORE_TARGET_HOSTS")
            got = macro_value(d, "STRICTMX_IGNORE_TARGET_HOSTS")
            t.ok(want and got and want.startswith("<;") and
                 [x.strip() for x in want[2:].split(";")] == [x.strip() for x in got.split(";")],
                 "debian main: STRICTMX_IGNORE_TARGET_HOSTS is Debian's "
                 "ROUTER_DNSLOOKUP_IGNORE_TARGET_HOSTS", f"got {got!r}\n       want {want!r}")
            t.ok("dns_dnssec_ok = 1" in m and not any(s.startswith("dns_dnssec_ok") for s in d),
                 "debian main: no dns_dnssec_ok (main/02_exim4-config_options sets it)")
            drop = ("STRICTMX_DOMAINS =", "STRICTMX_IGNORE_TARGET_HOSTS =", "dns_dnssec_ok")
            d = [s for s in d if not s.startswith(drop)]
            m = [s for s in m if not s.startswith(drop)]
        diff = [x for x in m if x not in d] + [x for x in d if x not in m]
        t.ok(d == m, f"debian/conf.d/{deb} says the same as {mono} ({len(d)} lines)",
             "differences:\n       " + "\n       ".join(diff[:10]))


def main():
    w, cache = eximlib.args()
    t = itlib.Checks("exim_debian")
    check_same(t, cache)

    base = os.path.join(w, "exim-debian")
    shutil.rmtree(base, ignore_errors=True)
    users = eximlib.Users(os.path.join(base, "etc"))
    daemon = eximlib.Policyd(w, os.path.join(base, "policyd"),
                             [{"type": "exim", "address": f"inet:127.0.0.1:{PORT}"}])
    try:
        daemon.start()
    except Exception as e:  # noqa: BLE001
        t.ok(False, "strictmx-policyd with an Exim listener starts", str(e))
        t.done()
    try:
        run(t, w, cache, base, users)
    finally:
        daemon.stop()
    if t.failed:
        print("----- strictmx-policyd log (last lines)\n" + daemon.tail(15))
    t.done()


def run(t, w, cache, base, users):
    confdir = os.path.join(base, "exim4")
    shutil.copytree(os.path.join(cache, "root", "etc", "exim4"), confdir)
    for deb, _ in PAIRS:
        shutil.copyfile(os.path.join(DEBIAN, deb), os.path.join(confdir, "conf.d", deb))
    spool, logdir = os.path.join(base, "spool"), os.path.join(base, "log")
    for d in (spool, logdir):
        os.makedirs(d)
        os.chown(d, users.uid, users.gid)
    ca = os.path.join(base, "ca.pem")
    shutil.copyfile(os.path.join(w, "ca.pem"), ca)
    os.chmod(ca, 0o644)
    # What an administrator puts in conf.d/main/000_localmacros, plus the test paths.
    with open(os.path.join(confdir, "conf.d", "main", "000_localmacros"), "w") as f:
        f.write(f"""# strictmx integration test
STRICTMX_SOCKET = inet:127.0.0.1:{PORT}
STRICTMX_TLS_CA = {ca}
# The test internet lives on 127.0.0.0/8.
STRICTMX_IGNORE_TARGET_HOSTS = 0.0.0.0
ROUTER_DNSLOOKUP_IGNORE_TARGET_HOSTS = <; 0.0.0.0
REMOTE_SMTP_HELO_DATA = helo.{eximlib.CLIENT}
MAIN_QUALIFY_DOMAIN = {eximlib.CLIENT}
MAIN_HARDCODE_PRIMARY_HOSTNAME = {eximlib.CLIENT}
CONFDIR = {confdir}
SPOOLDIR = {spool}
log_file_path = {logdir}/%slog
MAIN_LOG_SELECTOR = +tls_peerdn +tls_sni +tls_certificate_verified +outgoing_port
""")
    with open(os.path.join(confdir, "update-exim4.conf.conf"), "w") as f:
        f.write(f"""dc_eximconfig_configtype='internet'
dc_other_hostnames='{eximlib.CLIENT}'
dc_local_interfaces='127.0.0.3'
dc_readhost=''
dc_relay_domains=''
dc_minimaldns='false'
dc_relay_nets=''
dc_smarthost=''
CFILEMODE='644'
dc_use_split_config='true'
dc_hide_mailname=''
dc_mailname_in_oh='true'
dc_localdelivery='mail_spool'
""")
    conf = os.path.join(base, "exim4.conf")
    gen = os.path.join(cache, "root", "usr", "sbin", "update-exim4.conf")
    # update-exim4.conf chowns its output to group Debian-exim.
    p = subprocess.run(users.wrap(["sh", gen, "--confdir", confdir, "-o", conf]),
                       capture_output=True, text=True)
    if not t.ok(p.returncode == 0 and os.path.exists(conf),
                "update-exim4.conf builds the configuration with the strictmx conf.d files",
                p.stdout + p.stderr):
        return
    with open(conf) as f:
        text = f.read()
    names = ("STRICTMX_QUERY =", "strictmx_mxcheck:", "strictmx_policy:", "strictmx_sts_smtp:")
    t.ok(all(n in text for n in names) and
         text.index("strictmx_policy:") < text.index("\ndnslookup_relay_to_domains:"),
         "the strictmx files are in it, the routers before Debian's dnslookup routers")
    # Deliveries re-execute Exim: point exim_path at the unpacked binary (the only change
    # to the generated file).
    exim = eximlib.exim_binary(cache)
    text = re.sub(r"(?m)^exim_path = .*$", f"exim_path = {exim}", text, count=1)
    with open(conf, "w") as f:
        f.write(text)

    def ex(argv, input_text=None):
        return subprocess.run(users.wrap([exim, "-C", conf] + argv), input=input_text,
                              capture_output=True, text=True, timeout=90)

    p = ex(["-bV"])
    if not t.ok(p.returncode == 0, "exim -bV loads it", p.stdout[-500:] + p.stderr):
        return
    p = ex(["-bP", "transport", "strictmx_sts_smtp"])
    t.ok(f"helo_data = helo.{eximlib.CLIENT}" in p.stdout and "hosts_require_tls = *" in p.stdout,
         "strictmx_sts_smtp has TLS required and Debian's REMOTE_SMTP_HELO_DATA hook",
         p.stdout + p.stderr)

    for address, want in (("user@deliver-ok.test", "router = strictmx_sts, transport = strictmx_sts_smtp"),
                          ("user@dane-signed.test", "router = strictmx_dane, transport = strictmx_dane_smtp"),
                          ("user@nopolicy.test", "router = dnslookup, transport = remote_smtp"),
                          ("user@dane-expired.test", "cannot be resolved at this time: MTA-STS/DANE "
                                                     "policy of dane-expired.test unknown")):
        p = ex(["-bt", address])
        out = (p.stdout + p.stderr).strip()
        t.ok(want in out, f"exim -bt {address}: {want}", out)

    tag = f"{int(time.time())}{os.getpid()}"
    for domain, pat in (("deliver-ok.test",
                         r"=> {r} R=strictmx_sts T=strictmx_sts_smtp H=mx\.deliver-ok\.test "
                         r"\[127\.0\.0\.10\]:25 .*CV=yes"),
                        ("deliver-badcert.test",
                         r"== {r} R=strictmx_sts T=strictmx_sts_smtp defer \(-37\) "
                         r"H=mx\.deliver-badcert\.test .*certificate verification failed")):
        r = f"debian-{tag}@{domain}"
        p = ex(["-odf", "-f", f"sender@{eximlib.CLIENT}", r],
               input_text=f"To: {r}\nSubject: debian {tag}\n\nstrictmx Debian test\n")
        try:
            with open(os.path.join(logdir, "mainlog")) as f:
                log = f.read()
        except FileNotFoundError:
            log = ""
        hit = re.search(pat.format(r=re.escape(r)), log)
        t.ok(hit is not None, f"{domain}: {hit.group(0) if hit else 'no matching log line'}",
             f"exim exit {p.returncode} {p.stderr}\n" + log[-1500:])


if __name__ == "__main__":
    main()
