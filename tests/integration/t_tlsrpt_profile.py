#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Profile postfix-tlsrpt: the postfix answer plus the TLSRPT attributes of
Postfix >= 3.10 (policy_type, policy_domain, one { policy_string = LINE } per
policy line, one mx_host_pattern per mx: line), and no way for policy text to
break out of its braces. A domain where DANE applies gets the DANE answer in
this profile too, even when it also has an enforce MTA-STS policy (RFC 8461
section 2): dane-sts.test is "dane-only", never a "secure" answer with TLSRPT
attributes.

Usage: t_tlsrpt_profile.py WORKDIR
"""

import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "lib"))
import itlib  # noqa: E402

ENFORCE = ("OK secure match=mx1.enforce.test:a.pool.enforce.test servername=hostname"
           " policy_type=sts policy_domain=enforce.test"
           " { policy_string = version: STSv1 } { policy_string = mode: enforce }"
           " { policy_string = mx: mx1.enforce.test }"
           " { policy_string = mx: *.pool.enforce.test }"
           " { policy_string = max_age: 86400 }"
           " mx_host_pattern=mx1.enforce.test mx_host_pattern=*.pool.enforce.test")

ALLOWED = {"match", "servername", "policy_type", "policy_domain", "policy_string",
           "mx_host_pattern", "policy_failure"}


def main():
    w = itlib.workdir()
    t = itlib.Checks("tlsrpt_profile")
    table = "socketmap:inet:127.0.0.1:8461:postfix-tlsrpt"

    reply = itlib.socketmap_query("enforce.test", name="postfix-tlsrpt")
    t.eq(reply, ENFORCE, "enforce.test, wire")
    rc, out, err = itlib.postmap(w, "enforce.test", table)
    t.ok(rc == 0 and out == ENFORCE[3:], "enforce.test, postmap",
         f"rc={rc} out={out!r} err={err.strip()!r}")

    # DANE and an enforce MTA-STS policy (whose host serves a valid policy).
    reply = itlib.socketmap_query("dane-sts.test", name="postfix-tlsrpt")
    t.eq(reply, "OK dane-only", "dane-sts.test, wire: dane-only")
    t.ok("secure" not in reply and "policy_type" not in reply,
         "dane-sts.test, wire: no secure level, no MTA-STS TLSRPT attributes", reply)
    rc, out, err = itlib.postmap(w, "dane-sts.test", table)
    t.ok(rc == 0 and out == "dane-only", "dane-sts.test, postmap: dane-only",
         f"rc={rc} out={out!r} err={err.strip()!r}")
    code, text = itlib.tcp_query("dane-sts.test",
                                 address=itlib.TCP_TABLE_PROFILES["postfix-tlsrpt"])
    t.eq((code, text), ("200", "dane-only"), "dane-sts.test, tcp_table postfix-tlsrpt: dane-only")
    t.ok(itlib.fetch_count(w, "dane-sts.test") >= 1,
         "dane-sts.test: the daemon fetched its MTA-STS policy, and DANE still won")

    # Unknown policy fields with braces and attribute text: whatever the
    # policy_string attributes carry, Postfix must see exactly these attributes.
    reply = itlib.socketmap_query("tlsrptinject.test", name="postfix-tlsrpt")
    t.ok(reply.startswith("OK "), "tlsrptinject.test answers OK", reply)
    try:
        level, attrs = itlib.policy_attributes(reply[3:])
    except ValueError as e:
        t.ok(False, "tlsrptinject.test answer parses as a Postfix policy", str(e))
        t.done()
    names = [n for n, _ in attrs]
    values = {}
    for n, v in attrs:
        values.setdefault(n, []).append(v)
    t.eq(level, "secure", "tlsrptinject.test level")
    t.ok(set(names) <= ALLOWED, "tlsrptinject.test: only known attributes", f"{names}")
    t.eq(values.get("match"), ["mx1.tlsrptinject.test"], "tlsrptinject.test: one match=, valid name only")
    t.eq(values.get("servername"), ["hostname"], "tlsrptinject.test: one servername=hostname")
    t.eq(values.get("policy_type"), ["sts"], "tlsrptinject.test: policy_type=sts")
    t.eq(values.get("policy_domain"), ["tlsrptinject.test"], "tlsrptinject.test: policy_domain")
    t.eq(values.get("mx_host_pattern"), ["mx1.tlsrptinject.test"],
         "tlsrptinject.test: one mx_host_pattern")
    bad = [v for v in values.get("policy_string", []) if any(c in v for c in "{}\r\n\t")]
    t.ok(not bad, "tlsrptinject.test: no brace or control character inside policy_string", f"{bad}")
    t.done()


if __name__ == "__main__":
    main()
