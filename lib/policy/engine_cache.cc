// SPDX-License-Identifier: MIT
// The engine's cache half: entries packed in memory (one heap block of text, 32-bit times),
// loaded from and written to the SQLite store, swept in bounded slices for refreshes and
// expiry (RFC 8461 section 5.1: refresh before expiry; a failed refresh keeps the policy).
#include <malloc.h>

#include <algorithm>

#include "policy/engine.hh"
#include "policy/engine_detail.hh"
#include "util/log.hh"
#include "util/strings.hh"

namespace strictmx::policy {

using namespace detail;

Engine::Packed Engine::pack(const Entry& e) {
    Packed p;
    auto add = [&](const std::string& s, bool last = false) {
        p.blob += s;
        if (!last) p.blob += '\0';
    };
    add(e.policy ? e.policy->text() : std::string());
    add(e.txt_id);
    add(join(e.mx_hosts, ' '));
    add(e.negative_why);
    add(e.last_error);
    add(e.mx_error);
    // "DANE does not apply" reasons are regenerated; only DANE and failures keep theirs.
    add(e.dane.kind == dane::Kind::None ? std::string() : e.dane.why, true);
    p.blob.shrink_to_fit();
    p.fetched_at = t32(e.fetched_at);
    p.expires_at = t32(e.expires_at);
    p.negative_until = t32(e.negative_until);
    p.next_refresh = t32(e.next_refresh);
    p.mx_expires = t32(e.mx_expires);
    p.dane_expires = t32(e.dane.expires);
    p.dane_refresh = t32(e.dane.refresh_at);
    p.last_used = t32(e.last_used);
    p.dane_seen_until = t32(e.dane_seen_until);
    p.failures = static_cast<std::uint16_t>(std::clamp(e.failures, 0, 0xffff));
    p.dane_kind = static_cast<std::int8_t>(dane_code(e.dane));
    p.fail_class = static_cast<std::uint8_t>(e.dane.fail_class);
    p.flags = static_cast<std::uint8_t>(e.mx_known ? 1 : 0);
    return p;
}

Entry Engine::unpack(const Packed& p) {
    Entry e;
    auto fields = split(p.blob, '\0');
    fields.resize(7);
    if (!fields[0].empty()) {
        if (auto pol = sts::parse_policy(fields[0]))
            e.policy = std::make_shared<const sts::Policy>(std::move(*pol));
    }
    e.txt_id = std::string(fields[1]);
    for (auto h : split(fields[2], ' '))
        if (!h.empty()) e.mx_hosts.emplace_back(h);
    e.negative_why = std::string(fields[3]);
    e.last_error = std::string(fields[4]);
    e.mx_error = std::string(fields[5]);
    e.dane.why = fields[6].empty() ? std::string("DANE does not apply") : std::string(fields[6]);
    e.fetched_at = p.fetched_at;
    e.expires_at = p.expires_at;
    e.negative_until = p.negative_until;
    e.next_refresh = p.next_refresh;
    e.mx_expires = p.mx_expires;
    e.dane.expires = p.dane_expires;
    e.dane.refresh_at = p.dane_refresh;
    e.last_used = p.last_used;
    e.dane_seen_until = p.dane_seen_until;
    e.failures = p.failures;
    if (auto k = dane_kind_of(p.dane_kind)) {
        e.dane.known = true;
        e.dane.kind = *k;
        e.dane.no_usable_tlsa = p.dane_kind == 4;
    }
    e.dane.fail_class = p.fail_class;
    e.mx_known = (p.flags & 1) != 0;
    return e;
}

std::optional<Entry> Engine::get(const std::string& domain) const {
    auto it = entries_.find(domain);
    if (it == entries_.end()) return std::nullopt;
    return unpack(it->second);
}

void Engine::put(const std::string& domain, const Entry& e) {
    Packed p = pack(e);
    p.generation = ++generation_;
    if (auto it = entries_.find(domain); it != entries_.end()) {
        it->second = std::move(p);
        return;
    }
    if (entries_.size() >= opts_.max_entries) evict_lru();
    entries_.emplace(domain, std::move(p));
}

std::optional<std::uint64_t> Engine::token(const std::string& domain) const {
    if (opts_.overrides.contains(domain)) return std::nullopt;
    auto it = entries_.find(domain);
    if (it == entries_.end()) return std::nullopt;
    const Packed& p = it->second;
    std::uint32_t now = t32(clock_.now());
    // from_cache()'s conditions, read off the packed form. A failed DANE result goes the
    // slow way: a relaxed one falls back to MTA-STS, whose state moves with time.
    if (p.dane_kind < 0 || p.dane_expires <= now || p.dane_kind == dane_code_fail)
        return std::nullopt;
    bool policy_alive = p.blob.front() != '\0' && p.expires_at > now;
    if (p.dane_kind == 0 && !policy_alive && p.negative_until <= now) return std::nullopt;
    return (static_cast<std::uint64_t>(p.generation) << 1) | (policy_alive ? 1 : 0);
}

std::optional<std::uint64_t> Engine::touch(const std::string& domain) {
    auto t = token(domain);
    if (!t) return t;
    Packed& p = entries_.find(domain)->second;
    UnixTime now = clock_.now();
    p.last_used = t32(now);
    bool due = (p.blob.front() != '\0' && p.next_refresh <= now) || p.dane_refresh <= now;
    if (due && validation_proven_ && !jobs_.contains(domain) &&
        static_cast<int>(refreshes_in_flight()) < opts_.max_refreshes)
        start(domain, nullptr, JobKind::Refresh);
    return t;
}

void Engine::erase_entry(const std::string& domain) {
    if (store_) store_->erase(domain);
    entries_.erase(domain);
}

void Engine::evict_lru() {
    // cache.max_entries: drop the least recently looked-up 5% at once (one pass over the
    // index, ordered by last use), so an insertion at the limit costs O(1) amortized rather
    // than a pass each.
    std::size_t keep = opts_.max_entries - std::max<std::size_t>(1, opts_.max_entries / 20);
    if (entries_.size() <= keep) return;
    std::size_t drop = entries_.size() - keep;
    std::vector<std::pair<std::uint32_t, const std::string*>> order;
    order.reserve(entries_.size());
    for (const auto& [domain, p] : entries_) order.emplace_back(p.last_used, &domain);
    std::nth_element(order.begin(), order.begin() + static_cast<std::ptrdiff_t>(drop - 1),
                     order.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> victims;
    victims.reserve(drop);
    for (std::size_t i = 0; i < drop; ++i) victims.push_back(*order[i].second);
    order.clear();
    for (const auto& d : victims) erase_entry(d);
    stats_.evicted_lru += victims.size();
    log::info("cache full, evicted the least recently used entries",
              {{"evicted", std::to_string(victims.size())},
               {"max_entries", std::to_string(opts_.max_entries)}});
}

Engine::Engine(dns::Resolver& resolver, sts::Fetcher& fetcher, store::Store* store,
               const Clock& clock, EngineOptions opts)
    : resolver_(resolver),
      fetcher_(fetcher),
      store_(store),
      clock_(clock),
      opts_(std::move(opts)),
      rng_(std::random_device{}()) {}

std::size_t Engine::load() {
    if (!store_) return 0;
    UnixTime now = clock_.now();
    std::size_t n = 0;
    std::vector<std::string> dead;
    auto status = store_->for_each(
        [&](store::StsRow&& row) {
            bool policy_alive = row.has_policy && row.expires_at > now;
            bool negative_alive = !row.has_policy && row.expires_at > now;
            bool dane_alive = dane_kind_of(row.dane_kind) && row.dane_expires > now;
            bool history_alive = row.dane_seen_until > now;
            bool idle = row.last_used != 0 && now - row.last_used >= opts_.idle_ttl;
            if (((!policy_alive && !negative_alive && !dane_alive) || idle) && !history_alive) {
                dead.push_back(row.domain);
                return;
            }
            adopt(std::move(row), now, false);
            ++n;
        },
        now);
    if (status == store::Store::ReadStatus::Salvaged)
        log::warn("cache was damaged: serving the rows that could be read",
                  {{"domains", std::to_string(entries_.size())}});
    malloc_trim(0);  // give back what reading the rows used
    for (const auto& d : dead) store_->erase(d);
    return entries_.size();
}

std::optional<Entry> Engine::find(const std::string& domain) const {
    return get(domain);
}

bool Engine::flush(const std::string& domain) {
    // Every instance forgets it: the shared row goes, and the others are told.
    if (shared_) shared_->forget(domain);
    return flush_local(domain);
}

bool Engine::flush_local(const std::string& domain) {
    auto old = get(domain);
    if (!old) return false;
    UnixTime now = clock_.now();
    if (old->dane_seen_until > now) {
        Entry e;  // nothing but the DANE history
        e.dane_seen_until = old->dane_seen_until;
        e.last_used = old->last_used;
        put(domain, e);
        persist(domain, e, false);
    } else {
        erase_entry(domain);
    }
    return true;
}

std::size_t Engine::flush_all() {
    std::vector<std::string> all;
    all.reserve(entries_.size());
    for (const auto& [domain, p] : entries_) all.push_back(domain);
    for (const auto& d : all) flush(d);
    return all.size();
}

void Engine::for_each(const std::function<bool(const std::string&, const Entry&)>& fn) const {
    for (const auto& [domain, p] : entries_)
        if (!fn(domain, unpack(p))) return;
}

UnixTime Engine::jitter(UnixTime base, int seconds) {
    int spread = std::max(1, seconds / 10);
    std::uniform_int_distribution<int> dist(-spread, spread);
    return base + std::max(1, seconds + dist(rng_));
}

void Engine::schedule_success(Entry& e) {
    UnixTime now = clock_.now();
    int interval = opts_.refresh_interval;
    if (e.policy) {
        // Refetch well before expiry: at the latest when half of max_age is left.
        std::int64_t half_left = (e.expires_at - now) - e.policy->max_age / 2;
        if (half_left > 0 && half_left < interval) interval = static_cast<int>(half_left);
    }
    e.next_refresh = jitter(now, std::max(interval, 1));
}

void Engine::schedule_failure(const std::string& domain, Entry& e, const std::string& why) {
    UnixTime now = clock_.now();
    e.failures = std::min(e.failures + 1, 30);
    e.last_error = why;
    std::int64_t delay = opts_.refresh_backoff;
    for (int i = 1; i < e.failures && delay < opts_.refresh_interval; ++i) delay *= 2;
    delay = std::min<std::int64_t>(delay, opts_.refresh_interval);
    e.next_refresh = jitter(now, static_cast<int>(delay));
    log::warn(
        "policy refresh failed, keeping the cached policy",
        {{"domain", domain}, {"error", why}, {"retry_in", std::to_string(e.next_refresh - now)}});
}

void Engine::persist(const std::string& domain, const Entry& e, bool share) {
    if (!store_ && !(shared_ && share)) return;
    store::StsRow row;
    row.domain = domain;
    row.has_policy = e.policy != nullptr;
    row.txt_id = e.txt_id;
    row.policy = e.policy ? e.policy->text() : std::string();
    row.fetched_at = e.fetched_at;
    row.expires_at = e.policy ? e.expires_at : e.negative_until;
    row.next_refresh = e.next_refresh;
    row.failures = e.failures;
    row.last_error = e.last_error;
    row.mx_hosts = join(e.mx_hosts, ' ');
    row.mx_expires = e.mx_known ? e.mx_expires : 0;
    row.dane_kind = dane_code(e.dane);
    row.dane_expires = e.dane.expires;
    row.dane_refresh = e.dane.refresh_at;
    row.dane_why = e.dane.why;
    row.dane_fail_class = e.dane.fail_class & 3;
    row.dane_seen_until = e.dane_seen_until;
    row.last_used = e.last_used;
    if (shared_ && share) shared_->publish(row);
    if (store_) store_->put(std::move(row));
}

void Engine::rewrite_store() {
    // The store lost writes (its queue overflowed, or its file was replaced): write the whole
    // index again, a slice per tick, without overrunning the writer's queue.
    if (!store_) return;
    if (store_->take_rewrite_needed()) {
        rewrite_cursor_ = 0;
        rewriting_ = true;
        log::warn("cache database missed writes, writing every entry again",
                  {{"domains", std::to_string(entries_.size())}});
    }
    if (!rewriting_ || store_->writer_stats().pending > store::kMaxPendingWrites / 4) return;
    std::size_t buckets = entries_.bucket_count();
    std::size_t written = 0;
    for (; rewrite_cursor_ < buckets && written < 5'000; ++rewrite_cursor_) {
        for (auto it = entries_.begin(rewrite_cursor_); it != entries_.end(rewrite_cursor_); ++it) {
            persist(it->first, unpack(it->second), false);
            ++written;
        }
    }
    if (rewrite_cursor_ >= buckets) rewriting_ = false;
}

void Engine::tick() {
    rewrite_store();
    if (!shared_wait_.empty()) {
        // Another instance held the lease and has not answered: resolve here after all
        // (its lease ends by itself; a dead holder costs this wait, never an answer).
        auto now = std::chrono::steady_clock::now();
        std::vector<std::string> late;
        for (const auto& [domain, until] : shared_wait_)
            if (until <= now) late.push_back(domain);
        for (const auto& d : late) {
            shared_wait_.erase(d);
            auto j = jobs_.find(d);
            if (j == jobs_.end()) continue;
            ++stats_.shared_wait_expired;
            log::warn("fleet: no answer from the instance holding the lease, resolving here",
                      {{"domain", d}, {"waited_ms", std::to_string(lease_wait_ms_)}});
            auto job = j->second;
            job->e = get(d).value_or(job->e);
            begin(job);
        }
    }
    UnixTime now = clock_.now();
    if (now >= next_trim_) {
        // Memory freed after a burst (failed resolutions expiring, libunbound's worker
        // finishing queries) sits in free chunks that glibc returns to the system only from
        // the top of a heap; a trim once a minute gives the rest back.
        next_trim_ = now + 60;
        malloc_trim(0);
    }
    std::uint32_t n32 = t32(now);
    std::vector<std::string> due;
    std::vector<std::string> drop;
    // A bounded slice per tick, bucket by bucket: a large cache is swept over several ticks
    // instead of stalling the loop (a million entries: one sweep per ~50 ticks).
    constexpr std::size_t kBudget = 20'000;
    std::size_t buckets = entries_.bucket_count();
    std::size_t visited = 0;
    for (std::size_t n = 0; n < buckets && visited < kBudget; ++n, ++scan_cursor_) {
        std::size_t b = scan_cursor_ % buckets;
        for (auto it = entries_.begin(b); it != entries_.end(b); ++it) {
            ++visited;
            const std::string& domain = it->first;
            const Packed& p = it->second;
            bool policy_alive = p.expires_at > n32 && p.blob.front() != '\0';
            bool sts_alive = policy_alive || p.negative_until > n32;
            bool dane_alive = p.dane_kind >= 0 && p.dane_expires > n32;
            bool history_alive = p.dane_seen_until > n32;
            bool recently_used = now - static_cast<UnixTime>(p.last_used) < opts_.idle_ttl;
            if (!recently_used) {
                // cache.idle_ttl: nobody needs it; it is fetched afresh when next looked up.
                // "Had DANE" outlives it (the entry is kept, not refreshed, until that ends).
                if (!history_alive) {
                    drop.push_back(domain);
                    ++stats_.evicted_idle;
                }
            } else if (policy_alive && p.next_refresh <= n32) {
                due.push_back(domain);
            } else if (dane_alive && p.dane_refresh <= n32) {
                due.push_back(domain);
            } else if (!sts_alive && !dane_alive && !history_alive) {
                drop.push_back(domain);
            }
        }
    }
    for (const auto& d : drop) {
        if (!jobs_.contains(d)) erase_entry(d);
    }
    for (const auto& d : due) {
        // Unvalidated answers would read as "DANE does not apply": keep the cache as it is.
        if (!validation_proven_) break;
        if (static_cast<int>(refreshes_in_flight()) >= opts_.max_refreshes) break;
        if (!jobs_.contains(d)) start(d, nullptr, JobKind::Refresh);
    }
}

}  // namespace strictmx::policy
