#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Socket activation as systemd does it (sd_listen_fds(3): LISTEN_PID, LISTEN_FDS, fd 3):
the daemon adopts the socket whose address matches a [[listen]] entry instead of binding,
answers connections that were queued before it started, and refuses to start when handed
a socket that no [[listen]] entry names. Its own daemon on 8482, the fixture's resolver.

Usage: t_activation.py WORKDIR
"""

import os
import re
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

PORT = 8482


def write_config(w, d):
    resolver, https = itlib.fixture_sections(w)
    conf = os.path.join(d, "strictmx.toml")
    with open(conf, "w") as f:
        f.write(f"""[daemon]
log = "stderr"
verbosity = 2
allow_root = true
state_dir = "{d}/state"
[resolver]
{resolver}
[https]
{https}
[cache]
path = "{d}/cache.db"
[[listen]]
type = "socketmap"
address = "inet:127.0.0.1:{PORT}"
""")
    return conf


def start_activated(binary, conf, sock, log):
    """The daemon with `sock` as its fd 3 and LISTEN_PID set to its own pid, as systemd."""
    fd = sock.fileno()

    def child():
        os.dup2(fd, 3)
        os.set_inheritable(3, True)
        os.environ["LISTEN_PID"] = str(os.getpid())
        os.environ["LISTEN_FDS"] = "1"
        os.environ["LISTEN_FDNAMES"] = "strictmx-policyd.socket"

    return subprocess.Popen([binary, "--config", conf], stdout=log, stderr=subprocess.STDOUT,
                            preexec_fn=child, pass_fds=(3,),
                            close_fds=True)


def main():
    w = itlib.workdir()
    t = itlib.Checks("activation")
    d = os.path.join(w, "activation-test")
    os.makedirs(os.path.join(d, "state"), exist_ok=True)
    conf = write_config(w, d)
    binary = itlib.policyd_binary(w)
    log_path = os.path.join(d, "policyd.log")

    # The socket exists before the daemon; a client connects and asks before it starts.
    lsock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    lsock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    lsock.bind(("127.0.0.1", PORT))
    lsock.listen(16)
    early = socket.create_connection(("127.0.0.1", PORT), timeout=20)
    early.sendall(itlib.netstring(b"postfix enforce.test"))
    with open(log_path, "w") as log:
        p = start_activated(binary, conf, lsock, log)
    lsock.close()
    try:
        data = b""
        early.settimeout(20)
        while not data.endswith(b","):
            chunk = early.recv(4096)
            if not chunk:
                break
            data += chunk
        t.ok(b"OK secure match=mx1.enforce.test" in data,
             "a query sent before the daemon started is answered", repr(data[:200]))
        t.eq(itlib.socketmap_query("enforce.test", address=("127.0.0.1", PORT)),
             "OK secure match=mx1.enforce.test:a.pool.enforce.test servername=hostname",
             "new connections are answered on the adopted socket")
        with open(log_path) as f:
            text = f.read()
        t.ok(re.search(r"listening .*address=inet:127\.0\.0\.1:8482 .*from=systemd", text),
             "the log says the socket came from systemd", text[-600:])
    finally:
        early.close()
        p.terminate()
        p.wait(10)

    # A socket no [[listen]] names: refused at start, with the address.
    other = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    other.bind(("127.0.0.1", PORT + 1))
    other.listen(4)
    with open(log_path, "w") as log:
        p = start_activated(binary, conf, other, log)
    other.close()
    try:
        rc = p.wait(20)
    except subprocess.TimeoutExpired:
        p.kill()
        rc = None
    with open(log_path) as f:
        text = f.read()
    t.eq(rc, 1, "a socket without a [[listen]] entry: refuses to start")
    t.ok("127.0.0.1:8483" in text and "[[listen]]" in text,
         "the refusal names the address and the fix", text[-600:])
    t.done()


if __name__ == "__main__":
    main()
