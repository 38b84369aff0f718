// SPDX-License-Identifier: MIT
// The decision engine (RFC 8461 sections 2, 3.3, 5 and 5.1; RFC 7672 section 2).
//
// One resolution per domain: TXT _mta-sts.D and MX D go out together; as soon as the MX
// RRset is known (and DNSSEC-signed) the A, AAAA and TLSA queries of every MX host go out
// together, while the policy fetch runs alongside. DANE is decided first; only when DANE
// does not apply does the MTA-STS outcome count.
//
// Never fail open: a bogus answer, SERVFAIL or timeout on the DANE path is TEMP, a DNS
// failure of the TXT lookup with nothing cached is TEMP (each relaxable per failure class),
// and a failed refresh never removes an unexpired policy. A domain without a valid TXT
// record or whose policy cannot be fetched, with nothing cached, has no MTA-STS (section 5).
#include "policy/engine.hh"

#include <algorithm>
#include <chrono>

#include "dns/name.hh"
#include "policy/engine_detail.hh"
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
    o.dns_min_ttl = c.dns_min_ttl;
    o.dns_max_ttl = c.dns_max_ttl;
    o.failure_ttl = c.failure_ttl;
    o.max_resolutions = static_cast<std::size_t>(c.max_resolutions);
    o.max_resolutions_per_domain = static_cast<std::size_t>(c.max_resolutions_per_domain);
    o.idle_ttl = c.idle_ttl;
    o.max_entries = static_cast<std::size_t>(c.max_entries);
    o.dane_history_ttl = c.dane_history_ttl;
    o.dns_timeout = c.dns_timeout;
    o.dns_servfail = c.dns_servfail;
    o.dnssec_bogus = c.dnssec_bogus;
    o.overrides = c.overrides;
    return o;
}


using namespace detail;

Decision Engine::failure_decision(const std::string& domain, int fail_class, const std::string& why,
                                  bool never_relax) const {
    config::OnFailure action = opts_.dns_servfail;
    const char* cls = "dns_servfail";
    if (fail_class == 2) {
        action = opts_.dnssec_bogus;
        cls = "dnssec_bogus";
    } else if (fail_class == 1) {
        action = opts_.dns_timeout;
        cls = "dns_timeout";
    }
    Decision d;
    d.domain = domain;
    d.source = "dns";
    d.why = why;
    if (fail_class == 2) d.failure_code = 305;  // dnssec-invalid
    if (action == config::OnFailure::NotFound && !never_relax) {
        d.kind = Decision::Kind::NotFound;
        d.why += std::string(" (policy.on_failure.") + cls + " = notfound)";
    } else {
        d.kind = Decision::Kind::Temp;
    }
    return d;
}

namespace {
// The log line says why partial DANE is answered dane-only (render() decides per profile).
void note_partial_dane(Decision& d) {
    if (d.dane_level == "dane" && d.policy && d.policy->mode != sts::Mode::None)
        d.why += std::string("; MTA-STS policy mode ") + sts::mode_name(d.policy->mode) +
                 " also published: where it is enforced, MX hosts without usable TLSA are "
                 "skipped (dane-only)";
}
}  // namespace

std::optional<Decision> Engine::sts_from_cache(const std::string& domain, const Entry& e) const {
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
        d.why = std::string("MTA-STS policy mode ") + sts::mode_name(e.policy->mode) + " id " +
                e.txt_id + ", valid for " + std::to_string(e.expires_at - now) + " s";
        if (!e.last_error.empty()) d.why += " (last refresh failed: " + e.last_error + ")";
        return d;
    }
    if (e.negative_until > now) {
        d.kind = Decision::Kind::NotFound;
        d.why = e.negative_why.empty() ? "no MTA-STS policy" : e.negative_why;
        d.failure_code = failure_code_of(e.negative_why);
        return d;
    }
    return std::nullopt;
}

