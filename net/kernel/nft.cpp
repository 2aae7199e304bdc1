// SPDX-License-Identifier: MIT
// VIP DNAT as one nftables map in table `ip networkd`, written over netlink
// (libnftnl messages on libmnl): every change is one nftables transaction.
#include "net/kernel/nft.hpp"

#include "net/base/log.hpp"

#include "net/kernel/nft_netlink.hpp"

#include <linux/netfilter/nf_conntrack_tuple_common.h>

#include <algorithm>
#include <map>
#include <unordered_map>
#include <unordered_set>

namespace networkd::nft {

namespace detail {

/// A map key as the kernel holds it: address (4) . protocol (1, padded to
/// 4) . port (2, network order, padded to 4).
using key_bytes = std::array<uint8_t, 12>;

struct key_hash {
  size_t operator()(const key_bytes& k) const {
    uint64_t a = 0;
    uint32_t b = 0;
    std::memcpy(&a, k.data(), 8);
    std::memcpy(&b, k.data() + 8, 4);
    uint64_t h = (a ^ (uint64_t{b} << 29)) * 0x9e3779b97f4a7c15ull;
    return static_cast<size_t>(h ^ (h >> 32));
  }
};

/// Elements by key.
template <class V>
using elem_map = std::unordered_map<key_bytes, V, key_hash>;

/// A map value: address (4) . port (2, network order, padded to 4), plus
/// the element's comment.
struct elem_value {
  std::array<uint8_t, 8> data{};
  std::string comment;
  bool operator==(const elem_value& o) const {
    return data == o.data && comment == o.comment;
  }
  bool operator!=(const elem_value& o) const { return !(*this == o); }
};

/// What a read found of our table.
struct table_view {
  bool table = false;
  bool dormant = false; ///< the table's chains are switched off
  bool map_present = false;
  bool map_ours = false; ///< our key and data types, with counters
  bool pre_chain = false;
  bool pre_chain_ours = false; ///< type nat, hook prerouting, our priority
  bool out_chain = false;
  bool out_chain_ours = false;
  int pre_rules = 0; ///< our rule (by its comment) in chain prerouting
  int out_rules = 0;
  int foreign_rules = 0; ///< any other rule in our four chains
  bool traffic_present = false;
  bool traffic_ours = false; ///< our key type, no data, with counters
  bool tpre_chain = false;
  bool tpre_chain_ours = false; ///< type filter, prerouting, our priority
  bool tout_chain = false;
  bool tout_chain_ours = false;
  int tpre_rules = 0; ///< our counting rule in traffic_prerouting
  int tout_rules = 0;
  /// Chains and sets of the table that are not the DNAT's (the ACL's,
  /// docs/nftables.md): never touched here, and they keep the table alive.
  int others = 0;
  /// The ruleset generation this view was read at; none once a
  /// transaction of ours changed it (every commit, anyone's, moves the
  /// kernel's generation on).
  std::optional<uint32_t> gen;
  elem_map<elem_value> elems;
  /// The traffic set's elements (keys only).
  std::unordered_set<key_bytes, key_hash> traffic_keys;

