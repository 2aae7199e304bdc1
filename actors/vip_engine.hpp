// SPDX-License-Identifier: MIT
// The effect workers behind the VIP holders, each a detached actor (their
// calls block): etcd lock and key writes, addresses and gratuitous ARP on
// the VIP interface, and the DNAT rules of all VIPs.
#pragma once

#include <memory>
#include <string>

#include "actors/interfaces.hpp"
#include "net/arp.hpp"
#include "net/etcd.hpp"
#include "net/nat.hpp"
#include "net/netlink.hpp"

namespace networkd {

etcd_worker_actor::behavior_type
etcd_worker(etcd_worker_actor::pointer self,
            std::shared_ptr<etcd::client> client);

struct link_config {
  std::string interface;
  /// Opened by the caller (in the right network namespace).
  std::shared_ptr<netlink::address_manager> addresses;
  std::shared_ptr<arp::announcer> announcer;
};

link_worker_actor::behavior_type link_worker(link_worker_actor::pointer self,
                                             link_config cfg);

nat_manager_actor::behavior_type
nat_manager(nat_manager_actor::pointer self,
            std::shared_ptr<nat::dnat_table> table);

/// What every VIP holder shares.
struct vip_env {
  std::string hostname;
  std::string node_ip;
  std::string interface;
  etcd_worker_actor etcd;
  link_worker_actor link;
  nat_manager_actor nat;
  health_hub_actor health;
  int64_t arp_count = 3;
  std::chrono::milliseconds arp_interval{1100};
};

} // namespace networkd
