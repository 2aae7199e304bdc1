// SPDX-License-Identifier: MIT
// Cache of forwarded answers, shared by all worker threads. Entries are
// immutable and handed out as shared pointers, so a shard's mutex is held
// only for the map lookup (never while building an answer or doing I/O).
#pragma once

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace networkd::dns {

struct cache_options {
  size_t capacity = 20000;       ///< entries in total (split over the shards)
  size_t shards = 16;            ///< independent locks; 1 gives an exact LRU
  uint32_t min_ttl = 0;          ///< upstream TTLs are raised to this...
  uint32_t max_ttl = 86400;      ///< ...and lowered to this
  uint32_t max_negative_ttl = 3600; ///< cap for NXDOMAIN / NODATA (RFC 2308)
  uint32_t failure_ttl = 2;      ///< how long a SERVFAIL is remembered
};

/// One stored upstream answer, ready to be copied out: the response wire
/// without OPT, ID 0, question lower-cased, TTLs already capped.
struct cache_entry {
  std::string name;                ///< lower-case wire qname
  std::vector<uint8_t> body;
  std::vector<uint16_t> ttl_offsets; ///< where each RR's TTL sits in body
  uint64_t stored_ms = 0;
  uint64_t expires_ms = 0;          ///< stored_ms + lifetime
  uint16_t rcode = 0;
  bool negative = false;            ///< NXDOMAIN or NODATA
  bool failure = false;             ///< synthesised SERVFAIL
  uint32_t ttl() const {
    return static_cast<uint32_t>((expires_ms - stored_ms) / 1000);
  }
};

/// The cache key: lower-case wire name, type, class and the DO/CD bits.
std::string cache_key(std::string_view lower_wire_name, uint16_t qtype,
                      uint16_t qclass, bool dnssec_ok, bool checking_disabled);

/// Room for any cache key (a wire name is at most 255 bytes).
constexpr size_t max_cache_key_size = 255 + 5;

/// The same key written into `buf` (max_cache_key_size bytes), for the
/// query path, which must not allocate.
std::string_view cache_key(char* buf, std::string_view lower_wire_name,
                           uint16_t qtype, uint16_t qclass, bool dnssec_ok,
                           bool checking_disabled);

/// Builds an entry from an upstream response to (name, qtype, qclass), or
/// nullptr when the response is malformed or answers another question. The
/// lifetime follows the smallest capped TTL; negative answers use
/// min(SOA TTL, SOA MINIMUM) and get lifetime 0 without an SOA; answers with
/// an rcode other than NOERROR/NXDOMAIN become failures.
std::shared_ptr<const cache_entry>
make_cache_entry(std::string_view lower_wire_name, uint16_t qtype,
                 uint16_t qclass, const uint8_t* wire, size_t len,
                 uint64_t now_ms, const cache_options& opts);

/// A SERVFAIL entry for a question whose upstreams all failed.
std::shared_ptr<const cache_entry>
make_failure_entry(std::string_view lower_wire_name, uint16_t qtype,
                   uint16_t qclass, uint64_t now_ms,
                   const cache_options& opts);

class cache {
public:
  explicit cache(cache_options opts = {});
  cache(const cache&) = delete;
  cache& operator=(const cache&) = delete;

  /// The live entry for key (and marks it recently used), or nullptr.
  std::shared_ptr<const cache_entry> find(std::string_view key,
                                          uint64_t now_ms);

  /// Stores (or replaces) an entry; entries with lifetime 0 are not kept.
  /// Evicts the least recently used entries of the shard when full.
  void put(std::string_view key, std::shared_ptr<const cache_entry> entry);

  /// Drops every entry whose name satisfies pred (e.g. names that just
  /// became local). Returns how many were dropped.
  size_t drop_if(const std::function<bool(std::string_view)>& pred);

  void clear();

  struct counters {
    size_t size = 0;
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
    uint64_t inserts = 0;
  };
  counters stats() const;

  const cache_options& options() const { return opts_; }

private:
  struct node {
    std::string key;
    std::shared_ptr<const cache_entry> entry;
  };
  struct shard {
    mutable std::mutex mtx;
    std::list<node> lru; // front = most recently used
    /// Keys point into the list nodes' strings (list nodes never move).
    std::unordered_map<std::string_view, std::list<node>::iterator> index;
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
    uint64_t inserts = 0;
  };
  shard& shard_for(std::string_view key);

  cache_options opts_;
  size_t per_shard_;
  std::vector<std::unique_ptr<shard>> shards_;
};

} // namespace networkd::dns
