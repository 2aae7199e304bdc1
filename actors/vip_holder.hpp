// SPDX-License-Identifier: MIT
// The holder of one VIP key: owns the VIP's whole life on this node — lock,
// DNAT rules, address, gratuitous ARP, release — and fences itself on a
// local lease deadline. What to do next is decided by vip::next
// (net/cluster/vip_sequencer.hpp) from the facts kept here; the actor observes,
// does that one thing, and observes again.
#pragma once

#include <caf/stateful_actor.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "actors/interfaces.hpp"
#include "actors/vip_engine.hpp"
#include "net/cluster/vip_sequencer.hpp"

namespace networkd {

/// The session lease as the VIP registry last heard it, shared with every
/// holder: a renewal only moves the deadline of the same lease, so the
/// registry writes it here instead of sending it to each holder, and a
/// holder reads it before every decision. A new lease, a lost one, and the
/// first renewal after a fence still come as messages.
class lease_board {
public:
  void set(const keepalive_info& k) {
    std::lock_guard<std::mutex> guard{mutex_};
    lease_ = k;
  }
  keepalive_info get() const {
    std::lock_guard<std::mutex> guard{mutex_};
    return lease_;
  }

private:
  mutable std::mutex mutex_;
  keepalive_info lease_;
};

/// One change of a holder's phase, as /v1/vips shows it.
struct vip_transition {
  std::chrono::system_clock::time_point at; ///< wall clock (shown RFC 3339)
  vip::seq_time mono;                       ///< for the age shown
  std::string from;
  std::string to;
  std::string reason;
};

struct vip_holder_state {
  static inline const char* name = "vip-holder";
  /// Transitions kept for /v1/vips, newest last.
  static constexpr size_t history_size = 10;

  vip_holder_state() = default;
  vip_holder_state(const vip_holder_state&) = delete;
  vip_holder_state& operator=(const vip_holder_state&) = delete;
  /// Takes this VIP's series off /metrics.
  ~vip_holder_state();

  std::string key;
  vip_env env;
  /// Renewals of the lease (null: they come as messages, and the holder
  /// keeps its own timer for the lease deadline).
  std::shared_ptr<const lease_board> lease;
  /// What the sequencer decides from.
  vip::holder_facts facts;
  uint64_t updates = 0;

  std::string subscribed_to; ///< "app.proc" we subscribed health for
  int64_t lock_revision = 0;
  std::string spread_wait; ///< why this instance does not compete now

  /// The wake-up timer pending (its time), one at a time: the earliest
  /// moment the sequencer's answer changes by time alone, except the lease
  /// deadline when the registry keeps that timer for every holder.
  std::optional<vip::seq_time> wake_at;
  uint64_t wake_gen = 0;

  bool conflict_check = false; ///< a lock re-check after an ARP conflict
  vip::seq_time last_conflict_check{};

  bool busy = false; ///< an effect is in flight
  bool retry_pending = false;
  caf::response_promise shutdown_promise;
  uint64_t announce_gen = 0;
  uint64_t refresh_gen = 0;
  uint64_t arp_rounds = 0; ///< gratuitous ARP rounds sent

  std::string phase = "created";
  std::string last_change; ///< "TIME reason" (kept for old readers)
  std::deque<vip_transition> history;
  std::string last_error;
  uint64_t transitions = 0;
  uint64_t readds = 0;    ///< our address put back after a removal
  uint64_t conflicts = 0; ///< ARP conflicts seen
  uint64_t stepped_down = 0;

  /// The key's suffix: the VIP as /metrics labels it.
  std::string vip_label() const;
  /// Records a change of phase at t (and on the board).
  void record_transition(const std::string& to, const std::string& why,
                         vip::seq_time t);
  std::string render(vip::seq_time now) const;
};

using vip_holder_pointer = vip_holder_actor::stateful_pointer<vip_holder_state>;

vip_holder_actor::behavior_type
vip_holder(vip_holder_pointer self, std::string key, vip_env env,
           std::shared_ptr<const lease_board> lease);

} // namespace networkd
