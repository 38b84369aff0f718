// SPDX-License-Identifier: MIT
// The persistent cache in SQLite. Writes happen only after a resolution (rare next to
// lookups, which are served from memory), so they run on the event loop.
#include "store/store.hh"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <optional>

#include "util/log.hh"

namespace strictmx::store {
namespace {

constexpr const char* kSchema = R"SQL(
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS domains (
    domain       TEXT PRIMARY KEY,
    has_policy   INTEGER NOT NULL,
    txt_id       TEXT NOT NULL DEFAULT '',
    policy       TEXT NOT NULL DEFAULT '',
    fetched_at   INTEGER NOT NULL DEFAULT 0,
    expires_at   INTEGER NOT NULL,
    next_refresh INTEGER NOT NULL DEFAULT 0,
    failures     INTEGER NOT NULL DEFAULT 0,
    last_error   TEXT NOT NULL DEFAULT '',
    mx_hosts     TEXT NOT NULL DEFAULT '',
    mx_expires   INTEGER NOT NULL DEFAULT 0,
    dane_kind    INTEGER NOT NULL DEFAULT -1,
    dane_expires INTEGER NOT NULL DEFAULT 0,
    dane_refresh INTEGER NOT NULL DEFAULT 0,
    dane_why     TEXT NOT NULL DEFAULT '',
    dane_fail    INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '2');
)SQL";

bool exec(sqlite3* db, const char* sql, std::string* err = nullptr) {
    char* msg = nullptr;
    int rc = sqlite3_exec(db, sql, nullptr, nullptr, &msg);
    if (rc != SQLITE_OK) {
        if (err) *err = msg ? msg : sqlite3_errstr(rc);
        sqlite3_free(msg);
        return false;
    }
    return true;
}

// Opens and validates; on any problem returns nullptr, the reason, and whether the file
// itself is bad (corrupt, not a database, another schema) rather than out of reach.
SqlitePtr try_open(const std::string& path, std::string& why, bool& bad_file) {
    bad_file = false;
    auto file_error = [&](int rc) {
        int primary = rc & 0xff;
        bad_file =
            primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB || primary == SQLITE_FORMAT;
    };
    sqlite3* raw = nullptr;
    int rc =
        sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, nullptr);
    SqlitePtr db(raw);
    if (rc != SQLITE_OK) {
        why = raw ? sqlite3_errmsg(raw) : sqlite3_errstr(rc);
        file_error(rc);
        return nullptr;
    }
    sqlite3_extended_result_codes(db.get(), 1);
    sqlite3_busy_timeout(db.get(), 2000);
    sqlite3_stmt* st = nullptr;
    // A cheap look at the header and the schema page: a file that is not a database fails
    // here. Deeper damage shows when the rows are read at start-up or written later, and is
    // handled then (recover()); a full integrity check would read the whole file first.
    if ((rc = sqlite3_prepare_v2(db.get(), "SELECT count(*) FROM sqlite_master", -1, &st, nullptr)) !=
        SQLITE_OK) {
        why = sqlite3_errmsg(db.get());
        file_error(rc);
        return nullptr;
    }
    SqliteStmtPtr check(st);
    if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
        why = sqlite3_errmsg(db.get());
        file_error(rc);
        return nullptr;
    }
    check.reset();
    // Another schema version (an older release's file): start afresh, it is only a cache.
    if (sqlite3_prepare_v2(db.get(), "SELECT value FROM meta WHERE key='schema_version'", -1, &st,
                           nullptr) == SQLITE_OK) {
        SqliteStmtPtr ver(st);
        if (sqlite3_step(st) == SQLITE_ROW && sqlite3_column_int(st, 0) != kSchemaVersion) {
            why = "schema version " + std::to_string(sqlite3_column_int(st, 0)) +
                  ", this release uses " + std::to_string(kSchemaVersion);
            bad_file = true;
            return nullptr;
        }
    }
    if (!exec(db.get(), kSchema, &why)) {
        bad_file = false;
        return nullptr;
    }
    return db;
}

}  // namespace

Store::Store(SqlitePtr db, std::string path, bool persistent)
    : db_(std::move(db)), path_(std::move(path)), persistent_(persistent) {}

