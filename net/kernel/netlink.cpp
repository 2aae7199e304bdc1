// SPDX-License-Identifier: MIT
// IPv4 addresses of an interface over rtnetlink (libmnl): add, remove, list.
#include "net/kernel/netlink.hpp"

#include <arpa/inet.h>
#include <libmnl/libmnl.h>
#include <linux/if_addr.h>
#include <linux/if_link.h>
#include <linux/rtnetlink.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <functional>

namespace networkd::netlink {

namespace detail {

/// One NETLINK_ROUTE socket and the request/answer exchange on it.
struct rtnl_socket {
  mnl_socket* nl = nullptr;
  uint32_t portid = 0;
  uint32_t seq = 0;
  // Link and address answers are small, but dumps batch many of them.
  std::vector<char> buf = std::vector<char>(32 * 1024);

  ~rtnl_socket() {
    if (nl != nullptr)
      mnl_socket_close(nl);
  }

  /// Sends `nlh` and hands every answer of this request to `on_msg` until
  /// the ACK (with NLM_F_ACK), NLMSG_DONE (dumps), or the first answer
  /// (plain gets). Returns 0 or the kernel's errno.
  int exchange(nlmsghdr* nlh,
               const std::function<void(const nlmsghdr*)>& on_msg) {
    nlh->nlmsg_seq = ++seq;
    bool dump = (nlh->nlmsg_flags & NLM_F_DUMP) == NLM_F_DUMP;
    bool ack = (nlh->nlmsg_flags & NLM_F_ACK) != 0;
    if (mnl_socket_sendto(nl, nlh, nlh->nlmsg_len) < 0)
      return errno;
    for (;;) {
      auto n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return errno; // EAGAIN: SO_RCVTIMEO passed
      }
      auto len = static_cast<int>(n);
      for (auto* msg = reinterpret_cast<const nlmsghdr*>(buf.data());
           mnl_nlmsg_ok(msg, len); msg = mnl_nlmsg_next(msg, &len)) {
        if (msg->nlmsg_seq != seq)
          continue; // the late answer of an earlier request that timed out
        if (msg->nlmsg_type == NLMSG_ERROR) {
          auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(msg));
          return -err->error;
        }
        if (msg->nlmsg_type == NLMSG_DONE) {
          int code = 0;
          if (mnl_nlmsg_get_payload_len(msg) >= sizeof(int))
            std::memcpy(&code, mnl_nlmsg_get_payload(msg), sizeof(int));
          return code < 0 ? -code : 0;
        }
        on_msg(msg);
        if (!dump && !ack)
          return 0;
      }
    }
  }

  /// Sends `len` bytes of requests (each with NLM_F_ACK, sequence numbers
  /// first .. first + count - 1) in one datagram and reads their ACKs:
  /// errs[i] is 0 or the kernel's errno for request i. Returns 0, or the
  /// errno of the send or of a receive (then the requests without an ACK
  /// keep that errno).
  int exchange_all(const char* data, size_t len, uint32_t first, size_t count,
                   std::vector<int>& errs) {
    constexpr int no_answer = -1;
    errs.assign(count, no_answer);
    auto fail_rest = [&](int err) {
      for (auto& e : errs)
        if (e == no_answer)
          e = err;
      return err;
    };
    if (mnl_socket_sendto(nl, data, len) < 0)
      return fail_rest(errno);
    size_t left = count;
    while (left > 0) {
      auto n = mnl_socket_recvfrom(nl, buf.data(), buf.size());
      if (n < 0) {
        if (errno == EINTR)
          continue;
        return fail_rest(errno);
      }
      auto rest = static_cast<int>(n);
      for (auto* msg = reinterpret_cast<const nlmsghdr*>(buf.data());
           mnl_nlmsg_ok(msg, rest); msg = mnl_nlmsg_next(msg, &rest)) {
        uint32_t i = msg->nlmsg_seq - first;
        if (msg->nlmsg_type != NLMSG_ERROR || i >= count
            || errs[i] != no_answer)
          continue; // an earlier request's late answer
        auto* err = static_cast<const nlmsgerr*>(mnl_nlmsg_get_payload(msg));
        errs[i] = -err->error;
        --left;
      }
    }
    return 0;
  }
};

} // namespace detail

