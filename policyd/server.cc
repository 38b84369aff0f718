// SPDX-License-Identifier: MIT
// Listeners and connections. A connection owns a fixed read buffer (its protocol's longest
// request) and at most one reply being written. It reads nothing while a request is in
// progress or a reply waits for the socket (Postfix never pipelines), so input it has not
// asked for stays in the kernel, and a client that never reads stops being read from.
// Malformed input gets the protocol's error reply and the connection is closed; nothing else
// notices. accept() failing for lack of descriptors pauses the listeners briefly instead of
// spinning.
#include "server.hh"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>

#include "codecs/netstring.hh"
#include "protocol.hh"
#include "util/log.hh"

namespace strictmx::policyd {

namespace {
using SteadyClock = std::chrono::steady_clock;
// How long accept() rests after failing for lack of descriptors.
constexpr timeval kAcceptBackoff{0, 200'000};
}  // namespace

struct Server::Listener {
    Server* server = nullptr;
    config::Listen cfg;
    const Protocol* proto = nullptr;
    const policy::Profile* profile = nullptr;  // tcp_table, exim
    bool is_unix = false;
    evconnlistener* ev = nullptr;
    std::string unix_path;
};

struct Server::Conn {
    Server* server = nullptr;
    Listener* listener = nullptr;
    Fd fd;
    EventPtr rd, wr, timer;
    std::unique_ptr<char[]> in;
    std::size_t in_len = 0, in_cap = 0;
    std::string out;  // one reply, written from out_off
    std::size_t out_off = 0;
    bool reading = false;
    bool writing = false;     // waiting for the socket to take the rest of `out`
    bool busy = false;        // a request is in progress
    bool closing = false;     // close once the reply is out
    bool eof = false;         // the client shut down its side (Exim's readsocket does)
    bool in_process = false;  // process() is on the stack: it picks up the next request
    bool has_uid = false;
    uid_t uid = 0;
    std::uint64_t request = 0;  // sequence number of the request in progress
    std::string current;        // the request in progress, for the log
    SteadyClock::time_point opened = SteadyClock::now();
    std::shared_ptr<Conn> self;  // the loop's reference; callbacks hold weak ones
};

namespace {
// systemd socket activation (sd_listen_fds(3), without libsystemd): descriptors 3.. when
// LISTEN_PID is this process; the variables are removed so children do not inherit them.
std::vector<int> activated_fds() {
    const char* pid = std::getenv("LISTEN_PID");
    const char* n = std::getenv("LISTEN_FDS");
    std::vector<int> fds;
    if (pid && n && std::strtol(pid, nullptr, 10) == static_cast<long>(::getpid())) {
        long count = std::strtol(n, nullptr, 10);
        for (long i = 0; i < count && i < 64; ++i) fds.push_back(3 + static_cast<int>(i));
    }
    ::unsetenv("LISTEN_PID");
    ::unsetenv("LISTEN_FDS");
    ::unsetenv("LISTEN_FDNAMES");
    return fds;
}

sockaddr_storage parse_inet(const std::string& hostport, int& len) {
    sockaddr_storage ss{};
    len = sizeof ss;
    if (evutil_parse_sockaddr_port(hostport.c_str(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        throw std::runtime_error("bad listen address inet:" + hostport);
    return ss;
}
}  // namespace

namespace {
// Whether listening socket `fd` is bound to the listener address `address`.
bool same_address(int fd, const std::string& address) {
    sockaddr_storage got{};
    socklen_t glen = sizeof got;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&got), &glen) != 0) return false;
    if (address.starts_with("unix:")) {
        if (got.ss_family != AF_UNIX) return false;
        const auto* sun = reinterpret_cast<const sockaddr_un*>(&got);
        return std::string(sun->sun_path) == address.substr(5);
    }
    if (!address.starts_with("inet:")) return false;
    int len = 0;
    sockaddr_storage want = parse_inet(address.substr(5), len);
    if (want.ss_family != got.ss_family) return false;
    if (got.ss_family == AF_INET) {
        const auto* a = reinterpret_cast<const sockaddr_in*>(&got);
        const auto* b = reinterpret_cast<const sockaddr_in*>(&want);
        return a->sin_port == b->sin_port && a->sin_addr.s_addr == b->sin_addr.s_addr;
    }
    if (got.ss_family == AF_INET6) {
        const auto* a = reinterpret_cast<const sockaddr_in6*>(&got);
        const auto* b = reinterpret_cast<const sockaddr_in6*>(&want);
        return a->sin6_port == b->sin6_port &&
               std::memcmp(&a->sin6_addr, &b->sin6_addr, sizeof a->sin6_addr) == 0;
    }
    return false;
}
}  // namespace

std::size_t Server::max_connection_bytes() {
    std::size_t frame = 0;
    for (const char* t : {"socketmap", "tcp_table", "exim"})
        frame = std::max(frame, find_protocol(t)->max_frame());
    return frame + netstring::kMaxReply + 16 + sizeof(Conn);
}

Server::Server(event_base* base, const config::Config& cfg) : base_(base), cfg_(cfg) {
    resume_.reset(evtimer_new(base_, &on_accept_resume, this));
}

Server::~Server() {
    std::vector<Conn*> open(live_.begin(), live_.end());
    for (Conn* c : open) close(c);
    for (auto& l : listeners_) {
        if (l->ev) evconnlistener_free(l->ev);
        if (!l->unix_path.empty()) ::unlink(l->unix_path.c_str());
    }
}

void Server::bind_all() {
    std::vector<int> activated = activated_fds();
    std::vector<bool> used(activated.size(), false);
    for (const auto& lc : cfg_.listen) {
        auto l = std::make_unique<Listener>();
        l->server = this;
        l->cfg = lc;
        l->proto = find_protocol(lc.type);
        if (!l->proto)
            throw std::runtime_error("listener " + lc.address + ": unknown type " + lc.type);
        l->is_unix = lc.address.starts_with("unix:");
        if (lc.type == "tcp_table" || lc.type == "exim") {
            std::string pname = lc.profile.empty() ? "postfix" : lc.profile;
            l->profile = policy::find_profile(pname);
            if (!l->profile)
                throw std::runtime_error("listener " + lc.address + ": unknown profile " + pname);
        }
        // Created disabled: connections wait in the listen queue until start_accepting(),
        // after the cache is loaded and DNSSEC validation proven.
        unsigned flags =
            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE | LEV_OPT_DISABLED;
        int adopted = -1;
        for (std::size_t i = 0; i < activated.size(); ++i) {
            if (!used[i] && same_address(activated[i], lc.address)) {
                adopted = activated[i];
                used[i] = true;
                break;
            }
        }
        if (adopted >= 0) {
            // From systemd (strictmx-policyd.socket): already bound and listening; its
            // mode and group are the socket unit's. Connections queued during a restart
            // are served.
            evutil_make_socket_nonblocking(adopted);
            evutil_make_socket_closeonexec(adopted);
            l->ev = evconnlistener_new(base_, &on_accept, l.get(), flags, -1, adopted);
            if (!l->ev)
                throw std::runtime_error("cannot use the socket systemd passed for " +
                                         lc.address + ": " + std::strerror(errno));
        } else if (lc.address.starts_with("inet:")) {
            int len = 0;
            sockaddr_storage ss = parse_inet(lc.address.substr(5), len);
            l->ev = evconnlistener_new_bind(base_, &on_accept, l.get(), flags, 128,
                                            reinterpret_cast<sockaddr*>(&ss), len);
            if (!l->ev)
                throw std::runtime_error("cannot listen on " + lc.address + ": " +
                                         std::strerror(errno));
        } else {
            std::string path = lc.address.substr(5);
            sockaddr_un sun{};
            if (path.empty() || path.size() >= sizeof sun.sun_path)
                throw std::runtime_error("unix socket path empty or too long: " + path);
            sun.sun_family = AF_UNIX;
            std::memcpy(sun.sun_path, path.c_str(), path.size() + 1);
            struct stat st {};
            if (::lstat(path.c_str(), &st) == 0 && S_ISSOCK(st.st_mode)) ::unlink(path.c_str());
            mode_t old = ::umask(0177);
            l->ev = evconnlistener_new_bind(base_, &on_accept, l.get(), flags & ~LEV_OPT_REUSEABLE,
                                            128, reinterpret_cast<sockaddr*>(&sun), sizeof sun);
            ::umask(old);
            if (!l->ev)
                throw std::runtime_error("cannot listen on " + lc.address + ": " +
                                         std::strerror(errno));
            l->unix_path = path;
            mode_t mode =
                lc.mode.empty() ? 0660 : static_cast<mode_t>(std::stoul(lc.mode, nullptr, 8));
            uid_t uid = static_cast<uid_t>(-1);
            gid_t gid = static_cast<gid_t>(-1);
            if (!lc.owner.empty()) {
                passwd* pw = ::getpwnam(lc.owner.c_str());
                if (!pw)
                    throw std::runtime_error("listener " + lc.address + ": no such user " +
                                             lc.owner);
                uid = pw->pw_uid;
            }
            if (!lc.group.empty()) {
                group* gr = ::getgrnam(lc.group.c_str());
                if (!gr)
                    throw std::runtime_error("listener " + lc.address + ": no such group " +
                                             lc.group);
                gid = gr->gr_gid;
            }
            if ((uid != static_cast<uid_t>(-1) || gid != static_cast<gid_t>(-1)) &&
                ::chown(path.c_str(), uid, gid) != 0)
                throw std::runtime_error("chown " + path + ": " + std::strerror(errno));
            if (::chmod(path.c_str(), mode) != 0)
                throw std::runtime_error("chmod " + path + ": " + std::strerror(errno));
        }
        evconnlistener_set_error_cb(l->ev, &on_accept_error);
        log::info("listening", {{"type", lc.type},
                                {"address", lc.address},
                                {"profile", l->profile ? l->profile->name
                                            : lc.type == "socketmap" ? "by map name" : "-"},
                                {"from", adopted >= 0 ? "systemd" : "bound here"}});
        listeners_.push_back(std::move(l));
    }
    for (std::size_t i = 0; i < activated.size(); ++i) {
        if (used[i]) continue;
        // A socket unit that listens where strictmx.toml does not: Postfix would connect
        // and never be answered. Refuse, loudly.
        sockaddr_storage ss{};
        socklen_t len = sizeof ss;
        ::getsockname(activated[i], reinterpret_cast<sockaddr*>(&ss), &len);
        char host[256] = "?";
        char ip[INET6_ADDRSTRLEN] = "?";
        if (ss.ss_family == AF_UNIX) {
            std::snprintf(host, sizeof host, "unix:%s",
                          reinterpret_cast<sockaddr_un*>(&ss)->sun_path);
        } else if (ss.ss_family == AF_INET) {
            const auto* a = reinterpret_cast<const sockaddr_in*>(&ss);
            ::inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
            std::snprintf(host, sizeof host, "inet:%s:%u", ip, ntohs(a->sin_port));
        } else if (ss.ss_family == AF_INET6) {
            const auto* a = reinterpret_cast<const sockaddr_in6*>(&ss);
            ::inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
            std::snprintf(host, sizeof host, "inet:[%s]:%u", ip, ntohs(a->sin6_port));
        }
        throw std::runtime_error(std::string("systemd passed a socket for ") + host +
                                 " but strictmx.toml has no [[listen]] for it: make "
                                 "strictmx-policyd.socket and [[listen]] agree");
    }
}

void Server::start_accepting() {
    accepting_ = true;
    for (auto& l : listeners_) evconnlistener_enable(l->ev);
}

void Server::pause_listeners(bool pause) {
    if (pause == paused_) return;
    paused_ = pause;
    bool off = paused_ || backing_off_ || !accepting_;
    for (auto& l : listeners_) {
        if (off)
            evconnlistener_disable(l->ev);
        else
            evconnlistener_enable(l->ev);
    }
    if (pause)
        log::warn("connection limit reached, accepting no more until one closes",
                  {{"max_connections", std::to_string(cfg_.max_connections)}});
}

void Server::on_accept_error(evconnlistener*, void* arg) noexcept {
    auto* l = static_cast<Listener*>(arg);
    Server* s = l->server;
    int err = EVUTIL_SOCKET_ERROR();
    if (err != EMFILE && err != ENFILE && err != ENOBUFS && err != ENOMEM) return;
    // Out of descriptors: the pending connection stays readable, so accepting again at once
    // would spin. Rest the listeners, then try again; say so once per thousand.
    if (s->accept_errors_++ % 1000 == 0)
        log::error("cannot accept connections: out of file descriptors, pausing accept",
                   {{"error", std::strerror(err)},
                    {"connections", std::to_string(s->conns_)},
                    {"times", std::to_string(s->accept_errors_)}});
    s->backing_off_ = true;
    for (auto& other : s->listeners_) evconnlistener_disable(other->ev);
    evtimer_add(s->resume_.get(), &kAcceptBackoff);
}

void Server::on_accept_resume(evutil_socket_t, short, void* arg) noexcept {
    auto* s = static_cast<Server*>(arg);
    s->backing_off_ = false;
    if (s->paused_ || !s->accepting_) return;
    for (auto& l : s->listeners_) evconnlistener_enable(l->ev);
}

void Server::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) noexcept {
    auto* l = static_cast<Listener*>(arg);
    Server* s = l->server;
    Fd owned(fd);
    uid_t uid = 0;
    bool has_uid = false;
    if (l->is_unix) {
        // One local user cannot take every connection slot from the others (Postfix's).
        ucred cred{};
        socklen_t len = sizeof cred;
        if (::getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            uid = cred.uid;
            has_uid = true;
            if (s->per_uid_[uid] >= static_cast<std::size_t>(s->cfg_.max_connections_per_user)) {
                if (s->refused_per_uid_++ % 1000 == 0)
                    log::warn("connection refused: the peer's user has too many open",
                              {{"uid", std::to_string(uid)},
                               {"max_connections_per_user",
                                std::to_string(s->cfg_.max_connections_per_user)},
                               {"times", std::to_string(s->refused_per_uid_)}});
                return;
            }
        }
    }
    evutil_make_socket_nonblocking(fd);
    auto c = std::make_shared<Conn>();
    c->server = s;
    c->listener = l;
    c->fd = std::move(owned);
    c->self = c;
    c->has_uid = has_uid;
    c->uid = uid;
    c->in_cap = l->proto->max_frame();
    c->in = std::make_unique<char[]>(c->in_cap);
    c->rd.reset(event_new(s->base_, fd, EV_READ | EV_PERSIST, &on_readable, c.get()));
    c->wr.reset(event_new(s->base_, fd, EV_WRITE | EV_PERSIST, &on_writable, c.get()));
    c->timer.reset(evtimer_new(s->base_, &on_timer, c.get()));
    if (!c->rd || !c->wr || !c->timer) return;  // out of memory: the client retries
    event_add(c->rd.get(), nullptr);
    c->reading = true;
    s->arm_timer(c.get());
    ++s->conns_;
    if (has_uid) ++s->per_uid_[uid];
    s->live_.insert(c.get());
    if (s->conns_ >= static_cast<std::size_t>(s->cfg_.max_connections)) s->pause_listeners(true);
}

void Server::arm_timer(Conn* c) {
    // One timer: the lookup deadline while a request is in progress, else the idle timeout,
    // never past the connection's lifetime.
    std::chrono::milliseconds wait;
    if (c->busy) {
        wait = std::chrono::milliseconds(cfg_.lookup_deadline_ms);
    } else {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            c->opened + std::chrono::seconds(cfg_.max_lifetime_s) - SteadyClock::now());
        wait = std::clamp(left, std::chrono::milliseconds(0),
                          std::chrono::milliseconds(std::chrono::seconds(cfg_.idle_timeout_s)));
    }
    timeval tv{static_cast<time_t>(wait.count() / 1000),
               static_cast<suseconds_t>((wait.count() % 1000) * 1000)};
    evtimer_add(c->timer.get(), &tv);
}

