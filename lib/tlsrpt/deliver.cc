// SPDX-License-Identifier: MIT
#include "tlsrpt/deliver.hh"

#include <curl/curl.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "util/handles.hh"
#include "util/strings.hh"

extern char** environ;

namespace strictmx::tlsrpt {

Attempt send_mail(const std::string& command, const std::string& message,
                  const std::string& recipient, int timeout_s) {
    std::vector<std::string> args;
    for (auto a : split(command, ' '))
        if (!a.empty()) args.emplace_back(a);
    if (args.empty()) return {false, "tlsrpt.sendmail is empty"};
    bool has_t = false;
    for (const auto& a : args) has_t = has_t || a == "-t";
    if (!has_t) {
        args.emplace_back("--");
        args.push_back(recipient);
    }
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);

    int p[2];
    if (::pipe2(p, O_CLOEXEC) != 0) return {false, std::string("pipe: ") + std::strerror(errno)};
    Fd rd(p[0]), wr(p[1]);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, rd.get(), 0);
    pid_t pid = 0;
    int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    rd.reset();
    if (rc != 0) return {false, args[0] + ": " + std::strerror(rc)};

    // Write the message; a command that stops reading early is judged by its exit status.
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_s);
    std::size_t off = 0;
    ::signal(SIGPIPE, SIG_IGN);
    while (off < message.size()) {
        ssize_t n = ::write(wr.get(), message.data() + off, message.size() - off);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        off += static_cast<std::size_t>(n);
    }
    wr.reset();
    int status = 0;
    for (;;) {
        pid_t r = ::waitpid(pid, &status, WNOHANG);
        if (r == pid) break;
        if (r < 0 && errno != EINTR) return {false, std::string("waitpid: ") + std::strerror(errno)};
        if (std::chrono::steady_clock::now() > deadline) {
            ::kill(pid, SIGKILL);
            ::waitpid(pid, &status, 0);
            return {false, args[0] + " did not finish within " + std::to_string(timeout_s) + " s"};
        }
        ::poll(nullptr, 0, 20);
    }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0) return {true, {}};
    if (WIFEXITED(status))
        return {false, args[0] + " exited with status " + std::to_string(WEXITSTATUS(status))};
    return {false, args[0] + " was killed by signal " + std::to_string(WTERMSIG(status))};
}

namespace {
std::size_t discard(char*, std::size_t size, std::size_t n, void*) { return size * n; }
}  // namespace

Attempt post_https(const std::string& url, const std::string& body, const HttpsOptions& o) {
    if (!url.starts_with("https://") && !url.starts_with("HTTPS://"))
        return {false, "not an https: URI"};
    CurlPtr c(curl_easy_init());
    if (!c) return {false, "curl_easy_init failed"};
    CURL* h = c.get();
    CurlSlistPtr headers(curl_slist_append(nullptr, "Content-Type: application/tlsrpt+gzip"));
    CurlSlistPtr connect_to;
    for (const auto& e : o.connect_to) {
        curl_slist* n = curl_slist_append(connect_to.get(), e.c_str());
        if (n) {
            (void)connect_to.release();
            connect_to.reset(n);
        }
    }
    char errbuf[CURL_ERROR_SIZE] = {0};
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, static_cast<long>(o.timeout_ms));
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(o.connect_timeout_ms));
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, discard);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "strictmx-tlsrpt");
    curl_easy_setopt(h, CURLOPT_PROXY, o.proxy.c_str());
    if (!o.ca_file.empty()) {
        curl_easy_setopt(h, CURLOPT_CAINFO, o.ca_file.c_str());
        curl_easy_setopt(h, CURLOPT_CAPATH, nullptr);
    }
    if (connect_to) curl_easy_setopt(h, CURLOPT_CONNECT_TO, connect_to.get());
    CURLcode rc = curl_easy_perform(h);
    if (rc != CURLE_OK)
        return {false, std::string(errbuf[0] ? errbuf : curl_easy_strerror(rc))};
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) return {true, {}};
    return {false, "HTTP status " + std::to_string(status)};
}

}  // namespace strictmx::tlsrpt
