// SPDX-License-Identifier: MIT
// Listeners and connections. Each connection holds at most one request in progress (Postfix
// never pipelines); further bytes wait in the input buffer. A request that cannot be parsed
// gets an error reply and the connection is closed; no other connection notices.
#include "server.hh"

#include <event2/buffer.h>
#include <grp.h>
#include <pwd.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>
#include <map>
#include <stdexcept>

#include "codecs/netstring.hh"
#include "codecs/tcp_table.hh"
#include "util/log.hh"

namespace strictmx::policyd {

struct Server::Listener {
    Server* server = nullptr;
    config::Listen cfg;
    Protocol proto = Protocol::Socketmap;
    const policy::Profile* profile = nullptr;  // tcp_table
    evconnlistener* ev = nullptr;
    std::string unix_path;
};

struct Server::Conn : std::enable_shared_from_this<Conn> {
    Server* server = nullptr;
    Listener* listener = nullptr;
    bufferevent* bev = nullptr;
    bool busy = false;          // a request is in progress
    bool closing = false;       // close once the output is flushed
    bool in_process = false;    // process() is on the stack: it picks up the next request
    bool eof = false;           // the client shut down its side (Exim readsocket does)
    std::uint64_t request = 0;  // sequence number of the request in progress
    std::string current;        // the request in progress, for the log
    EventPtr deadline;
    std::shared_ptr<Conn> self;  // keeps the connection alive while the loop owns it
};

namespace {
sockaddr_storage parse_inet(const std::string& hostport, int& len) {
    sockaddr_storage ss{};
    len = sizeof ss;
    if (evutil_parse_sockaddr_port(hostport.c_str(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        throw std::runtime_error("bad listen address inet:" + hostport);
    return ss;
}
}  // namespace

Server::Server(event_base* base, const config::Config& cfg) : base_(base), cfg_(cfg) {}

Server::~Server() {
    std::vector<Conn*> open(live_.begin(), live_.end());
    for (Conn* c : open) close(c);
    for (auto& l : listeners_) {
        if (l->ev) evconnlistener_free(l->ev);
        if (!l->unix_path.empty()) ::unlink(l->unix_path.c_str());
    }
}

void Server::bind_all() {
    for (const auto& lc : cfg_.listen) {
        auto l = std::make_unique<Listener>();
        l->server = this;
        l->cfg = lc;
        l->proto = lc.type == "tcp_table" ? Protocol::TcpTable
                   : lc.type == "exim"    ? Protocol::Exim
                                          : Protocol::Socketmap;
        if (l->proto != Protocol::Socketmap) {
            std::string pname = lc.profile.empty() ? "postfix" : lc.profile;
            l->profile = policy::find_profile(pname);
            if (!l->profile)
                throw std::runtime_error("listener " + lc.address + ": unknown profile " + pname);
        }
        // Created disabled: connections wait in the listen queue until start_accepting(),
        // after the cache is loaded and DNSSEC validation proven.
        unsigned flags =
            LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC | LEV_OPT_REUSEABLE | LEV_OPT_DISABLED;
        if (lc.address.starts_with("inet:")) {
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
        log::info("listening", {{"type", lc.type},
                                {"address", lc.address},
                                {"profile", l->profile ? l->profile->name : "by map name"}});
        listeners_.push_back(std::move(l));
    }
}

void Server::start_accepting() {
    for (auto& l : listeners_) evconnlistener_enable(l->ev);
}

void Server::pause_listeners(bool pause) {
    if (pause == paused_) return;
    paused_ = pause;
    for (auto& l : listeners_) {
        if (pause)
            evconnlistener_disable(l->ev);
        else
            evconnlistener_enable(l->ev);
    }
    if (pause)
        log::warn("connection limit reached, accepting no more until one closes",
                  {{"max_connections", std::to_string(cfg_.max_connections)}});
}

void Server::on_accept(evconnlistener*, evutil_socket_t fd, sockaddr*, int, void* arg) noexcept {
    auto* l = static_cast<Listener*>(arg);
    Server* s = l->server;
    bufferevent* bev = bufferevent_socket_new(s->base_, fd, BEV_OPT_CLOSE_ON_FREE);
    if (!bev) {
        evutil_closesocket(fd);
        return;
    }
    auto c = std::make_shared<Conn>();
    c->server = s;
    c->listener = l;
    c->bev = bev;
    c->self = c;
    c->deadline.reset(evtimer_new(s->base_, &on_deadline, c.get()));  // armed per request
    bufferevent_setcb(bev, &on_read, &on_write, &on_event, c.get());
    timeval idle{s->cfg_.idle_timeout_s, 0};
    bufferevent_set_timeouts(bev, &idle, nullptr);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
    ++s->conns_;
    s->live_.insert(c.get());
    if (s->conns_ >= static_cast<std::size_t>(s->cfg_.max_connections)) s->pause_listeners(true);
}

void Server::close(Conn* c) {
    if (!c->bev) return;
    bufferevent_free(c->bev);
    c->bev = nullptr;
    c->deadline.reset();
    ++c->request;  // a reply still on its way is dropped
    --conns_;
    live_.erase(c);
    if (paused_ && conns_ < static_cast<std::size_t>(cfg_.max_connections)) pause_listeners(false);
    c->self.reset();  // may destroy c
}

void Server::on_event(bufferevent*, short what, void* arg) noexcept {
    auto* c = static_cast<Conn*>(arg);
    if ((what & BEV_EVENT_TIMEOUT) && c->busy) {
        bufferevent_enable(c->bev, EV_READ);
        return;
    }
    if ((what & BEV_EVENT_EOF) && !(what & BEV_EVENT_ERROR) &&
        c->listener->proto == Protocol::Exim && !c->closing) {
        // Half-close: the request is complete, the answer still goes out.
        c->eof = true;
        std::shared_ptr<Conn> keep = c->shared_from_this();
        if (c->busy) return;
        if (evbuffer_get_length(bufferevent_get_input(c->bev)) > 0) {
            c->server->process(keep);
            return;
        }
    }
    c->server->close(c);
}

void Server::on_write(bufferevent* bev, void* arg) noexcept {
    auto* c = static_cast<Conn*>(arg);
    if (c->closing && evbuffer_get_length(bufferevent_get_output(bev)) == 0) c->server->close(c);
}

void Server::on_read(bufferevent*, void* arg) noexcept {
    auto* c = static_cast<Conn*>(arg);
    std::shared_ptr<Conn> keep = c->shared_from_this();
    c->server->process(keep);
}

void Server::send(const std::shared_ptr<Conn>& c, const std::string& bytes) {
    if (!c->bev) return;
    bufferevent_write(c->bev, bytes.data(), bytes.size());
}

void Server::on_deadline(evutil_socket_t, short, void* arg) noexcept {
    auto* c = static_cast<Conn*>(arg);
    std::shared_ptr<Conn> keep = c->shared_from_this();
    Server* s = c->server;
    if (!c->busy || !c->bev) return;
    ++c->request;
    c->busy = false;
    log::warn(
        "decision answer=TEMP source=deadline: lookup still in progress, the resolution goes on in "
        "the background",
        {{"request", c->current}, {"deadline_ms", std::to_string(s->cfg_.lookup_deadline_ms)}});
    switch (c->listener->proto) {
        case Protocol::Socketmap:
            s->send(keep, netstring::encode(policy::Service::socketmap_deadline_reply()));
            break;
        case Protocol::TcpTable:
            s->send(keep, policy::Service::tcp_table_deadline_reply());
            break;
        case Protocol::Exim:
            s->send(keep, policy::Service::exim_deadline_reply());
            c->closing = true;
            on_write(c->bev, c);
            return;
    }
    s->process(keep);
}

void Server::process(const std::shared_ptr<Conn>& c) {
    if (c->in_process) return;
    c->in_process = true;
    struct Reset {
        Conn* c;
        ~Reset() { c->in_process = false; }
    } reset{c.get()};
    try {
        while (c->bev && !c->busy && !c->closing) {
            evbuffer* in = bufferevent_get_input(c->bev);
            std::size_t avail = evbuffer_get_length(in);
            if (avail == 0) return;
            // Look at no more than one maximal request plus its framing.
            std::size_t want = std::min<std::size_t>(avail, netstring::kMaxRequest + 16);
            auto* data =
                reinterpret_cast<const char*>(evbuffer_pullup(in, static_cast<ev_ssize_t>(want)));
            std::string_view view(data, want);
            std::string request_key;
            std::string payload;
            std::size_t consumed = 0;
            if (c->listener->proto == Protocol::Socketmap) {
                auto r = netstring::parse(view, netstring::kMaxRequest);
                if (r.status == netstring::ParseResult::Status::NeedMore) return;
                if (r.status == netstring::ParseResult::Status::Malformed) {
                    log::warn("malformed socketmap request, closing the connection",
                              {{"error", r.reason}});
                    send(c, netstring::encode(std::string("PERM malformed request: ") + r.reason));
                    c->closing = true;
                    on_write(c->bev, c.get());
                    return;
                }
                payload.assign(r.payload);
                consumed = r.consumed;
            } else if (c->listener->proto == Protocol::Exim) {
                std::size_t nl = view.find('\n');
                if (nl == std::string_view::npos && view.size() > netstring::kMaxRequest)
                    nl = view.size() + 1;
                if (nl == std::string_view::npos && !c->eof) return;
                if (nl == view.size() + 1) {
                    send(c, "level=tempfail reason=\"request too long\"\n");
                    c->closing = true;
                    on_write(c->bev, c.get());
                    return;
                }
                std::size_t len = nl == std::string_view::npos ? view.size() : nl;
                payload.assign(view.substr(0, len));
                if (!payload.empty() && payload.back() == '\r') payload.pop_back();
                consumed = nl == std::string_view::npos ? view.size() : nl + 1;
            } else {
                auto r = tcp_table::parse_request(view);
                if (r.status == tcp_table::ParseResult::Status::NeedMore) return;
                if (r.status == tcp_table::ParseResult::Status::Malformed) {
                    log::warn("malformed tcp_table request, closing the connection",
                              {{"error", r.reason}});
                    send(c, *tcp_table::reply(400, std::string("malformed request: ") + r.reason));
                    c->closing = true;
                    on_write(c->bev, c.get());
                    return;
                }
                request_key = std::move(r.key);
                consumed = r.consumed;
            }
            evbuffer_drain(in, consumed);
            c->busy = true;
            c->current = request_key.empty() ? payload : request_key;
            std::uint64_t id = ++c->request;
            int ms = cfg_.lookup_deadline_ms;
            timeval tv{ms / 1000, (ms % 1000) * 1000};
            evtimer_add(c->deadline.get(), &tv);
            std::weak_ptr<Conn> weak = c;
            auto reply = [this, weak, id](std::string bytes) {
                auto conn = weak.lock();
                if (!conn || conn->request != id || !conn->bev)
                    return;  // answered at the deadline, or gone
                conn->busy = false;
                evtimer_del(conn->deadline.get());
                send(conn, bytes);
                process(conn);  // next buffered request; a no-op when called from process()
            };
            if (!service_) throw std::runtime_error("not ready");
            switch (c->listener->proto) {
                case Protocol::Socketmap:
                    service_->socketmap(payload,
                                        [reply](std::string p) { reply(netstring::encode(p)); });
                    break;
                case Protocol::TcpTable:
                    service_->tcp_table(request_key, *c->listener->profile, reply);
                    break;
                case Protocol::Exim:
                    // One request per connection: answer, then close.
                    service_->exim(payload, *c->listener->profile, [reply, weak](std::string line) {
                        reply(std::move(line));
                        if (auto conn = weak.lock(); conn && conn->bev) {
                            conn->closing = true;
                            on_write(conn->bev, conn.get());
                        }
                    });
                    break;
            }
        }
    } catch (const std::exception& e) {
        log::error("request failed, answering TEMP and closing the connection",
                   {{"error", e.what()}});
        if (c->bev) {
            send(c, c->listener->proto == Protocol::Socketmap
                        ? netstring::encode("TEMP internal error")
                    : c->listener->proto == Protocol::TcpTable
                        ? *tcp_table::reply(400, "internal error")
                        : std::string("level=tempfail reason=\"internal error\"\n"));
            c->closing = true;
            on_write(c->bev, c.get());
        }
    }
}

}  // namespace strictmx::policyd
