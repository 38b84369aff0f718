// SPDX-License-Identifier: MIT
// strictmx-epoll: the upper bound for a socketmap server on this machine. One thread, one
// level-triggered epoll loop, no library: every request is answered "NOTFOUND " with three
// system calls (epoll_wait, read, write), which is what the socket round trip alone costs.
//
// Per connection a fixed input buffer of one maximal Postfix request (10,000 bytes of
// payload plus its netstring frame) and a small fixed output buffer: a read is parsed for
// every complete netstring it holds, all their replies go out in one write(), and a reply
// that does not fit waits (reading stops until the output drains). Malformed or oversized
// input, EOF and errors close the connection. Nothing is allocated per request.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr std::size_t kMaxPayload = 10'000;        // Postfix dict_sockmap.c request limit
constexpr std::size_t kInSize = kMaxPayload + 16;  // "10000:" + payload + "," fits
constexpr char kReply[] = "9:NOTFOUND ,";          // "NOTFOUND " with its trailing space: 9 bytes
constexpr std::size_t kReplyLen = sizeof kReply - 1;
static_assert(kReplyLen == 2 + sizeof "NOTFOUND " - 1 + 1, "the length prefix must match");
constexpr std::size_t kOutSize = 64 * kReplyLen;  // replies of one batch; more wait

struct Conn {
    int fd = -1;
    std::size_t in_len = 0;
    std::size_t out_off = 0, out_len = 0;
    char in[kInSize];
    char out[kOutSize];
};

int g_ep = -1;
int g_listener = -1;
bool g_accept_paused = false;  // out of descriptors: accept again when a connection closes

void set_interest(Conn* c, unsigned events) {
    epoll_event ev{};
    ev.events = events;
    ev.data.ptr = c;
    epoll_ctl(g_ep, EPOLL_CTL_MOD, c->fd, &ev);
}

void close_conn(Conn* c) {
    ::close(c->fd);  // also removes it from the epoll set
    delete c;
    if (g_accept_paused) {
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = nullptr;
        epoll_ctl(g_ep, EPOLL_CTL_ADD, g_listener, &ev);
        g_accept_paused = false;
    }
}

// Answers the complete netstrings at the front of c->in while their replies fit in c->out.
// Returns the number answered, or -1 for malformed input.
int parse_requests(Conn* c) {
    std::size_t pos = 0;
    int answered = 0;
    bool out_full = false;
    while (pos < c->in_len) {
        if (c->out_len + kReplyLen > kOutSize) {
            out_full = true;
            break;
        }
        std::size_t i = pos, len = 0;
        while (i < c->in_len && c->in[i] >= '0' && c->in[i] <= '9') {
            len = len * 10 + static_cast<std::size_t>(c->in[i] - '0');
            if (len > kMaxPayload) return -1;
            ++i;
        }
        if (i == c->in_len) break;  // the length is not complete yet
        if (i == pos || c->in[i] != ':') return -1;
        std::size_t end = i + 1 + len;  // where the ',' must be
        if (end >= c->in_len) break;
        if (c->in[end] != ',') return -1;
        std::memcpy(c->out + c->out_len, kReply, kReplyLen);
        c->out_len += kReplyLen;
        pos = end + 1;
        ++answered;
    }
    if (pos > 0) {
        std::memmove(c->in, c->in + pos, c->in_len - pos);
        c->in_len -= pos;
    }
    // A full buffer that does not hold one complete request: oversized input.
    if (!out_full && c->in_len == kInSize) return -1;
    return answered;
}

// Writes what is pending; false when the connection failed. Registers for writability only
// when the socket buffer is full (and stops reading until it drains).
bool flush(Conn* c) {
    if (c->out_off == c->out_len) return true;
    ssize_t n = ::write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
    if (n < 0) {
        if (errno != EAGAIN) return false;
        n = 0;
    }
    c->out_off += static_cast<std::size_t>(n);
    if (c->out_off < c->out_len) {
        set_interest(c, EPOLLOUT);
        return true;
    }
    c->out_off = c->out_len = 0;
    return true;
}

// Answers what the input buffer holds: one parse and one write for a client that does not
// pipeline, more rounds only for a batch larger than the output buffer.
void serve(Conn* c) {
    for (;;) {
        int answered = parse_requests(c);
        if (answered < 0 || !flush(c)) return close_conn(c);
        if (c->out_len != 0 || static_cast<std::size_t>(answered) * kReplyLen < kOutSize) return;
    }
}

void on_readable(Conn* c) {
    ssize_t n = ::read(c->fd, c->in + c->in_len, kInSize - c->in_len);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) return close_conn(c);
    if (n < 0) return;
    c->in_len += static_cast<std::size_t>(n);
    serve(c);
}

void on_writable(Conn* c) {
    if (!flush(c)) return close_conn(c);
    if (c->out_len != 0) return;  // still waiting
    set_interest(c, EPOLLIN);
    serve(c);  // requests that waited for room in the output buffer
}

void on_accept() {
    for (;;) {
        int fd = ::accept4(g_listener, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EMFILE || errno == ENFILE) {
                // Level-triggered: a listener left in the set would wake the loop forever.
                epoll_ctl(g_ep, EPOLL_CTL_DEL, g_listener, nullptr);
                g_accept_paused = true;
            }
            return;  // EAGAIN, or a connection that failed before it was accepted
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        Conn* c = new Conn;
        c->fd = fd;
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = c;
        epoll_ctl(g_ep, EPOLL_CTL_ADD, fd, &ev);
    }
}

int listen_on(const std::string& address) {
    if (!address.starts_with("inet:")) return -1;
    std::string hp = address.substr(5);
    std::size_t colon = hp.rfind(':');
    if (colon == std::string::npos) return -1;
    std::string host = hp.substr(0, colon);
    int port = std::atoi(hp.c_str() + colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    sockaddr_storage ss{};
    socklen_t len;
    auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
    if (inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons(static_cast<uint16_t>(port));
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons(static_cast<uint16_t>(port));
        len = sizeof *v6;
    } else {
        return -1;
    }
    int fd = ::socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 ||
        ::listen(fd, 1024) != 0) {
        std::perror(("strictmx-epoll: " + address).c_str());
        return -1;
    }
    return fd;
}

}  // namespace

int main(int argc, char** argv) {
    std::string address = "inet:127.0.0.1:8471";
    for (int i = 1; i < argc; ++i) {
        if (std::strcmp(argv[i], "--address") == 0 && i + 1 < argc) {
            address = argv[++i];
        } else {
            std::fputs("usage: strictmx-epoll [--address inet:HOST:PORT]\n", stderr);
            return 2;
        }
    }
    std::signal(SIGPIPE, SIG_IGN);
    g_listener = listen_on(address);
    if (g_listener < 0) return 1;
    g_ep = epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.ptr = nullptr;
    epoll_ctl(g_ep, EPOLL_CTL_ADD, g_listener, &ev);
    std::printf("strictmx-epoll listening on %s\n", address.c_str());
    std::fflush(stdout);
    epoll_event events[256];
    for (;;) {
        int n = epoll_wait(g_ep, events, 256, -1);
        for (int i = 0; i < n; ++i) {
            auto* c = static_cast<Conn*>(events[i].data.ptr);
            if (c == nullptr) {
                on_accept();
            } else if (events[i].events & EPOLLOUT) {
                on_writable(c);
            } else {
                on_readable(c);  // EPOLLIN, or EPOLLHUP/EPOLLERR: read() reports them
            }
        }
    }
}
