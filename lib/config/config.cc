// SPDX-License-Identifier: MIT
// strictmx.toml parser, driven by one table of settings.
#include "config/config.hh"

#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <toml++/toml.h>
#include <unbound.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <stdexcept>

#include "dns/name.hh"
#include "milter/rules.hh"
#include "policy/decision.hh"
#include "util/strings.hh"

namespace strictmx::config {
namespace {

struct Setting {
    SettingDoc doc;
    std::function<void(Config&, const toml::node&, const std::string&)> set;
    std::function<std::string(const Config&)> show;
};

[[noreturn]] void fail(const std::string& where, const std::string& what) {
    throw std::runtime_error(where + ": " + what);
}

std::string quote(const std::string& s) {
    // A TOML basic string: quotes, backslashes and control bytes escaped (parse() refuses
    // control bytes in settings, but the dump must be valid TOML whatever it is given).
    std::string out = "\"";
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c == 0x7f) {
            char buf[8];
            std::snprintf(buf, sizeof buf, "\\u%04x", c);
            out += buf;
        } else {
            out += static_cast<char>(c);
        }
    }
    return out + "\"";
}

std::string get_string(const toml::node& n, const std::string& where) {
    auto v = n.value<std::string>();
    if (!n.is_string() || !v) fail(where, "expected a string");
    // Paths, names, addresses: a control byte in one is a mistake or an attack, never meant.
    for (unsigned char ch : *v)
        if (ch < 0x20 || ch == 0x7f) fail(where, "contains a control byte");
    return *v;
}

int get_int(const toml::node& n, const std::string& where, long long lo, long long hi) {
    if (!n.is_integer()) fail(where, "expected an integer");
    long long v = *n.value<long long>();
    if (v < lo || v > hi)
        fail(where, "must be between " + std::to_string(lo) + " and " + std::to_string(hi));
    return static_cast<int>(v);
}

bool get_bool(const toml::node& n, const std::string& where) {
    if (!n.is_boolean()) fail(where, "expected true or false");
    return *n.value<bool>();
}

std::vector<std::string> get_strings(const toml::node& n, const std::string& where) {
    const toml::array* a = n.as_array();
    if (!a) fail(where, "expected an array of strings");
    std::vector<std::string> out;
    for (const auto& e : *a) out.push_back(get_string(e, where));
    return out;
}

std::string show_strings(const std::vector<std::string>& v) {
    std::string out = "[";
    for (std::size_t i = 0; i < v.size(); ++i) out += (i ? ", " : "") + quote(v[i]);
    return out + "]";
}

OnFailure get_on_failure(const toml::node& n, const std::string& where) {
    std::string s = get_string(n, where);
    if (s == "tempfail") return OnFailure::Tempfail;
    if (s == "notfound") return OnFailure::NotFound;
    fail(where, "expected \"tempfail\" or \"notfound\"");
}
std::string show_on_failure(OnFailure f) {
    return f == OnFailure::Tempfail ? "\"tempfail\"" : "\"notfound\"";
}

#define STR(section, key, field, desc)                                 \
    Setting {                                                          \
        {section "." key, "string", "", desc},                         \
            [](Config& c, const toml::node& n, const std::string& w) { \
                c.field = get_string(n, w);                            \
            },                                                         \
            [](const Config& c) { return quote(c.field); }             \
    }
#define INT(section, key, field, lo, hi, desc)                         \
    Setting {                                                          \
        {section "." key, "integer", "", desc},                        \
            [](Config& c, const toml::node& n, const std::string& w) { \
                c.field = get_int(n, w, lo, hi);                       \
            },                                                         \
            [](const Config& c) { return std::to_string(c.field); }    \
    }
#define BOOL(section, key, field, desc)                                             \
    Setting {                                                                       \
        {section "." key, "boolean", "", desc},                                     \
            [](Config& c, const toml::node& n, const std::string& w) {              \
                c.field = get_bool(n, w);                                           \
            },                                                                      \
            [](const Config& c) { return std::string(c.field ? "true" : "false"); } \
    }
#define STRS(section, key, field, desc)                                \
    Setting {                                                          \
        {section "." key, "array of strings", "", desc},               \
            [](Config& c, const toml::node& n, const std::string& w) { \
                c.field = get_strings(n, w);                           \
            },                                                         \
            [](const Config& c) { return show_strings(c.field); }      \
    }
#define FAILURE(key, field, desc)                                            \
    Setting {                                                                \
        {"policy.on_failure." key, "\"tempfail\" | \"notfound\"", "", desc}, \
            [](Config& c, const toml::node& n, const std::string& w) {       \
                c.field = get_on_failure(n, w);                              \
            },                                                               \
            [](const Config& c) { return show_on_failure(c.field); }         \
    }

