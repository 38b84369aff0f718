# SPDX-License-Identifier: MIT
"""Helpers for the Exim integration tests: a private Exim instance (own spool, log and
configuration) whose configuration includes the contrib/exim files themselves, a
strictmx-policyd of the test's own with Exim listeners, a second resolver that lies
about some MX records (an MX spoofing attacker), and a proxy in front of the daemon.

Everything runs inside the fixture's network and mount namespaces (nsrun.sh). Each
Exim command runs in a further private mount namespace, where /etc/passwd and
/etc/group gain the Debian-exim user that the Debian build of Exim insists on, and
/etc/resolv.conf may point at the lying resolver. Nothing outside changes.
"""

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import tomllib

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)                       # tests/integration
SRC = os.path.dirname(os.path.dirname(TOP))       # the source tree
CONTRIB = os.path.join(SRC, "contrib", "exim")
sys.path.insert(0, os.path.join(TOP, "lib"))
import itlib  # noqa: E402,F401  (Checks)

EXIM_USER = "Debian-exim"
CLIENT = "client.exim.test"


def args():
    """WORKDIR EXIM_CACHE from the command line."""
    if len(sys.argv) < 3:
        sys.exit(f"usage: {os.path.basename(sys.argv[0])} WORKDIR EXIM_CACHE")
    w, cache = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    if not os.path.exists(exim_binary(cache)):
        # install-exim.sh skipped itself (not Debian, not root) or was not run.
        print(f"SKIP: no Exim in {cache} (tests/integration/exim/install-exim.sh {cache})")
        sys.exit(77)
    return w, cache


def exim_binary(cache):
    return os.path.join(cache, "root", "usr", "sbin", "exim4")


def wait_port(host, port, seconds=10):
    end = time.time() + seconds
    while time.time() < end:
        try:
            socket.create_connection((host, port), timeout=0.5).close()
            return True
        except OSError:
            time.sleep(0.05)
    return False


# --- the Debian-exim user, private to our mount namespaces ---------------------------------

class Users:
    """Where Exim finds its user: the real /etc/passwd when Debian-exim exists, else
    copies with a Debian-exim line added, bind-mounted over the real ones per command."""

    def __init__(self, directory):
        import pwd
        try:
            pw = pwd.getpwnam(EXIM_USER)
            self.uid, self.gid, self.files = pw.pw_uid, pw.pw_gid, None
            return
        except KeyError:
            pass
        with open("/etc/passwd") as f:
            passwd = f.read()
        with open("/etc/group") as f:
            group = f.read()
        used_uids = {int(line.split(":")[2]) for line in passwd.splitlines() if line.count(":") >= 3}
        used_gids = {int(line.split(":")[2]) for line in group.splitlines() if line.count(":") >= 2}
        n = 64990
        while n in used_uids or n in used_gids:
            n -= 1
        self.uid = self.gid = n
        os.makedirs(directory, exist_ok=True)
        self.files = (os.path.join(directory, "passwd"), os.path.join(directory, "group"))
        with open(self.files[0], "w") as f:
            f.write(passwd.rstrip("\n") + f"\n{EXIM_USER}:x:{n}:{n}:Exim test:/nonexistent:/usr/sbin/nologin\n")
        with open(self.files[1], "w") as f:
            f.write(group.rstrip("\n") + f"\n{EXIM_USER}:x:{n}:\n")
        for p in self.files:
            os.chmod(p, 0o644)

    def wrap(self, argv, resolv=None):
        """argv run in a private mount namespace with our passwd/group (and resolv.conf)."""
        mounts = []
        if self.files:
            mounts += [(self.files[0], "/etc/passwd"), (self.files[1], "/etc/group")]
        if resolv:
            mounts.append((resolv, "/etc/resolv.conf"))
        if not mounts:
            return argv
        script = "".join(f'mount --bind "{src}" "{dst}" || exit 111\n' for src, dst in mounts)
        return ["unshare", "--mount", "--propagation", "private", "--", "/bin/sh", "-c",
                script + 'exec "$@"', "sh"] + argv


# --- a private Exim instance --------------------------------------------------------------

