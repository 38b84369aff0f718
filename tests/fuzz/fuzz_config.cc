// SPDX-License-Identifier: MIT
// Fuzz target: strictmx.toml parser and policy key classification. Oracle: errors are
// std::runtime_error (anything else escapes and crashes the target); an accepted file dumps
// to TOML that parses back to the same configuration (dump is a fixed point) and stays
// bounded; override values that reach Postfix hold no control byte; a key classified as a
// domain is a lowercase LDH name that classifies to itself again.
#include <cstdint>
#include <stdexcept>
#include <string>

#include "config/config.hh"
#include "dns/name.hh"
#include "oracle.hh"

namespace config = strictmx::config;
namespace dns = strictmx::dns;
using strictmx::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    try {
        auto c = config::parse(in, "fuzz");
        std::string dumped = config::dump(c);
        check(dumped.size() <= 16384 + 8 * size, "dump() output out of proportion", dumped);
        for (const auto& [key, value] : c.overrides) {
            check(!strictmx::fuzz::has_control(key), "override key holds a control byte", key);
            check(!strictmx::fuzz::has_control(value), "override value holds a control byte",
                  value);
        }
        config::Config again;
        try {
            again = config::parse(dumped, "dump");
        } catch (const std::runtime_error& e) {
            strictmx::fuzz::violated("dump() output does not parse", dumped + "\n" + e.what());
        }
        check(config::dump(again) == dumped, "dump(parse(dump(c))) != dump(c)", dumped);
        check(again.overrides == c.overrides, "overrides changed through dump()", dumped);
    } catch (const std::runtime_error& e) {
        check(*e.what() != '\0', "configuration error without a message", in);
    }

    auto k = dns::classify_key(in);
    if (k.kind == dns::KeyKind::Domain) {
        check(dns::is_hostname(k.domain) && strictmx::fuzz::plain_hostname(k.domain),
              "a Domain key is not an LDH host name", in);
        check(strictmx::fuzz::lower(k.domain) == k.domain, "a Domain key is not lowercase", in);
        auto again = dns::classify_key(k.domain);
        check(again.kind == dns::KeyKind::Domain && again.domain == k.domain,
              "a Domain key does not classify to itself", in);
    } else {
        check(k.domain.empty(), "a non-domain key carries a domain", in);
    }
    return 0;
}
