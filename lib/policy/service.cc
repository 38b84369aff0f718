// SPDX-License-Identifier: MIT
// Request handling shared by every listener.
#include "policy/service.hh"

#include <cstdio>

#include "codecs/netstring.hh"
#include "codecs/tcp_table.hh"
#include "dns/name.hh"
#include "util/log.hh"
#include "util/strings.hh"

namespace strictmx::policy {

std::string socketmap_payload(const Reply& r) {
    switch (r.kind) {
        case Reply::Kind::Ok: {
            std::string out = "OK " + r.text;
            if (out.size() > netstring::kMaxReply)
                return "TEMP policy answer longer than the socketmap reply limit";
            return out;
        }
        case Reply::Kind::NotFound:
            return "NOTFOUND ";
        case Reply::Kind::Temp:
            return "TEMP " + sanitize(r.text, 400);
    }
    return "TEMP internal error";
}

std::string tcp_table_line(const Reply& r) {
    switch (r.kind) {
        case Reply::Kind::Ok:
            if (auto line = tcp_table::reply(200, r.text)) return *line;
            return *tcp_table::reply(400, "policy answer longer than the tcp_table reply limit");
        case Reply::Kind::NotFound:
            return *tcp_table::reply(500, "not found");
        case Reply::Kind::Temp:
            return *tcp_table::reply(400, sanitize(r.text, 400));
    }
    return *tcp_table::reply(400, "internal error");
}

std::string Service::socketmap_deadline_reply() {
    return "TEMP policy lookup still in progress, try again later";
}

std::string Service::tcp_table_deadline_reply() {
    return *tcp_table::reply(400, "policy lookup still in progress, try again later");
}

std::string Service::exim_deadline_reply() {
    return "level=tempfail reason=\"policy lookup still in progress, try again later\"\n";
}

namespace {
const char* reply_word(Reply::Kind k) {
    switch (k) {
        case Reply::Kind::Ok:
            return "OK";
        case Reply::Kind::NotFound:
            return "NOTFOUND";
        case Reply::Kind::Temp:
            return "TEMP";
    }
    return "?";
}
}  // namespace

namespace {
constexpr std::size_t kMaxLastLogged = 100'000;
}  // namespace

bool Service::worth_logging(const Decision& d, const std::string& profile, std::string_view answer,
                            bool temp) {
    ++stats_.lookups;
    if (!log::enabled(log::Level::Info)) return false;
    std::string key = d.domain;
    key += '\0';
    key += profile;
    std::size_t h = std::hash<std::string_view>{}(answer);
    bool repeat = false;
    if (auto it = last_logged_.find(key); it != last_logged_.end()) {
        repeat = it->second == h;
        it->second = h;
    } else {
        if (last_logged_.size() >= kMaxLastLogged) last_logged_.clear();
        last_logged_.emplace(std::move(key), h);
    }
    if (repeat && !temp && d.source == "cache" && !log::enabled(log::Level::Debug)) {
        ++stats_.repeated;
        return false;
    }
    ++stats_.logged;
    return true;
}

void Service::decide(const std::string& raw_key, const Profile& profile,
                     std::function<void(Reply, bool)> done) {
    dns::Key key = dns::classify_key(raw_key);
    if (key.kind != dns::KeyKind::Domain) {
        log::debug("no policy for key", {{"key", raw_key}, {"why", key.why}});
        done(Reply{Reply::Kind::NotFound, {}}, false);
        return;
    }
    const Profile* p = &profile;
    engine_.lookup(key.domain, [this, p, done](const Decision& d) {
        Reply r = render(d, *p);
        r.failure_code = d.failure_code;
        note_failure(d, *p, "policy");
        std::string_view answer = r.kind == Reply::Kind::Ok ? std::string_view(r.text)
                                                            : std::string_view(reply_word(r.kind));
        if (worth_logging(d, p->name, answer, r.kind == Reply::Kind::Temp)) {
            log::info("decision", {{"domain", d.domain},
                                   {"profile", p->name},
                                   {"answer", answer},
                                   {"source", d.source},
                                   {"why", r.kind == Reply::Kind::Temp ? r.text : d.why}});
        }
        done(std::move(r), d.source == "cache");
    });
}

void Service::decide_raw(const std::string& raw_key, const Profile& profile,
                         std::function<void(const Decision*)> done) {
    dns::Key key = dns::classify_key(raw_key);
    if (key.kind != dns::KeyKind::Domain) {
        log::debug("no policy for key", {{"key", raw_key}, {"why", key.why}});
        done(nullptr);
        return;
    }
    const Profile* p = &profile;
    engine_.lookup(key.domain, [this, p, done](const Decision& d) {
        if (log::enabled(log::Level::Info)) {
            std::string answer = render_exim(d, *p);
            if (worth_logging(d, std::string(p->name) + "/exim", answer,
                              d.kind == Decision::Kind::Temp))
                log::info("decision", {{"domain", d.domain},
                                       {"profile", p->name},
                                       {"answer", answer},
                                       {"source", d.source},
                                       {"why", d.why}});
        }
        done(&d);
    });
}

void Service::exim(std::string_view line, const Profile& profile, ReplyFn reply) {
    auto words = split(trim(line), ' ');
    std::erase_if(words, [](std::string_view w) { return w.empty(); });
    const Profile* p = &profile;
    if (words.size() == 2 && words[0] == "query") {
        auto t0 = std::chrono::steady_clock::now();
        decide_raw(std::string(words[1]), profile, [this, reply, p, t0](const Decision* d) {
            int kind = !d ? 1
                       : d->kind == Decision::Kind::Temp ? 2
                       : render(*d, *p).kind == Reply::Kind::Ok ? 0
                                                                : 1;
            observe(2, *p, kind, d && d->source == "cache", t0);
            // Exim reports no TLS outcomes itself: a policy failure is recorded here.
            if (d && on_failure_ && d->failure_code != 0) on_failure_(*d, "exim");
            reply((d ? render_exim(*d, *p) : std::string("level=none")) + "\n");
        });
        return;
    }
    if (!words.empty() && words[0] == "tlsrpt") {
        auto parsed = tlsrpt::parse_exim_tlsrpt(line);
        if (auto* why = std::get_if<std::string>(&parsed)) {
            if (!why->starts_with("ignored"))
                log::warn("malformed exim tlsrpt request", {{"request", line}, {"why", *why}});
            reply(*why + "\n");
            return;
        }
        if (!on_attempt_) {
            reply("ignored: no [tlsrpt] collector configured\n");
            return;
        }
        auto attempt = std::get<tlsrpt::SessionEvent>(std::move(parsed));
        std::string domain = attempt.domain;
        decide_raw(domain, profile,
                   [this, reply, attempt = std::move(attempt)](const Decision* d) mutable {
                       // A policy failure was recorded when Exim asked for the policy: the
                       // same delivery is not counted again as a session of no policy.
                       if (!d || d->failure_code != 0) {
                           reply("ignored: recorded as a policy failure\n");
                           return;
                       }
                       on_attempt_(*d, std::move(attempt));
                       reply("ok\n");
                   });
        return;
    }
    if (words.size() == 3 && words[0] == "mxcheck") {
        std::string host = to_lower(words[2]);
        if (!host.empty() && host.back() == '.') host.pop_back();
        if (!dns::is_hostname(host)) {
            reply("veto: not a host name: " + sanitize(words[2], 100) + "\n");
            return;
        }
        decide_raw(std::string(words[1]), profile, [reply, p, host](const Decision* d) {
            reply((d ? exim_mxcheck(*d, *p, host) : std::string()) + "\n");
        });
        return;
    }
    log::warn("malformed exim request", {{"request", line}});
    reply(
        "level=tempfail reason=\"malformed request: expected 'query DOMAIN', 'mxcheck DOMAIN "
        "HOST' or 'tlsrpt RESULT MSGID DOMAIN MXHOST IP [TEXT]'\"\n");
}

namespace {
constexpr std::size_t kMaxRendered = 200'000;
}  // namespace

namespace {
// The common key, an ASCII host name, lowercased into `out` without allocating once `out` has
// grown; false for anything else (classify_key() decides those).
bool plain_domain(std::string_view raw, std::string& out) {
    if (!raw.empty() && raw.back() == '.') raw.remove_suffix(1);
    if (raw.empty() || raw.front() == '.' || raw.size() > 253) return false;
    out.clear();
    for (char c : raw) {
        if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
        bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' || c == '.';
        if (!ok) return false;
        out += c;
    }
    return dns::is_hostname(out) && !dns::is_ip_literal(out);
}
}  // namespace

void Service::answer(Wire wire, std::string_view raw_key, const Profile& profile, ReplyFn reply) {
    auto t0 = std::chrono::steady_clock::now();
    int proto = wire == Wire::Socketmap ? 0 : 1;
    auto encode = [wire](const Reply& r) {
        return wire == Wire::Socketmap ? socketmap_payload(r) : tcp_table_line(r);
    };
    const Profile* pp = &profile;
    if (log::enabled(log::Level::Debug)) {  // every lookup gets its line
        decide(std::string(raw_key), profile,
               [this, reply, encode, proto, pp, t0](Reply r, bool hit) {
                   observe(proto, *pp, static_cast<int>(r.kind), hit, t0);
                   reply(encode(r));
               });
        return;
    }
    if (!plain_domain(raw_key, domain_)) {
        dns::Key key = dns::classify_key(raw_key);
        if (key.kind != dns::KeyKind::Domain) {
            decide(std::string(raw_key), profile,
                   [this, reply, encode, proto, pp, t0](Reply r, bool) {
                       observe(proto, *pp, static_cast<int>(r.kind), true, t0);
                       reply(encode(r));
                   });
            return;
        }
        domain_ = key.domain;
    }
    std::string& slot = slot_;  // reused: no allocation per hit once grown
    slot.clear();
    slot += wire == Wire::Socketmap ? 's' : 't';
    slot += profile.name;
    slot += '\0';
    slot += domain_;
    if (auto token = engine_.touch(domain_)) {
        if (auto it = rendered_.find(slot); it != rendered_.end() && it->second.token == *token) {
            ++stats_.lookups;
            ++stats_.repeated;
            ++stats_.prerendered;
            if (it->second.failure_code != 0 && on_failure_ && !profile.tlsrpt) {
                Decision d;
                d.domain = domain_;
                d.failure_code = it->second.failure_code;
                on_failure_(d, "policy");
            }
            observe(proto, profile, it->second.answer, true, t0);
            reply(it->second.bytes);
            return;
        }
    }
    // The slow way; a reply that came from the cache is kept for the next hit. The token
    // read now is the entry's as this very answer saw it (a hit answers synchronously).
    decide(std::string(raw_key), profile,
           [this, reply, encode, proto, pp, t0, slot = std::string(slot), domain = domain_](
               Reply r, bool from_cache) mutable {
               std::string bytes = encode(r);
               if (from_cache) {
                   if (auto token = engine_.token(domain)) {
                       if (rendered_.size() >= kMaxRendered) rendered_.clear();
                       rendered_[std::move(slot)] = Rendered{*token, bytes, r.failure_code,
                                                             static_cast<int>(r.kind)};
                   }
               }
               observe(proto, *pp, static_cast<int>(r.kind), from_cache, t0);
               reply(std::move(bytes));
           });
}

void Service::socketmap(std::string_view payload, ReplyFn reply) {
    std::size_t sp = payload.find(' ');
    if (sp == std::string_view::npos || sp == 0 || sp + 1 == payload.size()) {
        reply("PERM malformed request: expected 'NAME KEY'");
        return;
    }
    std::string_view name = payload.substr(0, sp);
    std::string_view key = payload.substr(sp + 1);
    const Profile* profile = find_profile(name);
    if (!profile) {
        // A typo in main.cf (":postfx") must not mean "no policy" for every domain: TEMP
        // defers the mail, and the log (once per name) says what is wrong.
        if (unknown_names_logged_.size() < 100 &&
            unknown_names_logged_.insert(std::string(name)).second)
            log::error("unknown socketmap map name, answering TEMP (mail is deferred); fix "
                       "the name in smtp_tls_policy_maps",
                       {{"name", name}, {"known", policy::profile_names()}});
        reply("TEMP unknown socketmap map name " + sanitize(name, 64) + " (known: " +
              policy::profile_names() + ")");
        return;
    }
    answer(Wire::Socketmap, key, *profile, std::move(reply));
}

void Service::tcp_table(const std::string& key, const Profile& profile, ReplyFn reply) {
    answer(Wire::TcpTable, key, profile, std::move(reply));
}

}  // namespace strictmx::policy

