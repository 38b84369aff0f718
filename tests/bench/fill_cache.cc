// SPDX-License-Identifier: MIT
// strictmx-bench-fill: writes N cached domains (MTA-STS enforce, no DANE, valid for a year)
// into a strictmx cache database, named like the load generator's --pattern.
#include <cstdio>
#include <ctime>
#include <string>

#include "store/store.hh"

int main(int argc, char** argv) {
    if (argc < 3) {
        std::fprintf(stderr,
                     "usage: strictmx-bench-fill DB N [PATTERN (default d%%d.bench.test)]\n");
        return 2;
    }
    std::string path = argv[1];
    long n = std::stol(argv[2]);
    std::string pattern = argc > 3 ? argv[3] : "d%d.bench.test";
    auto now = static_cast<strictmx::UnixTime>(std::time(nullptr));
    auto store = strictmx::store::Store::open(path, now);
    if (!store || !store->persistent()) return 1;
    char name[512];
    for (long i = 0; i < n; ++i) {
        std::snprintf(name, sizeof name, pattern.c_str(), static_cast<int>(i));
        strictmx::store::StsRow r;
        r.domain = name;
        r.has_policy = true;
        r.txt_id = "bench1";
        r.policy = "version: STSv1\nmode: enforce\nmx: mx1." + r.domain + "\nmx: *.pool." +
                   r.domain + "\nmax_age: 31557600\n";
        r.fetched_at = now;
        r.expires_at = now + 31'557'600;
        r.next_refresh = now + 31'557'600;
        r.mx_hosts = "mx1." + r.domain + " a.pool." + r.domain;
        r.mx_expires = now + 31'557'600;
        r.dane_kind = 0;
        r.dane_expires = now + 31'557'600;
        r.dane_refresh = now + 31'557'600;
        r.dane_why = "MX RRset is not DNSSEC-signed: DANE does not apply";
        r.last_used = now;
        store->put(std::move(r));
        // The writer's queue is bounded: let it drain every 100,000 rows.
        if (i % 100000 == 99999) {
            store->flush();
            std::fprintf(stderr, "%ld\n", i + 1);
        }
    }
    if (!store->flush()) return 1;
    std::printf("%ld domains written to %s\n", n, path.c_str());
    return 0;
}
