// SPDX-License-Identifier: MIT
// The three lookup protocols behind one small interface: framing of a request, its handling
// by the Service, and the deadline and error replies, each protocol in one place.
//
//   socketmap  netstring "NAME KEY" -> netstring reply (socketmap_table(5))
//   tcp_table  "get KEY\n" (%XX-encoded) -> "200|400|500 text\n" (tcp_table(5))
//   exim       one line "query D" or "mxcheck D HOST" -> one line, then close (readsocket)
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "policy/service.hh"

namespace strictmx::policyd {

struct Frame {
    enum class Kind { NeedMore, Request, Malformed } kind = Kind::NeedMore;
    std::size_t consumed = 0;  // Request: bytes of input used
    std::string request;       // Request: socketmap payload, decoded tcp_table key, exim line
    std::string error_reply;   // Malformed: sent before the connection is closed
    std::string why;           // Malformed: for the log
};

class Protocol {
  public:
    virtual ~Protocol() = default;
    virtual const char* name() const = 0;
    // The longest request with its framing: the connection's fixed read buffer. A buffer
    // that fills without a complete request is malformed input.
    virtual std::size_t max_frame() const = 0;
    // One request from the front of `in`; `eof`: the client shut down its side.
    virtual Frame frame(std::string_view in, bool eof) const = 0;
    // Answer `request`; `reply` gets the wire bytes (later, for a cold lookup).
    virtual void handle(policy::Service& service, const std::string& request,
                        const policy::Profile* profile, policy::Service::ReplyFn reply) const = 0;
    virtual std::string deadline_reply() const = 0;
    virtual std::string internal_error_reply() const = 0;
    // Exim's readsocket: one request, one answer, close.
    virtual bool one_request() const { return false; }
};

// "socketmap", "tcp_table" or "exim"; nullptr for anything else.
const Protocol* find_protocol(std::string_view type);

}  // namespace strictmx::policyd