std::optional<Decision> Engine::from_cache(const std::string& domain, const Entry& e) const {
    UnixTime now = clock_.now();
    if (!e.dane.known || e.dane.expires <= now) return std::nullopt;
    switch (e.dane.kind) {
        case dane::Kind::Fail: {
            Decision d =
                failure_decision(domain, e.dane.fail_class, e.dane.why, e.dane_seen_until > now);
            d.source = "cache";
            if (d.kind == Decision::Kind::NotFound) {
                // Relaxed: MTA-STS decides as if DANE did not apply.
                if (auto s = sts_from_cache(domain, e)) {
                    s->why = d.why + "; " + s->why;
                    return s;
                }
            }
            return d;
        }
        case dane::Kind::Dane:
        case dane::Kind::DaneOnly: {
            Decision d;
            d.kind = Decision::Kind::Dane;
            d.domain = domain;
            d.source = "cache";
            d.dane_level = dane::kind_name(e.dane.kind);
            d.dane_no_usable_tlsa = e.dane.no_usable_tlsa;
            d.why = e.dane.why;
            d.mx_hosts = e.mx_hosts;
            d.mx_known = e.mx_known;
            d.mx_error = e.mx_error;
            if (e.policy && e.expires_at > now) d.policy = e.policy;
            note_partial_dane(d);
            return d;
        }
        case dane::Kind::None:
            break;
    }
    auto d = sts_from_cache(domain, e);
    if (d && d->kind == Decision::Kind::NotFound) d->why = e.dane.why + "; " + d->why;
    return d;
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
    UnixTime now = clock_.now();
    if (auto it = entries_.find(domain); it != entries_.end()) {
        it->second.last_used = t32(now);
        Entry e = unpack(it->second);
        if (auto d = from_cache(domain, e)) {
            bool due = (e.policy && e.next_refresh <= now) || e.dane.refresh_at <= now;
            if (due && validation_proven_ && !jobs_.contains(domain) &&
                static_cast<int>(refreshes_in_flight()) < opts_.max_refreshes)
                start(domain, nullptr, JobKind::Refresh);
            cb(*d);
            return;
        }
    }
    if (auto j = jobs_.find(domain); j != jobs_.end()) {
        j->second->waiters.push_back(std::move(cb));
        return;
    }
    auto refuse = [&](std::string why) {
        Decision d;
        d.kind = Decision::Kind::Temp;
        d.domain = domain;
        d.source = "limit";
        d.why = std::move(why);
        cb(d);
    };
    if (!validation_proven_) {
        refuse(validation_why_);
        return;
    }
    if (cold_in_flight_ >= opts_.max_resolutions) {
        ++stats_.refused_busy;
        refuse("too many lookups resolving at once (policy.max_resolutions = " +
               std::to_string(opts_.max_resolutions) + "), try again later");
        return;
    }
    std::string zone = dns::registered_domain(domain);
    if (auto z = cold_per_zone_.find(zone);
        z != cold_per_zone_.end() && z->second >= opts_.max_resolutions_per_domain) {
        ++stats_.refused_zone;
        refuse("too many lookups under " + zone +
               " resolving at once (policy.max_resolutions_per_domain = " +
               std::to_string(opts_.max_resolutions_per_domain) + "), try again later");
        return;
    }
    start(domain, nullptr, JobKind::Cold);
    jobs_[domain]->waiters.push_back(std::move(cb));
}

void Engine::resolve_fresh(const std::string& domain, Callback cb, Trace* trace) {
    if (auto j = jobs_.find(domain); j != jobs_.end()) {
        j->second->waiters.push_back(std::move(cb));
        return;
    }
    start(domain, trace, JobKind::Refresh, true);
    jobs_[domain]->waiters.push_back(std::move(cb));
}

void Engine::start(const std::string& domain, Trace* trace, JobKind kind, bool force) {
    auto job = std::make_shared<Job>();
    job->domain = domain;
    job->kind = kind;
    job->trace = trace;
    job->force = force;
    job->pending = 2;
    job->queries = 0;
    job->e = get(domain).value_or(Entry{});
    job->e.last_used = std::max(job->e.last_used, clock_.now());
    if (kind == JobKind::Cold) {
        job->zone = dns::registered_domain(domain);
        ++cold_in_flight_;
        ++cold_per_zone_[job->zone];
    }
    jobs_[domain] = job;
    if (shared_ && !force) {
        // Fleet mode: another instance may have the answer, or be resolving it now.
        UnixTime now = clock_.now();
        shared_->claim(
            domain, [now](const store::StsRow& r) { return row_usable(r, now); },
            [this, job](store::SharedCache::ClaimResult r) { on_claim(job, std::move(r)); });
        return;
    }
    begin(job);
}

