// SPDX-License-Identifier: MIT
// Line codec for the Postfix tcp_table protocol (tcp_table(5), dict_tcp.c).
//
// Request: "get SPACE key NEWLINE", key %XX-encoded. Replies: "200 data", "500 text",
// "400 text", each one line; the client reads at most 4,096 bytes including the newline.
// The server encodes '%', whitespace and non-printing bytes as %XX.
#pragma once

#include <cstddef>
#include <optional>
#include <string>
#include <string_view>

namespace strictmx::tcp_table {

inline constexpr std::size_t kMaxReply = 4096;      // dict_tcp.c: reply limit incl. newline
inline constexpr std::size_t kMaxRequest = 10'000;  // longest request line we accept

struct ParseResult {
    enum class Status { NeedMore, Complete, Malformed } status = Status::NeedMore;
    std::size_t consumed = 0;
    std::string key;          // decoded (Complete only)
    const char* reason = "";  // Malformed only
};

// Parse one request line from the front of `in`. Accepts LF or CRLF line ends.
ParseResult parse_request(std::string_view in);

// %XX-decode; nullopt on a bad escape.
std::optional<std::string> decode(std::string_view s);
// %XX-encode '%', whitespace, non-printing and non-ASCII bytes.
std::string encode(std::string_view s);

// Reply text keeps spaces literal (they separate policy attributes; Postfix accepts text
// without '%' or newlines as is) and encodes '%', control and non-ASCII bytes.
std::string encode_reply_text(std::string_view s);

// Build a reply line with its newline; the text is encoded and cut so the whole line fits
// in kMaxReply. Returns nullopt for code 200 when the data does not fit (truncating data
// would change its meaning).
std::optional<std::string> reply(int code, std::string_view text);

}  // namespace strictmx::tcp_table
