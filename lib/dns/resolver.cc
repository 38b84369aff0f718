// SPDX-License-Identifier: MIT
// DNS answer helpers and RDATA decoders.
#include "dns/resolver.hh"

#include "util/strings.hh"

namespace strictmx::dns {

const char* security_name(Security s) {
    switch (s) {
        case Security::Secure:
            return "secure";
        case Security::Insecure:
            return "insecure";
        case Security::Bogus:
            return "bogus";
        case Security::Indeterminate:
            return "indeterminate";
    }
    return "indeterminate";
}

Security weakest(Security a, Security b) {
    return a < b ? a : b;
}

const char* type_name(std::uint16_t type) {
    switch (type) {
        case rrtype::A:
            return "A";
        case rrtype::MX:
            return "MX";
        case rrtype::TXT:
            return "TXT";
        case rrtype::AAAA:
            return "AAAA";
        case rrtype::TLSA:
            return "TLSA";
    }
    return "TYPE?";
}

const char* status_name(Answer::Status s) {
    switch (s) {
        case Answer::Status::Ok:
            return "ok";
        case Answer::Status::NoData:
            return "nodata";
        case Answer::Status::NxDomain:
            return "nxdomain";
        case Answer::Status::Fail:
            return "fail";
    }
    return "fail";
}

std::optional<std::string> parse_wire_name(std::string_view& in) {
    // Presentation form (RFC 1035 5.1, RFC 4343): a label may hold any octet, so every octet
    // other than a letter, digit or hyphen is written as \DDD. A "." inside a label, a blank,
    // "=" or NUL therefore never reads as part of a host name: is_hostname() rejects the
    // result, and a log line shows exactly what DNS sent.
    std::string name;
    std::size_t total = 0;
    for (;;) {
        if (in.empty()) return std::nullopt;
        auto len = static_cast<unsigned char>(in.front());
        in.remove_prefix(1);
        if (len == 0) break;
        if (len > 63 || in.size() < len) return std::nullopt;  // no compression in RDATA here
        total += len + 1;
        if (total > 254) return std::nullopt;
        if (!name.empty()) name += '.';
        for (unsigned char c : in.substr(0, len)) {
            if (c >= 'A' && c <= 'Z') c = static_cast<unsigned char>(c - 'A' + 'a');
            bool ldh = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
            if (ldh) {
                name += static_cast<char>(c);
            } else {
                name += '\\';
                name += static_cast<char>('0' + c / 100);
                name += static_cast<char>('0' + c / 10 % 10);
                name += static_cast<char>('0' + c % 10);
            }
        }
        in.remove_prefix(len);
    }
    return name;
}

std::optional<Mx> parse_mx(std::string_view rdata) {
    if (rdata.size() < 3) return std::nullopt;
    Mx mx;
    mx.preference = static_cast<std::uint16_t>((static_cast<unsigned char>(rdata[0]) << 8) |
                                               static_cast<unsigned char>(rdata[1]));
    rdata.remove_prefix(2);
    auto host = parse_wire_name(rdata);
    if (!host || !rdata.empty()) return std::nullopt;
    mx.host = std::move(*host);
    return mx;
}

std::optional<std::string> parse_txt(std::string_view rdata) {
    std::string out;
    if (rdata.empty()) return std::nullopt;
    while (!rdata.empty()) {
        auto len = static_cast<unsigned char>(rdata.front());
        rdata.remove_prefix(1);
        if (rdata.size() < len) return std::nullopt;
        out.append(rdata.substr(0, len));
        rdata.remove_prefix(len);
    }
    return out;
}

}  // namespace strictmx::dns
