# SPDX-License-Identifier: MIT
"""TLSRPT (RFC 8460) test tools: a byte-exact encoder of the datagrams libtlsrpt 0.5.x
sends, and independent checkers for the aggregate report JSON (section 4) and the report
mail (section 5.3).

Datagram wire format (libtlsrpt.c, tlsrpt_init_delivery_request .. tlsrpt_finish_delivery_request):

    {"dpv": "1","d": "D","pr": "R","policies":[P,P...]}
    P = {"policy-type":N[,"policy-domain": "X"][,"policy-string":["..",".."]]
         [,"mx-host":[".."]][,"failure-details":[F,F...]],"t":COUNT,"f":0|1}
    F = {"c":CODE[,"s": ".."][,"n": ".."][,"h": ".."][,"r": ".."][,"a": ".."][,"f": ".."]}

String attributes are written as `"name": "value"` (one blank after the colon), numbers as
`"name":N`; array elements are joined by "," without blanks. policy-domain and each
failure attribute are left out when the caller passes NULL; policy-string, mx-host and
failure-details are left out when nothing was added. `t` is the number of failures added,
`f` the final result (0 success, 1 failure). Strings are C strings (no NUL) and are
escaped byte by byte with libtlsrpt's table (json-escape-initializer-list.c): `"` and `\\`
get a backslash, \\b \\f \\n \\r \\t their short forms, other bytes below 0x20 and 0x7f
become \\u00xx (lower-case hex), every other byte, 0x80-0xff included, passes through raw
(so invalid UTF-8 from the caller reaches the collector unchanged). `/` is not escaped.

Run `python3 tlsrpt_tools.py --selftest` for the encoder's byte-level self-check.
"""

import base64
import binascii
import calendar
import datetime
import email.parser
import email.policy
import gzip
import json
import os
import re
import socket
import subprocess
import sys

POLICY_TLSA = 1
POLICY_STS = 2
POLICY_NONE = 9
POLICY_TYPE_NAMES = {POLICY_TLSA: "tlsa", POLICY_STS: "sts", POLICY_NONE: "no-policy-found"}

# libtlsrpt's failure codes (tlsrpt.h) and the RFC 8460 result types they stand for.
RESULT_TYPES = {
    201: "starttls-not-supported",
    202: "certificate-host-mismatch",
    203: "certificate-not-trusted",
    204: "certificate-expired",
    205: "validation-failure",
    301: "sts-policy-fetch-error",
    302: "sts-policy-invalid",
    303: "sts-webpki-invalid",
    304: "tlsa-invalid",
    305: "dnssec-invalid",
    306: "dane-required",
}
RFC_RESULT_TYPES = frozenset(RESULT_TYPES.values())
# The single-letter keys of a failure detail, in the order libtlsrpt writes them, and
# the report keys they become.
DETAIL_KEYS = (("s", "sending-mta-ip"), ("n", "receiving-mx-hostname"),
               ("h", "receiving-mx-helo"), ("r", "receiving-ip"),
               ("a", "additional-information"), ("f", "failure-reason-code"))

MAX_SAFE_INT = 2 ** 53 - 1


# --- the datagram encoder --------------------------------------------------------------

def _escape_table():
    table = []
    short = {0x08: b"\\b", 0x0c: b"\\f", 0x0a: b"\\n", 0x0d: b"\\r", 0x09: b"\\t",
             0x5c: b"\\\\", 0x22: b'\\"'}
    for i in range(256):
        if i in short:
            table.append(short[i])
        elif i < 0x20 or i == 0x7f:
            table.append(b"\\u%04x" % i)
        else:
            table.append(bytes([i]))
    return table


_ESCAPE = _escape_table()


def _bytes(value):
    b = value.encode("utf-8") if isinstance(value, str) else bytes(value)
    if b"\0" in b:
        raise ValueError("libtlsrpt takes C strings: no NUL byte possible")
    return b


def escape(value):
    """A string's bytes as libtlsrpt's json_escape() writes them."""
    return b"".join(_ESCAPE[c] for c in _bytes(value))


