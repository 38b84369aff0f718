// SPDX-License-Identifier: MIT
// Fuzz target: MX, TXT and TLSA RDATA decoders.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "dane/dane.hh"
#include "dns/resolver.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto mx = strictmx::dns::parse_mx(in);
    if (mx && mx->host.size() > 253) std::abort();
    auto txt = strictmx::dns::parse_txt(in);
    if (txt && txt->size() > size) std::abort();
    auto tlsa = strictmx::dane::parse_tlsa(in);
    if (tlsa && tlsa->usable() && tlsa->usage != 2 && tlsa->usage != 3) std::abort();
    if (tlsa) (void)tlsa->text();
    return 0;
}
