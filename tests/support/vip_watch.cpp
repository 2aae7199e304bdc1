// SPDX-License-Identifier: MIT
#include "tests/support/vip_watch.hpp"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sstream>
#include <stdexcept>

namespace networkd::test {

namespace {

uint32_t parse_ipv4(const std::string& ip) {
  in_addr a{};
  if (::inet_pton(AF_INET, ip.c_str(), &a) != 1)
    throw std::runtime_error("not an IPv4 address: " + ip);
  return a.s_addr;
}

std::string errno_text(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

/// One RTM_GETADDR dump (IPv4) on a netlink socket: 1 when some address
/// of the namespace is `addr`, 0 when none is, -1 on failure (*err set).
int dump_has(int fd, uint32_t seq, uint32_t addr, std::string* err) {
  struct {
    nlmsghdr nh;
    ifaddrmsg ifa;
  } req{};
  req.nh.nlmsg_len = NLMSG_LENGTH(sizeof(ifaddrmsg));
  req.nh.nlmsg_type = RTM_GETADDR;
  req.nh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  req.nh.nlmsg_seq = seq;
  req.ifa.ifa_family = AF_INET;
  sockaddr_nl to{};
  to.nl_family = AF_NETLINK;
  if (::sendto(fd, &req, req.nh.nlmsg_len, 0, reinterpret_cast<sockaddr*>(&to),
               sizeof(to))
      < 0) {
    *err = errno_text("netlink send");
    return -1;
  }
  bool found = false;
  alignas(nlmsghdr) char buf[32768];
  for (;;) {
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      *err = errno_text("netlink recv");
      return -1;
    }
    size_t len = static_cast<size_t>(n);
    size_t off = 0;
    while (off + sizeof(nlmsghdr) <= len) {
      auto* nh = reinterpret_cast<nlmsghdr*>(buf + off);
      if (nh->nlmsg_len < sizeof(nlmsghdr) || off + nh->nlmsg_len > len)
        break;
      off += NLMSG_ALIGN(nh->nlmsg_len);
      if (nh->nlmsg_seq != seq)
        continue; // a leftover of an earlier, failed dump
      if (nh->nlmsg_type == NLMSG_DONE)
        return found ? 1 : 0;
      if (nh->nlmsg_type == NLMSG_ERROR) {
        auto* e = reinterpret_cast<nlmsgerr*>(NLMSG_DATA(nh));
        *err = std::string{"netlink dump: "} + std::strerror(-e->error);
        return -1;
      }
      if (nh->nlmsg_type != RTM_NEWADDR)
        continue;
      auto* base = reinterpret_cast<char*>(nh);
      size_t a = NLMSG_LENGTH(NLMSG_ALIGN(sizeof(ifaddrmsg)));
      while (a + sizeof(rtattr) <= nh->nlmsg_len) {
        auto* rta = reinterpret_cast<rtattr*>(base + a);
        if (rta->rta_len < sizeof(rtattr) || a + rta->rta_len > nh->nlmsg_len)
          break;
        if (rta->rta_type == IFA_LOCAL && rta->rta_len == RTA_LENGTH(4)
            && std::memcmp(RTA_DATA(rta), &addr, 4) == 0)
          found = true;
        a += RTA_ALIGN(rta->rta_len);
      }
    }
  }
}

double ms_between(lab_clock::time_point t0, lab_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(t - t0).count();
}

} // namespace

// -- address_sampler ----------------------------------------------------------

address_sampler::address_sampler(std::vector<const netns*> nodes,
                                 std::string ip,
                                 std::chrono::microseconds period)
    : ip_(std::move(ip)), period_(period) {
  parse_ipv4(ip_); // throws on a bad address
  try {
    for (auto* ns : nodes)
      fds_.push_back(ns->run([] {
        // A netlink socket stays in the namespace it was made in.
        int fd = ::socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC, NETLINK_ROUTE);
        if (fd < 0)
          throw std::runtime_error(errno_text("netlink socket"));
        timeval tv{1, 0};
        ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
        sockaddr_nl sa{};
        sa.nl_family = AF_NETLINK;
        if (::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
          auto text = errno_text("netlink bind");
          ::close(fd);
          throw std::runtime_error(text);
        }
        return fd;
      }));
    held_.assign(fds_.size(), 0);
    thread_ = std::thread{[this] { loop(); }};
  } catch (...) {
    for (int fd : fds_)
      ::close(fd);
    throw;
  }
  // Rounds done before returning: the caller sees the present at once.
  if (!sync(std::chrono::milliseconds{5000})) {
    stop_ = true;
    thread_.join();
    for (int fd : fds_)
      ::close(fd);
    throw std::runtime_error("address sampler: no round in 5 s");
  }
}

