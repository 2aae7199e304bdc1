// SPDX-License-Identifier: MIT
// A single real etcd member running inside a test's network namespace, on
// 127.0.0.1 there (for daemons that run inside that namespace too).
#pragma once

#include <memory>
#include <stdexcept>
#include <string>

#include "tests/support/netns.hpp"
#include "tests/support/util.hpp"

namespace networkd::test {

/// A single etcd member inside `ns` on 127.0.0.1.
struct ns_etcd {
  temp_dir dir{"networkd-ns-etcd"};
  uint16_t client = free_port();
  uint16_t peer = free_port();
  std::unique_ptr<process> proc;

  explicit ns_etcd(const netns& ns) {
    auto c = "http://127.0.0.1:" + std::to_string(client);
    auto p = "http://127.0.0.1:" + std::to_string(peer);
    proc = std::make_unique<process>(
      std::vector<std::string>{"ip",
                               "netns",
                               "exec",
                               ns.name(),
                               "etcd",
                               "--name",
                               "ns",
                               "--data-dir",
                               dir.file("data"),
                               "--listen-client-urls",
                               c,
                               "--advertise-client-urls",
                               c,
                               "--listen-peer-urls",
                               p,
                               "--initial-advertise-peer-urls",
                               p,
                               "--initial-cluster",
                               "ns=" + p,
                               "--logger=zap",
                               "--log-level=error"},
      dir.file("etcd.log"));
    bool up = wait_until([&] { return ns.sh(ctl("endpoint status")) == 0; },
                         15s, 50ms);
    if (!up)
      throw std::runtime_error("etcd in namespace did not start: "
                               + proc->log());
  }

  std::string endpoint() const { return "127.0.0.1:" + std::to_string(client); }
  std::string ctl(const std::string& args) const {
    return "ETCDCTL_API=3 etcdctl --endpoints=" + endpoint() + " " + args;
  }
};

} // namespace networkd::test
