// SPDX-License-Identifier: MIT
// Fetcher backed by libcurl's multi-socket API on a libevent loop.
#pragma once

#include <event2/event.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "sts/fetcher.hh"
#include "util/handles.hh"

namespace strictmx::sts {

struct CurlOptions {
    std::string ca_file;                  // empty: the system bundle
    std::vector<std::string> connect_to;  // CURLOPT_CONNECT_TO entries
    std::string proxy;                    // empty: no proxy, whatever the environment says
    long timeout_ms = 10'000;
    long connect_timeout_ms = 5'000;
};

class CurlFetcher final : public Fetcher {
  public:
    CurlFetcher(event_base* base, CurlOptions opts);
    ~CurlFetcher() override;
    CurlFetcher(const CurlFetcher&) = delete;
    CurlFetcher& operator=(const CurlFetcher&) = delete;

    void fetch(const std::string& domain, Callback cb) override;

  private:
    struct Transfer;
    struct SocketWatch;
    static int on_socket(CURL*, curl_socket_t s, int what, void* userp, void* socketp) noexcept;
    static int on_timer(CURLM*, long timeout_ms, void* userp) noexcept;
    static void on_event(evutil_socket_t fd, short events, void* arg) noexcept;
    static void on_timeout(evutil_socket_t, short, void* arg) noexcept;
    static void on_deliver(evutil_socket_t, short, void* arg) noexcept;
    static std::size_t on_body(char* data, std::size_t size, std::size_t n, void* userp) noexcept;
    void drain();
    void complete(Transfer* t, FetchResult r);

    event_base* base_;
    CurlOptions opts_;
    CurlMultiPtr multi_;
    EventPtr timer_;
    CurlSlistPtr connect_to_;
    std::map<Transfer*, std::unique_ptr<Transfer>> transfers_;
};

}  // namespace strictmx::sts
