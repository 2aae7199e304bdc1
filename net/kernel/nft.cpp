// SPDX-License-Identifier: MIT
// VIP DNAT as one nftables map in table `ip networkd`, written over netlink
// (libnftnl messages on libmnl): every change is one nftables transaction.
#include "net/kernel/nft.hpp"

#include "net/base/log.hpp"

// The C library's network headers before the kernel's (both define in_addr).
#include <arpa/inet.h>
#include <endian.h>
#include <fcntl.h>
#include <sched.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <libnftnl/chain.h>
#include <libnftnl/common.h>
#include <libnftnl/expr.h>
#include <libnftnl/rule.h>
#include <libnftnl/set.h>
#include <libnftnl/table.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <functional>
#include <map>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace networkd::nft {

namespace detail {

/// One NETLINK_NETFILTER socket, bound to the namespace it was opened in.
struct nl_socket {
  mnl_socket* sock = nullptr;
  uint32_t portid = 0;
  uint32_t seq = 0;
  int sndbuf = 0;
  std::vector<char> rbuf;
  nl_socket() = default;
  nl_socket(const nl_socket&) = delete;
  nl_socket& operator=(const nl_socket&) = delete;
  ~nl_socket() {
    if (sock != nullptr)
      mnl_socket_close(sock);
  }
};

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
  int foreign_rules = 0; ///< any other rule in our table
  /// The ruleset generation this view was read at; none once a
  /// transaction of ours changed it (every commit, anyone's, moves the
  /// kernel's generation on).
  std::optional<uint32_t> gen;
  elem_map<elem_value> elems;

  /// Exactly our layout: only element changes needed.
  bool sound() const {
    return table && !dormant && map_ours && pre_chain_ours && out_chain_ours
           && pre_rules == 1 && out_rules == 1 && foreign_rules == 0;
  }
  void make_sound() {
    table = map_present = map_ours = true;
    dormant = false;
    pre_chain = pre_chain_ours = out_chain = out_chain_ours = true;
    pre_rules = out_rules = 1;
    foreign_rules = 0;
  }
};

} // namespace detail

namespace {

using detail::elem_map;
using detail::elem_value;
using detail::key_bytes;
using detail::nl_socket;
using detail::table_view;
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
/// An element message's element list stays below the 64 KiB an attribute
/// can hold.
constexpr uint32_t message_fill = 60000;
constexpr size_t scratch_size = 1 << 17;
/// NFT_USERDATA_MAXLEN: a comment TLV (2 bytes, text, NUL) fits in 256.
constexpr size_t comment_max = 253;

failure transport(const std::string& what, int err) {
  return make_failure("netlink", what + ": " + std::strerror(err));
}

bool is_transport(const failure& f) {
  return f.code == "netlink";
}

/// The errno in a netlink error code (0 or minus an errno); EPROTO for
/// anything else.
int errno_of(int code) {
  if (code == 0)
    return 0;
  return code < 0 && code > -4096 ? -code : EPROTO;
}

std::string errno_text(int err) {
  return std::string(std::strerror(err)) + " (" + std::to_string(err) + ")";
}

// --- sockets ---------------------------------------------------------------

result<std::unique_ptr<nl_socket>>
open_here(std::chrono::milliseconds timeout) {
  auto s = std::make_unique<nl_socket>();
  s->sock = mnl_socket_open2(NETLINK_NETFILTER, SOCK_CLOEXEC);
  if (s->sock == nullptr)
    return transport("socket", errno);
  if (mnl_socket_bind(s->sock, 0, MNL_SOCKET_AUTOPID) < 0)
    return transport("bind", errno);
  s->portid = mnl_socket_get_portid(s->sock);
  int one = 1;
  // Errors without a copy of the failed request; with the kernel's reason.
  mnl_socket_setsockopt(s->sock, NETLINK_CAP_ACK, &one, sizeof one);
  mnl_socket_setsockopt(s->sock, NETLINK_EXT_ACK, &one, sizeof one);
  int fd = mnl_socket_get_fd(s->sock);
  int rcv = 4 << 20;
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, &rcv, sizeof rcv) != 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof rcv);
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  if (::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0)
    return transport("SO_RCVTIMEO", errno);
  s->seq = static_cast<uint32_t>(::time(nullptr));
  s->rbuf.resize(1 << 17);
  return s;
}

