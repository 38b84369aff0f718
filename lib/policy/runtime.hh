// SPDX-License-Identifier: MIT
// Wiring shared by strictmx-policyd and strictmx: resolver, fetcher, store and engine built
// from one configuration on one event loop.
#pragma once

#include <memory>

#include "config/config.hh"
#include "dns/unbound_resolver.hh"
#include "policy/engine.hh"
#include "store/store.hh"
#include "sts/curl_fetcher.hh"
#include "util/clock.hh"
#include "util/handles.hh"

namespace strictmx::policy {

std::string cache_path(const config::Config& c);
// `seed_anchor`: copy the root trust anchor into the state directory when missing (the
// daemon does; `strictmx query` only reads).
dns::UnboundOptions resolver_options(const config::Config& c, bool seed_anchor = true);
sts::CurlOptions fetcher_options(const config::Config& c);

struct Runtime {
    event_base* base = nullptr;
    SystemClock clock;
    std::unique_ptr<dns::UnboundResolver> resolver;
    std::unique_ptr<sts::CurlFetcher> fetcher;
    std::unique_ptr<store::Store> store;
    std::unique_ptr<Engine> engine;

    // Throws std::runtime_error on configuration problems. With `persistent` false the engine
    // writes nothing (strictmx query).
    static std::unique_ptr<Runtime> create(event_base* base, const config::Config& c,
                                           bool persistent);
    // persistent = false also leaves the state directory untouched.
    ~Runtime();
};

}  // namespace strictmx::policy
