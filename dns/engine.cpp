// SPDX-License-Identifier: MIT
// The query path: parse, ACL verdict, local answers, cache hits, errors.
#include "dns/engine.hpp"

#include <chrono>
#include <cstring>
#include <memory>
#include <new>
#include <optional>

namespace networkd::dns {

namespace {

constexpr uint16_t max_tcp_message = 65535;

/// Memory for libknot while one query is answered: a bump allocator over a
/// buffer the thread keeps, emptied before each query, so that answering
/// calls no malloc. libknot frees nothing into it (knot_mm_t without
/// free); what does not fit the buffer gets its own block until the reset.
class query_arena {
public:
  query_arena() {
    mm_.ctx = this;
    mm_.alloc = &query_arena::alloc;
    mm_.free = nullptr;
  }
  query_arena(const query_arena&) = delete;
  query_arena& operator=(const query_arena&) = delete;
  knot_mm_t* mm() { return &mm_; }
  void reset() {
    used_ = 0;
    overflow_.clear();
  }

private:
  static void* alloc(void* ctx, size_t len) {
    auto a = static_cast<query_arena*>(ctx);
    len = (len + 15) & ~size_t{15};
    if (len <= sizeof(a->buf_) - a->used_) {
      void* p = a->buf_ + a->used_;
      a->used_ += len;
      return p;
    }
    a->overflow_.emplace_back(new (std::nothrow) uint8_t[len]);
    return a->overflow_.back().get();
  }
  alignas(16) uint8_t buf_[8192];
  size_t used_ = 0;
  std::vector<std::unique_ptr<uint8_t[]>> overflow_;
  knot_mm_t mm_{};
};

/// The arena of the query being answered on this thread (answer_query),
/// else nullptr: libknot then uses malloc.
thread_local knot_mm_t* current_mm = nullptr;

/// An OPT RR for our responses (freed with the object).
struct opt_rr {
  knot_rrset_t rr;
  knot_mm_t* mm = current_mm;
  opt_rr(uint16_t payload, bool dnssec_ok, uint8_t ext_rcode = 0) {
    knot_rrset_init_empty(&rr);
    if (knot_edns_init(&rr, payload, ext_rcode, 0, mm) == KNOT_EOK && dnssec_ok)
      knot_edns_set_do(&rr);
  }
  ~opt_rr() { knot_rrset_clear(&rr, mm); }
  opt_rr(const opt_rr&) = delete;
  opt_rr& operator=(const opt_rr&) = delete;
  bool ok() const { return rr.rrs.count == 1; }
  uint16_t size() { return static_cast<uint16_t>(knot_edns_wire_size(&rr)); }
};

/// A response packet written into `out`, sized for `cap` bytes.
struct writer {
  std::vector<uint8_t>& out;
  pkt_ptr pkt;
  writer(std::vector<uint8_t>& o, size_t cap) : out(o) {
    out.resize(cap);
    pkt.reset(knot_pkt_new(out.data(), static_cast<uint16_t>(cap), current_mm));
    // A packet over a given buffer starts as "parsed, full"; reset it to an
    // empty header for writing.
    if (pkt)
      knot_pkt_clear(pkt.get());
  }
  void finish() { out.resize(pkt ? pkt->size : 0); }
};

uint16_t response_cap(const query& q) {
  return q.via == transport::tcp ? max_tcp_message : q.limit;
}

/// Header flags of a response to q: QR, the query's opcode and RD, RA, CD.
void set_response_flags(uint8_t* wire, const query& q, uint16_t rcode) {
  knot_wire_set_id(wire, q.id);
  knot_wire_set_flags1(wire, static_cast<uint8_t>((q.flags1 & 0x79) | 0x80));
  knot_wire_set_flags2(wire, static_cast<uint8_t>((q.flags2 & 0x10) | 0x80));
  knot_wire_set_rcode(wire, static_cast<short>(rcode & 0x0f));
}

/// Appends our OPT to a finished packet; false when it does not fit.
bool put_opt(knot_pkt_t* pkt, const query& q, uint16_t payload,
             uint8_t ext_rcode = 0) {
  if (!q.edns)
    return true;
  opt_rr opt{payload, q.dnssec_ok, ext_rcode};
  if (!opt.ok() || knot_pkt_begin(pkt, KNOT_ADDITIONAL) != KNOT_EOK)
    return false;
  return knot_pkt_put(pkt, KNOT_COMPR_HINT_NONE, &opt.rr, 0) == KNOT_EOK;
}

void write_error(const query& q, bool with_question, uint16_t rcode,
                 uint16_t payload, std::vector<uint8_t>& out) {
  writer w{out, response_cap(q)};
  if (!w.pkt) {
    out.clear();
    return;
  }
  if (with_question) {
    auto name = reinterpret_cast<const knot_dname_t*>(q.qname.data());
    if (knot_pkt_put_question(w.pkt.get(), name, q.qclass, q.qtype)
        != KNOT_EOK) {
      out.clear();
      return;
    }
  }
  set_response_flags(w.pkt->wire, q, rcode);
  if (with_question)
    put_opt(w.pkt.get(), q, payload, static_cast<uint8_t>(rcode >> 4));
  w.finish();
}

/// SOA rdata for a synthesised negative answer under `apex`.
std::vector<uint8_t> soa_rdata(const std::string& apex, uint32_t serial,
                               uint32_t minimum) {
  std::vector<uint8_t> rd(apex.begin(), apex.end());
  static const char hostmaster[] = "\x0ahostmaster";
  if (apex.size() + sizeof(hostmaster) - 1 <= KNOT_DNAME_MAXLEN)
    rd.insert(rd.end(), hostmaster, hostmaster + sizeof(hostmaster) - 1);
  rd.insert(rd.end(), apex.begin(), apex.end());
  for (uint32_t v : {serial, 3600u, 600u, 86400u, minimum}) {
    rd.push_back(static_cast<uint8_t>(v >> 24));
    rd.push_back(static_cast<uint8_t>(v >> 16));
    rd.push_back(static_cast<uint8_t>(v >> 8));
    rd.push_back(static_cast<uint8_t>(v));
  }
  return rd;
}

void answer_local(knot_pkt_t* qpkt, const query& q, const local_name& n,
                  const table& tbl, const query_env& env,
                  std::vector<uint8_t>& out) {
  writer w{out, response_cap(q)};
  knot_pkt_t* resp = w.pkt.get();
  if (resp == nullptr || knot_pkt_init_response(resp, qpkt) != KNOT_EOK) {
    out.clear();
    return;
  }
  knot_wire_set_aa(resp->wire);
  knot_wire_set_ra(resp->wire);
  // Built only for EDNS clients: knot_edns_init allocates.
  std::optional<opt_rr> opt;
  if (q.edns)
    opt.emplace(env.max_udp_payload, q.dnssec_ok);
  uint16_t reserved = opt && opt->ok() ? opt->size() : 0;
  if (reserved > 0)
    knot_pkt_reserve(resp, reserved);
  auto owner = const_cast<knot_dname_t*>(knot_pkt_qname(qpkt));
  bool answered = false;
  bool truncated = false;
  knot_pkt_begin(resp, KNOT_ANSWER);
  auto put = [&](uint16_t type, const knot_rdataset_t& rrs) {
    if (rrs.count == 0 || truncated)
      return;
    knot_rrset_t rr;
    knot_rrset_init(&rr, owner, type, KNOT_CLASS_IN, tbl.ttl());
    rr.rrs = rrs;
    auto rotate = static_cast<uint16_t>(env.rotation % rrs.count);
    if (knot_pkt_put_rotate(resp, KNOT_COMPR_HINT_QNAME, &rr, rotate, 0)
        == KNOT_EOK)
      answered = true;
    else
      truncated = true;
  };
  switch (q.qtype) {
    case KNOT_RRTYPE_A:
      put(KNOT_RRTYPE_A, n.a.get());
      break;
    case KNOT_RRTYPE_AAAA:
      put(KNOT_RRTYPE_AAAA, n.aaaa.get());
      break;
    case KNOT_RRTYPE_PTR:
      put(KNOT_RRTYPE_PTR, n.ptr.get());
      break;
    case KNOT_RRTYPE_ANY: {
      // RFC 8482: a subset is enough; without addresses, one HINFO.
      put(KNOT_RRTYPE_A, n.a.get());
      put(KNOT_RRTYPE_AAAA, n.aaaa.get());
      put(KNOT_RRTYPE_PTR, n.ptr.get());
      if (!answered && !truncated) {
        static const uint8_t hinfo[] = "\x07RFC8482\x00";
        rdata_set set;
        set.add(hinfo, sizeof(hinfo) - 1);
        put(KNOT_RRTYPE_HINFO, set.get());
      }
      break;
    }
    default:
      break;
  }
  if (!answered && !truncated) {
    // NODATA: NOERROR, no answer, a synthesised SOA for negative caching.
    knot_pkt_begin(resp, KNOT_AUTHORITY);
    auto rd = soa_rdata(n.owner, tbl.serial(), tbl.ttl());
    knot_rrset_t soa;
    knot_rrset_init(
      &soa, reinterpret_cast<knot_dname_t*>(const_cast<char*>(n.owner.data())),
      KNOT_RRTYPE_SOA, KNOT_CLASS_IN, tbl.ttl());
    if (knot_rrset_add_rdata(&soa, rd.data(), static_cast<uint16_t>(rd.size()),
                             nullptr)
        == KNOT_EOK)
      knot_pkt_put(resp, KNOT_COMPR_HINT_NONE, &soa, 0);
    knot_rdataset_clear(&soa.rrs, nullptr);
  }
  if (reserved > 0) {
    knot_pkt_begin(resp, KNOT_ADDITIONAL);
    knot_pkt_reclaim(resp, reserved);
    knot_pkt_put(resp, KNOT_COMPR_HINT_NONE, &opt->rr, 0);
  }
  w.finish();
}

} // namespace

uint64_t steady_ns() {
  return static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::nanoseconds>(
      std::chrono::steady_clock::now().time_since_epoch())
      .count());
}