  /// Exactly our layout: only element changes needed.
  bool sound() const {
    return table && !dormant && map_ours && pre_chain_ours && out_chain_ours
           && pre_rules == 1 && out_rules == 1 && foreign_rules == 0
           && traffic_ours && tpre_chain_ours && tout_chain_ours
           && tpre_rules == 1 && tout_rules == 1;
  }
  void make_sound() {
    table = map_present = map_ours = true;
    dormant = false;
    pre_chain = pre_chain_ours = out_chain = out_chain_ours = true;
    pre_rules = out_rules = 1;
    foreign_rules = 0;
    traffic_present = traffic_ours = true;
    tpre_chain = tpre_chain_ours = tout_chain = tout_chain_ours = true;
    tpre_rules = tout_rules = 1;
  }
};

} // namespace detail

namespace {

using detail::elem_map;
using detail::elem_value;
using detail::key_bytes;
using detail::nl_socket;
using detail::table_view;
using namespace detail;
using clock_type = std::chrono::steady_clock;

// nft's type ids (datatype.h) and how it composes a concatenation's type:
// 6 bits a field.
constexpr uint32_t type_ipaddr = 7;
constexpr uint32_t type_inet_proto = 12;
constexpr uint32_t type_inet_service = 13;
constexpr uint32_t key_type
  = (((type_ipaddr << 6) | type_inet_proto) << 6) | type_inet_service;
constexpr uint32_t data_type = (type_ipaddr << 6) | type_inet_service;
constexpr uint32_t key_len = 12;
constexpr uint32_t data_len = 8;
constexpr uint32_t set_id = 1;
constexpr uint32_t traffic_set_id = 2;
/// An element message's element list stays below the 64 KiB an attribute
/// can hold.
constexpr uint32_t message_fill = 60000;
/// NFT_USERDATA_MAXLEN: a comment TLV (2 bytes, text, NUL) fits in 256.
constexpr size_t comment_max = 253;

result<nl_socket*> ensure(std::unique_ptr<nl_socket>& s,
                          const nft_dnat_table::options& o) {
  if (!s) {
    auto r = open_socket(o.netns, o.timeout);
    if (!r)
      return r.error();
    s = std::move(*r);
  }
  return s.get();
}

/// Packets and bytes of one expression nest when it is a counter.
std::optional<std::pair<uint64_t, uint64_t>> counter_of(const nlattr* expr) {
  if (!nested(expr))
    return std::nullopt;
  attr_table<NFTA_EXPR_MAX + 1> tb;
  nested_attrs(expr, tb);
  if (!str_is(tb[NFTA_EXPR_NAME], "counter") || !nested(tb[NFTA_EXPR_DATA]))
    return std::nullopt;
  attr_table<NFTA_COUNTER_MAX + 1> ct;
  nested_attrs(tb[NFTA_EXPR_DATA], ct);
  auto packets = u64_attr(ct[NFTA_COUNTER_PACKETS]);
  auto bytes = u64_attr(ct[NFTA_COUNTER_BYTES]);
  if (!packets || !bytes)
    return std::nullopt;
  return std::pair{*packets, *bytes};
}

/// Whether a set's NFTA_SET_EXPR / NFTA_SET_EXPRESSIONS holds a counter.
bool has_counter_expr(const nlattr* expr, const nlattr* list) {
  auto is_counter = [](const nlattr* e) {
    if (!nested(e))
      return false;
    attr_table<NFTA_EXPR_MAX + 1> tb;
    nested_attrs(e, tb);
    return str_is(tb[NFTA_EXPR_NAME], "counter");
  };
  if (is_counter(expr))
    return true;
  bool found = false;
  if (nested(list)) {
    auto* p = static_cast<const char*>(mnl_attr_get_payload(list));
    each_attr(p, p + mnl_attr_get_payload_len(list), [&](const nlattr* e) {
      if (mnl_attr_get_type(e) == NFTA_LIST_ELEM && is_counter(e))
        found = true;
    });
  }
  return found;
}

/// One element of a dump.
struct parsed_elem {
  key_bytes key{};
  std::optional<std::array<uint8_t, 8>> data;
  std::string comment;
  std::optional<std::pair<uint64_t, uint64_t>> counter;
};

/// The elements of one NEWSETELEM message of our map (or of `set`).
template <class F>
void parse_elems(const nlmsghdr* nlh, F&& f, const char* set = map_name) {
  attr_table<NFTA_SET_ELEM_LIST_MAX + 1> tb;
  if (!message_attrs(nlh, tb)
      || !str_is(tb[NFTA_SET_ELEM_LIST_TABLE], table_name)
      || !str_is(tb[NFTA_SET_ELEM_LIST_SET], set)
      || !nested(tb[NFTA_SET_ELEM_LIST_ELEMENTS]))
    return;
  auto* list = tb[NFTA_SET_ELEM_LIST_ELEMENTS];
  auto* p = static_cast<const char*>(mnl_attr_get_payload(list));
  each_attr(p, p + mnl_attr_get_payload_len(list), [&](const nlattr* e) {
    if (mnl_attr_get_type(e) != NFTA_LIST_ELEM || !nested(e))
      return;
    attr_table<NFTA_SET_ELEM_MAX + 1> et;
    nested_attrs(e, et);
    auto key = data_value<12>(et[NFTA_SET_ELEM_KEY]);
    if (!key)
      return;
    parsed_elem out;
    out.key = *key;
    out.data = data_value<8>(et[NFTA_SET_ELEM_DATA]);
    out.comment = comment_of(et[NFTA_SET_ELEM_USERDATA]);
    out.counter = counter_of(et[NFTA_SET_ELEM_EXPR]);
    if (!out.counter && nested(et[NFTA_SET_ELEM_EXPRESSIONS])) {
      auto* l = et[NFTA_SET_ELEM_EXPRESSIONS];
      auto* q = static_cast<const char*>(mnl_attr_get_payload(l));
      each_attr(q, q + mnl_attr_get_payload_len(l), [&](const nlattr* x) {
        if (!out.counter && mnl_attr_get_type(x) == NFTA_LIST_ELEM)
          out.counter = counter_of(x);
      });
    }
    f(out);
  });
}

/// Our rule's user data: the comment TLV.
std::string rule_udata() {
  return comment_udata(rule_comment);
}

std::string traffic_udata() {
  return comment_udata(traffic_comment);
}

/// Whether a rule's user data is `udata`.
bool udata_is(const nlattr* u, const std::string& udata) {
  return u != nullptr && mnl_attr_get_payload_len(u) == udata.size()
         && std::memcmp(mnl_attr_get_payload(u), udata.data(), udata.size())
              == 0;
}

/// Which of our chains a name is (and its hook, type and priority).
struct chain_spec {
  const char* name;
  const char* type;
  uint32_t hook;
  int32_t priority;
};

constexpr std::array<chain_spec, 4> own_chains{{
  {prerouting_chain, "nat", NF_INET_PRE_ROUTING, chain_priority},
  {output_chain, "nat", NF_INET_LOCAL_OUT, chain_priority},
  {traffic_pre_chain, "filter", NF_INET_PRE_ROUTING, traffic_priority},
  {traffic_out_chain, "filter", NF_INET_LOCAL_OUT, traffic_priority},
}};

const chain_spec* own_chain(const std::string& name) {
  for (auto& c : own_chains)
    if (name == c.name)
      return &c;
  return nullptr;
}

/// `elems` false: the table, map and chains only (what remove_all needs).
result<table_view> read_once(nl_socket& s, bool& intr, bool elems = true) {
  table_view v;
  {
    request r{s, NFT_MSG_GETTABLE, NLM_F_ACK};
    mnl_attr_put_strz(r.nlh, NFTA_TABLE_NAME, table_name);
    auto rc = talk(
      s, r.nlh,
      [&](const nlmsghdr* m) {
        attr_table<NFTA_TABLE_MAX + 1> tb;
        if (message_attrs(m, tb) && str_is(tb[NFTA_TABLE_NAME], table_name)) {
          v.table = true;
          auto flags = u32_attr(tb[NFTA_TABLE_FLAGS]).value_or(0);
          v.dormant = (flags & NFT_TABLE_F_DORMANT) != 0;
        }
      },
      intr);
    if (!rc)
      return rc.error();
    if (*rc == ENOENT)
      return v;
    if (*rc != 0)
      return make_failure("nft", "get table: " + errno_text(*rc));
  }
  auto sets = dump(
    s, NFT_MSG_GETSET, intr,
    [](nlmsghdr* n) { mnl_attr_put_strz(n, NFTA_SET_TABLE, table_name); },
    [&](const nlmsghdr* m) {
      attr_table<NFTA_SET_MAX + 1> tb;
      if (!message_attrs(m, tb) || !str_is(tb[NFTA_SET_TABLE], table_name))
        return;
      auto flags = u32_attr(tb[NFTA_SET_FLAGS]).value_or(0);
      if (str_is(tb[NFTA_SET_NAME], traffic_set)) {
        v.traffic_present = true;
        v.traffic_ours
          = (flags & (NFT_SET_MAP | NFT_SET_INTERVAL | NFT_SET_TIMEOUT)) == 0
            && u32_attr(tb[NFTA_SET_KEY_TYPE]) == key_type
            && u32_attr(tb[NFTA_SET_KEY_LEN]) == key_len
            && has_counter_expr(tb[NFTA_SET_EXPR], tb[NFTA_SET_EXPRESSIONS]);
        return;
      }
      if (!str_is(tb[NFTA_SET_NAME], map_name)) {
        ++v.others;
        return;
      }
      v.map_present = true;
      v.map_ours
        = (flags & NFT_SET_MAP) != 0
          && (flags & (NFT_SET_INTERVAL | NFT_SET_TIMEOUT)) == 0
          && u32_attr(tb[NFTA_SET_KEY_TYPE]) == key_type
          && u32_attr(tb[NFTA_SET_KEY_LEN]) == key_len
          && u32_attr(tb[NFTA_SET_DATA_TYPE]) == data_type
          && u32_attr(tb[NFTA_SET_DATA_LEN]) == data_len
          && has_counter_expr(tb[NFTA_SET_EXPR], tb[NFTA_SET_EXPRESSIONS]);
    });
  if (!sets)
    return sets.error();
  auto chains = dump(
    s, NFT_MSG_GETCHAIN, intr, [](nlmsghdr*) {},
    [&](const nlmsghdr* m) {
      attr_table<NFTA_CHAIN_MAX + 1> tb;
      if (!message_attrs(m, tb) || !str_is(tb[NFTA_CHAIN_TABLE], table_name))
        return;
      auto name = str_attr(tb[NFTA_CHAIN_NAME]);
      if (!name)
        return;
      auto* spec = own_chain(*name);
      if (spec == nullptr) {
        ++v.others;
        return;
      }
      std::optional<uint32_t> hook;
      std::optional<uint32_t> prio;
      if (nested(tb[NFTA_CHAIN_HOOK])) {
        attr_table<NFTA_HOOK_MAX + 1> ht;
        nested_attrs(tb[NFTA_CHAIN_HOOK], ht);
        hook = u32_attr(ht[NFTA_HOOK_HOOKNUM]);
        prio = u32_attr(ht[NFTA_HOOK_PRIORITY]);
      }
      bool ours = str_is(tb[NFTA_CHAIN_TYPE], spec->type) && hook == spec->hook
                  && prio == static_cast<uint32_t>(spec->priority);
      std::pair<bool*, bool*> flags[] = {{&v.pre_chain, &v.pre_chain_ours},
                                         {&v.out_chain, &v.out_chain_ours},
                                         {&v.tpre_chain, &v.tpre_chain_ours},
                                         {&v.tout_chain, &v.tout_chain_ours}};
      auto& [present, own] = flags[spec - own_chains.data()];
      *present = true;
      *own = ours;
    });
  if (!chains)
    return chains.error();
  const auto udata = rule_udata();
  const auto tudata = traffic_udata();
  auto rules = dump(
    s, NFT_MSG_GETRULE, intr,
    [](nlmsghdr* n) { mnl_attr_put_strz(n, NFTA_RULE_TABLE, table_name); },
    [&](const nlmsghdr* m) {
      attr_table<NFTA_RULE_MAX + 1> tb;
      if (!message_attrs(m, tb) || !str_is(tb[NFTA_RULE_TABLE], table_name))
        return;
      auto chain = str_attr(tb[NFTA_RULE_CHAIN]).value_or("");
      auto* spec = own_chain(chain);
      if (spec == nullptr)
        return; // another chain's rule (the ACL's): not ours to judge
      auto i = spec - own_chains.data();
      bool ours = udata_is(tb[NFTA_RULE_USERDATA], i < 2 ? udata : tudata);
      int* counts[]
        = {&v.pre_rules, &v.out_rules, &v.tpre_rules, &v.tout_rules};
      if (ours)
        ++*counts[i];
      else
        ++v.foreign_rules;
    });
  if (!rules)
    return rules.error();
  if (!v.map_ours || !elems)
    return v;
  auto elements = dump(
    s, NFT_MSG_GETSETELEM, intr,
    [](nlmsghdr* n) {
      mnl_attr_put_strz(n, NFTA_SET_ELEM_LIST_TABLE, table_name);
      mnl_attr_put_strz(n, NFTA_SET_ELEM_LIST_SET, map_name);
    },
    [&](const nlmsghdr* m) {
      parse_elems(m, [&](const parsed_elem& e) {
        elem_value val;
        if (e.data)
          val.data = *e.data;
        val.comment = e.comment;
        v.elems[e.key] = std::move(val);
      });
    });
  if (!elements)
    return elements.error();
  if (!v.traffic_ours)
    return v;
  auto keys = dump(
    s, NFT_MSG_GETSETELEM, intr,
    [](nlmsghdr* n) {
      mnl_attr_put_strz(n, NFTA_SET_ELEM_LIST_TABLE, table_name);
      mnl_attr_put_strz(n, NFTA_SET_ELEM_LIST_SET, traffic_set);
    },
    [&](const nlmsghdr* m) {
      parse_elems(
        m, [&](const parsed_elem& e) { v.traffic_keys.insert(e.key); },
        traffic_set);
    });
  if (!keys)
    return keys.error();
  return v;
}

/// Our table, read consistently: again when the ruleset changed meanwhile
/// (unless `give_up` says the view is not wanted any more).
result<table_view> read_view(nl_socket& s, bool elems = true,
                             const std::function<bool()>& give_up = {}) {
  return read_consistent<table_view>(
    s, [&](bool& intr) { return read_once(s, intr, elems); }, give_up);
}

void add_delete_table(batch& b) {
  add_delete(b, NFT_MSG_DELTABLE, table_name, nullptr, "delete table");
}

/// Deletes the DNAT's chains (their rules with them) and map, whatever is
/// there of them; the table and what else is in it (the ACL) stay.
void add_delete_own(batch& b, const table_view& v) {
  if (v.pre_chain)
    add_delete(b, NFT_MSG_DELCHAIN, table_name, prerouting_chain,
               "delete prerouting chain");
  if (v.out_chain)
    add_delete(b, NFT_MSG_DELCHAIN, table_name, output_chain,
               "delete output chain");
  if (v.map_present)
    add_delete(b, NFT_MSG_DELSET, table_name, map_name, "delete map");
  if (v.tpre_chain)
    add_delete(b, NFT_MSG_DELCHAIN, table_name, traffic_pre_chain,
               "delete traffic prerouting chain");
  if (v.tout_chain)
    add_delete(b, NFT_MSG_DELCHAIN, table_name, traffic_out_chain,
               "delete traffic output chain");
  if (v.traffic_present)
    add_delete(b, NFT_MSG_DELSET, table_name, traffic_set,
               "delete traffic set");
}

/// `fib daddr type local` (prerouting) or `oif "lo"` (output), then
/// `dnat ip to ip daddr . meta l4proto . th dport map @vip_dnat`.
void add_rule(batch& b, bool output) {
  owned<nftnl_rule, nftnl_rule_free> r{nftnl_rule_alloc()};
  nftnl_rule_set_str(r.p, NFTNL_RULE_TABLE, table_name);
  nftnl_rule_set_str(r.p, NFTNL_RULE_CHAIN,
                     output ? output_chain : prerouting_chain);
  if (output) {
    nftnl_rule_add_expr(r.p,
                        expr_u32s("meta", {{NFTNL_EXPR_META_KEY, NFT_META_OIF},
                                           {NFTNL_EXPR_META_DREG, NFT_REG_1}}));
  } else {
    nftnl_rule_add_expr(
      r.p, expr_u32s("fib", {{NFTNL_EXPR_FIB_DREG, NFT_REG_1},
                             {NFTNL_EXPR_FIB_RESULT, NFT_FIB_RESULT_ADDRTYPE},
                             {NFTNL_EXPR_FIB_FLAGS, NFTA_FIB_F_DADDR}}));
  }
  auto* cmp = expr_u32s(
    "cmp", {{NFTNL_EXPR_CMP_SREG, NFT_REG_1}, {NFTNL_EXPR_CMP_OP, NFT_CMP_EQ}});
  uint32_t want = output ? 1u /* lo's index in every namespace */
                         : 2u /* RTN_LOCAL */;
  nftnl_expr_set(cmp, NFTNL_EXPR_CMP_DATA, &want, sizeof want);
  nftnl_rule_add_expr(r.p, cmp);
  nftnl_rule_add_expr(
    r.p,
    expr_u32s("payload", {{NFTNL_EXPR_PAYLOAD_DREG, NFT_REG_1},
                          {NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_NETWORK_HEADER},
                          {NFTNL_EXPR_PAYLOAD_OFFSET, 16},
                          {NFTNL_EXPR_PAYLOAD_LEN, 4}}));
  nftnl_rule_add_expr(
    r.p, expr_u32s("meta", {{NFTNL_EXPR_META_KEY, NFT_META_L4PROTO},
                            {NFTNL_EXPR_META_DREG, NFT_REG32_01}}));
  nftnl_rule_add_expr(
    r.p, expr_u32s("payload",
                   {{NFTNL_EXPR_PAYLOAD_DREG, NFT_REG32_02},
                    {NFTNL_EXPR_PAYLOAD_BASE, NFT_PAYLOAD_TRANSPORT_HEADER},
                    {NFTNL_EXPR_PAYLOAD_OFFSET, 2},
                    {NFTNL_EXPR_PAYLOAD_LEN, 2}}));
  auto* lookup = expr_u32s("lookup", {{NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1},
                                      {NFTNL_EXPR_LOOKUP_DREG, NFT_REG_1},
                                      {NFTNL_EXPR_LOOKUP_SET_ID, set_id}});
  nftnl_expr_set_str(lookup, NFTNL_EXPR_LOOKUP_SET, map_name);
  nftnl_rule_add_expr(r.p, lookup);
  nftnl_rule_add_expr(
    r.p, expr_u32s("nat", {{NFTNL_EXPR_NAT_TYPE, NFT_NAT_DNAT},
                           {NFTNL_EXPR_NAT_FAMILY, NFPROTO_IPV4},
                           {NFTNL_EXPR_NAT_REG_ADDR_MIN, NFT_REG_1},
                           {NFTNL_EXPR_NAT_REG_PROTO_MIN, NFT_REG32_01}}));
  auto udata = rule_udata();
  nftnl_rule_set_data(r.p, NFTNL_RULE_USERDATA, udata.data(),
                      static_cast<uint32_t>(udata.size()));
  auto* h = b.start(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
  nftnl_rule_nlmsg_build_payload(h, r.p);
  b.append(h, output ? "add output rule" : "add prerouting rule");
}

/// The counting rule of traffic_prerouting (`iif != "lo"`: what came in on
/// lo was counted in output already) or traffic_output:
/// `ct status dnat ct original ip daddr . meta l4proto . ct original
/// proto-dst @vip_traffic` (a lookup: the element's counter counts it).
void add_traffic_rule(batch& b, bool output) {
  owned<nftnl_rule, nftnl_rule_free> r{nftnl_rule_alloc()};
  nftnl_rule_set_str(r.p, NFTNL_RULE_TABLE, table_name);
  nftnl_rule_set_str(r.p, NFTNL_RULE_CHAIN,
                     output ? traffic_out_chain : traffic_pre_chain);
  auto cmp = [&](uint32_t op, uint32_t value) {
    auto* c = expr_u32s(
      "cmp", {{NFTNL_EXPR_CMP_SREG, NFT_REG_1}, {NFTNL_EXPR_CMP_OP, op}});
    nftnl_expr_set(c, NFTNL_EXPR_CMP_DATA, &value, sizeof value);
    nftnl_rule_add_expr(r.p, c);
  };
  if (!output) {
    nftnl_rule_add_expr(r.p,
                        expr_u32s("meta", {{NFTNL_EXPR_META_KEY, NFT_META_IIF},
                                           {NFTNL_EXPR_META_DREG, NFT_REG_1}}));
    cmp(NFT_CMP_NEQ, 1u); // lo's index in every namespace
  }
  nftnl_rule_add_expr(r.p, expr_u32s("ct", {{NFTNL_EXPR_CT_KEY, NFT_CT_STATUS},
                                            {NFTNL_EXPR_CT_DREG, NFT_REG_1}}));
  auto* bw = expr_u32s("bitwise", {{NFTNL_EXPR_BITWISE_SREG, NFT_REG_1},
                                   {NFTNL_EXPR_BITWISE_DREG, NFT_REG_1},
                                   {NFTNL_EXPR_BITWISE_LEN, 4}});
  uint32_t mask = IPS_DST_NAT;
  uint32_t zero = 0;
  nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof mask);
  nftnl_expr_set(bw, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof zero);
  nftnl_rule_add_expr(r.p, bw);
  cmp(NFT_CMP_NEQ, 0u);
  auto ct_original = [&](uint32_t key, uint32_t reg) {
    auto* e
      = expr_u32s("ct", {{NFTNL_EXPR_CT_KEY, key}, {NFTNL_EXPR_CT_DREG, reg}});
    nftnl_expr_set_u8(e, NFTNL_EXPR_CT_DIR, IP_CT_DIR_ORIGINAL);
    nftnl_rule_add_expr(r.p, e);
  };
  ct_original(NFT_CT_DST_IP, NFT_REG_1);
  nftnl_rule_add_expr(
    r.p, expr_u32s("meta", {{NFTNL_EXPR_META_KEY, NFT_META_L4PROTO},
                            {NFTNL_EXPR_META_DREG, NFT_REG32_01}}));
  ct_original(NFT_CT_PROTO_DST, NFT_REG32_02);
  auto* lookup
    = expr_u32s("lookup", {{NFTNL_EXPR_LOOKUP_SREG, NFT_REG_1},
                           {NFTNL_EXPR_LOOKUP_SET_ID, traffic_set_id}});
  nftnl_expr_set_str(lookup, NFTNL_EXPR_LOOKUP_SET, traffic_set);
  nftnl_rule_add_expr(r.p, lookup);
  auto udata = traffic_udata();
  nftnl_rule_set_data(r.p, NFTNL_RULE_USERDATA, udata.data(),
                      static_cast<uint32_t>(udata.size()));
  auto* h = b.start(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
  nftnl_rule_nlmsg_build_payload(h, r.p);
  b.append(h,
           output ? "add traffic output rule" : "add traffic prerouting rule");
}

/// The map and the traffic set, chains and their rules (the table:
/// add_table() first).
void add_layout(batch& b) {
  {
    owned<nftnl_set, nftnl_set_free> s{nftnl_set_alloc()};
    nftnl_set_set_str(s.p, NFTNL_SET_TABLE, table_name);
    nftnl_set_set_str(s.p, NFTNL_SET_NAME, map_name);
    nftnl_set_set_u32(s.p, NFTNL_SET_FAMILY, NFPROTO_IPV4);
    nftnl_set_set_u32(s.p, NFTNL_SET_FLAGS, NFT_SET_MAP);
    nftnl_set_set_u32(s.p, NFTNL_SET_KEY_TYPE, key_type);
    nftnl_set_set_u32(s.p, NFTNL_SET_KEY_LEN, key_len);
    nftnl_set_set_u32(s.p, NFTNL_SET_DATA_TYPE, data_type);
    nftnl_set_set_u32(s.p, NFTNL_SET_DATA_LEN, data_len);
    nftnl_set_set_u32(s.p, NFTNL_SET_ID, set_id);
    nftnl_set_add_expr(s.p, nftnl_expr_alloc("counter"));
    auto* h = b.start(NFT_MSG_NEWSET, NLM_F_CREATE);
    nftnl_set_nlmsg_build_payload(h, s.p);
    b.append(h, "add map");
  }
  {
    owned<nftnl_set, nftnl_set_free> s{nftnl_set_alloc()};
    nftnl_set_set_str(s.p, NFTNL_SET_TABLE, table_name);
    nftnl_set_set_str(s.p, NFTNL_SET_NAME, traffic_set);
    nftnl_set_set_u32(s.p, NFTNL_SET_FAMILY, NFPROTO_IPV4);
    nftnl_set_set_u32(s.p, NFTNL_SET_FLAGS, 0);
    nftnl_set_set_u32(s.p, NFTNL_SET_KEY_TYPE, key_type);
    nftnl_set_set_u32(s.p, NFTNL_SET_KEY_LEN, key_len);
    nftnl_set_set_u32(s.p, NFTNL_SET_ID, traffic_set_id);
    nftnl_set_add_expr(s.p, nftnl_expr_alloc("counter"));
    auto* h = b.start(NFT_MSG_NEWSET, NLM_F_CREATE);
    nftnl_set_nlmsg_build_payload(h, s.p);
    b.append(h, "add traffic set");
  }
  for (auto& spec : own_chains) {
    owned<nftnl_chain, nftnl_chain_free> c{nftnl_chain_alloc()};
    nftnl_chain_set_str(c.p, NFTNL_CHAIN_TABLE, table_name);
    nftnl_chain_set_str(c.p, NFTNL_CHAIN_NAME, spec.name);
    nftnl_chain_set_u32(c.p, NFTNL_CHAIN_HOOKNUM, spec.hook);
    nftnl_chain_set_s32(c.p, NFTNL_CHAIN_PRIO, spec.priority);
    nftnl_chain_set_str(c.p, NFTNL_CHAIN_TYPE, spec.type);
    nftnl_chain_set_u32(c.p, NFTNL_CHAIN_POLICY, NF_ACCEPT);
    auto* h = b.start(NFT_MSG_NEWCHAIN, NLM_F_CREATE);
    nftnl_chain_nlmsg_build_payload(h, c.p);
    b.append(h, "add chain");
  }
  add_rule(b, false);
  add_rule(b, true);
  add_traffic_rule(b, false);
  add_traffic_rule(b, true);
}

/// Element messages of the map, or (`traffic`) of the traffic set: keys
/// only there.
void add_elems(
  batch& b, bool add,
  const std::vector<std::pair<const key_bytes*, const elem_value*>>& ops,
  bool traffic = false) {
  size_t i = 0;
  while (i < ops.size()) {
    auto* h = b.start(add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
                      add ? NLM_F_CREATE : 0);
    mnl_attr_put_strz(h, NFTA_SET_ELEM_LIST_TABLE, table_name);
    mnl_attr_put_strz(h, NFTA_SET_ELEM_LIST_SET,
                      traffic ? traffic_set : map_name);
    mnl_attr_put_u32(h, NFTA_SET_ELEM_LIST_SET_ID,
                     htobe32(traffic ? traffic_set_id : set_id));
    auto* list = mnl_attr_nest_start(h, NFTA_SET_ELEM_LIST_ELEMENTS);
    for (; i < ops.size() && h->nlmsg_len < message_fill; ++i) {
      auto* e = mnl_attr_nest_start(h, NFTA_LIST_ELEM);
      auto* k = mnl_attr_nest_start(h, NFTA_SET_ELEM_KEY);
      mnl_attr_put(h, NFTA_DATA_VALUE, key_len, ops[i].first->data());
      mnl_attr_nest_end(h, k);
      if (add && ops[i].second != nullptr) {
        auto& v = *ops[i].second;
        auto* d = mnl_attr_nest_start(h, NFTA_SET_ELEM_DATA);
        mnl_attr_put(h, NFTA_DATA_VALUE, data_len, v.data.data());
        mnl_attr_nest_end(h, d);
        if (!v.comment.empty()) {
          std::string u;
          u += '\0';
          u += static_cast<char>(v.comment.size() + 1);
          u += v.comment;
          u += '\0';
          mnl_attr_put(h, NFTA_SET_ELEM_USERDATA, u.size(), u.data());
        }
      }
      mnl_attr_nest_end(h, e);
    }
    mnl_attr_nest_end(h, list);
    b.append(h, add ? "add elements" : "delete elements");
  }
}

// --- rules <-> elements ------------------------------------------------------

std::string ip_text(const uint8_t* p) {
  char buf[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, p, buf, sizeof buf);
  return buf;
}

uint32_t vip_of(const key_bytes& k) {
  uint32_t v = 0;
  std::memcpy(&v, k.data(), 4);
  return v;
}

key_bytes key_of(const nat::dnat_rule& r) {
  key_bytes k{};
  ::inet_pton(AF_INET, r.vip.c_str(), k.data());
  k[4] = r.proto == nat::protocol::udp ? IPPROTO_UDP : IPPROTO_TCP;
  k[8] = static_cast<uint8_t>(r.src_port >> 8);
  k[9] = static_cast<uint8_t>(r.src_port & 0xff);
  return k;
}

elem_value value_of(const nat::dnat_rule& r) {
  elem_value v;
  ::inet_pton(AF_INET, r.container_ip.c_str(), v.data.data());
  v.data[4] = static_cast<uint8_t>(r.dest_port >> 8);
  v.data[5] = static_cast<uint8_t>(r.dest_port & 0xff);
  v.comment = r.comment.substr(0, comment_max);
  return v;
}

std::optional<nat::protocol> proto_of(uint8_t p) {
  if (p == IPPROTO_TCP)
    return nat::protocol::tcp;
  if (p == IPPROTO_UDP)
    return nat::protocol::udp;
  return std::nullopt;
}

std::optional<nat::dnat_rule> rule_of(const key_bytes& k, const elem_value& v) {
  auto proto = proto_of(k[4]);
  uint16_t sport = static_cast<uint16_t>((k[8] << 8) | k[9]);
  uint16_t dport = static_cast<uint16_t>((v.data[4] << 8) | v.data[5]);
  if (!proto || sport == 0 || dport == 0)
    return std::nullopt;
  nat::dnat_rule r;
  r.vip = ip_text(k.data());
  r.proto = *proto;
  r.src_port = sport;
  r.container_ip = ip_text(v.data.data());
  r.dest_port = dport;
  r.comment = v.comment;
  return r;
}

std::string describe(const nat::dnat_rule& r) {
  return std::string(nat::to_string(r.proto)) + " " + r.vip + ":"
         + std::to_string(r.src_port) + " -> " + r.container_ip + ":"
         + std::to_string(r.dest_port) + " (" + r.comment + ")";
}

/// An element that is not of our shape, as nft would print it.
std::string describe_raw(const key_bytes& k, const elem_value& v) {
  return ip_text(k.data()) + " . " + std::to_string(k[4]) + " . "
         + std::to_string((k[8] << 8) | k[9]) + " : " + ip_text(v.data.data())
         + " . " + std::to_string((v.data[4] << 8) | v.data[5]);
}

nat::state to_state(const table_view& v) {
  nat::state s;
  s.has_prerouting_chain = v.pre_chain;
  s.has_output_chain = v.out_chain;
  s.prerouting_hooks = v.pre_rules;
  s.output_hooks = v.out_rules;
  // In key order, like a listing.
  std::vector<const std::pair<const key_bytes, elem_value>*> order;
  order.reserve(v.elems.size());
  for (auto& kv : v.elems)
    order.push_back(&kv);
  std::sort(order.begin(), order.end(),
            [](auto* a, auto* b) { return a->first < b->first; });
  for (auto c : {nat::chain::prerouting, nat::chain::output}) {
    if ((c == nat::chain::prerouting ? v.pre_rules : v.out_rules) == 0)
      continue;
    for (auto* kv : order) {
      auto& [k, val] = *kv;
      nat::entry e;
      e.where = c;
      e.vip = ip_text(k.data());
      e.rule = rule_of(k, val);
      e.spec = e.rule ? nat::render(*e.rule, c) : describe_raw(k, val);
      s.entries.push_back(std::move(e));
    }
  }
  return s;
}

struct wanted_set {
  elem_map<elem_value> elems;
  std::vector<std::string> conflicts;
};

result<wanted_set> wanted(const std::vector<nat::dnat_rule>& desired,
                          const nat::scope& where) {
  wanted_set w;
  w.elems.reserve(desired.size());
  elem_map<const nat::dnat_rule*> first;
  first.reserve(desired.size());
  for (auto& r : desired) {
    if (auto ok = nat::validate(r); !ok)
      return ok.error();
    if (!where.covers(r.vip))
      return make_failure("invalid",
                          "rule outside the reconciled VIPs: " + describe(r));
    auto k = key_of(r);
    auto v = value_of(r);
    auto [it, fresh] = w.elems.emplace(k, v);
    if (fresh)
      first.emplace(k, &r);
    else if (it->second != v)
      w.conflicts.push_back(describe(r) + " conflicts with "
                            + describe(*first[k]) + ": dropped");
  }
  return w;
}

/// What one transaction does.
struct plan {
  bool layout = false; ///< (re)create table, map, chains, rules
  /// Delete our chains and map first (the table is shared with the ACL).
  bool drop_own = false;
  std::vector<std::pair<const key_bytes*, const elem_value*>> dels;
  std::vector<std::pair<const key_bytes*, const elem_value*>> adds;
  /// The traffic set's keys (values null): a changed value keeps its key
  /// and so its counter.
  std::vector<std::pair<const key_bytes*, const elem_value*>> tdels;
  std::vector<std::pair<const key_bytes*, const elem_value*>> tadds;
  size_t removed = 0; ///< elements that go
  /// With layout: every element the new table gets (adds point here).
  elem_map<elem_value> after;
  bool empty() const {
    return !layout && dels.empty() && adds.empty() && tdels.empty()
           && tadds.empty();
  }
};

plan make_plan(const table_view& known, const wanted_set& w,
               const nat::scope& where) {
  plan p;
  std::optional<std::unordered_set<uint32_t>> vips;
  if (where.vips) {
    vips.emplace();
    for (auto& s : *where.vips) {
      in_addr a{};
      if (::inet_pton(AF_INET, s.c_str(), &a) == 1)
        vips->insert(a.s_addr);
    }
  }
  auto covers
    = [&](const key_bytes& k) { return !vips || vips->count(vip_of(k)) != 0; };
  for (auto& [k, v] : known.elems) {
    if (!covers(k))
      continue;
    auto it = w.elems.find(k);
    if (it != w.elems.end() && it->second == v)
      continue;
    p.dels.emplace_back(&k, &v);
  }
  p.removed = p.dels.size();
  for (auto& [k, v] : w.elems) {
    auto it = known.elems.find(k);
    if (it == known.elems.end() || it->second != v)
      p.adds.emplace_back(&k, &v);
    if (known.traffic_keys.count(k) == 0)
      p.tadds.emplace_back(&k, nullptr);
  }
  for (auto& k : known.traffic_keys)
    if (covers(k) && w.elems.count(k) == 0)
      p.tdels.emplace_back(&k, nullptr);
  if (known.sound())
    return p;
  // A fresh table, or ours as it should be again: everything in anew,
  // out-of-scope elements of our shape (not someone else's) included.
  p.layout = true;
  p.drop_own = known.pre_chain || known.out_chain || known.map_present
               || known.tpre_chain || known.tout_chain || known.traffic_present;
  p.dels.clear();
  p.adds.clear();
  p.tdels.clear();
  p.tadds.clear();
  p.after.reserve(known.elems.size() + w.elems.size());
  for (auto& [k, v] : known.elems)
    if (!covers(k) && rule_of(k, v))
      p.after.emplace(k, v);
  for (auto& [k, v] : w.elems)
    p.after[k] = v;
  for (auto& [k, v] : p.after) {
    p.adds.emplace_back(&k, &v);
    p.tadds.emplace_back(&k, nullptr);
  }
  return p;
}

/// The counters of the elements in one NEWSETELEM message of `set`.
void counters_of(const nlmsghdr* m, std::vector<nft_counter>& out,
                 const char* set) {
  parse_elems(
    m,
    [&](const parsed_elem& e) {
      auto proto = proto_of(e.key[4]);
      if (!proto)
        return;
      nft_counter c;
      c.vip = ip_text(e.key.data());
      c.proto = *proto;
      c.port = static_cast<uint16_t>((e.key[8] << 8) | e.key[9]);
      if (e.counter) {
        c.packets = e.counter->first;
        c.bytes = e.counter->second;
      }
      out.push_back(std::move(c));
    },
    set);
}

} // namespace

std::vector<nft_counter> detail::parse_counters(const void* data, size_t size,
                                                const char* set) {
  std::vector<nft_counter> out;
  // msg_ok() checks every header against what is left.
  int len = static_cast<int>(std::min<size_t>(size, 1u << 30));
  // Copied: the kernel's buffers are aligned, a caller's need not be.
  std::vector<uint32_t> buf((static_cast<size_t>(len) + 3) / 4);
  if (len > 0)
    std::memcpy(buf.data(), data, static_cast<size_t>(len));
  auto* h = reinterpret_cast<const nlmsghdr*>(buf.data());
  constexpr uint16_t type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM;
  while (msg_ok(h, len)) {
    if (h->nlmsg_type == type)
      counters_of(h, out, set);
    h = mnl_nlmsg_next(h, &len);
  }
  return out;
}

// --- the table ---------------------------------------------------------------

nft_dnat_table::nft_dnat_table() : nft_dnat_table(options{}) {}

nft_dnat_table::nft_dnat_table(options opts) : opts_(std::move(opts)) {}

nft_dnat_table::~nft_dnat_table() = default;

void nft_dnat_table::invalidate() {
  std::lock_guard<std::mutex> guard{mtx_};
  known_.reset();
}

result<table_view> nft_dnat_table::read_locked() {
  ++generation_;
  known_.reset(); // whatever we knew is no longer to be trusted
  auto s = ensure(sock_, opts_);
  if (!s)
    return s.error();
  auto v = read_view(**s);
  if (!v) {
    if (is_transport(v.error()))
      sock_.reset();
    return v.error();
  }
  known_ = std::make_unique<table_view>(*v);
  return v;
}

result<nat::state> nft_dnat_table::read() {
  std::lock_guard<std::mutex> guard{mtx_};
  auto v = read_locked();
  if (!v)
    return v.error();
  return to_state(*v);
}

result<bool> nft_dnat_table::refresh() {
  uint64_t seen = 0;
  std::optional<uint32_t> known_gen;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    seen = generation_;
    if (known_)
      known_gen = known_->gen;
  }
  std::optional<result<table_view>> v;
  {
    // Our own socket: reconciles go on meanwhile.
    std::lock_guard<std::mutex> guard{read_mtx_};
    auto s = ensure(read_sock_, opts_);
    if (!s)
      return s.error();
    if (known_gen) {
      // Nobody committed anything since our last read: what we know is
      // what the kernel has, no need to dump the map.
      auto g = generation(**s);
      if (g && *g == *known_gen) {
        std::lock_guard<std::mutex> guard2{mtx_};
        return generation_ == seen;
      }
    }
    // A transaction of ours since `seen` makes this read moot: with the
    // two dumps of a large table, reads under steady changes would
    // otherwise end "busy" every time.
    auto moved = [&] {
      std::lock_guard<std::mutex> g{mtx_};
      return generation_ != seen;
    };
    v.emplace(read_view(**s, true, moved));
    if (!*v && is_transport(v->error()))
      read_sock_.reset();
  }
  std::lock_guard<std::mutex> guard{mtx_};
  if (generation_ != seen)
    return false;
  if (!*v)
    return v->error();
  known_ = std::make_unique<table_view>(std::move(**v));
  return true;
}

result<std::vector<nft_counter>> nft_dnat_table::counters() {
  return dump_counters(map_name);
}

result<std::vector<nft_counter>> nft_dnat_table::traffic() {
  return dump_counters(traffic_set);
}

result<std::vector<nft_counter>>
nft_dnat_table::dump_counters(const char* set) {
  std::lock_guard<std::mutex> guard{read_mtx_};
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto s = ensure(read_sock_, opts_);
    if (!s)
      return s.error();
    std::vector<nft_counter> out;
    bool intr = false;
    auto r = dump(
      **s, NFT_MSG_GETSETELEM, intr,
      [set](nlmsghdr* n) {
        mnl_attr_put_strz(n, NFTA_SET_ELEM_LIST_TABLE, table_name);
        mnl_attr_put_strz(n, NFTA_SET_ELEM_LIST_SET, set);
      },
      [&](const nlmsghdr* m) { counters_of(m, out, set); });
    if (!r) {
      if (is_transport(r.error()))
        read_sock_.reset();
      return r.error();
    }
    if (!intr)
      return out;
    // The map changed while it was dumped: again.
  }
  return make_failure("busy", "the map kept changing while reading counters");
}

