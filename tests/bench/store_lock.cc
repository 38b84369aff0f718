// SPDX-License-Identifier: MIT
// strictmx-bench-store-lock: how long a cache write holds up the event loop while another
// process holds the database's write lock. Compares strictmx's queued writes with a write
// on the caller's thread (what the daemon did before: one implicit transaction per write,
// 2 s busy timeout). Prints the worst and median time of one write call for each.
#include <sqlite3.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "store/store.hh"

namespace {
using Clock = std::chrono::steady_clock;

strictmx::store::StsRow row(int i) {
    strictmx::store::StsRow r;
    r.domain = "d" + std::to_string(i) + ".bench.test";
    r.has_policy = true;
    r.txt_id = "1";
    r.policy = "version: STSv1\nmode: enforce\nmx: mx1.bench.test\nmax_age: 86400\n";
    r.expires_at = 2'000'000'000;
    return r;
}

void report(const char* what, std::vector<double>& us) {
    std::sort(us.begin(), us.end());
    std::printf("%-28s writes=%zu median=%.1f us p99=%.1f us worst=%.1f us\n", what, us.size(),
                us[us.size() / 2], us[us.size() * 99 / 100], us.back());
}

// Hold the write lock from another connection for `hold`, as another process would.
std::thread locker(const std::string& path, std::chrono::milliseconds hold) {
    return std::thread([path, hold] {
        sqlite3* db = nullptr;
        sqlite3_open(path.c_str(), &db);
        sqlite3_exec(db, "BEGIN EXCLUSIVE", nullptr, nullptr, nullptr);
        std::this_thread::sleep_for(hold);
        sqlite3_exec(db, "COMMIT", nullptr, nullptr, nullptr);
        sqlite3_close(db);
    });
}
}  // namespace

int main(int argc, char** argv) {
    std::string dir = argc > 1 ? argv[1] : "/tmp/strictmx-store-lock";
    int writes = argc > 2 ? std::stoi(argv[2]) : 200;
    auto hold = std::chrono::milliseconds(3000);
    std::filesystem::remove_all(dir);
    std::filesystem::create_directories(dir);

    {  // strictmx: writes queued for the writer thread
        std::string path = dir + "/queued.db";
        auto store = strictmx::store::Store::open(path, 1);
        auto t = locker(path, hold);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        std::vector<double> us;
        for (int i = 0; i < writes; ++i) {
            auto start = Clock::now();
            store->put(row(i));
            us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        t.join();
        store->flush();
        report("queued (strictmx)", us);
    }
    {  // on the caller's thread, one statement each, busy timeout 2 s
        std::string path = dir + "/direct.db";
        sqlite3* db = nullptr;
        sqlite3_open(path.c_str(), &db);
        sqlite3_exec(db,
                     "PRAGMA journal_mode=WAL; CREATE TABLE domains(domain TEXT PRIMARY KEY, "
                     "policy TEXT)",
                     nullptr, nullptr, nullptr);
        sqlite3_busy_timeout(db, 2000);
        auto t = locker(path, hold);
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
        std::vector<double> us;
        sqlite3_stmt* st = nullptr;
        sqlite3_prepare_v2(db, "INSERT OR REPLACE INTO domains VALUES (?1, ?2)", -1, &st, nullptr);
        for (int i = 0; i < writes && us.size() < 20; ++i) {
            auto r = row(i);
            auto start = Clock::now();
            sqlite3_reset(st);
            sqlite3_bind_text(st, 1, r.domain.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_bind_text(st, 2, r.policy.c_str(), -1, SQLITE_TRANSIENT);
            sqlite3_step(st);
            us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - start).count());
        }
        sqlite3_finalize(st);
        t.join();
        sqlite3_close(db);
        report("on the loop (before)", us);
    }
    std::filesystem::remove_all(dir);
    return 0;
}
