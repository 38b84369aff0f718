// SPDX-License-Identifier: MIT
// One TLS outcome as libtlsrpt 0.5 sends it (Postfix >= 3.10, smtp_tlsrpt_enable): a JSON
// object per datagram, datagram protocol version "1". Also the model the other sources (Exim
// events, the daemon's own policy failures) are turned into.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace strictmx::tlsrpt {

enum class PolicyType { Tlsa = 1, Sts = 2, NoPolicyFound = 9 };
const char* policy_type_name(PolicyType t);  // "tlsa", "sts", "no-policy-found"

// RFC 8460 result types with libtlsrpt's numbers (201-206, 301-306).
const char* result_type_name(int code);  // nullptr for an unknown code
int result_type_code(std::string_view name);  // 0 for an unknown name

struct FailureDetail {
    int code = 0;
    // Absent members stay absent in the report (has_* false), as libtlsrpt omits NULLs.
    std::string sending_ip, mx_hostname, mx_helo, receiving_ip, additional, reason_code;
    unsigned present = 0;  // bit i: member i of (s, n, h, r, a, f) was given
};

struct PolicyOutcome {
    PolicyType type = PolicyType::NoPolicyFound;
    std::string domain;  // always filled: the datagram's `d` when the policy names none
    std::vector<std::string> strings;
    std::vector<std::string> mx_hosts;
    bool failed = false;
    std::vector<FailureDetail> failures;
};

// One delivery attempt (session) with its policies.
struct Session {
    std::string domain;  // the recipient domain, lowercase A-labels, no trailing dot
    std::string record;  // the _smtp._tls TXT record as the MTA found it
    std::vector<PolicyOutcome> policies;
};

enum class Reject {
    None,
    Oversized,     // over 65,535 bytes, or truncated on receipt
    NotUtf8,
    NotJson,
    NotObject,
    WrongVersion,  // dpv missing or not "1"
    MissingField,  // d, pr, policies, policy-type or f missing
    BadField,      // a member of the wrong type or with a value out of range
};
constexpr int kRejectKinds = 8;
const char* reject_name(Reject r);

constexpr std::size_t kMaxDatagram = 65'535;

struct Parsed {
    Reject reject = Reject::None;
    std::string why;  // for the log: which member, what was wrong
    Session session;
};

// Parse and check one datagram, whole: anything wrong rejects all of it.
Parsed parse_datagram(std::string_view bytes);

// The canonical text of a policy and of a failure detail (stable JSON, the store's keys), and
// back. from_key functions return false on text that is not such a key.
std::string policy_key(const PolicyOutcome& p);
std::string detail_key(const FailureDetail& d);
bool policy_from_key(std::string_view key, PolicyOutcome& p);
bool detail_from_key(std::string_view key, FailureDetail& d);

// True when `s` is valid UTF-8 (no overlong forms, no surrogates, at most U+10FFFF).
bool is_utf8(std::string_view s);

}  // namespace strictmx::tlsrpt
