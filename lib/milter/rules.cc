// SPDX-License-Identifier: MIT
// RFC 8689 decisions for strictmx-milter.
#include "milter/rules.hh"

#include <algorithm>
#include <stdexcept>

#include "dns/name.hh"
#include "util/strings.hh"

namespace strictmx::milter {

namespace {
bool blank(char c) {
    return c == ' ' || c == '\t';
}
}  // namespace

bool same_field_name(std::string_view a, std::string_view b) {
    return iequals(a, b);
}

bool valid_field_name(std::string_view name) {
    if (name.empty() || name.size() > 200) return false;
    return std::all_of(name.begin(), name.end(), [](char c) {
        auto u = static_cast<unsigned char>(c);
        return u >= 33 && u <= 126 && c != ':';
    });
}

bool is_tls_required_field(std::string_view name) {
    return iequals(name, "TLS-Required");
}

bool tls_required_no(std::string_view value) {
    // Unfold: a line break is only allowed when blanks follow it (RFC 5322 FWS); then the
    // value without surrounding blanks must be exactly "No".
    std::string v;
    for (std::size_t i = 0; i < value.size(); ++i) {
        char c = value[i];
        if (c == '\r' && i + 1 < value.size() && value[i + 1] == '\n') continue;
        if (c == '\n') {
            if (i + 1 >= value.size() || !blank(value[i + 1])) {
                // A bare line break not followed by a blank is not folding; trailing CRLF is.
                if (i + 1 < value.size()) return false;
                continue;
            }
            continue;
        }
        if (c == '\r') return false;
        v += c;
    }
    std::string_view t = trim(v);
    return iequals(t, "No");
}

bool has_requiretls(const std::vector<std::string_view>& params) {
    return std::any_of(params.begin(), params.end(),
                       [](std::string_view p) { return iequals(p, "REQUIRETLS"); });
}

std::string envelope_address(std::string_view arg) {
    std::string_view a = trim(arg);
    if (a.size() >= 2 && a.front() == '<' && a.back() == '>') a = a.substr(1, a.size() - 2);
    a = trim(a);
    // RFC 5321 A-d-l: "@one,@two:user@domain" (obsolete, still legal); the ':' ends it.
    if (!a.empty() && a.front() == '@') {
        std::size_t colon = a.find(':');
        a = colon == std::string_view::npos ? std::string_view{} : a.substr(colon + 1);
    }
    return std::string(a);
}

std::string address_domain(std::string_view address) {
    std::size_t at = address.rfind('@');
    if (at == std::string_view::npos) return {};
    std::string d = to_lower(address.substr(at + 1));
    while (!d.empty() && d.back() == '.') d.pop_back();
    return d;
}

std::string sender_rule_problem(std::string_view entry) {
    if (entry.empty()) return "empty entry";
    std::size_t at = entry.rfind('@');
    if (at == std::string_view::npos) return "neither user@domain nor @domain";
    std::string_view domain = entry.substr(at + 1);
    if (domain.empty()) return "no domain after '@'";
    if (!dns::is_hostname(to_lower(domain)) && !dns::is_hostname(dns::to_alabel(domain)))
        return "not a domain name: " + std::string(domain);
    for (char c : entry) {
        auto u = static_cast<unsigned char>(c);
        if (u <= 32 || u == 127 || c == '<' || c == '>') return "blank, control byte or <> in it";
    }
    return {};
}

SenderRules::SenderRules(const std::vector<std::string>& entries) {
    for (const auto& e : entries) {
        if (auto why = sender_rule_problem(e); !why.empty())
            throw std::invalid_argument("\"" + sanitize(e, 100) + "\": " + why);
        std::string low = to_lower(e);
        if (!low.empty() && low.back() == '.') low.pop_back();
        if (low.front() == '@')
            domains_.push_back(low.substr(1));
        else
            addresses_.push_back(low);
    }
}

std::optional<std::string> SenderRules::match(std::string_view address) const {
    if (address.empty()) return std::nullopt;  // the null sender: a bounce
    std::string low = to_lower(address);
    if (!low.empty() && low.back() == '.') low.pop_back();
    for (const auto& a : addresses_) {
        if (a == low) return a;
    }
    std::string domain = address_domain(low);
    if (domain.empty()) return std::nullopt;
    for (const auto& d : domains_) {
        if (d == domain) return "@" + d;
    }
    return std::nullopt;
}

std::string reply_text(std::string_view s, std::size_t max) {
    std::string out;
    for (char c : s) {
        if (out.size() >= max) {
            out += "...";
            break;
        }
        auto u = static_cast<unsigned char>(c);
        out += (u < 32 || u > 126 || c == '%') ? '?' : c;
    }
    return out;
}

RcptVerdict judge(std::string_view domain, const std::optional<std::string>& payload,
                  std::string_view failure) {
    const std::string d = reply_text(domain, 255);
    RcptVerdict v;
    if (!payload) {
        v = {RcptVerdict::Kind::Tempfail, "451", "4.4.3",
             "REQUIRETLS: cannot check the TLS policy of " + d + " now (" +
                 reply_text(failure, 120) + "), try again later",
             "error"};
        return v;
    }
    std::string_view p = *payload;
    std::string_view word = p.substr(0, p.find(' '));
    std::string_view rest = word.size() < p.size() ? p.substr(word.size() + 1) : std::string_view{};
    if (word == "OK") {
        std::string_view level = trim(rest);
        level = level.substr(0, level.find_first_of(" \t"));
        std::string lv = to_lower(level);
        // Postfix TLS security levels that authenticate the server (TLS_README): DANE, the
        // CA-verified ones, and a fingerprint an operator pinned in an override.
        static const char* kAuthenticated[] = {"dane-only", "dane", "secure", "verify",
                                               "fingerprint"};
        for (const char* a : kAuthenticated) {
            if (lv == a) return {RcptVerdict::Kind::Accept, {}, {}, {}, lv};
        }
        v = {RcptVerdict::Kind::Reject, "550", "5.7.30",
             "REQUIRETLS support required: " + d + " has TLS policy \"" + reply_text(lv, 40) +
                 "\", which does not authenticate its MX hosts (needs DANE or an MTA-STS "
                 "policy)",
             lv.empty() ? std::string("OK") : lv};
        return v;
    }
    if (word == "NOTFOUND") {
        return {RcptVerdict::Kind::Reject, "550", "5.7.30",
                "REQUIRETLS support required: " + d +
                    " publishes neither DANE (DNSSEC-signed TLSA) nor an MTA-STS policy",
                "NOTFOUND"};
    }
    if (word == "TEMP" || word == "TIMEOUT") {
        return {RcptVerdict::Kind::Tempfail, "451", "4.4.3",
                "REQUIRETLS: the TLS policy of " + d + " cannot be determined now (" +
                    reply_text(rest, 120) + "), try again later",
                "TEMP"};
    }
    // PERM or anything unexpected: the daemon could not answer; never an accept.
    return {RcptVerdict::Kind::Tempfail, "451", "4.4.3",
            "REQUIRETLS: policy lookup for " + d + " failed (" + reply_text(p, 120) +
                "), try again later",
            word == "PERM" ? "PERM" : "error"};
}

}  // namespace strictmx::milter
