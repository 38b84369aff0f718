// SPDX-License-Identifier: MIT
// Helpers shared by the two halves of the engine (engine.cc: resolution; engine_cache.cc:
// the packed in-memory cache, persistence and refresh scheduling). Not a public interface.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "dane/dane.hh"
#include "dns/resolver.hh"
#include "policy/engine.hh"

namespace strictmx::policy {

struct Engine::Job {
    std::string domain;
    JobKind kind = JobKind::Cold;
    std::string zone;  // registered domain (Cold only): the per-zone budget it counts against
    std::vector<Callback> waiters;
    int pending = 0;  // DNS queries and fetches still out
    dns::Answer txt;
    dns::Answer mx;
    std::vector<dane::HostAnswers> hosts;
    std::string txt_id;
    std::optional<Decision> sts;  // the MTA-STS outcome, once known
    Entry e;                      // working copy, written back when the job ends
    Trace* trace = nullptr;
    bool hosts_truncated = false;  // more MX hosts than max_mx_hosts: never dane-only
    int queries = 0;               // DNS queries sent
    int dns_rounds = 1;            // sequential DNS round trips (2 when MX hosts were queried)
    bool fetched = false;
    bool shared = false;  // answered from another instance's row: no resolution here
    bool force = false;   // resolve even when the shared row is current (strictmx query)
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();
    void note(std::string s) {
        if (trace) trace->push_back(std::move(s));
    }
};

}  // namespace strictmx::policy

namespace strictmx::policy::detail {

inline std::string join(const std::vector<std::string>& v, char sep) {
    std::string out;
    for (std::size_t i = 0; i < v.size(); ++i) {
        if (i) out += sep;
        out += v[i];
    }
    return out;
}

inline int fail_class_of(const dns::Answer& a) {
    if (a.security == dns::Security::Bogus) return 2;
    if (a.why == "timeout") return 1;
    return 0;
}

inline constexpr int dane_code_fail = 3;

inline int dane_code(const DaneState& d) {
    if (!d.known) return -1;
    switch (d.kind) {
        case dane::Kind::None:
            return 0;
        case dane::Kind::Dane:
            return d.no_usable_tlsa ? 4 : 1;
        case dane::Kind::DaneOnly:
            return 2;
        case dane::Kind::Fail:
            return 3;
    }
    return -1;
}

inline std::optional<dane::Kind> dane_kind_of(int code) {
    switch (code) {
        case 0:
            return dane::Kind::None;
        case 1:
            return dane::Kind::Dane;
        case 2:
            return dane::Kind::DaneOnly;
        case 3:
            return dane::Kind::Fail;
        case 4:  // dane, but no MX host has a usable TLSA RRset
            return dane::Kind::Dane;
    }
    return std::nullopt;
}
inline std::uint32_t t32(UnixTime t) {
    return static_cast<std::uint32_t>(std::clamp<UnixTime>(t, 0, 0xffffffffLL));
}

}  // namespace strictmx::policy::detail