void Server::close(Conn* c) {
    if (!c->fd.valid()) return;
    c->rd.reset();
    c->wr.reset();
    c->timer.reset();
    c->fd = Fd();
    c->in.reset();
    c->out = std::string();
    ++c->request;  // a reply still on its way is dropped
    --conns_;
    if (c->has_uid) {
        auto it = per_uid_.find(c->uid);
        if (it != per_uid_.end() && --it->second == 0) per_uid_.erase(it);
    }
    live_.erase(c);
    if (paused_ && conns_ < static_cast<std::size_t>(cfg_.max_connections)) pause_listeners(false);
    c->self.reset();  // may destroy c; callers hold a reference while they use it
}

void Server::on_timer(evutil_socket_t, short, void* arg) noexcept {
    auto* c = static_cast<Conn*>(arg);
    std::shared_ptr<Conn> keep = c->self;
    Server* s = c->server;
    if (!c->busy) {
        s->close(c);  // idle, or its lifetime is over
        return;
    }
    ++c->request;  // the answer, when it comes, is cached for the next attempt
    c->busy = false;
    log::warn(
        "decision answer=TEMP source=deadline: lookup still in progress, the resolution goes on in "
        "the background",
        {{"request", c->current}, {"deadline_ms", std::to_string(s->cfg_.lookup_deadline_ms)}});
    if (c->listener->proto->one_request()) c->closing = true;
    s->reply(c, c->listener->proto->deadline_reply());
}

