// SPDX-License-Identifier: MIT
// strictmx-policyd: answers Postfix smtp_tls_policy_maps lookups (socketmap, tcp_table) from
// MTA-STS policies. main() parses options, binds, drops privileges and runs the loop.
#include <event2/event.h>
#include <grp.h>
#include <pwd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cctype>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>

#include "config/config.hh"
#include "policy/control.hh"
#include "policy/runtime.hh"
#include "policy/service.hh"
#include "server.hh"
#include "tlsrpt/collector.hh"
#include "tlsrpt/reporter.hh"
#include "tlsrpt/sources.hh"
#include "tlsrpt/store.hh"
#include "util/log.hh"

using namespace strictmx;

namespace {

void usage(std::FILE* out) {
    std::fputs(
        "usage: strictmx-policyd [--config FILE] [--check-config] [--print-defaults]\n"
        "  --config FILE     read FILE (default: /etc/strictmx/strictmx.toml if it exists,\n"
        "                    else built-in defaults: socketmap on inet:127.0.0.1:8461)\n"
        "  --check-config    check the configuration, print the effective settings, exit\n"
        "  --print-defaults  print every setting with its default and meaning, exit\n"
        "  --state-dir DIR   state directory (overrides daemon.state_dir)\n"
        "  --allow-root      serve as root without daemon.user (as daemon.allow_root = true)\n",
        out);
}

void drop_privileges(const std::string& user) {
    if (user.empty()) return;
    passwd* pw = ::getpwnam(user.c_str());
    if (!pw) throw std::runtime_error("daemon.user: no such user " + user);
    if (::initgroups(pw->pw_name, pw->pw_gid) != 0) throw std::runtime_error("initgroups failed");
    if (::setgid(pw->pw_gid) != 0) throw std::runtime_error("setgid failed");
    if (::setuid(pw->pw_uid) != 0) throw std::runtime_error("setuid failed");
    if (::setuid(0) == 0) throw std::runtime_error("privileges could not be dropped");
}

// systemd Type=notify without libsystemd: one datagram to $NOTIFY_SOCKET.
void notify_ready() {
    const char* path = std::getenv("NOTIFY_SOCKET");
    if (!path || !*path) return;
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::size_t len = std::strlen(path);
    if (len >= sizeof sun.sun_path) return;
    std::memcpy(sun.sun_path, path, len);
    if (sun.sun_path[0] == '@') sun.sun_path[0] = '\0';
    int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    const char msg[] = "READY=1";
    ::sendto(fd, msg, sizeof msg - 1, 0, reinterpret_cast<sockaddr*>(&sun),
             static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len));
    ::close(fd);
}

// Every connection needs a descriptor, and the resolver, fetcher, cache and logs some more:
// raise the soft limit to what daemon.max_connections needs, or refuse with the reason.
void check_descriptors(const config::Config& cfg) {
    constexpr rlim_t kSpare = 64;
    rlim_t need = static_cast<rlim_t>(cfg.max_connections) + cfg.listen.size() + kSpare;
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return;
    if (rl.rlim_cur != RLIM_INFINITY && rl.rlim_cur >= need) return;
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < need)
        throw std::runtime_error(
            "daemon.max_connections = " + std::to_string(cfg.max_connections) + " needs " +
            std::to_string(need) + " file descriptors, the hard limit is " +
            std::to_string(rl.rlim_max) +
            " (raise LimitNOFILE= in the unit, or lower daemon.max_connections)");
    rl.rlim_cur = need;
    if (::setrlimit(RLIMIT_NOFILE, &rl) != 0)
        throw std::runtime_error(std::string("cannot raise the file descriptor limit: ") +
                                 std::strerror(errno));
}

// libevent's own warnings go through our log, with our format and priorities.
void on_libevent_log(int severity, const char* msg) {
    if (severity >= EVENT_LOG_ERR)
        log::error("libevent", {{"message", msg ? msg : ""}});
    else if (severity == EVENT_LOG_WARN)
        log::warn("libevent", {{"message", msg ? msg : ""}});
    else
        log::debug("libevent", {{"message", msg ? msg : ""}});
}

void on_signal(evutil_socket_t sig, short, void* arg) {
    log::info("stopping", {{"signal", std::to_string(sig)}});
    event_base_loopexit(static_cast<event_base*>(arg), nullptr);
}