const std::vector<Setting>& table() {
    static const std::vector<Setting> t = [] {
        std::vector<Setting> v = {
            STR("daemon", "log", log,
                "Where log lines go: \"syslog\" (facility mail) or \"stderr\"."),
            INT("daemon", "verbosity", verbosity, 0, 3,
                "0 errors only, 1 adds warnings, 2 adds one line per decision, 3 adds DNS and "
                "HTTPS detail."),
            STR("daemon", "user", user,
                "Drop privileges to this user (and its group) after binding the listeners. Empty: "
                "keep the current user; as root the daemon then refuses to start unless "
                "daemon.allow_root is set."),
            BOOL("daemon", "allow_root", allow_root,
                 "Serve as root when daemon.user is empty (a container whose only user is "
                 "root). DNS and HTTPS data are then parsed with full privileges; a warning "
                 "says so at every start."),
            STR("daemon", "state_dir", state_dir,
                "Directory for the cache and the root trust anchor."),
            INT("daemon", "max_connections", max_connections, 1, 1'000'000,
                "Client connections served at once; further connections wait in the listen queue."),
            INT("daemon", "max_connections_per_user", max_connections_per_user, 1, 1'000'000,
                "Connections one local user may hold on the unix socket listeners (the peer's "
                "uid from SO_PEERCRED): another user cannot take the slots Postfix needs."),
            INT("daemon", "idle_timeout_s", idle_timeout_s, 1, 86'400,
                "Close a client connection idle this long. Postfix's socketmap and tcp_table "
                "clients close their own after 10 s idle, so they normally go first."),
            INT("daemon", "max_lifetime_s", max_lifetime_s, 1, 86'400,
                "Close a client connection this long after it was opened, once its request in "
                "progress is answered (Postfix's clients reconnect after 100 s anyway)."),
            STR("resolver", "unbound_config", unbound_config,
                "A libunbound configuration file read with ub_ctx_config (forwarders, trust "
                "anchors, local zones). Empty: full recursion from the root."),
            STRS("resolver", "forwarders", forwarders,
                 "Forward queries to these resolvers (\"IP\" or \"IP@PORT\"); they must pass "
                 "DNSSEC records through."),
            STR("resolver", "trust_anchor_file", trust_anchor_file,
                "Root trust anchor kept current by RFC 5011 (ub_ctx_add_ta_autr). Default: "
                "STATE_DIR/root.key, seeded from /usr/share/dns/root.key."),
            INT("resolver", "timeout_ms", resolver_timeout_ms, 100, 60'000,
                "Give up on one DNS query after this long."),
            BOOL("resolver", "dnssec", dnssec,
                 "Validate DNSSEC. At start the daemon proves that validation works (the DNSKEY "
                 "RRset of resolver.dnssec_probe must validate as secure) and refuses to start "
                 "when it does not. false: DANE is off, explicitly: every answer counts as "
                 "unsigned, and the log and strictmx query say dnssec=off."),
            STR("resolver", "dnssec_probe", dnssec_probe,
                "The zone whose DNSKEY RRset proves validation at start. Empty: the zone of the "
                "configured trust anchor (resolver.trust_anchor_file, or the first "
                "trust-anchor, trust-anchor-file or auto-trust-anchor-file in "
                "resolver.unbound_config). No trust anchor at all: the daemon refuses to start."),
            INT("resolver", "max_outstanding", resolver_max_outstanding, 10, 1'000'000,
                "DNS queries in the resolver at once, counting those already answered "
                "\"timeout\" that libunbound is still retrying; past it a query fails at once "
                "(TEMP). Bounds the resolver's memory when DNS is slow or unreachable (about 10 "
                "KiB a query)."),
            STR("https", "ca_file", ca_file,
                "CA bundle for policy hosts. Empty: the system bundle."),
            STRS("https", "connect_to", connect_to,
                 "curl CONNECT_TO entries HOST:PORT:CONNECT_HOST:CONNECT_PORT: reach a policy host "
                 "at another address without changing the URL or the name checked."),
            STR("https", "proxy", proxy,
                "HTTPS proxy URL. Empty: no proxy, whatever the environment says."),
            INT("https", "timeout_ms", https_timeout_ms, 100, 120'000,
                "Whole policy fetch deadline."),
            INT("https", "connect_timeout_ms", https_connect_timeout_ms, 100, 120'000,
                "TCP and TLS connect deadline."),
            STR("cache", "path", cache_path, "SQLite cache file. Default: STATE_DIR/cache.db."),
            BOOL("cache", "memory_only", cache_memory_only,
                 "Keep the cache in memory only, on purpose: policies are forgotten at every "
                 "restart (the trust-on-first-use gap RFC 8461 section 10 warns of). Without "
                 "it a cache file that cannot be opened for writing stops the daemon at start."),
            INT("cache", "negative_ttl", negative_ttl, 60, 86'400,
                "How long a domain without a policy is remembered (seconds)."),
            INT("cache", "fetch_failure_ttl", fetch_failure_ttl, 10, 86'400,
                "How long a domain whose policy could not be fetched or read, with nothing cached, "
                "is remembered as having none."),
            INT("cache", "refresh_interval", refresh_interval, 60, 604'800,
                "Look at a cached policy's TXT record this often (with 10% jitter) and refetch "
                "when its id changed or half its max_age has passed."),
            INT("cache", "refresh_backoff", refresh_backoff, 1, 86'400,
                "First retry delay after a failed refresh; doubles per failure up to "
                "refresh_interval."),
            INT("cache", "max_refreshes", max_refreshes, 1, 10'000,
                "Background refreshes in flight at once."),
            INT("cache", "dns_min_ttl", dns_min_ttl, 0, 86'400,
                "DANE results and MX sets are kept at least this long, whatever their DNS TTL "
                "(seconds)."),
            INT("cache", "dns_max_ttl", dns_max_ttl, 60, 604'800,
                "DANE results and MX sets are kept at most this long; they are resolved again at "
                "3/4 of their lifetime."),
            INT("cache", "failure_ttl", failure_ttl, 1, 3600,
                "A DNS failure on the DANE path (TEMP) is remembered this long before the next "
                "try."),
            INT("cache", "idle_ttl", idle_ttl, 3600, 31'622'400,
                "A domain not looked up for this long is no longer refreshed and is evicted "
                "(seconds); its policy is fetched afresh when it is next needed."),
            INT("cache", "max_entries", max_entries, 100, 50'000'000,
                "Domains kept in the cache at most; past it the least recently looked-up entry "
                "is evicted (about 350 bytes of memory each)."),
            INT("cache", "dane_history_ttl", dane_history_ttl, 3600, 31'622'400,
                "How long \"this domain had DANE\" is remembered after DANE was last seen, "
                "independent of DNS TTLs, evictions and cache rebuilds: while it is, "
                "policy.on_failure never relaxes a failure of that domain."),
            INT("policy", "lookup_deadline_ms", lookup_deadline_ms, 100, 90'000,
                "A lookup with nothing cached waits this long for its resolution, then answers "
                "TEMP (the mail is deferred and retried; the resolution goes on and is cached)."),
            INT("policy", "max_resolutions", max_resolutions, 1, 100'000,
                "Cold lookups resolving at once; past it a lookup of a domain with nothing cached "
                "answers TEMP "
                "(a flood of lookups for random domains cannot exhaust memory or the resolver)."),
            INT("policy", "max_resolutions_per_domain", max_resolutions_per_domain, 1, 100'000,
                "Cold lookups resolving at once under one registered domain (public suffix list): "
                "a slow or hostile zone cannot take every slot of policy.max_resolutions."),
            STR("tlsrpt", "socket", tlsrpt_socket,
                "The libtlsrpt datagram socket the daemon creates and reads TLS outcomes from "
                "(Postfix >= 3.10: smtp_tlsrpt_socket_name, resolved inside Postfix's chroot). "
                "Empty: no collector."),
            STR("tlsrpt", "socket_mode", tlsrpt_socket_mode,
                "Permission bits of tlsrpt.socket (octal). Postfix's smtp processes need write "
                "permission: give the socket group postfix (tlsrpt.socket_group)."),
            STR("tlsrpt", "socket_group", tlsrpt_socket_group,
                "Group of tlsrpt.socket. Empty: the daemon's group."),
            STR("tlsrpt", "db", tlsrpt_db,
                "SQLite store of TLS outcomes, reports and deliveries. Default: "
                "STATE_DIR/tlsrpt.db."),
            STR("tlsrpt", "spool_dir", tlsrpt_spool_dir,
                "Reports waiting for another delivery attempt. Default: STATE_DIR/tlsrpt-spool."),
            STR("tlsrpt", "organization_name", tlsrpt_organization_name,
                "organization-name of the reports (RFC 8460 section 4.3)."),
            STR("tlsrpt", "contact_info", tlsrpt_contact_info,
                "contact-info of the reports, an e-mail address; its domain is the submitter "
                "(TLS-Report-Submitter, report file names)."),
            STR("tlsrpt", "sender_address", tlsrpt_sender_address,
                "From: address of report mail."),
            STR("tlsrpt", "sendmail", tlsrpt_sendmail,
                "Command that takes a report mail on standard input (split on blanks, no shell; "
                "exit 0 = accepted). Without -t the recipient is added as the last argument."),
            STR("tlsrpt", "https_ca_file", tlsrpt_https_ca_file,
                "CA bundle for https: report destinations. Empty: the system bundle."),
            INT("tlsrpt", "retention_days", tlsrpt_retention_days, 2, 366,
                "Outcomes, reports and finished deliveries are kept this many days."),
            INT("tlsrpt", "max_delay_s", tlsrpt_max_delay_s, 0, 86'400,
                "Reports about a day are sent after it ends, each at a random time within this "
                "many seconds (RFC 8460 section 4.1), by strictmx tlsrpt run."),
            INT("tlsrpt", "retry_for_s", tlsrpt_retry_for_s, 600, 7 * 86'400,
                "A failed delivery is retried with backoff for this long, then given up."),
            INT("tlsrpt", "receive_buffer", tlsrpt_receive_buffer, 65'536, 1 << 30,
                "Receive buffer of the datagram socket in bytes (SO_RCVBUF, as root "
                "SO_RCVBUFFORCE): absorbs bursts while outcomes are written."),
            INT("tlsrpt", "commit_interval_ms", tlsrpt_commit_interval_ms, 10, 60'000,
                "Outcomes are aggregated in memory and written in one transaction this often."),
            STR("store", "backend", store_backend,
                "Where the policy cache and the TLSRPT counts live: \"sqlite\" (this host only: "
                "cache.path, tlsrpt.db) or \"postgresql\" (fleet mode: every instance on one "
                "database shares one cache and one TLSRPT store; each keeps its SQLite files as "
                "its own copy and outbox). See FLEET MODE."),
            STR("store", "dsn", store_dsn,
                "libpq connection string or URI of the fleet database, e.g. \"host=db1 "
                "dbname=strictmx user=strictmx\" (a password belongs in ~/.pgpass or "
                "PGPASSFILE, not here)."),
            INT("store", "pool", store_pool, 1, 64,
                "Database connections for cache reads and writes (worker threads); one more "
                "listens for other instances' changes."),
            STR("store", "instance", store_instance,
                "This instance's name in leases, notifications and TLSRPT claims (letters, "
                "digits, '.', '-', '_'). Empty: the host name."),
            INT("store", "lease_s", store_lease_s, 5, 3600,
                "One instance resolves a domain at a time: its lease ends after this long even "
                "if it dies holding it."),
            INT("store", "lease_wait_ms", store_lease_wait_ms, 100, 60'000,
                "A lookup waits this long for the instance holding the lease, then resolves "
                "itself. Keep it below the MTA's lookup deadline."),
            INT("store", "timeout_ms", store_timeout_ms, 50, 60'000,
                "A miss waits this long for the database's answer, then resolves alone."),
            INT("store", "tlsrpt_ship_interval_ms", store_tlsrpt_ship_interval_ms, 100, 3'600'000,
                "TLSRPT counts are written from the local outbox to the database this often."),
            INT("store", "tlsrpt_outbox_max_rows", store_tlsrpt_outbox_max_rows, 1000,
                100'000'000,
                "Count rows kept in the local outbox while the database is away; past it new "
                "counts are kept locally only (and counted as tlsrpt_unshipped)."),
            STR("control", "socket", control_socket,
                "The control socket (unix) that strictmx status, cache and query talk to. "
                "Default: STATE_DIR/control.sock."),
            STR("control", "socket_mode", control_socket_mode,
                "Permission bits of the control socket (octal): whoever may connect may "
                "flush the cache."),
            STR("control", "socket_group", control_socket_group,
                "Group of the control socket. Empty: the daemon's group."),
            STR("milter", "listen", milter_listen,
                "Where strictmx-milter listens for Postfix: inet:IP:PORT or unix:PATH (Postfix's "
                "smtpd runs chrooted in /var/spool/postfix: put the socket below it)."),
            STR("milter", "socket_mode", milter_socket_mode,
                "Permission bits of a unix milter.listen socket (octal); user postfix must be able "
                "to connect."),
            STR("milter", "socket_group", milter_socket_group,
                "Group of a unix milter.listen socket. Empty: the milter's group."),
            STR("milter", "policy_server", milter_policy_server,
                "strictmx-policyd's socketmap listener (inet:IP:PORT or unix:PATH), asked with "
                "map name requiretls for each recipient of a message that requires TLS."),
            STR("milter", "route_header", milter_route_header,
                "Header field the milter adds (requiretls | relaxed) for milter_header_checks to "
                "route on; every copy the client sent is removed."),
            STR("milter", "tls_required_no", milter_tls_required_no,
                "\"route\": a message with \"TLS-Required: No\" gets route_header: relaxed; "
                "\"ignore\": leave the header to Postfix >= 3.10, which honours it itself."),
            STRS("milter", "require_tls_senders", milter_require_tls_senders,
                 "Envelope senders whose mail always requires TLS, as if sent with REQUIRETLS: "
                 "\"user@domain\" or \"@domain\" (that domain only), case-insensitive."),
            STRS("milter", "local_transports", milter_local_transports,
                 "Postfix transports ({rcpt_mailer}) that deliver on this host: their "
                 "recipients need no TLS hop and are accepted without a policy lookup."),
            INT("milter", "lookup_timeout_ms", milter_lookup_timeout_ms, 50, 60'000,
                "Deadline of one policy lookup; past it the recipient is rejected temporarily "
                "(451 4.4.3), never accepted."),
            FAILURE("dns_timeout", dns_timeout,
                    "Answer when a DNS query needed for a decision times out."),
            FAILURE("dns_servfail", dns_servfail,
                    "Answer when a DNS query needed for a decision fails (SERVFAIL, REFUSED)."),
            FAILURE("dnssec_bogus", dnssec_bogus,
                    "Answer when a DNSSEC-signed answer fails validation."),
        };
        return v;
    }();
    return t;
}

