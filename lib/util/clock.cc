// SPDX-License-Identifier: MIT
// The real clock.
#include "util/clock.hh"

#include <ctime>

namespace strictmx {

UnixTime SystemClock::now() const {
    return static_cast<UnixTime>(std::time(nullptr));
}

}  // namespace strictmx