void Server::on_readable(evutil_socket_t, short, void* arg) noexcept {
    auto* c = static_cast<Conn*>(arg);
    std::shared_ptr<Conn> keep = c->self;
    c->server->read_some(c);
}

void Server::read_some(Conn* c) {
    if (c->in_len == c->in_cap) {  // full: process() decides (a read of 0 would look like EOF)
        process(c);
        return;
    }
    ssize_t n;
    do {
        n = ::read(c->fd.get(), c->in.get() + c->in_len, c->in_cap - c->in_len);
    } while (n < 0 && errno == EINTR);
    if (n < 0) {
        if (errno != EAGAIN && errno != EWOULDBLOCK) close(c);
        return;
    }
    if (n == 0) {
        c->eof = true;
        event_del(c->rd.get());
        c->reading = false;
    }
    c->in_len += static_cast<std::size_t>(n);
    if (!c->busy) arm_timer(c);
    process(c);
}

void Server::process(Conn* c) {
    if (c->in_process) return;
    c->in_process = true;
    struct Reset {
        Conn* c;
        ~Reset() { c->in_process = false; }
    } reset{c};
    const Protocol& proto = *c->listener->proto;
    try {
        while (c->fd.valid() && !c->busy && !c->closing && c->out.empty()) {
            Frame f = proto.frame(std::string_view(c->in.get(), c->in_len), c->eof);
            if (f.kind == Frame::Kind::NeedMore) {
                if (c->in_len == c->in_cap) {
                    // The buffer holds the longest request there is, and no end: not a request.
                    f.kind = Frame::Kind::Malformed;
                    f.why = "request longer than the protocol allows";
                    f.error_reply = proto.internal_error_reply();
                } else if (c->eof) {
                    close(c);  // the client is done
                    return;
                } else {
                    if (!c->reading) {
                        event_add(c->rd.get(), nullptr);
                        c->reading = true;
                    }
                    return;
                }
            }
            if (f.kind == Frame::Kind::Malformed) {
                log::warn("malformed request, closing the connection",
                          {{"protocol", proto.name()}, {"error", f.why}});
                c->closing = true;
                reply(c, std::move(f.error_reply));
                return;
            }
            std::memmove(c->in.get(), c->in.get() + f.consumed, c->in_len - f.consumed);
            c->in_len -= f.consumed;
            c->busy = true;
            c->current = std::move(f.request);
            std::uint64_t id = ++c->request;
            if (!service_) throw std::runtime_error("not ready");
            std::weak_ptr<Conn> weak = c->self;
            proto.handle(*service_, c->current, c->listener->profile,
                         [this, weak, id](std::string bytes) {
                             auto conn = weak.lock();
                             if (!conn || conn->request != id || !conn->fd.valid())
                                 return;  // answered at the deadline, or gone
                             conn->busy = false;
                             if (conn->listener->proto->one_request()) conn->closing = true;
                             reply(conn.get(), std::move(bytes));
                         });
            if (c->busy && c->fd.valid()) {
                // Waits for a resolution: nothing more is read until it is answered and the
                // reply is out, and the deadline runs. (A cache hit has been answered by now,
                // with no change to the events.)
                if (c->reading) {
                    event_del(c->rd.get());
                    c->reading = false;
                }
                arm_timer(c);
            }
        }
    } catch (const std::exception& e) {
        log::error("request failed, answering TEMP and closing the connection",
                   {{"protocol", proto.name()}, {"error", e.what()}});
        if (c->fd.valid()) {
            c->busy = false;
            ++c->request;
            c->closing = true;
            reply(c, proto.internal_error_reply());
        }
    }
}