namespace {

/// Makes the thread's arena current while one query is answered.
struct arena_scope {
  arena_scope() {
    thread_local query_arena arena;
    arena.reset();
    current_mm = arena.mm();
  }
  ~arena_scope() { current_mm = nullptr; }
  arena_scope(const arena_scope&) = delete;
  arena_scope& operator=(const arena_scope&) = delete;
};

query_result answer_query(const uint8_t* data, size_t len, const query_env& env,
                          query& q, std::vector<uint8_t>& out) {
  arena_scope arena;
  query_result r;
  out.clear();
  q.reset(env.via);
  if (data == nullptr || len < KNOT_WIRE_HEADER_SIZE || len > 65535
      || knot_wire_get_qr(data))
    return r; // drop: too short to answer, or a response
  q.id = knot_wire_get_id(data);
  q.flags1 = knot_wire_get_flags1(data);
  q.flags2 = knot_wire_get_flags2(data);
  // knot_pkt_parse only reads the wire; it never writes to the buffer.
  pkt_ptr pkt{knot_pkt_new(const_cast<uint8_t*>(data),
                           static_cast<uint16_t>(len), current_mm)};
  if (!pkt)
    return r;
  int ret = knot_pkt_parse(pkt.get(), 0);
  bool have_question = pkt->qname_size > 0;
  if (have_question) {
    auto wire = knot_pkt_wire_qname(pkt.get());
    q.qname.assign(reinterpret_cast<const char*>(wire), pkt->qname_size);
    auto lower = knot_pkt_qname(pkt.get());
    q.lower.assign(reinterpret_cast<const char*>(lower), pkt->qname_size);
    q.qtype = knot_pkt_qtype(pkt.get());
    q.qclass = knot_pkt_qclass(pkt.get());
  }
  r.qtype = q.qtype;
  if (ret == KNOT_EOK || ret == KNOT_ETRAIL) {
    if (knot_pkt_has_edns(pkt.get())) {
      q.edns = true;
      q.dnssec_ok = knot_edns_do(pkt->opt_rr);
      auto payload = knot_edns_get_payload(pkt->opt_rr);
      q.limit = std::max<uint16_t>(512, std::min(payload, env.max_udp_payload));
    }
  }
  auto fail = [&](disposition d, uint16_t rcode, bool with_question) {
    write_error(q, with_question && have_question, rcode, env.max_udp_payload,
                out);
    r.what = out.empty() ? disposition::drop : d;
    r.rcode = rcode;
    return r;
  };
  if (ret != KNOT_EOK && ret != KNOT_ETRAIL)
    return fail(disposition::error, KNOT_RCODE_FORMERR, true);
  if (knot_wire_get_opcode(data) != KNOT_OPCODE_QUERY)
    return fail(disposition::error, KNOT_RCODE_NOTIMPL, true);
  if (knot_wire_get_qdcount(data) != 1 || !have_question)
    return fail(disposition::error, KNOT_RCODE_FORMERR, false);
  if (q.edns && knot_edns_get_version(pkt->opt_rr) != 0)
    return fail(disposition::error, KNOT_RCODE_BADVERS, true);
  if (!env.client_allowed)
    return fail(disposition::refused, KNOT_RCODE_REFUSED, true);
  switch (q.qtype) {
    case KNOT_RRTYPE_OPT:
      return fail(disposition::error, KNOT_RCODE_FORMERR, true);
    case KNOT_RRTYPE_AXFR:
    case KNOT_RRTYPE_IXFR:
      return fail(disposition::error, KNOT_RCODE_NOTIMPL, true);
    default:
      break;
  }
  if (env.tbl != nullptr) {
    if (auto n = env.tbl->find(q.lower)) {
      if (q.qclass != KNOT_CLASS_IN && q.qclass != KNOT_CLASS_ANY)
        return fail(disposition::error, KNOT_RCODE_NOTIMPL, true);
      answer_local(pkt.get(), q, *n, *env.tbl, env, out);
      r.what = out.empty() ? disposition::drop : disposition::local;
      r.rcode = KNOT_RCODE_NOERROR;
      return r;
    }
  }
  if (env.answers != nullptr) {
    char key[max_cache_key_size];
    if (auto e
        = env.answers->find(cache_key(key, q.lower, q.qtype, q.qclass,
                                      q.dnssec_ok, q.checking_disabled()),
                            env.now_ms)) {
      respond_from_entry(q, *e, env.now_ms, env.max_udp_payload, out);
      r.what = out.empty() ? disposition::drop : disposition::cached;
      r.rcode = e->rcode;
      r.prefetch = e->in_prefetch_window(env.now_ms)
                   && !e->prefetch_claimed.load(std::memory_order_relaxed)
                   && !e->prefetch_claimed.exchange(true);
      return r;
    }
  }
  r.what = disposition::forward;
  return r;
}

} // namespace

