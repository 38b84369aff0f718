// SPDX-License-Identifier: MIT
// Fuzz target: tcp_table request parser, %XX codec and reply lines. Oracle: a request is
// "get KEY" up to the first newline and its key re-encodes to a request that parses to the
// same key; encode/decode round-trip any bytes; every reply is one line of printable ASCII
// within Postfix's 4,096 bytes that dict_tcp.c decodes back to the text (or, for 400/500,
// to a prefix of it); a 200 reply is never cut.
#include <cstdint>
#include <string>
#include <string_view>

#include "codecs/tcp_table.hh"
#include "oracle.hh"

namespace tt = strictmx::tcp_table;
using strictmx::fuzz::check;
using Status = tt::ParseResult::Status;

namespace {
void check_reply(int code, std::string_view text) {
    auto line = tt::reply(code, text);
    std::string enc = tt::encode_reply_text(text);
    std::size_t whole = 4 + enc.size() + 1;
    if (!line) {
        check(code == 200 && whole > tt::kMaxReply, "reply() refused a line that fits", text);
        return;
    }
    check(line->size() <= tt::kMaxReply, "reply line longer than 4096 bytes", *line);
    check(line->starts_with(std::to_string(code) + " "), "reply line does not start 'CODE '",
          *line);
    check(line->back() == '\n' && line->find('\n') == line->size() - 1,
          "reply is not exactly one line", *line);
    for (std::size_t i = 0; i + 1 < line->size(); ++i) {
        auto c = static_cast<unsigned char>((*line)[i]);
        check(c >= 0x20 && c < 0x7f, "reply line holds a byte outside printable ASCII", *line);
    }
    std::string_view body(*line);
    body = body.substr(4, body.size() - 5);
    auto back = tt::decode(body);
    check(back.has_value(), "reply text is not valid %XX text (dict_tcp.c would reject it)", *line);
    if (whole <= tt::kMaxReply) {
        check(*back == text, "reply text does not decode to the text", *line);
    } else {
        check(code != 200, "a 200 reply was cut", *line);
        check(std::string_view(text).starts_with(*back), "a cut reply is not a prefix", *line);
    }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);

    auto r = tt::parse_request(in);
    std::size_t nl = in.find('\n');
    switch (r.status) {
        case Status::NeedMore:
            check(nl == std::string_view::npos && size <= tt::kMaxRequest,
                  "NeedMore with a whole line or more than the request limit", in);
            break;
        case Status::Malformed:
            check(r.reason && *r.reason, "Malformed without a reason", in);
            break;
        case Status::Complete: {
            check(nl != std::string_view::npos && r.consumed == nl + 1,
                  "Complete does not consume exactly one line", in);
            std::string_view line = in.substr(0, nl);
            if (line.ends_with('\r')) line.remove_suffix(1);
            check(line.starts_with("get "), "Complete without 'get '", in);
            auto key = tt::decode(line.substr(4));
            check(key && *key == r.key && !r.key.empty(), "key is not the decoded request", in);
            std::string req = "get " + tt::encode(r.key) + "\n";
            auto again = tt::parse_request(req);
            check(again.status == Status::Complete && again.key == r.key &&
                      again.consumed == req.size(),
                  "re-encoded request does not parse to the same key", req);
            break;
        }
    }

    // The codec over arbitrary bytes.
    std::string enc = tt::encode(in);
    for (unsigned char c : enc)
        check(c > 0x20 && c < 0x7f, "encode() left a space, control or 8-bit byte", enc);
    auto dec = tt::decode(enc);
    check(dec && *dec == in, "decode(encode(x)) != x", in);
    std::string renc = tt::encode_reply_text(in);
    auto rdec = tt::decode(renc);
    check(rdec && *rdec == in, "decode(encode_reply_text(x)) != x", in);

    check_reply(200, in);
    check_reply(400, in);
    check_reply(500, in);
    return 0;
}
