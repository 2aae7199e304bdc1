// SPDX-License-Identifier: MIT
// Client-side helpers: build a query and decode a response into plain
// values. Used by tests, the fuzz target and health probes; the server's
// hot path does not use them.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net/base/result.hpp"

namespace networkd::dns {

struct query_spec {
  std::string name;    ///< presentation form, case kept
  uint16_t qtype = 1;  ///< A
  uint16_t qclass = 1; ///< IN
  uint16_t id = 0;
  bool rd = true;
  bool cd = false;
  bool edns = false;
  uint16_t payload = 1232; ///< EDNS UDP payload size
  bool dnssec_ok = false;
  uint8_t edns_version = 0;
};

/// The wire form of a query (empty when the name is invalid).
std::vector<uint8_t> make_query(const query_spec& spec);

/// One resource record, data in presentation form ("10.0.0.1").
struct record {
  std::string owner; ///< presentation form, case as on the wire, no dot
  uint16_t type = 0;
  uint32_t ttl = 0;
  std::string data;
};

/// A decoded message (OPT is reflected in the edns fields, not listed).
struct message {
  uint16_t id = 0;
  uint16_t rcode = 0; ///< including the extended bits from OPT
  bool qr = false, aa = false, tc = false, rd = false, ra = false, cd = false;
  std::string qname; ///< presentation form as on the wire, no dot
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  std::vector<record> answer, authority, additional;
  bool edns = false;
  uint16_t payload = 0;
  bool dnssec_ok = false;
};

/// Decodes a message; failure "malformed" when libknot rejects it.
result<message> parse_message(const uint8_t* data, size_t len);
inline result<message> parse_message(const std::vector<uint8_t>& wire) {
  return parse_message(wire.data(), wire.size());
}

} // namespace networkd::dns
