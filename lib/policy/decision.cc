// SPDX-License-Identifier: MIT
// Postfix policy answers from decisions (TLS_README "TLS policy table", TLSRPT_README).
#include "policy/decision.hh"

#include <algorithm>

#include "dns/name.hh"
#include "util/log.hh"
#include "util/strings.hh"

namespace strictmx::policy {

const Profile* find_profile(std::string_view name) {
    static const Profile kProfiles[] = {
        {"postfix", true, false, false, false, 0},
        {"postfix-tlsrpt", true, true, false, false, 1},
        {"strict", true, false, true, false, 2},
        {"strict-tlsrpt", true, true, true, false, 3},
        {"requiretls", true, false, true, true, 4},
    };
    for (const auto& p : kProfiles) {
        if (p.name == name) return &p;
    }
    return nullptr;
}

int failure_code_of(std::string_view text) {
    struct Code {
        const char* name;
        int code;
    };
    static const Code kCodes[] = {{"sts-policy-fetch-error:", 301},
                                  {"sts-policy-invalid:", 302},
                                  {"sts-webpki-invalid:", 303}};
    for (const auto& c : kCodes)
        if (text.starts_with(c.name)) return c.code;
    return 0;
}

const char* profile_names() {
    return "postfix, postfix-tlsrpt, strict, strict-tlsrpt, requiretls";
}

std::vector<std::string> match_names(const sts::Policy& p,
                                     const std::vector<std::string>& mx_hosts) {
    std::vector<std::string> names;
    for (const auto& pat : p.mx) {
        if (!pat.starts_with("*.")) names.push_back(pat);
    }
    std::vector<std::string> expanded;
    for (const auto& host : mx_hosts) {
        if (std::find(names.begin(), names.end(), host) != names.end()) continue;
        for (const auto& pat : p.mx) {
            if (pat.starts_with("*.") && sts::mx_matches(pat, host)) {
                expanded.push_back(host);
                break;
            }
        }
    }
    std::sort(expanded.begin(), expanded.end());
    expanded.erase(std::unique(expanded.begin(), expanded.end()), expanded.end());
    names.insert(names.end(), expanded.begin(), expanded.end());
    return names;
}

namespace {
bool enforced(const sts::Policy& p, const Profile& profile) {
    return p.mode == sts::Mode::Enforce || (p.mode == sts::Mode::Testing && profile.strict_testing);
}

// The last check before a name from DNS or HTTPS goes into an answer: it was validated where
// it entered, and this keeps any future path from writing one that was not. A blank, "=",
// ":", ",", "{", "}" or a control byte in a name would add or widen a Postfix attribute.
bool safe_names(const Decision& d, const std::vector<std::string>& names) {
    for (const auto& n : names) {
        if (!dns::is_hostname(n)) {
            log::error("refusing to write a name that is not a host name into an answer",
                       {{"domain", d.domain}, {"name", n}});
            return false;
        }
    }
    return true;
}

bool safe_policy(const Decision& d, const sts::Policy& p) {
    for (const auto& pat : p.mx) {
        if (!sts::is_mx_pattern(pat)) {
            log::error("refusing to write an mx pattern that is not one into an answer",
                       {{"domain", d.domain}, {"pattern", pat}});
            return false;
        }
    }
    return dns::is_hostname(d.domain);
}

const Reply kUnsafe{Reply::Kind::Temp,
                    "internal check failed: a name from DNS or HTTPS is not a host name"};
}  // namespace

std::string dane_answer(const Decision& d, const Profile& profile) {
    // Partial DANE ("dane": Postfix uses opportunistic TLS for hosts without usable TLSA)
    // while the domain also enforces MTA-STS: no host may be reached with less than
    // authenticated TLS (RFC 8461 section 2 lets DANE win, RFC 7672 section 2.2 makes hosts
    // without TLSA unauthenticated), so hosts without usable TLSA are skipped.
    if (profile.dane_only) return "dane-only";
    if (d.dane_level == "dane" && d.policy && enforced(*d.policy, profile)) return "dane-only";
    return d.dane_level;
}

Reply render(const Decision& d, const Profile& profile) {
    switch (d.kind) {
        case Decision::Kind::NotFound:
            return {Reply::Kind::NotFound, {}};
        case Decision::Kind::Temp:
            return {Reply::Kind::Temp, d.why};
        case Decision::Kind::Override:
            if (d.override_text.empty()) return {Reply::Kind::NotFound, {}};
            return {Reply::Kind::Ok, d.override_text};
        case Decision::Kind::Dane:
            // requiretls: DANE that can authenticate no MX host is no authenticated path;
            // an MTA-STS policy the domain also has may still give one.
            if (!(profile.dane_only && d.dane_no_usable_tlsa))
                return {Reply::Kind::Ok, dane_answer(d, profile)};
            if (!d.policy) return {Reply::Kind::NotFound, {}};
            break;
        case Decision::Kind::Sts:
            break;
    }
    const sts::Policy& p = *d.policy;
    if (!enforced(p, profile)) return {Reply::Kind::NotFound, {}};
    if (!safe_policy(d, p)) return kUnsafe;
    bool has_wildcard =
        std::any_of(p.mx.begin(), p.mx.end(), [](const auto& s) { return s.starts_with("*."); });
    if (has_wildcard && !d.mx_known)
        return {Reply::Kind::Temp,
                "MX lookup failed (" + d.mx_error + "), cannot resolve the policy's *. pattern"};
    std::vector<std::string> names = match_names(p, d.mx_hosts);
    if (names.empty())
        return {Reply::Kind::Temp, "no MX host of " + d.domain + " matches its MTA-STS policy"};
    if (!safe_names(d, names)) return kUnsafe;
    std::string out = "secure match=";
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i) out += ':';
        out += names[i];
    }
    if (profile.servername) out += " servername=hostname";
    if (profile.tlsrpt) {
        out += " policy_type=sts policy_domain=" + d.domain;
        for (const auto& line : p.lines()) {
            // Canonical lines rebuilt from parsed values; a brace would end the group early.
            if (line.find_first_of("{}\r\n") != std::string::npos) return kUnsafe;
            out += " { policy_string = " + line + " }";
        }
        for (const auto& pat : p.mx) out += " mx_host_pattern=" + pat;
    }
    return {Reply::Kind::Ok, out};
}