def _str_attr(name, value, first=False):
    return (b"" if first else b",") + b'"' + name.encode() + b'": "' + escape(value) + b'"'


def _str_list(values):
    return b",".join(b'"' + escape(v) + b'"' for v in values)


def policy(ptype, domain=None, strings=(), mx=(), failures=(), result=None, t=None):
    """One policy block. failures: dicts with "c" and any of s n h r a f (None = left
    out). result defaults to 1 when there are failures, else 0; t to len(failures)."""
    return {"type": ptype, "domain": domain, "strings": list(strings), "mx": list(mx),
            "failures": [dict(f) for f in failures],
            "result": (1 if failures else 0) if result is None else result, "t": t}


def failure(code, s=None, n=None, h=None, r=None, a=None, f=None):
    return {"c": code, "s": s, "n": n, "h": h, "r": r, "a": a, "f": f}


def datagram(domain, record, policies, dpv="1"):
    """The datagram tlsrpt_finish_delivery_request sends for this delivery request.
    policies: dicts as policy() makes them (missing keys take policy()'s defaults)."""
    if not policies:
        raise ValueError("libtlsrpt sends nothing without a policy (TLSRPT_ERR_TLSRPT_NOPOLICIES)")
    out = [b"{", _str_attr("dpv", dpv, first=True), _str_attr("d", domain),
           _str_attr("pr", record)]
    for i, p in enumerate(policies):
        p = {**policy(p["type"]), **p}
        out.append(b',"policies":[{' if i == 0 else b",{")
        out.append(b'"policy-type":%d' % p["type"])
        if p["domain"] is not None:
            out.append(_str_attr("policy-domain", p["domain"]))
        if p["strings"]:
            out.append(b',"policy-string":[' + _str_list(p["strings"]) + b"]")
        if p["mx"]:
            out.append(b',"mx-host":[' + _str_list(p["mx"]) + b"]")
        if p["failures"]:
            fds = []
            for f in p["failures"]:
                fd = b'{"c":%d' % f["c"]
                for key, _ in DETAIL_KEYS:
                    if f.get(key) is not None:
                        fd += _str_attr(key, f[key])
                fds.append(fd + b"}")
            out.append(b',"failure-details":[' + b",".join(fds) + b"]")
        t = len(p["failures"]) if p["t"] is None else p["t"]
        out.append(b',"t":%d,"f":%d}' % (t, p["result"]))
    out.append(b"]}")
    return b"".join(out)


