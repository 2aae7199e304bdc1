// SPDX-License-Identifier: MIT
// What the nftables backends (nft.cpp: the DNAT map, nft_acl.cpp: the ACL)
// share: a NETLINK_NETFILTER socket in a namespace, bounded parsing of the
// kernel's answers (no recursion), requests, dumps and one-transaction
// batches. Internal to net/kernel.
#pragma once

#include "net/base/result.hpp"

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
#include <linux/netfilter/nf_conntrack_common.h>
#include <linux/netfilter/nf_tables.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netlink.h>

#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace networkd::nft::detail {

/// A batch's scratch buffer for one message.
constexpr size_t scratch_size = 1 << 17;

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

inline failure transport(const std::string& what, int err) {
  return make_failure("netlink", what + ": " + std::strerror(err));
}

inline bool is_transport(const failure& f) {
  return f.code == "netlink";
}

/// The errno in a netlink error code (0 or minus an errno); EPROTO for
/// anything else.
inline int errno_of(int code) {
  if (code == 0)
    return 0;
  return code < 0 && code > -4096 ? -code : EPROTO;
}

inline std::string errno_text(int err) {
  return std::string(std::strerror(err)) + " (" + std::to_string(err) + ")";
}

// --- sockets ---------------------------------------------------------------

inline result<std::unique_ptr<nl_socket>>
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
inline result<std::unique_ptr<nl_socket>>
open_socket(const std::string& netns, std::chrono::milliseconds t) {
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

// --- attributes of replies (bounded loops, no recursion) -------------------

/// Whether a whole message starts at `h` with `len` bytes left. (libmnl's
/// mnl_nlmsg_ok() compares the length as an int: one over 2 GiB passes.)
inline bool msg_ok(const nlmsghdr* h, int len) {
  return len >= static_cast<int>(sizeof(nlmsghdr))
         && h->nlmsg_len >= sizeof(nlmsghdr)
         && h->nlmsg_len <= static_cast<uint32_t>(len);
}

inline const char* end_of(const nlmsghdr* nlh) {
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

inline std::optional<std::string> str_attr(const nlattr* a) {
  if (a == nullptr || mnl_attr_validate(a, MNL_TYPE_NUL_STRING) < 0)
    return std::nullopt;
  return std::string(mnl_attr_get_str(a));
}

inline bool str_is(const nlattr* a, const char* want) {
  auto s = str_attr(a);
  return s && *s == want;
}

inline std::optional<uint32_t> u32_attr(const nlattr* a) {
  if (a == nullptr || mnl_attr_validate(a, MNL_TYPE_U32) < 0)
    return std::nullopt;
  return be32toh(mnl_attr_get_u32(a));
}

inline std::optional<uint64_t> u64_attr(const nlattr* a) {
  if (a == nullptr || mnl_attr_validate(a, MNL_TYPE_U64) < 0)
    return std::nullopt;
  uint64_t v = 0;
  std::memcpy(&v, mnl_attr_get_payload(a), sizeof v);
  return be64toh(v);
}

inline bool nested(const nlattr* a) {
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

/// The comment in an element's or rule's user data (TLV type 0).
inline std::string comment_of(const nlattr* udata) {
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

inline result<uint32_t> generation(nl_socket& s) {
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

inline nftnl_expr*
expr_u32s(const char* name,
          std::initializer_list<std::pair<uint16_t, uint32_t>> kv) {
  auto* e = nftnl_expr_alloc(name);
  for (auto [k, v] : kv)
    nftnl_expr_set_u32(e, k, v);
  return e;
}

/// Deletes a table (with all in it), a chain (with its rules) or a set.
inline void add_delete(batch& b, uint16_t type, const char* table,
                       const char* name, const char* what) {
  auto* h = b.start(type, 0);
  switch (type) {
    case NFT_MSG_DELTABLE:
      mnl_attr_put_strz(h, NFTA_TABLE_NAME, table);
      break;
    case NFT_MSG_DELCHAIN:
      mnl_attr_put_strz(h, NFTA_CHAIN_TABLE, table);
      mnl_attr_put_strz(h, NFTA_CHAIN_NAME, name);
      break;
    default:
      mnl_attr_put_strz(h, NFTA_SET_TABLE, table);
      mnl_attr_put_strz(h, NFTA_SET_NAME, name);
      break;
  }
  b.append(h, what);
}

/// Creates `table` when missing (flags 0). The kernel refuses base chains
/// in the transaction that switches a dormant table on: wake_table() first.
inline void add_table(batch& b, const char* table) {
  owned<nftnl_table, nftnl_table_free> t{nftnl_table_alloc()};
  nftnl_table_set_str(t.p, NFTNL_TABLE_NAME, table);
  nftnl_table_set_u32(t.p, NFTNL_TABLE_FLAGS, 0);
  auto* h = b.start(NFT_MSG_NEWTABLE, NLM_F_CREATE);
  nftnl_table_nlmsg_build_payload(h, t.p);
  b.append(h, "add table");
}

/// Switches a dormant `table` on, in a transaction of its own.
inline result<unit> wake_table(nl_socket& s, const char* table) {
  batch b{s};
  add_table(b, table);
  b.finish();
  return b.send();
}

/// Opens `s` (in `netns`) when it is not open yet.
inline result<nl_socket*> ensure(std::unique_ptr<nl_socket>& s,
                                 const std::string& netns,
                                 std::chrono::milliseconds timeout) {
  if (!s) {
    auto r = open_socket(netns, timeout);
    if (!r)
      return r.error();
    s = std::move(*r);
  }
  return s.get();
}

/// User data holding one comment TLV (type 0), as nft writes a comment.
inline std::string comment_udata(const std::string& text) {
  std::string u;
  u += '\0';
  u += static_cast<char>(text.size() + 1);
  u += text;
  u += '\0';
  return u;
}

/// A view of our part of the table read consistently: `read_once(intr)`
/// again while the ruleset's generation moved during the read or a dump
/// was interrupted (at most 5 times).
/// `give_up`, asked after an attempt that met a change: true ends the
/// reading at once with "busy" (the caller would drop the view anyway).
template <class View, class ReadOnce>
result<View> read_consistent(nl_socket& s, ReadOnce&& read_once,
                             const std::function<bool()>& give_up = {}) {
  for (int attempt = 0; attempt < 5; ++attempt) {
    if (attempt > 0 && give_up && give_up())
      break;
    auto g0 = generation(s);
    if (!g0)
      return g0.error();
    bool intr = false;
    result<View> v = read_once(intr);
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

} // namespace networkd::nft::detail