namespace {
// A value for Exim's ${extract}: quoted, with quotes and backslashes replaced.
std::string exim_quote(std::string_view s) {
    std::string out = "\"";
    for (char c : s) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\')
            out += '\'';
        else if (u < 0x20 || u >= 0x7f)
            out += '?';
        else
            out += c;
    }
    return out + "\"";
}

std::string joined(const std::vector<std::string>& v) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ":" : "") + v[i];
    return out;
}
}  // namespace

std::string render_exim(const Decision& d, const Profile& profile) {
    switch (d.kind) {
        case Decision::Kind::NotFound:
            return "level=none";
        case Decision::Kind::Temp:
            return "level=tempfail reason=" + exim_quote(d.why);
        case Decision::Kind::Dane:
            return "level=" + dane_answer(d, profile);
        case Decision::Kind::Override: {
            if (d.override_text.empty()) return "level=none";
            std::string level = d.override_text.substr(0, d.override_text.find(' '));
            return "level=" + level + " override=" + exim_quote(d.override_text);
        }
        case Decision::Kind::Sts:
            break;
    }
    const sts::Policy& p = *d.policy;
    Reply r = render(d, profile);  // asserts every name it and this answer write
    if (r.kind == Reply::Kind::Temp) return "level=tempfail reason=" + exim_quote(r.text);
    if (r.kind == Reply::Kind::NotFound)
        return std::string("level=none mode=") + sts::mode_name(p.mode);
    return std::string("level=secure mode=") + sts::mode_name(p.mode) + " mx=" + joined(p.mx) +
           " match=" + joined(match_names(p, d.mx_hosts));
}

std::string exim_mxcheck(const Decision& d, const Profile& profile, std::string_view host) {
    switch (d.kind) {
        case Decision::Kind::Temp:
            return "policy lookup failed: " + sanitize(d.why, 400);
        case Decision::Kind::Sts:
            break;
        default:
            return {};
    }
    const sts::Policy& p = *d.policy;
    bool enforce =
        p.mode == sts::Mode::Enforce || (p.mode == sts::Mode::Testing && profile.strict_testing);
    if (!enforce || (dns::is_hostname(host) && sts::policy_allows(p, host))) return {};
    return "MX host " + std::string(host) + " is not allowed by the MTA-STS policy of " + d.domain;
}

}  // namespace strictmx::policy
