// SPDX-License-Identifier: MIT
// socketmap, tcp_table and exim: framing, handling and fixed replies of each.
#include "protocol.hh"

#include "codecs/netstring.hh"
#include "codecs/tcp_table.hh"

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

}  // namespace

const Protocol* find_protocol(std::string_view type) {
    static const Socketmap socketmap;
    static const TcpTable tcp_table;
    static const Exim exim;
    if (type == "socketmap") return &socketmap;
    if (type == "tcp_table") return &tcp_table;
    if (type == "exim") return &exim;
    return nullptr;
}

}  // namespace strictmx::policyd