void Engine::begin(const std::shared_ptr<Job>& job) {
    const std::string& domain = job->domain;
    // The MX query goes first: an owner name too long for DNS is answered at once, and the
    // job must not end before every query is out.
    query(job, domain, dns::rrtype::MX, [this, job](dns::Answer a) {
        job->mx = std::move(a);
        on_mx(job);
        done_one(job);
    });
    query(job, "_mta-sts." + domain, dns::rrtype::TXT, [this, job](dns::Answer a) {
        job->txt = std::move(a);
        on_txt(job);
        done_one(job);
    });
}

void Engine::query(const std::shared_ptr<Job>& job, const std::string& name, std::uint16_t type,
                   dns::Resolver::Callback cb) {
    // A valid domain of 245-253 octets has no room for "_mta-sts." or "_25._tcp.": no such
    // record can exist, so the answer is a plain "no data", cached like any other.
    if (name.size() > 253) {
        dns::Answer a;
        a.status = dns::Answer::Status::NxDomain;
        a.security = dns::Security::Insecure;
        a.why = "name longer than 253 octets: no such record can exist";
        job->note(std::string(dns::type_name(type)) + " " + name.substr(0, 40) +
                  "...: not looked up (" + a.why + ")");
        cb(std::move(a));
        return;
    }
    ++job->queries;
    resolver_.resolve(name, type, std::move(cb));
}