address_sampler::~address_sampler() {
  stop_ = true;
  if (thread_.joinable())
    thread_.join();
  for (int fd : fds_)
    ::close(fd);
}

void address_sampler::loop() {
  auto addr = parse_ipv4(ip_);
  uint32_t seq = 0;
  lab_clock::time_point last_start{};
  std::vector<char> now_held(fds_.size());
  std::vector<lab_clock::time_point> at(fds_.size());
  while (!stop_) {
    auto start = lab_clock::now();
    std::string err;
    for (size_t i = 0; i < fds_.size(); ++i) {
      at[i] = lab_clock::now();
      std::string e;
      int r = dump_has(fds_[i], ++seq, addr, &e);
      if (r < 0) {
        if (err.empty())
          err = e;
        now_held[i] = held_[i];
      } else {
        now_held[i] = static_cast<char>(r);
      }
    }
    {
      std::lock_guard<std::mutex> guard{mtx_};
      auto round = rounds_.load() + 1;
      if (!err.empty() && error_.empty())
        error_ = err;
      std::vector<size_t> holders;
      for (size_t i = 0; i < fds_.size(); ++i) {
        if (now_held[i] != held_[i])
          changes_.push_back({at[i], round, i, now_held[i] != 0});
        if (now_held[i])
          holders.push_back(i);
      }
      held_ = now_held;
      if (holders.size() > 1) {
        ++overlap_rounds_;
        if (overlaps_.size() < 20)
          overlaps_.push_back({start, round, holders});
      }
      auto gap = std::chrono::duration_cast<std::chrono::microseconds>(
        start - last_start);
      if (round > 1 && gap > max_gap_) {
        max_gap_ = gap;
        max_gap_at_ = start;
      }
      last_start = start;
      rounds_ = round;
    }
    std::this_thread::sleep_until(start + period_);
  }
}

std::vector<address_sampler::change> address_sampler::changes() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return changes_;
}

std::vector<address_sampler::overlap> address_sampler::overlaps() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return overlaps_;
}

uint64_t address_sampler::overlap_rounds() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return overlap_rounds_;
}

uint64_t address_sampler::rounds() const {
  return rounds_.load();
}

bool address_sampler::held(size_t i) const {
  std::lock_guard<std::mutex> guard{mtx_};
  return held_.at(i) != 0;
}

bool address_sampler::held_between(size_t i, lab_clock::time_point from,
                                   lab_clock::time_point to) const {
  std::lock_guard<std::mutex> guard{mtx_};
  bool state = false;
  for (auto& c : changes_) {
    if (c.node != i)
      continue;
    if (c.at <= from) {
      state = c.held;
      continue;
    }
    if (c.at > to)
      break;
    if (c.held)
      return true;
  }
  return state;
}

std::chrono::microseconds address_sampler::max_round_gap() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return max_gap_;
}

lab_clock::time_point address_sampler::max_round_gap_at() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return max_gap_at_;
}

