// SPDX-License-Identifier: MIT
// strictmx-tlsrpt-sink: the cheapest possible collector, for comparison: a blocking recv
// loop on a unix datagram socket that only counts. Prints the count on SIGTERM/SIGINT.
//
//   strictmx-tlsrpt-sink SOCKET
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>

static volatile sig_atomic_t stop = 0;
static void on_sig(int) { stop = 1; }

int main(int argc, char** argv) {
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
        return 2;
    }
    sockaddr_un sun{};
    sun.sun_family = AF_UNIX;
    std::strncpy(sun.sun_path, argv[1], sizeof sun.sun_path - 1);
    ::unlink(argv[1]);
    int fd = ::socket(AF_UNIX, SOCK_DGRAM, 0);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&sun), sizeof sun) != 0) {
        std::perror("bind");
        return 1;
    }
    struct sigaction sa {};
    sa.sa_handler = on_sig;
    ::sigaction(SIGTERM, &sa, nullptr);
    ::sigaction(SIGINT, &sa, nullptr);
    static char buf[65536];
    unsigned long n = 0;
    while (!stop)
        if (::recv(fd, buf, sizeof buf, 0) >= 0) ++n;
    std::printf("received=%lu\n", n);
    ::unlink(argv[1]);
    return 0;
}