def send(sock_path, data, timeout=5.0):
    """Sends one datagram to the collector's AF_UNIX SOCK_DGRAM socket. Blocking (with a
    timeout), unlike libtlsrpt's MSG_DONTWAIT, so a full receive queue delays rather than
    drops the test's datagrams."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.settimeout(timeout)
        s.sendto(data, sock_path)
    finally:
        s.close()


# --- I-JSON (RFC 7493) ---------------------------------------------------------------------

class _DuplicateKey(ValueError):
    pass


def _pairs_hook(pairs):
    seen = {}
    for k, v in pairs:
        if k in seen:
            raise _DuplicateKey(f"duplicate key {k!r}")
        seen[k] = v
    return seen


def _bad_constant(name):
    raise ValueError(f"{name} is not JSON")


def parse_ijson(data):
    """(object, problems): strict UTF-8, no duplicate keys, no NaN/Infinity, integers within
    +-(2**53-1), no lone surrogates (RFC 7493 section 2)."""
    problems = []
    if isinstance(data, (bytes, bytearray)):
        try:
            text = bytes(data).decode("utf-8")
        except UnicodeDecodeError as e:
            return None, [f"not valid UTF-8: {e}"]
        if text.startswith("\ufeff"):
            problems.append("starts with a byte order mark")
    else:
        text = data
    big = []

    def parse_int(s):
        v = int(s)
        if abs(v) > MAX_SAFE_INT:
            big.append(s)
        return v

    try:
        obj = json.loads(text, object_pairs_hook=_pairs_hook, parse_int=parse_int,
                         parse_constant=_bad_constant)
    except ValueError as e:
        return None, problems + [f"not I-JSON: {e}"]
    for s in big:
        problems.append(f"integer {s} outside +-(2**53-1)")

    def walk(v, path):
        if isinstance(v, str):
            try:
                v.encode("utf-8")
            except UnicodeEncodeError:
                problems.append(f"{path}: lone surrogate in string")
        elif isinstance(v, dict):
            for k, x in v.items():
                walk(k, path + ".<key>")
                walk(x, f"{path}.{k}")
        elif isinstance(v, list):
            for i, x in enumerate(v):
                walk(x, f"{path}[{i}]")
        elif isinstance(v, float) and v == int(v) and abs(v) > MAX_SAFE_INT:
            problems.append(f"{path}: number outside +-(2**53-1)")

    walk(obj, "$")
    return obj, problems


# --- the report checker (RFC 8460 section 4) -------------------------------------------------

def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _str_list_ok(v):
    return isinstance(v, list) and all(isinstance(x, str) for x in v)


def check_report(report, *, day, submitter=None, policy_domain=None):
    """Problems (a list of strings, empty if none) of one aggregate report against RFC 8460
    section 4 (with erratum 6241: mx-host is an array). report: bytes/str (checked as
    I-JSON) or an already parsed object. day: "YYYY-MM-DD", the UTC day it covers.
    submitter: when given, the report-id must end in "@submitter" (this project's
    report-id form). policy_domain: when given, every sts and no-policy-found policy must
    carry it; tlsa policies may name the MX host instead (the TLSA base domain)."""
    if isinstance(report, (bytes, bytearray, str)):
        report, problems = parse_ijson(report)
        if report is None:
            return problems
    else:
        problems = []
    if not isinstance(report, dict):
        return problems + ["report is not a JSON object"]
    for key in ("organization-name", "contact-info", "report-id"):
        v = report.get(key)
        if not isinstance(v, str) or not v:
            problems.append(f"{key}: missing or not a non-empty string ({v!r})")
    rid = report.get("report-id")
    if submitter is not None and isinstance(rid, str) and not rid.endswith("@" + submitter):
        problems.append(f"report-id {rid!r} does not end in @{submitter}")
    dr = report.get("date-range")
    if not isinstance(dr, dict):
        problems.append("date-range: missing or not an object")
    else:
        want = {"start-datetime": f"{day}T00:00:00Z", "end-datetime": f"{day}T23:59:59Z"}
        for k, v in want.items():
            if dr.get(k) != v:
                problems.append(f"date-range.{k}: {dr.get(k)!r}, want {v!r}")
    pols = report.get("policies")
    if not isinstance(pols, list) or not pols:
        return problems + ["policies: missing, empty or not an array"]
    for i, entry in enumerate(pols):
        where = f"policies[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where}: not an object")
            continue
        pol = entry.get("policy")
        if not isinstance(pol, dict):
            problems.append(f"{where}.policy: missing or not an object")
        else:
            ptype = pol.get("policy-type")
            if ptype not in ("tlsa", "sts", "no-policy-found"):
                problems.append(f"{where}.policy.policy-type: {ptype!r}")
            if not _str_list_ok(pol.get("policy-string")):
                problems.append(f"{where}.policy.policy-string: not an array of strings "
                                f"({pol.get('policy-string')!r})")
            pd = pol.get("policy-domain")
            if not isinstance(pd, str) or not pd:
                problems.append(f"{where}.policy.policy-domain: {pd!r}")
            elif policy_domain is not None and ptype != "tlsa" and pd != policy_domain:
                problems.append(f"{where}.policy.policy-domain: {pd!r}, want {policy_domain!r}")
            if "mx-host" in pol and not _str_list_ok(pol["mx-host"]):
                problems.append(f"{where}.policy.mx-host: not an array of strings "
                                f"({pol['mx-host']!r}; erratum 6241)")
        summ = entry.get("summary")
        if not isinstance(summ, dict):
            problems.append(f"{where}.summary: missing or not an object")
        else:
            for k in ("total-successful-session-count", "total-failure-session-count"):
                v = summ.get(k)
                if not _is_int(v) or v < 0:
                    problems.append(f"{where}.summary.{k}: {v!r}")
        fds = entry.get("failure-details", [])
        if not isinstance(fds, list):
            problems.append(f"{where}.failure-details: not an array")
            continue
        for j, fd in enumerate(fds):
            fw = f"{where}.failure-details[{j}]"
            if not isinstance(fd, dict):
                problems.append(f"{fw}: not an object")
                continue
            if fd.get("result-type") not in RFC_RESULT_TYPES:
                problems.append(f"{fw}.result-type: {fd.get('result-type')!r}")
            c = fd.get("failed-session-count")
            if not _is_int(c) or c <= 0:
                problems.append(f"{fw}.failed-session-count: {c!r}")
            for _, k in DETAIL_KEYS:
                if k in fd and not isinstance(fd[k], str):
                    problems.append(f"{fw}.{k}: not a string ({fd[k]!r})")
    return problems


# --- the mail checker (RFC 8460 section 5.3) -----------------------------------------------------

_ATEXT = r"[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]"
DOT_ATOM_TEXT = rf"{_ATEXT}+(?:\.{_ATEXT}+)*"
MSG_ID_RE = re.compile(rf"<({DOT_ATOM_TEXT}@{DOT_ATOM_TEXT})>")
# RFC 8460 section 5.1: sender "!" policy-domain "!" begin "!" end ["!" unique-id] "." ext,
# unique-id = 1*(ALPHA / DIGIT); this project always writes the unique id.
FILENAME_RE = re.compile(r"([^!]+)!([^!]+)!(\d+)!(\d+)!([A-Za-z0-9]+)\.json\.gz")


def day_start(day):
    return calendar.timegm(datetime.date.fromisoformat(day).timetuple())


def check_filename(name, *, submitter=None, policy_domain=None, day=None):
    """(problems, (submitter, policy_domain, begin, end, uid) or None) for a report file
    name. begin must be the start of a UTC day (of `day` when given). end may be
    begin + 86399 (the last second, as end-datetime 23:59:59Z says) or begin + 86400 (the
    exclusive end, next midnight): RFC 8460 does not say which and both are in use."""
    m = FILENAME_RE.fullmatch(name or "")
    if not m:
        return [f"file name {name!r} is not submitter!policy-domain!begin!end!uid.json.gz"], None
    sub, pd, begin, end, uid = m.group(1), m.group(2), int(m.group(3)), int(m.group(4)), m.group(5)
    problems = []
    if submitter is not None and sub != submitter:
        problems.append(f"file name submitter {sub!r}, want {submitter!r}")
    if policy_domain is not None and pd != policy_domain:
        problems.append(f"file name policy domain {pd!r}, want {policy_domain!r}")
    if day is not None and begin != day_start(day):
        problems.append(f"file name begin {begin}, want {day_start(day)} ({day})")
    elif begin % 86400:
        problems.append(f"file name begin {begin} is not the start of a UTC day")
    if end not in (begin + 86399, begin + 86400):
        problems.append(f"file name end {end}: want begin+86399 or begin+86400")
    return problems, (sub, pd, begin, end, uid)


def _lines(raw):
    """The message's lines without their terminators, and the set of terminators seen."""
    ends, lines = set(), []
    for m in re.finditer(rb"([^\r\n]*)(\r\n|\n|\r|$)", raw):
        if m.group(0) == b"" and m.start() == len(raw):
            break
        lines.append(m.group(1))
        ends.add(m.group(2))
    return lines, ends


