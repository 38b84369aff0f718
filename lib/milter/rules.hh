// SPDX-License-Identifier: MIT
// What strictmx-milter decides, without libmilter: RFC 8689 (REQUIRETLS and the
// "TLS-Required: No" header field), the configured senders that always require TLS, and how a
// `requiretls` answer of the policy daemon turns into an RCPT reply.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strictmx::milter {

// RFC 8689 section 5: tls-required-field = "TLS-Required:" [FWS] "No" CRLF. True when `name`
// is "TLS-Required" (any case) and `value` is "No" (any case) once folding (CRLF or LF
// followed by blanks) and surrounding blanks are removed. Any other value ("No, thanks",
// "No (comment)", "Yes", empty) does not count.
bool is_tls_required_field(std::string_view name);
bool tls_required_no(std::string_view value);

// A header field name as Postfix compares them: ASCII case-insensitive.
bool same_field_name(std::string_view a, std::string_view b);
// A field name that may be configured (RFC 5322 ftext: printable ASCII except ':').
bool valid_field_name(std::string_view name);

// The MAIL FROM ESMTP parameters (libmilter's argv after the address): REQUIRETLS (RFC 8689
// section 4.1, no value; keywords are case-insensitive).
bool has_requiretls(const std::vector<std::string_view>& params);

// An envelope address from the MAIL FROM or RCPT TO argument: angle brackets and an RFC 5321
// source route ("@a,@b:") removed. "" for the null sender.
std::string envelope_address(std::string_view arg);
// The domain of an address, lowercased, without trailing dots; "" when there is none (a
// local recipient). An address literal ("[192.0.2.1]") comes back as written.
std::string address_domain(std::string_view address);

// milter.require_tls_senders: "user@domain" (that address) or "@domain" (every address of
// that domain, not its subdomains), compared case-insensitively.
class SenderRules {
  public:
    // Throws std::invalid_argument naming the bad entry.
    explicit SenderRules(const std::vector<std::string>& entries = {});
    // The entry that matched, or nothing.
    std::optional<std::string> match(std::string_view address) const;
    bool empty() const { return addresses_.empty() && domains_.empty(); }

  private:
    std::vector<std::string> addresses_;  // lowercased
    std::vector<std::string> domains_;    // lowercased, without '@'
};

// Why an entry of require_tls_senders is not usable ("" when it is).
std::string sender_rule_problem(std::string_view entry);

// The RCPT reply for a message that requires TLS, from the policy daemon's socketmap reply
// payload for map `requiretls` (nullopt: no reply at all, `failure` says why).
struct RcptVerdict {
    enum class Kind { Accept, Reject, Tempfail } kind = Kind::Tempfail;
    std::string rcode;  // "550", "451"; empty for Accept
    std::string xcode;  // "5.7.30", "4.4.3"
    std::string text;   // names the domain and what it lacks
    std::string level;  // the policy's first word, or NOTFOUND / TEMP / PERM / error
};
RcptVerdict judge(std::string_view domain, const std::optional<std::string>& payload,
                  std::string_view failure = {});

// Text safe for an SMTP reply line and libmilter's smfi_setreply: printable ASCII only, '%'
// replaced, cut at `max`.
std::string reply_text(std::string_view s, std::size_t max = 200);

}  // namespace strictmx::milter
