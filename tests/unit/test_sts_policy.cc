// SPDX-License-Identifier: MIT
// MTA-STS policy parser and MX pattern matching (RFC 8461 sections 3.2 and 4.1).
#include <catch2/catch.hpp>

#include "sts/policy.hh"

using namespace strictmx::sts;

TEST_CASE("policy with CRLF lines") {
    auto p = parse_policy(
        "version: STSv1\r\nmode: enforce\r\nmx: mx1.example.com\r\nmx: *.example.net\r\nmax_age: "
        "86400\r\n");
    REQUIRE(p);
    CHECK(p->mode == Mode::Enforce);
    CHECK(p->max_age == 86400);
    CHECK(p->mx == std::vector<std::string>{"mx1.example.com", "*.example.net"});
}

TEST_CASE("policy with LF lines, no final newline, unknown keys, blanks and case") {
    auto p = parse_policy(
        "version: STSv1\nmode:testing\n\nfoo: bar baz\nmx:  MX.Example.COM \nmax_age: 0");
    REQUIRE(p);
    CHECK(p->mode == Mode::Testing);
    CHECK(p->max_age == 0);
    CHECK(p->mx == std::vector<std::string>{"mx.example.com"});
}

TEST_CASE("mode none needs no mx") {
    auto p = parse_policy("version: STSv1\nmode: none\nmax_age: 60\n");
    REQUIRE(p);
    CHECK(p->mode == Mode::None);
}

TEST_CASE("max_age is capped") {
    auto p = parse_policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 9999999999\n");
    REQUIRE(p);
    CHECK(p->max_age == kMaxMaxAge);
    CHECK(!parse_policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 99999999999\n"));
    CHECK(!parse_policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: -1\n"));
    CHECK(!parse_policy("version: STSv1\nmode: enforce\nmx: a.example\nmax_age: 1d\n"));
}

TEST_CASE("policies missing a required key are invalid") {
    CHECK(!parse_policy("mode: enforce\nmx: a.example\nmax_age: 60\n"));
    CHECK(!parse_policy("version: STSv1\nmx: a.example\nmax_age: 60\n"));
    CHECK(!parse_policy("version: STSv1\nmode: enforce\nmax_age: 60\n"));
    CHECK(!parse_policy("version: STSv1\nmode: enforce\nmx: a.example\n"));
    CHECK(!parse_policy("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 60\n"));
    CHECK(!parse_policy("version: STSv1\nmode: Enforce\nmx: a.example\nmax_age: 60\n"));
    auto dup = parse_policy(
        "version: STSv1\nmode: enforce\nmode: none\nmx: a.example\nmax_age: 60\nmax_age: x\n");
    REQUIRE(dup);
    CHECK(dup->mode == Mode::Enforce);
    CHECK(dup->max_age == 60);
    CHECK(!parse_policy(""));
    CHECK(!parse_policy("<html>hello</html>"));
    CHECK(!parse_policy(std::string(kMaxPolicyBytes + 1, '\n')));
}

TEST_CASE("bad mx patterns invalidate the policy") {
    auto with = [](const std::string& mx) {
        return parse_policy("version: STSv1\nmode: enforce\nmx: " + mx + "\nmax_age: 60\n");
    };
    CHECK(with("mx.example.com"));
    CHECK(with("*.example.com"));
    CHECK(!with("192.0.2.1"));
    CHECK(!with("[192.0.2.1]"));
    CHECK(!with("2001:db8::1"));
    CHECK(!with("*.*.example.com"));
    CHECK(!with("foo.*.example.com"));
    CHECK(!with("*example.com"));
    CHECK(!with("*"));
    CHECK(!with("*.com."));
    CHECK(!with("mx.example.com match=evil"));
    CHECK(!with("mx.example.com}"));
    CHECK(!with("mx_1.example.com"));
    CHECK(!with(""));
}

TEST_CASE("stray carriage returns are rejected") {
    CHECK(!parse_policy("version: STSv1\rmode: enforce\nmx: a.example\nmax_age: 60\n"));
}

TEST_CASE("mx pattern matching covers exactly one label") {
    CHECK(mx_matches("mx.example.com", "MX.example.com"));
    CHECK(mx_matches("mx.example.com", "mx.example.com."));
    CHECK_FALSE(mx_matches("mx.example.com", "mx2.example.com"));
    CHECK(mx_matches("*.example.net", "a.example.net"));
    CHECK_FALSE(mx_matches("*.example.net", "a.b.example.net"));
    CHECK_FALSE(mx_matches("*.example.net", "example.net"));
    CHECK_FALSE(mx_matches("*.example.net", ".example.net"));
    CHECK_FALSE(mx_matches("*.example.net", "aexample.net"));
}

TEST_CASE("canonical lines are safe and round trip") {
    auto p = parse_policy(
        "version: STSv1\r\nmode: enforce\r\nx-unknown: {evil}\r\nmx: a.example\r\nmax_age: "
        "600\r\n");
    REQUIRE(p);
    CHECK(p->lines() == std::vector<std::string>{"version: STSv1", "mode: enforce", "mx: a.example",
                                                 "max_age: 600"});
    auto again = parse_policy(p->text());
    REQUIRE(again);
    CHECK(again->mx == p->mx);
}