def _unfold(v):
    return re.sub(r"\r?\n[ \t]", " ", str(v)).strip() if v is not None else None


def check_mail(eml, *, report_domain, submitter, day=None, to=None):
    """(problems, report object or None, attachment file name or None) for one report mail.
    day: "YYYY-MM-DD" the report covers (default: taken from the file name). to: when
    given, the address the To: header must hold."""
    problems = []
    raw = bytes(eml)
    lines, ends = _lines(raw)
    ends.discard(b"")
    if len(ends) > 1:
        problems.append(f"mixed line endings {sorted(ends)!r}")
    if b"\r" in ends:
        problems.append("bare CR line ending")
    for i, line in enumerate(lines):
        if len(line) > 998:
            problems.append(f"line {i + 1} has {len(line)} octets (> 998)")
            break
    msg = email.parser.BytesParser(policy=email.policy.compat32).parsebytes(raw)

    def one(name):
        vals = msg.get_all(name) or []
        if len(vals) != 1:
            problems.append(f"header {name}: present {len(vals)} times, want once")
            return None
        return _unfold(vals[0])

    for h in ("From", "To", "Date", "Message-ID"):
        one(h)
    date = _unfold(msg.get("Date"))
    if date:
        try:
            if email.utils.parsedate_to_datetime(date) is None:
                raise ValueError
        except (TypeError, ValueError):
            problems.append(f"Date: not an RFC 5322 date: {date!r}")
    mid = _unfold(msg.get("Message-ID"))
    if mid and not MSG_ID_RE.fullmatch(mid):
        problems.append(f"Message-ID: not a msg-id: {mid!r}")
    if to is not None:
        addrs = [a for _, a in email.utils.getaddresses(msg.get_all("To") or [])]
        if addrs != [to]:
            problems.append(f"To: {addrs!r}, want [{to!r}]")
    v = one("TLS-Report-Domain")
    if v is not None and v != report_domain:
        problems.append(f"TLS-Report-Domain: {v!r}, want {report_domain!r}")
    v = one("TLS-Report-Submitter")
    if v is not None and v != submitter:
        problems.append(f"TLS-Report-Submitter: {v!r}, want {submitter!r}")
    v = one("TLS-Required")
    if v is not None and v.lower() != "no":
        problems.append(f"TLS-Required: {v!r}, want 'No'")
    v = one("Auto-Submitted")
    if v is not None and v.split(";")[0].strip().lower() != "auto-generated":
        problems.append(f"Auto-Submitted: {v!r}, want 'auto-generated'")
    report_id = None
    subj = one("Subject")
    if subj is not None:
        m = re.fullmatch(r"Report Domain: (\S+) Submitter: (\S+) Report-ID: (\S+)", subj)
        if not m:
            problems.append(f"Subject: {subj!r} is not 'Report Domain: D Submitter: S "
                            "Report-ID: <ID>'")
        else:
            if m.group(1) != report_domain:
                problems.append(f"Subject domain {m.group(1)!r}, want {report_domain!r}")
            if m.group(2) != submitter:
                problems.append(f"Subject submitter {m.group(2)!r}, want {submitter!r}")
            idm = MSG_ID_RE.fullmatch(m.group(3))
            if not idm:
                problems.append(f"Subject Report-ID {m.group(3)!r} is not a msg-id "
                                "(<dot-atom-text@dot-atom-text>)")
            else:
                report_id = idm.group(1)
    if msg.get_content_type() != "multipart/report":
        problems.append(f"Content-Type {msg.get_content_type()!r}, want multipart/report")
        return problems, None, None
    rt = msg.get_param("report-type")
    if rt is None or email.utils.collapse_rfc2231_value(rt) != "tlsrpt":
        problems.append(f"report-type {rt!r}, want tlsrpt")
    parts = msg.get_payload()
    if not isinstance(parts, list) or not parts:
        return problems + ["multipart/report without parts"], None, None
    if parts[0].get_content_type() != "text/plain":
        problems.append(f"first part is {parts[0].get_content_type()!r}, want text/plain")
    gz = [p for p in parts[1:] if p.get_content_type() == "application/tlsrpt+gzip"]
    if len(gz) != 1:
        return problems + [f"{len(gz)} application/tlsrpt+gzip parts after the text part, "
                           "want 1"], None, None
    part = gz[0]
    cte = (part.get("Content-Transfer-Encoding") or "").strip().lower()
    if cte != "base64":
        problems.append(f"report part Content-Transfer-Encoding {cte!r}, want base64")
    fname = part.get_filename()
    if fname is None:
        fname = part.get_param("name")
        if fname is not None:
            fname = email.utils.collapse_rfc2231_value(fname)
    fproblems, fparts = check_filename(fname, submitter=submitter,
                                       policy_domain=report_domain, day=day)
    problems += fproblems
    if day is None and fparts:
        day = datetime.datetime.fromtimestamp(fparts[2], datetime.timezone.utc).date().isoformat()
    body = part.get_payload()
    try:
        data = base64.b64decode(re.sub(r"\s+", "", body if isinstance(body, str) else ""),
                                validate=True)
        js = gzip.decompress(data)
    except (binascii.Error, OSError, EOFError, ValueError) as e:
        return problems + [f"report part: not base64 gzip: {e}"], None, fname
    report, jproblems = parse_ijson(js)
    problems += jproblems
    if report is None:
        return problems, None, fname
    if day is None:
        problems.append("cannot tell the report's day")
    else:
        problems += check_report(report, day=day, submitter=submitter,
                                 policy_domain=report_domain)
    if report_id is not None and isinstance(report, dict) and report.get("report-id") != report_id:
        problems.append(f"report-id {report.get('report-id')!r} differs from the Subject's "
                        f"{report_id!r}")
    return problems, report, fname


