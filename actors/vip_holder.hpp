// SPDX-License-Identifier: MIT
// The holder of one VIP key: a state machine that owns the VIP's whole life
// on this node — lock, DNAT rules, address, gratuitous ARP, release — and
// fences itself on a local lease deadline.
#pragma once

#include <caf/stateful_actor.hpp>

#include <chrono>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "actors/vip_engine.hpp"
#include "net/vip_plan.hpp"

namespace networkd {

struct vip_holder_state {
  static inline const char* name = "vip-holder";

  enum class lock_state { none, acquiring, ours, theirs };

  std::string key;
  vip_env env;
  config::vip_config config;
  bool configured = false;
  uint64_t updates = 0;

  // session lease as the supervisor last told it
  int64_t lease_id = 0;
  std::chrono::steady_clock::time_point lease_deadline{};
  uint64_t lease_gen = 0;
  bool fence_armed = false; ///< a fence timer of lease_gen is pending

  // health of app.proc here
  std::string subscribed_to; ///< "app.proc" we subscribed for
  std::optional<vip::container> container;
  std::string health_reason = "waiting for health";

  // lock (address VIPs)
  lock_state lock = lock_state::none;
  std::string holder;
  int64_t lock_revision = 0;

  // what is applied in the kernel / etcd
  std::vector<nat_rule> rules;
  std::string rules_address;
  bool address_on = false;
  bool app_key = false;
  std::string app_key_path;
  /// A previous run may have left this VIP's address and rules behind:
  /// what is still to be removed once it is clear the VIP is not ours.
  enum class leftovers { address, rules, none };
  leftovers leftover = leftovers::address;
  std::chrono::steady_clock::time_point started_at{};
  // spreading over the instances of app.proc
  std::map<int64_t, int64_t> spread_used; ///< instance → VIPs it holds
  std::string spread_key;   ///< our spreading key as written ("": none)
  std::string spread_value; ///< "used" / "unused" as written
  std::string spread_wait;  ///< why this instance does not compete now
  bool conflict_check = false; ///< a lock re-check after an ARP conflict
  std::chrono::steady_clock::time_point last_conflict_check{};

  bool busy = false;
  bool retry_pending = false;
  bool shutting_down = false;
  bool retiring = false; ///< the key was deleted: release all, then stop
  caf::response_promise shutdown_promise;
  uint64_t announce_gen = 0;
  uint64_t refresh_gen = 0;
  uint64_t arp_rounds = 0; ///< gratuitous ARP rounds sent

  std::string phase = "created";
  std::string last_change;
  std::string last_error;
  uint64_t transitions = 0;
  uint64_t readds = 0;     ///< our address put back after a removal
  uint64_t conflicts = 0;  ///< ARP conflicts seen
  uint64_t stepped_down = 0;

  /// The lease deadline in force when the kernel expired our address: it
  /// is not added again before a renewal moves the deadline.
  std::chrono::steady_clock::time_point expired_at_deadline{};

  bool lease_alive(std::chrono::steady_clock::time_point now) const {
    return lease_id != 0 && now < lease_deadline;
  }
  std::string render() const;
};

/// The address's valid lifetime is set to the whole seconds left before
/// the lease deadline at every renewal, so the kernel expires it in the
/// last second before that deadline when no renewal came. A removal seen
/// this close to the deadline is taken for that expiry (a removal by
/// someone else there is put back after the next renewal).
constexpr std::chrono::milliseconds expiry_window{1200};

/// True when an address removal seen at `now` is the kernel's expiry.
inline bool removal_is_expiry(std::chrono::steady_clock::time_point now,
                              std::chrono::steady_clock::time_point deadline) {
  return now + expiry_window >= deadline;
}

using vip_holder_pointer
  = vip_holder_actor::stateful_pointer<vip_holder_state>;

vip_holder_actor::behavior_type vip_holder(vip_holder_pointer self,
                                           std::string key, vip_env env);

} // namespace networkd
