// SPDX-License-Identifier: MIT
// Netstring codec for the Postfix socketmap protocol (socketmap_table(5)).
//
// Wire format: decimal length, ':', that many bytes, ','. Postfix sends requests of at most
// 10,000 bytes and accepts replies of at most 100,000 bytes. A length with leading zeros is
// tolerated as Postfix's own reader does; a length longer than the limit is malformed at once.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

namespace strictmx::netstring {

inline constexpr std::size_t kMaxRequest = 10'000;  // dict_sockmap.c: client request limit
inline constexpr std::size_t kMaxReply = 100'000;   // dict_sockmap.c: client reply limit

struct ParseResult {
    enum class Status { NeedMore, Complete, Malformed } status = Status::NeedMore;
    std::size_t consumed = 0;  // bytes of input used (Complete only)
    std::string_view payload;  // view into the input (Complete only)
    const char* reason = "";   // Malformed only
};

// Parse one netstring from the front of `in`, rejecting payloads over `max_len`.
ParseResult parse(std::string_view in, std::size_t max_len = kMaxRequest);

std::string encode(std::string_view payload);

}  // namespace strictmx::netstring