namespace {

using detail::rtnl_socket;

failure errno_failure(int err, const std::string& what) {
  std::string code = "netlink";
  switch (err) {
    case ENODEV:
      code = "no_device";
      break;
    case EPERM:
    case EACCES:
      code = "permission";
      break;
    case EINVAL:
      code = "invalid";
      break;
    case EAGAIN:
      code = "timeout";
      break;
    default:
      break;
  }
  return make_failure(code, what + ": " + std::strerror(err));
}

result<std::unique_ptr<rtnl_socket>> open_socket(unsigned groups) {
  auto sock = std::make_unique<rtnl_socket>();
  sock->nl = mnl_socket_open2(NETLINK_ROUTE, SOCK_CLOEXEC);
  if (sock->nl == nullptr)
    return errno_failure(errno, "netlink socket");
  if (mnl_socket_bind(sock->nl, groups, MNL_SOCKET_AUTOPID) < 0)
    return errno_failure(errno, "netlink bind");
  sock->portid = mnl_socket_get_portid(sock->nl);
  int fd = mnl_socket_get_fd(sock->nl);
  // A kernel that never answers must not hang the caller forever.
  timeval tv{5, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  if (groups != 0) {
    // Bursts (thousands of VIPs at start) must not overrun the watcher.
    int size = 1 << 20;
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof(size));
  }
  return sock;
}

result<uint32_t> parse_ipv4(const std::string& ip) {
  in_addr a{};
  if (::inet_pton(AF_INET, ip.c_str(), &a) != 1)
    return make_failure("invalid", "not an IPv4 address: '" + ip + "'");
  return a.s_addr;
}

std::string format_ipv4(uint32_t net_order) {
  char text[INET_ADDRSTRLEN] = {};
  in_addr a{};
  a.s_addr = net_order;
  ::inet_ntop(AF_INET, &a, text, sizeof(text));
  return text;
}

/// Reads an RTM_NEWADDR/RTM_DELADDR message; false when it is not IPv4.
bool parse_address(const nlmsghdr* nlh, address_info& out) {
  auto* ifa = static_cast<const ifaddrmsg*>(mnl_nlmsg_get_payload(nlh));
  if (ifa->ifa_family != AF_INET)
    return false;
  const nlattr* tb[IFA_MAX + 1] = {};
  mnl_attr_parse(
    nlh, sizeof(*ifa),
    [](const nlattr* attr, void* data) {
      auto type = mnl_attr_get_type(attr);
      if (type <= IFA_MAX)
        static_cast<const nlattr**>(data)[type] = attr;
      return MNL_CB_OK;
    },
    tb);
  const nlattr* addr
    = tb[IFA_LOCAL] != nullptr ? tb[IFA_LOCAL] : tb[IFA_ADDRESS];
  if (addr == nullptr || mnl_attr_get_payload_len(addr) != 4)
    return false;
  out.address = format_ipv4(mnl_attr_get_u32(addr));
  out.prefix = ifa->ifa_prefixlen;
  out.ifindex = static_cast<int>(ifa->ifa_index);
  out.flags = ifa->ifa_flags;
  if (tb[IFA_FLAGS] != nullptr && mnl_attr_get_payload_len(tb[IFA_FLAGS]) == 4)
    out.flags = mnl_attr_get_u32(tb[IFA_FLAGS]);
  if (tb[IFA_CACHEINFO] != nullptr
      && mnl_attr_get_payload_len(tb[IFA_CACHEINFO]) >= sizeof(ifa_cacheinfo)) {
    ifa_cacheinfo ci{};
    std::memcpy(&ci, mnl_attr_get_payload(tb[IFA_CACHEINFO]), sizeof(ci));
    out.valid_lft = ci.ifa_valid;
    out.preferred_lft = ci.ifa_prefered;
  }
  return true;
}

nlmsghdr* put_address_request(char* buf, uint16_t type, uint16_t flags,
                              int ifindex, uint32_t addr) {
  auto* nlh = mnl_nlmsg_put_header(buf);
  nlh->nlmsg_type = type;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_ACK | flags;
  auto* ifa = static_cast<ifaddrmsg*>(
    mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  ifa->ifa_prefixlen = 32;
  ifa->ifa_scope = RT_SCOPE_UNIVERSE;
  ifa->ifa_index = static_cast<uint32_t>(ifindex);
  mnl_attr_put_u32(nlh, IFA_LOCAL, addr);
  mnl_attr_put_u32(nlh, IFA_ADDRESS, addr);
  return nlh;
}

} // namespace

rtnl_address_manager::rtnl_address_manager(std::unique_ptr<rtnl_socket> sock)
    : sock_(std::move(sock)) {}

rtnl_address_manager::~rtnl_address_manager() = default;

result<std::unique_ptr<rtnl_address_manager>> rtnl_address_manager::open() {
  auto sock = open_socket(0);
  if (!sock)
    return sock.error();
  return std::unique_ptr<rtnl_address_manager>(
    new rtnl_address_manager(std::move(*sock)));
}

result<int> rtnl_address_manager::index_of(const std::string& ifname) {
  std::lock_guard<std::mutex> guard{mtx_};
  return index_locked(ifname);
}

result<int> rtnl_address_manager::index_locked(const std::string& ifname) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    return make_failure("invalid", "bad interface name '" + ifname + "'");
  char req[MNL_SOCKET_BUFFER_SIZE];
  auto* nlh = mnl_nlmsg_put_header(req);
  nlh->nlmsg_type = RTM_GETLINK;
  nlh->nlmsg_flags = NLM_F_REQUEST;
  mnl_nlmsg_put_extra_header(nlh, sizeof(ifinfomsg));
  mnl_attr_put_strz(nlh, IFLA_IFNAME, ifname.c_str());
  // Ask for the bare link: no VF or stats blobs in the answer.
  mnl_attr_put_u32(nlh, IFLA_EXT_MASK, 0);
  int index = 0;
  int err = sock_->exchange(nlh, [&](const nlmsghdr* msg) {
    if (msg->nlmsg_type == RTM_NEWLINK)
      index
        = static_cast<const ifinfomsg*>(mnl_nlmsg_get_payload(msg))->ifi_index;
  });
  if (err != 0)
    return errno_failure(err, "interface " + ifname);
  if (index <= 0)
    return make_failure("no_device", "interface " + ifname + ": not found");
  return index;
}

