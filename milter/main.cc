// SPDX-License-Identifier: MIT
// strictmx-milter: RFC 8689 REQUIRETLS and "TLS-Required: No" for Postfix (and Sendmail)
// through libmilter. Glue only: lib/milter/session.cc decides.
#include <grp.h>
#include <libmilter/mfapi.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "config/config.hh"
#include "milter/policy_client.hh"
#include "milter/session.hh"
#include "util/log.hh"

using namespace strictmx;

// libmilter accepts the MTA's connections itself and offers no hook for socket options. At
// the end of a message it writes each header change and then the verdict as separate small
// packets; with Nagle's algorithm each one after the first waits for the MTA's delayed ACK
// (about 40 ms on Linux), which cut Postfix's throughput for routed messages to a third over
// loopback TCP (docs/benchmarks.md). This definition takes precedence over libc's accept()
// for libmilter's listener (the executable comes first in symbol lookup) and turns Nagle off
// on TCP connections. Unix sockets are unaffected.
extern "C" int accept(int fd, sockaddr* addr, socklen_t* len) {
    int c = ::accept4(fd, addr, len, 0);
    if (c >= 0) {
        sockaddr_storage local{};
        socklen_t llen = sizeof local;
        if (::getsockname(c, reinterpret_cast<sockaddr*>(&local), &llen) == 0 &&
            (local.ss_family == AF_INET || local.ss_family == AF_INET6)) {
            int one = 1;
            ::setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        }
    }
    return c;
}

