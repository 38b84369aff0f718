#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A DNS server that never answers: reads UDP queries on 127.0.0.1:PORT and drops them, and
accepts TCP connections and says nothing. The resolver of the daemon under test forwards to
it, so every lookup fails by timeout, as when the network to the DNS is down."""
import socket
import sys
import threading

port = int(sys.argv[1]) if len(sys.argv) > 1 else 5399
udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
udp.bind(("127.0.0.1", port))
tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
tcp.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
tcp.bind(("127.0.0.1", port))
tcp.listen(128)
held = []
threading.Thread(target=lambda: [held.append(tcp.accept()) for _ in iter(int, 1)],
                 daemon=True).start()
while True:
    udp.recv(4096)
