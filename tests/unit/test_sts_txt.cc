// SPDX-License-Identifier: MIT
// MTA-STS TXT record grammar (RFC 8461 section 3.1).
#include <catch2/catch.hpp>

#include "sts/txt.hh"

using namespace strictmx::sts;

TEST_CASE("valid STS TXT records") {
    CHECK(parse_txt_record("v=STSv1; id=20160831085700Z;")->id == "20160831085700Z");
    CHECK(parse_txt_record("v=STSv1; id=abc")->id == "abc");
    CHECK(parse_txt_record("v=STSv1;id=abc")->id == "abc");
    CHECK(parse_txt_record("v=STSv1 ;\tid=abc ; ext=1;")->id == "abc");
    CHECK(parse_txt_record("v=STSv1; ext_x.y-z=v!; id=A1")->id == "A1");
    CHECK(parse_txt_record("v=STSv1; id=" + std::string(32, '9'))->id.size() == 32);
    CHECK(parse_txt_record("v=STSv1; id=abc;  ")->id == "abc");
    CHECK(parse_txt_record("v=STSv1; id=a; id=b")->id == "a");
}

TEST_CASE("invalid STS TXT records") {
    CHECK(!parse_txt_record("v=STSv1;"));
    CHECK(!parse_txt_record("v=STSv1"));
    CHECK(!parse_txt_record("v=STSv1; id="));
    CHECK(!parse_txt_record("v=STSv1; id=has-dash"));
    CHECK(!parse_txt_record("v=STSv1; id=" + std::string(33, '9')));
    CHECK(!parse_txt_record("v=STSv1; id=a;; x=1"));
    CHECK(!parse_txt_record("v=stsv1; id=a"));
    CHECK(!parse_txt_record("V=STSv1; id=a"));
    CHECK(!parse_txt_record("v=STSv1; id=a b"));
    CHECK(!parse_txt_record("v=STSv1; ext=; id=a"));
    CHECK(!parse_txt_record("v=STSv1; -ext=1; id=a"));
    CHECK(!parse_txt_record("v=STSv1; ext=a=b; id=a"));
    CHECK(!parse_txt_record("v=STSv1; id=a\x01"));
    CHECK(!parse_txt_record("v=STSv2; id=a"));
}

TEST_CASE("record selection: exactly one v=STSv1 record") {
    CHECK(select_txt({"v=spf1 -all", "v=STSv1; id=1;"})->id == "1");
    CHECK(!select_txt({}));
    CHECK(!select_txt({"v=spf1 -all"}));
    CHECK(!select_txt({"v=STSv1; id=1;", "v=STSv1; id=2;"}));
    CHECK(!select_txt({"v=STSv1; id=bad-id;"}));
    CHECK(!select_txt({"v=STSv1; id=1;", "v=STSv1; broken"}));
    CHECK(select_txt({"v=STSv10; id=2", "v=STSv1; id=1"})->id == "1");
}
