// SPDX-License-Identifier: MIT
// The effect workers behind the VIP holders, each a detached actor (their
// calls block): etcd lock and key writes, addresses and gratuitous ARP on
// the VIP interface, and the DNAT rules of all VIPs.
#pragma once

#include <caf/stateful_actor.hpp>
#include <caf/typed_response_promise.hpp>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "actors/audit_timer.hpp"
#include "actors/interfaces.hpp"
#include "actors/link_monitor.hpp"
#include "actors/metrics.hpp"
#include "net/etcd/etcd.hpp"
#include "net/etcd/vip_lock.hpp"
#include "net/kernel/arp.hpp"
#include "net/kernel/nat.hpp"
#include "net/kernel/netlink.hpp"

namespace networkd {

struct etcd_worker_state {
  static inline const char* name = "etcd-worker";
  std::shared_ptr<etcd::client> client;
  struct pending_lock {
    vip::lock_ask ask;
    caf::typed_response_promise<lock_result> rp;
  };
  /// Lock requests waiting for the tick, in the order asked.
  std::vector<pending_lock> locks;
  bool flush_scheduled = false;
  uint64_t lock_batches = 0;
  /// Takes every waiting lock (few round trips) and answers each request.
  void take_locks();
};

etcd_worker_actor::behavior_type
etcd_worker(etcd_worker_actor::stateful_pointer<etcd_worker_state> self,
            std::shared_ptr<etcd::client> client);

struct link_config {
  std::string interface;
  /// Opened by the caller (in the right network namespace).
  std::shared_ptr<netlink::address_manager> addresses;
  std::shared_ptr<arp::announcer> announcer;
};

/// Gratuitous ARP bursts (a link worker's helper, detached).
using arp_sender_actor = caf::typed_actor<
  caf::replies_to<atom::announce, std::string, int64_t>::with<bool>>;

struct link_worker_state {
  static inline const char* name = "link-worker";
  link_config cfg;
  arp_sender_actor arp; ///< none without an announcer
  /// The addresses this worker added and did not remove since.
  std::set<std::string> added;
  /// An add (with its valid lifetime) or a removal waiting for the tick.
  struct change {
    bool add;
    std::string ip;
    int64_t valid_s;
    caf::typed_response_promise<bool> rp;
  };
  /// Changes asked together, in their order: the holders of a cold start
  /// or a SIGTERM ask for thousands at once.
  std::vector<change> queued;
  bool flush_scheduled = false;
  uint64_t batches = 0;
  /// Applies the queued changes, each run of adds (of one lifetime) or of
  /// removals as one batch of requests, and answers each.
  void flush();
};

link_worker_actor::behavior_type
link_worker(link_worker_actor::stateful_pointer<link_worker_state> self,
            link_config cfg);

struct nat_manager_state {
  static inline const char* name = "nat-manager";
  std::shared_ptr<nat::dnat_table> table;
  /// What one owner (a VIP key) asked for: its match address and rules.
  struct owned {
    std::string addr;
    std::vector<nat::dnat_rule> rules;
  };
  /// Every owner's rules as asked (applied, or waiting for the next
  /// batch): the desired content of our chains.
  std::map<std::string, owned> owners;
  /// Match addresses whose rules changed since the last batch.
  std::set<std::string> dirty;
  /// Requests waiting for the batch.
  std::vector<caf::typed_response_promise<bool>> waiting;
  bool flush_scheduled = false;
  uint64_t batches = 0;
  /// The audit: every `audit.every` the reader re-reads the chains (off
  /// this thread) and the next diff restores what someone else changed.
  nat_reader_actor reader;
  audit_timer audit;
  bool audit_running = false;
  uint64_t audits = 0;
  uint64_t repairs = 0;  ///< audits that found our chains changed
  uint64_t failures = 0; ///< batches that failed
  std::string last_error;
  std::string last_repair; ///< what the last repairing audit did
  std::string render() const;
  /// Every owner's rules on these addresses (all when nullptr).
  std::vector<nat::dnat_rule>
  desired_on(const std::set<std::string>* addrs) const;
};

/// The NAT manager; `audit_every` 0 starts without an audit.
nat_manager_actor::behavior_type
nat_manager(nat_manager_actor::stateful_pointer<nat_manager_state> self,
            std::shared_ptr<nat::dnat_table> table,
            std::chrono::seconds audit_every);

struct spread_writer_state {
  static inline const char* name = "spread-writer";
  etcd_worker_actor etcd;
  int64_t lease = 0;
  std::map<std::string, std::string> pending; ///< key → value ("" deletes)
  bool flush_scheduled = false;
  bool in_flight = false;
  uint64_t batches = 0;
};

spread_writer_actor::behavior_type
spread_writer(spread_writer_actor::stateful_pointer<spread_writer_state> self,
              etcd_worker_actor etcd);

/// What every VIP holder shares.
struct vip_env {
  std::string hostname;
  std::string node_ip;
  std::string interface;
  etcd_worker_actor etcd;
  link_worker_actor link;
  nat_manager_actor nat;
  health_hub_actor health;
  /// Writes the spreading keys (null: not written).
  spread_writer_actor spread;
  /// Reports removals of and ARP conflicts for the addresses we serve
  /// (null: not watched).
  std::shared_ptr<link_monitor> monitor;
  /// A VIP configured here that is still not ours this long after the
  /// holder started loses what a previous run left of it (rules, address).
  std::chrono::milliseconds leftover_grace{10000};
  /// Gratuitous ARP until the knobs say otherwise: rounds, the pause
  /// between them, and the refresh period while serving (0: none).
  int64_t arp_count = 4;
  std::chrono::milliseconds arp_interval{1100};
  std::chrono::seconds arp_refresh{0};
  /// Where the holders show their phase to /metrics (null: nowhere).
  std::shared_ptr<vip_board> board;
};

} // namespace networkd