result<nat::report>
nft_dnat_table::reconcile(const std::vector<nat::dnat_rule>& desired) {
  return run(desired, nat::scope::all());
}

result<nat::report>
nft_dnat_table::reconcile_vips(const std::vector<std::string>& vips,
                               const std::vector<nat::dnat_rule>& desired) {
  return run(desired, nat::scope::only(vips));
}

result<nat::report>
nft_dnat_table::run(const std::vector<nat::dnat_rule>& desired,
                    const nat::scope& where) {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  std::lock_guard<std::mutex> guard{mtx_};
  nat::report rep;
  auto w = wanted(desired, where);
  if (!w)
    return w.error();
  rep.conflicts = w->conflicts;
  for (auto& c : rep.conflicts)
    NWD_LOG_DEBUG("nft", "conflicting DNAT rule: {}", c);
  auto timed_read = [&]() -> result<unit> {
    auto t0 = clock_type::now();
    auto v = read_locked();
    rep.read_time += duration_cast<microseconds>(clock_type::now() - t0);
    rep.read_back = true;
    if (!v)
      return v.error();
    return unit{};
  };
  // Ok(true): a batch ran; Ok(false): nothing to do.
  auto attempt = [&]() -> result<bool> {
    auto p = make_plan(*known_, *w, where);
    if (p.empty())
      return false;
    auto s = ensure(sock_, opts_);
    if (!s)
      return s.error();
    if (p.layout && known_->dormant) {
      if (auto w = wake_table(**s, table_name); !w)
        return w.error();
      known_->dormant = false;
    }
    batch b{**s};
    if (p.layout)
      add_table(b, table_name);
    if (p.drop_own)
      add_delete_own(b, *known_);
    if (p.layout)
      add_layout(b);
    add_elems(b, false, p.dels);
    add_elems(b, false, p.tdels, true);
    add_elems(b, true, p.adds);
    add_elems(b, true, p.tadds, true);
    b.finish();
    ++generation_;
    auto t0 = clock_type::now();
    auto sent = b.send();
    auto took = duration_cast<microseconds>(clock_type::now() - t0);
    rep.apply_time += took;
    ++rep.batches;
    if (!sent) {
      if (is_transport(sent.error()))
        sock_.reset();
      return sent.error();
    }
    rep.live_time = took;
    rep.rebuilt = rep.rebuilt || p.drop_own; // our objects made anew
    rep.added += p.adds.size();
    rep.deleted += p.removed;
    if (p.layout) {
      known_->elems = std::move(p.after);
      known_->traffic_keys.clear();
      for (auto& kv : known_->elems)
        known_->traffic_keys.insert(kv.first);
      known_->make_sound();
    } else {
      std::vector<key_bytes> tgone;
      tgone.reserve(p.tdels.size());
      for (auto& d : p.tdels)
        tgone.push_back(*d.first);
      for (auto& k : tgone)
        known_->traffic_keys.erase(k);
      for (auto& a : p.tadds)
        known_->traffic_keys.insert(*a.first);
      // dels point into known_->elems: copy their keys before erasing.
      std::vector<key_bytes> gone;
      gone.reserve(p.dels.size());
      for (auto& d : p.dels)
        gone.push_back(*d.first);
      for (auto& k : gone)
        known_->elems.erase(k);
      for (auto& [k, v] : p.adds)
        known_->elems[*k] = *v;
    }
    known_->gen.reset();
    return true;
  };
  if (!known_) {
    if (auto r = timed_read(); !r)
      return r.error();
  }
  auto first = attempt();
  if (first)
    return rep;
  NWD_LOG_WARN("nft", "DNAT transaction failed, reading table {} again: {}",
               table_name, first.error().to_string());
  rep.retried = true;
  if (auto r = timed_read(); !r)
    return r.error();
  auto second = attempt();
  if (!second) {
    known_.reset();
    return second.error();
  }
  return rep;
}

