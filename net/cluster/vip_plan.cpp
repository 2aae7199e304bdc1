// SPDX-License-Identifier: MIT
#include "net/cluster/vip_plan.hpp"

#include <algorithm>

namespace networkd::vip {

const char* to_string(verdict v) {
  switch (v) {
    case verdict::applies:
      return "applies";
    case verdict::no_container:
      return "no healthy container here";
    case verdict::excluded:
      return "node excluded";
    case verdict::no_address:
      return "node address unknown";
  }
  return "unknown";
}

verdict check(const config::vip_config& cfg, const std::string& hostname,
              const std::string& node_ip,
              const std::optional<container>& healthy) {
  auto& ex = cfg.excluded_nodes;
  if (std::find(ex.begin(), ex.end(), hostname) != ex.end())
    return verdict::excluded;
  if (!healthy)
    return verdict::no_container;
  if (cfg.port_only() && match_address(cfg, node_ip).empty())
    return verdict::no_address;
  return verdict::applies;
}

std::string match_address(const config::vip_config& cfg,
                          const std::string& node_ip) {
  return cfg.ip == "0.0.0.0" ? node_ip : cfg.ip;
}

std::vector<nat::dnat_rule> rules(const config::vip_config& cfg,
                                  const std::string& node_ip,
                                  const container& c) {
  std::vector<nat::dnat_rule> out;
  auto addr = match_address(cfg, node_ip);
  for (auto& p : cfg.ports) {
    nat::dnat_rule r;
    r.vip = addr;
    r.proto = p.protocol == config::proto::udp ? nat::protocol::udp
                                               : nat::protocol::tcp;
    r.src_port = p.src;
    r.container_ip = c.ip;
    r.dest_port = p.dest;
    r.comment = cfg.app + "." + cfg.proc;
    out.push_back(std::move(r));
  }
  return out;
}

} // namespace networkd::vip
