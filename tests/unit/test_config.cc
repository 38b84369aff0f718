// SPDX-License-Identifier: MIT
// strictmx.toml parsing: every documented name, defaults, and clear errors.
#include <fcntl.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <filesystem>

#include "config/config.hh"
#include "policy/runtime.hh"

using namespace strictmx::config;

TEST_CASE("the documented settings parse") {
    auto c = parse(R"(
[daemon]
log = "stderr"
verbosity = 3
[resolver]
unbound_config = "/etc/strictmx/unbound.conf"
[https]
ca_file = "/tmp/ca.pem"
connect_to = ["::127.0.0.1:8443"]
timeout_ms = 3000
[cache]
path = "/tmp/c.db"
[policy]
lookup_deadline_ms = 5000
[policy.on_failure]
dns_servfail = "notfound"
[policy.overrides]
"Example.ORG" = "secure match=mx.example.org"
[[listen]]
type = "socketmap"
address = "inet:127.0.0.1:8461"
[[listen]]
type = "tcp_table"
address = "unix:/run/strictmx/tcp.sock"
profile = "postfix-tlsrpt"
mode = "0660"
)",
                   "test");
    CHECK(c.log == "stderr");
    CHECK(c.verbosity == 3);
    CHECK(c.unbound_config == "/etc/strictmx/unbound.conf");
    CHECK(c.connect_to == std::vector<std::string>{"::127.0.0.1:8443"});
    CHECK(c.https_timeout_ms == 3000);
    CHECK(c.cache_path == "/tmp/c.db");
    CHECK(c.dns_servfail == OnFailure::NotFound);
    CHECK(c.dns_timeout == OnFailure::Tempfail);
    CHECK(c.overrides.at("example.org") == "secure match=mx.example.org");
    REQUIRE(c.listen.size() == 2);
    CHECK(c.listen[1].profile == "postfix-tlsrpt");
    CHECK(c.listen[1].mode == "0660");
}

TEST_CASE("defaults listen on loopback") {
    auto c = parse("", "empty");
    REQUIRE(c.listen.size() == 1);
    CHECK(c.listen[0].address == "inet:127.0.0.1:8461");
    CHECK(c.dnssec_bogus == OnFailure::Tempfail);
}

