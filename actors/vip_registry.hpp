// SPDX-License-Identifier: MIT
// The VIP registry: one vip_holder per VIP key. It spawns them (monitored),
// hands them their config, the lease, the ARP knobs and the spreading
// counts, restarts a crashed one with backoff, retires the holder of a
// deleted key, and collects their states for /v1/vips.
#pragma once

#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "actors/vip_holder.hpp"

namespace networkd {

/// Spawns the holder for one VIP key (the registry monitors it).
using vip_factory
  = std::function<vip_holder_actor(caf::actor_system&, const std::string&)>;

struct vip_registry_config {
  vip_factory make_vip;
  /// Told the addresses of the VIPs of app "webrouter" (what "webrouter"
  /// typed domains answer) whenever they change (may be null).
  dns_responder_actor dns;
  /// The VIP engine's workers (null in tests without a kernel side). When
  /// the first full read is applied, both are told the addresses of every
  /// VIP key and the node's own (port-only VIPs): what a previous run left
  /// for other addresses (VIP keys deleted while networkd was down) goes.
  link_worker_actor link;
  nat_manager_actor nat;
  std::string node_ip;
  /// Where renewals of the lease go instead of a message to every holder
  /// (the holders built by make_vip read it). Null: every renewal is sent
  /// to every holder, and each keeps its own timer for the deadline.
  std::shared_ptr<lease_board> board;
  std::chrono::milliseconds restart_backoff_min{100};
  std::chrono::milliseconds restart_backoff_max{30000};
};

struct child_entry {
  vip_holder_actor handle;
  config::vip_config config; ///< last good config, re-sent on restart
  std::string last_event;    ///< what was last sent to it, for crash logs
  uint64_t restarts = 0;
  bool restart_pending = false;
};

struct vip_registry_state {
  static inline const char* name = "vip-registry";

  vip_registry_config cfg;
  std::map<std::string, child_entry> children; ///< by full VIP key
  /// Holders of deleted keys still releasing, by key. A key put again
  /// meanwhile gets its new holder once the old one is done.
  std::map<std::string, vip_holder_actor> retiring;
  /// The session lease as last told (id 0: none).
  keepalive_info lease;
  /// The one timer for the lease deadline of every holder (its time and
  /// generation); it fires early when a renewal moved the deadline and is
  /// armed again.
  std::optional<std::chrono::steady_clock::time_point> fence_at;
  uint64_t fence_gen = 0;
  /// The holders were fenced: the next renewal goes to each of them.
  bool fenced = false;
  config::arp_knobs arp = config::default_knobs().arp;
  std::vector<std::string> webrouter_ips; ///< last sent to cfg.dns
  /// The spreading keys: "app/proc" → instance → VIP → used.
  std::map<std::string, std::map<int64_t, std::map<std::string, bool>>> spread;
  /// Groups whose counts changed since they were last sent; sent at most
  /// every 50 ms (a cold start changes thousands of keys).
  std::set<std::string> spread_dirty;
  bool spread_flush_scheduled = false;
  bool shutting_down = false;
  uint64_t restarts = 0;

  std::chrono::milliseconds backoff(uint64_t restarts) const;
  /// The lease as a new holder hears it: zeros once its deadline passed.
  keepalive_info lease_at(std::chrono::steady_clock::time_point now) const;
  /// How many VIPs of app.proc each registered instance holds.
  spread_report spread_of(const std::string& app,
                          const std::string& proc) const;
  /// The address VIPs of app "webrouter", sorted.
  std::vector<std::string> webrouter() const;
  std::string render(const std::vector<std::string>& child_states) const;
  std::string metrics() const;
};

using vip_registry_pointer
  = vip_registry_actor::stateful_pointer<vip_registry_state>;

vip_registry_actor::behavior_type vip_registry(vip_registry_pointer self,
                                               vip_registry_config cfg);

} // namespace networkd
