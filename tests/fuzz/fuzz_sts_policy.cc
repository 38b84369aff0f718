// SPDX-License-Identifier: MIT
// Fuzz target: MTA-STS policy parser. Oracle: whatever it accepts has canonical lines
// "key: value" whose values cannot break out of a Postfix `{ policy_string = ... }` group or
// add an attribute (no space, '{', '}', ',', '=', ':' or control byte in a value), mx
// patterns that are LDH names or "*." plus one, text() that parses back to the same policy
// byte for byte, bounded output, and "*." patterns that match exactly one more label.
#include <algorithm>
#include <cstdint>
#include <string>
#include <string_view>

#include "oracle.hh"
#include "sts/policy.hh"

namespace sts = strictmx::sts;
using strictmx::fuzz::check;
using strictmx::fuzz::plain_hostname;

namespace {
void check_pattern(std::string_view pat, std::string_view in) {
    check(sts::is_mx_pattern(pat), "mx pattern fails is_mx_pattern", in);
    std::string_view name = pat.starts_with("*.") ? pat.substr(2) : pat;
    check(plain_hostname(name), "mx pattern is not '*.'/nothing plus an LDH host name", in);
    check(strictmx::fuzz::lower(pat) == pat, "mx pattern is not lowercase", in);
    for (char c : pat)
        check(strictmx::fuzz::is_ldh(c) || c == '.' || c == '*', "mx pattern byte outside LDH/*/.",
              in);
    // Section 4.1 matching, checked on names made from the pattern.
    std::string host(name);
    if (pat.starts_with("*.")) {
        check(sts::mx_matches(pat, "a." + host), "*. pattern does not match one more label", in);
        check(sts::mx_matches(pat, "A." + host + "."), "*. match is not case-insensitive", in);
        check(!sts::mx_matches(pat, "a.b." + host), "*. pattern matches two more labels", in);
        check(!sts::mx_matches(pat, host), "*. pattern matches its own base name", in);
    } else {
        check(sts::mx_matches(pat, host), "exact pattern does not match itself", in);
        check(!sts::mx_matches(pat, "a." + host), "exact pattern matches a subdomain", in);
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    auto p = sts::parse_policy(in);
    if (!p) return 0;
    check(size <= sts::kMaxPolicyBytes, "accepted a body over 64 KiB", in.substr(0, 100));
    check(p->max_age >= 0 && p->max_age <= sts::kMaxMaxAge, "max_age out of range", in);
    check(p->mode == sts::Mode::None || !p->mx.empty(), "enforce/testing policy without mx", in);
    for (std::size_t i = 0; i < p->mx.size(); ++i) {
        check_pattern(p->mx[i], in);
        check(std::find(p->mx.begin() + static_cast<long>(i) + 1, p->mx.end(), p->mx[i]) ==
                  p->mx.end(),
              "duplicate mx pattern", in);
    }

    auto lines = p->lines();
    check(lines.size() == p->mx.size() + 3, "lines() is not version, mode, mx..., max_age", in);
    std::size_t mx_seen = 0;
    for (const auto& line : lines) {
        std::size_t sep = line.find(": ");
        check(sep != std::string::npos && sep > 0, "policy line without 'key: '", line);
        std::string_view key = std::string_view(line).substr(0, sep);
        std::string_view value = std::string_view(line).substr(sep + 2);
        check(key == "version" || key == "mode" || key == "mx" || key == "max_age",
              "policy line with an unexpected key", line);
        check(!value.empty() && value.find_first_of(" {},=:\t\r\n") == std::string_view::npos &&
                  !strictmx::fuzz::has_control(value),
              "policy line value could break a policy_string group", line);
        for (unsigned char c : value)
            check(c < 0x80, "policy line value holds an 8-bit byte", line);
        if (key == "mx") {
            check(value == p->mx[mx_seen], "mx lines are not the patterns in order", line);
            ++mx_seen;
        }
    }

    std::string text = p->text();
    check(text.size() <= 2 * size + 64, "text() much longer than the input", text);
    auto again = sts::parse_policy(text);
    check(again.has_value(), "text() does not parse", text);
    check(again->mx == p->mx && again->mode == p->mode && again->max_age == p->max_age,
          "text() parses to another policy", text);
    check(again->text() == text, "text() is not a fixed point", text);
    return 0;
}
