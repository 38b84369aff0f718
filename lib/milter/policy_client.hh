// SPDX-License-Identifier: MIT
// A blocking socketmap client for strictmx-milter's RCPT lookups: one request, one reply,
// within a deadline, on a small pool of kept-open connections shared by libmilter's threads.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace strictmx::milter {

class PolicyClient {
  public:
    // `address`: "inet:HOST:PORT", "inet:[V6]:PORT" or "unix:PATH" (Postfix's notation).
    // Throws std::invalid_argument when it is none of them.
    PolicyClient(std::string address, int timeout_ms, std::size_t max_idle = 32);
    ~PolicyClient();
    PolicyClient(const PolicyClient&) = delete;
    PolicyClient& operator=(const PolicyClient&) = delete;

    struct Result {
        std::optional<std::string> payload;  // the reply netstring's payload
        std::string failure;                 // why there is none
    };
    // Ask `map KEY`. Never throws. Pooled connections idle longer than kMaxIdle are closed
    // unused (strictmx-policyd closes idle clients after daemon.idle_timeout_s, 15 s by
    // default); a pooled connection that fails anyway is replaced by a fresh one, once.
    static constexpr std::chrono::seconds kMaxIdle{5};
    Result lookup(std::string_view map, std::string_view key);

    struct Stats {
        std::uint64_t lookups = 0, failures = 0, connects = 0;
    };
    Stats stats() const;

  private:
    int connect_fd(std::chrono::steady_clock::time_point deadline, std::string& why) const;
    Result exchange(int fd, const std::string& request,
                    std::chrono::steady_clock::time_point deadline, bool& reusable) const;

    std::string address_;
    int timeout_ms_;
    std::size_t max_idle_;
    mutable std::mutex mu_;
    struct Idle {
        int fd;
        std::chrono::steady_clock::time_point since;
    };
    std::vector<Idle> idle_;
    Stats stats_;
};

}  // namespace strictmx::milter
