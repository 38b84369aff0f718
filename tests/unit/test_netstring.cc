// SPDX-License-Identifier: MIT
// Netstring codec: byte-level cases and round trips.
#include <catch2/catch.hpp>

#include "codecs/netstring.hh"

using namespace strictmx;
using S = netstring::ParseResult::Status;

TEST_CASE("netstring parses a complete request") {
    auto r = netstring::parse("19:postfix example.com,");
    REQUIRE(r.status == S::Complete);
    CHECK(r.payload == "postfix example.com");
    CHECK(r.consumed == 23);
}

TEST_CASE("netstring asks for more bytes") {
    CHECK(netstring::parse("").status == S::NeedMore);
    CHECK(netstring::parse("2").status == S::NeedMore);
    CHECK(netstring::parse("20:postfix").status == S::NeedMore);
    CHECK(netstring::parse("3:abc").status == S::NeedMore);
}

TEST_CASE("netstring rejects malformed framing") {
    CHECK(netstring::parse("x:abc,").status == S::Malformed);
    CHECK(netstring::parse(":abc,").status == S::Malformed);
    CHECK(netstring::parse("3:abcd").status == S::Malformed);
    CHECK(netstring::parse("-1:a,").status == S::Malformed);
}

TEST_CASE("netstring enforces the request limit before the bytes arrive") {
    CHECK(netstring::parse("10001:").status == S::Malformed);
    CHECK(netstring::parse("99999999999999999999:").status == S::Malformed);
    std::string big(10'000, 'a');
    auto r = netstring::parse(netstring::encode(big));
    CHECK(r.status == S::Complete);
}

TEST_CASE("netstring round trip and pipelined input") {
    std::string two = netstring::encode("NOTFOUND ") + netstring::encode("OK secure");
    CHECK(netstring::encode("NOTFOUND ") == "9:NOTFOUND ,");
    auto a = netstring::parse(two);
    REQUIRE(a.status == S::Complete);
    CHECK(a.payload == "NOTFOUND ");
    auto b = netstring::parse(std::string_view(two).substr(a.consumed));
    REQUIRE(b.status == S::Complete);
    CHECK(b.payload == "OK secure");
    CHECK(netstring::encode("") == "0:,");
    CHECK(netstring::parse("0:,").status == S::Complete);
}
