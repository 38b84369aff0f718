// SPDX-License-Identifier: MIT
// The DNS seam: an asynchronous resolver that reports the DNSSEC state of every answer.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strictmx::dns {

// DNSSEC state of an answer (unbound's terms). For a chain, the weakest link wins:
// Bogus < Indeterminate < Insecure < Secure.
enum class Security { Bogus, Indeterminate, Insecure, Secure };
const char* security_name(Security s);
Security weakest(Security a, Security b);

namespace rrtype {
inline constexpr std::uint16_t A = 1;
inline constexpr std::uint16_t CNAME = 5;
inline constexpr std::uint16_t MX = 15;
inline constexpr std::uint16_t TXT = 16;
inline constexpr std::uint16_t AAAA = 28;
inline constexpr std::uint16_t DNSKEY = 48;
inline constexpr std::uint16_t TLSA = 52;
}  // namespace rrtype
const char* type_name(std::uint16_t type);

struct Answer {
    // Ok: data present. NoData/NxDomain: authenticated or plain denial. Fail: SERVFAIL,
    // timeout, refused, or a bogus (DNSSEC-invalid) answer.
    enum class Status { Ok, NoData, NxDomain, Fail } status = Status::Fail;
    Security security = Security::Indeterminate;
    std::uint32_t ttl = 0;
    std::vector<std::string> rdata;  // raw RDATA, one entry per record
    std::string canonical_name;      // after CNAMEs (empty when unknown)
    std::string why;                 // failure or bogus reason, for logs

    bool failed() const { return status == Status::Fail || security == Security::Bogus; }
};
const char* status_name(Answer::Status s);

class Resolver {
  public:
    using Callback = std::function<void(Answer)>;
    virtual ~Resolver() = default;
    // The callback runs later on the owner's event loop, never from inside resolve().
    virtual void resolve(const std::string& name, std::uint16_t type, Callback cb) = 0;
};

// RDATA decoders (RFC 1035 3.3.9, 3.3.14). Pure functions over hostile bytes.
struct Mx {
    std::uint16_t preference = 0;
    // Lowercase presentation form, no trailing dot; "" is the null MX "." (RFC 7505). Not
    // yet a host name: the caller checks is_hostname() before using it.
    std::string host;
};
std::optional<Mx> parse_mx(std::string_view rdata);
// A TXT record's character-strings concatenated (RFC 8461 3.1, RFC 8460 3).
std::optional<std::string> parse_txt(std::string_view rdata);
// An uncompressed wire-format name at the front of `in`, in lowercase presentation form with
// every octet other than a letter, digit or hyphen escaped as \DDD; advances `in`.
std::optional<std::string> parse_wire_name(std::string_view& in);

}  // namespace strictmx::dns