// Why `address` is not inet:IP:PORT, inet:[V6]:PORT or unix:PATH ("" when it is one).
std::string address_problem(const std::string& address) {
    if (address.starts_with("inet:")) {
        std::string hp = address.substr(5);
        std::size_t colon = hp.rfind(':');
        std::string host = colon == std::string::npos ? "" : hp.substr(0, colon);
        std::string port = colon == std::string::npos ? "" : hp.substr(colon + 1);
        if (host.size() > 2 && host.front() == '[' && host.back() == ']')
            host = host.substr(1, host.size() - 2);
        bool port_ok = !port.empty() && port.size() <= 5 &&
                       port.find_first_not_of("0123456789") == std::string::npos &&
                       std::stoi(port) > 0 && std::stoi(port) < 65536;
        if (!port_ok || !dns::is_ip_literal(host))
            return "address must be inet:IP:PORT (e.g. inet:127.0.0.1:8461 or inet:[::1]:8461): " +
                   address;
        return {};
    }
    if (address.starts_with("unix:")) {
        if (address.size() == 5) return "unix: needs a socket path";
        if (address.size() - 5 >= sizeof(sockaddr_un::sun_path))
            return "unix socket path longer than " +
                   std::to_string(sizeof(sockaddr_un::sun_path) - 1) + " bytes: " +
                   address.substr(5);
        if (address[5] != '/') return "unix socket path must be absolute: " + address.substr(5);
        return {};
    }
    return "address must be inet:IP:PORT or unix:PATH";
}

