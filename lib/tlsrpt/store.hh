// SPDX-License-Identifier: MIT
// The TLSRPT store (SQLite, WAL): outcomes aggregated per UTC day, report domain, record,
// policy and failure detail, the reports made from them and their deliveries. Counts only,
// never raw datagrams. Schema: docs/tlsrpt-schema.md.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <tuple>
#include <vector>

#include "tlsrpt/datagram.hh"
#include "util/clock.hh"
#include "util/handles.hh"

namespace strictmx::tlsrpt {

// "YYYY-MM-DD" of a Unix time, UTC; and the Unix time of that day's 00:00:00.
std::string utc_day(UnixTime t);
std::optional<UnixTime> day_start(const std::string& day);

// Outcomes gathered in memory between two writes: what one transaction adds.
struct Batch {
    using GroupKey = std::tuple<std::string, std::string, std::string>;  // day, domain, record
    struct Counts {
        std::int64_t success = 0, failure = 0;
        std::map<std::string, std::int64_t> details;  // detail key -> sessions
    };
    std::map<GroupKey, std::map<std::string, Counts>> groups;  // -> policy key -> counts
    std::map<std::string, std::int64_t> counters;             // name -> increment
    std::size_t rows = 0;  // distinct (group, policy) and (.., detail) entries

    void add(const std::string& day, const Session& s);
    bool empty() const { return groups.empty() && counters.empty(); }
    void merge(Batch&& other);
};

struct PolicyCounts {
    PolicyOutcome policy;  // failures empty; see details
    std::int64_t success = 0, failure = 0;
    std::vector<std::pair<FailureDetail, std::int64_t>> details;
};

// Fleet mode: counts waiting in the local outbox until the database has them. A row with an
// empty detail is a result (a = success, b = failure); otherwise a failure detail (a = sessions).
struct OutboxRow {
    std::string day, domain, record, policy, detail;
    std::int64_t a = 0, b = 0;
};
struct OutboxBatch {
    std::int64_t batch = 0;  // increasing per store; with source_id() unique in the fleet
    std::vector<OutboxRow> rows;
};

struct Group {
    std::string day, domain, record;
};

struct Delivery {
    std::int64_t id = 0;
    std::string day, domain, record, destination;  // destination: "mailto:ADDR" or the https URI
    std::string state;                             // pending | delivered | failed
    int attempts = 0;
    UnixTime first_try = 0, next_try = 0;
    std::string last_error, spool_file;
};

class Store {
  public:
    // Opens (creating the file and schema unless read_only). Throws std::runtime_error with
    // the path and SQLite's message.
    static std::unique_ptr<Store> open(const std::string& path, bool read_only = false);

    // One transaction: every count in the batch, or nothing (returns false, batch untouched).
    bool apply(const Batch& b, std::string& err);

    std::map<std::string, std::int64_t> counters();
    std::vector<std::string> days();  // days with outcomes, oldest first
    std::vector<Group> groups(const std::string& day);
    std::vector<PolicyCounts> policies(const Group& g);
    // Every group of `day` with its policies, in one pass over the day's rows (two cursors
    // walked together): what building 100,000 reports needs, without a query per report.
    // `fn` may use the store meanwhile (deliveries, report ids).
    void for_each_group(const std::string& day,
                        const std::function<void(const Group&, std::vector<PolicyCounts>&)>& fn);

    // The report of a group: its unique part, fixed at first use so that a retry or a later
    // run sends the same report-id. nullopt when none yet.
    std::optional<std::string> report_uid(const Group& g);
    bool set_report_uid(const Group& g, const std::string& uid, UnixTime now);

    std::optional<Delivery> delivery(const Group& g, const std::string& destination);
    bool add_delivery(const Delivery& d);
    bool update_delivery(const Delivery& d);
    std::vector<Delivery> deliveries(const std::string& state);

    // Drop outcomes, reports and finished deliveries of days before `day`.
    int prune_before(const std::string& day);

    // Fleet mode (tlsrpt/fleet.hh). From now on apply() also appends its counts to the
    // outbox, in the same transaction, while it holds fewer than `max_rows` rows; past it
    // the counts stay local and the sessions add to counter tlsrpt_unshipped.
    void enable_outbox(std::int64_t max_rows);
    std::string source_id();  // random, made once per store: names its outbox batches
    std::vector<OutboxBatch> outbox(int max_batches);  // oldest first
    bool outbox_done(std::int64_t batch);
    std::int64_t outbox_rows();
    // The day's counts replaced by `rows` (the fleet's sums), marked imported, in one
    // transaction.
    bool replace_day(const std::string& day, const std::vector<OutboxRow>& rows, std::string& err);
    std::optional<std::string> meta_get(const std::string& key);
    bool meta_set(const std::string& key, const std::string& value);

  private:
    explicit Store(SqlitePtr db) : db_(std::move(db)) {}
    sqlite3_stmt* cached(const char* sql);  // prepared once, reset for each use
    void append_outbox(const Batch& b);     // inside apply()'s transaction
    std::int64_t outbox_max_ = 0;           // 0: no outbox
    SqlitePtr db_;
    std::map<const char*, SqliteStmtPtr> stmts_;
};

}  // namespace strictmx::tlsrpt
