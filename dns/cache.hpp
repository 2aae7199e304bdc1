// SPDX-License-Identifier: MIT
// Cache of forwarded answers, shared by all worker threads. Entries are
// immutable and handed out as shared pointers, so a shard's mutex is held
// only for the map lookup (never while building an answer or doing I/O).
#pragma once

#include <atomic>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace networkd::dns {

struct cache_options {
  size_t capacity = 20000;  ///< entries in total (split over the shards)
  size_t shards = 16;       ///< independent locks; 1 gives an exact LRU
  uint32_t min_ttl = 0;     ///< upstream TTLs are raised to this...
  uint32_t max_ttl = 86400; ///< ...and lowered to this
  uint32_t max_negative_ttl = 3600; ///< cap for NXDOMAIN / NODATA (RFC 2308)
  uint32_t failure_ttl = 2;         ///< how long a SERVFAIL is remembered
  /// Serve-stale (RFC 8767): expired entries are kept (until evicted) this
  /// long past their expiry for find_stale(); 0 = expired entries go at
  /// once. The server turns it on (knob dns_serve_stale_s).
  uint32_t serve_stale_s = 0;
};

/// One stored upstream answer, ready to be copied out: the response wire
/// without OPT, ID 0, question lower-cased, TTLs already capped. The name,
/// the wire and the TTL offsets share one allocation.
class cache_entry {
public:
  cache_entry(std::string_view lower_wire_name, const uint8_t* body,
              size_t body_size, const std::vector<uint16_t>& ttl_offsets);

  uint64_t stored_ms = 0;
  uint64_t expires_ms = 0; ///< stored_ms + lifetime
  uint16_t rcode = 0;
  bool negative = false; ///< NXDOMAIN or NODATA
  bool failure = false;  ///< synthesised SERVFAIL
  uint32_t ttl() const {
    return static_cast<uint32_t>((expires_ms - stored_ms) / 1000);
  }
  /// Set by the first hit in the last 10% of the lifetime: that hit asks
  /// for a background refresh (prefetch), later ones do not.
  mutable std::atomic<bool> prefetch_claimed{false};
  /// True when a hit at now_ms is in the last 10% of the lifetime.
  bool in_prefetch_window(uint64_t now_ms) const {
    auto life = expires_ms - stored_ms;
    return !failure && life > 0 && now_ms < expires_ms
           && (expires_ms - now_ms) * 10 <= life;
  }

  /// Lower-case wire qname.
  std::string_view name() const {
    return {reinterpret_cast<const char*>(data_.get()) + names_at(),
            name_size_};
  }
  const uint8_t* body() const { return data_.get() + body_at(); }
  size_t body_size() const { return body_size_; }
  /// Where each RR's TTL sits in body().
  size_t ttl_count() const { return ttl_count_; }
  uint16_t ttl_offset(size_t i) const {
    uint16_t off;
    std::memcpy(&off, data_.get() + 2 * i, 2);
    return off;
  }

private:
  // data_: ttl offsets (2 bytes each), body, name.
  size_t body_at() const { return 2 * size_t{ttl_count_}; }
  size_t names_at() const { return body_at() + body_size_; }
  std::unique_ptr<uint8_t[]> data_;
  uint16_t ttl_count_ = 0;
  uint16_t body_size_ = 0;
  uint16_t name_size_ = 0;
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
                   uint16_t qclass, uint64_t now_ms, const cache_options& opts);

class cache {
public:
  explicit cache(cache_options opts = {});
  cache(const cache&) = delete;
  cache& operator=(const cache&) = delete;

  /// The live entry for key (and marks it recently used), or nullptr.
  std::shared_ptr<const cache_entry> find(std::string_view key,
                                          uint64_t now_ms);

  /// The entry for key when it is live or at most serve_stale_s past its
  /// expiry, and not a failure entry; else nullptr. What an upstream
  /// failure falls back on. Does not count as a hit.
  std::shared_ptr<const cache_entry> find_fallback(std::string_view key,
                                                   uint64_t now_ms);

  /// The entry kept for key in whatever state (live, expired, failure),
  /// or nullptr. Neither a hit nor a miss, and the LRU order stays: what
  /// the admin view shows.
  std::shared_ptr<const cache_entry> peek(std::string_view key);
  /// Changes serve_stale_s (0: off). Thread-safe.
  void set_serve_stale(uint32_t seconds);

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

  /// The options in force (a copy: tune() may change them meanwhile).
  cache_options options() const;

  /// Changes the capacity (0: nothing is cached; a smaller one evicts the
  /// least recently used entries at once) and the TTL limits of entries
  /// made from now on. The shard count stays. Thread-safe.
  void tune(size_t capacity, uint32_t min_ttl, uint32_t max_ttl,
            uint32_t max_negative_ttl);

private:
  /// One cached key: its place in the LRU list, the entry and the key's
  /// bytes, in one allocation (node::make).
  struct node {
    node* prev = nullptr;
    node* next = nullptr;
    std::shared_ptr<const cache_entry> entry;
    uint16_t key_size = 0;
    std::string_view key() const {
      return {reinterpret_cast<const char*>(this + 1), key_size};
    }
    static node* make(std::string_view key,
                      std::shared_ptr<const cache_entry> entry);
    static void destroy(node* n);
  };
  struct shard {
    mutable std::mutex mtx;
    node* front = nullptr; ///< most recently used
    node* back = nullptr;  ///< least recently used
    /// Keys point into the nodes.
    std::unordered_map<std::string_view, node*> index;
    uint64_t hits = 0;
    uint64_t misses = 0;
    uint64_t evictions = 0;
    uint64_t inserts = 0;
    shard() = default;
    shard(const shard&) = delete;
    shard& operator=(const shard&) = delete;
    ~shard() { clear(); }
    void unlink(node* n);
    void push_front(node* n);
    /// Unlinks, unindexes and frees n.
    void erase(node* n);
    void clear();
  };
  shard& shard_for(std::string_view key);

  static size_t per_shard(size_t capacity, size_t shards);

  mutable std::mutex opts_mtx_;
  cache_options opts_;
  std::atomic<size_t> per_shard_{0};  ///< 0: caching is off
  std::atomic<uint64_t> stale_ms_{0}; ///< serve_stale_s in ms
  std::vector<std::unique_ptr<shard>> shards_;
};

} // namespace networkd::dns
