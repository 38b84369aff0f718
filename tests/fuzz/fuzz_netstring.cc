// SPDX-License-Identifier: MIT
// Fuzz target: netstring parser (socketmap framing).
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "codecs/netstring.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    while (!in.empty()) {
        auto r = strictmx::netstring::parse(in);
        if (r.status != strictmx::netstring::ParseResult::Status::Complete) break;
        if (r.consumed == 0 || r.consumed > in.size() ||
            r.payload.size() > strictmx::netstring::kMaxRequest)
            std::abort();
        if (strictmx::netstring::parse(strictmx::netstring::encode(r.payload)).payload != r.payload)
            std::abort();
        in.remove_prefix(r.consumed);
    }
    return 0;
}
