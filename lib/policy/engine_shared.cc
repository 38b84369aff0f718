// SPDX-License-Identifier: MIT
// The engine's fleet half: claims on the shared cache before resolving, waiting for another
// instance's resolution, adopting the rows other instances write, and the one conversion of
// a stored row (local SQLite or shared PostgreSQL) into the packed in-memory entry.
#include <malloc.h>

#include <algorithm>

#include "dns/name.hh"
#include "policy/engine.hh"
#include "policy/engine_detail.hh"
#include "sts/policy.hh"
#include "util/log.hh"
#include "util/strings.hh"

namespace strictmx::policy {

using namespace detail;

bool Engine::row_usable(const store::StsRow& r, UnixTime now) {
    // What from_cache() answers without a resolution, and nothing due: a row another
    // instance must refresh is not usable (it is resolved under the lease instead).
    if (r.dane_kind < 0 || r.dane_kind > 4 || r.dane_kind == dane_code_fail) return false;
    if (r.dane_expires <= now || r.dane_refresh <= now) return false;
    bool policy_alive = r.has_policy && r.expires_at > now;
    if (r.has_policy && r.next_refresh <= now) return false;
    bool negative_alive = !r.has_policy && r.expires_at > now;
    return r.dane_kind != 0 || policy_alive || negative_alive;
}

bool Engine::row_plausible(const store::StsRow& r, std::string& why) {
    // A shared row was written by another instance, through a database others can reach:
    // checked like data from the network before it can shape an answer.
    auto text_ok = [](const std::string& s, std::size_t max) {
        if (s.size() > max) return false;
        for (unsigned char ch : s)
            if (ch < 0x20 || ch == 0x7f) return false;
        return true;
    };
    if (!dns::is_hostname(r.domain) || r.domain != to_lower(r.domain)) {
        why = "domain is not a lower-case host name";
        return false;
    }
    if (r.dane_kind < -1 || r.dane_kind > 4 || r.dane_fail_class < 0 || r.dane_fail_class > 2) {
        why = "dane_kind or dane_fail_class out of range";
        return false;
    }
    if (r.failures < 0 || r.fetched_at < 0 || r.expires_at < 0 || r.last_used < 0) {
        why = "negative counter or time";
        return false;
    }
    if (!text_ok(r.txt_id, 32) || !text_ok(r.last_error, 1024) || !text_ok(r.dane_why, 1024) ||
        !text_ok(r.mx_hosts, 16 * 254)) {
        why = "a text field is too long or has control characters";
        return false;
    }
    for (auto h : split(r.mx_hosts, ' '))
        if (!h.empty() && !dns::is_hostname(h)) {
            why = "an MX host is not a host name";
            return false;
        }
    if (r.has_policy) {
        if (r.policy.size() > sts::kMaxPolicyBytes || !sts::parse_policy(r.policy)) {
            why = "the policy text does not parse";
            return false;
        }
    } else if (!r.policy.empty()) {
        why = "policy text without has_policy";
        return false;
    }
    return true;
}

bool Engine::adopt(store::StsRow&& row, UnixTime now, bool check) {
    if (check) {
        std::string why;
        if (!row_plausible(row, why)) {
            ++stats_.shared_refused;
            log::error("fleet: shared cache row refused",
                       {{"domain", sanitize(row.domain, 80)}, {"why", why}});
            return false;
        }
    }
    bool policy_alive = row.has_policy && row.expires_at > now;
    bool negative_alive = !row.has_policy && row.expires_at > now;
    bool dane_alive = dane_kind_of(row.dane_kind) && row.dane_expires > now;
    // The stored text was written by an instance in canonical form: parsed when used.
    Packed p;
    auto add = [&](const std::string& f, bool last = false) {
        p.blob += f;
        if (!last) p.blob += '\0';
    };
    add(policy_alive ? row.policy : std::string());
    add(row.txt_id);
    add(row.mx_hosts);
    add(negative_alive ? row.last_error : std::string());
    add(row.last_error);
    add(std::string());
    add(row.dane_kind == 0 ? std::string() : row.dane_why, true);
    p.blob.shrink_to_fit();
    p.fetched_at = t32(row.fetched_at);
    p.expires_at = t32(policy_alive ? row.expires_at : 0);
    p.negative_until = t32(negative_alive ? row.expires_at : 0);
    p.next_refresh = t32(row.next_refresh);
    p.mx_expires = t32(row.mx_expires);
    p.dane_expires = t32(dane_alive ? row.dane_expires : 0);
    p.dane_refresh = t32(row.dane_refresh);
    p.last_used = t32(row.last_used != 0 ? row.last_used : now);
    p.dane_seen_until = t32(row.dane_seen_until);
    p.failures = static_cast<std::uint16_t>(std::clamp(row.failures, 0, 0xffff));
    p.dane_kind = static_cast<std::int8_t>(dane_alive ? row.dane_kind : -1);
    p.fail_class = static_cast<std::uint8_t>(row.dane_fail_class & 3);
    p.flags = static_cast<std::uint8_t>(row.mx_expires != 0 ? 1 : 0);
    p.generation = ++generation_;
    if (auto it = entries_.find(row.domain); it != entries_.end()) {
        // "Had DANE" and the last use are this instance's too: never moved back.
        p.dane_seen_until = std::max(p.dane_seen_until, it->second.dane_seen_until);
        p.last_used = std::max(p.last_used, it->second.last_used);
        it->second = std::move(p);
    } else {
        if (entries_.size() >= opts_.max_entries) evict_lru();
        entries_.emplace(row.domain, std::move(p));
    }
    if (check) {
        ++stats_.shared_adopted;
        if (store_) store_->put(std::move(row));  // this instance's own copy, for restarts
    }
    return true;
}

bool Engine::answer_from_entry(const std::shared_ptr<Job>& job) {
    auto e = get(job->domain);
    if (!e) return false;
    auto d = from_cache(job->domain, *e);
    if (!d) return false;
    job->shared = true;
    job->note("answered from the shared cache");
    finish(job, std::move(*d));
    return true;
}

void Engine::on_claim(const std::shared_ptr<Job>& job, store::SharedCache::ClaimResult r) {
    auto it = jobs_.find(job->domain);
    if (it == jobs_.end() || it->second != job) return;
    using C = store::SharedCache::Claim;
    UnixTime now = clock_.now();
    switch (r.claim) {
        case C::Fresh:
            if (r.row && adopt(std::move(*r.row), now, true) && answer_from_entry(job)) return;
            break;  // not usable after all: resolve here
        case C::Busy:
            if (job->kind == JobKind::Refresh && job->waiters.empty()) {
                // Another instance refreshes it and will announce the result; look again
                // only after the wait (a hit must not ask the database each time).
                if (auto p = entries_.find(job->domain); p != entries_.end()) {
                    std::uint32_t later = t32(now + std::max(1, lease_wait_ms_ / 1000));
                    p->second.next_refresh = std::max(p->second.next_refresh, later);
                    p->second.dane_refresh = std::max(p->second.dane_refresh, later);
                }
                drop_job(job);
                return;
            }
            ++stats_.shared_waits;
            log::debug("fleet: waiting for another instance's resolution",
                       {{"domain", job->domain}, {"why", r.why}});
            shared_wait_[job->domain] =
                std::chrono::steady_clock::now() + std::chrono::milliseconds(lease_wait_ms_);
            // The holder's NOTIFY may have reached this loop before this answer did (the
            // two come from different connections) and been passed over: read the row
            // once now that the wait is registered.
            fetch_shared(job->domain);
            return;
        case C::Lease:
            break;
        case C::Unavailable:
            log::debug("fleet: shared cache unavailable, resolving here",
                       {{"domain", job->domain}, {"why", r.why}});
            break;
    }
    job->e = get(job->domain).value_or(job->e);
    begin(job);
}

void Engine::on_shared_change(const store::SharedCache::Change& c) {
    if (c.flushed) {
        if (flush_local(c.domain))
            log::info("cache entry flushed by another instance",
                      {{"domain", c.domain}, {"by", c.by}});
        return;
    }
    if (!entries_.contains(c.domain) && !shared_wait_.contains(c.domain)) return;
    fetch_shared(c.domain);
}

void Engine::fetch_shared(const std::string& domain) {
    if (!shared_) return;
    shared_->fetch(domain, [this, domain](std::optional<store::StsRow> row) {
        if (!row || row->domain != domain) return;
        if (!adopt(std::move(*row), clock_.now(), true)) return;
        if (!shared_wait_.contains(domain)) return;
        auto j = jobs_.find(domain);
        if (j == jobs_.end()) {
            shared_wait_.erase(domain);
            return;
        }
        auto job = j->second;
        answer_from_entry(job);  // else keep waiting: the deadline resolves here
    });
}

}  // namespace strictmx::policy
