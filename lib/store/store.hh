// SPDX-License-Identifier: MIT
// The persistent cache: SQLite in WAL mode, schema documented in docs/cache-schema.md.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/clock.hh"
#include "util/handles.hh"

namespace strictmx::store {

inline constexpr int kSchemaVersion = 2;

// One row of table `domains`: what is known about one destination domain.
struct StsRow {
    std::string domain;
    bool has_policy = false;    // false: a negative entry (no usable policy)
    std::string txt_id;         // id= of the TXT record the policy was fetched for
    std::string policy;         // canonical policy text (LF lines), empty for negatives
    UnixTime fetched_at = 0;    // when the policy was fetched
    UnixTime expires_at = 0;    // policy: fetched_at + max_age; negative: end of the entry
    UnixTime next_refresh = 0;  // when to look at DNS and HTTPS again
    int failures = 0;           // consecutive failed refreshes (backoff)
    std::string last_error;     // why the last refresh failed, or why there is no policy
    std::string mx_hosts;       // the domain's MX host names, space-separated
    UnixTime mx_expires = 0;    // 0: MX set unknown
    int dane_kind = -1;         // -1 unknown, 0 none, 1 dane, 2 dane-only, 3 failed
    UnixTime dane_expires = 0;  // end of the DANE result (DNS TTL, clamped)
    UnixTime dane_refresh = 0;  // when to resolve again before it expires
    std::string dane_why;       // the reason, in words
    int dane_fail_class = 0;    // bits 0-1: failure class (0 servfail, 1 timeout, 2 bogus);
                                // bit 2: the domain had DANE (failures never relaxed)
};

class Store {
  public:
    // Opens (creating if needed) the database at `path`. A file that is not a database,
    // fails its integrity check or carries another schema version is moved aside to
    // PATH.corrupt-TIME with an error log line and a new one is created. A file that cannot
    // be opened or written for other reasons (permissions, read-only, locked) is left alone
    // and the cache lives in memory only. Never throws for file problems.
    static std::unique_ptr<Store> open(const std::string& path, UnixTime now);
    // A read-only view for `strictmx query` (no repair); nullptr when it cannot be opened.
    static std::unique_ptr<Store> open_readonly(const std::string& path);

    std::vector<StsRow> load_all();
    // Streams every row to `fn` without holding them all (start-up with a large cache).
    enum class ReadStatus { Ok, Corrupt, Error };
    ReadStatus for_each(const std::function<void(StsRow&&)>& fn);
    // The file turned out damaged while in use: move it aside and start an empty one (or
    // memory). Returns false when no database could be had.
    bool recover(UnixTime now, const std::string& why);
    std::optional<StsRow> get(const std::string& domain);
    // Write failures (full disk, read-only file) are logged and reported, never thrown:
    // the in-memory cache keeps serving.
    bool put(const StsRow& row);
    bool erase(const std::string& domain);
    // Group many writes into one transaction (bulk loads, benchmarks).
    bool begin();
    bool commit();
    bool persistent() const { return persistent_; }
    const std::string& path() const { return path_; }

  private:
    Store(SqlitePtr db, std::string path, bool persistent);
    bool prepare();
    SqlitePtr db_;
    std::string path_;
    bool persistent_;
    bool retried_ = false;
    SqliteStmtPtr put_stmt_;
    SqliteStmtPtr erase_stmt_;
    SqliteStmtPtr get_stmt_;
};

}  // namespace strictmx::store
