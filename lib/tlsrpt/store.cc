// SPDX-License-Identifier: MIT
#include "tlsrpt/store.hh"

#include <sqlite3.h>

#include <cstdio>
#include <random>
#include <ctime>
#include <stdexcept>

namespace strictmx::tlsrpt {
namespace {

constexpr const char* kSchema = R"SQL(
PRAGMA journal_mode=WAL;
PRAGMA synchronous=NORMAL;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
INSERT OR IGNORE INTO meta(key, value) VALUES ('schema_version', '1');
CREATE TABLE IF NOT EXISTS counters (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS results (
    day TEXT NOT NULL, domain TEXT NOT NULL, record TEXT NOT NULL, policy TEXT NOT NULL,
    success INTEGER NOT NULL DEFAULT 0, failure INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, domain, record, policy)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS failures (
    day TEXT NOT NULL, domain TEXT NOT NULL, record TEXT NOT NULL, policy TEXT NOT NULL,
    detail TEXT NOT NULL, sessions INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (day, domain, record, policy, detail)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reports (
    day TEXT NOT NULL, domain TEXT NOT NULL, record TEXT NOT NULL, uid TEXT NOT NULL,
    created INTEGER NOT NULL, PRIMARY KEY (day, domain, record)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    day TEXT NOT NULL, domain TEXT NOT NULL, record TEXT NOT NULL, destination TEXT NOT NULL,
    state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,
    first_try INTEGER NOT NULL DEFAULT 0, next_try INTEGER NOT NULL DEFAULT 0,
    last_error TEXT NOT NULL DEFAULT '', spool_file TEXT NOT NULL DEFAULT '',
    UNIQUE (day, domain, record, destination));
CREATE INDEX IF NOT EXISTS deliveries_state ON deliveries(state, next_try);
CREATE TABLE IF NOT EXISTS outbox (
    batch INTEGER NOT NULL, day TEXT NOT NULL, domain TEXT NOT NULL, record TEXT NOT NULL,
    policy TEXT NOT NULL, detail TEXT NOT NULL, a INTEGER NOT NULL, b INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS outbox_batch ON outbox(batch);
)SQL";

class Stmt {
  public:
    Stmt(sqlite3* db, const char* sql) {
        sqlite3_stmt* s = nullptr;
        if (sqlite3_prepare_v2(db, sql, -1, &s, nullptr) != SQLITE_OK)
            throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db));
        s_.reset(s);
        raw_ = s;
    }
    // A statement the store keeps prepared: borrowed, reset when done.
    explicit Stmt(sqlite3_stmt* borrowed) : raw_(borrowed) {}
    ~Stmt() {
        if (!s_ && raw_) {
            sqlite3_reset(raw_);
            sqlite3_clear_bindings(raw_);
        }
    }
    Stmt(const Stmt&) = delete;
    Stmt& operator=(const Stmt&) = delete;
    Stmt& text(int i, const std::string& v) {
        sqlite3_bind_text(raw_, i, v.data(), static_cast<int>(v.size()), SQLITE_TRANSIENT);
        return *this;
    }
    Stmt& num(int i, std::int64_t v) {
        sqlite3_bind_int64(raw_, i, v);
        return *this;
    }
    bool row() { return sqlite3_step(raw_) == SQLITE_ROW; }
    int step() { return sqlite3_step(raw_); }
    void reset() {
        sqlite3_reset(raw_);
        sqlite3_clear_bindings(raw_);
    }
    std::string col_text(int i) {
        const unsigned char* p = sqlite3_column_text(raw_, i);
        return p ? std::string(reinterpret_cast<const char*>(p),
                               static_cast<std::size_t>(sqlite3_column_bytes(raw_, i)))
                 : std::string();
    }
    std::int64_t col_num(int i) { return sqlite3_column_int64(raw_, i); }

  private:
    SqliteStmtPtr s_;
    sqlite3_stmt* raw_ = nullptr;
};

bool exec(sqlite3* db, const char* sql, std::string* err = nullptr) {
    char* msg = nullptr;
    if (sqlite3_exec(db, sql, nullptr, nullptr, &msg) == SQLITE_OK) return true;
    if (err) *err = msg ? msg : "sqlite error";
    sqlite3_free(msg);
    return false;
}

// One immediate transaction around `body`, which throws on failure: all of it or nothing.
template <typename Fn>
bool in_transaction(sqlite3* db, std::string& err, Fn&& body) {
    if (!exec(db, "BEGIN IMMEDIATE", &err)) return false;
    try {
        body();
    } catch (const std::exception& e) {
        err = e.what();
        exec(db, "ROLLBACK");
        return false;
    }
    if (!exec(db, "COMMIT", &err)) {
        exec(db, "ROLLBACK");
        return false;
    }
    return true;
}

Delivery read_delivery(Stmt& s) {
    Delivery d;
    d.id = s.col_num(0);
    d.day = s.col_text(1);
    d.domain = s.col_text(2);
    d.record = s.col_text(3);
    d.destination = s.col_text(4);
    d.state = s.col_text(5);
    d.attempts = static_cast<int>(s.col_num(6));
    d.first_try = s.col_num(7);
    d.next_try = s.col_num(8);
    d.last_error = s.col_text(9);
    d.spool_file = s.col_text(10);
    return d;
}

constexpr const char* kDeliveryCols =
    "id, day, domain, record, destination, state, attempts, first_try, next_try, last_error, "
    "spool_file";

}  // namespace

std::string utc_day(UnixTime t) {
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    char buf[16];
    std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
    return buf;
}

std::optional<UnixTime> day_start(const std::string& day) {
    int y = 0, m = 0, d = 0;
    char tail = 0;
    if (day.size() != 10 || std::sscanf(day.c_str(), "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3)
        return std::nullopt;
    if (y < 1970 || y > 9999 || m < 1 || m > 12 || d < 1 || d > 31) return std::nullopt;
    std::tm tm{};
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    UnixTime t = static_cast<UnixTime>(timegm(&tm));
    if (utc_day(t) != day) return std::nullopt;  // 2026-02-30 and the like
    return t;
}

void Batch::add(const std::string& day, const Session& s) {
    auto& g = groups[{day, s.domain, s.record}];
    for (const auto& p : s.policies) {
        auto [it, fresh] = g.try_emplace(policy_key(p));
        rows += fresh;
        (p.failed ? it->second.failure : it->second.success) += 1;
        for (const auto& d : p.failures) {
            auto [dit, dfresh] = it->second.details.try_emplace(detail_key(d), 0);
            rows += dfresh;
            dit->second += 1;
        }
    }
}

void Batch::merge(Batch&& o) {
    if (empty()) {
        *this = std::move(o);
        o = Batch{};
        return;
    }
    for (auto& [gk, pols] : o.groups) {
        auto& g = groups[gk];
        for (auto& [pk, c] : pols) {
            auto [it, fresh] = g.try_emplace(pk);
            rows += fresh;
            it->second.success += c.success;
            it->second.failure += c.failure;
            for (auto& [dk, n] : c.details) {
                auto [dit, dfresh] = it->second.details.try_emplace(dk, 0);
                rows += dfresh;
                dit->second += n;
            }
        }
    }
    for (auto& [k, v] : o.counters) counters[k] += v;
    o = Batch{};
}

std::unique_ptr<Store> Store::open(const std::string& path, bool read_only) {
    sqlite3* raw = nullptr;
    int flags = read_only ? SQLITE_OPEN_READONLY : (SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
    int rc = sqlite3_open_v2(path.c_str(), &raw, flags | SQLITE_OPEN_NOMUTEX, nullptr);
    SqlitePtr db(raw);
    if (rc != SQLITE_OK)
        throw std::runtime_error(path + ": " + (raw ? sqlite3_errmsg(raw) : "cannot open"));
    sqlite3_busy_timeout(db.get(), 5000);
    std::string err;
    if (!read_only && !exec(db.get(), kSchema, &err)) throw std::runtime_error(path + ": " + err);
    if (read_only) {
        Stmt s(db.get(), "SELECT value FROM meta WHERE key = 'schema_version'");
        if (!s.row()) throw std::runtime_error(path + ": not a strictmx TLSRPT store");
    }
    {
        Stmt s(db.get(), "SELECT value FROM meta WHERE key = 'schema_version'");
        if (s.row() && s.col_text(0) != "1")
            throw std::runtime_error(path + ": schema version " + s.col_text(0) +
                                     " is newer than this strictmx understands");
    }
    return std::unique_ptr<Store>(new Store(std::move(db)));
}

bool Store::apply(const Batch& b, std::string& err) {
    sqlite3* db = db_.get();
    return in_transaction(db, err, [&] {
        Stmt res(db,
                 "INSERT INTO results(day, domain, record, policy, success, failure) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(day, domain, record, policy) DO "
                 "UPDATE SET success = success + ?5, failure = failure + ?6");
        Stmt fail(db,
                  "INSERT INTO failures(day, domain, record, policy, detail, sessions) "
                  "VALUES (?1, ?2, ?3, ?4, ?5, ?6) ON CONFLICT(day, domain, record, policy, "
                  "detail) DO UPDATE SET sessions = sessions + ?6");
        Stmt cnt(db,
                 "INSERT INTO counters(name, value) VALUES (?1, ?2) ON CONFLICT(name) DO UPDATE "
                 "SET value = value + ?2");
        for (const auto& [gk, pols] : b.groups) {
            const auto& [day, domain, record] = gk;
            for (const auto& [pk, c] : pols) {
                res.reset();
                res.text(1, day).text(2, domain).text(3, record).text(4, pk);
                res.num(5, c.success).num(6, c.failure);
                if (res.step() != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
                for (const auto& [dk, n] : c.details) {
                    fail.reset();
                    fail.text(1, day).text(2, domain).text(3, record).text(4, pk).text(5, dk);
                    fail.num(6, n);
                    if (fail.step() != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
                }
            }
        }
        if (outbox_max_ > 0) append_outbox(b);
        for (const auto& [k, v] : b.counters) {
            cnt.reset();
            cnt.text(1, k).num(2, v);
            if (cnt.step() != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
        }
    });
}

sqlite3_stmt* Store::cached(const char* sql) {
    auto& slot = stmts_[sql];
    if (!slot) {
        sqlite3_stmt* st = nullptr;
        if (sqlite3_prepare_v2(db_.get(), sql, -1, &st, nullptr) != SQLITE_OK)
            throw std::runtime_error(std::string("sqlite prepare: ") + sqlite3_errmsg(db_.get()));
        slot.reset(st);
    }
    return slot.get();
}

void Store::for_each_group(
    const std::string& day,
    const std::function<void(const Group&, std::vector<PolicyCounts>&)>& fn) {
    Stmt r(db_.get(),
           "SELECT domain, record, policy, success, failure FROM results WHERE day = ?1 "
           "ORDER BY domain, record, policy");
    Stmt f(db_.get(),
           "SELECT domain, record, policy, detail, sessions FROM failures WHERE day = ?1 "
           "ORDER BY domain, record, policy, detail");
    r.text(1, day);
    f.text(1, day);
    bool fhave = f.row();
    Group cur{day, {}, {}};
    std::vector<PolicyCounts> pols;
    bool open = false;
    while (r.row()) {
        std::string domain = r.col_text(0), record = r.col_text(1), key = r.col_text(2);
        if (open && (domain != cur.domain || record != cur.record)) {
            fn(cur, pols);
            pols.clear();
        }
        cur.domain = domain;
        cur.record = record;
        open = true;
        PolicyCounts pc;
        bool ok = policy_from_key(key, pc.policy);
        pc.success = r.col_num(3);
        pc.failure = r.col_num(4);
        // Failures sort the same way: skip those before this policy, take those of it.
        auto fkey = [&] {
            return std::make_tuple(f.col_text(0), f.col_text(1), f.col_text(2));
        };
        auto mine = std::make_tuple(domain, record, key);
        while (fhave && fkey() < mine) fhave = f.row();
        while (fhave && fkey() == mine) {
            FailureDetail d;
            if (detail_from_key(f.col_text(3), d)) pc.details.emplace_back(d, f.col_num(4));
            fhave = f.row();
        }
        if (ok) pols.push_back(std::move(pc));
    }
    if (open) fn(cur, pols);
}

std::map<std::string, std::int64_t> Store::counters() {
    std::map<std::string, std::int64_t> out;
    Stmt s(db_.get(), "SELECT name, value FROM counters");
    while (s.row()) out[s.col_text(0)] = s.col_num(1);
    return out;
}

std::vector<std::string> Store::days() {
    std::vector<std::string> out;
    Stmt s(db_.get(), "SELECT DISTINCT day FROM results ORDER BY day");
    while (s.row()) out.push_back(s.col_text(0));
    return out;
}

std::vector<Group> Store::groups(const std::string& day) {
    std::vector<Group> out;
    Stmt s(db_.get(),
           "SELECT DISTINCT domain, record FROM results WHERE day = ?1 ORDER BY domain, record");
    s.text(1, day);
    while (s.row()) out.push_back({day, s.col_text(0), s.col_text(1)});
    return out;
}

std::vector<PolicyCounts> Store::policies(const Group& g) {
    std::vector<PolicyCounts> out;
    Stmt s(db_.get(),
           "SELECT policy, success, failure FROM results WHERE day = ?1 AND domain = ?2 AND "
           "record = ?3 ORDER BY policy");
    s.text(1, g.day).text(2, g.domain).text(3, g.record);
    Stmt f(db_.get(),
           "SELECT detail, sessions FROM failures WHERE day = ?1 AND domain = ?2 AND record = ?3 "
           "AND policy = ?4 ORDER BY detail");
    while (s.row()) {
        PolicyCounts pc;
        std::string key = s.col_text(0);
        if (!policy_from_key(key, pc.policy)) continue;
        pc.success = s.col_num(1);
        pc.failure = s.col_num(2);
        f.reset();
        f.text(1, g.day).text(2, g.domain).text(3, g.record).text(4, key);
        while (f.row()) {
            FailureDetail d;
            if (detail_from_key(f.col_text(0), d)) pc.details.emplace_back(d, f.col_num(1));
        }
        out.push_back(std::move(pc));
    }
    return out;
}

std::optional<std::string> Store::report_uid(const Group& g) {
    Stmt s(cached("SELECT uid FROM reports WHERE day = ?1 AND domain = ?2 AND record = ?3"));
    s.text(1, g.day).text(2, g.domain).text(3, g.record);
    if (s.row()) return s.col_text(0);
    return std::nullopt;
}

bool Store::set_report_uid(const Group& g, const std::string& uid, UnixTime now) {
    Stmt s(cached(
        "INSERT OR IGNORE INTO reports(day, domain, record, uid, created) VALUES (?1, ?2, ?3, "
        "?4, ?5)"));
    s.text(1, g.day).text(2, g.domain).text(3, g.record).text(4, uid).num(5, now);
    return s.step() == SQLITE_DONE;
}

std::optional<Delivery> Store::delivery(const Group& g, const std::string& destination) {
    static const std::string sql = std::string("SELECT ") + kDeliveryCols +
                                   " FROM deliveries WHERE day = ?1 AND domain = ?2 AND record = "
                                   "?3 AND destination = ?4";
    Stmt s(cached(sql.c_str()));
    s.text(1, g.day).text(2, g.domain).text(3, g.record).text(4, destination);
    if (s.row()) return read_delivery(s);
    return std::nullopt;
}

bool Store::add_delivery(const Delivery& d) {
    Stmt s(cached(
        "INSERT INTO deliveries(day, domain, record, destination, state, attempts, first_try, "
        "next_try, last_error, spool_file) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"));
    s.text(1, d.day).text(2, d.domain).text(3, d.record).text(4, d.destination).text(5, d.state);
    s.num(6, d.attempts).num(7, d.first_try).num(8, d.next_try).text(9, d.last_error);
    s.text(10, d.spool_file);
    return s.step() == SQLITE_DONE;
}

bool Store::update_delivery(const Delivery& d) {
    Stmt s(db_.get(),
           "UPDATE deliveries SET state = ?2, attempts = ?3, next_try = ?4, last_error = ?5, "
           "spool_file = ?6 WHERE id = ?1");
    s.num(1, d.id).text(2, d.state).num(3, d.attempts).num(4, d.next_try);
    s.text(5, d.last_error).text(6, d.spool_file);
    return s.step() == SQLITE_DONE && sqlite3_changes(db_.get()) == 1;
}

std::vector<Delivery> Store::deliveries(const std::string& state) {
    std::vector<Delivery> out;
    std::string sql = std::string("SELECT ") + kDeliveryCols +
                      " FROM deliveries WHERE state = ?1 ORDER BY next_try, id";
    Stmt s(db_.get(), sql.c_str());
    s.text(1, state);
    while (s.row()) out.push_back(read_delivery(s));
    return out;
}

void Store::enable_outbox(std::int64_t max_rows) {
    outbox_max_ = max_rows;
    if (source_id().empty()) {
        std::random_device rd;
        char hex[33];
        for (int i = 0; i < 16; ++i) std::snprintf(hex + 2 * i, 3, "%02x", rd() & 0xff);
        meta_set("outbox_source", std::string(hex, 32));
    }
}

std::string Store::source_id() { return meta_get("outbox_source").value_or(""); }

std::optional<std::string> Store::meta_get(const std::string& key) {
    Stmt s(db_.get(), "SELECT value FROM meta WHERE key = ?1");
    s.text(1, key);
    if (!s.row()) return std::nullopt;
    return s.col_text(0);
}

bool Store::meta_set(const std::string& key, const std::string& value) {
    Stmt s(db_.get(), "INSERT INTO meta(key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET "
                      "value = ?2");
    s.text(1, key).text(2, value);
    return s.step() == SQLITE_DONE;
}

void Store::append_outbox(const Batch& b) {
    // Inside apply()'s transaction: the counts and their outbox rows commit together.
    sqlite3* db = db_.get();
    std::int64_t have = 0, next = 1;
    {
        Stmt c(db, "SELECT count(*) FROM outbox");
        if (c.row()) have = c.col_num(0);
        Stmt n(db, "SELECT value FROM meta WHERE key = 'outbox_next'");
        if (n.row()) next = std::stoll(n.col_text(0));
    }
    std::int64_t rows = 0, sessions = 0;
    for (const auto& [gk, pols] : b.groups)
        for (const auto& [pk, c] : pols) {
            rows += 1 + static_cast<std::int64_t>(c.details.size());
            sessions += c.success + c.failure;
        }
    if (rows == 0) return;
    if (have + rows > outbox_max_) {
        // The database has been away too long: these counts stay in this host's store only.
        Stmt counters(db, "INSERT INTO counters(name, value) VALUES ('tlsrpt_unshipped', ?1) "
                          "ON CONFLICT(name) DO UPDATE SET value = value + ?1");
        counters.num(1, sessions);
        if (counters.step() != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
        return;
    }
    Stmt ins(db, "INSERT INTO outbox(batch, day, domain, record, policy, detail, a, b) "
                 "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)");
    for (const auto& [gk, pols] : b.groups) {
        const auto& [day, domain, record] = gk;
        for (const auto& [pk, c] : pols) {
            ins.reset();
            ins.num(1, next).text(2, day).text(3, domain).text(4, record).text(5, pk).text(6, "");
            ins.num(7, c.success).num(8, c.failure);
            if (ins.step() != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
            for (const auto& [dk, n] : c.details) {
                ins.reset();
                ins.num(1, next).text(2, day).text(3, domain).text(4, record).text(5, pk);
                ins.text(6, dk).num(7, n).num(8, 0);
                if (ins.step() != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
            }
        }
    }
    Stmt up(db, "INSERT INTO meta(key, value) VALUES ('outbox_next', ?1) ON CONFLICT(key) DO "
                "UPDATE SET value = ?1");
    up.text(1, std::to_string(next + 1));
    if (up.step() != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
}

std::vector<OutboxBatch> Store::outbox(int max_batches) {
    std::vector<OutboxBatch> out;
    Stmt ids(db_.get(), "SELECT DISTINCT batch FROM outbox ORDER BY batch LIMIT ?1");
    ids.num(1, max_batches);
    while (ids.row()) out.push_back(OutboxBatch{ids.col_num(0), {}});
    for (auto& ob : out) {
        Stmt r(db_.get(), "SELECT day, domain, record, policy, detail, a, b FROM outbox WHERE "
                          "batch = ?1");
        r.num(1, ob.batch);
        while (r.row())
            ob.rows.push_back(OutboxRow{r.col_text(0), r.col_text(1), r.col_text(2),
                                        r.col_text(3), r.col_text(4), r.col_num(5), r.col_num(6)});
    }
    return out;
}

bool Store::outbox_done(std::int64_t batch) {
    Stmt s(db_.get(), "DELETE FROM outbox WHERE batch = ?1");
    s.num(1, batch);
    return s.step() == SQLITE_DONE;
}

std::int64_t Store::outbox_rows() {
    Stmt s(db_.get(), "SELECT count(*) FROM outbox");
    return s.row() ? s.col_num(0) : 0;
}

bool Store::replace_day(const std::string& day, const std::vector<OutboxRow>& rows,
                        std::string& err) {
    sqlite3* db = db_.get();
    return in_transaction(db, err, [&] {
        for (const char* sql : {"DELETE FROM results WHERE day = ?1", "DELETE FROM failures WHERE day = ?1"}) {
            Stmt d(db, sql);
            d.text(1, day);
            if (d.step() != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
        }
        Stmt res(db, "INSERT INTO results(day, domain, record, policy, success, failure) VALUES "
                     "(?1, ?2, ?3, ?4, ?5, ?6)");
        Stmt fail(db, "INSERT INTO failures(day, domain, record, policy, detail, sessions) VALUES "
                      "(?1, ?2, ?3, ?4, ?5, ?6)");
        for (const auto& r : rows) {
            Stmt& st = r.detail.empty() ? res : fail;
            st.reset();
            st.text(1, day).text(2, r.domain).text(3, r.record).text(4, r.policy);
            if (r.detail.empty()) st.num(5, r.a).num(6, r.b);
            else st.text(5, r.detail).num(6, r.a);
            if (st.step() != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
        }
        Stmt m(db, "INSERT INTO meta(key, value) VALUES (?1, '1') ON CONFLICT(key) DO UPDATE SET "
                   "value = '1'");
        m.text(1, "fleet_imported:" + day);
        if (m.step() != SQLITE_DONE) throw std::runtime_error(sqlite3_errmsg(db));
    });
}

int Store::prune_before(const std::string& day) {
    std::string err;
    if (!exec(db_.get(), "BEGIN IMMEDIATE", &err)) return -1;
    int n = 0;
    for (const char* sql :
         {"DELETE FROM results WHERE day < ?1", "DELETE FROM failures WHERE day < ?1",
          "DELETE FROM reports WHERE day < ?1",
          "DELETE FROM deliveries WHERE day < ?1 AND state != 'pending'"}) {
        Stmt s(db_.get(), sql);
        s.text(1, day);
        s.step();
        n += sqlite3_changes(db_.get());
    }
    exec(db_.get(), "COMMIT");
    return n;
}

}  // namespace strictmx::tlsrpt
