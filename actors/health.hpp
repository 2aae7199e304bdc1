// SPDX-License-Identifier: MIT
// Proc health: the health hub owns the container source (lainlet's event
// stream, or deployd's pod groups in etcd) and one tracker per app.proc that
// some VIP needs; a tracker probes its container and tells its subscribers
// (VIP holders) at once when it turns healthy or unhealthy.
#pragma once

#include <caf/stateful_actor.hpp>

#include <atomic>
#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "net/cluster/health.hpp"
#include "net/etcd/etcd.hpp"
#include "net/kernel/tcp_probe.hpp"

namespace networkd {

struct health_hub_config {
  enum class source { lainlet, deployd, none };
  source from = source::lainlet;
  std::string lainlet_endpoint;
  std::string nodename;
  std::chrono::seconds heartbeat{5};
  std::shared_ptr<etcd::client> etcd; ///< for source::deployd
  std::shared_ptr<tcp_prober> prober;
  /// Until the supervisor sends the knobs in force.
  config::probe_knobs probes = config::default_knobs().probe;
  /// Docker's unix socket; empty: no cross-check. A container the source
  /// reports but Docker does not list as running is not served.
  std::string docker_socket;
  std::chrono::milliseconds docker_interval{2000};
};

// -- tracker ------------------------------------------------------------------

struct proc_tracker_state {
  static inline const char* name = "proc-tracker";

  std::string app;
  std::string proc;
  std::shared_ptr<tcp_prober> prober;
  config::probe_knobs probes;
  health_machine machine;
  std::map<caf::actor_addr, std::pair<caf::actor, std::vector<uint16_t>>>
    subscribers;
  /// How many subscribers want each port probed: a subscriber that comes or
  /// goes changes the probed ports only when a count starts or ends (2000
  /// VIPs of one proc subscribe in a cold start).
  std::map<uint16_t, size_t> port_refs;
  size_t pending = 0; ///< probes of the current round not answered yet
  /// The current round; answers of an earlier one are dropped on the
  /// prober's thread (shared with its callbacks).
  std::shared_ptr<std::atomic<uint64_t>> round
    = std::make_shared<std::atomic<uint64_t>>(0);
  bool notified = false;
  proc_health last; ///< what the subscribers were told last
  probe_done last_probe;
  uint64_t probes_sent = 0;
  uint64_t transitions = 0;
  /// Last transitions, newest last, each "TIME what" (RFC 3339 UTC).
  std::vector<std::string> history;

  proc_health snapshot() const;
  std::string render() const;
};

proc_tracker_actor::behavior_type
proc_tracker(proc_tracker_actor::stateful_pointer<proc_tracker_state> self,
             std::string app, std::string proc,
             std::shared_ptr<tcp_prober> prober, config::probe_knobs probes);

// -- hub ----------------------------------------------------------------------

struct container_source; // the running lainlet client or deployd watcher

struct health_hub_state {
  static inline const char* name = "health-hub";

  health_hub_config cfg;
  std::shared_ptr<container_source> source;
  std::vector<container_info> containers;
  bool have_set = false;
  source_report report;
  docker_report docker; ///< last answer (ok false: no filtering)
  std::map<std::string, proc_tracker_actor> trackers; ///< by "app.proc"

  ~health_hub_state();
  std::vector<container_info> slice(const std::string& app,
                                    const std::string& proc) const;
  std::string render(const std::vector<std::string>& trackers) const;
};

health_hub_actor::behavior_type
health_hub(health_hub_actor::stateful_pointer<health_hub_state> self,
           health_hub_config cfg);

} // namespace networkd
