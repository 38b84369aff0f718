// SPDX-License-Identifier: MIT
// The decision engine (RFC 8461 sections 3.3, 5 and 5.1 for caching and refresh).
//
// Never fail open: a DNS failure with nothing cached is TEMP (unless configured otherwise),
// and a failed refresh never removes an unexpired policy. A domain without a valid TXT
// record or whose policy cannot be fetched, with nothing cached, has no MTA-STS (section 5).
#include "policy/engine.hh"

#include <algorithm>
#include <queue>

#include "sts/txt.hh"
#include "util/log.hh"
#include "util/strings.hh"

namespace strictmx::policy {

EngineOptions EngineOptions::from(const config::Config& c) {
    EngineOptions o;
    o.negative_ttl = c.negative_ttl;
    o.fetch_failure_ttl = c.fetch_failure_ttl;
    o.refresh_interval = c.refresh_interval;
    o.refresh_backoff = c.refresh_backoff;
    o.max_refreshes = c.max_refreshes;
    o.dns_timeout = c.dns_timeout;
    o.dns_servfail = c.dns_servfail;
    o.dnssec_bogus = c.dnssec_bogus;
    o.overrides = c.overrides;
    return o;
}

struct Engine::Job {
    std::string domain;
    std::vector<Callback> waiters;
    int dns_pending = 2;
    dns::Answer txt;
    dns::Answer mx;
    std::string txt_id;
    Trace* trace = nullptr;
    void note(std::string s) {
        if (trace) trace->push_back(std::move(s));
    }
};

namespace {
std::string join(const std::vector<std::string>& v, char sep) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += sep;
        out += v[i];
    }
    return out;
}
}  // namespace

Engine::Engine(dns::Resolver& resolver, sts::Fetcher& fetcher, store::Store* store, const Clock& clock,
               EngineOptions opts)
    : resolver_(resolver), fetcher_(fetcher), store_(store), clock_(clock), opts_(std::move(opts)),
      rng_(std::random_device{}()) {}

std::size_t Engine::load() {
    if (!store_) return 0;
    UnixTime now = clock_.now();
    std::size_t n = 0;
    for (auto& row : store_->load_all()) {
        Entry e;
        if (row.has_policy) {
            auto p = sts::parse_policy(row.policy);
            if (!p || row.expires_at <= now) {
                store_->erase(row.domain);
                continue;
            }
            e.policy = std::make_shared<const sts::Policy>(std::move(*p));
            e.txt_id = row.txt_id;
            e.fetched_at = row.fetched_at;
            e.expires_at = row.expires_at;
        } else {
            if (row.expires_at <= now) {
                store_->erase(row.domain);
                continue;
            }
            e.negative_until = row.expires_at;
            e.negative_why = row.last_error;
        }
        e.next_refresh = row.next_refresh;
        e.failures = row.failures;
        e.last_error = row.last_error;
        if (row.mx_expires != 0) {
            e.mx_known = true;
            e.mx_expires = row.mx_expires;
            for (auto h : split(row.mx_hosts, ' '))
                if (!h.empty()) e.mx_hosts.emplace_back(h);
        }
        entries_.emplace(row.domain, std::move(e));
        ++n;
    }
    return n;
}

const Entry* Engine::find(const std::string& domain) const {
    auto it = entries_.find(domain);
    return it == entries_.end() ? nullptr : &it->second;
}

std::optional<Decision> Engine::from_cache(const std::string& domain, const Entry& e) const {
    UnixTime now = clock_.now();
    Decision d;
    d.domain = domain;
    d.source = "cache";
    if (e.policy && e.expires_at > now) {
        d.kind = Decision::Kind::Sts;
        d.policy = e.policy;
        d.mx_hosts = e.mx_hosts;
        d.mx_known = e.mx_known;
        d.mx_error = e.mx_error;
        d.why = std::string("MTA-STS policy mode ") + sts::mode_name(e.policy->mode) + " id " + e.txt_id +
                ", valid for " + std::to_string(e.expires_at - now) + " s";
        if (!e.last_error.empty()) d.why += " (last refresh failed: " + e.last_error + ")";
        return d;
    }
    if (e.negative_until > now) {
        d.kind = Decision::Kind::NotFound;
        d.why = e.negative_why.empty() ? "no MTA-STS policy" : e.negative_why;
        return d;
    }
    return std::nullopt;
}

