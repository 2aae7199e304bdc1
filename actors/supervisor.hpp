// SPDX-License-Identifier: MIT
// The supervisor: the front of the etcd side. The session (lease), the
// watch router (watches, typed routing, knobs) and the VIP registry
// (holders) are actors of their own; the node and the admin endpoint ask
// this one, which answers from the three and orders their shutdown.
#pragma once

#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include <string>
#include <vector>

#include "actors/interfaces.hpp"

namespace networkd {

struct supervisor_config {
  std::string hostname;
  session_actor session;
  watch_router_actor router;
  vip_registry_actor registry;
};

/// One JSON object of the members of `parts` (JSON objects), in order: a
/// member already there stays, except that two objects of one name are
/// merged one level deep (counters). Unparsable parts are skipped.
std::string merge_objects(const std::vector<std::string>& parts);

struct supervisor_state {
  static inline const char* name = "supervisor";
  supervisor_config cfg;
  bool shutting_down = false;
};

using supervisor_pointer = supervisor_actor::stateful_pointer<supervisor_state>;

supervisor_actor::behavior_type supervisor(supervisor_pointer self,
                                           supervisor_config cfg);

} // namespace networkd
