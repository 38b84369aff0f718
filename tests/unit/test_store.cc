// SPDX-License-Identifier: MIT
// The SQLite store: round trip, corrupt files, unwritable locations.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <thread>

#include "store/store.hh"

using namespace strictmx;
namespace fs = std::filesystem;

namespace {
fs::path temp_dir(const char* tag) {
    auto d = fs::temp_directory_path() /
             (std::string("strictmx-") + tag + "-" + std::to_string(::getpid()));
    fs::remove_all(d);
    fs::create_directories(d);
    return d;
}
store::StsRow row(const std::string& domain) {
    store::StsRow r;
    r.domain = domain;
    r.has_policy = true;
    r.txt_id = "abc";
    r.policy = "version: STSv1\nmode: enforce\nmx: mx.example.com\nmax_age: 600\n";
    r.fetched_at = 100;
    r.expires_at = 700;
    r.next_refresh = 400;
    r.mx_hosts = "mx.example.com";
    r.mx_expires = 500;
    return r;
}
}  // namespace

TEST_CASE("store round trip") {
    auto d = temp_dir("store");
    auto s = store::Store::open((d / "c.db").string(), 1);
    REQUIRE(s);
    CHECK(s->persistent());
    s->put(row("example.com"));
    CHECK(s->flush());
    auto got = s->get("example.com");
    REQUIRE(got);
    CHECK(got->policy == row("example.com").policy);
    CHECK(got->mx_expires == 500);
    CHECK(s->load_all().size() == 1);
    s->erase("example.com");
    CHECK(s->flush());
    CHECK(s->load_all().empty());
    fs::remove_all(d);
}

TEST_CASE("a corrupt database is moved aside and rebuilt") {
    auto d = temp_dir("corrupt");
    std::string path = (d / "c.db").string();
    {
        std::ofstream out(path);
        out << std::string(8192, 'x');
    }
    auto s = store::Store::open(path, 42);
    REQUIRE(s);
    CHECK(s->persistent());
    CHECK(fs::exists(path + ".corrupt-42"));
    s->put(row("example.com"));
    CHECK(s->flush());
    CHECK(s->load_all().size() == 1);
    fs::remove_all(d);
}

namespace {
std::string fill(const std::string& path, int n) {
    auto s = store::Store::open(path, 1);
    for (int i = 0; i < n; ++i) s->put(row("d" + std::to_string(i) + ".example"));
    REQUIRE(s->flush());
    s.reset();
    fs::remove(path + "-wal");
    fs::remove(path + "-shm");
    return path;
}
}  // namespace

TEST_CASE("a truncated database keeps the rows that can still be read") {
    auto d = temp_dir("trunc");
    std::string path = fill((d / "c.db").string(), 2000);
    fs::resize_file(path, fs::file_size(path) / 2);
    auto s = store::Store::open(path, 2);
    REQUIRE(s);
    std::size_t n = 0;
    auto status = s->for_each(
        [&](store::StsRow&& r) {
            CHECK(r.domain.ends_with(".example"));
            ++n;
        },
        2);
    // Found at open (the schema check) or while reading: either way the rows are kept.
    CHECK(status != store::Store::ReadStatus::Error);
    CHECK(fs::exists(path + ".corrupt-2"));
    // About half the rows sit before the cut.
    CHECK(n > 500);
    CHECK(n < 2000);
    CHECK(s->persistent());
    // The salvaged rows are in the new file, which is whole.
    CHECK(s->load_all().size() == n);
    s->put(row("example.com"));
    CHECK(s->flush());
    CHECK(s->load_all().size() == n + 1);
    fs::remove_all(d);
}