# --- the test PKI -------------------------------------------------------------------------------------

def make_leaf(workdir, outdir, name):
    """A certificate for `name` signed by the fixture's test CA (WORKDIR/pki/ca.key,
    WORKDIR/ca.pem), as testnet/certs.sh makes them. Returns (cert, key) paths."""
    os.makedirs(outdir, exist_ok=True)
    cert, key = os.path.join(outdir, name + ".pem"), os.path.join(outdir, name + ".key")
    here = os.path.dirname(os.path.abspath(__file__))
    env = dict(os.environ, OPENSSL_CONF=os.path.join(here, "..", "testnet", "openssl.cnf"),
               SAN=name, CADB=outdir)
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-keyout", key, "-out", cert,
                    "-subj", "/CN=" + name, "-CA", os.path.join(workdir, "ca.pem"),
                    "-CAkey", os.path.join(workdir, "pki", "ca.key"), "-days", "30",
                    "-extensions", "v3_leaf"], env=env, check=True, capture_output=True)
    return cert, key


# --- self-check ------------------------------------------------------------------------------------

# Written by hand from libtlsrpt.c (write_first_attribute, write_attribute,
# tlsrpt_init_policy, tlsrpt_finish_policy, tlsrpt_add_delivery_request_failure,
# tlsrpt_finish_delivery_request) for the calls of doc/example.txt, with
# domain "example.com" and record "v=TLSRPTv1; rua=mailto:reports@example.com".
_D, _R = "example.com", "v=TLSRPTv1; rua=mailto:reports@example.com"
_EXPECTED = {
    "example 1": (
        b'{"dpv": "1","d": "example.com","pr": "v=TLSRPTv1; rua=mailto:reports@example.com",'
        b'"policies":[{"policy-type":9,"t":0,"f":0}]}'),
    "example 3": (
        b'{"dpv": "1","d": "example.com","pr": "v=TLSRPTv1; rua=mailto:reports@example.com",'
        b'"policies":[{"policy-type":2,"policy-domain": "company-y.example",'
        b'"policy-string":["version: STSv1","mode: testing","mx: *.mail.company-y.example",'
        b'"max_age: 86400"],"mx-host":["*.mail.company-y.example","*.mail2.company-y.example"],'
        b'"failure-details":[{"c":302,"s": "1.2.3.4","n": "mailin.example.com",'
        b'"h": "test-ehlo.example.com","r": "11.22.33.44","a": "This is additional information",'
        b'"f": "999 TEST ERROR"},{"c":303,"s": "1.2.3.5","n": "mailin.example.com",'
        b'"h": "test-ehlo.example.com","r": "11.22.33.55","a": "This is additional information",'
        b'"f": "999 TEST ERROR"}],"t":2,"f":1}]}'),
    "example 4": (
        b'{"dpv": "1","d": "example.com","pr": "v=TLSRPTv1; rua=mailto:reports@example.com",'
        b'"policies":[{"policy-type":9,"failure-details":[{"c":205,"s": "192.168.25.25",'
        b'"r": "11.22.33.55","a": "Something unexpected happened",'
        b'"f": "http://www.google.com/"}],"t":1,"f":1}]}'),
    "example 7": (
        b'{"dpv": "1","d": "example.com","pr": "v=TLSRPTv1; rua=mailto:reports@example.com",'
        b'"policies":[{"policy-type":2,"policy-domain": "company-y.example",'
        b'"policy-string":["version: STSv1","mode: testing","mx: *.mail.company-y.example",'
        b'"max_age: 86400"],"mx-host":["*.mail.company-y.example","*.mail2.company-y.example"],'
        b'"t":0,"f":0},{"policy-type":1,"policy-domain": "company-y.example",'
        b'"policy-string":["3 0 1 1F850A337E6DB9C609C522D136A475638CC43E1ED424F8EEC8513D747D1D085D",'
        b'"3 0 1 12350A337E6DB9C6123522D136A475638CC43E1ED424F8EEC8513D747D1D1234"],'
        b'"t":0,"f":0}]}'),
    "escaping": (
        b'{"dpv": "1","d": "x.test","pr": "v=TLSRPTv1;\\trua=mailto:a@x.test",'
        b'"policies":[{"policy-type":1,"policy-domain": "q\\"b\\\\s/\\b\\f\\n\\r\\u0001\\u001f'
        b'\\u007f~ \xc3\xa9\xff","t":0,"f":1}]}'),
}


