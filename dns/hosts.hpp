// SPDX-License-Identifier: MIT
// Parser for hosts files (/etc/hosts format). Pure function: text in,
// entries out.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace networkd::dns {

/// One address line of a hosts file with all of its names.
struct hosts_entry {
  std::string address;            ///< canonical text ("10.0.0.1", "fe80::1")
  std::vector<std::string> names; ///< lower-cased, no trailing dot
  uint32_t line = 0;              ///< 1-based line in the file
};

/// Parses hosts-file text. Comments ('#' to end of line) and blank lines are
/// skipped; a line whose first field is not an IPv4/IPv6 address (or has a
/// zone index like "fe80::1%eth0") is skipped, as are invalid names. An
/// IPv4-mapped IPv6 address is returned as IPv4. Order is kept.
std::vector<hosts_entry> parse_hosts(std::string_view text);

} // namespace networkd::dns
