// SPDX-License-Identifier: MIT
#include "tlsrpt/reporter.hh"

#include <fcntl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include "dns/name.hh"
#include "store/pg.hh"
#include "tlsrpt/deliver.hh"
#include "tlsrpt/fleet.hh"
#include "tlsrpt/record.hh"
#include "tlsrpt/report.hh"
#include "util/log.hh"

namespace strictmx::tlsrpt {
namespace {

std::string random_hex(std::size_t bytes) {
    unsigned char buf[32];
    if (bytes > sizeof buf) bytes = sizeof buf;
    std::size_t got = 0;
    while (got < bytes) {
        ssize_t n = ::getrandom(buf + got, bytes - got, 0);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0) throw std::runtime_error(std::string("getrandom: ") + std::strerror(errno));
        got += static_cast<std::size_t>(n);
    }
    static const char* hex = "0123456789abcdef";
    std::string s;
    for (std::size_t i = 0; i < bytes; ++i) {
        s += hex[buf[i] >> 4];
        s += hex[buf[i] & 15];
    }
    return s;
}

// Write a file whole or not at all: a temporary name, fsync (`durable`), rename.
bool write_file(const std::string& path, const std::string& data, std::string& err,
                bool durable = true) {
    std::string tmp = path + ".tmp";
    int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) {
        err = tmp + ": " + std::strerror(errno);
        return false;
    }
    std::size_t off = 0;
    while (off < data.size()) {
        ssize_t n = ::write(fd, data.data() + off, data.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) {
            err = tmp + ": " + std::strerror(n < 0 ? errno : ENOSPC);
            ::close(fd);
            ::unlink(tmp.c_str());
            return false;
        }
        off += static_cast<std::size_t>(n);
    }
    if ((durable && ::fsync(fd) != 0) || ::close(fd) != 0) {
        err = tmp + ": " + std::strerror(errno);
        ::unlink(tmp.c_str());
        return false;
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        err = path + ": " + std::strerror(errno);
        ::unlink(tmp.c_str());
        return false;
    }
    return true;
}

bool read_file(const std::string& path, std::string& out) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return false;
    std::ostringstream ss;
    ss << in.rdbuf();
    out = ss.str();
    return true;
}

// FNV-1a: a stable spread of report times over tlsrpt.max_delay_s.
std::uint64_t fnv(const std::string& s) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char c : s) h = (h ^ c) * 1099511628211ull;
    return h;
}

std::string dest_key(const Destination& d) {
    return d.kind == Destination::Kind::Mailto ? "mailto:" + d.address : d.uri;
}

}  // namespace

std::string db_path(const config::Config& c) {
    return c.tlsrpt_db.empty() ? c.state_dir + "/tlsrpt.db" : c.tlsrpt_db;
}

std::string spool_path(const config::Config& c) {
    return c.tlsrpt_spool_dir.empty() ? c.state_dir + "/tlsrpt-spool" : c.tlsrpt_spool_dir;
}

Reporter::Reporter(const config::Config& c, const Clock& clock, bool read_only)
    : cfg_(c), clock_(clock) {
    submitter_ = submitter_domain(c.tlsrpt_contact_info);
    fleet_ = config::fleet(c);
    instance_ = config::instance_name(c);
    read_only_ = read_only;
    std::string path = db_path(c);
    // No store yet: nothing was collected. It is not created here (the daemon creates it,
    // as its own user).
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) return;
    store_ = Store::open(path, read_only);
}

UnixTime Reporter::backoff(int attempts) const {
    UnixTime d = 300;
    for (int i = 1; i < attempts && d < 4 * 3600; ++i) d *= 2;
    return std::min<UnixTime>(d, 4 * 3600);
}

