// SPDX-License-Identifier: MIT
// Fuzz target: hostile DNS answers through the whole decision path. The input is an MX
// RRset in wire format (labels may hold any byte: blank, '=', ':', ',', '{', '}', NUL, '.',
// 8-bit, spaces), per-host A/TLSA answers and an MTA-STS policy; the real policy::Engine
// decides with the unit-test fakes answering from the input, and every profile renders the
// decision for socketmap, tcp_table and Exim. The oracle reads each answer the way Postfix
// and contrib/exim read it and aborts when DNS data added, removed or widened an attribute.
//
// Input layout (short inputs stop early; everything missing has a default):
//   byte 0   flags: bits 0-2 MX answer (see mx_answer()), bits 3-4 policy mode (enforce,
//            testing, enforce, none), bit 5 TXT insecure, bit 6 policy fetch fails
//   byte 1   number of MX records (mod 17)
//   per MX   one host flags byte (bits 0-1 TLSA: none, usable, unusable, bogus; bits 2-3
//            A: secure, insecure, nxdomain, SERVFAIL; bit 4 A is a CNAME to the target
//            below), one length byte, that many bytes of MX RDATA
//   then     one length byte and a CNAME target (raw bytes), then the policy's mx values,
//            one per line
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "answer_oracle.hh"
#include "fakes.hh"
#include "oracle.hh"
#include "policy/engine.hh"
#include "policy/service.hh"
#include "util/log.hh"

namespace dns = strictmx::dns;
namespace policy = strictmx::policy;
namespace fz = strictmx::fuzz;
using fz::check;

namespace {
const std::string kDomain = "victim.example";

struct Reader {
    std::string_view in;
    bool empty() const { return in.empty(); }
    unsigned char byte() {
        if (in.empty()) return 0;
        auto c = static_cast<unsigned char>(in.front());
        in.remove_prefix(1);
        return c;
    }
    std::string_view take(std::size_t n) {
        std::string_view s = in.substr(0, n);
        in.remove_prefix(s.size());
        return s;
    }
};

struct Input {
    unsigned flags = 0;
    std::vector<std::string> mx_rdata;
    std::map<std::string, unsigned> host_flags;  // by decoded host name, first record wins
    std::string cname_target;
    std::vector<std::string> mx_values;
};

Input read_input(std::string_view data) {
    Reader r{data};
    Input in;
    in.flags = r.byte();
    unsigned n = r.byte() % 17;
    for (unsigned i = 0; i < n && !r.empty(); ++i) {
        unsigned hf = r.byte();
        std::string rd(r.take(r.byte()));
        if (auto mx = dns::parse_mx(rd)) in.host_flags.emplace(mx->host, hf);
        in.mx_rdata.push_back(std::move(rd));
    }
    in.cname_target = std::string(r.take(r.byte()));
    std::string_view rest = r.in;
    while (!rest.empty()) {
        std::size_t nl = rest.find('\n');
        in.mx_values.emplace_back(rest.substr(0, nl));
        rest = nl == std::string_view::npos ? std::string_view{} : rest.substr(nl + 1);
    }
    return in;
}

dns::Answer mx_answer(const Input& in) {
    using strictmx::test::ok;
    switch (in.flags & 7) {
        case 0:
        case 7:
            return ok(in.mx_rdata, dns::Security::Secure);
        case 1:
        case 4:
            return ok(in.mx_rdata, dns::Security::Insecure);  // the forged, unsigned RRset
        case 2:
            return strictmx::test::nodata(dns::Security::Secure);
        case 3:
            return strictmx::test::nodata(dns::Security::Insecure);
        case 5:
            return strictmx::test::fail();
        default:
            return strictmx::test::bogus();
    }
}

unsigned flags_of(const Input& in, const std::string& host) {
    auto it = in.host_flags.find(host);
    return it == in.host_flags.end() ? 0 : it->second;
}

// The answer to one query, from the input.
dns::Answer answer(const Input& in, const std::string& name, std::uint16_t type) {
    using namespace strictmx::test;
    if (type == dns::rrtype::TXT && name == "_mta-sts." + kDomain)
        return ok({txt_rdata("v=STSv1; id=1;")},
                  in.flags & 0x20 ? dns::Security::Insecure : dns::Security::Secure);
    if (type == dns::rrtype::MX && name == kDomain) return mx_answer(in);
    if (type == dns::rrtype::TLSA && name.starts_with("_25._tcp.")) {
        switch (flags_of(in, name.substr(9)) & 3) {
            case 0:
                return nxdomain();
            case 1:
                return ok({std::string("\3\1\1", 3) + std::string(32, '\x5a')});
            case 2:
                return ok({std::string("\0\0\1", 3) + std::string(32, '\x5a')});
            default:
                return bogus();
        }
    }
    if (type == dns::rrtype::A || type == dns::rrtype::AAAA) {
        unsigned hf = flags_of(in, name);
        dns::Answer a;
        switch ((hf >> 2) & 3) {
            case 0:
                a = ok({std::string(type == dns::rrtype::A ? 4 : 16, '\x7f')});
                break;
            case 1:
                a = ok({std::string(type == dns::rrtype::A ? 4 : 16, '\x7f')},
                       dns::Security::Insecure);
                break;
            case 2:
                a = nxdomain();
                break;
            default:
                a = fail();
        }
        if (hf & 0x10) a.canonical_name = in.cname_target;
        return a;
    }
    if (type == dns::rrtype::CNAME)
        return ok({in.cname_target},
                  flags_of(in, name) & 0x20 ? dns::Security::Insecure : dns::Security::Secure);
    return nxdomain();
}

struct Rig {
    const Input& in;
    strictmx::test::FakeResolver dns;
    strictmx::test::FakeFetcher https;
    strictmx::ManualClock clock;
    policy::Engine engine;
    explicit Rig(const Input& input)
        : in(input), engine(dns, https, nullptr, clock, policy::EngineOptions{}) {}

