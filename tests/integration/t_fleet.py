#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Fleet mode: three strictmx-policyd instances on one PostgreSQL database (a private
cluster made here with initdb and pg_ctl, as user postgres, on a unix socket only).

- Before `strictmx store migrate` an instance refuses to start and says so; migrate creates
  the schema, a second migrate finds it current; `strictmx store check` reads it back.
- One resolution per domain: a domain looked up on A, then B and C, is resolved once (the
  instances' resolution counters); looked up on all three at the same moment, once too (two
  wait for the lease holder's NOTIFY); the answers are the same everywhere.
- A flush on one instance reaches the others: the policy host goes down, A flushes, and
  all three answer the changed result (NOTFOUND) after one resolution.
- A lease holder killed mid-resolution (slow.test: its policy host answers after 30 s):
  another instance waits store.lease_wait_ms, then resolves itself and answers.
- The database stopped mid-run: cached domains are answered, a new domain is resolved
  alone, TLSRPT counts wait in each instance's outbox; the database started again: the
  outboxes drain, and the day's report (dry run, then a real send claimed by one instance,
  refused by the others) carries exactly the sum of all three instances' sessions.
Ports 8484-8486 (socketmap).

Usage: t_fleet.py WORKDIR
"""

import datetime
import glob
import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402
import tlsrpt_tools as tt  # noqa: E402
from tlsrpt_tools import failure, policy, POLICY_NONE  # noqa: E402

PORTS = {"relay-a": 8484, "relay-b": 8485, "relay-c": 8486}
PG_PORT = 5439  # the unix socket's name only: the cluster listens on no TCP address
REPORT_DOMAIN = "h.rpt.test"
REPORT_RECORD = "v=TLSRPTv1; rua=mailto:h@x.test"


def pg_bin(name):
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    return found[-1] if found else None


class Cluster:
    """A private PostgreSQL cluster owned by user postgres in a fresh /tmp directory."""

    def __init__(self):
        self.dir = tempfile.mkdtemp(prefix="strictmx-pg-")
        os.chmod(self.dir, 0o755)
        pw = pwd.getpwnam("postgres")
        os.chown(self.dir, pw.pw_uid, pw.pw_gid)
        self.data = os.path.join(self.dir, "data")
        self.log = os.path.join(self.dir, "server.log")

    def as_pg(self, *argv, check=True):
        r = subprocess.run(["runuser", "-u", "postgres", "--", *argv], capture_output=True,
                           text=True, timeout=120)
        if check and r.returncode != 0:
            raise RuntimeError(f"{argv[0]}: {r.stdout}{r.stderr}")
        return r

    def init(self):
        self.as_pg(pg_bin("initdb"), "-D", self.data, "-A", "trust", "-U", "postgres",
                   "--no-sync")
        self.start()
        self.psql("CREATE ROLE strictmx LOGIN")
        self.psql("CREATE DATABASE strictmx OWNER strictmx")

    def start(self):
        self.as_pg(pg_bin("pg_ctl"), "-D", self.data, "-l", self.log, "-w", "-o",
                   f"-k {self.dir} -c listen_addresses='' -p {PG_PORT} -c fsync=off",
                   "start")

    def stop(self):
        self.as_pg(pg_bin("pg_ctl"), "-D", self.data, "-m", "fast", "-w", "stop", check=False)

    def psql(self, sql, db="postgres", user="postgres"):
        r = subprocess.run(["psql", "-h", self.dir, "-p", str(PG_PORT), "-U", user, "-d", db,
                            "-XAtq", "-v", "ON_ERROR_STOP=1", "-c", sql],
                           capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"psql {sql!r}: {r.stderr}")
        return r.stdout.strip()

    def dsn(self):
        return f"host={self.dir} port={PG_PORT} dbname=strictmx user=strictmx"

    def remove(self):
        self.stop()
        shutil.rmtree(self.dir, ignore_errors=True)


class Instance:
    def __init__(self, w, base, name, dsn, fixture):
        self.name = name
        self.port = PORTS[name]
        self.dir = os.path.join(base, name)
        os.makedirs(os.path.join(self.dir, "state"), exist_ok=True)
        self.conf = os.path.join(self.dir, "strictmx.toml")
        self.log_path = os.path.join(self.dir, "policyd.log")
        self.sock = os.path.join(self.dir, "tlsrpt.sock")
        self.w = w
        resolver, https = fixture
        lib = itlib.HERE
        with open(self.conf, "w") as f:
            f.write(f"""[daemon]
