// SPDX-License-Identifier: MIT
// TLSRPT outcomes that do not come as libtlsrpt datagrams: delivery attempts Exim reports
// through its events (the `tlsrpt` verb of the exim listener), and policy failures the
// daemon saw itself while answering an MTA that does not report them (Exim, Postfix without
// TLSRPT). For these the daemon looks up the `_smtp._tls` record itself (RFC 8460 section 3)
// and, for DANE, the MX host's TLSA records for the policy strings.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <variant>

#include "dns/resolver.hh"
#include "policy/decision.hh"
#include "tlsrpt/datagram.hh"

namespace strictmx::tlsrpt {

class Collector;

// One delivery attempt to one MX host.
struct SessionEvent {
    std::string id;          // the MTA's message id: one session per message, host and result
    std::string domain;      // the recipient (report) domain, lowercase, no trailing dot
    std::string mx_host;     // "" when unknown
    std::string ip;          // "" when unknown
    int code = 0;            // 0 success, else a result type (libtlsrpt's code, 201-306)
    std::string additional;  // additional-information, "" for none
};

// The exim listener's verb, one line:
//   tlsrpt RESULT MSGID DOMAIN MXHOST IP [TEXT]
// RESULT: "success", an RFC 8460 result type, or "defer" (TEXT is Exim's error string of a
// msg:host:defer event, classified by classify_exim_defer; not a TLS failure: ignored).
// MXHOST and IP may be "-". Returns the attempt, or why the line is refused (for the reply).
std::variant<SessionEvent, std::string> parse_exim_tlsrpt(std::string_view line);

// Exim's error text for a host deferral -> result type code; 0 when it is not a TLS failure
// (connection refused, a 4xx reply, a timeout before STARTTLS: RFC 8460 counts TLS sessions).
int classify_exim_defer(std::string_view error);

// The policy of a session from the daemon's own decision for the recipient domain: DANE ->
// tlsa, policy-domain the MX host (strings added later from its TLSA records); MTA-STS ->
// sts with the policy's lines and mx patterns; a policy failure -> its policy type with no
// strings; anything else -> no-policy-found.
PolicyOutcome policy_for(const policy::Decision& d, const SessionEvent& a);

class OwnReporter {
  public:
    OwnReporter(dns::Resolver& resolver, Collector& collector)
        : resolver_(resolver), collector_(collector) {}

    // Looks up `_smtp._tls.DOMAIN` (and the TLSA records for DANE), then submits one session;
    // a domain without a usable record gets no report (nothing to send it to). Bounded: past
    // kMaxInFlight lookups, and for an id seen within kDedupSeconds with the same host and
    // result, the attempt is counted and dropped.
    void report(const policy::Decision& d, SessionEvent a, const char* source, std::int64_t now);

    struct Stats {
        std::uint64_t reported = 0, no_record = 0, duplicate = 0, dropped = 0;
        std::uint64_t policy_failures = 0;  // lookups answered from a policy failure
    };
    void note_policy_failure() { ++stats_.policy_failures; }
    const Stats& stats() const { return stats_; }

    static constexpr int kMaxInFlight = 1000;
    static constexpr std::int64_t kDedupSeconds = 3600;
    static constexpr std::size_t kMaxDedup = 100'000;

  private:
    void submit(PolicyOutcome p, const SessionEvent& a, const std::string& record,
                const char* source);

    dns::Resolver& resolver_;
    Collector& collector_;
    int in_flight_ = 0;
    std::map<std::string, std::int64_t> seen_;  // id|host|code -> when
    Stats stats_;
};

}  // namespace strictmx::tlsrpt