void Engine::on_mx(const std::shared_ptr<Job>& job) {
    UnixTime now = clock_.now();
    const std::string& domain = job->domain;
    Entry& e = job->e;
    const dns::Answer& mx = job->mx;
    if (mx.failed()) {
        e.mx_error = sanitize(mx.why, 120);
        job->note("MX " + domain + ": lookup failed: " + e.mx_error + " [" +
                  dns::security_name(mx.security) + "]");
        return;
    }
    // RFC 5321 5.1: no MX means the domain itself; RFC 7505: a null MX means no mail.
    std::vector<std::pair<std::uint16_t, std::string>> hosts;
    if (mx.status == dns::Answer::Status::Ok) {
        for (const auto& rd : mx.rdata) {
            auto m = dns::parse_mx(rd);
            if (!m || m->host.empty()) continue;
            // A DNS label may hold any octet; only an LDH host name can be a delivery target
            // or be written into an answer (RFC 1123 2.1, RFC 5321 2.3.5). Postfix skips such
            // MX records too. With no valid host left, an MTA-STS policy matches nothing
            // (TEMP) and DANE has no host to cover.
            if (!dns::is_hostname(m->host)) {
                ++stats_.invalid_names;
                log::warn("MX host is not a host name, ignored",
                          {{"domain", domain}, {"mx", m->host.substr(0, 300)}});
                job->note("MX " + domain + ": ignored " + m->host.substr(0, 300) +
                          " (not a host name)");
                continue;
            }
            hosts.emplace_back(m->preference, m->host);
        }
    } else if (mx.status == dns::Answer::Status::NoData) {
        hosts.emplace_back(0, domain);
    }
    std::stable_sort(hosts.begin(), hosts.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    e.mx_hosts.clear();
    for (auto& [pref, h] : hosts) {
        if (std::find(e.mx_hosts.begin(), e.mx_hosts.end(), h) == e.mx_hosts.end())
            e.mx_hosts.push_back(h);
    }
    e.mx_known = true;
    e.mx_error.clear();
    e.mx_expires = now + std::clamp<std::int64_t>(mx.ttl, opts_.dns_min_ttl, opts_.dns_max_ttl);
    job->note("MX " + domain + ": " +
              (mx.status == dns::Answer::Status::NoData ? std::string("none, implicit MX ")
                                                        : std::string()) +
              (e.mx_hosts.empty() ? std::string("(no host)") : join(e.mx_hosts, ' ')) + " [" +
              dns::security_name(mx.security) + "]");
    if (mx.security != dns::Security::Secure) return;  // no DANE: no host queries
    std::size_t n = std::min(e.mx_hosts.size(), opts_.max_mx_hosts);
    job->hosts_truncated = e.mx_hosts.size() > n;
    job->hosts.resize(n);
    job->pending += static_cast<int>(3 * n);
    if (n > 0) job->dns_rounds = 2;
    for (std::size_t i = 0; i < n; ++i) {
        job->hosts[i].host = e.mx_hosts[i];
        const std::string host = e.mx_hosts[i];
        query(job, host, dns::rrtype::A, [this, job, i](dns::Answer a) {
            job->hosts[i].a = std::move(a);
            follow_cname(job, i, job->hosts[i].a);
            done_one(job);
        });
        query(job, host, dns::rrtype::AAAA, [this, job, i](dns::Answer a) {
            job->hosts[i].aaaa = std::move(a);
            follow_cname(job, i, job->hosts[i].aaaa);
            done_one(job);
        });
        query(job, dane::tlsa_name(host), dns::rrtype::TLSA, [this, job, i](dns::Answer a) {
            job->hosts[i].tlsa = std::move(a);
            done_one(job);
        });
    }
}

void Engine::follow_cname(const std::shared_ptr<Job>& job, std::size_t i, const dns::Answer& a) {
    // RFC 7672 2.2.3: an MX host that is a secure CNAME has its TLSA records looked up at
    // the expanded name first (one more round trip, for such hosts only).
    dane::HostAnswers& h = job->hosts[i];
    if (a.failed()) return;
    std::string target = to_lower(a.canonical_name);
    if (!target.empty() && target.back() == '.') target.pop_back();
    if (target.empty() || target == h.host) return;
    if (!dns::is_hostname(target)) {
        // Checked where it enters: a CNAME target that is no host name is never queried or
        // written anywhere; the TLSA at the original name counts.
        job->note("CNAME target of " + h.host + " is not a host name: " + sanitize(target, 120));
        return;
    }
    if (a.security != dns::Security::Secure) {
        // Insecure expansion: is the original name itself signed?
        if (h.cname_queried) return;
        h.cname_queried = true;
        ++job->pending;
        job->dns_rounds = 3;
        query(job, h.host, dns::rrtype::CNAME, [this, job, i](dns::Answer c) {
            job->hosts[i].cname = std::move(c);
            done_one(job);
        });
        return;
    }
    if (h.expanded_queried) return;
    h.expanded_queried = true;
    h.expanded = target;
    ++job->pending;
    job->dns_rounds = 3;
    query(job, dane::tlsa_name(target), dns::rrtype::TLSA, [this, job, i](dns::Answer t) {
        job->hosts[i].tlsa_expanded = std::move(t);
        done_one(job);
    });
}

void Engine::set_sts(const std::shared_ptr<Job>& job, Decision d) {
    job->sts = std::move(d);
}

void Engine::on_txt(const std::shared_ptr<Job>& job) {
    UnixTime now = clock_.now();
    const std::string& domain = job->domain;
    Entry& e = job->e;
    const dns::Answer& txt = job->txt;
    bool cached_valid = e.policy && e.expires_at > now;
    if (txt.failed()) {
        std::string why = sanitize(txt.why, 120);
        job->note("TXT _mta-sts." + domain + ": lookup failed: " + why + " [" +
                  dns::security_name(txt.security) + "]");
        if (cached_valid) {
            schedule_failure(domain, e, "TXT lookup failed: " + why);
            set_sts(job, *sts_from_cache(domain, e));
            return;
        }
        set_sts(job, failure_decision(domain, fail_class_of(txt),
                                      "DNS lookup of _mta-sts." + domain + " TXT failed: " + why));
        return;
    }
    std::vector<std::string> records;
    if (txt.status == dns::Answer::Status::Ok) {
        for (const auto& rd : txt.rdata) {
            if (auto s = dns::parse_txt(rd)) records.push_back(std::move(*s));
        }
    }
    for (const auto& r : records)
        job->note("TXT _mta-sts." + domain + ": \"" + sanitize(r, 200) + "\" [" +
                  dns::security_name(txt.security) + "]");
    auto sel = sts::select_txt(records);
    if (!sel) {
        std::string why = txt.status == dns::Answer::Status::Ok
                              ? sel.error().reason
                              : std::string("no _mta-sts TXT record");
        job->note("TXT: " + why);
        if (cached_valid) {
            // Section 5: the policy stays in force until it expires, TXT or not.
            e.last_error.clear();
            schedule_success(e);
            Decision d = *sts_from_cache(domain, e);
            d.why += "; " + why + ", cached policy kept until it expires";
            set_sts(job, d);
            return;
        }
        e.policy.reset();
        e.negative_until = now + opts_.negative_ttl;
        e.negative_why = why;
        e.last_error = why;
        Decision d;
        d.kind = Decision::Kind::NotFound;
        d.domain = domain;
        d.source = "dns";
        d.why = why;
        set_sts(job, d);
        return;
    }
    job->txt_id = sel->id;
    bool fresh_enough =
        cached_valid && e.txt_id == sel->id && (e.expires_at - now) * 2 > e.policy->max_age;
    if (fresh_enough) {
        job->note("TXT id " + sel->id + " unchanged; cached policy is current");
        e.last_error.clear();
        e.failures = 0;
        schedule_success(e);
        set_sts(job, *sts_from_cache(domain, e));
        return;
    }
    job->note("fetching " + sts::policy_url(domain) +
              (cached_valid ? (e.txt_id == sel->id ? " (refresh before expiry)"
                                                   : " (TXT id changed from " + e.txt_id + ")")
                            : ""));
    ++job->pending;
    job->fetched = true;
    fetcher_.fetch(domain, [this, job](sts::FetchResult r) {
        on_fetch_done(job, std::move(r));
        done_one(job);
    });
}

void Engine::on_fetch_done(const std::shared_ptr<Job>& job, sts::FetchResult r) {
    UnixTime now = clock_.now();
    const std::string& domain = job->domain;
    Entry& e = job->e;
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
            Decision d;
            d.kind = Decision::Kind::Sts;
            d.domain = domain;
            d.policy = e.policy;
            d.source = "fetch";
            d.why = std::string("MTA-STS policy mode ") + sts::mode_name(e.policy->mode) + " id " +
                    e.txt_id + " fetched, valid for " + std::to_string(e.policy->max_age) + " s";
            set_sts(job, d);
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
        schedule_failure(domain, e, failure);
        set_sts(job, *sts_from_cache(domain, e));
        return;
    }
    e.policy.reset();
    e.negative_until = now + opts_.fetch_failure_ttl;
    e.negative_why = failure + " (no cached policy: treated as no MTA-STS, RFC 8461 section 5)";
    e.last_error = failure;
    Decision d;
    d.kind = Decision::Kind::NotFound;
    d.domain = domain;
    d.source = "fetch";
    d.why = e.negative_why;
    d.failure_code = failure_code_of(failure);
    set_sts(job, d);
}

