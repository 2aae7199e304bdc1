// SPDX-License-Identifier: MIT
// Leader duties: campaigns for /lain/networkd/leader/ on the session lease
// and, while leader, publishes the swarm and deployd leader addresses as
// swarm.lain and deployd.lain. Every write is guarded by the leadership
// (the candidate key's create revision), so a deposed leader cannot write.
#pragma once

#include <caf/stateful_actor.hpp>

#include <map>
#include <string>

#include "actors/interfaces.hpp"
#include "net/election.hpp"

namespace networkd {

struct leader_config {
  std::string hostname;
  etcd_worker_actor etcd;
  bool swarm = false;   ///< -swarm
  bool deployd = false; ///< -deployd
};

struct leader_state {
  static inline const char* name = "leader";

  leader_config cfg;
  election votes;
  int64_t lease_id = 0;
  std::string my_key;        ///< our candidate key ("" until campaigning)
  bool campaigning = false;  ///< a put of my_key is in flight
  bool was_leader = false;
  uint64_t terms = 0;
  /// Source values ("ip") by the domain they feed ("swarm.lain" → ip).
  std::map<std::string, std::string> wanted;
  /// Current ips of the domains we publish, as seen in etcd.
  std::map<std::string, std::string> current;
  std::map<std::string, bool> in_flight;
  uint64_t writes = 0;
  uint64_t refused = 0;
  std::string last_error;

  bool leading() const { return !my_key.empty() && votes.leads(my_key); }
  std::string render() const;
};

leader_actor::behavior_type
leader_duties(leader_actor::stateful_pointer<leader_state> self,
              leader_config cfg);

} // namespace networkd
