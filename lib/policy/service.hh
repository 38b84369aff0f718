// SPDX-License-Identifier: MIT
// Request handling shared by every listener: key classification, the engine lookup, the
// profile's answer, the protocol's reply, and one log line per decision.
#pragma once

#include <functional>
#include <set>
#include <string>
#include <string_view>

#include "policy/engine.hh"

namespace strictmx::policy {

class Service {
  public:
    explicit Service(Engine& engine) : engine_(engine) {}

    using ReplyFn = std::function<void(std::string)>;

    // socketmap: `payload` is "NAME KEY"; the reply is the netstring payload
    // ("OK data", "NOTFOUND ", "TEMP reason", "PERM reason").
    void socketmap(std::string_view payload, ReplyFn reply);
    // tcp_table: `key` is decoded; the reply is a whole line ("200 data\n", ...).
    void tcp_table(const std::string& key, const Profile& profile, ReplyFn reply);

    // Exim ${readsocket}: one request line, "query DOMAIN" or "mxcheck DOMAIN HOST"; the
    // reply is one line (with its newline). mxcheck answers an empty line to allow.
    void exim(std::string_view line, const Profile& profile, ReplyFn reply);

    // What a lookup answers when its deadline passes before the resolution ends.
    static std::string socketmap_deadline_reply();
    static std::string tcp_table_deadline_reply();
    static std::string exim_deadline_reply();

    // Shared by both protocols: decide and render for a raw key.
    void decide(const std::string& raw_key, const Profile& profile,
                std::function<void(Reply)> done);
    // The same with the decision itself (Exim renders it its own way). `log_answer` writes
    // the decision line.
    void decide_raw(const std::string& raw_key, const Profile& profile,
                    std::function<void(const Decision*)> done);

  private:
    Engine& engine_;
    std::set<std::string> unknown_names_logged_;
};

std::string socketmap_payload(const Reply& r);
std::string tcp_table_line(const Reply& r);

}  // namespace strictmx::policy