TEST_CASE("configuration errors name the setting") {
    auto msg = [](const std::string& text) {
        try {
            parse(text, "f.toml");
        } catch (const std::exception& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    CHECK(msg("[cache]\npaht = \"x\"").find("cache.paht") != std::string::npos);
    CHECK(msg("[daemon]\nverbosity = 9").find("daemon.verbosity") != std::string::npos);
    CHECK(msg("[daemon]\nverbosity = \"x\"").find("integer") != std::string::npos);
    CHECK(msg("[[listen]]\ntype = \"http\"\naddress = \"inet:1.2.3.4:1\"").find("type") !=
          std::string::npos);
    CHECK(msg("[policy.on_failure]\ndns_timeout = \"maybe\"").find("dns_timeout") !=
          std::string::npos);
    CHECK(msg("[policy.overrides]\n\"[x]\" = \"none\"").find("not a domain") != std::string::npos);
    CHECK(msg("this is not toml").find("f.toml") != std::string::npos);
    CHECK(msg("[policy.overrides]\n\"a.example\" = \"securee match=x\"").find("TLS level") !=
          std::string::npos);
    CHECK(msg("[[listen]]\ntype = \"tcp_table\"\naddress = \"inet:localhost:1\"")
              .find("inet:IP:PORT") != std::string::npos);
    CHECK(
        msg("[[listen]]\ntype = \"tcp_table\"\naddress = \"inet:127.0.0.1:1\"\nprofile = \"nope\"")
            .find("unknown profile") != std::string::npos);
    CHECK(msg("[cache]\ndns_min_ttl = 5000\ndns_max_ttl = 60").find("dns_min_ttl") !=
          std::string::npos);
    CHECK(msg("listen = []").find("at least one") != std::string::npos);
}

TEST_CASE("dump parses back to the same settings") {
    auto c = parse(
        "[https]\nconnect_to = [\"a:1:b:2\"]\n[policy.overrides]\n\"x.example\" = \"none\"\n", "t");
    auto again = parse(dump(c), "dump");
    CHECK(again.connect_to == c.connect_to);
    CHECK(again.overrides == c.overrides);
    CHECK(again.listen.size() == c.listen.size());
    CHECK(!settings().empty());
}

namespace {
std::string problem(const std::string& text) {
    try {
        parse(text, "f.toml");
    } catch (const std::exception& e) {
        return e.what();
    }
    return "no error";
}
bool has(const std::string& s, const std::string& part) {
    return s.find(part) != std::string::npos;
}
}  // namespace

TEST_CASE("settings that parse but cannot work are named with their value") {
    CHECK(has(problem("[resolver]\nforwarders = [\"127.0.0.1@99999\"]"), "resolver.forwarders"));
    CHECK(has(problem("[resolver]\nforwarders = [\"dns.example\"]"), "\"dns.example\""));
    CHECK(problem("[resolver]\nforwarders = [\"127.0.0.1@5353\", \"::1\"]") == "no error");
    CHECK(has(problem("[https]\nproxy = \"proxy.example:3128\""), "https.proxy"));
    CHECK(has(problem("[https]\nproxy = \"ftp://proxy.example\""), "https.proxy"));
    CHECK(problem("[https]\nproxy = \"http://proxy.example:3128\"") == "no error");
    CHECK(has(problem("[https]\nconnect_to = [\"garbage\"]"), "https.connect_to"));
    CHECK(has(problem("[https]\nconnect_to = [\"a:443:b:99999\"]"), "https.connect_to"));
    CHECK(has(problem("[https]\nconnect_to = [\"::in valid:1\"]"), "https.connect_to"));
    CHECK(problem("[https]\nconnect_to = [\"::127.0.0.1:8443\", \"a.example:443:[::1]:8443\"]") ==
          "no error");
    CHECK(has(problem("[resolver]\ndnssec_probe = \"a b\""), "resolver.dnssec_probe"));
    CHECK(problem("[resolver]\ndnssec = false\ndnssec_probe = \"test.\"") == "no error");
    CHECK(has(problem("[daemon]\nallow_root = \"yes\""), "true or false"));
    CHECK(has(problem("[cache]\npath = \"/var/lib/x\\u001b[2J.db\""), "control byte"));
    CHECK(has(problem("[[listen]]\ntype = \"socketmap\"\naddress = \"unix:/" +
                      std::string(120, 'a') + "\""),
              "longer than"));
}

TEST_CASE("override answers with control bytes, and keys that are one domain, are refused") {
    CHECK(has(problem("[policy.overrides]\n\"a.example\" = \"secure\\u0000match=x\""),
              "control byte"));
    CHECK(has(problem("[policy.overrides]\n\"a.example\" = \"secure\\tmatch=x\""), "control byte"));
    CHECK(
        has(problem("[policy.overrides]\n\"a.example\" = \"secure\\u001b[31m\""), "control byte"));
    std::string dup =
        problem("[policy.overrides]\n\"Example.COM\" = \"none\"\n\"example.com.\" = \"may\"");
    CHECK(has(dup, "Example.COM"));
    CHECK(has(dup, "example.com."));
    CHECK(has(problem("[policy.overrides]\n\"b\xC3\xBC"
                      "cher.example\" = \"none\"\n"
                      "\"xn--bcher-kva.example\" = \"may\""),
              "same domain"));
}

TEST_CASE("check_usable names files and sockets that cannot be used") {
    Config c = defaults("/nonexistent-state");
    CHECK(check_usable(c).empty());
    c.trust_anchor_file = "/nonexistent/root.key";
    c.ca_file = "/tmp";  // a directory
    auto p = check_usable(c);
    REQUIRE(p.size() == 2);
    CHECK(has(p[0], "resolver.trust_anchor_file = \"/nonexistent/root.key\""));
    CHECK(has(p[1], "https.ca_file = \"/tmp\": not a regular file"));
    Config u = defaults();
    char tmpl[] = "/tmp/strictmx-ubconf-XXXXXX";
    int fd = ::mkstemp(tmpl);
    REQUIRE(fd >= 0);
    const char bad[] = "server:\n\tno-such-option: yes\n";
    REQUIRE(::write(fd, bad, sizeof bad - 1) == static_cast<ssize_t>(sizeof bad - 1));
    ::close(fd);
    u.unbound_config = tmpl;
    auto q = check_usable(u);
    REQUIRE(q.size() == 1);
    CHECK(has(q[0], "libunbound rejects it"));
    ::unlink(tmpl);
    Config s = defaults();
    s.listen.push_back(Listen{"socketmap", "unix:/nonexistent-dir/s.sock", "", "", "", ""});
    auto r = check_usable(s);
    REQUIRE(r.size() == 1);
    CHECK(has(r[0], "/nonexistent-dir does not exist"));
}

TEST_CASE("a directory is not a configuration file") {
    CHECK_THROWS_WITH(load("/tmp"), Catch::Contains("not a regular file"));
    CHECK_THROWS_WITH(load("/nonexistent/strictmx.toml"), Catch::Contains("cannot read"));
}

TEST_CASE("the DNSSEC probe zone defaults to the configured trust anchor's zone") {
    char ta[] = "/tmp/strictmx-ta-XXXXXX";
    int fd = ::mkstemp(ta);
    REQUIRE(fd >= 0);
    const char ds[] = "; a comment\ntest.\t3600\tIN\tDS\t21722 13 2 9bf4\n";
    REQUIRE(::write(fd, ds, sizeof ds - 1) == static_cast<ssize_t>(sizeof ds - 1));
    ::close(fd);
    char ub[] = "/tmp/strictmx-ub-XXXXXX";
    fd = ::mkstemp(ub);
    REQUIRE(fd >= 0);
    std::string conf =
        std::string("server:\n\t# trust-anchor-file: \"/nope\"\n\ttrust-anchor-file: \"") + ta +
        "\"\n";
    REQUIRE(::write(fd, conf.data(), conf.size()) == static_cast<ssize_t>(conf.size()));
    ::close(fd);
    Config c = defaults();
    c.unbound_config = ub;
    CHECK(strictmx::policy::probe_zone(c, strictmx::policy::resolver_options(c, false)) == "test");
    c.dnssec_probe = "example.";
    CHECK(strictmx::policy::probe_zone(c, strictmx::policy::resolver_options(c, false)) ==
          "example");
    Config r = defaults();
    r.trust_anchor_file = "/usr/share/dns/root.key";
    CHECK(strictmx::policy::probe_zone(r, strictmx::policy::resolver_options(r, false)) == ".");
    Config inline_anchor = defaults();
    std::string conf2 = "server:\n  trust-anchor: \"corp.example. DS 1 13 2 abcd\"\n";
    fd = ::open(ub, O_WRONLY | O_TRUNC);
    REQUIRE(::write(fd, conf2.data(), conf2.size()) == static_cast<ssize_t>(conf2.size()));
    ::close(fd);
    inline_anchor.unbound_config = ub;
    CHECK(strictmx::policy::probe_zone(inline_anchor, strictmx::policy::resolver_options(
                                                          inline_anchor, false)) == "corp.example");
    Config none = defaults("/nonexistent-state");
    none.unbound_config = "/dev/null";
    CHECK(strictmx::policy::probe_zone(none, strictmx::policy::resolver_options(none, false)) ==
          "");
    ::unlink(ta);
    ::unlink(ub);
}

TEST_CASE("[milter] settings are checked where they are read") {
    auto c = parse(
        "[milter]\nlisten = \"unix:/var/spool/postfix/strictmx/milter.sock\"\n"
        "policy_server = \"inet:127.0.0.1:8461\"\nroute_header = \"X-Strictmx-Route\"\n"
        "tls_required_no = \"ignore\"\n"
        "require_tls_senders = [\"alice@example.org\", \"@secure.example.org\"]\n"
        "lookup_timeout_ms = 2000\n",
        "t");
    CHECK(c.milter_tls_required_no == "ignore");
    CHECK(c.milter_require_tls_senders.size() == 2);
    CHECK(defaults().milter_listen == "inet:127.0.0.1:8465");
    CHECK(has(problem("[milter]\nlisten = \"inet:localhost:8465\""), "milter.listen"));
    CHECK(has(problem("[milter]\nlisten = \"unix:relative.sock\""), "absolute"));
    CHECK(has(problem("[milter]\npolicy_server = \"127.0.0.1:8461\""), "milter.policy_server"));
    CHECK(has(problem("[milter]\nroute_header = \"X-Route: evil\""), "milter.route_header"));
    CHECK(has(problem("[milter]\nroute_header = \"\""), "milter.route_header"));
    CHECK(has(problem("[milter]\ntls_required_no = \"yes\""), "milter.tls_required_no"));
    CHECK(has(problem("[milter]\nrequire_tls_senders = [\"alice\"]"), "\"alice\""));
    CHECK(has(problem("[milter]\nrequire_tls_senders = [\"@bad domain\"]"),
              "milter.require_tls_senders"));
    CHECK(has(problem("[milter]\nlookup_timeout_ms = 0"), "milter.lookup_timeout_ms"));
    CHECK(has(problem("[milter]\nsocket_mode = \"rw\""), "milter.socket_mode"));
    CHECK(has(problem("[milter]\nlocal_transports = [\"lo cal\"]"), "milter.local_transports"));
    CHECK(has(problem("[[listen]]\ntype = \"tcp_table\"\naddress = \"inet:127.0.0.1:1\"\n"
                      "profile = \"requiretls\"\n[milter]\nlisten = \"inet:127.0.0.1:9\""),
              "no error"));
}

TEST_CASE("strictmx query's trust anchor: read-only, never a file in a shared directory") {
    // The daemon keeps an RFC 5011 anchor in its state directory; a command-line user who
    // cannot read it validates with the packaged seed, read as a static anchor.
    auto c = parse("[daemon]\nstate_dir = \"/nonexistent/strictmx-state\"\n", "t");
    std::filesystem::remove("/tmp/strictmx-root.key");
    auto o = strictmx::policy::resolver_options(c, false);
    CHECK(o.trust_anchor_read_only);
    if (std::filesystem::exists("/usr/share/dns/root.key"))
        CHECK(o.trust_anchor_file == "/usr/share/dns/root.key");
    CHECK_FALSE(std::filesystem::exists("/tmp/strictmx-root.key"));
    CHECK_FALSE(std::filesystem::exists("/nonexistent/strictmx-state"));
}
