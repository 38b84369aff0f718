#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""SMTP sinks of the test internet: one process, one listener per sink on port 25 of
its own loopback address, STARTTLS with the given certificate or none at all.

Usage: smtp_sink.py --workdir W --sink NAME:ADDRESS:CERT [--sink ...]
  CERT is a certificate name in W/pki, or "-" for a sink that offers no STARTTLS.

Each accepted message is written to W/sinks/NAME/msg-N.eml, preceded by X-Sink-*
header lines (TLS state, protocol, SNI sent by the client, envelope), and
summarised in W/sinks/NAME/messages.log as one tab-separated line:
  time  tls=yes|no  sni=NAME|-  from=ADDR  rcpt=ADDR[,ADDR...]
"""

import argparse
import asyncio
import itertools
import os
import ssl
import sys
import time

from aiosmtpd.smtp import SMTP


class Sink:
    counter = itertools.count(1)

    def __init__(self, name, directory):
        self.name = name
        self.dir = directory
        os.makedirs(directory, exist_ok=True)
        open(os.path.join(directory, "messages.log"), "a").close()

    async def handle_DATA(self, server, session, envelope):
        tlsinfo = session.ssl
        if tlsinfo:
            obj = tlsinfo.get("ssl_object")
            version = obj.version() if obj else "?"
            sni = getattr(obj, "testnet_sni", None) or "-"
            tls = "yes"
        else:
            version, sni, tls = "-", "-", "no"
        n = next(self.counter)
        rcpts = ",".join(envelope.rcpt_tos)
        head = (f"X-Sink-Name: {self.name}\r\nX-Sink-TLS: {tls}\r\n"
                f"X-Sink-TLS-Version: {version}\r\nX-Sink-SNI: {sni}\r\n"
                f"X-Sink-Mail-From: {envelope.mail_from}\r\n"
                f"X-Sink-Rcpt-To: {rcpts}\r\n")
        with open(os.path.join(self.dir, f"msg-{n}.eml"), "wb") as f:
            f.write(head.encode() + envelope.original_content)
        with open(os.path.join(self.dir, "messages.log"), "a") as f:
            f.write(f"{time.time():.3f}\ttls={tls}\tsni={sni}\t"
                    f"from={envelope.mail_from}\trcpt={rcpts}\n")
        return "250 2.0.0 Ok: queued as sink-%d" % n


def tls_context(pki, certname):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(os.path.join(pki, certname + ".pem"),
                        os.path.join(pki, certname + ".key"))

    def remember_sni(sslobj, server_name, _ctx):
        sslobj.testnet_sni = server_name
        return None

    ctx.sni_callback = remember_sni
    return ctx


async def serve(workdir, sinks):
    loop = asyncio.get_running_loop()
    servers = []
    for spec in sinks:
        name, address, cert = spec.split(":")
        handler = Sink(name, os.path.join(workdir, "sinks", name))
        ctx = None if cert == "-" else tls_context(os.path.join(workdir, "pki"), cert)

        def factory(handler=handler, ctx=ctx, name=name):
            return SMTP(handler, hostname=f"{name}.sink.test", tls_context=ctx,
                        loop=loop, timeout=60)

        servers.append(await loop.create_server(factory, host=address, port=25))
    with open(os.path.join(workdir, "sinks", "ready"), "w") as f:
        f.write(f"{os.getpid()}\n")
    await asyncio.gather(*(s.serve_forever() for s in servers))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--sink", action="append", default=[])
    a = ap.parse_args()
    asyncio.run(serve(a.workdir, a.sink))
    return 0


if __name__ == "__main__":
    sys.exit(main())
