// SPDX-License-Identifier: MIT
// strictmx: the operator's tool. `strictmx query DOMAIN` explains a decision in words: the
// key, the cache state, each DNS record and the policy text, and the answer of each profile.
#include <event2/event.h>
#include <grp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <optional>

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "config/config.hh"
#include "dns/name.hh"
#include "policy/runtime.hh"
#include "store/pg.hh"
#include "tlsrpt/report.hh"
#include "tlsrpt/reporter.hh"
#include "tlsrpt/store.hh"
#include "util/log.hh"
#include "util/strings.hh"

using namespace strictmx;

namespace {

void usage(std::FILE* out) {
    std::fputs(
        "usage: strictmx [--config FILE] [--json] status\n"
        "       strictmx [--config FILE] [--json] cache show DOMAIN | flush DOMAIN|--all | dump\n"
        "       strictmx [--config FILE] [--json] query [--offline] DOMAIN\n"
        "       strictmx [--config FILE] tlsrpt send --day YYYY-MM-DD [--dry-run DIR]\n"
        "       strictmx [--config FILE] tlsrpt flush | run | stats\n"
        "       strictmx [--config FILE] store migrate | check\n"
        "  status        the running daemon: version, uptime, listeners, cache, resolutions\n"
        "  cache show    what the daemon's cache holds for DOMAIN\n"
        "  cache flush   forget DOMAIN (or everything): the next lookup resolves afresh\n"
        "  cache dump    every cached domain\n"
        "  query DOMAIN  the running daemon's answer for DOMAIN in every profile (its cache,\n"
        "                its resolver); --offline: resolve here, now, and explain each DNS\n"
        "                record and the policy (nothing is written to the cache)\n"
        "  --json        the daemon's JSON reply as it is (status, cache, query)\n"
        "  --version     print the version\n"
        "  tlsrpt send   build that day's TLSRPT reports (today included) and deliver them\n"
        "                now, without the random delay; failed deliveries are queued.\n"
        "                --dry-run DIR: write one file per delivery to DIR, send nothing.\n"
        "  tlsrpt flush  retry every queued delivery now\n"
        "  tlsrpt run    the daily timer's work: finished days' reports after their random\n"
        "                delay, due retries, pruning\n"
        "  tlsrpt stats  counters of the collector and the deliveries, key=value\n"
        "  store migrate fleet mode: create or upgrade the PostgreSQL schema (store.dsn)\n"
        "  store check   fleet mode: connect and print the schema version and the counts\n",
        out);
}

// Everything printed that came from the command line, DNS or HTTPS: control bytes and
// terminal escape sequences are shown escaped, never sent to the terminal.
std::string esc(std::string_view s) {
    return sanitize(s, 4000);
}

std::string when(UnixTime t, UnixTime now) {
    char buf[64];
    std::time_t tt = static_cast<std::time_t>(t);
    std::tm tm{};
    gmtime_r(&tt, &tm);
    std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S UTC", &tm);
    std::string s = buf;
    long long d = static_cast<long long>(t - now);
    s += d >= 0 ? " (in " + std::to_string(d) + " s)" : " (" + std::to_string(-d) + " s ago)";
    return s;
}

void show_cache(const config::Config& cfg, const std::string& domain, UnixTime now) {
    std::string path = policy::cache_path(cfg);
    auto store = store::Store::open_readonly(path);
    std::printf("Cache (%s):\n", path.c_str());
    if (!store) {
        std::printf("  not readable (the daemon has not run yet, or no permission)\n");
        return;
    }
    auto row = store->get(domain);
    if (!row) {
        std::printf("  nothing cached for %s\n", domain.c_str());
        return;
    }
    if (row->has_policy) {
        std::printf("  MTA-STS policy, TXT id %s, fetched %s\n", esc(row->txt_id).c_str(),
                    when(row->fetched_at, now).c_str());
        std::printf("  expires %s\n", when(row->expires_at, now).c_str());
        std::printf("  next refresh %s\n", when(row->next_refresh, now).c_str());
        std::string text = row->policy;
        for (auto line : split(text, '\n'))
            if (!line.empty()) std::printf("    %s\n", esc(line).c_str());
    } else {
        std::printf("  no policy (%s), remembered until %s\n", esc(row->last_error).c_str(),
                    when(row->expires_at, now).c_str());
    }
    if (row->failures)
        std::printf("  %d failed refreshes, last: %s\n", row->failures,
                    esc(row->last_error).c_str());
    if (row->mx_expires) std::printf("  MX hosts: %s\n", esc(row->mx_hosts).c_str());
    static const char* kDane[] = {"does not apply", "dane (partial coverage)", "dane-only",
                                  "lookup failed (TEMP)"};
    if (row->dane_kind >= 0 && row->dane_kind <= 3) {
        std::printf("  DANE: %s%s%s, until %s\n", kDane[row->dane_kind],
                    row->dane_why.empty() ? "" : ": ", esc(row->dane_why).c_str(),
                    when(row->dane_expires, now).c_str());
    }
}

int query(const config::Config& cfg, const std::string& raw) {
    dns::Key key = dns::classify_key(raw);
    std::printf("Key: %s\n", esc(raw).c_str());
    if (key.kind != dns::KeyKind::Domain) {
        std::printf("  %s: every profile answers NOTFOUND without looking anything up.\n", key.why);
        return 0;
    }
    if (key.domain != raw) std::printf("  looked up as %s\n", key.domain.c_str());
    SystemClock clock;
    UnixTime now = clock.now();
    show_cache(cfg, key.domain, now);

    EventBasePtr base(event_base_new());
    auto rt = policy::Runtime::create(base.get(), cfg, false);
    try {
        rt->prove_validation(cfg);
    } catch (const std::exception& e) {
        std::printf("DNSSEC validation: broken: %s\n", esc(e.what()).c_str());
        std::printf("No answer shown: without validation DANE results would be wrong.\n");
        return 1;
    }
    std::printf("DNSSEC validation: %s", policy::validation_name(rt->validation));
    if (rt->validation != policy::Validation::Proven)
        std::printf(" (%s; DANE results below do not count)", esc(rt->validation_why).c_str());
    std::printf("\n");
    policy::Trace trace;
    policy::Decision result;
    bool done = false;
    if (auto ov = cfg.overrides.find(key.domain); ov != cfg.overrides.end()) {
        rt->engine->lookup(key.domain, [&](const policy::Decision& d) {
            result = d;
            done = true;
        });
    } else {
        rt->engine->resolve_fresh(
            key.domain,
            [&](const policy::Decision& d) {
                result = d;
                done = true;
                event_base_loopexit(base.get(), nullptr);
            },
            &trace);
        event_base_dispatch(base.get());
    }
    if (!done) {
        std::printf("Resolution did not finish.\n");
        return 1;
    }
    std::printf("Resolution now:\n");
    for (const auto& step : trace) std::printf("  %s\n", esc(step).c_str());
    std::printf("Decision: %s (source: %s)\n", esc(result.why).c_str(), result.source.c_str());
    std::printf("Answers:\n");
    for (const char* name : {"postfix", "postfix-tlsrpt", "strict", "strict-tlsrpt"}) {
        policy::Reply r = policy::render(result, *policy::find_profile(name));
        const char* word = r.kind == policy::Reply::Kind::Ok     ? "OK"
                           : r.kind == policy::Reply::Kind::Temp ? "TEMP"
                                                                 : "NOTFOUND";
        std::printf("  %-15s %s %s\n", name, word, esc(r.text).c_str());
    }
    if (result.kind == policy::Decision::Kind::Temp)
        std::printf(
            "Postfix defers mail to %s while this lasts (\"4.7.5 client TLS configuration "
            "problem\").\n",
            key.domain.c_str());
    return 0;
}

void print_summary(const tlsrpt::RunSummary& s) {
    std::printf("reports=%d delivered=%d queued=%d skipped=%d gave_up=%d errors=%d", s.reports,
                s.delivered, s.queued, s.skipped, s.gave_up, s.errors);
    if (s.written) std::printf(" written=%d", s.written);
    if (!s.elsewhere.empty()) std::printf(" reported_by=%s", s.elsewhere.c_str());
    std::printf("\n");
}

int tlsrpt_cmd(const config::Config& cfg, const std::vector<std::string>& args) {
    if (args.empty()) {
        usage(stderr);
        return 2;
    }
    SystemClock clock;
    const std::string& verb = args[0];
    // As root, act as the owner of the store (the daemon's user): files created now (the
    // WAL, the spool) must stay writable for the daemon and the timer's service.
    struct stat st {};
    if (::geteuid() == 0 && ::stat(tlsrpt::db_path(cfg).c_str(), &st) == 0 && st.st_uid != 0) {
        if (::setgroups(0, nullptr) != 0 || ::setgid(st.st_gid) != 0 || ::setuid(st.st_uid) != 0)
            throw std::runtime_error("cannot change to the owner of " + tlsrpt::db_path(cfg));
    }
    if (verb == "stats" && args.size() == 1) {
        tlsrpt::Reporter r(cfg, clock, true);
        for (const auto& [k, v] : r.stats()) std::printf("%s=%lld\n", k.c_str(), (long long)v);
        return 0;
    }
    auto need_submitter = [&] {
        if (cfg.tlsrpt_contact_info.empty() || cfg.tlsrpt_organization_name.empty())
            throw std::runtime_error(
                "tlsrpt.organization_name and tlsrpt.contact_info must be set to send reports");
        if (tlsrpt::submitter_domain(cfg.tlsrpt_contact_info).empty())
            throw std::runtime_error("tlsrpt.contact_info = \"" + cfg.tlsrpt_contact_info +
                                     "\": no domain in it (the report submitter)");
        if (cfg.tlsrpt_sender_address.empty())
            throw std::runtime_error("tlsrpt.sender_address must be set to send reports");
    };
    if (verb == "send") {
        std::string day, dry;
        for (std::size_t k = 1; k < args.size(); ++k) {
            if (args[k] == "--day" && k + 1 < args.size()) day = args[++k];
            else if (args[k] == "--dry-run" && k + 1 < args.size()) dry = args[++k];
            else {
                usage(stderr);
                return 2;
            }
        }
        if (!tlsrpt::day_start(day)) {
            std::fprintf(stderr, "strictmx: tlsrpt send: --day YYYY-MM-DD is required\n");
            return 2;
        }
        need_submitter();
        if (!dry.empty() && ::access(dry.c_str(), W_OK) != 0) {
            std::fprintf(stderr, "strictmx: --dry-run %s: not a writable directory\n",
                         esc(dry).c_str());
            return 1;
        }
        tlsrpt::Reporter r(cfg, clock, !dry.empty());
        auto s = r.send_day(day, dry);
        print_summary(s);
        return s.errors ? 1 : 0;
    }
    if ((verb == "flush" || verb == "run") && args.size() == 1) {
        need_submitter();
        tlsrpt::Reporter r(cfg, clock);
        auto s = verb == "flush" ? r.flush(true) : r.run();
        print_summary(s);
        return s.errors ? 1 : 0;
    }
    usage(stderr);
    return 2;
}

int store_cmd(const config::Config& cfg, const std::string& verb) {
    if (!config::fleet(cfg)) {
        std::fprintf(stderr, "strictmx: store %s: store.backend is \"%s\"; the PostgreSQL "
                             "commands need backend = \"postgresql\" and store.dsn\n",
                     verb.c_str(), cfg.store_backend.c_str());
        return 2;
    }
    store::pg::Options o;
    o.dsn = cfg.store_dsn;
    o.application = "strictmx " + config::instance_name(cfg) + " cli";
    o.statement_timeout_ms = 60'000;
    std::string why;
    auto conn = store::pg::connect(o, why);
    if (!conn) {
        std::fprintf(stderr, "strictmx: cannot connect to %s: %s\n",
                     esc(store::pg::redact(cfg.store_dsn)).c_str(), esc(why).c_str());
        return 1;
    }
    if (verb == "migrate") {
        std::printf("%s\n", store::pg::migrate(conn.get()).c_str());
        return 0;
    }
    int v = store::pg::schema_version(conn.get(), why);
    if (v < 0) {
        std::fprintf(stderr, "strictmx: %s\n", esc(why).c_str());
        return 1;
    }
    std::printf("database %s\nschema_version=%d (this strictmx: %d)\n",
                esc(store::pg::redact(cfg.store_dsn)).c_str(), v, store::pg::kSchemaVersion);
    if (v != store::pg::kSchemaVersion) {
        std::printf("run: strictmx store migrate\n");
        return 1;
    }
    for (const char* q : {"SELECT 'cache_domains', count(*) FROM cache_domains",
                          "SELECT 'cache_leases_held', count(*) FROM cache_leases WHERE until > now()",
                          "SELECT 'tlsrpt_results', count(*) FROM tlsrpt_results",
                          "SELECT 'tlsrpt_batches', count(*) FROM tlsrpt_shipped",
                          "SELECT 'tlsrpt_days_claimed', count(*) FROM tlsrpt_days"}) {
        auto r = store::pg::exec(conn.get(), q);
        if (!r.ok()) {
            std::fprintf(stderr, "strictmx: %s\n", esc(r.error()).c_str());
            return 1;
        }
        std::printf("%s=%lld\n", r.text(0, 0).c_str(), r.num(0, 1));
    }
    return 0;
}

// One request to the daemon's control socket; the JSON reply, or an error.
std::optional<nlohmann::json> ask_daemon(const config::Config& cfg, const std::string& line,
                                         std::string& why) {
    std::string path = config::control_path(cfg);
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    if (fd < 0 || path.size() >= sizeof sun.sun_path) {
        why = "cannot create a socket";
        if (fd >= 0) ::close(fd);
        return std::nullopt;
    }
    std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
        why = "cannot reach strictmx-policyd at " + path + ": " + std::strerror(errno) +
              " (is it running? is control.socket the same in its configuration? does this "
              "user have access?)";
        ::close(fd);
        return std::nullopt;
    }
    timeval tv{120, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    std::string req = line + "\n";
    if (::send(fd, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) {
        why = std::string("send: ") + std::strerror(errno);
        ::close(fd);
        return std::nullopt;
    }
    ::shutdown(fd, SHUT_WR);
    std::string buf;
    char tmp[65536];
    for (;;) {
        ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
        if (n > 0) {
            buf.append(tmp, static_cast<std::size_t>(n));
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        break;
    }
    ::close(fd);
    try {
        return nlohmann::json::parse(buf);
    } catch (const std::exception& e) {
        why = "unreadable reply from the daemon: " + esc(buf.substr(0, 200));
        return std::nullopt;
    }
}

// Human-readable JSON: "key: value" lines, nested objects indented.
void print_plain(const nlohmann::json& j, int indent = 0) {
    std::string pad(static_cast<std::size_t>(indent), ' ');
    for (auto it = j.begin(); it != j.end(); ++it) {
        if (it->is_object()) {
            std::printf("%s%s:\n", pad.c_str(), esc(it.key()).c_str());
            print_plain(*it, indent + 2);
        } else if (it->is_array()) {
            std::string items;
            for (const auto& v : *it) {
                if (!items.empty()) items += ", ";
                items += v.is_string() ? v.get<std::string>() : v.dump();
            }
            std::printf("%s%s: %s\n", pad.c_str(), esc(it.key()).c_str(), esc(items).c_str());
        } else {
            std::string v = it->is_string() ? it->get<std::string>() : it->dump();
            std::printf("%s%s: %s\n", pad.c_str(), esc(it.key()).c_str(), esc(v).c_str());
        }
    }
}

// Whether something accepts connections at a milter.listen address (strictmx-milter has no
// control socket of its own; status reports whether it is there).
bool answers_at(const std::string& address) {
    sockaddr_storage ss{};
    socklen_t len = 0;
    if (address.starts_with("unix:")) {
        auto* sun = reinterpret_cast<sockaddr_un*>(&ss);
        std::string path = address.substr(5);
        if (path.size() >= sizeof sun->sun_path) return false;
        sun->sun_family = AF_UNIX;
        std::memcpy(sun->sun_path, path.c_str(), path.size() + 1);
        len = sizeof(sockaddr_un);
    } else if (address.starts_with("inet:")) {
        std::string hp = address.substr(5);
        std::size_t colon = hp.rfind(':');
        std::string host = hp.substr(0, colon), port = hp.substr(colon + 1);
        if (host.size() > 2 && host.front() == '[') host = host.substr(1, host.size() - 2);
        auto* in4 = reinterpret_cast<sockaddr_in*>(&ss);
        auto* in6 = reinterpret_cast<sockaddr_in6*>(&ss);
        int pn = std::atoi(port.c_str());
        if (::inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1) {
            in4->sin_family = AF_INET;
            in4->sin_port = htons(static_cast<std::uint16_t>(pn));
            len = sizeof(sockaddr_in);
        } else if (::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
            in6->sin6_family = AF_INET6;
            in6->sin6_port = htons(static_cast<std::uint16_t>(pn));
            len = sizeof(sockaddr_in6);
        } else {
            return false;
        }
    } else {
        return false;
    }
    int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return false;
    bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0;
    ::close(fd);
    return ok;
}

int daemon_cmd(const config::Config& cfg, const std::string& line, bool json_out) {
    std::string why;
    auto reply = ask_daemon(cfg, line, why);
    if (!reply) {
        std::fprintf(stderr, "strictmx: %s\n", why.c_str());
        return 1;
    }
    if (line == "status")
        (*reply)["milter"] = {{"listen", cfg.milter_listen},
                              {"answering", answers_at(cfg.milter_listen)}};
    if (json_out) {
        std::puts(reply->dump(2).c_str());
    } else if (reply->contains("entries") && (*reply)["entries"].is_array()) {
        for (const auto& e : (*reply)["entries"]) {
            print_plain(e);
            std::puts("");
        }
        std::printf("%zu entries\n", (*reply)["entries"].size());
    } else {
        print_plain(*reply);
    }
    return reply->contains("error") ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_file = "/etc/strictmx/strictmx.toml";
    bool config_given = false;
    bool json_out = false;
    int i = 1;
    for (; i < argc; ++i) {
        std::string a = argv[i];
        if ((a == "--config" || a == "-c") && i + 1 < argc) {
            config_file = argv[++i];
            config_given = true;
        } else if (a == "--json") {
            json_out = true;
        } else if (a == "--version") {
            std::puts("strictmx 0.1.0");
            return 0;
        } else if (a == "--help" || a == "-h") {
            usage(stdout);
            return 0;
        } else if (a.starts_with("-")) {
            std::fprintf(stderr, "strictmx: unknown option %s\n", esc(a).c_str());
            usage(stderr);
            return 2;
        } else {
            break;
        }
    }
    std::vector<std::string> rest(argv + i, argv + argc);
    // --json may also follow the verb.
    if (auto it = std::find(rest.begin(), rest.end(), "--json"); it != rest.end()) {
        json_out = true;
        rest.erase(it);
    }
    bool offline = false;
    if (!rest.empty() && rest[0] == "query") {
        if (auto it = std::find(rest.begin(), rest.end(), "--offline"); it != rest.end()) {
            offline = true;
            rest.erase(it);
        }
    }
    std::string daemon_line;  // a request for the running daemon
    bool is_query = offline && rest.size() == 2;
    bool is_tlsrpt = !rest.empty() && rest[0] == "tlsrpt";
    bool is_store = rest.size() == 2 && rest[0] == "store" &&
                    (rest[1] == "migrate" || rest[1] == "check");
    if (rest.size() == 1 && rest[0] == "status") {
        daemon_line = "status";
    } else if (rest.size() == 2 && rest[0] == "query" && !offline) {
        daemon_line = "query " + rest[1];
    } else if (rest.size() >= 2 && rest[0] == "cache") {
        if (rest[1] == "show" && rest.size() == 3)
            daemon_line = "cache show " + rest[2];
        else if (rest[1] == "flush" && rest.size() == 3)
            daemon_line = "cache flush " + rest[2];
        else if (rest[1] == "dump" && rest.size() == 2)
            daemon_line = "cache dump";
        else {
            std::fprintf(stderr, "strictmx: cache: unknown or incomplete request: %s\n",
                         esc(rest.size() > 1 ? rest[1] : "").c_str());
            usage(stderr);
            return 2;
        }
    } else if (!is_query && !is_tlsrpt && !is_store) {
        if (rest.empty())
            std::fprintf(stderr, "strictmx: no command\n");
        else
            std::fprintf(stderr, "strictmx: unknown command or wrong arguments: %s\n",
                         esc(rest[0]).c_str());
        usage(stderr);
        return 2;
    }
    for (const auto& w : rest)
        if (!daemon_line.empty() && w.find_first_of(" \t\r\n") != std::string::npos) {
            std::fprintf(stderr, "strictmx: an argument with a blank or line break: %s\n",
                         esc(w).c_str());
            return 2;
        }
    config::Config cfg;
    try {
        if (config_given || ::access(config_file.c_str(), R_OK) == 0)
            cfg = config::load(config_file);
        else
            cfg = config::defaults();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "strictmx: %s\n", e.what());
        return 1;
    }
    if (!daemon_line.empty()) return daemon_cmd(cfg, daemon_line, json_out);
    if (auto problems = config::check_usable(cfg); !problems.empty()) {
        for (const auto& p : problems) std::fprintf(stderr, "strictmx: %s\n", p.c_str());
        return 1;
    }
    // tlsrpt verbs log what they deliver (stderr, or syslog when configured so).
    log::init("strictmx", is_tlsrpt && cfg.log == "syslog", is_tlsrpt ? 2 : 1);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    int rc = 0;
    try {
        if (is_tlsrpt)
            rc = tlsrpt_cmd(cfg, std::vector<std::string>(rest.begin() + 1, rest.end()));
        else if (is_store)
            rc = store_cmd(cfg, rest[1]);
        else
            rc = query(cfg, rest[1]);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "strictmx: %s\n", e.what());
        rc = 1;
    }
    curl_global_cleanup();
    return rc;
}
