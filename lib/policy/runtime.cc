// SPDX-License-Identifier: MIT
// Wiring shared by strictmx-policyd and strictmx.
#include "policy/runtime.hh"

#include <sys/stat.h>

#include <filesystem>

#include "util/log.hh"

namespace strictmx::policy {

std::string cache_path(const config::Config& c) {
    return c.cache_path.empty() ? c.state_dir + "/cache.db" : c.cache_path;
}

dns::UnboundOptions resolver_options(const config::Config& c, bool seed_anchor) {
    dns::UnboundOptions o;
    o.config_file = c.unbound_config;
    o.forwarders = c.forwarders;
    o.timeout_ms = c.resolver_timeout_ms;
    o.max_outstanding = static_cast<std::size_t>(c.resolver_max_outstanding);
    o.trust_anchor_file = c.trust_anchor_file;
    if (o.trust_anchor_file.empty() && c.unbound_config.empty()) {
        // Full recursion needs the root anchor: keep an RFC 5011-managed copy in the state
        // directory, seeded from Debian's dns-root-data.
        std::string ta = c.state_dir + "/root.key";
        const char* seed = "/usr/share/dns/root.key";
        std::error_code ec;
        if (seed_anchor && !std::filesystem::exists(ta, ec) && std::filesystem::exists(seed, ec)) {
            std::filesystem::create_directories(c.state_dir, ec);
            std::filesystem::copy_file(seed, ta, ec);
        }
        if (std::filesystem::exists(ta, ec)) {
            o.trust_anchor_file = ta;
        } else if (!seed_anchor && std::filesystem::exists(seed, ec)) {
            // Read-only use: validate with a temporary copy of the seed anchor (RFC 5011
            // updates need a writable file).
            std::string tmp =
                (std::filesystem::temp_directory_path() / "strictmx-root.key").string();
            std::filesystem::copy_file(seed, tmp, std::filesystem::copy_options::overwrite_existing,
                                       ec);
            if (!ec) o.trust_anchor_file = tmp;
        }
        if (o.trust_anchor_file.empty()) {
            log::error(
                "no root trust anchor: DNSSEC cannot be validated, DANE never applies and signed "
                "answers count as insecure (install dns-root-data or set "
                "resolver.trust_anchor_file)",
                {{"path", ta}});
        }
    }
    return o;
}

sts::CurlOptions fetcher_options(const config::Config& c) {
    sts::CurlOptions o;
    o.ca_file = c.ca_file;
    o.connect_to = c.connect_to;
    o.proxy = c.proxy;
    o.timeout_ms = c.https_timeout_ms;
    o.connect_timeout_ms = c.https_connect_timeout_ms;
    return o;
}

std::unique_ptr<Runtime> Runtime::create(event_base* base, const config::Config& c,
                                         bool persistent) {
    auto rt = std::make_unique<Runtime>();
    rt->base = base;
    rt->resolver = std::make_unique<dns::UnboundResolver>(base, resolver_options(c, persistent));
    rt->fetcher = std::make_unique<sts::CurlFetcher>(base, fetcher_options(c));
    if (persistent) {
        std::string path = cache_path(c);
        std::error_code ec;
        std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
        rt->store = store::Store::open(path, rt->clock.now());
    }
    rt->engine = std::make_unique<Engine>(*rt->resolver, *rt->fetcher, rt->store.get(), rt->clock,
                                          EngineOptions::from(c));
    return rt;
}

Runtime::~Runtime() {
    // The engine goes first: resolver and fetcher then cancel what is in flight without
    // calling back into it.
    engine.reset();
    fetcher.reset();
    resolver.reset();
}

}  // namespace strictmx::policy
