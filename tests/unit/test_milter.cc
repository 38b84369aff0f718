// SPDX-License-Identifier: MIT
// strictmx-milter's decisions: RFC 8689 header and parameter rules, sender rules, RCPT
// verdicts from socketmap answers, the session's changes, the socketmap client against a
// real listening socket, and the requiretls profile.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "codecs/netstring.hh"
#include "milter/policy_client.hh"
#include "milter/rules.hh"
#include "milter/session.hh"
#include "policy/decision.hh"

using namespace strictmx;
using namespace strictmx::milter;

TEST_CASE("TLS-Required: No, RFC 8689 section 5") {
    CHECK(is_tls_required_field("TLS-Required"));
    CHECK(is_tls_required_field("tls-required"));
    CHECK(is_tls_required_field("TLS-REQUIRED"));
    CHECK_FALSE(is_tls_required_field("TLS-Required-X"));
    CHECK_FALSE(is_tls_required_field("X-TLS-Required"));
    for (const char* v : {"No", "no", "NO", "nO", " No", "No ", "\tNo\t", "  no  ",
                          "\r\n No", "\n\tNo", "No\r\n", " \r\n\t No \r\n "}) {
        INFO(v);
        CHECK(tls_required_no(v));
    }
    for (const char* v : {"", " ", "Yes", "No thanks", "No, thanks", "No (comment)", "N o",
                          "No;", "\"No\"", "Non", "o", "No\r\nX: y", "\nNo", "No\rx"}) {
        INFO(v);
        CHECK_FALSE(tls_required_no(v));
    }
    CHECK_FALSE(tls_required_no(std::string_view("No\0", 3)));
}

TEST_CASE("REQUIRETLS parameter and envelope addresses") {
    CHECK(has_requiretls({"REQUIRETLS"}));
    CHECK(has_requiretls({"SIZE=100", "requiretls"}));
    CHECK_FALSE(has_requiretls({}));
    CHECK_FALSE(has_requiretls({"REQUIRETLS=yes"}));
    CHECK_FALSE(has_requiretls({"XREQUIRETLS", "BODY=8BITMIME"}));

    CHECK(envelope_address("<alice@Example.ORG>") == "alice@Example.ORG");
    CHECK(envelope_address("<>") == "");
    CHECK(envelope_address("alice@example.org") == "alice@example.org");
    CHECK(envelope_address("<@relay.example,@b.example:bob@example.net>") == "bob@example.net");
    CHECK(envelope_address("<@broken>") == "");
    CHECK(address_domain("bob@Example.NET.") == "example.net");
    CHECK(address_domain("\"a@b\"@example.net") == "example.net");
    CHECK(address_domain("postmaster") == "");
    CHECK(address_domain("x@[192.0.2.1]") == "[192.0.2.1]");
}

TEST_CASE("require_tls_senders") {
    SenderRules r({"alice@example.org", "@Secure.Example.ORG"});
    CHECK(r.match("alice@example.org") == "alice@example.org");
    CHECK(r.match("ALICE@EXAMPLE.ORG") == "alice@example.org");
    CHECK(r.match("bob@secure.example.org") == "@secure.example.org");
    CHECK(r.match("bob@SECURE.example.org.") == "@secure.example.org");
    CHECK_FALSE(r.match("bob@example.org"));
    CHECK_FALSE(r.match("bob@sub.secure.example.org"));  // the domain only
    CHECK_FALSE(r.match("bob@notsecure.example.org"));
    CHECK_FALSE(r.match("alice@example.org.evil"));
    CHECK_FALSE(r.match(""));  // the null sender
    CHECK_FALSE(r.match("secure.example.org"));
    for (const char* bad : {"", "alice", "alice@", "@", "a b@example.org", "<a@example.org>",
                            "@exa mple.org", "@-bad-.example"}) {
        INFO(bad);
        CHECK_THROWS_AS(SenderRules({bad}), std::invalid_argument);
        CHECK_FALSE(sender_rule_problem(bad).empty());
    }
}

