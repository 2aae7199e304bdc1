// SPDX-License-Identifier: MIT
// The etcd session: one lease, granted once the knobs are read, kept alive
// on a timer, revoked at shutdown; every change of it is told to the
// subscribers (the VIP registry, the leader, the link worker).
#pragma once

#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "actors/interfaces.hpp"
#include "net/etcd/etcd.hpp"
#include "net/etcd/lease.hpp"

namespace networkd {

struct session_config {
  /// Runs the blocking lease calls (null: no session, always "none").
  session_worker_actor worker;
  /// For the etcd_auth counters of the status (may be null).
  std::shared_ptr<etcd::client> client;
  /// Told the lease view (id, TTL, local deadline; id 0 when lost) on
  /// every grant, renewal and loss.
  vip_registry_actor registry;
  leader_actor leader;
  /// Told on every renewal the whole seconds left before the local
  /// deadline: the VIP addresses' valid lifetime (kernel-side fencing).
  link_worker_actor link;
};

struct session_state {
  static inline const char* name = "session";

  session_config cfg;
  lease_tracker lease;
  /// The lease TTL to ask for (lease_ttl knob); 0 until the knobs are read.
  int64_t ttl_s = 0;
  std::string lease_state = "none"; ///< none, granting, alive, lost
  std::string lease_error;
  uint64_t keepalive_failures = 0;
  bool keepalive_in_flight = false;
  /// The lease id the leader heard last (it needs only a new one).
  int64_t leader_heard = -1;
  bool shutting_down = false;

  /// Why the lease does not let this node be counted on, or "". Pure in
  /// `now`.
  std::string not_ready_reason(std::chrono::steady_clock::time_point now) const;
  /// The lease as the holders and the leader see it: id, TTL and local
  /// deadline, or zeros when it is not alive at `now`.
  keepalive_info view(std::chrono::steady_clock::time_point now) const;
  std::string render(std::chrono::steady_clock::time_point now) const;
  std::string metrics(std::chrono::steady_clock::time_point now) const;
};

using session_pointer = session_actor::stateful_pointer<session_state>;

session_actor::behavior_type session(session_pointer self, session_config cfg);

/// Blocking etcd lease calls on a detached actor.
session_worker_actor::behavior_type
session_worker(session_worker_actor::pointer self,
               std::shared_ptr<etcd::client> client);

} // namespace networkd
