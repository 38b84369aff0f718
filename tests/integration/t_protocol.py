#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Wire robustness of the socketmap and tcp_table listeners: long keys get an
answer and leave the connection usable (Postfix keeps one connection per
endpoint), many queries share one connection, concurrent clients are served,
and a policy with 2000 mx names respects each client's reply limit (socketmap
100,000 bytes: the whole answer fits; tcp_table 4,096 bytes: it does not, and
whatever is sent must not carry a cut-off host name).

Usage: t_protocol.py WORKDIR
"""

import concurrent.futures
import os
import re
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

ENFORCE = "OK secure match=mx1.enforce.test:a.pool.enforce.test servername=hostname"


def main():
    itlib.workdir()
    t = itlib.Checks("protocol")

    c = itlib.Socketmap(itlib.SOCKETMAP_INET)
    t.eq(c.query("postfix", "enforce.test"), ENFORCE, "first query")
    for size in (1500, 9000):
        key = ("a" * 60 + ".") * (size // 61) + "test"
        try:
            reply = c.query("postfix", key)
        except (OSError, ValueError) as e:
            reply = f"{type(e).__name__}: {e}"
        t.eq(reply, "NOTFOUND ", f"{len(key)}-byte key: NOTFOUND")
        try:
            again = c.query("postfix", "enforce.test")
        except (OSError, ValueError) as e:
            again = f"{type(e).__name__}: {e}"
        t.eq(again, ENFORCE, f"same connection still answers after the {len(key)}-byte key")
    answers = [c.query("postfix", k) for k in ["enforce.test", "testing.test"] * 25]
    t.ok(answers == [ENFORCE, "NOTFOUND "] * 25, "50 queries on one connection")
    c.close()

    def one(i):
        key = "enforce.test" if i % 2 == 0 else "deliver-ok.test"
        want = ENFORCE if i % 2 == 0 else \
            "OK secure match=mx.deliver-ok.test servername=hostname"
        return itlib.socketmap_query(key) == want

    with concurrent.futures.ThreadPoolExecutor(16) as ex:
        results = list(ex.map(one, range(64)))
    t.ok(all(results), "64 queries from 16 concurrent clients", f"{results.count(False)} wrong")

    code, text = itlib.tcp_query("enforce.test")
    t.eq((code, text), ("200", ENFORCE[3:]), "tcp_table: enforce.test")
    code, _ = itlib.tcp_query("a b%c.test")
    t.eq(code, "500", "tcp_table: %-encoded key with space and percent: not found")
    code, _ = itlib.tcp_query("x" * 2000 + ".test")
    t.eq(code, "500", "tcp_table: 2005-byte key: not found")

    names = [f"h{i:04d}.manymx.test" for i in range(2000)]
    want = "OK secure match=" + ":".join(names) + " servername=hostname"
    reply = itlib.socketmap_query("manymx.test")
    t.eq(reply, want, f"socketmap: manymx.test, all 2000 names ({len(want)} bytes)")
    rc, out, err = itlib.postmap(itlib.workdir(), "manymx.test",
                                 "socketmap:inet:127.0.0.1:8461:postfix")
    t.ok(rc == 0 and out == want[3:], "postmap socketmap: manymx.test", f"rc={rc} {err.strip()}")

    with socket.create_connection(itlib.TCP_TABLE, timeout=itlib.ANSWER_DEADLINE_S + 5) as s:
        s.sendall(b"get manymx.test\n")
        raw = b""
        while b"\n" not in raw:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
    line = raw.split(b"\n", 1)[0].decode("utf-8", "replace")
    t.ok(b"\n" in raw and len(line) + 1 <= 4096,
         f"tcp_table: manymx.test reply within 4,096 bytes ({len(line) + 1})")
    code, _, text = line.partition(" ")
    t.ok(code in ("200", "400", "500"), f"tcp_table: manymx.test reply code {code}")
    if code == "200":
        m = re.search(r"(?:^|\s)match=(\S+)", text.replace("%20", " "))
        entries = m.group(1).split(":") if m else []
        t.ok(entries and set(entries) <= set(names),
             "tcp_table: manymx.test match= carries whole names only", text[-200:])
    t.done()


if __name__ == "__main__":
    main()
