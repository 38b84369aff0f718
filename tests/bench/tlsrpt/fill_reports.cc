// SPDX-License-Identifier: MIT
// strictmx-tlsrpt-fill: puts one day of outcomes for N report domains into a TLSRPT store
// (two policies and one failure detail each), as the collector would have written them.
//
//   strictmx-tlsrpt-fill DB DAY N
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tlsrpt/store.hh"

using namespace strictmx::tlsrpt;

int main(int argc, char** argv) {
    if (argc != 4) {
        std::fprintf(stderr, "usage: %s DB YYYY-MM-DD N\n", argv[0]);
        return 2;
    }
    auto store = Store::open(argv[1]);
    std::string day = argv[2];
    long n = std::atol(argv[3]);
    Batch b;
    for (long i = 0; i < n; ++i) {
        std::string dom = "d" + std::to_string(i) + ".bench.example";
        Session s;
        s.domain = dom;
        s.record = "v=TLSRPTv1; rua=mailto:tlsrpt@" + dom;
        PolicyOutcome sts;
        sts.type = PolicyType::Sts;
        sts.domain = dom;
        sts.strings = {"version: STSv1", "mode: enforce", "mx: mx." + dom, "max_age: 86400"};
        sts.mx_hosts = {"mx." + dom};
        PolicyOutcome fail = sts;
        fail.failed = true;
        FailureDetail d;
        d.code = 202;
        d.sending_ip = "192.0.2.1";
        d.mx_hostname = "mx." + dom;
        d.present = 3;
        fail.failures.push_back(d);
        s.policies = {sts};
        for (int k = 0; k < 9; ++k) b.add(day, s);
        s.policies = {fail};
        b.add(day, s);
        if (b.rows > 100'000) {
            std::string err;
            if (!store->apply(b, err)) {
                std::fprintf(stderr, "%s\n", err.c_str());
                return 1;
            }
            b = Batch{};
        }
    }
    std::string err;
    if (!store->apply(b, err)) {
        std::fprintf(stderr, "%s\n", err.c_str());
        return 1;
    }
    std::printf("filled %ld report domains for %s\n", n, day.c_str());
    return 0;
}
