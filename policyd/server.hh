// SPDX-License-Identifier: MIT
// Listeners and connections on one libevent loop, on loopback TCP or unix sockets. Each
// connection has a fixed read buffer sized to its protocol's longest request, reads nothing
// while a request is in progress or a reply is still going out (Postfix never pipelines),
// and writes replies directly, waiting for writability only when the socket is full: a
// client that sends without end or never reads costs a bounded amount of memory.
#pragma once

#include <event2/event.h>
#include <event2/listener.h>
#include <sys/types.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_set>
#include <vector>

#include "config/config.hh"
#include "policy/service.hh"
#include "util/handles.hh"

namespace strictmx::policyd {

class Protocol;

class Server {
  public:
    Server(event_base* base, const config::Config& cfg);
    ~Server();
    Server(const Server&) = delete;
    Server& operator=(const Server&) = delete;

    // Binds every configured listener (before privileges are dropped), not yet accepting.
    // Throws on failure.
    void bind_all();
    // Requests are answered by `service` (set after privileges are dropped, before the loop
    // runs; nullptr answers TEMP).
    void set_service(policy::Service* service) { service_ = service; }
    // Listeners are bound disabled; this starts accepting connections.
    void start_accepting();
    std::size_t connections() const { return conns_; }

    // Most a connection holds at once: its read buffer and one reply being written.
    static std::size_t max_connection_bytes();

    struct Conn;
    struct Listener;

  private:
    static void on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) noexcept;
    static void on_accept_error(evconnlistener*, void* arg) noexcept;
    static void on_accept_resume(evutil_socket_t, short, void* arg) noexcept;
    static void on_readable(evutil_socket_t, short, void* arg) noexcept;
    static void on_writable(evutil_socket_t, short, void* arg) noexcept;
    static void on_timer(evutil_socket_t, short, void* arg) noexcept;
    void read_some(Conn* c);
    void process(Conn* c);
    void reply(Conn* c, std::string bytes);
    void flush(Conn* c);
    void arm_timer(Conn* c);
    void close(Conn* c);
    void pause_listeners(bool pause);

    event_base* base_;
    policy::Service* service_ = nullptr;
    const config::Config& cfg_;
    std::vector<std::unique_ptr<Listener>> listeners_;
    std::unordered_set<Conn*> live_;        // open connections, closed when the server goes
    std::map<uid_t, std::size_t> per_uid_;  // unix socket peers (SO_PEERCRED)
    std::size_t conns_ = 0;
    bool accepting_ = false;
    bool paused_ = false;       // max_connections reached
    bool backing_off_ = false;  // accept() failed for lack of descriptors
    EventPtr resume_;
    std::uint64_t accept_errors_ = 0;
    std::uint64_t refused_per_uid_ = 0;
};

}  // namespace strictmx::policyd
