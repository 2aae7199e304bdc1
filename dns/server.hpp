// SPDX-License-Identifier: MIT
// The embedded DNS server: UDP and TCP sockets, worker threads, the table
// snapshot, the answer cache and the upstream forwarder. No CAF.
//
// How the daemon uses it (the dns responder actor owns one server):
//
//   dns::server_options opts;
//   opts.listen = {"127.0.0.1:53", "172.17.0.1:53"};   // -godns.addr
//   opts.allowed_networks = {"172.17.0.0/16"};          // -acl
//   dns::server srv{opts};
//   if (auto r = srv.start(); !r) { /* bind failed: r.error() */ }
//   // Whenever etcd domains, the hosts file, dynamic names or the upstream
//   // list (from the resolv.conf guardian) change: build a new table from
//   // the full input and publish it. Upstreams live in the table, so
//   // "set upstreams" = publish a table with new table_input::upstreams.
//   dns::table_input in = ...;
//   srv.publish(dns::table::build(in));
//   srv.stats();        // counters for /v1/state and /metrics
//   srv.config_text();  // body of /v1/dns/config
//   srv.stop();         // joins every thread; also done by the destructor
//
// Threads: `workers` UDP threads (one SO_REUSEPORT socket per listen
// address each, recvmmsg/sendmmsg batches), one TCP thread (all listeners
// and connections, epoll), one forwarder thread (c-ares). Workers answer
// local names and cache hits from the current snapshot; publish() swaps it
// with one atomic store plus a generation counter the workers check per
// batch. Misses go to the forwarder, whose thread sends the answer (UDP) or
// hands it back to the TCP thread, so slow upstreams never block anything.
#pragma once

#include <array>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "dns/cache.hpp"
#include "dns/forwarder.hpp"
#include "dns/table.hpp"
#include "net/base/prom.hpp"
#include "net/base/result.hpp"
#include "net/cluster/knobs.hpp"

namespace networkd::dns {

/// The cache settings a server starts with: cache_options' defaults with
/// serve-stale on for a day (the dns_serve_stale_s knob's default).
inline cache_options server_cache_defaults() {
  cache_options c;
  c.serve_stale_s = 86400;
  return c;
}

struct server_options {
  /// "ip:port" or "[ip6]:port"; every address gets UDP and TCP.
  std::vector<std::string> listen{"127.0.0.1:53"};
  unsigned workers = 0; ///< UDP threads; 0 = number of cores
  /// Sources allowed besides loopback (CIDRs); others get REFUSED.
  std::vector<std::string> allowed_networks;
  bool allow_loopback = true;      ///< tests turn this off to exercise the ACL
  uint16_t max_udp_payload = 1232; ///< our EDNS payload size
  cache_options cache = server_cache_defaults();
  forwarder_options upstream;
  // DNS over TCP limits (README, "DNS over TCP limits"). A connection
  // over one of them is closed and counted in server_stats.
  /// Closed when no complete query came for this long (partial input does
  /// not count; while forwarded queries are out, 4x as long).
  std::chrono::milliseconds tcp_idle_timeout{10000};
  size_t max_tcp_connections = 256; ///< all clients; more are closed at once
  size_t max_tcp_per_client = 16;   ///< per source address, likewise
  /// Answers queued for one connection: above it, its queries are no
  /// longer read (back-pressure through the client's TCP window).
  size_t tcp_output_cap = 64 * 1024;
  /// Answers queued for all connections: above it, the connection with
  /// the most is closed.
  size_t tcp_total_output_cap = 4 * 1024 * 1024;
  /// Closed when queued answers could not be sent for this long.
  std::chrono::milliseconds tcp_write_timeout{5000};
  /// Queries of one connection at the forwarder at once; further ones
  /// wait unread.
  size_t tcp_max_inflight = 16;
  /// After this, a connection takes no new queries and is closed once its
  /// answers are out (dnsmasq: 150 s).
  std::chrono::milliseconds tcp_max_lifetime{150000};
};

/// A copy of the counters at one moment.
struct server_stats {
  uint64_t queries = 0;
  uint64_t local = 0;     ///< answered from the table
  uint64_t cached = 0;    ///< answered from the cache
  uint64_t forwarded = 0; ///< sent to the forwarder
  uint64_t refused = 0;   ///< clients outside the ACL
  uint64_t errors = 0;    ///< FORMERR/NOTIMP/BADVERS answers
  uint64_t dropped = 0;   ///< packets not answered
  /// Expired cache entries served (TTL 30) because every upstream failed
  /// (RFC 8767).
  uint64_t stale = 0;
  /// Background refreshes of entries hit in the last 10% of their TTL.
  uint64_t prefetches = 0;
  std::map<std::string, uint64_t> by_type;  ///< "A" -> count
  std::map<std::string, uint64_t> by_rcode; ///< "NOERROR" -> responses
  cache::counters cache_stats;
  forwarder::counters upstream;
  uint64_t tcp_connections = 0;          ///< open now
  uint64_t tcp_rejected = 0;             ///< over max_tcp_connections
  uint64_t tcp_rejected_per_client = 0;  ///< over max_tcp_per_client
  uint64_t tcp_closed_idle = 0;          ///< tcp_idle_timeout
  uint64_t tcp_closed_write_timeout = 0; ///< tcp_write_timeout
  uint64_t tcp_closed_output = 0;        ///< tcp_total_output_cap
  uint64_t tcp_closed_lifetime = 0;      ///< reached tcp_max_lifetime
  uint64_t tcp_output_bytes = 0;         ///< answers queued now, all
  uint64_t tcp_output_peak = 0; ///< most ever queued for one connection
  /// Request durations by how they were answered: local, cache, upstream
  /// (received to answered; stale answers count as upstream).
  std::array<prom::histogram_counts, 3> durations;
};

class server {
public:
  explicit server(server_options opts);
  ~server();
  server(const server&) = delete;
  server& operator=(const server&) = delete;