namespace {
// Opens PATH; a bad file is moved aside and replaced; failing that, memory.
SqlitePtr open_or_rebuild(const std::string& path, UnixTime now, bool force_aside, const std::string& reason,
                          bool& persistent) {
    std::string why = reason;
    bool bad_file = force_aside;
    SqlitePtr db = force_aside ? nullptr : try_open(path, why, bad_file);
    struct stat st {};
    if (!db && bad_file && ::stat(path.c_str(), &st) == 0) {
        std::string aside = path + ".corrupt-" + std::to_string(now);
        if (std::rename(path.c_str(), aside.c_str()) == 0) {
            log::error("cache database unusable, moved it aside and starting empty",
                       {{"path", path}, {"error", why}, {"moved_to", aside}});
            std::remove((path + "-wal").c_str());
            std::remove((path + "-shm").c_str());
            db = try_open(path, why, bad_file);
        } else {
            log::error("cache database unusable and cannot be moved aside",
                       {{"path", path}, {"error", why}, {"rename", std::strerror(errno)}});
        }
    }
    persistent = true;
    if (!db) {
        log::error("cannot create cache database, caching in memory only", {{"path", path}, {"error", why}});
        db = try_open(":memory:", why, bad_file);
        persistent = false;
    }
    return db;
}

bool is_corruption(int rc) {
    int primary = rc & 0xff;
    return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
}
}  // namespace

std::unique_ptr<Store> Store::open(const std::string& path, UnixTime now) {
    bool persistent = false;
    SqlitePtr db = open_or_rebuild(path, now, false, "", persistent);
    if (!db) return nullptr;
    std::unique_ptr<Store> s(new Store(std::move(db), path, persistent));
    if (!s->prepare()) return nullptr;
    return s;
}

bool Store::recover(UnixTime now, const std::string& why) {
    if (!persistent_) return false;
    put_stmt_.reset();
    erase_stmt_.reset();
    get_stmt_.reset();
    db_.reset();
    db_ = open_or_rebuild(path_, now, true, why, persistent_);
    return db_ && prepare();
}

std::unique_ptr<Store> Store::open_readonly(const std::string& path) {
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
    SqlitePtr db(raw);
    if (rc != SQLITE_OK) return nullptr;
    std::unique_ptr<Store> s(new Store(std::move(db), path, true));
    if (!s->prepare()) return nullptr;
    return s;
}

bool Store::prepare() {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(
            db_.get(),
            "INSERT OR REPLACE INTO domains(domain, has_policy, txt_id, policy, fetched_at,"
            " expires_at, next_refresh, failures, last_error, mx_hosts, mx_expires,"
            " dane_kind, dane_expires, dane_refresh, dane_why, dane_fail)"
            " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16)",
            -1, &st, nullptr) != SQLITE_OK)
        return false;
    put_stmt_.reset(st);
    if (sqlite3_prepare_v2(db_.get(), "DELETE FROM domains WHERE domain = ?1", -1, &st, nullptr) !=
        SQLITE_OK)
        return false;
    erase_stmt_.reset(st);
    if (sqlite3_prepare_v2(db_.get(),
                           "SELECT domain, has_policy, txt_id, policy, fetched_at, expires_at,"
                           " next_refresh, failures, last_error, mx_hosts, mx_expires,"
                           " dane_kind, dane_expires, dane_refresh, dane_why, dane_fail FROM "
                           "domains WHERE domain = ?1",
                           -1, &st, nullptr) != SQLITE_OK)
        return false;
    get_stmt_.reset(st);
    return true;
}

namespace {
std::string col_text(sqlite3_stmt* st, int i) {
    const unsigned char* t = sqlite3_column_text(st, i);
    return t ? std::string(reinterpret_cast<const char*>(t),
                           static_cast<std::size_t>(sqlite3_column_bytes(st, i)))
             : std::string();
}

StsRow read_row(sqlite3_stmt* st) {
    StsRow r;
    r.domain = col_text(st, 0);
    r.has_policy = sqlite3_column_int(st, 1) != 0;
    r.txt_id = col_text(st, 2);
    r.policy = col_text(st, 3);
    r.fetched_at = sqlite3_column_int64(st, 4);
    r.expires_at = sqlite3_column_int64(st, 5);
    r.next_refresh = sqlite3_column_int64(st, 6);
    r.failures = sqlite3_column_int(st, 7);
    r.last_error = col_text(st, 8);
    r.mx_hosts = col_text(st, 9);
    r.mx_expires = sqlite3_column_int64(st, 10);
    r.dane_kind = sqlite3_column_int(st, 11);
    r.dane_expires = sqlite3_column_int64(st, 12);
    r.dane_refresh = sqlite3_column_int64(st, 13);
    r.dane_why = col_text(st, 14);
    r.dane_fail_class = sqlite3_column_int(st, 15);
    return r;
}
}  // namespace

