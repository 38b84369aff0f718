// SPDX-License-Identifier: MIT
// Fuzz target: the _smtp._tls record parser (RFC 8460 section 3). Oracle: an accepted record
// starts "v=TLSRPTv1" and has at least one destination; every mailto: address passes the
// address check and holds no control byte; every https: destination starts "https://" (any
// case) and holds no blank or control byte; an extension appended after the record changes
// nothing; a record not starting with the version is never accepted.
#include <cstdint>
#include <string>

#include "oracle.hh"
#include "tlsrpt/record.hh"

namespace t = strictmx::tlsrpt;
using strictmx::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    auto r = t::parse_record(in);
    if (!in.starts_with("v=TLSRPTv1")) check(!r.valid, "accepted without the version", in);
    if (!r.valid) return 0;
    check(!r.destinations.empty(), "valid without a destination", in);
    for (const auto& d : r.destinations) {
        if (d.kind == t::Destination::Kind::Mailto) {
            check(t::is_mail_address(d.address), "a mailto: address that is not one", in);
            for (unsigned char c : d.address)
                check(c > 0x20 && c < 0x7f, "a control byte or blank in an address", in);
        } else {
            check(d.uri.size() > 8, "short https URI", in);
            std::string scheme = d.uri.substr(0, 8);
            for (auto& c : scheme) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
            check(scheme == "https://", "an https destination without https://", in);
            for (unsigned char c : d.uri)
                check(c > 0x20 && c < 0x7f, "a control byte or blank in a URI", in);
        }
    }
    std::string trimmed = in;
    while (!trimmed.empty() && (trimmed.back() == ' ' || trimmed.back() == '\t'))
        trimmed.pop_back();
    if (!trimmed.empty() && trimmed.back() != ';') {
        auto again = t::parse_record(trimmed + " ; ext.x-1=v");
        check(again.valid && again.destinations.size() == r.destinations.size(),
              "an extension after the record changed it", in);
    }
    return 0;
}
