// SPDX-License-Identifier: MIT
// The decision engine: cache in memory (backed by the SQLite store), resolution of cold
// misses (TXT and MX in parallel, then the policy fetch), background refresh, and sharing of
// one resolution among concurrent lookups of a domain.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <unordered_map>
#include <vector>

#include "config/config.hh"
#include "dane/dane.hh"
#include "dns/resolver.hh"
#include "policy/decision.hh"
#include "store/shared_cache.hh"
#include "store/store.hh"
#include "sts/fetcher.hh"
#include "util/clock.hh"

namespace strictmx::policy {

struct EngineOptions {
    int negative_ttl = 3600;
    int fetch_failure_ttl = 300;
    int refresh_interval = 3600;
    int refresh_backoff = 60;
    int max_refreshes = 32;
    int dns_min_ttl = 60;
    int dns_max_ttl = 3600;
    int failure_ttl = 30;
    int idle_ttl = 2'592'000;  // entries unused this long are not refreshed, then evicted
    int dane_history_ttl = 2'592'000;
    std::size_t max_entries = 1'000'000;
    std::size_t max_mx_hosts = 16;
    std::size_t max_resolutions = 1000;
    std::size_t max_resolutions_per_domain = 16;
    config::OnFailure dns_timeout = config::OnFailure::Tempfail;
    config::OnFailure dns_servfail = config::OnFailure::Tempfail;
    config::OnFailure dnssec_bogus = config::OnFailure::Tempfail;
    std::map<std::string, std::string> overrides;
    static EngineOptions from(const config::Config& c);
};

// The DANE side of a domain.
struct DaneState {
    bool known = false;
    dane::Kind kind = dane::Kind::None;
    UnixTime expires = 0;
    UnixTime refresh_at = 0;
    std::string why;
    int fail_class = 0;  // Fail: 0 servfail, 1 timeout, 2 bogus
    bool no_usable_tlsa = false;  // Dane: no host has a usable TLSA RRset
};

// What the engine knows about one domain.
struct Entry {
    DaneState dane;
    // DANE applied to the domain until at least this time (last seen + cache.dane_history_ttl):
    // meanwhile policy.on_failure never relaxes one of its failures. Independent of the DNS
    // TTLs, kept when everything else about the domain has expired, and stored.
    UnixTime dane_seen_until = 0;
    UnixTime last_used = 0;
    std::shared_ptr<const sts::Policy> policy;  // last good policy, may be expired
    std::string txt_id;
    UnixTime fetched_at = 0;
    UnixTime expires_at = 0;      // policy validity (fetched_at + max_age)
    UnixTime negative_until = 0;  // "no policy" remembered until then
    std::string negative_why;
    std::vector<std::string> mx_hosts;
    bool mx_known = false;
    UnixTime mx_expires = 0;
    std::string mx_error;
    UnixTime next_refresh = 0;
    int failures = 0;
    std::string last_error;
};

// Steps of one resolution in words, for `strictmx query` and debug logs.
using Trace = std::vector<std::string>;

class Engine {
  public:
    using Callback = std::function<void(const Decision&)>;
    Engine(dns::Resolver& resolver, sts::Fetcher& fetcher, store::Store* store, const Clock& clock,
           EngineOptions opts);

    // Loads the persistent cache into memory. Returns the number of entries loaded.
    std::size_t load();

    // Decide for a destination domain (already classified and normalized). The callback runs
    // at once for overrides and cache hits, later for cold misses. Never throws.
    void lookup(const std::string& domain, Callback cb);
    // Resolve now even if cached (for `strictmx query`); `trace` receives the steps.
    void resolve_fresh(const std::string& domain, Callback cb, Trace* trace = nullptr);

    // Fleet mode: the cache shared by every instance (nullptr: none). A miss or a due
    // refresh first claims the domain there (store/shared_cache.hh); a lookup waits at most
    // `lease_wait_ms` for another instance's resolution before resolving here.
    void set_shared(store::SharedCache* shared, int lease_wait_ms) {
        shared_ = shared;
        lease_wait_ms_ = lease_wait_ms;
    }
    // A change another instance announced: a newer row is adopted where this instance has
    // the domain or waits for it; a flush drops the domain here too.
    void on_shared_change(const store::SharedCache::Change& c);
    // Whether a shared row can be answered from without resolving (nothing expired or due).
    // Pure: the shared cache calls it on its worker threads.
    static bool row_usable(const store::StsRow& row, UnixTime now);
    // Whether a shared row may be taken at all (names, ranges, sizes, the policy parses);
    // `why` says what is wrong.
    static bool row_plausible(const store::StsRow& row, std::string& why);