void Server::reply(Conn* c, std::string bytes) {
    std::shared_ptr<Conn> keep = c->self;
    c->out = std::move(bytes);
    c->out_off = 0;
    flush(c);
}

void Server::on_writable(evutil_socket_t, short, void* arg) noexcept {
    auto* c = static_cast<Conn*>(arg);
    std::shared_ptr<Conn> keep = c->self;
    c->server->flush(c);
}

void Server::flush(Conn* c) {
    while (c->out_off < c->out.size()) {
        ssize_t n = ::send(c->fd.get(), c->out.data() + c->out_off, c->out.size() - c->out_off,
                           MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            // The client is slow to read: wait for it, and read nothing more meanwhile.
            event_add(c->wr.get(), nullptr);
            c->writing = true;
            if (c->reading) {
                event_del(c->rd.get());
                c->reading = false;
            }
            return;
        }
        if (n < 0) {
            close(c);
            return;
        }
        c->out_off += static_cast<std::size_t>(n);
    }
    if (c->writing) {
        event_del(c->wr.get());
        c->writing = false;
    }
    c->out.clear();
    c->out_off = 0;
    if (c->closing) {
        close(c);
        return;
    }
    arm_timer(c);
    process(c);  // a request already buffered; a no-op when called from process()
}

}  // namespace strictmx::policyd