void check_listen(const Listen& l, const std::string& where) {
    if (l.type != "socketmap" && l.type != "tcp_table" && l.type != "exim" && l.type != "metrics")
        fail(where, "type must be \"socketmap\", \"tcp_table\", \"exim\" or \"metrics\"");
    if (auto why = address_problem(l.address); !why.empty()) fail(where, why);
    if (!l.profile.empty() && l.type == "metrics")
        fail(where, "metrics listeners take no profile");
    if (!l.profile.empty() && l.type == "socketmap")
        fail(where,
             "socketmap listeners take the profile from the map name; profile applies to tcp_table "
             "and exim");
    if (!l.profile.empty() && !policy::find_profile(l.profile))
        fail(where,
             "unknown profile " + l.profile + " (" + policy::profile_names() + ")");
    if (!l.owner.empty() && !::getpwnam(l.owner.c_str())) fail(where, "no such user " + l.owner);
    if (!l.group.empty() && !::getgrnam(l.group.c_str())) fail(where, "no such group " + l.group);
    if ((!l.owner.empty() || !l.group.empty() || !l.mode.empty()) &&
        !l.address.starts_with("unix:"))
        fail(where, "mode, owner and group apply to unix sockets only");
    if (!l.mode.empty()) {
        if (l.mode.size() > 4) fail(where, "mode must be octal, e.g. \"0660\"");
        for (char c : l.mode)
            if (c < '0' || c > '7') fail(where, "mode must be octal, e.g. \"0660\"");
    }
}

}  // namespace

