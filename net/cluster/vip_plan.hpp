// SPDX-License-Identifier: MIT
// What one VIP needs on this node, as pure functions: whether it applies
// here, and the DNAT rules that serve it. The lock holder acts on this.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "net/cluster/config.hpp"
#include "net/kernel/nat.hpp"

namespace networkd::vip {

/// The container of the VIP's app.proc on this node, when one is healthy.
struct container {
  std::string ip;
  int64_t instance = 0;
  friend bool operator==(const container& a, const container& b) {
    return a.ip == b.ip && a.instance == b.instance;
  }
};

/// Why a VIP does or does not apply here, for logs and the admin state.
enum class verdict : uint8_t {
  applies,
  no_container, ///< no healthy container of app.proc on this node
  excluded,     ///< this node is in excluded_nodes
  no_address,   ///< port-only VIP on 0.0.0.0 but the node address is unknown
};

const char* to_string(verdict v);

verdict check(const config::vip_config& cfg, const std::string& hostname,
              const std::string& node_ip,
              const std::optional<container>& healthy);

/// The address the rules match: the VIP, or the node's address for
/// 0.0.0.0:PORT keys.
std::string match_address(const config::vip_config& cfg,
                          const std::string& node_ip);

/// One rule per port (the table installs each in both chains), comment
/// "app.proc".
std::vector<nat::dnat_rule> rules(const config::vip_config& cfg,
                                  const std::string& node_ip,
                                  const container& c);

} // namespace networkd::vip
