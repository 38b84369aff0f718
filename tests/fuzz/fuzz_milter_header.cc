// SPDX-License-Identifier: MIT
// Fuzz target: strictmx-milter's parsers of client data: header fields ("TLS-Required: No"),
// envelope addresses and their domains, MAIL FROM parameters, require_tls_senders entries and
// RCPT verdicts from socketmap answers. Input: NAME '\0' VALUE '\0' ADDRESS '\0' ANSWER.
// Oracles: "No" is recognized exactly when the value, with folding and blanks removed, is
// "no" in any case; a recognized value never holds a bare line break; a verdict's reply text
// is printable ASCII without '%'; an accept comes only from an "OK" answer with an
// authenticating level; a missing answer is never an accept; sender rules that are accepted
// match their own address.
#include <cstdint>
#include <string>
#include <vector>

#include "milter/rules.hh"
#include "oracle.hh"
#include "util/strings.hh"

namespace m = strictmx::milter;
using strictmx::fuzz::check;

namespace {
std::vector<std::string> fields(const std::string& in) {
    std::vector<std::string> out(4);
    std::size_t i = 0;
    for (char c : in) {
        if (c == '\0' && i < 3) {
            ++i;
            continue;
        }
        out[i] += c;
    }
    return out;
}

bool printable(const std::string& s) {
    for (unsigned char c : s)
        if (c < 0x20 || c > 0x7e || c == '%') return false;
    return true;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    std::string in(reinterpret_cast<const char*>(data), size);
    auto f = fields(in);
    const std::string &name = f[0], &value = f[1], &address = f[2], &answer = f[3];

    bool no = m::tls_required_no(value);
    std::string squeezed;
    for (char c : value)
        if (c != ' ' && c != '\t' && c != '\r' && c != '\n') squeezed += c;
    if (no) {
        check(strictmx::iequals(squeezed, "no"), "TLS-Required: No from another value", in);
        for (std::size_t i = 0; i + 1 < value.size(); ++i)
            if (value[i] == '\n')
                check(value[i + 1] == ' ' || value[i + 1] == '\t', "a bare line break accepted",
                      in);
    } else if (value.find_first_of("\r\n") == std::string::npos) {
        check(!strictmx::iequals(strictmx::trim(value), "no"), "a plain No not recognized", in);
    }
    (void)m::is_tls_required_field(name);
    (void)m::valid_field_name(name);

    std::string env = m::envelope_address(address);
    std::string domain = m::address_domain(env);
    for (char c : domain) check(c < 'A' || c > 'Z', "an upper-case domain", in);
    check(domain.empty() || domain.back() != '.', "a trailing dot kept", in);

    std::vector<std::string_view> params;
    for (auto p : strictmx::split(value, ' ')) params.push_back(p);
    (void)m::has_requiretls(params);

    if (m::sender_rule_problem(address).empty()) {
        m::SenderRules rules({address});
        if (address.front() != '@')
            check(rules.match(address).has_value(), "a sender rule misses its own address", in);
    }

    m::RcptVerdict v = m::judge(domain, answer, value);
    check(printable(v.text), "a reply text with a control byte or %", in);
    if (v.kind == m::RcptVerdict::Kind::Accept)
        check(answer.starts_with("OK "), "an accept from an answer that is not OK", in);
    else
        check(v.rcode == "550" || v.rcode == "451", "an unexpected reply code", in);
    m::RcptVerdict none = m::judge(domain, std::nullopt, answer);
    check(none.kind == m::RcptVerdict::Kind::Tempfail && printable(none.text),
          "no answer but not a temporary failure", in);
    return 0;
}
