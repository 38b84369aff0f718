// SPDX-License-Identifier: MIT
// Fuzz target: netstring parser (socketmap framing). Oracle: a complete frame is exactly
// LEN ':' LEN-bytes ',' with LEN within the limit, encode() rebuilds it, every proper prefix
// of it still needs more bytes (a reader that sees the frame in pieces gets the same
// answer), and no input makes the parser wait for more than one maximal frame.
#include <cstdint>
#include <string>
#include <string_view>

#include "codecs/netstring.hh"
#include "oracle.hh"

namespace ns = strictmx::netstring;
using strictmx::fuzz::check;
using Status = ns::ParseResult::Status;

namespace {
void check_frame(std::string_view in, std::size_t max_len) {
    auto r = ns::parse(in, max_len);
    switch (r.status) {
        case Status::NeedMore:
            // At most 10 length digits (leading zeros included), ':', max_len bytes, ','.
            check(in.size() <= 10 + 1 + max_len, "NeedMore after more than one maximal frame", in);
            check(in.find(',') == std::string_view::npos || in.find(':') != std::string_view::npos,
                  "NeedMore on a ',' before any ':'", in);
            return;
        case Status::Malformed:
            check(r.reason && *r.reason, "Malformed without a reason", in);
            return;
        case Status::Complete:
            break;
    }
    std::size_t colon = in.find(':');
    check(colon != std::string_view::npos && colon > 0, "Complete without a length", in);
    std::string_view digits = in.substr(0, colon);
    std::size_t len = 0;
    for (char c : digits) {
        check(c >= '0' && c <= '9', "Complete with a non-digit length", in);
        len = len * 10 + static_cast<std::size_t>(c - '0');
    }
    check(len <= max_len, "Complete frame longer than the limit", in);
    check(r.payload.size() == len, "payload size is not the announced length", in);
    check(r.consumed == colon + 1 + len + 1 && r.consumed <= in.size(), "consumed is wrong", in);
    check(in[r.consumed - 1] == ',', "frame does not end with ','", in);
    check(r.payload == in.substr(colon + 1, len), "payload is not the framed bytes", in);

    std::string enc = ns::encode(r.payload);
    std::size_t zeros = 0;
    while (zeros + 1 < digits.size() && digits[zeros] == '0') ++zeros;
    check(enc == in.substr(zeros, r.consumed - zeros), "encode() does not rebuild the frame", in);
    auto again = ns::parse(enc, max_len);
    check(again.status == Status::Complete && again.consumed == enc.size() &&
              again.payload == r.payload,
          "parse(encode(payload)) is not the payload", in);
    // Prefixes: short ones all, then a sample, and the one a byte short.
    for (std::size_t n = 0; n < r.consumed; n = n < 64 ? n + 1 : n * 2) {
        check(ns::parse(in.substr(0, n), max_len).status == Status::NeedMore,
              "a prefix of a complete frame is not NeedMore", in.substr(0, n));
    }
    check(ns::parse(in.substr(0, r.consumed - 1), max_len).status == Status::NeedMore,
          "the frame without its ',' is not NeedMore", in);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    // A stream of frames as the daemon reads them.
    std::string_view rest = in;
    for (int frames = 0; !rest.empty() && frames < 64; ++frames) {
        check_frame(rest, ns::kMaxRequest);
        auto r = ns::parse(rest);
        if (r.status != Status::Complete) break;
        rest.remove_prefix(r.consumed);
    }
    check_frame(in, ns::kMaxReply);

    // The whole input as one payload: it frames iff it is within the limit, and an
    // oversized frame is refused at its length, before its bytes arrive.
    std::string enc = ns::encode(in);
    auto r = ns::parse(enc);
    if (size <= ns::kMaxRequest) {
        check(r.status == Status::Complete && r.payload == in && r.consumed == enc.size(),
              "a payload within the limit does not round-trip", in);
    } else {
        check(r.status == Status::Malformed, "a payload over the limit is not refused", in);
        std::string head = std::to_string(size) + ":";
        check(ns::parse(head).status == Status::Malformed,
              "an oversized length is not refused before the payload", head);
    }
    return 0;
}
