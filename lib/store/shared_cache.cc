// SPDX-License-Identifier: MIT
#include "store/shared_cache.hh"

#include <poll.h>

#include <algorithm>

#include "util/log.hh"
#include "util/strings.hh"

namespace strictmx::store {

namespace {

using Clock = std::chrono::steady_clock;

constexpr const char* kColumns =
    "domain, has_policy, txt_id, policy, fetched_at, expires_at, next_refresh, failures, "
    "last_error, mx_hosts, mx_expires, dane_kind, dane_expires, dane_refresh, dane_why, "
    "dane_fail_class, dane_seen_until, last_used";

// One row written for all: the row, this instance's lease released, the others told.
const char* kPublish = R"SQL(
WITH up AS (
  INSERT INTO cache_domains (domain, has_policy, txt_id, policy, fetched_at, expires_at,
      next_refresh, failures, last_error, mx_hosts, mx_expires, dane_kind, dane_expires,
      dane_refresh, dane_why, dane_fail_class, dane_seen_until, last_used, version,
      written_by, written_at)
  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,
      nextval('cache_version'), $19, now())
  ON CONFLICT (domain) DO UPDATE SET has_policy = EXCLUDED.has_policy,
      txt_id = EXCLUDED.txt_id, policy = EXCLUDED.policy, fetched_at = EXCLUDED.fetched_at,
      expires_at = EXCLUDED.expires_at, next_refresh = EXCLUDED.next_refresh,
      failures = EXCLUDED.failures, last_error = EXCLUDED.last_error,
      mx_hosts = EXCLUDED.mx_hosts, mx_expires = EXCLUDED.mx_expires,
      dane_kind = EXCLUDED.dane_kind, dane_expires = EXCLUDED.dane_expires,
      dane_refresh = EXCLUDED.dane_refresh, dane_why = EXCLUDED.dane_why,
      dane_fail_class = EXCLUDED.dane_fail_class,
      dane_seen_until = GREATEST(cache_domains.dane_seen_until, EXCLUDED.dane_seen_until),
      last_used = GREATEST(cache_domains.last_used, EXCLUDED.last_used),
      version = EXCLUDED.version, written_by = EXCLUDED.written_by, written_at = now()
  RETURNING version),
released AS (DELETE FROM cache_leases WHERE domain = $1 AND holder = $19)
SELECT pg_notify('strictmx_cache', 'U ' || (SELECT version FROM up) || ' ' || $19 || ' ' || $1)
)SQL";

const char* kForget = R"SQL(
WITH gone AS (DELETE FROM cache_domains WHERE domain = $1),
released AS (DELETE FROM cache_leases WHERE domain = $1)
SELECT pg_notify('strictmx_cache', 'F 0 ' || $2 || ' ' || $1)
)SQL";

// Taken when there is no lease, when it has ended, or when it is already ours.
const char* kLease = R"SQL(
INSERT INTO cache_leases (domain, holder, until)
VALUES ($1, $2, now() + make_interval(secs => $3::int))
ON CONFLICT (domain) DO UPDATE SET holder = EXCLUDED.holder, until = EXCLUDED.until
  WHERE cache_leases.until < now() OR cache_leases.holder = EXCLUDED.holder
RETURNING holder
)SQL";

std::string b(bool v) { return v ? "t" : "f"; }
std::string n(long long v) { return std::to_string(v); }

struct TimerArg {
    SharedCache* self;
    std::uint64_t id;
};

}  // namespace

const char* SharedCache::columns() { return kColumns; }

StsRow SharedCache::row_from(const pg::Result& r, int i) {
    StsRow row;
    row.domain = r.text(i, 0);
    row.has_policy = r.text(i, 1) == "t";
    row.txt_id = r.text(i, 2);
    row.policy = r.text(i, 3);
    row.fetched_at = r.num(i, 4);
    row.expires_at = r.num(i, 5);
    row.next_refresh = r.num(i, 6);
    row.failures = static_cast<int>(r.num(i, 7));
    row.last_error = r.text(i, 8);
    row.mx_hosts = r.text(i, 9);
    row.mx_expires = r.num(i, 10);
    row.dane_kind = static_cast<int>(r.num(i, 11));
    row.dane_expires = r.num(i, 12);
    row.dane_refresh = r.num(i, 13);
    row.dane_why = r.text(i, 14);
    row.dane_fail_class = static_cast<int>(r.num(i, 15));
    row.dane_seen_until = r.num(i, 16);
    row.last_used = r.num(i, 17);
    return row;
}

