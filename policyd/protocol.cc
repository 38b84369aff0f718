// SPDX-License-Identifier: MIT
// socketmap, tcp_table and exim: framing, handling and fixed replies of each.
#include "protocol.hh"

#include "codecs/netstring.hh"
#include "codecs/tcp_table.hh"
#include "util/strings.hh"

namespace strictmx::policyd {
namespace {

class Socketmap final : public Protocol {
  public:
    const char* name() const override { return "socketmap"; }
    // "10000:" + payload + ","
    std::size_t max_frame() const override { return netstring::kMaxRequest + 8; }
    Frame frame(std::string_view in, bool) const override {
        Frame f;
        auto r = netstring::parse(in, netstring::kMaxRequest);
        if (r.status == netstring::ParseResult::Status::NeedMore) return f;
        if (r.status == netstring::ParseResult::Status::Malformed) {
            f.kind = Frame::Kind::Malformed;
            f.why = r.reason;
            f.error_reply = netstring::encode(std::string("PERM malformed request: ") + r.reason);
            return f;
        }
        f.kind = Frame::Kind::Request;
        f.consumed = r.consumed;
        f.request.assign(r.payload);
        return f;
    }
    void handle(policy::Service& service, const std::string& request, const policy::Profile*,
                policy::Service::ReplyFn reply) const override {
        service.socketmap(request, [reply = std::move(reply)](std::string payload) {
            reply(netstring::encode(payload));
        });
    }
    std::string deadline_reply() const override {
        return netstring::encode(policy::Service::socketmap_deadline_reply());
    }
    std::string internal_error_reply() const override {
        return netstring::encode("TEMP internal error");
    }
};

class TcpTable final : public Protocol {
  public:
    const char* name() const override { return "tcp_table"; }
    // The whole request line, "get " and the %XX-encoded key, plus CR LF.
    std::size_t max_frame() const override { return tcp_table::kMaxRequest + 2; }
    Frame frame(std::string_view in, bool) const override {
        Frame f;
        auto r = tcp_table::parse_request(in);
        if (r.status == tcp_table::ParseResult::Status::NeedMore) return f;
        if (r.status == tcp_table::ParseResult::Status::Malformed) {
            f.kind = Frame::Kind::Malformed;
            f.why = r.reason;
            f.error_reply = *tcp_table::reply(400, std::string("malformed request: ") + r.reason);
            return f;
        }
        f.kind = Frame::Kind::Request;
        f.consumed = r.consumed;
        f.request = std::move(r.key);
        return f;
    }
    void handle(policy::Service& service, const std::string& request,
                const policy::Profile* profile, policy::Service::ReplyFn reply) const override {
        service.tcp_table(request, *profile, std::move(reply));
    }
    std::string deadline_reply() const override {
        return policy::Service::tcp_table_deadline_reply();
    }
    std::string internal_error_reply() const override {
        return *tcp_table::reply(400, "internal error");
    }
};

class Exim final : public Protocol {
  public:
    const char* name() const override { return "exim"; }
    std::size_t max_frame() const override { return netstring::kMaxRequest + 2; }
    Frame frame(std::string_view in, bool eof) const override {
        Frame f;
        std::size_t nl = in.find('\n');
        if (nl == std::string_view::npos && !eof) return f;  // a full buffer is "too long"
        std::size_t len = nl == std::string_view::npos ? in.size() : nl;
        if (len > netstring::kMaxRequest) {
            f.kind = Frame::Kind::Malformed;
            f.why = "request too long";
            f.error_reply = "level=tempfail reason=\"request too long\"\n";
            return f;
        }
        f.kind = Frame::Kind::Request;
        f.request.assign(in.substr(0, len));
        if (!f.request.empty() && f.request.back() == '\r') f.request.pop_back();
        f.consumed = nl == std::string_view::npos ? in.size() : nl + 1;
        return f;
    }
    void handle(policy::Service& service, const std::string& request,
                const policy::Profile* profile, policy::Service::ReplyFn reply) const override {
        service.exim(request, *profile, std::move(reply));
    }
    std::string deadline_reply() const override { return policy::Service::exim_deadline_reply(); }
    std::string internal_error_reply() const override {
        return "level=tempfail reason=\"internal error\"\n";
    }
    bool one_request() const override { return true; }
};

// The control socket: one line, one JSON line, close (strictmx status, cache, query).
class Control final : public Protocol {
  public:
    const char* name() const override { return "control"; }
    std::size_t max_frame() const override { return 4096; }
    Frame frame(std::string_view in, bool eof) const override {
        Frame f;
        std::size_t nl = in.find('\n');
        if (nl == std::string_view::npos && !eof) return f;
        std::size_t len = nl == std::string_view::npos ? in.size() : nl;
        f.kind = Frame::Kind::Request;
        f.request.assign(in.substr(0, len));
        if (!f.request.empty() && f.request.back() == '\r') f.request.pop_back();
        f.consumed = nl == std::string_view::npos ? in.size() : nl + 1;
        return f;
    }
    void handle(policy::Service& service, const std::string& request, const policy::Profile*,
                policy::Service::ReplyFn reply) const override {
        service.control(request, std::move(reply));
    }
    std::string deadline_reply() const override {
        return "{\"error\":\"the lookup is still in progress, try again later\"}\n";
    }
    std::string internal_error_reply() const override { return "{\"error\":\"internal error\"}\n"; }
    bool one_request() const override { return true; }
};

// Prometheus scrapes: "GET /metrics HTTP/1.x" and headers, one response, close.
class Metrics final : public Protocol {
  public:
    const char* name() const override { return "metrics"; }
    std::size_t max_frame() const override { return 8192; }
    Frame frame(std::string_view in, bool eof) const override {
        Frame f;
        std::size_t end = in.find("\r\n\r\n");
        std::size_t end_lf = in.find("\n\n");
        if (end == std::string_view::npos && end_lf == std::string_view::npos && !eof) return f;
        std::size_t line_end = in.find_first_of("\r\n");
        f.kind = Frame::Kind::Request;
        f.request.assign(in.substr(0, line_end == std::string_view::npos ? in.size() : line_end));
        f.consumed = in.size();
        return f;
    }
    static std::string response(const char* status, const std::string& body) {
        return std::string("HTTP/1.0 ") + status +
               "\r\nContent-Type: text/plain; version=0.0.4; charset=utf-8\r\nContent-Length: " +
               std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n" + body;
    }
    void handle(policy::Service& service, const std::string& request, const policy::Profile*,
                policy::Service::ReplyFn reply) const override {
        auto words = split(request, ' ');
        if (words.size() != 3 || !words[2].starts_with("HTTP/1.")) {
            reply(response("400 Bad Request", "bad request\n"));
            return;
        }
        if (words[0] != "GET" && words[0] != "HEAD") {
            reply(response("405 Method Not Allowed", "only GET\n"));
            return;
        }
        if (words[1] != "/metrics") {
            reply(response("404 Not Found", "try /metrics\n"));
            return;
        }
        reply(response("200 OK", service.metrics()));
    }
    std::string deadline_reply() const override {
        return response("503 Service Unavailable", "busy\n");
    }
    std::string internal_error_reply() const override {
        return response("500 Internal Server Error", "internal error\n");
    }
    bool one_request() const override { return true; }
};

}  // namespace

const Protocol* find_protocol(std::string_view type) {
    static const Socketmap socketmap;
    static const TcpTable tcp_table;
    static const Exim exim;
    static const Control control;
    static const Metrics metrics;
    if (type == "socketmap") return &socketmap;
    if (type == "tcp_table") return &tcp_table;
    if (type == "exim") return &exim;
    if (type == "control") return &control;
    if (type == "metrics") return &metrics;
    return nullptr;
}

}  // namespace strictmx::policyd
