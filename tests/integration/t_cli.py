#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""The operator's tool: `strictmx --config strictmx.toml query DOMAIN` gives the
same profile postfix answer as the daemon (sts_cases.tsv) and shows what the
answers cannot, e.g. max_age capped at 31557600 s (RFC 8461 section 3.2).

Usage: t_cli.py WORKDIR   (the binary comes from WORKDIR/fixture.env, STRICTMX_CLI)
"""

import os
import re
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

DOMAINS = ["enforce.test", "wild.test", "testing.test", "badtxt.test", "ippattern.test",
           "sts-bogus.test", "sts-insecure.test", "maxage.test", "dane-signed.test",
           "dane-unusable.test", "dane-cname.test", "dane-implicit.test"]


def main():
    w = itlib.workdir()
    cli = itlib.cli_path(w)
    if not cli:
        print("SKIP: no strictmx binary given to the fixture")
        sys.exit(77)
    t = itlib.Checks("cli")
    expected = {}
    with open(os.path.join(itlib.TOP, "sts_cases.tsv")) as f:
        for line in f:
            if line.strip() and not line.startswith("#"):
                key, want, _ = line.rstrip("\n").split("\t")
                expected[key] = want
    for d in DOMAINS:
        p = subprocess.run([cli, "--config", os.path.join(w, "strictmx.toml"), "query", "--offline", d],
                           capture_output=True, text=True, timeout=60)
        t.eq(p.returncode, 0, f"strictmx query {d}: exit 0")
        m = re.search(r"^\s+postfix\s+(\S.*)$", p.stdout, re.M)
        got = m.group(1) if m else f"(no postfix answer line in: {p.stdout[-300:]!r})"
        want = expected[d]
        if want == "NOTFOUND":
            t.ok(got.startswith("NOTFOUND"), f"{d}: postfix answer NOTFOUND", got)
        elif want == "TEMP":
            t.ok(got.startswith("TEMP "), f"{d}: postfix answer TEMP", got)
        else:
            t.eq(got, want, f"{d}: postfix answer as from the daemon")
        if d == "maxage.test":
            t.ok("max_age 31557600" in p.stdout, "maxage.test: max_age 99999999 capped to 31557600",
                 p.stdout[-600:])
    t.done()


if __name__ == "__main__":
    main()