namespace {

// Read-only after start; PolicyClient and Counters are thread-safe.
milter::Settings* g_settings = nullptr;
milter::PolicyClient* g_client = nullptr;
milter::Counters g_counters;

// One SMTP session: the decisions, and which steps the MTA sends without waiting for a reply
// (negotiated in on_negotiate).
struct Conn {
    milter::Session session;
    unsigned long no_reply = 0;  // SMFIP_NR_* flags in effect
};

Conn* conn(SMFICTX* ctx) {
    auto* c = static_cast<Conn*>(smfi_getpriv(ctx));
    if (!c) {
        c = new (std::nothrow) Conn{milter::Session(
            *g_settings,
            [](std::string_view domain) { return g_client->lookup("requiretls", domain); },
            &g_counters)};
        if (c) smfi_setpriv(ctx, c);
    }
    return c;
}

milter::Session* session(SMFICTX* ctx) {
    Conn* c = conn(ctx);
    return c ? &c->session : nullptr;
}

// A step negotiated as "no reply" must answer SMFIS_NOREPLY.
sfsistat next(SMFICTX* ctx, unsigned long nr_flag) {
    Conn* c = static_cast<Conn*>(smfi_getpriv(ctx));
    return c && (c->no_reply & nr_flag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

std::string_view macro(SMFICTX* ctx, const char* name) {
    const char* v = smfi_getsymval(ctx, const_cast<char*>(name));
    return v ? std::string_view(v) : std::string_view{};
}

sfsistat answer(SMFICTX* ctx, const milter::Session::Reply& r) {
    using K = milter::Session::Reply::Kind;
    if (r.kind == K::Continue) return SMFIS_CONTINUE;
    // smfi_setreply treats '%' specially and refuses CR/LF: the text is already plain ASCII.
    if (smfi_setreply(ctx, const_cast<char*>(r.rcode.c_str()), const_cast<char*>(r.xcode.c_str()),
                      const_cast<char*>(r.text.c_str())) != MI_SUCCESS)
        log::warn("smfi_setreply refused a reply", {{"reply", r.text}});
    return r.kind == K::Reject ? SMFIS_REJECT : SMFIS_TEMPFAIL;
}

// A session object could not be allocated: defer rather than pass mail unjudged.
sfsistat no_memory() {
    return SMFIS_TEMPFAIL;
}

// Every header is a round trip unless the MTA may send it without waiting: the milter only
// reads headers, connect and HELO, so those go without replies (milter protocol 6; Postfix
// >= 2.6), and the body, DATA and unknown commands are not sent at all. Steps stay enabled
// (a client such as miltertest may send them), only their replies go.
sfsistat on_negotiate(SMFICTX* ctx, unsigned long f0, unsigned long f1, unsigned long,
                      unsigned long, unsigned long* pf0, unsigned long* pf1, unsigned long* pf2,
                      unsigned long* pf3) {
    constexpr unsigned long kActions = SMFIF_ADDHDRS | SMFIF_CHGHDRS;
    if ((f0 & kActions) != kActions) {
        log::error("the MTA does not offer adding and changing headers; refusing to run");
        return SMFIS_REJECT;
    }
    constexpr unsigned long kNoReply = SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_HDR | SMFIP_NR_EOH;
    constexpr unsigned long kSkip = SMFIP_NOBODY | SMFIP_NOUNKNOWN | SMFIP_NODATA;
    *pf0 = kActions;
    *pf1 = f1 & (kNoReply | kSkip);
    *pf2 = 0;
    *pf3 = 0;
    if (Conn* c = conn(ctx)) c->no_reply = *pf1 & kNoReply;
    return SMFIS_CONTINUE;
}

sfsistat on_connect(SMFICTX* ctx, char*, _SOCK_ADDR*) {
    conn(ctx);  // allocated here when possible; MAIL FROM defers if it never was
    return next(ctx, SMFIP_NR_CONN);
}

sfsistat on_helo(SMFICTX* ctx, char*) {
    if (auto* s = session(ctx)) s->helo(macro(ctx, "{tls_version}"));
    return next(ctx, SMFIP_NR_HELO);
}

sfsistat on_envfrom(SMFICTX* ctx, char** argv) {
    auto* s = session(ctx);
    if (!s) return no_memory();
    std::vector<std::string_view> params;
    for (int i = 1; argv[i]; ++i) params.emplace_back(argv[i]);
    const char* tv = smfi_getsymval(ctx, const_cast<char*>("{tls_version}"));
    std::optional<std::string_view> tls;
    if (tv) tls = std::string_view(tv);
    return answer(ctx, s->mail(argv[0] ? argv[0] : "", params, tls));
}

sfsistat on_envrcpt(SMFICTX* ctx, char** argv) {
    auto* s = session(ctx);
    if (!s) return no_memory();
    return answer(ctx, s->rcpt(argv[0] ? argv[0] : "", macro(ctx, "{rcpt_mailer}"),
                               macro(ctx, "i")));
}

sfsistat on_header(SMFICTX* ctx, char* name, char* value) {
    // Without a session MAIL FROM has already deferred the message.
    if (auto* s = session(ctx)) s->header(name ? name : "", value ? value : "");
    return next(ctx, SMFIP_NR_HDR);
}

sfsistat on_eoh(SMFICTX* ctx) {
    return next(ctx, SMFIP_NR_EOH);
}

sfsistat on_eom(SMFICTX* ctx) {
    auto* s = session(ctx);
    if (!s) return no_memory();
    milter::Session::Changes c = s->end_of_message(macro(ctx, "i"));
    std::string& name = g_settings->route_header;
    // Copies the client sent go first, from the last one down (indexes shift otherwise).
    for (int i = c.delete_route_headers; i >= 1; --i) {
        if (smfi_chgheader(ctx, name.data(), i, nullptr) != MI_SUCCESS) {
            log::error("could not remove a client-supplied route header; deferring the message",
                       {{"queue_id", macro(ctx, "i")}, {"header", name}});
            return SMFIS_TEMPFAIL;
        }
    }
    if (!c.add_route.empty() &&
        smfi_addheader(ctx, name.data(), c.add_route.data()) != MI_SUCCESS) {
        log::error("could not add the route header; deferring the message",
                   {{"queue_id", macro(ctx, "i")}, {"route", c.add_route}});
        return SMFIS_TEMPFAIL;
    }
    return SMFIS_CONTINUE;
}

sfsistat on_abort(SMFICTX* ctx) {
    if (auto* c = static_cast<Conn*>(smfi_getpriv(ctx))) c->session.reset_message();
    return SMFIS_CONTINUE;
}

sfsistat on_close(SMFICTX* ctx) {
    delete static_cast<Conn*>(smfi_getpriv(ctx));
    smfi_setpriv(ctx, nullptr);
    return SMFIS_CONTINUE;
}

// Postfix's "inet:HOST:PORT" / "unix:PATH" in libmilter's notation ("inet:PORT@HOST",
// "inet6:PORT@HOST", "unix:PATH").
std::string libmilter_address(const std::string& a) {
    if (a.starts_with("unix:")) return a;
    std::string hp = a.substr(5);
    std::size_t colon = hp.rfind(':');
    std::string host = hp.substr(0, colon), port = hp.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        return "inet6:" + port + "@" + host.substr(1, host.size() - 2);
    return "inet:" + port + "@" + host;
}

void usage(std::FILE* out) {
    std::fputs(
        "usage: strictmx-milter [--config FILE] [--check-config]\n"
        "  --config FILE     read FILE (default: /etc/strictmx/strictmx.toml if it exists,\n"
        "                    else built-in defaults: milter on inet:127.0.0.1:8465)\n"
        "  --check-config    check the [milter] settings, print them, exit\n"
        "  --version         print the version, exit\n",
        out);
}

}  // namespace

int main(int argc, char** argv) {
    std::string config_file;
    bool check = false;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        if ((a == "--config" || a == "-c") && i + 1 < argc) {
            config_file = argv[++i];
        } else if (a == "--check-config") {
            check = true;
        } else if (a == "--version") {
            std::puts("strictmx-milter 0.1.0");
            return 0;
        } else if (a == "--help" || a == "-h") {
            usage(stdout);
            return 0;
        } else {
            std::fprintf(stderr, "strictmx-milter: unknown option or missing value: %s\n",
                         a.c_str());
            usage(stderr);
            return 2;
        }
    }
    if (config_file.empty() && ::access("/etc/strictmx/strictmx.toml", R_OK) == 0)
        config_file = "/etc/strictmx/strictmx.toml";
    config::Config cfg;
    milter::Settings settings;
    std::unique_ptr<milter::PolicyClient> client;
    try {
        cfg = config_file.empty() ? config::defaults() : config::load(config_file);
        if (config_file.empty()) cfg.log = "stderr";
        settings.route_header = cfg.milter_route_header;
        settings.route_relaxed = cfg.milter_tls_required_no == "route";
        settings.senders = milter::SenderRules(cfg.milter_require_tls_senders);
        settings.local_transports = cfg.milter_local_transports;
        client = std::make_unique<milter::PolicyClient>(cfg.milter_policy_server,
                                                        cfg.milter_lookup_timeout_ms);
        if (cfg.milter_listen.starts_with("unix:") && !cfg.milter_socket_group.empty() &&
            !::getgrnam(cfg.milter_socket_group.c_str()))
            throw std::runtime_error("milter.socket_group: no such group " +
                                     cfg.milter_socket_group);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "strictmx-milter: %s\n", e.what());
        return 1;
    }
    if (check) {
        std::string dump = config::dump(cfg);
        std::size_t at = dump.find("[milter]");
        std::fputs(at == std::string::npos ? dump.c_str() : dump.substr(at).c_str(), stdout);
        std::fprintf(stderr, "strictmx-milter: configuration OK%s\n",
                     config_file.empty() ? " (built-in defaults)"
                                         : (" (" + config_file + ")").c_str());
        return 0;
    }
    log::init("strictmx-milter", cfg.log == "syslog", cfg.verbosity);
    g_settings = &settings;
    g_client = client.get();

