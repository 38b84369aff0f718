// SPDX-License-Identifier: MIT
// Fleet mode's pure parts: [store] settings, when a shared row answers and when it is
// refused, the TLSRPT outbox (bounded, in the counts' transaction) and the day import, the
// text forms sent to PostgreSQL. The database itself: tests/integration/t_fleet.py.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <algorithm>
#include <filesystem>
#include <string>

#include "config/config.hh"
#include "policy/engine.hh"
#include "store/pg.hh"
#include "tlsrpt/fleet.hh"
#include "tlsrpt/store.hh"

using namespace strictmx;

namespace {
store::StsRow good_row(UnixTime now) {
    store::StsRow r;
    r.domain = "example.org";
    r.has_policy = true;
    r.txt_id = "20261205";
    r.policy = "version: STSv1\nmode: enforce\nmx: mx1.example.org\nmax_age: 86400\n";
    r.fetched_at = now - 10;
    r.expires_at = now + 86'000;
    r.next_refresh = now + 3000;
    r.mx_hosts = "mx1.example.org";
    r.mx_expires = now + 300;
    r.dane_kind = 0;
    r.dane_expires = now + 300;
    r.dane_refresh = now + 200;
    r.last_used = now;
    return r;
}
}  // namespace

TEST_CASE("[store] settings", "[fleet]") {
    auto c = config::parse(R"(
[store]
backend = "postgresql"
dsn = "host=/run/postgresql dbname=strictmx user=strictmx"
instance = "relay-1.example"
pool = 8
lease_s = 20
lease_wait_ms = 1500
)",
                           "t.toml");
    CHECK(config::fleet(c));
    CHECK(c.store_pool == 8);
    CHECK(config::instance_name(c) == "relay-1.example");
    CHECK(!config::fleet(config::defaults()));
    CHECK(!config::instance_name(config::defaults()).empty());
    CHECK_THROWS_WITH(config::parse("[store]\nbackend = \"redis\"\n", "t.toml"),
                      Catch::Contains("store.backend"));
    CHECK_THROWS_WITH(config::parse("[store]\nbackend = \"postgresql\"\n", "t.toml"),
                      Catch::Contains("store.dsn"));
    CHECK_THROWS_WITH(
        config::parse("[store]\nbackend = \"postgresql\"\ndsn = \"x\"\ninstance = \"a b\"\n", "t.toml"),
        Catch::Contains("store.instance"));
    CHECK_THROWS_WITH(config::parse("[store]\npool = 0\n", "t.toml"), Catch::Contains("store.pool"));
    // Bound at start: a reload keeps them and names them.
    auto next = c;
    next.store_dsn = "host=db2";
    std::vector<std::string> restart;
    auto r = config::reloaded(c, next, restart);
    CHECK(r.store_dsn == c.store_dsn);
    CHECK(std::find(restart.begin(), restart.end(), "store.dsn") != restart.end());
}

TEST_CASE("a shared row answers only while nothing in it is expired or due", "[fleet]") {
    UnixTime now = 1'800'000'000;
    auto r = good_row(now);
    CHECK(policy::Engine::row_usable(r, now));
    auto due = r;
    due.next_refresh = now;  // the policy is due: resolved under the lease instead
    CHECK(!policy::Engine::row_usable(due, now));
    auto dane_due = r;
    dane_due.dane_refresh = now - 1;
    CHECK(!policy::Engine::row_usable(dane_due, now));
    auto failed = r;
    failed.dane_kind = 3;  // a DNS failure is never taken from another instance
    CHECK(!policy::Engine::row_usable(failed, now));
    auto unknown = r;
    unknown.dane_kind = -1;
    CHECK(!policy::Engine::row_usable(unknown, now));
    auto negative = r;
    negative.has_policy = false;
    negative.policy.clear();
    negative.expires_at = now + 100;
    CHECK(policy::Engine::row_usable(negative, now));
    negative.expires_at = now;
    CHECK(!policy::Engine::row_usable(negative, now));
    auto dane = negative;  // DANE applies: the MTA-STS side does not matter
    dane.dane_kind = 2;
    CHECK(policy::Engine::row_usable(dane, now));
}