void Engine::done_one(const std::shared_ptr<Job>& job) {
    if (--job->pending > 0) return;
    UnixTime now = clock_.now();
    const std::string& domain = job->domain;
    Entry& e = job->e;

    dane::Outcome o = dane::evaluate(domain, job->mx, job->hosts);
    if (o.kind == dane::Kind::DaneOnly && job->hosts_truncated) {
        o.kind = dane::Kind::Dane;
        o.why = "DNSSEC-signed MX with usable TLSA for the first " +
                std::to_string(job->hosts.size()) +
                " MX hosts; the others were not checked, so Postfix applies DANE per host";
    }
    for (auto& n : o.notes) job->note(std::move(n));
    job->note("DANE: " + std::string(dane::kind_name(o.kind)) + ": " + o.why);
    bool had_dane =
        e.dane.known && (e.dane.kind == dane::Kind::Dane || e.dane.kind == dane::Kind::DaneOnly);
    if (o.kind == dane::Kind::Dane || o.kind == dane::Kind::DaneOnly)
        e.dane_seen_until = now + opts_.dane_history_ttl;
    if (o.kind == dane::Kind::Fail && had_dane && e.dane.expires > now) {
        // A failed refresh never removes an unexpired DANE result; try again soon.
        e.dane.refresh_at = now + opts_.failure_ttl;
        log::warn("DANE refresh failed, keeping the cached result",
                  {{"domain", domain}, {"error", o.why}});
        Decision d = *from_cache(domain, e);
        d.why += " (refresh failed: " + o.why + ")";
        put(domain, e);
        persist(domain, e);
        finish(job, std::move(d));
        return;
    }
    e.dane.known = true;
    e.dane.kind = o.kind;
    e.dane.no_usable_tlsa = o.no_usable_tlsa;
    e.dane.why = o.why;
    if (o.kind == dane::Kind::Fail) {
        e.dane.fail_class = fail_class_of(o.failure);
        e.dane.expires = now + opts_.failure_ttl;
        e.dane.refresh_at = e.dane.expires;
    } else {
        std::int64_t ttl = std::clamp<std::int64_t>(o.ttl, opts_.dns_min_ttl, opts_.dns_max_ttl);
        e.dane.expires = now + ttl;
        e.dane.refresh_at = now + ttl * 3 / 4;
    }

    Decision d;
    switch (o.kind) {
        case dane::Kind::Fail:
            d = failure_decision(domain, e.dane.fail_class, o.why, e.dane_seen_until > now);
            if (d.kind == Decision::Kind::NotFound && job->sts) {
                // Relaxed by policy.on_failure: DANE is treated as not applying, so a
                // cached or fetched MTA-STS policy still counts.
                std::string relaxed = d.why;
                d = *job->sts;
                if (d.kind == Decision::Kind::Sts) {
                    d.mx_hosts = e.mx_hosts;
                    d.mx_known = e.mx_known;
                    d.mx_error = e.mx_error;
                }
                d.why = relaxed + "; " + d.why;
            }
            break;
        case dane::Kind::Dane:
        case dane::Kind::DaneOnly:
            d.kind = Decision::Kind::Dane;
            d.domain = domain;
            d.source = "dns";
            d.dane_level = dane::kind_name(o.kind);
            d.dane_no_usable_tlsa = o.no_usable_tlsa;
            d.why = o.why;
            // RFC 8461 section 2: DANE wins, so the MTA-STS policy is not answered; but with
            // partial DANE an enforced policy still forbids unauthenticated delivery: the
            // profile then answers dane-only (render()).
            if (job->sts && job->sts->kind == Decision::Kind::Sts) {
                d.policy = job->sts->policy;
                d.mx_hosts = job->sts->mx_hosts;
                d.mx_known = job->sts->mx_known;
                d.mx_error = job->sts->mx_error;
            }
            note_partial_dane(d);
            break;
        case dane::Kind::None:
            d = job->sts ? *job->sts
                         : failure_decision(domain, 0, "internal error: no MTA-STS outcome");
            if (d.kind == Decision::Kind::Sts) {
                d.mx_hosts = e.mx_hosts;
                d.mx_known = e.mx_known;
                d.mx_error = e.mx_error;
            }
            if (d.kind == Decision::Kind::NotFound) d.why = o.why + "; " + d.why;
            break;
    }
    put(domain, e);
    persist(domain, e);
    finish(job, std::move(d));
}