result<unit> rtnl_address_manager::add(const std::string& ifname,
                                       const std::string& ip,
                                       uint32_t valid_lft) {
  auto addr = parse_ipv4(ip);
  if (!addr)
    return addr.error();
  if (valid_lft == 0)
    return make_failure("invalid", "valid lifetime of " + ip + " must be > 0");
  std::lock_guard<std::mutex> guard{mtx_};
  auto index = index_locked(ifname);
  if (!index)
    return index.error();
  char req[MNL_SOCKET_BUFFER_SIZE];
  // CREATE|REPLACE: a second add of the same /32 updates its lifetimes
  // instead of failing with EEXIST.
  auto* nlh = put_address_request(req, RTM_NEWADDR,
                                  NLM_F_CREATE | NLM_F_REPLACE, *index, *addr);
  ifa_cacheinfo ci{};
  ci.ifa_prefered = 0;
  ci.ifa_valid = valid_lft;
  mnl_attr_put(nlh, IFA_CACHEINFO, sizeof(ci), &ci);
  int err = sock_->exchange(nlh, [](const nlmsghdr*) {});
  if (err != 0)
    return errno_failure(err, "add " + ip + "/32 on " + ifname);
  return unit{};
}

std::vector<result<bool>>
rtnl_address_manager::each(const std::string& ifname,
                           const std::vector<std::string>& ips, bool add,
                           uint32_t valid_lft) {
  std::vector<result<bool>> out;
  out.reserve(ips.size());
  std::lock_guard<std::mutex> guard{mtx_};
  auto index = index_locked(ifname);
  if (!index) {
    out.assign(ips.size(), index.error());
    return out;
  }
  // 64 requests of ~60 bytes to a datagram; their ACKs fit the receive
  // buffer many times over.
  constexpr size_t per_send = 64;
  constexpr size_t room = 128; // one request, aligned, with room to spare
  std::vector<char> buf(per_send * room);
  std::vector<size_t> sent; // positions in ips
  std::vector<int> errs;
  for (size_t at = 0; at < ips.size();) {
    size_t len = 0;
    sent.clear();
    uint32_t first = sock_->seq + 1;
    for (; at < ips.size() && sent.size() < per_send; ++at) {
      auto addr = parse_ipv4(ips[at]);
      out.emplace_back(true);
      if (!addr) {
        out.back() = addr.error();
        continue;
      }
      // CREATE|REPLACE: adding a /32 that is there replaces its lifetimes.
      auto* nlh = put_address_request(
        buf.data() + len, add ? RTM_NEWADDR : RTM_DELADDR,
        add ? NLM_F_CREATE | NLM_F_REPLACE : 0, *index, *addr);
      if (add) {
        ifa_cacheinfo ci{};
        ci.ifa_valid = valid_lft;
        mnl_attr_put(nlh, IFA_CACHEINFO, sizeof(ci), &ci);
      }
      nlh->nlmsg_seq = ++sock_->seq;
      len += NLMSG_ALIGN(nlh->nlmsg_len);
      sent.push_back(at);
    }
    if (sent.empty())
      continue;
    sock_->exchange_all(buf.data(), len, first, sent.size(), errs);
    for (size_t i = 0; i < sent.size(); ++i) {
      auto& ip = ips[sent[i]];
      int err = errs[i];
      if (!add && (err == EADDRNOTAVAIL || err == ENOENT))
        out[sent[i]] = false;
      else if (err != 0)
        out[sent[i]]
          = errno_failure(err, add ? "add " + ip + "/32 on " + ifname
                                   : "remove " + ip + "/32 from " + ifname);
    }
  }
  return out;
}

