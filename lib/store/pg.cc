// SPDX-License-Identifier: MIT
#include "store/pg.hh"

#include <cstdlib>
#include <regex>
#include <stdexcept>

#include "util/strings.hh"

namespace strictmx::store::pg {

namespace {

// Version 1. Times are Unix seconds (bigint), as in the SQLite cache; lease deadlines use the
// server's clock so that instances with skewed clocks agree on them.
const char* kSchemaV1 = R"SQL(
CREATE TABLE strictmx_meta (key text PRIMARY KEY, value text NOT NULL);
CREATE SEQUENCE cache_version;
CREATE TABLE cache_domains (
    domain text PRIMARY KEY,
    has_policy boolean NOT NULL,
    txt_id text NOT NULL,
    policy text NOT NULL,
    fetched_at bigint NOT NULL,
    expires_at bigint NOT NULL,
    next_refresh bigint NOT NULL,
    failures integer NOT NULL,
    last_error text NOT NULL,
    mx_hosts text NOT NULL,
    mx_expires bigint NOT NULL,
    dane_kind integer NOT NULL,
    dane_expires bigint NOT NULL,
    dane_refresh bigint NOT NULL,
    dane_why text NOT NULL,
    dane_fail_class integer NOT NULL,
    dane_seen_until bigint NOT NULL,
    last_used bigint NOT NULL,
    version bigint NOT NULL,
    written_by text NOT NULL,
    written_at timestamptz NOT NULL DEFAULT now());
CREATE INDEX cache_domains_version ON cache_domains (version);
CREATE TABLE cache_leases (
    domain text PRIMARY KEY,
    holder text NOT NULL,
    until timestamptz NOT NULL);
CREATE TABLE tlsrpt_results (
    day text NOT NULL, domain text NOT NULL, record text NOT NULL, policy text NOT NULL,
    success bigint NOT NULL DEFAULT 0, failure bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, domain, record, policy));
CREATE TABLE tlsrpt_failures (
    day text NOT NULL, domain text NOT NULL, record text NOT NULL, policy text NOT NULL,
    detail text NOT NULL, sessions bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (day, domain, record, policy, detail));
CREATE TABLE tlsrpt_shipped (
    source text NOT NULL, batch bigint NOT NULL, instance text NOT NULL,
    shipped_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, batch));
CREATE TABLE tlsrpt_days (
    day text PRIMARY KEY, instance text NOT NULL,
    claimed_at timestamptz NOT NULL DEFAULT now());
INSERT INTO strictmx_meta (key, value) VALUES ('schema_version', '1');
)SQL";

std::string one_line(const char* msg) {
    std::string s = msg ? msg : "";
    while (!s.empty() && (s.back() == '\n' || s.back() == ' ')) s.pop_back();
    for (char& ch : s)
        if (ch == '\n' || ch == '\t') ch = ' ';
    return s;
}

}  // namespace

ConnPtr connect(const Options& o, std::string& why) {
    std::string timeout = std::to_string(o.connect_timeout_s);
    // Ours first: the DSN, expanded last, overrides any of them.
    const char* keys[] = {"connect_timeout", "application_name", "keepalives",
                          "keepalives_idle", "keepalives_interval", "keepalives_count",
                          "tcp_user_timeout", "dbname", nullptr};
    std::string app = o.application.substr(0, 63);
    const char* values[] = {timeout.c_str(), app.c_str(), "1", "10", "5", "3", "10000",
                            o.dsn.c_str(), nullptr};
    ConnPtr c(PQconnectdbParams(keys, values, 1));
    if (!c) {
        why = "out of memory";
        return nullptr;
    }
    if (PQstatus(c.get()) != CONNECTION_OK) {
        why = one_line(PQerrorMessage(c.get()));
        return nullptr;
    }
    Result r = exec(c.get(), "SELECT set_config('statement_timeout', $1, false)",
                    {std::to_string(o.statement_timeout_ms)});
    if (!r.ok()) {
        why = r.error();
        return nullptr;
    }
    return c;
}

