// SPDX-License-Identifier: MIT
// MTA-STS policy parser and MX pattern matching (RFC 8461 sections 3.2 and 4.1).
#include "sts/policy.hh"

#include <algorithm>

#include "dns/name.hh"
#include "util/strings.hh"

namespace strictmx::sts {

const char* mode_name(Mode m) {
    switch (m) {
        case Mode::Enforce:
            return "enforce";
        case Mode::Testing:
            return "testing";
        case Mode::None:
            return "none";
    }
    return "none";
}

std::vector<std::string> Policy::lines() const {
    std::vector<std::string> out;
    out.reserve(mx.size() + 3);
    out.emplace_back("version: STSv1");
    out.emplace_back(std::string("mode: ") + mode_name(mode));
    for (const auto& p : mx) out.emplace_back("mx: " + p);
    out.emplace_back("max_age: " + std::to_string(max_age));
    return out;
}

std::string Policy::text() const {
    std::string t;
    for (const auto& l : lines()) {
        t += l;
        t += '\n';
    }
    return t;
}

bool is_mx_pattern(std::string_view p) {
    if (p.starts_with("*.")) p.remove_prefix(2);
    return dns::is_hostname(p);
}

bool mx_matches(std::string_view pattern, std::string_view host) {
    if (!host.empty() && host.back() == '.') host.remove_suffix(1);
    if (pattern.starts_with("*.")) {
        std::string_view suffix = pattern.substr(1);  // ".example.net"
        if (host.size() <= suffix.size()) return false;
        std::string_view head = host.substr(0, host.size() - suffix.size());
        if (head.find('.') != std::string_view::npos) return false;  // exactly one label
        return iequals(host.substr(head.size()), suffix);
    }
    return iequals(pattern, host);
}

bool policy_allows(const Policy& p, std::string_view host) {
    return std::any_of(p.mx.begin(), p.mx.end(),
                       [&](const std::string& pat) { return mx_matches(pat, host); });
}

namespace {
bool is_key_char(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' ||
           c == '-' || c == '.';
}
}  // namespace

Result<Policy> parse_policy(std::string_view body) {
    auto invalid = [](std::string why) { return make_error(ErrorClass::NotFound, std::move(why)); };
    if (body.size() > kMaxPolicyBytes) return invalid("policy larger than 64 KiB");
    Policy p;
    bool have_version = false, have_mode = false, have_max_age = false;
    std::size_t lineno = 0;
    while (!body.empty()) {
        std::size_t nl = body.find('\n');
        std::string_view line = body.substr(0, nl);
        body = nl == std::string_view::npos ? std::string_view{} : body.substr(nl + 1);
        ++lineno;
        if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
        if (line.find('\r') != std::string_view::npos)
            return invalid("line " + std::to_string(lineno) + ": stray carriage return");
        line = trim(line);
        if (line.empty()) continue;
        std::size_t colon = line.find(':');
        if (colon == std::string_view::npos || colon == 0)
            return invalid("line " + std::to_string(lineno) + ": not 'key: value'");
        std::string_view key = line.substr(0, colon);
        std::string_view value = trim(line.substr(colon + 1));
        for (char c : key) {
            if (!is_key_char(c)) return invalid("line " + std::to_string(lineno) + ": bad key");
        }
        // Section 3.2: "If any non-mx fields are duplicated, all entries except for the
        // first SHOULD be ignored."
        if ((key == "version" && have_version) || (key == "mode" && have_mode) ||
            (key == "max_age" && have_max_age))
            continue;
        if (key == "version") {
            if (value != "STSv1") return invalid("version is not STSv1");
            have_version = true;
        } else if (key == "mode") {
            if (value == "enforce")
                p.mode = Mode::Enforce;
            else if (value == "testing")
                p.mode = Mode::Testing;
            else if (value == "none")
                p.mode = Mode::None;
            else
                return invalid("mode is not enforce, testing or none");
            have_mode = true;
        } else if (key == "max_age") {
            if (value.empty() || value.size() > 10) return invalid("max_age is not 1-10 digits");
            std::int64_t v = 0;
            for (char c : value) {
                if (c < '0' || c > '9') return invalid("max_age is not a number");
                v = v * 10 + (c - '0');
            }
            p.max_age = std::min(v, kMaxMaxAge);
            have_max_age = true;
        } else if (key == "mx") {
            if (!is_mx_pattern(value))
                return invalid("mx pattern is not a host name or *.host name: " +
                               sanitize(value, 80));
            std::string pat = to_lower(value);
            if (std::find(p.mx.begin(), p.mx.end(), pat) == p.mx.end())
                p.mx.push_back(std::move(pat));
        }
        // Unknown keys are ignored (section 3.2).
    }
    if (!have_version) return invalid("policy has no version");
    if (!have_mode) return invalid("policy has no mode");
    if (!have_max_age) return invalid("policy has no max_age");
    if (p.mode != Mode::None && p.mx.empty()) return invalid("policy has no mx");
    return p;
}

}  // namespace strictmx::sts
