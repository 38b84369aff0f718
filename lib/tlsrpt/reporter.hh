// SPDX-License-Identifier: MIT
// Building and delivering a day's reports, the spool of failed deliveries and its retries:
// what `strictmx tlsrpt send|flush|run|stats` do.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "config/config.hh"
#include "tlsrpt/store.hh"
#include "util/clock.hh"

namespace strictmx::tlsrpt {

std::string db_path(const config::Config& c);
std::string spool_path(const config::Config& c);

struct RunSummary {
    int reports = 0;    // reports built
    int delivered = 0;  // deliveries accepted now
    int queued = 0;     // deliveries that failed now and wait in the spool
    int gave_up = 0;    // deliveries past tlsrpt.retry_for_s
    int skipped = 0;    // destinations already delivered or queued before
    int errors = 0;     // deliveries neither delivered nor queued (spool not writable ...)
    int written = 0;    // dry run: files written
    std::string elsewhere;  // fleet mode: the instance that reports the day instead
};

// Fleet mode: a day is claimed this long after it ended at the earliest, so that every
// instance has shipped its counts (they ship every few seconds while the database is up).
inline constexpr long kFleetGraceSeconds = 900;

class Reporter {
  public:
    // Throws std::runtime_error when the configuration cannot make reports (no contact_info,
    // no submitter domain, store not readable).
    Reporter(const config::Config& c, const Clock& clock, bool read_only = false);

    // Build `day`'s reports and deliver each to every destination not delivered or queued
    // before. dry_run_dir non-empty: write one file per delivery there, change nothing.
    RunSummary send_day(const std::string& day, const std::string& dry_run_dir = {});

    // Retry queued deliveries: all of them (`all`), or those whose backoff has passed.
    RunSummary flush(bool all);

    // The timer's work: reports of finished days whose random delay has passed, due
    // retries, and pruning of days past tlsrpt.retention_days.
    RunSummary run();

    // Counters of the collector and of the deliveries, as key=value pairs.
    std::map<std::string, std::int64_t> stats();

  private:
    bool send_group(const Group& g, const std::vector<PolicyCounts>& policies,
                    const std::string& dry_run_dir, RunSummary& sum);
    void retry(Delivery d, RunSummary& sum);
    UnixTime backoff(int attempts) const;
    // Fleet mode: ship this host's outbox, then claim `day`; when it is ours, copy the
    // fleet's sums into the local store once. Returns the holder. Throws when the database
    // cannot be reached.
    std::string fleet_prepare(const std::string& day, bool claim);
    std::vector<OutboxRow> fleet_rows(const std::string& day);

    const config::Config& cfg_;
    const Clock& clock_;
    std::unique_ptr<Store> store_;  // null: no store yet (nothing collected)
    std::string submitter_;
    bool fleet_ = false;
    std::string instance_;
    bool read_only_ = false;
};

}  // namespace strictmx::tlsrpt
