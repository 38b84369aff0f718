// SPDX-License-Identifier: MIT
// Domain names: validation, IDNA conversion and classification of Postfix policy keys.
#include "dns/name.hh"

#include <arpa/inet.h>
#include <idn2.h>
#include <libpsl.h>

#include <cstdlib>

#include "util/strings.hh"

namespace strictmx::dns {

bool is_hostname(std::string_view name) {
    if (name.empty() || name.size() > 253) return false;
    std::size_t labels = 0;
    bool last_all_digits = false;
    for (auto label : split(name, '.')) {
        ++labels;
        if (label.empty() || label.size() > 63) return false;
        if (label.front() == '-' || label.back() == '-') return false;
        bool all_digits = true;
        for (char c : label) {
            bool alpha = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
            bool digit = c >= '0' && c <= '9';
            if (!alpha && !digit && c != '-') return false;
            if (!digit) all_digits = false;
        }
        last_all_digits = all_digits;
    }
    return labels >= 2 && !last_all_digits;
}

bool fits_with_prefix(std::string_view prefix, std::string_view name) {
    return prefix.size() + 1 + name.size() <= 253;
}

std::string registered_domain(std::string_view name) {
    // psl_latest() prefers the system's list (package publicsuffix) over the built-in one.
    static const psl_ctx_t* psl = [] {
        const psl_ctx_t* p = psl_latest(nullptr);
        return p ? p : psl_builtin();
    }();
    std::string n(name);
    const char* reg = psl ? psl_registrable_domain(psl, n.c_str()) : nullptr;
    return reg ? std::string(reg) : n;
}

bool is_ip_literal(std::string_view s) {
    // inet_pton reads a C string: a NUL would make it judge only the part before it.
    if (s.find('\0') != std::string_view::npos) return false;
    std::string str(s);
    unsigned char buf[16];
    return inet_pton(AF_INET, str.c_str(), buf) == 1 || inet_pton(AF_INET6, str.c_str(), buf) == 1;
}

std::string to_alabel(std::string_view name) {
    bool ascii = true;
    for (unsigned char c : name) {
        if (c >= 0x80) ascii = false;
    }
    if (ascii) return to_lower(name);
    // libidn2 reads a C string: a NUL would make it convert only the part before it.
    if (name.find('\0') != std::string_view::npos) return {};
    std::string in(name);
    char* out = nullptr;
    int rc =
        idn2_lookup_u8(reinterpret_cast<const uint8_t*>(in.c_str()),
                       reinterpret_cast<uint8_t**>(&out), IDN2_NONTRANSITIONAL | IDN2_NFC_INPUT);
    if (rc != IDN2_OK || out == nullptr) {
        if (out) idn2_free(out);
        return {};
    }
    std::string result = to_lower(out);
    idn2_free(out);
    return result;
}

Key classify_key(std::string_view raw) {
    Key k;
    std::string key = to_lower(trim(raw));
    if (key.empty()) {
        k.why = "empty key";
        return k;
    }
    if (key.front() == '.') {
        k.kind = KeyKind::ParentProbe;
        k.why = "parent-domain probe";
        return k;
    }
    if (key.front() == '[') {
        k.kind = KeyKind::NextHop;
        k.why = "explicit [host] next hop (no MX lookup, MTA-STS does not apply)";
        return k;
    }
    if (is_ip_literal(key)) {
        k.kind = KeyKind::IpLiteral;
        k.why = "IP address";
        return k;
    }
    if (key.find(':') != std::string::npos) {
        k.kind = KeyKind::NextHop;
        k.why = "explicit host:port next hop (MTA-STS does not apply)";
        return k;
    }
    if (key.back() == '.') key.pop_back();
    std::string alabel = to_alabel(key);
    if (alabel.empty()) {
        k.why = "not a valid internationalized domain name";
        return k;
    }
    if (!is_hostname(alabel)) {
        k.why = "not a valid domain name";
        return k;
    }
    k.kind = KeyKind::Domain;
    k.domain = std::move(alabel);
    return k;
}

}  // namespace strictmx::dns
