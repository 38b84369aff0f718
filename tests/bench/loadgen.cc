// SPDX-License-Identifier: MIT
// strictmx-loadgen: drives a policy server the way Postfix smtp(8) processes do: N
// connections, one request at a time on each, keys from a configurable mix. Reports lookups
// per second, latency percentiles, its own CPU time and (with --pid) the server's peak RSS.
// Uses one core; one epoll loop drives any number of connections (256 checked).
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "codecs/netstring.hh"

namespace {

struct Options {
    std::string address = "inet:127.0.0.1:8461";
    std::string proto = "socketmap";
    std::string name = "postfix";
    int connections = 32;
    double duration = 10;
    int domains = 1000;
    std::string pattern = "d%d.bench.test";
    std::string keys_file;
    bool parent_probe = false;
    long pid = 0;
    long max_requests = 0;  // 0: until duration
};

int connect_to(const std::string& address) {
    if (address.starts_with("unix:")) {
        sockaddr_un sun{};
        sun.sun_family = AF_UNIX;
        std::string path = address.substr(5);
        std::strncpy(sun.sun_path, path.c_str(), sizeof sun.sun_path - 1);
        int fd = ::socket(AF_UNIX, SOCK_STREAM, 0);
        if (fd < 0 || ::connect(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) return -1;
        return fd;
    }
    std::string hp = address.starts_with("inet:") ? address.substr(5) : address;
    std::size_t colon = hp.rfind(':');
    std::string host = hp.substr(0, colon), port = hp.substr(colon + 1);
    addrinfo hints{};
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    if (getaddrinfo(host.c_str(), port.c_str(), &hints, &res) != 0) return -1;
    int fd = ::socket(res->ai_family, SOCK_STREAM, 0);
    int ok = fd >= 0 ? ::connect(fd, res->ai_addr, res->ai_addrlen) : -1;
    freeaddrinfo(res);
    if (ok != 0) return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    return fd;
}

long peak_rss_kb(long pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
    }
    return -1;
}

void usage() {
    std::fputs(
        "usage: strictmx-loadgen [--address inet:HOST:PORT|unix:PATH] [--proto "
        "socketmap|tcp_table]\n"
        "       [--name MAPNAME] [--connections N] [--duration SECONDS] [--requests N]\n"
        "       [--domains N] [--pattern FMT] [--keys FILE] [--parent-probe] [--pid SERVERPID]\n",
        stderr);
}

}  // namespace

