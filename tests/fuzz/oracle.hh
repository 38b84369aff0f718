// SPDX-License-Identifier: MIT
// What the fuzz targets assert: a failed check prints what broke and aborts, so both the
// replay runner and libFuzzer stop at the first input that violates a contract.
#pragma once

#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace strictmx::fuzz {

[[noreturn]] inline void violated(const char* what, std::string_view detail) {
    std::string shown;
    for (unsigned char c : detail.substr(0, 300)) {
        if (c >= 0x20 && c < 0x7f && c != '\\') {
            shown += static_cast<char>(c);
        } else {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\x%02x", c);
            shown += buf;
        }
    }
    std::fprintf(stderr, "oracle violated: %s\n  in: \"%s\"%s\n", what, shown.c_str(),
                 detail.size() > 300 ? "..." : "");
    std::abort();
}

inline void check(bool ok, const char* what, std::string_view detail = {}) {
    if (!ok) violated(what, detail);
}

inline bool has_control(std::string_view s) {
    for (unsigned char c : s)
        if (c < 0x20 || c == 0x7f) return true;
    return false;
}

inline bool is_ldh(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
}

// An LDH host name checked here without the library's code: 2+ labels of 1-63 letters,
// digits and inner hyphens, at most 253 octets, last label not all digits.
inline bool plain_hostname(std::string_view s) {
    if (s.empty() || s.size() > 253) return false;
    std::size_t labels = 0;
    std::string_view last;
    while (true) {
        std::size_t dot = s.find('.');
        std::string_view label = s.substr(0, dot);
        if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-')
            return false;
        for (char c : label)
            if (!is_ldh(c)) return false;
        ++labels;
        last = label;
        if (dot == std::string_view::npos) break;
        s.remove_prefix(dot + 1);
    }
    bool digits = true;
    for (char c : last) digits = digits && c >= '0' && c <= '9';
    return labels >= 2 && !digits;
}

inline std::string lower(std::string_view s) {
    std::string out(s);
    for (char& c : out)
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    return out;
}

// Wire form of a dotted name (labels taken at face value).
inline std::string wire_name(std::string_view name) {
    std::string out;
    while (!name.empty()) {
        std::size_t dot = name.find('.');
        std::string_view label = name.substr(0, dot);
        out += static_cast<char>(label.size());
        out += label;
        if (dot == std::string_view::npos) break;
        name.remove_prefix(dot + 1);
    }
    out += '\0';
    return out;
}

}  // namespace strictmx::fuzz
