// SPDX-License-Identifier: MIT
// Listeners and connections on one libevent loop: socketmap (netstrings) and tcp_table
// (lines), on loopback TCP or unix sockets.
#pragma once

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>

#include <cstdint>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "config/config.hh"
#include "policy/service.hh"
#include "util/handles.hh"

namespace strictmx::policyd {

enum class Protocol { Socketmap, TcpTable, Exim };

class Server {
  public:
    Server(event_base* base, const config::Config& cfg);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds every configured listener (before privileges are dropped). Throws on failure.
    void bind_all();
    // Requests are answered by `service` (set after privileges are dropped, before the loop
    // runs; nullptr answers TEMP).
    void set_service(policy::Service* service) { service_ = service; }
    // Listeners are bound disabled; this starts accepting connections.
    void start_accepting();
    std::size_t connections() const { return conns_; }

    struct Conn;
    struct Listener;

  private:
    static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) noexcept;
    static void on_read(bufferevent* bev, void* arg) noexcept;
    static void on_write(bufferevent* bev, void* arg) noexcept;
    static void on_event(bufferevent* bev, short what, void* arg) noexcept;
    static void on_deadline(evutil_socket_t, short, void* arg) noexcept;
    void process(const std::shared_ptr<Conn>& c);
    void send(const std::shared_ptr<Conn>& c, const std::string& bytes);
    void close(Conn* c);
    void pause_listeners(bool pause);

    event_base* base_;
    policy::Service* service_ = nullptr;
    const config::Config& cfg_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::unordered_set<Conn*> live_;  // open connections, closed when the server goes
    std::size_t conns_ = 0;
    bool paused_ = false;
};

}  // namespace strictmx::policyd
