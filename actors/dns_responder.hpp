// SPDX-License-Identifier: MIT
// The dns responder: keeps every input of the DNS record table (etcd
// domains and domain servers, the hosts file, dynamic names, webrouter
// VIPs, upstreams, TTL) and publishes a new immutable table to the DNS
// server's workers whenever one changes. Queries never pass through here.
#pragma once

#include <caf/stateful_actor.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "dns/explain.hpp"
#include "dns/server.hpp"
#include "net/kernel/file_watch.hpp"

namespace networkd {

struct dns_responder_config {
  std::shared_ptr<dns::server> server; ///< started by the caller
  std::string node_ip;
  std::string hosts_file; ///< empty: none
};

struct dns_responder_state {
  static inline const char* name = "dns-responder";

  dns_responder_config cfg;
  /// The dns_* knobs in force (dns_ttl here, the rest in the server).
  config::dns_knobs knobs = config::default_knobs().dns;
  /// By stored name, with the revision for /v1/dns/lookup.
  std::map<std::string, dns::from_etcd<config::domain_config>> domains;
  std::map<std::string, dns::from_etcd<config::domain_servers_config>> servers;
  std::map<std::string, std::vector<std::string>> dynamic_names;
  std::vector<std::string> webrouter_ips;
  std::vector<config::upstream> upstreams;
  std::vector<dns::hosts_entry> hosts;
  std::string hosts_error;
  std::unique_ptr<file_watch> hosts_watch;
  std::vector<std::string> warnings; ///< from the last table build
  /// The table last published (what the next one is made from).
  std::shared_ptr<const dns::table> table;
  /// Domains changed since that table, by key in `domains`, with their
  /// value in it (nullopt: absent). Applied one by one (table::update).
  std::map<std::string, std::optional<config::domain_config>> changed;
  /// Something else changed (or too much): build the whole table.
  bool rebuild = true;
  bool publish_pending = false;
  size_t changes_since_publish = 0; ///< domain and domain server keys
  bool compact_next = false;        ///< set a while after the first read
  bool tidy_pending = false;        ///< a tidy-up is scheduled
  uint64_t tidies = 0;
  uint64_t publishes = 0;
  uint64_t table_updates = 0; ///< publishes made by table::update
  uint64_t hosts_reloads = 0;

  dns::table_input input() const;
  /// Notes that the domain under `key` is about to change.
  void domain_changing(const std::string& key);
  /// The next table: the last one updated with the changed domains, or a
  /// whole new build.
  std::shared_ptr<const dns::table> next_table();
  /// Copies the domain maps into fresh allocations after a bulk change.
  void compact();
  void read_hosts();
  std::string render() const;
  /// The JSON of /v1/dns/lookup (an "error" object for a bad question).
  std::string lookup(const std::string& name, const std::string& type) const;
};

dns_responder_actor::behavior_type
dns_responder(dns_responder_actor::stateful_pointer<dns_responder_state> self,
              dns_responder_config cfg);

/// Prometheus text of the DNS server's counters and of its upstreams'
/// answers (dns::server::upstream_health()).
std::string
dns_metrics(const dns::server_stats& s,
            const std::vector<dns::forwarder::upstream_health>& upstreams = {});

} // namespace networkd
