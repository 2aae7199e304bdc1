// SPDX-License-Identifier: MIT
// One node of the VIP namespace labs: its namespace on the lab's bridge
// (eth0, 10.88.0.{10+idx}), a "container" namespace behind it (172.20.idx.2
// via ct0) running TCP 80 and UDP 53 servers that answer with the node's
// name, and a lainlet-compatible test server listing that container as
// web.main (lainlet cannot run here).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/support/daemon.hpp"
#include "tests/support/lainlet_server.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/util.hpp"

namespace networkd::test {

/// The web.main container of a lab node, as its lainlet lists it.
lainlet_container lab_container(const std::string& node,
                                const std::string& node_ip,
                                const std::string& ip, int instance,
                                const std::string& id);

struct lab_node {
  std::string name;
  std::string ip;
  netns ns;
  netns ct;
  std::unique_ptr<veth_pair> up;   ///< eth0 <-> bridge port p-NAME
  std::unique_ptr<veth_pair> down; ///< ct0 <-> container eth0
  std::unique_ptr<name_server> tcp;
  std::unique_ptr<name_server> udp;
  std::unique_ptr<lainlet_server> lainlet;
  std::unique_ptr<daemon_process> networkd;
  /// Put before the networkd binary by start_networkd (e.g. setpriv);
  /// empty: networkd runs as the test does.
  std::vector<std::string> wrapper;

  /// Attach the returned port name ("p-" + n) to the lab's bridge.
  lab_node(const netns& sw, const std::string& n, int idx);

  /// (Re)starts the container's TCP and UDP servers.
  void start_container();

  /// networkd on eth0 with this node's lainlet, plus `extra` flags.
  void start_networkd(const std::string& etcd,
                      const std::vector<std::string>& extra = {});
};

} // namespace networkd::test
