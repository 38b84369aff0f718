// SPDX-License-Identifier: MIT
// strictmx-echo: the upper bound for this machine. A socketmap server on the same design as
// strictmx-policyd (one libevent loop, bufferevents, netstring codec) that answers every
// request "NOTFOUND " without looking anything up.
#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/in.h>

#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "codecs/netstring.hh"

namespace {
void on_read(bufferevent* bev, void*) {
    evbuffer* in = bufferevent_get_input(bev);
    for (;;) {
        std::size_t avail = evbuffer_get_length(in);
        if (avail == 0) return;
        auto* data =
            reinterpret_cast<const char*>(evbuffer_pullup(in, static_cast<ev_ssize_t>(avail)));
        auto r = strictmx::netstring::parse(std::string_view(data, avail));
        if (r.status == strictmx::netstring::ParseResult::Status::NeedMore) return;
        if (r.status == strictmx::netstring::ParseResult::Status::Malformed) {
            bufferevent_free(bev);
            return;
        }
        evbuffer_drain(in, r.consumed);
        static const std::string reply = strictmx::netstring::encode("NOTFOUND ");
        bufferevent_write(bev, reply.data(), reply.size());
    }
}
void on_event(bufferevent* bev, short, void*) {
    bufferevent_free(bev);
}
void on_accept(evconnlistener* l, evutil_socket_t fd, sockaddr*, int, void*) {
    bufferevent* bev =
        bufferevent_socket_new(evconnlistener_get_base(l), fd, BEV_OPT_CLOSE_ON_FREE);
    bufferevent_setcb(bev, on_read, nullptr, on_event, nullptr);
    bufferevent_enable(bev, EV_READ | EV_WRITE);
}
}  // namespace

int main(int argc, char** argv) {
    std::string addr = argc > 1 ? argv[1] : "127.0.0.1:8470";
    std::signal(SIGPIPE, SIG_IGN);
    event_base* base = event_base_new();
    sockaddr_storage ss{};
    int len = sizeof ss;
    if (evutil_parse_sockaddr_port(addr.c_str(), reinterpret_cast<sockaddr*>(&ss), &len) != 0)
        return 2;
    evconnlistener* l =
        evconnlistener_new_bind(base, on_accept, nullptr, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                                128, reinterpret_cast<sockaddr*>(&ss), len);
    if (!l) {
        std::perror("listen");
        return 1;
    }
    std::printf("strictmx-echo listening on %s\n", addr.c_str());
    std::fflush(stdout);
    event_base_dispatch(base);
    evconnlistener_free(l);
    event_base_free(base);
    return 0;
}
