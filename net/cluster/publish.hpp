// SPDX-License-Identifier: MIT
// What the elected leader publishes, computed from scratch from what it
// watches: the keys it must write (with their values) and the keys it must
// delete. No CAF and no I/O here; actors/leader.cpp applies what differs
// from etcd as one transaction guarded by the leadership (see
// transactions()).
//
//   -swarm      /lain/config/domains/swarm.lain    {"ips":[ip],"type":""}
//   -deployd    /lain/config/domains/deployd.lain  {"ips":[ip],"type":""}
//   -webrouter  /lain/config/domains/webrouter.lain
//                 {"ips":[],"type":"webrouter"} while app webrouter has
//                 address VIPs, else the nodes serving webrouter/worker;
//               /lain/config/tinydns_fqdns/webrouter.lain
//                 ["+webrouter.lain:IP:300", ...]
//               /lain/config/tinydns_fqdns/{lain, cluster domain}
//                 ["+*.D:IP:300", ".D:IP:a:300", ...]
//   -tinydns    /lain/config/domain_servers/{lain, cluster domain}
//                 {"servers":["ip#port", ...]}
//               /lain/config/tinydns_fqdns/{app}.lain
//                 ["+{app}.lain:VIP:300", ...] per app with address VIPs
//   -streamrouter /lain/config/vips/{vip} for every pool VIP: app
//                 streamrouter, proc worker, each port src = dest, tcp;
//                 streamrouter VIPs no longer in the pool are deleted.
//
// The publishers read the VIPs as the plan leaves them (the streamrouter's
// pool VIPs included), not as last seen in etcd: when the pool address
// moves, the app keeps its tinydns line, now with the new address, and the
// key is never deleted on the way.
//
// Node lists come from /lain/networkd/apps/{app}/worker/{ip}:{port} (the
// nodes serving the app's port-only VIP). Lists are sorted so that equal
// inputs give byte-equal values (writes happen only on change).
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "net/cluster/config.hpp"

namespace networkd::publish {

struct inputs {
  std::string cluster_domain; ///< -domain ("" or "lain": only lain)
  bool swarm = false;
  bool deployd = false;
  bool webrouter = false;
  bool tinydns = false;
  bool streamrouter = false;
  std::string swarm_ip;   ///< "" when the key is absent
  std::string deployd_ip; ///< "" when the key is absent
  /// /lain/networkd/apps/... keys by full key.
  std::map<std::string, config::app_endpoint> endpoints;
  /// Valid /lain/config/vips/* values by full key.
  std::map<std::string, config::vip_config> vips;
  /// The streamrouter pool (empty when the key is absent).
  std::vector<std::string> pool;
  /// The streamrouter's ports from lainlet; nullopt until first known.
  std::optional<std::vector<uint16_t>> ports;
};

/// Key → value to write, or nullopt: the key must not exist.
using plan = std::map<std::string, std::optional<std::string>>;

/// `current`: the values in etcd of the keys a leader may write, by full
/// key (as rendered by the functions below, or raw text for tinydns_fqdns).
/// It decides which {app}.lain fqdns keys are stale.
plan desired(const inputs& in,
             const std::map<std::string, std::string>& current);

/// The entries of `wanted` that etcd does not hold yet: values that differ
/// from `current` (or are missing there), and deletes of keys it has.
plan changes(const plan& wanted,
             const std::map<std::string, std::string>& current);

/// etcd refuses a txn with more operations than its --max-txn-ops (128 by
/// default); networkd assumes the default. Against a cluster run with a
/// lower limit the leader's larger plans fail (its last_error says "too
/// many operations") and are tried again every second.
inline constexpr size_t max_txn_ops = 128;

/// The transactions that apply `changes`, each of at most max_ops
/// operations (0 counts as 1). One transaction when they fit, so watchers
/// never see half a plan. A larger plan (a new leader's first one in a big
/// cluster) is cut deterministically: the writes first, then the deletes,
/// each in key order, so that a watcher between two parts may see an old
/// key next to a new one but never a name missing.
std::vector<plan> transactions(const plan& changes,
                               size_t max_ops = max_txn_ops);

/// {"ips":[...],"type":"..."} with type "" for fixed.
std::string render_domain(const std::vector<std::string>& ips,
                          config::domain_type type);
/// {"servers":["ip#port",...]}.
std::string render_servers(const std::vector<config::upstream>& servers);
/// The VIP JSON in the original's format (ports as strings).
std::string render_vip(const config::vip_config& v);
/// A JSON list of strings.
std::string render_lines(const std::vector<std::string>& lines);

/// True when `text` is a JSON list of "+{app}.lain:IPv4:300" lines, as the
/// tinydns publisher writes for `app` (its key may then be deleted).
bool is_app_lines(const std::string& app, const std::string& text);

} // namespace networkd::publish
