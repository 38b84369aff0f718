#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The running daemon from outside, without stopping it: `strictmx status`, `cache show`,
`cache flush` (the next lookup fetches the policy again), `cache dump`, `query` through the
daemon, each with --json; the Prometheus endpoint; unknown verbs, options and socketmap map
names; --version of every binary. Uses the fixture's daemon (control socket
WORKDIR/state/control.sock, metrics on 127.0.0.1:8480).

Usage: t_control.py WORKDIR
"""

import json
import os
import re
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

METRICS = ("127.0.0.1", 8480)


def http_get(path):
    with socket.create_connection(METRICS, timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    status = head.split(b"\r\n")[0].decode(errors="replace")
    return status, body.decode(errors="replace")


def main():
    w = itlib.workdir()
    t = itlib.Checks("control")
    cli = itlib.cli_path(w)
    conf = os.path.join(w, "strictmx.toml")

    def run(*args):
        p = subprocess.run([cli, "--config", conf, *args], capture_output=True, text=True,
                           timeout=60)
        return p.returncode, p.stdout, p.stderr

    rc, out, err = run("status", "--json")
    t.eq(rc, 0, "status --json: exit 0" + ("" if rc == 0 else f" ({err.strip()})"))
    st = json.loads(out) if rc == 0 else {}
    t.eq(st.get("version"), "0.1.0", "status: version")
    t.ok(isinstance(st.get("uptime_s"), int) and st["uptime_s"] >= 0, "status: uptime", out)
    t.ok("socketmap inet:127.0.0.1:8461" in st.get("listeners", []), "status: listeners",
         str(st.get("listeners")))
    t.ok(isinstance(st.get("cache_entries"), int), "status: cache entries")
    t.ok("resolutions_in_flight" in st, "status: resolutions in flight")
    t.ok(isinstance(st.get("milter", {}).get("answering"), bool) and
         st["milter"].get("listen") == "inet:127.0.0.1:8465",
         "status: whether strictmx-milter answers at milter.listen", str(st.get("milter")))
    rc, out, _ = run("status")
    t.ok(rc == 0 and re.search(r"(?m)^uptime_s: \d+$", out), "status: plain text", out[:300])

    # The daemon's answer, through the daemon (its cache, its resolver).
    itlib.socketmap_query("enforce.test")
    rc, out, _ = run("query", "enforce.test", "--json")
    q = json.loads(out) if rc == 0 else {}
    t.eq(q.get("answers", {}).get("postfix"),
         "OK secure match=mx1.enforce.test:a.pool.enforce.test servername=hostname",
         "query through the daemon: postfix answer")
    t.eq(q.get("answers", {}).get("requiretls", "")[:9], "OK secure", "query: requiretls answer")
    t.eq(q.get("source"), "cache", "query: answered from the daemon's cache")

    # cache show / flush: the next lookup fetches the policy again, no restart.
    rc, out, _ = run("cache", "show", "ENFORCE.test.", "--json")
    sh = json.loads(out) if rc == 0 else {}
    t.ok(sh.get("cached") is True and sh.get("mta_sts", {}).get("mode") == "enforce",
         "cache show: the cached enforce policy", out[:400])
    before = itlib.fetch_count(w, "enforce.test")
    rc, out, _ = run("cache", "flush", "enforce.test", "--json")
    t.eq(json.loads(out).get("flushed") if rc == 0 else None, 1, "cache flush DOMAIN: 1 flushed")
    rc, out, _ = run("cache", "show", "enforce.test", "--json")
    t.eq(json.loads(out).get("mta_sts") if rc == 0 else "?", None,
         "after the flush: no policy cached")
    t.eq(itlib.socketmap_query("enforce.test"),
         "OK secure match=mx1.enforce.test:a.pool.enforce.test servername=hostname",
         "after the flush: the same answer")
    t.ok(itlib.wait_for(lambda: itlib.fetch_count(w, "enforce.test") > before, 10),
         "after the flush: the policy was fetched again",
         f"fetches {before} -> {itlib.fetch_count(w, 'enforce.test')}")

    rc, out, _ = run("cache", "dump", "--json")
    dump = json.loads(out) if rc == 0 else {}
    t.ok(dump.get("count", 0) >= 1 and any(e.get("domain") == "enforce.test"
                                           for e in dump.get("entries", [])),
         "cache dump: lists enforce.test", out[:300])

    # Bad requests name the bad argument.
    rc, _, err = run("cache", "frobnicate")
    t.ok(rc == 2 and "frobnicate" in err, "unknown cache verb: exit 2, named", err[:200])
    rc, _, err = run("nonsense")
    t.ok(rc == 2 and "nonsense" in err, "unknown command: exit 2, named", err[:200])
    rc, _, err = run("--bogus", "status")
    t.ok(rc == 2 and "--bogus" in err, "unknown option: exit 2, named", err[:200])
    p = subprocess.run([itlib.policyd_binary(w), "--frobnicate"], capture_output=True,
                       text=True, timeout=10)
    t.ok(p.returncode == 2 and "--frobnicate" in p.stderr,
         "strictmx-policyd: an unknown option is named", p.stderr[:200])
    rc, out, _ = run("cache", "show", "not_a_domain!", "--json")
    t.ok(rc == 1 and "not a domain name" in out, "cache show of a non-domain: the error", out)

    # --version of every binary.
    for b in (cli, itlib.policyd_binary(w),
              os.path.join(os.path.dirname(os.path.dirname(itlib.policyd_binary(w))),
                           "milter", "strictmx-milter")):
        p = subprocess.run([b, "--version"], capture_output=True, text=True, timeout=10)
        t.ok(p.returncode == 0 and "0.1.0" in p.stdout, f"{os.path.basename(b)} --version",
             p.stdout + p.stderr)

    # A typo in the map name is TEMP (mail deferred), never NOTFOUND (no protection).
    ans = itlib.socketmap_query("enforce.test", name="postfx")
    t.ok(ans.startswith("TEMP unknown socketmap map name postfx"), "unknown map name: TEMP", ans)

    # Metrics.
    status, body = http_get("/metrics")
    t.eq(status, "HTTP/1.0 200 OK", "GET /metrics: 200")
    for name in ("strictmx_up 1", "strictmx_cache_entries ", "strictmx_lookups_total{",
                 'strictmx_lookup_seconds_bucket{kind="hit",le="+Inf"}',
                 'strictmx_lookup_seconds_count{kind="resolved"}',
                 "strictmx_policy_fetches_total ", "strictmx_dns_queries_total ",
                 'strictmx_dnssec_validation{state="on"} 1'):
        t.ok(name in body, f"metrics: {name.strip()}", body[:300])
    m = re.search(r'strictmx_lookups_total\{protocol="socketmap",profile="postfix",'
                  r'answer="ok"\} (\d+)', body)
    t.ok(m and int(m.group(1)) >= 2, "metrics: socketmap postfix OK lookups counted",
         m.group(0) if m else body[:500])
    for line in body.splitlines():
        if line and not line.startswith("#"):
            if not re.fullmatch(r'[a-z_]+(\{[a-z_]+="[^"\\]*"(,[a-z_]+="[^"\\]*")*\})? '
                                r'[0-9.e+-]+', line):
                t.ok(False, "metrics: every sample line is well-formed", line)
                break
    else:
        t.ok(True, "metrics: every sample line is well-formed")
    t.ok("strictmx_cache_persistent 1" in body, "metrics: the cache is persistent", body[-600:])
    # The shipped alert rules and dashboard use only metrics the daemon exports.
    exported = {re.match(r"[a-z_]+", ln).group(0) for ln in body.splitlines()
                if ln and not ln.startswith("#")}
    mon = os.path.join(os.path.dirname(os.path.dirname(itlib.TOP)), "contrib", "monitoring")
    for f in ("strictmx-alerts.yml", "strictmx-dashboard.json"):
        with open(os.path.join(mon, f)) as fh:
            used = set(re.findall(r"strictmx_[a-z_]+", fh.read()))
        unknown = sorted(u for u in used if u not in exported and
                         re.sub(r"_(bucket|sum|count)$", "", u) + "_bucket" not in exported)
        t.eq(unknown, [], f"contrib/monitoring/{f}: every metric it uses is exported")
    status, _ = http_get("/other")
    t.eq(status, "HTTP/1.0 404 Not Found", "GET /other: 404")
    t.done()


if __name__ == "__main__":
    main()
