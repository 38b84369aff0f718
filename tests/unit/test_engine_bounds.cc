// SPDX-License-Identifier: MIT
// The engine against hostile DNS data and at its limits: names that are not host names,
// owner names too long for DNS, the DANE history, idle and LRU eviction, and the separate
// budgets of cold lookups (global and per registered domain) and refreshes.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "dns/name.hh"
#include "fakes.hh"
#include "policy/decision.hh"
#include "policy/engine.hh"
#include "policy/service.hh"

using namespace strictmx;
using namespace strictmx::policy;
using namespace strictmx::test;
using Sec = dns::Security;

namespace {

// MX RDATA whose host is given as raw labels: any octet, dots inside labels included.
std::string mx_labels(int pref, const std::vector<std::string>& labels) {
    std::string r;
    r += static_cast<char>(pref >> 8);
    r += static_cast<char>(pref & 0xff);
    for (const auto& l : labels) {
        r += static_cast<char>(l.size());
        r += l;
    }
    return r + std::string(1, '\0');
}

struct Rig {
    FakeResolver dns;
    FakeFetcher https;
    ManualClock clock;
    EngineOptions opts;
    std::unique_ptr<Engine> engine;
    Rig() { rebuild(); }
    void rebuild(store::Store* s = nullptr) {
        engine = std::make_unique<Engine>(dns, https, s, clock, opts);
    }
    void sts(const std::string& domain, const std::string& policy) {
        dns.set("_mta-sts." + domain, dns::rrtype::TXT, ok({txt_rdata("v=STSv1; id=1;")}));
        https.set_body(domain, policy);
    }
    Decision lookup(const std::string& d) {
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

std::string answer(const Decision& d, const char* profile = "postfix") {
    Reply r = render(d, *find_profile(profile));
    switch (r.kind) {
        case Reply::Kind::Ok:
            return r.text;
        case Reply::Kind::NotFound:
            return "NOTFOUND";
        case Reply::Kind::Temp:
            return "TEMP";
    }
    return "?";
}

const char* kPool = "version: STSv1\nmode: enforce\nmx: *.pool.victim.example\nmax_age: 86400\n";
const std::vector<std::string> kHostileLabels = {
    "x match=hostname match=",
    "a=b",
    "a:b",
    "a,b",
    "{",
    "}",
    std::string("a\0b", 3),
    "mx1.pool",  // an escaped dot: one label that reads like two
    "\x80\xff",
    " ",
    "",
    std::string(1, '\n'),
    "-bad-"};

}  // namespace

TEST_CASE("the MX forgery of an enforce domain cannot add or widen match=") {
    for (const auto& label : kHostileLabels) {
        INFO("label " << label);
        Rig r;
        r.sts("victim.example", kPool);
        std::vector<std::string> hostile = {"pool", "victim", "example"};
        hostile.insert(hostile.begin(), label);
        r.dns.set(
            "victim.example", dns::rrtype::MX,
            ok({mx_labels(10, hostile), mx_rdata(20, "mx1.pool.victim.example")}, Sec::Insecure));
        Decision d = r.lookup("victim.example");
        CHECK(d.mx_hosts == std::vector<std::string>{"mx1.pool.victim.example"});
        CHECK(answer(d) == "secure match=mx1.pool.victim.example servername=hostname");
        CHECK(answer(d, "strict-tlsrpt") ==
              "secure match=mx1.pool.victim.example servername=hostname policy_type=sts "
              "policy_domain=victim.example { policy_string = version: STSv1 } { "
              "policy_string = mode: enforce } { policy_string = mx: *.pool.victim.example } { "
              "policy_string = max_age: 86400 } mx_host_pattern=*.pool.victim.example");
        CHECK(render_exim(d, *find_profile("postfix")) ==
              "level=secure mode=enforce mx=*.pool.victim.example match=mx1.pool.victim.example");
        CHECK(r.engine->stats().invalid_names == (label.empty() ? 0u : 1u));
    }
}

TEST_CASE("only hostile MX hosts left: an enforce policy defers, it never widens") {
    Rig r;
    r.sts("victim.example", kPool);
    r.dns.set("victim.example", dns::rrtype::MX,
              ok({mx_labels(10, {"x match=hostname match=", "pool", "victim", "example"})},
                 Sec::Insecure));
    Decision d = r.lookup("victim.example");
    CHECK(d.mx_hosts.empty());
    for (const char* p : {"postfix", "postfix-tlsrpt", "strict", "strict-tlsrpt"})
        CHECK(answer(d, p) == "TEMP");
    CHECK(render_exim(d, *find_profile("postfix")).starts_with("level=tempfail "));
}

TEST_CASE("render refuses a name that is not a host name, however it got there") {
    auto policy = std::make_shared<sts::Policy>();
    policy->mode = sts::Mode::Enforce;
    policy->max_age = 600;
    policy->mx = {"*.pool.victim.example"};
    Decision d;
    d.kind = Decision::Kind::Sts;
    d.domain = "victim.example";
    d.policy = policy;
    d.mx_known = true;
    d.mx_hosts = {"x match=hostname match=.pool.victim.example"};
    for (const char* p : {"postfix", "postfix-tlsrpt", "strict", "strict-tlsrpt"})
        CHECK(answer(d, p) == "TEMP");
    CHECK(render_exim(d, *find_profile("postfix")).starts_with("level=tempfail "));
    policy->mx = {"mx1.victim.example match=hostname"};
    d.mx_hosts.clear();
    CHECK(answer(d) == "TEMP");
    CHECK(exim_mxcheck(d, *find_profile("postfix"), "mx1.victim.example match=hostname") != "");
}

TEST_CASE("a signed MX RRset with a hostile name: DANE over the valid hosts only") {
    Rig r;
    r.dns.set("d.example", dns::rrtype::MX,
              ok({mx_labels(10, {"a b", "d", "example"}), mx_rdata(20, "mx.d.example")}));
    r.dns.set("mx.d.example", dns::rrtype::A, ok({std::string("\x7f\0\0\1", 4)}));
    r.dns.set("mx.d.example", dns::rrtype::AAAA, nodata());
    std::string tlsa = std::string("\x03\x01\x01", 3) + std::string(32, 'z');
    r.dns.set("_25._tcp.mx.d.example", dns::rrtype::TLSA, ok({tlsa}));
    Decision d = r.lookup("d.example");
    CHECK(answer(d) == "dane-only");
    // The hostile name was never queried.
    for (const auto& [key, a] : r.dns.table) CHECK(key.first.find(' ') == std::string::npos);
}

TEST_CASE("the wire-name decoder escapes every octet that is not LDH") {
    std::string_view in;
    std::string wire = mx_labels(0, {"a.b", "x y", "Ok"}).substr(2);
    in = wire;
    auto n = dns::parse_wire_name(in);
    REQUIRE(n);
    CHECK(*n == "a\\046b.x\\032y.ok");
    CHECK_FALSE(dns::is_hostname(*n));
}

TEST_CASE("a name too long for _mta-sts. or _25._tcp. is no policy, not TEMP forever") {
    // 250 octets: a valid domain, but "_mta-sts." + it is 259.
    std::string domain = std::string(60, 'a') + "." + std::string(60, 'b') + "." +
                         std::string(60, 'c') + "." + std::string(60, 'd') + ".example";
    REQUIRE(domain.size() > 244);
    REQUIRE(dns::classify_key(domain).kind == dns::KeyKind::Domain);
    Rig r;
    r.dns.set(domain, dns::rrtype::MX, nxdomain(Sec::Insecure));
    Decision d = r.lookup(domain);
    CHECK(d.kind == Decision::Kind::NotFound);
    CHECK(r.dns.queries == 1);  // the MX only: "_mta-sts." + name was not sent
    CHECK(r.lookup(domain).source == "cache");
    CHECK(r.dns.queries == 1);

    // A signed domain whose MX host is that long: no TLSA can exist for it.
    Rig s;
    s.dns.set("long.example", dns::rrtype::MX, ok({mx_rdata(10, domain)}));
    s.dns.set(domain, dns::rrtype::A, ok({std::string("\x7f\0\0\1", 4)}));
    s.dns.set(domain, dns::rrtype::AAAA, nodata());
    s.dns.set("_mta-sts.long.example", dns::rrtype::TXT, nxdomain());
    Decision l = s.lookup("long.example");
    CHECK(l.kind == Decision::Kind::NotFound);
    CHECK(s.dns.table.count({"_25._tcp." + domain, dns::rrtype::TLSA}) == 0);
}

TEST_CASE("had-DANE outlives the DANE result: a later failure is never relaxed") {
    Rig r;
    r.opts.dns_servfail = config::OnFailure::NotFound;
    r.opts.dns_max_ttl = 300;
    r.opts.dane_history_ttl = 86'400;
    r.rebuild();
    r.dns.set("d.example", dns::rrtype::MX, ok({mx_rdata(10, "mx.d.example")}));
    r.dns.set("mx.d.example", dns::rrtype::A, ok({std::string("\x7f\0\0\1", 4)}));
    r.dns.set("mx.d.example", dns::rrtype::AAAA, nodata());
    r.dns.set("_25._tcp.mx.d.example", dns::rrtype::TLSA,
              ok({std::string("\x03\x01\x01", 3) + std::string(32, 'z')}));
    REQUIRE(answer(r.lookup("d.example")) == "dane-only");
    // Long after the DANE result and the entry itself expired, DNS fails.
    r.clock.advance(3600);
    r.engine->tick();
    r.dns.set("d.example", dns::rrtype::MX, fail());
    CHECK(answer(r.lookup("d.example")) == "TEMP");
    // Once the history ends, the configured relaxation applies.
    r.clock.advance(86'400);
    r.engine->tick();
    r.dns.set("d.example", dns::rrtype::MX, fail());
    r.clock.advance(60);
    CHECK(answer(r.lookup("d.example")) == "NOTFOUND");
}

TEST_CASE("had-DANE survives a restart through the store") {
    auto dir =
        std::filesystem::temp_directory_path() / ("strictmx-history-" + std::to_string(::getpid()));
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);
    std::string path = (dir / "cache.db").string();
    Rig r;
    r.opts.dns_servfail = config::OnFailure::NotFound;
    r.dns.set("d.example", dns::rrtype::MX, ok({mx_rdata(10, "mx.d.example")}));
    r.dns.set("mx.d.example", dns::rrtype::A, ok({std::string("\x7f\0\0\1", 4)}));
    r.dns.set("mx.d.example", dns::rrtype::AAAA, nodata());
    r.dns.set("_25._tcp.mx.d.example", dns::rrtype::TLSA,
              ok({std::string("\x03\x01\x01", 3) + std::string(32, 'z')}));
    {
        auto st = store::Store::open(path, r.clock.now());
        r.rebuild(st.get());
        REQUIRE(answer(r.lookup("d.example")) == "dane-only");
        r.engine.reset();
    }
    r.clock.advance(7200);  // the DANE result has expired
    auto st = store::Store::open(path, r.clock.now());
    r.rebuild(st.get());
    CHECK(r.engine->load() == 1);
    r.dns.set("d.example", dns::rrtype::MX, fail());
    CHECK(answer(r.lookup("d.example")) == "TEMP");
    r.engine.reset();
    st.reset();
    std::filesystem::remove_all(dir);
}

TEST_CASE("entries not looked up for idle_ttl are evicted, not refreshed") {
    Rig r;
    r.opts.idle_ttl = 3600;
    r.rebuild();
    r.sts("a.example", "version: STSv1\nmode: enforce\nmx: mx.a.example\nmax_age: 604800\n");
    r.dns.set("a.example", dns::rrtype::MX, ok({mx_rdata(10, "mx.a.example")}, Sec::Insecure));
    REQUIRE(r.lookup("a.example").kind == Decision::Kind::Sts);
    int queries = r.dns.queries;
    r.clock.advance(3601);
    r.engine->tick();
    CHECK(r.engine->size() == 0);
    CHECK(r.engine->stats().evicted_idle == 1);
    CHECK(r.dns.queries == queries);  // no refresh was started for it
}

TEST_CASE("max_entries: the least recently used go, the cache never grows past it") {
    Rig r;
    r.opts.max_entries = 100;
    r.rebuild();
    for (int i = 0; i < 250; ++i) {
        std::string d = "d" + std::to_string(i) + ".example";
        r.dns.set("_mta-sts." + d, dns::rrtype::TXT, nxdomain());
        r.lookup(d);
        CHECK(r.engine->size() <= 100);
        r.clock.advance(1);
        if (i % 10 == 0) r.lookup("d0.example");  // kept in use
    }
    CHECK(r.engine->find("d0.example"));
    CHECK(r.engine->find("d249.example"));
    CHECK_FALSE(r.engine->find("d1.example"));
    CHECK(r.engine->stats().evicted_lru >= 150);
}

TEST_CASE("cold lookups under one registered domain have their own budget") {
    Rig r;
    r.opts.max_resolutions_per_domain = 2;
    r.rebuild();
    std::vector<Decision::Kind> kinds;
    auto cb = [&](const Decision& d) { kinds.push_back(d.kind); };
    r.engine->lookup("a.slow.example", cb);
    r.engine->lookup("b.slow.example", cb);
    r.engine->lookup("c.slow.example", cb);  // the zone's slots are taken: TEMP at once
    REQUIRE(kinds.size() == 1);
    CHECK(kinds[0] == Decision::Kind::Temp);
    CHECK(r.engine->stats().refused_zone == 1);
    r.engine->lookup("other.example", cb);  // another zone is not affected
    CHECK(kinds.size() == 1);
    CHECK(r.engine->cold_in_flight() == 3);
    run(r.dns, r.https);
    CHECK(kinds.size() == 4);
    CHECK(r.engine->cold_in_flight() == 0);
    CHECK(dns::registered_domain("a.b.example.co.uk") == "example.co.uk");
}

TEST_CASE("refreshes and cold lookups do not starve each other") {
    Rig r;
    r.opts.max_resolutions = 1;
    r.opts.max_refreshes = 1;
    r.opts.refresh_interval = 60;
    r.rebuild();
    r.sts("cached.example",
          "version: STSv1\nmode: enforce\nmx: mx.cached.example\nmax_age: 86400\n");
    r.dns.set("cached.example", dns::rrtype::MX,
              ok({mx_rdata(10, "mx.cached.example")}, Sec::Insecure));
    REQUIRE(r.lookup("cached.example").kind == Decision::Kind::Sts);
    // A cold lookup takes the only cold slot and stays in flight.
    int answered = 0;
    r.engine->lookup("cold.example", [&](const Decision&) { ++answered; });
    CHECK(r.engine->cold_in_flight() == 1);
    // The refresh that is due still starts.
    r.clock.advance(120);
    r.engine->tick();
    CHECK(r.engine->refreshes_in_flight() == 1);
    // And a refresh in flight does not take a cold slot: once the cold one ends, another
    // cold lookup is accepted while the refresh is still out.
    run(r.dns, r.https);
    CHECK(answered == 1);
    r.clock.advance(120);
    r.engine->tick();
    REQUIRE(r.engine->refreshes_in_flight() == 1);
    r.engine->lookup("cold2.example", [&](const Decision& d) {
        CHECK(d.kind != Decision::Kind::Temp);
        ++answered;
    });
    run(r.dns, r.https);
    CHECK(answered == 2);
}

TEST_CASE("decision lines: new and changed answers and TEMPs are logged, repeated hits counted") {
    Rig r;
    r.sts("a.example", "version: STSv1\nmode: enforce\nmx: mx.a.example\nmax_age: 86400\n");
    r.dns.set("a.example", dns::rrtype::MX, ok({mx_rdata(10, "mx.a.example")}, Sec::Insecure));
    Service svc(*r.engine);
    auto ask = [&](const std::string& key) {
        std::string got;
        svc.tcp_table(key, *find_profile("postfix"), [&](std::string line) { got = line; });
        run(r.dns, r.https);
        return got;
    };
    CHECK(ask("a.example").starts_with("200 secure"));  // resolved: logged
    for (int i = 0; i < 5; ++i) ask("a.example");       // the same answer from the cache
    CHECK(svc.stats().logged == 1);
    CHECK(svc.stats().repeated == 5);
    r.dns.set("_mta-sts.b.example", dns::rrtype::TXT, fail());
    r.dns.set("b.example", dns::rrtype::MX, fail());
    ask("b.example");
    ask("b.example");  // TEMP every time: always logged
    CHECK(svc.stats().logged == 3);
    CHECK(svc.stats().lookups == 8);
}

TEST_CASE("cache hits answer from the pre-rendered reply until the entry changes") {
    Rig r;
    r.opts.refresh_interval = 60;
    r.rebuild();
    r.sts("a.example", "version: STSv1\nmode: enforce\nmx: mx.a.example\nmax_age: 86400\n");
    r.dns.set("a.example", dns::rrtype::MX, ok({mx_rdata(10, "mx.a.example")}, Sec::Insecure));
    Service svc(*r.engine);
    auto ask = [&](const std::string& key) {
        std::string got;
        svc.socketmap("postfix " + key, [&](std::string p) { got = p; });
        run(r.dns, r.https);
        return got;
    };
    CHECK(ask("a.example") == "OK secure match=mx.a.example servername=hostname");
    for (int i = 0; i < 4; ++i)
        CHECK(ask("a.example") == "OK secure match=mx.a.example servername=hostname");
    CHECK(svc.stats().prerendered == 3);  // the first hit rendered, the next three reused it
    // The policy changes; the background refresh rewrites the entry: a new answer.
    r.sts("a.example", "version: STSv1\nmode: enforce\nmx: mx2.a.example\nmax_age: 86400\n");
    r.dns.set("_mta-sts.a.example", dns::rrtype::TXT, ok({txt_rdata("v=STSv1; id=2;")}));
    r.dns.set("a.example", dns::rrtype::MX, ok({mx_rdata(10, "mx2.a.example")}, Sec::Insecure));
    r.clock.advance(120);
    ask("a.example");  // answered from the cache, starts the refresh; run() completes it
    CHECK(ask("a.example") == "OK secure match=mx2.a.example servername=hostname");
    // The policy expires: never answered from an old rendering.
    r.clock.advance(2 * 86400);
    r.https.set_error("a.example", "connection refused");
    r.dns.set("_mta-sts.a.example", dns::rrtype::TXT, nxdomain());
    CHECK(ask("a.example") == "NOTFOUND ");
}

TEST_CASE("an unknown socketmap map name answers TEMP, never NOTFOUND") {
    // A typo in main.cf (":postfx") would otherwise mean "no policy" for every domain.
    Rig r;
    Service svc(*r.engine);
    std::string got;
    svc.socketmap("postfx example.com", [&](std::string p) { got = p; });
    CHECK(got.starts_with("TEMP unknown socketmap map name postfx"));
    CHECK(got.find("postfix-tlsrpt") != std::string::npos);
    got.clear();
    svc.socketmap("requiretls example.com", [&](std::string p) { got = p; });
    run(r.dns, r.https);
    CHECK_FALSE(got.empty());
    CHECK_FALSE(got.starts_with("TEMP unknown"));
}
