// SPDX-License-Identifier: MIT
// Key classification and host name validation.
#include <catch2/catch.hpp>

#include "dns/name.hh"

using namespace strictmx::dns;

TEST_CASE("policy keys are classified like Postfix next hops") {
    CHECK(classify_key("Example.COM").kind == KeyKind::Domain);
    CHECK(classify_key("Example.COM").domain == "example.com");
    CHECK(classify_key("example.com.").domain == "example.com");
    CHECK(classify_key(".example.com").kind == KeyKind::ParentProbe);
    CHECK(classify_key("[mx.example.com]").kind == KeyKind::NextHop);
    CHECK(classify_key("[mx.example.com]:587").kind == KeyKind::NextHop);
    CHECK(classify_key("mx.example.com:25").kind == KeyKind::NextHop);
    CHECK(classify_key("192.0.2.1").kind == KeyKind::IpLiteral);
    CHECK(classify_key("2001:db8::1").kind == KeyKind::IpLiteral);
    CHECK(classify_key("[192.0.2.1]").kind == KeyKind::NextHop);
    CHECK(classify_key("1.2.3.4.5").kind == KeyKind::Invalid);
    CHECK(classify_key("localhost").kind == KeyKind::Invalid);
    CHECK(classify_key("bad_name.example").kind == KeyKind::Invalid);
    CHECK(classify_key("-bad.example").kind == KeyKind::Invalid);
    CHECK(classify_key("a..b").kind == KeyKind::Invalid);
    CHECK(classify_key("").kind == KeyKind::Invalid);
    CHECK(classify_key(std::string(2000, 'a') + ".com").kind == KeyKind::Invalid);
    CHECK(classify_key("exa mple.com").kind == KeyKind::Invalid);
}

TEST_CASE("internationalized names become A-labels") {
    auto k = classify_key("bücher.example");
    REQUIRE(k.kind == KeyKind::Domain);
    CHECK(k.domain == "xn--bcher-kva.example");
    CHECK(classify_key("xn--bcher-kva.example").domain == "xn--bcher-kva.example");
    CHECK(classify_key("\xff\xfe.example").kind == KeyKind::Invalid);
}

TEST_CASE("host names") {
    CHECK(is_hostname("mx1.example.net"));
    CHECK(is_hostname("a.b"));
    CHECK_FALSE(is_hostname("example"));
    CHECK_FALSE(is_hostname("192.0.2.1"));
    CHECK_FALSE(is_hostname("*.example.net"));
    CHECK_FALSE(is_hostname("mx1.example.net."));
    CHECK_FALSE(is_hostname(std::string(64, 'a') + ".example"));
    CHECK(is_hostname(std::string(63, 'a') + ".example"));
}

TEST_CASE("to_alabel refuses a name with a NUL instead of converting a prefix", "[name]") {
    using namespace std::string_literals;
    CHECK(strictmx::dns::to_alabel("caf\xc3\xa9.example\0.evil"s) == "");
    CHECK(strictmx::dns::to_alabel("caf\xc3\xa9.example") == "xn--caf-dma.example");
}

TEST_CASE("an address literal with a NUL is not one (inet_pton would read only its prefix)") {
    CHECK(strictmx::dns::is_ip_literal("192.0.2.1"));
    CHECK_FALSE(strictmx::dns::is_ip_literal(std::string("192.0.2.1\0evil", 14)));
    CHECK_FALSE(strictmx::dns::is_ip_literal(std::string("::1\0", 4)));
}