    void drain() {
        for (int steps = 0; steps < 10'000; ++steps) {
            if (!dns.queue.empty()) {
                auto [key, cb] = std::move(dns.queue.front());
                dns.queue.pop_front();
                cb(answer(in, key.first, key.second));
            } else if (!https.step()) {
                return;
            }
        }
        fz::violated("the engine keeps asking (over 10,000 queries and fetches)", "");
    }
    bool lookup(policy::Decision& out) {
        bool done = false;
        engine.lookup(kDomain, [&](const policy::Decision& d) {
            out = d;
            done = true;
        });
        drain();
        return done;
    }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    static bool quiet = (strictmx::log::init("fuzz", false, -1), true);
    (void)quiet;
    Input in = read_input(std::string_view(reinterpret_cast<const char*>(data), size));

    std::string body = "version: STSv1\nmode: ";
    static const char* const kModes[] = {"enforce", "testing", "enforce", "none"};
    body += kModes[(in.flags >> 3) & 3];
    body += "\nmax_age: 86400\n";
    for (const auto& v : in.mx_values) body += "mx: " + v + "\n";

    fz::Truth truth;
    truth.domain = kDomain;
    if ((in.flags & 7) == 2 || (in.flags & 7) == 3) truth.names.insert(kDomain);  // implicit MX
    for (const auto& rd : in.mx_rdata) {
        // An MX host the decision may use: decoded, LDH, and exactly the wire labels.
        auto mx = dns::parse_mx(rd);
        if (mx && fz::plain_hostname(mx->host) &&
            fz::wire_name(mx->host) == fz::lower(std::string_view(rd).substr(2)))
            truth.names.insert(mx->host);
        if (mx && !mx->host.empty()) truth.raw_hosts.push_back(mx->host);
    }

    Rig rig(in);
    if (in.flags & 0x40)
        rig.https.set_error(kDomain, "connection refused");
    else
        rig.https.set_body(kDomain, body);

    policy::Decision cold, cached, refreshed;
    check(rig.lookup(cold), "a cold lookup never answered", body);
    auto first = fz::check_decision(cold, truth);
    check(rig.lookup(cached), "a cached lookup never answered", body);
    auto second = fz::check_decision(cached, truth);
    check(first == second, "the cached answer differs from the fresh one",
          first.front() + " | " + second.front());
    // Past every TTL: the refresh path (and eviction) with the same DNS.
    rig.clock.advance(2 * 86400);
    rig.engine.tick();
    rig.drain();
    check(rig.lookup(refreshed), "a lookup after expiry never answered", body);
    fz::check_decision(refreshed, truth);
    return 0;
}
