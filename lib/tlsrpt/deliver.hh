// SPDX-License-Identifier: MIT
// Report delivery (RFC 8460 section 5): mail through a sendmail-compatible command, HTTPS
// POST with libcurl. One attempt each; the spool and the retries are in reporter.cc.
#pragma once

#include <string>
#include <vector>

namespace strictmx::tlsrpt {

struct Attempt {
    bool delivered = false;
    std::string error;  // one line for the log when not delivered
};

// Run `command` (split on blanks, no shell) with `message` on standard input; exit 0 means
// accepted. Without "-t" among the arguments, "--" and `recipient` are appended. Killed after
// `timeout_s`.
Attempt send_mail(const std::string& command, const std::string& message,
                  const std::string& recipient, int timeout_s = 120);

struct HttpsOptions {
    std::string ca_file;                  // "" = the system bundle
    std::vector<std::string> connect_to;  // CURLOPT_CONNECT_TO entries
    std::string proxy;                    // "" = none, whatever the environment says
    int timeout_ms = 60'000;
    int connect_timeout_ms = 10'000;
};

// POST `body` as application/tlsrpt+gzip; only a 2xx answer counts as delivered. The peer's
// certificate and name are verified; redirects are not followed.
Attempt post_https(const std::string& url, const std::string& body, const HttpsOptions& o);

}  // namespace strictmx::tlsrpt