std::vector<std::pair<std::string, failure>>
rtnl_address_manager::add_all(const std::string& ifname,
                              const std::vector<std::string>& ips,
                              uint32_t valid_lft) {
  std::vector<std::pair<std::string, failure>> failed;
  if (valid_lft == 0) {
    for (auto& ip : ips)
      failed.emplace_back(ip, make_failure("invalid", "valid lifetime of " + ip
                                                        + " must be > 0"));
    return failed;
  }
  auto done = each(ifname, ips, true, valid_lft);
  for (size_t i = 0; i < ips.size(); ++i)
    if (!done[i])
      failed.emplace_back(ips[i], done[i].error());
  return failed;
}

std::vector<result<bool>>
rtnl_address_manager::remove_all(const std::string& ifname,
                                 const std::vector<std::string>& ips) {
  return each(ifname, ips, false, 0);
}

result<bool> rtnl_address_manager::remove(const std::string& ifname,
                                          const std::string& ip) {
  auto addr = parse_ipv4(ip);
  if (!addr)
    return addr.error();
  std::lock_guard<std::mutex> guard{mtx_};
  auto index = index_locked(ifname);
  if (!index)
    return index.error();
  char req[MNL_SOCKET_BUFFER_SIZE];
  auto* nlh = put_address_request(req, RTM_DELADDR, 0, *index, *addr);
  int err = sock_->exchange(nlh, [](const nlmsghdr*) {});
  if (err == EADDRNOTAVAIL || err == ENOENT)
    return false;
  if (err != 0)
    return errno_failure(err, "remove " + ip + "/32 from " + ifname);
  return true;
}

result<std::vector<address_info>>
rtnl_address_manager::list(const std::string& ifname) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto index = index_locked(ifname);
  if (!index)
    return index.error();
  char req[MNL_SOCKET_BUFFER_SIZE];
  auto* nlh = mnl_nlmsg_put_header(req);
  nlh->nlmsg_type = RTM_GETADDR;
  nlh->nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  auto* ifa = static_cast<ifaddrmsg*>(
    mnl_nlmsg_put_extra_header(nlh, sizeof(ifaddrmsg)));
  ifa->ifa_family = AF_INET;
  std::vector<address_info> out;
  int err = sock_->exchange(nlh, [&](const nlmsghdr* msg) {
    address_info info;
    if (msg->nlmsg_type == RTM_NEWADDR && parse_address(msg, info)
        && info.ifindex == *index)
      out.push_back(std::move(info));
  });
  if (err != 0)
    return errno_failure(err, "list addresses of " + ifname);
  return out;
}

address_watch::address_watch(std::unique_ptr<rtnl_socket> sock, int ifindex)
    : sock_(std::move(sock)), ifindex_(ifindex) {}

address_watch::~address_watch() = default;

result<std::unique_ptr<address_watch>>
address_watch::open(const std::string& ifname) {
  int index = 0;
  if (!ifname.empty()) {
    auto mgr = rtnl_address_manager::open();
    if (!mgr)
      return mgr.error();
    auto found = (*mgr)->index_of(ifname);
    if (!found)
      return found.error();
    index = *found;
  }
  auto sock = open_socket(RTMGRP_IPV4_IFADDR);
  if (!sock)
    return sock.error();
  return std::unique_ptr<address_watch>(
    new address_watch(std::move(*sock), index));
}

int address_watch::fd() const {
  return mnl_socket_get_fd(sock_->nl);
}

result<std::vector<address_event>>
address_watch::read(std::chrono::milliseconds timeout) {
  std::vector<address_event> events;
  pollfd p{fd(), POLLIN, 0};
  int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready < 0 && errno != EINTR)
    return errno_failure(errno, "poll address events");
  if (ready <= 0)
    return events;
  for (;;) {
    auto n = ::recv(fd(), sock_->buf.data(), sock_->buf.size(), MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return events;
      if (errno == ENOBUFS) {
        events.push_back({address_event::kind::overrun, {}});
        continue;
      }
      return errno_failure(errno, "read address events");
    }
    auto len = static_cast<int>(n);
    for (auto* msg = reinterpret_cast<const nlmsghdr*>(sock_->buf.data());
         mnl_nlmsg_ok(msg, len); msg = mnl_nlmsg_next(msg, &len)) {
      if (msg->nlmsg_type != RTM_NEWADDR && msg->nlmsg_type != RTM_DELADDR)
        continue;
      address_event ev;
      if (!parse_address(msg, ev.address))
        continue;
      if (ifindex_ != 0 && ev.address.ifindex != ifindex_)
        continue;
      ev.what = msg->nlmsg_type == RTM_NEWADDR ? address_event::kind::added
                                               : address_event::kind::removed;
      events.push_back(std::move(ev));
    }
  }
}

} // namespace networkd::netlink
