// SPDX-License-Identifier: MIT
// Fuzz target: MTA-STS TXT record parser and the section 3.1 selection. Oracle: an accepted
// record starts "v=STSv1", its id is 1-32 letters and digits found in the record as
// "id=ID", and the canonical record "v=STSv1; id=ID;" parses to the same id; the selection
// accepts exactly one v=STSv1 record (two copies are no policy, junk records beside it are
// ignored).
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "oracle.hh"
#include "sts/txt.hh"

namespace sts = strictmx::sts;
using strictmx::fuzz::check;

namespace {
bool alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    auto r = sts::parse_txt_record(in);
    if (r) {
        check(in.starts_with("v=STSv1"), "accepted a record not starting with v=STSv1", in);
        check(!r->id.empty() && r->id.size() <= 32, "id is not 1-32 characters", in);
        for (char c : r->id) check(alnum(c), "id holds a byte other than a letter or digit", in);
        check(in.find("id=" + r->id) != std::string::npos, "id is not in the record", in);
        auto again = sts::parse_txt_record("v=STSv1; id=" + r->id + ";");
        check(again && again->id == r->id, "the canonical record does not parse to the id", in);
    }

    auto one = sts::select_txt({in});
    check(one.has_value() == r.has_value(), "select_txt({r}) disagrees with parse_txt_record(r)",
          in);
    if (one) check(one->id == r->id, "select_txt picked another id", in);
    auto junk = sts::select_txt({"v=spf1 -all", in, "x"});
    check(junk.has_value() == r.has_value(), "records without v=STSv1 changed the selection", in);
    if (in.starts_with("v=STSv1"))
        check(!sts::select_txt({in, in}).has_value(), "two v=STSv1 records were accepted", in);
    return 0;
}
