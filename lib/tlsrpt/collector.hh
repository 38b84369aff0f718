// SPDX-License-Identifier: MIT
// The TLSRPT collector: a unix datagram socket that speaks libtlsrpt's protocol (a drop-in for
// tlsrpt-collectd), plus a queue for outcomes from the daemon's other sources (Exim events,
// its own policy failures). A thread of its own reads, checks and aggregates datagrams and
// writes each interval's counts in one transaction.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "config/config.hh"
#include "tlsrpt/datagram.hh"
#include "tlsrpt/store.hh"
#include "util/clock.hh"
#include "util/handles.hh"

namespace strictmx::tlsrpt {

class Collector {
  public:
    // Creates and binds the socket (before privileges are dropped). Throws on failure.
    Collector(const config::Config& c, const Clock& clock);
    ~Collector();

    // Opens the store (as the service user) and starts the thread. Throws on failure.
    void start();
    void stop();  // writes what is gathered, joins

    // Outcomes from other sources, any thread. Bounded: past 100,000 waiting sessions further
    // ones are counted as dropped and logged (rate-limited).
    void submit(Session s, const char* source);

    // Fleet mode: what the shipper did (outbox -> database).
    struct FleetStats {
        bool enabled = false;
        std::int64_t shipped_batches = 0, shipped_sessions = 0, duplicates = 0;
        std::int64_t outbox_rows = 0, late_sessions = 0;
        std::string last_error;  // "": the last attempt emptied the outbox
    };
    FleetStats fleet_stats() const;

    // One datagram as received (tests and the benchmark feed it directly).
    void handle(std::string_view bytes, std::size_t real_len, Batch& b);

  private:
    void reader();
    void loop();
    void writer();
    void shipper();  // fleet mode: the outbox to the database, every ship interval
    void commit(Batch& b);  // writer thread: one transaction
    void note_reject(Reject r, const std::string& why, Batch& b);

    const Clock& clock_;
    // Copied at construction: a configuration reload (SIGHUP) replaces the daemon's
    // Config while these threads run.
    std::string path_;
    std::string db_path_;
    int commit_interval_ms_;
    Fd fd_;
    std::unique_ptr<Store> store_;
    struct Raw {
        std::string bytes;
        std::size_t real = 0;  // the datagram's length (more than bytes when truncated)
    };
    std::thread reader_thread_;
    std::thread thread_;
    std::thread writer_thread_;
    std::mutex rmu_;
    std::condition_variable rcv_;
    std::deque<Raw> raw_;
    std::size_t raw_bytes_ = 0;
    std::uint64_t raw_dropped_ = 0;
    std::atomic<std::uint32_t> kernel_overflow_{0};
    std::atomic<bool> stop_{false};
    // The reading thread hands each interval's batch to the writer, so a slow disk never
    // stops the reading (the kernel queue of a unix datagram socket is short).
    std::mutex wmu_;
    std::condition_variable wcv_;
    Batch handoff_;
    bool writer_stop_ = false;
    std::mutex mu_;
    std::deque<std::pair<Session, const char*>> queue_;
    std::uint64_t queue_dropped_ = 0;
    std::uint32_t last_overflow_ = 0;  // SO_RXQ_OVFL: the kernel's drop counter
    Batch pending_;                    // not yet committed (a write failed)
    UnixTime last_reject_log_[kRejectKinds] = {};
    std::int64_t suppressed_[kRejectKinds] = {};
    UnixTime last_store_error_log_ = 0;
    // Fleet mode.
    bool fleet_ = false;
    std::string dsn_, instance_;
    int ship_interval_ms_ = 5000;
    std::int64_t outbox_max_ = 0;
    std::thread shipper_thread_;
    std::condition_variable scv_;
    bool shipper_stop_ = false;  // under smu_
    mutable std::mutex smu_;
    FleetStats fleet_stats_;     // under smu_
};

}  // namespace strictmx::tlsrpt