    // SIGHUP: new overrides, TTLs, limits and failure actions; the cache stays.
    void set_options(EngineOptions opts) { opts_ = std::move(opts); }

    // Starts due background refreshes and drops expired negative entries. Call about once
    // a second.
    void tick();

    // While DNSSEC validation is not proven (Runtime::prove_validation), a lookup that needs
    // a resolution answers TEMP with `why`; cached answers are still served.
    void set_validation(bool proven, std::string why) {
        validation_proven_ = proven;
        validation_why_ = std::move(why);
    }

    // The cache-hit fast path. When `domain` would be answered from the cache right now,
    // returns a token that changes whenever that answer can change (the entry was written
    // again, or its policy expired), marks the domain used and starts a due refresh, as
    // lookup() does; nullopt otherwise (then lookup() decides). token() is the same without
    // the side effects.
    std::optional<std::uint64_t> touch(const std::string& domain);
    std::optional<std::uint64_t> token(const std::string& domain) const;

    std::optional<Entry> find(const std::string& domain) const;
    // strictmx cache flush: the next lookup of `domain` resolves afresh (DNS and the
    // policy host), without a restart. Only "this domain had DANE" stays, so
    // policy.on_failure still never relaxes its failures. false: nothing was cached.
    bool flush(const std::string& domain);
    // The same for this instance only (another instance flushed it).
    bool flush_local(const std::string& domain);
    std::size_t flush_all();
    // Every cached domain, in no particular order (strictmx cache dump); `fn` returns false
    // to stop.
    void for_each(const std::function<bool(const std::string&, const Entry&)>& fn) const;
    std::size_t size() const { return entries_.size(); }
    std::size_t in_flight() const { return jobs_.size(); }
    std::size_t cold_in_flight() const { return cold_in_flight_; }
    std::size_t refreshes_in_flight() const { return jobs_.size() - cold_in_flight_; }

    struct Stats {
        std::uint64_t resolutions = 0;
        std::uint64_t dns_queries = 0;
        std::uint64_t fetches = 0;
        int max_dns_rounds = 0;           // sequential DNS round trips of the longest resolution
        std::uint64_t evicted_idle = 0;   // not looked up for cache.idle_ttl
        std::uint64_t evicted_lru = 0;    // pushed out by cache.max_entries
        std::uint64_t refused_busy = 0;   // TEMP: policy.max_resolutions reached
        std::uint64_t refused_zone = 0;   // TEMP: policy.max_resolutions_per_domain reached
        std::uint64_t invalid_names = 0;  // MX hosts from DNS that are not host names
        std::uint64_t shared_answers = 0;   // lookups answered from another instance's row
        std::uint64_t shared_adopted = 0;   // rows taken over from the shared cache
        std::uint64_t shared_refused = 0;   // shared rows that failed the checks
        std::uint64_t shared_waits = 0;     // lookups that waited for another instance
        std::uint64_t shared_wait_expired = 0;  // ... and then resolved here after all
    };
    const Stats& stats() const { return stats_; }

  private:
    struct Job;
    enum class JobKind { Cold, Refresh };
    void start(const std::string& domain, Trace* trace, JobKind kind, bool force = false);
    // The resolution itself (DNS, then the policy fetch).
    void begin(const std::shared_ptr<Job>& job);
    void on_claim(const std::shared_ptr<Job>& job, store::SharedCache::ClaimResult r);
    // Ends a job without a decision of its own (a refresh another instance is doing).
    void drop_job(const std::shared_ptr<Job>& job);
    // A finished job answered from a row another instance wrote.
    bool answer_from_entry(const std::shared_ptr<Job>& job);
    // Reads the shared row of `domain`, adopts it, and answers a lookup waiting for it.
    void fetch_shared(const std::string& domain);
    // The one conversion of a stored row (SQLite or shared) into the packed entry. `check`:
    // the row came from outside this process and is validated first. False: not taken.
    bool adopt(store::StsRow&& row, UnixTime now, bool check);

