// SPDX-License-Identifier: MIT
// Time as an argument: the clock seam used by the cache, refresh and report logic.
#pragma once

#include <cstdint>

namespace strictmx {

// Seconds since the Unix epoch.
using UnixTime = std::int64_t;

class Clock {
  public:
    virtual ~Clock() = default;
    virtual UnixTime now() const = 0;
};

class SystemClock final : public Clock {
  public:
    UnixTime now() const override;
};

// A clock for tests: time moves only when told to.
class ManualClock final : public Clock {
  public:
    explicit ManualClock(UnixTime t = 1'700'000'000) : t_(t) {}
    UnixTime now() const override { return t_; }
    void advance(std::int64_t seconds) { t_ += seconds; }
    void set(UnixTime t) { t_ = t; }

  private:
    UnixTime t_;
};

}  // namespace strictmx
