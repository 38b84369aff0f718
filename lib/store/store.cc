// SPDX-License-Identifier: MIT
// The persistent cache in SQLite: opening, schema creation and migration, reading (with
// salvage of a damaged file) and single-row statements. The queue and the writer thread are
// in store_writer.cc.
#include "store/store.hh"

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <limits>
#include <optional>

#include "dns/name.hh"
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
    dane_fail    INTEGER NOT NULL DEFAULT 0,
    dane_seen    INTEGER NOT NULL DEFAULT 0,
    last_used    INTEGER NOT NULL DEFAULT 0
);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '3');
)SQL";

// Schema 2 -> 3: "had DANE" was a bit of dane_fail (value 4) with no end; it becomes a time,
// cache.dane_history_ttl's default from now, and the time of last use is added.
constexpr const char* kMigrate2to3 = R"SQL(
BEGIN IMMEDIATE;
ALTER TABLE domains ADD COLUMN dane_seen INTEGER NOT NULL DEFAULT 0;
ALTER TABLE domains ADD COLUMN last_used INTEGER NOT NULL DEFAULT 0;
UPDATE domains SET dane_seen = CAST(strftime('%s','now') AS INTEGER) + 2592000,
                   dane_fail = dane_fail & 3 WHERE (dane_fail & 4) != 0;
UPDATE meta SET value = '3' WHERE key = 'schema_version';
COMMIT;
)SQL";

constexpr const char* kColumns =
    "domain, has_policy, txt_id, policy, fetched_at, expires_at, next_refresh, failures,"
    " last_error, mx_hosts, mx_expires, dane_kind, dane_expires, dane_refresh, dane_why,"
    " dane_fail, dane_seen, last_used";

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

