// SPDX-License-Identifier: MIT
// TLSRPT outcomes from Exim's events and the daemon's own policy failures: the exim verb,
// Exim's error texts, the policy of a session from a decision, the record lookup and the
// de-duplication (a fake resolver at the DNS seam).
#include <algorithm>
#include <catch2/catch.hpp>

#include "policy/decision.hh"
#include "tlsrpt/sources.hh"

using namespace strictmx;
using namespace strictmx::tlsrpt;

TEST_CASE("exim tlsrpt verb") {
    auto a = parse_exim_tlsrpt("tlsrpt success 1abc-000 Deliver-OK.test. MX.deliver-ok.test 127.0.0.10");
    REQUIRE(std::holds_alternative<SessionEvent>(a));
    auto& at = std::get<SessionEvent>(a);
    CHECK(at.domain == "deliver-ok.test");
    CHECK(at.mx_host == "mx.deliver-ok.test");
    CHECK(at.ip == "127.0.0.10");
    CHECK(at.code == 0);
    auto f = parse_exim_tlsrpt("tlsrpt validation-failure id dane.example - - DANE mismatch");
    REQUIRE(std::holds_alternative<SessionEvent>(f));
    CHECK(std::get<SessionEvent>(f).code == 205);
    CHECK(std::get<SessionEvent>(f).mx_host.empty());
    CHECK(std::get<SessionEvent>(f).additional == "DANE mismatch");
    auto d = parse_exim_tlsrpt(
        "tlsrpt defer id x.example mx.x.example ::1 a TLS session is required, but the server "
        "did not offer TLS support");
    REQUIRE(std::holds_alternative<SessionEvent>(d));
    CHECK(std::get<SessionEvent>(d).code == 201);
    for (const char* bad :
         {"tlsrpt", "tlsrpt success", "tlsrpt success id", "tlsrpt success id x.example mx",
          "tlsrpt bogus id x.example - -", "tlsrpt success id not_a_domain - -",
          "tlsrpt success id 192.0.2.1 - -", "tlsrpt success id x.example mx 1.2.3",
          "tlsrpt success id|x x.example - -", "tlsrpt defer id x.example - - Connection refused",
          "query x.example"}) {
        INFO(bad);
        CHECK(std::holds_alternative<std::string>(parse_exim_tlsrpt(bad)));
    }
}

TEST_CASE("Exim's deferral texts") {
    CHECK(classify_exim_defer("a TLS session is required, but the server did not offer TLS support") == 201);
    CHECK(classify_exim_defer("TLS session: (certificate verification failed): certificate has expired") == 204);
    CHECK(classify_exim_defer("TLS session: (certificate verification failed): self signed certificate") == 203);
    CHECK(classify_exim_defer("(certificate verification failed): Hostname mismatch") == 202);
    CHECK(classify_exim_defer("Connection refused") == 0);
    CHECK(classify_exim_defer("SMTP error from remote mail server after RCPT TO: 451 try later") == 0);
    CHECK(classify_exim_defer("") == 0);
}

TEST_CASE("the policy of a session from the daemon's decision") {
    SessionEvent a;
    a.domain = "example.net";
    a.mx_host = "mx.example.net";
    policy::Decision d;
    d.kind = policy::Decision::Kind::Dane;
    auto p = policy_for(d, a);
    CHECK(p.type == PolicyType::Tlsa);
    CHECK(p.domain == "mx.example.net");  // the TLSA base domain
    d.kind = policy::Decision::Kind::Sts;
    d.policy = std::make_shared<const sts::Policy>(
        *sts::parse_policy("version: STSv1\nmode: enforce\nmx: *.example.net\nmax_age: 600\n"));
    p = policy_for(d, a);
    CHECK(p.type == PolicyType::Sts);
    CHECK(p.domain == "example.net");
    CHECK(p.mx_hosts == std::vector<std::string>{"*.example.net"});
    CHECK(std::find(p.strings.begin(), p.strings.end(), "mode: enforce") != p.strings.end());
    d = {};
    d.kind = policy::Decision::Kind::NotFound;
    CHECK(policy_for(d, a).type == PolicyType::NoPolicyFound);
    d.failure_code = 301;
    CHECK(policy_for(d, a).type == PolicyType::Sts);
    d.failure_code = 305;
    CHECK(policy_for(d, a).type == PolicyType::Tlsa);
    CHECK(policy::failure_code_of("sts-policy-fetch-error: HTTP 404") == 301);
    CHECK(policy::failure_code_of("sts-policy-invalid: no mx") == 302);
    CHECK(policy::failure_code_of("sts-webpki-invalid: expired") == 303);
    CHECK(policy::failure_code_of("no MTA-STS policy") == 0);
}

TEST_CASE("exim tlsrpt verb: hostile bytes never reach a report unescaped") {
    // Exim's error text comes from the remote server; names come from DNS through Exim.
    std::string text = std::string("x\0y", 3) + "\"},{\"result-type\":\"evil\"} = : , { } \x01\x7f\xc3\x28\xff";
    auto a = parse_exim_tlsrpt("tlsrpt validation-failure id1 example.net mx.example.net 192.0.2.1 " +
                               text);
    REQUIRE(std::holds_alternative<SessionEvent>(a));
    const std::string& add = std::get<SessionEvent>(a).additional;
    for (unsigned char c : add) {
        INFO(add);
        CHECK(c >= 0x20);
        CHECK(c < 0x7f);
    }
    CHECK(add.size() <= 310);
    // Names: anything but a host name (blank, '=', ':', ',', braces, NUL, 8-bit) is refused.
    for (const char* bad : {"ex=ample.net", "ex:ample.net", "ex,ample.net", "ex{ample}.net",
                            "ex\xc3\xa9.net.\xff", "a..b"}) {
        INFO(bad);
        CHECK(std::holds_alternative<std::string>(
            parse_exim_tlsrpt(std::string("tlsrpt success id ") + bad + " - -")));
        CHECK(std::holds_alternative<std::string>(
            parse_exim_tlsrpt(std::string("tlsrpt success id example.net ") + bad + " -")));
    }
    CHECK(std::holds_alternative<std::string>(
        parse_exim_tlsrpt(std::string("tlsrpt success id example.net mx.example.net 1.2.3.4") +
                          std::string("\0x", 2))));
}
