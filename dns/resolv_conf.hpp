// SPDX-License-Identifier: MIT
// resolv.conf logic for the guardian: parse, decide the rewrite, extract the
// upstream servers. Pure functions: no file access.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "net/cluster/config.hpp"

namespace networkd::dns {

/// What the guardian should do with one resolv.conf text.
struct resolv_conf_fix {
  /// The text the file should have: `nameserver <our_ip>` before any other
  /// nameserver line (appended when there is none), other lines for our_ip
  /// removed, the word "rotate" removed from options lines (a line left
  /// without options is dropped), everything else (comments, search, domain,
  /// other options, other name servers) kept verbatim and in order.
  std::string text;
  /// False when the file already says that (line by line; a missing final
  /// newline alone does not require a rewrite).
  bool rewrite_needed = false;
  /// The other name servers in file order, port 53, without our addresses.
  std::vector<config::upstream> upstreams;
};

/// `our_ip` goes first; `own_ips` are all addresses networkd listens on
/// (they, and 127.0.0.53, never become upstreams).
resolv_conf_fix fix_resolv_conf(std::string_view text,
                                const std::string& our_ip,
                                const std::vector<std::string>& own_ips);

/// All `nameserver` addresses in file order (canonical text, invalid ones
/// skipped).
std::vector<std::string> resolv_nameservers(std::string_view text);

/// The name servers usable as upstreams: file order, duplicates removed,
/// without `own_ips` and 127.0.0.53.
std::vector<config::upstream>
resolv_upstreams(std::string_view text,
                 const std::vector<std::string>& own_ips);

} // namespace networkd::dns
