// SPDX-License-Identifier: MIT
// Fuzz target: the libtlsrpt datagram parser and what follows it in the collector (keys,
// aggregation, the report JSON). Oracle: an accepted datagram names a valid host name and
// policy domains, known result codes, and at least one policy; policy and failure keys read
// back to what they were made from; the report built from it is JSON whose summary counts
// add up to the policies received and whose failure counts to the details received.
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>

#include "dns/name.hh"
#include "oracle.hh"
#include "tlsrpt/datagram.hh"
#include "tlsrpt/report.hh"
#include "tlsrpt/store.hh"

namespace t = strictmx::tlsrpt;
using strictmx::fuzz::check;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    auto p = t::parse_datagram(in);
    if (p.reject != t::Reject::None) return 0;
    check(t::is_utf8(in), "accepted bytes that are not UTF-8", in);
    check(in.size() <= t::kMaxDatagram, "accepted an oversized datagram", in);
    const auto& s = p.session;
    check(strictmx::dns::is_hostname(s.domain), "d is not a host name", in);
    check(!s.policies.empty(), "no policy", in);
    std::int64_t sessions = 0, details = 0;
    for (const auto& pol : s.policies) {
        check(strictmx::dns::is_hostname(pol.domain), "policy-domain is not a host name", in);
        t::PolicyOutcome back;
        check(t::policy_from_key(t::policy_key(pol), back), "policy key does not read back", in);
        check(back.type == pol.type && back.domain == pol.domain && back.strings == pol.strings &&
                  back.mx_hosts == pol.mx_hosts,
              "policy key reads back as another policy", in);
        ++sessions;
        for (const auto& d : pol.failures) {
            check(t::result_type_name(d.code) != nullptr, "unknown result code accepted", in);
            t::FailureDetail db;
            check(t::detail_from_key(t::detail_key(d), db), "detail key does not read back", in);
            check(db.code == d.code && db.present == d.present && db.additional == d.additional &&
                      db.sending_ip == d.sending_ip && db.reason_code == d.reason_code,
                  "detail key reads back as another detail", in);
            ++details;
        }
    }
    t::Batch b;
    b.add("2026-12-05", s);
    t::Group g{"2026-12-05", s.domain, s.record};
    std::vector<t::PolicyCounts> pcs;
    for (const auto& [gk, pols] : b.groups)
        for (const auto& [pk, c] : pols) {
            t::PolicyCounts pc;
            check(t::policy_from_key(pk, pc.policy), "stored key unreadable", in);
            pc.success = c.success;
            pc.failure = c.failure;
            for (const auto& [dk, n] : c.details) {
                t::FailureDetail d;
                check(t::detail_from_key(dk, d), "stored detail unreadable", in);
                pc.details.emplace_back(d, n);
            }
            pcs.push_back(std::move(pc));
        }
    t::Submitter sub{"Org", "r@s.example", "s.example"};
    auto j = nlohmann::json::parse(t::report_json(g, pcs, sub, "x@s.example"), nullptr, false);
    check(!j.is_discarded(), "the report is not JSON", in);
    std::int64_t got_sessions = 0, got_details = 0;
    for (const auto& pol : j["policies"]) {
        got_sessions += pol["summary"]["total-successful-session-count"].get<std::int64_t>() +
                        pol["summary"]["total-failure-session-count"].get<std::int64_t>();
        for (const auto& d : pol["failure-details"])
            got_details += d["failed-session-count"].get<std::int64_t>();
    }
    check(got_sessions == sessions, "report session counts do not add up", in);
    check(got_details == details, "report failure counts do not add up", in);
    return 0;
}