    smfiDesc desc{};
    desc.xxfi_name = const_cast<char*>("strictmx-milter");
    desc.xxfi_version = SMFI_VERSION;
    desc.xxfi_flags = SMFIF_ADDHDRS | SMFIF_CHGHDRS;
    desc.xxfi_connect = on_connect;
    desc.xxfi_helo = on_helo;
    desc.xxfi_envfrom = on_envfrom;
    desc.xxfi_envrcpt = on_envrcpt;
    desc.xxfi_header = on_header;
    desc.xxfi_eoh = on_eoh;
    desc.xxfi_eom = on_eom;
    desc.xxfi_abort = on_abort;
    desc.xxfi_close = on_close;
    desc.xxfi_negotiate = on_negotiate;

    std::string spec = libmilter_address(cfg.milter_listen);
    if (smfi_setconn(spec.data()) != MI_SUCCESS || smfi_register(desc) != MI_SUCCESS) {
        log::error("cannot set up libmilter", {{"listen", cfg.milter_listen}});
        return 1;
    }
    smfi_settimeout(300);
    smfi_setbacklog(256);
    // Unix sockets: a stale file from an earlier run is removed, then mode and group are set
    // before Postfix can connect.
    mode_t old_mask = ::umask(0177);
    int opened = smfi_opensocket(true);
    ::umask(old_mask);
    if (opened != MI_SUCCESS) {
        log::error("cannot listen", {{"listen", cfg.milter_listen}});
        std::fprintf(stderr, "strictmx-milter: cannot listen on %s\n", cfg.milter_listen.c_str());
        return 1;
    }
    if (cfg.milter_listen.starts_with("unix:")) {
        std::string path = cfg.milter_listen.substr(5);
        if (!cfg.milter_socket_group.empty()) {
            group* g = ::getgrnam(cfg.milter_socket_group.c_str());
            if (!g || ::chown(path.c_str(), static_cast<uid_t>(-1), g->gr_gid) != 0) {
                log::error("cannot set the milter socket's group",
                           {{"path", path}, {"group", cfg.milter_socket_group},
                            {"error", std::strerror(errno)}});
                return 1;
            }
        }
        auto mode = static_cast<mode_t>(std::strtol(cfg.milter_socket_mode.c_str(), nullptr, 8));
        if (::chmod(path.c_str(), mode) != 0) {
            log::error("cannot set the milter socket's mode",
                       {{"path", path}, {"error", std::strerror(errno)}});
            return 1;
        }
    }
    log::info("started", {{"listen", cfg.milter_listen},
                          {"policy_server", cfg.milter_policy_server},
                          {"route_header", cfg.milter_route_header},
                          {"tls_required_no", cfg.milter_tls_required_no},
                          {"require_tls_senders",
                           std::to_string(cfg.milter_require_tls_senders.size())}});
    int rc = smfi_main();
    log::info("stopped", {{"messages", std::to_string(g_counters.messages.load())},
                          {"requiretls", std::to_string(g_counters.requiretls.load())},
                          {"relaxed", std::to_string(g_counters.relaxed.load())},
                          {"rcpt_rejected", std::to_string(g_counters.rcpt_rejected.load())},
                          {"rcpt_tempfailed", std::to_string(g_counters.rcpt_tempfailed.load())},
                          {"mail_rejected", std::to_string(g_counters.mail_rejected.load())},
                          {"route_headers_removed",
                           std::to_string(g_counters.forged_headers_removed.load())}});
    return rc == MI_SUCCESS ? 0 : 1;
}
