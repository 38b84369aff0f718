// SPDX-License-Identifier: MIT
// Fuzz target: strictmx.toml parser (errors must be exceptions, never crashes).
#include <cstdint>
#include <stdexcept>
#include <string>

#include "config/config.hh"
#include "dns/name.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    try {
        auto c = strictmx::config::parse(in, "fuzz");
        (void)strictmx::config::dump(c);
    } catch (const std::runtime_error&) {
    }
    (void)strictmx::dns::classify_key(in);
    return 0;
}