Config reloaded(const Config& old, const Config& next, std::vector<std::string>& needs_restart) {
    Config c = next;
#define KEEP(name, field)                             \
    if (!(old.field == next.field)) {                 \
        needs_restart.push_back(name);                \
        c.field = old.field;                          \
    }
    if (old.listen.size() != next.listen.size()) needs_restart.push_back("listen");
    if (old.listen.size() == next.listen.size())
        for (std::size_t i = 0; i < old.listen.size(); ++i)
            if (old.listen[i].type != next.listen[i].type ||
                old.listen[i].address != next.listen[i].address ||
                old.listen[i].profile != next.listen[i].profile ||
                old.listen[i].mode != next.listen[i].mode ||
                old.listen[i].owner != next.listen[i].owner ||
                old.listen[i].group != next.listen[i].group) {
                needs_restart.push_back("listen");
                break;
            }
    c.listen = old.listen;
    KEEP("daemon.log", log);
    KEEP("daemon.user", user);
    KEEP("daemon.allow_root", allow_root);
    KEEP("daemon.state_dir", state_dir);
    KEEP("daemon.max_connections", max_connections);
    KEEP("resolver.unbound_config", unbound_config);
    KEEP("resolver.forwarders", forwarders);
    KEEP("resolver.trust_anchor_file", trust_anchor_file);
    KEEP("resolver.timeout_ms", resolver_timeout_ms);
    KEEP("resolver.max_outstanding", resolver_max_outstanding);
    KEEP("resolver.dnssec", dnssec);
    KEEP("resolver.dnssec_probe", dnssec_probe);
    KEEP("https.ca_file", ca_file);
    KEEP("https.connect_to", connect_to);
    KEEP("https.proxy", proxy);
    KEEP("https.timeout_ms", https_timeout_ms);
    KEEP("https.connect_timeout_ms", https_connect_timeout_ms);
    KEEP("cache.path", cache_path);
    KEEP("cache.memory_only", cache_memory_only);
    KEEP("tlsrpt.socket", tlsrpt_socket);
    KEEP("tlsrpt.socket_mode", tlsrpt_socket_mode);
    KEEP("tlsrpt.socket_group", tlsrpt_socket_group);
    KEEP("tlsrpt.db", tlsrpt_db);
    KEEP("tlsrpt.receive_buffer", tlsrpt_receive_buffer);
    KEEP("store.backend", store_backend);
    KEEP("store.dsn", store_dsn);
    KEEP("store.pool", store_pool);
    KEEP("store.instance", store_instance);
    KEEP("store.lease_s", store_lease_s);
    KEEP("store.lease_wait_ms", store_lease_wait_ms);
    KEEP("store.timeout_ms", store_timeout_ms);
    KEEP("store.tlsrpt_ship_interval_ms", store_tlsrpt_ship_interval_ms);
    KEEP("store.tlsrpt_outbox_max_rows", store_tlsrpt_outbox_max_rows);
    KEEP("control.socket", control_socket);
    KEEP("control.socket_mode", control_socket_mode);
    KEEP("control.socket_group", control_socket_group);
#undef KEEP
    return c;
}

std::string instance_name(const Config& c) {
    if (!c.store_instance.empty()) return c.store_instance;
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0 || !host[0]) return "strictmx";
    std::string h = host;
    for (char& ch : h)
        if (!std::isalnum(static_cast<unsigned char>(ch)) && ch != '.' && ch != '-' && ch != '_')
            ch = '_';
    return h.substr(0, 64);
}

std::string control_path(const Config& c) {
    return c.control_socket.empty() ? c.state_dir + "/control.sock" : c.control_socket;
}

Config defaults(const std::string& state_dir) {
    Config c;
    c.state_dir = state_dir;
    c.listen.push_back(Listen{"socketmap", "inet:127.0.0.1:8461", "", "", "", ""});
    return c;
}

const std::vector<SettingDoc>& settings() {
    static const std::vector<SettingDoc> docs = [] {
        std::vector<SettingDoc> out;
        Config d = defaults();
        for (const auto& s : table()) {
            SettingDoc doc = s.doc;
            doc.def = s.show(d);
            out.push_back(doc);
        }
        out.push_back({"policy.overrides", "table of domain = answer", "{}",
                       "Static answers that win over DNS and MTA-STS, e.g. \"example.org\" = "
                       "\"secure match=mx.example.org\"; \"\" answers NOTFOUND."});
        out.push_back({"listen", "array of tables",
                       "[{type=\"socketmap\", address=\"inet:127.0.0.1:8461\"}]",
                       "Listeners: type (socketmap | tcp_table | exim | metrics), address (inet:HOST:PORT | "
                       "unix:PATH), profile (tcp_table and exim), mode/owner/group (unix)."});
        return out;
    }();
    return docs;
}

