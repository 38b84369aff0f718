// SPDX-License-Identifier: MIT
// TLSRPT: the _smtp._tls record grammar (RFC 8460 section 3), libtlsrpt datagrams, the
// aggregation and the store, the report JSON, file name and mail (sections 4 and 5).
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <set>
#include <string>

#include "tlsrpt/datagram.hh"
#include "tlsrpt/record.hh"
#include "tlsrpt/report.hh"
#include "tlsrpt/reporter.hh"
#include "tlsrpt/store.hh"

using namespace strictmx::tlsrpt;
using json = nlohmann::json;

namespace {

std::vector<std::string> addrs(const Record& r) {
    std::vector<std::string> out;
    for (const auto& d : r.destinations)
        out.push_back(d.kind == Destination::Kind::Mailto ? "mailto:" + d.address : d.uri);
    return out;
}

// A datagram exactly as libtlsrpt 0.5 writes it (string members with ": ", numbers without).
const std::string kStsFailure =
    R"({"dpv": "1","d": "company-y.example","pr": "v=TLSRPTv1; rua=mailto:tlsrpt@company-y.example",)"
    R"("policies":[{"policy-type":2,"policy-domain": "company-y.example","policy-string":["version: STSv1",)"
    R"("mode: testing","mx: *.mail.company-y.example","max_age: 86400"],"mx-host":["*.mail.company-y.example",)"
    R"("*.mail2.company-y.example"],"failure-details":[{"c":302,"s": "1.2.3.4","n": "mailin.example.com",)"
    R"("h": "test-ehlo.example.com","r": "11.22.33.44","a": "This is additional information","f": "999 TEST ERROR"},)"
    R"({"c":303,"s": "1.2.3.5","n": "mailin.example.com","h": "test-ehlo.example.com","r": "11.22.33.55",)"
    R"("a": "This is additional information","f": "999 TEST ERROR"}],"t":2,"f":1}]})";

const std::string kNoPolicy =
    R"({"dpv": "1","d": "Company-Y.Example.","pr": "v=TLSRPTv1; rua=mailto:tlsrpt@company-y.example",)"
    R"("policies":[{"policy-type":9,"t":0,"f":0}]})";


// A configuration for the reporter tests, in a fresh directory, and one day's outcome for
// `domain` with `record` in its store.
struct ReporterFixture {
    std::string dir;
    strictmx::config::Config c;
    ReporterFixture() {
        char tmpl[] = "/tmp/strictmx-reporter-XXXXXX";
        REQUIRE(::mkdtemp(tmpl));
        dir = tmpl;
        c = strictmx::config::defaults(dir);
        c.tlsrpt_organization_name = "Example Org";
        c.tlsrpt_contact_info = "tlsrpt@sender.example";
        c.tlsrpt_sender_address = "noreply@sender.example";
        c.tlsrpt_sendmail = "/bin/true";
    }
    ~ReporterFixture() {
        std::string cmd = "rm -rf '" + dir + "'";
        CHECK(std::system(cmd.c_str()) == 0);
    }
    void add(const std::string& day, const std::string& domain, const std::string& record) {
        auto store = Store::open(db_path(c));
        Batch b;
        Session s;
        s.domain = domain;
        s.record = record;
        PolicyOutcome p;
        p.domain = domain;
        s.policies = {p};
        b.add(day, s);
        std::string err;
        REQUIRE(store->apply(b, err));
    }
};

}  // namespace

TEST_CASE("tlsrpt record: the grammar's variants", "[tlsrpt]") {
    auto r = parse_record("v=TLSRPTv1; rua=mailto:reports@example.com");
    REQUIRE(r.valid);
    CHECK(addrs(r) == std::vector<std::string>{"mailto:reports@example.com"});

    r = parse_record("v=TLSRPTv1 ;rua=mailto:a@x.example , https://reports.example/tlsrpt ;");
    REQUIRE(r.valid);
    CHECK(addrs(r) ==
          std::vector<std::string>{"mailto:a@x.example", "https://reports.example/tlsrpt"});

    r = parse_record("v=TLSRPTv1;\text=1;rua=mailto:a@x.example");
    REQUIRE(r.valid);  // an extension before rua, a tab as blank
    CHECK(addrs(r) == std::vector<std::string>{"mailto:a@x.example"});

    r = parse_record("v=TLSRPTv1; rua=mailto:tls%2Brpt@x.example,mailto:b@y.example");
    REQUIRE(r.valid);
    CHECK(addrs(r) == std::vector<std::string>{"mailto:tls+rpt@x.example", "mailto:b@y.example"});

    r = parse_record("v=TLSRPTv1; rua=mailto:a@x.example?subject=hi");
    REQUIRE(r.valid);
    CHECK(addrs(r) == std::vector<std::string>{"mailto:a@x.example"});

    r = parse_record("v=TLSRPTv1; rua=MAILTO:a@x.example,ftp://x.example/,https://r.example/");
    REQUIRE(r.valid);  // scheme names are case-insensitive; ftp: is ignored
    CHECK(addrs(r) == std::vector<std::string>{"mailto:a@x.example", "https://r.example/"});
    CHECK(r.ignored == std::vector<std::string>{"ftp://x.example/"});
}

