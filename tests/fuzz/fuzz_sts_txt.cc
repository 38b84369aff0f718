// SPDX-License-Identifier: MIT
// Fuzz target: MTA-STS TXT record parser.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sts/txt.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    auto r = strictmx::sts::parse_txt_record(in);
    if (r) {
        if (r->id.empty() || r->id.size() > 32) std::abort();
        for (char c : r->id)
            if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')))
                std::abort();
    }
    (void)strictmx::sts::select_txt({in, in});
    return 0;
}
