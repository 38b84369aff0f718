// SPDX-License-Identifier: MIT
// The HTTPS seam: fetch https://mta-sts.DOMAIN/.well-known/mta-sts.txt (RFC 8461 3.3).
#pragma once

#include <functional>
#include <string>

namespace strictmx::sts {

struct FetchResult {
    // Failure classes are the RFC 8460 result types a failed fetch reports.
    enum class Status { Ok, FetchError, WebPkiInvalid } status = Status::FetchError;
    std::string body;  // Ok only
    std::string why;   // for logs and `strictmx query`
    long http_status = 0;
};

class Fetcher {
  public:
    using Callback = std::function<void(FetchResult)>;
    virtual ~Fetcher() = default;
    // The callback runs later on the owner's event loop, never from inside fetch().
    virtual void fetch(const std::string& domain, Callback cb) = 0;
};

std::string policy_url(const std::string& domain);

}  // namespace strictmx::sts