/// A socket in the named namespace: made on a thread that joined it (a
/// socket keeps the namespace it was made in).
result<std::unique_ptr<nl_socket>> open_socket(const std::string& netns,
                                               std::chrono::milliseconds t) {
  if (netns.empty())
    return open_here(t);
  if (netns.find('/') != std::string::npos || netns == "." || netns == "..")
    return make_failure("invalid", "bad namespace name '" + netns + "'");
  auto path = "/run/netns/" + netns;
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return make_failure("netns", path + ": " + std::strerror(errno));
  std::optional<result<std::unique_ptr<nl_socket>>> out;
  std::thread th{[&] {
    if (::setns(fd, CLONE_NEWNET) != 0) {
      out.emplace(
        make_failure("netns", "setns " + path + ": " + std::strerror(errno)));
      return;
    }
    out.emplace(open_here(t));
  }};
  th.join();
  ::close(fd);
  return std::move(*out);
}

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

// --- attributes of replies (bounded loops, no recursion) -------------------

/// Whether a whole message starts at `h` with `len` bytes left. (libmnl's
/// mnl_nlmsg_ok() compares the length as an int: one over 2 GiB passes.)
bool msg_ok(const nlmsghdr* h, int len) {
  return len >= static_cast<int>(sizeof(nlmsghdr))
         && h->nlmsg_len >= sizeof(nlmsghdr)
         && h->nlmsg_len <= static_cast<uint32_t>(len);
}

const char* end_of(const nlmsghdr* nlh) {
  return static_cast<const char*>(mnl_nlmsg_get_payload_tail(nlh));
}

/// Calls f(attr) for every attribute in [p, end), as far as they are well
/// formed.
template <class F>
void each_attr(const void* p, const char* end, F&& f) {
  auto* a = static_cast<const nlattr*>(p);
  while (
    mnl_attr_ok(a, static_cast<int>(end - reinterpret_cast<const char*>(a)))) {
    f(a);
    a = mnl_attr_next(a);
  }
}

template <size_t N>
using attr_table = std::array<const nlattr*, N>;

/// The top-level attributes of an nftables message by type (the last of a
/// type wins); false when the message is too short or not family ip.
template <size_t N>
bool message_attrs(const nlmsghdr* nlh, attr_table<N>& tb) {
  tb.fill(nullptr);
  if (mnl_nlmsg_get_payload_len(nlh) < sizeof(nfgenmsg))
    return false;
  nfgenmsg g{};
  std::memcpy(&g, mnl_nlmsg_get_payload(nlh), sizeof g);
  if (g.nfgen_family != NFPROTO_IPV4)
    return false;
  each_attr(mnl_nlmsg_get_payload_offset(nlh, sizeof(nfgenmsg)), end_of(nlh),
            [&](const nlattr* a) {
              auto t = mnl_attr_get_type(a);
              if (t < N)
                tb[t] = a;
            });
  return true;
}

template <size_t N>
void nested_attrs(const nlattr* nest, attr_table<N>& tb) {
  tb.fill(nullptr);
  auto* p = static_cast<const char*>(mnl_attr_get_payload(nest));
  each_attr(p, p + mnl_attr_get_payload_len(nest), [&](const nlattr* a) {
    auto t = mnl_attr_get_type(a);
    if (t < N)
      tb[t] = a;
  });
}

