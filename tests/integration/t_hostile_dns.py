#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""MX host names from DNS are hostile text: a label may hold any byte. Each domain
below publishes an MTA-STS enforce policy whose "*." pattern the forged names match
as text, and an MX RRset with hostile host names (zones hostile-*.test):

  hostile-sts.test          unsigned: the attack "x\\032match=hostname\\032match=.pool.D"
                            beside mx1.pool.D
  hostile-bytes.test        unsigned: a space, '=', ':', ',', '{', '}', NUL, tab,
                            newline, ';', 8-bit and UTF-8 bytes, a one-space label and
                            an escaped dot ("evil\\.pool.D") beside mx1.pool.D
  hostile-signed.test       signed, no TLSA: the attack and most bytes, mx1.pool.D
  hostile-only.test         unsigned, hostile names only
  hostile-signed-only.test  signed, hostile names only
  hostile-dane.test         signed, mx.D with a usable TLSA record, hostile names
                            (with addresses and TLSA records) beside it, and an
                            enforce policy "*.D"

Each is asked through socketmap (inet and unix, every profile as the map name),
tcp_table (every profile's listener) and Postfix's own client (postmap -q). The
fixture has no Exim listener, so the Exim protocol is not asked here. Required:
  - no control byte, no 8-bit byte, nothing but one tcp_table line;
  - an OK answer parses as a Postfix TLS policy with only the attributes its profile
    emits, one match= whose entries are LDH host names allowed by the policy, and
    exactly the real host: "secure match=mx1.pool.D servername=hostname" (profiles
    postfix and strict);
  - with no host name left in the MX RRset: TEMP (tcp_table 400), since an enforce
    policy that no MX host can satisfy must defer the mail;
  - the DANE domain: "dane-only" or "dane", never NOTFOUND, TEMP or match=.

Usage: t_hostile_dns.py WORKDIR
"""

import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

# RFC 1123 host name (LDH labels, at least two), in the lower case the daemon writes.
HOSTNAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")
TLSRPT_ATTRS = {"policy_type", "policy_domain", "policy_string", "mx_host_pattern"}
ALLOWED_ATTRS = {
    "postfix": {"match", "servername"},
    "strict": {"match", "servername"},
    "postfix-tlsrpt": {"match", "servername"} | TLSRPT_ATTRS,
    "strict-tlsrpt": {"match", "servername"} | TLSRPT_ATTRS,
}

# domain -> (expected, policy mx patterns). expected: the match= list of an OK answer,
# "TEMP", or "DANE".
CASES = {
    "hostile-sts.test": (["mx1.pool.hostile-sts.test"], ["*.pool.hostile-sts.test"]),
    "hostile-bytes.test": (["mx1.pool.hostile-bytes.test"], ["*.pool.hostile-bytes.test"]),
    "hostile-signed.test": (["mx1.pool.hostile-signed.test"], ["*.pool.hostile-signed.test"]),
    "hostile-only.test": ("TEMP", ["*.pool.hostile-only.test"]),
    "hostile-signed-only.test": ("TEMP", ["*.pool.hostile-signed-only.test"]),
    "hostile-dane.test": ("DANE", ["*.hostile-dane.test"]),
}


def allowed_by(patterns, host):
    for p in patterns:
        if p.startswith("*."):
            head, _, rest = host.partition(".")
            if head and rest == p[2:]:
                return True
        elif host == p:
            return True
    return False


def clean_bytes(raw):
    """Printable ASCII only: no NUL, tab, newline, DEL or 8-bit byte."""
    return all(0x20 <= b <= 0x7E for b in raw)


def check_ok(t, what, profile, domain, text, want_match, patterns):
    try:
        level, attrs = itlib.policy_attributes(text)
    except ValueError as e:
        t.ok(False, f"{what}: parses as a Postfix TLS policy", f"{e}: {text!r}")
        return
    names = [n for n, _ in attrs]
    t.eq(level, "secure", f"{what}: level secure")
    t.ok(set(names) <= ALLOWED_ATTRS[profile],
         f"{what}: only the attributes profile {profile} emits",
         f"got {sorted(set(names) - ALLOWED_ATTRS[profile])} in {text!r}")
    t.eq(names.count("match"), 1, f"{what}: exactly one match= attribute")
    values = dict((n, v) for n, v in attrs if n != "policy_string")
    hosts = [h for n, v in attrs if n == "match" for h in v.split(":")]
    bad = [h for h in hosts if not HOSTNAME.match(h) or not allowed_by(patterns, h)]
    t.ok(not bad, f"{what}: every match= entry is an LDH host name the policy allows",
         f"bad: {bad!r}")
    t.ok("hostname" not in hosts, f"{what}: no match=hostname", text)
    t.eq(hosts, want_match, f"{what}: match= is exactly the real MX host")
    if "servername" in values:
        t.eq(values["servername"], "hostname", f"{what}: servername=hostname")
    if profile.endswith("-tlsrpt"):
        t.eq(values.get("policy_domain"), domain, f"{what}: policy_domain={domain}")
        pats = [v for n, v in attrs if n == "mx_host_pattern"]
        t.ok(pats and set(pats) <= set(patterns), f"{what}: mx_host_pattern from the policy",
             f"{pats!r}")
        lines = {"version: STSv1", "mode: enforce", "max_age: 86400"} | {
            f"mx: {p}" for p in patterns}
        strings = [v for n, v in attrs if n == "policy_string"]
        t.ok(set(strings) <= lines, f"{what}: policy_string only from the policy",
             f"{strings!r}")
    else:
        t.eq(text, f"secure match={':'.join(want_match)} servername=hostname",
             f"{what}: the whole answer")


def check_reply(t, what, profile, domain, kind, raw, expected, patterns):
    """kind: OK, NOTFOUND or TEMP; raw: the answer text as bytes."""
    t.ok(clean_bytes(raw), f"{what}: no control or 8-bit bytes", f"{raw!r}")
    text = raw.decode("ascii", "replace")
    if expected == "TEMP":
        t.eq(kind, "TEMP", f"{what}: TEMP (no MX host can satisfy the policy)")
        return
    if expected == "DANE":
        t.ok(kind == "OK" and text in ("dane-only", "dane"), f"{what}: dane-only or dane",
             f"{kind} {text!r}")
        t.ok("match=" not in text, f"{what}: no match=", text)
        return
    if t.eq(kind, "OK", f"{what}: OK"):
        check_ok(t, what, profile, domain, text, expected, patterns)


def socketmap_raw(conn, profile, domain):
    payload = conn.query_raw(profile, domain)
    kind, _, text = payload.partition(b" ")
    return kind.decode("ascii", "replace"), text


def main():
    w = itlib.workdir()
    t = itlib.Checks("hostile_dns")
    sock = os.path.join(w, "policyd.sock")
    inet = itlib.Socketmap(itlib.SOCKETMAP_INET)
    unix = itlib.Socketmap(sock)

    for domain, (expected, patterns) in CASES.items():
        for profile in itlib.PROFILES:
            for via, conn in (("socketmap inet", inet), ("socketmap unix", unix)):
                what = f"{domain} [{profile}, {via}]"
                try:
                    kind, text = socketmap_raw(conn, profile, domain)
                except (OSError, ValueError) as e:
                    t.ok(False, f"{what}: answered", f"{type(e).__name__}: {e}")
                    continue
                check_reply(t, what, profile, domain, kind, text, expected, patterns)
            what = f"{domain} [{profile}, tcp_table]"
            try:
                code, text, rest = itlib.tcp_query_raw(
                    domain, address=itlib.TCP_TABLE_PROFILES[profile])
            except (OSError, ValueError) as e:
                t.ok(False, f"{what}: answered", f"{type(e).__name__}: {e}")
                continue
            t.eq(rest, b"", f"{what}: one reply line")
            kind = {"200": "OK", "500": "NOTFOUND", "400": "TEMP"}.get(code, f"?{code}")
            check_reply(t, what, profile, domain, kind, text, expected, patterns)

        # Postfix's own clients. A TEMP costs postmap a one-second pause: ask those
        # through two tables only.
        tables = [("postfix", "socketmap inet", "socketmap:inet:127.0.0.1:8461:postfix")]
        if expected != "TEMP":
            tables.append(("postfix", "socketmap unix", f"socketmap:unix:{sock}:postfix"))
        for profile in itlib.PROFILES if expected != "TEMP" else ("postfix",):
            host, port = itlib.TCP_TABLE_PROFILES[profile]
            tables.append((profile, "tcp_table", f"tcp:{host}:{port}"))
        for profile, via, table in tables:
            what = f"{domain} [{profile}, postmap {via}]"
            rc, out, err = itlib.postmap(w, domain, table)
            detail = f"rc={rc} out={out!r} err={err.strip()[:300]!r}"
            if expected == "TEMP":
                t.ok(rc != 0 and out == "" and ("temporary error" in err or
                                                ("tcp" in via and "query error" in err)),
                     f"{what}: lookup error (mail defers)", detail)
            elif expected == "DANE":
                t.ok(rc == 0 and out in ("dane-only", "dane"), f"{what}: dane-only or dane",
                     detail)
            else:
                if t.ok(rc == 0, f"{what}: found", detail):
                    check_ok(t, what, profile, domain, out, expected, patterns)

    inet.close()
    unix.close()
    # The daemon survived all of it and still answers.
    t.eq(itlib.socketmap_query("enforce.test"),
         "OK secure match=mx1.enforce.test:a.pool.enforce.test servername=hostname",
         "enforce.test still answered afterwards")
    t.done()


if __name__ == "__main__":
    main()
