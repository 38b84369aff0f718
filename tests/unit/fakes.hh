// SPDX-License-Identifier: MIT
// Unit-test seams: a scripted resolver and fetcher that answer when told to.
#pragma once

#include <deque>
#include <map>
#include <string>
#include <utility>

#include "dns/resolver.hh"
#include "sts/fetcher.hh"

namespace strictmx::test {

inline std::string wire_name(const std::string& name) {
    std::string out;
    std::size_t start = 0;
    while (start <= name.size()) {
        std::size_t dot = name.find('.', start);
        if (dot == std::string::npos) dot = name.size();
        out += static_cast<char>(dot - start);
        out += name.substr(start, dot - start);
        start = dot + 1;
    }
    out += '\0';
    return out;
}

inline std::string mx_rdata(int pref, const std::string& host) {
    std::string r;
    r += static_cast<char>(pref >> 8);
    r += static_cast<char>(pref & 0xff);
    return r + (host.empty() ? std::string(1, '\0') : wire_name(host));
}

inline std::string txt_rdata(const std::string& s) {
    return std::string(1, static_cast<char>(s.size())) + s;
}

inline dns::Answer ok(std::vector<std::string> rdata, dns::Security sec = dns::Security::Secure,
                      std::uint32_t ttl = 300) {
    dns::Answer a;
    a.status = dns::Answer::Status::Ok;
    a.security = sec;
    a.ttl = ttl;
    a.rdata = std::move(rdata);
    return a;
}
inline dns::Answer nodata(dns::Security sec = dns::Security::Secure) {
    dns::Answer a;
    a.status = dns::Answer::Status::NoData;
    a.security = sec;
    a.ttl = 300;
    return a;
}
inline dns::Answer nxdomain(dns::Security sec = dns::Security::Secure) {
    dns::Answer a = nodata(sec);
    a.status = dns::Answer::Status::NxDomain;
    return a;
}
inline dns::Answer fail(std::string why = "SERVFAIL") {
    dns::Answer a;
    a.status = dns::Answer::Status::Fail;
    a.why = std::move(why);
    return a;
}
inline dns::Answer bogus() {
    dns::Answer a = fail("signature expired");
    a.security = dns::Security::Bogus;
    return a;
}

// Answers from a table; queries wait in a queue until run() (so callbacks never run inside
// resolve(), like the real resolver).
class FakeResolver final : public dns::Resolver {
  public:
    std::map<std::pair<std::string, std::uint16_t>, dns::Answer> table;
    std::deque<std::pair<std::pair<std::string, std::uint16_t>, Callback>> queue;
    int queries = 0;
    void resolve(const std::string& name, std::uint16_t type, Callback cb) override {
        ++queries;
        queue.emplace_back(std::make_pair(name, type), std::move(cb));
    }
    void set(const std::string& name, std::uint16_t type, dns::Answer a) {
        table[{name, type}] = std::move(a);
    }
    bool step() {
        if (queue.empty()) return false;
        auto [key, cb] = std::move(queue.front());
        queue.pop_front();
        auto it = table.find(key);
        cb(it != table.end() ? it->second : nxdomain());
        return true;
    }
};

class FakeFetcher final : public sts::Fetcher {
  public:
    std::map<std::string, sts::FetchResult> table;
    std::deque<std::pair<std::string, Callback>> queue;
    int fetches = 0;
    void fetch(const std::string& domain, Callback cb) override {
        ++fetches;
        queue.emplace_back(domain, std::move(cb));
    }
    void set_body(const std::string& domain, std::string body) {
        sts::FetchResult r;
        r.status = sts::FetchResult::Status::Ok;
        r.body = std::move(body);
        r.http_status = 200;
        table[domain] = std::move(r);
    }
    void set_error(const std::string& domain, std::string why) {
        sts::FetchResult r;
        r.why = std::move(why);
        table[domain] = std::move(r);
    }
    bool step() {
        if (queue.empty()) return false;
        auto [domain, cb] = std::move(queue.front());
        queue.pop_front();
        auto it = table.find(domain);
        sts::FetchResult r;
        if (it != table.end())
            r = it->second;
        else
            r.why = "connection refused";
        cb(r);
        return true;
    }
};

// Run both fakes until nothing is pending.
inline void run(FakeResolver& r, FakeFetcher& f) {
    while (r.step() || f.step()) {
    }
}

}  // namespace strictmx::test
