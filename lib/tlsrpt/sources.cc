// SPDX-License-Identifier: MIT
// TLSRPT outcomes from Exim's events and from the daemon's own policy failures.
#include "tlsrpt/sources.hh"

#include <algorithm>
#include <memory>

#include "dane/dane.hh"
#include "dns/name.hh"
#include "tlsrpt/collector.hh"
#include "tlsrpt/record.hh"
#include "util/log.hh"
#include "util/strings.hh"

namespace strictmx::tlsrpt {

namespace {
std::string lowered_host(std::string_view s) {
    std::string h = to_lower(s);
    if (!h.empty() && h.back() == '.') h.pop_back();
    return h;
}
}  // namespace

std::variant<SessionEvent, std::string> parse_exim_tlsrpt(std::string_view line) {
    std::string_view rest = trim(line);
    auto word = [&rest]() {
        std::size_t sp = rest.find(' ');
        std::string_view w = rest.substr(0, sp);
        rest = sp == std::string_view::npos ? std::string_view{} : trim(rest.substr(sp + 1));
        return w;
    };
    if (word() != "tlsrpt") return std::string("not a tlsrpt line");
    std::string_view result = word(), id = word(), domain = word(), host = word(), ip = word();
    if (ip.empty())
        return std::string("expected: tlsrpt RESULT MSGID DOMAIN MXHOST IP [TEXT]");
    SessionEvent a;
    if (id.size() > 64 || id.find_first_of("|\t") != std::string_view::npos)
        return std::string("bad message id");
    a.id = std::string(id);
    a.domain = lowered_host(domain);
    if (!dns::is_hostname(a.domain) || dns::is_ip_literal(a.domain))
        return std::string("not a domain name: ") + sanitize(domain, 80);
    if (host != "-") {
        a.mx_host = lowered_host(host);
        if (!dns::is_hostname(a.mx_host)) return std::string("not a host name: ") + sanitize(host, 80);
    }
    if (ip != "-") {
        if (!dns::is_ip_literal(ip)) return std::string("not an IP address: ") + sanitize(ip, 80);
        a.ip = std::string(ip);
    }
    std::string text = sanitize(rest, 300);
    if (result == "success") {
        a.code = 0;
    } else if (result == "defer") {
        a.code = classify_exim_defer(rest);
        if (a.code == 0) return std::string("ignored: not a TLS failure");
        a.additional = text;
    } else {
        a.code = result_type_code(result);
        if (a.code == 0) return std::string("unknown result type: ") + sanitize(result, 40);
        a.additional = text;
    }
    return a;
}

int classify_exim_defer(std::string_view error) {
    std::string e = to_lower(error);
    auto has = [&e](const char* s) { return e.find(s) != std::string::npos; };
    // Exim's texts (transports/smtp.c, tls-openssl.c, tls-gnu.c).
    if (has("tls session required but not offered") || has("not offered tls") ||
        has("did not offer tls") ||
        (has("starttls") && (has("not offered") || has("not advertised") || has("rejected"))))
        return 201;  // starttls-not-supported
    if (has("certificate has expired") || has("certificate expired")) return 204;
    if (has("hostname mismatch") || has("host name mismatch") || has("does not match") ||
        has("cert_hostname") || has("verify_cert_hostname"))
        return 202;  // certificate-host-mismatch
    if (has("certificate verif") || has("unable to get local issuer") ||
        has("self signed certificate") || has("self-signed certificate") ||
        has("certificate not trusted") || has("(certificate verification failed)"))
        return 203;  // certificate-not-trusted
    if (has("dane")) return 205;  // validation-failure
    if (has("tls error") || has("tls session") || has("ssl_connect") || has("handshake"))
        return 205;  // validation-failure: the handshake failed
    return 0;
}

PolicyOutcome policy_for(const policy::Decision& d, const SessionEvent& a) {
    PolicyOutcome p;
    p.domain = a.domain;
    switch (d.kind) {
        case policy::Decision::Kind::Dane:
            p.type = PolicyType::Tlsa;
            if (!a.mx_host.empty()) p.domain = a.mx_host;  // the TLSA base domain
            break;
        case policy::Decision::Kind::Sts:
            p.type = PolicyType::Sts;
            if (d.policy) {
                p.strings = d.policy->lines();
                p.mx_hosts = d.policy->mx;
            }
            break;
        default:
            if (d.failure_code >= 301 && d.failure_code <= 303)
                p.type = PolicyType::Sts;
            else if (d.failure_code == 305)
                p.type = PolicyType::Tlsa;
            else
                p.type = PolicyType::NoPolicyFound;
            break;
    }
    return p;
}

void OwnReporter::report(const policy::Decision& d, SessionEvent a, const char* source,
                         std::int64_t now) {
    std::string key = a.id + "|" + a.domain + "|" + a.mx_host + "|" + a.ip + "|" +
                      std::to_string(a.code);
    if (!a.id.empty()) {
        if (auto it = seen_.find(key); it != seen_.end() && now - it->second < kDedupSeconds) {
            ++stats_.duplicate;
            return;
        }
        if (seen_.size() >= kMaxDedup) {
            std::erase_if(seen_, [now](const auto& kv) { return now - kv.second >= kDedupSeconds; });
            if (seen_.size() >= kMaxDedup) seen_.clear();
        }
        seen_[key] = now;
    }
    if (in_flight_ >= kMaxInFlight) {
        if (stats_.dropped++ % 1000 == 0)
            log::warn("tlsrpt: too many record lookups in flight, outcome dropped",
                      {{"source", source}, {"domain", a.domain}});
        return;
    }
    PolicyOutcome p = policy_for(d, a);
    ++in_flight_;
    auto attempt = std::make_shared<SessionEvent>(std::move(a));
    auto policy = std::make_shared<PolicyOutcome>(std::move(p));
    resolver_.resolve(
        "_smtp._tls." + attempt->domain, dns::rrtype::TXT,
        [this, attempt, policy, source](dns::Answer txt) {
            // RFC 8460 section 3: exactly one TLSRPT record; "v=TLSRPTv1" records only.
            std::string record;
            int found = 0;
            if (txt.status == dns::Answer::Status::Ok && !txt.failed()) {
                for (const auto& rd : txt.rdata) {
                    auto t = dns::parse_txt(rd);
                    if (!t || !t->starts_with("v=TLSRPTv1")) continue;
                    ++found;
                    record = *t;
                }
            }
            Record parsed = found == 1 ? parse_record(record) : Record{};
            if (!parsed.valid) {
                --in_flight_;
                ++stats_.no_record;
                log::debug("tlsrpt: no usable _smtp._tls record, outcome not kept",
                           {{"domain", attempt->domain},
                            {"records", std::to_string(found)},
                            {"why", found == 1 ? parsed.why : txt.why}});
                return;
            }
            if (policy->type != PolicyType::Tlsa || attempt->mx_host.empty()) {
                --in_flight_;
                submit(std::move(*policy), *attempt, record, source);
                return;
            }
            // DANE: the policy strings are the MX host's TLSA records (as Postfix sends them).
            resolver_.resolve(dane::tlsa_name(attempt->mx_host), dns::rrtype::TLSA,
                              [this, attempt, policy, record, source](dns::Answer tlsa) {
                                  --in_flight_;
                                  if (tlsa.status == dns::Answer::Status::Ok && !tlsa.failed())
                                      for (const auto& rd : tlsa.rdata)
                                          if (auto t = dane::parse_tlsa(rd))
                                              policy->strings.push_back(t->text());
                                  submit(std::move(*policy), *attempt, record, source);
                              });
        });
}

void OwnReporter::submit(PolicyOutcome p, const SessionEvent& a, const std::string& record,
                         const char* source) {
    if (a.code != 0) {
        p.failed = true;
        FailureDetail f;
        f.code = a.code;
        // Members (s, n, h, r, a, f) -> bits 0..5: only what is known.
        if (!a.mx_host.empty()) {
            f.mx_hostname = a.mx_host;
            f.present |= 1u << 1;
        }
        if (!a.ip.empty()) {
            f.receiving_ip = a.ip;
            f.present |= 1u << 3;
        }
        if (!a.additional.empty()) {
            f.additional = a.additional;
            f.present |= 1u << 4;
        }
        p.failures.push_back(std::move(f));
    }
    if (!a.mx_host.empty() && p.type == PolicyType::NoPolicyFound) p.mx_hosts = {};
    Session s;
    s.domain = a.domain;
    s.record = record;
    s.policies.push_back(std::move(p));
    collector_.submit(std::move(s), source);
    ++stats_.reported;
}

}  // namespace strictmx::tlsrpt