// SIGHUP (systemctl reload): read the configuration file again. A file that does not parse
// or cannot work is refused with the reason and the running configuration stays; settings
// bound at start keep their values until a restart, and the log names them.
struct Reload {
    std::string file;
    std::string state_dir_flag;
    bool allow_root_flag = false;
    config::Config* cfg = nullptr;
    policy::Engine* engine = nullptr;
    policy::Service* service = nullptr;
};

void on_hup(evutil_socket_t, short, void* arg) {
    auto* r = static_cast<Reload*>(arg);
    if (r->file.empty()) {
        log::warn("SIGHUP: no configuration file to read again (started on built-in defaults)");
        return;
    }
    config::Config next;
    try {
        next = config::load(r->file);
        if (!r->state_dir_flag.empty()) next.state_dir = r->state_dir_flag;
        if (r->allow_root_flag) next.allow_root = true;
    } catch (const std::exception& e) {
        log::error("reload refused, the running configuration stays", {{"error", e.what()}});
        return;
    }
    if (auto problems = config::check_usable(next); !problems.empty()) {
        log::error("reload refused, the running configuration stays",
                   {{"error", problems.front()},
                    {"problems", std::to_string(problems.size())}});
        return;
    }
    // The control socket is one of the running listeners (see main()).
    next.listen.push_back(config::Listen{"control", "unix:" + config::control_path(next), "",
                                         next.control_socket_mode, "",
                                         next.control_socket_group});
    std::vector<std::string> restart;
    *r->cfg = config::reloaded(*r->cfg, next, restart);
    log::set_verbosity(r->cfg->verbosity);
    r->engine->set_options(policy::EngineOptions::from(*r->cfg));
    r->service->clear_rendered();
    std::string pending;
    for (const auto& k : restart) pending += (pending.empty() ? "" : ", ") + k;
    log::info("configuration reloaded", {{"file", r->file},
                                         {"overrides", std::to_string(r->cfg->overrides.size())},
                                         {"needs_restart", pending.empty() ? "none" : pending}});
    if (!pending.empty())
        log::warn("changed settings that take effect only after a restart (kept until then)",
                  {{"settings", pending}});
}

