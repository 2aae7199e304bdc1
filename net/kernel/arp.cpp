// SPDX-License-Identifier: MIT
// Gratuitous ARP and ARP sightings over AF_PACKET sockets.
#include "net/kernel/arp.hpp"

#include <arpa/inet.h>
#include <linux/if_packet.h>
#include <net/ethernet.h>
#include <net/if.h>
#include <net/if_arp.h>
#include <poll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace networkd::arp {

namespace {

/// The ARP payload for Ethernet and IPv4 (RFC 826), as on the wire.
struct __attribute__((packed)) arp_packet {
  uint16_t htype;
  uint16_t ptype;
  uint8_t hlen;
  uint8_t plen;
  uint16_t op;
  uint8_t sha[6];
  uint8_t spa[4];
  uint8_t tha[6];
  uint8_t tpa[4];
};
static_assert(sizeof(arp_packet) == 28);

constexpr mac_address broadcast_mac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

failure errno_failure(int err, const std::string& what) {
  std::string code = "arp";
  if (err == ENODEV || err == ENXIO)
    code = "no_device";
  else if (err == ENETDOWN)
    code = "link_down";
  else if (err == EPERM || err == EACCES)
    code = "permission";
  return make_failure(code, what + ": " + std::strerror(err));
}

result<uint32_t> parse_ipv4(const std::string& ip) {
  in_addr a{};
  if (::inet_pton(AF_INET, ip.c_str(), &a) != 1)
    return make_failure("invalid", "not an IPv4 address: '" + ip + "'");
  return a.s_addr;
}

std::string format_ipv4(const uint8_t* bytes) {
  char text[INET_ADDRSTRLEN] = {};
  ::inet_ntop(AF_INET, bytes, text, sizeof(text));
  return text;
}

result<int> index_of(int fd, const std::string& ifname) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    return make_failure("invalid", "bad interface name '" + ifname + "'");
  ifreq req{};
  std::memcpy(req.ifr_name, ifname.data(), ifname.size());
  if (::ioctl(fd, SIOCGIFINDEX, &req) != 0)
    return errno_failure(errno, "interface " + ifname);
  return req.ifr_ifindex;
}

result<mac_address> hwaddr_of(int fd, const std::string& ifname) {
  if (ifname.empty() || ifname.size() >= IFNAMSIZ)
    return make_failure("invalid", "bad interface name '" + ifname + "'");
  ifreq req{};
  std::memcpy(req.ifr_name, ifname.data(), ifname.size());
  if (::ioctl(fd, SIOCGIFHWADDR, &req) != 0)
    return errno_failure(errno, "interface " + ifname);
  if (req.ifr_hwaddr.sa_family != ARPHRD_ETHER)
    return make_failure("invalid", "interface " + ifname + " is not Ethernet");
  mac_address mac;
  std::memcpy(mac.data(), req.ifr_hwaddr.sa_data, mac.size());
  return mac;
}

result<int> packet_socket() {
  // Protocol 0: a socket that sends but receives nothing until bound.
  int fd = ::socket(AF_PACKET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return errno_failure(errno, "AF_PACKET socket");
  return fd;
}

} // namespace

std::string to_string(const mac_address& mac) {
  char text[18];
  std::snprintf(text, sizeof(text), "%02x:%02x:%02x:%02x:%02x:%02x", mac[0],
                mac[1], mac[2], mac[3], mac[4], mac[5]);
  return text;
}

result<std::unique_ptr<packet_announcer>> packet_announcer::open() {
  auto fd = packet_socket();
  if (!fd)
    return fd.error();
  return std::unique_ptr<packet_announcer>(new packet_announcer(*fd));
}

packet_announcer::~packet_announcer() {
  if (fd_ >= 0)
    ::close(fd_);
}

result<mac_address> packet_announcer::mac_of(const std::string& ifname) {
  return hwaddr_of(fd_, ifname);
}

namespace {

result<unit> send_arp(int fd, int ifindex, const arp_packet& pkt,
                      const std::string& what) {
  sockaddr_ll to{};
  to.sll_family = AF_PACKET;
  to.sll_protocol = htons(ETH_P_ARP);
  to.sll_ifindex = ifindex;
  to.sll_halen = ETH_ALEN;
  std::memcpy(to.sll_addr, broadcast_mac.data(), ETH_ALEN);
  for (;;) {
    auto n = ::sendto(fd, &pkt, sizeof(pkt), 0,
                      reinterpret_cast<const sockaddr*>(&to), sizeof(to));
    if (n == static_cast<ssize_t>(sizeof(pkt)))
      return unit{};
    if (n < 0 && errno == EINTR)
      continue;
    return errno_failure(n < 0 ? errno : EIO, what);
  }
}

arp_packet make_packet(uint16_t op, const mac_address& sha, uint32_t spa,
                       const mac_address& tha, uint32_t tpa) {
  arp_packet p{};
  p.htype = htons(ARPHRD_ETHER);
  p.ptype = htons(ETH_P_IP);
  p.hlen = ETH_ALEN;
  p.plen = 4;
  p.op = htons(op);
  std::memcpy(p.sha, sha.data(), 6);
  std::memcpy(p.spa, &spa, 4);
  std::memcpy(p.tha, tha.data(), 6);
  std::memcpy(p.tpa, &tpa, 4);
  return p;
}

} // namespace

