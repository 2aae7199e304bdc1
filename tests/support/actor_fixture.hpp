// SPDX-License-Identifier: MIT
// A deterministic actor system for actor tests: the testing scheduler
// (sched.run(), sched.advance_time()) and networkd's message types.
#pragma once

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>

#include "actors/errors.hpp"
#include "actors/fwd.hpp"
#include "actors/messages.hpp"

namespace networkd::test {

class test_config : public caf::actor_system_config {
public:
  test_config() {
    register_networkd(*this);
    set("scheduler.policy", caf::atom("testing"));
    set("logger.verbosity", caf::atom("quiet"));
  }
};

struct actor_fixture {
  test_config cfg;
  caf::actor_system sys{cfg};
  caf::scheduler::test_coordinator& sched
    = dynamic_cast<caf::scheduler::test_coordinator&>(sys.scheduler());
  caf::scoped_actor self{sys};

  /// Runs every pending job, including messages sent while running.
  void run() { sched.run(); }
  /// Lets timers fire: advances the test clock, then runs.
  void advance(caf::timespan d) {
    sched.advance_time(d);
    sched.run();
  }
};

} // namespace networkd::test
