// SPDX-License-Identifier: MIT
// Ports and host:port text, as flags, etcd keys and endpoints give them.
// One parser for all of them, so "[::1]:53", "10.0.0.1:80" and a bad port
// read the same everywhere.
#pragma once

#include "net/base/result.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace networkd {

/// A port in decimal digits: 1..65535. Fails with code "bad_field" ("port
/// \"x\" is not a number", "port \"70000\" out of range 1-65535").
result<uint16_t> parse_port(std::string_view text);

struct host_port {
  std::string host; ///< without the brackets of "[v6]:port"
  uint16_t port = 0;
  bool bracketed = false; ///< the text was "[host]:port"
};

/// "host:port" or "[host]:port". The host is not checked beyond being
/// non-empty; the port is parse_port's. Fails with code "bad_addr" and a
/// message saying what is wrong, without the text (the caller quotes it).
result<host_port> split_host_port(std::string_view text);

} // namespace networkd
