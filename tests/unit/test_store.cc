// SPDX-License-Identifier: MIT
// The SQLite store: round trip, corrupt files, unwritable locations.
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>
#include <fstream>

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
    CHECK(s->put(row("example.com")));
    auto got = s->get("example.com");
    REQUIRE(got);
    CHECK(got->policy == row("example.com").policy);
    CHECK(got->mx_expires == 500);
    CHECK(s->load_all().size() == 1);
    CHECK(s->erase("example.com"));
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
    CHECK(s->put(row("example.com")));
    CHECK(s->load_all().size() == 1);
    fs::remove_all(d);
}

TEST_CASE("a truncated database with a valid header is found out and rebuilt") {
    auto d = temp_dir("trunc");
    std::string path = (d / "c.db").string();
    {
        auto s = store::Store::open(path, 1);
        s->begin();
        for (int i = 0; i < 2000; ++i) s->put(row("d" + std::to_string(i) + ".example"));
        s->commit();
    }
    fs::remove(path + "-wal");
    fs::remove(path + "-shm");
    fs::resize_file(path, fs::file_size(path) / 2);
    auto s = store::Store::open(path, 2);
    REQUIRE(s);
    auto status = s->for_each([](store::StsRow&&) {});
    if (status == store::Store::ReadStatus::Corrupt) CHECK(s->recover(2, "test"));
    CHECK(fs::exists(path + ".corrupt-2"));  // found at open or while reading
    CHECK(s->persistent());
    CHECK(s->put(row("example.com")));
    CHECK(s->load_all().size() == 1);
    fs::remove_all(d);
}

TEST_CASE("an unusable location falls back to memory") {
    auto s = store::Store::open("/nonexistent-dir/strictmx/c.db", 1);
    REQUIRE(s);
    CHECK_FALSE(s->persistent());
    CHECK(s->put(row("example.com")));
    CHECK(s->get("example.com"));
}
