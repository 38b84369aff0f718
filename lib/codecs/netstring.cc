// SPDX-License-Identifier: MIT
// Netstring codec for the Postfix socketmap protocol.
#include "codecs/netstring.hh"

namespace strictmx::netstring {

ParseResult parse(std::string_view in, std::size_t max_len) {
    ParseResult r;
    std::size_t len = 0;
    std::size_t i = 0;
    for (; i < in.size(); ++i) {
        char c = in[i];
        if (c == ':') break;
        if (c < '0' || c > '9') {
            r.status = ParseResult::Status::Malformed;
            r.reason = "netstring length is not a decimal number";
            return r;
        }
        len = len * 10 + static_cast<std::size_t>(c - '0');
        if (len > max_len || i >= 10) {
            r.status = ParseResult::Status::Malformed;
            r.reason = "netstring longer than the protocol limit";
            return r;
        }
    }
    if (i == in.size()) return r;  // no ':' yet
    if (i == 0) {
        r.status = ParseResult::Status::Malformed;
        r.reason = "netstring has an empty length";
        return r;
    }
    std::size_t start = i + 1;
    if (in.size() < start + len + 1) return r;
    if (in[start + len] != ',') {
        r.status = ParseResult::Status::Malformed;
        r.reason = "netstring does not end with ','";
        return r;
    }
    r.status = ParseResult::Status::Complete;
    r.payload = in.substr(start, len);
    r.consumed = start + len + 1;
    return r;
}

std::string encode(std::string_view payload) {
    std::string out = std::to_string(payload.size());
    out.reserve(out.size() + payload.size() + 2);
    out += ':';
    out += payload;
    out += ',';
    return out;
}

}  // namespace strictmx::netstring
