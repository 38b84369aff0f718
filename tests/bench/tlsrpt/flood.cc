// SPDX-License-Identifier: MIT
// strictmx-tlsrpt-flood: sends libtlsrpt datagrams to a collector socket as fast as one
// thread can, the way libtlsrpt does (sendto with MSG_DONTWAIT: a full socket queue loses
// the datagram at the sender). Prints what was sent, what the queue refused, and the rate.
//
//   strictmx-tlsrpt-flood SOCKET COUNT [DOMAINS] [--blocking | --rate N]
//
// --rate N paces the sender at N datagrams a second (in 1 ms steps): the highest rate with
// refused=0 is what the collector absorbs without loss.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr, "usage: %s SOCKET COUNT [DOMAINS] [--blocking | --rate N]\n", argv[0]);
        return 2;
    }
    const char* path = argv[1];
    long count = std::atol(argv[2]);
    long domains = argc > 3 ? std::atol(argv[3]) : 100;
    bool blocking = argc > 4 && std::string(argv[4]) == "--blocking";
    double rate = argc > 5 && std::string(argv[4]) == "--rate" ? std::atof(argv[5]) : 0;
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strncpy(sun.sun_path, path, sizeof sun.sun_path - 1);
    int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    // A realistic mix: four in five sessions succeed under an STS policy, one in ten fails
    // certificate checks, the rest have no policy.
    std::vector<std::string> dgrams;
    for (long d = 0; d < domains; ++d) {
        std::string dom = "d" + std::to_string(d) + ".bench.example";
        std::string head = "{\"dpv\": \"1\",\"d\": \"" + dom +
                           "\",\"pr\": \"v=TLSRPTv1; rua=mailto:tlsrpt@" + dom + "\"";
        dgrams.push_back(head +
                         ",\"policies\":[{\"policy-type\":2,\"policy-domain\": \"" + dom +
                         "\",\"policy-string\":[\"version: STSv1\",\"mode: enforce\",\"mx: mx." +
                         dom + "\",\"max_age: 86400\"],\"mx-host\":[\"mx." + dom +
                         "\"],\"t\":0,\"f\":0}]}");
        dgrams.push_back(head +
                         ",\"policies\":[{\"policy-type\":2,\"policy-domain\": \"" + dom +
                         "\",\"policy-string\":[\"version: STSv1\",\"mode: enforce\",\"mx: mx." +
                         dom + "\",\"max_age: 86400\"],\"mx-host\":[\"mx." + dom +
                         "\"],\"failure-details\":[{\"c\":202,\"s\": \"192.0.2.1\",\"n\": \"mx." +
                         dom + "\",\"r\": \"198.51.100.7\"}],\"t\":1,\"f\":1}]}");
        dgrams.push_back(head + ",\"policies\":[{\"policy-type\":9,\"policy-domain\": \"" + dom +
                         "\",\"t\":0,\"f\":0}]}");
    }
    static const int kMix[10] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 2};
    long sent = 0, refused = 0;
    auto t0 = std::chrono::steady_clock::now();
    for (long i = 0; i < count; ++i) {
        if (rate > 0 && i % 8 == 0) {
            // Stay on the schedule: datagram i is due at t0 + i / rate.
            auto due = t0 + std::chrono::duration_cast<std::chrono::steady_clock::duration>(
                                std::chrono::duration<double>(static_cast<double>(i) / rate));
            // Sleep while ahead (a real MTA's senders are idle between sessions), so the
            // pacing does not take a core from the collector.
            std::this_thread::sleep_until(due);
        }
        const std::string& g = dgrams[static_cast<std::size_t>((i / 10) % domains) * 3 +
                                      static_cast<std::size_t>(kMix[i % 10])];
        ssize_t n = ::sendto(fd, g.data(), g.size(), blocking ? 0 : MSG_DONTWAIT,
                             reinterpret_cast<sockaddr*>(&sun), sizeof sun);
        if (n < 0) {
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                ++refused;
                continue;
            }
            std::perror("sendto");
            return 1;
        }
        ++sent;
    }
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("sent=%ld refused=%ld seconds=%.3f rate=%.0f/s\n", sent, refused, s,
                static_cast<double>(sent + refused) / s);
    return 0;
}