class Exim:
    """One Exim configuration with its own spool and log in DIR. The configuration
    sets what a test machine needs (paths, the test CA, no loopback filter, the
    daemon's address) as macros, then includes contrib/exim/*.conf unchanged."""

    def __init__(self, directory, cache, users, socket_spec, extra_macros=()):
        self.dir = directory
        self.exim = exim_binary(cache)
        self.users = users
        shutil.rmtree(directory, ignore_errors=True)
        for sub in ("spool", "log"):
            os.makedirs(os.path.join(directory, sub))
            os.chown(os.path.join(directory, sub), users.uid, users.gid)
        self.conf = os.path.join(directory, "exim.conf")
        self.ca = os.path.join(directory, "ca.pem")
        macros = [
            ("STRICTMX_SOCKET", socket_spec),
            ("STRICTMX_TLS_CA", self.ca),
            # The test internet lives on 127.0.0.0/8: keep only the "never" address.
            ("STRICTMX_IGNORE_TARGET_HOSTS", "0.0.0.0"),
        ] + list(extra_macros)
        lines = [
            "# Exim configuration for the strictmx integration tests, written by eximlib.py.",
            "# The strictmx parts are the contrib/exim files, included as they are.",
            f"exim_path = {self.exim}",
            f"primary_hostname = {CLIENT}",
            f"qualify_domain = {CLIENT}",
            f"domainlist local_domains = {CLIENT}",
            "# Only this address is \"the local host\": the MX hosts of the test internet",
            "# (127.0.0.10-13) are remote hosts to this Exim.",
            "local_interfaces = <; 127.0.0.3",
            f"spool_directory = {directory}/spool",
            f"log_file_path = {directory}/log/%slog",
            "log_selector = +tls_peerdn +tls_sni +tls_certificate_verified +outgoing_port",
            "keep_environment =",
            "",
        ]
        lines += [f"{name} = {value}" for name, value in macros]
        lines += [
            f".include {CONTRIB}/strictmx-main.conf",
            "",
            "begin acl",
            f".include {CONTRIB}/strictmx-acl.conf",
            "",
            "begin routers",
            f".include {CONTRIB}/strictmx-routers.conf",
            "# The router of Exim's default configuration for remote domains.",
            "dnslookup:",
            "  driver = dnslookup",
            "  domains = ! +local_domains",
            "  transport = remote_smtp",
            "  ignore_target_hosts = 0.0.0.0",
            "  no_more",
            "",
            "begin transports",
            f".include {CONTRIB}/strictmx-transports.conf",
            "remote_smtp:",
            "  driver = smtp",
            "",
            "begin retry",
            "*  *  F,2h,15m; G,16h,1h,1.5; F,4d,6h",
            "",
        ]
        with open(self.conf, "w") as f:
            f.write("\n".join(lines))

    def set_ca(self, path):
        shutil.copyfile(path, self.ca)
        os.chmod(self.ca, 0o644)

    def run(self, argv, input_text=None, resolv=None, timeout=90):
        cmd = self.users.wrap([self.exim, "-C", self.conf] + argv, resolv)
        return subprocess.run(cmd, input=input_text, capture_output=True, text=True,
                              timeout=timeout)

    def expand(self, expressions, resolv=None):
        """exim -be, one expression per line on standard input (Exim refuses long
        command-line arguments). Returns the result of each, or raises."""
        text = "".join(e + "\n" for e in expressions)
        p = self.run(["-be"], input_text=text, resolv=resolv)
        out = p.stdout
        results = [line[2:] if line.startswith("> ") else line
                   for line in out.split("\n") if line.startswith(">") and line not in (">", "> ")]
        if p.returncode != 0 or len(results) != len(expressions):
            raise RuntimeError(f"exim -be failed (exit {p.returncode}):\n{out}\n{p.stderr}")
        return results

    def route(self, address, resolv=None):
        """exim -bt ADDRESS -> (exit code, output)."""
        p = self.run(["-bt", address], resolv=resolv)
        return p.returncode, (p.stdout + p.stderr).strip()

    def send(self, rcpt, subject, resolv=None):
        """Submit a message and deliver it in the foreground (-odf). Returns the
        main log lines of that message."""
        msg = (f"From: sender@{CLIENT}\nTo: {rcpt}\nSubject: {subject}\n\n"
               f"strictmx Exim test message: {subject}\n")
        before = self.mainlog()
        p = self.run(["-odf", "-f", f"sender@{CLIENT}", rcpt], input_text=msg, resolv=resolv)
        after = self.mainlog()
        new = after[len(before):] if after.startswith(before) else after
        ids = set(re.findall(r"^\S+ \S+ (\S+) <= ", new, re.M))
        lines = [line for line in new.splitlines()
                 if any(f" {i} " in line for i in ids) or " H=" in line and "not used for" in line]
        if p.returncode != 0:
            lines.append(f"(exim exit {p.returncode}: {p.stderr.strip()})")
        return lines

    def mainlog(self):
        try:
            with open(os.path.join(self.dir, "log", "mainlog"), errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    def panics(self):
        """Panic log lines, without the notice every -C run as root leaves."""
        try:
            with open(os.path.join(self.dir, "log", "paniclog"), errors="replace") as f:
                lines = f.read().splitlines()
        except FileNotFoundError:
            return []
        return [line for line in lines if "lost privilege for using -C option" not in line]


# --- strictmx-policyd with Exim listeners --------------------------------------------------

def _toml_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    raise TypeError(f"cannot write {v!r} as TOML")


def _toml_tables(prefix, table, out):
    scalars = {k: v for k, v in table.items() if not isinstance(v, dict)}
    if prefix and scalars:
        out.append(f"[{prefix}]")
    for k, v in scalars.items():
        out.append(f"{_toml_value(k)} = {_toml_value(v)}")
    for k, v in table.items():
        if isinstance(v, dict):
            _toml_tables(f"{prefix}.{k}" if prefix else k, v, out)


class Policyd:
    """strictmx-policyd on the fixture's configuration (resolver, HTTPS, overrides),
    with its own state directory and cache, listening only where LISTEN says."""

    def __init__(self, workdir, directory, listen, extra=None):
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        self.binary = os.environ.get("STRICTMX_POLICYD") or subprocess.run(
            ["bash", "-c", '. "$1" && printf %s "$STRICTMX_POLICYD"', "sh",
             os.path.join(workdir, "fixture.env")], capture_output=True, text=True).stdout
        if not self.binary:
            raise RuntimeError(f"no strictmx-policyd: {workdir}/fixture.env names none")
        with open(os.path.join(workdir, "strictmx.toml"), "rb") as f:
            cfg = tomllib.load(f)
        cfg.setdefault("daemon", {})["state_dir"] = directory
        cfg.setdefault("cache", {})["path"] = os.path.join(directory, "cache.db")
        cfg["listen"] = listen
        for section, table in (extra or {}).items():
            cfg.setdefault(section, {}).update(table)
        out = ["# strictmx-policyd for the Exim tests: the fixture's strictmx.toml, own",
               "# state and cache, Exim listeners."]
        _toml_tables("", {k: v for k, v in cfg.items() if k != "listen"}, out)
        for entry in listen:
            out.append("[[listen]]")
            out += [f"{k} = {_toml_value(v)}" for k, v in entry.items()]
        self.conf = os.path.join(directory, "strictmx.toml")
        with open(self.conf, "w") as f:
            f.write("\n".join(out) + "\n")
        self.log = os.path.join(directory, "policyd.log")
        self.proc = None
        self.inet = [tuple(e["address"][5:].rsplit(":", 1)) for e in listen
                     if e["address"].startswith("inet:")]
        self.unix = [e["address"][5:] for e in listen if e["address"].startswith("unix:")]

    def start(self):
        with open(self.log, "a") as log:
            self.proc = subprocess.Popen([self.binary, "--config", self.conf],
                                         stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                         preexec_fn=os.setsid)
        end = time.time() + 15
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"strictmx-policyd exited: {self.tail()}")
            if all(wait_port(h, int(p), 0.1) for h, p in self.inet) and \
               all(os.path.exists(u) for u in self.unix):
                return
            time.sleep(0.05)
        raise RuntimeError(f"strictmx-policyd did not listen: {self.tail()}")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def tail(self, n=15):
        try:
            with open(self.log, errors="replace") as f:
                return "".join(f.readlines()[-n:])
        except FileNotFoundError:
            return ""