TEST_CASE("RCPT verdicts from requiretls answers") {
    using K = RcptVerdict::Kind;
    for (const char* ok : {"OK dane-only", "OK dane", "OK secure match=mx.example.net",
                           "OK verify match=mx.example.net", "OK fingerprint match=AA:BB",
                           "OK secure match=a:b servername=hostname"}) {
        INFO(ok);
        CHECK(judge("example.net", std::string(ok)).kind == K::Accept);
    }
    for (const char* weak : {"NOTFOUND ", "OK may", "OK encrypt", "OK none", "OK ", "OK",
                             "OK securefoo", "OK Secure-ish"}) {
        INFO(weak);
        RcptVerdict v = judge("example.net", std::string(weak));
        CHECK(v.kind == K::Reject);
        CHECK(v.rcode == "550");
        CHECK(v.xcode == "5.7.30");
        CHECK(v.text.find("example.net") != std::string::npos);
    }
    RcptVerdict nf = judge("example.net", std::string("NOTFOUND "));
    CHECK(nf.text.find("neither DANE") != std::string::npos);
    RcptVerdict may = judge("example.net", std::string("OK may"));
    CHECK(may.text.find("\"may\"") != std::string::npos);
    for (const char* t : {"TEMP policy lookup still in progress", "TIMEOUT ", "PERM bad", "",
                          "garbage"}) {
        INFO(t);
        RcptVerdict v = judge("example.net", std::string(t));
        CHECK(v.kind == K::Tempfail);
        CHECK(v.rcode == "451");
        CHECK(v.xcode.starts_with("4."));
    }
    RcptVerdict down = judge("example.net", std::nullopt, "connect: Connection refused");
    CHECK(down.kind == K::Tempfail);
    CHECK(down.text.find("Connection refused") != std::string::npos);
    // Hostile bytes in a domain or reason never reach the SMTP reply raw.
    RcptVerdict h = judge("ex%ample\r\n.net", std::string("TEMP a\r\n550 b%s"));
    CHECK(h.text.find_first_of("\r\n%") == std::string::npos);
}

namespace {
struct Fake {
    std::vector<std::string> asked;
    std::map<std::string, PolicyClient::Result> answers;
    Lookup lookup() {
        return [this](std::string_view d) {
            asked.emplace_back(d);
            auto it = answers.find(std::string(d));
            if (it == answers.end()) return PolicyClient::Result{std::string("NOTFOUND "), {}};
            return it->second;
        };
    }
};
}  // namespace

TEST_CASE("session: plain mail costs no lookup and gets no route") {
    Settings s;
    Fake f;
    Counters c;
    Session ss(s, f.lookup(), &c);
    ss.helo("TLSv1.3");
    CHECK(ss.mail("<bob@example.org>", {}).kind == Session::Reply::Kind::Continue);
    CHECK(ss.rcpt("<carol@example.net>", "smtp").kind == Session::Reply::Kind::Continue);
    ss.header("Subject", "hello");
    auto ch = ss.end_of_message("ABC");
    CHECK(ch.add_route.empty());
    CHECK(ch.delete_route_headers == 0);
    CHECK(f.asked.empty());
    CHECK(c.plain == 1);
}

