// SPDX-License-Identifier: MIT
// Blocking socketmap client with a deadline (socketmap_table(5)).
#include "milter/policy_client.hh"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

#include "codecs/netstring.hh"

namespace strictmx::milter {

namespace {
using Clock = std::chrono::steady_clock;

int remaining_ms(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    return left.count() <= 0 ? 0 : static_cast<int>(left.count());
}

bool wait_for(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        pollfd p{fd, events, 0};
        int ms = remaining_ms(deadline);
        if (ms == 0) return false;
        int n = ::poll(&p, 1, ms);
        if (n > 0) return true;
        if (n == 0) return false;
        if (errno != EINTR) return false;
    }
}

struct Target {
    sockaddr_storage addr{};
    socklen_t len = 0;
};

bool parse_target(const std::string& a, Target& t) {
    if (a.starts_with("unix:")) {
        std::string path = a.substr(5);
        auto* sun = reinterpret_cast<sockaddr_un*>(&t.addr);
        if (path.empty() || path.size() >= sizeof sun->sun_path) return false;
        sun->sun_family = AF_UNIX;
        std::memcpy(sun->sun_path, path.data(), path.size());
        t.len = sizeof(sockaddr_un);
        return true;
    }
    if (!a.starts_with("inet:")) return false;
    std::string hp = a.substr(5);
    std::size_t colon = hp.rfind(':');
    if (colon == std::string::npos) return false;
    std::string host = hp.substr(0, colon), port = hp.substr(colon + 1);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']')
        host = host.substr(1, host.size() - 2);
    if (port.empty() || port.size() > 5 || port.find_first_not_of("0123456789") != std::string::npos)
        return false;
    int pn = std::stoi(port);
    if (pn <= 0 || pn > 65535) return false;
    auto* in4 = reinterpret_cast<sockaddr_in*>(&t.addr);
    if (::inet_pton(AF_INET, host.c_str(), &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons(static_cast<std::uint16_t>(pn));
        t.len = sizeof(sockaddr_in);
        return true;
    }
    auto* in6 = reinterpret_cast<sockaddr_in6*>(&t.addr);
    if (::inet_pton(AF_INET6, host.c_str(), &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(static_cast<std::uint16_t>(pn));
        t.len = sizeof(sockaddr_in6);
        return true;
    }
    return false;
}
}  // namespace

PolicyClient::PolicyClient(std::string address, int timeout_ms, std::size_t max_idle)
    : address_(std::move(address)), timeout_ms_(timeout_ms), max_idle_(max_idle) {
    Target t;
    if (!parse_target(address_, t))
        throw std::invalid_argument("not inet:IP:PORT or unix:PATH: " + address_);
}

PolicyClient::~PolicyClient() {
    for (const auto& i : idle_) ::close(i.fd);
}

PolicyClient::Stats PolicyClient::stats() const {
    std::lock_guard lock(mu_);
    return stats_;
}

int PolicyClient::connect_fd(Clock::time_point deadline, std::string& why) const {
    Target t;
    parse_target(address_, t);
    int fd = ::socket(t.addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        why = std::string("socket: ") + std::strerror(errno);
        return -1;
    }
    if (t.addr.ss_family != AF_UNIX) {
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    if (::connect(fd, reinterpret_cast<sockaddr*>(&t.addr), t.len) != 0) {
        if (errno != EINPROGRESS && errno != EAGAIN) {
            why = "connect to " + address_ + ": " + std::strerror(errno);
            ::close(fd);
            return -1;
        }
        if (!wait_for(fd, POLLOUT, deadline)) {
            why = "connect to " + address_ + ": timed out";
            ::close(fd);
            return -1;
        }
        int err = 0;
        socklen_t len = sizeof err;
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err != 0) {
            why = "connect to " + address_ + ": " + std::strerror(err);
            ::close(fd);
            return -1;
        }
    }
    return fd;
}

PolicyClient::Result PolicyClient::exchange(int fd, const std::string& request,
                                            Clock::time_point deadline, bool& reusable) const {
    reusable = false;
    std::size_t sent = 0;
    while (sent < request.size()) {
        ssize_t n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
        if (n > 0) {
            sent += static_cast<std::size_t>(n);
            continue;
        }
        if (n < 0 && errno == EINTR) continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            if (!wait_for(fd, POLLOUT, deadline)) return {std::nullopt, "timed out sending"};
            continue;
        }
        return {std::nullopt, std::string("send: ") + std::strerror(errno)};
    }
    std::string buf;
    char chunk[4096];
    for (;;) {
        auto r = netstring::parse(buf, netstring::kMaxReply);
        if (r.status == netstring::ParseResult::Status::Complete) {
            reusable = r.consumed == buf.size();
            return {std::string(r.payload), {}};
        }
        if (r.status == netstring::ParseResult::Status::Malformed)
            return {std::nullopt, std::string("malformed reply: ") + r.reason};
        ssize_t n = ::recv(fd, chunk, sizeof chunk, 0);
        if (n > 0) {
            buf.append(chunk, static_cast<std::size_t>(n));
            continue;
        }
        if (n == 0) return {std::nullopt, "the policy daemon closed the connection"};
        if (errno == EINTR) continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            if (!wait_for(fd, POLLIN, deadline))
                return {std::nullopt, "no answer within " + std::to_string(timeout_ms_) + " ms"};
            continue;
        }
        return {std::nullopt, std::string("recv: ") + std::strerror(errno)};
    }
}

