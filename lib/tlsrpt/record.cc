// SPDX-License-Identifier: MIT
#include "tlsrpt/record.hh"

#include "dns/name.hh"
#include "util/strings.hh"

namespace strictmx::tlsrpt {
namespace {

bool is_wsp(char c) { return c == ' ' || c == '\t'; }

std::string_view trim_wsp(std::string_view s) {
    while (!s.empty() && is_wsp(s.front())) s.remove_prefix(1);
    while (!s.empty() && is_wsp(s.back())) s.remove_suffix(1);
    return s;
}

bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

// tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
bool is_ext_name(std::string_view n) {
    if (n.empty() || n.size() > 32 || !is_alnum(n[0])) return false;
    for (char c : n)
        if (!is_alnum(c) && c != '_' && c != '-' && c != '.') return false;
    return true;
}

// tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
bool is_ext_value(std::string_view v) {
    if (v.empty()) return false;
    for (unsigned char c : v)
        if (c < 0x21 || c > 0x7e || c == ';' || c == '=') return false;
    return true;
}

// RFC 3986 characters a URI may hold (unreserved, reserved, "%"); ";" and "," must be
// percent-encoded inside a tlsrpt-uri, so they never reach here.
bool is_uri_char(unsigned char c) {
    if (is_alnum(static_cast<char>(c))) return true;
    switch (c) {
        case '-': case '.': case '_': case '~': case ':': case '/': case '?': case '#':
        case '[': case ']': case '@': case '!': case '$': case '&': case '\'': case '(':
        case ')': case '*': case '+': case '=': case '%':
            return true;
        default:
            return false;
    }
}

int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

void add_uri(Record& r, std::string_view uri) {
    // scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) ":"
    auto colon = uri.find(':');
    bool ok = colon != std::string_view::npos && colon > 0;
    for (unsigned char c : uri) ok = ok && is_uri_char(c);
    if (!ok) {
        r.ignored.emplace_back(uri);
        return;
    }
    std::string scheme = to_lower(uri.substr(0, colon));
    std::string_view rest = uri.substr(colon + 1);
    if (scheme == "mailto") {
        // mailto:addr[,addr]?hfields (RFC 6068): the header fields are not ours to send.
        std::string_view to = rest.substr(0, rest.find('?'));
        std::string decoded;
        if (!percent_decode(to, decoded) || decoded.empty()) {
            r.ignored.emplace_back(uri);
            return;
        }
        for (auto a : split(decoded, ',')) {
            std::string_view addr = trim_wsp(a);
            if (!is_mail_address(addr)) {
                r.ignored.emplace_back(uri);
                continue;
            }
            r.destinations.push_back({Destination::Kind::Mailto, std::string(uri),
                                      std::string(addr)});
        }
    } else if (scheme == "https") {
        // https://host[:port]/...: a host is required.
        if (rest.size() < 3 || rest.substr(0, 2) != "//" || rest.size() == 2 || rest[2] == '/') {
            r.ignored.emplace_back(uri);
            return;
        }
        r.destinations.push_back({Destination::Kind::Https, std::string(uri), {}});
    } else {
        r.ignored.emplace_back(uri);
    }
}

}  // namespace

bool percent_decode(std::string_view in, std::string& out) {
    out.clear();
    for (std::size_t i = 0; i < in.size(); ++i) {
        char c = in[i];
        if (c == '%') {
            if (i + 2 >= in.size()) return false;
            int h = hexval(in[i + 1]), l = hexval(in[i + 2]);
            if (h < 0 || l < 0) return false;
            c = static_cast<char>(h * 16 + l);
            i += 2;
        }
        if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) return false;
        out.push_back(c);
    }
    return true;
}

bool is_mail_address(std::string_view addr) {
    auto at = addr.rfind('@');
    if (at == std::string_view::npos || at == 0 || at + 1 >= addr.size()) return false;
    if (addr.size() > 254 || at > 64) return false;
    std::string_view local = addr.substr(0, at);
    for (unsigned char c : local) {
        // atext and "." (RFC 5322 dot-atom); no quoted local parts, blanks or brackets.
        if (c <= 0x20 || c >= 0x7f) return false;
        switch (c) {
            case '(': case ')': case '<': case '>': case '[': case ']': case ':': case ';':
            case '@': case '\\': case ',': case '"':
                return false;
            default:
                break;
        }
    }
    if (local.front() == '.' || local.back() == '.' ||
        local.find("..") != std::string_view::npos)
        return false;
    std::string domain = to_lower(addr.substr(at + 1));
    return dns::is_hostname(domain);
}

Record parse_record(std::string_view text) {
    Record r;
    constexpr std::string_view kVersion = "v=TLSRPTv1";
    if (text.substr(0, kVersion.size()) != kVersion) {
        r.why = "does not begin with v=TLSRPTv1";
        return r;
    }
    std::string_view rest = text.substr(kVersion.size());
    // After the version: nothing but blanks, or a field-delim.
    std::string_view after = trim_wsp(rest);
    if (after.empty()) {
        r.why = "no rua field";
        return r;
    }
    if (after.front() != ';') {
        r.why = "v=TLSRPTv1 is not followed by ';'";
        return r;
    }
    bool have_rua = false;
    auto fields = split(after.substr(1), ';');
    for (std::size_t i = 0; i < fields.size(); ++i) {
        std::string_view f = trim_wsp(fields[i]);
        if (f.empty()) {
            // Only the last may be empty: "v=TLSRPTv1; rua=x;" (a trailing field-delim).
            if (i + 1 == fields.size()) break;
            r.why = "empty field";
            return r;
        }
        auto eq = f.find('=');
        if (eq == std::string_view::npos) {
            r.why = "field without '='";
            return r;
        }
        std::string_view name = f.substr(0, eq), value = f.substr(eq + 1);
        if (name == "rua") {
            have_rua = true;
            for (auto u : split(value, ',')) {
                std::string_view uri = trim_wsp(u);
                if (uri.empty()) {
                    r.why = "empty URI in rua";
                    return r;
                }
                add_uri(r, uri);
            }
        } else if (is_ext_name(name) && is_ext_value(value)) {
            continue;  // an extension: ignored
        } else {
            r.why = "malformed field";
            return r;
        }
    }
    if (!have_rua) {
        r.why = "no rua field";
        return r;
    }
    if (r.destinations.empty()) {
        r.why = "no mailto: or https: URI in rua";
        return r;
    }
    r.valid = true;
    return r;
}

}  // namespace strictmx::tlsrpt
