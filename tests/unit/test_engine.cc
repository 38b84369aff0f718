// SPDX-License-Identifier: MIT
// The decision engine against scripted DNS and HTTPS, with an injected clock.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "fakes.hh"
#include "policy/engine.hh"

using namespace strictmx;
using namespace strictmx::policy;
using namespace strictmx::test;

namespace {
const std::string kEnforce =
    "version: STSv1\r\nmode: enforce\r\nmx: mx.example.com\r\nmax_age: 86400\r\n";

struct Rig {
    FakeResolver dns;
    FakeFetcher https;
    ManualClock clock;
    EngineOptions opts;
    std::unique_ptr<store::Store> store;
    std::unique_ptr<Engine> engine;
    explicit Rig(store::Store* s = nullptr) {
        dns.set("_mta-sts.example.com", dns::rrtype::TXT, ok({txt_rdata("v=STSv1; id=1;")}));
        // Unsigned MX: DANE does not apply, the MTA-STS logic alone decides.
        dns.set("example.com", dns::rrtype::MX,
                ok({mx_rdata(10, "mx.example.com")}, dns::Security::Insecure));
        https.set_body("example.com", kEnforce);
        engine = std::make_unique<Engine>(dns, https, s, clock, opts);
    }
    Decision lookup(const std::string& d = "example.com") {
        Decision out;
        bool done = false;
        engine->lookup(d, [&](const Decision& x) {
            out = x;
            done = true;
        });
        run(dns, https);
        REQUIRE(done);
        return out;
    }
};
}  // namespace

TEST_CASE("cold miss resolves TXT and MX together, fetches, then serves from memory") {
    Rig r;
    auto d = r.lookup();
    CHECK(d.kind == Decision::Kind::Sts);
    CHECK(d.source == "fetch");
    CHECK(d.mx_hosts == std::vector<std::string>{"mx.example.com"});
    CHECK(r.dns.queries == 2);
    CHECK(r.https.fetches == 1);
    auto again = r.lookup();
    CHECK(again.kind == Decision::Kind::Sts);
    CHECK(again.source == "cache");
    CHECK(r.dns.queries == 2);
    CHECK(r.https.fetches == 1);
}

TEST_CASE("concurrent lookups of one domain share one resolution") {
    Rig r;
    int answers = 0;
    for (int i = 0; i < 5; ++i)
        r.engine->lookup("example.com", [&](const Decision& d) {
            CHECK(d.kind == Decision::Kind::Sts);
            ++answers;
        });
    CHECK(r.dns.queue.size() == 2);
    run(r.dns, r.https);
    CHECK(answers == 5);
    CHECK(r.https.fetches == 1);
}

TEST_CASE("no TXT record: no policy, remembered for negative_ttl") {
    Rig r;
    r.dns.set("_mta-sts.example.com", dns::rrtype::TXT, nxdomain());
    CHECK(r.lookup().kind == Decision::Kind::NotFound);
    CHECK(r.lookup().source == "cache");
    CHECK(r.dns.queries == 2);
    r.clock.advance(r.opts.negative_ttl + 1);
    CHECK(r.lookup().source == "dns");
    CHECK(r.dns.queries == 4);
}

TEST_CASE("DNS failure with nothing cached defers; the failure class can be relaxed") {
    Rig r;
    r.dns.set("_mta-sts.example.com", dns::rrtype::TXT, fail("SERVFAIL"));
    auto d = r.lookup();
    CHECK(d.kind == Decision::Kind::Temp);
    CHECK(d.why.find("SERVFAIL") != std::string::npos);
    r.dns.set("_mta-sts.example.com", dns::rrtype::TXT, bogus());
    CHECK(r.lookup().kind == Decision::Kind::Temp);
    r.dns.set("_mta-sts.example.com", dns::rrtype::TXT, fail("timeout"));
    CHECK(r.lookup().kind == Decision::Kind::Temp);

    Rig relaxed;
    relaxed.opts.dns_servfail = config::OnFailure::NotFound;
    relaxed.engine =
        std::make_unique<Engine>(relaxed.dns, relaxed.https, nullptr, relaxed.clock, relaxed.opts);
    relaxed.dns.set("_mta-sts.example.com", dns::rrtype::TXT, fail("SERVFAIL"));
    CHECK(relaxed.lookup().kind == Decision::Kind::NotFound);
    relaxed.dns.set("_mta-sts.example.com", dns::rrtype::TXT, bogus());
    CHECK(relaxed.lookup().kind == Decision::Kind::Temp);
}

TEST_CASE("failed fetch with nothing cached is no policy (RFC 8461 section 5)") {
    Rig r;
    r.https.set_error("example.com", "HTTP status 301 (redirects are not followed)");
    auto d = r.lookup();
    CHECK(d.kind == Decision::Kind::NotFound);
    CHECK(d.why.find("sts-policy-fetch-error") != std::string::npos);
    r.https.set_body("example.com", "version: STSv1\nmode: enforce\nmx: 192.0.2.1\nmax_age: 60\n");
    r.clock.advance(r.opts.fetch_failure_ttl + 1);
    d = r.lookup();
    CHECK(d.kind == Decision::Kind::NotFound);
    CHECK(d.why.find("sts-policy-invalid") != std::string::npos);
}

