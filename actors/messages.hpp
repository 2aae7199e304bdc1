// SPDX-License-Identifier: MIT
// Plain message structs and their CAF inspect overloads. Only parsed,
// validated values travel: no JSON, no protobuf, no gRPC handles.
#pragma once

#include <caf/meta/type_name.hpp>
#include <caf/optional.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "actors/fwd.hpp"
#include "net/cluster/config.hpp"
#include "net/cluster/keys.hpp"
#include "net/kernel/acl.hpp"

namespace networkd {

/// What one watch delivered at once (see etcd::watch_batch).
struct key_batch {
  std::string prefix;
  int64_t revision = 0;
  bool snapshot = false;
  /// Raw: the watcher's thread only hands them over; the supervisor
  /// classifies and parses each once (keys::parse).
  std::vector<keys::raw_event> events;
};

/// A watcher's phase change, for the admin state.
struct watch_report {
  std::string prefix;
  std::string phase;
  int64_t revision = 0;
  std::string last_error;
  uint64_t reconnects = 0;
  uint64_t resyncs = 0;
};

/// A granted lease.
struct lease_info {
  int64_t id = 0;
  int64_t ttl = 0; ///< seconds
};

/// A keep-alive answer: the lease lives on the server at least until
/// sent_at + ttl (sent_at in steady-clock nanoseconds since its epoch).
/// Sent to VIP holders with sent_at_ns holding the local deadline instead
/// (margin included), or all zero when the lease is lost.
struct keepalive_info {
  int64_t id = 0;
  int64_t ttl = 0;
  int64_t sent_at_ns = 0;
};

/// A container on this node, from lainlet or deployd's pod groups.
struct container_info {
  std::string app;
  std::string proc; ///< the last dot part of the pod name
  int64_t instance = 0;
  std::string ip;
  uint16_t port = 0;
  std::string id;
};

/// The whole set of containers on this node (sent only when it changed).
struct container_set {
  std::vector<container_info> containers;
  uint64_t event_id = 0;
};

/// The container source's connection state, for the admin state.
struct source_report {
  std::string state;
  std::string message;
  uint64_t updates = 0;
  uint64_t events = 0;
  uint64_t bad_entries = 0;
  uint64_t disconnects = 0;
};

/// Whether this node serves app.proc, and with which container.
struct proc_health {
  std::string app;
  std::string proc;
  bool healthy = false;
  std::string ip;
  int64_t instance = 0;
  std::string reason;
};

/// How many VIPs of app.proc each instance holds (instances that registered
/// with "unused" keys count with 0), from the spreading keys of all nodes.
struct spread_report {
  std::string app;
  std::string proc;
  std::vector<int64_t> instances; ///< sorted
  std::vector<int64_t> used;      ///< VIPs held, per instance
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, spread_report& x) {
  return f(caf::meta::type_name("spread_report"), x.app, x.proc, x.instances,
           x.used);
}

/// What Docker lists as running (or why it could not be asked).
struct docker_report {
  bool ok = false;
  std::vector<std::string> running;
  std::string error;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, docker_report& x) {
  return f(caf::meta::type_name("docker_report"), x.ok, x.running, x.error);
}

/// One DNAT rule as it travels to the NAT manager.
struct nat_rule {
  std::string vip;
  bool udp = false;
  uint16_t src = 0;
  std::string container_ip;
  uint16_t dest = 0;
  std::string comment;
  friend bool operator==(const nat_rule& a, const nat_rule& b) {
    return a.vip == b.vip && a.udp == b.udp && a.src == b.src
           && a.container_ip == b.container_ip && a.dest == b.dest
           && a.comment == b.comment;
  }
};

/// What a lock attempt found.
struct lock_result {
  bool ours = false;
  std::string holder;   ///< the value of the lock key (hostname)
  int64_t revision = 0; ///< mod revision of our lock key
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, nat_rule& x) {
  return f(caf::meta::type_name("nat_rule"), x.vip, x.udp, x.src,
           x.container_ip, x.dest, x.comment);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lock_result& x) {
  return f(caf::meta::type_name("lock_result"), x.ours, x.holder, x.revision);
}

/// One TCP probe's outcome (sent by the prober thread).
struct probe_done {
  std::string ip;
  uint16_t port = 0;
  bool ok = false;
  std::string error;
  int64_t latency_us = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, container_info& x) {
  return f(caf::meta::type_name("container_info"), x.app, x.proc, x.instance,
           x.ip, x.port, x.id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, container_set& x) {
  return f(caf::meta::type_name("container_set"), x.containers, x.event_id);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, source_report& x) {
  return f(caf::meta::type_name("source_report"), x.state, x.message, x.updates,
           x.events, x.bad_entries, x.disconnects);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, proc_health& x) {
  return f(caf::meta::type_name("proc_health"), x.app, x.proc, x.healthy, x.ip,
           x.instance, x.reason);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, probe_done& x) {
  return f(caf::meta::type_name("probe_done"), x.ip, x.port, x.ok, x.error,
           x.latency_us);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, key_batch& x) {
  return f(caf::meta::type_name("key_batch"), x.prefix, x.revision, x.snapshot,
           x.events);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, watch_report& x) {
  return f(caf::meta::type_name("watch_report"), x.prefix, x.phase, x.revision,
           x.last_error, x.reconnects, x.resyncs);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lease_info& x) {
  return f(caf::meta::type_name("lease_info"), x.id, x.ttl);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, keepalive_info& x) {
  return f(caf::meta::type_name("keepalive_info"), x.id, x.ttl, x.sent_at_ns);
}

} // namespace networkd

namespace networkd::config {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, port_mapping& x) {
  return f(caf::meta::type_name("port_mapping"), x.src, x.protocol, x.dest);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, vip_config& x) {
  return f(caf::meta::type_name("vip_config"), x.key, x.ip, x.key_port, x.app,
           x.proc, x.ports, x.excluded_nodes);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, domain_config& x) {
  return f(caf::meta::type_name("domain_config"), x.name, x.wildcard, x.suffix,
           x.type, x.ips);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, upstream& x) {
  return f(caf::meta::type_name("upstream"), x.ip, x.port);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f,
                                        domain_servers_config& x) {
  return f(caf::meta::type_name("domain_servers_config"), x.domain, x.servers);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, leader_addr& x) {
  return f(caf::meta::type_name("leader_addr"), x.ip, x.port);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, app_endpoint& x) {
  return f(caf::meta::type_name("app_endpoint"), x.app, x.proc, x.ip, x.port);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, container_vip& x) {
  return f(caf::meta::type_name("container_vip"), x.app, x.proc, x.instance,
           x.vip, x.used);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, knob& x) {
  return f(caf::meta::type_name("knob"), x.name, x.number, x.text);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, lease_knobs& x) {
  return f(caf::meta::type_name("lease_knobs"), x.ttl_s, x.fencing_margin);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, arp_knobs& x) {
  return f(caf::meta::type_name("arp_knobs"), x.count, x.interval, x.refresh);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, probe_knobs& x) {
  return f(caf::meta::type_name("probe_knobs"), x.interval, x.timeout,
           x.failures);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, dns_knobs& x) {
  return f(caf::meta::type_name("dns_knobs"), x.ttl, x.cache_size,
           x.neg_ttl_max, x.min_ttl, x.max_ttl, x.upstream_timeout,
           x.serve_stale_s);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_knobs& x) {
  return f(caf::meta::type_name("audit_knobs"), x.nat, x.acl);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, knob_values& x) {
  return f(caf::meta::type_name("knob_values"), x.log_level, x.lease, x.arp,
           x.probe, x.dns, x.audit);
}

} // namespace networkd::config

