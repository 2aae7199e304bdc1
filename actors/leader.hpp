// SPDX-License-Identifier: MIT
// Leader duties: campaigns for /lain/networkd/leader/ on the session lease
// and, while leader, runs the publishers of net/cluster/publish.hpp (swarm,
// deployd, webrouter, tinydns, streamrouter). The plan is recomputed from
// scratch on every input change and on gaining leadership; what differs
// from etcd (every write and delete) goes out as one transaction guarded by
// the leadership (the candidate key's create revision), so watchers never
// see half a plan and a deposed leader cannot write. A plan larger than
// etcd's limit of operations per transaction is cut as
// publish::transactions() says. While transactions are in flight no other
// is sent; the last answer recomputes the plan.
#pragma once

#include <caf/stateful_actor.hpp>

#include <map>
#include <memory>
#include <string>

#include "actors/interfaces.hpp"
#include "net/cluster/publish.hpp"
#include "net/etcd/election.hpp"
#include "net/peers/streamrouter.hpp"

namespace networkd {

struct leader_config {
  std::string hostname;
  etcd_worker_actor etcd;
  std::string cluster_domain;   ///< -domain
  bool swarm = false;           ///< -swarm
  bool deployd = false;         ///< -deployd
  bool webrouter = false;       ///< -webrouter
  bool tinydns = false;         ///< -tinydns
  bool streamrouter = false;    ///< -streamrouter
  std::string lainlet_endpoint; ///< for the streamrouter's ports
  std::chrono::milliseconds ports_interval{2000};
};

struct leader_state {
  static inline const char* name = "leader";

  leader_config cfg;
  election votes;
  int64_t lease_id = 0;
  std::string my_key;       ///< our candidate key ("" until campaigning)
  bool campaigning = false; ///< a put of my_key is in flight
  bool was_leader = false;
  bool ready = false; ///< every watch delivered its first snapshot
  uint64_t terms = 0;
  publish::inputs in;
  /// Values in etcd of the keys a leader may write (see
  /// net/cluster/publish.hpp).
  std::map<std::string, std::string> current;
  publish::plan wanted; ///< the last computed plan
  size_t in_flight = 0; ///< transactions sent and not answered yet
  std::shared_ptr<lainlet::ports_poller> ports;
  uint64_t transactions = 0; ///< committed
  uint64_t writes = 0;       ///< keys written by them
  uint64_t deletes = 0;      ///< keys deleted by them
  uint64_t refused = 0;      ///< transactions refused by the guard
  std::string last_error;

  bool leading() const { return !my_key.empty() && votes.leads(my_key); }
  std::string render() const;
};

leader_actor::behavior_type
leader_duties(leader_actor::stateful_pointer<leader_state> self,
              leader_config cfg);

} // namespace networkd