# --- a resolver that lies about chosen names ------------------------------------------------

class LyingResolver:
    """unbound on ADDRESS:53 resolving like the test internet's (same trust anchor,
    same nsd), except for the names given in LOCAL_DATA: what an attacker who can
    spoof DNS answers (MX records) makes a sender see. Names get "typetransparent"
    local zones, so their other record types still come from the test internet."""

    def __init__(self, workdir, directory, address, local_data):
        self.dir = directory
        self.address = address
        os.makedirs(directory, exist_ok=True)
        owners = []
        for rr in local_data:
            owner = rr.split()[0].lower()
            if owner not in owners:
                owners.append(owner)
        conf = [
            "server:",
            f"\tinterface: {address}",
            "\tport: 53",
            "\tdo-ip6: no",
            '\tusername: ""',
            '\tchroot: ""',
            f'\tdirectory: "{directory}"',
            f'\tpidfile: "{directory}/unbound.pid"',
            f'\tlogfile: "{directory}/unbound.log"',
            "\tuse-syslog: no",
            "\tverbosity: 1",
            "\tnum-threads: 1",
            # A second resolver left on this address must make the start fail, not
            # share the queries (unbound binds with SO_REUSEPORT by default).
            "\tso-reuseport: no",
            '\tmodule-config: "validator iterator"',
            f'\ttrust-anchor-file: "{workdir}/trust-anchor"',
            '\tlocal-zone: "test." nodefault',
            "\tdo-not-query-localhost: no",
            "\taccess-control: 127.0.0.0/8 allow",
        ]
        conf += [f'\tlocal-zone: "{o}" typetransparent' for o in owners]
        conf += [f'\tlocal-data: "{rr}"' for rr in local_data]
        conf += ["remote-control:", "\tcontrol-enable: no",
                 "forward-zone:", '\tname: "."', "\tforward-addr: 127.0.0.1@5353", ""]
        self.conf = os.path.join(directory, "unbound.conf")
        with open(self.conf, "w") as f:
            f.write("\n".join(conf))
        self.resolv = os.path.join(directory, "resolv.conf")
        with open(self.resolv, "w") as f:
            f.write(f"nameserver {address}\noptions edns0 trust-ad\n")
        self.pid = None

    def start(self):
        p = subprocess.run(["unbound", "-c", self.conf], capture_output=True, text=True)
        if p.returncode != 0:
            raise RuntimeError(f"unbound: {p.stdout}{p.stderr}")
        end = time.time() + 10
        pidfile = os.path.join(self.dir, "unbound.pid")
        while time.time() < end:
            if os.path.exists(pidfile) and wait_port(self.address, 53, 0.2):
                with open(pidfile) as f:
                    text = f.read().strip()
                if text:  # unbound may not have written its pid yet
                    self.pid = int(text)
                    return
            time.sleep(0.05)
        raise RuntimeError("the lying resolver did not start")

    def stop(self):
        if self.pid:
            try:
                os.kill(self.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
            for _ in range(100):
                try:
                    os.kill(self.pid, 0)
                except ProcessLookupError:
                    break
                time.sleep(0.05)
            self.pid = None


# --- a proxy in front of the daemon ---------------------------------------------------------

class AnswerRewriter:
    """Listens on 127.0.0.1:PORT, passes each one-line request to the daemon at
    UPSTREAM and its answer back, through REWRITE(request, answer) -> answer."""

    def __init__(self, port, upstream, rewrite):
        self.upstream = upstream
        self.rewrite = rewrite
        self.srv = socket.socket()
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind(("127.0.0.1", port))
        self.srv.listen(16)
        self.requests = []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.srv.accept()
            except OSError:
                return
            threading.Thread(target=self._one, args=(conn,), daemon=True).start()

    def _one(self, conn):
        with conn:
            conn.settimeout(20)
            req = b""
            while True:
                chunk = conn.recv(4096)
                if not chunk:
                    break
                req += chunk
            with socket.create_connection(self.upstream, timeout=20) as up:
                up.sendall(req)
                up.shutdown(socket.SHUT_WR)
                ans = b""
                while True:
                    chunk = up.recv(4096)
                    if not chunk:
                        break
                    ans += chunk
            request, answer = req.decode().strip(), ans.decode().rstrip("\n")
            self.requests.append(request)
            conn.sendall((self.rewrite(request, answer) + "\n").encode())

    def close(self):
        self.srv.close()


def sink_messages(workdir, sink):
    """The tab-separated lines of a sink's messages.log."""
    try:
        with open(os.path.join(workdir, "sinks", sink, "messages.log")) as f:
            return [line.rstrip("\n") for line in f if line.strip()]
    except FileNotFoundError:
        return []
