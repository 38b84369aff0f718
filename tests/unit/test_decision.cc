// SPDX-License-Identifier: MIT
// Answer rendering per profile: exact match lists, TLSRPT attributes, TEMP cases.
#include <catch2/catch.hpp>

#include "policy/decision.hh"

using namespace strictmx;
using namespace strictmx::policy;

namespace {
Decision sts_decision(const std::string& text, std::vector<std::string> mx, bool known = true) {
    Decision d;
    d.kind = Decision::Kind::Sts;
    d.domain = "example.com";
    d.policy = std::make_shared<const sts::Policy>(*sts::parse_policy(text));
    d.mx_hosts = std::move(mx);
    d.mx_known = known;
    return d;
}
const Profile& prof(const char* n) {
    return *find_profile(n);
}
}  // namespace

TEST_CASE("enforce with exact names") {
    auto d = sts_decision(
        "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: mx2.example.com\nmax_age: 600\n",
        {"mx1.example.com"});
    auto r = render(d, prof("postfix"));
    CHECK(r.kind == Reply::Kind::Ok);
    CHECK(r.text == "secure match=mx1.example.com:mx2.example.com servername=hostname");
}

TEST_CASE("wildcards expand to current MX hosts with exactly one more label") {
    auto d = sts_decision(
        "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: *.pool.example.net\nmax_age: "
        "600\n",
        {"mx1.example.com", "b.pool.example.net", "a.pool.example.net", "x.y.pool.example.net",
         "evil.example.org"});
    auto r = render(d, prof("postfix"));
    CHECK(r.text ==
          "secure match=mx1.example.com:a.pool.example.net:b.pool.example.net servername=hostname");
}

TEST_CASE("wildcard-only policy with no matching MX defers") {
    auto d = sts_decision("version: STSv1\nmode: enforce\nmx: *.pool.example.net\nmax_age: 600\n",
                          {"mx.other.org"});
    CHECK(render(d, prof("postfix")).kind == Reply::Kind::Temp);
    auto unknown = sts_decision(
        "version: STSv1\nmode: enforce\nmx: *.pool.example.net\nmax_age: 600\n", {}, false);
    CHECK(render(unknown, prof("postfix")).kind == Reply::Kind::Temp);
}

TEST_CASE("testing and none answer NOTFOUND except for strict profiles") {
    auto t = sts_decision("version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 600\n", {});
    CHECK(render(t, prof("postfix")).kind == Reply::Kind::NotFound);
    CHECK(render(t, prof("postfix-tlsrpt")).kind == Reply::Kind::NotFound);
    CHECK(render(t, prof("strict")).text == "secure match=mx.example.com servername=hostname");
    auto n = sts_decision("version: STSv1\nmode: none\nmax_age: 600\n", {});
    CHECK(render(n, prof("strict")).kind == Reply::Kind::NotFound);
}

TEST_CASE("postfix-tlsrpt adds the Postfix 3.10 attributes") {
    auto d = sts_decision(
        "version: STSv1\nmode: enforce\nmx: *.example.net\nmx: mx.example.com\nmax_age: 600\n",
        {"a.example.net"});
    auto r = render(d, prof("postfix-tlsrpt"));
    CHECK(r.text ==
          "secure match=mx.example.com:a.example.net servername=hostname policy_type=sts "
          "policy_domain=example.com"
          " { policy_string = version: STSv1 } { policy_string = mode: enforce }"
          " { policy_string = mx: *.example.net } { policy_string = mx: mx.example.com }"
          " { policy_string = max_age: 600 } mx_host_pattern=*.example.net "
          "mx_host_pattern=mx.example.com");
}

TEST_CASE("overrides, not found and temp") {
    Decision o;
    o.kind = Decision::Kind::Override;
    o.override_text = "dane-only";
    CHECK(render(o, prof("postfix")).text == "dane-only");
    o.override_text = "";
    CHECK(render(o, prof("postfix")).kind == Reply::Kind::NotFound);
    Decision t;
    t.kind = Decision::Kind::Temp;
    t.why = "DNS failed";
    CHECK(render(t, prof("postfix")).kind == Reply::Kind::Temp);
    CHECK(find_profile("nonsense") == nullptr);
}

TEST_CASE("Exim answers") {
    auto d = sts_decision(
        "version: STSv1\nmode: enforce\nmx: mx1.example.com\nmx: *.pool.example.net\nmax_age: "
        "600\n",
        {"mx1.example.com", "a.pool.example.net", "x.y.pool.example.net"});
    CHECK(render_exim(d, prof("postfix")) ==
          "level=secure mode=enforce mx=mx1.example.com:*.pool.example.net "
          "match=mx1.example.com:a.pool.example.net");
    CHECK(exim_mxcheck(d, prof("postfix"), "mx1.example.com").empty());
    CHECK(exim_mxcheck(d, prof("postfix"), "a.pool.example.net").empty());
    CHECK_FALSE(exim_mxcheck(d, prof("postfix"), "x.y.pool.example.net").empty());
    CHECK_FALSE(exim_mxcheck(d, prof("postfix"), "evil.example.org").empty());
    auto t = sts_decision("version: STSv1\nmode: testing\nmx: mx.example.com\nmax_age: 600\n", {});
    CHECK(render_exim(t, prof("postfix")) == "level=none mode=testing");
    CHECK(exim_mxcheck(t, prof("postfix"), "evil.example.org").empty());
    CHECK_FALSE(exim_mxcheck(t, prof("strict"), "evil.example.org").empty());
    Decision temp;
    temp.kind = Decision::Kind::Temp;
    temp.why = "DNS \"failed\"\n";
    CHECK(render_exim(temp, prof("postfix")) == "level=tempfail reason=\"DNS 'failed'?\"");
    CHECK_FALSE(exim_mxcheck(temp, prof("postfix"), "mx.example.com").empty());
    Decision dane;
    dane.kind = Decision::Kind::Dane;
    dane.dane_level = "dane-only";
    CHECK(render_exim(dane, prof("postfix")) == "level=dane-only");
    CHECK(exim_mxcheck(dane, prof("postfix"), "any.example.org").empty());
    Decision none;
    CHECK(render_exim(none, prof("postfix")) == "level=none");
}