result<unit> nft_dnat_table::remove_all() {
  std::lock_guard<std::mutex> guard{mtx_};
  ++generation_;
  known_.reset();
  auto s = ensure(sock_, opts_);
  if (!s)
    return s.error();
  // Which objects are there, without the map's elements (a dump of a
  // large map costs tens of ms).
  auto v = read_view(**s, false);
  if (!v) {
    if (is_transport(v.error()))
      sock_.reset();
    return v.error();
  }
  if (!v->table) {
    known_ = std::make_unique<table_view>();
    return unit{};
  }
  batch b{**s};
  // The table goes with us unless it holds others' chains or sets (the
  // ACL's): then only ours go.
  if (v->others == 0)
    add_delete_table(b);
  else
    add_delete_own(b, *v);
  b.finish();
  auto r = b.send();
  if (!r && b.kernel_errno() != ENOENT) {
    known_.reset();
    if (is_transport(r.error()))
      sock_.reset();
    return r.error();
  }
  known_ = std::make_unique<table_view>();
  return unit{};
}

result<bool> remove_table_if_present(const std::string& netns) {
  nft_dnat_table::options o;
  o.netns = netns;
  auto s = open_socket(o.netns, o.timeout);
  if (!s)
    return s.error();
  batch b{**s};
  add_delete_table(b);
  b.finish();
  auto r = b.send();
  if (r)
    return true;
  if (b.kernel_errno() == ENOENT)
    return false;
  return r.error();
}

} // namespace networkd::nft
