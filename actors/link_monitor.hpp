// SPDX-License-Identifier: MIT
// Watches the VIP interface for what happens to the VIPs this node serves,
// on a thread of its own: an address removed by someone else (or expired)
// and ARP packets from another host claiming one of them. The VIP holder
// of that address is told at once (atom::lost, atom::conflict); it puts the
// address back, or re-checks its lock and steps down or announces again.
#pragma once

#include <caf/actor.hpp>
#include <caf/weak_intrusive_ptr.hpp>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "net/kernel/arp.hpp"
#include "net/kernel/netlink.hpp"

namespace networkd {

class link_monitor {
public:
  /// Opens the watches in the calling thread's network namespace and starts
  /// the thread. Either watch may be missing (logged); null when neither
  /// could be opened.
  static std::shared_ptr<link_monitor> start(const std::string& ifname);
  ~link_monitor();
  link_monitor(const link_monitor&) = delete;
  link_monitor& operator=(const link_monitor&) = delete;

  /// `holder` serves `ip` (its address is on): report to it.
  void watch(const std::string& ip, const caf::actor& holder);
  /// Stop reporting `ip` (call before removing the address ourselves).
  void unwatch(const std::string& ip);

  struct counters {
    uint64_t removals = 0;  ///< removal events for watched addresses
    uint64_t conflicts = 0; ///< ARP packets from others for watched ones
    uint64_t overruns = 0;
  };
  counters stats() const;

private:
  link_monitor() = default;
  void run();
  void report_removed(const std::string& ip);
  void report_all_removed();
  void report_conflict(const arp::sighting& s);

  std::unique_ptr<netlink::address_watch> addresses_;
  std::unique_ptr<arp::arp_watch> arp_;
  int wake_rd_ = -1;
  int wake_wr_ = -1;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  mutable std::mutex mtx_; // guards watched_ and counters_
  std::map<std::string, caf::weak_actor_ptr> watched_;
  counters counters_;
};

} // namespace networkd
