// SPDX-License-Identifier: MIT
// Health of one app.proc on this node, as a pure state machine: which
// container serves it (the lowest instance number), and whether TCP probes
// of its ports succeed. Time and probe results are passed in.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace networkd {

/// A container of the proc on this node, as the container source saw it.
struct proc_container {
  std::string ip;
  int64_t instance = 0;
  std::string id;
  friend bool operator==(const proc_container& a, const proc_container& b) {
    return a.ip == b.ip && a.instance == b.instance && a.id == b.id;
  }
  friend bool operator!=(const proc_container& a, const proc_container& b) {
    return !(a == b);
  }
};

class health_machine {
public:
  /// `failures`: consecutive failed probes that make it unhealthy.
  explicit health_machine(int failures = 2) : threshold_(failures) {}

  void set_threshold(int failures) { threshold_ = failures < 1 ? 1 : failures; }

  /// Ports probed with TCP connects; none means presence is enough.
  void set_probe_ports(std::vector<uint16_t> ports);
  const std::vector<uint16_t>& probe_ports() const { return ports_; }

  /// The containers of the proc on this node now. Returns true when the
  /// serving container changed (appeared, gone, other IP or instance).
  bool set_containers(const std::vector<proc_container>& all);

  /// The outcome of probing `port` of the container at `ip` (results for a
  /// container that is no longer current are ignored). Returns true when
  /// healthy() changed.
  bool probe_result(const std::string& ip, uint16_t port, bool ok,
                    const std::string& error);

  bool healthy() const;
  const std::optional<proc_container>& current() const { return current_; }
  /// Why it is (un)healthy, for logs and the admin state.
  const std::string& reason() const { return reason_; }
  /// True while a new container waits for its first good probe.
  bool starting() const { return current_ && !ever_ok_ && !ports_.empty(); }
  int failures() const { return failures_; }

private:
  int threshold_;
  std::vector<uint16_t> ports_;
  std::optional<proc_container> current_;
  bool ever_ok_ = false; ///< a probe of the current container succeeded
  int failures_ = 0;     ///< consecutive failed probe rounds
  std::string reason_ = "no container";
};

} // namespace networkd
