// SPDX-License-Identifier: MIT
// The answer oracle of fuzz_dns_answer: reads every rendering of a decision the way its
// client does (Postfix's policy table tokenizer, dict_tcp.c, Exim's ${extract}) and aborts
// on any token, field or byte that DNS data could have added, removed or widened.
#pragma once

#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "codecs/tcp_table.hh"
#include "dns/name.hh"
#include "oracle.hh"
#include "policy/decision.hh"
#include "policy/service.hh"

namespace strictmx::fuzz {

// What the input allows an answer to contain.
struct Truth {
    std::string domain;
    std::set<std::string> names;         // MX hosts that are LDH names, exactly as on the wire
    std::vector<std::string> raw_hosts;  // every decoded MX host (what Exim's DNS would see)
};

// Postfix smtp_tls_policy.c: mystrtokq(&cp, ", \t\r\n", "{}"), braces nest.
inline std::vector<std::string> postfix_tokens(std::string_view s) {
    std::vector<std::string> out;
    std::string cur;
    int depth = 0;
    for (char c : s) {
        if (depth == 0 && std::string_view(", \t\r\n").find(c) != std::string_view::npos) {
            if (!cur.empty()) out.push_back(std::move(cur));
            cur.clear();
            continue;
        }
        if (c == '{') ++depth;
        if (c == '}' && --depth < 0) violated("unbalanced '}' in a policy answer", s);
        cur += c;
    }
    check(depth == 0, "unbalanced '{' in a policy answer", s);
    if (!cur.empty()) out.push_back(std::move(cur));
    return out;
}

// RFC 8461 section 4.1, written here independently of sts::mx_matches.
inline bool pattern_matches(std::string_view pat, std::string_view host) {
    if (!pat.starts_with("*.")) return pat == host;
    std::string_view base = pat.substr(1);  // ".example.net"
    if (host.size() <= base.size() || !host.ends_with(base)) return false;
    std::string_view head = host.substr(0, host.size() - base.size());
    return head.find('.') == std::string_view::npos;
}

inline std::vector<std::string> split_colon(std::string_view s) {
    std::vector<std::string> out;
    while (true) {
        std::size_t c = s.find(':');
        out.emplace_back(s.substr(0, c));
        if (c == std::string_view::npos) return out;
        s.remove_prefix(c + 1);
    }
}

inline void check_text_bytes(std::string_view s, const char* what) {
    for (unsigned char c : s) check(c >= 0x20 && c < 0x7f, what, s);
}

// Checks the socketmap payload; returns the match= value of a secure answer.
inline std::string check_socketmap(std::string_view sm, const policy::Decision& d,
                                   const policy::Profile& prof, const Truth& t) {
    check(sm.size() <= 100'000, "socketmap reply over Postfix's 100,000 bytes", sm.substr(0, 200));
    check_text_bytes(sm, "socketmap reply holds a NUL, control or 8-bit byte");
    if (sm == "NOTFOUND ") return {};
    if (sm.starts_with("TEMP ")) {
        check(sm.size() > 5 && sm.size() <= 5 + 410, "TEMP reply without a bounded reason", sm);
        return {};
    }
    check(sm.starts_with("OK "), "socketmap reply is not OK, NOTFOUND or TEMP", sm);
    auto tokens = postfix_tokens(sm.substr(3));
    check(!tokens.empty(), "OK reply without a TLS level", sm);
    const std::string& level = tokens[0];
    if (level == "dane" || level == "dane-only") {
        // Partial DANE under an MTA-STS policy the profile enforces is dane-only.
        check(d.kind == policy::Decision::Kind::Dane && policy::dane_answer(d, prof) == level &&
                  (level == d.dane_level || (d.dane_level == "dane" && d.policy)),
              "a DANE level for a decision that is not DANE", sm);
        check(tokens.size() == 1, "a DANE answer with attributes", sm);
        return {};
    }
    check(level == "secure", "the first token is not a TLS level the engine may emit", sm);
    check(d.kind == policy::Decision::Kind::Sts && d.policy, "secure without an MTA-STS policy",
          sm);
    const sts::Policy& p = *d.policy;
    auto lines = p.lines();
    std::string match;
    int n_match = 0, n_servername = 0, n_type = 0, n_domain = 0;
    std::size_t n_string = 0, n_pattern = 0;
    for (std::size_t i = 1; i < tokens.size(); ++i) {
        const std::string& tok = tokens[i];
        if (tok.starts_with("{")) {
            check(prof.tlsrpt && n_string < lines.size() &&
                      tok == "{ policy_string = " + lines[n_string] + " }",
                  "a brace group other than the policy's next policy_string", tok);
            ++n_string;
        } else if (tok.starts_with("match=")) {
            match = tok.substr(6);
            ++n_match;
        } else if (tok == "servername=hostname") {
            check(prof.servername, "servername= in a profile without it", sm);
            ++n_servername;
        } else if (tok == "policy_type=sts") {
            check(prof.tlsrpt, "policy_type= in a profile without TLSRPT", sm);
            ++n_type;
        } else if (tok == "policy_domain=" + t.domain) {
            check(prof.tlsrpt, "policy_domain= in a profile without TLSRPT", sm);
            ++n_domain;
        } else if (tok.starts_with("mx_host_pattern=")) {
            check(prof.tlsrpt && n_pattern < p.mx.size() && tok.substr(16) == p.mx[n_pattern] &&
                      sts::is_mx_pattern(p.mx[n_pattern]),
                  "mx_host_pattern= is not the policy's next pattern", tok);
            ++n_pattern;
        } else {
            violated("a token Postfix would read as a new attribute", tok);
        }
    }
    check(n_match == 1, "a secure answer without exactly one match=", sm);
    check(n_servername == (prof.servername ? 1 : 0), "servername= count is wrong", sm);
    std::size_t want = prof.tlsrpt ? 1 : 0;
    check(n_type == static_cast<int>(want) && n_domain == static_cast<int>(want) &&
              n_string == want * lines.size() && n_pattern == want * p.mx.size(),
          "TLSRPT attributes missing or repeated", sm);

    auto names = split_colon(match);
    std::set<std::string> seen;
    for (const auto& n : names) {
        check(plain_hostname(n) && dns::is_hostname(n), "a match= entry is not an LDH host name",
              n);
        check(seen.insert(n).second, "a match= entry is repeated", match);
        bool exact = false, expanded = false;
        for (const auto& pat : p.mx) {
            exact = exact || (!pat.starts_with("*.") && pat == n);
            expanded = expanded || (pat.starts_with("*.") && pattern_matches(pat, n));
        }
        check(exact || (expanded && t.names.count(n)),
              "a match= entry is neither a policy name nor an MX host under a *. pattern", n);
    }
    // Nothing the answer must say is left out: every exact name, every MX host under "*.".
    for (const auto& pat : p.mx)
        if (!pat.starts_with("*.")) check(seen.count(pat), "a policy name is missing", sm);
    for (const auto& h : d.mx_hosts)
        for (const auto& pat : p.mx)
            if (pat.starts_with("*.") && pattern_matches(pat, h))
                check(seen.count(h), "an MX host under a *. pattern is missing", sm);
    return match;
}

inline void check_tcp_table(std::string_view line, const policy::Reply& r) {
    check(line.size() <= tcp_table::kMaxReply && line.ends_with('\n') &&
              line.find('\n') == line.size() - 1,
          "tcp_table reply is not one line within 4096 bytes", line);
    std::string_view body = line.substr(0, line.size() - 1);
    check_text_bytes(body, "tcp_table reply holds a control or 8-bit byte");
    auto text = tcp_table::decode(body.substr(std::min<std::size_t>(4, body.size())));
    check(text.has_value(), "tcp_table reply text is not valid %XX text", line);
    switch (r.kind) {
        case policy::Reply::Kind::Ok:
            check((body.starts_with("200 ") && *text == r.text) || body.starts_with("400 "),
                  "tcp_table 200 reply is not the answer", line);
            break;
        case policy::Reply::Kind::NotFound:
            check(body.starts_with("500 "), "tcp_table not found is not 500", line);
            break;
        case policy::Reply::Kind::Temp:
            check(body.starts_with("400 ") && body.size() > 4, "tcp_table TEMP is not '400 text'",
                  line);
            break;
    }
}

// Exim's ${extract{key}{line}}: space-separated key=value, values quoted when needed.
inline std::vector<std::pair<std::string, std::string>> exim_fields(std::string_view s) {
    std::vector<std::pair<std::string, std::string>> out;
    while (!s.empty()) {
        std::size_t eq = s.find('=');
        check(eq != std::string_view::npos && eq > 0, "Exim answer field without key=", s);
        std::string key(s.substr(0, eq));
        check(key.find_first_of(" \"") == std::string::npos, "Exim key holds a space or quote", s);
        s.remove_prefix(eq + 1);
        std::string value;
        if (s.starts_with('"')) {
            std::size_t end = s.find('"', 1);
            check(end != std::string_view::npos, "unterminated quoted Exim value", s);
            value = s.substr(1, end - 1);
            s.remove_prefix(end + 1);
        } else {
            value = s.substr(0, s.find(' '));
            s.remove_prefix(value.size());
        }
        out.emplace_back(std::move(key), std::move(value));
        if (s.empty()) break;
        check(s.front() == ' ' && s.size() > 1 && s[1] != ' ', "Exim fields not single-spaced", s);
        s.remove_prefix(1);
    }
    return out;
}

inline void check_exim(std::string_view ex, std::string_view sm, const std::string& match,
                       const policy::Decision& d) {
    check_text_bytes(ex, "Exim answer holds a newline, control or 8-bit byte");
    auto f = exim_fields(ex);
    check(!f.empty() && f[0].first == "level", "Exim answer does not start with level=", ex);
    const std::string& level = f[0].second;
    if (sm.starts_with("OK secure")) {
        check(f.size() == 4 && level == "secure" && f[1].first == "mode" &&
                  (f[1].second == "enforce" || f[1].second == "testing") && f[2].first == "mx" &&
                  f[3].first == "match" && f[3].second == match,
              "Exim secure answer is not level, mode, mx, match= as the socketmap one", ex);
        auto pats = split_colon(f[2].second);
        check(pats == d.policy->mx, "Exim mx= is not the policy's patterns", ex);
    } else if (sm.starts_with("OK ")) {
        check(f.size() == 1 && "OK " + level == sm, "Exim DANE answer differs from socketmap", ex);
    } else if (sm == "NOTFOUND ") {
        check(level == "none" && (f.size() == 1 || (f.size() == 2 && f[1].first == "mode" &&
                                                    d.kind == policy::Decision::Kind::Sts)),
              "Exim answer for NOTFOUND is not level=none [mode=]", ex);
    } else {
        check(level == "tempfail" && f.size() == 2 && f[1].first == "reason" &&
                  ex.find("reason=\"") != std::string_view::npos,
              "Exim answer for TEMP is not level=tempfail reason=\"...\"", ex);
    }
}

inline std::vector<std::string> check_decision(const policy::Decision& d, const Truth& t) {
    check(d.domain == t.domain, "the decision is for another domain", d.domain);
    for (const auto& h : d.mx_hosts)
        check(t.names.count(h) > 0, "a decision carries an MX host that is not an LDH name", h);
    std::vector<std::string> summary;
    for (const char* name : {"postfix", "postfix-tlsrpt", "strict", "strict-tlsrpt"}) {
        const policy::Profile* prof = policy::find_profile(name);
        check(prof != nullptr, "a known profile is missing", name);
        policy::Reply r = policy::render(d, *prof);
        std::string sm = policy::socketmap_payload(r);
        std::string match = check_socketmap(sm, d, *prof, t);
        check_tcp_table(policy::tcp_table_line(r), r);
        check_exim(policy::render_exim(d, *prof), sm, match, d);
        for (const auto& host : t.raw_hosts) {
            if (!plain_hostname(host)) continue;  // the service vetoes these itself
            std::string veto = policy::exim_mxcheck(d, *prof, host);
            check_text_bytes(veto, "Exim mxcheck reply holds a newline or control byte");
            if (d.kind == policy::Decision::Kind::Temp)
                check(!veto.empty(), "Exim mxcheck allows a host while the decision is TEMP", veto);
            if (sm.starts_with("OK secure")) {
                bool allowed = false;
                for (const auto& pat : d.policy->mx)
                    allowed = allowed || pattern_matches(pat, host);
                check(veto.empty() == allowed, "Exim mxcheck disagrees with the policy", host);
            }
        }
        summary.push_back(sm.starts_with("TEMP ") ? std::string("TEMP") : sm);
    }
    return summary;
}

}  // namespace strictmx::fuzz
