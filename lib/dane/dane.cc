// SPDX-License-Identifier: MIT
// DANE for SMTP: TLSA records and the per-domain decision (RFC 7672 sections 2 and 3).
#include "dane/dane.hh"

#include <algorithm>
#include <cstdio>

#include "util/strings.hh"

namespace strictmx::dane {

bool Tlsa::usable() const {
    if (usage != 2 && usage != 3) return false;
    if (selector > 1) return false;
    switch (mtype) {
        case 0:
            return !data.empty();
        case 1:
            return data.size() == 32;
        case 2:
            return data.size() == 64;
        default:
            return false;
    }
}

std::string Tlsa::text() const {
    std::string out =
        std::to_string(usage) + " " + std::to_string(selector) + " " + std::to_string(mtype) + " ";
    static constexpr char kHex[] = "0123456789abcdef";
    std::size_t n = std::min<std::size_t>(data.size(), 32);
    for (std::size_t i = 0; i < n; ++i) {
        auto c = static_cast<unsigned char>(data[i]);
        out += kHex[c >> 4];
        out += kHex[c & 0xf];
    }
    if (data.size() > n) out += "...";
    return out;
}

std::optional<Tlsa> parse_tlsa(std::string_view rdata) {
    if (rdata.size() < 3) return std::nullopt;
    Tlsa t;
    t.usage = static_cast<std::uint8_t>(rdata[0]);
    t.selector = static_cast<std::uint8_t>(rdata[1]);
    t.mtype = static_cast<std::uint8_t>(rdata[2]);
    t.data.assign(rdata.substr(3));
    return t;
}

std::string tlsa_name(const std::string& host) {
    return "_25._tcp." + host;
}

const char* kind_name(Kind k) {
    switch (k) {
        case Kind::None:
            return "none";
        case Kind::Dane:
            return "dane";
        case Kind::DaneOnly:
            return "dane-only";
        case Kind::Fail:
            return "fail";
    }
    return "none";
}

namespace {
std::string describe(const char* what, const std::string& name, const dns::Answer& a) {
    std::string s = std::string(what) + " " + name + ": ";
    if (a.failed())
        return s + "FAILED (" + sanitize(a.why, 120) + ") [" + dns::security_name(a.security) + "]";
    s += dns::status_name(a.status);
    if (a.status == dns::Answer::Status::Ok)
        s += ", " + std::to_string(a.rdata.size()) + " record(s)";
    return s + " [" + dns::security_name(a.security) + "]";
}

void min_ttl(Outcome& o, const dns::Answer& a) {
    if (a.failed()) return;
    if (o.ttl == 0 || (a.ttl != 0 && a.ttl < o.ttl)) o.ttl = a.ttl;
}
}  // namespace

Outcome evaluate(const std::string& domain, const dns::Answer& mx,
                 const std::vector<HostAnswers>& hosts) {
    Outcome o;
    min_ttl(o, mx);
    if (mx.failed()) {
        o.kind = Kind::Fail;
        o.failure = mx;
        o.why = "DNS lookup of " + domain + " MX failed: " + sanitize(mx.why, 120);
        return o;
    }
    if (mx.security != dns::Security::Secure) {
        o.why = "MX RRset of " + domain + " is not DNSSEC-signed: DANE does not apply";
        return o;
    }
    if (hosts.empty()) {
        o.why = "no MX host to deliver to (null MX or no such domain)";
        return o;
    }
    std::size_t covered = 0;
    std::size_t with_tlsa = 0;
    std::vector<std::string> uncovered;
    for (const auto& h : hosts) {
        o.notes.push_back(describe("A", h.host, h.a));
        o.notes.push_back(describe("AAAA", h.host, h.aaaa));
        o.notes.push_back(describe("TLSA", tlsa_name(h.host), h.tlsa));
        for (const dns::Answer* addr : {&h.a, &h.aaaa}) {
            if (addr->failed()) {
                o.kind = Kind::Fail;
                o.failure = *addr;
                o.why =
                    "DNS lookup of " + h.host + " addresses failed: " + sanitize(addr->why, 120);
                return o;
            }
            min_ttl(o, *addr);
        }
        dns::Security addr_sec = dns::weakest(h.a.security, h.aaaa.security);
        bool has_address =
            h.a.status == dns::Answer::Status::Ok || h.aaaa.status == dns::Answer::Status::Ok;
        if (h.cname_queried) {
            o.notes.push_back(describe("CNAME", h.host, h.cname));
            if (h.cname.failed()) {
                o.kind = Kind::Fail;
                o.failure = h.cname;
                o.why = "DNS lookup of " + h.host + " CNAME failed: " + sanitize(h.cname.why, 120);
                return o;
            }
            if (has_address && h.cname.status == dns::Answer::Status::Ok &&
                h.cname.security == dns::Security::Secure)
                addr_sec = dns::Security::Secure;  // signed original name: its TLSA counts
        }
        if (!has_address || addr_sec != dns::Security::Secure) {
            uncovered.push_back(h.host +
                                (has_address ? " (addresses not signed)" : " (no address)"));
            continue;  // RFC 7672 2.2.2: no DANE for this host
        }
        const dns::Answer* tlsa = &h.tlsa;
        std::string tlsa_owner = tlsa_name(h.host);
        if (h.expanded_queried) {
            o.notes.push_back(describe("TLSA", tlsa_name(h.expanded), h.tlsa_expanded) +
                              " (CNAME target)");
            if (h.tlsa_expanded.failed()) {
                o.kind = Kind::Fail;
                o.failure = h.tlsa_expanded;
                o.why = "DNS lookup of " + tlsa_name(h.expanded) +
                        " TLSA failed: " + sanitize(h.tlsa_expanded.why, 120);
                return o;
            }
            if (h.tlsa_expanded.status == dns::Answer::Status::Ok) {
                tlsa = &h.tlsa_expanded;
                tlsa_owner = tlsa_name(h.expanded);
            }
        }
        if (tlsa->failed()) {
            o.kind = Kind::Fail;
            o.failure = *tlsa;
            o.why = "DNS lookup of " + tlsa_owner + " TLSA failed: " + sanitize(tlsa->why, 120);
            return o;
        }
        min_ttl(o, *tlsa);
        if (tlsa->status != dns::Answer::Status::Ok || tlsa->security != dns::Security::Secure) {
            uncovered.push_back(h.host + " (no TLSA)");
            continue;
        }
        ++with_tlsa;
        bool usable = false;
        for (const auto& rd : tlsa->rdata) {
            auto t = parse_tlsa(rd);
            if (!t) continue;
            o.notes.push_back("  TLSA " + tlsa_owner + " " + t->text() +
                              (t->usable() ? " (usable)" : " (unusable for SMTP)"));
            usable = usable || t->usable();
        }
        if (usable)
            ++covered;
        else
            uncovered.push_back(h.host + " (only unusable TLSA)");
    }
    if (covered == hosts.size()) {
        o.kind = Kind::DaneOnly;
        o.why = "DNSSEC-signed MX and usable TLSA for every MX host";
    } else if (with_tlsa > 0) {
        o.kind = Kind::Dane;
        o.no_usable_tlsa = covered == 0;
        o.why = "DNSSEC-signed MX with TLSA for " + std::to_string(with_tlsa) + " of " +
                std::to_string(hosts.size()) +
                " MX hosts; Postfix applies DANE per host (not covered: " +
                [&] {
                    std::string s;
                    for (const auto& u : uncovered) s += (s.empty() ? "" : ", ") + u;
                    return s;
                }() +
                ")";
    } else {
        o.why = "DNSSEC-signed MX but no MX host with signed addresses has TLSA records: DANE does not apply (";
        for (std::size_t i = 0; i < uncovered.size(); ++i) o.why += (i ? ", " : "") + uncovered[i];
        o.why += ")";
    }
    return o;
}

}  // namespace strictmx::dane