result<unit> packet_announcer::announce(const std::string& ifname,
                                        const std::string& ip, int count) {
  auto addr = parse_ipv4(ip);
  if (!addr)
    return addr.error();
  std::lock_guard<std::mutex> guard{mtx_};
  auto index = index_of(fd_, ifname);
  if (!index)
    return index.error();
  auto mac = hwaddr_of(fd_, ifname);
  if (!mac)
    return mac.error();
  auto request = make_packet(ARPOP_REQUEST, *mac, *addr, mac_address{}, *addr);
  auto reply = make_packet(ARPOP_REPLY, *mac, *addr, *mac, *addr);
  auto what = "gratuitous ARP for " + ip + " on " + ifname;
  for (int i = 0; i < count; ++i) {
    if (auto r = send_arp(fd_, *index, request, what); !r)
      return r;
    if (auto r = send_arp(fd_, *index, reply, what); !r)
      return r;
  }
  return unit{};
}

result<unit> packet_announcer::probe(const std::string& ifname,
                                     const std::string& ip) {
  auto addr = parse_ipv4(ip);
  if (!addr)
    return addr.error();
  std::lock_guard<std::mutex> guard{mtx_};
  auto index = index_of(fd_, ifname);
  if (!index)
    return index.error();
  auto mac = hwaddr_of(fd_, ifname);
  if (!mac)
    return mac.error();
  auto pkt = make_packet(ARPOP_REQUEST, *mac, 0, mac_address{}, *addr);
  return send_arp(fd_, *index, pkt, "ARP probe for " + ip + " on " + ifname);
}

result<std::unique_ptr<arp_watch>> arp_watch::open(const std::string& ifname) {
  auto fd = packet_socket();
  if (!fd)
    return fd.error();
  std::unique_ptr<arp_watch> w(new arp_watch(*fd));
  auto index = index_of(w->fd_, ifname);
  if (!index)
    return index.error();
  sockaddr_ll at{};
  at.sll_family = AF_PACKET;
  at.sll_protocol = htons(ETH_P_ARP);
  at.sll_ifindex = *index;
  if (::bind(w->fd_, reinterpret_cast<sockaddr*>(&at), sizeof(at)) != 0)
    return errno_failure(errno, "bind AF_PACKET socket to " + ifname);
  return w;
}

arp_watch::~arp_watch() {
  if (fd_ >= 0)
    ::close(fd_);
}

void arp_watch::set_filter(const std::vector<std::string>& ips) {
  std::unordered_set<uint32_t> next;
  for (auto& ip : ips)
    if (auto a = parse_ipv4(ip))
      next.insert(*a);
  std::lock_guard<std::mutex> guard{mtx_};
  filter_ = std::move(next);
  filtering_ = !filter_.empty();
}

void arp_watch::filter_add(const std::string& ip) {
  auto a = parse_ipv4(ip);
  if (!a)
    return;
  std::lock_guard<std::mutex> guard{mtx_};
  filter_.insert(*a);
  filtering_ = true;
}

void arp_watch::filter_remove(const std::string& ip) {
  auto a = parse_ipv4(ip);
  if (!a)
    return;
  std::lock_guard<std::mutex> guard{mtx_};
  filter_.erase(*a);
}

result<std::vector<sighting>>
arp_watch::read(std::chrono::milliseconds timeout) {
  std::vector<sighting> out;
  pollfd p{fd_, POLLIN, 0};
  int ready = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (ready < 0 && errno != EINTR)
    return errno_failure(errno, "poll ARP socket");
  if (ready <= 0)
    return out;
  for (;;) {
    arp_packet pkt{};
    sockaddr_ll from{};
    socklen_t len = sizeof(from);
    auto n = ::recvfrom(fd_, &pkt, sizeof(pkt), MSG_DONTWAIT,
                        reinterpret_cast<sockaddr*>(&from), &len);
    if (n < 0) {
      if (errno == EINTR)
        continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK)
        return out;
      return errno_failure(errno, "read ARP socket");
    }
    if (from.sll_pkttype == PACKET_OUTGOING
        || n < static_cast<ssize_t>(sizeof(pkt))
        || pkt.htype != htons(ARPHRD_ETHER) || pkt.ptype != htons(ETH_P_IP)
        || pkt.hlen != ETH_ALEN || pkt.plen != 4)
      continue;
    uint32_t spa = 0;
    std::memcpy(&spa, pkt.spa, 4);
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (filtering_ && filter_.count(spa) == 0)
        continue;
    }
    sighting s;
    s.sender_ip = format_ipv4(pkt.spa);
    std::memcpy(s.sender_mac.data(), pkt.sha, 6);
    s.target_ip = format_ipv4(pkt.tpa);
    s.op = ntohs(pkt.op);
    out.push_back(std::move(s));
  }
}

} // namespace networkd::arp
