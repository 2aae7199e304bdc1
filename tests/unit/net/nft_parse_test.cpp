// SPDX-License-Identifier: MIT
// The parser of the kernel's map dumps (net/kernel/nft.cpp) on good, cut and
// damaged input: it reads nothing outside the buffer (ASan watches).
#include "net/kernel/nft.hpp"

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <endian.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>

#include <cstring>
#include <vector>

using namespace networkd;

namespace {

/// One NEWSETELEM message of map vip_dnat in table networkd with one
/// element 10.1.2.3 . tcp . 80 : 172.20.0.2 . 8080, counter 7 / 900, and a
/// comment; `multi`: the counter inside NFTA_SET_ELEM_EXPRESSIONS.
std::vector<char> dump_message(bool multi = false) {
  std::vector<char> buf(4096);
  auto* h = mnl_nlmsg_put_header(buf.data());
  h->nlmsg_type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM;
  h->nlmsg_flags = NLM_F_MULTI;
  auto* g
    = static_cast<nfgenmsg*>(mnl_nlmsg_put_extra_header(h, sizeof(nfgenmsg)));
  g->nfgen_family = AF_INET;
  mnl_attr_put_strz(h, NFTA_SET_ELEM_LIST_TABLE, "networkd");
  mnl_attr_put_strz(h, NFTA_SET_ELEM_LIST_SET, "vip_dnat");
  auto* list = mnl_attr_nest_start(h, NFTA_SET_ELEM_LIST_ELEMENTS);
  auto* e = mnl_attr_nest_start(h, NFTA_LIST_ELEM);
  uint8_t key[12] = {10, 1, 2, 3, 6, 0, 0, 0, 0, 80, 0, 0};
  uint8_t val[8] = {172, 20, 0, 2, 0x1f, 0x90, 0, 0};
  auto* k = mnl_attr_nest_start(h, NFTA_SET_ELEM_KEY);
  mnl_attr_put(h, NFTA_DATA_VALUE, sizeof key, key);
  mnl_attr_nest_end(h, k);
  auto* d = mnl_attr_nest_start(h, NFTA_SET_ELEM_DATA);
  mnl_attr_put(h, NFTA_DATA_VALUE, sizeof val, val);
  mnl_attr_nest_end(h, d);
  const char udata[] = "\x00\x08"
                       "app.web";
  mnl_attr_put(h, NFTA_SET_ELEM_USERDATA, sizeof udata, udata);
  nlattr* outer = nullptr;
  if (multi) {
    outer = mnl_attr_nest_start(h, NFTA_SET_ELEM_EXPRESSIONS);
  }
  auto* x = mnl_attr_nest_start(h, multi ? uint16_t{NFTA_LIST_ELEM}
                                         : uint16_t{NFTA_SET_ELEM_EXPR});
  mnl_attr_put_strz(h, NFTA_EXPR_NAME, "counter");
  auto* xd = mnl_attr_nest_start(h, NFTA_EXPR_DATA);
  mnl_attr_put_u64(h, NFTA_COUNTER_BYTES, htobe64(900));
  mnl_attr_put_u64(h, NFTA_COUNTER_PACKETS, htobe64(7));
  mnl_attr_nest_end(h, xd);
  mnl_attr_nest_end(h, x);
  if (outer != nullptr)
    mnl_attr_nest_end(h, outer);
  mnl_attr_nest_end(h, e);
  mnl_attr_nest_end(h, list);
  buf.resize(h->nlmsg_len);
  return buf;
}

} // namespace

TEST_CASE("a map dump message parses into its element's counter",
          "[nft_parse]") {
  for (bool multi : {false, true}) {
    auto msg = dump_message(multi);
    auto two = msg;
    two.insert(two.end(), msg.begin(), msg.end());
    auto c = nft::detail::parse_counters(two.data(), two.size());
    REQUIRE(c.size() == 2);
    CHECK(c[0].vip == "10.1.2.3");
    CHECK(c[0].proto == nat::protocol::tcp);
    CHECK(c[0].port == 80);
    CHECK(c[0].packets == 7);
    CHECK(c[0].bytes == 900);
  }
}

TEST_CASE("cut or damaged map dumps are read within their bounds",
          "[nft_parse]") {
  for (bool multi : {false, true}) {
    auto msg = dump_message(multi);
    // Every cut: at most the one element, nothing read past the end (the
    // copy below is exactly as long as the cut).
    for (size_t n = 0; n <= msg.size(); ++n) {
      std::vector<char> cut(msg.begin(), msg.begin() + static_cast<long>(n));
      auto c = nft::detail::parse_counters(cut.data(), cut.size());
      CHECK(c.size() <= 1);
    }
    // Every byte set to 0x00, 0xff and 0x7f in turn: lengths, types and
    // nesting all lie somewhere.
    for (size_t i = 0; i < msg.size(); ++i)
      for (char b : {'\x00', '\xff', '\x7f', '\x04'}) {
        auto bad = msg;
        bad[i] = b;
        auto c = nft::detail::parse_counters(bad.data(), bad.size());
        CHECK(c.size() <= 1);
      }
  }
  CHECK(nft::detail::parse_counters(nullptr, 0).empty());
}
