// SPDX-License-Identifier: MIT
// Structured logging: a constant message plus key=value fields, to stderr or syslog.
#pragma once

#include <initializer_list>
#include <string>
#include <string_view>
#include <utility>

namespace strictmx::log {

enum class Level { Error = 0, Warning = 1, Info = 2, Debug = 3 };

void init(std::string_view ident, bool use_syslog, int verbosity);

// Fields are sanitized: values containing spaces are quoted, non-printing bytes escaped.
using Field = std::pair<std::string_view, std::string_view>;
void emit(Level level, std::string_view msg, std::initializer_list<Field> fields = {});

inline void error(std::string_view m, std::initializer_list<Field> f = {}) {
    emit(Level::Error, m, f);
}
inline void warn(std::string_view m, std::initializer_list<Field> f = {}) {
    emit(Level::Warning, m, f);
}
inline void info(std::string_view m, std::initializer_list<Field> f = {}) {
    emit(Level::Info, m, f);
}
inline void debug(std::string_view m, std::initializer_list<Field> f = {}) {
    emit(Level::Debug, m, f);
}
bool enabled(Level level);
// daemon.verbosity on reload.
void set_verbosity(int verbosity);

}  // namespace strictmx::log
