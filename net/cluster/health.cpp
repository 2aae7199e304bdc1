// SPDX-License-Identifier: MIT
#include "net/cluster/health.hpp"

#include <algorithm>

namespace networkd {

void health_machine::set_probe_ports(std::vector<uint16_t> ports) {
  std::sort(ports.begin(), ports.end());
  ports.erase(std::unique(ports.begin(), ports.end()), ports.end());
  ports_ = std::move(ports);
  if (ports_.empty() && current_)
    reason_ = "container present (no TCP port to probe)";
}

bool health_machine::set_containers(const std::vector<proc_container>& all) {
  std::optional<proc_container> best;
  for (auto& c : all)
    if (!best || c.instance < best->instance
        || (c.instance == best->instance && c.id < best->id))
      best = c;
  if (best == current_)
    return false;
  current_ = best;
  ever_ok_ = false;
  failures_ = 0;
  if (!current_)
    reason_ = "no container on this node";
  else if (ports_.empty())
    reason_ = "container present (no TCP port to probe)";
  else
    reason_ = "new container, waiting for its first probe";
  return true;
}

bool health_machine::probe_result(const std::string& ip, uint16_t port, bool ok,
                                  const std::string& error) {
  if (!current_ || current_->ip != ip)
    return false;
  bool before = healthy();
  if (ok) {
    ever_ok_ = true;
    failures_ = 0;
    reason_ = "probe of port " + std::to_string(port) + " ok";
  } else {
    ++failures_;
    reason_ = "probe of port " + std::to_string(port) + " failed (" + error
              + "), " + std::to_string(failures_) + " in a row";
  }
  return healthy() != before;
}

bool health_machine::healthy() const {
  if (!current_)
    return false;
  if (ports_.empty())
    return true;
  return ever_ok_ && failures_ < threshold_;
}

} // namespace networkd
