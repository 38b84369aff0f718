// SPDX-License-Identifier: MIT
// Wiring shared by strictmx-policyd and strictmx: resolver, fetcher, store and engine built
// from one configuration on one event loop.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "config/config.hh"
#include "dns/unbound_resolver.hh"
#include "policy/engine.hh"
#include "store/store.hh"
#include "sts/curl_fetcher.hh"
#include "util/clock.hh"
#include "util/handles.hh"

namespace strictmx::policy {

std::string cache_path(const config::Config& c);
// Why the daemon refuses a cache file it cannot write: the path, owners, modes and the fix.
std::string unwritable_cache_message(const std::string& path);
// `seed_anchor`: copy the root trust anchor into the state directory when missing (the
// daemon does; `strictmx query` only reads).
dns::UnboundOptions resolver_options(const config::Config& c, bool seed_anchor = true);
sts::CurlOptions fetcher_options(const config::Config& c);
// The zone whose DNSKEY proves validation: resolver.dnssec_probe, else the owner of the
// first trust anchor found in the anchor file or the unbound configuration; empty when
// there is no trust anchor (validation cannot work: the daemon refuses to start).
std::string probe_zone(const config::Config& c, const dns::UnboundOptions& o);

// Whether DNSSEC validation is known to work (resolver.dnssec, resolver.dnssec_probe).
enum class Validation {
    Proven,    // the probe zone's DNSKEY validated as secure
    Off,       // resolver.dnssec = false: DANE is off, by choice
    Unproven,  // the probe got no answer (no network yet): cold lookups answer TEMP
    Broken,    // insecure or bogus: no trust anchor, or a wrong one; the daemon refuses to start
};
const char* validation_name(Validation v);

struct Runtime {
    event_base* base = nullptr;
    SystemClock clock;
    std::unique_ptr<dns::UnboundResolver> resolver;
    std::unique_ptr<sts::CurlFetcher> fetcher;
    std::unique_ptr<store::Store> store;
    std::unique_ptr<Engine> engine;
    // Fleet mode only; declared after the engine so that it stops first.
    std::unique_ptr<store::SharedCache> shared;
    Validation validation = Validation::Off;
    std::string validation_why;

    // Runs the DNSSEC probe on `base` and waits for it (start-up). Broken throws.
    void prove_validation(const config::Config& c);
    // Once a second: retries an unproven probe every 10 s (in the background), then the
    // engine's tick.
    void tick();

    // Throws std::runtime_error on configuration problems. With `persistent` false the engine
    // writes nothing (strictmx query).
    static std::unique_ptr<Runtime> create(event_base* base, const config::Config& c,
                                           bool persistent);
    // persistent = false also leaves the state directory untouched.
    ~Runtime();

  private:
    void probe(std::function<void(Validation, std::string)> done);
    std::string probe_zone_;
    UnixTime next_probe_ = 0;
    bool probing_ = false;
};

}  // namespace strictmx::policy
