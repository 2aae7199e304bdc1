// SPDX-License-Identifier: MIT
// Query building and response decoding through libknot.
#include "dns/message.hpp"

#include "dns/wire.hpp"

extern "C" {
#include <libknot/rrset-dump.h>
}

namespace networkd::dns {

namespace {

/// Types whose RDATA ends in a type bitmap. libknot 3.2's text dump reads
/// past a malformed bitmap (a SEGV found by fuzz_upstream in
/// wire_bitmap_to_str), and knot_pkt_parse accepts one: these are shown in
/// the generic form of RFC 3597 instead.
bool has_type_bitmap(uint16_t type) {
  return type == KNOT_RRTYPE_NSEC || type == KNOT_RRTYPE_NSEC3
         || type == KNOT_RRTYPE_CSYNC;
}

/// "\# LENGTH HEX" (RFC 3597).
std::string generic_rdata(const knot_rdata_t* rd) {
  static const char* hex = "0123456789abcdef";
  std::string out = "\\# " + std::to_string(rd->len) + " ";
  for (uint16_t i = 0; i < rd->len; ++i) {
    out += hex[rd->data[i] >> 4];
    out += hex[rd->data[i] & 15];
  }
  return out;
}

} // namespace

std::vector<uint8_t> make_query(const query_spec& spec) {
  knot_dname_storage_t name;
  std::string text = spec.name.empty() ? "." : spec.name;
  if (knot_dname_from_str(name, text.c_str(), sizeof(name)) == nullptr)
    return {};
  pkt_ptr pkt{knot_pkt_new(nullptr, 1024, nullptr)};
  if (!pkt
      || knot_pkt_put_question(pkt.get(), name, spec.qclass, spec.qtype)
           != KNOT_EOK)
    return {};
  knot_wire_set_id(pkt->wire, spec.id);
  if (spec.rd)
    knot_wire_set_rd(pkt->wire);
  if (spec.cd)
    knot_wire_set_cd(pkt->wire);
  if (spec.edns) {
    knot_rrset_t opt;
    knot_rrset_init_empty(&opt);
    if (knot_edns_init(&opt, spec.payload, 0, spec.edns_version, nullptr)
        == KNOT_EOK) {
      if (spec.dnssec_ok)
        knot_edns_set_do(&opt);
      knot_pkt_begin(pkt.get(), KNOT_ADDITIONAL);
      knot_pkt_put(pkt.get(), KNOT_COMPR_HINT_NONE, &opt, 0);
    }
    knot_rrset_clear(&opt, nullptr);
  }
  return std::vector<uint8_t>(pkt->wire, pkt->wire + pkt->size);
}

result<message> parse_message(const uint8_t* data, size_t len) {
  if (data == nullptr || len < KNOT_WIRE_HEADER_SIZE || len > 65535)
    return make_failure("malformed", "too short or too long");
  std::vector<uint8_t> copy(data, data + len);
  pkt_ptr pkt{knot_pkt_new(copy.data(), static_cast<uint16_t>(len), nullptr)};
  if (!pkt)
    return make_failure("malformed", "no memory");
  // NOCANON: keep owner names in the case they were sent.
  int ret = knot_pkt_parse(pkt.get(), KNOT_PF_NOCANON);
  if (ret != KNOT_EOK)
    return make_failure("malformed", knot_strerror(ret));
  message m;
  const uint8_t* w = pkt->wire;
  m.id = knot_wire_get_id(w);
  m.rcode = knot_pkt_ext_rcode(pkt.get());
  m.qr = knot_wire_get_qr(w);
  m.aa = knot_wire_get_aa(w);
  m.tc = knot_wire_get_tc(w);
  m.rd = knot_wire_get_rd(w);
  m.ra = knot_wire_get_ra(w);
  m.cd = knot_wire_get_cd(w);
  if (pkt->qname_size > 0) {
    m.qname = text_name(knot_pkt_wire_qname(pkt.get()));
    m.qtype = knot_pkt_qtype(pkt.get());
    m.qclass = knot_pkt_qclass(pkt.get());
  }
  if (knot_pkt_has_edns(pkt.get())) {
    m.edns = true;
    m.payload = knot_edns_get_payload(pkt->opt_rr);
    m.dnssec_ok = knot_edns_do(pkt->opt_rr);
  }
  std::vector<record>* sections[] = {&m.answer, &m.authority, &m.additional};
  for (int s = KNOT_ANSWER; s <= KNOT_ADDITIONAL; ++s) {
    auto sec = knot_pkt_section(pkt.get(), static_cast<knot_section_t>(s));
    for (uint16_t i = 0; i < sec->count; ++i) {
      auto rr = knot_pkt_rr(sec, i);
      if (rr->type == KNOT_RRTYPE_OPT)
        continue;
      for (uint16_t k = 0; k < rr->rrs.count; ++k) {
        record rec;
        rec.owner = text_name(rr->owner);
        rec.type = rr->type;
        rec.ttl = rr->ttl;
        char buf[4096];
        if (has_type_bitmap(rr->type))
          rec.data = generic_rdata(knot_rdataset_at(&rr->rrs, k));
        else if (knot_rrset_txt_dump_data(rr, k, buf, sizeof(buf),
                                          &KNOT_DUMP_STYLE_DEFAULT)
                 >= 0)
          rec.data = buf;
        sections[s - KNOT_ANSWER]->push_back(std::move(rec));
      }
    }
  }
  return m;
}

} // namespace networkd::dns
