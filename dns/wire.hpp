// SPDX-License-Identifier: MIT
// libknot include wrapper plus small helpers for names and addresses.
#pragma once

// libknot's headers carry no extern "C" of their own.
extern "C" {
#include <libknot/libknot.h>
}

#include <netinet/in.h>

#include <array>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace networkd::dns {

/// Owns a knot_pkt_t.
struct pkt_deleter {
  void operator()(knot_pkt_t* p) const { knot_pkt_free(p); }
};
using pkt_ptr = std::unique_ptr<knot_pkt_t, pkt_deleter>;

/// Lower-cased wire form of a presentation name ("Foo.Lain" or "foo.lain.");
/// empty when the text is not a valid name. "" and "." give the root.
std::string wire_name(std::string_view text);

/// Presentation form of a wire name, without the trailing dot ("" for the
/// root).
std::string text_name(const uint8_t* wire);
inline std::string text_name(std::string_view wire) {
  return text_name(reinterpret_cast<const uint8_t*>(wire.data()));
}

/// The wire name without its first label ("" when `wire` is the root).
inline std::string_view parent_name(std::string_view wire) {
  if (wire.empty() || wire[0] == 0)
    return {};
  return wire.substr(static_cast<uint8_t>(wire[0]) + 1);
}

/// Calls f(suffix) for `wire` and each of its parents, longest first, the
/// root excluded, until f returns true. Returns whether f returned true.
template <class F>
bool for_each_suffix(std::string_view wire, F&& f) {
  for (auto s = wire; !s.empty() && s[0] != 0; s = parent_name(s))
    if (f(s))
      return true;
  return false;
}

/// An IPv4 or IPv6 address in network byte order.
struct ip_address {
  int family = 0; ///< AF_INET or AF_INET6
  std::array<uint8_t, 16> bytes{};
  size_t size() const { return family == AF_INET6 ? 16 : 4; }
  friend bool operator==(const ip_address& a, const ip_address& b) {
    return a.family == b.family && a.bytes == b.bytes;
  }
  friend bool operator<(const ip_address& a, const ip_address& b) {
    return a.family != b.family ? a.family < b.family : a.bytes < b.bytes;
  }
};

/// Parses "10.0.0.1" or "fe80::1" (no zone index). An IPv4-mapped IPv6
/// address ("::ffff:10.0.0.1") is returned as plain IPv4.
std::optional<ip_address> parse_ip(std::string_view text);

std::string to_string(const ip_address& addr);

/// The lower-case wire name of the reverse lookup name of `addr`
/// ("1.0.0.10.in-addr.arpa." or the ip6.arpa nibble form).
std::string reverse_wire_name(const ip_address& addr);

/// Text form of a DNS type for statistics ("A", "AAAA", ..., "TYPE65").
std::string type_name(uint16_t type);

/// Text form of an rcode for statistics ("NOERROR", ...).
std::string rcode_name(uint16_t rcode);

} // namespace networkd::dns
