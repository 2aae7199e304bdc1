// SPDX-License-Identifier: MIT
// The supervisor: owns the etcd session (one lease) and one watch per key
// family, turns key events into typed messages and routes them.
#pragma once

#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "net/etcd/etcd.hpp"
#include "net/etcd/lease.hpp"

namespace networkd {

/// Spawns the child for one VIP key (the supervisor monitors it).
using vip_factory
  = std::function<vip_holder_actor(caf::actor_system&, const std::string&)>;

struct supervisor_config {
  /// etcd client; null runs without a session and without watches (tests
  /// then feed key_batch messages directly).
  std::shared_ptr<etcd::client> client;
  std::string hostname;
  /// Key prefixes to watch, one watcher each.
  std::vector<std::string> prefixes;
  vip_factory make_vip;
  /// Told the knobs in force and when the first full read is applied.
  std::vector<config_listener_actor> listeners;
  /// Told the ACL keys (null without -acl).
  acl_keeper_actor acl;
  /// Told the domain and domain-server keys, and the addresses of the VIPs
  /// of app "webrouter" (what "webrouter" typed domains answer) whenever
  /// they change.
  dns_responder_actor dns;
  /// The leader election and publishers; told every lease change and the
  /// key families it reads (interfaces.hpp, leader_actor).
  leader_actor leader;
  /// The VIP engine's workers (null in tests without a kernel side). The
  /// link worker is told, on every renewal, the whole seconds left before
  /// the local deadline: the VIP addresses' valid lifetime (kernel-side
  /// fencing). When the first full read is applied, both are told the
  /// addresses of every VIP key and the node's own (port-only VIPs): what
  /// a previous run left for other addresses (VIP keys deleted while
  /// networkd was down) is removed. The NAT manager also gets the
  /// nat_audit_s knob.
  link_worker_actor link;
  nat_manager_actor nat;
  std::string node_ip;
  /// New keys of a family past this many are ignored (counted, logged).
  size_t max_keys_per_family = config::max_keys_per_family;
  /// Log level to return to when the log_level knob is deleted.
  std::string log_level = "info";
  std::chrono::milliseconds restart_backoff_min{100};
  std::chrono::milliseconds restart_backoff_max{30000};
};

/// The key prefixes of the contract that the supervisor watches.
std::vector<std::string> default_prefixes();

/// What one watch delivered, as raw events (runs on the watcher's thread:
/// it only copies; the supervisor classifies and parses each key once).
key_batch to_key_batch(const std::string& prefix, const etcd::watch_batch& b);

struct child_entry {
  vip_holder_actor handle;
  config::vip_config config; ///< last good config, re-sent on restart
  std::string last_event;    ///< what was last sent to it, for crash logs
  uint64_t restarts = 0;
  bool restart_pending = false;
};

struct rejected_entry {
  config::family fam = config::family::unknown;
  std::string code;
  std::string reason;
  int64_t revision = 0;
};

struct supervisor_state {
  static inline const char* name = "supervisor";
  /// A watch may reconnect for this long before the node is not ready.
  static constexpr std::chrono::milliseconds watch_grace{1000};

  supervisor_config cfg;
  session_worker_actor worker;
  lease_tracker lease;
  std::string lease_state = "none"; ///< none, granting, alive, lost
  std::string lease_error;
  uint64_t keepalive_failures = 0;
  bool keepalive_in_flight = false;
  bool shutting_down = false;

  std::vector<std::unique_ptr<etcd::watcher>> watchers;
  std::map<std::string, watch_report> watches; ///< by prefix
  std::set<std::string> synced;                ///< prefixes with a snapshot
  /// Watches not in phase "watching", by prefix: since when.
  std::map<std::string, std::chrono::steady_clock::time_point> stalled;

  std::map<std::string, child_entry> children; ///< by full VIP key
  /// Holders of deleted keys still releasing, by key. A key put again
  /// meanwhile gets its new holder once the old one is done.
  std::map<std::string, vip_holder_actor> retiring;
  std::map<std::string, rejected_entry> rejected; ///< by full key
  std::map<std::string, config::knob> knobs;      ///< the ones set in etcd
  /// Every knob in force (knobs resolved against the defaults).
  config::knob_values knob_values = config::default_knobs();
  std::map<std::string, int64_t> family_keys; ///< family → live keys
  /// family → new keys ignored since the family was at its limit
  std::map<std::string, uint64_t> over_limit;
  std::vector<std::string> webrouter_ips; ///< last sent to cfg.dns
  /// The spreading keys: "app/proc" → instance → VIP → used.
  std::map<std::string, std::map<int64_t, std::map<std::string, bool>>> spread;
  /// Groups whose counts changed since they were last sent; sent at most
  /// every 50 ms (a cold start changes thousands of keys).
  std::set<std::string> spread_dirty;
  bool spread_flush_scheduled = false;

  uint64_t events = 0;
  uint64_t restarts = 0;

  /// Every watched prefix has had its first full read applied.
  bool synced_all() const;
  /// Why this node must not be counted on, or "" when it may: no first
  /// full read yet, no live lease (lost, expired, not granted), or a watch
  /// out of "watching" for longer than watch_grace. Pure in `now`.
  std::string not_ready_reason(std::chrono::steady_clock::time_point now) const;
  /// Records a rejection; true when it is new or its reason changed (log it).
  bool reject(const keys::common& c, int64_t revision);
  /// Forgets a rejection of this key (a good value or a delete arrived).
  void accept(const std::string& key);
  std::chrono::milliseconds backoff(uint64_t restarts) const;
  std::string render(const std::vector<std::string>& child_states,
                     std::chrono::steady_clock::time_point now) const;
  std::string metrics(std::chrono::steady_clock::time_point now) const;
};

using supervisor_pointer = supervisor_actor::stateful_pointer<supervisor_state>;

supervisor_actor::behavior_type supervisor(supervisor_pointer self,
                                           supervisor_config cfg);

/// Blocking etcd lease calls on a detached actor.
session_worker_actor::behavior_type
session_worker(session_worker_actor::pointer self,
               std::shared_ptr<etcd::client> client);

} // namespace networkd