void Engine::drop_job(const std::shared_ptr<Job>& job) {
    if (auto it = jobs_.find(job->domain); it != jobs_.end() && it->second == job) jobs_.erase(it);
    shared_wait_.erase(job->domain);
    if (job->kind == JobKind::Cold) {
        --cold_in_flight_;
        auto z = cold_per_zone_.find(job->zone);
        if (z != cold_per_zone_.end() && --z->second == 0) cold_per_zone_.erase(z);
    }
}

void Engine::finish(const std::shared_ptr<Job>& job, Decision d) {
    drop_job(job);
    job->note("decision: " + d.why);
    if (job->shared) {
        ++stats_.shared_answers;
        for (auto& cb : job->waiters) {
            try {
                cb(d);
            } catch (const std::exception& ex) {
                log::error("lookup callback failed", {{"domain", job->domain}, {"error", ex.what()}});
            }
        }
        return;
    }
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - job->started);
    ++stats_.resolutions;
    stats_.dns_queries += static_cast<std::uint64_t>(job->queries);
    stats_.max_dns_rounds = std::max(stats_.max_dns_rounds, job->dns_rounds);
    stats_.fetches += job->fetched ? 1 : 0;
    log::debug("resolution", {{"domain", job->domain},
                              {"dns_queries", std::to_string(job->queries)},
                              {"dns_rounds", std::to_string(job->dns_rounds)},
                              {"fetch", job->fetched ? "yes" : "no"},
                              {"ms", std::to_string(ms.count())}});
    for (auto& cb : job->waiters) {
        try {
            cb(d);
        } catch (const std::exception& ex) {
            log::error("lookup callback failed", {{"domain", job->domain}, {"error", ex.what()}});
        }
    }
}

}  // namespace strictmx::policy