TEST_CASE("a damaged page in the middle costs its rows, not the cache") {
    auto d = temp_dir("hole");
    std::string path = fill((d / "c.db").string(), 3000);
    auto size = fs::file_size(path);
    {
        // Overwrite a few pages in the middle of the file with garbage.
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(static_cast<std::streamoff>(size / 2 / 4096 * 4096));
        std::string junk(3 * 4096, '\xa5');
        f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    auto s = store::Store::open(path, 3);
    REQUIRE(s);
    std::size_t n = 0;
    auto status = s->for_each([&](store::StsRow&&) { ++n; }, 3);
    CHECK(status == store::Store::ReadStatus::Salvaged);
    CHECK(fs::exists(path + ".corrupt-3"));
    // Rows after the damaged pages were kept too.
    CHECK(n > 2000);
    CHECK(n < 3000);
    CHECK(s->load_all().size() == n);
    fs::remove_all(d);
}

TEST_CASE("a schema 2 file is migrated: had-DANE becomes a time, rows kept") {
    auto d = temp_dir("migrate");
    std::string path = (d / "c.db").string();
    {
        sqlite3* db = nullptr;
        REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
        const char* v2 = R"SQL(
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE domains (domain TEXT PRIMARY KEY, has_policy INTEGER NOT NULL,
 txt_id TEXT NOT NULL DEFAULT '', policy TEXT NOT NULL DEFAULT '',
 fetched_at INTEGER NOT NULL DEFAULT 0, expires_at INTEGER NOT NULL,
 next_refresh INTEGER NOT NULL DEFAULT 0, failures INTEGER NOT NULL DEFAULT 0,
 last_error TEXT NOT NULL DEFAULT '', mx_hosts TEXT NOT NULL DEFAULT '',
 mx_expires INTEGER NOT NULL DEFAULT 0, dane_kind INTEGER NOT NULL DEFAULT -1,
 dane_expires INTEGER NOT NULL DEFAULT 0, dane_refresh INTEGER NOT NULL DEFAULT 0,
 dane_why TEXT NOT NULL DEFAULT '', dane_fail INTEGER NOT NULL DEFAULT 0);
INSERT INTO meta VALUES ('schema_version', '2');
INSERT INTO domains(domain, has_policy, expires_at, dane_kind, dane_fail)
 VALUES ('dane.example', 0, 0, 3, 6), ('plain.example', 0, 9999999999, 0, 0);
)SQL";
        REQUIRE(sqlite3_exec(db, v2, nullptr, nullptr, nullptr) == SQLITE_OK);
        sqlite3_close(db);
    }
    auto s = store::Store::open(path, 5);
    REQUIRE(s);
    CHECK_FALSE(fs::exists(path + ".corrupt-5"));
    auto dane = s->get("dane.example");
    REQUIRE(dane);
    CHECK(dane->dane_fail_class == 2);
    CHECK(dane->dane_seen_until > std::time(nullptr));
    auto plain = s->get("plain.example");
    REQUIRE(plain);
    CHECK(plain->dane_seen_until == 0);
    fs::remove_all(d);
}

TEST_CASE("writes never wait for another process holding the write lock") {
    auto d = temp_dir("locked");
    std::string path = (d / "c.db").string();
    auto s = store::Store::open(path, 1);
    REQUIRE(s);
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
    // With the lock held elsewhere, queueing writes returns at once (the writer waits).
    for (int i = 0; i < 100; ++i) s->put(row("d" + std::to_string(i) + ".example"));
    // Nothing was written while the lock was held, so queueing did not wait for it.
    CHECK(s->writer_stats().rows == 0);
    sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    // Once released, everything queued lands (the writer retries).
    for (int i = 0; i < 200 && s->load_all().size() < 100; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
    CHECK(s->load_all().size() == 100);
    fs::remove_all(d);
}

TEST_CASE("the write queue is bounded: past it writes are dropped and a rewrite is asked for") {
    auto d = temp_dir("bound");
    std::string path = (d / "c.db").string();
    auto s = store::Store::open(path, 1);
    REQUIRE(s);
    sqlite3* other = nullptr;
    REQUIRE(sqlite3_open(path.c_str(), &other) == SQLITE_OK);
    REQUIRE(sqlite3_exec(other, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr) == SQLITE_OK);
    CHECK_FALSE(s->take_rewrite_needed());
    store::StsRow r = row("x.example");
    // The writer holds at most one batch out (waiting for the lock); the queue the rest.
    for (std::size_t i = 0; i < 2 * store::kMaxPendingWrites + 1000; ++i) {
        r.domain = "d" + std::to_string(i) + ".example";
        s->put(r);
    }
    auto st = s->writer_stats();
    CHECK(st.pending <= store::kMaxPendingWrites);
    CHECK(st.dropped >= 1000);
    CHECK(s->take_rewrite_needed());
    CHECK_FALSE(s->take_rewrite_needed());
    sqlite3_exec(other, "COMMIT", nullptr, nullptr, nullptr);
    sqlite3_close(other);
    s.reset();
    fs::remove_all(d);
}

TEST_CASE("an unusable location falls back to memory") {
    auto s = store::Store::open("/nonexistent-dir/strictmx/c.db", 1);
    REQUIRE(s);
    CHECK_FALSE(s->persistent());
    s->put(row("example.com"));
    CHECK(s->flush());
}
