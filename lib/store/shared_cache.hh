// SPDX-License-Identifier: MIT
// Fleet mode's shared policy cache in PostgreSQL (docs/fleet-schema.md).
//
// Every instance keeps its own in-memory index; the database is asked only on a miss or a
// due refresh, never on a hit. claim() reads the domain's shared row: usable, it is adopted
// (Fresh); otherwise the caller tries to take the domain's lease (one row in cache_leases
// whose `until` is in the future): taken, this instance resolves (Lease) and publish()
// writes the result for all, releases the lease and NOTIFYs the others; held by another
// instance, the caller waits for that NOTIFY (Busy). A lease whose holder died ends at its
// `until` (store.lease_s), and waiters stop waiting after store.lease_wait_ms and resolve on
// their own: a dead holder costs a delay, never an answer.
//
// Threads, not libpq's asynchronous API on the loop: libpq's connect, TLS and DNS steps can
// still block, and a fixed pool of store.pool connections with bounded queues is simpler
// to bound than one non-blocking state machine per connection; lookups never wait on it
// longer than store.timeout_ms (a timer on the loop answers Unavailable and the instance
// resolves alone). One more thread holds the LISTEN connection.
#pragma once

#include <event2/event.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "store/pg.hh"
#include "store/store.hh"
#include "util/loop_post.hh"

namespace strictmx::store {

struct SharedOptions {
    pg::Options db;
    std::string instance;         // this instance's name in leases and notifications
    int pool = 4;                 // worker connections
    int lease_s = 30;             // a lease ends this long after it was taken
    int timeout_ms = 1000;        // a claim not answered by then counts as Unavailable
    std::size_t max_tasks = 10'000;       // claims and reads waiting for a worker
    std::size_t max_publish = 100'000;    // rows waiting to be written (one per domain)
};

class SharedCache {
  public:
    enum class Claim { Fresh, Lease, Busy, Unavailable };
    struct ClaimResult {
        Claim claim = Claim::Unavailable;
        std::optional<StsRow> row;  // the shared row, usable or not, when there is one
        std::string why;            // Unavailable: the database's error; Busy: the holder
    };
    using ClaimCb = std::function<void(ClaimResult)>;
    // Whether a shared row can be answered from as it is. Runs on a worker thread: it may
    // read only the row and the time.
    using Usable = std::function<bool(const StsRow&)>;
    struct Change {
        std::string domain;
        bool flushed = false;  // `strictmx cache flush` on another instance
        std::string by;        // the instance that wrote it
    };
    using ChangeCb = std::function<void(const Change&)>;
    using RowCb = std::function<void(std::optional<StsRow>)>;

    SharedCache(event_base* base, SharedOptions o);
    ~SharedCache();
    SharedCache(const SharedCache&) = delete;
    SharedCache& operator=(const SharedCache&) = delete;

    // Starts the workers and the listener. `on_change` runs on the loop for every change
    // another instance announced (or that was missed while disconnected).
    void start(ChangeCb on_change);

    // All callbacks run on the loop thread, exactly once; claim's within store.timeout_ms.
    void claim(const std::string& domain, Usable usable, ClaimCb cb);
    void fetch(const std::string& domain, RowCb cb);
    // Queued, coalesced per domain, written in batches; kept and retried while the
    // database is away (bounded: past max_publish the oldest unwritten row is dropped and
    // counted). Each write releases this instance's lease on the domain and notifies.
    void publish(StsRow row);
    // Deletes the shared row and tells the others to drop theirs (strictmx cache flush).
    void forget(const std::string& domain);

    struct Stats {
        std::uint64_t claims = 0, fresh = 0, leases = 0, busy = 0, unavailable = 0;
        std::uint64_t timeouts = 0, published = 0, publish_errors = 0, publish_dropped = 0;
        std::uint64_t changes = 0, refused = 0;
        std::size_t publish_pending = 0;
        bool connected = false;   // the last statement of any connection succeeded
        bool listening = false;   // the LISTEN connection is up
        std::string last_error;
    };
    Stats stats() const;
    const std::string& instance() const { return o_.instance; }
    std::string dsn_redacted() const { return pg::redact(o_.db.dsn); }

    // Row <-> result columns (also used by `strictmx store` and tests).
    static const char* columns();
    static StsRow row_from(const pg::Result& r, int i);

  private:
    struct Task {
        enum Kind { ClaimTask, FetchTask, ForgetTask } kind = ClaimTask;
        std::uint64_t id = 0;
        std::string domain;
        Usable usable;
        std::chrono::steady_clock::time_point deadline;
    };
    struct Waiting {
        ClaimCb claim_cb;
        RowCb row_cb;
        EventPtr timer;
    };
    struct Worker {
        pg::ConnPtr conn;
        std::chrono::steady_clock::time_point next_connect{};
    };
    void enqueue(Task t, Waiting w);  // loop thread: queue `t`, arm the timer of `w`
    bool ensure(Worker& w, std::string& why);
    void worker_main();
    void listener_main();
    void run_task(Worker& w, Task& t);
    bool write_rows(Worker& w, std::vector<StsRow>& rows, std::string& why);
    void deliver(std::uint64_t id, ClaimResult r, std::optional<StsRow> row);  // loop thread
    static void on_timeout(evutil_socket_t, short, void* arg) noexcept;
    void note_error(const std::string& why);

    event_base* base_;
    SharedOptions o_;
    ChangeCb on_change_;
    std::unique_ptr<LoopPost> post_;

    // Loop thread only.
    std::uint64_t next_id_ = 1;
    std::unordered_map<std::uint64_t, Waiting> waiting_;

    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::deque<Task> tasks_;
    std::unordered_map<std::string, StsRow> publish_;  // domain -> newest unwritten row
    std::deque<std::string> publish_order_;            // domains in publish_, oldest first
    std::chrono::steady_clock::time_point publish_retry_at_{};
    bool stop_ = false;
    Stats stats_;
    std::vector<std::thread> threads_;
};

}  // namespace strictmx::store
