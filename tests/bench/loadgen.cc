// SPDX-License-Identifier: MIT
// strictmx-loadgen: drives a policy server the way Postfix smtp(8) processes do: N
// connections, one request at a time on each, keys from a configurable mix. Reports lookups
// per second, latency percentiles and (with --pid) the server's peak RSS.
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
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

bool write_all(int fd, const std::string& s) {
    std::size_t off = 0;
    while (off < s.size()) {
        ssize_t n = ::write(fd, s.data() + off, s.size() - off);
        if (n <= 0) return false;
        off += static_cast<std::size_t>(n);
    }
    return true;
}

// Reads one reply; returns false on EOF or error.
bool read_reply(int fd, std::string& buf, bool socketmap, std::string& reply) {
    char tmp[8192];
    for (;;) {
        if (socketmap) {
            auto r = strictmx::netstring::parse(buf, strictmx::netstring::kMaxReply);
            if (r.status == strictmx::netstring::ParseResult::Status::Complete) {
                reply.assign(r.payload);
                buf.erase(0, r.consumed);
                return true;
            }
            if (r.status == strictmx::netstring::ParseResult::Status::Malformed) return false;
        } else {
            std::size_t nl = buf.find('\n');
            if (nl != std::string::npos) {
                reply = buf.substr(0, nl);
                buf.erase(0, nl + 1);
                return true;
            }
        }
        ssize_t n = ::read(fd, tmp, sizeof tmp);
        if (n <= 0) return false;
        buf.append(tmp, static_cast<std::size_t>(n));
    }
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

    std::atomic<bool> stop{false};
    std::atomic<long> issued{0};
    std::vector<std::vector<double>> lat(static_cast<std::size_t>(o.connections));
    std::vector<long> errors(static_cast<std::size_t>(o.connections), 0);
    std::vector<long> ok_replies(static_cast<std::size_t>(o.connections), 0);
    auto t0 = std::chrono::steady_clock::now();
    std::vector<std::thread> threads;
    for (int c = 0; c < o.connections; ++c) {
        threads.emplace_back([&, c] {
            auto ci = static_cast<std::size_t>(c);
            lat[ci].reserve(1 << 20);
            int fd = connect_to(o.address);
            if (fd < 0) {
                ++errors[ci];
                return;
            }
            std::string buf, reply;
            std::size_t k = static_cast<std::size_t>(c) * 7919 % requests.size();
            while (!stop.load(std::memory_order_relaxed)) {
                if (o.max_requests && issued.fetch_add(1) >= o.max_requests) break;
                auto s = std::chrono::steady_clock::now();
                if (!write_all(fd, requests[k]) || !read_reply(fd, buf, socketmap, reply)) {
                    ++errors[ci];
                    ::close(fd);
                    fd = connect_to(o.address);  // Postfix reconnects too
                    if (fd < 0) return;
                    buf.clear();
                    continue;
                }
                auto e = std::chrono::steady_clock::now();
                lat[ci].push_back(std::chrono::duration<double, std::micro>(e - s).count());
                if (reply.rfind("OK", 0) == 0 || reply.rfind("200", 0) == 0) ++ok_replies[ci];
                k = (k + 1) % requests.size();
            }
            ::close(fd);
        });
    }
    if (!o.max_requests) {
        std::this_thread::sleep_for(std::chrono::duration<double>(o.duration));
        stop = true;
    }
    for (auto& t : threads) t.join();
    double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::vector<double> all;
    long errs = 0, oks = 0;
    for (std::size_t i = 0; i < lat.size(); ++i) {
        all.insert(all.end(), lat[i].begin(), lat[i].end());
        errs += errors[i];
        oks += ok_replies[i];
    }
    std::sort(all.begin(), all.end());
    auto pct = [&](double p) {
        if (all.empty()) return 0.0;
        return all[std::min(all.size() - 1,
                            static_cast<std::size_t>(p * static_cast<double>(all.size())))];
    };
    std::printf(
        "lookups=%zu seconds=%.2f lookups_per_s=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
        "ok_replies=%ld errors=%ld"
        " connections=%d keys=%zu",
        all.size(), secs, static_cast<double>(all.size()) / secs, pct(0.5), pct(0.99), pct(0.999),
        oks, errs, o.connections, keys.size());
    if (o.pid) std::printf(" server_peak_rss_kb=%ld", peak_rss_kb(o.pid));
    std::printf("\n");
    return errs > 0 && all.empty() ? 1 : 0;
}