void Engine::lookup(const std::string& domain, Callback cb) {
    if (auto ov = opts_.overrides.find(domain); ov != opts_.overrides.end()) {
        Decision d;
        d.kind = Decision::Kind::Override;
        d.domain = domain;
        d.source = "override";
        d.why = "static override in the configuration";
        d.override_text = ov->second;
        cb(d);
        return;
    }
    if (auto it = entries_.find(domain); it != entries_.end()) {
        if (auto d = from_cache(domain, it->second)) {
            UnixTime now = clock_.now();
            const Entry& e = it->second;
            bool stale_mx = e.policy && e.mx_expires <= now;
            if (e.policy && (e.next_refresh <= now || stale_mx) && !jobs_.contains(domain) &&
                static_cast<int>(jobs_.size()) < opts_.max_refreshes)
                start(domain, nullptr);
            cb(*d);
            return;
        }
    }
    if (auto j = jobs_.find(domain); j != jobs_.end()) {
        j->second->waiters.push_back(std::move(cb));
        return;
    }
    start(domain, nullptr);
    jobs_[domain]->waiters.push_back(std::move(cb));
}

void Engine::resolve_fresh(const std::string& domain, Callback cb, Trace* trace) {
    if (auto j = jobs_.find(domain); j != jobs_.end()) {
        j->second->waiters.push_back(std::move(cb));
        return;
    }
    start(domain, trace);
    jobs_[domain]->waiters.push_back(std::move(cb));
}

void Engine::start(const std::string& domain, Trace* trace) {
    auto job = std::make_shared<Job>();
    job->domain = domain;
    job->trace = trace;
    jobs_[domain] = job;
    // TXT and MX go out together: the decision needs both, neither depends on the other.
    resolver_.resolve("_mta-sts." + domain, dns::rrtype::TXT, [this, job](dns::Answer a) {
        job->txt = std::move(a);
        if (--job->dns_pending == 0) on_dns_done(job);
    });
    resolver_.resolve(domain, dns::rrtype::MX, [this, job](dns::Answer a) {
        job->mx = std::move(a);
        if (--job->dns_pending == 0) on_dns_done(job);
    });
}

Decision Engine::failure_decision(const std::string& domain, const dns::Answer& a, const std::string& what) const {
    config::OnFailure action = opts_.dns_servfail;
    std::string cls = "dns_servfail";
    if (a.security == dns::Security::Bogus) {
        action = opts_.dnssec_bogus;
        cls = "dnssec_bogus";
    } else if (a.why == "timeout") {
        action = opts_.dns_timeout;
        cls = "dns_timeout";
    }
    Decision d;
    d.domain = domain;
    d.source = "dns";
    d.why = "DNS lookup of " + what + " failed: " + sanitize(a.why, 200);
    if (action == config::OnFailure::NotFound) {
        d.kind = Decision::Kind::NotFound;
        d.why += " (policy.on_failure." + cls + " = notfound)";
    } else {
        d.kind = Decision::Kind::Temp;
    }
    return d;
}

