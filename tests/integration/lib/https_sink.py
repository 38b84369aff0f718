#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""An HTTPS sink for TLSRPT reports (RFC 8460 section 5.4) on 127.0.0.1:PORT.

The first POST to each path gets a 500, later ones a 200 (--fail-first N: the first N
POSTs to each path fail; 0 accepts at once). While DIR/FAIL exists every POST gets a 500.
A POST whose Content-Type is not application/tlsrpt+gzip gets a 415. Every request is
logged to DIR/requests.log (time, method, path, content type, body length, status, tab
separated); an accepted body is stored as DIR/NNNN.body, its request line and headers as
DIR/NNNN.json (the .json is written last). Anything but POST gets a 405.

Usage: https_sink.py --port PORT --cert CERT --key KEY --dir DIR [--fail-first N]
"""

import argparse
import collections
import http.server
import json
import os
import ssl
import sys
import threading
import time

REPORT_TYPE = "application/tlsrpt+gzip"
MAX_BODY = 16 << 20


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--dir", required=True)
    ap.add_argument("--fail-first", type=int, default=1)
    args = ap.parse_args()
    os.makedirs(args.dir, exist_ok=True)
    lock = threading.Lock()
    posts = collections.Counter()
    stored = [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "tlsrpt-sink"

        def log_message(self, fmt, *a):
            sys.stderr.write("https_sink: " + (fmt % a) + "\n")

        def answer(self, status, ctype, length):
            with lock:
                with open(os.path.join(args.dir, "requests.log"), "a") as f:
                    f.write(f"{time.time():.3f}\t{self.command}\t{self.path}\t{ctype}\t"
                            f"{length}\t{status}\n")
            body = f"{status}\n".encode()
            self.send_response(status)
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):
            self.answer(405, "", 0)

        def do_POST(self):
            ctype = self.headers.get("Content-Type", "")
            try:
                n = int(self.headers.get("Content-Length", ""))
            except ValueError:
                n = -1
            if n < 0 or n > MAX_BODY:
                self.close_connection = True
                return self.answer(411 if n < 0 else 413, ctype, n)
            body = self.rfile.read(n)
            if ctype.split(";")[0].strip().lower() != REPORT_TYPE:
                return self.answer(415, ctype, n)
            with lock:
                posts[self.path] += 1
                fail = (posts[self.path] <= args.fail_first
                        or os.path.exists(os.path.join(args.dir, "FAIL")))
                if not fail:
                    stored[0] += 1
                    base = os.path.join(args.dir, f"{stored[0]:04d}")
                    with open(base + ".body", "wb") as f:
                        f.write(body)
                    with open(base + ".json.tmp", "w") as f:
                        json.dump({"method": self.command, "path": self.path,
                                   "content_type": ctype,
                                   "headers": [[k, v] for k, v in self.headers.items()]}, f)
                    os.rename(base + ".json.tmp", base + ".json")
            self.answer(500 if fail else 200, ctype, n)

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
    print(f"https_sink: listening on 127.0.0.1:{args.port}", flush=True)
    srv.serve_forever()


if __name__ == "__main__":
    main()
