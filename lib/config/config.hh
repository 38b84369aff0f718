// SPDX-License-Identifier: MIT
// strictmx.toml: one table of settings (name, type, default, description) drives the parser,
// --check-config and the strictmx.toml(5) reference.
#pragma once

#include <map>
#include <string>
#include <vector>

namespace strictmx::config {

// What a failure class turns into. Tempfail defers the mail (the safe default); NotFound lets
// Postfix apply its own default TLS level.
enum class OnFailure { Tempfail, NotFound };

struct Listen {
    std::string type;     // socketmap | tcp_table | exim
    std::string address;  // inet:HOST:PORT | unix:PATH
    std::string profile;  // tcp_table, exim: the answer profile (socketmap: chosen by map name)
    std::string mode;     // unix sockets: octal permission bits, e.g. "0660"
    std::string owner;    // unix sockets: owner user name
    std::string group;    // unix sockets: group name
};

struct Config {
    // [daemon]
    std::string log = "syslog";  // syslog | stderr
    int verbosity = 2;           // 0 errors, 1 warnings, 2 decisions, 3 debug
    std::string user;            // drop privileges to this user after binding ("" = stay)
    bool allow_root = false;     // serve as uid 0 without `user` (containers), loudly
    std::string state_dir = "/var/lib/strictmx";
    int max_connections = 1024;
    int max_connections_per_user = 256;  // unix socket peers, by SO_PEERCRED uid
    int idle_timeout_s = 15;             // Postfix's socketmap client: 10 s idle
    int max_lifetime_s = 120;            // and 100 s in all
    // [resolver]
    std::string unbound_config;
    std::vector<std::string> forwarders;
    std::string trust_anchor_file;  // default: STATE_DIR/root.key
    int resolver_timeout_ms = 5000;
    int resolver_max_outstanding = 4000;
    bool dnssec = true;               // false: DANE explicitly off, every answer insecure
    std::string dnssec_probe;         // its DNSKEY must validate at start ("": the anchor's zone)
    // [https]
    std::string ca_file;
    std::vector<std::string> connect_to;
    std::string proxy;
    int https_timeout_ms = 10'000;
    int https_connect_timeout_ms = 5'000;
    // [cache]
    std::string cache_path;  // default: STATE_DIR/cache.db
    bool cache_memory_only = false;  // no cache file, on purpose
    int negative_ttl = 3600;
    int fetch_failure_ttl = 300;
    int refresh_interval = 3600;
    int refresh_backoff = 60;
    int max_refreshes = 32;
    int dns_min_ttl = 60;
    int dns_max_ttl = 3600;
    int failure_ttl = 30;
    int idle_ttl = 2'592'000;          // entries not looked up this long are evicted
    int max_entries = 1'000'000;       // least recently used entries go past this
    int dane_history_ttl = 2'592'000;  // "this domain had DANE" is remembered this long
    // [policy]
    int lookup_deadline_ms = 10'000;
    int max_resolutions = 1000;
    int max_resolutions_per_domain = 16;  // per registered domain
    OnFailure dns_timeout = OnFailure::Tempfail;
    OnFailure dns_servfail = OnFailure::Tempfail;
    OnFailure dnssec_bogus = OnFailure::Tempfail;
    std::map<std::string, std::string> overrides;
    // [tlsrpt]
    std::string tlsrpt_socket;      // the libtlsrpt datagram socket ("": no collector)
    std::string tlsrpt_socket_mode = "0660";
    std::string tlsrpt_socket_group;
    std::string tlsrpt_db;          // default: STATE_DIR/tlsrpt.db
    std::string tlsrpt_spool_dir;   // default: STATE_DIR/tlsrpt-spool
    std::string tlsrpt_organization_name;
    std::string tlsrpt_contact_info;
    std::string tlsrpt_sender_address;
    std::string tlsrpt_sendmail = "/usr/sbin/sendmail -i -t";
    std::string tlsrpt_https_ca_file;
    int tlsrpt_retention_days = 14;
    int tlsrpt_max_delay_s = 14'400;    // reports of a day go out within this after it ends
    int tlsrpt_retry_for_s = 86'400;    // failed deliveries are retried this long
    int tlsrpt_receive_buffer = 8 << 20;
    int tlsrpt_commit_interval_ms = 1000;
    // [store] (fleet mode: store/shared_cache.hh, tlsrpt/fleet.hh)
    std::string store_backend = "sqlite";  // sqlite | postgresql
    std::string store_dsn;                 // libpq connection string
    int store_pool = 4;
    std::string store_instance;            // "": the host name
    int store_lease_s = 30;
    int store_lease_wait_ms = 3000;
    int store_timeout_ms = 1000;
    int store_tlsrpt_ship_interval_ms = 5000;
    int store_tlsrpt_outbox_max_rows = 1'000'000;
    // [control]
    std::string control_socket;  // default: STATE_DIR/control.sock
    std::string control_socket_mode = "0660";
    std::string control_socket_group;
    // [milter] (strictmx-milter)
    std::string milter_listen = "inet:127.0.0.1:8465";
    std::string milter_socket_mode = "0660";
    std::string milter_socket_group;
    std::string milter_policy_server = "inet:127.0.0.1:8461";
    std::string milter_route_header = "X-Strictmx-Route";
    std::string milter_tls_required_no = "route";  // route | ignore
    std::vector<std::string> milter_require_tls_senders;
    std::vector<std::string> milter_local_transports = {"local", "virtual"};
    int milter_lookup_timeout_ms = 2000;
    // [[listen]]
    std::vector<Listen> listen;
};

// Fleet mode: [store] backend = "postgresql".
inline bool fleet(const Config& c) { return c.store_backend == "postgresql"; }
// store.instance, or the host name.
std::string instance_name(const Config& c);

// The control socket's path (control.socket, else STATE_DIR/control.sock).
std::string control_path(const Config& c);

// The built-in configuration: socketmap on 127.0.0.1:8461, state in `state_dir`.
Config defaults(const std::string& state_dir = "/var/lib/strictmx");

// Parse a file. Throws std::runtime_error with "FILE: key: problem" on any error, unknown
// keys included (a typo must not silently fall back to a default).
Config load(const std::string& path);
Config parse(const std::string& text, const std::string& origin);

// What cannot work on this machine although it parses: files that do not exist or cannot be
// read (trust anchor, CA bundle, unbound configuration, which libunbound must accept), unix
// socket directories that do not exist, socket owners and groups the process cannot set.
// One line per problem, naming the key and the value. --check-config and start-up use it.
std::vector<std::string> check_usable(const Config& c);

// Every setting with its type, default and description, as the reference lists them.
struct SettingDoc {
    std::string name, type, def, description;
};
const std::vector<SettingDoc>& settings();

// SIGHUP: the configuration to run with after `next` was read while running with `old`.
// Settings bound at start (listeners, the control socket, the resolver, HTTPS client, cache
// file, TLSRPT socket, user, state directory, log destination, connection limit) keep their
// old values until a restart; their names go to `needs_restart`.
Config reloaded(const Config& old, const Config& next, std::vector<std::string>& needs_restart);

// The effective configuration as TOML (for --check-config).
std::string dump(const Config& c);

}  // namespace strictmx::config