namespace networkd::acl {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, source& x) {
  return f(caf::meta::type_name("acl_source"), x.type, x.text);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, port_range& x) {
  return f(caf::meta::type_name("acl_port_range"), x.first, x.last);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, whitelist& x) {
  return f(caf::meta::type_name("acl_whitelist"), x.name, x.sources);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, ex_ports& x) {
  return f(caf::meta::type_name("acl_ex_ports"), x.protocol, x.ports);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, in_ports& x) {
  return f(caf::meta::type_name("acl_in_ports"), x.key, x.from, x.tcp, x.udp);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, inputs& x) {
  return f(caf::meta::type_name("acl_inputs"), x.whitelists, x.open_ports,
           x.source_ports);
}

} // namespace networkd::acl

namespace networkd::keys {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, raw_event& x) {
  return f(caf::meta::type_name("raw_event"), x.key, x.value, x.deleted,
           x.revision, x.create_revision, x.lease);
}

/// One inspect for the event type of every family.
template <class Inspector, family F>
typename Inspector::result_type inspect(Inspector& f, event<F>& x) {
  return f(caf::meta::type_name("key_event"), x.key, x.suffix, x.deleted,
           x.revision, x.create_revision, x.lease, x.ok, x.value, x.error_code,
           x.error);
}

} // namespace networkd::keys
