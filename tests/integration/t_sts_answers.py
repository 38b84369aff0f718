#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Every case of sts_cases.tsv through one transport, checked twice: the exact
wire reply (own client) and what Postfix's own client makes of it (postmap -q).

Usage: t_sts_answers.py WORKDIR socketmap|unix|tcp
  socketmap  socketmap:inet:127.0.0.1:8461:postfix
  unix       socketmap:unix:WORKDIR/policyd.sock:postfix (also: socket mode 0666)
  tcp        tcp:127.0.0.1:8462 (tcp_table, profile postfix)
"""

import os
import re
import stat
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

HOSTNAME = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)(\.(?!-)[a-z0-9-]{1,63}(?<!-))+$")
HOSTILE = ("*", "{", "}", "[", "]", "evil", "192.0.2.1", ";", "\t")


# tcp_table(5), dict_tcp.c: "CODE SP TEXT LF", at most 4,096 bytes, TEXT %XX-encoded so the
# line holds printable ASCII only; 200 found, 500 not found, 400 error (try again later).
TCP_LINE = re.compile(rb"([245][0-9][0-9]) ([\x20-\x7e]*)\n")
TCP_MAX_REPLY = 4096


def hex_unquote(text):
    """dict_tcp.c hex_unquote: '%' must be followed by two hex digits. None if not."""
    out, i = bytearray(), 0
    while i < len(text):
        if text[i:i + 1] == b"%":
            h = text[i + 1:i + 3]
            if len(h) != 2 or not all(c in b"0123456789abcdefABCDEF" for c in h):
                return None
            out.append(int(h, 16))
            i += 3
        else:
            out += text[i:i + 1]
            i += 1
    return bytes(out)


def tcp_reply(t, key, raw, extra):
    """Checks one tcp_table reply line byte for byte and maps it to the socketmap
    form (200 -> 'OK text', 500 -> 'NOTFOUND ', 400 -> 'TEMP text')."""
    m = TCP_LINE.fullmatch(raw)
    t.ok(m is not None and len(raw) <= TCP_MAX_REPLY and not extra,
         f"{key}: tcp_table reply is one line of printable ASCII, at most {TCP_MAX_REPLY} bytes",
         f"line {raw[:200]!r}, then {extra[:80]!r}")
    if not m:
        return f"?malformed {raw[:80]!r}"
    code, text = m.group(1).decode(), hex_unquote(m.group(2))
    t.ok(text is not None, f"{key}: tcp_table reply text has only valid %XX escapes", repr(raw))
    text = (text or b"").decode("utf-8", "replace")
    if code == "200":
        return f"OK {text}"
    if code == "500":
        return "NOTFOUND "
    if code == "400":
        t.ok(text.strip() != "" and text.isprintable(),
             f"{key}: tcp_table 400 carries a printable reason", repr(raw))
        return f"TEMP {text}"
    return f"?{code} {text}"


def load_cases():
    path = os.path.join(itlib.TOP, "sts_cases.tsv")
    cases = []
    with open(path) as f:
        for line in f:
            line = line.rstrip("\n")
            if not line or line.startswith("#"):
                continue
            key, expected, why = line.split("\t")
            cases.append((key, expected, why))
    return cases


def check_ok_shape(t, key, text):
    """Properties every OK answer of profile postfix must have, whatever the case."""
    try:
        level, attrs = itlib.policy_attributes(text)
    except ValueError as e:
        t.ok(False, f"{key}: answer parses as a Postfix TLS policy", str(e))
        return
    names = [n for n, _ in attrs]
    if level in ("dane", "dane-only"):
        t.ok(not names, f"{key}: DANE answer without attributes", text)
        return
    t.ok(level == "secure" and set(names) <= {"match", "servername"}
         and names.count("match") == 1 and names.count("servername") <= 1,
         f"{key}: only level secure with match= and servername=", text)
    match = dict(attrs).get("match", "")
    bad = [m for m in match.split(":") if not HOSTNAME.match(m)]
    t.ok(not bad, f"{key}: every match= entry is a plain host name", f"bad: {bad}")
    if key != "override.test":
        hits = [h for h in HOSTILE if h in text]
        t.ok(not hits, f"{key}: no hostile text in the answer", f"found {hits} in {text!r}")


def main():
    w = itlib.workdir()
    via = sys.argv[2] if len(sys.argv) > 2 else "socketmap"
    t = itlib.Checks(f"sts_answers[{via}]")
    sock_path = os.path.join(w, "policyd.sock")

    if via == "socketmap":
        table = "socketmap:inet:127.0.0.1:8461:postfix"
        address = itlib.SOCKETMAP_INET
    elif via == "unix":
        table = f"socketmap:unix:{sock_path}:postfix"
        address = sock_path
        st = os.stat(sock_path)
        t.ok(stat.S_ISSOCK(st.st_mode), "policyd.sock is a socket")
        t.eq(oct(stat.S_IMODE(st.st_mode)), "0o666", "policyd.sock has mode 0666")
    elif via == "tcp":
        table = "tcp:127.0.0.1:8462"
        address = None
    else:
        sys.exit(f"unknown transport {via}")

    conn = itlib.Socketmap(address) if address else None
    for key, expected, why in load_cases():
        label = f"{key} -> {expected}  ({why})"
        # 1. the wire
        start = time.monotonic()
        try:
            if conn:
                try:
                    reply = conn.query("postfix", key)
                except (ConnectionError, BrokenPipeError):
                    # Postfix reconnects once when the server closed an idle connection.
                    conn = itlib.Socketmap(address)
                    reply = conn.query("postfix", key)
            else:
                reply = tcp_reply(t, key, *itlib.tcp_query_line(key))
        except (OSError, ValueError) as e:
            t.ok(False, f"wire: {label}", f"{type(e).__name__}: {e}")
            conn = itlib.Socketmap(address) if address else None
            continue
        elapsed = time.monotonic() - start
        t.ok(elapsed <= itlib.ANSWER_DEADLINE_S, f"{key}: answered in {elapsed:.1f} s",
             f"deadline {itlib.ANSWER_DEADLINE_S} s")
        if expected == "NOTFOUND":
            t.eq(reply, "NOTFOUND ", f"wire: {label}")
        elif expected == "TEMP":
            t.ok(reply.startswith("TEMP ") and len(reply) > 5, f"wire: {label}",
                 f"got {reply!r}")
        else:
            t.eq(reply, expected, f"wire: {label}")
            if reply.startswith("OK "):
                check_ok_shape(t, key, reply[3:])

        # 2. Postfix's client. dict_tcp.c reports a 400 reply only with -v ("soft error:");
        # a malformed line or another code is a warning of its own.
        verbose = via == "tcp" and expected == "TEMP"
        rc, out, err = itlib.postmap(w, key, table, verbose=verbose)
        if expected == "NOTFOUND":
            t.ok(rc == 1 and out == "" and "error" not in err and "fatal" not in err,
                 f"postmap: {key} not found", f"rc={rc} out={out!r} err={err.strip()[-400:]!r}")
        elif expected == "TEMP" and via == "tcp":
            t.ok(rc != 0 and out == "" and "dict_tcp_lookup: soft error: 400 " in err
                 and "query error" in err and "malformed reply" not in err
                 and "bad status code" not in err,
                 f"postmap: {key} is a tcp_table soft error (400)",
                 f"rc={rc} out={out!r} err={err.strip()[-400:]!r}")
        elif expected == "TEMP":
            t.ok(rc != 0 and out == "" and "temporary error" in err,
                 f"postmap: {key} is a lookup error", f"rc={rc} out={out!r} err={err.strip()!r}")
        else:
            t.ok(rc == 0 and out == expected[3:], f"postmap: {key} = {expected[3:]}",
                 f"rc={rc} out={out!r} err={err.strip()!r}")
    if conn:
        conn.close()
    t.done()


if __name__ == "__main__":
    main()
