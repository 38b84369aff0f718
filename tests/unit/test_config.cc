// SPDX-License-Identifier: MIT
// strictmx.toml parsing: every documented name, defaults, and clear errors.
#include <catch2/catch.hpp>

#include "config/config.hh"

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
    CHECK(msg("[policy.overrides]\n\"a.example\" = \"securee match=x\"").find("TLS level") != std::string::npos);
    CHECK(msg("[[listen]]\ntype = \"tcp_table\"\naddress = \"inet:localhost:1\"").find("inet:IP:PORT") != std::string::npos);
    CHECK(msg("[[listen]]\ntype = \"tcp_table\"\naddress = \"inet:127.0.0.1:1\"\nprofile = \"nope\"").find("unknown profile") != std::string::npos);
    CHECK(msg("[cache]\ndns_min_ttl = 5000\ndns_max_ttl = 60").find("dns_min_ttl") != std::string::npos);
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