  /// Binds every socket and starts the threads. Failure codes: "bad_option"
  /// (listen address or CIDR), "bind" (e.g. address in use), "io".
  result<unit> start();
  /// Stops and joins all threads, closes the sockets. Idempotent.
  void stop();

  /// Makes `t` the table every thread answers from and, with `sweep`,
  /// drops cached answers for names that are local in it (sweep_cache).
  /// Thread-safe with the query threads; call it from one thread (the dns
  /// responder). A table published before start() is used from the start.
  /// `after_free`, when given, runs once `t` has been replaced and every
  /// thread has let go of it (within a second), on that last thread.
  void publish(std::shared_ptr<const table> t,
               std::function<void()> after_free = {}, bool sweep = true);
  /// Drops cached answers for names local in the current table. Queries
  /// ask the table first, so such entries are never served: this only
  /// frees their memory. Returns how many went.
  size_t sweep_cache();
  std::shared_ptr<const table> current() const;

  /// Applies the dns_* knobs: the cache's size, TTL limits and serve-stale
  /// window, and the upstream timeout per try. Thread-safe.
  void tune(const config::dns_knobs& k);
  /// The cache and forwarder settings in force (the admin view).
  cache_options cache_settings() const;
  int upstream_timeout_ms() const;
  /// Every upstream's smoothed RTT and failure state (admin view, tests).
  std::vector<forwarder::upstream_health> upstream_health() const;

  server_stats stats() const;
  /// The /v1/dns/config text of the current table.
  std::string config_text() const;
  const server_options& options() const { return opts_; }

  /// The upstreams used for a name after removing our own addresses and
  /// 127.0.0.53 (exposed for tests and the admin view).
  std::vector<config::upstream> upstreams_for(std::string_view name) const;

  /// What a forwarded query for (lower wire name, type) would meet now,
  /// without sending anything: the upstreams in the order they would be
  /// tried, and the cache entry kept for it (live, stale or a failure).
  struct forward_view {
    std::vector<config::upstream> order;
    std::shared_ptr<const cache_entry> cached;
    uint64_t now_ms = 0; ///< the clock the cache entry's times are on
    uint32_t serve_stale_s = 0;
  };
  forward_view forward_view_of(std::string_view lower_wire,
                               uint16_t qtype) const;

  struct impl;

private:
  server_options opts_;
  std::shared_ptr<const table> initial_; ///< published before start()
  std::unique_ptr<impl> impl_;
};

} // namespace networkd::dns
