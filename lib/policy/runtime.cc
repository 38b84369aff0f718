// SPDX-License-Identifier: MIT
// Wiring shared by strictmx-policyd and strictmx.
#include "policy/runtime.hh"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "util/log.hh"
#include "util/strings.hh"

namespace strictmx::policy {

const char* validation_name(Validation v) {
    switch (v) {
        case Validation::Proven:
            return "on";
        case Validation::Off:
            return "off";
        case Validation::Unproven:
            return "unproven";
        case Validation::Broken:
            return "broken";
    }
    return "broken";
}

std::string cache_path(const config::Config& c) {
    return c.cache_path.empty() ? c.state_dir + "/cache.db" : c.cache_path;
}

dns::UnboundOptions resolver_options(const config::Config& c, bool seed_anchor) {
    dns::UnboundOptions o;
    o.config_file = c.unbound_config;
    o.forwarders = c.forwarders;
    o.timeout_ms = c.resolver_timeout_ms;
    o.max_outstanding = static_cast<std::size_t>(c.resolver_max_outstanding);
    o.validate = c.dnssec;
    o.trust_anchor_file = c.trust_anchor_file;
    o.trust_anchor_read_only = !seed_anchor;
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
        if (seed_anchor && std::filesystem::exists(ta, ec)) {
            o.trust_anchor_file = ta;
        } else if (!seed_anchor) {
            // Read-only use (strictmx query, any user): the daemon's anchor if this user may
            // read it, else the seed itself; both as static anchors, nothing written, no
            // file in a shared temporary directory.
            if (::access(ta.c_str(), R_OK) == 0)
                o.trust_anchor_file = ta;
            else if (::access(seed, R_OK) == 0)
                o.trust_anchor_file = seed;
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

namespace {
// The owner name of the first DS or DNSKEY record in a zone-file style anchor file (also
// the format unbound writes for RFC 5011 anchors).
std::string anchor_owner_in_file(const std::string& path) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        std::istringstream words(line);
        std::string owner, w;
        if (!(words >> owner) || owner.starts_with(";")) continue;
        while (words >> w)
            if (w == "DS" || w == "DNSKEY") return owner;
    }
    return {};
}

std::string unquote(std::string s) {
    s = std::string(trim(s));
    if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
    return s;
}

// The first trust anchor an unbound configuration names (following include: once).
std::string anchor_owner_in_unbound_config(const std::string& path, int depth = 0) {
    std::ifstream in(path);
    std::string line;
    while (std::getline(in, line)) {
        std::string_view l = trim(line);
        if (l.starts_with("#")) continue;
        std::size_t colon = l.find(':');
        if (colon == std::string_view::npos) continue;
        std::string key(l.substr(0, colon));
        std::string value = unquote(std::string(l.substr(colon + 1)));
        if (key == "trust-anchor-file" || key == "auto-trust-anchor-file") {
            if (auto o = anchor_owner_in_file(value); !o.empty()) return o;
        } else if (key == "trusted-keys-file") {
            // BIND syntax: trusted-keys { "name" flags proto alg "key"; ... };
            std::ifstream keys(value);
            std::string text((std::istreambuf_iterator<char>(keys)), {});
            std::size_t open = text.find('{');
            std::size_t q1 = open == std::string::npos ? open : text.find('"', open);
            std::size_t q2 = q1 == std::string::npos ? q1 : text.find('"', q1 + 1);
            if (q2 != std::string::npos) return text.substr(q1 + 1, q2 - q1 - 1);
        } else if (key == "trust-anchor") {
            std::istringstream words(value);
            std::string owner;
            if (words >> owner) return owner;
        } else if (key == "include" && depth < 2) {
            if (auto o = anchor_owner_in_unbound_config(value, depth + 1); !o.empty()) return o;
        }
    }
    return {};
}
}  // namespace

std::string probe_zone(const config::Config& c, const dns::UnboundOptions& o) {
    std::string zone = c.dnssec_probe;
    if (zone.empty() && !o.trust_anchor_file.empty())
        zone = anchor_owner_in_file(o.trust_anchor_file);
    if (zone.empty() && !c.unbound_config.empty())
        zone = anchor_owner_in_unbound_config(c.unbound_config);
    if (zone.size() > 1 && zone.back() == '.') zone.pop_back();
    return zone;  // empty: no trust anchor found
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

namespace {
std::string owner_of(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return "missing";
    passwd* pw = ::getpwuid(st.st_uid);
    group* gr = ::getgrgid(st.st_gid);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return std::string("owner ") + (pw ? pw->pw_name : std::to_string(st.st_uid)) + ":" +
           (gr ? gr->gr_name : std::to_string(st.st_gid)) + ", mode " + mode;
}
}  // namespace

std::string unwritable_cache_message(const std::string& path) {
    std::string dir = std::filesystem::path(path).parent_path().string();
    if (dir.empty()) dir = ".";
    passwd* me = ::getpwuid(::geteuid());
    std::string user = me ? me->pw_name : std::to_string(::geteuid());
    return "cache.path " + path + " cannot be opened for writing; set cache.memory_only = " +
           "true to run without a cache file, or chown " + user + ": " + dir +
           " (the packages' tmpfiles.d does for /var/lib/strictmx). File: " + owner_of(path) +
           "; directory: " + owner_of(dir) + "; the daemon runs as " + user;
}

std::unique_ptr<Runtime> Runtime::create(event_base* base, const config::Config& c,
                                         bool persistent) {
    auto rt = std::make_unique<Runtime>();
    rt->base = base;
    auto ropts = resolver_options(c, persistent);
    rt->probe_zone_ = probe_zone(c, ropts);
    rt->resolver = std::make_unique<dns::UnboundResolver>(base, ropts);
    rt->fetcher = std::make_unique<sts::CurlFetcher>(base, fetcher_options(c));
    if (persistent && c.cache_memory_only) {
        log::warn("cache in memory only (cache.memory_only = true): policies are forgotten at "
                  "every restart");
    } else if (persistent) {
        std::string path = cache_path(c);
        std::error_code ec;
        std::filesystem::create_directories(std::filesystem::path(path).parent_path(), ec);
        rt->store = store::Store::open(path, rt->clock.now());
        if (!rt->store->persistent())
            throw std::runtime_error(unwritable_cache_message(path));
    }
    rt->engine = std::make_unique<Engine>(*rt->resolver, *rt->fetcher, rt->store.get(), rt->clock,
                                          EngineOptions::from(c));
    if (persistent && config::fleet(c)) {
        store::SharedOptions so;
        so.instance = config::instance_name(c);
        so.db.dsn = c.store_dsn;
        so.db.application = "strictmx " + so.instance;
        so.pool = c.store_pool;
        so.lease_s = c.store_lease_s;
        so.timeout_ms = c.store_timeout_ms;
        // A database that answers must have our schema; one that does not answer is
        // waited for while the instance serves on its own.
        std::string why;
        if (auto conn = store::pg::connect(so.db, why)) {
            int v = store::pg::schema_version(conn.get(), why);
            if (v != store::pg::kSchemaVersion)
                throw std::runtime_error(
                    "fleet database " + store::pg::redact(c.store_dsn) +
                    (v < 0   ? ": cannot read its schema version (" + why + ")"
                     : v == 0 ? ": no strictmx tables; run: strictmx store migrate"
                              : ": schema version " + std::to_string(v) + ", this strictmx needs " +
                                    std::to_string(store::pg::kSchemaVersion) +
                                    (v < store::pg::kSchemaVersion ? "; run: strictmx store migrate"
                                                                  : "; upgrade strictmx")));
        } else {
            log::error("fleet: database unavailable at start, serving on this instance's own "
                       "until it answers",
                       {{"dsn", store::pg::redact(c.store_dsn)}, {"error", why}});
        }
        rt->shared = std::make_unique<store::SharedCache>(base, so);
        rt->engine->set_shared(rt->shared.get(), c.store_lease_wait_ms);
        Engine* engine = rt->engine.get();
        rt->shared->start([engine](const store::SharedCache::Change& ch) {
            engine->on_shared_change(ch);
        });
        log::info("fleet: shared cache", {{"dsn", store::pg::redact(c.store_dsn)},
                                          {"instance", so.instance},
                                          {"pool", std::to_string(so.pool)}});
    }
    return rt;
}

void Runtime::probe(std::function<void(Validation, std::string)> done) {
    resolver->resolve(probe_zone_, dns::rrtype::DNSKEY, [this, done](dns::Answer a) {
        std::string zone = probe_zone_ == "." ? "the root zone" : probe_zone_;
        if (a.security == dns::Security::Secure && a.status == dns::Answer::Status::Ok) {
            done(Validation::Proven, "the DNSKEY RRset of " + zone + " validates");
        } else if (a.security == dns::Security::Bogus) {
            done(Validation::Broken, "the DNSKEY RRset of " + zone + " is bogus (" +
                                         sanitize(a.why, 160) +
                                         "): the trust anchor does not match the zone");
        } else if (a.status == dns::Answer::Status::Fail) {
            done(Validation::Unproven, "the DNSKEY RRset of " + zone + " could not be looked up (" +
                                           sanitize(a.why, 160) + ")");
        } else {
            done(Validation::Broken,
                 "the DNSKEY RRset of " + zone + " is " + dns::status_name(a.status) + " and " +
                     dns::security_name(a.security) +
                     ": the resolver has no trust anchor for it, so no answer can be validated "
                     "and DANE would never apply (install dns-root-data, set "
                     "resolver.trust_anchor_file or a trust anchor in resolver.unbound_config, "
                     "set resolver.dnssec_probe to the anchor's zone, or set resolver.dnssec = "
                     "false to run without DANE)");
        }
    });
}

void Runtime::prove_validation(const config::Config& c) {
    if (!c.dnssec) {
        validation = Validation::Off;
        validation_why = "resolver.dnssec = false: DANE is off";
        log::warn("DNSSEC validation is off (resolver.dnssec = false): DANE never applies",
                  {{"dnssec", "off"}});
        return;
    }
    if (probe_zone_.empty()) {
        validation = Validation::Broken;
        validation_why =
            "no trust anchor configured, so no answer can be validated and DANE would never "
            "apply (install dns-root-data for the default STATE_DIR/root.key, set "
            "resolver.trust_anchor_file or a trust anchor in resolver.unbound_config, or set "
            "resolver.dnssec = false to run without DANE)";
        throw std::runtime_error("DNSSEC validation does not work: " + validation_why);
    }
    bool done = false;
    probe([&](Validation v, std::string why) {
        validation = v;
        validation_why = std::move(why);
        done = true;
    });
    // The resolver's own deadline ends the probe; the loop runs nothing else yet.
    while (!done) event_base_loop(base, EVLOOP_ONCE);
    if (validation == Validation::Broken)
        throw std::runtime_error("DNSSEC validation does not work: " + validation_why);
    if (validation == Validation::Unproven) {
        engine->set_validation(false, "DNSSEC validation not proven yet: " + validation_why);
        log::error(
            "DNSSEC validation not proven yet; lookups that need DNS answer TEMP until it is",
            {{"dnssec", "unproven"}, {"why", validation_why}});
        next_probe_ = clock.now() + 10;
    }
}

void Runtime::tick() {
    if (validation == Validation::Unproven && !probing_ && clock.now() >= next_probe_) {
        probing_ = true;
        probe([this](Validation v, std::string why) {
            probing_ = false;
            next_probe_ = clock.now() + 10;
            if (v == Validation::Unproven) return;
            validation = v;
            validation_why = std::move(why);
            if (v == Validation::Proven) {
                engine->set_validation(true, {});
                log::info("DNSSEC validation proven, lookups resolve again", {{"dnssec", "on"}});
            } else {
                // Broken after all: stay closed, loudly.
                engine->set_validation(false, "DNSSEC validation does not work: " + validation_why);
                log::error("DNSSEC validation does not work",
                           {{"dnssec", "broken"}, {"why", validation_why}});
            }
        });
    }
    engine->tick();
}

Runtime::~Runtime() {
    // The engine goes first: resolver and fetcher then cancel what is in flight without
    // calling back into it.
    engine.reset();
    fetcher.reset();
    resolver.reset();
}

}  // namespace strictmx::policy
