# SPDX-License-Identifier: MIT
"""Helpers shared by the integration tests: wire clients for socketmap (netstring)
and tcp_table, a postmap wrapper, a tokenizer for Postfix TLS policy text,
fetch counters for the policy server, and a small check/report harness.

Every test runs inside the fixture's network namespace (nsrun.sh) and gets the
fixture work directory as its first argument.
"""

import os
import shlex
import re
import socket
import subprocess
import sys
import time
import urllib.parse

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)

SOCKETMAP_INET = ("127.0.0.1", 8461)
TCP_TABLE = ("127.0.0.1", 8462)
# tcp_table listeners, one per profile (strictmx.toml from testnet/start.sh).
TCP_TABLE_PROFILES = {
    "postfix": TCP_TABLE,
    "postfix-tlsrpt": ("127.0.0.1", 8463),
    "strict": ("127.0.0.1", 8464),
    "strict-tlsrpt": ("127.0.0.1", 8465),
}
PROFILES = tuple(TCP_TABLE_PROFILES)
# lookup_deadline_ms in strictmx.toml is 8000; allow scheduling slack on top.
ANSWER_DEADLINE_S = 8.5


# --- reporting -------------------------------------------------------------------

class Checks:
    """Collects named checks, prints one line each, exits 1 if any failed."""

    def __init__(self, name):
        self.name = name
        self.passed = 0
        self.failed = []

    def ok(self, cond, what, detail=""):
        if cond:
            self.passed += 1
            print(f"ok     {what}")
        else:
            self.failed.append(what)
            print(f"FAIL   {what}" + (f"\n       {detail}" if detail else ""))
        sys.stdout.flush()
        return cond

    def eq(self, got, want, what):
        return self.ok(got == want, what, f"got  {got!r}\n       want {want!r}")

    def done(self):
        print(f"{self.name}: {self.passed} passed, {len(self.failed)} failed")
        for f in self.failed:
            print(f"  failed: {f}")
        sys.exit(1 if self.failed else 0)


def policyd_binary(w):
    """The strictmx-policyd the fixture was set up with (fixture.env)."""
    with open(os.path.join(w, "fixture.env")) as f:
        for line in f:
            if line.startswith("STRICTMX_POLICYD="):
                return line.split("=", 1)[1].strip().strip("'\"")
    raise RuntimeError("no STRICTMX_POLICYD in fixture.env")


def milter_binary(w):
    """strictmx-milter: $STRICTMX_MILTER, else what the fixture recorded (fixture.env), else
    the build tree's milter/strictmx-milter beside the policyd/ directory of the daemon."""
    path = os.environ.get("STRICTMX_MILTER", "")
    env = os.path.join(w, "fixture.env")
    if not path and os.path.exists(env):
        for line in open(env):
            if line.startswith("STRICTMX_MILTER="):
                path = (shlex.split(line.split("=", 1)[1]) or [""])[0]
    if not path:
        build = os.path.dirname(os.path.dirname(os.path.abspath(policyd_binary(w))))
        path = os.path.join(build, "milter", "strictmx-milter")
    return path


def cli_path(w):
    """The strictmx command-line tool: $STRICTMX_CLI, or what the fixture recorded."""
    cli = os.environ.get("STRICTMX_CLI", "")
    if not cli and os.path.exists(os.path.join(w, "fixture.env")):
        for line in open(os.path.join(w, "fixture.env")):
            if line.startswith("STRICTMX_CLI="):
                cli = (shlex.split(line.split("=", 1)[1]) or [""])[0]
    return cli


def workdir():
    if len(sys.argv) < 2:
        sys.exit("usage: TEST WORKDIR")
    return os.path.abspath(sys.argv[1])


# --- socketmap (netstrings) --------------------------------------------------------

def netstring(data: bytes) -> bytes:
    return b"%d:%s," % (len(data), data)


class Socketmap:
    """One persistent socketmap connection, as Postfix keeps one per endpoint."""

    def __init__(self, address, timeout=ANSWER_DEADLINE_S + 5):
        if isinstance(address, tuple):
            self.sock = socket.create_connection(address, timeout=timeout)
        else:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(timeout)
            self.sock.connect(address)
        self.buf = b""

    def query(self, name, key):
        """Returns the reply payload as text, e.g. 'OK secure match=...'."""
        return self.query_raw(name, key).decode("utf-8", "replace")

    def query_raw(self, name, key):
        """Returns the reply payload as bytes, exactly as the server sent it."""
        req = f"{name} {key}".encode()
        self.sock.sendall(netstring(req))
        while True:
            m = re.match(rb"(\d{1,6}):", self.buf)
            if m:
                n = int(m.group(1))
                end = m.end() + n
                if len(self.buf) > end:
                    if self.buf[end:end + 1] != b",":
                        raise ValueError(f"bad netstring terminator: {self.buf[:80]!r}")
                    payload = self.buf[m.end():end]
                    self.buf = self.buf[end + 1:]
                    return payload
            elif len(self.buf) > 7:
                raise ValueError(f"bad netstring: {self.buf[:80]!r}")
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("socketmap server closed the connection")
            self.buf += chunk

    def close(self):
        self.sock.close()


def socketmap_query(key, name="postfix", address=SOCKETMAP_INET):
    c = Socketmap(address)
    try:
        return c.query(name, key)
    finally:
        c.close()


# --- tcp_table -------------------------------------------------------------------------