Config parse(const std::string& text, const std::string& origin) {
    toml::table root;
    try {
        root = toml::parse(text, origin);
    } catch (const toml::parse_error& e) {
        std::ostringstream os;
        os << origin << ":" << e.source().begin.line << ": " << e.description();
        throw std::runtime_error(os.str());
    }
    Config c = defaults();
    bool listen_given = false;
    std::set<std::string> known;
    for (const auto& s : table()) known.insert(s.doc.name);
    // Walk every key so unknown ones are errors.
    for (const auto& [sec_key, sec_node] : root) {
        std::string section(sec_key.str());
        std::string where = origin + ": " + section;
        if (section == "listen") {
            const toml::array* arr = sec_node.as_array();
            if (!arr) fail(where, "use [[listen]] entries");
            listen_given = true;
            c.listen.clear();
            for (const auto& item : *arr) {
                const toml::table* t = item.as_table();
                if (!t) fail(where, "use [[listen]] entries");
                Listen l;
                for (const auto& [k, v] : *t) {
                    std::string key(k.str());
                    std::string w = where + "." + key;
                    if (key == "type")
                        l.type = get_string(v, w);
                    else if (key == "address")
                        l.address = get_string(v, w);
                    else if (key == "profile")
                        l.profile = get_string(v, w);
                    else if (key == "mode")
                        l.mode = get_string(v, w);
                    else if (key == "owner")
                        l.owner = get_string(v, w);
                    else if (key == "group")
                        l.group = get_string(v, w);
                    else
                        fail(w, "unknown setting");
                }
                check_listen(l, where);
                c.listen.push_back(std::move(l));
            }
            continue;
        }
        const toml::table* sec = sec_node.as_table();
        if (!sec) fail(where, "expected a [section]");
        for (const auto& [k, v] : *sec) {
            std::string name = section + "." + std::string(k.str());
            std::string w = origin + ": " + name;
            if (name == "policy.overrides") {
                const toml::table* ov = v.as_table();
                if (!ov) fail(w, "expected a table of domain = answer");
                std::map<std::string, std::string> seen;  // normalized -> key as written
                for (const auto& [dk, dv] : *ov) {
                    std::string answer = get_string(dv, w + "." + std::string(dk.str()));
                    for (unsigned char ch : answer)
                        if (ch < 0x20 || ch == 0x7f)
                            fail(w + "." + std::string(dk.str()),
                                 "answer contains a control byte (it would go to Postfix raw)");
                    static const std::set<std::string> kLevels = {
                        "none",      "may",         "encrypt", "dane",
                        "dane-only", "fingerprint", "verify",  "secure"};
                    if (!answer.empty() && !kLevels.contains(answer.substr(0, answer.find(' '))))
                        fail(w + "." + std::string(dk.str()),
                             "answer must start with a Postfix TLS level (none, may, encrypt, "
                             "dane, dane-only, "
                             "fingerprint, verify, secure) or be empty for NOTFOUND");
                    auto key = dns::classify_key(dk.str());
                    if (key.kind != dns::KeyKind::Domain)
                        fail(w, std::string(dk.str()) + ": not a domain name");
                    if (auto [it, fresh] = seen.emplace(key.domain, std::string(dk.str())); !fresh)
                        fail(w, "\"" + it->second + "\" and \"" + std::string(dk.str()) +
                                    "\" are the same domain (" + key.domain + ")");
                    c.overrides[key.domain] = answer;
                }
                continue;
            }
            if (name == "policy.on_failure") {
                const toml::table* of = v.as_table();
                if (!of) fail(w, "expected a table");
                for (const auto& [fk, fv] : *of) {
                    std::string fname = name + "." + std::string(fk.str());
                    bool found = false;
                    for (const auto& s : table()) {
                        if (s.doc.name == fname) {
                            s.set(c, fv, origin + ": " + fname);
                            found = true;
                        }
                    }
                    if (!found) fail(origin + ": " + fname, "unknown setting");
                }
                continue;
            }
            bool found = false;
            for (const auto& s : table()) {
                if (s.doc.name == name) {
                    s.set(c, v, w);
                    found = true;
                    break;
                }
            }
            if (!found) fail(w, "unknown setting");
        }
    }
    if (!listen_given && c.listen.empty()) c.listen = defaults().listen;
    if (c.listen.empty()) fail(origin + ": listen", "at least one [[listen]] entry is needed");
    if (c.dns_min_ttl > c.dns_max_ttl)
        fail(origin + ": cache.dns_min_ttl", "is larger than cache.dns_max_ttl");
    {
        // A zone name: "." or LDH labels, a trailing dot allowed.
        std::string z = c.dnssec_probe;
        if (z.size() > 1 && z.back() == '.') z.pop_back();
        bool ok = z.empty() || z == "." || z.size() <= 253;
        if (ok && !z.empty() && z != ".")
            for (auto label : split(z, '.'))
                ok = ok && !label.empty() && label.size() <= 63 &&
                     label.find_first_not_of(
                         "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                         "0123456789-_") == std::string_view::npos;
        if (!ok) fail(origin + ": resolver.dnssec_probe", "not a zone name: " + c.dnssec_probe);
    }
    if (!c.tlsrpt_socket.empty() && c.tlsrpt_socket.size() >= sizeof(sockaddr_un::sun_path))
        fail(origin + ": tlsrpt.socket", "unix socket path longer than " +
                                             std::to_string(sizeof(sockaddr_un::sun_path) - 1) +
                                             " bytes");
    if (c.tlsrpt_socket_mode.empty() || c.tlsrpt_socket_mode.size() > 4 ||
        c.tlsrpt_socket_mode.find_first_not_of("01234567") != std::string::npos)
        fail(origin + ": tlsrpt.socket_mode", "not an octal mode: " + c.tlsrpt_socket_mode);
    if (!c.tlsrpt_sendmail.empty() && c.tlsrpt_sendmail.front() != '/')
        fail(origin + ": tlsrpt.sendmail", "must start with an absolute path (no shell, no PATH)");
    if (c.control_socket_mode.empty() || c.control_socket_mode.size() > 4 ||
        c.control_socket_mode.find_first_not_of("01234567") != std::string::npos)
        fail(origin + ": control.socket_mode", "not an octal mode: " + c.control_socket_mode);
    if (!c.control_socket.empty() && (c.control_socket.front() != '/' ||
                                      c.control_socket.size() >= sizeof(sockaddr_un::sun_path)))
        fail(origin + ": control.socket", "must be an absolute path shorter than " +
                                              std::to_string(sizeof(sockaddr_un::sun_path)) +
                                              " bytes");
    if (auto why = address_problem(c.milter_listen); !why.empty())
        fail(origin + ": milter.listen", why);
    if (auto why = address_problem(c.milter_policy_server); !why.empty())
        fail(origin + ": milter.policy_server", why);
    if (c.milter_socket_mode.empty() || c.milter_socket_mode.size() > 4 ||
        c.milter_socket_mode.find_first_not_of("01234567") != std::string::npos)
        fail(origin + ": milter.socket_mode", "not an octal mode: " + c.milter_socket_mode);
    if (!milter::valid_field_name(c.milter_route_header))
        fail(origin + ": milter.route_header", "not a header field name: " + c.milter_route_header);
    if (c.milter_tls_required_no != "route" && c.milter_tls_required_no != "ignore")
        fail(origin + ": milter.tls_required_no", "expected \"route\" or \"ignore\"");
    for (const auto& e : c.milter_require_tls_senders)
        if (auto why = milter::sender_rule_problem(e); !why.empty())
            fail(origin + ": milter.require_tls_senders", "\"" + e + "\": " + why);
    for (const auto& t : c.milter_local_transports)
        if (t.empty() || t.find_first_of(" \t:") != std::string::npos)
            fail(origin + ": milter.local_transports", "not a transport name: \"" + t + "\"");
    for (const auto& f : c.forwarders) {
        // "IP" or "IP@PORT", as ub_ctx_set_fwd takes it; its own error names neither.
        std::string ip = f.substr(0, f.find('@'));
        std::string port = f.find('@') == std::string::npos ? "53" : f.substr(f.find('@') + 1);
        bool port_ok = !port.empty() && port.size() <= 5 &&
                       port.find_first_not_of("0123456789") == std::string::npos &&
                       std::stoi(port) > 0 && std::stoi(port) < 65536;
        if (!dns::is_ip_literal(ip) || !port_ok)
            fail(origin + ": resolver.forwarders",
                 "\"" + f + "\" is not an address (\"IP\" or \"IP@PORT\")");
    }
    for (const auto& e : c.connect_to) {
        // curl CONNECT_TO: HOST:PORT:CONNECT_HOST:CONNECT_PORT (HOST and PORT may be empty,
        // CONNECT_HOST may be an [IPv6] address).
        auto port_ok = [](std::string_view p, bool may_be_empty) {
            if (p.empty()) return may_be_empty;
            return p.size() <= 5 && p.find_first_not_of("0123456789") == std::string_view::npos &&
                   std::stoi(std::string(p)) > 0 && std::stoi(std::string(p)) < 65536;
        };
        std::string_view rest = e;
        std::size_t c1 = rest.find(':');
        std::size_t c2 = c1 == std::string_view::npos ? c1 : rest.find(':', c1 + 1);
        std::size_t c3 = rest.rfind(':');
        bool ok = c1 != std::string_view::npos && c2 != std::string_view::npos && c3 > c2 &&
                  port_ok(rest.substr(c1 + 1, c2 - c1 - 1), true) &&
                  port_ok(rest.substr(c3 + 1), true) && c3 > c2 + 1;
        if (ok) {
            std::string host(rest.substr(c2 + 1, c3 - c2 - 1));
            if (host.size() > 2 && host.front() == '[' && host.back() == ']')
                host = host.substr(1, host.size() - 2);
            ok = dns::is_ip_literal(host) ||
                 (!host.empty() &&
                  host.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKL"
                                         "MNOPQRSTUVWXYZ0123456789.-") == std::string::npos);
        }
        for (unsigned char ch : e) ok = ok && ch > 0x20 && ch < 0x7f;
        if (!ok)
            fail(origin + ": https.connect_to",
                 "\"" + e + "\" is not HOST:PORT:CONNECT_HOST:CONNECT_PORT");
    }
    if (!c.proxy.empty()) {
        std::size_t sep = c.proxy.find("://");
        std::string scheme = sep == std::string::npos ? "" : c.proxy.substr(0, sep);
        static const std::set<std::string> kSchemes = {"http",    "https",  "socks4",
                                                       "socks4a", "socks5", "socks5h"};
        std::string host =
            sep == std::string::npos
                ? ""
                : c.proxy.substr(sep + 3, c.proxy.find_first_of(":/", sep + 3) - sep - 3);
        bool ok = kSchemes.contains(scheme) && !host.empty();
        for (unsigned char ch : c.proxy) ok = ok && ch > 0x20 && ch < 0x7f;
        if (!ok)
            fail(origin + ": https.proxy",
                 "\"" + c.proxy +
                     "\" is not a proxy URL (SCHEME://HOST[:PORT], scheme http, "
                     "https, socks4, socks4a, socks5 or socks5h)");
    }
    if (c.log != "syslog" && c.log != "stderr")
        fail(origin + ": daemon.log", "expected \"syslog\" or \"stderr\"");
    if (c.store_backend != "sqlite" && c.store_backend != "postgresql")
        fail(origin + ": store.backend", "expected \"sqlite\" or \"postgresql\"");
    if (c.store_backend == "postgresql" && c.store_dsn.empty())
        fail(origin + ": store.dsn", "backend \"postgresql\" needs a connection string");
    if (c.store_instance.size() > 64 ||
        c.store_instance.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                           "0123456789.-_") != std::string::npos)
        fail(origin + ": store.instance",
             "\"" + c.store_instance + "\": at most 64 letters, digits, '.', '-' or '_'");
    for (unsigned char ch : c.store_dsn)
        if (ch < 0x20 || ch == 0x7f)
            fail(origin + ": store.dsn", "control characters in the connection string");
    return c;
}