TEST_CASE("tlsrpt record: what is not a record", "[tlsrpt]") {
    for (const char* bad : {
             "", "v=TLSRPTv2; rua=mailto:a@x.example", "rua=mailto:a@x.example",
             "v=tlsrptv1; rua=mailto:a@x.example",    // the version is case-sensitive
             " v=TLSRPTv1; rua=mailto:a@x.example",   // nothing before the version
             "v=TLSRPTv1", "v=TLSRPTv1;", "v=TLSRPTv1 rua=mailto:a@x.example",
             "v=TLSRPTv1; RUA=mailto:a@x.example",    // rua= is case-sensitive: an extension
             "v=TLSRPTv1; ext=1",                     // no rua
             "v=TLSRPTv1; rua=ftp://x.example/",      // no usable URI
             "v=TLSRPTv1; rua=mailto:a@x.example,",   // empty URI
             "v=TLSRPTv1;; rua=mailto:a@x.example",   // empty field
             "v=TLSRPTv1; rua=mailto:%zz@x.example",  // bad escape
             "v=TLSRPTv1; rua=mailto:a%0a@x.example", // a control byte once decoded
             "v=TLSRPTv1; rua=mailto:a@-bad-.example",
             "v=TLSRPTv1; rua=https:///nohost",
             "v=TLSRPTv1; rua=mailto:a@x.example; bad field",
         }) {
        INFO(bad);
        CHECK_FALSE(parse_record(bad).valid);
    }
}

TEST_CASE("tlsrpt datagram: libtlsrpt's bytes", "[tlsrpt]") {
    auto p = parse_datagram(kStsFailure);
    REQUIRE(p.reject == Reject::None);
    const auto& s = p.session;
    CHECK(s.domain == "company-y.example");
    REQUIRE(s.policies.size() == 1);
    const auto& pol = s.policies[0];
    CHECK(pol.type == PolicyType::Sts);
    CHECK(pol.domain == "company-y.example");
    CHECK(pol.strings.size() == 4);
    CHECK(pol.mx_hosts.size() == 2);
    CHECK(pol.failed);
    REQUIRE(pol.failures.size() == 2);
    CHECK(pol.failures[0].code == 302);
    CHECK(pol.failures[1].receiving_ip == "11.22.33.55");
    CHECK(pol.failures[1].present == 63);

    // Postfix 3.10.0-3.10.4: no policy-domain; the domain is normalized.
    p = parse_datagram(kNoPolicy);
    REQUIRE(p.reject == Reject::None);
    CHECK(p.session.domain == "company-y.example");
    CHECK(p.session.policies[0].domain == "company-y.example");
    CHECK(p.session.policies[0].type == PolicyType::NoPolicyFound);
    CHECK_FALSE(p.session.policies[0].failed);
}

