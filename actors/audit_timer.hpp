// SPDX-License-Identifier: MIT
// A periodic audit timer (atom::audit with a generation) whose period can
// change at runtime: the timer of an older period is void when it fires.
#pragma once

#include <chrono>
#include <cstdint>

#include "actors/fwd.hpp"

namespace networkd {

struct audit_timer {
  std::chrono::seconds every{30}; ///< 0: no audit
  uint64_t generation = 0;

  /// Sends `self` {atom::audit, generation} after one period.
  template <class Self>
  void arm(Self* self) const {
    if (every.count() > 0)
      self->delayed_send(self, every, atom::audit_v, generation);
  }

  /// A new period: the pending timer is void, the next one is armed.
  /// False when the period did not change.
  template <class Self>
  bool set(Self* self, std::chrono::seconds period) {
    if (period.count() < 0)
      period = std::chrono::seconds{0};
    if (period == every)
      return false;
    every = period;
    ++generation;
    arm(self);
    return true;
  }

  /// Whether a timer with this generation belongs to the current period.
  bool current(uint64_t g) const { return g == generation; }
};

} // namespace networkd
