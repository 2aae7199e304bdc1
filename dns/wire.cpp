// SPDX-License-Identifier: MIT
// Name and address helpers on top of libknot.
#include "dns/wire.hpp"

#include <arpa/inet.h>

#include <cstring>

namespace networkd::dns {

std::string wire_name(std::string_view text) {
  if (text.empty() || text == ".")
    return std::string(1, '\0');
  if (text.size() > 1024)
    return {};
  std::string copy(text);
  knot_dname_storage_t buf;
  if (knot_dname_from_str(buf, copy.c_str(), sizeof(buf)) == nullptr)
    return {};
  knot_dname_to_lower(buf);
  return std::string(reinterpret_cast<const char*>(buf), knot_dname_size(buf));
}

std::string text_name(const uint8_t* wire) {
  char buf[KNOT_DNAME_TXT_MAXLEN + 1];
  if (knot_dname_to_str(buf, wire, sizeof(buf)) == nullptr)
    return {};
  std::string result(buf);
  if (!result.empty() && result.back() == '.')
    result.pop_back();
  return result;
}

std::optional<ip_address> parse_ip(std::string_view text) {
  if (text.empty() || text.size() > 64)
    return std::nullopt;
  std::string copy(text);
  ip_address addr;
  if (inet_pton(AF_INET, copy.c_str(), addr.bytes.data()) == 1) {
    addr.family = AF_INET;
    return addr;
  }
  if (inet_pton(AF_INET6, copy.c_str(), addr.bytes.data()) == 1) {
    static const uint8_t mapped[12]
      = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (std::memcmp(addr.bytes.data(), mapped, sizeof(mapped)) == 0) {
      ip_address v4;
      v4.family = AF_INET;
      std::memcpy(v4.bytes.data(), addr.bytes.data() + 12, 4);
      return v4;
    }
    addr.family = AF_INET6;
    return addr;
  }
  return std::nullopt;
}

std::string to_string(const ip_address& addr) {
  char buf[INET6_ADDRSTRLEN] = {};
  inet_ntop(addr.family, addr.bytes.data(), buf, sizeof(buf));
  return buf;
}

std::string reverse_wire_name(const ip_address& addr) {
  std::string text;
  if (addr.family == AF_INET) {
    for (int i = 3; i >= 0; --i)
      text += std::to_string(addr.bytes[i]) + ".";
    text += "in-addr.arpa.";
  } else {
    static const char* hex = "0123456789abcdef";
    for (int i = 15; i >= 0; --i) {
      text += hex[addr.bytes[i] & 0xf];
      text += '.';
      text += hex[addr.bytes[i] >> 4];
      text += '.';
    }
    text += "ip6.arpa.";
  }
  return wire_name(text);
}

std::string type_name(uint16_t type) {
  char buf[64];
  if (knot_rrtype_to_string(type, buf, sizeof(buf)) < 0)
    return "TYPE" + std::to_string(type);
  return buf;
}

std::string rcode_name(uint16_t rcode) {
  switch (rcode) {
    case KNOT_RCODE_NOERROR:
      return "NOERROR";
    case KNOT_RCODE_FORMERR:
      return "FORMERR";
    case KNOT_RCODE_SERVFAIL:
      return "SERVFAIL";
    case KNOT_RCODE_NXDOMAIN:
      return "NXDOMAIN";
    case KNOT_RCODE_NOTIMPL:
      return "NOTIMP";
    case KNOT_RCODE_REFUSED:
      return "REFUSED";
    case KNOT_RCODE_BADVERS:
      return "BADVERS";
    default:
      return "RCODE" + std::to_string(rcode);
  }
}

} // namespace networkd::dns
