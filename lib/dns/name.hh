// SPDX-License-Identifier: MIT
// Domain names: validation, IDNA conversion and classification of Postfix policy keys.
#pragma once

#include <string>
#include <string_view>

namespace strictmx::dns {

// True for an LDH host name in A-label form: 1-63 octet labels of letters, digits and
// hyphens (not at either end of a label), at most 253 octets, at least two labels, and a
// last label that is not all digits (so no IPv4 literal passes). Case-insensitive.
bool is_hostname(std::string_view name);

// True when `prefix` + "." + `name` still fits a DNS owner name (255 octets on the wire, 253 in
// presentation form): "_mta-sts." or "_25._tcp." before a long valid name may not.
bool fits_with_prefix(std::string_view prefix, std::string_view name);

// The registered domain of a host name under the public suffix list ("a.b.example.co.uk" ->
// "example.co.uk"); the name itself when it is a public suffix or the list does not know it.
std::string registered_domain(std::string_view name);

// True for a textual IPv4 or IPv6 address.
bool is_ip_literal(std::string_view s);

enum class KeyKind {
    Domain,       // an ordinary destination domain: policies apply
    ParentProbe,  // ".example.com": Postfix's parent-domain lookup
    NextHop,      // "[host]", "[host]:port" or "host:port": explicit next hop, no MX lookup
    IpLiteral,    // an address
    Invalid,      // not a domain name
};

struct Key {
    KeyKind kind = KeyKind::Invalid;
    std::string domain;  // lowercase A-label form, no trailing dot (Domain only)
    const char* why = "";
};

// Classify a lookup key as Postfix sends it (smtp_tls_policy_maps).
Key classify_key(std::string_view raw);

// Convert a lowercase UTF-8 name to A-labels (IDNA2008, UTS#46 non-transitional).
// Returns an empty string on failure. Pure ASCII input is returned lowercased.
std::string to_alabel(std::string_view name);

}  // namespace strictmx::dns
