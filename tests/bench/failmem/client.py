#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Looks up N distinct domains (d<i>.fail-example.net, i from START) over socketmap on
127.0.0.1:PORT from C connections, one request at a time on each, as Postfix does; prints
how the answers were distributed."""
import collections
import socket
import sys
import threading

start, n, conns, port = (int(a) for a in sys.argv[1:5])
answers = collections.Counter()
lock = threading.Lock()


def netstring(b):
    return b"%d:%s," % (len(b), b)


def worker(k):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    for i in range(start + k, start + n, conns):
        s.sendall(netstring(b"postfix d%d.fail-example.net" % i))
        head = b""
        while not head.endswith(b":"):
            head += f.read(1)
        reply = f.read(int(head[:-1]) + 1)[:-1]
        with lock:
            answers[reply.split(b" ")[0].decode()] += 1


threads = [threading.Thread(target=worker, args=(k,)) for k in range(conns)]
for t in threads:
    t.start()
for t in threads:
    t.join()
print(" ".join(f"{k}={v}" for k, v in sorted(answers.items())))
