// SPDX-License-Identifier: MIT
// A VIP namespace lab: a bridge, an etcd in its own namespace
// (10.88.0.2), a client (10.88.0.100) and N lab nodes (10.88.0.{10+i},
// tests/support/vip_lab_node.hpp). Everything is removed by the
// destructor, also when a test fails.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/support/netns.hpp"
#include "tests/support/util.hpp"
#include "tests/support/vip_lab_node.hpp"

namespace networkd::test {

class vip_lab {
public:
  /// Starts etcd and builds `nodes` nodes (n1, n2, ...), without networkd.
  explicit vip_lab(int nodes);
  ~vip_lab();
  vip_lab(const vip_lab&) = delete;
  vip_lab& operator=(const vip_lab&) = delete;

  /// "10.88.0.2:PORT", for networkd inside the node namespaces.
  std::string endpoint() const;
  /// etcdctl against the lab's etcd (run in its namespace).
  int ctl(const std::string& args, std::string* out = nullptr) const;
  /// The value of `key` with trailing newlines cut ("" when absent).
  std::string value_of(const std::string& key) const;
  /// The lease (hex, as etcdctl prints it) `key` is bound to; "" when
  /// the key is absent, "0" when on no lease.
  std::string lease_of(const std::string& key) const;

  /// TCP / UDP from the client; "" when nothing answered.
  std::string fetch(const std::string& ip, uint16_t port) const;
  /// The nodes whose eth0 holds ip/32 right now.
  std::vector<std::string> holders(const std::string& ip) const;

  lab_node& node(size_t i) { return *nodes_.at(i); }
  const netns& client() const { return client_; }

private:
  netns sw_{"sw"};
  std::unique_ptr<bridge> br_;
  netns etcd_ns_{"etcd"};
  netns client_{"cl"};
  std::unique_ptr<veth_pair> etcd_link_;
  std::unique_ptr<veth_pair> client_link_;
  temp_dir dir_{"networkd-lab"};
  uint16_t etcd_port_ = free_port();
  std::unique_ptr<process> etcd_;
  std::vector<std::unique_ptr<lab_node>> nodes_;
};

/// True when eth0 in `ns` holds ip/32.
bool has_address(const netns& ns, const std::string& ip);

/// The hex lease id of a daemon's session lease from its /v1/state ("" or
/// "0" while it has none).
std::string session_lease(const daemon_process& d);

} // namespace networkd::test