std::optional<std::string> str_attr(const nlattr* a) {
  if (a == nullptr || mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
    return std::nullopt;
  return std::string(mnl_attr_get_str(a));
}

bool str_is(const nlattr* a, const char* want) {
  auto s = str_attr(a);
  return s && *s == want;
}

std::optional<uint32_t> u32_attr(const nlattr* a) {
  if (a == nullptr || mnl_attr_validate(a, MNL_TYPE_U32) < 0)
    return std::nullopt;
  return be32toh(mnl_attr_get_u32(a));
}

std::optional<uint64_t> u64_attr(const nlattr* a) {
  if (a == nullptr || mnl_attr_validate(a, MNL_TYPE_U64) < 0)
    return std::nullopt;
  uint64_t v = 0;
  std::memcpy(&v, mnl_attr_get_payload(a), sizeof v);
  return be64toh(v);
}

bool nested(const nlattr* a) {
  return a != nullptr && mnl_attr_validate(a, MNL_TYPE_NESTED) >= 0;
}

/// The NFTA_DATA_VALUE inside a data nest when it has exactly `n` bytes.
template <size_t N>
std::optional<std::array<uint8_t, N>> data_value(const nlattr* nest) {
  if (!nested(nest))
    return std::nullopt;
  attr_table<NFTA_DATA_MAX + 1> tb;
  nested_attrs(nest, tb);
  auto* v = tb[NFTA_DATA_VALUE];
  if (v == nullptr || mnl_attr_get_payload_len(v) != N)
    return std::nullopt;
  std::array<uint8_t, N> out{};
  std::memcpy(out.data(), mnl_attr_get_payload(v), N);
  return out;
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

/// The comment in an element's or rule's user data (TLV type 0).
std::string comment_of(const nlattr* udata) {
  if (udata == nullptr)
    return {};
  auto* p = static_cast<const uint8_t*>(mnl_attr_get_payload(udata));
  size_t n = mnl_attr_get_payload_len(udata);
  size_t i = 0;
  while (i + 2 <= n) {
    uint8_t type = p[i];
    size_t len = p[i + 1];
    if (i + 2 + len > n)
      break;
    if (type == 0) {
      std::string s(reinterpret_cast<const char*>(p + i + 2), len);
      auto nul = s.find('\0');
      if (nul != std::string::npos)
        s.resize(nul);
      return s;
    }
    i += 2 + len;
  }
  return {};
}

/// One element of a dump.
struct parsed_elem {
  key_bytes key{};
  std::optional<std::array<uint8_t, 8>> data;
  std::string comment;
  std::optional<std::pair<uint64_t, uint64_t>> counter;
};

/// The elements of one NEWSETELEM message of our map.
template <class F>
void parse_elems(const nlmsghdr* nlh, F&& f) {
  attr_table<NFTA_SET_ELEM_LIST_MAX + 1> tb;
  if (!message_attrs(nlh, tb)
      || !str_is(tb[NFTA_SET_ELEM_LIST_TABLE], table_name)
      || !str_is(tb[NFTA_SET_ELEM_LIST_SET], map_name)
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

// --- requests ---------------------------------------------------------------

/// Sends one request and reads its answers: data messages go to on_msg
/// until the dump's end or the request's ack. Returns the kernel's errno
/// (0: fine).
template <class F>
result<int> talk(nl_socket& s, const nlmsghdr* req, F&& on_msg,
                 bool& interrupted) {
  if (mnl_socket_sendto(s.sock, req, req->nlmsg_len) < 0)
    return transport("send", errno);
  for (;;) {
    auto n = mnl_socket_recvfrom(s.sock, s.rbuf.data(), s.rbuf.size());
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return make_failure("netlink", "no answer from the kernel in time");
      return transport("receive", errno);
    }
    int len = static_cast<int>(n);
    auto* nlh = reinterpret_cast<nlmsghdr*>(s.rbuf.data());
    for (; msg_ok(nlh, len); nlh = mnl_nlmsg_next(nlh, &len)) {
      if (nlh->nlmsg_seq != req->nlmsg_seq)
        continue; // a late answer to an earlier request
      if ((nlh->nlmsg_flags & NLM_F_DUMP_INTR) != 0)
        interrupted = true;
      if (nlh->nlmsg_type == NLMSG_DONE) {
        // A dump that failed part way says so in its end.
        int err = 0;
        if (mnl_nlmsg_get_payload_len(nlh) >= sizeof err)
          std::memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof err);
        return err < 0 ? errno_of(err) : 0;
      }
      if (nlh->nlmsg_type == NLMSG_ERROR) {
        if (mnl_nlmsg_get_payload_len(nlh) < sizeof(nlmsgerr))
          return make_failure("netlink", "short error message");
        nlmsgerr err{};
        std::memcpy(&err, mnl_nlmsg_get_payload(nlh), sizeof err);
        return errno_of(err.error);
      }
      on_msg(nlh);
    }
  }
}

/// A request in its own buffer.
struct request {
  std::array<char, 1024> buf{};
  nlmsghdr* nlh = nullptr;
  request(nl_socket& s, uint16_t type, uint16_t flags) {
    nlh = nftnl_nlmsg_build_hdr(buf.data(), type, NFPROTO_IPV4, flags, ++s.seq);
  }
};

result<uint32_t> generation(nl_socket& s) {
  request r{s, NFT_MSG_GETGEN, NLM_F_ACK};
  std::optional<uint32_t> id;
  bool intr = false;
  auto rc = talk(
    s, r.nlh,
    [&](const nlmsghdr* m) {
      attr_table<NFTA_GEN_MAX + 1> tb;
      if (mnl_nlmsg_get_payload_len(m) < sizeof(nfgenmsg))
        return;
      tb.fill(nullptr);
      each_attr(mnl_nlmsg_get_payload_offset(m, sizeof(nfgenmsg)), end_of(m),
                [&](const nlattr* a) {
                  if (mnl_attr_get_type(a) <= NFTA_GEN_MAX)
                    tb[mnl_attr_get_type(a)] = a;
                });
      id = u32_attr(tb[NFTA_GEN_ID]);
    },
    intr);
  if (!rc)
    return rc.error();
  if (*rc != 0)
    return make_failure("nft", "get generation: " + errno_text(*rc));
  if (!id)
    return make_failure("nft", "no generation in the kernel's answer");
  return *id;
}

/// Our rule's user data: the comment TLV.
std::string rule_udata() {
  std::string u;
  u += '\0';
  u += static_cast<char>(std::strlen(rule_comment) + 1);
  u += rule_comment;
  u += '\0';
  return u;
}

/// One dump request; ENOENT (what it asks about is not there) is no error.
template <class F>
result<unit> dump(nl_socket& s, uint16_t type, bool& intr, F&& fill,
                  std::function<void(const nlmsghdr*)> on_msg) {
  request r{s, type, NLM_F_DUMP};
  fill(r.nlh);
  auto rc = talk(s, r.nlh, on_msg, intr);
  if (!rc)
    return rc.error();
  if (*rc != 0 && *rc != ENOENT)
    return make_failure("nft", "dump: " + errno_text(*rc));
  return unit{};
}

result<table_view> read_once(nl_socket& s, bool& intr) {
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
      if (!message_attrs(m, tb) || !str_is(tb[NFTA_SET_TABLE], table_name)
          || !str_is(tb[NFTA_SET_NAME], map_name))
        return;
      v.map_present = true;
      auto flags = u32_attr(tb[NFTA_SET_FLAGS]).value_or(0);
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
      bool pre = *name == prerouting_chain;
      if (!pre && *name != output_chain)
        return;
      std::optional<uint32_t> hook;
      std::optional<uint32_t> prio;
      if (nested(tb[NFTA_CHAIN_HOOK])) {
        attr_table<NFTA_HOOK_MAX + 1> ht;
        nested_attrs(tb[NFTA_CHAIN_HOOK], ht);
        hook = u32_attr(ht[NFTA_HOOK_HOOKNUM]);
        prio = u32_attr(ht[NFTA_HOOK_PRIORITY]);
      }
      bool ours = str_is(tb[NFTA_CHAIN_TYPE], "nat")
                  && hook
                       == (pre ? uint32_t{NF_INET_PRE_ROUTING}
                               : uint32_t{NF_INET_LOCAL_OUT})
                  && prio == static_cast<uint32_t>(chain_priority);
      (pre ? v.pre_chain : v.out_chain) = true;
      (pre ? v.pre_chain_ours : v.out_chain_ours) = ours;
    });
  if (!chains)
    return chains.error();
  const auto udata = rule_udata();
  auto rules = dump(
    s, NFT_MSG_GETRULE, intr,
    [](nlmsghdr* n) { mnl_attr_put_strz(n, NFTA_RULE_TABLE, table_name); },
    [&](const nlmsghdr* m) {
      attr_table<NFTA_RULE_MAX + 1> tb;
      if (!message_attrs(m, tb) || !str_is(tb[NFTA_RULE_TABLE], table_name))
        return;
      auto chain = str_attr(tb[NFTA_RULE_CHAIN]).value_or("");
      auto* u = tb[NFTA_RULE_USERDATA];
      bool ours
        = u != nullptr && mnl_attr_get_payload_len(u) == udata.size()
          && std::memcmp(mnl_attr_get_payload(u), udata.data(), udata.size())
               == 0;
      if (ours && chain == prerouting_chain)
        ++v.pre_rules;
      else if (ours && chain == output_chain)
        ++v.out_rules;
      else
        ++v.foreign_rules;
    });
  if (!rules)
    return rules.error();
  if (!v.map_ours)
    return v;
  auto elems = dump(
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
  if (!elems)
    return elems.error();
  return v;
}

/// Our table, read consistently: again when the ruleset changed meanwhile.
result<table_view> read_view(nl_socket& s) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto g0 = generation(s);
    if (!g0)
      return g0.error();
    bool intr = false;
    auto v = read_once(s, intr);
    if (!v)
      return v.error();
    auto g1 = generation(s);
    if (!g1)
      return g1.error();
    if (*g0 == *g1 && !intr) {
      v->gen = *g0;
      return v;
    }
  }
  return make_failure("busy", "the ruleset kept changing while reading it");
}

