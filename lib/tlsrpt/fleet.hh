// SPDX-License-Identifier: MIT
// TLSRPT in fleet mode ([store] backend = "postgresql"): each instance's counts go from its
// local outbox to the shared tables, every batch exactly once; one instance per day claims
// the day, copies the fleet's sums into its own store and reports them (docs/fleet-schema.md).
//
// Exactly once: a batch is added in one transaction together with its (source, batch) row
// in tlsrpt_shipped, whose primary key refuses a second copy. A batch whose COMMIT was lost
// with the connection is sent again, refused as a duplicate, and only then deleted locally.
#pragma once

#include <libpq-fe.h>

#include <cstdint>
#include <string>
#include <vector>

#include "tlsrpt/store.hh"

namespace strictmx::tlsrpt::fleet {

struct ShipResult {
    int batches = 0;          // added now
    int duplicates = 0;       // already in the database (a lost COMMIT), dropped locally
    std::int64_t sessions = 0;
    std::int64_t late_sessions = 0;  // for days another instance already reported
    std::string error;        // "": every batch in the outbox is in the database
};
// Ships the outbox, oldest batch first, up to `max_batches`.
ShipResult ship(Store& local, PGconn* c, const std::string& instance, int max_batches = 1000);

// Claims `day` for `instance` unless another instance has; returns the holder. Throws
// std::runtime_error with the database's message.
std::string claim_day(PGconn* c, const std::string& day, const std::string& instance);
// The fleet's counts of `day`. Throws std::runtime_error.
std::vector<OutboxRow> day_rows(PGconn* c, const std::string& day);
// Days with counts in the database, oldest first. Throws std::runtime_error.
std::vector<std::string> days(PGconn* c);

// PostgreSQL text[] literal of `v` (quoted, backslash-escaped).
std::string array_literal(const std::vector<std::string>& v);

}  // namespace strictmx::tlsrpt::fleet