query_result handle_query(const uint8_t* data, size_t len, const query_env& env,
                          query& q, std::vector<uint8_t>& out) {
  if (env.received_ns != 0) { // the caller times the answer
    auto r = answer_query(data, len, env, q, out);
    q.received_ns = env.received_ns;
    return r;
  }
  auto start = steady_ns();
  auto r = answer_query(data, len, env, q, out);
  q.received_ns = start; // after answer_query's q.reset()
  r.duration_ns = steady_ns() - start;
  return r;
}

void respond_from_entry(const query& q, const cache_entry& e, uint64_t now_ms,
                        uint16_t max_udp_payload, std::vector<uint8_t>& out,
                        uint32_t fixed_ttl) {
  size_t question_end = KNOT_WIRE_HEADER_SIZE + q.qname.size() + 4;
  if (e.body_size() < question_end || q.qname.size() != e.name().size()) {
    respond_error(q, KNOT_RCODE_SERVFAIL, max_udp_payload, out);
    return;
  }
  out.assign(e.body(), e.body() + e.body_size());
  uint8_t* wire = out.data();
  knot_wire_set_id(wire, q.id);
  std::memcpy(wire + KNOT_WIRE_HEADER_SIZE, q.qname.data(), q.qname.size());
  auto f1 = knot_wire_get_flags1(wire);
  knot_wire_set_flags1(wire,
                       static_cast<uint8_t>((f1 & ~0x01) | (q.flags1 & 0x01)));
  auto f2 = knot_wire_get_flags2(wire);
  knot_wire_set_flags2(wire,
                       static_cast<uint8_t>((f2 & ~0x10) | (q.flags2 & 0x10)));
  uint64_t elapsed = now_ms > e.stored_ms ? (now_ms - e.stored_ms) / 1000 : 0;
  for (size_t i = 0; i < e.ttl_count(); ++i) {
    auto off = e.ttl_offset(i);
    if (off + 4u > out.size())
      continue;
    uint32_t ttl = knot_wire_read_u32(wire + off);
    ttl = ttl > elapsed ? static_cast<uint32_t>(ttl - elapsed) : 0;
    if (fixed_ttl > 0)
      ttl = fixed_ttl;
    knot_wire_write_u32(wire + off, ttl);
  }
  uint8_t opt_wire[64];
  int opt_len = 0;
  if (q.edns) {
    opt_rr opt{max_udp_payload, q.dnssec_ok};
    if (opt.ok())
      opt_len
        = knot_rrset_to_wire(&opt.rr, opt_wire, sizeof(opt_wire), nullptr);
    if (opt_len < 0)
      opt_len = 0;
  }
  size_t cap = response_cap(q);
  if (out.size() + opt_len > cap) {
    // Does not fit: the question alone, with TC; the client retries on TCP.
    out.resize(question_end);
    wire = out.data();
    knot_wire_set_ancount(wire, 0);
    knot_wire_set_nscount(wire, 0);
    knot_wire_set_arcount(wire, 0);
    knot_wire_set_tc(wire);
  }
  if (opt_len > 0) {
    out.insert(out.end(), opt_wire, opt_wire + opt_len);
    knot_wire_add_arcount(out.data(), 1);
  }
}