int main(int argc, char** argv) {
    Options o;
    for (int i = 1; i < argc; ++i) {
        std::string a = argv[i];
        auto next = [&]() -> std::string {
            if (i + 1 >= argc) {
                usage();
                std::exit(2);
            }
            return argv[++i];
        };
        if (a == "--address")
            o.address = next();
        else if (a == "--proto")
            o.proto = next();
        else if (a == "--name")
            o.name = next();
        else if (a == "--connections")
            o.connections = std::stoi(next());
        else if (a == "--duration")
            o.duration = std::stod(next());
        else if (a == "--requests")
            o.max_requests = std::stol(next());
        else if (a == "--domains")
            o.domains = std::stoi(next());
        else if (a == "--pattern")
            o.pattern = next();
        else if (a == "--keys")
            o.keys_file = next();
        else if (a == "--parent-probe")
            o.parent_probe = true;
        else if (a == "--pid")
            o.pid = std::stol(next());
        else {
            usage();
            return 2;
        }
    }
    std::vector<std::string> keys;
    if (!o.keys_file.empty()) {
        std::ifstream in(o.keys_file);
        for (std::string k; std::getline(in, k);)
            if (!k.empty()) keys.push_back(k);
    } else {
        char buf[512];
        for (int i = 0; i < o.domains; ++i) {
            std::snprintf(buf, sizeof buf, o.pattern.c_str(), i);
            keys.push_back(buf);
        }
    }
    if (keys.empty()) return 2;
    bool socketmap = o.proto == "socketmap";
    std::vector<std::string> requests;
    requests.reserve(keys.size());
    for (const auto& k : keys) {
        std::string key = o.parent_probe ? "." + k : k;
        requests.push_back(socketmap ? strictmx::netstring::encode(o.name + " " + key)
                                     : "get " + key + "\n");
    }

    // One epoll loop drives every connection (a closed loop: each connection sends its next
    // request when the previous reply is in), so the generator needs one core, not one
    // thread per connection.
    struct Conn {
        int fd = -1;
        std::string in;
        std::string out;
        std::size_t out_off = 0;
        std::size_t key = 0;
        std::chrono::steady_clock::time_point sent;
    };
    std::vector<Conn> conns(static_cast<std::size_t>(o.connections));
    int ep = epoll_create1(0);
    long errs = 0, oks = 0, issued = 0;
    std::vector<double> all;
    all.reserve(1 << 22);
    std::chrono::steady_clock::time_point t0, deadline;
    auto send_next = [&](Conn& c) -> bool {
        if (o.max_requests && issued >= o.max_requests) return false;
        auto now = std::chrono::steady_clock::now();
        if (!o.max_requests && now >= deadline) return false;
        ++issued;
        c.out = requests[c.key];
        c.out_off = 0;
        c.sent = now;
        ssize_t n = ::write(c.fd, c.out.data(), c.out.size());
        if (n > 0) c.out_off = static_cast<std::size_t>(n);
        // epoll_ctl only for a short write: the client's own cost per request stays at
        // epoll_wait, read and write, as small as the cheapest server's.
        if (c.out_off < c.out.size()) {
            epoll_event ev{};
            ev.events = EPOLLIN | EPOLLOUT;
            ev.data.ptr = &c;
            epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
        }
        return true;
    };
    // Every connection is open before the clock starts, so the measurement is the steady
    // state only, whatever the server's accept path and listen queue do with a burst.
    auto tc = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < conns.size(); ++i) {
        Conn& c = conns[i];
        c.fd = connect_to(o.address);
        if (c.fd < 0) {
            ++errs;
            continue;
        }
        fcntl(c.fd, F_SETFL, fcntl(c.fd, F_GETFL) | O_NONBLOCK);
        c.key = i * 7919 % requests.size();
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.ptr = &c;
        epoll_ctl(ep, EPOLL_CTL_ADD, c.fd, &ev);
    }
    rusage ru0{};
    getrusage(RUSAGE_SELF, &ru0);
    t0 = std::chrono::steady_clock::now();
    double connect_ms = std::chrono::duration<double, std::milli>(t0 - tc).count();
    deadline = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                        std::chrono::duration<double>(o.duration));
    int active = 0;
    for (Conn& c : conns) {
        if (c.fd >= 0 && send_next(c)) ++active;
    }
    epoll_event events[256];
    char tmp[16384];
    while (active > 0) {
        int n = epoll_wait(ep, events, 256, 1000);
        for (int i = 0; i < n; ++i) {
            Conn& c = *static_cast<Conn*>(events[i].data.ptr);
            if (events[i].events & EPOLLOUT && c.out_off < c.out.size()) {
                ssize_t w = ::write(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off);
                if (w > 0) c.out_off += static_cast<std::size_t>(w);
                if (c.out_off == c.out.size()) {
                    epoll_event ev{};
                    ev.events = EPOLLIN;
                    ev.data.ptr = &c;
                    epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
                }
            }
            if (!(events[i].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) continue;
            ssize_t r = ::read(c.fd, tmp, sizeof tmp);
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN) continue;
                ++errs;
                ::close(c.fd);
                --active;
                continue;
            }
            c.in.append(tmp, static_cast<std::size_t>(r));
            bool got = false, ok = false;
            if (socketmap) {
                auto p = strictmx::netstring::parse(c.in, strictmx::netstring::kMaxReply);
                if (p.status == strictmx::netstring::ParseResult::Status::Complete) {
                    ok = p.payload.starts_with("OK");
                    c.in.erase(0, p.consumed);
                    got = true;
                } else if (p.status == strictmx::netstring::ParseResult::Status::Malformed) {
                    ++errs;
                    ::close(c.fd);
                    --active;
                    continue;
                }
            } else if (std::size_t nl = c.in.find('\n'); nl != std::string::npos) {
                ok = c.in.starts_with("200");
                c.in.erase(0, nl + 1);
                got = true;
            }
            if (!got) continue;
            all.push_back(
                std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - c.sent)
                    .count());
            if (ok) ++oks;
            c.key = (c.key + 1) % requests.size();
            if (!send_next(c)) {
                ::close(c.fd);
                --active;
            }
        }
    }
    ::close(ep);
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    rusage ru1{};
    getrusage(RUSAGE_SELF, &ru1);
    auto cpu_s = [](const rusage& r) {
        return static_cast<double>(r.ru_utime.tv_sec + r.ru_stime.tv_sec) +
               static_cast<double>(r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
    };
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) {
        if (all.empty()) return 0.0;
        return all[std::min(all.size() - 1,
                            static_cast<std::size_t>(p * static_cast<double>(all.size())))];
    };
    std::printf(
        "lookups=%zu seconds=%.2f lookups_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
        "ok_replies=%ld errors=%ld"
        " connections=%d keys=%zu connect_ms=%.1f client_cpu_s=%.2f",
        all.size(), secs, static_cast<double>(all.size()) / secs, pct(0.5), pct(0.99), pct(0.999),
        oks, errs, o.connections, keys.size(), connect_ms, cpu_s(ru1) - cpu_s(ru0));
    if (o.pid) std::printf(" server_peak_rss_kb=%ld", peak_rss_kb(o.pid));
    std::printf("\n");
    return errs > 0 && all.empty() ? 1 : 0;
}