TEST_CASE("session: REQUIRETLS needs TLS, then every recipient is judged alone") {
    Settings s;
    Fake f;
    f.answers["dane.example"] = {std::string("OK dane-only"), {}};
    f.answers["sts.example"] = {std::string("OK secure match=mx.sts.example"), {}};
    f.answers["weak.example"] = {std::string("OK may"), {}};
    f.answers["temp.example"] = {std::string("TEMP dns timeout"), {}};
    f.answers["down.example"] = {std::nullopt, "connect: Connection refused"};
    Session plain(s, f.lookup());
    plain.helo("");
    auto r = plain.mail("<a@example.org>", {"REQUIRETLS"});
    CHECK(r.kind == Session::Reply::Kind::Reject);
    CHECK(r.rcode == "530");
    CHECK(r.xcode == "5.7.10");

    Session ss(s, f.lookup());
    ss.helo("TLSv1.3");
    REQUIRE(ss.mail("<a@example.org>", {"SIZE=10", "REQUIRETLS"}).kind ==
            Session::Reply::Kind::Continue);
    CHECK(ss.requires_tls());
    using K = Session::Reply::Kind;
    CHECK(ss.rcpt("<x@dane.example>", "smtp").kind == K::Continue);
    CHECK(ss.rcpt("<x@STS.example.>", "smtp").kind == K::Continue);
    CHECK(ss.rcpt("<x@weak.example>", "smtp").rcode == "550");
    CHECK(ss.rcpt("<x@none.example>", "smtp").xcode == "5.7.30");
    CHECK(ss.rcpt("<x@temp.example>", "smtp").kind == K::Tempfail);
    CHECK(ss.rcpt("<x@down.example>", "smtp").kind == K::Tempfail);
    CHECK(ss.rcpt("<postmaster>", "smtp").kind == K::Reject);
    CHECK(ss.rcpt("<user>", "local").kind == K::Continue);  // delivered here
    CHECK(ss.rcpt("<u@virt.example>", "virtual").kind == K::Continue);
    CHECK(f.asked == std::vector<std::string>{"dane.example", "sts.example", "weak.example",
                                              "none.example", "temp.example", "down.example"});
    ss.header("TLS-Required", "No");  // ignored with REQUIRETLS (RFC 8689 section 5)
    ss.header("x-strictmx-route", "relaxed");
    auto ch = ss.end_of_message("Q1");
    CHECK(ch.add_route == "requiretls");
    CHECK(ch.delete_route_headers == 1);

    // The next message on the same connection starts afresh, still over TLS.
    CHECK(ss.mail("<b@example.org>", {}).kind == K::Continue);
    CHECK_FALSE(ss.requires_tls());
    CHECK(ss.rcpt("<x@weak.example>", "smtp").kind == K::Continue);
    CHECK(ss.end_of_message("Q2").add_route.empty());

    // STARTTLS then EHLO again: the macro at MAIL decides too.
    Session late(s, f.lookup());
    late.helo("");
    CHECK(late.mail("<a@example.org>", {"REQUIRETLS"}, std::string_view("TLSv1.2")).kind ==
          K::Continue);
}

TEST_CASE("session: listed senders, TLS-Required: No and forged route headers") {
    Settings s;
    s.senders = SenderRules({"alice@example.org", "@secure.example.org"});
    Fake f;
    f.answers["dane.example"] = {std::string("OK dane-only"), {}};
    using K = Session::Reply::Kind;
    Session ss(s, f.lookup());
    ss.helo("");  // no TLS needed for a listed sender: the requirement is on the next hops
    CHECK(ss.mail("<Alice@Example.org>", {}).kind == K::Continue);
    CHECK(ss.requires_tls());
    CHECK(ss.rcpt("<r@dane.example>", "smtp").kind == K::Continue);
    CHECK(ss.rcpt("<r@nothing.example>", "smtp").kind == K::Reject);
    ss.header("X-Strictmx-Route", "relaxed");
    ss.header("X-STRICTMX-ROUTE", "requiretls");
    auto ch = ss.end_of_message("Q");
    CHECK(ch.add_route == "requiretls");
    CHECK(ch.delete_route_headers == 2);

    CHECK(ss.mail("<x@secure.example.org>", {}).kind == K::Continue);
    CHECK(ss.requires_tls());
    ss.reset_message();
    CHECK_FALSE(ss.requires_tls());

    // TLS-Required: No routes relaxed; a forged route header is removed all the same.
    CHECK(ss.mail("<bob@example.org>", {}).kind == K::Continue);
    ss.header("X-Strictmx-Route", "requiretls");
    ss.header("tls-required", " \r\n\tNO ");
    ch = ss.end_of_message("Q3");
    CHECK(ch.add_route == "relaxed");
    CHECK(ch.delete_route_headers == 1);

    CHECK(ss.mail("<bob@example.org>", {}).kind == K::Continue);
    ss.header("TLS-Required", "No thanks");
    ss.header("X-Strictmx-Route", "relaxed");
    ch = ss.end_of_message("Q4");
    CHECK(ch.add_route.empty());
    CHECK(ch.delete_route_headers == 1);

    Settings ignore = s;
    ignore.route_relaxed = false;  // tls_required_no = "ignore"
    Session si(ignore, f.lookup());
    CHECK(si.mail("<bob@example.org>", {}).kind == K::Continue);
    si.header("TLS-Required", "No");
    CHECK(si.end_of_message("Q5").add_route.empty());
}

