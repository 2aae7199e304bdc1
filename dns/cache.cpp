// SPDX-License-Identifier: MIT
// Sharded LRU cache of upstream answers, with RFC 2308 negative caching.
#include "dns/cache.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <optional>

#include "dns/wire.hpp"

namespace networkd::dns {

namespace {

// The SOA's MINIMUM field, when the rdata holds two whole names and the
// five 32-bit fields after them.
std::optional<uint32_t> soa_minimum(const knot_rdata_t* rd) {
  const uint8_t* pos = rd->data;
  const uint8_t* end = rd->data + rd->len;
  for (int name = 0; name < 2; ++name) {
    int size = knot_dname_wire_check(pos, end, nullptr);
    if (size <= 0)
      return std::nullopt;
    pos += size;
  }
  if (end - pos < 20)
    return std::nullopt;
  return knot_wire_read_u32(pos + 16);
}

/// Offset just past the (possibly compressed) name at pos. The body was
/// written by libknot just before, so it is well formed; libknot has no call
/// that returns a compressed name's length on the wire.
size_t skip_name(const uint8_t* wire, size_t pos, size_t size) {
  while (pos < size) {
    uint8_t len = wire[pos];
    if (len == 0)
      return pos + 1;
    if ((len & 0xc0) == 0xc0)
      return pos + 2;
    pos += len + 1;
  }
  return size;
}

} // namespace

cache_entry::cache_entry(std::string_view lower_wire_name, const uint8_t* body,
                         size_t body_size,
                         const std::vector<uint16_t>& ttl_offsets)
    : ttl_count_(static_cast<uint16_t>(ttl_offsets.size())),
      body_size_(static_cast<uint16_t>(body_size)),
      name_size_(static_cast<uint16_t>(lower_wire_name.size())) {
  data_.reset(new uint8_t[names_at() + name_size_]);
  if (ttl_count_ > 0)
    std::memcpy(data_.get(), ttl_offsets.data(), body_at());
  if (body_size_ > 0)
    std::memcpy(data_.get() + body_at(), body, body_size_);
  if (name_size_ > 0)
    std::memcpy(data_.get() + names_at(), lower_wire_name.data(), name_size_);
}

std::string cache_key(std::string_view lower_wire_name, uint16_t qtype,
                      uint16_t qclass, bool dnssec_ok, bool checking_disabled) {
  std::string key;
  key.reserve(lower_wire_name.size() + 5);
  key.append(lower_wire_name);
  key.push_back(static_cast<char>(qtype >> 8));
  key.push_back(static_cast<char>(qtype & 0xff));
  key.push_back(static_cast<char>(qclass >> 8));
  key.push_back(static_cast<char>(qclass & 0xff));
  key.push_back(
    static_cast<char>((dnssec_ok ? 1 : 0) | (checking_disabled ? 2 : 0)));
  return key;
}

std::string_view cache_key(char* buf, std::string_view lower_wire_name,
                           uint16_t qtype, uint16_t qclass, bool dnssec_ok,
                           bool checking_disabled) {
  auto n = std::min(lower_wire_name.size(), max_cache_key_size - 5);
  std::memcpy(buf, lower_wire_name.data(), n);
  buf[n] = static_cast<char>(qtype >> 8);
  buf[n + 1] = static_cast<char>(qtype & 0xff);
  buf[n + 2] = static_cast<char>(qclass >> 8);
  buf[n + 3] = static_cast<char>(qclass & 0xff);
  buf[n + 4]
    = static_cast<char>((dnssec_ok ? 1 : 0) | (checking_disabled ? 2 : 0));
  return {buf, n + 5};
}

std::shared_ptr<const cache_entry>
make_cache_entry(std::string_view lower_wire_name, uint16_t qtype,
                 uint16_t qclass, const uint8_t* wire, size_t len,
                 uint64_t now_ms, const cache_options& opts) {
  if (wire == nullptr || len < KNOT_WIRE_HEADER_SIZE || len > 65535)
    return nullptr;
  std::vector<uint8_t> copy(wire, wire + len);
  pkt_ptr resp{knot_pkt_new(copy.data(), static_cast<uint16_t>(len), nullptr)};
  if (!resp)
    return nullptr;
  int ret = knot_pkt_parse(resp.get(), 0);
  if (ret != KNOT_EOK && ret != KNOT_ETRAIL)
    return nullptr;
  if (!knot_wire_get_qr(resp->wire) || knot_wire_get_opcode(resp->wire) != 0
      || knot_wire_get_qdcount(resp->wire) != 1)
    return nullptr;
  auto qn = knot_pkt_qname(resp.get());
  if (qn == nullptr || knot_dname_size(qn) != lower_wire_name.size()
      || std::memcmp(qn, lower_wire_name.data(), lower_wire_name.size()) != 0
      || knot_pkt_qtype(resp.get()) != qtype
      || knot_pkt_qclass(resp.get()) != qclass)
    return nullptr;
  uint16_t rcode = knot_wire_get_rcode(resp->wire);
  if (rcode != KNOT_RCODE_NOERROR && rcode != KNOT_RCODE_NXDOMAIN)
    return make_failure_entry(lower_wire_name, qtype, qclass, now_ms, opts);
  auto answers = knot_pkt_section(resp.get(), KNOT_ANSWER);
  auto authority = knot_pkt_section(resp.get(), KNOT_AUTHORITY);
  bool negative = rcode == KNOT_RCODE_NXDOMAIN || answers->count == 0;
  // Lifetime: positive answers live as long as their shortest capped TTL;
  // negative ones min(SOA TTL, SOA MINIMUM) (RFC 2308 section 5), and are
  // not kept at all without an SOA.
  uint32_t lifetime = std::numeric_limits<uint32_t>::max();
  if (negative) {
    lifetime = 0;
    for (uint16_t i = 0; i < authority->count; ++i) {
      auto rr = knot_pkt_rr(authority, i);
      if (rr->type == KNOT_RRTYPE_SOA && rr->rrs.count > 0) {
        // An upstream's SOA is not trusted to be whole: without its
        // MINIMUM field the answer is not cached.
        auto minimum = soa_minimum(rr->rrs.rdata);
        if (!minimum)
          break;
        lifetime = std::min(rr->ttl, *minimum);
        lifetime = std::min(lifetime, opts.max_negative_ttl);
        break;
      }
    }
  }
  // The body is built in a buffer kept by the thread (the forwarder's):
  // a fresh 64 KiB allocation per answer would only churn the heap.
  thread_local std::vector<uint8_t> scratch(65535);
  pkt_ptr body{knot_pkt_new(scratch.data(),
                            static_cast<uint16_t>(scratch.size()), nullptr)};
  if (!body)
    return nullptr;
  // Over a given buffer a packet starts as "parsed, full": empty it.
  knot_pkt_clear(body.get());
  auto lower = reinterpret_cast<const knot_dname_t*>(lower_wire_name.data());
  if (knot_pkt_put_question(body.get(), lower, qclass, qtype) != KNOT_EOK)
    return nullptr;
  knot_wire_set_flags1(body->wire, knot_wire_get_flags1(resp->wire));
  knot_wire_set_flags2(body->wire, knot_wire_get_flags2(resp->wire));
  knot_wire_clear_tc(body->wire);
  knot_wire_clear_aa(body->wire); // we are not authoritative for it
  knot_wire_set_id(body->wire, 0);
  std::vector<uint16_t> rr_starts;
  for (int s = KNOT_ANSWER; s <= KNOT_ADDITIONAL; ++s) {
    auto sec = knot_pkt_section(resp.get(), static_cast<knot_section_t>(s));
    if (knot_pkt_begin(body.get(), static_cast<knot_section_t>(s)) != KNOT_EOK)
      return nullptr;
    for (uint16_t i = 0; i < sec->count; ++i) {
      knot_rrset_t rr = *knot_pkt_rr(sec, i);
      if (rr.type == KNOT_RRTYPE_OPT || rr.type == KNOT_RRTYPE_TSIG)
        continue;
      uint32_t ttl = std::clamp(rr.ttl, opts.min_ttl, opts.max_ttl);
      if (negative)
        ttl = std::min(rr.ttl, lifetime);
      else
        lifetime = std::min(lifetime, ttl);
      rr.ttl = ttl;
      auto start = body->size;
      if (knot_pkt_put(body.get(), KNOT_COMPR_HINT_NONE, &rr, KNOT_PF_NOTRUNC)
          != KNOT_EOK)
        return nullptr;
      // Each parsed RR is its own rrset; remember where every RR starts.
      auto pos = start;
      for (uint16_t k = 0; k < rr.rrs.count && pos < body->size; ++k) {
        rr_starts.push_back(static_cast<uint16_t>(pos));
        pos = skip_name(body->wire, pos, body->size);
        if (pos + 10 > body->size)
          return nullptr;
        uint16_t rdlen = knot_wire_read_u16(body->wire + pos + 8);
        pos += 10 + rdlen;
      }
    }
  }
  if (lifetime == std::numeric_limits<uint32_t>::max())
    lifetime = opts.max_ttl; // NOERROR with answers: cannot happen
  for (auto& start : rr_starts)
    start = static_cast<uint16_t>(skip_name(body->wire, start, body->size) + 4);
  auto entry = std::make_shared<cache_entry>(lower_wire_name, body->wire,
                                             body->size, rr_starts);
  entry->stored_ms = now_ms;
  entry->expires_ms = now_ms + uint64_t{lifetime} * 1000;
  entry->rcode = rcode;
  entry->negative = negative;
  return entry;
}

std::shared_ptr<const cache_entry>
make_failure_entry(std::string_view lower_wire_name, uint16_t qtype,
                   uint16_t qclass, uint64_t now_ms,
                   const cache_options& opts) {
  pkt_ptr body{knot_pkt_new(nullptr, KNOT_WIRE_HEADER_SIZE + 260, nullptr)};
  auto lower = reinterpret_cast<const knot_dname_t*>(lower_wire_name.data());
  if (!body
      || knot_pkt_put_question(body.get(), lower, qclass, qtype) != KNOT_EOK)
    return nullptr;
  knot_wire_set_qr(body->wire);
  knot_wire_set_ra(body->wire);
  knot_wire_set_rcode(body->wire, KNOT_RCODE_SERVFAIL);
  auto entry = std::make_shared<cache_entry>(
    lower_wire_name, body->wire, body->size, std::vector<uint16_t>{});
  entry->stored_ms = now_ms;
  entry->expires_ms = now_ms + uint64_t{opts.failure_ttl} * 1000;
  entry->rcode = KNOT_RCODE_SERVFAIL;
  entry->failure = true;
  return entry;
}

cache::node* cache::node::make(std::string_view key,
                               std::shared_ptr<const cache_entry> entry) {
  void* mem = ::operator new(sizeof(node) + key.size());
  auto n = new (mem) node;
  n->entry = std::move(entry);
  n->key_size = static_cast<uint16_t>(key.size());
  std::memcpy(reinterpret_cast<char*>(n + 1), key.data(), key.size());
  return n;
}

void cache::node::destroy(node* n) {
  n->~node();
  ::operator delete(n);
}

void cache::shard::unlink(node* n) {
  (n->prev ? n->prev->next : front) = n->next;
  (n->next ? n->next->prev : back) = n->prev;
  n->prev = n->next = nullptr;
}

void cache::shard::push_front(node* n) {
  n->prev = nullptr;
  n->next = front;
  (front ? front->prev : back) = n;
  front = n;
}

void cache::shard::erase(node* n) {
  index.erase(n->key()); // before the node that holds the key
  unlink(n);
  node::destroy(n);
}

void cache::shard::clear() {
  index.clear();
  while (front != nullptr) {
    auto next = front->next;
    node::destroy(front);
    front = next;
  }
  back = nullptr;
}

cache::cache(cache_options opts) : opts_(opts) {
  if (opts_.shards == 0)
    opts_.shards = 1;
  if (opts_.capacity < opts_.shards)
    opts_.shards = std::max<size_t>(1, opts_.capacity);
  per_shard_ = per_shard(opts_.capacity, opts_.shards);
  stale_ms_ = uint64_t{opts_.serve_stale_s} * 1000;
  for (size_t i = 0; i < opts_.shards; ++i)
    shards_.push_back(std::make_unique<shard>());
}

size_t cache::per_shard(size_t capacity, size_t shards) {
  return (capacity + shards - 1) / shards;
}

cache_options cache::options() const {
  std::lock_guard<std::mutex> guard{opts_mtx_};
  return opts_;
}

void cache::tune(size_t capacity, uint32_t min_ttl, uint32_t max_ttl,
                 uint32_t max_negative_ttl) {
  size_t limit;
  {
    std::lock_guard<std::mutex> guard{opts_mtx_};
    opts_.capacity = capacity;
    opts_.min_ttl = min_ttl;
    opts_.max_ttl = max_ttl;
    opts_.max_negative_ttl = max_negative_ttl;
    limit = per_shard(capacity, shards_.size());
    per_shard_ = limit;
  }
  for (auto& sp : shards_) {
    std::lock_guard<std::mutex> guard{sp->mtx};
    while (sp->index.size() > limit) {
      sp->erase(sp->back);
      ++sp->evictions;
    }
  }
}

cache::shard& cache::shard_for(std::string_view key) {
  return *shards_[std::hash<std::string_view>{}(key) % shards_.size()];
}

std::shared_ptr<const cache_entry> cache::find(std::string_view key,
                                               uint64_t now_ms) {
  auto& s = shard_for(key);
  std::lock_guard<std::mutex> guard{s.mtx};
  auto i = s.index.find(key);
  if (i == s.index.end()) {
    ++s.misses;
    return nullptr;
  }
  auto n = i->second;
  if (n->entry->expires_ms <= now_ms) {
    // Kept for serve-stale while it may still be served (not failures).
    if (n->entry->failure
        || now_ms - n->entry->expires_ms
             >= stale_ms_.load(std::memory_order_relaxed))
      s.erase(n);
    ++s.misses;
    return nullptr;
  }
  if (n != s.front) {
    s.unlink(n);
    s.push_front(n);
  }
  ++s.hits;
  return n->entry;
}

std::shared_ptr<const cache_entry> cache::find_fallback(std::string_view key,
                                                        uint64_t now_ms) {
  auto window = stale_ms_.load(std::memory_order_relaxed);
  auto& s = shard_for(key);
  std::lock_guard<std::mutex> guard{s.mtx};
  auto i = s.index.find(key);
  if (i == s.index.end())
    return nullptr;
  auto& e = i->second->entry;
  if (e->failure || now_ms >= e->expires_ms + window)
    return nullptr;
  return e;
}

std::shared_ptr<const cache_entry> cache::peek(std::string_view key) {
  auto& s = shard_for(key);
  std::lock_guard<std::mutex> guard{s.mtx};
  auto i = s.index.find(key);
  return i == s.index.end() ? nullptr : i->second->entry;
}

void cache::set_serve_stale(uint32_t seconds) {
  {
    std::lock_guard<std::mutex> guard{opts_mtx_};
    opts_.serve_stale_s = seconds;
  }
  stale_ms_ = uint64_t{seconds} * 1000;
}

void cache::put(std::string_view key,
                std::shared_ptr<const cache_entry> entry) {
  if (!entry || entry->expires_ms <= entry->stored_ms)
    return;
  auto& s = shard_for(key);
  std::lock_guard<std::mutex> guard{s.mtx};
  auto limit = per_shard_.load(std::memory_order_relaxed);
  if (limit == 0)
    return;
  ++s.inserts;
  if (auto i = s.index.find(key); i != s.index.end()) {
    auto n = i->second;
    n->entry = std::move(entry);
    s.unlink(n);
    s.push_front(n);
    return;
  }
  auto n = node::make(key, std::move(entry));
  s.push_front(n);
  s.index.emplace(n->key(), n);
  while (s.index.size() > limit) {
    s.erase(s.back);
    ++s.evictions;
  }
}

size_t cache::drop_if(const std::function<bool(std::string_view)>& pred) {
  size_t dropped = 0;
  for (auto& sp : shards_) {
    std::lock_guard<std::mutex> guard{sp->mtx};
    for (auto n = sp->front; n != nullptr;) {
      auto next = n->next;
      if (pred(n->entry->name())) {
        sp->erase(n);
        ++dropped;
      }
      n = next;
    }
  }
  return dropped;
}

void cache::clear() {
  for (auto& sp : shards_) {
    std::lock_guard<std::mutex> guard{sp->mtx};
    sp->clear();
  }
}

cache::counters cache::stats() const {
  counters c;
  for (auto& sp : shards_) {
    std::lock_guard<std::mutex> guard{sp->mtx};
    c.size += sp->index.size();
    c.hits += sp->hits;
    c.misses += sp->misses;
    c.evictions += sp->evictions;
    c.inserts += sp->inserts;
  }
  return c;
}

} // namespace networkd::dns