bool Reporter::send_group(const Group& g, const std::vector<PolicyCounts>& policies,
                          const std::string& dry_run_dir, RunSummary& sum) {
    Record rec = parse_record(g.record);
    if (!rec.valid) {
        log::warn("tlsrpt: no report: the _smtp._tls record is not usable",
                  {{"domain", g.domain}, {"day", g.day}, {"why", rec.why},
                   {"record", g.record}});
        return true;
    }
    for (const auto& u : rec.ignored)
        log::info("tlsrpt: report URI ignored (not mailto: or https:, or malformed)",
                  {{"domain", g.domain}, {"uri", u}});
    // Destinations still to serve (a record may name one twice).
    std::vector<std::pair<std::size_t, const Destination*>> todo;
    std::vector<std::string> seen;
    for (std::size_t i = 0; i < rec.destinations.size(); ++i) {
        const auto& d = rec.destinations[i];
        std::string key = dest_key(d);
        bool dup = false;
        for (const auto& s : seen) dup = dup || s == key;
        if (dup) continue;
        seen.push_back(key);
        if (store_->delivery(g, key)) {
            ++sum.skipped;
            continue;
        }
        todo.emplace_back(i + 1, &d);
    }
    if (todo.empty()) return true;

    bool dry = !dry_run_dir.empty();
    std::string uid;
    if (auto u = store_->report_uid(g)) {
        uid = *u;
    } else {
        uid = random_hex(8);
        if (!dry && !store_->set_report_uid(g, uid, clock_.now())) {
            ++sum.errors;
            return false;
        }
    }
    Submitter sub{cfg_.tlsrpt_organization_name, cfg_.tlsrpt_contact_info, submitter_};
    std::string id = report_id(g, uid, sub);
    std::string body = report_json(g, policies, sub, id);
    std::string gz = gzip(body);
    std::string fname = report_filename(g, uid, sub);
    std::string stem = fname.substr(0, fname.size() - 8);  // without ".json.gz"
    ++sum.reports;

    for (auto [index, d] : todo) {
        bool mail = d->kind == Destination::Kind::Mailto;
        std::string payload =
            mail ? report_mail(g, id, fname, gz, sub, cfg_.tlsrpt_sender_address, d->address,
                               clock_.now(), "tlsrpt-" + uid + "-" + std::to_string(index))
                 : gz;
        std::string suffix = "." + std::to_string(index) + (mail ? ".eml" : ".json.gz");
        if (dry) {
            std::string err;
            if (write_file(dry_run_dir + "/" + stem + suffix, payload, err, false)) {
                ++sum.written;
            } else {
                log::error("tlsrpt: cannot write the dry-run file", {{"error", err}});
                ++sum.errors;
            }
            continue;
        }
        Attempt a = mail ? send_mail(cfg_.tlsrpt_sendmail, payload, d->address)
                         : post_https(d->uri, payload,
                                      {cfg_.tlsrpt_https_ca_file, cfg_.connect_to, cfg_.proxy,
                                       60'000, cfg_.https_connect_timeout_ms});
        Delivery rec_d;
        rec_d.day = g.day;
        rec_d.domain = g.domain;
        rec_d.record = g.record;
        rec_d.destination = dest_key(*d);
        rec_d.attempts = 1;
        rec_d.first_try = clock_.now();
        if (a.delivered) {
            rec_d.state = "delivered";
            store_->add_delivery(rec_d);
            ++sum.delivered;
            log::info("tlsrpt: report delivered",
                      {{"domain", g.domain}, {"day", g.day}, {"to", rec_d.destination},
                       {"report_id", id}});
            continue;
        }
        std::string spool = spool_path(cfg_);
        std::string file = spool + "/" + uid + suffix;
        std::string err;
        ::mkdir(spool.c_str(), 0750);
        if (!write_file(file, payload, err)) {
            log::error("tlsrpt: report not delivered and not queued: the spool is not writable",
                       {{"domain", g.domain}, {"to", rec_d.destination}, {"error", a.error},
                        {"spool_error", err}});
            ++sum.errors;
            continue;
        }
        rec_d.state = "pending";
        rec_d.next_try = clock_.now() + backoff(1);
        rec_d.last_error = a.error;
        rec_d.spool_file = file;
        if (!store_->add_delivery(rec_d)) {
            ++sum.errors;
            continue;
        }
        ++sum.queued;
        log::warn("tlsrpt: report delivery failed, queued for retry",
                  {{"domain", g.domain}, {"day", g.day}, {"to", rec_d.destination},
                   {"error", a.error}, {"next_try_s", std::to_string(backoff(1))}});
    }
    return true;
}

namespace {
store::pg::ConnPtr fleet_connect(const config::Config& c, const std::string& instance) {
    store::pg::Options o;
    o.dsn = c.store_dsn;
    o.application = "strictmx " + instance + " tlsrpt";
    std::string why;
    auto conn = store::pg::connect(o, why);
    if (!conn)
        throw std::runtime_error("the fleet database (" + store::pg::redact(c.store_dsn) +
                                 ") is unavailable: " + why + "; reports wait for it");
    return conn;
}
}  // namespace

std::vector<OutboxRow> Reporter::fleet_rows(const std::string& day) {
    auto conn = fleet_connect(cfg_, instance_);
    std::vector<OutboxRow> rows;
    // Written by other instances: checked before they shape a report.
    for (auto& r : fleet::day_rows(conn.get(), day)) {
        bool ok = dns::is_hostname(r.domain) && r.record.size() <= 4096 && r.policy.size() <= 65536 &&
                  r.detail.size() <= 4096 && r.a >= 0 && r.b >= 0;
        if (!ok) {
            log::error("tlsrpt: fleet row refused", {{"day", day}, {"domain", r.domain.substr(0, 80)}});
            continue;
        }
        rows.push_back(std::move(r));
    }
    return rows;
}

std::string Reporter::fleet_prepare(const std::string& day, bool claim) {
    auto conn = fleet_connect(cfg_, instance_);
    if (store_ && !read_only_) {
        auto r = fleet::ship(*store_, conn.get(), instance_);
        if (!r.error.empty())
            throw std::runtime_error("shipping this host's counts failed: " + r.error);
    }
    if (!claim) return instance_;
    std::string holder = fleet::claim_day(conn.get(), day, instance_);
    if (holder != instance_) return holder;
    if (!store_) store_ = Store::open(db_path(cfg_));
    if (!store_->meta_get("fleet_imported:" + day)) {
        auto rows = fleet_rows(day);
        std::string err;
        if (!store_->replace_day(day, rows, err))
            throw std::runtime_error("copying the fleet's counts of " + day + " failed: " + err);
        log::info("tlsrpt: day claimed for the fleet", {{"day", day}, {"instance", instance_},
                                                        {"rows", std::to_string(rows.size())}});
    }
    return holder;
}

RunSummary Reporter::send_day(const std::string& day, const std::string& dry_run_dir) {
    RunSummary sum;
    if (fleet_ && !dry_run_dir.empty()) {
        // A dry run claims nothing: the fleet's sums in a scratch store.
        auto scratch = Store::open(":memory:");
        std::string err;
        if (!scratch->replace_day(day, fleet_rows(day), err))
            throw std::runtime_error("reading the fleet's counts failed: " + err);
        std::swap(store_, scratch);
        store_->for_each_group(day, [&](const Group& g, std::vector<PolicyCounts>& pols) {
            send_group(g, pols, dry_run_dir, sum);
        });
        std::swap(store_, scratch);
        return sum;
    }
    if (fleet_) {
        std::string holder = fleet_prepare(day, true);
        if (holder != instance_) {
            sum.elsewhere = holder;
            return sum;
        }
    }
    if (!store_) return sum;
    store_->for_each_group(day, [&](const Group& g, std::vector<PolicyCounts>& pols) {
        send_group(g, pols, dry_run_dir, sum);
    });
    return sum;
}

void Reporter::retry(Delivery d, RunSummary& sum) {
    std::string payload;
    UnixTime now = clock_.now();
    Attempt a;
    if (!read_file(d.spool_file, payload)) {
        a.error = "spool file " + d.spool_file + " is missing";
    } else if (d.destination.starts_with("mailto:")) {
        a = send_mail(cfg_.tlsrpt_sendmail, payload, d.destination.substr(7));
    } else {
        a = post_https(d.destination, payload,
                       {cfg_.tlsrpt_https_ca_file, cfg_.connect_to, cfg_.proxy, 60'000,
                        cfg_.https_connect_timeout_ms});
    }
    ++d.attempts;
    if (a.delivered) {
        d.state = "delivered";
        d.last_error.clear();
        ::unlink(d.spool_file.c_str());
        d.spool_file.clear();
        ++sum.delivered;
        log::info("tlsrpt: queued report delivered",
                  {{"domain", d.domain}, {"day", d.day}, {"to", d.destination},
                   {"attempts", std::to_string(d.attempts)}});
    } else if (now - d.first_try >= cfg_.tlsrpt_retry_for_s || payload.empty()) {
        d.state = "failed";
        d.last_error = a.error;
        ::unlink(d.spool_file.c_str());
        d.spool_file.clear();
        ++sum.gave_up;
        log::error("tlsrpt: report delivery given up",
                   {{"domain", d.domain}, {"day", d.day}, {"to", d.destination},
                    {"error", a.error}, {"attempts", std::to_string(d.attempts)}});
    } else {
        d.last_error = a.error;
        d.next_try = now + backoff(d.attempts);
        ++sum.queued;
        log::warn("tlsrpt: queued report still not delivered",
                  {{"domain", d.domain}, {"to", d.destination}, {"error", a.error},
                   {"attempts", std::to_string(d.attempts)}});
    }
    if (!store_->update_delivery(d)) ++sum.errors;
}

RunSummary Reporter::flush(bool all) {
    RunSummary sum;
    if (!store_) return sum;
    UnixTime now = clock_.now();
    for (auto& d : store_->deliveries("pending"))
        if (all || d.next_try <= now) retry(d, sum);
    return sum;
}

RunSummary Reporter::run() {
    RunSummary sum;
    UnixTime now = clock_.now();
    std::string today = utc_day(now);
    std::string oldest = utc_day(now - static_cast<UnixTime>(cfg_.tlsrpt_retention_days) * 86'400);
    if (fleet_) {
        // Finished days with counts anywhere in the fleet: the first instance to ask after
        // the grace period reports them.
        fleet_prepare(today, false);
        auto conn = fleet_connect(cfg_, instance_);
        for (const auto& day : fleet::days(conn.get())) {
            if (day >= today || day < oldest) continue;
            if (now < day_start(day).value_or(0) + 86'400 + kFleetGraceSeconds) continue;
            fleet_prepare(day, true);
        }
    }
    if (!store_) return sum;
    for (const auto& day : store_->days()) {
        if (day >= today || day < oldest) continue;
        if (fleet_ && !store_->meta_get("fleet_imported:" + day)) continue;  // not ours
        UnixTime end = day_start(day).value_or(0) + 86'400;
        store_->for_each_group(day, [&](const Group& g, std::vector<PolicyCounts>& pols) {
            UnixTime delay = cfg_.tlsrpt_max_delay_s > 0
                                 ? static_cast<UnixTime>(fnv(g.domain + "|" + g.record + "|" + day) %
                                                         static_cast<std::uint64_t>(cfg_.tlsrpt_max_delay_s))
                                 : 0;
            if (now >= end + delay) send_group(g, pols, {}, sum);
        });
    }
    RunSummary f = flush(false);
    sum.delivered += f.delivered;
    sum.queued += f.queued;
    sum.gave_up += f.gave_up;
    sum.errors += f.errors;
    int n = store_->prune_before(oldest);
    if (n > 0) log::info("tlsrpt: old days pruned", {{"before", oldest}, {"rows", std::to_string(n)}});
    return sum;
}

std::map<std::string, std::int64_t> Reporter::stats() {
    std::map<std::string, std::int64_t> s = {
        {"datagrams_received", 0}, {"datagrams_invalid", 0}, {"datagrams_dropped", 0},
        {"sessions_recorded", 0},  {"deliveries_pending", 0}, {"deliveries_delivered", 0},
        {"deliveries_failed", 0},  {"reports_delivered", 0}};
    if (!store_) return s;
    for (const auto& [k, v] : store_->counters()) s[k] = v;
    s["deliveries_pending"] = static_cast<std::int64_t>(store_->deliveries("pending").size());
    s["deliveries_delivered"] = static_cast<std::int64_t>(store_->deliveries("delivered").size());
    s["deliveries_failed"] = static_cast<std::int64_t>(store_->deliveries("failed").size());
    s["reports_delivered"] = s["deliveries_delivered"];
    return s;
}

}  // namespace strictmx::tlsrpt
