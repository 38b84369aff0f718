// SPDX-License-Identifier: MIT
// MTA-STS policy file (RFC 8461 section 3.2) and MX pattern matching (section 4.1).
//
// Lines "key: value" ended by LF or CRLF. Required: "version: STSv1", "mode:" one of
// enforce/testing/none, "max_age:" 1-10 digits (capped at 31557600), and for enforce and
// testing at least one "mx:" with a host name or "*." plus a host name. Unknown keys are
// ignored; of a repeated version/mode/max_age only the first counts (section 3.2). A bad
// value or a bad mx pattern (IP literals, "*" anywhere but a leading "*.", characters
// outside LDH) makes the whole policy invalid: a policy that cannot be read exactly is not
// guessed at (a cached policy stays in force; with none cached there is no policy).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "util/error.hh"

namespace strictmx::sts {

inline constexpr std::size_t kMaxPolicyBytes = 64 * 1024;
inline constexpr std::int64_t kMaxMaxAge = 31'557'600;  // RFC 8461 section 3.2

enum class Mode { Enforce, Testing, None };
const char* mode_name(Mode m);

struct Policy {
    Mode mode = Mode::None;
    std::int64_t max_age = 0;
    std::vector<std::string> mx;  // lowercase patterns, policy order, no duplicates
    // Canonical "key: value" lines (version, mode, mx..., max_age) rebuilt from the parsed
    // values: safe to put into a Postfix policy_string attribute or a TLSRPT report.
    std::vector<std::string> lines() const;
    // The canonical text, LF-separated; what the cache stores.
    std::string text() const;
};

Result<Policy> parse_policy(std::string_view body);

// True if `pattern` is a valid mx pattern (host name, or "*." + host name).
bool is_mx_pattern(std::string_view pattern);
// Section 4.1: exact match, or "*." matching exactly one left-most label. Case-insensitive.
bool mx_matches(std::string_view pattern, std::string_view host);
bool policy_allows(const Policy& p, std::string_view host);

}  // namespace strictmx::sts
