// SPDX-License-Identifier: MIT
// RFC 8460 section 4 reports and section 5 envelopes: the JSON, its gzip file name, and the
// multipart/report mail that carries it.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "tlsrpt/store.hh"
#include "util/clock.hh"

namespace strictmx::tlsrpt {

struct Submitter {
    std::string organization_name;
    std::string contact_info;
    std::string domain;  // the contact_info's domain: TLS-Report-Submitter, file names
};

// The domain of contact_info ("tlsrpt@example.org" or a mailto:/https: URI); empty when it
// has none that is a host name.
std::string submitter_domain(std::string_view contact_info);

// A report-id that is also a valid RFC 5322 msg-id without its angle brackets:
// DAY.UID.DOMAIN@SUBMITTER, dot-atom text on both sides (RFC 8460 section 5.3.1).
std::string report_id(const Group& g, const std::string& uid, const Submitter& s);

// The report JSON (I-JSON: UTF-8, no duplicate members, integers in range).
std::string report_json(const Group& g, const std::vector<PolicyCounts>& policies,
                        const Submitter& s, const std::string& id);

// submitter!policy-domain!begin!end!uid.json.gz, begin and end in Unix seconds.
std::string report_filename(const Group& g, const std::string& uid, const Submitter& s);

std::string gzip(std::string_view data);
std::string gunzip(std::string_view data);  // for tests; empty on error

// The mail for one mailto: destination (RFC 8460 section 5.3), CRLF line ends, every line
// under 998 octets.
std::string report_mail(const Group& g, const std::string& id, const std::string& filename,
                        const std::string& gz, const Submitter& s, const std::string& from,
                        const std::string& to, UnixTime now, const std::string& boundary);

std::string base64(std::string_view data, std::size_t line = 76);

}  // namespace strictmx::tlsrpt