long long Result::num(int row, int col) const {
    if (!r_ || null(row, col)) return 0;
    return std::strtoll(PQgetvalue(r_.get(), row, col), nullptr, 10);
}

std::string Result::sqlstate() const {
    if (!r_) return "";
    const char* s = PQresultErrorField(r_.get(), PG_DIAG_SQLSTATE);
    return s ? s : "";
}

Result exec(PGconn* c, const std::string& sql, const Params& params) {
    std::vector<const char*> values;
    values.reserve(params.size());
    for (const auto& p : params) values.push_back(p ? p->c_str() : nullptr);
    ResultPtr r(PQexecParams(c, sql.c_str(), static_cast<int>(values.size()), nullptr,
                             values.data(), nullptr, nullptr, 0));
    if (!r) return Result(nullptr, one_line(PQerrorMessage(c)));
    auto st = PQresultStatus(r.get());
    if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
        std::string err = one_line(PQresultErrorMessage(r.get()));
        if (err.empty()) err = one_line(PQerrorMessage(c));
        if (err.empty()) err = PQresStatus(st);
        return Result(std::move(r), err);
    }
    return Result(std::move(r), "");
}

int schema_version(PGconn* c, std::string& why) {
    Result t = exec(c, "SELECT to_regclass('strictmx_meta') IS NOT NULL");
    if (!t.ok()) {
        why = t.error();
        return -1;
    }
    if (t.text(0, 0) != "t") return 0;
    Result v = exec(c, "SELECT value FROM strictmx_meta WHERE key = 'schema_version'");
    if (!v.ok()) {
        why = v.error();
        return -1;
    }
    if (v.rows() != 1) {
        why = "strictmx_meta has no schema_version";
        return -1;
    }
    return static_cast<int>(v.num(0, 0));
}

std::string migrate(PGconn* c) {
    std::string why;
    int v = schema_version(c, why);
    if (v < 0) throw std::runtime_error(why);
    if (v == kSchemaVersion) return "schema version " + std::to_string(v) + " is current";
    if (v > kSchemaVersion)
        throw std::runtime_error("the database has schema version " + std::to_string(v) +
                                 ", newer than this strictmx (" + std::to_string(kSchemaVersion) +
                                 "): upgrade strictmx on this host");
    // v == 0: create. (Later versions add their steps here, each in the same transaction.)
    Result b = exec(c, "BEGIN");
    if (!b.ok()) throw std::runtime_error(b.error());
    // Two instances migrating at once: the second waits here, then finds the schema made.
    Result lock = exec(c, "SELECT pg_advisory_xact_lock(7146500731)");
    if (!lock.ok()) throw std::runtime_error(lock.error());
    int again = schema_version(c, why);
    if (again == kSchemaVersion) {
        exec(c, "ROLLBACK");
        return "schema version " + std::to_string(again) + " is current";
    }
    ResultPtr r(PQexec(c, kSchemaV1));
    if (!r || PQresultStatus(r.get()) != PGRES_COMMAND_OK) {
        std::string err = one_line(r ? PQresultErrorMessage(r.get()) : PQerrorMessage(c));
        exec(c, "ROLLBACK");
        throw std::runtime_error(err);
    }
    Result cm = exec(c, "COMMIT");
    if (!cm.ok()) throw std::runtime_error(cm.error());
    return "schema version " + std::to_string(kSchemaVersion) + " created";
}

std::string redact(const std::string& dsn) {
    static const std::regex kw(R"((password\s*=\s*)('([^'\\]|\\.)*'|\S+))", std::regex::icase);
    static const std::regex uri(R"((://[^:/@]*:)[^@/]*@)");
    std::string s = std::regex_replace(dsn, kw, "$1***");
    return std::regex_replace(s, uri, "$1***@");
}

}  // namespace strictmx::store::pg
