// SPDX-License-Identifier: MIT
// The persistent cache: SQLite in WAL mode, schema documented in docs/cache-schema.md.
// Writes never run on the caller's thread: they are queued (one pending write per domain,
// bounded) and a writer thread commits them in batches, one transaction each, so a slow disk
// or another process holding the write lock never stalls a lookup.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "util/clock.hh"
#include "util/handles.hh"

namespace strictmx::store {

inline constexpr int kSchemaVersion = 3;
// Writes waiting for the writer thread, at most; past it a write is dropped and counted, and
// the owner is told to write its whole state again once the queue has drained.
inline constexpr std::size_t kMaxPendingWrites = 200'000;

// One row of table `domains`: what is known about one destination domain.
struct StsRow {
    std::string domain;
    bool has_policy = false;       // false: a negative entry (no usable policy)
    std::string txt_id;            // id= of the TXT record the policy was fetched for
    std::string policy;            // canonical policy text (LF lines), empty for negatives
    UnixTime fetched_at = 0;       // when the policy was fetched
    UnixTime expires_at = 0;       // policy: fetched_at + max_age; negative: end of the entry
    UnixTime next_refresh = 0;     // when to look at DNS and HTTPS again
    int failures = 0;              // consecutive failed refreshes (backoff)
    std::string last_error;        // why the last refresh failed, or why there is no policy
    std::string mx_hosts;          // the domain's MX host names, space-separated
    UnixTime mx_expires = 0;       // 0: MX set unknown
    int dane_kind = -1;            // -1 unknown, 0 none, 1 dane, 2 dane-only, 3 failed
    UnixTime dane_expires = 0;     // end of the DANE result (DNS TTL, clamped)
    UnixTime dane_refresh = 0;     // when to resolve again before it expires
    std::string dane_why;          // the reason, in words
    int dane_fail_class = 0;       // failure class (0 servfail, 1 timeout, 2 bogus)
    UnixTime dane_seen_until = 0;  // "had DANE" until then (cache.dane_history_ttl)
    UnixTime last_used = 0;        // last lookup, as of the last write
};

class Store {
  public:
    // Opens (creating if needed) the database at `path`. A file that is not a database or
    // carries an unknown schema version is moved aside to PATH.corrupt-TIME with an error log
    // line and a new one is created (schema 2 is migrated in place). A file that cannot be
    // opened or written for other reasons (permissions, read-only) is left alone and the
    // cache lives in memory only. Never throws for file problems.
    static std::unique_ptr<Store> open(const std::string& path, UnixTime now);
    // A read-only view for `strictmx query` (no repair, no writer); nullptr when it cannot
    // be opened.
    static std::unique_ptr<Store> open_readonly(const std::string& path);
    ~Store();
    Store(const Store&) = delete;
    Store& operator=(const Store&) = delete;

    // Streams every readable row to `fn` (start-up). Damage found on the way is stepped
    // over: the readable rows are still delivered, copied into a new file that replaces the
    // damaged one (moved aside), and the result is Salvaged.
    enum class ReadStatus { Ok, Salvaged, Error };
    ReadStatus for_each(const std::function<void(StsRow&&)>& fn, UnixTime now = 0);
    std::vector<StsRow> load_all();
    std::optional<StsRow> get(const std::string& domain);

    // Queue a write. Returns at once; failures (full disk, lock held) are logged by the
    // writer, retried, and never thrown.
    void put(StsRow row);
    void erase(const std::string& domain);
    // Wait until every queued write is committed or has failed (tests, shutdown). True when
    // the queue drained without a failed batch.
    bool flush();

    // True once after writes were lost (queue overflow, a damaged file replaced while
    // running): the owner writes its whole state again.
    bool take_rewrite_needed() { return rewrite_needed_.exchange(false); }

    struct WriterStats {
        std::uint64_t batches = 0, rows = 0, failed_batches = 0, dropped = 0;
        std::size_t pending = 0;
    };
    WriterStats writer_stats() const;
    bool persistent() const { return persistent_.load(); }
    const std::string& path() const { return path_; }

  private:
    Store(SqlitePtr db, std::string path, bool persistent);
    bool prepare();
    void writer_loop();
    bool write_batch(std::unordered_map<std::string, std::optional<StsRow>>& batch);
    bool recover(UnixTime now, const std::string& why);
    bool put_now(const StsRow& row);
    bool erase_now(const std::string& domain);

    mutable std::mutex db_mu_;  // the connection: the writer thread and get()/for_each
    SqlitePtr db_;
    std::string path_;
    std::atomic<bool> persistent_;  // the writer thread may fall back to memory
    SqliteStmtPtr put_stmt_;
    SqliteStmtPtr erase_stmt_;
    SqliteStmtPtr get_stmt_;

    mutable std::mutex q_mu_;
    std::condition_variable q_cv_;     // the writer waits for work
    std::condition_variable idle_cv_;  // flush() waits for the writer
    std::unordered_map<std::string, std::optional<StsRow>> pending_;  // nullopt: erase
    bool writing_ = false;
    bool stop_ = false;
    bool last_batch_ok_ = true;
    WriterStats stats_;
    std::atomic<bool> rewrite_needed_{false};
    std::thread writer_;
};

}  // namespace strictmx::store
