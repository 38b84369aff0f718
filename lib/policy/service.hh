// SPDX-License-Identifier: MIT
// Request handling shared by every listener: key classification, the engine lookup, the
// profile's answer, the protocol's reply, and one log line per decision.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <set>
#include <string>
#include <string_view>
#include <unordered_map>

#include "policy/engine.hh"
#include "tlsrpt/sources.hh"

namespace strictmx::policy {

class Service {
  public:
    explicit Service(Engine& engine) : engine_(engine) {}

    using ReplyFn = std::function<void(std::string)>;

    // socketmap: `payload` is "NAME KEY"; the reply is the netstring payload
    // ("OK data", "NOTFOUND ", "TEMP reason", "PERM reason").
    void socketmap(std::string_view payload, ReplyFn reply);
    // tcp_table: `key` is decoded; the reply is a whole line ("200 data\n", ...).
    void tcp_table(const std::string& key, const Profile& profile, ReplyFn reply);

    // Exim ${readsocket}: one request line, "query DOMAIN" or "mxcheck DOMAIN HOST"; the
    // reply is one line (with its newline). mxcheck answers an empty line to allow.
    // "tlsrpt RESULT MSGID DOMAIN MXHOST IP [TEXT]" (tlsrpt/sources.hh) reports one delivery
    // attempt from Exim's events; the reply is "ok" or why the line was not kept.
    void exim(std::string_view line, const Profile& profile, ReplyFn reply);

    // The control socket and the metrics endpoint (policy/control.hh), set by the daemon.
    using ControlFn = std::function<void(std::string_view line, ReplyFn reply)>;
    using MetricsFn = std::function<std::string()>;
    void set_admin(ControlFn control, MetricsFn metrics) {
        control_ = std::move(control);
        metrics_ = std::move(metrics);
    }
    void control(std::string_view line, ReplyFn reply) {
        if (control_)
            control_(line, std::move(reply));
        else
            reply("{\"error\":\"no control handler\"}\n");
    }
    std::string metrics() const { return metrics_ ? metrics_() : std::string(); }

    // TLSRPT (set when the collector runs). `on_failure`: a lookup from an MTA that does not
    // report TLS outcomes itself (Exim, and Postfix through a profile without -tlsrpt) was
    // answered from a policy failure (Decision::failure_code). `on_attempt`: Exim reported a
    // delivery attempt. Both run on the loop.
    using FailureHook = std::function<void(const Decision&, const char* source)>;
    using AttemptHook = std::function<void(const Decision&, tlsrpt::SessionEvent)>;
    void set_tlsrpt_hooks(FailureHook on_failure, AttemptHook on_attempt) {
        on_failure_ = std::move(on_failure);
        on_attempt_ = std::move(on_attempt);
    }

    // What a lookup answers when its deadline passes before the resolution ends.
    static std::string socketmap_deadline_reply();
    static std::string tcp_table_deadline_reply();
    static std::string exim_deadline_reply();

    // Shared by both protocols: decide and render for a raw key; `from_cache`: the answer
    // came from the cache.
    void decide(const std::string& raw_key, const Profile& profile,
                std::function<void(Reply, bool from_cache)> done);
    // socketmap and tcp_table: a cache hit is answered from the reply rendered for it the
    // first time (rebuilt when the cache entry changes); anything else goes through decide().
    enum class Wire { Socketmap, TcpTable };
    void answer(Wire wire, std::string_view raw_key, const Profile& profile, ReplyFn reply);
    // The same with the decision itself (Exim renders it its own way). `log_answer` writes
    // the decision line.
    void decide_raw(const std::string& raw_key, const Profile& profile,
                    std::function<void(const Decision*)> done);

    struct Stats {
        std::uint64_t lookups = 0;
        std::uint64_t logged = 0;       // decision lines written
        std::uint64_t repeated = 0;     // cache hits with the answer last logged: counted only
        std::uint64_t prerendered = 0;  // of those, answered from a reply rendered before
    };
    const Stats& stats() const { return stats_; }

    // After a configuration reload: no answer rendered under the old settings is reused.
    void clear_rendered() { rendered_.clear(); }

    // Prometheus text: lookups by protocol, profile and answer; lookup latency histograms
    // for cache hits and for lookups that waited for a resolution.
    std::string metrics_text() const;

  private:
    // Whether a decision gets its log line: every new or changed answer, every TEMP, every
    // answer not from the cache; a cache hit repeating the answer last logged for the domain
    // and profile is counted instead (verbosity 3 logs every lookup).
    bool worth_logging(const Decision& d, const std::string& profile, std::string_view answer,
                       bool temp);

    void note_failure(const Decision& d, const Profile& profile, const char* source) {
        if (on_failure_ && d.failure_code != 0 && !profile.tlsrpt) on_failure_(d, source);
    }

    Engine& engine_;
    ControlFn control_;
    MetricsFn metrics_;
    FailureHook on_failure_;
    AttemptHook on_attempt_;
    std::set<std::string> unknown_names_logged_;
    // domain + profile -> hash of the answer last logged; bounded (cleared when full, after
    // which each answer is logged once more).
    std::unordered_map<std::string, std::size_t> last_logged_;
    // wire + profile + domain -> the engine's token and the reply rendered for it.
    struct Rendered {
        std::uint64_t token = 0;
        std::string bytes;
        int failure_code = 0;  // the decision's, for note_failure() on later hits
        int answer = 0;        // Reply::Kind, for the metrics
    };
    // Metrics: counts[protocol][profile][answer], latency histograms (hit, waited).
    static constexpr int kProtocols = 3;  // socketmap, tcp_table, exim
    static constexpr int kBuckets = 12;
    std::uint64_t counts_[kProtocols][kProfileCount][3] = {};
    struct Histogram {
        std::uint64_t buckets[kBuckets] = {};  // cumulative at render time
        std::uint64_t count = 0;
        double sum = 0;
    };
    Histogram latency_[2];  // 0 cache hit, 1 waited for a resolution
    void observe(int protocol, const Profile& profile, int answer, bool hit,
                 std::chrono::steady_clock::time_point t0);
    std::unordered_map<std::string, Rendered> rendered_;
    std::string domain_, slot_;  // answer()'s working buffers
    Stats stats_;
};

std::string socketmap_payload(const Reply& r);
std::string tcp_table_line(const Reply& r);

}  // namespace strictmx::policy
