// SPDX-License-Identifier: MIT
// The holder of one VIP key. Today it keeps the key's validated config and
// reports it; the lock / address / ARP / DNAT state machine is issue 6.
#pragma once

#include <caf/stateful_actor.hpp>

#include <string>

#include "actors/interfaces.hpp"

namespace networkd {

struct vip_holder_state {
  static inline const char* name = "vip-holder";
  std::string key;
  config::vip_config config;
  uint64_t updates = 0;
  std::string render() const;
};

vip_holder_actor::behavior_type
vip_holder(vip_holder_actor::stateful_pointer<vip_holder_state> self,
           std::string key);

} // namespace networkd
