// SPDX-License-Identifier: MIT
// What /metrics shows beyond the actors' own counters: the VIP holders'
// states and transitions (vip_board), and the text of the process and
// build families. The board is written by the holders on each change of
// phase (rare) and read by scrapes from the admin server's worker, under
// a mutex; the DNS hot path never touches it.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace networkd {

/// Every phase a VIP holder shows (net/cluster/vip_sequencer.cpp): the
/// states of networkd_vip_state.
inline constexpr std::array<std::string_view, 6> vip_phases{
  "created", "idle", "standby", "acquiring", "serving", "releasing"};

/// One VIP's series.
struct vip_series {
  std::string phase = "created";
  std::map<std::string, uint64_t> transitions; ///< by target phase
};

/// The VIP holders' states for /metrics, by VIP (the key suffix: an
/// address or IP:PORT). Thread-safe.
class vip_board {
public:
  /// The holder of `vip` is in `phase`; `transition` counts the change.
  void set(const std::string& vip, const std::string& phase, bool transition);
  /// The holder of `vip` is gone (the key was deleted, or it crashed and
  /// its successor starts over): its series leave /metrics.
  void forget(const std::string& vip);
  std::map<std::string, vip_series> snapshot() const;

private:
  mutable std::mutex mtx_;
  std::map<std::string, vip_series> vips_;
};

/// networkd_vip_state (a state set: one series per phase, 1 for the
/// current one) and networkd_vip_transitions_total{vip,to}.
std::string vip_metrics(const std::map<std::string, vip_series>& vips);

/// What the nft data plane counted for one VIP, protocol and port: new
/// connections (the DNAT map's element), and packets and bytes of those
/// connections in both directions (the traffic set's element).
struct vip_port_traffic {
  std::string vip;
  std::string proto; ///< "tcp" or "udp"
  uint16_t port = 0;
  uint64_t connections = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

/// networkd_vip_connections_total, networkd_vip_packets_total and
/// networkd_vip_bytes_total, each {vip,proto,port}; the family lines even
/// when `t` is empty.
std::string vip_traffic_metrics(const std::vector<vip_port_traffic>& t);

/// A /v1/vips body with a "traffic" array added to every VIP object: one
/// entry per rule of the VIP ("tcp VIP:PORT -> ...") that `t` has. The
/// body unchanged when it is not a VIP list. Parsed iteratively.
std::string vips_with_traffic(const std::string& vips_json,
                              const std::vector<vip_port_traffic>& t);

/// One sample taken from an actor's status JSON (what /v1/state shows),
/// so /metrics and the status never disagree.
struct status_metric {
  /// Member of the status object, or "object.member" one level down.
  const char* path;
  const char* name;
  const char* type; ///< counter or gauge
  const char* help;
  /// When set: the sample is 1 when the member is this string, else 0.
  const char* equals = nullptr;
};

/// The samples of `table` read from one status JSON text. A member that
/// is missing or of another type is left out (family lines stay).
std::string metrics_from_status(std::string_view json,
                                const std::vector<status_metric>& table);

/// What /metrics takes from the NAT manager's, the ACL keeper's and the
/// leader's status.
const std::vector<status_metric>& nat_status_metrics();
const std::vector<status_metric>& acl_status_metrics();
const std::vector<status_metric>& leader_status_metrics();

/// networkd_build_info and the process_* set of this process.
std::string process_metrics();

/// A wall-clock time as RFC 3339 UTC with milliseconds
/// ("2026-12-07T17:35:44.123Z").
std::string rfc3339(std::chrono::system_clock::time_point t);

} // namespace networkd
