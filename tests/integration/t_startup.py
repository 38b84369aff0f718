#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Start-up fails closed: DNSSEC validation must be proven against the configured trust
anchor (no anchor, or a wrong one, refuses to start with the reason), resolver.dnssec =
false says so, root without daemon.user refuses, and settings that parse but cannot work
(missing files, bad forwarders, a directory as the configuration) are named with --check-config
and at start. Each case runs its own daemon on port 8471 next to the fixture's.

Usage: t_startup.py WORKDIR
"""

import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

PORT = 8471


def config(w, d, resolver, daemon="allow_root = true"):
    path = os.path.join(d, "strictmx.toml")
    with open(path, "w") as f:
        f.write(f"""[daemon]
log = "stderr"
verbosity = 2
state_dir = "{d}/state"
{daemon}
[resolver]
{resolver}
timeout_ms = 2000
[https]
ca_file = "{w}/ca.pem"
connect_to = ["::127.0.0.1:8443"]
[cache]
path = "{d}/cache.db"
[[listen]]
type = "socketmap"
address = "inet:127.0.0.1:{PORT}"
""")
    return path


def run(binary, conf, seconds=10, query=None):
    """Starts the daemon. Without `query`: waits for it to exit (a refusal). With one: asks
    it once (the connection waits in the listen queue until the daemon accepts). Returns
    (exit code, or None if it was still running; its log; the answer)."""
    p = subprocess.Popen([binary, "--config", conf], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True)
    answer = None
    end = time.time() + seconds
    while time.time() < end and p.poll() is None:
        if query is None:
            time.sleep(0.1)
            continue
        try:
            s = itlib.Socketmap(("127.0.0.1", PORT), timeout=seconds)
            answer = s.query("postfix", query)
            s.close()
            break
        except OSError:
            time.sleep(0.1)
    rc = p.poll()
    if rc is None:
        p.terminate()
    out, _ = p.communicate(timeout=10)
    return rc, out, answer


def main():
    w = itlib.workdir()
    t = itlib.Checks("startup")
    binary = itlib.policyd_binary(w)
    base = os.path.join(w, "startup")
    ub_lib = os.path.join(w, "unbound-lib.conf")

    # An unbound configuration without a trust anchor: everything would be "insecure".
    d = os.path.join(base, "noanchor")
    os.makedirs(d, exist_ok=True)
    no_anchor = os.path.join(d, "unbound.conf")
    with open(ub_lib) as f:
        text = "".join(line for line in f if "trust-anchor" not in line)
    with open(no_anchor, "w") as f:
        f.write(text)
    rc, out, _ = run(binary, config(w, d, f'unbound_config = "{no_anchor}"'))
    t.eq(rc, 1, "no trust anchor: refuses to start")
    t.ok("DNSSEC validation does not work" in out and "no trust anchor" in out,
         "no trust anchor: the log says why and how to fix it", out[-800:])

    # A trust anchor for the zone that does not match it: bogus.
    d = os.path.join(base, "wronganchor")
    os.makedirs(d, exist_ok=True)
    wrong = os.path.join(d, "anchor")
    with open(wrong, "w") as f:
        f.write("test. 3600 IN DS 11111 13 2 "
                "0000000000000000000000000000000000000000000000000000000000000000\n")
    wrong_conf = os.path.join(d, "unbound.conf")
    with open(ub_lib) as f:
        text = "".join(f'\ttrust-anchor-file: "{wrong}"\n' if "trust-anchor-file" in line
                       else line for line in f)
    with open(wrong_conf, "w") as f:
        f.write(text)
    rc, out, _ = run(binary, config(w, d, f'unbound_config = "{wrong_conf}"'))
    t.eq(rc, 1, "wrong trust anchor: refuses to start")
    t.ok("bogus" in out, "wrong trust anchor: the log says bogus", out[-800:])

    # The test anchor (probe zone found in it): starts and resolves with DANE.
    d = os.path.join(base, "anchor")
    os.makedirs(d, exist_ok=True)
    rc, out, answer = run(binary, config(w, d, f'unbound_config = "{ub_lib}"'),
                          query="dane-signed.test")
    t.eq(rc, None, "test anchor: starts and keeps running")
    t.eq(answer, "OK dane-only", "test anchor: DANE applies")
    t.ok("dnssec=on" in out, "test anchor: ready line says dnssec=on", out[-800:])

    # DANE off on purpose: says so, never answers DANE.
    d = os.path.join(base, "off")
    os.makedirs(d, exist_ok=True)
    rc, out, answer = run(binary, config(w, d, f'unbound_config = "{ub_lib}"\ndnssec = false'),
                          query="dane-signed.test")
    t.eq(rc, None, "dnssec = false: starts")
    t.ok("dnssec=off" in out, "dnssec = false: the log says dnssec=off", out[-800:])
    t.ok(answer is not None and "dane" not in answer, "dnssec = false: no DANE answer",
         repr(answer))

    # A cache file that cannot be written: refused with path, owners and the fix, unless a
    # memory-only cache is chosen explicitly. (The tests run as root, which may write
    # anywhere: the cache's directory is a regular file here.)
    d = os.path.join(base, "cachero")
    os.makedirs(d, exist_ok=True)
    blocker = os.path.join(d, "notadir")
    with open(blocker, "w") as f:
        f.write("a file where the cache directory should be\n")
    conf = config(w, d, f'unbound_config = "{ub_lib}"')
    with open(conf) as f:
        text = f.read().replace(f'path = "{d}/cache.db"', f'path = "{blocker}/cache.db"')
    with open(conf, "w") as f:
        f.write(text)
    rc, out, _ = run(binary, conf)
    t.eq(rc, 1, "unwritable cache: refuses to start")
    t.ok(f"{blocker}/cache.db" in out and "cache.memory_only" in out and "chown" in out,
         "unwritable cache: the message names the path and the fixes", out[-900:])
    with open(conf) as f:
        text = f.read().replace("[cache]\n", "[cache]\nmemory_only = true\n")
    with open(conf, "w") as f:
        f.write(text)
    rc, out, answer = run(binary, conf, query="dane-signed.test")
    t.eq(rc, None, "cache.memory_only = true: starts")
    t.eq(answer, "OK dane-only", "cache.memory_only = true: answers")
    t.ok("memory only (cache.memory_only = true)" in out,
         "cache.memory_only = true: the log says so", out[-600:])

    # Root without daemon.user and without allow_root.
    d = os.path.join(base, "root")
    os.makedirs(d, exist_ok=True)
    rc, out, _ = run(binary, config(w, d, f'unbound_config = "{ub_lib}"', daemon=""))
    t.eq(rc, 1, "root without daemon.user: refuses to start")
    t.ok("daemon.user" in out and "allow_root" in out, "root: the message names the fix",
         out[-600:])

    # Settings that parse but cannot work: named with key and value.
    d = os.path.join(base, "files")
    os.makedirs(d, exist_ok=True)
    conf = config(w, d, 'trust_anchor_file = "/nonexistent/root.key"\n'
                        'forwarders = ["127.0.0.1"]')
    p = subprocess.run([binary, "--check-config", "--config", conf], capture_output=True,
                       text=True)
    t.eq(p.returncode, 1, "--check-config: a missing trust anchor file fails")
    t.ok('resolver.trust_anchor_file = "/nonexistent/root.key"' in p.stderr,
         "--check-config names the key and the value", p.stderr)
    conf = config(w, d, 'forwarders = ["127.0.0.1:53"]')
    p = subprocess.run([binary, "--check-config", "--config", conf], capture_output=True,
                       text=True)
    t.ok(p.returncode == 1 and 'resolver.forwarders' in p.stderr and '"127.0.0.1:53"' in p.stderr,
         "--check-config names a bad forwarder", p.stderr)
    p = subprocess.run([binary, "--check-config", "--config", d], capture_output=True, text=True)
    t.ok(p.returncode == 1 and "not a regular file" in p.stderr,
         "--check-config of a directory fails", p.stderr)
    t.done()


if __name__ == "__main__":
    main()
