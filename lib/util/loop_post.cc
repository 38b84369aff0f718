// SPDX-License-Identifier: MIT
#include "util/loop_post.hh"

#include <sys/eventfd.h>

#include <cstdint>
#include <stdexcept>

#include "util/log.hh"

namespace strictmx {

LoopPost::LoopPost(event_base* base, std::size_t max_queued) : max_(max_queued) {
    fd_ = Fd(::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC));
    if (!fd_.valid()) throw std::runtime_error("eventfd failed");
    ev_.reset(event_new(base, fd_.get(), EV_READ | EV_PERSIST, &on_ready, this));
    if (!ev_ || event_add(ev_.get(), nullptr) != 0)
        throw std::runtime_error("cannot watch an eventfd");
}

LoopPost::~LoopPost() { close(); }

bool LoopPost::post(std::function<void()> fn) {
    {
        std::lock_guard lk(mu_);
        if (closed_ || q_.size() >= max_) return false;
        q_.push_back(std::move(fn));
        if (q_.size() > 1) return true;  // already signalled, not yet drained
    }
    std::uint64_t one = 1;
    [[maybe_unused]] auto n = ::write(fd_.get(), &one, sizeof one);
    return true;
}

void LoopPost::close() {
    std::lock_guard lk(mu_);
    closed_ = true;
    q_.clear();
}

void LoopPost::on_ready(evutil_socket_t fd, short, void* arg) noexcept {
    std::uint64_t n = 0;
    [[maybe_unused]] auto r = ::read(fd, &n, sizeof n);
    static_cast<LoopPost*>(arg)->drain();
}

void LoopPost::drain() {
    std::deque<std::function<void()>> batch;
    {
        std::lock_guard lk(mu_);
        batch.swap(q_);
    }
    for (auto& fn : batch) {
        try {
            fn();
        } catch (const std::exception& e) {
            log::error("posted work failed", {{"error", e.what()}});
        }
    }
}

}  // namespace strictmx