log = "stderr"
verbosity = 3
allow_root = true
state_dir = "{self.dir}/state"
[resolver]
{resolver}
[https]
{https}
[cache]
path = "{self.dir}/cache.db"
[store]
backend = "postgresql"
dsn = "{dsn}"
instance = "{name}"
pool = 2
lease_s = 30
lease_wait_ms = 2000
timeout_ms = 1000
tlsrpt_ship_interval_ms = 300
[tlsrpt]
socket = "{self.sock}"
db = "{self.dir}/tlsrpt.db"
spool_dir = "{self.dir}/spool"
organization_name = "Example Org"
contact_info = "tlsrpt@sender.example"
sender_address = "noreply@sender.example"
sendmail = "/usr/bin/python3 {lib}/sendmail_sink.py {base}/mail -i -t"
[[listen]]
type = "socketmap"
address = "inet:127.0.0.1:{self.port}"
""")
        self.proc = None

    def start(self, wait=True):
        self.logf = open(self.log_path, "a")
        self.proc = subprocess.Popen([itlib.policyd_binary(self.w), "--config", self.conf],
                                     stdout=self.logf, stderr=subprocess.STDOUT)
        if wait:
            return itlib.wait_for(lambda: "]: ready " in self.logtext(), 30)
        return True

    def logtext(self):
        with open(self.log_path, errors="replace") as f:
            return f.read()

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def cli(self, *args, timeout=60):
        r = subprocess.run([itlib.cli_path(self.w), "--config", self.conf, *args],
                           capture_output=True, text=True, timeout=timeout)
        return r.returncode, r.stdout + r.stderr

    def status(self):
        rc, out = self.cli("status", "--json")
        if rc != 0:
            return {}
        try:
            return json.loads(out)
        except ValueError:
            return {}

    def fleet(self):
        return self.status().get("fleet") or {}

    def query(self, domain, timeout=20):
        c = itlib.Socketmap(("127.0.0.1", self.port), timeout=timeout)
        try:
            return c.query("postfix", domain)
        finally:
            c.close()


def main():
    w = itlib.workdir()
    t = itlib.Checks("fleet")
    if not pg_bin("initdb") or not shutil.which("psql"):
        print("SKIP: PostgreSQL server binaries not installed (package postgresql)")
        sys.exit(77)
    base = os.path.join(w, "fleet-test")
    shutil.rmtree(base, ignore_errors=True)
    os.makedirs(os.path.join(base, "mail"))
    cluster = Cluster()
    fixture = itlib.fixture_sections(w)
    relays = {}
    try:
        cluster.init()
        for name in PORTS:
            relays[name] = Instance(w, base, name, cluster.dsn(), fixture)
        run(t, w, base, cluster, relays)
    finally:
        for r in relays.values():
            r.stop()
        cluster.remove()
    t.done()


def send_sessions(sock, ok, failed):
    """`ok` successful and `failed` failed no-policy sessions for h.rpt.test."""
    for _ in range(ok):
        tt.send(sock, tt.datagram(REPORT_DOMAIN, REPORT_RECORD,
                                  [policy(POLICY_NONE, REPORT_DOMAIN)]))
    for _ in range(failed):
        tt.send(sock, tt.datagram(REPORT_DOMAIN, REPORT_RECORD, [
            policy(POLICY_NONE, REPORT_DOMAIN, failures=[failure(201, r="192.0.2.12")])]))


def cached(r, domain):
    rc, out = r.cli("--json", "cache", "show", domain)
    try:
        return json.loads(out).get("cached") if rc == 0 else None
    except ValueError:
        return None


def run(t, w, base, cluster, relays):
    a, b, c = relays["relay-a"], relays["relay-b"], relays["relay-c"]
    everyone = [a, b, c]

    # --- schema ------------------------------------------------------------------------------
    a.start(wait=False)
    try:
        a.proc.wait(30)
    except subprocess.TimeoutExpired:
        pass
    t.ok(a.proc.poll() not in (None, 0), "without the schema an instance refuses to start",
         a.logtext()[-400:])
    t.ok("strictmx store migrate" in a.logtext(), "... and names `strictmx store migrate`",
         a.logtext()[-400:])
    a.proc = None
    rc, out = a.cli("store", "migrate")
    t.eq((rc, "created" in out), (0, True), f"store migrate creates the schema ({out.strip()!r})")
    rc, out = b.cli("store", "migrate")
    t.eq((rc, "current" in out), (0, True), f"a second migrate finds it current ({out.strip()!r})")
    rc, out = c.cli("store", "check")
    t.ok(rc == 0 and "schema_version=1" in out, "store check reads the schema version", out)
    t.eq(cluster.psql("SELECT count(*) FROM cache_domains", db="strictmx"), "0",
         "the shared cache starts empty")

    # A day must hold the TLSRPT part of the run: not within five minutes of midnight.
    now = time.time()
    if 86400 - now % 86400 < 300:
        time.sleep(86400 - now % 86400 + 1)
    day = datetime.datetime.now(datetime.timezone.utc).date().isoformat()

    for r in everyone:
        t.ok(r.start(), f"{r.name} starts on the shared database", r.logtext()[-400:])
    t.ok(itlib.wait_for(lambda: all(r.fleet().get("listening") for r in everyone), 15),
         "every instance listens for the others' changes")

    # --- TLSRPT counts while the database is up --------------------------------------------
    counts = {"relay-a": (5, 2), "relay-b": (7, 0), "relay-c": (3, 4)}
    for r in everyone:
        send_sessions(r.sock, *counts[r.name])

    # --- one resolution per domain -----------------------------------------------------------
    def resolved(domain):
        """Resolutions of `domain` on the three instances (their verbosity-3 log lines;
        background refreshes of other domains do not count)."""
        line = f"]: resolution domain={domain} "
        return sum(r.logtext().count(line) for r in everyone)

    answers = [a.query("enforce.test"), b.query("enforce.test"), c.query("enforce.test")]
    t.ok(answers[0].startswith("OK secure match=mx1.enforce.test"), "A resolves enforce.test",
         answers[0])
    t.eq(len(set(answers)), 1, "B and C give A's answer for enforce.test")
    t.eq(resolved("enforce.test"), 1, "enforce.test looked up on all three: one resolution")
    t.ok(b.fleet().get("answers_from_shared", 0) >= 1 and c.fleet().get("answers_from_shared", 0) >= 1,
         "B and C answered from the shared row", json.dumps([b.fleet(), c.fleet()])[:600])
    shared = cluster.psql("SELECT written_by || ' ' || has_policy::int FROM cache_domains "
                          "WHERE domain = 'enforce.test'", db="strictmx")
    t.eq(shared, "relay-a 1", "the shared row was written by A, with the policy")
    t.eq(cluster.psql("SELECT count(*) FROM cache_leases", db="strictmx"), "0",
         "A released its lease when it wrote the row")

    # The same, on all three at once, for several domains.
    domains = ["wild.test", "lf.test", "charset.test", "testing.test", "dane-signed.test"]
    got = {}

    def ask(r, d):
        got[(r.name, d)] = r.query(d)

    threads = [threading.Thread(target=ask, args=(r, d)) for d in domains for r in everyone]
    for th in threads:
        th.start()
    for th in threads:
        th.join(30)
    t.eq([resolved(d) for d in domains], [1] * len(domains),
         f"{len(domains)} domains asked of all three at once: one resolution each")
    for d in domains:
        t.eq(len({got.get((r.name, d)) for r in everyone}), 1, f"{d}: the same answer everywhere")
    waits = sum(r.fleet().get("waits", 0) for r in everyone)
    t.ok(waits >= 1, f"instances waited for the lease holder's NOTIFY ({waits} waits)")

    # Hits never ask the database: a hundred lookups on B add no claim.
    claims = b.fleet().get("claims")
    for _ in range(100):
        b.query("enforce.test")
    t.eq(b.fleet().get("claims"), claims, "cache hits on B ask the database nothing")

    # --- a flush reaches every instance ------------------------------------------------------
    itlib.https_down(w)
    try:
        rc, out = a.cli("cache", "flush", "enforce.test")
        t.eq(rc, 0, "A flushes enforce.test")
        t.ok(itlib.wait_for(lambda: cached(b, "enforce.test") is False, 10),
             "B dropped enforce.test after A's flush")
        before = resolved("enforce.test")
        changed = [r.query("enforce.test") for r in (c, a, b)]
        t.eq(changed, ["NOTFOUND "] * 3,
             "policy host down: all three answer the changed result after the flush")
        t.eq(resolved("enforce.test") - before, 1, "... after one resolution (by C)")
    finally:
        itlib.https_down(w, False)
    a.cli("cache", "flush", "enforce.test")
    t.ok(itlib.wait_for(lambda: b.query("enforce.test").startswith("OK secure"), 10),
         "policy host back, flushed again: B answers secure again")

    # --- a lease holder killed mid-resolution ----------------------------------------------
    result = {}

    def slow_on_a():
        try:
            result["a"] = a.query("slow.test", timeout=15)
        except OSError as e:
            result["a"] = str(e)

    th = threading.Thread(target=slow_on_a)
    th.start()
    held = itlib.wait_for(lambda: cluster.psql(
        "SELECT holder FROM cache_leases WHERE domain = 'slow.test'", db="strictmx") == "relay-a", 5)
    t.ok(held, "A holds the lease on slow.test while it resolves")
    a.stop(signal.SIGKILL)
    th.join(20)
    started = time.monotonic()
    answer = b.query("slow.test", timeout=30)
    took = time.monotonic() - started
    t.eq(answer, "NOTFOUND ", "B answers slow.test although the lease holder died")
    t.ok(took >= 1.5, f"... after waiting for the dead holder ({took:.1f} s)")
    t.ok(b.fleet().get("waits_expired", 0) >= 1, "B counted a wait that expired",
         json.dumps(b.fleet())[:400])
    t.ok("no answer from the instance holding the lease" in b.logtext(),
         "B's log says why it resolved itself")
    t.ok(a.start(), "A starts again", a.logtext()[-300:])

    # --- the database stopped mid-run --------------------------------------------------------
    cluster.stop()
    t.ok(itlib.wait_for(lambda: not b.fleet().get("listening", True), 10),
         "B notices the database is gone")
    for r in everyone:
        t.ok(r.query("wild.test").startswith("OK secure"), f"database down: {r.name} answers a cached domain")
    t.ok(c.query("extrakeys.test").startswith("OK secure match=mx1.extrakeys.test"),
         "database down: C resolves a new domain alone")
    t.ok(c.fleet().get("claims_unavailable", 0) >= 1, "... counted as a claim the database did not answer")
    outage = {"relay-a": (2, 1), "relay-b": (0, 3), "relay-c": (4, 0)}
    for r in everyone:
        send_sessions(r.sock, *outage[r.name])
    t.ok(itlib.wait_for(lambda: all((r.fleet().get("tlsrpt") or {}).get("outbox_rows", 0) > 0
                                    for r in everyone), 10),
         "database down: every instance keeps its counts in its outbox",
         json.dumps([r.fleet().get("tlsrpt") for r in everyone]))
    time.sleep(1)
    cluster.start()
    t.ok(itlib.wait_for(lambda: all((r.fleet().get("tlsrpt") or {}).get("outbox_rows", 1) == 0
                                    for r in everyone), 20),
         "database back: every outbox drains",
         json.dumps([r.fleet().get("tlsrpt") for r in everyone]))
    t.ok(itlib.wait_for(lambda: cluster.psql(
        "SELECT count(*) FROM cache_domains WHERE domain = 'extrakeys.test'", db="strictmx") == "1", 10),
        "database back: C's resolution made while it was away is written for all")
    t.ok(itlib.wait_for(lambda: all(r.fleet().get("listening") for r in everyone), 10),
         "database back: every instance listens again")
    after = {"relay-a": (1, 0), "relay-b": (0, 1), "relay-c": (2, 2)}
    for r in everyone:
        send_sessions(r.sock, *after[r.name])
    want_ok = sum(x[0] for x in (*counts.values(), *outage.values(), *after.values()))
    want_fail = sum(x[1] for x in (*counts.values(), *outage.values(), *after.values()))

    def fleet_sums():
        out = cluster.psql(f"SELECT coalesce(sum(success),0) || ' ' || coalesce(sum(failure),0) "
                           f"FROM tlsrpt_results WHERE day = '{day}' AND domain = '{REPORT_DOMAIN}'",
                           db="strictmx")
        return tuple(int(x) for x in out.split())

    t.ok(itlib.wait_for(lambda: fleet_sums() == (want_ok, want_fail), 20),
         f"the database holds the sum of the three instances: {want_ok} ok, {want_fail} failed",
         repr(fleet_sums()))
    batches = cluster.psql("SELECT count(*) || ' ' || count(DISTINCT (source, batch)) "
                           "FROM tlsrpt_shipped", db="strictmx").split()
    t.eq(batches[0], batches[1], "every shipped batch is recorded once")

    # --- one report for the fleet -----------------------------------------------------------
    dry = os.path.join(base, "dry")
    os.makedirs(dry)
    rc, out = a.cli("tlsrpt", "send", "--day", day, "--dry-run", dry)
    t.eq(rc, 0, "dry run on A: exit 0" + ("" if rc == 0 else f" ({out[-400:]!r})"))
    emls = sorted(x for x in os.listdir(dry) if x.endswith(".eml"))
    t.eq(len(emls), 1, "dry run: one report for h.rpt.test", )
    if emls:
        with open(os.path.join(dry, emls[0]), "rb") as fh:
            raw = fh.read()
        probs, rep, _ = tt.check_mail(raw, report_domain=REPORT_DOMAIN, submitter="sender.example",
                                      day=day, to="h@x.test")
        t.eq(probs, [], "dry run: an RFC 8460 report mail")
        summary = (rep or {}).get("policies", [{}])[0].get("summary", {})
        t.eq((summary.get("total-successful-session-count"),
              summary.get("total-failure-session-count")), (want_ok, want_fail),
             "the report counts every instance's sessions, once")
    t.eq(cluster.psql("SELECT count(*) FROM tlsrpt_days", db="strictmx"), "0",
         "a dry run claims nothing")
    rc, out = b.cli("tlsrpt", "send", "--day", day)
    t.ok(rc == 0 and "reports=1" in out, "B claims the day and sends the report", out[-400:])
    rc, out = c.cli("tlsrpt", "send", "--day", day)
    t.ok(rc == 0 and "reported_by=relay-b" in out and "reports=0" in out,
         "C's send finds the day reported by B and sends nothing", out[-400:])
    rc, out = a.cli("tlsrpt", "send", "--day", day)
    t.ok(rc == 0 and "reported_by=relay-b" in out, "A's send too", out[-400:])
    mails = [x for x in os.listdir(os.path.join(base, "mail")) if x.endswith(".eml")]
    t.eq(len(mails), 1, "one report mail for the whole fleet")
    t.eq(cluster.psql("SELECT instance FROM tlsrpt_days", db="strictmx"), "relay-b",
         "the day is recorded as reported by B")


if __name__ == "__main__":
    main()