void on_tick(evutil_socket_t, short, void* arg) {
    try {
        static_cast<policy::Runtime*>(arg)->tick();
    } catch (const std::exception& e) {
        log::error("refresh tick failed", {{"error", e.what()}});
    }
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_file;
    std::string state_dir;
    bool check = false;
    bool allow_root = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if ((a == "--config" || a == "-c") && i + 1 < argc)
            config_file = argv[++i];
        else if (a == "--state-dir" && i + 1 < argc)
            state_dir = argv[++i];
        else if (a == "--check-config")
            check = true;
        else if (a == "--allow-root")
            allow_root = true;
        else if (a == "--print-defaults") {
            for (const auto& s : config::settings())
                std::printf("%s (%s)\n    default: %s\n    %s\n", s.name.c_str(), s.type.c_str(),
                            s.def.empty() ? "(empty)" : s.def.c_str(), s.description.c_str());
            return 0;
        } else if (a == "--help" || a == "-h") {
            usage(stdout);
            return 0;
        } else if (a == "--version") {
            std::puts("strictmx-policyd 0.1.0");
            return 0;
        } else {
            std::fprintf(stderr, "strictmx-policyd: unknown option or missing value: %s\n",
                         a.c_str());
            usage(stderr);
            return 2;
        }
    }
    if (config_file.empty() && ::access("/etc/strictmx/strictmx.toml", R_OK) == 0)
        config_file = "/etc/strictmx/strictmx.toml";

    config::Config cfg;
    try {
        cfg = config_file.empty() ? config::defaults() : config::load(config_file);
        if (config_file.empty()) cfg.log = "stderr";
        if (!state_dir.empty()) cfg.state_dir = state_dir;
        if (allow_root) cfg.allow_root = true;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "strictmx-policyd: %s\n", e.what());
        return 1;
    }
    if (auto problems = config::check_usable(cfg); !problems.empty()) {
        for (const auto& p : problems)
            std::fprintf(stderr, "strictmx-policyd: %s: %s\n",
                         config_file.empty() ? "built-in defaults" : config_file.c_str(),
                         p.c_str());
        return 1;
    }
    if (check) {
        std::fputs(config::dump(cfg).c_str(), stdout);
        std::fprintf(
            stderr, "strictmx-policyd: configuration OK%s\n",
            config_file.empty() ? " (built-in defaults)" : (" (" + config_file + ")").c_str());
        return 0;
    }
    log::init("strictmx-policyd", cfg.log == "syslog", cfg.verbosity);
    event_set_log_callback(&on_libevent_log);
    std::signal(SIGPIPE, SIG_IGN);
    curl_global_init(CURL_GLOBAL_DEFAULT);

    int rc = 0;
    try {
        check_descriptors(cfg);
        EventBasePtr base(event_base_new());
        if (!base) throw std::runtime_error("event_base_new failed");
        // Bind first (ports below 1024, sockets in root-owned directories), then drop
        // privileges, then open the cache and trust anchor as the service user.
        // The control socket (strictmx status, cache, query) is one more listener.
        std::vector<std::string> listener_names;
        for (const auto& l : cfg.listen) listener_names.push_back(l.type + " " + l.address);
        {
            std::error_code ec;
            std::filesystem::create_directories(
                std::filesystem::path(config::control_path(cfg)).parent_path(), ec);
        }
        cfg.listen.push_back(config::Listen{"control", "unix:" + config::control_path(cfg), "",
                                            cfg.control_socket_mode, "",
                                            cfg.control_socket_group});
        policyd::Server server(base.get(), cfg);
        server.bind_all();
        SystemClock clock;
        std::unique_ptr<tlsrpt::Collector> collector;
        if (!cfg.tlsrpt_socket.empty()) collector = std::make_unique<tlsrpt::Collector>(cfg, clock);
        drop_privileges(cfg.user);
        if (::geteuid() == 0) {
            // Everything from here on parses DNS and HTTPS data from the network.
            if (!cfg.allow_root)
                throw std::runtime_error(
                    "running as root with no daemon.user: set daemon.user to the service user "
                    "(the packages create _strictmx), or daemon.allow_root = true (or "
                    "--allow-root) where root is the only user, e.g. in a container");
            log::warn(
                "serving as root (daemon.allow_root): DNS and HTTPS data are parsed with "
                "full privileges; set daemon.user");
        }
        auto rt = policy::Runtime::create(base.get(), cfg, true);
        rt->prove_validation(cfg);
        std::size_t loaded = rt->engine->load();
        if (collector) collector->start();
        policy::Service service(*rt->engine);
        // TLSRPT outcomes the daemon records itself: Exim's events (the exim listener's
        // tlsrpt verb) and policy failures answered to MTAs that do not report them.
        std::unique_ptr<tlsrpt::OwnReporter> own;
        if (collector) {
            own = std::make_unique<tlsrpt::OwnReporter>(*rt->resolver, *collector);
            auto* reporter = own.get();
            auto* now_of = &rt->clock;
            service.set_tlsrpt_hooks(
                [reporter, now_of](const policy::Decision& d, const char* source) {
                    reporter->note_policy_failure();
                    tlsrpt::SessionEvent a;
                    a.domain = d.domain;
                    a.code = d.failure_code;
                    reporter->report(d, std::move(a), source, now_of->now());
                },
                [reporter, now_of](const policy::Decision& d, tlsrpt::SessionEvent a) {
                    reporter->report(d, std::move(a), "exim", now_of->now());
                });
        }
        policy::ControlInfo info;
        info.version = "0.1.0";
        info.started = rt->clock.now();
        info.listeners = listener_names;
        info.dnssec = policy::validation_name(rt->validation);
        tlsrpt::OwnReporter* own_ptr = own.get();
        store::SharedCache* shared_ptr = rt->shared.get();
        tlsrpt::Collector* collector_ptr = collector.get();
        policy::Engine* engine_ptr = rt->engine.get();
        info.extra = [own_ptr, shared_ptr, collector_ptr, engine_ptr, &cfg]() {
            nlohmann::json j;
            j["control_socket"] = config::control_path(cfg);
            if (shared_ptr) {
                auto st = shared_ptr->stats();
                const auto& es = engine_ptr->stats();
                j["fleet"] = {{"instance", shared_ptr->instance()},
                              {"dsn", shared_ptr->dsn_redacted()},
                              {"connected", st.connected},
                              {"listening", st.listening},
                              {"last_error", st.last_error},
                              {"claims", st.claims},
                              {"claims_fresh", st.fresh},
                              {"claims_lease", st.leases},
                              {"claims_busy", st.busy},
                              {"claims_unavailable", st.unavailable},
                              {"claims_timed_out", st.timeouts},
                              {"published", st.published},
                              {"publish_pending", st.publish_pending},
                              {"publish_errors", st.publish_errors},
                              {"publish_dropped", st.publish_dropped},
                              {"changes_seen", st.changes},
                              {"answers_from_shared", es.shared_answers},
                              {"rows_adopted", es.shared_adopted},
                              {"rows_refused", es.shared_refused},
                              {"waits", es.shared_waits},
                              {"waits_expired", es.shared_wait_expired}};
                if (collector_ptr) {
                    auto fs = collector_ptr->fleet_stats();
                    j["fleet"]["tlsrpt"] = {{"shipped_batches", fs.shipped_batches},
                                            {"shipped_sessions", fs.shipped_sessions},
                                            {"duplicate_batches", fs.duplicates},
                                            {"late_sessions", fs.late_sessions},
                                            {"outbox_rows", fs.outbox_rows},
                                            {"last_error", fs.last_error}};
                }
            } else {
                j["fleet"] = nullptr;
            }
            if (own_ptr) {
                const auto& st = own_ptr->stats();
                nlohmann::json counters = nlohmann::json::object();
                try {  // what the collector has written (its own read-only connection)
                    auto store = tlsrpt::Store::open(tlsrpt::db_path(cfg), true);
                    for (const auto& [k, v] : store->counters()) counters[k] = v;
                } catch (const std::exception& e) {
                    counters["error"] = e.what();
                }
                j["tlsrpt"] = {{"collector_socket", cfg.tlsrpt_socket},
                               {"store_counters", counters},
                               {"own_sessions_reported", st.reported},
                               {"own_sessions_without_record", st.no_record},
                               {"own_sessions_duplicate", st.duplicate},
                               {"own_sessions_dropped", st.dropped}};
            } else {
                j["tlsrpt"] = nullptr;
            }
            return j;
        };
        store::Store* store_ptr = rt->store.get();
        info.extra_metrics = [own_ptr, store_ptr, shared_ptr, collector_ptr, &cfg]() {
            std::string m =
                "# HELP strictmx_cache_persistent 1 when the cache is written to its file, 0 "
                "in memory only.\n# TYPE strictmx_cache_persistent gauge\n"
                "strictmx_cache_persistent " +
                std::string(store_ptr && store_ptr->persistent() ? "1" : "0") + "\n";
            if (shared_ptr) {
                auto st = shared_ptr->stats();
                m += "# HELP strictmx_fleet_connected 1 while the fleet database answers.\n"
                     "# TYPE strictmx_fleet_connected gauge\nstrictmx_fleet_connected " +
                     std::string(st.connected ? "1" : "0") + "\n";
                m += "# HELP strictmx_fleet_claims_total Misses and refreshes asked of the "
                     "shared cache, by outcome.\n# TYPE strictmx_fleet_claims_total counter\n";
                m += "strictmx_fleet_claims_total{outcome=\"fresh\"} " + std::to_string(st.fresh) + "\n";
                m += "strictmx_fleet_claims_total{outcome=\"lease\"} " + std::to_string(st.leases) + "\n";
                m += "strictmx_fleet_claims_total{outcome=\"busy\"} " + std::to_string(st.busy) + "\n";
                m += "strictmx_fleet_claims_total{outcome=\"unavailable\"} " +
                     std::to_string(st.unavailable) + "\n";
                m += "# HELP strictmx_fleet_publish_pending Cache rows waiting to be written to "
                     "the fleet database.\n# TYPE strictmx_fleet_publish_pending gauge\n"
                     "strictmx_fleet_publish_pending " + std::to_string(st.publish_pending) + "\n";
                m += "# HELP strictmx_fleet_publish_dropped_total Cache rows never written "
                     "(the queue was full).\n# TYPE strictmx_fleet_publish_dropped_total counter\n"
                     "strictmx_fleet_publish_dropped_total " + std::to_string(st.publish_dropped) + "\n";
                if (collector_ptr) {
                    auto fs = collector_ptr->fleet_stats();
                    m += "# HELP strictmx_fleet_tlsrpt_outbox_rows TLSRPT count rows not yet in "
                         "the fleet database.\n# TYPE strictmx_fleet_tlsrpt_outbox_rows gauge\n"
                         "strictmx_fleet_tlsrpt_outbox_rows " + std::to_string(fs.outbox_rows) + "\n";
                }
            }
            if (own_ptr) {  // the collector's counters, as written to its store
                try {
                    auto store = tlsrpt::Store::open(tlsrpt::db_path(cfg), true);
                    m += "# HELP strictmx_tlsrpt_collector TLSRPT collector counters as "
                         "written to its store (datagrams received, invalid by kind, dropped, "
                         "sessions by source).\n# TYPE strictmx_tlsrpt_collector counter\n";
                    for (const auto& [k, v] : store->counters()) {
                        std::string name;
                        for (char ch : k)
                            name += (std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_');
                        m += "strictmx_tlsrpt_collector{counter=\"" + name + "\"} " +
                             std::to_string(v) + "\n";
                    }
                } catch (const std::exception&) {
                }
            }
            {  // zeros without a [tlsrpt] collector
                const tlsrpt::OwnReporter::Stats st =
                    own_ptr ? own_ptr->stats() : tlsrpt::OwnReporter::Stats{};
                m += "# HELP strictmx_tlsrpt_own_sessions_total TLSRPT sessions the daemon "
                     "recorded itself (Exim events, its own policy failures), by outcome.\n"
                     "# TYPE strictmx_tlsrpt_own_sessions_total counter\n";
                m += "strictmx_tlsrpt_own_sessions_total{outcome=\"reported\"} " +
                     std::to_string(st.reported) + "\n";
                m += "strictmx_tlsrpt_own_sessions_total{outcome=\"no_record\"} " +
                     std::to_string(st.no_record) + "\n";
                m += "strictmx_tlsrpt_own_sessions_total{outcome=\"duplicate\"} " +
                     std::to_string(st.duplicate) + "\n";
                m += "strictmx_tlsrpt_own_sessions_total{outcome=\"dropped\"} " +
                     std::to_string(st.dropped) + "\n";
                m += "# HELP strictmx_tlsrpt_policy_failures_total Lookups from MTAs that do not report TLS (exim, profiles without -tlsrpt) answered from a "
                     "policy failure (sts-policy-fetch-error, sts-policy-invalid, "
                     "sts-webpki-invalid, dnssec-invalid).\n"
                     "# TYPE strictmx_tlsrpt_policy_failures_total counter\n"
                     "strictmx_tlsrpt_policy_failures_total " +
                     std::to_string(st.policy_failures) + "\n";
            }
            return m;
        };
        policy::Control control(*rt->engine, service, rt->clock, info);
        service.set_admin(
            [&control](std::string_view line, policy::Service::ReplyFn reply) {
                control.handle(line, std::move(reply));
            },
            [&control]() { return control.metrics(); });
        server.set_service(&service);
        server.start_accepting();

        EventPtr sigterm(evsignal_new(base.get(), SIGTERM, &on_signal, base.get()));
        EventPtr sigint(evsignal_new(base.get(), SIGINT, &on_signal, base.get()));
        evsignal_add(sigterm.get(), nullptr);
        evsignal_add(sigint.get(), nullptr);
        Reload reload{config_file, state_dir, allow_root, &cfg, rt->engine.get(), &service};
        EventPtr sighup(evsignal_new(base.get(), SIGHUP, &on_hup, &reload));
        evsignal_add(sighup.get(), nullptr);
        EventPtr tick(event_new(base.get(), -1, EV_PERSIST, &on_tick, rt.get()));
        timeval one{1, 0};
        evtimer_add(tick.get(), &one);

        log::info("ready", {{"cache", policy::cache_path(cfg)},
                            {"cached_domains", std::to_string(loaded)},
                            {"persistent", rt->store && rt->store->persistent() ? "yes" : "no"},
                            {"dnssec", policy::validation_name(rt->validation)}});
        notify_ready();
        event_base_dispatch(base.get());
        server.set_service(nullptr);
        if (collector) collector->stop();
    } catch (const std::exception& e) {
        log::error("fatal", {{"error", e.what()}});
        rc = 1;
    }
    curl_global_cleanup();
    return rc;
}
