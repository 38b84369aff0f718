// SPDX-License-Identifier: MIT
// Small string helpers shared by the codecs and parsers.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace strictmx {

std::string to_lower(std::string_view s);
std::string_view trim(std::string_view s);  // spaces and tabs
bool iequals(std::string_view a, std::string_view b);
std::vector<std::string_view> split(std::string_view s, char sep);

// Network text made safe for one log line: non-printing bytes become \xNN, and the
// result is cut at max_len with a trailing "...".
std::string sanitize(std::string_view s, std::size_t max_len = 200);

}  // namespace strictmx
