// SPDX-License-Identifier: MIT
// Runs the real networkd binary for black-box tests: loopback DNS and admin
// ports, resolv.conf / hosts / lock file in its own temp dir, log captured.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tests/support/netns.hpp"
#include "tests/support/util.hpp"

namespace networkd::test {

struct http_reply {
  int status = 0; ///< 0 when the request failed
  std::string body;
};

/// GET http://127.0.0.1:port/path with a short timeout.
http_reply http_get(uint16_t port, const std::string& path);

class daemon_process {
public:
  /// Starts networkd against `etcd_endpoints` with the given extra flags
  /// and waits until /healthz answers (throws after 15 s).
  /// With `ns`, it runs inside that namespace (`ip netns exec`) and get()
  /// asks from inside it too. `env` adds "NAME=value" entries.
  /// `wrapper` (e.g. setpriv and its options) goes right before the binary
  /// (after `ip netns exec`, which needs the privileges a wrapper drops).
  daemon_process(const std::string& etcd_endpoints,
                 std::vector<std::string> extra_flags = {},
                 const std::string& hostname = "test-node",
                 std::vector<std::string> env = {}, const netns* ns = nullptr,
                 std::vector<std::string> wrapper = {});
  ~daemon_process();

  uint16_t api_port() const { return api_port_; }
  uint16_t dns_port() const { return dns_port_; }
  const temp_dir& dir() const { return dir_; }
  std::string resolv_conf() const { return dir_.file("resolv.conf"); }
  std::string hosts_file() const { return dir_.file("hosts"); }
  std::string lock_file() const { return dir_.file("networkd.lock"); }
  http_reply get(const std::string& path) const;
  process& proc() { return *proc_; }
  std::string log() const { return proc_->log(); }
  /// The flags it was started with (to start a second instance alike).
  const std::vector<std::string>& argv() const { return argv_; }

private:
  temp_dir dir_;
  uint16_t api_port_;
  uint16_t dns_port_;
  std::vector<std::string> argv_;
  std::unique_ptr<process> proc_;
  const netns* ns_ = nullptr;
};

} // namespace networkd::test
