// SPDX-License-Identifier: MIT
// Concurrent TCP connect probes on one thread (non-blocking connects under
// epoll): many containers are checked at once without a thread each, and a
// slow one never delays the others.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace networkd {

struct probe_outcome {
  bool ok = false;
  std::string error; ///< "refused", "timeout", strerror text
  std::chrono::microseconds latency{0};
};

class tcp_prober {
public:
  using callback = std::function<void(const probe_outcome&)>;

  tcp_prober();
  /// Stops the thread; pending probes are answered with "stopped".
  ~tcp_prober();
  tcp_prober(const tcp_prober&) = delete;
  tcp_prober& operator=(const tcp_prober&) = delete;

  /// Thread-safe. Connects to ip:port (IPv4), `after` from now; `done`
  /// runs on the prober's thread once connected, refused or timed out. The
  /// wait is the prober's own (no other thread wakes for it): a tracker
  /// asks for its next round as the last one ends.
  void probe(const std::string& ip, uint16_t port,
             std::chrono::milliseconds timeout, callback done,
             std::chrono::milliseconds after = {});

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace networkd