bool address_sampler::sync(std::chrono::milliseconds deadline) const {
  // The round running now may have started before this call: wait for
  // the one after it.
  auto target = rounds_.load() + 2;
  auto until = lab_clock::now() + deadline;
  while (rounds_.load() < target) {
    if (lab_clock::now() >= until)
      return false;
    std::this_thread::sleep_for(std::chrono::microseconds{200});
  }
  return true;
}

std::string address_sampler::error() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return error_;
}

std::string
address_sampler::timeline(lab_clock::time_point t0,
                          const std::vector<std::string>& names) const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::ostringstream out;
  char line[160];
  for (auto& c : changes_) {
    auto name
      = c.node < names.size() ? names[c.node] : "#" + std::to_string(c.node);
    std::snprintf(line, sizeof(line), "  %+10.1f ms  round %-7llu %s %s %s\n",
                  ms_between(t0, c.at),
                  static_cast<unsigned long long>(c.round), name.c_str(),
                  c.held ? "holds" : "drops", ip_.c_str());
    out << line;
  }
  return out.str();
}

// -- arp_claims ---------------------------------------------------------------

arp_claims::arp_claims(const netns& ns, const std::string& ifname,
                       std::string ip)
    : ip_(parse_ipv4(ip)) {
  fd_ = ns.run([&] {
    int fd = ::socket(AF_PACKET, SOCK_RAW | SOCK_CLOEXEC, htons(ETH_P_ARP));
    if (fd < 0)
      throw std::runtime_error(errno_text("packet socket"));
    sockaddr_ll sll{};
    sll.sll_family = AF_PACKET;
    sll.sll_protocol = htons(ETH_P_ARP);
    sll.sll_ifindex = static_cast<int>(::if_nametoindex(ifname.c_str()));
    if (sll.sll_ifindex == 0
        || ::bind(fd, reinterpret_cast<sockaddr*>(&sll), sizeof(sll)) != 0) {
      auto text = errno_text("packet socket on " + ifname);
      ::close(fd);
      throw std::runtime_error(text);
    }
    return fd;
  });
  thread_ = std::thread{[this] { loop(); }};
}

arp_claims::~arp_claims() {
  stop_ = true;
  if (thread_.joinable())
    thread_.join();
  ::close(fd_);
}

void arp_claims::loop() {
  // Ethernet header, then the ARP payload for Ethernet/IPv4 (RFC 826).
  constexpr size_t eth = 14;
  constexpr size_t arp = 28;
  while (!stop_) {
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, 20);
    if (r < 0 && errno != EINTR) {
      std::lock_guard<std::mutex> guard{mtx_};
      error_ = errno_text("poll");
      return;
    }
    if (r <= 0)
      continue;
    unsigned char buf[256];
    sockaddr_ll from{};
    socklen_t from_len = sizeof(from);
    auto n = ::recvfrom(fd_, buf, sizeof(buf), 0,
                        reinterpret_cast<sockaddr*>(&from), &from_len);
    auto at = lab_clock::now();
    if (n < static_cast<ssize_t>(eth + arp)
        || from.sll_pkttype == PACKET_OUTGOING)
      continue;
    const unsigned char* a = buf + eth;
    bool ether_ipv4 = a[0] == 0 && a[1] == 1 && a[2] == 0x08 && a[3] == 0
                      && a[4] == 6 && a[5] == 4;
    if (!ether_ipv4 || std::memcmp(a + 14, &ip_, 4) != 0)
      continue;
    char mac[18];
    std::snprintf(mac, sizeof(mac), "%02x:%02x:%02x:%02x:%02x:%02x", a[8], a[9],
                  a[10], a[11], a[12], a[13]);
    std::lock_guard<std::mutex> guard{mtx_};
    claims_.push_back({at, mac, a[7] == 2});
  }
}

std::vector<arp_claims::claim> arp_claims::claims() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return claims_;
}

std::string arp_claims::error() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return error_;
}

} // namespace networkd::test