    // Sends one query, or answers at once when `name` cannot be a DNS owner name.
    void query(const std::shared_ptr<Job>& job, const std::string& name, std::uint16_t type,
               dns::Resolver::Callback cb);
    void evict_lru();
    void rewrite_store();
    void erase_entry(const std::string& domain);
    void on_txt(const std::shared_ptr<Job>& job);
    void on_mx(const std::shared_ptr<Job>& job);
    void follow_cname(const std::shared_ptr<Job>& job, std::size_t i, const dns::Answer& a);
    void on_fetch_done(const std::shared_ptr<Job>& job, sts::FetchResult r);
    void done_one(const std::shared_ptr<Job>& job);
    void set_sts(const std::shared_ptr<Job>& job, Decision d);
    void finish(const std::shared_ptr<Job>& job, Decision d);
    std::optional<Decision> from_cache(const std::string& domain, const Entry& e) const;
    // never_relax: the domain had DANE, so a failure is TEMP whatever policy.on_failure says.
    Decision failure_decision(const std::string& domain, int fail_class, const std::string& why,
                              bool never_relax = false) const;
    std::optional<Decision> sts_from_cache(const std::string& domain, const Entry& e) const;
    // Writes the entry to the local store and, unless `share` is false, to the shared one.
    void persist(const std::string& domain, const Entry& e, bool share = true);
    UnixTime jitter(UnixTime base, int seconds);
    void schedule_success(Entry& e);
    void schedule_failure(const std::string& domain, Entry& e, const std::string& why);

    dns::Resolver& resolver_;
    sts::Fetcher& fetcher_;
    store::Store* store_;
    const Clock& clock_;
    EngineOptions opts_;
    // Entries are kept packed (one heap block of text, 32-bit times): a million cached
    // domains fit in a few hundred megabytes. A lookup unpacks one.
    struct Packed {
        std::string blob;  // policy text, txt id, MX hosts, reasons: '\0'-separated
        std::uint32_t fetched_at = 0, expires_at = 0, negative_until = 0, next_refresh = 0;
        std::uint32_t mx_expires = 0, dane_expires = 0, dane_refresh = 0, last_used = 0;
        std::uint32_t dane_seen_until = 0;
        std::uint32_t generation = 0;  // changes on every write of the entry
        std::uint16_t failures = 0;
        std::int8_t dane_kind = -1;  // -1 unknown, else dane::Kind
        std::uint8_t fail_class = 0;
        std::uint8_t flags = 0;  // 1 mx_known
    };
    static Packed pack(const Entry& e);
    static Entry unpack(const Packed& p);
    std::optional<Entry> get(const std::string& domain) const;
    void put(const std::string& domain, const Entry& e);
    std::unordered_map<std::string, Packed> entries_;
    std::size_t scan_cursor_ = 0;
    std::size_t rewrite_cursor_ = 0;  // rewrite_store(): next bucket
    bool rewriting_ = false;
    UnixTime next_trim_ = 0;
    std::uint32_t generation_ = 0;
    bool validation_proven_ = true;
    std::string validation_why_;
    Stats stats_;  // tick(): next bucket to look at
    std::unordered_map<std::string, std::shared_ptr<Job>> jobs_;
    // Cold lookups and background refreshes have budgets of their own (policy.max_resolutions,
    // cache.max_refreshes), and cold lookups one per registered domain as well
    // (policy.max_resolutions_per_domain), so one slow zone cannot take every slot.
    std::size_t cold_in_flight_ = 0;
    std::unordered_map<std::string, std::size_t> cold_per_zone_;
    std::mt19937 rng_;
    store::SharedCache* shared_ = nullptr;
    int lease_wait_ms_ = 3000;
    // Lookups waiting for another instance's resolution: domain -> when to stop waiting.
    std::unordered_map<std::string, std::chrono::steady_clock::time_point> shared_wait_;
};

}  // namespace strictmx::policy