def _selftest_datagrams():
    sts = ["version: STSv1", "mode: testing", "mx: *.mail.company-y.example", "max_age: 86400"]
    mx = ["*.mail.company-y.example", "*.mail2.company-y.example"]
    tlsa = ["3 0 1 1F850A337E6DB9C609C522D136A475638CC43E1ED424F8EEC8513D747D1D085D",
            "3 0 1 12350A337E6DB9C6123522D136A475638CC43E1ED424F8EEC8513D747D1D1234"]
    info = "This is additional information"
    return {
        "example 1": datagram(_D, _R, [policy(POLICY_NONE)]),
        "example 3": datagram(_D, _R, [policy(
            POLICY_STS, "company-y.example", sts, mx,
            [failure(302, "1.2.3.4", "mailin.example.com", "test-ehlo.example.com",
                     "11.22.33.44", info, "999 TEST ERROR"),
             failure(303, "1.2.3.5", "mailin.example.com", "test-ehlo.example.com",
                     "11.22.33.55", info, "999 TEST ERROR")], result=1)]),
        "example 4": datagram(_D, _R, [policy(
            POLICY_NONE, None, failures=[failure(205, "192.168.25.25", None, None,
                                                 "11.22.33.55", "Something unexpected happened",
                                                 "http://www.google.com/")], result=1)]),
        "example 7": datagram(_D, _R, [policy(POLICY_STS, "company-y.example", sts, mx),
                                       policy(POLICY_TLSA, "company-y.example", tlsa)]),
        "escaping": datagram("x.test", "v=TLSRPTv1;\trua=mailto:a@x.test", [policy(
            POLICY_TLSA, b'q"b\\s/\x08\x0c\n\r\x01\x1f\x7f~ \xc3\xa9\xff', result=1)]),
    }


def selftest():
    bad = 0
    got = _selftest_datagrams()
    for name, want in _EXPECTED.items():
        if got[name] == want:
            print(f"ok     datagram {name}")
        else:
            bad += 1
            print(f"FAIL   datagram {name}\n       got  {got[name]!r}\n       want {want!r}")
    # Every valid example parses as JSON and says what was encoded.
    for name in ("example 3", "example 4", "example 7"):
        obj = json.loads(got[name])
        ok = obj["dpv"] == "1" and obj["d"] == _D and obj["pr"] == _R
        print(("ok    " if ok else "FAIL  ") + f" datagram {name} parses back")
        bad += not ok
    try:
        escape("a\0b")
        print("FAIL   NUL byte refused")
        bad += 1
    except ValueError:
        print("ok     NUL byte refused")
    print(f"selftest: {'FAILED' if bad else 'passed'}")
    return 1 if bad else 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--selftest"]:
        sys.exit(selftest())
    sys.exit("usage: tlsrpt_tools.py --selftest")
