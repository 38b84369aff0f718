// SPDX-License-Identifier: MIT
// tcp_table codec: request lines, %XX coding and the reply limit.
#include <catch2/catch.hpp>

#include "codecs/tcp_table.hh"

using namespace strictmx;
using S = tcp_table::ParseResult::Status;

TEST_CASE("tcp_table parses get requests") {
    auto r = tcp_table::parse_request("get example.com\n");
    REQUIRE(r.status == S::Complete);
    CHECK(r.key == "example.com");
    CHECK(r.consumed == 16);
    auto crlf = tcp_table::parse_request("get a%20b\r\nget next\n");
    REQUIRE(crlf.status == S::Complete);
    CHECK(crlf.key == "a b");
    CHECK(crlf.consumed == 11);
}

TEST_CASE("tcp_table rejects bad requests") {
    CHECK(tcp_table::parse_request("get example.com").status == S::NeedMore);
    CHECK(tcp_table::parse_request("put a b\n").status == S::Malformed);
    CHECK(tcp_table::parse_request("get \n").status == S::Malformed);
    CHECK(tcp_table::parse_request("get a%2\n").status == S::Malformed);
    CHECK(tcp_table::parse_request("get a%zz\n").status == S::Malformed);
    CHECK(tcp_table::parse_request(std::string(20'000, 'a')).status == S::Malformed);
}

TEST_CASE("tcp_table %XX coding round trips") {
    std::string raw = "a b%c\n\x01\xff";
    CHECK(tcp_table::encode(raw) == "a%20b%25c%0A%01%FF");
    CHECK(tcp_table::decode(tcp_table::encode(raw)) == raw);
    CHECK(!tcp_table::decode("%"));
    CHECK(!tcp_table::decode("%4"));
}

TEST_CASE("tcp_table replies fit in 4096 bytes") {
    CHECK(*tcp_table::reply(200, "secure match=a.example") == "200 secure match=a.example\n");
    CHECK(*tcp_table::reply(500, "not found") == "500 not found\n");
    CHECK(*tcp_table::reply(400, "bad\nthing%") == "400 bad%0Athing%25\n");
    CHECK(!tcp_table::reply(200, std::string(5000, 'x')));
    auto err = tcp_table::reply(400, std::string(5000, '%'));
    REQUIRE(err);
    CHECK(err->size() <= tcp_table::kMaxReply);
    CHECK(err->back() == '\n');
}
