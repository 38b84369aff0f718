// SPDX-License-Identifier: MIT
// MTA-STS policy fetch over HTTPS (RFC 8461 section 3.3) with libcurl's multi-socket API.
//
// https only; redirects are never followed (a 3xx is a failure); the certificate must be
// valid for mta-sts.DOMAIN under the configured CA bundle; status 200; media type
// text/plain; body at most 64 KiB; no proxy unless one is configured.
#include "sts/curl_fetcher.hh"

#include <stdexcept>

#include "sts/policy.hh"
#include "util/log.hh"
#include "util/strings.hh"

namespace strictmx::sts {

std::string policy_url(const std::string& domain) {
    return "https://mta-sts." + domain + "/.well-known/mta-sts.txt";
}

struct CurlFetcher::Transfer {
    CurlFetcher* owner = nullptr;
    std::string domain;
    std::string url;
    CurlPtr easy;
    Callback cb;
    std::string body;
    bool oversized = false;
    char errbuf[CURL_ERROR_SIZE] = {};
    EventPtr deliver;
    FetchResult result;
};

struct CurlFetcher::SocketWatch {
    EventPtr ev;
};

CurlFetcher::CurlFetcher(event_base* base, CurlOptions opts)
    : base_(base), opts_(std::move(opts)), multi_(curl_multi_init()) {
    if (!multi_) throw std::runtime_error("curl_multi_init failed");
    curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, &on_socket);
    curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, &on_timer);
    curl_multi_setopt(multi_.get(), CURLMOPT_TIMERDATA, this);
    timer_.reset(evtimer_new(base_, &on_timeout, this));
    for (const auto& c : opts_.connect_to) {
        curl_slist* n = curl_slist_append(connect_to_.get(), c.c_str());
        if (!n) throw std::runtime_error("out of memory");
        connect_to_.release();
        connect_to_.reset(n);
    }
}

CurlFetcher::~CurlFetcher() {
    for (auto& [t, owned] : transfers_) curl_multi_remove_handle(multi_.get(), t->easy.get());
    transfers_.clear();
}

std::size_t CurlFetcher::on_body(char* data, std::size_t size, std::size_t n,
                                 void* userp) noexcept {
    auto* t = static_cast<Transfer*>(userp);
    std::size_t len = size * n;
    if (t->body.size() + len > kMaxPolicyBytes) {
        t->oversized = true;
        return 0;  // aborts the transfer with CURLE_WRITE_ERROR
    }
    t->body.append(data, len);
    return len;
}

