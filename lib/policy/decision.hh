// SPDX-License-Identifier: MIT
// A policy decision for one destination domain, and how each answer profile writes it.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "sts/policy.hh"

namespace strictmx::policy {

struct Decision {
    enum class Kind {
        NotFound,  // no policy applies: Postfix uses its own default level
        Sts,       // an MTA-STS policy applies (any mode; the profile decides what to say)
        Temp,      // defer: a failure that must not downgrade
        Override,  // a static answer from the configuration
        Dane,      // DANE applies: `dane_level` is "dane-only" or "dane" (RFC 8461 section 2)
    };
    Kind kind = Kind::NotFound;
    std::string domain;
    std::string source;  // key | override | cache | fetch | dns
    std::string why;     // one human sentence for the log line and `strictmx query`
    // Sts; and Dane when the domain also has an MTA-STS policy in force: with partial DANE
    // (`dane_level` "dane") an enforced policy makes the answer dane-only.
    std::shared_ptr<const sts::Policy> policy;
    std::vector<std::string> mx_hosts;  // the domain's MX host names, if known
    bool mx_known = false;
    std::string mx_error;       // why the MX set is unknown
    std::string override_text;  // Override only
    std::string dane_level;     // Dane only
    bool dane_no_usable_tlsa = false;  // Dane: TLSA exists but no MX host's is usable
    // A policy failure behind this answer, as an RFC 8460 result type (libtlsrpt's codes:
    // 301 sts-policy-fetch-error, 302 sts-policy-invalid, 303 sts-webpki-invalid, 305
    // dnssec-invalid); 0 for none. Set when the failure decided the answer (a fetch that
    // failed with no cached policy, a bogus DNSSEC answer), not for a failed refresh that a
    // cached policy covered.
    int failure_code = 0;
};

// The failure code of a failure text that starts with an RFC 8460 result type name
// ("sts-policy-fetch-error: ..."), 0 otherwise.
int failure_code_of(std::string_view text);

struct Profile {
    std::string name;
    bool servername = true;  // Postfix >= 3.4: servername=hostname
    bool tlsrpt =
        false;  // Postfix >= 3.10: policy_type, policy_domain, policy_string, mx_host_pattern
    bool strict_testing = false;  // treat mode: testing as enforce
    bool dane_only = false;       // any DANE answers dane-only (requiretls)
    int id = 0;                   // index among the known profiles (metrics)
};
inline constexpr int kProfileCount = 5;

// Known profiles: postfix, postfix-tlsrpt, strict, strict-tlsrpt, requiretls (what a transport
// for REQUIRETLS mail needs: every DANE answer is dane-only, since a host without TLSA cannot be
// authenticated; MTA-STS enforce or testing answers secure). nullptr for others.
const Profile* find_profile(std::string_view name);

struct Reply {
    enum class Kind { Ok, NotFound, Temp } kind = Kind::NotFound;
    std::string text;       // Ok: the policy; Temp: the reason
    int failure_code = 0;   // the decision's failure_code (for TLSRPT), not part of the answer
};

// The DANE level a profile answers: "dane" becomes "dane-only" when an enforced MTA-STS
// policy is also in force (no host may be reached without authenticated TLS).
std::string dane_answer(const Decision& d, const Profile& profile);

// The known profile names, for messages: "postfix, postfix-tlsrpt, ...".
const char* profile_names();

// Write a decision for Postfix smtp_tls_policy_maps under `profile`. Every name written
// (match=, policy_domain=, mx_host_pattern=) is checked once more to be a host name (or an mx
// pattern); if one is not, the answer is TEMP and the refusal is logged.
//
// enforce -> "secure match=N1:N2... servername=hostname". Postfix's match list is exact
// names or ".domain" (any depth), while a policy's "*.example.net" covers one label only.
// To stay exact the list holds the policy's exact names plus every current MX host of the
// domain that matches a "*." pattern (exactly one more label); nothing else. If the MX set
// is unknown while the policy has a "*." pattern, or no name remains, the answer is TEMP:
// delivery could not satisfy the policy, and the reason is logged.
Reply render(const Decision& d, const Profile& profile);

// Exim readsocket answers (contrib/exim): one line of key=value fields for ${extract}.
//   level=secure mode=enforce mx=P1:P2 match=N1:N2   MTA-STS enforce (exact names as above)
//   level=dane-only | level=dane                      DANE applies (Exim's own DANE does it)
//   level=none [mode=testing|none]                    no policy to enforce
//   level=tempfail reason="..."                       defer
std::string render_exim(const Decision& d, const Profile& profile);
// Exim tcp:connect veto: "" allows connecting to `host`, anything else is the reason to veto.
std::string exim_mxcheck(const Decision& d, const Profile& profile, std::string_view host);

// The match= names described above (exposed for tests and `strictmx query`).
std::vector<std::string> match_names(const sts::Policy& p,
                                     const std::vector<std::string>& mx_hosts);

}  // namespace strictmx::policy
