// SPDX-License-Identifier: MIT
// Source address ACL.
#include "dns/acl.hpp"

#include <netinet/in.h>

#include <charconv>
#include <cstring>

namespace networkd::dns {

bool cidr::contains(const ip_address& addr) const {
  if (addr.family != net.family)
    return false;
  int bits = prefix;
  for (size_t i = 0; i < addr.size() && bits > 0; ++i, bits -= 8) {
    uint8_t mask = bits >= 8 ? 0xff : static_cast<uint8_t>(0xff << (8 - bits));
    if ((addr.bytes[i] & mask) != (net.bytes[i] & mask))
      return false;
  }
  return true;
}

result<cidr> parse_cidr(std::string_view text) {
  auto slash = text.find('/');
  auto addr = parse_ip(text.substr(0, slash));
  if (!addr)
    return make_failure("bad_cidr",
                        "bad address in '" + std::string(text) + "'");
  cidr c;
  c.net = *addr;
  int max = static_cast<int>(addr->size() * 8);
  c.prefix = max;
  if (slash != std::string_view::npos) {
    auto bits = text.substr(slash + 1);
    int value = -1;
    auto [end, ec]
      = std::from_chars(bits.data(), bits.data() + bits.size(), value);
    if (ec != std::errc{} || end != bits.data() + bits.size() || value < 0
        || value > max)
      return make_failure("bad_cidr",
                          "bad prefix in '" + std::string(text) + "'");
    // "::ffff:10.0.0.0/104" was turned into IPv4 by parse_ip.
    c.prefix = value;
  }
  return c;
}

std::optional<ip_address> address_of(const sockaddr* sa) {
  if (sa == nullptr)
    return std::nullopt;
  ip_address a;
  if (sa->sa_family == AF_INET) {
    a.family = AF_INET;
    std::memcpy(a.bytes.data(),
                &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
    return a;
  }
  if (sa->sa_family == AF_INET6) {
    auto& in6 = reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(&in6)) {
      a.family = AF_INET;
      std::memcpy(a.bytes.data(), in6.s6_addr + 12, 4);
    } else {
      a.family = AF_INET6;
      std::memcpy(a.bytes.data(), in6.s6_addr, 16);
    }
    return a;
  }
  return std::nullopt;
}

bool acl::allows(const ip_address& addr) const {
  if (allow_loopback_) {
    if (addr.family == AF_INET && addr.bytes[0] == 127)
      return true;
    static const std::array<uint8_t, 16> v6_loopback{0, 0, 0, 0, 0, 0, 0, 0,
                                                     0, 0, 0, 0, 0, 0, 0, 1};
    if (addr.family == AF_INET6 && addr.bytes == v6_loopback)
      return true;
  }
  for (auto& n : networks_)
    if (n.contains(addr))
      return true;
  return false;
}

bool acl::allows(const sockaddr* sa) const {
  auto addr = address_of(sa);
  return addr && allows(*addr);
}

} // namespace networkd::dns
