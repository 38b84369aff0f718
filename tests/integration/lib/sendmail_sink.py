#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A sendmail-compatible command for tests: reads one message on standard input and
stores it as DIR/NNNN.eml (written to a temporary name, then linked into place, so a
reader never sees half a message); the command line goes to DIR/NNNN.args (JSON).
While DIR/FAIL exists it writes nothing and exits 75 (EX_TEMPFAIL), as sendmail does
when the mail system cannot take the message now.

Usage: sendmail_sink.py DIR [-i] [-t] [-f SENDER] [RECIPIENT...]   (options are recorded, not used)
"""

import json
import os
import sys


def main():
    if len(sys.argv) < 2:
        sys.stderr.write("usage: sendmail_sink.py DIR [sendmail options]\n")
        return 64
    d = sys.argv[1]
    data = sys.stdin.buffer.read()
    if os.path.exists(os.path.join(d, "FAIL")):
        sys.stderr.write("sendmail_sink: DIR/FAIL exists: temporary failure\n")
        return 75
    os.makedirs(d, exist_ok=True)
    tmp = os.path.join(d, f".tmp.{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    with open(tmp + ".args", "w") as f:
        json.dump(sys.argv[2:], f)
    n = len([x for x in os.listdir(d) if x.endswith(".eml")]) + 1
    while True:
        name = os.path.join(d, f"{n:04d}")
        try:
            os.link(tmp + ".args", name + ".args")
        except FileExistsError:
            n += 1
            continue
        os.link(tmp, name + ".eml")  # the .eml last: its presence means complete
        break
    os.unlink(tmp)
    os.unlink(tmp + ".args")
    return 0


if __name__ == "__main__":
    sys.exit(main())
