// SPDX-License-Identifier: MIT
// Source address ACL: loopback (optionally) and a list of networks.
#pragma once

#include <sys/socket.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "dns/wire.hpp"
#include "net/base/result.hpp"

namespace networkd::dns {

/// An address prefix ("10.0.0.0/8", "fd00::/8"; a bare address is a host).
struct cidr {
  ip_address net;
  int prefix = 0;
  bool contains(const ip_address& addr) const;
};

result<cidr> parse_cidr(std::string_view text);

class acl {
public:
  acl() = default;
  acl(std::vector<cidr> networks, bool allow_loopback)
      : networks_(std::move(networks)), allow_loopback_(allow_loopback) {}

  /// True for loopback sources (127.0.0.0/8, ::1) when allowed, and for
  /// sources inside one of the networks. IPv4-mapped IPv6 counts as IPv4.
  bool allows(const ip_address& addr) const;
  bool allows(const sockaddr* sa) const;

private:
  std::vector<cidr> networks_;
  bool allow_loopback_ = true;
};

/// The address of a sockaddr (AF_INET/AF_INET6), IPv4-mapped turned into
/// IPv4; nullopt for other families.
std::optional<ip_address> address_of(const sockaddr* sa);

} // namespace networkd::dns
