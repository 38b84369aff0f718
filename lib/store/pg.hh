// SPDX-License-Identifier: MIT
// PostgreSQL for fleet mode ([store] backend = "postgresql"): owned libpq handles, one
// parameterized statement at a time, and the versioned schema shared by every instance
// (docs/fleet-schema.md). Blocking calls: used only on worker threads and by the CLI.
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "util/handles.hh"

namespace strictmx::store::pg {

inline constexpr int kSchemaVersion = 1;
// The channel instances announce cache changes on (LISTEN/NOTIFY).
inline constexpr const char* kChannel = "strictmx_cache";

using ConnPtr = std::unique_ptr<PGconn, CDeleter<PQfinish>>;
using ResultPtr = std::unique_ptr<PGresult, CDeleter<PQclear>>;

struct Options {
    std::string dsn;              // libpq connection string or URI
    std::string application;      // application_name: "strictmx <instance>"
    int connect_timeout_s = 3;    // unless the DSN says otherwise
    int statement_timeout_ms = 5000;
};

// Connects (keepalives on, a connect and statement deadline unless the DSN sets them).
// nullptr and `why` (libpq's message, one line) when it cannot.
ConnPtr connect(const Options& o, std::string& why);

class Result {
  public:
    explicit Result(ResultPtr r, std::string error) : r_(std::move(r)), error_(std::move(error)) {}
    bool ok() const { return error_.empty(); }
    const std::string& error() const { return error_; }
    int rows() const { return r_ ? PQntuples(r_.get()) : 0; }
    bool null(int row, int col) const { return PQgetisnull(r_.get(), row, col) != 0; }
    std::string text(int row, int col) const {
        return std::string(PQgetvalue(r_.get(), row, col),
                           static_cast<std::size_t>(PQgetlength(r_.get(), row, col)));
    }
    long long num(int row, int col) const;  // 0 for NULL or not a number
    // The SQLSTATE of a failed statement ("" when it did not come from the server).
    std::string sqlstate() const;

  private:
    ResultPtr r_;
    std::string error_;
};

using Params = std::vector<std::optional<std::string>>;  // nullopt: SQL NULL
// One statement, parameters as text. A broken connection is reported like any error; the
// caller checks PQstatus and reconnects.
Result exec(PGconn* c, const std::string& sql, const Params& params = {});

// The schema version found (0: no strictmx tables), or -1 with `why`.
int schema_version(PGconn* c, std::string& why);
// `strictmx store migrate`: creates the tables or brings them to kSchemaVersion in one
// transaction. Returns what it did; throws std::runtime_error with the server's message.
std::string migrate(PGconn* c);

// The connection string without its password (logs, status).
std::string redact(const std::string& dsn);

}  // namespace strictmx::store::pg