def tcp_encode(key):
    # dict_tcp encodes %, whitespace and non-printing characters.
    return "".join(c if (c.isprintable() and not c.isspace() and c != "%")
                   else "".join(f"%{b:02X}" for b in c.encode()) for c in key)


def tcp_query(key, address=TCP_TABLE, timeout=ANSWER_DEADLINE_S + 5):
    """Returns (code, decoded text) of one tcp_table request."""
    code, raw, _ = tcp_query_raw(key, address, timeout)
    return code, raw.decode("utf-8", "replace")


def _tcp_exchange(key, address, timeout):
    with socket.create_connection(address, timeout=timeout) as s:
        s.sendall(f"get {tcp_encode(key)}\n".encode())
        buf = b""
        while b"\n" not in buf:
            chunk = s.recv(8192)
            if not chunk:
                break
            buf += chunk
    return buf


def tcp_query_raw(key, address=TCP_TABLE, timeout=ANSWER_DEADLINE_S + 5):
    """One tcp_table request: (code, text with %XX decoded to bytes, bytes the server
    sent after the first newline; a reply is one line, so these should be none)."""
    line, _, rest = _tcp_exchange(key, address, timeout).partition(b"\n")
    code, _, text = line.partition(b" ")
    return code.decode("ascii", "replace"), urllib.parse.unquote_to_bytes(text), rest


def tcp_query_line(key, address=TCP_TABLE, timeout=ANSWER_DEADLINE_S + 5):
    """One tcp_table request; returns (the reply line as sent, newline included,
    anything the server sent after it)."""
    line, nl, extra = _tcp_exchange(key, address, timeout).partition(b"\n")
    return line + nl, extra


# --- postmap ------------------------------------------------------------------------------

def postmap_confdir(w):
    d = os.path.join(w, "postmap")
    if not os.path.exists(os.path.join(d, "main.cf")):
        os.makedirs(d, exist_ok=True)
        with open(os.path.join(d, "main.cf"), "w") as f:
            f.write("compatibility_level = 3.6\n")
    return d


def postmap(w, key, table, verbose=False):
    """postmap [-v] -q KEY TABLE -> (exit code, stdout without newline, stderr)."""
    p = subprocess.run(["postmap", "-c", postmap_confdir(w)] + (["-v"] if verbose else [])
                       + ["-q", key, table],
                       capture_output=True, text=True, timeout=120)
    return p.returncode, p.stdout.rstrip("\n"), p.stderr


# --- Postfix TLS policy text ------------------------------------------------------------

def policy_tokens(text):
    """Split a policy table result the way Postfix does (mystrtokq with
    separators ", \\t\\r\\n" and brace quoting). Returns a list of tokens, or
    raises ValueError on unbalanced braces."""
    tokens, cur, depth = [], "", 0
    for ch in text:
        if depth == 0 and ch in ", \t\r\n":
            if cur:
                tokens.append(cur)
                cur = ""
            continue
        if ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth < 0:
                raise ValueError("unbalanced '}'")
        cur += ch
    if depth:
        raise ValueError("unbalanced '{'")
    if cur:
        tokens.append(cur)
    return tokens


def policy_attributes(text):
    """(level, [(name, value)...]) as smtp_tls_policy.c would see them."""
    tokens = policy_tokens(text)
    if not tokens:
        raise ValueError("empty policy")
    attrs = []
    for t in tokens[1:]:
        if t.startswith("{"):
            if not t.endswith("}"):
                raise ValueError(f"brace token does not end in '}}': {t!r}")
            t = t[1:-1].strip()
            name, eq, value = t.partition("=")
            name, value = name.strip(), value.strip()
        else:
            name, eq, value = t.partition("=")
        if not eq:
            raise ValueError(f"attribute without '=': {t!r}")
        attrs.append((name, value))
    return tokens[0], attrs


# --- policy server logs ---------------------------------------------------------------

def fixture_sections(w):
    """The [resolver] and [https] tables of the fixture's strictmx.toml, as text: what a test
    that runs a daemon of its own needs to reach the test internet."""
    with open(os.path.join(w, "strictmx.toml")) as f:
        fixture = f.read()
    resolver = re.search(r"(?ms)^\[resolver\]\n(.*?)(?=^\[)", fixture).group(1)
    https = re.search(r"(?ms)^\[https\]\n(.*?)(?=^\[)", fixture).group(1)
    return resolver, https


def fetch_count(w, domain):
    """HTTP requests the policy server received for mta-sts.DOMAIN, not counting
    those of t_testnet.sh (User-Agent testnet-check)."""
    path = os.path.join(w, "https", "requests.log")
    host = f"mta-sts.{domain}"
    if not os.path.exists(path):
        return 0
    with open(path) as f:
        rows = [line.rstrip("\n").split("\t") for line in f]
    return sum(1 for r in rows if r[2:3] == [host] and r[6:7] != ["testnet-check"])


def https_down(w, down=True):
    flag = os.path.join(w, "https", "down")
    if down:
        open(flag, "w").close()
    elif os.path.exists(flag):
        os.unlink(flag)


# --- daemon control ------------------------------------------------------------------------

def policyd(w, action):
    """start | stop | restart | status via policyd.sh; returns the exit code."""
    return subprocess.run([os.path.join(TOP, "policyd.sh"), w, action]).returncode


def wait_for(cond, timeout, step=0.1):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if cond():
            return True
        time.sleep(step)
    return cond()