// --- batches -----------------------------------------------------------------

/// One nftables transaction: BEGIN, messages, END (with an ack).
class batch {
public:
  explicit batch(nl_socket& s) : s_(s), scratch_(scratch_size) {
    auto* h = nftnl_batch_begin(scratch_.data(), ++s_.seq);
    first_ = h->nlmsg_seq;
    append(h, "begin");
  }

  nlmsghdr* start(uint16_t type, uint16_t flags) {
    return nftnl_nlmsg_build_hdr(scratch_.data(), type, NFPROTO_IPV4, flags,
                                 ++s_.seq);
  }

  void append(const nlmsghdr* h, const char* what) {
    auto* p = reinterpret_cast<const char*>(h);
    buf_.insert(buf_.end(), p, p + NLMSG_ALIGN(h->nlmsg_len));
    what_.emplace_back(h->nlmsg_seq, what);
  }

  void finish() {
    auto* h = nftnl_batch_end(scratch_.data(), ++s_.seq);
    h->nlmsg_flags |= NLM_F_ACK;
    last_ = h->nlmsg_seq;
    append(h, "end");
  }

  /// Sends the batch and waits for its end: fine, or the kernel's first
  /// complaint (the transaction was then aborted as a whole).
  result<unit> send() {
    int fd = mnl_socket_get_fd(s_.sock);
    auto need = static_cast<int>(buf_.size() + (64 << 10));
    if (need > s_.sndbuf) {
      if (::setsockopt(fd, SOL_SOCKET, SO_SNDBUFFORCE, &need, sizeof need) != 0)
        ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &need, sizeof need);
      s_.sndbuf = need;
    }
    if (mnl_socket_sendto(s_.sock, buf_.data(), buf_.size()) < 0)
      return transport("send batch", errno);
    // The kernel runs the whole batch inside sendmsg(): its answers are
    // queued by now. The end's ack closes them; when the batch failed
    // there may be none, only the errors.
    std::optional<failure> first_error;
    for (;;) {
      auto n = ::recv(fd, s_.rbuf.data(), s_.rbuf.size(),
                      first_error ? MSG_DONTWAIT : 0);
      if (n < 0) {
        if (errno == EINTR)
          continue;
        if (first_error && (errno == EAGAIN || errno == EWOULDBLOCK))
          return *first_error;
        if (errno == EAGAIN || errno == EWOULDBLOCK)
          return make_failure("netlink",
                              "no answer to the batch from the kernel in time");
        return transport("receive", errno);
      }
      int len = static_cast<int>(n);
      auto* h = reinterpret_cast<nlmsghdr*>(s_.rbuf.data());
      for (; msg_ok(h, len); h = mnl_nlmsg_next(h, &len)) {
        if (h->nlmsg_type != NLMSG_ERROR || h->nlmsg_seq < first_
            || h->nlmsg_seq > last_)
          continue;
        if (mnl_nlmsg_get_payload_len(h) < sizeof(nlmsgerr))
          return make_failure("netlink", "short error message");
        nlmsgerr err{};
        std::memcpy(&err, mnl_nlmsg_get_payload(h), sizeof err);
        if (err.error != 0 && !first_error) {
          errno_ = errno_of(err.error);
          first_error = make_failure("nft", describe(h, errno_));
        }
        if (h->nlmsg_seq == last_)
          return first_error ? result<unit>{*first_error} : unit{};
      }
    }
  }

  size_t size() const { return buf_.size(); }
  /// The kernel's first errno after a failed send() (0: none).
  int kernel_errno() const { return errno_; }

