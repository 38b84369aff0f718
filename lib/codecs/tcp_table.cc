// SPDX-License-Identifier: MIT
// Line codec for the Postfix tcp_table protocol.
#include "codecs/tcp_table.hh"

namespace strictmx::tcp_table {
namespace {
int hexval(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}
}  // namespace

std::optional<std::string> decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] != '%') {
            out += s[i];
            continue;
        }
        if (i + 2 >= s.size()) return std::nullopt;
        int hi = hexval(s[i + 1]), lo = hexval(s[i + 2]);
        if (hi < 0 || lo < 0) return std::nullopt;
        out += static_cast<char>(hi * 16 + lo);
        i += 2;
    }
    return out;
}

namespace {
// %XX-encode '%', control and non-ASCII bytes, and the space too unless `keep_space`.
std::string percent_encode(std::string_view s, bool keep_space) {
    static constexpr char kHex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        bool plain = c > 0x20 || (keep_space && c == 0x20);
        if (c == '%' || !plain || c >= 0x7f) {
            out += '%';
            out += kHex[c >> 4];
            out += kHex[c & 0xf];
        } else {
            out += static_cast<char>(c);
        }
    }
    return out;
}
}  // namespace

std::string encode(std::string_view s) { return percent_encode(s, false); }

std::string encode_reply_text(std::string_view s) { return percent_encode(s, true); }

ParseResult parse_request(std::string_view in) {
    ParseResult r;
    std::size_t nl = in.find('\n');
    if (nl == std::string_view::npos) {
        if (in.size() > kMaxRequest) {
            r.status = ParseResult::Status::Malformed;
            r.reason = "request line too long";
        }
        return r;
    }
    if (nl > kMaxRequest) {
        r.status = ParseResult::Status::Malformed;
        r.reason = "request line too long";
        return r;
    }
    std::string_view line = in.substr(0, nl);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    r.consumed = nl + 1;
    if (line.size() < 4 || line.substr(0, 4) != "get ") {
        r.status = ParseResult::Status::Malformed;
        r.reason = "unsupported request (only 'get KEY' is supported)";
        return r;
    }
    auto key = decode(line.substr(4));
    if (!key || key->empty()) {
        r.status = ParseResult::Status::Malformed;
        r.reason = key ? "empty key" : "bad %XX escape in key";
        return r;
    }
    r.status = ParseResult::Status::Complete;
    r.key = std::move(*key);
    return r;
}

std::optional<std::string> reply(int code, std::string_view text) {
    std::string line = std::to_string(code);
    line += ' ';
    // The client decodes the whole reply text; our data never contains '%' or newlines,
    // but encoding keeps hostile text from breaking the line.
    std::string enc = encode_reply_text(text);
    if (line.size() + enc.size() + 1 > kMaxReply) {
        if (code == 200) return std::nullopt;
        enc.resize(kMaxReply - line.size() - 1);
        // Do not leave a partial %XX escape at the end.
        std::size_t pct = enc.rfind('%');
        if (pct != std::string::npos && pct + 3 > enc.size()) enc.resize(pct);
    }
    line += enc;
    line += '\n';
    return line;
}

}  // namespace strictmx::tcp_table
