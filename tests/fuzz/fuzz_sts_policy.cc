// SPDX-License-Identifier: MIT
// Fuzz target: MTA-STS policy parser. Whatever it accepts must render to text that cannot
// inject a Postfix policy attribute, and must parse back to itself.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sts/policy.hh"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    auto p = strictmx::sts::parse_policy(in);
    if (!p) return 0;
    if (p->max_age < 0 || p->max_age > strictmx::sts::kMaxMaxAge) std::abort();
    for (const auto& line : p->lines())
        if (line.find_first_of("{}=\r\n\t") != std::string::npos) std::abort();
    for (const auto& mx : p->mx)
        if (mx.find_first_of(" :{}=") != std::string::npos) std::abort();
    auto again = strictmx::sts::parse_policy(p->text());
    if (!again || again->mx != p->mx || again->mode != p->mode || again->max_age != p->max_age)
        std::abort();
    return 0;
}
