#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Helpers for run_all.sh (Debian's python3, standard library only).

  benchutil.py dnssink COUNTFILE
      Listens on 127.0.0.1:53 (UDP and TCP), never answers, and keeps COUNTFILE holding the
      number of DNS queries seen. Inside the benchmark's network namespace /etc/resolv.conf
      points here: a server that tried to resolve anything would be counted (and would wait
      for its timeout).
  benchutil.py query HOST:PORT [--name MAP] KEY...
      Sends one socketmap request per KEY and prints each reply with its latency.
  benchutil.py first-ok HOST:PORT KEY PIDFILE LOGFILE -- COMMAND...
      Starts COMMAND (stdout and stderr to LOGFILE, left running, its pid in PIDFILE) and
      asks for KEY until the answer starts with "OK"; prints first_ok_ms=... (from the start
      of COMMAND) and first_reply=...
  benchutil.py summary RESULTS
      Reads the lines run_all.sh collected and prints the summary table.
"""
import os
import re
import select
import socket
import statistics
import subprocess
import sys
import time


def netstring(payload):
    data = payload.encode()
    return b"%d:%s," % (len(data), data)


def read_netstring(sock, deadline):
    buf = b""
    while True:
        m = re.match(rb"(\d+):", buf)
        if m and len(buf) >= m.end() + int(m.group(1)) + 1:
            n = int(m.group(1))
            return buf[m.end():m.end() + n].decode(errors="replace")
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no reply")
        sock.settimeout(left)
        chunk = sock.recv(4096)
        if not chunk:
            raise ConnectionError("connection closed")
        buf += chunk


def split_hostport(hp):
    host, _, port = hp.rpartition(":")
    return host, int(port)


def ask(hp, name, key, timeout):
    deadline = time.monotonic() + timeout
    with socket.create_connection(split_hostport(hp), timeout=timeout) as s:
        s.sendall(netstring(name + " " + key))
        return read_netstring(s, deadline)


def cmd_dnssink(args):
    countfile = args[0]
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.bind(("127.0.0.1", 53))
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    tcp.bind(("127.0.0.1", 53))
    tcp.listen(64)
    count = 0
    peers = []

    def save():
        tmp = countfile + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % count)
        os.replace(tmp, countfile)

    save()
    while True:
        ready, _, _ = select.select([udp, tcp] + peers, [], [])
        for r in ready:
            if r is udp:
                udp.recvfrom(65536)
                count += 1
            elif r is tcp:
                conn, _ = tcp.accept()
                peers.append(conn)
                count += 1
            else:
                if not r.recv(65536):
                    peers.remove(r)
                    r.close()
        save()


def cmd_query(args):
    name = "postfix"
    if len(args) >= 2 and args[1] == "--name":
        name = args[2]
        del args[1:3]
    hp, keys = args[0], args[1:]
    for key in keys:
        t = time.monotonic()
        try:
            reply = ask(hp, name, key, 10)
        except (OSError, TimeoutError) as e:
            reply = "ERROR " + str(e)
        print("%s -> %s (%.1f ms)" % (key, reply, (time.monotonic() - t) * 1000))


def cmd_first_ok(args):
    hp, key, pidfile, logfile = args[:4]
    command = args[args.index("--") + 1:]
    log = open(logfile, "ab")
    t0 = time.monotonic()
    proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
    with open(pidfile, "w") as f:
        f.write("%d\n" % proc.pid)
    deadline = t0 + 120
    reply = ""
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            print("first_ok_ms=-1 first_reply=exited:%d" % proc.returncode)
            return 1
        try:
            reply = ask(hp, "postfix", key, max(0.1, deadline - time.monotonic()))
        except (OSError, TimeoutError):
            time.sleep(0.002)
            continue
        if reply.startswith("OK"):
            print("first_ok_ms=%.1f first_reply=%s" % ((time.monotonic() - t0) * 1000, reply.replace(" ", "_")))
            return 0
        time.sleep(0.002)
    print("first_ok_ms=-1 first_reply=%s" % reply.replace(" ", "_"))
    return 1


# --- summary ----------------------------------------------------------------------------

def parse_kv(line):
    return dict(kv.split("=", 1) for kv in line.split() if "=" in kv)


def cmd_summary(args):
    runs = {}  # (workload, server, connections) -> [dict]
    extra = []
    with open(args[0]) as f:
        for line in f:
            if line.startswith("#"):
                print(line.rstrip())
                continue
            kv = parse_kv(line)
            if "workload" not in kv:
                continue
            if "lookups_per_s" not in kv:
                extra.append(kv)
                continue
            runs.setdefault((kv["workload"], kv["server"], int(kv["connections"])), []).append(kv)

    def med(rows, field):
        vals = [float(r[field]) for r in rows if field in r]
        return statistics.median(vals) if vals else float("nan")

    print("== every run (lookups/s; p50/p99/p99.9 in microseconds; peak RSS of the server;")
    print("   cpu/lkp: the server's CPU microseconds per lookup; other%: CPU used meanwhile by")
    print("   everything but the server and the load generator, in % of one core; load1) ==")
    print("%-8s %-11s %5s %4s %10s %8s %8s %8s %8s %8s %6s %7s %6s %5s" % (
        "workload", "server", "conns", "rep", "lookups/s", "p50", "p99", "p99.9", "rss_kb", "ok",
        "errors", "cpu/lkp", "other%", "load1"))
    order = {"epoll": 0, "echo": 1, "strictmx": 2, "peer": 3}
    for key in sorted(runs, key=lambda k: (k[0] != "hit", k[0], k[2], order.get(k[1], 9), k[1])):
        for r in runs[key]:
            print("%-8s %-11s %5d %4s %10s %8s %8s %8s %8s %8s %6s %7s %6s %5s" % (
                key[0], key[1], key[2], r.get("rep", "-"), r["lookups_per_s"], r["p50_us"], r["p99_us"],
                r["p999_us"], r.get("server_peak_rss_kb", "-"), r.get("ok_replies", "-"),
                r.get("errors", "-"), r.get("server_cpu_us_per_lookup", "-"),
                r.get("other_cpu_pct", "-"), r.get("load1", "-")))
    print()
    print("== medians over repetitions. Ratios of strictmx to another server at the same connection")
    print("   count: x/epoll and x/echo as lookups/s|p99 (lookups/s >1 and p99 <1: strictmx is")
    print("   faster), x/peer as lookups/s. Rows other than 'hit' compare with the 'hit' runs;")
    print("   x/smx-hit with strictmx's own 1,000-domain cache hits. ==")
    print("%-8s %5s %-11s %10s %9s %9s %9s %8s %4s %13s %13s %8s %13s" % (
        "workload", "conns", "server", "lookups/s", "p50_us", "p99_us", "cpu/lkp", "rss_kb", "runs",
        "x/epoll", "x/echo", "x/peer", "x/smx-hit"))
    groups = sorted({(k[0], k[2]) for k in runs}, key=lambda g: (g[0] != "hit", g[0], g[1]))
    for wl, conns in groups:
        base = {o: runs.get(("hit", o, conns)) for o in ("epoll", "echo", "peer", "strictmx")}
        for (w, s, c) in sorted((k for k in runs if k[0] == wl and k[2] == conns),
                                key=lambda k: (order.get(k[1], 9), k[1])):
            rows = runs[(w, s, c)]
            tput, p99 = med(rows, "lookups_per_s"), med(rows, "p99_us")
            ratio = {}
            for other in ("epoll", "echo", "strictmx"):
                same = other == "strictmx" and w == "hit"
                if s.startswith("strictmx") and base[other] and not same:
                    ratio[other] = "%5.2f|%-5.2f" % (tput / med(base[other], "lookups_per_s"),
                                                   p99 / med(base[other], "p99_us"))
                else:
                    ratio[other] = "-"
            ratio["peer"] = ("%8.1f" % (tput / med(base["peer"], "lookups_per_s"))
                             if s.startswith("strictmx") and base["peer"] else "-")
            print("%-8s %5d %-11s %10.0f %9.1f %9.1f %9.1f %8.0f %4d %13s %13s %8s %13s" % (
                w, c, s, tput, med(rows, "p50_us"), p99, med(rows, "server_cpu_us_per_lookup"),
                med(rows, "server_peak_rss_kb"), len(rows), ratio["epoll"], ratio["echo"],
                ratio["peer"], ratio["strictmx"]))

    # Issue targets at 32 connections, per repetition (the servers ran back to back within
    # one) and on the medians.
    smx, ep, pr = (runs.get(("hit", s, 32)) for s in ("strictmx", "epoll", "peer"))
    if smx and ep and pr:
        print()
        print("== hit, 32 connections: strictmx / epoll lookups/s (target >= 0.7), p99 (target")
        print("   <= 1.5); strictmx / peer lookups/s (target >= 25) ==")
        print("%-6s %14s %10s %14s" % ("rep", "tput/epoll", "p99/epoll", "tput/peer"))
        reps = {}
        for name, rows in (("strictmx", smx), ("epoll", ep), ("peer", pr)):
            for r in rows:
                reps.setdefault(r.get("rep", "-"), {})[name] = r
        for rep in sorted(reps):
            r = reps[rep]
            if len(r) != 3:
                continue
            print("%-6s %14.2f %10.2f %14.1f" % (
                rep, float(r["strictmx"]["lookups_per_s"]) / float(r["epoll"]["lookups_per_s"]),
                float(r["strictmx"]["p99_us"]) / float(r["epoll"]["p99_us"]),
                float(r["strictmx"]["lookups_per_s"]) / float(r["peer"]["lookups_per_s"])))
        t, p, q = (med(smx, "lookups_per_s") / med(ep, "lookups_per_s"),
                   med(smx, "p99_us") / med(ep, "p99_us"),
                   med(smx, "lookups_per_s") / med(pr, "lookups_per_s"))
        print("%-6s %14.2f %10.2f %14.1f   %s" % (
            "median", t, p, q, "met" if t >= 0.7 and p <= 1.5 and q >= 25 else "not met"))
    if extra:
        print()
        print("== other measurements ==")
        for kv in extra:
            print("  " + " ".join("%s=%s" % (k, v) for k, v in kv.items()))
    return 0


def main():
    if len(sys.argv) < 3:
        sys.stderr.write(__doc__)
        return 2
    cmd, args = sys.argv[1], sys.argv[2:]
    return {"dnssink": cmd_dnssink, "query": cmd_query, "first-ok": cmd_first_ok,
            "summary": cmd_summary}[cmd](args) or 0


if __name__ == "__main__":
    sys.exit(main())
