// SPDX-License-Identifier: MIT
// Control socket verbs and Prometheus metrics.
#include "policy/control.hh"

#include "dane/dane.hh"
#include "dns/name.hh"
#include "util/strings.hh"

namespace strictmx::policy {

using nlohmann::json;

namespace {
// Text from DNS, HTTPS or the client goes into JSON as valid UTF-8 only.
std::string clean(std::string_view s) {
    return sanitize(s, 2000);
}

json reply_json(const Reply& r) {
    switch (r.kind) {
        case Reply::Kind::Ok:
            return "OK " + clean(r.text);
        case Reply::Kind::NotFound:
            return "NOTFOUND";
        case Reply::Kind::Temp:
            return "TEMP " + clean(r.text);
    }
    return "TEMP";
}

const char* kind_name(Decision::Kind k) {
    switch (k) {
        case Decision::Kind::NotFound:
            return "notfound";
        case Decision::Kind::Sts:
            return "sts";
        case Decision::Kind::Temp:
            return "temp";
        case Decision::Kind::Override:
            return "override";
        case Decision::Kind::Dane:
            return "dane";
    }
    return "?";
}

// Prometheus label values: backslash, quote and newline escaped.
std::string label(std::string_view v) {
    std::string out;
    for (char c : v) {
        if (c == '\\' || c == '"') out += '\\';
        if (c == '\n') {
            out += "\\n";
            continue;
        }
        out += c;
    }
    return out;
}
}  // namespace

json Control::entry_json(const std::string& domain, const Entry& e, UnixTime now) {
    json j;
    j["domain"] = domain;
    if (e.dane.known) {
        j["dane"] = {{"result", dane::kind_name(e.dane.kind)},
                     {"why", clean(e.dane.why)},
                     {"expires_in_s", static_cast<std::int64_t>(e.dane.expires - now)}};
    }
    if (e.dane_seen_until > now)
        j["dane_history_s"] = static_cast<std::int64_t>(e.dane_seen_until - now);
    if (e.policy) {
        j["mta_sts"] = {{"mode", sts::mode_name(e.policy->mode)},
                        {"id", clean(e.txt_id)},
                        {"mx", e.policy->mx},
                        {"max_age", e.policy->max_age},
                        {"expires_in_s", static_cast<std::int64_t>(e.expires_at - now)},
                        {"next_refresh_in_s", static_cast<std::int64_t>(e.next_refresh - now)}};
    }
    if (e.negative_until > now)
        j["no_policy"] = {{"why", clean(e.negative_why)},
                          {"until_in_s", static_cast<std::int64_t>(e.negative_until - now)}};
    if (e.mx_known) j["mx_hosts"] = e.mx_hosts;
    if (!e.mx_error.empty()) j["mx_error"] = clean(e.mx_error);
    if (e.failures > 0) j["refresh_failures"] = e.failures;
    if (!e.last_error.empty()) j["last_error"] = clean(e.last_error);
    j["last_used_s_ago"] = static_cast<std::int64_t>(now - e.last_used);
    return j;
}

void Control::handle(std::string_view line, std::function<void(std::string)> reply) {
    auto words = split(trim(line), ' ');
    std::erase_if(words, [](std::string_view w) { return w.empty(); });
    auto fail = [&reply](const std::string& why) {
        reply(json{{"error", why}}.dump() + "\n");
    };
    auto domain_of = [](std::string_view raw, std::string& out) {
        dns::Key k = dns::classify_key(raw);
        if (k.kind != dns::KeyKind::Domain) return false;
        out = k.domain;
        return true;
    };
    UnixTime now = clock_.now();
    if (words.size() == 1 && words[0] == "status") {
        const auto& es = engine_.stats();
        const auto& ss = service_.stats();
        json j = {{"version", info_.version},
                  {"uptime_s", static_cast<std::int64_t>(now - info_.started)},
                  {"listeners", info_.listeners},
                  {"dnssec", info_.dnssec},
                  {"cache_entries", engine_.size()},
                  {"resolutions_in_flight", engine_.in_flight()},
                  {"cold_resolutions_in_flight", engine_.cold_in_flight()},
                  {"refreshes_in_flight", engine_.refreshes_in_flight()},
                  {"lookups", ss.lookups},
                  {"resolutions", es.resolutions},
                  {"dns_queries", es.dns_queries},
                  {"policy_fetches", es.fetches}};
        if (info_.extra) j.update(info_.extra());
        reply(j.dump() + "\n");
        return;
    }
    if (words.size() == 3 && words[0] == "cache" && words[1] == "show") {
        std::string d;
        if (!domain_of(words[2], d)) return fail("not a domain name: " + clean(words[2]));
        auto e = engine_.find(d);
        json j = e ? entry_json(d, *e, now) : json{{"domain", d}};
        j["cached"] = e.has_value();
        reply(j.dump() + "\n");
        return;
    }
    if (words.size() == 3 && words[0] == "cache" && words[1] == "flush") {
        if (words[2] == "--all") {
            reply(json{{"flushed", engine_.flush_all()}}.dump() + "\n");
            return;
        }
        std::string d;
        if (!domain_of(words[2], d)) return fail("not a domain name: " + clean(words[2]));
        reply(json{{"domain", d}, {"flushed", engine_.flush(d) ? 1 : 0}}.dump() + "\n");
        return;
    }
    if (words.size() == 2 && words[0] == "cache" && words[1] == "dump") {
        json all = json::array();
        engine_.for_each([&](const std::string& d, const Entry& e) {
            all.push_back(entry_json(d, e, now));
            return true;
        });
        reply(json{{"count", all.size()}, {"entries", std::move(all)}}.dump() + "\n");
        return;
    }
    if (words.size() == 2 && words[0] == "query") {
        std::string d;
        if (!domain_of(words[1], d)) return fail("not a domain name: " + clean(words[1]));
        service_.decide_raw(d, *find_profile("postfix"), [reply](const Decision* dec) {
            if (!dec) {
                reply(json{{"error", "no decision"}}.dump() + "\n");
                return;
            }
            json answers;
            for (const char* p :
                 {"postfix", "postfix-tlsrpt", "strict", "strict-tlsrpt", "requiretls"})
                answers[p] = reply_json(render(*dec, *find_profile(p)));
            answers["exim"] = clean(render_exim(*dec, *find_profile("postfix")));
            json j = {{"domain", dec->domain},
                      {"decision", kind_name(dec->kind)},
                      {"source", dec->source},
                      {"why", clean(dec->why)},
                      {"answers", answers}};
            if (dec->failure_code) j["policy_failure_code"] = dec->failure_code;
            reply(j.dump() + "\n");
        });
        return;
    }
    fail("unknown request: " + clean(line.substr(0, 200)) +
         " (status, cache show DOMAIN, cache flush DOMAIN|--all, cache dump, query DOMAIN)");
}

std::string Control::metrics() const {
    const auto& es = engine_.stats();
    std::string out;
    auto metric = [&out](const char* name, const char* type, const char* help) {
        out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type +
               "\n";
    };
    auto sample = [&out](const std::string& name, std::uint64_t v) {
        out += name + " " + std::to_string(v) + "\n";
    };
    metric("strictmx_up", "gauge", "1 while the daemon serves.");
    sample("strictmx_up", 1);
    metric("strictmx_uptime_seconds", "gauge", "Seconds since the daemon started.");
    sample("strictmx_uptime_seconds",
           static_cast<std::uint64_t>(clock_.now() - info_.started));
    metric("strictmx_dnssec_validation", "gauge",
           "DNSSEC validation state: 1 for the current state label.");
    out += "strictmx_dnssec_validation{state=\"" + label(info_.dnssec) + "\"} 1\n";
    metric("strictmx_cache_entries", "gauge", "Domains in the policy cache.");
    sample("strictmx_cache_entries", engine_.size());
    metric("strictmx_resolutions_in_flight", "gauge", "Resolutions running, by kind.");
    out += "strictmx_resolutions_in_flight{kind=\"cold\"} " +
           std::to_string(engine_.cold_in_flight()) + "\n";
    out += "strictmx_resolutions_in_flight{kind=\"refresh\"} " +
           std::to_string(engine_.refreshes_in_flight()) + "\n";
    metric("strictmx_resolutions_total", "counter", "Resolutions started.");
    sample("strictmx_resolutions_total", es.resolutions);
    metric("strictmx_dns_queries_total", "counter", "DNS queries sent.");
    sample("strictmx_dns_queries_total", es.dns_queries);
    metric("strictmx_policy_fetches_total", "counter", "MTA-STS policy fetches.");
    sample("strictmx_policy_fetches_total", es.fetches);
    metric("strictmx_cache_evictions_total", "counter", "Cache entries evicted, by reason.");
    out += "strictmx_cache_evictions_total{reason=\"idle\"} " + std::to_string(es.evicted_idle) +
           "\n";
    out += "strictmx_cache_evictions_total{reason=\"lru\"} " + std::to_string(es.evicted_lru) +
           "\n";
    metric("strictmx_refused_total", "counter",
           "Lookups answered TEMP because a resolution limit was reached, by limit.");
    out += "strictmx_refused_total{limit=\"max_resolutions\"} " +
           std::to_string(es.refused_busy) + "\n";
    out += "strictmx_refused_total{limit=\"max_resolutions_per_domain\"} " +
           std::to_string(es.refused_zone) + "\n";
    metric("strictmx_invalid_dns_names_total", "counter",
           "MX host names from DNS refused as not host names.");
    sample("strictmx_invalid_dns_names_total", es.invalid_names);
    out += service_.metrics_text();
    if (info_.extra_metrics) out += info_.extra_metrics();
    return out;
}

}  // namespace strictmx::policy