void Engine::on_dns_done(const std::shared_ptr<Job>& job) {
    UnixTime now = clock_.now();
    const std::string& domain = job->domain;
    Entry& e = entries_[domain];

    // MX set (RFC 5321 5.1: no MX means the domain itself; RFC 7505 null MX).
    const dns::Answer& mx = job->mx;
    if (!mx.failed()) {
        std::vector<std::pair<std::uint16_t, std::string>> hosts;
        if (mx.status == dns::Answer::Status::Ok) {
            for (const auto& rd : mx.rdata) {
                if (auto m = dns::parse_mx(rd); m && !m->host.empty()) hosts.emplace_back(m->preference, m->host);
            }
        } else if (mx.status == dns::Answer::Status::NoData) {
            hosts.emplace_back(0, domain);
        }
        std::stable_sort(hosts.begin(), hosts.end());
        e.mx_hosts.clear();
        for (auto& [pref, h] : hosts) {
            if (std::find(e.mx_hosts.begin(), e.mx_hosts.end(), h) == e.mx_hosts.end()) e.mx_hosts.push_back(h);
        }
        e.mx_known = true;
        e.mx_error.clear();
        e.mx_expires = now + std::clamp<std::int64_t>(mx.ttl, opts_.mx_min_ttl, opts_.mx_max_ttl);
        job->note("MX " + domain + ": " + (e.mx_hosts.empty() ? std::string("(none)") : join(e.mx_hosts, ' ')) +
                  " [" + dns::security_name(mx.security) + "]");
    } else {
        e.mx_error = sanitize(mx.why, 120);
        if (!e.mx_known) e.mx_expires = 0;
        job->note("MX " + domain + ": lookup failed: " + e.mx_error +
                  (e.mx_known ? " (keeping the MX set seen before)" : ""));
    }

    const dns::Answer& txt = job->txt;
    bool cached_valid = e.policy && e.expires_at > now;
    if (txt.failed()) {
        job->note("TXT _mta-sts." + domain + ": lookup failed: " + sanitize(txt.why, 120));
        if (cached_valid) {
            schedule_failure(e, "TXT lookup failed: " + sanitize(txt.why, 120));
            persist(domain, e);
            finish(job, *from_cache(domain, e));
            return;
        }
        finish(job, failure_decision(domain, txt, "_mta-sts." + domain + " TXT"));
        return;
    }
    std::vector<std::string> records;
    if (txt.status == dns::Answer::Status::Ok) {
        for (const auto& rd : txt.rdata) {
            if (auto s = dns::parse_txt(rd)) records.push_back(std::move(*s));
        }
    }
    for (const auto& r : records) job->note("TXT _mta-sts." + domain + ": \"" + sanitize(r, 200) + "\"");
    auto sel = sts::select_txt(records);
    if (!sel) {
        std::string why = txt.status == dns::Answer::Status::Ok ? sel.error().reason
                                                                  : std::string("no _mta-sts TXT record");
        job->note("TXT: " + why);
        if (cached_valid) {
            // Section 5: the policy stays in force until it expires, TXT or not.
            e.last_error.clear();
            schedule_success(e);
            persist(domain, e);
            Decision d = *from_cache(domain, e);
            d.why += "; " + why + ", cached policy kept until it expires";
            finish(job, d);
            return;
        }
        e.policy.reset();
        e.negative_until = now + opts_.negative_ttl;
        e.negative_why = why;
        e.last_error = why;
        persist(domain, e);
        Decision d;
        d.kind = Decision::Kind::NotFound;
        d.domain = domain;
        d.source = "dns";
        d.why = why;
        finish(job, d);
        return;
    }
    job->txt_id = sel->id;
    bool fresh_enough = cached_valid && e.txt_id == sel->id && (e.expires_at - now) * 2 > e.policy->max_age;
    if (fresh_enough) {
        job->note("TXT id " + sel->id + " unchanged; cached policy is current");
        e.last_error.clear();
        e.failures = 0;
        schedule_success(e);
        persist(domain, e);
        finish(job, *from_cache(domain, e));
        return;
    }
    job->note("fetching " + sts::policy_url(domain) +
              (cached_valid ? (e.txt_id == sel->id ? " (refresh before expiry)" : " (TXT id changed from " + e.txt_id + ")")
                            : ""));
    fetcher_.fetch(domain, [this, job](sts::FetchResult r) { on_fetch_done(job, std::move(r)); });
}

