// SPDX-License-Identifier: MIT
// Fuzz target: tcp_table request line parser and %XX codec.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "codecs/tcp_table.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace strictmx::tcp_table;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto r = parse_request(in);
    if (r.status == ParseResult::Status::Complete) {
        if (r.consumed == 0 || r.consumed > in.size()) std::abort();
        if (decode(encode(r.key)) != r.key) std::abort();
        auto line = reply(400, r.key);
        if (!line || line->size() > kMaxReply || line->back() != '\n') std::abort();
        if (line->find('\n') != line->size() - 1) std::abort();
    }
    return 0;
}