TEST_CASE("an unexpired policy survives failed refreshes of every kind") {
    Rig r;
    REQUIRE(r.lookup().kind == Decision::Kind::Sts);
    // New id, fetch fails.
    r.dns.set("_mta-sts.example.com", dns::rrtype::TXT, ok({txt_rdata("v=STSv1; id=2;")}));
    r.https.set_error("example.com", "timeout");
    r.clock.advance(r.opts.refresh_interval * 2);
    r.engine->tick();
    run(r.dns, r.https);
    CHECK(r.https.fetches == 2);
    auto d = r.lookup();
    CHECK(d.kind == Decision::Kind::Sts);
    CHECK(r.engine->find("example.com")->failures >= 1);
    CHECK(r.engine->find("example.com")->txt_id == "1");
    // TXT lookup fails.
    r.dns.set("_mta-sts.example.com", dns::rrtype::TXT, fail("timeout"));
    Decision fresh;
    r.engine->resolve_fresh("example.com", [&](const Decision& x) { fresh = x; });
    run(r.dns, r.https);
    CHECK(fresh.kind == Decision::Kind::Sts);
    // TXT removed: the policy stays until it expires.
    r.dns.set("_mta-sts.example.com", dns::rrtype::TXT, nxdomain());
    r.engine->resolve_fresh("example.com", [&](const Decision& x) { fresh = x; });
    run(r.dns, r.https);
    CHECK(fresh.kind == Decision::Kind::Sts);
    // Invalid policy body on refresh.
    r.dns.set("_mta-sts.example.com", dns::rrtype::TXT, ok({txt_rdata("v=STSv1; id=3;")}));
    r.https.set_body("example.com", "garbage");
    r.engine->resolve_fresh("example.com", [&](const Decision& x) { fresh = x; });
    run(r.dns, r.https);
    CHECK(fresh.kind == Decision::Kind::Sts);
    CHECK(fresh.policy->mode == sts::Mode::Enforce);
    // After max_age the policy is gone.
    r.clock.advance(86400);
    r.https.set_error("example.com", "still down");
    CHECK(r.lookup().kind == Decision::Kind::NotFound);
}

TEST_CASE("a changed id refetches; mode none replaces the cached policy at once") {
    Rig r;
    REQUIRE(r.lookup().kind == Decision::Kind::Sts);
    r.dns.set("_mta-sts.example.com", dns::rrtype::TXT, ok({txt_rdata("v=STSv1; id=2;")}));
    r.https.set_body("example.com", "version: STSv1\nmode: none\nmax_age: 86400\n");
    Decision fresh;
    r.engine->resolve_fresh("example.com", [&](const Decision& x) { fresh = x; });
    run(r.dns, r.https);
    CHECK(fresh.policy->mode == sts::Mode::None);
    CHECK(r.lookup().policy->mode == sts::Mode::None);
    CHECK(r.engine->find("example.com")->txt_id == "2");
}

TEST_CASE("same id: no refetch until half of max_age is gone") {
    Rig r;
    REQUIRE(r.lookup().kind == Decision::Kind::Sts);
    r.clock.advance(r.opts.refresh_interval + 400);
    r.engine->tick();
    run(r.dns, r.https);
    CHECK(r.dns.queries == 4);
    CHECK(r.https.fetches == 1);
    r.clock.advance(86400 / 2);
    r.engine->tick();
    run(r.dns, r.https);
    CHECK(r.https.fetches == 2);
    CHECK(r.engine->find("example.com")->expires_at == r.clock.now() + 86400);
}

TEST_CASE("implicit and null MX") {
    Rig r;
    r.dns.set("example.com", dns::rrtype::MX, nodata());
    auto d = r.lookup();
    CHECK(d.mx_hosts == std::vector<std::string>{"example.com"});
    Rig n;
    n.dns.set("example.com", dns::rrtype::MX, ok({mx_rdata(0, "")}));
    auto e = n.lookup();
    CHECK(e.mx_known);
    CHECK(e.mx_hosts.empty());
}

TEST_CASE("overrides win over everything and ask nothing") {
    Rig r;
    r.opts.overrides["example.com"] = "dane-only";
    r.engine = std::make_unique<Engine>(r.dns, r.https, nullptr, r.clock, r.opts);
    auto d = r.lookup();
    CHECK(d.kind == Decision::Kind::Override);
    CHECK(r.dns.queries == 0);
}

TEST_CASE("the cache survives a restart") {
    auto dir =
        std::filesystem::temp_directory_path() / ("strictmx-engine-" + std::to_string(::getpid()));
    std::filesystem::create_directories(dir);
    std::string path = (dir / "cache.db").string();
    {
        ManualClock c;
        auto store = store::Store::open(path, c.now());
        Rig r(store.get());
        REQUIRE(r.lookup().kind == Decision::Kind::Sts);
        r.dns.set("_mta-sts.none.example", dns::rrtype::TXT, nxdomain());
        REQUIRE(r.lookup("none.example").kind == Decision::Kind::NotFound);
    }
    {
        ManualClock c;
        auto store = store::Store::open(path, c.now());
        Rig r(store.get());
        CHECK(r.engine->load() == 2);
        auto d = r.lookup();
        CHECK(d.kind == Decision::Kind::Sts);
        CHECK(d.source == "cache");
        CHECK(d.mx_hosts == std::vector<std::string>{"mx.example.com"});
        CHECK(r.lookup("none.example").source == "cache");
        CHECK(r.dns.queries == 0);
    }
    std::filesystem::remove_all(dir);
}

TEST_CASE("cold lookups beyond max_resolutions answer TEMP at once") {
    Rig r;
    r.opts.max_resolutions = 2;
    r.engine = std::make_unique<Engine>(r.dns, r.https, nullptr, r.clock, r.opts);
    std::vector<Decision::Kind> kinds;
    for (const char* d : {"a.example", "b.example", "c.example"})
        r.engine->lookup(d, [&](const Decision& x) { kinds.push_back(x.kind); });
    REQUIRE(kinds.size() == 1);
    CHECK(kinds[0] == Decision::Kind::Temp);
    run(r.dns, r.https);
    CHECK(kinds.size() == 3);
}
