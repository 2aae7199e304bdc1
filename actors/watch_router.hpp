// SPDX-License-Identifier: MIT
// The watch router: one etcd watch per watched prefix. The watcher threads
// only hand raw events over; here each key is classified and parsed once
// and sent typed to the actors that take its family. The knobs set are
// resolved against the defaults and told to every config listener.
#pragma once

#include <caf/fwd.hpp>
#include <caf/stateful_actor.hpp>

#include <chrono>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "net/etcd/etcd.hpp"

namespace networkd {

struct watch_router_config {
  /// etcd client; null runs without watches (tests then feed key_batch
  /// messages directly, and the router counts as synced).
  std::shared_ptr<etcd::client> client;
  /// Key prefixes to watch, one watcher each.
  std::vector<std::string> prefixes;
  /// Told the knobs in force (first when the knobs are first read, then on
  /// every change) and when the first full read is applied.
  std::vector<config_listener_actor> listeners;
  /// Takes the VIP, lock and spreading keys (a listener too).
  vip_registry_actor registry;
  /// Told the ACL keys (null without -acl).
  acl_keeper_actor acl;
  /// Told the domain and domain-server keys.
  dns_responder_actor dns;
  /// The leader election and publishers: the key families it reads
  /// (interfaces.hpp, leader_actor).
  leader_actor leader;
  /// Told the nat_audit_s knob.
  nat_manager_actor nat;
  /// New keys of a family past this many are ignored (counted, logged).
  size_t max_keys_per_family = config::max_keys_per_family;
  /// Log level to return to when the log_level knob is deleted.
  std::string log_level = "info";
};

/// The key prefixes of the contract that the router watches.
std::vector<std::string> default_prefixes();

/// What one watch delivered, as raw events (runs on the watcher's thread:
/// it only copies; the router classifies and parses each key once).
key_batch to_key_batch(const std::string& prefix, const etcd::watch_batch& b);

struct rejected_entry {
  config::family fam = config::family::unknown;
  std::string code;
  std::string reason;
  int64_t revision = 0;
};

struct watch_router_state {
  static inline const char* name = "watch-router";
  /// A watch may reconnect for this long before the node is not ready.
  static constexpr std::chrono::milliseconds watch_grace{1000};

  watch_router_config cfg;
  bool shutting_down = false;

  std::vector<std::unique_ptr<etcd::watcher>> watchers;
  std::map<std::string, watch_report> watches; ///< by prefix
  std::set<std::string> synced;                ///< prefixes with a snapshot
  /// Watches not in phase "watching", by prefix: since when.
  std::map<std::string, std::chrono::steady_clock::time_point> stalled;

  /// family → its live keys (what the per-family limit counts).
  std::map<std::string, std::set<std::string>> live;
  /// VIP keys whose last value was good (the registry holds them).
  std::set<std::string> good_vips;
  std::map<std::string, rejected_entry> rejected; ///< by full key
  std::map<std::string, config::knob> knobs;      ///< the ones set in etcd
  /// Every knob in force (knobs resolved against the defaults).
  config::knob_values knob_values = config::default_knobs();
  /// family → new keys ignored since the family was at its limit
  std::map<std::string, uint64_t> over_limit;
  uint64_t events = 0;

  /// Every watched prefix has had its first full read applied.
  bool synced_all() const;
  /// Why the watches keep this node from being counted on, or "": no
  /// first full read yet, or a watch out of "watching" for longer than
  /// watch_grace. Pure in `now`.
  std::string not_ready_reason(std::chrono::steady_clock::time_point now) const;
  /// Counts one change into the live keys of its family. A new key in a
  /// family already at its limit is not counted and false is returned:
  /// the change is dropped (the caller logs the first of a family).
  bool count_key(const keys::common& c);
  /// Records a rejection; true when it is new or its reason changed (log it).
  bool reject(const keys::common& c, int64_t revision);
  /// Forgets a rejection of this key (a good value or a delete arrived).
  void accept(const std::string& key);
  std::string render() const;
  /// The rejected VIP keys as a JSON array.
  std::string rejected_vips() const;
  std::string metrics() const;
};

using watch_router_pointer
  = watch_router_actor::stateful_pointer<watch_router_state>;

watch_router_actor::behavior_type watch_router(watch_router_pointer self,
                                               watch_router_config cfg);

} // namespace networkd