void respond_error(const query& q, uint16_t rcode, uint16_t max_udp_payload,
                   std::vector<uint8_t>& out) {
  write_error(q, !q.qname.empty(), rcode, max_udp_payload, out);
}

std::vector<uint8_t> upstream_query(const query& q, uint16_t max_udp_payload) {
  std::vector<uint8_t> out(KNOT_WIRE_HEADER_SIZE + q.lower.size() + 4 + 64);
  pkt_ptr pkt{
    knot_pkt_new(out.data(), static_cast<uint16_t>(out.size()), nullptr)};
  if (pkt)
    knot_pkt_clear(pkt.get());
  auto name = reinterpret_cast<const knot_dname_t*>(q.lower.data());
  if (!pkt
      || knot_pkt_put_question(pkt.get(), name, q.qclass, q.qtype) != KNOT_EOK)
    return {};
  knot_wire_set_rd(pkt->wire);
  if (q.checking_disabled())
    knot_wire_set_cd(pkt->wire);
  opt_rr opt{max_udp_payload, q.dnssec_ok};
  if (opt.ok() && knot_pkt_begin(pkt.get(), KNOT_ADDITIONAL) == KNOT_EOK)
    knot_pkt_put(pkt.get(), KNOT_COMPR_HINT_NONE, &opt.rr, 0);
  out.resize(pkt->size);
  return out;
}

} // namespace networkd::dns
