// SPDX-License-Identifier: MIT
// The record table: an immutable snapshot of every local name and of the
// upstream choice, built from etcd domains, the hosts file, dynamic names
// and the resolv.conf upstreams. Worker threads read it without locks;
// the dns responder builds a new one and publishes it: for a changed etcd
// domain a copy that shares all but the changed names (table::update),
// else a whole new one.
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

#include <array>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
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
  rdata_set& operator=(rdata_set&& other) noexcept {
    if (this != &other) {
      knot_rdataset_clear(&rrs_, nullptr);
      rrs_ = other.rrs_;
      knot_rdataset_init(&other.rrs_);
    }
    return *this;
  }
  rdata_set(const rdata_set&) = delete;
  /// Adds one rdata (duplicates are ignored by libknot).
  bool add(const uint8_t* data, uint16_t len);
  /// Removes one rdata when present.
  void remove(const uint8_t* data, uint16_t len);
  /// A copy of `other`'s rdata.
  static rdata_set copy_of(const rdata_set& other);
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

/// Local names by lower wire owner, immutable once published: 64 shards by
/// hash, each an open-addressing index over shared names. A table made by
/// table::update() shares every shard but the ones its change touched, so
/// one changed name costs the copy of one shard (a few dozen pointers),
/// not of the table.
class name_index {
public:
  using name_ptr = std::shared_ptr<const local_name>;
  static constexpr unsigned shard_bits = 6;
  static constexpr size_t shard_count = size_t{1} << shard_bits;

  name_index();
  static uint64_t hash(std::string_view wire) {
    return std::hash<std::string_view>{}(wire);
  }
  const local_name* find(std::string_view wire) const {
    auto h = hash(wire);
    auto& v = views_[h & (shard_count - 1)];
    if (v.slots == nullptr)
      return nullptr;
    for (size_t i = (h >> shard_bits) & v.mask;; i = (i + 1) & v.mask) {
      auto& s = v.slots[i];
      if (s.name == nullptr)
        return nullptr;
      if (s.hash == h && s.name->owner == wire)
        return s.name;
    }
  }
  /// Puts `n` under `wire` (n null: removes it), copying one shard.
  void set(std::string_view wire, name_ptr n);
  /// Every name (any order) to f.
  template <class F>
  void each(F&& f) const {
    for (auto& s : shards_)
      for (auto& n : s->names)
        f(*n);
  }
  /// Fills the index from names with distinct owners (a full build).
  void assign(std::vector<name_ptr> names);

private:
  struct slot {
    uint64_t hash = 0;
    const local_name* name = nullptr;
  };
  struct shard {
    std::vector<name_ptr> names;
    std::vector<slot> slots; ///< power of two, at most 2/3 full
    void index();
  };
  /// Each shard's slots, kept here so that a lookup goes from the table
  /// straight to them (one cache miss fewer than through the shard).
  struct view {
    const slot* slots = nullptr;
    size_t mask = 0;
  };
  void set_view(size_t i);
  std::array<std::shared_ptr<const shard>, shard_count> shards_;
  std::array<view, shard_count> views_{};
};

class table {
public:
  /// Builds a snapshot. Bad addresses or names are skipped and described in
  /// *warnings when given.
  static std::shared_ptr<const table>
  build(const table_input& in, std::vector<std::string>* warnings = nullptr);

  /// The table `prev` with one etcd domain changed from `before` to `after`
  /// (null: absent; both given: the same name), equal to what build() would
  /// give for the changed input, and sharing all it can with `prev`.
  /// nullptr when the change reaches beyond that name and the reverse
  /// names of its addresses (another source has the same name, a bad name
  /// or address, a name under in-addr.arpa/ip6.arpa): then build the whole
  /// table. `node_ip` and `webrouter_ips` as in the input `prev` was built
  /// from.
  static std::shared_ptr<const table>
  update(const table& prev, const config::domain_config* before,
         const config::domain_config* after, const std::string& node_ip,
         const std::vector<std::string>& webrouter_ips);

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
  size_t size() const { return size_; }
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

  /// What update() leaves as it is: the upstreams and the owners that more
  /// than one input named (update() gives those to build()).
  struct fixed {
    std::vector<config::upstream> upstreams; ///< default, in order
    std::unordered_map<std::string, std::vector<config::upstream>> servers;
    std::unordered_set<std::string> contested;
  };
  std::shared_ptr<const fixed> fixed_;
  uint32_t ttl_ = 60;
  uint32_t serial_ = 1;
  size_t size_ = 0;
  size_t wildcards_ = 0;
  name_index exact_;
  name_index wildcard_;
};

} // namespace networkd::dns
