// SPDX-License-Identifier: MIT
// Resolver backed by libunbound: DNSSEC validation in-process, answers on a libevent loop.
#pragma once

#include <event2/event.h>

#include <map>
#include <string>
#include <vector>

#include "dns/resolver.hh"
#include "util/handles.hh"

namespace strictmx::dns {

struct UnboundOptions {
    std::string config_file;              // read with ub_ctx_config (forwarders, anchors, zones)
    std::vector<std::string> forwarders;  // addresses, "ip" or "ip@port"
    std::string trust_anchor_file;        // RFC 5011 managed anchor (ub_ctx_add_ta_autr)
    bool trust_anchor_read_only = false;  // read it as a static anchor (ub_ctx_add_ta_file):
                                          // a user who may not write it (strictmx query)
    int timeout_ms = 5000;                // our own per-query deadline
    // Queries libunbound works on at once, at most, counting those whose deadline passed:
    // libunbound's worker thread goes on with a query until its own retries end (ub_cancel
    // does not stop it), so without this bound a flood of failing names grows its memory.
    std::size_t max_outstanding = 4000;
    // false: DNSSEC explicitly off (resolver.dnssec = false): a secure answer is reported
    // insecure, so DANE never applies.
    bool validate = true;
};

class UnboundResolver final : public Resolver {
  public:
    // Throws std::runtime_error on configuration errors (start-up only).
    UnboundResolver(event_base* base, const UnboundOptions& opts);
    ~UnboundResolver() override;
    UnboundResolver(const UnboundResolver&) = delete;
    UnboundResolver& operator=(const UnboundResolver&) = delete;

    void resolve(const std::string& name, std::uint16_t type, Callback cb) override;
    // Queries libunbound is still working on, those already answered "timeout" included.
    std::size_t outstanding() const { return pending_.size(); }

  private:
    struct Pending;
    static void on_result(void* arg, int err, ub_result* result) noexcept;
    static void on_readable(evutil_socket_t, short, void* arg) noexcept;
    static void on_timeout(evutil_socket_t, short, void* arg) noexcept;
    static void on_deliver(evutil_socket_t, short, void* arg) noexcept;
    void finish(Pending* p, Answer a);
    void deliver(Pending* p, Callback cb, Answer a);

    event_base* base_;
    UbCtxPtr ctx_;
    EventPtr read_ev_;
    int timeout_ms_;
    std::size_t max_outstanding_;
    bool validate_;
    std::map<Pending*, std::unique_ptr<Pending>> pending_;
};

}  // namespace strictmx::dns