namespace {
// A TCP listener on 127.0.0.1 with a kernel-chosen port.
int loopback_listener(int& port, int backlog = 16) {
    int lfd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(lfd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    socklen_t len = sizeof a;
    ::getsockname(lfd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    ::listen(lfd, backlog);
    return lfd;
}

// A socketmap server on 127.0.0.1 that answers each request with `reply` (or closes).
struct TinyServer {
    int lfd = -1;
    int port = 0;
    std::thread th;
    TinyServer(std::function<std::string(std::string)> reply, int requests) {
        lfd = loopback_listener(port);
        th = std::thread([this, reply, requests] {
            int served = 0;
            while (served < requests) {
                int c = ::accept(lfd, nullptr, nullptr);
                if (c < 0) return;
                std::string buf;
                char tmp[512];
                while (served < requests) {
                    auto r = netstring::parse(buf);
                    if (r.status == netstring::ParseResult::Status::Complete) {
                        std::string out = reply(std::string(r.payload));
                        buf.erase(0, r.consumed);
                        ++served;
                        if (out == "<close>") break;
                        ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
                        continue;
                    }
                    ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
                    if (n <= 0) break;
                    buf.append(tmp, static_cast<std::size_t>(n));
                }
                ::close(c);
            }
        });
    }
    ~TinyServer() {
        ::shutdown(lfd, SHUT_RDWR);
        ::close(lfd);
        th.join();
    }
    std::string address() const { return "inet:127.0.0.1:" + std::to_string(port); }
};
}  // namespace

TEST_CASE("policy client: request format, reuse, deadline, refused") {
    std::vector<std::string> seen;
    std::mutex mu;
    {
        TinyServer srv(
            [&](std::string req) {
                std::lock_guard l(mu);
                seen.push_back(req);
                return netstring::encode("OK dane-only");
            },
            3);
        PolicyClient pc(srv.address(), 2000);
        for (int i = 0; i < 3; ++i) {
            auto r = pc.lookup("requiretls", "example.net");
            REQUIRE(r.payload);
            CHECK(*r.payload == "OK dane-only");
        }
        CHECK(pc.stats().connects == 1);  // one connection, kept
    }
    CHECK(seen == std::vector<std::string>(3, "requiretls example.net"));

    {  // a server that accepts (the kernel does) but never answers: the deadline, not a hang
        int slow_port = 0;
        int lfd = loopback_listener(slow_port, 4);
        PolicyClient pc("inet:127.0.0.1:" + std::to_string(slow_port), 200);
        auto t0 = std::chrono::steady_clock::now();
        auto r = pc.lookup("requiretls", "slow.example");
        CHECK_FALSE(r.payload);
        CHECK(r.failure.find("no answer within 200 ms") != std::string::npos);
        CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::seconds(5));
        ::close(lfd);
    }
    {  // a malformed or oversized reply is a failure, never an answer
        TinyServer srv([](std::string) { return std::string("999999999:OK"); }, 1);
        PolicyClient pc(srv.address(), 1000);
        auto r = pc.lookup("requiretls", "x.example");
        CHECK_FALSE(r.payload);
        CHECK(r.failure.find("malformed") != std::string::npos);
    }
    {  // the pooled connection was closed by the server: one fresh connection is tried
        int n = 0;
        TinyServer srv(
            [&](std::string) {
                ++n;
                return n == 2 ? std::string("<close>") : netstring::encode("NOTFOUND ");
            },
            3);
        PolicyClient pc(srv.address(), 2000);
        CHECK(pc.lookup("requiretls", "a.example").payload == "NOTFOUND ");
        CHECK(pc.lookup("requiretls", "b.example").payload == "NOTFOUND ");
        CHECK(pc.stats().connects == 2);
    }
    int port;
    {
        TinyServer srv([](std::string) { return std::string(); }, 0);
        port = srv.port;
    }
    PolicyClient refused("inet:127.0.0.1:" + std::to_string(port), 1000);
    auto r = refused.lookup("requiretls", "x.example");
    CHECK_FALSE(r.payload);
    CHECK_FALSE(r.failure.empty());
    CHECK_FALSE(PolicyClient("unix:/nonexistent/strictmx.sock", 500).lookup("m", "k").payload);
    CHECK_FALSE(PolicyClient("inet:127.0.0.1:1", 500).lookup("m", std::string(20000, 'a')).payload);
    CHECK_THROWS_AS(PolicyClient("127.0.0.1:8461", 100), std::invalid_argument);
    CHECK_THROWS_AS(PolicyClient("inet:localhost:8461", 100), std::invalid_argument);
    CHECK_THROWS_AS(PolicyClient("inet:127.0.0.1:99999", 100), std::invalid_argument);
}

TEST_CASE("policy client: every pooled connection closed by the daemon at once") {
    // strictmx-policyd closes idle clients; after a quiet spell every pooled connection is
    // gone. A lookup must then reach the daemon on a fresh connection, not fail on the next
    // stale one.
    int port = 0;
    int lfd = loopback_listener(port);
    std::vector<std::thread> conns;
    std::mutex mu;
    std::thread acceptor([&] {
        for (;;) {
            int c = ::accept(lfd, nullptr, nullptr);
            if (c < 0) return;
            std::lock_guard l(mu);
            conns.emplace_back([c] {  // one answer, a little late, then the connection closes
                std::string buf;
                char tmp[256];
                for (;;) {
                    auto r = netstring::parse(buf);
                    if (r.status == netstring::ParseResult::Status::Complete) break;
                    ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
                    if (n <= 0) break;
                    buf.append(tmp, static_cast<std::size_t>(n));
                }
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
                std::string out = netstring::encode("OK dane-only");
                ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
                ::close(c);
            });
        }
    });
    PolicyClient pc("inet:127.0.0.1:" + std::to_string(port), 2000);
    std::vector<std::thread> first;
    for (int i = 0; i < 4; ++i)
        first.emplace_back([&] { CHECK(pc.lookup("requiretls", "a.example").payload); });
    for (auto& t : first) t.join();
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
    auto r = pc.lookup("requiretls", "b.example");
    CHECK(r.payload == std::optional<std::string>("OK dane-only"));
    CHECK(r.failure.empty());
    ::shutdown(lfd, SHUT_RDWR);
    ::close(lfd);
    acceptor.join();
    for (auto& t : conns) t.join();
}

TEST_CASE("requiretls profile: any DANE is dane-only, testing counts, nothing else") {
    using namespace strictmx::policy;
    const Profile& p = *find_profile("requiretls");
    Decision d;
    d.domain = "example.net";
    d.kind = Decision::Kind::Dane;
    d.dane_level = "dane";
    CHECK(render(d, p).text == "dane-only");
    CHECK(render(d, *find_profile("postfix")).text == "dane");
    d.kind = Decision::Kind::Sts;
    d.policy = std::make_shared<const sts::Policy>(
        *sts::parse_policy("version: STSv1\nmode: testing\nmx: mx.example.net\nmax_age: 600\n"));
    d.mx_hosts = {"mx.example.net"};
    d.mx_known = true;
    CHECK(render(d, p).text == "secure match=mx.example.net servername=hostname");
    CHECK(render(d, *find_profile("postfix")).kind == Reply::Kind::NotFound);
    d.policy = std::make_shared<const sts::Policy>(
        *sts::parse_policy("version: STSv1\nmode: none\nmx: mx.example.net\nmax_age: 600\n"));
    CHECK(render(d, p).kind == Reply::Kind::NotFound);
    d.kind = Decision::Kind::NotFound;
    CHECK(render(d, p).kind == Reply::Kind::NotFound);
    d.kind = Decision::Kind::Temp;
    d.why = "dns timeout";
    CHECK(render(d, p).kind == Reply::Kind::Temp);
}

TEST_CASE("many sessions on many threads share one client and the counters", "[threads]") {
    // libmilter runs each SMTP session on its own thread; the ThreadSanitizer build runs
    // this case (ctest label tsan).
    std::atomic<int> served{0};
    constexpr int kThreads = 24, kMessages = 20;
    // A socketmap server with a thread per connection: the client keeps up to 8 open.
    int server_port = 0;
    int lfd = loopback_listener(server_port, 64);
    std::vector<std::thread> conns;
    std::mutex conns_mu;
    std::thread acceptor([&] {
        for (;;) {
            int c = ::accept(lfd, nullptr, nullptr);
            if (c < 0) return;
            std::lock_guard l(conns_mu);
            conns.emplace_back([c, &served] {
                std::string buf;
                char tmp[512];
                for (;;) {
                    auto r = netstring::parse(buf);
                    if (r.status == netstring::ParseResult::Status::Complete) {
                        std::string req(r.payload);
                        buf.erase(0, r.consumed);
                        ++served;
                        std::string out = netstring::encode(
                            req.ends_with("dane.example") ? "OK dane-only" : "NOTFOUND ");
                        ::send(c, out.data(), out.size(), MSG_NOSIGNAL);
                        continue;
                    }
                    ssize_t n = ::recv(c, tmp, sizeof tmp, 0);
                    if (n <= 0) break;
                    buf.append(tmp, static_cast<std::size_t>(n));
                }
                ::close(c);
            });
        }
    });
    struct Address {
        int port;
        std::string address() const { return "inet:127.0.0.1:" + std::to_string(port); }
    } srv{server_port};
    auto client_owner = std::make_unique<PolicyClient>(srv.address(), 5000, 8);
    PolicyClient& client = *client_owner;
    Settings s;
    s.senders = SenderRules({"@secure.example.org"});
    Counters counters;
    std::vector<std::thread> threads;
    std::atomic<int> wrong{0};
    for (int t = 0; t < kThreads; ++t) {
        threads.emplace_back([&] {
            Session ss(
                s, [&](std::string_view d) { return client.lookup("requiretls", d); }, &counters);
            ss.helo("TLSv1.3");
            for (int i = 0; i < kMessages; ++i) {
                ss.mail("<a@secure.example.org>", {});
                if (ss.rcpt("<b@dane.example>", "smtp").kind != Session::Reply::Kind::Continue)
                    ++wrong;
                if (ss.rcpt("<b@none.example>", "smtp").rcode != "550") ++wrong;
                ss.header("X-Strictmx-Route", "relaxed");
                if (ss.end_of_message("Q").add_route != "requiretls") ++wrong;
            }
        });
    }
    for (auto& th : threads) th.join();
    CHECK(wrong == 0);
    CHECK(served == kThreads * kMessages * 2);
    CHECK(counters.requiretls == kThreads * kMessages);
    CHECK(counters.rcpt_rejected == kThreads * kMessages);
    CHECK(counters.forged_headers_removed == kThreads * kMessages);
    CHECK(client.stats().lookups == static_cast<std::uint64_t>(kThreads * kMessages * 2));
    CHECK(client.stats().connects < client.stats().lookups / 4);  // connections are reused
    ::shutdown(lfd, SHUT_RDWR);
    ::close(lfd);
    acceptor.join();
    client_owner.reset();  // its pooled connections close, so the server threads end
    for (auto& c : conns) c.join();
}

TEST_CASE("requiretls profile: TLSA records that authenticate no MX host are no path") {
    using namespace strictmx::policy;
    const Profile& p = *find_profile("requiretls");
    Decision d;
    d.domain = "example.net";
    d.kind = Decision::Kind::Dane;
    d.dane_level = "dane";
    d.dane_no_usable_tlsa = true;
    CHECK(render(d, p).kind == Reply::Kind::NotFound);  // 550 5.7.30 at RCPT
    CHECK(render(d, *find_profile("postfix")).text == "dane");  // Postfix: TLS required
    d.policy = std::make_shared<const sts::Policy>(
        *sts::parse_policy("version: STSv1\nmode: enforce\nmx: mx.example.net\nmax_age: 600\n"));
    d.mx_hosts = {"mx.example.net"};
    d.mx_known = true;
    CHECK(render(d, p).text == "secure match=mx.example.net servername=hostname");
}
