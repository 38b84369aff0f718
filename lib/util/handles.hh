// SPDX-License-Identifier: MIT
// Owning wrappers for the C handles strictmx uses: one stateless deleter per type.
#pragma once

#include <curl/curl.h>
#include <event2/event.h>
#include <sqlite3.h>
#include <unbound.h>
#include <unistd.h>

#include <memory>
#include <utility>

namespace strictmx {

template <auto Fn>
struct CDeleter {
    template <typename T>
    void operator()(T* p) const noexcept {
        if (p) Fn(p);
    }
};

using UbCtxPtr = std::unique_ptr<ub_ctx, CDeleter<ub_ctx_delete>>;
using UbResultPtr = std::unique_ptr<ub_result, CDeleter<ub_resolve_free>>;
using CurlPtr = std::unique_ptr<CURL, CDeleter<curl_easy_cleanup>>;
using CurlMultiPtr = std::unique_ptr<CURLM, CDeleter<curl_multi_cleanup>>;
using CurlSlistPtr = std::unique_ptr<curl_slist, CDeleter<curl_slist_free_all>>;
using SqlitePtr = std::unique_ptr<sqlite3, CDeleter<sqlite3_close_v2>>;
using SqliteStmtPtr = std::unique_ptr<sqlite3_stmt, CDeleter<sqlite3_finalize>>;
using EventBasePtr = std::unique_ptr<event_base, CDeleter<event_base_free>>;
using EventPtr = std::unique_ptr<event, CDeleter<event_free>>;

// A move-only file descriptor. Never converts to int implicitly.
class Fd {
  public:
    Fd() = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
    Fd& operator=(Fd&& o) noexcept {
        if (this != &o) {
            reset();
            fd_ = std::exchange(o.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const noexcept { return fd_; }
    bool valid() const noexcept { return fd_ >= 0; }
    int release() noexcept { return std::exchange(fd_, -1); }
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

  private:
    int fd_ = -1;
};

}  // namespace strictmx