TEST_CASE("a shared row is checked like data from the network", "[fleet]") {
    UnixTime now = 1'800'000'000;
    std::string why;
    CHECK(policy::Engine::row_plausible(good_row(now), why));
    auto bad = [&](auto change) {
        auto r = good_row(now);
        change(r);
        std::string w;
        bool ok = policy::Engine::row_plausible(r, w);
        CHECK(!w.empty());
        return !ok;
    };
    CHECK(bad([](store::StsRow& r) { r.domain = "Example.org"; }));
    CHECK(bad([](store::StsRow& r) { r.domain = "exa mple.org"; }));
    CHECK(bad([](store::StsRow& r) { r.domain = std::string("a\0b.org", 7); }));
    CHECK(bad([](store::StsRow& r) { r.mx_hosts = "mx1.example.org evil;host"; }));
    CHECK(bad([](store::StsRow& r) { r.policy = "version: STSv2\nmode: enforce\n"; }));
    CHECK(bad([](store::StsRow& r) { r.policy = std::string(70'000, 'a'); }));
    CHECK(bad([](store::StsRow& r) { r.last_error = "line\nbreak"; }));
    CHECK(bad([](store::StsRow& r) { r.dane_why = std::string(2000, 'x'); }));
    CHECK(bad([](store::StsRow& r) { r.txt_id = std::string(33, '1'); }));
    CHECK(bad([](store::StsRow& r) { r.dane_kind = 9; }));
    CHECK(bad([](store::StsRow& r) { r.dane_fail_class = -1; }));
    CHECK(bad([](store::StsRow& r) { r.failures = -5; }));
    CHECK(bad([](store::StsRow& r) {
        r.has_policy = false;  // text without the flag
    }));
}

TEST_CASE("text sent to PostgreSQL", "[fleet]") {
    using tlsrpt::fleet::array_literal;
    CHECK(array_literal({}) == "{}");
    CHECK(array_literal({"a", "b c"}) == "{\"a\",\"b c\"}");
    CHECK(array_literal({"q\"uote", "back\\slash", "{,}"}) ==
          "{\"q\\\"uote\",\"back\\\\slash\",\"{,}\"}");
    using store::pg::redact;
    CHECK(redact("host=db1 password=s3cret user=x") == "host=db1 password=*** user=x");
    CHECK(redact("host=db1 password = 'a b\\' c' user=x") == "host=db1 password = *** user=x");
    CHECK(redact("postgresql://u:s3cret@db1/strictmx") == "postgresql://u:***@db1/strictmx");
    CHECK(redact("host=db1 user=x") == "host=db1 user=x");
}

TEST_CASE("tlsrpt outbox: in the counts' transaction, bounded, batches in order", "[fleet]") {
    char tmpl[] = "/tmp/strictmx-outbox-XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    std::string path = std::string(tmpl) + "/t.db";
    auto store = tlsrpt::Store::open(path);
    tlsrpt::Session ok;
    ok.domain = "h.example";
    ok.record = "v=TLSRPTv1; rua=mailto:h@x.example";
    ok.policies.push_back(tlsrpt::PolicyOutcome{});
    ok.policies[0].domain = "h.example";
    auto fail = ok;
    fail.policies[0].failed = true;
    fail.policies[0].failures.push_back(tlsrpt::FailureDetail{});
    std::string err;

    tlsrpt::Batch before;  // before the outbox exists: local only
    before.add("2026-12-05", ok);
    REQUIRE(store->apply(before, err));
    store->enable_outbox(4);
    std::string source = store->source_id();
    CHECK(source.size() == 32);
    store->enable_outbox(4);
    CHECK(store->source_id() == source);  // made once

    tlsrpt::Batch b1;
    for (int i = 0; i < 3; ++i) b1.add("2026-12-05", ok);
    b1.add("2026-12-05", fail);
    REQUIRE(store->apply(b1, err));  // two rows: the result row and one detail row
    tlsrpt::Batch b2;
    b2.add("2026-12-06", ok);
    REQUIRE(store->apply(b2, err));
    CHECK(store->outbox_rows() == 3);
    tlsrpt::Batch b3;  // 3 rows held + 2 more > 4: kept locally, counted as unshipped
    for (int i = 0; i < 4; ++i) b3.add("2026-12-07", fail);
    b3.add("2026-12-07", ok);
    REQUIRE(store->apply(b3, err));
    CHECK(store->outbox_rows() == 3);
    CHECK(store->counters()["tlsrpt_unshipped"] == 5);

    auto batches = store->outbox(10);
    REQUIRE(batches.size() == 2);
    CHECK(batches[0].batch < batches[1].batch);
    std::int64_t ok_sessions = 0, failed_sessions = 0, details = 0;
    for (const auto& r : batches[0].rows) {
        if (r.detail.empty()) {
            ok_sessions += r.a;
            failed_sessions += r.b;
        } else {
            details += r.a;
        }
    }
    CHECK(ok_sessions == 3);
    CHECK(failed_sessions == 1);
    CHECK(details == 1);
    REQUIRE(store->outbox_done(batches[0].batch));
    CHECK(store->outbox_rows() == 1);
    // Numbers keep increasing after the outbox empties (a reused number would be refused
    // by the database as already shipped).
    REQUIRE(store->outbox_done(batches[1].batch));
    tlsrpt::Batch b4;
    b4.add("2026-12-07", ok);
    REQUIRE(store->apply(b4, err));
    auto later = store->outbox(10);
    REQUIRE(later.size() == 1);
    CHECK(later[0].batch > batches[1].batch);

    // The fleet's sums replace the day's local counts.
    std::vector<tlsrpt::OutboxRow> fleet_rows = {
        {"2026-12-05", "h.example", ok.record, batches[0].rows[0].policy, "", 40, 2}};
    REQUIRE(store->replace_day("2026-12-05", fleet_rows, err));
    auto groups = store->groups("2026-12-05");
    REQUIRE(groups.size() == 1);
    auto pols = store->policies(groups[0]);
    REQUIRE(pols.size() == 1);
    CHECK(pols[0].success == 40);
    CHECK(pols[0].failure == 2);
    CHECK(pols[0].details.empty());
    CHECK(store->meta_get("fleet_imported:2026-12-05") == std::optional<std::string>("1"));
    std::filesystem::remove_all(tmpl);
}
