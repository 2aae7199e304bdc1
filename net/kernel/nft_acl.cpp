// SPDX-License-Identifier: MIT
// The node ACL in nftables: one input chain and four sets in table
// `ip networkd` (beside the DNAT map), written over netlink; a whitelist
// change is a set element update, every change one transaction.
#include "net/kernel/nft_acl.hpp"

#include "net/base/log.hpp"
#include "net/kernel/nft.hpp"
#include "net/kernel/nft_netlink.hpp"

#include <algorithm>
#include <map>
#include <optional>
#include <set>

namespace networkd::nft {

namespace detail {

/// What a read found of the ACL's part of our table.
struct acl_view {
  bool table = false;
  bool dormant = false;
  bool chain = false;
  bool chain_ours = false; ///< type filter, hook input, priority 0
  std::optional<uint32_t> policy;
  std::vector<std::string> rules; ///< comments of the chain's rules, in order
  bool present[acl_set_count] = {};
  bool ours[acl_set_count] = {}; ///< our flags, key type and length
  acl_sets elems;
  int others = 0; ///< chains and sets of the table that are not ours
  /// The ruleset generation this view was read at; none once a
  /// transaction of ours changed the kernel after the read.
  std::optional<uint32_t> gen;

  bool any_ours() const {
    if (chain)
      return true;
    for (bool p : present)
      if (p)
        return true;
    return false;
  }
  bool sound() const {
    if (!table || dormant || !chain_ours || policy != uint32_t{NF_DROP}
        || rules != acl_rule_comments())
      return false;
    for (bool o : ours)
      if (!o)
        return false;
    return true;
  }
};

} // namespace detail

namespace {

using namespace detail;
using clock_type = std::chrono::steady_clock;

// nft's type ids (datatype.h); a concatenation's type takes 6 bits a field.
constexpr uint32_t type_ipaddr = 7;
constexpr uint32_t type_inet_proto = 12;
constexpr uint32_t type_inet_service = 13;
constexpr uint32_t message_fill = 60000;
constexpr const char* comment_prefix = "networkd acl: ";

/// One row per set: everything that differs between them.
struct set_layout {
  acl_set_kind kind;
  const char* name;
  uint32_t key_type;
  uint32_t key_len;
  uint32_t flags;
  uint32_t id; ///< NFTA_SET_ID within a transaction (the DNAT map is 1)
  const char* type_text;
};

const std::array<set_layout, acl_set_count>& layouts() {
  static const std::array<set_layout, acl_set_count> t{{
    {acl_set_kind::sources, acl_sources_set, type_ipaddr, 4, NFT_SET_INTERVAL,
     11, "ipv4_addr"},
    {acl_set_kind::tcp, acl_tcp_set, type_inet_service, 2, NFT_SET_INTERVAL, 12,
     "inet_service"},
    {acl_set_kind::udp, acl_udp_set, type_inet_service, 2, NFT_SET_INTERVAL, 13,
     "inet_service"},
    {acl_set_kind::source_ports, acl_source_ports_set,
     (((type_ipaddr << 6) | type_inet_proto) << 6) | type_inet_service, 12,
     NFT_SET_INTERVAL | NFT_SET_CONCAT, 14,
     "ipv4_addr . inet_proto . inet_service"},
  }};
  return t;
}

const set_layout* layout_of(const std::string& name) {
  for (auto& l : layouts())
    if (name == l.name)
      return &l;
  return nullptr;
}

// --- desired elements (pure)
// ---------------------------------------------------

using interval = std::pair<uint64_t, uint64_t>; // inclusive

std::optional<uint32_t> ip_u32(const std::string& text) {
  in_addr a{};
  if (::inet_pton(AF_INET, text.c_str(), &a) != 1)
    return std::nullopt;
  return be32toh(a.s_addr);
}

/// A parsed source (acl::source, canonical text) as an address interval.
std::optional<interval> span_of(const acl::source& s) {
  auto dash = s.text.find('-');
  if (dash != std::string::npos) {
    auto lo = ip_u32(s.text.substr(0, dash));
    auto hi = ip_u32(s.text.substr(dash + 1));
    if (!lo || !hi || *lo > *hi)
      return std::nullopt;
    return interval{*lo, *hi};
  }
  auto slash = s.text.find('/');
  auto a = ip_u32(s.text.substr(0, slash));
  if (!a)
    return std::nullopt;
  int bits
    = slash == std::string::npos ? 32 : std::stoi(s.text.substr(slash + 1));
  uint64_t size = uint64_t{1} << (32 - bits);
  uint64_t lo = *a & ~(size - 1);
  return interval{lo, lo + size - 1};
}

/// Sorted, overlapping and adjacent intervals joined.
std::vector<interval> merged(std::vector<interval> v) {
  std::sort(v.begin(), v.end());
  std::vector<interval> out;
  for (auto& i : v) {
    if (!out.empty() && i.first <= out.back().second + 1)
      out.back().second = std::max(out.back().second, i.second);
    else
      out.push_back(i);
  }
  return out;
}

std::string be_bytes(uint64_t v, size_t width) {
  std::string out(width, '\0');
  for (size_t i = 0; i < width; ++i)
    out[width - 1 - i] = static_cast<char>((v >> (8 * i)) & 0xff);
  return out;
}

uint64_t from_be(const std::string& b, size_t at, size_t width) {
  uint64_t v = 0;
  for (size_t i = 0; i < width && at + i < b.size(); ++i)
    v = (v << 8) | static_cast<uint8_t>(b[at + i]);
  return v;
}

/// A single-field interval set: a start element per interval and an end
/// element (the first value after it) unless it runs to the maximum.
std::vector<acl_elem> interval_elems(const std::vector<interval>& v,
                                     size_t width) {
  const uint64_t max = (uint64_t{1} << (8 * width)) - 1;
  std::vector<acl_elem> out;
  for (auto& [lo, hi] : v) {
    out.push_back({be_bytes(lo, width), {}, false});
    if (hi < max)
      out.push_back({be_bytes(hi + 1, width), {}, true});
  }
  // Sorted already: the intervals are, and they neither overlap nor touch
  // (an end, one past its interval, is below the next start).
  return out;
}

std::vector<interval> port_intervals(const std::vector<acl::port_range>& p) {
  std::vector<interval> v;
  v.reserve(p.size());
  for (auto& r : p)
    v.emplace_back(r.first, r.last);
  return v;
}

/// address . protocol . port, each field padded to 4 bytes.
std::string concat_key(uint64_t addr, uint8_t proto, uint64_t port) {
  std::string k = be_bytes(addr, 4);
  k += static_cast<char>(proto);
  k += std::string(3, '\0');
  k += be_bytes(port, 2);
  k += std::string(2, '\0');
  return k;
}

/// One source's ports of one protocol.
struct box_source {
  interval addrs;
  std::vector<interval> ports; ///< merged
};

/// Disjoint boxes (address interval x port interval) covering the union of
/// `srcs`: the address line is cut where any source starts or ends; each
/// piece gets the merged ports of the sources that cover it; neighbouring
/// pieces with the same ports are joined again.
std::vector<std::pair<interval, interval>>
disjoint_boxes(const std::vector<box_source>& srcs) {
  std::vector<uint64_t> cuts;
  for (auto& s : srcs) {
    cuts.push_back(s.addrs.first);
    cuts.push_back(s.addrs.second + 1);
  }
  std::sort(cuts.begin(), cuts.end());
  cuts.erase(std::unique(cuts.begin(), cuts.end()), cuts.end());
  std::vector<std::pair<interval, std::vector<interval>>> pieces;
  for (size_t i = 0; i + 1 < cuts.size(); ++i) {
    interval piece{cuts[i], cuts[i + 1] - 1};
    std::vector<interval> ports;
    for (auto& s : srcs)
      if (s.addrs.first <= piece.first && s.addrs.second >= piece.second)
        ports.insert(ports.end(), s.ports.begin(), s.ports.end());
    ports = merged(std::move(ports));
    if (ports.empty())
      continue;
    if (!pieces.empty() && pieces.back().first.second + 1 == piece.first
        && pieces.back().second == ports)
      pieces.back().first.second = piece.second;
    else
      pieces.emplace_back(piece, std::move(ports));
  }
  std::vector<std::pair<interval, interval>> out;
  for (auto& [addrs, ports] : pieces)
    for (auto& p : ports)
      out.emplace_back(addrs, p);
  return out;
}

// --- text
// ------------------------------------------------------------------------

std::string ip_text(uint64_t a) {
  return std::to_string((a >> 24) & 0xff) + "."
         + std::to_string((a >> 16) & 0xff) + "."
         + std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
}

std::string addr_text(const interval& i) {
  if (i.first == i.second)
    return ip_text(i.first);
  uint64_t size = i.second - i.first + 1;
  if ((size & (size - 1)) == 0 && (i.first & (size - 1)) == 0) {
    int bits = 32;
    for (uint64_t s = size; s > 1; s >>= 1)
      --bits;
    return ip_text(i.first) + "/" + std::to_string(bits);
  }
  return ip_text(i.first) + "-" + ip_text(i.second);
}

std::string port_text(const interval& i) {
  return i.first == i.second
           ? std::to_string(i.first)
           : std::to_string(i.first) + "-" + std::to_string(i.second);
}

std::string proto_text(uint8_t p) {
  if (p == IPPROTO_TCP)
    return "tcp";
  if (p == IPPROTO_UDP)
    return "udp";
  return std::to_string(p);
}

/// Start/end elements of a single-field interval set back to intervals.
std::vector<interval> intervals_of(std::vector<acl_elem> elems, size_t width) {
  const uint64_t max = (uint64_t{1} << (8 * width)) - 1;
  std::sort(elems.begin(), elems.end());
  std::vector<interval> out;
  std::optional<uint64_t> open;
  for (auto& e : elems) {
    auto v = from_be(e.key, 0, width);
    if (e.end) {
      if (open && v > *open)
        out.emplace_back(*open, v - 1);
      open.reset();
    } else {
      if (open && v > *open)
        out.emplace_back(*open, v - 1);
      open = v;
    }
  }
  if (open)
    out.emplace_back(*open, max);
  return out;
}

// --- rules
// -------------------------------------------------------------------------

template <class T, void (*Free)(const T*)>
using own = owned<T, Free>;

void add_cmp(nftnl_rule* r, uint32_t op, const void* data, uint32_t len,
             uint32_t reg = NFT_REG_1) {
  auto* e
    = expr_u32s("cmp", {{NFTNL_EXPR_CMP_SREG, reg}, {NFTNL_EXPR_CMP_OP, op}});
  nftnl_expr_set(e, NFTNL_EXPR_CMP_DATA, data, len);
  nftnl_rule_add_expr(r, e);
}

void add_meta(nftnl_rule* r, uint32_t key, uint32_t reg = NFT_REG_1) {
  nftnl_rule_add_expr(r, expr_u32s("meta", {{NFTNL_EXPR_META_KEY, key},
                                            {NFTNL_EXPR_META_DREG, reg}}));
}

void add_payload(nftnl_rule* r, uint32_t base, uint32_t offset, uint32_t len,
                 uint32_t reg = NFT_REG_1) {
  nftnl_rule_add_expr(r,
                      expr_u32s("payload", {{NFTNL_EXPR_PAYLOAD_DREG, reg},
                                            {NFTNL_EXPR_PAYLOAD_BASE, base},
                                            {NFTNL_EXPR_PAYLOAD_OFFSET, offset},
                                            {NFTNL_EXPR_PAYLOAD_LEN, len}}));
}

void add_verdict(nftnl_rule* r, int verdict) {
  auto* e = expr_u32s("immediate", {{NFTNL_EXPR_IMM_DREG, NFT_REG_VERDICT}});
  nftnl_expr_set_u32(e, NFTNL_EXPR_IMM_VERDICT, static_cast<uint32_t>(verdict));
  nftnl_rule_add_expr(r, e);
}

void add_iifname(nftnl_rule* r, const std::string& name, bool prefix) {
  add_meta(r, NFT_META_IIFNAME);
  std::array<char, 16> buf{};
  std::memcpy(buf.data(), name.data(), std::min<size_t>(name.size(), 15));
  add_cmp(r, NFT_CMP_EQ, buf.data(),
          prefix ? static_cast<uint32_t>(name.size()) : 16u);
}

void add_ct_state(nftnl_rule* r, uint32_t mask) {
  nftnl_rule_add_expr(r, expr_u32s("ct", {{NFTNL_EXPR_CT_KEY, NFT_CT_STATE},
                                          {NFTNL_EXPR_CT_DREG, NFT_REG_1}}));
  auto* b = expr_u32s("bitwise", {{NFTNL_EXPR_BITWISE_SREG, NFT_REG_1},
                                  {NFTNL_EXPR_BITWISE_DREG, NFT_REG_1},
                                  {NFTNL_EXPR_BITWISE_LEN, 4}});
  uint32_t zero = 0;
  nftnl_expr_set(b, NFTNL_EXPR_BITWISE_MASK, &mask, sizeof mask);
  nftnl_expr_set(b, NFTNL_EXPR_BITWISE_XOR, &zero, sizeof zero);
  nftnl_rule_add_expr(r, b);
  add_cmp(r, NFT_CMP_NEQ, &zero, sizeof zero);
}

void add_l4proto(nftnl_rule* r, uint8_t proto) {
  add_meta(r, NFT_META_L4PROTO);
  add_cmp(r, NFT_CMP_EQ, &proto, 1);
}

void add_dport(nftnl_rule* r, uint32_t reg = NFT_REG_1) {
  add_payload(r, NFT_PAYLOAD_TRANSPORT_HEADER, 2, 2, reg);
}

void add_lookup(nftnl_rule* r, const set_layout& s, uint32_t reg = NFT_REG_1) {
  auto* e = expr_u32s("lookup", {{NFTNL_EXPR_LOOKUP_SREG, reg},
                                 {NFTNL_EXPR_LOOKUP_SET_ID, s.id}});
  nftnl_expr_set_str(e, NFTNL_EXPR_LOOKUP_SET, s.name);
  nftnl_rule_add_expr(r, e);
}

const set_layout& L(acl_set_kind k) {
  return layouts()[static_cast<size_t>(k)];
}

/// Our rules, in order: what each does (its comment) and how it is built.
struct rule_row {
  const char* text;
  void (*build)(nftnl_rule*);
};

const std::vector<rule_row>& rule_rows() {
  static const std::vector<rule_row> t{
    {"iifname lo accept",
     [](nftnl_rule* r) {
       add_iifname(r, "lo", false);
       add_verdict(r, NF_ACCEPT);
     }},
    {"iifname docker0 accept",
     [](nftnl_rule* r) {
       add_iifname(r, "docker0", false);
       add_verdict(r, NF_ACCEPT);
     }},
    {"iifname cali* accept",
     [](nftnl_rule* r) {
       add_iifname(r, "cali", true);
       add_verdict(r, NF_ACCEPT);
     }},
    {"ct state invalid drop",
     [](nftnl_rule* r) {
       add_ct_state(r, NF_CT_STATE_INVALID_BIT);
       add_verdict(r, NF_DROP);
     }},
    {"ct state established,related accept",
     [](nftnl_rule* r) {
       add_ct_state(r, NF_CT_STATE_BIT(IP_CT_ESTABLISHED)
                         | NF_CT_STATE_BIT(IP_CT_RELATED));
       add_verdict(r, NF_ACCEPT);
     }},
    {"tcp dport 22 accept",
     [](nftnl_rule* r) {
       add_l4proto(r, IPPROTO_TCP);
       add_dport(r);
       uint16_t ssh = htobe16(22);
       add_cmp(r, NFT_CMP_EQ, &ssh, sizeof ssh);
       add_verdict(r, NF_ACCEPT);
     }},
    {"ip saddr @acl_sources accept",
     [](nftnl_rule* r) {
       add_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4);
       add_lookup(r, L(acl_set_kind::sources));
       add_verdict(r, NF_ACCEPT);
     }},
    {"meta l4proto tcp th dport @acl_tcp_ports accept",
     [](nftnl_rule* r) {
       add_l4proto(r, IPPROTO_TCP);
       add_dport(r);
       add_lookup(r, L(acl_set_kind::tcp));
       add_verdict(r, NF_ACCEPT);
     }},
    {"meta l4proto udp th dport @acl_udp_ports accept",
     [](nftnl_rule* r) {
       add_l4proto(r, IPPROTO_UDP);
       add_dport(r);
       add_lookup(r, L(acl_set_kind::udp));
       add_verdict(r, NF_ACCEPT);
     }},
    {"ip saddr . meta l4proto . th dport @acl_source_ports accept",
     [](nftnl_rule* r) {
       add_payload(r, NFT_PAYLOAD_NETWORK_HEADER, 12, 4, NFT_REG32_00);
       add_meta(r, NFT_META_L4PROTO, NFT_REG32_01);
       add_dport(r, NFT_REG32_02);
       add_lookup(r, L(acl_set_kind::source_ports), NFT_REG32_00);
       add_verdict(r, NF_ACCEPT);
     }},
  };
  return t;
}

// --- reading
// -----------------------------------------------------------------------

/// The elements of one NEWSETELEM message when it is of ACL set `set`.
void elems_of(const nlmsghdr* nlh, const char* set,
              std::vector<acl_elem>& out) {
  attr_table<NFTA_SET_ELEM_LIST_MAX + 1> tb;
  if (!message_attrs(nlh, tb)
      || !str_is(tb[NFTA_SET_ELEM_LIST_TABLE], table_name)
      || !str_is(tb[NFTA_SET_ELEM_LIST_SET], set)
      || !nested(tb[NFTA_SET_ELEM_LIST_ELEMENTS]))
    return;
  auto* list = tb[NFTA_SET_ELEM_LIST_ELEMENTS];
  auto* p = static_cast<const char*>(mnl_attr_get_payload(list));
  auto value = [](const nlattr* nest) -> std::optional<std::string> {
    if (!nested(nest))
      return std::nullopt;
    attr_table<NFTA_DATA_MAX + 1> dt;
    nested_attrs(nest, dt);
    auto* v = dt[NFTA_DATA_VALUE];
    // A key is at most 16 bytes (NFT_DATA_VALUE_MAXLEN is 64; ours <= 12).
    if (v == nullptr || mnl_attr_get_payload_len(v) == 0
        || mnl_attr_get_payload_len(v) > 16)
      return std::nullopt;
    return std::string(static_cast<const char*>(mnl_attr_get_payload(v)),
                       mnl_attr_get_payload_len(v));
  };
  each_attr(p, p + mnl_attr_get_payload_len(list), [&](const nlattr* e) {
    if (mnl_attr_get_type(e) != NFTA_LIST_ELEM || !nested(e))
      return;
    attr_table<NFTA_SET_ELEM_MAX + 1> et;
    nested_attrs(e, et);
    auto key = value(et[NFTA_SET_ELEM_KEY]);
    if (!key)
      return;
    acl_elem x;
    x.key = std::move(*key);
    x.key_end = value(et[NFTA_SET_ELEM_KEY_END]).value_or("");
    x.end = (u32_attr(et[NFTA_SET_ELEM_FLAGS]).value_or(0)
             & NFT_SET_ELEM_INTERVAL_END)
            != 0;
    out.push_back(std::move(x));
  });
}

/// `elems` false: the table, chain, rules and set types only.
result<acl_view> read_once(nl_socket& s, bool& intr, bool elems = true) {
  acl_view v;
  {
    request r{s, NFT_MSG_GETTABLE, NLM_F_ACK};
    mnl_attr_put_strz(r.nlh, NFTA_TABLE_NAME, table_name);
    auto rc = talk(
      s, r.nlh,
      [&](const nlmsghdr* m) {
        attr_table<NFTA_TABLE_MAX + 1> tb;
        if (message_attrs(m, tb) && str_is(tb[NFTA_TABLE_NAME], table_name)) {
          v.table = true;
          v.dormant
            = (u32_attr(tb[NFTA_TABLE_FLAGS]).value_or(0) & NFT_TABLE_F_DORMANT)
              != 0;
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
      auto name = str_attr(tb[NFTA_SET_NAME]).value_or("");
      auto* l = layout_of(name);
      if (l == nullptr) {
        ++v.others;
        return;
      }
      auto i = static_cast<size_t>(l->kind);
      v.present[i] = true;
      auto flags = u32_attr(tb[NFTA_SET_FLAGS]).value_or(0);
      v.ours[i] = (flags & ~uint32_t{NFT_SET_CONCAT})
                    == (l->flags & ~uint32_t{NFT_SET_CONCAT})
                  && u32_attr(tb[NFTA_SET_KEY_TYPE]) == l->key_type
                  && u32_attr(tb[NFTA_SET_KEY_LEN]) == l->key_len;
    });
  if (!sets)
    return sets.error();
  auto chains = dump(
    s, NFT_MSG_GETCHAIN, intr, [](nlmsghdr*) {},
    [&](const nlmsghdr* m) {
      attr_table<NFTA_CHAIN_MAX + 1> tb;
      if (!message_attrs(m, tb) || !str_is(tb[NFTA_CHAIN_TABLE], table_name))
        return;
      if (!str_is(tb[NFTA_CHAIN_NAME], acl_chain)) {
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
      v.chain = true;
      v.chain_ours = str_is(tb[NFTA_CHAIN_TYPE], "filter")
                     && hook == uint32_t{NF_INET_LOCAL_IN}
                     && prio == static_cast<uint32_t>(acl_priority);
      v.policy = u32_attr(tb[NFTA_CHAIN_POLICY]);
    });
  if (!chains)
    return chains.error();
  auto rules = dump(
    s, NFT_MSG_GETRULE, intr,
    [](nlmsghdr* n) {
      mnl_attr_put_strz(n, NFTA_RULE_TABLE, table_name);
      mnl_attr_put_strz(n, NFTA_RULE_CHAIN, acl_chain);
    },
    [&](const nlmsghdr* m) {
      attr_table<NFTA_RULE_MAX + 1> tb;
      if (!message_attrs(m, tb) || !str_is(tb[NFTA_RULE_TABLE], table_name)
          || !str_is(tb[NFTA_RULE_CHAIN], acl_chain))
        return;
      // Bounded: a chain longer than ours plus one is not ours anyway.
      if (v.rules.size() <= acl_rule_comments().size())
        v.rules.push_back(comment_of(tb[NFTA_RULE_USERDATA]));
    });
  if (!rules)
    return rules.error();
  for (auto& l : layouts()) {
    auto i = static_cast<size_t>(l.kind);
    if (!v.ours[i] || !elems)
      continue;
    auto elems = dump(
      s, NFT_MSG_GETSETELEM, intr,
      [&](nlmsghdr* n) {
        mnl_attr_put_strz(n, NFTA_SET_ELEM_LIST_TABLE, table_name);
        mnl_attr_put_strz(n, NFTA_SET_ELEM_LIST_SET, l.name);
      },
      [&](const nlmsghdr* m) { elems_of(m, l.name, v.elems.sets[i]); });
    if (!elems)
      return elems.error();
    std::sort(v.elems.sets[i].begin(), v.elems.sets[i].end());
  }
  return v;
}

result<acl_view> read_view(nl_socket& s, bool elems = true) {
  return read_consistent<acl_view>(
    s, [&](bool& intr) { return read_once(s, intr, elems); });
}

/// What the kernel holds after a transaction of ours made it so.
void now_sound(acl_view& v, acl_sets want) {
  v.table = v.chain = v.chain_ours = true;
  v.dormant = false;
  v.policy = NF_DROP;
  v.rules = acl_rule_comments();
  for (size_t i = 0; i < acl_set_count; ++i)
    v.present[i] = v.ours[i] = true;
  v.elems = std::move(want);
  v.gen.reset();
}

// --- writing
// -----------------------------------------------------------------------

void add_delete_ours(batch& b, const acl_view& v) {
  if (v.chain) // its rules with it, and with them the sets' bindings
    add_delete(b, NFT_MSG_DELCHAIN, table_name, acl_chain, "delete acl chain");
  for (auto& l : layouts())
    if (v.present[static_cast<size_t>(l.kind)])
      add_delete(b, NFT_MSG_DELSET, table_name, l.name, "delete acl set");
}

/// The sets, the chain and its rules (the table: add_table() first).
void add_layout(batch& b) {
  for (auto& l : layouts()) {
    own<nftnl_set, nftnl_set_free> s{nftnl_set_alloc()};
    nftnl_set_set_str(s.p, NFTNL_SET_TABLE, table_name);
    nftnl_set_set_str(s.p, NFTNL_SET_NAME, l.name);
    nftnl_set_set_u32(s.p, NFTNL_SET_FAMILY, NFPROTO_IPV4);
    nftnl_set_set_u32(s.p, NFTNL_SET_FLAGS, l.flags);
    nftnl_set_set_u32(s.p, NFTNL_SET_KEY_TYPE, l.key_type);
    nftnl_set_set_u32(s.p, NFTNL_SET_KEY_LEN, l.key_len);
    nftnl_set_set_u32(s.p, NFTNL_SET_ID, l.id);
    if ((l.flags & NFT_SET_CONCAT) != 0) {
      // Field lengths in bytes: address, protocol, port.
      uint8_t fields[NFT_REG32_COUNT] = {4, 1, 2};
      nftnl_set_set_data(s.p, NFTNL_SET_DESC_CONCAT, fields, 3);
    }
    auto* h = b.start(NFT_MSG_NEWSET, NLM_F_CREATE);
    nftnl_set_nlmsg_build_payload(h, s.p);
    b.append(h, "add acl set");
  }
  {
    own<nftnl_chain, nftnl_chain_free> c{nftnl_chain_alloc()};
    nftnl_chain_set_str(c.p, NFTNL_CHAIN_TABLE, table_name);
    nftnl_chain_set_str(c.p, NFTNL_CHAIN_NAME, acl_chain);
    nftnl_chain_set_u32(c.p, NFTNL_CHAIN_HOOKNUM, NF_INET_LOCAL_IN);
    nftnl_chain_set_s32(c.p, NFTNL_CHAIN_PRIO, acl_priority);
    nftnl_chain_set_str(c.p, NFTNL_CHAIN_TYPE, "filter");
    nftnl_chain_set_u32(c.p, NFTNL_CHAIN_POLICY, NF_DROP);
    auto* h = b.start(NFT_MSG_NEWCHAIN, NLM_F_CREATE);
    nftnl_chain_nlmsg_build_payload(h, c.p);
    b.append(h, "add acl chain");
  }
  auto& comments = acl_rule_comments();
  auto& rows = rule_rows();
  for (size_t i = 0; i < rows.size(); ++i) {
    own<nftnl_rule, nftnl_rule_free> r{nftnl_rule_alloc()};
    nftnl_rule_set_str(r.p, NFTNL_RULE_TABLE, table_name);
    nftnl_rule_set_str(r.p, NFTNL_RULE_CHAIN, acl_chain);
    rows[i].build(r.p);
    auto udata = comment_udata(comments[i]);
    nftnl_rule_set_data(r.p, NFTNL_RULE_USERDATA, udata.data(),
                        static_cast<uint32_t>(udata.size()));
    auto* h = b.start(NFT_MSG_NEWRULE, NLM_F_CREATE | NLM_F_APPEND);
    nftnl_rule_nlmsg_build_payload(h, r.p);
    b.append(h, "add acl rule");
  }
}

void add_elems(batch& b, const set_layout& l, bool add,
               const std::vector<const acl_elem*>& ops) {
  size_t i = 0;
  while (i < ops.size()) {
    auto* h = b.start(add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
                      add ? NLM_F_CREATE : 0);
    mnl_attr_put_strz(h, NFTA_SET_ELEM_LIST_TABLE, table_name);
    mnl_attr_put_strz(h, NFTA_SET_ELEM_LIST_SET, l.name);
    mnl_attr_put_u32(h, NFTA_SET_ELEM_LIST_SET_ID, htobe32(l.id));
    auto* list = mnl_attr_nest_start(h, NFTA_SET_ELEM_LIST_ELEMENTS);
    for (; i < ops.size() && h->nlmsg_len < message_fill; ++i) {
      auto& e = *ops[i];
      auto* n = mnl_attr_nest_start(h, NFTA_LIST_ELEM);
      auto* k = mnl_attr_nest_start(h, NFTA_SET_ELEM_KEY);
      mnl_attr_put(h, NFTA_DATA_VALUE, e.key.size(), e.key.data());
      mnl_attr_nest_end(h, k);
      if (!e.key_end.empty()) {
        auto* ke = mnl_attr_nest_start(h, NFTA_SET_ELEM_KEY_END);
        mnl_attr_put(h, NFTA_DATA_VALUE, e.key_end.size(), e.key_end.data());
        mnl_attr_nest_end(h, ke);
      }
      if (e.end)
        mnl_attr_put_u32(h, NFTA_SET_ELEM_FLAGS,
                         htobe32(NFT_SET_ELEM_INTERVAL_END));
      mnl_attr_nest_end(h, n);
    }
    mnl_attr_nest_end(h, list);
    b.append(h, add ? "add acl elements" : "delete acl elements");
  }
}

/// What one transaction does.
struct plan {
  bool layout = false;
  std::vector<const acl_elem*> dels[acl_set_count];
  std::vector<const acl_elem*> adds[acl_set_count];
  size_t added = 0;
  size_t removed = 0;
  bool empty() const { return !layout && added == 0 && removed == 0; }
};

plan make_plan(const acl_view& known, const acl_sets& want, bool force_layout) {
  plan p;
  p.layout = force_layout || !known.sound();
  for (size_t i = 0; i < acl_set_count; ++i) {
    auto& have = known.elems.sets[i];
    auto& need = want.sets[i];
    if (p.layout) {
      for (auto& e : need)
        p.adds[i].push_back(&e);
      p.added += need.size();
      continue;
    }
    // Both sorted: one walk.
    size_t a = 0;
    size_t b = 0;
    while (a < have.size() || b < need.size()) {
      if (b == need.size() || (a < have.size() && have[a] < need[b])) {
        p.dels[i].push_back(&have[a++]);
      } else if (a == have.size() || need[b] < have[a]) {
        p.adds[i].push_back(&need[b++]);
      } else {
        ++a;
        ++b;
      }
    }
    p.added += p.adds[i].size();
    p.removed += p.dels[i].size();
  }
  return p;
}

} // namespace

// --- pure parts
// ----------------------------------------------------------------------

const std::vector<std::string>& acl_rule_comments() {
  static const std::vector<std::string> t = [] {
    std::vector<std::string> out;
    for (auto& r : rule_rows())
      out.push_back(std::string(comment_prefix) + r.text);
    return out;
  }();
  return t;
}

acl_sets acl_elements(const acl::inputs& in) {
  acl_sets out;
  std::vector<interval> sources;
  for (auto& [name, wl] : in.whitelists)
    for (auto& s : wl.sources)
      if (auto i = span_of(s))
        sources.push_back(*i);
  out[acl_set_kind::sources] = interval_elems(merged(std::move(sources)), 4);
  for (auto& [proto, ex] : in.open_ports) {
    auto kind
      = proto == config::proto::udp ? acl_set_kind::udp : acl_set_kind::tcp;
    out[kind] = interval_elems(merged(port_intervals(ex.ports)), 2);
  }
  auto& boxes = out[acl_set_kind::source_ports];
  for (auto proto : {config::proto::tcp, config::proto::udp}) {
    std::vector<box_source> srcs;
    for (auto& [key, ip] : in.source_ports) {
      auto& list = proto == config::proto::tcp ? ip.tcp : ip.udp;
      auto span = span_of(ip.from);
      if (list.empty() || !span)
        continue;
      srcs.push_back({*span, merged(port_intervals(list))});
    }
    uint8_t p = proto == config::proto::tcp ? IPPROTO_TCP : IPPROTO_UDP;
    for (auto& [addrs, ports] : disjoint_boxes(srcs))
      boxes.push_back({concat_key(addrs.first, p, ports.first),
                       concat_key(addrs.second, p, ports.second), false});
  }
  std::sort(boxes.begin(), boxes.end());
  return out;
}

std::vector<std::string> render_elements(acl_set_kind k,
                                         const std::vector<acl_elem>& elems) {
  std::vector<std::string> out;
  switch (k) {
    case acl_set_kind::sources:
      for (auto& i : intervals_of(elems, 4))
        out.push_back(addr_text(i));
      break;
    case acl_set_kind::tcp:
    case acl_set_kind::udp:
      for (auto& i : intervals_of(elems, 2))
        out.push_back(port_text(i));
      break;
    case acl_set_kind::source_ports:
      for (auto& e : elems) {
        if (e.key.size() != 12)
          continue;
        auto& hi = e.key_end.size() == 12 ? e.key_end : e.key;
        out.push_back(addr_text({from_be(e.key, 0, 4), from_be(hi, 0, 4)})
                      + " . " + proto_text(static_cast<uint8_t>(e.key[4]))
                      + " . "
                      + port_text({from_be(e.key, 8, 2), from_be(hi, 8, 2)}));
      }
      break;
  }
  return out;
}

std::vector<acl_elem> detail::parse_acl_elems(const void* data, size_t size,
                                              const char* set) {
  std::vector<acl_elem> out;
  int len = static_cast<int>(std::min<size_t>(size, 1u << 30));
  std::vector<uint32_t> buf((static_cast<size_t>(len) + 3) / 4);
  if (len > 0)
    std::memcpy(buf.data(), data, static_cast<size_t>(len));
  auto* h = reinterpret_cast<const nlmsghdr*>(buf.data());
  constexpr uint16_t type = (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWSETELEM;
  while (msg_ok(h, len)) {
    if (h->nlmsg_type == type)
      elems_of(h, set, out);
    h = mnl_nlmsg_next(h, &len);
  }
  return out;
}

// --- the table
// -----------------------------------------------------------------------

nft_filter_table::nft_filter_table() : nft_filter_table(options{}) {}

nft_filter_table::nft_filter_table(options opts) : opts_(std::move(opts)) {}

nft_filter_table::~nft_filter_table() = default;

result<acl_view> nft_filter_table::read_locked() {
  known_.reset();
  auto s = detail::ensure(sock_, opts_.netns, opts_.timeout);
  if (!s)
    return s.error();
  auto v = read_view(**s);
  if (!v) {
    if (is_transport(v.error()))
      sock_.reset();
    return v.error();
  }
  known_ = std::make_unique<acl_view>(*v);
  return v;
}

result<acl::report> nft_filter_table::apply(const acl::inputs& in) {
  return run(in, false);
}

result<acl::report> nft_filter_table::audit(const acl::inputs& in) {
  return run(in, true);
}

result<acl::report> nft_filter_table::run(const acl::inputs& in, bool audit) {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  auto want = acl_elements(in);
  std::lock_guard<std::mutex> guard{mtx_};
  acl::report rep;
  auto timed_read = [&]() -> result<unit> {
    auto t0 = clock_type::now();
    auto v = read_locked();
    rep.read_time += duration_cast<microseconds>(clock_type::now() - t0);
    if (!v)
      return v.error();
    return unit{};
  };
  auto still_known = [&]() {
    if (!known_ || !known_->gen)
      return false;
    auto s = detail::ensure(sock_, opts_.netns, opts_.timeout);
    if (!s)
      return false;
    auto g = generation(**s);
    return g && *g == *known_->gen;
  };
  auto attempt = [&](bool force) -> result<unit> {
    auto p = make_plan(*known_, want, force);
    if (p.empty())
      return unit{};
    auto s = detail::ensure(sock_, opts_.netns, opts_.timeout);
    if (!s)
      return s.error();
    if (p.layout && known_->dormant) {
      if (auto w = wake_table(**s, table_name); !w)
        return w.error();
      known_->dormant = false;
    }
    batch b{**s};
    if (p.layout) {
      add_table(b, table_name);
      add_delete_ours(b, *known_);
      add_layout(b);
    }
    for (auto& l : layouts()) {
      auto i = static_cast<size_t>(l.kind);
      add_elems(b, l, false, p.dels[i]);
      add_elems(b, l, true, p.adds[i]);
    }
    b.finish();
    auto t1 = clock_type::now();
    auto sent = b.send();
    rep.apply_time += duration_cast<microseconds>(clock_type::now() - t1);
    if (!sent) {
      known_.reset();
      if (is_transport(sent.error()))
        sock_.reset();
      return sent.error();
    }
    rep.changed = true;
    rep.rewrote_chains = p.layout;
    rep.hooked = p.layout;
    rep.set_policy = p.layout;
    rep.elements_added = p.added;
    rep.elements_removed = p.removed;
    now_sound(*known_, want);
    return unit{};
  };
  if (!known_ || (audit && !still_known()))
    if (auto r = timed_read(); !r)
      return r.error();
  auto first = attempt(false);
  if (first)
    return rep;
  NWD_LOG_WARN("nft", "ACL transaction failed, reading and writing it anew: {}",
               first.error().to_string());
  if (auto r = timed_read(); !r)
    return r.error();
  auto second = attempt(true);
  if (!second)
    return second.error();
  return rep;
}

result<acl::applied> nft_filter_table::show() {
  std::lock_guard<std::mutex> guard{mtx_};
  auto v = read_locked();
  if (!v)
    return v.error();
  acl::applied a;
  a.backend = backend();
  a.present = v->chain;
  if (v->policy)
    a.policy = *v->policy == NF_DROP ? "drop" : "accept";
  const std::string prefix = comment_prefix;
  for (size_t i = 0; i < v->rules.size(); ++i) {
    auto text = v->rules[i];
    if (text.rfind(prefix, 0) == 0)
      text.erase(0, prefix.size());
    else
      text = "(not ours) " + text;
    (i < acl::base_rules().size() ? a.base : a.rules)
      .push_back(std::move(text));
  }
  for (auto& l : layouts()) {
    auto i = static_cast<size_t>(l.kind);
    if (!v->present[i])
      continue;
    a.sets.push_back(
      {l.name, l.type_text, render_elements(l.kind, v->elems.sets[i])});
  }
  return a;
}

result<unit> nft_filter_table::remove_all() {
  std::lock_guard<std::mutex> guard{mtx_};
  known_.reset();
  auto s = detail::ensure(sock_, opts_.netns, opts_.timeout);
  if (!s)
    return s.error();
  // Which objects are there, without the sets' elements.
  auto v = read_view(**s, false);
  if (!v) {
    if (is_transport(v.error()))
      sock_.reset();
    return v.error();
  }
  if (!v->table || !v->any_ours())
    return unit{};
  batch b{**s};
  if (v->others == 0)
    add_delete(b, NFT_MSG_DELTABLE, table_name, nullptr, "delete table");
  else
    add_delete_ours(b, *v);
  b.finish();
  auto r = b.send();
  known_.reset();
  if (!r && b.kernel_errno() != ENOENT) {
    if (is_transport(r.error()))
      sock_.reset();
    return r.error();
  }
  return unit{};
}

} // namespace networkd::nft
