// SPDX-License-Identifier: MIT
// The running daemon seen from outside: the control socket's verbs (strictmx status, cache
// show/flush/dump, query) answered as JSON, and the Prometheus metrics text.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "policy/engine.hh"
#include "policy/service.hh"
#include "util/clock.hh"

namespace strictmx::policy {

struct ControlInfo {
    std::string version;
    UnixTime started = 0;
    std::vector<std::string> listeners;  // "type address"
    std::string dnssec;                  // on | off | unproven
    // More state from main(): connections, TLSRPT collector counters. May be empty.
    std::function<nlohmann::json()> extra;
    // Metric lines (Prometheus text) from main(): connections, collector. May be empty.
    std::function<std::string()> extra_metrics;
};

class Control {
  public:
    Control(Engine& engine, Service& service, const Clock& clock, ControlInfo info)
        : engine_(engine), service_(service), clock_(clock), info_(std::move(info)) {}

    // One request line:
    //   status | cache show DOMAIN | cache flush DOMAIN | cache flush --all | cache dump |
    //   query DOMAIN
    // One JSON object per reply ({"error": "..."} for a bad request), written by `reply`
    // (later for a query that resolves).
    void handle(std::string_view line, std::function<void(std::string)> reply);

    // GET /metrics: Prometheus text exposition format 0.0.4.
    std::string metrics() const;

    static nlohmann::json entry_json(const std::string& domain, const Entry& e, UnixTime now);

  private:
    Engine& engine_;
    Service& service_;
    const Clock& clock_;
    ControlInfo info_;
};

}  // namespace strictmx::policy
