// SPDX-License-Identifier: MIT
// One SMTP session as strictmx-milter sees it, without libmilter: what to answer at MAIL FROM
// and RCPT TO, and what to change at the end of each message. milter/main.cc maps libmilter's
// callbacks onto it; the unit tests drive it directly.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "milter/policy_client.hh"
#include "milter/rules.hh"

namespace strictmx::milter {

struct Settings {
    std::string route_header = "X-Strictmx-Route";
    bool route_relaxed = true;  // tls_required_no = "route"
    SenderRules senders;
    std::vector<std::string> local_transports = {"local", "virtual"};
};

// Counters shared by every session (relaxed atomics: read for status and metrics).
struct Counters {
    std::atomic<std::uint64_t> messages{0}, requiretls{0}, relaxed{0}, plain{0};
    std::atomic<std::uint64_t> rcpt_accepted{0}, rcpt_rejected{0}, rcpt_tempfailed{0};
    std::atomic<std::uint64_t> mail_rejected{0}, forged_headers_removed{0}, lookups{0};
};

// The policy daemon's answer for one domain under map `requiretls`.
using Lookup = std::function<PolicyClient::Result(std::string_view domain)>;

class Session {
  public:
    Session(const Settings& settings, Lookup lookup, Counters* counters = nullptr)
        : settings_(settings), lookup_(std::move(lookup)), counters_(counters) {}

    struct Reply {
        enum class Kind { Continue, Reject, Tempfail } kind = Kind::Continue;
        std::string rcode, xcode, text;
    };

    // HELO/EHLO with the {tls_version} macro, empty when the session is not TLS-protected
    // (Postfix sends it with the HELO macros, again after STARTTLS).
    void helo(std::string_view tls_version);
    // MAIL FROM: the address argument and the ESMTP parameters; `tls_version` when the macro
    // came with MAIL (nullopt: keep what HELO said).
    Reply mail(std::string_view from, const std::vector<std::string_view>& params,
               std::optional<std::string_view> tls_version = std::nullopt);
    // RCPT TO with Postfix's {rcpt_mailer} (the transport; may be empty) and {i} if known.
    Reply rcpt(std::string_view to, std::string_view mailer, std::string_view queue_id = {});
    void header(std::string_view name, std::string_view value);

    struct Changes {
        int delete_route_headers = 0;  // delete copies N..1 of route_header
        std::string add_route;         // "" | "requiretls" | "relaxed"
    };
    // End of message: the header changes; logs the message's decision line.
    Changes end_of_message(std::string_view queue_id);
    // The message ended without end_of_message (RSET, abort, QUIT).
    void reset_message();

    bool tls() const { return tls_; }
    bool requires_tls() const { return requires_tls_; }

  private:
    const Settings& settings_;
    Lookup lookup_;
    Counters* counters_;
    bool tls_ = false;
    // The message in progress.
    bool requires_tls_ = false;
    std::string why_required_;  // "REQUIRETLS" | "sender rule @example.org"
    std::string sender_;
    int route_headers_ = 0;
    bool tls_required_no_ = false;
    int accepted_ = 0, rejected_ = 0, deferred_ = 0;
};

}  // namespace strictmx::milter
