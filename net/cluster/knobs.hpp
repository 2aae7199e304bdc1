// SPDX-License-Identifier: MIT
// The runtime tuning knobs under /lain/networkd/config/{name}: one table
// (knobs.cpp) gives each knob its type, range, default and the field of
// knob_values it sets, i.e. its consumer. Pure: no I/O, no CAF.
//
// The supervisor keeps the knobs set in etcd, resolves them into a
// knob_values (defaults for the rest) and hands it to every consumer when
// it starts and whenever a knob is set or deleted; each consumer reads its
// own slice. A deleted knob is simply absent, so its default returns.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace networkd::config {

/// A runtime tuning knob as parsed from etcd. Values are plain text or JSON
/// scalars ("5", 5, "\"debug\"").
struct knob {
  std::string name;
  int64_t number = 0; ///< numeric knobs
  std::string text;   ///< text knobs (log_level)
};

/// The session lease (supervisor).
struct lease_knobs {
  int64_t ttl_s = 0;                           ///< lease_ttl, next grant
  std::chrono::milliseconds fencing_margin{0}; ///< fencing_margin_ms
  bool operator==(const lease_knobs& o) const {
    return ttl_s == o.ttl_s && fencing_margin == o.fencing_margin;
  }
};

/// Gratuitous ARP of the VIP holders.
struct arp_knobs {
  int64_t count = 0;
  std::chrono::milliseconds interval{0};
  std::chrono::seconds refresh{0}; ///< 0: off
  bool operator==(const arp_knobs& o) const {
    return count == o.count && interval == o.interval && refresh == o.refresh;
  }
};

/// Health probes of local containers (health hub and its trackers).
struct probe_knobs {
  std::chrono::milliseconds interval{0};
  std::chrono::milliseconds timeout{0};
  int64_t failures = 0;
  bool operator==(const probe_knobs& o) const {
    return interval == o.interval && timeout == o.timeout
           && failures == o.failures;
  }
  bool operator!=(const probe_knobs& o) const { return !(*this == o); }
};

/// The DNS responder: TTL of cluster answers, the forwarding cache and the
/// upstream timeout.
struct dns_knobs {
  uint32_t ttl = 0;
  uint64_t cache_size = 0; ///< 0: no cache
  uint32_t neg_ttl_max = 0;
  uint32_t min_ttl = 0;
  uint32_t max_ttl = 0;
  std::chrono::milliseconds upstream_timeout{0}; ///< per try
  uint32_t serve_stale_s = 0;                    ///< RFC 8767 window; 0: off
  uint32_t log_queries = 0; ///< query log lines per second; 0: off
  bool operator==(const dns_knobs& o) const {
    return ttl == o.ttl && cache_size == o.cache_size
           && neg_ttl_max == o.neg_ttl_max && min_ttl == o.min_ttl
           && max_ttl == o.max_ttl && upstream_timeout == o.upstream_timeout
           && serve_stale_s == o.serve_stale_s && log_queries == o.log_queries;
  }
  bool operator!=(const dns_knobs& o) const { return !(*this == o); }
};

/// Audit periods of the NAT and ACL chains (0: off).
struct audit_knobs {
  std::chrono::seconds nat{0};
  std::chrono::seconds acl{0};
  bool operator==(const audit_knobs& o) const {
    return nat == o.nat && acl == o.acl;
  }
};

/// Every knob's value in force: the ones set in etcd, defaults for the rest.
struct knob_values {
  std::string log_level; ///< empty: info, or debug with -verbose
  lease_knobs lease;
  arp_knobs arp;
  probe_knobs probe;
  dns_knobs dns;
  audit_knobs audit;
  bool operator==(const knob_values& o) const {
    return log_level == o.log_level && lease == o.lease && arp == o.arp
           && probe == o.probe && dns == o.dns && audit == o.audit;
  }
  bool operator!=(const knob_values& o) const { return !(*this == o); }
};

/// Describes one known knob: validation, docs, the admin state, and where
/// its value goes.
struct knob_spec {
  const char* name;
  bool numeric;
  int64_t min;
  int64_t max;
  const char* unit;
  const char* help;
  int64_t default_number = 0;    ///< default of a numeric knob
  const char* default_text = ""; ///< default of a text knob
  const char* choices = "";      ///< text knobs: allowed words, space-separated
  const char* consumer = "";     ///< who reads it (admin state, README)
  /// Stores a (validated) value into its slice of knob_values.
  void (*store)(knob_values&, const knob&) = nullptr;
};

/// All knobs networkd understands.
const std::vector<knob_spec>& known_knobs();

/// The spec of a known knob, or nullptr.
const knob_spec* find_knob(std::string_view name);

/// The values in force for the knobs `set` (by name); unknown names are
/// ignored, every other knob takes its default.
knob_values resolve_knobs(const std::map<std::string, knob>& set);

/// resolve_knobs({}): every default.
const knob_values& default_knobs();

} // namespace networkd::config
