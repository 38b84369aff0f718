// SPDX-License-Identifier: MIT
// Structured logging: one line per event, grep-friendly key=value fields.
#include "util/log.hh"

#include <syslog.h>

#include <atomic>
#include <cstdio>
#include <string>

#include "util/strings.hh"

namespace strictmx::log {
namespace {
bool g_syslog = false;
std::atomic<int> g_verbosity{static_cast<int>(Level::Info)};  // set again on reload
std::string g_ident = "strictmx";

int syslog_priority(Level l) {
    switch (l) {
        case Level::Error:
            return LOG_ERR;
        case Level::Warning:
            return LOG_WARNING;
        case Level::Info:
            return LOG_INFO;
        case Level::Debug:
            return LOG_DEBUG;
    }
    return LOG_INFO;
}

const char* level_name(Level l) {
    switch (l) {
        case Level::Error:
            return "error";
        case Level::Warning:
            return "warning";
        case Level::Info:
            return "info";
        case Level::Debug:
            return "debug";
    }
    return "info";
}
}  // namespace

void init(std::string_view ident, bool use_syslog, int verbosity) {
    g_ident = std::string(ident);
    g_syslog = use_syslog;
    g_verbosity = verbosity;
    if (g_syslog) openlog(g_ident.c_str(), LOG_PID | LOG_NDELAY, LOG_MAIL);
}

void set_verbosity(int verbosity) {
    g_verbosity = verbosity;
}

bool enabled(Level level) {
    return static_cast<int>(level) <= g_verbosity.load(std::memory_order_relaxed);
}

void emit(Level level, std::string_view msg, std::initializer_list<Field> fields) {
    if (!enabled(level)) return;
    std::string line(msg);
    for (const auto& [k, v] : fields) {
        line += ' ';
        line += k;
        line += '=';
        std::string val = sanitize(v, 400);
        if (val.empty() || val.find_first_of(" \"=") != std::string::npos) {
            line += '"';
            for (char c : val) {
                if (c == '"') line += '\\';
                line += c;
            }
            line += '"';
        } else {
            line += val;
        }
    }
    if (g_syslog) {
        syslog(syslog_priority(level), "%s", line.c_str());
    } else {
        std::fprintf(stderr, "%s[%s]: %s\n", g_ident.c_str(), level_name(level), line.c_str());
        std::fflush(stderr);
    }
}

}  // namespace strictmx::log
