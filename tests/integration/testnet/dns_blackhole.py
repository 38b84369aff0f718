#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A name server that never answers: it reads every DNS query on UDP and TCP and
drops it, so resolvers see timeouts rather than a refused connection. Each query
is logged as one line (time, transport, client, query name and type) to the
log file, which proves the queries arrived.

Usage: dns_blackhole.py --listen IP:PORT --log FILE
"""

import argparse
import asyncio
import struct
import sys
import time


def describe(msg):
    """Query name and type of a DNS message, or '?' if it does not parse."""
    try:
        labels, i = [], 12
        while msg[i]:
            n = msg[i]
            labels.append(msg[i + 1:i + 1 + n].decode("ascii", "replace"))
            i += 1 + n
        qtype = struct.unpack("!H", msg[i + 1:i + 3])[0]
        return ".".join(labels) + ".", str(qtype)
    except (IndexError, struct.error):
        return "?", "?"


class Blackhole:
    def __init__(self, log):
        self.log = log

    def record(self, transport, peer, msg):
        name, qtype = describe(msg)
        self.log.write(f"{time.time():.3f}\t{transport}\t{peer[0]}:{peer[1]}\t{name}\t{qtype}\n")
        self.log.flush()


class Udp(asyncio.DatagramProtocol):
    def __init__(self, hole):
        self.hole = hole

    def datagram_received(self, data, addr):
        self.hole.record("udp", addr, data)


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--listen", required=True)
    ap.add_argument("--log", required=True)
    args = ap.parse_args()
    host, port = args.listen.rsplit(":", 1)
    hole = Blackhole(open(args.log, "a"))
    loop = asyncio.get_running_loop()
    await loop.create_datagram_endpoint(lambda: Udp(hole), local_addr=(host, int(port)))

    async def tcp(reader, writer):
        peer = writer.get_extra_info("peername")
        try:
            while True:
                head = await reader.readexactly(2)
                msg = await reader.readexactly(struct.unpack("!H", head)[0])
                hole.record("tcp", peer, msg)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(tcp, host, int(port))
    print(f"dns_blackhole: dropping queries on {host}:{port}", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        sys.exit(0)
