// SPDX-License-Identifier: MIT
// Forward declarations, atoms and the type-ID block of every message type.
#pragma once

#include <caf/config.hpp>
#include <caf/fwd.hpp>
#include <caf/type_id.hpp>

#include <string>
#include <vector>

#include "net/cluster/config.hpp"
#include "net/cluster/keys.hpp"

static_assert(CAF_VERSION >= 1706 && CAF_VERSION < 1800,
              "networkd is written against CAF 0.17.6");

namespace networkd {

struct key_batch;
struct watch_report;
struct lease_info;
struct keepalive_info;
struct container_info;
struct container_set;
struct source_report;
struct proc_health;
struct probe_done;
struct nat_rule;
struct docker_report;
struct lock_result;
struct spread_report;

} // namespace networkd

CAF_BEGIN_TYPE_ID_BLOCK(networkd, caf::first_custom_type_id)

CAF_ADD_TYPE_ID(networkd, (networkd::config::port_mapping))
CAF_ADD_TYPE_ID(networkd, (networkd::config::vip_config))
CAF_ADD_TYPE_ID(networkd, (networkd::config::domain_config))
CAF_ADD_TYPE_ID(networkd, (networkd::config::upstream))
CAF_ADD_TYPE_ID(networkd, (networkd::config::domain_servers_config))
CAF_ADD_TYPE_ID(networkd, (networkd::config::leader_addr))
CAF_ADD_TYPE_ID(networkd, (networkd::config::knob))
CAF_ADD_TYPE_ID(networkd, (networkd::keys::raw_event))
CAF_ADD_TYPE_ID(networkd, (std::vector<networkd::keys::raw_event>))
CAF_ADD_TYPE_ID(networkd,
                (networkd::keys::event<networkd::config::family::vip>))
CAF_ADD_TYPE_ID(networkd,
                (networkd::keys::event<networkd::config::family::domain>))
CAF_ADD_TYPE_ID(
  networkd, (networkd::keys::event<networkd::config::family::domain_servers>))
CAF_ADD_TYPE_ID(networkd,
                (networkd::keys::event<networkd::config::family::vippool>))
CAF_ADD_TYPE_ID(networkd,
                (networkd::keys::event<networkd::config::family::swarm_leader>))
CAF_ADD_TYPE_ID(
  networkd, (networkd::keys::event<networkd::config::family::deployd_leader>))
CAF_ADD_TYPE_ID(networkd,
                (networkd::keys::event<networkd::config::family::vip_lock>))
CAF_ADD_TYPE_ID(
  networkd, (networkd::keys::event<networkd::config::family::leader_candidate>))
CAF_ADD_TYPE_ID(networkd,
                (networkd::keys::event<networkd::config::family::app_endpoint>))
CAF_ADD_TYPE_ID(
  networkd, (networkd::keys::event<networkd::config::family::tinydns_fqdns>))
CAF_ADD_TYPE_ID(networkd,
                (networkd::keys::event<networkd::config::family::acl>))
CAF_ADD_TYPE_ID(networkd, (networkd::key_batch))
CAF_ADD_TYPE_ID(networkd, (networkd::watch_report))
CAF_ADD_TYPE_ID(networkd, (networkd::lease_info))
CAF_ADD_TYPE_ID(networkd, (networkd::keepalive_info))
CAF_ADD_TYPE_ID(networkd, (std::vector<std::string>))
CAF_ADD_TYPE_ID(networkd, (std::vector<networkd::config::upstream>))
CAF_ADD_TYPE_ID(networkd, (networkd::container_info))
CAF_ADD_TYPE_ID(networkd, (std::vector<networkd::container_info>))
CAF_ADD_TYPE_ID(networkd, (networkd::container_set))
CAF_ADD_TYPE_ID(networkd, (networkd::source_report))
CAF_ADD_TYPE_ID(networkd, (networkd::proc_health))
CAF_ADD_TYPE_ID(networkd, (networkd::probe_done))
CAF_ADD_TYPE_ID(networkd, (std::vector<uint16_t>))
CAF_ADD_TYPE_ID(networkd, (networkd::nat_rule))
CAF_ADD_TYPE_ID(networkd, (std::vector<networkd::nat_rule>))
CAF_ADD_TYPE_ID(networkd, (networkd::lock_result))
CAF_ADD_TYPE_ID(networkd, (networkd::docker_report))
CAF_ADD_TYPE_ID(networkd, (networkd::spread_report))
CAF_ADD_TYPE_ID(networkd, (std::vector<int64_t>))
CAF_ADD_TYPE_ID(networkd, (networkd::config::knob_values))
CAF_ADD_TYPE_ID(networkd, (networkd::config::probe_knobs))

CAF_ADD_ATOM(networkd, networkd::atom, status, "status")
CAF_ADD_ATOM(networkd, networkd::atom, ready, "ready")
CAF_ADD_ATOM(networkd, networkd::atom, grant, "grant")
CAF_ADD_ATOM(networkd, networkd::atom, keepalive, "keepalive")
CAF_ADD_ATOM(networkd, networkd::atom, revoke, "revoke")
CAF_ADD_ATOM(networkd, networkd::atom, tick, "tick")
CAF_ADD_ATOM(networkd, networkd::atom, restart, "restart")
CAF_ADD_ATOM(networkd, networkd::atom, shutdown, "shutdown")
CAF_ADD_ATOM(networkd, networkd::atom, subscribe, "subscribe")
CAF_ADD_ATOM(networkd, networkd::atom, upstream, "upstream")
CAF_ADD_ATOM(networkd, networkd::atom, reload, "reload")
CAF_ADD_ATOM(networkd, networkd::atom, publish, "publish")
CAF_ADD_ATOM(networkd, networkd::atom, dynamic, "dynamic")
CAF_ADD_ATOM(networkd, networkd::atom, webrouter, "webrouter")
CAF_ADD_ATOM(networkd, networkd::atom, lock, "lock")
CAF_ADD_ATOM(networkd, networkd::atom, release, "release")
CAF_ADD_ATOM(networkd, networkd::atom, put, "put")
CAF_ADD_ATOM(networkd, networkd::atom, erase, "erase")
CAF_ADD_ATOM(networkd, networkd::atom, add, "add")
CAF_ADD_ATOM(networkd, networkd::atom, announce, "announce")
CAF_ADD_ATOM(networkd, networkd::atom, fence, "fence")
CAF_ADD_ATOM(networkd, networkd::atom, vips, "vips")
CAF_ADD_ATOM(networkd, networkd::atom, ports, "ports")
CAF_ADD_ATOM(networkd, networkd::atom, lost, "lost")
CAF_ADD_ATOM(networkd, networkd::atom, conflict, "conflict")
CAF_ADD_ATOM(networkd, networkd::atom, prune, "prune")
CAF_ADD_ATOM(networkd, networkd::atom, refresh, "refresh")
CAF_ADD_ATOM(networkd, networkd::atom, audit, "audit")
CAF_ADD_ATOM(networkd, networkd::atom, lookup, "lookup")
CAF_ADD_ATOM(networkd, networkd::atom, tidy, "tidy")

CAF_END_TYPE_ID_BLOCK(networkd)
