// SPDX-License-Identifier: MIT
// MTA-STS TXT record parser (RFC 8461 section 3.1).
#include "sts/txt.hh"

#include "util/strings.hh"

namespace strictmx::sts {
namespace {
bool is_alnum(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
bool is_wsp(char c) {
    return c == ' ' || c == '\t';
}

bool starts_as_sts(std::string_view r) {
    constexpr std::string_view kVersion = "v=STSv1";
    if (r.substr(0, kVersion.size()) != kVersion) return false;
    r.remove_prefix(kVersion.size());
    while (!r.empty() && is_wsp(r.front())) r.remove_prefix(1);
    return !r.empty() && r.front() == ';';
}
}  // namespace

Result<TxtRecord> parse_txt_record(std::string_view r) {
    constexpr std::string_view kVersion = "v=STSv1";
    if (r.substr(0, kVersion.size()) != kVersion)
        return make_error(ErrorClass::NotFound, "TXT record does not start with v=STSv1");
    std::size_t pos = kVersion.size();
    TxtRecord rec;
    bool have_id = false;
    int fields = 0;
    for (;;) {
        while (pos < r.size() && is_wsp(r[pos])) ++pos;
        if (pos == r.size()) break;
        if (r[pos] != ';') return make_error(ErrorClass::NotFound, "TXT record: expected ';'");
        ++pos;
        while (pos < r.size() && is_wsp(r[pos])) ++pos;
        if (pos == r.size()) break;  // optional final delimiter
        // One field up to the next ';' or white space.
        std::size_t end = pos;
        while (end < r.size() && r[end] != ';' && !is_wsp(r[end])) ++end;
        std::string_view field = r.substr(pos, end - pos);
        pos = end;
        std::size_t eq = field.find('=');
        if (eq == std::string_view::npos || eq == 0)
            return make_error(ErrorClass::NotFound, "TXT record: field without name=value");
        std::string_view name = field.substr(0, eq);
        std::string_view value = field.substr(eq + 1);
        if (value.empty()) return make_error(ErrorClass::NotFound, "TXT record: empty field value");
        ++fields;
        if (name == "id") {
            if (have_id) continue;  // section 3.2: duplicated fields, the first counts
            if (value.size() > 32)
                return make_error(ErrorClass::NotFound, "TXT record: id longer than 32 characters");
            for (char c : value) {
                if (!is_alnum(c))
                    return make_error(ErrorClass::NotFound,
                                      "TXT record: id is not 1-32 letters and digits");
            }
            rec.id = std::string(value);
            have_id = true;
            continue;
        }
        if (name.size() > 32 || !is_alnum(name.front()))
            return make_error(ErrorClass::NotFound, "TXT record: bad extension name");
        for (char c : name) {
            if (!is_alnum(c) && c != '_' && c != '-' && c != '.')
                return make_error(ErrorClass::NotFound, "TXT record: bad extension name");
        }
        for (char c : value) {
            auto u = static_cast<unsigned char>(c);
            if (u < 0x21 || u > 0x7e || c == '=')
                return make_error(ErrorClass::NotFound, "TXT record: bad extension value");
        }
    }
    if (fields == 0 || !have_id) return make_error(ErrorClass::NotFound, "TXT record has no id");
    return rec;
}

Result<TxtRecord> select_txt(const std::vector<std::string>& records) {
    const std::string* chosen = nullptr;
    int count = 0;
    for (const auto& r : records) {
        if (starts_as_sts(r)) {
            ++count;
            chosen = &r;
        }
    }
    if (count == 0) return make_error(ErrorClass::NotFound, "no v=STSv1 TXT record");
    if (count > 1) return make_error(ErrorClass::NotFound, "more than one v=STSv1 TXT record");
    return parse_txt_record(*chosen);
}

}  // namespace strictmx::sts
