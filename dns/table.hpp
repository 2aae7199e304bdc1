// SPDX-License-Identifier: MIT
// The record table: an immutable snapshot of every local name and of the
// upstream choice, built from etcd domains, the hosts file, dynamic names
// and the resolv.conf upstreams. Worker threads read it without locks;
// the dns responder builds a new one and publishes it.
//
// Matching (documented contract):
// - An exact name wins over any wildcard.
// - Otherwise the longest wildcard suffix wins. A wildcard "*.lain" answers
//   "lain" itself and every name below it at any depth (as dnsmasq's
//   address=/lain/ and the old server did).
// - Between sources for the same exact name the first one present wins, in
//   this order: dynamic names > etcd exact domains > hosts file. Sources are
//   not merged for one name. Wildcards come only from etcd.
// - PTR: every address of an exact local name (any source) gets a reverse
//   entry naming all exact names with that address, in the order above.
// - Per-domain upstream servers: the longest matching domain suffix wins
//   (the domain itself included); otherwise the default upstreams.
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "dns/hosts.hpp"
#include "dns/wire.hpp"
#include "net/cluster/config.hpp"

namespace networkd::dns {

/// Everything a table is built from.
struct table_input {
  std::vector<config::domain_config> domains; ///< /lain/config/domains/*
  std::string node_ip;                        ///< for type "node"
  std::vector<std::string> webrouter_ips;     ///< for type "webrouter"
  std::vector<hosts_entry> hosts;             ///< parsed hosts file
  /// Names set by other components (swarm.lain, ...): name -> addresses.
  std::map<std::string, std::vector<std::string>> dynamic_names;
  uint32_t ttl = 60; ///< TTL of local answers (also the SOA MINIMUM)
  std::vector<config::domain_servers_config> domain_servers;
  std::vector<config::upstream> upstreams; ///< default, in resolv.conf order
};

/// Where a local name came from.
enum class name_source : uint8_t { dynamic, domain, hosts, wildcard, reverse };
const char* to_string(name_source s);

/// A libknot rdataset owned by the table (move-only).
class rdata_set {
public:
  rdata_set() { knot_rdataset_init(&rrs_); }
  ~rdata_set() { knot_rdataset_clear(&rrs_, nullptr); }
  rdata_set(rdata_set&& other) noexcept : rrs_(other.rrs_) {
    knot_rdataset_init(&other.rrs_);
  }
  rdata_set& operator=(rdata_set&&) = delete;
  rdata_set(const rdata_set&) = delete;
  /// Adds one rdata (duplicates are ignored by libknot).
  bool add(const uint8_t* data, uint16_t len);
  const knot_rdataset_t& get() const { return rrs_; }
  uint16_t count() const { return rrs_.count; }

private:
  knot_rdataset_t rrs_;
};

/// One local name with its prebuilt records.
struct local_name {
  std::string owner; ///< lower wire name: the name, or the wildcard suffix
  name_source source = name_source::domain;
  std::vector<ip_address> addresses; ///< in input order
  rdata_set a;
  rdata_set aaaa;
  rdata_set ptr;
};

class table {
public:
  /// Builds a snapshot. Bad addresses or names are skipped and described in
  /// *warnings when given.
  static std::shared_ptr<const table>
  build(const table_input& in, std::vector<std::string>* warnings = nullptr);

  /// The local entry answering `lower_wire` (exact, else the longest
  /// wildcard suffix), or nullptr.
  const local_name* find(std::string_view lower_wire) const;
  bool is_local(std::string_view lower_wire) const {
    return find(lower_wire) != nullptr;
  }

  /// The upstreams for a name: per-domain servers (longest suffix), else
  /// the default list. Not yet filtered against our own addresses.
  const std::vector<config::upstream>&
  upstreams_for(std::string_view lower_wire) const;

  uint32_t ttl() const { return ttl_; }
  uint32_t serial() const { return serial_; }
  size_t size() const { return names_.size(); }
  /// What the table keeps of its input: TTL, domain servers and default
  /// upstreams. Names are not kept (only their records are), so that a
  /// table costs no copy of the responder's data.
  table_input input() const;

  /// The text of /v1/dns/config: `host-record=name,ip,...` per exact name
  /// (etcd and dynamic), `address=/suffix/ip` per wildcard address,
  /// `server=/domain/ip#port` per domain server, `nameserver ip#port` per
  /// default upstream. Sorted by name within each group.
  std::string config_text() const;

private:
  table() = default;
  local_name& add_name(std::string owner, name_source src);

  std::vector<config::upstream> upstreams_; ///< default, in order
  uint32_t ttl_ = 60;
  uint32_t serial_ = 1;
  std::deque<local_name> names_;
  std::unordered_map<std::string_view, const local_name*> exact_;
  std::unordered_map<std::string_view, const local_name*> wildcard_;
  std::unordered_map<std::string, std::vector<config::upstream>> servers_;
};

} // namespace networkd::dns
