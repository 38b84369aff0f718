// SPDX-License-Identifier: MIT
// Fuzz target: MX, TXT and TLSA RDATA decoders. Oracle: an MX host is lowercase, at most 253
// octets when it is a host name (a name with escaped octets, \DDD, at most four times that); a host that passes the LDH check is exactly the wire name's labels (a label
// holding '.', or any byte an LDH name cannot have, must not come out looking like a valid
// name); TXT character-strings re-encode to RDATA that decodes to the same text; TLSA fields
// are the RDATA bytes, usable() follows RFC 7672 section 3.1, and text() is one short line.
#include <cstdint>
#include <string>
#include <string_view>

#include "dane/dane.hh"
#include "dns/name.hh"
#include "dns/resolver.hh"
#include "oracle.hh"

namespace dns = strictmx::dns;
using strictmx::fuzz::check;

namespace {
void check_mx(std::string_view in) {
    auto mx = dns::parse_mx(in);
    if (!mx) return;
    check(in.size() >= 3, "MX from fewer than 3 bytes", in);
    check(mx->preference ==
              ((static_cast<unsigned char>(in[0]) << 8) | static_cast<unsigned char>(in[1])),
          "MX preference is not the first two bytes", in);
    check(mx->host.size() <= (dns::is_hostname(mx->host) ? 253u : 4u * 253u),
          "MX host longer than 253 octets (four times that escaped)", in);
    check(strictmx::fuzz::lower(mx->host) == mx->host, "MX host is not lowercase", in);
    std::string_view wire = in.substr(2);
    if (mx->host.empty()) {
        check(wire.size() == 1 && wire[0] == '\0', "empty MX host from a name other than '.'", in);
        return;
    }
    if (dns::is_hostname(mx->host) || strictmx::fuzz::plain_hostname(mx->host)) {
        check(strictmx::fuzz::wire_name(mx->host) == strictmx::fuzz::lower(wire),
              "MX host passes as a host name but is not the wire name's labels", in);
    }
    // Case does not change the name: the lowercased RDATA decodes to the same host.
    auto again = dns::parse_mx(std::string(in.substr(0, 2)) + strictmx::fuzz::lower(wire));
    check(again && again->host == mx->host, "lowercased RDATA decodes to another host", in);
}

void check_txt(std::string_view in) {
    auto txt = dns::parse_txt(in);
    if (!txt) return;
    check(txt->size() < in.size(), "TXT text not shorter than its RDATA", in);
    std::string rd;
    for (std::size_t i = 0; i < txt->size() || i == 0; i += 255) {
        std::string_view chunk = std::string_view(*txt).substr(i, 255);
        rd += static_cast<char>(chunk.size());
        rd += chunk;
    }
    auto again = dns::parse_txt(rd);
    check(again && *again == *txt, "TXT text does not survive re-encoding", in);
}

void check_tlsa(std::string_view in) {
    auto t = strictmx::dane::parse_tlsa(in);
    if (!t) {
        check(in.size() < 3, "TLSA refused with three or more bytes", in);
        return;
    }
    check(in.size() >= 3 && t->usage == static_cast<unsigned char>(in[0]) &&
              t->selector == static_cast<unsigned char>(in[1]) &&
              t->mtype == static_cast<unsigned char>(in[2]) && t->data == in.substr(3),
          "TLSA fields are not the RDATA bytes", in);
    bool usable = (t->usage == 2 || t->usage == 3) && (t->selector == 0 || t->selector == 1) &&
                  ((t->mtype == 0 && !t->data.empty()) || (t->mtype == 1 && t->data.size() == 32) ||
                   (t->mtype == 2 && t->data.size() == 64));
    check(t->usable() == usable, "TLSA usable() disagrees with RFC 7672 3.1", in);
    std::string text = t->text();
    check(text.size() <= 3 * 4 + 64 + 3, "TLSA text() is not bounded", text);
    check(!strictmx::fuzz::has_control(text), "TLSA text() holds a control byte", text);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    check_mx(in);
    check_txt(in);
    check_tlsa(in);
    // A name alone, as parse_wire_name reads it for every owner and target.
    std::string_view rest = in;
    if (auto name = dns::parse_wire_name(rest)) {
        check(name->size() <= (dns::is_hostname(*name) ? 253u : 4u * 253u),
              "wire name longer than 253 octets (four times that escaped)", in);
        check(rest.size() < in.size(), "parse_wire_name consumed nothing", in);
    }
    return 0;
}
