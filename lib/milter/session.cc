// SPDX-License-Identifier: MIT
// strictmx-milter's decisions for one SMTP session (RFC 8689).
#include "milter/session.hh"

#include <algorithm>

#include "util/log.hh"
#include "util/strings.hh"

namespace strictmx::milter {

namespace {
void bump(std::atomic<std::uint64_t>* c) {
    if (c) c->fetch_add(1, std::memory_order_relaxed);
}
}  // namespace

#define COUNT(field) bump(counters_ ? &counters_->field : nullptr)

void Session::helo(std::string_view tls_version) {
    tls_ = !tls_version.empty();
}

Session::Reply Session::mail(std::string_view from, const std::vector<std::string_view>& params,
                             std::optional<std::string_view> tls_version) {
    reset_message();
    if (tls_version) tls_ = !tls_version->empty();
    sender_ = envelope_address(from);
    if (has_requiretls(params)) {
        if (!tls_) {
            // RFC 8689 section 4.1: REQUIRETLS may only be offered, and used, after STARTTLS.
            COUNT(mail_rejected);
            log::info("REQUIRETLS without TLS rejected",
                      {{"from", sender_},
                       {"reply", "530 5.7.10 REQUIRETLS needs a TLS-protected session"}});
            return {Reply::Kind::Reject, "530", "5.7.10",
                    "REQUIRETLS needs a TLS-protected session: issue STARTTLS first"};
        }
        requires_tls_ = true;
        why_required_ = "REQUIRETLS";
    } else if (auto rule = settings_.senders.match(sender_)) {
        requires_tls_ = true;
        why_required_ = "require_tls_senders " + *rule;
    }
    return {};
}

Session::Reply Session::rcpt(std::string_view to, std::string_view mailer,
                             std::string_view queue_id) {
    if (!requires_tls_) return {};
    std::string address = envelope_address(to);
    const auto& local = settings_.local_transports;
    if (!mailer.empty() && std::find(local.begin(), local.end(), mailer) != local.end()) {
        // Delivered on this host: no SMTP hop that TLS would have to protect.
        ++accepted_;
        COUNT(rcpt_accepted);
        return {};
    }
    std::string domain = address_domain(address);
    if (domain.empty() || domain.find_first_of(" \t\r\n") != std::string::npos) {
        ++rejected_;
        COUNT(rcpt_rejected);
        log::info("recipient rejected", {{"queue_id", queue_id},
                                         {"from", sender_},
                                         {"to", address},
                                         {"why", "no recipient domain"}});
        return {Reply::Kind::Reject, "550", "5.7.30",
                "REQUIRETLS support required: recipient " + reply_text(address, 100) +
                    " has no domain whose TLS policy could be checked"};
    }
    COUNT(lookups);
    PolicyClient::Result r = lookup_(domain);
    RcptVerdict v = judge(domain, r.payload, r.failure);
    switch (v.kind) {
        case RcptVerdict::Kind::Accept:
            ++accepted_;
            COUNT(rcpt_accepted);
            log::debug("recipient accepted",
                       {{"queue_id", queue_id}, {"to", address}, {"level", v.level}});
            return {};
        case RcptVerdict::Kind::Reject:
            ++rejected_;
            COUNT(rcpt_rejected);
            log::info("recipient rejected", {{"queue_id", queue_id},
                                             {"from", sender_},
                                             {"to", address},
                                             {"requires", why_required_},
                                             {"level", v.level},
                                             {"reply", v.rcode + " " + v.xcode + " " + v.text}});
            return {Reply::Kind::Reject, v.rcode, v.xcode, v.text};
        case RcptVerdict::Kind::Tempfail:
            break;
    }
    ++deferred_;
    COUNT(rcpt_tempfailed);
    log::warn("recipient deferred", {{"queue_id", queue_id},
                                     {"from", sender_},
                                     {"to", address},
                                     {"requires", why_required_},
                                     {"level", v.level},
                                     {"reply", v.rcode + " " + v.xcode + " " + v.text}});
    return {Reply::Kind::Tempfail, v.rcode, v.xcode, v.text};
}

void Session::header(std::string_view name, std::string_view value) {
    if (same_field_name(name, settings_.route_header)) {
        ++route_headers_;
    } else if (is_tls_required_field(name) && tls_required_no(value)) {
        tls_required_no_ = true;
    }
}

Session::Changes Session::end_of_message(std::string_view queue_id) {
    Changes c;
    c.delete_route_headers = route_headers_;
    const char* why = "";
    if (requires_tls_) {
        // RFC 8689 section 5: with REQUIRETLS a TLS-Required header field is ignored.
        c.add_route = "requiretls";
        why = why_required_.c_str();
        COUNT(requiretls);
    } else if (tls_required_no_ && settings_.route_relaxed) {
        c.add_route = "relaxed";
        why = "TLS-Required: No";
        COUNT(relaxed);
    } else {
        COUNT(plain);
    }
    COUNT(messages);
    if (counters_ && route_headers_ > 0)
        counters_->forged_headers_removed.fetch_add(static_cast<std::uint64_t>(route_headers_),
                                                    std::memory_order_relaxed);
    std::string removed = std::to_string(route_headers_);
    if (!c.add_route.empty() || route_headers_ > 0) {
        log::info("message", {{"queue_id", queue_id},
                              {"from", sender_},
                              {"route", c.add_route.empty() ? "default" : c.add_route},
                              {"why", *why ? why : "client-supplied route header"},
                              {"tls_required_no", tls_required_no_ ? "yes" : "no"},
                              {"rcpt_accepted", std::to_string(accepted_)},
                              {"rcpt_rejected", std::to_string(rejected_ + deferred_)},
                              {"route_headers_removed", removed}});
    } else {
        log::debug("message", {{"queue_id", queue_id}, {"from", sender_}, {"route", "default"}});
    }
    reset_message();
    return c;
}

void Session::reset_message() {
    requires_tls_ = false;
    why_required_.clear();
    sender_.clear();
    route_headers_ = 0;
    tls_required_no_ = false;
    accepted_ = rejected_ = deferred_ = 0;
}

}  // namespace strictmx::milter
