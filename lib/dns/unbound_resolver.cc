// SPDX-License-Identifier: MIT
// Resolver backed by libunbound. Queries run in libunbound's worker thread; results come
// back through ub_fd() and ub_process() on our libevent loop, so no lookup blocks it.
// libunbound returns bogus answers with rcode 0 and the forged data: every result is
// checked for `bogus` before its data is looked at.
//
// A query whose deadline passes is answered "timeout" at once but stays counted until
// libunbound reports it done: in threaded mode ub_cancel only hides the result, while the
// worker thread keeps the query's state (about 10 KiB) through its own retries, which with
// unreachable servers last minutes. Counting those queries against max_outstanding is what
// bounds the worker's memory when DNS is down.
#include "dns/unbound_resolver.hh"

#include <algorithm>
#include <stdexcept>

#include "util/log.hh"

namespace strictmx::dns {

struct UnboundResolver::Pending {
    UnboundResolver* owner = nullptr;
    std::string name;
    std::uint16_t type = 0;
    Callback cb;
    int async_id = 0;
    EventPtr timer;
    EventPtr deliver;  // for immediate failures: deliver on the loop, not from resolve()
    Answer answer;
    bool answered = false;  // the callback has run (timeout); the result is dropped
};

namespace {
void check(int rc, const char* what) {
    if (rc != 0) throw std::runtime_error(std::string(what) + ": " + ub_strerror(rc));
}
}  // namespace

UnboundResolver::UnboundResolver(event_base* base, const UnboundOptions& opts)
    : base_(base),
      ctx_(ub_ctx_create()),
      timeout_ms_(opts.timeout_ms),
      max_outstanding_(opts.max_outstanding),
      validate_(opts.validate) {
    if (!ctx_) throw std::runtime_error("ub_ctx_create failed");
    check(ub_ctx_async(ctx_.get(), 1), "ub_ctx_async");
    // A server slower than our own deadline is of no use to a lookup; capping libunbound's
    // per-server timeout there also ends a query to unreachable servers after a few tries
    // instead of minutes of backoff (its default cap is 120 s), which frees the worker's
    // state sooner. Set before the configuration file, so a file that says otherwise wins.
    std::string max_rtt = std::to_string(std::max(opts.timeout_ms, 1000));
    check(ub_ctx_set_option(ctx_.get(), "infra-cache-max-rtt:", max_rtt.c_str()),
          "ub_ctx_set_option infra-cache-max-rtt");
    if (!opts.config_file.empty())
        check(ub_ctx_config(ctx_.get(), opts.config_file.c_str()), "ub_ctx_config");
    for (const auto& f : opts.forwarders)
        check(ub_ctx_set_fwd(ctx_.get(), f.c_str()), "ub_ctx_set_fwd");
    if (!opts.trust_anchor_file.empty() && opts.trust_anchor_read_only)
        check(ub_ctx_add_ta_file(ctx_.get(), opts.trust_anchor_file.c_str()), "ub_ctx_add_ta_file");
    else if (!opts.trust_anchor_file.empty())
        check(ub_ctx_add_ta_autr(ctx_.get(), opts.trust_anchor_file.c_str()), "ub_ctx_add_ta_autr");
    read_ev_.reset(event_new(base_, ub_fd(ctx_.get()), EV_READ | EV_PERSIST, &on_readable, this));
    if (!read_ev_ || event_add(read_ev_.get(), nullptr) != 0)
        throw std::runtime_error("cannot watch the libunbound descriptor");
}

UnboundResolver::~UnboundResolver() {
    for (auto& [p, owned] : pending_) {
        if (p->async_id) ub_cancel(ctx_.get(), p->async_id);
    }
    pending_.clear();
}

void UnboundResolver::resolve(const std::string& name, std::uint16_t type, Callback cb) {
    auto owned = std::make_unique<Pending>();
    Pending* p = owned.get();
    p->owner = this;
    p->name = name;
    p->type = type;
    p->cb = std::move(cb);
    bool full = pending_.size() >= max_outstanding_;
    pending_.emplace(p, std::move(owned));
    int rc = full ? 0
                  : ub_resolve_async(ctx_.get(), name.c_str(), type, 1 /* IN */, p, &on_result,
                                     &p->async_id);
    if (full || rc != 0) {
        p->async_id = 0;
        Answer a;
        a.status = Answer::Status::Fail;
        a.why = full ? "resolver overloaded: " + std::to_string(max_outstanding_) +
                           " queries outstanding (DNS slow or unreachable)"
                     : std::string("resolver error: ") + ub_strerror(rc);
        p->answer = std::move(a);
        p->deliver.reset(event_new(base_, -1, 0, &on_deliver, p));
        event_active(p->deliver.get(), 0, 0);
        return;
    }
    p->timer.reset(evtimer_new(base_, &on_timeout, p));
    timeval tv{timeout_ms_ / 1000, (timeout_ms_ % 1000) * 1000};
    evtimer_add(p->timer.get(), &tv);
}

void UnboundResolver::on_readable(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<UnboundResolver*>(arg);
    if (ub_process(self->ctx_.get()) != 0) log::warn("libunbound processing failed");
}

void UnboundResolver::on_deliver(evutil_socket_t, short, void* arg) noexcept {
    auto* p = static_cast<Pending*>(arg);
    p->owner->finish(p, std::move(p->answer));
}

void UnboundResolver::on_timeout(evutil_socket_t, short, void* arg) noexcept {
    auto* p = static_cast<Pending*>(arg);
    Answer a;
    a.status = Answer::Status::Fail;
    a.why = "timeout";
    if (!p->async_id) {
        p->owner->finish(p, std::move(a));
        return;
    }
    // Answer now; keep the entry (and its count) until libunbound is done with the query.
    Callback cb = std::move(p->cb);
    p->cb = nullptr;
    p->answered = true;
    p->owner->deliver(p, std::move(cb), std::move(a));
}

void UnboundResolver::on_result(void* arg, int err, ub_result* raw) noexcept {
    UbResultPtr result(raw);
    auto* p = static_cast<Pending*>(arg);
    p->async_id = 0;
    Answer a;
    if (err != 0 || !result) {
        a.status = Answer::Status::Fail;
        a.why = std::string("resolver error: ") + ub_strerror(err);
    } else if (result->bogus) {
        a.status = Answer::Status::Fail;
        a.security = Security::Bogus;
        a.why = result->why_bogus ? result->why_bogus : "DNSSEC validation failed";
    } else {
        a.security = result->secure && p->owner->validate_ ? Security::Secure : Security::Insecure;
        a.ttl = static_cast<std::uint32_t>(result->ttl < 0 ? 0 : result->ttl);
        if (result->canonname) a.canonical_name = result->canonname;
        if (result->rcode == 3 || result->nxdomain) {
            a.status = Answer::Status::NxDomain;
        } else if (result->rcode != 0) {
            a.status = Answer::Status::Fail;
            a.security = Security::Indeterminate;
            a.why = result->rcode == 2 ? "SERVFAIL" : "rcode " + std::to_string(result->rcode);
        } else if (!result->havedata) {
            a.status = Answer::Status::NoData;
        } else {
            a.status = Answer::Status::Ok;
            for (int i = 0; result->data[i] != nullptr; ++i)
                a.rdata.emplace_back(result->data[i], static_cast<std::size_t>(result->len[i]));
        }
    }
    p->owner->finish(p, std::move(a));
}

void UnboundResolver::finish(Pending* p, Answer a) {
    auto it = pending_.find(p);
    if (it == pending_.end()) return;
    std::unique_ptr<Pending> owned = std::move(it->second);
    pending_.erase(it);
    if (owned->answered) return;  // answered "timeout" before; libunbound is done with it now
    deliver(owned.get(), std::move(owned->cb), std::move(a));
}

void UnboundResolver::deliver(Pending* p, Callback cb, Answer a) {
    log::debug("dns answer", {{"name", p->name},
                              {"type", type_name(p->type)},
                              {"status", status_name(a.status)},
                              {"dnssec", security_name(a.security)},
                              {"why", a.why}});
    try {
        if (cb) cb(std::move(a));
    } catch (const std::exception& e) {
        log::error("dns callback failed", {{"error", e.what()}});
    }
}

}  // namespace strictmx::dns
