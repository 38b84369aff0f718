// SPDX-License-Identifier: MIT
// MTA-STS TXT record at _mta-sts.DOMAIN (RFC 8461 section 3.1).
//
//   sts-text-record = sts-version 1*(*WSP field-delim *WSP sts-field) [field-delim]
//   sts-version     = %s"v=STSv1"
//   sts-id          = %s"id=" 1*32(ALPHA / DIGIT)
//   sts-extension   = sts-ext-name "=" sts-ext-value
//   sts-ext-name    = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
//   sts-ext-value   = 1*(%x21-3A / %x3C / %x3E-7E)
//
// Records not starting with "v=STSv1" are discarded; exactly one must remain (section 3.1).
// Character-strings of one record are concatenated before parsing. Trailing white space
// after the last field is tolerated.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "util/error.hh"

namespace strictmx::sts {

struct TxtRecord {
    std::string id;
};

// Parse one (already concatenated) record.
Result<TxtRecord> parse_txt_record(std::string_view record);

// Apply the section 3.1 selection to all TXT records of the name. NotFound when no record
// (or more than one) starts with "v=STSv1", or the one that does is invalid.
Result<TxtRecord> select_txt(const std::vector<std::string>& records);

}  // namespace strictmx::sts
