// SPDX-License-Identifier: MIT
// DANE decision table (RFC 7672) through the engine, with a scripted resolver.
#include <catch2/catch.hpp>

#include "dane/dane.hh"
#include "fakes.hh"
#include "policy/engine.hh"

using namespace strictmx;
using namespace strictmx::policy;
using namespace strictmx::test;
using Sec = dns::Security;

namespace {
std::string tlsa(int usage, int selector, int mtype, std::size_t len) {
    std::string r;
    r += static_cast<char>(usage);
    r += static_cast<char>(selector);
    r += static_cast<char>(mtype);
    return r + std::string(len, '\x5a');
}
std::string a_rdata() {
    return std::string("\x7f\x00\x00\x01", 4);
}

struct Net {
    FakeResolver dns;
    FakeFetcher https;
    ManualClock clock;
    EngineOptions opts;
    std::unique_ptr<Engine> engine;
    Net() {
        dns.set("d.test", dns::rrtype::MX,
                ok({mx_rdata(10, "mx1.d.test"), mx_rdata(20, "mx2.d.test")}));
        for (const char* h : {"mx1.d.test", "mx2.d.test"}) {
            dns.set(h, dns::rrtype::A, ok({a_rdata()}));
            dns.set(h, dns::rrtype::AAAA, nodata());
            dns.set(dane::tlsa_name(h), dns::rrtype::TLSA, ok({tlsa(3, 1, 1, 32)}));
        }
        // An enforce MTA-STS policy too: DANE must win wherever it applies.
        dns.set("_mta-sts.d.test", dns::rrtype::TXT, ok({txt_rdata("v=STSv1; id=1;")}));
        https.set_body("d.test", "version: STSv1\nmode: enforce\nmx: *.d.test\nmax_age: 86400\n");
        rebuild();
    }
    void rebuild() { engine = std::make_unique<Engine>(dns, https, nullptr, clock, opts); }
    Decision lookup() {
        Decision out;
        bool done = false;
        engine->lookup("d.test", [&](const Decision& d) {
            out = d;
            done = true;
        });
        run(dns, https);
        REQUIRE(done);
        return out;
    }
    std::string answer() {
        Decision d = lookup();
        Reply r = render(d, *find_profile("postfix"));
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
};
const std::string kSts = "secure match=mx1.d.test:mx2.d.test servername=hostname";

// Partial DANE. The rig's domain also enforces MTA-STS, so no host may be reached without
// authenticated TLS: dane-only (RFC 8461 section 2, RFC 7672 section 2.2). Without the
// policy, or with it in testing mode, Postfix's per-host "dane".
void expect_partial(Net& n) {
    CHECK(n.answer() == "dane-only");
    n.https.set_body("d.test", "version: STSv1\nmode: testing\nmx: *.d.test\nmax_age: 86400\n");
    n.dns.set("_mta-sts.d.test", dns::rrtype::TXT, ok({txt_rdata("v=STSv1; id=2;")}));
    n.rebuild();
    CHECK(n.answer() == "dane");
    Decision d = n.lookup();
    CHECK(render(d, *find_profile("strict")).text == "dane-only");  // testing enforced
    CHECK(render_exim(d, *find_profile("postfix")) == "level=dane");
    CHECK(render_exim(d, *find_profile("strict")) == "level=dane-only");
    n.dns.set("_mta-sts.d.test", dns::rrtype::TXT, nxdomain());
    n.rebuild();
    CHECK(n.answer() == "dane");
}
}  // namespace

TEST_CASE("usable TLSA parameters") {
    CHECK(dane::parse_tlsa(tlsa(3, 1, 1, 32))->usable());
    CHECK(dane::parse_tlsa(tlsa(2, 0, 2, 64))->usable());
    CHECK(dane::parse_tlsa(tlsa(3, 0, 0, 300))->usable());
    CHECK_FALSE(dane::parse_tlsa(tlsa(1, 1, 1, 32))->usable());
    CHECK_FALSE(dane::parse_tlsa(tlsa(0, 1, 1, 32))->usable());
    CHECK_FALSE(dane::parse_tlsa(tlsa(3, 2, 1, 32))->usable());
    CHECK_FALSE(dane::parse_tlsa(tlsa(3, 1, 3, 32))->usable());
    CHECK_FALSE(dane::parse_tlsa(tlsa(3, 1, 1, 31))->usable());
    CHECK_FALSE(dane::parse_tlsa(tlsa(3, 1, 2, 32))->usable());
    CHECK_FALSE(dane::parse_tlsa(tlsa(3, 1, 0, 0))->usable());
    CHECK_FALSE(dane::parse_tlsa("\x03\x01"));
}

TEST_CASE("full TLSA coverage: dane-only, never the MTA-STS answer") {
    Net n;
    CHECK(n.answer() == "dane-only");
    CHECK(n.https.fetches == 1);  // fetched alongside, cached for later
}

TEST_CASE("partial coverage: dane, or dane-only with an enforced MTA-STS policy") {
    Net n;
    n.dns.set(dane::tlsa_name("mx2.d.test"), dns::rrtype::TLSA, nxdomain());
    expect_partial(n);
}

TEST_CASE("only unusable TLSA: dane") {
    Net n;
    for (const char* h : {"mx1.d.test", "mx2.d.test"})
        n.dns.set(dane::tlsa_name(h), dns::rrtype::TLSA, ok({tlsa(1, 1, 1, 32)}));
    expect_partial(n);
}

TEST_CASE("secure MX without TLSA: the MTA-STS answer") {
    Net n;
    for (const char* h : {"mx1.d.test", "mx2.d.test"})
        n.dns.set(dane::tlsa_name(h), dns::rrtype::TLSA, nodata());
    CHECK(n.answer() == kSts);
}

TEST_CASE("insecure MX: MTA-STS, and no host queries at all") {
    Net n;
    n.dns.set("d.test", dns::rrtype::MX,
              ok({mx_rdata(10, "mx1.d.test"), mx_rdata(20, "mx2.d.test")}, Sec::Insecure));
    CHECK(n.answer() == kSts);
    CHECK(n.dns.queries == 2);
}

TEST_CASE("TLSA of a host with unsigned addresses is not used") {
    Net n;
    n.dns.set("mx2.d.test", dns::rrtype::A, ok({a_rdata()}, Sec::Insecure));
    expect_partial(n);
    Net m;
    for (const char* h : {"mx1.d.test", "mx2.d.test"})
        m.dns.set(h, dns::rrtype::A, ok({a_rdata()}, Sec::Insecure));
    CHECK(m.answer() == kSts);
}

TEST_CASE("implicit MX: the domain itself is the host") {
    Net n;
    n.dns.set("d.test", dns::rrtype::MX, nodata());
    n.dns.set("d.test", dns::rrtype::A, ok({a_rdata()}));
    n.dns.set("d.test", dns::rrtype::AAAA, nodata());
    n.dns.set(dane::tlsa_name("d.test"), dns::rrtype::TLSA, ok({tlsa(2, 0, 1, 32)}));
    CHECK(n.answer() == "dane-only");
}

TEST_CASE("every failure on the DANE path is TEMP, never MTA-STS or NOTFOUND") {
    auto with = [](auto mutate) {
        Net n;
        mutate(n);
        return n.answer();
    };
    CHECK(with([](Net& n) { n.dns.set("d.test", dns::rrtype::MX, bogus()); }) == "TEMP");
    CHECK(with([](Net& n) { n.dns.set("d.test", dns::rrtype::MX, fail("SERVFAIL")); }) == "TEMP");
    CHECK(with([](Net& n) { n.dns.set("d.test", dns::rrtype::MX, fail("timeout")); }) == "TEMP");
    CHECK(with([](Net& n) {
              n.dns.set(dane::tlsa_name("mx2.d.test"), dns::rrtype::TLSA, bogus());
          }) == "TEMP");
    CHECK(with([](Net& n) {
              n.dns.set(dane::tlsa_name("mx1.d.test"), dns::rrtype::TLSA, fail("timeout"));
          }) == "TEMP");
    CHECK(with([](Net& n) { n.dns.set("mx1.d.test", dns::rrtype::A, bogus()); }) == "TEMP");
    CHECK(with([](Net& n) { n.dns.set("mx2.d.test", dns::rrtype::AAAA, fail("SERVFAIL")); }) ==
          "TEMP");
}

TEST_CASE("failure classes can be relaxed, but not for a domain that had DANE") {
    Net n;
    n.opts.dnssec_bogus = config::OnFailure::NotFound;
    n.rebuild();
    n.dns.set(dane::tlsa_name("mx2.d.test"), dns::rrtype::TLSA, bogus());
    CHECK(n.answer() == kSts);  // relaxed: as if DANE did not apply, so MTA-STS decides
    Net none;
    none.opts.dnssec_bogus = config::OnFailure::NotFound;
    none.rebuild();
    none.dns.set("_mta-sts.d.test", dns::rrtype::TXT, nxdomain());
    none.dns.set(dane::tlsa_name("mx2.d.test"), dns::rrtype::TLSA, bogus());
    CHECK(none.answer() == "NOTFOUND");

    Net m;
    m.opts.dnssec_bogus = config::OnFailure::NotFound;
    m.opts.failure_ttl = 5;
    m.rebuild();
    REQUIRE(m.answer() == "dane-only");
    // The DANE result expires; the refresh meets a forged TLSA answer.
    m.dns.set(dane::tlsa_name("mx2.d.test"), dns::rrtype::TLSA, bogus());
    m.clock.advance(4000);
    CHECK(m.answer() == "TEMP");
}

TEST_CASE("a failed refresh keeps an unexpired DANE result") {
    Net n;
    REQUIRE(n.answer() == "dane-only");
    n.dns.set(dane::tlsa_name("mx1.d.test"), dns::rrtype::TLSA, fail("timeout"));
    Decision d;
    n.engine->resolve_fresh("d.test", [&](const Decision& x) { d = x; });
    run(n.dns, n.https);
    CHECK(d.kind == Decision::Kind::Dane);
    CHECK(d.dane_level == "dane-only");
}

TEST_CASE("failures are remembered briefly, then resolved again") {
    Net n;
    n.dns.set("d.test", dns::rrtype::MX, fail("SERVFAIL"));
    CHECK(n.answer() == "TEMP");
    int q = n.dns.queries;
    CHECK(n.answer() == "TEMP");
    CHECK(n.dns.queries == q);
    n.dns.set("d.test", dns::rrtype::MX,
              ok({mx_rdata(10, "mx1.d.test"), mx_rdata(20, "mx2.d.test")}));
    n.clock.advance(n.opts.failure_ttl + 1);
    CHECK(n.answer() == "dane-only");
}

TEST_CASE("queries of one decision go out in two rounds") {
    Net n;
    n.engine->lookup("d.test", [](const Decision&) {});
    CHECK(n.dns.queue.size() == 2);  // round 1: TXT and MX together
    n.dns.step();                    // TXT answered: the fetch starts at once
    n.dns.step();                    // MX answered: A, AAAA, TLSA of both hosts together
    CHECK(n.dns.queue.size() == 6);
    CHECK(n.https.queue.size() == 1);
    run(n.dns, n.https);
    CHECK(n.engine->stats().max_dns_rounds == 2);
    CHECK(n.engine->stats().dns_queries == 8);
}

TEST_CASE("an MX host that is a secure CNAME: TLSA at the target name first") {
    Net n;
    dns::Answer a = ok({a_rdata()});
    a.canonical_name = "real.d.test.";
    n.dns.set("mx2.d.test", dns::rrtype::A, a);
    n.dns.set(dane::tlsa_name("mx2.d.test"), dns::rrtype::TLSA, nxdomain());
    n.dns.set(dane::tlsa_name("real.d.test"), dns::rrtype::TLSA, ok({tlsa(3, 1, 1, 32)}));
    CHECK(n.answer() == "dane-only");
    CHECK(n.engine->stats().max_dns_rounds == 3);

    Net m;  // target without TLSA: the original name's records count
    dns::Answer b = ok({a_rdata()});
    b.canonical_name = "real.d.test";
    m.dns.set("mx2.d.test", dns::rrtype::A, b);
    m.dns.set(dane::tlsa_name("real.d.test"), dns::rrtype::TLSA, nodata());
    CHECK(m.answer() == "dane-only");

    Net f;  // a forged answer at the target defers
    dns::Answer c = ok({a_rdata()});
    c.canonical_name = "real.d.test";
    f.dns.set("mx2.d.test", dns::rrtype::A, c);
    f.dns.set(dane::tlsa_name("real.d.test"), dns::rrtype::TLSA, bogus());
    CHECK(f.answer() == "TEMP");
}

TEST_CASE("a relaxed DANE failure lets the MTA-STS policy decide") {
    Net n;
    n.opts.dns_servfail = config::OnFailure::NotFound;
    n.rebuild();
    for (const char* h : {"mx1.d.test", "mx2.d.test"})
        n.dns.set(dane::tlsa_name(h), dns::rrtype::TLSA, nodata());
    REQUIRE(n.answer() == kSts);
    n.dns.set("d.test", dns::rrtype::MX, fail("SERVFAIL"));
    n.clock.advance(4000);
    CHECK(n.answer() == "secure match=mx1.d.test:mx2.d.test servername=hostname");
    CHECK(n.answer() ==
          "secure match=mx1.d.test:mx2.d.test servername=hostname");  // from the cache
}

TEST_CASE("more MX hosts than are checked: dane-only only with an enforced MTA-STS policy") {
    Net n;
    n.opts.max_mx_hosts = 1;
    n.rebuild();
    expect_partial(n);
}

TEST_CASE("a signed CNAME MX host into an unsigned zone: the original name's TLSA counts") {
    Net n;
    dns::Answer a = ok({a_rdata()}, Sec::Insecure);
    a.canonical_name = "mx.unsigned.example";
    n.dns.set("mx2.d.test", dns::rrtype::A, a);
    n.dns.set("mx2.d.test", dns::rrtype::AAAA, nodata(Sec::Insecure));
    n.dns.set("mx2.d.test", dns::rrtype::CNAME, ok({test::wire_name("mx.unsigned.example")}));
    CHECK(n.answer() == "dane-only");

    Net m;  // the CNAME itself unsigned: no DANE for that host
    m.dns.set("mx2.d.test", dns::rrtype::A, a);
    m.dns.set("mx2.d.test", dns::rrtype::AAAA, nodata(Sec::Insecure));
    m.dns.set("mx2.d.test", dns::rrtype::CNAME,
              ok({test::wire_name("mx.unsigned.example")}, Sec::Insecure));
    expect_partial(m);
}