private:
  std::string describe(const nlmsghdr* h, int err) const {
    std::string what = "message";
    for (auto& [seq, w] : what_)
      if (seq == h->nlmsg_seq)
        what = w;
    std::string out = what + ": " + errno_text(err);
    // The kernel's reason (extended ack), when it gave one.
    // (Only when the kernel left out the failed request: NETLINK_CAP_ACK.)
    if ((h->nlmsg_flags & NLM_F_ACK_TLVS) != 0
        && (h->nlmsg_flags & NLM_F_CAPPED) != 0) {
      auto* p
        = static_cast<const char*>(mnl_nlmsg_get_payload(h)) + sizeof(nlmsgerr);
      each_attr(p, end_of(h), [&](const nlattr* a) {
        if (mnl_attr_get_type(a) == NLMSGERR_ATTR_MSG)
          if (auto s = str_attr(a))
            out += " (" + *s + ")";
      });
    }
    return out;
  }

  nl_socket& s_;
  std::vector<char> scratch_;
  std::vector<char> buf_;
  std::vector<std::pair<uint32_t, const char*>> what_;
  uint32_t first_ = 0;
  uint32_t last_ = 0;
  int errno_ = 0;
};

template <class T, void (*Free)(const T*)>
struct owned {
  T* p;
  explicit owned(T* x) : p(x) {}
  ~owned() { Free(p); }
  owned(const owned&) = delete;
  owned& operator=(const owned&) = delete;
};

