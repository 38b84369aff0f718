// SPDX-License-Identifier: MIT
// DANE for SMTP (RFC 7672, RFC 7671): TLSA records and the decision whether DANE applies to
// a destination domain, from DNSSEC-validated MX, address and TLSA answers.
//
//   MX RRset secure, every MX host has secure addresses and a usable TLSA RRset -> dane-only
//   MX RRset secure, some TLSA exists (partial, or only unusable records)       -> dane
//   MX RRset secure without any TLSA, or MX RRset insecure                      -> none (MTA-STS
//   may apply) any bogus answer, SERVFAIL or timeout on the way                            -> fail
//   (TEMP)
//
// Usable (RFC 7672 3.1): usage 2 (DANE-TA) or 3 (DANE-EE), selector 0 or 1, matching type 0
// (non-empty), 1 (32 octets) or 2 (64 octets). TLSA of a host whose address records are not
// secure is not used (RFC 7672 2.2.2).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dns/resolver.hh"

namespace strictmx::dane {

struct Tlsa {
    std::uint8_t usage = 0;
    std::uint8_t selector = 0;
    std::uint8_t mtype = 0;
    std::string data;
    bool usable() const;
    std::string text() const;  // "3 1 1 ab12..." for logs
};
std::optional<Tlsa> parse_tlsa(std::string_view rdata);

// The TLSA base name for SMTP on port 25 (RFC 7672 2.2.3).
std::string tlsa_name(const std::string& host);

struct HostAnswers {
    std::string host;
    dns::Answer a, aaaa, tlsa;
    // The host is a secure CNAME: TLSA at the expanded name, used when it has records
    // (RFC 7672 2.2.3), else the TLSA at the original name counts.
    bool expanded_queried = false;
    std::string expanded;
    dns::Answer tlsa_expanded;
    // The host is a CNAME whose expansion is insecure: its own CNAME record, looked up
    // alone. When that record is signed, the original name is in a signed zone and its TLSA
    // counts (RFC 7672 2.2.3: with an insecure expansion only the original name is used).
    bool cname_queried = false;
    dns::Answer cname;
};

enum class Kind { None, Dane, DaneOnly, Fail };
const char* kind_name(Kind k);

struct Outcome {
    Kind kind = Kind::None;
    std::string why;
    dns::Answer failure;             // Fail: the answer that failed (its class picks the reply)
    std::uint32_t ttl = 0;           // smallest TTL of the answers used
    std::vector<std::string> notes;  // one line per record and state, for `strictmx query`
    // Dane: no MX host has a usable TLSA RRset (TLSA records exist, all unusable): DANE
    // applies (Postfix requires TLS) but authenticates no host (RFC 7672 section 3.1).
    bool no_usable_tlsa = false;
};

// mx: the domain's MX answer (already known to be usable); hosts: the MX hosts in preference
// order (the domain itself for an implicit MX) with their answers.
Outcome evaluate(const std::string& domain, const dns::Answer& mx,
                 const std::vector<HostAnswers>& hosts);

}  // namespace strictmx::dane