bool is_corruption(int rc) {
    int primary = rc & 0xff;
    return primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB;
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
    // Only the writer thread and start-up wait on locks; lookups never touch the file.
    sqlite3_busy_timeout(db.get(), 5000);
    sqlite3_stmt* st = nullptr;
    // A cheap look at the header and the schema page: a file that is not a database fails
    // here. Deeper damage shows when the rows are read at start-up (salvaged then) or
    // written later; a full integrity check would read the whole file first.
    if ((rc = sqlite3_prepare_v2(db.get(), "SELECT count(*) FROM sqlite_master", -1, &st,
                                 nullptr)) != SQLITE_OK) {
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
    if (sqlite3_prepare_v2(db.get(), "SELECT value FROM meta WHERE key='schema_version'", -1, &st,
                           nullptr) == SQLITE_OK) {
        SqliteStmtPtr ver(st);
        int version = sqlite3_step(st) == SQLITE_ROW ? sqlite3_column_int(st, 0) : kSchemaVersion;
        ver.reset();
        if (version == 2) {
            if (!exec(db.get(), kMigrate2to3, &why)) {
                exec(db.get(), "ROLLBACK");
                why = "migrating schema 2 to 3: " + why;
                return nullptr;
            }
            log::info("cache database migrated to schema 3", {{"path", path}});
        } else if (version != kSchemaVersion) {
            // An unknown version (an older or newer release's file): start afresh, it is
            // only a cache.
            why = "schema version " + std::to_string(version) + ", this release uses " +
                  std::to_string(kSchemaVersion);
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

std::string col_text(sqlite3_stmt* st, int i) {
    const unsigned char* t = sqlite3_column_text(st, i);
    return t ? std::string(reinterpret_cast<const char*>(t),
                           static_cast<std::size_t>(sqlite3_column_bytes(st, i)))
             : std::string();
}

// Columns from `first` on, in kColumns order.
StsRow read_row(sqlite3_stmt* st, int first = 0) {
    StsRow r;
    int i = first;
    r.domain = col_text(st, i++);
    r.has_policy = sqlite3_column_int(st, i++) != 0;
    r.txt_id = col_text(st, i++);
    r.policy = col_text(st, i++);
    r.fetched_at = sqlite3_column_int64(st, i++);
    r.expires_at = sqlite3_column_int64(st, i++);
    r.next_refresh = sqlite3_column_int64(st, i++);
    r.failures = sqlite3_column_int(st, i++);
    r.last_error = col_text(st, i++);
    r.mx_hosts = col_text(st, i++);
    r.mx_expires = sqlite3_column_int64(st, i++);
    r.dane_kind = sqlite3_column_int(st, i++);
    r.dane_expires = sqlite3_column_int64(st, i++);
    r.dane_refresh = sqlite3_column_int64(st, i++);
    r.dane_why = col_text(st, i++);
    r.dane_fail_class = sqlite3_column_int(st, i++);
    r.dane_seen_until = sqlite3_column_int64(st, i++);
    r.last_used = sqlite3_column_int64(st, i++);
    return r;
}

// A row read back from a file that was found damaged is used only if it still makes sense.
bool plausible(const StsRow& r) {
    if (!dns::is_hostname(r.domain)) return false;
    if (r.dane_kind < -1 || r.dane_kind > 3 || r.failures < 0) return false;
    for (const std::string* s : {&r.mx_hosts, &r.txt_id})
        for (unsigned char c : *s)
            if (c < 0x20 || c >= 0x7f) return false;
    return true;
}

void bind_row(sqlite3_stmt* st, const StsRow& r) {
    auto text = [&](int i, const std::string& s) {
        sqlite3_bind_text(st, i, s.data(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
    };
    text(1, r.domain);
    sqlite3_bind_int(st, 2, r.has_policy ? 1 : 0);
    text(3, r.txt_id);
    text(4, r.policy);
    sqlite3_bind_int64(st, 5, r.fetched_at);
    sqlite3_bind_int64(st, 6, r.expires_at);
    sqlite3_bind_int64(st, 7, r.next_refresh);
    sqlite3_bind_int(st, 8, r.failures);
    text(9, r.last_error);
    text(10, r.mx_hosts);
    sqlite3_bind_int64(st, 11, r.mx_expires);
    sqlite3_bind_int(st, 12, r.dane_kind);
    sqlite3_bind_int64(st, 13, r.dane_expires);
    sqlite3_bind_int64(st, 14, r.dane_refresh);
    text(15, r.dane_why);
    sqlite3_bind_int(st, 16, r.dane_fail_class);
    sqlite3_bind_int64(st, 17, r.dane_seen_until);
    sqlite3_bind_int64(st, 18, r.last_used);
}

// Scans start here; "rowid - 1" of it is still representable.
constexpr std::int64_t kFirstRowid = std::numeric_limits<std::int64_t>::min() + 1;

const std::string kInsert = std::string("INSERT OR REPLACE INTO domains(") + kColumns +
                            ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
                            " ?14, ?15, ?16, ?17, ?18)";

// A scan in rowid order from `from`, reporting each row; where it stopped and why.
struct ScanEnd {
    enum { End, Damage, Error } kind = End;
    std::int64_t resume = 0;  // Damage: the rowid after the last one read
    std::string error;
};
ScanEnd scan_rows(sqlite3* db, std::int64_t from,
                  const std::function<void(std::int64_t, StsRow&&)>& each) {
    static const std::string sql =
        std::string("SELECT rowid, ") + kColumns + " FROM domains WHERE rowid >= ?1 ORDER BY rowid";
    ScanEnd end;
    sqlite3_stmt* st = nullptr;
    int rc = sqlite3_prepare_v2(db, sql.c_str(), -1, &st, nullptr);
    SqliteStmtPtr guard(st);
    std::int64_t last = from - 1;
    if (rc == SQLITE_OK) {
        sqlite3_bind_int64(st, 1, from);
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            last = sqlite3_column_int64(st, 0);
            each(last, read_row(st, 1));
        }
        if (rc == SQLITE_DONE) return end;
    }
    end.error = sqlite3_errmsg(db);
    end.kind =
        is_corruption(rc) || is_corruption(sqlite3_errcode(db)) ? ScanEnd::Damage : ScanEnd::Error;
    end.resume = last + 1;
    return end;
}

// Copies every readable, plausible row of the damaged database `src` into a new file at
// `dst`. When a page is damaged the scan starts again past it, doubling the distance until
// a row is readable or the table ends: one damaged region costs the rows on it, not the
// whole cache. `each` sees every row kept, with its rowid in `src`.
struct Salvage {
    bool ok = false;
    std::size_t kept = 0, dropped = 0;
};
Salvage copy_readable(sqlite3* src, const std::string& dst,
                      const std::function<void(std::int64_t, StsRow&&)>& each) {
    Salvage out;
    for (const char* suffix : {"", "-wal", "-shm"}) std::remove((dst + suffix).c_str());
    std::string why;
    bool bad = false;
    SqlitePtr db = try_open(dst, why, bad);
    if (!db) {
        log::error("cannot create a file to salvage the cache into",
                   {{"path", dst}, {"error", why}});
        return out;
    }
    sqlite3_stmt* raw = nullptr;
    if (sqlite3_prepare_v2(db.get(), kInsert.c_str(), -1, &raw, nullptr) != SQLITE_OK) return out;
    SqliteStmtPtr ins(raw);
    exec(db.get(), "BEGIN");
    std::int64_t from = kFirstRowid;
    std::int64_t gap = 1;
    for (int probes = 0; probes < 10'000; ++probes) {
        ScanEnd end = scan_rows(src, from, [&](std::int64_t rowid, StsRow&& r) {
            gap = 1;
            if (!plausible(r)) {
                ++out.dropped;
                return;
            }
            sqlite3_reset(ins.get());
            bind_row(ins.get(), r);
            sqlite3_step(ins.get());
            ++out.kept;
            each(rowid, std::move(r));
        });
        if (end.kind != ScanEnd::Damage) break;
        if (end.resume > std::numeric_limits<std::int64_t>::max() - gap) break;
        from = end.resume + gap - 1;
        if (gap < (std::int64_t{1} << 40)) gap *= 2;
    }
    ins.reset();
    out.ok = exec(db.get(), "COMMIT");
    return out;
}

// Replaces the damaged file at `path` by the salvaged one at `path`.salvage.
bool swap_in_salvage(const std::string& path, const std::string& aside) {
    std::string tmp = path + ".salvage";
    if (std::rename(path.c_str(), aside.c_str()) != 0) return false;
    std::remove((path + "-wal").c_str());
    std::remove((path + "-shm").c_str());
    // The salvage file was closed, so its WAL was checkpointed and removed.
    return std::rename(tmp.c_str(), path.c_str()) == 0;
}

std::string moved_aside_name(const std::string& path, UnixTime now) {
    return path + ".corrupt-" + std::to_string(now);
}

// Opens PATH; a bad file is moved aside and replaced; failing that, memory.
SqlitePtr open_or_rebuild(const std::string& path, UnixTime now, bool force_aside,
                          const std::string& reason, bool& persistent) {
    std::string why = reason;
    bool bad_file = force_aside;
    SqlitePtr db = force_aside ? nullptr : try_open(path, why, bad_file);
    struct stat st {};
    if (!db && bad_file && !force_aside && ::stat(path.c_str(), &st) == 0 &&
        why.find("schema version") == std::string::npos) {
        // Damaged: keep the rows that can still be read.
        sqlite3* raw = nullptr;
        sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READONLY, nullptr);
        SqlitePtr src(raw);
        // Damage can make the schema check fail (a root page past the end of a truncated
        // file) although most table pages are readable: read without it.
        if (src) exec(src.get(), "PRAGMA writable_schema=ON");
        Salvage got;
        if (src) got = copy_readable(src.get(), path + ".salvage", [](std::int64_t, StsRow&&) {});
        src.reset();
        std::string aside = moved_aside_name(path, now);
        if (got.ok && got.kept > 0 && swap_in_salvage(path, aside)) {
            log::error("cache database unusable, moved it aside and kept the readable rows",
                       {{"path", path},
                        {"error", why},
                        {"moved_to", aside},
                        {"rows_kept", std::to_string(got.kept)},
                        {"rows_dropped", std::to_string(got.dropped)}});
            db = try_open(path, why, bad_file);
        }
        std::remove((path + ".salvage").c_str());
    }
    if (!db && bad_file && ::stat(path.c_str(), &st) == 0) {
        std::string aside = moved_aside_name(path, now);
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
        log::error("cannot create cache database, caching in memory only",
                   {{"path", path}, {"error", why}});
        db = try_open(":memory:", why, bad_file);
        persistent = false;
    }
    return db;
}

}  // namespace

Store::Store(SqlitePtr db, std::string path, bool persistent)
    : db_(std::move(db)), path_(std::move(path)), persistent_(persistent) {}

std::unique_ptr<Store> Store::open(const std::string& path, UnixTime now) {
    bool persistent = false;
    SqlitePtr db = open_or_rebuild(path, now, false, "", persistent);
    if (!db) return nullptr;
    std::unique_ptr<Store> s(new Store(std::move(db), path, persistent));
    if (!s->prepare()) return nullptr;
    s->writer_ = std::thread([p = s.get()] { p->writer_loop(); });
    return s;
}

bool Store::recover(UnixTime now, const std::string& why) {
    if (!persistent_) return false;
    put_stmt_.reset();
    erase_stmt_.reset();
    get_stmt_.reset();
    db_.reset();
    bool p = false;
    db_ = open_or_rebuild(path_, now, true, why, p);
    persistent_ = p;
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
    // A read-only view cannot prepare writes; it never uses them.
    if (sqlite3_prepare_v2(db_.get(), kInsert.c_str(), -1, &st, nullptr) == SQLITE_OK)
        put_stmt_.reset(st);
    if (sqlite3_prepare_v2(db_.get(), "DELETE FROM domains WHERE domain = ?1", -1, &st, nullptr) ==
        SQLITE_OK)
        erase_stmt_.reset(st);
    std::string get = std::string("SELECT ") + kColumns + " FROM domains WHERE domain = ?1";
    if (sqlite3_prepare_v2(db_.get(), get.c_str(), -1, &st, nullptr) != SQLITE_OK) return false;
    get_stmt_.reset(st);
    return true;
}

std::vector<StsRow> Store::load_all() {
    std::vector<StsRow> rows;
    for_each([&](StsRow&& r) { rows.push_back(std::move(r)); });
    return rows;
}

Store::ReadStatus Store::for_each(const std::function<void(StsRow&&)>& fn, UnixTime now) {
    std::lock_guard lock(db_mu_);
    // Rows are read in rowid order. When a page turns out damaged, the scan starts again
    // past it (doubling the distance until a row is readable or the table ends), so one
    // damaged region costs the rows on it, not the whole cache. The readable rows are
    // copied into a new file, which replaces the damaged one.
    std::int64_t delivered_up_to = kFirstRowid - 1;
    ScanEnd first = scan_rows(db_.get(), kFirstRowid, [&](std::int64_t rowid, StsRow&& r) {
        delivered_up_to = rowid;
        if (plausible(r)) fn(std::move(r));
    });
    if (first.kind == ScanEnd::End) return ReadStatus::Ok;
    if (first.kind == ScanEnd::Error || !persistent_ || now == 0) {
        log::error("cannot read cache", {{"error", first.error}});
        return ReadStatus::Error;
    }
    // Damage found while reading: copy the readable rows into a new file, deliver those not
    // delivered yet, and put the new file in the old one's place.
    Salvage got = copy_readable(db_.get(), path_ + ".salvage", [&](std::int64_t rowid, StsRow&& r) {
        if (rowid > delivered_up_to) fn(std::move(r));
    });
    put_stmt_.reset();
    erase_stmt_.reset();
    get_stmt_.reset();
    db_.reset();
    std::string aside = moved_aside_name(path_, now);
    if (!got.ok || !swap_in_salvage(path_, aside)) {
        log::error("cache damaged and could not be replaced, caching in memory only",
                   {{"path", path_}, {"error", first.error}});
        std::remove((path_ + ".salvage").c_str());
        bool ignored = false;
        db_ = open_or_rebuild(":memory:", now, false, "", ignored);
        persistent_ = false;
        prepare();
        return ReadStatus::Salvaged;
    }
    log::error("cache database unusable, moved it aside and kept the readable rows",
               {{"path", path_},
                {"error", first.error},
                {"moved_to", aside},
                {"rows_kept", std::to_string(got.kept)},
                {"rows_dropped", std::to_string(got.dropped)}});
    bool p = false;
    db_ = open_or_rebuild(path_, now, false, "", p);
    persistent_ = p;
    prepare();
    return ReadStatus::Salvaged;
}

std::optional<StsRow> Store::get(const std::string& domain) {
    std::lock_guard lock(db_mu_);
    sqlite3_stmt* st = get_stmt_.get();
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, domain.data(), static_cast<int>(domain.size()), SQLITE_TRANSIENT);
    std::optional<StsRow> out;
    if (sqlite3_step(st) == SQLITE_ROW) out = read_row(st);
    sqlite3_reset(st);
    return out;
}

bool Store::put_now(const StsRow& r) {
    sqlite3_stmt* st = put_stmt_.get();
    if (!st) return false;
    sqlite3_reset(st);
    bind_row(st, r);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE;
}

bool Store::erase_now(const std::string& domain) {
    sqlite3_stmt* st = erase_stmt_.get();
    if (!st) return false;
    sqlite3_reset(st);
    sqlite3_bind_text(st, 1, domain.data(), static_cast<int>(domain.size()), SQLITE_TRANSIENT);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE;
}

}  // namespace strictmx::store
