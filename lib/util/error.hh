// SPDX-License-Identifier: MIT
// Errors as values: each class maps one-to-one to a socketmap reply.
#pragma once

#include <expected>
#include <string>

namespace strictmx {

// NotFound -> "NOTFOUND ", Temp -> "TEMP reason", Timeout -> "TIMEOUT reason",
// Perm -> "PERM reason" (configuration errors only, never on the data path).
enum class ErrorClass { NotFound, Temp, Timeout, Perm };

struct Error {
    ErrorClass cls = ErrorClass::Temp;
    std::string reason;
};

template <typename T>
using Result = std::expected<T, Error>;

inline std::unexpected<Error> make_error(ErrorClass c, std::string reason) {
    return std::unexpected<Error>(Error{c, std::move(reason)});
}

}  // namespace strictmx