PolicyClient::Result PolicyClient::lookup(std::string_view map, std::string_view key) {
    auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms_);
    std::string payload;
    payload.reserve(map.size() + 1 + key.size());
    payload.append(map).append(" ").append(key);
    if (payload.size() > netstring::kMaxRequest) {
        std::lock_guard lock(mu_);
        ++stats_.lookups;
        ++stats_.failures;
        return {std::nullopt, "key longer than a socketmap request may be"};
    }
    const std::string request = netstring::encode(payload);
    // A pooled connection may have been closed by the daemon (idle or lifetime limit): then
    // one fresh connection is tried before the lookup fails.
    for (int attempt = 0; attempt < 2; ++attempt) {
        int fd = -1;
        bool pooled = false;
        std::vector<int> stale;
        {
            std::lock_guard lock(mu_);
            if (attempt == 0) ++stats_.lookups;
            auto now = Clock::now();
            // The retry always connects afresh: every other pooled connection may be as old.
            while (attempt == 0 && !idle_.empty()) {
                Idle i = idle_.back();
                idle_.pop_back();
                if (now - i.since > kMaxIdle) {
                    stale.push_back(i.fd);
                    continue;
                }
                fd = i.fd;
                pooled = true;
                break;
            }
            // The oldest are at the front: anything there past kMaxIdle goes too.
            while (!idle_.empty() && now - idle_.front().since > kMaxIdle) {
                stale.push_back(idle_.front().fd);
                idle_.erase(idle_.begin());
            }
        }
        for (int s_fd : stale) ::close(s_fd);
        std::string why;
        if (fd < 0) {
            fd = connect_fd(deadline, why);
            std::lock_guard lock(mu_);
            if (fd >= 0) ++stats_.connects;
        }
        if (fd < 0) {
            std::lock_guard lock(mu_);
            ++stats_.failures;
            return {std::nullopt, why};
        }
        bool reusable = false;
        Result r = exchange(fd, request, deadline, reusable);
        if (r.payload) {
            std::lock_guard lock(mu_);
            if (reusable && idle_.size() < max_idle_) {
                idle_.push_back({fd, Clock::now()});
                fd = -1;
            }
        }
        if (fd >= 0) ::close(fd);
        if (r.payload) return r;
        if (!pooled || remaining_ms(deadline) == 0) {
            std::lock_guard lock(mu_);
            ++stats_.failures;
            return r;
        }
    }
    std::lock_guard lock(mu_);
    ++stats_.failures;
    return {std::nullopt, "no connection to the policy daemon"};
}

}  // namespace strictmx::milter