Config load(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0)
        throw std::runtime_error(path +
                                 ": cannot read the configuration file: " + std::strerror(errno));
    if (!S_ISREG(st.st_mode))
        throw std::runtime_error(path +
                                 ": not a regular file (give the configuration file, "
                                 "not its directory)");
    std::ifstream in(path);
    if (!in) throw std::runtime_error(path + ": cannot read the configuration file");
    std::stringstream ss;
    ss << in.rdbuf();
    return parse(ss.str(), path);
}

std::vector<std::string> check_usable(const Config& c) {
    std::vector<std::string> problems;
    auto readable_file = [&](const std::string& key, const std::string& path) {
        if (path.empty()) return false;
        struct stat st {};
        if (::stat(path.c_str(), &st) != 0) {
            problems.push_back(key + " = \"" + path + "\": " + std::strerror(errno));
            return false;
        }
        if (!S_ISREG(st.st_mode)) {
            problems.push_back(key + " = \"" + path + "\": not a regular file");
            return false;
        }
        if (::access(path.c_str(), R_OK) != 0) {
            problems.push_back(key + " = \"" + path + "\": not readable: " + std::strerror(errno));
            return false;
        }
        return true;
    };
    readable_file("resolver.trust_anchor_file", c.trust_anchor_file);
    readable_file("https.ca_file", c.ca_file);
    readable_file("tlsrpt.https_ca_file", c.tlsrpt_https_ca_file);
    if (!c.tlsrpt_socket.empty()) {
        std::string dir = c.tlsrpt_socket.substr(0, c.tlsrpt_socket.rfind('/'));
        struct stat st {};
        if (dir.empty()) dir = "/";
        if (c.tlsrpt_socket.find('/') == std::string::npos || ::stat(dir.c_str(), &st) != 0 ||
            !S_ISDIR(st.st_mode))
            problems.push_back("tlsrpt.socket = \"" + c.tlsrpt_socket +
                               "\": directory " + dir + " does not exist (give an absolute path)");
        if (!c.tlsrpt_socket_group.empty() && !::getgrnam(c.tlsrpt_socket_group.c_str()))
            problems.push_back("tlsrpt.socket_group = \"" + c.tlsrpt_socket_group +
                               "\": no such group");
    }
    if (!c.tlsrpt_sendmail.empty()) {
        std::string prog = c.tlsrpt_sendmail.substr(0, c.tlsrpt_sendmail.find(' '));
        if (!c.tlsrpt_contact_info.empty() && ::access(prog.c_str(), X_OK) != 0)
            problems.push_back("tlsrpt.sendmail = \"" + c.tlsrpt_sendmail + "\": " + prog +
                               " is not executable: " + std::strerror(errno));
    }
    if (readable_file("resolver.unbound_config", c.unbound_config)) {
        // What libunbound itself says of the file, with the key it came from.
        ub_ctx* ctx = ub_ctx_create();
        int rc = ctx ? ub_ctx_config(ctx, c.unbound_config.c_str()) : UB_NOMEM;
        if (rc != 0)
            problems.push_back("resolver.unbound_config = \"" + c.unbound_config +
                               "\": libunbound rejects it: " + ub_strerror(rc));
        if (ctx) ub_ctx_delete(ctx);
    }
    for (const auto& l : c.listen) {
        if (!l.address.starts_with("unix:")) continue;
        std::string path = l.address.substr(5);
        std::string dir =
            path.substr(0, path.rfind('/') == std::string::npos ? 0 : path.rfind('/'));
        if (dir.empty()) dir = path.find('/') == 0 ? "/" : ".";
        struct stat st {};
        if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
            problems.push_back("listen " + l.address + ": directory " + dir + " does not exist");
            continue;
        }
        // The socket is created and handed over before privileges are dropped: as root any
        // owner and group can be set; otherwise only our own user and our own groups.
        if (::geteuid() == 0) continue;
        if (!l.owner.empty()) {
            passwd* pw = ::getpwnam(l.owner.c_str());
            if (pw && pw->pw_uid != ::geteuid())
                problems.push_back("listen " + l.address + ": owner " + l.owner +
                                   " cannot be set by uid " + std::to_string(::geteuid()) +
                                   " (start as root, or leave owner empty)");
        }
        if (!l.group.empty()) {
            group* gr = ::getgrnam(l.group.c_str());
            if (!gr) continue;
            std::vector<gid_t> groups(
                static_cast<std::size_t>(std::max(::getgroups(0, nullptr), 0)));
            int n = ::getgroups(static_cast<int>(groups.size()), groups.data());
            bool member = gr->gr_gid == ::getegid();
            for (int i = 0; i < n; ++i)
                member = member || groups[static_cast<std::size_t>(i)] == gr->gr_gid;
            if (!member)
                problems.push_back("listen " + l.address + ": group " + l.group +
                                   " cannot be set: uid " + std::to_string(::geteuid()) +
                                   " is not in it (add the service user to the group, e.g. "
                                   "SupplementaryGroups= in the unit)");
        }
    }
    return problems;
}

std::string dump(const Config& c) {
    std::string out;
    std::string current;
    for (const auto& s : table()) {
        const std::string& name = s.doc.name;
        std::size_t dot = name.rfind('.');
        std::string section = name.substr(0, dot);
        if (section != current) {
            out += (out.empty() ? "[" : "\n[") + section + "]\n";
            current = section;
        }
        out += name.substr(dot + 1) + " = " + s.show(c) + "\n";
    }
    out += "\n[policy.overrides]\n";
    for (const auto& [d, a] : c.overrides) out += quote(d) + " = " + quote(a) + "\n";
    for (const auto& l : c.listen) {
        out += "\n[[listen]]\ntype = " + quote(l.type) + "\naddress = " + quote(l.address) + "\n";
        if (!l.profile.empty()) out += "profile = " + quote(l.profile) + "\n";
        if (!l.mode.empty()) out += "mode = " + quote(l.mode) + "\n";
        if (!l.owner.empty()) out += "owner = " + quote(l.owner) + "\n";
        if (!l.group.empty()) out += "group = " + quote(l.group) + "\n";
    }
    return out;
}

}  // namespace strictmx::config