void CurlFetcher::fetch(const std::string& domain, Callback cb) {
    auto owned = std::make_unique<Transfer>();
    Transfer* t = owned.get();
    t->owner = this;
    t->domain = domain;
    t->url = policy_url(domain);
    t->cb = std::move(cb);
    t->easy.reset(curl_easy_init());
    CURL* e = t->easy.get();
    CURLcode rc = e ? CURLE_OK : CURLE_OUT_OF_MEMORY;
    auto set = [&](CURLoption o, auto v) {
        if (rc == CURLE_OK) rc = curl_easy_setopt(e, o, v);
    };
    set(CURLOPT_URL, t->url.c_str());
    set(CURLOPT_PROTOCOLS_STR, "https");
    set(CURLOPT_REDIR_PROTOCOLS_STR, "https");
    set(CURLOPT_FOLLOWLOCATION, 0L);
    set(CURLOPT_SSL_VERIFYPEER, 1L);
    set(CURLOPT_SSL_VERIFYHOST, 2L);
    set(CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
    if (!opts_.ca_file.empty()) {
        set(CURLOPT_CAINFO, opts_.ca_file.c_str());
        set(CURLOPT_CAPATH, static_cast<const char*>(nullptr));
    }
    if (connect_to_) set(CURLOPT_CONNECT_TO, connect_to_.get());
    set(CURLOPT_PROXY, opts_.proxy.c_str());  // "" disables proxies from the environment
    set(CURLOPT_TIMEOUT_MS, opts_.timeout_ms);
    set(CURLOPT_CONNECTTIMEOUT_MS, opts_.connect_timeout_ms);
    set(CURLOPT_NOSIGNAL, 1L);
    set(CURLOPT_USERAGENT, "strictmx/0.1");
    set(CURLOPT_MAXFILESIZE, static_cast<long>(kMaxPolicyBytes));
    set(CURLOPT_WRITEFUNCTION, &on_body);
    set(CURLOPT_WRITEDATA, t);
    set(CURLOPT_ERRORBUFFER, t->errbuf);
    set(CURLOPT_PRIVATE, t);
    transfers_.emplace(t, std::move(owned));
    if (rc == CURLE_OK && curl_multi_add_handle(multi_.get(), e) == CURLM_OK) return;
    t->result.status = FetchResult::Status::FetchError;
    t->result.why = std::string("cannot start fetch: ") + curl_easy_strerror(rc);
    t->deliver.reset(event_new(base_, -1, 0, &on_deliver, t));
    event_active(t->deliver.get(), 0, 0);
}

void CurlFetcher::on_deliver(evutil_socket_t, short, void* arg) noexcept {
    auto* t = static_cast<Transfer*>(arg);
    t->owner->complete(t, std::move(t->result));
}

int CurlFetcher::on_socket(CURL*, curl_socket_t s, int what, void* userp, void* socketp) noexcept {
    auto* self = static_cast<CurlFetcher*>(userp);
    auto* watch = static_cast<SocketWatch*>(socketp);
    if (what == CURL_POLL_REMOVE) {
        delete watch;
        curl_multi_assign(self->multi_.get(), s, nullptr);
        return 0;
    }
    if (!watch) {
        watch = new (std::nothrow) SocketWatch;
        if (!watch) return -1;
        curl_multi_assign(self->multi_.get(), s, watch);
    }
    short kind = EV_PERSIST;
    if (what & CURL_POLL_IN) kind |= EV_READ;
    if (what & CURL_POLL_OUT) kind |= EV_WRITE;
    watch->ev.reset(event_new(self->base_, s, kind, &on_event, self));
    if (watch->ev) event_add(watch->ev.get(), nullptr);
    return 0;
}

int CurlFetcher::on_timer(CURLM*, long timeout_ms, void* userp) noexcept {
    auto* self = static_cast<CurlFetcher*>(userp);
    if (timeout_ms < 0) {
        evtimer_del(self->timer_.get());
        return 0;
    }
    timeval tv{timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(self->timer_.get(), &tv);
    return 0;
}

void CurlFetcher::on_event(evutil_socket_t fd, short events, void* arg) noexcept {
    auto* self = static_cast<CurlFetcher*>(arg);
    int flags = 0;
    if (events & EV_READ) flags |= CURL_CSELECT_IN;
    if (events & EV_WRITE) flags |= CURL_CSELECT_OUT;
    int running = 0;
    curl_multi_socket_action(self->multi_.get(), fd, flags, &running);
    self->drain();
}

void CurlFetcher::on_timeout(evutil_socket_t, short, void* arg) noexcept {
    auto* self = static_cast<CurlFetcher*>(arg);
    int running = 0;
    curl_multi_socket_action(self->multi_.get(), CURL_SOCKET_TIMEOUT, 0, &running);
    self->drain();
}

namespace {
bool is_webpki_error(CURLcode rc) {
    return rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
           rc == CURLE_SSL_ISSUER_ERROR || rc == CURLE_SSL_PINNEDPUBKEYNOTMATCH;
}

bool is_text_plain(const char* ctype) {
    if (!ctype) return false;
    std::string_view v(ctype);
    std::size_t semi = v.find(';');
    return iequals(trim(v.substr(0, semi)), "text/plain");
}
}  // namespace

void CurlFetcher::drain() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &left)) {
        if (msg->msg != CURLMSG_DONE) continue;
        CURL* e = msg->easy_handle;
        CURLcode rc = msg->data.result;
        Transfer* t = nullptr;
        curl_easy_getinfo(e, CURLINFO_PRIVATE, &t);
        if (!t) continue;
        curl_multi_remove_handle(multi_.get(), e);
        FetchResult r;
        curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &r.http_status);
        const char* ctype = nullptr;
        curl_easy_getinfo(e, CURLINFO_CONTENT_TYPE, &ctype);
        if (t->oversized || rc == CURLE_FILESIZE_EXCEEDED) {
            r.why = "policy larger than 64 KiB";
        } else if (rc != CURLE_OK) {
            if (is_webpki_error(rc)) r.status = FetchResult::Status::WebPkiInvalid;
            r.why = std::string(curl_easy_strerror(rc));
            if (t->errbuf[0]) r.why += std::string(": ") + t->errbuf;
        } else if (r.http_status != 200) {
            r.why = "HTTP status " + std::to_string(r.http_status) +
                    (r.http_status >= 300 && r.http_status < 400 ? " (redirects are not followed)"
                                                                 : "");
        } else if (!is_text_plain(ctype)) {
            r.why = std::string("media type is not text/plain: ") +
                    sanitize(ctype ? ctype : "(none)", 80);
        } else {
            r.status = FetchResult::Status::Ok;
            r.body = std::move(t->body);
        }
        complete(t, std::move(r));
    }
}

void CurlFetcher::complete(Transfer* t, FetchResult r) {
    auto it = transfers_.find(t);
    if (it == transfers_.end()) return;
    std::unique_ptr<Transfer> owned = std::move(it->second);
    transfers_.erase(it);
    log::debug("policy fetch", {{"domain", owned->domain},
                                {"status", r.status == FetchResult::Status::Ok ? "ok" : "failed"},
                                {"why", r.why}});
    try {
        owned->cb(std::move(r));
    } catch (const std::exception& e) {
        log::error("fetch callback failed", {{"error", e.what()}});
    }
}

}  // namespace strictmx::sts