void add_delete_table(batch& b) {
  auto* h = b.start(NFT_MSG_DELTABLE, 0);
  mnl_attr_put_strz(h, NFTA_TABLE_NAME, table_name);
  b.append(h, "delete table");
}

nftnl_expr* expr_u32s(const char* name,
                      std::initializer_list<std::pair<uint16_t, uint32_t>> kv) {
  auto* e = nftnl_expr_alloc(name);
  for (auto [k, v] : kv)
    nftnl_expr_set_u32(e, k, v);
  return e;
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

/// Table, map, both chains and their rules.
void add_layout(batch& b) {
  {
    owned<nftnl_table, nftnl_table_free> t{nftnl_table_alloc()};
    nftnl_table_set_str(t.p, NFTNL_TABLE_NAME, table_name);
    auto* h = b.start(NFT_MSG_NEWTABLE, NLM_F_CREATE);
    nftnl_table_nlmsg_build_payload(h, t.p);
    b.append(h, "add table");
  }
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
  for (bool output : {false, true}) {
    owned<nftnl_chain, nftnl_chain_free> c{nftnl_chain_alloc()};
    nftnl_chain_set_str(c.p, NFTNL_CHAIN_TABLE, table_name);
    nftnl_chain_set_str(c.p, NFTNL_CHAIN_NAME,
                        output ? output_chain : prerouting_chain);
    nftnl_chain_set_u32(c.p, NFTNL_CHAIN_HOOKNUM,
                        output ? NF_INET_LOCAL_OUT : NF_INET_PRE_ROUTING);
    nftnl_chain_set_s32(c.p, NFTNL_CHAIN_PRIO, chain_priority);
    nftnl_chain_set_str(c.p, NFTNL_CHAIN_TYPE, "nat");
    nftnl_chain_set_u32(c.p, NFTNL_CHAIN_POLICY, NF_ACCEPT);
    auto* h = b.start(NFT_MSG_NEWCHAIN, NLM_F_CREATE);
    nftnl_chain_nlmsg_build_payload(h, c.p);
    b.append(h, output ? "add output chain" : "add prerouting chain");
  }
  add_rule(b, false);
  add_rule(b, true);
}

/// Element messages: `vals` null for deletes.
void add_elems(
  batch& b, bool add,
  const std::vector<std::pair<const key_bytes*, const elem_value*>>& ops) {
  size_t i = 0;
  while (i < ops.size()) {
    auto* h = b.start(add ? NFT_MSG_NEWSETELEM : NFT_MSG_DELSETELEM,
                      add ? NLM_F_CREATE : 0);
    mnl_attr_put_strz(h, NFTA_SET_ELEM_LIST_TABLE, table_name);
    mnl_attr_put_strz(h, NFTA_SET_ELEM_LIST_SET, map_name);
    mnl_attr_put_u32(h, NFTA_SET_ELEM_LIST_SET_ID, htobe32(set_id));
    auto* list = mnl_attr_nest_start(h, NFTA_SET_ELEM_LIST_ELEMENTS);
    for (; i < ops.size() && h->nlmsg_len < message_fill; ++i) {
      auto* e = mnl_attr_nest_start(h, NFTA_LIST_ELEM);
      auto* k = mnl_attr_nest_start(h, NFTA_SET_ELEM_KEY);
      mnl_attr_put(h, NFTA_DATA_VALUE, key_len, ops[i].first->data());
      mnl_attr_nest_end(h, k);
      if (add) {
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
  bool layout = false;     ///< (re)create table, map, chains, rules
  bool drop_table = false; ///< delete the table first
  std::vector<std::pair<const key_bytes*, const elem_value*>> dels;
  std::vector<std::pair<const key_bytes*, const elem_value*>> adds;
  size_t removed = 0; ///< elements that go
  /// With layout: every element the new table gets (adds point here).
  elem_map<elem_value> after;
  bool empty() const { return !layout && dels.empty() && adds.empty(); }
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
  }
  if (known.sound())
    return p;
  // A fresh table, or ours as it should be again: everything in anew,
  // out-of-scope elements of our shape (not someone else's) included.
  p.layout = true;
  p.drop_table = known.table;
  p.dels.clear();
  p.adds.clear();
  p.after.reserve(known.elems.size() + w.elems.size());
  for (auto& [k, v] : known.elems)
    if (!covers(k) && rule_of(k, v))
      p.after.emplace(k, v);
  for (auto& [k, v] : w.elems)
    p.after[k] = v;
  for (auto& [k, v] : p.after)
    p.adds.emplace_back(&k, &v);
  return p;
}

/// The counters of the elements in one NEWSETELEM message of our map.
void counters_of(const nlmsghdr* m, std::vector<nft_counter>& out) {
  parse_elems(m, [&](const parsed_elem& e) {
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
  });
}

} // namespace

std::vector<nft_counter> detail::parse_counters(const void* data, size_t size) {
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
      counters_of(h, out);
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
    v.emplace(read_view(**s));
    if (!*v && is_transport(v->error()))
      read_sock_.reset();
  }
  if (!*v)
    return v->error();
  std::lock_guard<std::mutex> guard{mtx_};
  if (generation_ != seen)
    return false;
  known_ = std::make_unique<table_view>(std::move(**v));
  return true;
}

result<std::vector<nft_counter>> nft_dnat_table::counters() {
  std::lock_guard<std::mutex> guard{read_mtx_};
  for (int attempt = 0; attempt < 3; ++attempt) {
    auto s = ensure(read_sock_, opts_);
    if (!s)
      return s.error();
    std::vector<nft_counter> out;
    bool intr = false;
    auto r = dump(
      **s, NFT_MSG_GETSETELEM, intr,
      [](nlmsghdr* n) {
        mnl_attr_put_strz(n, NFTA_SET_ELEM_LIST_TABLE, table_name);
        mnl_attr_put_strz(n, NFTA_SET_ELEM_LIST_SET, map_name);
      },
      [&](const nlmsghdr* m) { counters_of(m, out); });
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
    batch b{**s};
    if (p.drop_table)
      add_delete_table(b);
    if (p.layout)
      add_layout(b);
    add_elems(b, false, p.dels);
    add_elems(b, true, p.adds);
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
    rep.rebuilt = rep.rebuilt || p.drop_table; // the table made anew
    rep.added += p.adds.size();
    rep.deleted += p.removed;
    if (p.layout) {
      known_->elems = std::move(p.after);
      known_->make_sound();
    } else {
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
  auto s = ensure(sock_, opts_);
  if (!s)
    return s.error();
  batch b{**s};
  add_delete_table(b);
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
