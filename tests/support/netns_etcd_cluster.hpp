// SPDX-License-Identifier: MIT
// Real etcd members for a namespace lab: each member in its own namespace,
// attached to the lab's bridge and serving on its own lab address, so that
// daemons in other namespaces reach etcd over the bridge (and lose it when
// their link is cut). One member or a cluster of several.
#pragma once

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

#include "tests/support/netns.hpp"
#include "tests/support/util.hpp"

namespace networkd::test {

class ns_etcd_cluster {
public:
  static constexpr uint16_t client_port = 2379;
  static constexpr uint16_t peer_port = 2380;

  /// One member per address in `ips` (each gets `ip/prefix` on eth0 of its
  /// own namespace, whose peer end becomes a port of `br` in `sw`). Starts
  /// them all and waits until each serves clients and they have a raft
  /// leader (throws after 20 s).
  /// Raft timing is fast (heartbeat 50 ms, election 500 ms) as in
  /// etcd_cluster.
  ns_etcd_cluster(const netns& sw, const bridge& br,
                  std::vector<std::string> ips, int prefix = 24);
  ~ns_etcd_cluster();
  ns_etcd_cluster(const ns_etcd_cluster&) = delete;
  ns_etcd_cluster& operator=(const ns_etcd_cluster&) = delete;

  size_t size() const { return members_.size(); }
  /// "IP:2379" of member i.
  std::string endpoint(size_t i) const;
  /// Every member's endpoint, comma-separated, starting with member
  /// `first` (a client that tries them in order uses that one first).
  std::string endpoint_list(size_t first = 0) const;
  /// The namespace member i runs in.
  const netns& ns(size_t i) const;
  /// SIGKILL member i (its data stays).
  void stop(size_t i);
  /// Restarts member i on its data and waits until it serves and the
  /// cluster has a leader (throws).
  void start(size_t i);
  bool running(size_t i);
  /// etcdctl against the running members, run inside the namespace of one
  /// of them; returns the exit code, output into *out.
  int ctl(const std::string& args, std::string* out = nullptr) const;
  /// Index of the member that is raft leader, or size() when unknown.
  size_t leader() const;
  std::string log(size_t i) const;

private:
  struct member;
  void launch(member& m);
  bool wait_serving(const member& m, std::chrono::milliseconds deadline);

  temp_dir dir_{"networkd-ns-etcd"};
  std::string initial_cluster_;
  std::vector<std::unique_ptr<member>> members_;
};

} // namespace networkd::test
