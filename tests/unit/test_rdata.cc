// SPDX-License-Identifier: MIT
// RDATA decoders over hostile bytes.
#include <catch2/catch.hpp>

#include "dns/resolver.hh"

using namespace strictmx::dns;
using namespace std::string_literals;

TEST_CASE("MX rdata") {
    auto mx = parse_mx(
        "\x00\x0a\x03mx1\x07"
        "example\x03"
        "com\x00"s);
    REQUIRE(mx);
    CHECK(mx->preference == 10);
    CHECK(mx->host == "mx1.example.com");
    auto null_mx = parse_mx("\x00\x00\x00"s);
    REQUIRE(null_mx);
    CHECK(null_mx->host.empty());
    CHECK(!parse_mx("\x00\x0a"s));
    CHECK(!parse_mx("\x00\x0a\x05mx1"s));
    CHECK(!parse_mx("\x00\x0a\xc0\x0c"s));
    CHECK(!parse_mx("\x00\x0a\x03mx1\x00junk"s));
}

TEST_CASE("TXT rdata") {
    CHECK(parse_txt("\x07v=STSv1\x07; id=12"s) == "v=STSv1; id=12");
    CHECK(parse_txt("\x00"s) == "");
    CHECK(
        !parse_txt("\x05"
                   "abc"s));
    CHECK(!parse_txt(""s));
}

TEST_CASE("weakest DNSSEC link wins") {
    CHECK(weakest(Security::Secure, Security::Insecure) == Security::Insecure);
    CHECK(weakest(Security::Insecure, Security::Bogus) == Security::Bogus);
    CHECK(weakest(Security::Secure, Security::Indeterminate) == Security::Indeterminate);
}
