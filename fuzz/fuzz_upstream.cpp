// SPDX-License-Identifier: MIT
// libFuzzer target for upstream DNS answers on their way into the cache:
// the bytes c-ares hands the forwarder (dns/forwarder.cpp on_answer copies
// them unchanged) go through make_cache_entry (dns/cache.cpp), are stored,
// found again and copied out by respond_from_entry, as dns/server.cpp
// forward() does. Checks the entry against the answer: a body that parses,
// TTL offsets that point at the TTLs, capped lifetimes, and responses that
// are valid messages within the client's size limit.
//
// Input: byte 0 = mode (bits 0-1: the question: 0 the answer's own
// question, 1-3 fixed ones; bit 2 client EDNS with DO; bit 3 TCP; bit 4
// CD; bits 5-7 seconds until the cached answer is used), then the answer.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include <vector>

#include "dns/cache.hpp"
#include "dns/engine.hpp"
#include "dns/message.hpp"
#include "dns/wire.hpp"
#include "fuzz_util.hpp"

using namespace networkd;
using namespace networkd::dns;
using networkd::fuzz::broken;

namespace {

constexpr cache_options opts{8, 2, 30, 3600, 600, 2};

/// The question of `wire` when it has a parsable one, case kept.
bool question_of(const uint8_t* data, size_t size, query& q) {
  if (size < KNOT_WIRE_HEADER_SIZE || size > 65535)
    return false;
  std::vector<uint8_t> copy(data, data + size);
  pkt_ptr pkt{knot_pkt_new(copy.data(), static_cast<uint16_t>(size), nullptr)};
  if (!pkt || knot_pkt_parse_question(pkt.get()) != KNOT_EOK
      || pkt->qname_size == 0)
    return false;
  auto name = knot_pkt_wire_qname(pkt.get());
  q.qname.assign(reinterpret_cast<const char*>(name), pkt->qname_size);
  q.qtype = knot_pkt_qtype(pkt.get());
  q.qclass = knot_pkt_qclass(pkt.get());
  return true;
}

void fixed_question(int which, query& q) {
  static const char* names[] = {"Www.Example.COM", "x.lain", "a.b.c.example"};
  static const uint16_t types[]
    = {KNOT_RRTYPE_A, KNOT_RRTYPE_AAAA, KNOT_RRTYPE_MX};
  q.qname = wire_name(names[which]);
  // wire_name lower-cases: put some upper case back, as clients send.
  if (which == 0)
    q.qname[1] = 'W';
  q.qtype = types[which];
  q.qclass = KNOT_CLASS_IN;
}

/// The TTLs of every record of a parsed message, in wire order.
std::vector<uint32_t> ttls(const message& m) {
  std::vector<uint32_t> out;
  for (auto* sec : {&m.answer, &m.authority, &m.additional})
    for (auto& r : *sec)
      out.push_back(r.ttl);
  return out;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1)
    return 0;
  static cache answers{opts};
  static uint64_t clock = 1000000;
  uint8_t mode = data[0];
  const uint8_t* wire = data + 1;
  size_t len = size - 1;
  clock += 1000;

  query q;
  q.id = 0x4242;
  q.flags1 = 0x01; // RD
  q.flags2 = (mode & 16) ? 0x10 : 0;
  q.edns = mode & 4;
  q.dnssec_ok = q.edns;
  q.limit = q.edns ? 1232 : 512;
  q.via = (mode & 8) ? transport::tcp : transport::udp;
  if ((mode & 3) == 0) {
    if (!question_of(wire, len, q))
      fixed_question(0, q);
  } else {
    fixed_question((mode & 3) - 1, q);
  }
  q.lower = q.qname;
  knot_dname_to_lower(reinterpret_cast<knot_dname_t*>(q.lower.data()));

  auto e = make_cache_entry(q.lower, q.qtype, q.qclass, wire, len, clock,
                            answers.options());
  if (!e) {
    e = make_failure_entry(q.lower, q.qtype, q.qclass, clock,
                           answers.options());
    if (!e)
      broken("no failure entry for a valid question");
  }
  if (e->name() != q.lower)
    broken("entry stored under another name");
  auto body = parse_message(e->body(), e->body_size());
  if (!body)
    broken("a cache entry's body does not parse");
  uint64_t lifetime_ms = e->expires_ms - e->stored_ms;
  uint32_t cap = e->failure    ? opts.failure_ttl
                 : e->negative ? opts.max_negative_ttl
                               : opts.max_ttl;
  if (e->expires_ms < e->stored_ms || lifetime_ms > uint64_t{cap} * 1000)
    broken("an entry's lifetime exceeds its cap");
  auto body_ttls = ttls(*body);
  if (body_ttls.size() != e->ttl_count())
    broken("not one TTL offset per record");
  for (size_t i = 0; i < e->ttl_count(); ++i) {
    size_t off = e->ttl_offset(i);
    if (off + 4 > e->body_size())
      broken("a TTL offset past the body");
    if (knot_wire_read_u32(e->body() + off) != body_ttls[i])
      broken("a TTL offset that does not point at the record's TTL");
    if (!e->negative && body_ttls[i] > opts.max_ttl)
      broken("a stored TTL above max_ttl");
  }

  auto key = q.cache_key();
  answers.put(key, e);
  uint64_t later = clock + uint64_t{mode} / 32 * 1000;
  auto found = answers.find(key, later);
  if (found == nullptr)
    found = e;
  std::vector<uint8_t> out;
  respond_from_entry(q, *found, later, 1232, out);
  auto m = parse_message(out);
  if (!m)
    broken("a response from the cache does not parse");
  size_t limit = q.via == transport::tcp ? 65535 : q.limit;
  if (out.size() > limit)
    broken("a response from the cache exceeds the client's limit");
  if (m->id != q.id || out.size() < KNOT_WIRE_HEADER_SIZE + q.qname.size()
      || std::memcmp(out.data() + KNOT_WIRE_HEADER_SIZE, q.qname.data(),
                     q.qname.size())
           != 0)
    broken("a response from the cache with another ID or question");
  if (mode & 0x80)
    answers.drop_if([&](std::string_view n) { return n == q.lower; });
  return 0;
}
