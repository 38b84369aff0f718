#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Writes the hand-made seeds of fuzz_dns_answer into corpus/dns_answer (the layout is
described at the top of fuzz_dns_answer.cc). Labels are given as bytes, so a label may hold
a space, '=', '.', NUL or anything else a forged DNS answer can carry.

Usage: make_dns_answer_seeds.py [CORPUS_DIR]
"""

import os
import sys

# flags byte
MX_SECURE, MX_INSECURE, NODATA_SECURE, NODATA_INSECURE, MX_SERVFAIL, MX_BOGUS = 0, 1, 2, 3, 5, 6
ENFORCE, TESTING, NONE = 0 << 3, 1 << 3, 3 << 3
TXT_INSECURE, FETCH_FAILS = 0x20, 0x40
# host flags byte
TLSA_NONE, TLSA_USABLE, TLSA_UNUSABLE, TLSA_BOGUS = 0, 1, 2, 3
A_SECURE, A_INSECURE, A_NXDOMAIN, A_FAIL = 0 << 2, 1 << 2, 2 << 2, 3 << 2
A_IS_CNAME = 0x10

POOL = [b"pool", b"victim", b"example"]


def mx(pref, labels):
    wire = b"".join(bytes([len(lb)]) + lb for lb in labels) + b"\0"
    return pref.to_bytes(2, "big") + wire


def seed(flags, records, patterns, cname=b""):
    out = bytes([flags, len(records)])
    for hf, rd in records:
        out += bytes([hf, len(rd)]) + rd
    out += bytes([len(cname)]) + cname
    return out + b"\n".join(p.encode() for p in patterns)


def main():
    d = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "corpus", "dns_answer")
    os.makedirs(d, exist_ok=True)
    legit = (TLSA_NONE, mx(10, [b"a"] + POOL))
    # Issue 8: the forged MX host x\032match=hostname\032match=.pool.victim.example.
    attack = (TLSA_NONE, mx(5, [b"x match=hostname match="] + POOL))
    seeds = {
        "attack_issue8_insecure": seed(MX_INSECURE, [attack, legit], ["*.pool.victim.example"]),
        "attack_issue8_secure": seed(MX_SECURE, [attack, legit], ["*.pool.victim.example"]),
        "attack_issue8_testing": seed(MX_INSECURE | TESTING, [attack, legit],
                                      ["*.pool.victim.example"]),
        "benign_enforce": seed(MX_INSECURE, [(0, mx(10, [b"mx1", b"victim", b"example"])), legit],
                               ["mx1.victim.example", "*.pool.victim.example"]),
        "benign_tlsrpt_unsigned_txt": seed(MX_INSECURE | TXT_INSECURE, [legit],
                                           ["*.pool.victim.example", "b.pool.victim.example"]),
        "dane_only": seed(MX_SECURE, [(TLSA_USABLE, mx(10, [b"mx1", b"victim", b"example"])),
                                      (TLSA_USABLE, mx(20, [b"mx2", b"victim", b"example"]))],
                          ["mx1.victim.example"]),
        "dane_partial_enforce": seed(MX_SECURE, [(TLSA_USABLE, mx(10, [b"a"] + POOL)),
                                                 (TLSA_NONE, mx(20, [b"b"] + POOL))],
                                     ["*.pool.victim.example"]),
        "dane_unusable": seed(MX_SECURE, [(TLSA_UNUSABLE, mx(10, [b"a"] + POOL))],
                              ["*.pool.victim.example"]),
        "dane_bogus_tlsa": seed(MX_SECURE, [(TLSA_BOGUS, mx(10, [b"a"] + POOL))],
                                ["*.pool.victim.example"]),
        "dane_insecure_a": seed(MX_SECURE, [(TLSA_USABLE | A_INSECURE, mx(10, [b"a"] + POOL))],
                                ["*.pool.victim.example"]),
        "cname_hostile_target": seed(MX_SECURE, [(TLSA_USABLE | A_IS_CNAME, mx(10, [b"a"] + POOL))],
                                     ["*.pool.victim.example"], cname=b"evil host=.example"),
        "cname_target": seed(MX_SECURE, [(TLSA_USABLE | A_IS_CNAME, mx(10, [b"a"] + POOL))],
                             ["*.pool.victim.example"], cname=b"mx.provider.example"),
        "implicit_mx": seed(NODATA_INSECURE, [], ["victim.example"]),
        "implicit_mx_secure": seed(NODATA_SECURE, [], ["victim.example"]),
        "mx_servfail_wildcard": seed(MX_SERVFAIL, [legit], ["*.pool.victim.example"]),
        "mx_bogus": seed(MX_BOGUS, [legit], ["mx1.victim.example"]),
        "fetch_fails": seed(MX_INSECURE | FETCH_FAILS, [legit], ["*.pool.victim.example"]),
        "mode_none": seed(MX_INSECURE | NONE, [legit], ["*.pool.victim.example"]),
        "null_mx": seed(MX_INSECURE, [(0, b"\0\0\0")], ["*.pool.victim.example"]),
    }
    hostile = {
        "blank": b" ", "equals": b"a=b", "colon": b"a:b", "comma": b"a,b", "lbrace": b"{",
        "rbrace": b"}", "nul": b"a\0b", "dot": b"a.b", "eightbit": b"\xc3\xa9", "space": b"a b",
        "newline": b"a\nb", "tab": b"\t", "hyphen_edge": b"-a-", "long": b"a" * 63,
    }
    everything = []
    for name, label in hostile.items():
        rec = (TLSA_NONE, mx(10, [label] + POOL))
        seeds[f"hostile_{name}"] = seed(MX_INSECURE, [rec, legit], ["*.pool.victim.example"])
        everything.append(rec)
    # A label holding '.' that reads as two labels under a deeper "*." pattern.
    seeds["hostile_dot_matching"] = seed(MX_INSECURE, [(TLSA_NONE, mx(10, [b"a.b"] + POOL))],
                                         ["*.b.pool.victim.example"])
    seeds["hostile_all"] = seed(MX_INSECURE, everything[:16], ["*.pool.victim.example"])
    seeds["hostile_all_secure"] = seed(MX_SECURE, [(TLSA_USABLE, r[1]) for r in everything[:16]],
                                       ["*.pool.victim.example"])
    for name, data in seeds.items():
        with open(os.path.join(d, name), "wb") as f:
            f.write(data)
    print(f"{len(seeds)} seeds in {d}")


if __name__ == "__main__":
    main()
