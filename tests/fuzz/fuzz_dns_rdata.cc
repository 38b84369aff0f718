// SPDX-License-Identifier: MIT
// Fuzz target: MX and TXT RDATA decoders.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dns/resolver.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto mx = strictmx::dns::parse_mx(in);
    if (mx && mx->host.size() > 253) std::abort();
    auto txt = strictmx::dns::parse_txt(in);
    if (txt && txt->size() > size) std::abort();
    return 0;
}