namespace strictmx::policy {

namespace {
constexpr double kBounds[] = {0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005,
                              0.01,   0.05,    0.1,    0.5,   1.0,    5.0};
}  // namespace

void Service::observe(int protocol, const Profile& profile, int answer, bool hit,
                      std::chrono::steady_clock::time_point t0) {
    if (answer < 0 || answer > 2 || profile.id < 0 || profile.id >= kProfileCount) return;
    ++counts_[protocol][profile.id][answer];
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Histogram& h = latency_[hit ? 0 : 1];
    for (int b = 0; b < kBuckets; ++b)
        if (s <= kBounds[b]) {
            ++h.buckets[b];
            break;
        }
    ++h.count;
    h.sum += s;
}

std::string Service::metrics_text() const {
    static const char* kProto[] = {"socketmap", "tcp_table", "exim"};
    static const char* kProfile[] = {"postfix", "postfix-tlsrpt", "strict", "strict-tlsrpt",
                                     "requiretls"};
    static const char* kAnswer[] = {"ok", "notfound", "temp"};
    std::string out =
        "# HELP strictmx_lookups_total Lookups answered, by protocol, profile and answer.\n"
        "# TYPE strictmx_lookups_total counter\n";
    for (int p = 0; p < kProtocols; ++p)
        for (int f = 0; f < kProfileCount; ++f)
            for (int a = 0; a < 3; ++a)
                if (counts_[p][f][a] || (f == 0 && p == 0))
                    out += std::string("strictmx_lookups_total{protocol=\"") + kProto[p] +
                           "\",profile=\"" + kProfile[f] + "\",answer=\"" + kAnswer[a] +
                           "\"} " + std::to_string(counts_[p][f][a]) + "\n";
    out +=
        "# HELP strictmx_lookup_seconds Time from request to answer: cache hits, and lookups "
        "that waited for a resolution.\n"
        "# TYPE strictmx_lookup_seconds histogram\n";
    for (int k = 0; k < 2; ++k) {
        const char* kind = k == 0 ? "hit" : "resolved";
        const Histogram& h = latency_[k];
        std::uint64_t cum = 0;
        for (int b = 0; b < kBuckets; ++b) {
            cum += h.buckets[b];
            char le[32];
            std::snprintf(le, sizeof le, "%g", kBounds[b]);
            out += std::string("strictmx_lookup_seconds_bucket{kind=\"") + kind + "\",le=\"" +
                   le + "\"} " + std::to_string(cum) + "\n";
        }
        out += std::string("strictmx_lookup_seconds_bucket{kind=\"") + kind +
               "\",le=\"+Inf\"} " + std::to_string(h.count) + "\n";
        char sum[64];
        std::snprintf(sum, sizeof sum, "%.9f", h.sum);
        out += std::string("strictmx_lookup_seconds_sum{kind=\"") + kind + "\"} " + sum + "\n";
        out += std::string("strictmx_lookup_seconds_count{kind=\"") + kind + "\"} " +
               std::to_string(h.count) + "\n";
    }
    return out;
}

}  // namespace strictmx::policy