void Engine::on_fetch_done(const std::shared_ptr<Job>& job, sts::FetchResult r) {
    UnixTime now = clock_.now();
    const std::string& domain = job->domain;
    Entry& e = entries_[domain];
    std::string failure;
    if (r.status == sts::FetchResult::Status::Ok) {
        auto p = sts::parse_policy(r.body);
        if (p) {
            job->note("policy: mode " + std::string(sts::mode_name(p->mode)) + ", max_age " +
                      std::to_string(p->max_age) + ", mx " + join(p->mx, ' '));
            e.policy = std::make_shared<const sts::Policy>(std::move(*p));
            e.txt_id = job->txt_id;
            e.fetched_at = now;
            e.expires_at = now + e.policy->max_age;
            e.negative_until = 0;
            e.negative_why.clear();
            e.failures = 0;
            e.last_error.clear();
            schedule_success(e);
            persist(domain, e);
            Decision d = *from_cache(domain, e).or_else([&]() -> std::optional<Decision> {
                // max_age 0: valid for this decision only.
                Decision z;
                z.kind = Decision::Kind::Sts;
                z.domain = domain;
                z.policy = e.policy;
                z.mx_hosts = e.mx_hosts;
                z.mx_known = e.mx_known;
                z.mx_error = e.mx_error;
                return z;
            });
            d.source = "fetch";
            d.why = std::string("MTA-STS policy mode ") + sts::mode_name(e.policy->mode) + " id " + e.txt_id +
                    " fetched, valid for " + std::to_string(e.policy->max_age) + " s";
            finish(job, d);
            return;
        }
        failure = "sts-policy-invalid: " + p.error().reason;
    } else if (r.status == sts::FetchResult::Status::WebPkiInvalid) {
        failure = "sts-webpki-invalid: " + sanitize(r.why, 200);
    } else {
        failure = "sts-policy-fetch-error: " + sanitize(r.why, 200);
    }
    job->note("policy fetch failed: " + failure);
    if (e.policy && e.expires_at > now) {
        schedule_failure(e, failure);
        persist(domain, e);
        Decision d = *from_cache(domain, e);
        finish(job, d);
        return;
    }
    e.policy.reset();
    e.negative_until = now + opts_.fetch_failure_ttl;
    e.negative_why = failure + " (no cached policy: treated as no MTA-STS, RFC 8461 section 5)";
    e.last_error = failure;
    persist(domain, e);
    Decision d;
    d.kind = Decision::Kind::NotFound;
    d.domain = domain;
    d.source = "fetch";
    d.why = e.negative_why;
    finish(job, d);
}

void Engine::finish(const std::shared_ptr<Job>& job, Decision d) {
    jobs_.erase(job->domain);
    job->note("decision: " + d.why);
    for (auto& cb : job->waiters) {
        try {
            cb(d);
        } catch (const std::exception& ex) {
            log::error("lookup callback failed", {{"domain", job->domain}, {"error", ex.what()}});
        }
    }
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

void Engine::schedule_failure(Entry& e, const std::string& why) {
    UnixTime now = clock_.now();
    e.failures = std::min(e.failures + 1, 30);
    e.last_error = why;
    std::int64_t delay = opts_.refresh_backoff;
    for (int i = 1; i < e.failures && delay < opts_.refresh_interval; ++i) delay *= 2;
    delay = std::min<std::int64_t>(delay, opts_.refresh_interval);
    e.next_refresh = jitter(now, static_cast<int>(delay));
    log::warn("policy refresh failed, keeping the cached policy",
              {{"error", why}, {"retry_in", std::to_string(e.next_refresh - now)}});
}

void Engine::persist(const std::string& domain, const Entry& e) {
    if (!store_) return;
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
    store_->put(row);
}

void Engine::tick() {
    UnixTime now = clock_.now();
    std::vector<std::string> due;
    std::vector<std::string> drop;
    for (const auto& [domain, e] : entries_) {
        if (e.policy) {
            if (e.expires_at <= now && e.next_refresh <= now && !jobs_.contains(domain)) {
                // Expired and not refreshed in time: forget it; the next lookup resolves.
                drop.push_back(domain);
            } else if (e.next_refresh <= now) {
                due.push_back(domain);
            }
        } else if (e.negative_until <= now && !jobs_.contains(domain)) {
            drop.push_back(domain);
        }
    }
    for (const auto& d : drop) {
        if (store_) store_->erase(d);
        entries_.erase(d);
    }
    for (const auto& d : due) {
        if (static_cast<int>(jobs_.size()) >= opts_.max_refreshes) break;
        if (!jobs_.contains(d)) start(d, nullptr);
    }
}

}  // namespace strictmx::policy