TEST_CASE("tlsrpt datagram: rejected whole", "[tlsrpt]") {
    struct Case {
        std::string in;
        Reject want;
    };
    std::string big = kNoPolicy;
    big.insert(big.size() - 3, std::string(70'000, ' '));
    std::vector<Case> cases = {
        {"not json", Reject::NotJson},
        {"[1,2]", Reject::NotObject},
        {std::string("{\"dpv\": \"1\",\"d\": \"a\xff.example\"}"), Reject::NotUtf8},
        {R"({"dpv": "2","d": "x.example","pr": "","policies":[{"policy-type":9,"t":0,"f":0}]})",
         Reject::WrongVersion},
        {R"({"dpv": 1,"d": "x.example","pr": "","policies":[{"policy-type":9,"t":0,"f":0}]})",
         Reject::WrongVersion},
        {R"({"d": "x.example","pr": "","policies":[{"policy-type":9,"t":0,"f":0}]})",
         Reject::WrongVersion},
        {R"({"dpv": "1","pr": "","policies":[{"policy-type":9,"t":0,"f":0}]})",
         Reject::MissingField},
        {R"({"dpv": "1","d": "x.example","policies":[{"policy-type":9,"t":0,"f":0}]})",
         Reject::MissingField},
        {R"({"dpv": "1","d": "x.example","pr": ""})", Reject::MissingField},
        {R"({"dpv": "1","d": "x.example","pr": "","policies":[{"t":0,"f":0}]})",
         Reject::MissingField},
        {R"({"dpv": "1","d": "x.example","pr": "","policies":[{"policy-type":9,"t":0}]})",
         Reject::MissingField},
        {R"({"dpv": "1","d": "x.example","pr": "","policies":[]})", Reject::BadField},
        {R"({"dpv": "1","d": "x.example","pr": "","policies":[{"policy-type":3,"t":0,"f":0}]})",
         Reject::BadField},
        {R"({"dpv": "1","d": "x.example","pr": "","policies":[{"policy-type":9,"t":0,"f":2}]})",
         Reject::BadField},
        {R"({"dpv": "1","d": "x y","pr": "","policies":[{"policy-type":9,"t":0,"f":0}]})",
         Reject::BadField},
        {R"({"dpv": "1","d": "x.example","pr": "","policies":[{"policy-type":9,"t":1,"f":1,)"
         R"("failure-details":[{"c":999}]}]})",
         Reject::BadField},
        {R"({"dpv": "1","d": "x.example","pr": "","policies":[{"policy-type":9,"t":1,"f":1,)"
         R"("failure-details":[{"c":201,"s":5}]}]})",
         Reject::BadField},
        {big, Reject::Oversized},
    };
    for (const auto& c : cases) {
        INFO(c.in.substr(0, 200));
        CHECK(parse_datagram(c.in).reject == c.want);
    }
}

TEST_CASE("tlsrpt keys round-trip", "[tlsrpt]") {
    auto p = parse_datagram(kStsFailure);
    const auto& pol = p.session.policies[0];
    PolicyOutcome back;
    REQUIRE(policy_from_key(policy_key(pol), back));
    CHECK(back.type == pol.type);
    CHECK(back.strings == pol.strings);
    CHECK(back.mx_hosts == pol.mx_hosts);
    FailureDetail d;
    REQUIRE(detail_from_key(detail_key(pol.failures[0]), d));
    CHECK(d.code == 302);
    CHECK(d.additional == "This is additional information");
    FailureDetail partial;
    partial.code = 201;
    partial.receiving_ip = "192.0.2.1";
    partial.present = 8;
    REQUIRE(detail_from_key(detail_key(partial), d));
    CHECK(d.present == 8);
    CHECK_FALSE(detail_from_key("[1]", d));
    CHECK_FALSE(policy_from_key("{}", back));
}

TEST_CASE("tlsrpt store: aggregated counts, one report per group", "[tlsrpt]") {
    char tmpl[] = "/tmp/strictmx-tlsrpt-XXXXXX";
    REQUIRE(::mkdtemp(tmpl));
    std::string path = std::string(tmpl) + "/t.db";
    auto store = Store::open(path);
    Batch b;
    auto fail = parse_datagram(kStsFailure).session;
    auto ok = fail;
    ok.policies[0].failed = false;
    ok.policies[0].failures.clear();
    for (int i = 0; i < 3; ++i) b.add("2026-12-05", fail);
    for (int i = 0; i < 5; ++i) b.add("2026-12-05", ok);
    b.add("2026-12-04", ok);
    b.counters["datagrams_received"] += 9;
    CHECK(b.rows == 4);  // two policy rows (two days), two detail rows
    std::string err;
    REQUIRE(store->apply(b, err));
    Batch b2;
    b2.add("2026-12-05", fail);
    b2.counters["datagrams_received"] += 1;
    REQUIRE(store->apply(b2, err));

    CHECK(store->counters()["datagrams_received"] == 10);
    CHECK(store->days() == std::vector<std::string>{"2026-12-04", "2026-12-05"});
    auto groups = store->groups("2026-12-05");
    REQUIRE(groups.size() == 1);
    auto pols = store->policies(groups[0]);
    REQUIRE(pols.size() == 1);
    CHECK(pols[0].success == 5);
    CHECK(pols[0].failure == 4);
    REQUIRE(pols[0].details.size() == 2);
    CHECK(pols[0].details[0].second == 4);
    CHECK(pols[0].details[1].second == 4);

    Submitter sub{"Example Org", "tlsrpt@sender.example", "sender.example"};
    std::string id = report_id(groups[0], "0123456789abcdef", sub);
    auto j = json::parse(report_json(groups[0], pols, sub, id));
    CHECK(j["date-range"]["start-datetime"] == "2026-12-05T00:00:00Z");
    CHECK(j["date-range"]["end-datetime"] == "2026-12-05T23:59:59Z");
    CHECK(j["report-id"] == id);
    CHECK(j["policies"][0]["policy"]["policy-type"] == "sts");
    CHECK(j["policies"][0]["policy"]["mx-host"].is_array());
    CHECK(j["policies"][0]["summary"]["total-successful-session-count"] == 5);
    CHECK(j["policies"][0]["summary"]["total-failure-session-count"] == 4);
    CHECK(j["policies"][0]["failure-details"][0]["result-type"] == "sts-policy-invalid");
    CHECK(j["policies"][0]["failure-details"][0]["failed-session-count"] == 4);
    CHECK(j["policies"][0]["failure-details"][0]["receiving-mx-helo"] == "test-ehlo.example.com");
    CHECK(report_filename(groups[0], "0123456789abcdef", sub) ==
          "sender.example!company-y.example!1796428800!1796515199!0123456789abcdef.json.gz");

    // The report id is a msg-id: dot-atom "@" dot-atom, nothing outside atext and ".".
    for (char c : id) {
        bool atext = std::isalnum(static_cast<unsigned char>(c)) ||
                     std::string("!#$%&'*+-/=?^_`{|}~.@").find(c) != std::string::npos;
        CHECK(atext);
    }
    CHECK(id.find('@') != std::string::npos);

    REQUIRE_FALSE(store->report_uid(groups[0]));
    REQUIRE(store->set_report_uid(groups[0], "u1", 1));
    REQUIRE(store->set_report_uid(groups[0], "u2", 2));  // the first one stays
    CHECK(store->report_uid(groups[0]) == "u1");

    CHECK(store->prune_before("2026-12-05") > 0);
    CHECK(store->days() == std::vector<std::string>{"2026-12-05"});
    ::unlink(path.c_str());
}

TEST_CASE("tlsrpt mail: RFC 8460 section 5.3", "[tlsrpt]") {
    Group g{"2026-12-05", "example.com", "v=TLSRPTv1; rua=mailto:r@example.com"};
    Submitter sub{"Example\nOrg", "tlsrpt@sender.example", "sender.example"};
    std::string gz = gzip(std::string(5000, 'x'));
    CHECK(gunzip(gz) == std::string(5000, 'x'));
    std::string m = report_mail(g, "id.1@sender.example", "f.json.gz", gz, sub,
                                "noreply@sender.example", "r@example.com", 1764900000, "b1");
    CHECK(m.find("Subject: Report Domain: example.com Submitter: sender.example Report-ID: "
                 "<id.1@sender.example>\r\n") != std::string::npos);
    CHECK(m.find("\r\nTLS-Report-Domain: example.com\r\n") != std::string::npos);
    CHECK(m.find("\r\nTLS-Report-Submitter: sender.example\r\n") != std::string::npos);
    CHECK(m.find("\r\nTLS-Required: No\r\n") != std::string::npos);
    CHECK(m.find("\r\nAuto-Submitted: auto-generated\r\n") != std::string::npos);
    CHECK(m.find("multipart/report; report-type=\"tlsrpt\"") != std::string::npos);
    CHECK(m.find("Content-Type: application/tlsrpt+gzip") != std::string::npos);
    CHECK(m.find("Example?Org") != std::string::npos);  // no header or line injection
    std::size_t start = 0;
    while (start < m.size()) {
        std::size_t end = m.find("\r\n", start);
        REQUIRE(end != std::string::npos);
        CHECK(end - start <= 998);
        CHECK(m.substr(start, end - start).find('\n') == std::string::npos);
        start = end + 2;
    }
    // Long names: the Subject folds instead of passing 998 octets.
    std::string label(63, 'a');
    Group lg{"2026-12-05", label + "." + label + "." + label + "." + label.substr(0, 57) + ".com", ""};
    std::string longid = "x." + lg.domain + "@" + lg.domain;
    std::string lm = report_mail(lg, longid, "f", gz, sub, "n@s.example", "r@e.example", 0, "b");
    for (std::size_t s = 0, e; (e = lm.find("\r\n", s)) != std::string::npos; s = e + 2)
        CHECK(e - s <= 998);
    CHECK(base64("") == "");
    CHECK(base64("f", 0) == "Zg==");
    CHECK(base64("foobar", 0) == "Zm9vYmFy");
}

TEST_CASE("tlsrpt days", "[tlsrpt]") {
    CHECK(utc_day(1796428800) == "2026-12-05");
    CHECK(day_start("2026-12-05") == 1796428800);
    CHECK_FALSE(day_start("2026-02-30"));
    CHECK_FALSE(day_start("2026-12-5"));
    CHECK_FALSE(day_start("yesterday"));
    CHECK(submitter_domain("tlsrpt@Sender.Example") == "sender.example");
    CHECK(submitter_domain("mailto:a@b.example") == "b.example");
    CHECK(submitter_domain("no domain") == "");
}

TEST_CASE("tlsrpt reporter: queued, retried with backoff, given up after retry_for_s",
          "[tlsrpt]") {
    ReporterFixture f;
    f.c.tlsrpt_sendmail = "/bin/false";
    f.c.tlsrpt_retry_for_s = 3600;
    strictmx::ManualClock clock(1796515200 + 3600);  // 2026-12-06 01:00 UTC
    f.add("2026-12-05", "example.com",
          "v=TLSRPTv1; rua=mailto:a@example.com,mailto:b@example.com,ftp://x/");
    f.add("2026-12-05", "bad.example", "v=TLSRPTv2; rua=mailto:a@bad.example");
    Reporter r(f.c, clock);
    auto s1 = r.send_day("2026-12-05");
    CHECK(s1.reports == 1);  // the v=TLSRPTv2 record gets none
    CHECK(s1.queued == 2);
    CHECK(s1.delivered == 0);
    CHECK(r.stats()["deliveries_pending"] == 2);
    auto again = r.send_day("2026-12-05");
    CHECK(again.skipped == 2);  // queued ones are flush's work, never sent twice
    CHECK(again.queued == 0);

    // Not due yet: flush(false) leaves them; flush(true) tries them now and they fail again.
    clock.advance(60);
    CHECK(r.flush(false).queued == 0);
    CHECK(r.flush(true).queued == 2);
    // Past retry_for_s: given up, spool files removed.
    clock.advance(4000);
    auto s3 = r.flush(true);
    CHECK(s3.gave_up == 2);
    CHECK(r.stats()["deliveries_failed"] == 2);
    CHECK(r.stats()["deliveries_pending"] == 0);

    // A later day with a working sendmail: delivered once, not again.
    f.c.tlsrpt_sendmail = "/bin/true";
    f.add("2026-12-06", "example.com", "v=TLSRPTv1; rua=mailto:a@example.com");
    Reporter r2(f.c, clock);
    CHECK(r2.send_day("2026-12-06").delivered == 1);
    CHECK(r2.send_day("2026-12-06").delivered == 0);
    CHECK(r2.stats()["reports_delivered"] == 1);
}

TEST_CASE("tlsrpt reporter: run() waits for the day's end and its random delay", "[tlsrpt]") {
    ReporterFixture f;
    f.c.tlsrpt_max_delay_s = 3600;
    strictmx::ManualClock clock(1796515200 - 60);  // 2026-12-05 23:59 UTC
    f.add("2026-12-05", "example.com", "v=TLSRPTv1; rua=mailto:a@example.com");
    Reporter r(f.c, clock);
    CHECK(r.run().delivered == 0);  // the day has not ended
    clock.advance(60 + 3600);       // past the end and any delay
    CHECK(r.run().delivered == 1);
    CHECK(r.run().delivered == 0);
}

TEST_CASE("tlsrpt: hostile bytes keep the report's and the mail's shape", "[tlsrpt]") {
    // Policy text and failure details pass through as data: quotes, brackets, braces,
    // separators, NUL, CR LF and 8-bit UTF-8 end up as the same strings in the JSON.
    using namespace std::string_literals;
    const std::vector<std::string> hostile = {
        "\"}],\"policies\":[{\"x\":1", "{ policy_string = x }", "a=b:c,d;e", "nul\0byte"s,
        "\r\nBcc: evil@attacker.example", "caf\xc3\xa9 \xf0\x9f\x94\x92"};
    // JSON-escaped as libtlsrpt escapes them (control bytes as \uXXXX, 8-bit bytes raw).
    std::string strings;
    for (std::size_t i = 0; i < hostile.size(); ++i) strings += (i ? "," : "") + json(hostile[i]).dump();
    std::string dg = R"({"dpv": "1","d": "example.com","pr": "v=TLSRPTv1; rua=mailto:r@example.com",)"
                     R"("policies":[{"policy-type":2,"policy-domain": "example.com","policy-string":[)" +
                     strings + R"(],"mx-host":["*.example.com"],"failure-details":[{"c":202,)"
                     R"("a": "x\r\nBcc: evil@attacker.example","n": "mx}{,=:.example"}],"t":1,"f":1}]})";
    auto p = parse_datagram(dg);
    REQUIRE(p.reject == Reject::None);
    Batch b;
    b.add("2026-12-05", p.session);
    REQUIRE(b.groups.size() == 1);
    std::vector<PolicyCounts> pcs;
    for (const auto& [pk, c] : b.groups.begin()->second) {
        PolicyCounts pc;
        REQUIRE(policy_from_key(pk, pc.policy));
        pc.failure = c.failure;
        for (const auto& [dk, n] : c.details) {
            FailureDetail d;
            REQUIRE(detail_from_key(dk, d));
            pc.details.emplace_back(d, n);
        }
        pcs.push_back(pc);
    }
    Group g{"2026-12-05", "example.com", p.session.record};
    Submitter sub{"Org", "r@s.example", "s.example"};
    auto j = json::parse(report_json(g, pcs, sub, "id@s.example"));
    REQUIRE(j["policies"].size() == 1);
    auto got = j["policies"][0]["policy"]["policy-string"].get<std::vector<std::string>>();
    REQUIRE(got.size() == hostile.size());
    CHECK(got == hostile);
    CHECK(j["policies"][0]["failure-details"][0]["additional-information"] ==
          "x\r\nBcc: evil@attacker.example");
    CHECK(j.size() == 5);  // no member added from the data

    // The mail carries the report only inside base64: no header can come from the data.
    std::string gz = gzip(j.dump());
    std::string m = report_mail(g, "id@s.example", "f.json.gz", gz, sub, "n@s.example",
                                "r@example.com", 0, "b");
    CHECK(m.find("Bcc") == std::string::npos);

    // Names with those bytes never pass: d, policy-domain.
    for (const char* d : {"a=b.example", "a:b.example", "a b.example", "a,b.example",
                          "{a}.example", "a\\u0000b.example", "caf\xc3\xa9.example\\u0000"}) {
        std::string bad = std::string(R"({"dpv": "1","d": ")") + d +
                          R"(","pr": "","policies":[{"policy-type":9,"t":0,"f":0}]})";
        INFO(bad);
        CHECK(parse_datagram(bad).reject == Reject::BadField);
        std::string badpd = R"({"dpv": "1","d": "x.example","pr": "","policies":[{"policy-type":1,)"
                            R"("policy-domain": ")" + std::string(d) + R"(","t":0,"f":0}]})";
        CHECK(parse_datagram(badpd).reject == Reject::BadField);
    }
    // Record URIs: control bytes, once decoded, are refused; nothing reaches sendmail's
    // argument list or a header but a checked address.
    CHECK_FALSE(parse_record("v=TLSRPTv1; rua=mailto:a@x.example%0d%0aBcc:e@x.example").valid);
    CHECK_FALSE(parse_record("v=TLSRPTv1; rua=mailto:a%00@x.example").valid);
    CHECK_FALSE(parse_record("v=TLSRPTv1; rua=mailto:a\"b@x.example").valid);
    CHECK_FALSE(parse_record("v=TLSRPTv1; rua=mailto:a@x.example\x80").valid);
    auto r = parse_record("v=TLSRPTv1; rua=mailto:-oQ/tmp@x.example");
    REQUIRE(r.valid);  // a leading '-' is atext; sendmail gets it after "--" or via -t
    CHECK(r.destinations[0].address == "-oQ/tmp@x.example");
}