SharedCache::SharedCache(event_base* base, SharedOptions o) : base_(base), o_(std::move(o)) {
    o_.pool = std::clamp(o_.pool, 1, 64);
    // Every answer a worker posts has a task behind it (bounded), plus the listener's
    // changes: room for both.
    post_ = std::make_unique<LoopPost>(base_, o_.max_tasks + 100'000);
}

SharedCache::~SharedCache() {
    {
        std::lock_guard lk(mu_);
        stop_ = true;
    }
    cv_.notify_all();
    for (auto& t : threads_) t.join();
    post_->close();
    for (auto& [id, w] : waiting_)
        if (w.timer) delete static_cast<TimerArg*>(event_get_callback_arg(w.timer.get()));
}

void SharedCache::start(ChangeCb on_change) {
    on_change_ = std::move(on_change);
    for (int i = 0; i < o_.pool; ++i) threads_.emplace_back([this] { worker_main(); });
    threads_.emplace_back([this] { listener_main(); });
}

void SharedCache::enqueue(Task t, Waiting w) {
    std::uint64_t id = t.id;
    bool queued = false;
    {
        std::lock_guard lk(mu_);
        if (t.kind == Task::ClaimTask) ++stats_.claims;
        if (tasks_.size() < o_.max_tasks) {
            tasks_.push_back(std::move(t));
            queued = true;
        } else {
            ++stats_.refused;
        }
    }
    {
        auto* ta = new TimerArg{this, id};
        w.timer.reset(evtimer_new(base_, &on_timeout, ta));
    }
    // Refused: answered (Unavailable, or no row) from the loop, never from inside the call.
    timeval tv{o_.timeout_ms / 1000, (o_.timeout_ms % 1000) * 1000};
    timeval zero{0, 0};
    evtimer_add(w.timer.get(), queued ? &tv : &zero);
    waiting_.emplace(id, std::move(w));
    if (queued) cv_.notify_one();
}

void SharedCache::claim(const std::string& domain, Usable usable, ClaimCb cb) {
    Task t;
    t.kind = Task::ClaimTask;
    t.id = next_id_++;
    t.domain = domain;
    t.usable = std::move(usable);
    t.deadline = Clock::now() + std::chrono::milliseconds(o_.timeout_ms);
    Waiting w;
    w.claim_cb = std::move(cb);
    enqueue(std::move(t), std::move(w));
}

void SharedCache::fetch(const std::string& domain, RowCb cb) {
    Task t;
    t.kind = Task::FetchTask;
    t.id = next_id_++;
    t.domain = domain;
    t.deadline = Clock::now() + std::chrono::milliseconds(o_.timeout_ms);
    Waiting w;
    w.row_cb = std::move(cb);
    enqueue(std::move(t), std::move(w));
}

void SharedCache::on_timeout(evutil_socket_t, short, void* arg) noexcept {
    auto* ta = static_cast<TimerArg*>(arg);
    SharedCache* self = ta->self;
    std::uint64_t id = ta->id;
    {
        std::lock_guard lk(self->mu_);
        ++self->stats_.timeouts;
    }
    ClaimResult r;
    r.why = "no answer from the database within store.timeout_ms = " +
            std::to_string(self->o_.timeout_ms);
    try {
        self->deliver(id, std::move(r), std::nullopt);
    } catch (...) {
    }
}

void SharedCache::deliver(std::uint64_t id, ClaimResult r, std::optional<StsRow> row) {
    auto it = waiting_.find(id);
    if (it == waiting_.end()) return;  // timed out already
    Waiting w = std::move(it->second);
    waiting_.erase(it);
    if (w.timer) {
        delete static_cast<TimerArg*>(event_get_callback_arg(w.timer.get()));
        event_del(w.timer.get());
    }
    if (w.claim_cb) {
        if (r.claim == Claim::Unavailable) {
            std::lock_guard lk(mu_);
            ++stats_.unavailable;
        }
        w.claim_cb(std::move(r));
    } else if (w.row_cb) {
        w.row_cb(std::move(row));
    }
}

void SharedCache::publish(StsRow row) {
    {
        std::lock_guard lk(mu_);
        auto it = publish_.find(row.domain);
        if (it != publish_.end()) {
            it->second = std::move(row);
        } else {
            if (publish_.size() >= o_.max_publish && !publish_order_.empty()) {
                publish_.erase(publish_order_.front());
                publish_order_.pop_front();
                ++stats_.publish_dropped;
            }
            publish_order_.push_back(row.domain);
            std::string d = row.domain;
            publish_.emplace(std::move(d), std::move(row));
        }
        stats_.publish_pending = publish_.size();
    }
    cv_.notify_one();
}

void SharedCache::forget(const std::string& domain) {
    Task t;
    t.kind = Task::ForgetTask;
    t.domain = domain;
    t.deadline = Clock::now() + std::chrono::seconds(60);
    {
        std::lock_guard lk(mu_);
        if (tasks_.size() >= o_.max_tasks) {
            ++stats_.refused;
            return;
        }
        tasks_.push_back(std::move(t));
    }
    cv_.notify_one();
}

SharedCache::Stats SharedCache::stats() const {
    std::lock_guard lk(mu_);
    return stats_;
}

void SharedCache::note_error(const std::string& why) {
    bool was;
    {
        std::lock_guard lk(mu_);
        was = stats_.connected;
        stats_.connected = false;
        stats_.last_error = why;
    }
    if (was)
        log::error("fleet: shared cache database unavailable, answering from memory and "
                   "resolving alone",
                   {{"dsn", pg::redact(o_.db.dsn)}, {"error", why}});
}

bool SharedCache::ensure(Worker& w, std::string& why) {
    if (w.conn && PQstatus(w.conn.get()) == CONNECTION_OK) return true;
    w.conn.reset();
    auto now = Clock::now();
    if (now < w.next_connect) {
        std::lock_guard lk(mu_);
        why = stats_.last_error.empty() ? "database unavailable" : stats_.last_error;
        return false;
    }
    w.conn = pg::connect(o_.db, why);
    if (!w.conn) {
        w.next_connect = now + std::chrono::seconds(1);
        note_error(why);
        return false;
    }
    bool was;
    {
        std::lock_guard lk(mu_);
        was = stats_.connected;
        stats_.connected = true;
        stats_.last_error.clear();
    }
    if (!was) log::info("fleet: shared cache database connected", {{"dsn", pg::redact(o_.db.dsn)}});
    return true;
}

void SharedCache::worker_main() {
    Worker w;
    for (;;) {
        std::unique_lock lk(mu_);
        cv_.wait_until(lk, publish_.empty() ? Clock::now() + std::chrono::seconds(1) : publish_retry_at_,
                       [&] {
                           return stop_ || !tasks_.empty() ||
                                  (!publish_.empty() && Clock::now() >= publish_retry_at_);
                       });
        if (stop_) return;
        if (!tasks_.empty()) {
            Task t = std::move(tasks_.front());
            tasks_.pop_front();
            lk.unlock();
            run_task(w, t);
            continue;
        }
        if (publish_.empty() || Clock::now() < publish_retry_at_) continue;
        std::vector<StsRow> rows;
        while (!publish_order_.empty() && rows.size() < 64) {
            auto it = publish_.find(publish_order_.front());
            publish_order_.pop_front();
            if (it == publish_.end()) continue;
            rows.push_back(std::move(it->second));
            publish_.erase(it);
        }
        stats_.publish_pending = publish_.size();
        lk.unlock();
        std::string why;
        if (write_rows(w, rows, why)) {
            std::lock_guard g(mu_);
            stats_.published += rows.size();
            continue;
        }
        // Keep them for later unless a newer row of the domain came meanwhile.
        std::lock_guard g(mu_);
        ++stats_.publish_errors;
        for (auto it = rows.rbegin(); it != rows.rend(); ++it) {
            if (publish_.contains(it->domain)) continue;
            publish_order_.push_front(it->domain);
            std::string d = it->domain;
            publish_.emplace(std::move(d), std::move(*it));
        }
        while (publish_.size() > o_.max_publish && !publish_order_.empty()) {
            publish_.erase(publish_order_.back());
            publish_order_.pop_back();
            ++stats_.publish_dropped;
        }
        stats_.publish_pending = publish_.size();
        publish_retry_at_ = Clock::now() + std::chrono::seconds(1);
    }
}

bool SharedCache::write_rows(Worker& w, std::vector<StsRow>& rows, std::string& why) {
    if (rows.empty()) return true;
    if (!ensure(w, why)) return false;
    auto fail = [&](const std::string& e) {
        why = e;
        if (PQstatus(w.conn.get()) != CONNECTION_OK) {
            note_error(e);
            w.conn.reset();
        } else {
            pg::exec(w.conn.get(), "ROLLBACK");
            log::error("fleet: writing the shared cache failed", {{"error", e}});
        }
        return false;
    };
    pg::Result bg = pg::exec(w.conn.get(), "BEGIN");
    if (!bg.ok()) return fail(bg.error());
    for (const auto& r : rows) {
        pg::Result res = pg::exec(
            w.conn.get(), kPublish,
            {r.domain, b(r.has_policy), r.txt_id, r.policy, n(r.fetched_at), n(r.expires_at),
             n(r.next_refresh), n(r.failures), r.last_error, r.mx_hosts, n(r.mx_expires),
             n(r.dane_kind), n(r.dane_expires), n(r.dane_refresh), r.dane_why,
             n(r.dane_fail_class), n(r.dane_seen_until), n(r.last_used), o_.instance});
        if (!res.ok()) return fail(res.error());
    }
    pg::Result cm = pg::exec(w.conn.get(), "COMMIT");
    if (!cm.ok()) return fail(cm.error());
    return true;
}

void SharedCache::run_task(Worker& w, Task& t) {
    ClaimResult res;
    std::optional<StsRow> row;
    auto post = [&] {
        std::uint64_t id = t.id;
        if (!post_->post([this, id, res = std::move(res), row = std::move(row)]() mutable {
                deliver(id, std::move(res), std::move(row));
            })) {
            // The loop's queue is full: the claim's timer answers it.
        }
    };
    if (Clock::now() >= t.deadline) {  // its caller has stopped waiting
        if (t.kind != Task::ForgetTask) return;
    }
    std::string why;
    if (!ensure(w, why)) {
        if (t.kind == Task::ForgetTask) {
            log::warn("fleet: shared row not deleted, database unavailable",
                      {{"domain", t.domain}, {"error", why}});
            return;
        }
        res.why = why;
        post();
        return;
    }
    auto broken = [&](const pg::Result& r) {
        if (PQstatus(w.conn.get()) != CONNECTION_OK) {
            note_error(r.error());
            w.conn.reset();
        } else {
            log::error("fleet: shared cache statement failed", {{"error", r.error()}});
        }
        res.claim = Claim::Unavailable;
        res.why = r.error();
    };
    if (t.kind == Task::ForgetTask) {
        pg::Result r = pg::exec(w.conn.get(), kForget, {t.domain, o_.instance});
        if (!r.ok()) broken(r);
        return;
    }
    std::string select = std::string("SELECT ") + kColumns + " FROM cache_domains WHERE domain = $1";
    pg::Result r = pg::exec(w.conn.get(), select, {t.domain});
    if (!r.ok()) {
        broken(r);
        post();
        return;
    }
    if (r.rows() == 1) row = row_from(r, 0);
    if (t.kind == Task::FetchTask) {
        post();
        return;
    }
    if (row && t.usable(*row)) {
        res.claim = Claim::Fresh;
        res.row = row;
        std::lock_guard lk(mu_);
        ++stats_.fresh;
    } else {
        pg::Result l = pg::exec(w.conn.get(), kLease, {t.domain, o_.instance, n(o_.lease_s)});
        if (!l.ok()) {
            broken(l);
            post();
            return;
        }
        if (l.rows() == 0) {
            res.claim = Claim::Busy;
            res.row = row;
            pg::Result h = pg::exec(w.conn.get(),
                                    "SELECT holder, extract(epoch FROM until - now())::bigint "
                                    "FROM cache_leases WHERE domain = $1",
                                    {t.domain});
            if (h.ok() && h.rows() == 1) {
                res.why = "instance " + h.text(0, 0) + " resolves it (lease for another " +
                          std::to_string(h.num(0, 1)) + " s)";
            } else if (h.ok()) {
                // Released since: the holder has just written the row.
                pg::Result again = pg::exec(w.conn.get(), select, {t.domain});
                if (again.ok() && again.rows() == 1) {
                    StsRow fresh = row_from(again, 0);
                    if (t.usable(fresh)) {
                        res.claim = Claim::Fresh;
                        res.row = std::move(fresh);
                        {
                            std::lock_guard lk(mu_);
                            ++stats_.fresh;
                        }
                        post();
                        return;
                    }
                }
                res.why = "the holder released its lease";
            }
            std::lock_guard lk(mu_);
            ++stats_.busy;
        } else {
            // The holder may have published and released between our read and our lease:
            // read again before resolving.
            pg::Result again = pg::exec(w.conn.get(), select, {t.domain});
            if (again.ok() && again.rows() == 1) {
                StsRow fresh = row_from(again, 0);
                if (t.usable(fresh)) {
                    pg::exec(w.conn.get(),
                             "DELETE FROM cache_leases WHERE domain = $1 AND holder = $2",
                             {t.domain, o_.instance});
                    res.claim = Claim::Fresh;
                    res.row = std::move(fresh);
                    std::lock_guard lk(mu_);
                    ++stats_.fresh;
                    post();
                    return;
                }
            }
            res.claim = Claim::Lease;
            res.row = row;
            std::lock_guard lk(mu_);
            ++stats_.leases;
        }
    }
    post();
}

void SharedCache::listener_main() {
    pg::ConnPtr conn;
    long long watermark = -1;  // highest version seen; -1: not yet connected once
    auto next_connect = Clock::now();
    auto sleep_a_bit = [&](int ms) {
        std::unique_lock lk(mu_);
        cv_.wait_for(lk, std::chrono::milliseconds(ms), [&] { return stop_; });
        return !stop_;
    };
    auto announce = [&](Change c) {
        post_->post([this, c = std::move(c)] {
            {
                std::lock_guard lk(mu_);
                ++stats_.changes;
            }
            if (on_change_) on_change_(c);
        });
    };
    for (;;) {
        {
            std::lock_guard lk(mu_);
            if (stop_) return;
        }
        if (!conn || PQstatus(conn.get()) != CONNECTION_OK) {
            {
                std::lock_guard lk(mu_);
                stats_.listening = false;
            }
            conn.reset();
            if (Clock::now() < next_connect) {
                if (!sleep_a_bit(200)) return;
                continue;
            }
            std::string why;
            conn = pg::connect(o_.db, why);
            if (!conn) {
                next_connect = Clock::now() + std::chrono::seconds(1);
                continue;
            }
            pg::Result l = pg::exec(conn.get(), std::string("LISTEN ") + pg::kChannel);
            if (!l.ok()) {
                conn.reset();
                next_connect = Clock::now() + std::chrono::seconds(1);
                continue;
            }
            if (watermark < 0) {
                pg::Result m = pg::exec(conn.get(), "SELECT coalesce(max(version), 0) FROM cache_domains");
                if (!m.ok()) {
                    conn.reset();
                    next_connect = Clock::now() + std::chrono::seconds(1);
                    continue;
                }
                watermark = m.num(0, 0);
            } else {
                // Changes made while we were not listening. (Flushes are not seen here:
                // their rows are gone; an instance that missed one keeps its entry until
                // it expires or is refreshed.)
                pg::Result m = pg::exec(conn.get(),
                                        "SELECT domain, version, written_by FROM cache_domains "
                                        "WHERE version > $1 ORDER BY version LIMIT 100000",
                                        {std::to_string(watermark)});
                if (!m.ok()) {
                    conn.reset();
                    continue;
                }
                for (int i = 0; i < m.rows(); ++i) {
                    watermark = std::max(watermark, m.num(i, 1));
                    if (m.text(i, 2) == o_.instance) continue;
                    announce(Change{m.text(i, 0), false, m.text(i, 2)});
                }
                if (m.rows() > 0)
                    log::info("fleet: caught up with changes made while disconnected",
                              {{"domains", std::to_string(m.rows())}});
            }
            std::lock_guard lk(mu_);
            stats_.listening = true;
        }
        pollfd p{PQsocket(conn.get()), POLLIN, 0};
        int rc = ::poll(&p, 1, 250);
        if (rc < 0) continue;
        if (rc > 0 && !PQconsumeInput(conn.get())) {
            conn.reset();
            continue;
        }
        while (PGnotify* nt = PQnotifies(conn.get())) {
            std::string payload = nt->extra ? nt->extra : "";
            PQfreemem(nt);
            // "U|F VERSION INSTANCE DOMAIN"
            auto f = split(payload, ' ');
            if (f.size() != 4 || (f[0] != "U" && f[0] != "F")) continue;
            long long v = std::strtoll(std::string(f[1]).c_str(), nullptr, 10);
            watermark = std::max(watermark, v);
            if (f[2] == o_.instance) continue;
            announce(Change{std::string(f[3]), f[0] == "F", std::string(f[2])});
        }
    }
}

}  // namespace strictmx::store
