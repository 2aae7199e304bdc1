// SPDX-License-Identifier: MIT
// Every actor interface of networkd.
#pragma once

#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include <string>

#include "actors/fwd.hpp"
#include "actors/messages.hpp"

namespace networkd {

/// What every actor answers: its state as one JSON object.
using status_client_actor = caf::typed_actor<
  // Renders name, state, last error and counters as JSON.
  caf::replies_to<atom::status>::with<std::string>>;

/// One per /lain/config/vips/{key}: owns the life of that VIP.
using vip_holder_actor = status_client_actor::extend<
  // A new validated config for this key.
  caf::reacts_to<config::vip_config>,
  // Its lock key changed (put or delete).
  caf::reacts_to<keys::event<config::family::vip_lock>>,
  // The session lease was renewed (local deadline) or lost (id 0).
  caf::reacts_to<keepalive_info>,
  // The health of the VIP's app.proc on this node.
  caf::reacts_to<proc_health>,
  // The lease deadline passed without renewal (the registry's one timer
  // for every holder): fence.
  caf::reacts_to<atom::fence>,
  // Wake-up timer (its generation): the end of the leftover grace, or the
  // lease deadline for a holder without a lease board.
  caf::reacts_to<atom::fence, uint64_t>,
  // Gratuitous ARP repeat (timer).
  caf::reacts_to<atom::announce, uint64_t>,
  // Try again after a failed step (timer).
  caf::reacts_to<atom::tick>,
  // Our address IP was removed by someone else (or expired).
  caf::reacts_to<atom::lost, std::string>,
  // Another MAC (second) sent ARP claiming our address IP (first).
  caf::reacts_to<atom::conflict, std::string, std::string>,
  // How many VIPs of our app.proc each instance holds.
  caf::reacts_to<spread_report>,
  // An ARP knob (arp_count, arp_interval_ms, arp_refresh_s).
  caf::reacts_to<config::knob>,
  // Periodic gratuitous ARP refresh (timer).
  caf::reacts_to<atom::refresh, uint64_t>,
  // Release everything now (SIGTERM): address, rules, lock.
  caf::replies_to<atom::shutdown>::with<bool>,
  // The VIP key was deleted: address, rules, lock (deleted, guarded by its
  // revision) and spreading key go, then the holder stops.
  caf::replies_to<atom::release>::with<bool>>;

/// Blocking etcd calls for the VIP holders (detached).
using etcd_worker_actor = caf::typed_actor<
  // Takes (or re-binds) lock key for value with the lease.
  caf::replies_to<atom::lock, std::string, std::string,
                  int64_t>::with<lock_result>,
  // Takes the locks asked so far, in few round trips (queued by a lock).
  caf::reacts_to<atom::tick>,
  // Deletes the lock key if it still has this value.
  caf::replies_to<atom::release, std::string, std::string>::with<bool>,
  // Puts a key bound to a lease.
  caf::replies_to<atom::put, std::string, std::string, int64_t>::with<bool>,
  // Deletes a key.
  caf::replies_to<atom::erase, std::string>::with<bool>,
  // Puts keys[i] = values[i] (an empty value deletes) bound to the lease,
  // all in one txn.
  caf::replies_to<atom::put, std::vector<std::string>, std::vector<std::string>,
                  int64_t>::with<bool>,
  // A leader's plan in one txn: puts keys[i] = values[i] and deletes the
  // third list's keys, only while guard key's create revision is rev:
  // false when the guard failed (nothing was written).
  caf::replies_to<atom::publish, std::vector<std::string>,
                  std::vector<std::string>, std::vector<std::string>,
                  std::string, int64_t>::with<bool>>;

/// Writes the VIP holders' spreading keys in batches (one txn per up to
/// 100 keys): they are many and not on any failover path.
using spread_writer_actor = caf::typed_actor<
  // key = value on the lease ("" deletes); the latest value per key wins.
  caf::reacts_to<atom::put, std::string, std::string, int64_t>,
  // Flush timer.
  caf::reacts_to<atom::tick>>;

/// Addresses and gratuitous ARP on the VIP interface (detached).
using link_worker_actor = caf::typed_actor<
  // Adds (or re-adds with a new valid lifetime, seconds) IP/32.
  caf::replies_to<atom::add, std::string, int64_t>::with<bool>,
  // Removes IP/32.
  caf::replies_to<atom::erase, std::string>::with<bool>,
  // Sends a burst of gratuitous ARP (count of each form).
  caf::replies_to<atom::announce, std::string, int64_t>::with<bool>,
  // The lease was renewed: every address added (and not removed since)
  // gets this valid lifetime (seconds), in one go.
  caf::reacts_to<atom::keepalive, int64_t>,
  // Removes the VIP-shaped addresses (/32, preferred lifetime 0, finite
  // valid lifetime) not in the list: leftovers of a previous run.
  caf::replies_to<atom::prune, std::vector<std::string>>::with<bool>,
  // Applies the adds and removals asked so far (sent to itself).
  caf::reacts_to<atom::tick>>;

/// The DNAT rules of every VIP (detached). Requests that arrive together
/// are applied as one iptables-restore batch.
using nat_manager_actor = status_client_actor::extend<
  // Owner (a VIP key), match address, rules: makes this owner's rules
  // exactly these. Owners that share a match address (port-only VIPs on
  // the node's address) keep each other's rules.
  caf::replies_to<atom::publish, std::string, std::string,
                  std::vector<nat_rule>>::with<bool>,
  // Applies everything asked so far in one batch.
  caf::reacts_to<atom::tick>,
  // Removes the rules of every match address not in the list (leftovers
  // of a previous run).
  caf::replies_to<atom::prune, std::vector<std::string>>::with<bool>,
  // The audit period in seconds (0: no audit).
  caf::reacts_to<atom::audit, int64_t>,
  // Audit timer (its generation): re-read the chains, restore what was
  // changed behind our back.
  caf::reacts_to<atom::audit, uint64_t>>;

/// Reads the DNAT chains for the NAT manager's audit, off its thread
/// (detached): true when what it read replaced the trusted state.
using nat_reader_actor
  = caf::typed_actor<caf::replies_to<atom::audit>::with<bool>>;

/// What the supervisor tells every component that follows the config. Key
/// events go only to the actors that take their family (their interfaces
/// below name them).
using config_listener_actor = status_client_actor::extend<
  // The knobs in force: sent once the knobs are first read, then on every
  // change; each listener reads its slice.
  caf::reacts_to<config::knob_values>,
  // The first full etcd read has been applied (sent once).
  caf::reacts_to<atom::ready>>;

/// The ACL keeper (detached): a config listener that also audits its
/// chains.
using acl_keeper_actor = config_listener_actor::extend<
  // A whitelist key changed.
  caf::reacts_to<keys::event<config::family::acl>>,
  // Audit timer (its generation): re-read the chains, restore them.
  caf::reacts_to<atom::audit, uint64_t>>;

/// Campaigns on /lain/networkd/leader/ and, while leader, publishes.
using leader_actor = config_listener_actor::extend<
  // The keys its election and publishers read. VIP keys come rejected
  // too: a pool VIP with a broken value is rewritten.
  caf::reacts_to<keys::event<config::family::vip>>,
  caf::reacts_to<keys::event<config::family::domain>>,
  caf::reacts_to<keys::event<config::family::domain_servers>>,
  caf::reacts_to<keys::event<config::family::vippool>>,
  caf::reacts_to<keys::event<config::family::swarm_leader>>,
  caf::reacts_to<keys::event<config::family::deployd_leader>>,
  caf::reacts_to<keys::event<config::family::leader_candidate>>,
  caf::reacts_to<keys::event<config::family::app_endpoint>>,
  caf::reacts_to<keys::event<config::family::tinydns_fqdns>>,
  // The session lease changed (id 0: lost).
  caf::reacts_to<keepalive_info>,
  // Retry after a failed write (timer).
  caf::reacts_to<atom::tick>,
  // The streamrouter's ports from lainlet changed.
  caf::reacts_to<atom::ports, std::vector<uint16_t>>>;

/// Builds the DNS record tables and publishes them to the DNS workers.
using dns_responder_actor = config_listener_actor::extend<
  // Domain and domain-server keys.
  caf::reacts_to<keys::event<config::family::domain>>,
  caf::reacts_to<keys::event<config::family::domain_servers>>,
  // Default upstreams from resolv.conf, in file order.
  caf::reacts_to<atom::upstream, std::vector<config::upstream>>,
  // The hosts file changed: read it again.
  caf::reacts_to<atom::reload>,
  // Build and publish a table now (coalesces bursts of changes).
  caf::reacts_to<atom::publish>,
  // After publishes: sweep the cache, give freed memory back.
  caf::reacts_to<atom::tidy>,
  // A dynamic name (swarm.lain, ...) and its addresses; empty removes it.
  caf::reacts_to<atom::dynamic, std::string, std::vector<std::string>>,
  // The webrouter VIPs, which "webrouter"-typed domains answer.
  caf::reacts_to<atom::webrouter, std::vector<std::string>>,
  // Why a name and type resolve as they do (JSON of /v1/dns/lookup).
  caf::replies_to<atom::lookup, std::string, std::string>::with<std::string>>;

/// Keeps resolv.conf pointing at networkd; feeds the upstreams.
using resolv_guardian_actor = status_client_actor::extend<
  // The file changed (or a back-off ended): check it again.
  caf::reacts_to<atom::reload>>;

/// One per app.proc that some VIP needs: is a container of it healthy here?
using proc_tracker_actor = status_client_actor::extend<
  // The containers of this app.proc on this node (maybe none).
  caf::reacts_to<std::vector<container_info>>,
  // A subscriber (a VIP holder) and the TCP ports it needs probed. A
  // request: one that reaches a tracker which already ended bounces, and
  // the hub gives it to a new tracker.
  caf::replies_to<atom::subscribe, std::vector<uint16_t>,
                  caf::actor>::with<bool>,
  // A probe's outcome (the prober waits out the interval before the next
  // round: no timer here).
  caf::reacts_to<probe_done>,
  // The probe knobs in force (at spawn and on every change).
  caf::reacts_to<config::probe_knobs>>;

/// Owns the container source (lainlet or deployd) and the proc trackers.
using health_hub_actor = config_listener_actor::extend<
  // The container set changed (from the source's thread).
  caf::reacts_to<container_set>,
  // The source's connection state changed.
  caf::reacts_to<source_report>,
  // What Docker lists as running (cross-check of the source).
  caf::reacts_to<docker_report>,
  // Subscribe `who` to app.proc's health with these TCP ports.
  caf::reacts_to<atom::subscribe, std::string, std::string,
                 std::vector<uint16_t>, caf::actor>>;

/// Runs the session's blocking etcd lease calls on its own thread.
using session_worker_actor = caf::typed_actor<
  // Grants a lease with the TTL in seconds.
  caf::replies_to<atom::grant, int64_t>::with<lease_info>,
  // One keep-alive round trip for the lease id.
  caf::replies_to<atom::keepalive, int64_t>::with<keepalive_info>,
  // Revokes the lease id (releases every key bound to it).
  caf::replies_to<atom::revoke, int64_t>::with<bool>>;

/// The etcd session: one lease, granted once the knobs are read (its
/// lease slice), kept alive, revoked at shutdown.
using session_actor = config_listener_actor::extend<
  // Why the lease keeps the node from being ready, or "".
  caf::replies_to<atom::ready, atom::status>::with<std::string>,
  // Prometheus text of the lease's gauges and counters.
  caf::replies_to<atom::tick, atom::status>::with<std::string>,
  // Keep-alive timer.
  caf::reacts_to<atom::tick>,
  // Shutting down: renewals go on, no new grant.
  caf::reacts_to<atom::shutdown>,
  // Revokes the lease (every lock and key bound to it goes at once).
  caf::replies_to<atom::revoke>::with<bool>>;

/// The VIP registry: one holder per VIP key, spawned, reconfigured,
/// restarted and retired here; what the holders hold, for /v1/vips.
using vip_registry_actor = config_listener_actor::extend<
  // A valid VIP key put, or a delete: spawn, reconfigure or retire.
  caf::reacts_to<keys::event<config::family::vip>>,
  // A lock key: to the holder of its VIP.
  caf::reacts_to<keys::event<config::family::vip_lock>>,
  // A spreading key: the counts of its app.proc, to its holders.
  caf::reacts_to<keys::event<config::family::container_vip>>,
  // The session lease (id 0: lost): to every holder.
  caf::reacts_to<keepalive_info>,
  // Every holder's state, as a JSON array.
  caf::replies_to<atom::vips>::with<std::string>,
  // Prometheus text of the registry's counters.
  caf::replies_to<atom::tick, atom::status>::with<std::string>,
  // Send the spreading counts that changed (coalescing timer).
  caf::reacts_to<atom::publish>,
  // The lease deadline timer (its generation), one for every holder.
  caf::reacts_to<atom::fence, uint64_t>,
  // Restart the crashed holder of this key (backoff timer).
  caf::reacts_to<atom::restart, std::string>,
  // Every holder releases its address and rules; then all stop.
  caf::replies_to<atom::shutdown>::with<bool>>;

/// The watch router: one watch per watched prefix; each key is classified
/// once and sent typed to the actors that take its family; the knobs set
/// are resolved and told to every config listener.
using watch_router_actor = status_client_actor::extend<
  // Why the watches keep the node from being ready, or "".
  caf::replies_to<atom::ready, atom::status>::with<std::string>,
  // Prometheus text of the watches and key counters.
  caf::replies_to<atom::tick, atom::status>::with<std::string>,
  // The rejected VIP keys, as a JSON array.
  caf::replies_to<atom::vips>::with<std::string>,
  // SIGHUP: every watch reads its prefix again.
  caf::reacts_to<atom::reload>,
  // Raw keys from one watch (sent by the watcher threads).
  caf::reacts_to<key_batch>,
  // A watcher's phase changed.
  caf::reacts_to<watch_report>,
  // Shutting down: not ready any more.
  caf::reacts_to<atom::shutdown>>;

/// The front of the etcd side (session, watch router, VIP registry): what
/// the node and the admin endpoint ask, answered from the three.
using supervisor_actor = status_client_actor::extend<
  // True while ready: first full read applied, lease alive, watches up.
  caf::replies_to<atom::ready>::with<bool>,
  // Why not ready, or "" when ready (what /readyz says).
  caf::replies_to<atom::ready, atom::status>::with<std::string>,
  // SIGHUP: every watch reads its prefix again.
  caf::reacts_to<atom::reload>,
  // Every VIP holder's state and the rejected VIP keys, as JSON.
  caf::replies_to<atom::vips>::with<std::string>,
  // Prometheus text of the router's, session's and registry's counters.
  caf::replies_to<atom::tick, atom::status>::with<std::string>,
  // Release every VIP, revoke the lease, quit.
  caf::replies_to<atom::shutdown>::with<bool>>;

} // namespace networkd
