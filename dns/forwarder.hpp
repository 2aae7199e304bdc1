// SPDX-License-Identifier: MIT
// Asynchronous forwarding to upstream servers. One thread owns every
// upstream socket; other threads only submit requests through a mailbox.
//
// UDP queries are sent by this code, not by c-ares. Debian 12's c-ares is
// 1.18.1: it keeps one UDP socket per server and puts every query pending
// at the same time on it (66 distinct source ports for 3000 queries with
// 50 in flight, issue 16). ARES_OPT_UDP_MAX_QUERIES, which would bound that
// to one query per socket, arrived in c-ares 1.20; ares_set_socket_functions
// (1.18) only replaces socket(2)/connect(2) and cannot make c-ares open a
// socket per query. So every UDP try gets its own socket, connect()ed to
// the upstream (the kernel picks a random ephemeral source port and drops
// datagrams from any other address or port), a random ID from getrandom(2),
// and is closed when the try ends. An answer is accepted only with that ID,
// QR set and the same question (name compared case-insensitively, type,
// class); anything else is dropped and counted (`mismatched`) while the try
// keeps waiting. 0x20: the letters of the question get a random case per
// try; once an upstream has echoed that case, an answer from it in another
// case is dropped as forged; an upstream whose first answer changes the
// case gets lower-case questions (until a probe answer resets that).
// A truncated answer is retried over TCP with c-ares
// (ARES_FLAG_USEVC, one channel per server): TCP is not open to off-path
// spoofing, and c-ares already does the framing.
//
// Upstream choice (unbound's infrastructure cache, simplified): per server
// a smoothed RTT and a count of consecutive failures (timeout, network
// error, SERVFAIL/REFUSED/NOTIMP). Each exchange tries the servers in this
// order: servers without failures by smoothed RTT (unknown ones count as
// 376 ms, unbound's default, so a measured fast server beats an untried
// one), then failed ones in configured order; the list is walked `tries`
// rounds, the timeout doubling per round as in c-ares. A failed server is
// probed in the background (". NS", any matching answer counts) after 1 s,
// then 2, 4, ... up to 60 s while probes fail; a probe answer or an answer
// to a real query makes it healthy again. Failed servers are still tried
// last by real queries, so forwarding never stops while all are down.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/base/result.hpp"
#include "net/cluster/config.hpp"

namespace networkd::dns {

struct forwarder_options {
  int timeout_ms = 1500; ///< per upstream try (c-ares doubles it per round)
  int tries = 2;         ///< rounds over the whole server list
  /// Upstream exchanges at once (distinct queries; coalesced ones join
  /// them). Past it a request fails at once (the client gets SERVFAIL), as
  /// dnsmasq's dns-forward-max and unbound's num-queries-per-thread do.
  size_t max_in_flight = 1024;
  /// Requests waiting on one exchange; past it they fail at once.
  size_t max_waiters = 256;
  /// First back-off before a failed upstream is probed; it doubles per
  /// failed probe up to max_probe_backoff_ms.
  int probe_backoff_ms = 1000;
  int max_probe_backoff_ms = 60000;
};

/// The outcome of one upstream exchange.
struct upstream_answer {
  bool ok = false;           ///< a usable answer arrived
  std::string error;         ///< c-ares' reason otherwise
  std::vector<uint8_t> wire; ///< the answer (ok only)
  uint64_t latency_us = 0;
};

class forwarder {
public:
  using callback = std::function<void(const upstream_answer&)>;

  explicit forwarder(forwarder_options opts = {});
  ~forwarder();
  forwarder(const forwarder&) = delete;
  forwarder& operator=(const forwarder&) = delete;

  result<unit> start();
  /// Stops the thread; requests still in flight get a failed answer.
  void stop();

  /// Thread-safe. Sends `wire` (a complete query) to `servers`, tried in
  /// the order of their health (see above). A request whose `key` and server
  /// list equal one already in flight is coalesced with it: one upstream query,
  /// every `done` called with its answer. Callbacks run on the forwarder
  /// thread.
  void submit(std::string key, std::vector<config::upstream> servers,
              std::vector<uint8_t> wire, callback done);

  /// Thread-safe. Queries sent from now on (queued ones included) wait
  /// `timeout_ms` per try; queries already out finish with the timeout
  /// they started with.
  void set_timeout(int timeout_ms);
  int timeout() const;

  /// Thread-safe. True when every server in `servers` is in the failed
  /// state (known, and its last exchange or probe failed).
  bool all_failed(const std::vector<config::upstream>& servers) const;

  /// The servers in the order the next exchange would try them (see
  /// above), without counting as a use. Thread-safe.
  std::vector<config::upstream>
  order(const std::vector<config::upstream>& servers) const;

  /// One upstream's health as the forwarder sees it.
  struct upstream_health {
    std::string server;    ///< "ip#port"
    uint64_t srtt_us = 0;  ///< 0: never answered
    uint32_t failures = 0; ///< consecutive
    uint64_t answers = 0;
    uint64_t timeouts = 0;
    std::array<uint64_t, 16> rcodes{}; ///< its answers by rcode
  };
  std::vector<upstream_health> health() const;

  struct counters {
    uint64_t sent = 0;      ///< upstream exchanges started
    uint64_t coalesced = 0; ///< requests that joined one in flight
    uint64_t answered = 0;
    uint64_t failed = 0;
    uint64_t refused = 0;        ///< over max_in_flight or max_waiters
    uint64_t latency_us_sum = 0; ///< over answered exchanges
    /// Datagrams dropped on a query socket: wrong ID, not a response,
    /// another question (wrong source: the kernel drops those).
    uint64_t mismatched = 0;
    uint64_t probes = 0;      ///< background probes of failed upstreams
    uint64_t tcp_retries = 0; ///< truncated UDP answers asked again on TCP
  };
  counters stats() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace networkd::dns