std::vector<StsRow> Store::load_all() {
    std::vector<StsRow> rows;
    for_each([&](StsRow&& r) { rows.push_back(std::move(r)); });
    return rows;
}

Store::ReadStatus Store::for_each(const std::function<void(StsRow&&)>& fn) {
    sqlite3_stmt* st = nullptr;
    if (sqlite3_prepare_v2(
            db_.get(),
            "SELECT domain, has_policy, txt_id, policy, fetched_at, expires_at,"
            " next_refresh, failures, last_error, mx_hosts, mx_expires,"
            " dane_kind, dane_expires, dane_refresh, dane_why, dane_fail FROM domains",
            -1, &st, nullptr) != SQLITE_OK) {
        int rc = sqlite3_errcode(db_.get());
        log::error("cannot read cache", {{"error", sqlite3_errmsg(db_.get())}});
        return is_corruption(rc) ? ReadStatus::Corrupt : ReadStatus::Error;
    }
    SqliteStmtPtr guard(st);
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) fn(read_row(st));
    if (rc == SQLITE_DONE) return ReadStatus::Ok;
    log::error("cache read stopped early", {{"error", sqlite3_errmsg(db_.get())}});
    return is_corruption(rc) ? ReadStatus::Corrupt : ReadStatus::Error;
}

std::optional<StsRow> Store::get(const std::string& domain) {
    sqlite3_stmt* st = get_stmt_.get();
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, domain.data(), static_cast<int>(domain.size()), SQLITE_TRANSIENT);
    std::optional<StsRow> out;
    if (sqlite3_step(st) == SQLITE_ROW) out = read_row(st);
    sqlite3_reset(st);
    return out;
}

bool Store::put(const StsRow& r) {
    sqlite3_stmt* st = put_stmt_.get();
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, r.domain.data(), static_cast<int>(r.domain.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 2, r.has_policy ? 1 : 0);
    sqlite3_bind_text(st, 3, r.txt_id.data(), static_cast<int>(r.txt_id.size()), SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 4, r.policy.data(), static_cast<int>(r.policy.size()), SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 5, r.fetched_at);
    sqlite3_bind_int64(st, 6, r.expires_at);
    sqlite3_bind_int64(st, 7, r.next_refresh);
    sqlite3_bind_int(st, 8, r.failures);
    sqlite3_bind_text(st, 9, r.last_error.data(), static_cast<int>(r.last_error.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_text(st, 10, r.mx_hosts.data(), static_cast<int>(r.mx_hosts.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int64(st, 11, r.mx_expires);
    sqlite3_bind_int(st, 12, r.dane_kind);
    sqlite3_bind_int64(st, 13, r.dane_expires);
    sqlite3_bind_int64(st, 14, r.dane_refresh);
    sqlite3_bind_text(st, 15, r.dane_why.data(), static_cast<int>(r.dane_why.size()),
                      SQLITE_TRANSIENT);
    sqlite3_bind_int(st, 16, r.dane_fail_class);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE) {
        std::string err = sqlite3_errmsg(db_.get());
        log::error("cache write failed, keeping the entry in memory", {{"domain", r.domain}, {"error", err}});
        if (is_corruption(rc) && !retried_ && recover(r.fetched_at, err)) {
            retried_ = true;
            bool ok = put(r);
            retried_ = false;
            return ok;
        }
        return false;
    }
    return true;
}

bool Store::begin() {
    return exec(db_.get(), "BEGIN");
}
bool Store::commit() {
    return exec(db_.get(), "COMMIT");
}

bool Store::erase(const std::string& domain) {
    sqlite3_stmt* st = erase_stmt_.get();
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, domain.data(), static_cast<int>(domain.size()), SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE;
}

}  // namespace strictmx::store
