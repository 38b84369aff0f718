// SPDX-License-Identifier: MIT
// Postfix policy answers from decisions (TLS_README "TLS policy table", TLSRPT_README).
#include "policy/decision.hh"

#include <algorithm>

namespace strictmx::policy {

const Profile* find_profile(std::string_view name) {
    static const Profile kProfiles[] = {
        {"postfix", true, false, false},
        {"postfix-tlsrpt", true, true, false},
        {"strict", true, false, true},
        {"strict-tlsrpt", true, true, true},
    };
    for (const auto& p : kProfiles) {
        if (p.name == name) return &p;
    }
    return nullptr;
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
            return {Reply::Kind::Ok, d.dane_level};
        case Decision::Kind::Sts:
            break;
    }
    const sts::Policy& p = *d.policy;
    bool enforce =
        p.mode == sts::Mode::Enforce || (p.mode == sts::Mode::Testing && profile.strict_testing);
    if (!enforce) return {Reply::Kind::NotFound, {}};
    bool has_wildcard =
        std::any_of(p.mx.begin(), p.mx.end(), [](const auto& s) { return s.starts_with("*."); });
    if (has_wildcard && !d.mx_known)
        return {Reply::Kind::Temp,
                "MX lookup failed (" + d.mx_error + "), cannot resolve the policy's *. pattern"};
    std::vector<std::string> names = match_names(p, d.mx_hosts);
    if (names.empty())
        return {Reply::Kind::Temp, "no MX host of " + d.domain + " matches its MTA-STS policy"};
    std::string out = "secure match=";
    for (std::size_t i = 0; i < names.size(); ++i) {
        if (i) out += ':';
        out += names[i];
    }
    if (profile.servername) out += " servername=hostname";
    if (profile.tlsrpt) {
        out += " policy_type=sts policy_domain=" + d.domain;
        for (const auto& line : p.lines()) out += " { policy_string = " + line + " }";
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
            return "level=" + d.dane_level;
        case Decision::Kind::Override: {
            if (d.override_text.empty()) return "level=none";
            std::string level = d.override_text.substr(0, d.override_text.find(' '));
            return "level=" + level + " override=" + exim_quote(d.override_text);
        }
        case Decision::Kind::Sts:
            break;
    }
    const sts::Policy& p = *d.policy;
    Reply r = render(d, profile);
    if (r.kind == Reply::Kind::Temp) return "level=tempfail reason=" + exim_quote(r.text);
    if (r.kind == Reply::Kind::NotFound)
        return std::string("level=none mode=") + sts::mode_name(p.mode);
    return std::string("level=secure mode=") + sts::mode_name(p.mode) + " mx=" + joined(p.mx) +
           " match=" + joined(match_names(p, d.mx_hosts));
}

std::string exim_mxcheck(const Decision& d, const Profile& profile, std::string_view host) {
    switch (d.kind) {
        case Decision::Kind::Temp:
            return "policy lookup failed: " + d.why;
        case Decision::Kind::Sts:
            break;
        default:
            return {};
    }
    const sts::Policy& p = *d.policy;
    bool enforce =
        p.mode == sts::Mode::Enforce || (p.mode == sts::Mode::Testing && profile.strict_testing);
    if (!enforce || sts::policy_allows(p, host)) return {};
    return "MX host " + std::string(host) + " is not allowed by the MTA-STS policy of " + d.domain;
}

}  // namespace strictmx::policy
