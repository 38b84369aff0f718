// SPDX-License-Identifier: MIT
// Hands work from other threads to the event loop's thread: a bounded queue and an eventfd
// the loop watches. What is posted runs on the loop, in the order posted, never on the
// poster's thread. Used by the shared (PostgreSQL) cache, whose connections live on worker
// threads while the engine lives on the loop.
#pragma once

#include <event2/event.h>

#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>

#include "util/handles.hh"

namespace strictmx {

class LoopPost {
  public:
    // Past `max_queued` unrun items post() refuses (returns false) and the caller decides.
    LoopPost(event_base* base, std::size_t max_queued);
    ~LoopPost();
    LoopPost(const LoopPost&) = delete;
    LoopPost& operator=(const LoopPost&) = delete;

    // Thread-safe. False when the queue is full or the poster is closed.
    bool post(std::function<void()> fn);
    // Nothing posted afterwards runs; what is queued is dropped (shutdown).
    void close();

  private:
    static void on_ready(evutil_socket_t fd, short, void* arg) noexcept;
    void drain();
    Fd fd_;
    EventPtr ev_;
    std::mutex mu_;
    std::deque<std::function<void()>> q_;
    std::size_t max_;
    bool closed_ = false;
};

}  // namespace strictmx
