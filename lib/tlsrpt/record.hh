// SPDX-License-Identifier: MIT
// The `_smtp._tls` TXT record (RFC 8460 section 3): where a domain wants its reports.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace strictmx::tlsrpt {

struct Destination {
    enum class Kind { Mailto, Https };
    Kind kind = Kind::Mailto;
    std::string uri;      // as the record gives it (https: the URL to POST to)
    std::string address;  // mailto: the percent-decoded addr-spec
};

struct Record {
    bool valid = false;
    std::string why;                        // when not valid: what is wrong, for one log line
    std::vector<Destination> destinations;  // mailto: and https: URIs, in record order
    std::vector<std::string> ignored;       // other URIs (kept for the log)
};

// Parse one record. RFC 8460's ABNF: "v=TLSRPTv1" first (case-sensitive), then fields
// separated by ";" with optional blanks or tabs around it, a trailing ";" allowed; "rua="
// (case-sensitive) with URIs separated by "," (blanks allowed around it), in any field
// position, more than one rua field adding up; extensions `name=value` anywhere after the
// version. A record without a usable rua URI is not valid: nothing can be delivered.
Record parse_record(std::string_view text);

// Percent-decode; false on a malformed escape or when the result holds a NUL or control byte.
bool percent_decode(std::string_view in, std::string& out);

// True for an addr-spec this tool will hand to sendmail: one "@", a dot-atom or quoted-string
// free local part of printable ASCII without blanks, a host name after it.
bool is_mail_address(std::string_view addr);

}  // namespace strictmx::tlsrpt
