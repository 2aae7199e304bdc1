// SPDX-License-Identifier: MIT
// Asynchronous forwarding to upstream servers with c-ares. One thread owns
// every c-ares channel (one channel per distinct upstream list); other
// threads only submit requests through a mailbox. c-ares gives every
// upstream query a fresh random ID, checks that the answer matches the
// question, moves on to the next server after a timeout or a SERVFAIL /
// REFUSED / NOTIMP answer, and retries over TCP when an answer is truncated.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/cluster/config.hpp"
#include "net/base/result.hpp"

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
  /// order. A request whose `key` and server list equal one already in
  /// flight is coalesced with it: one upstream query, every `done` called
  /// with its answer. Callbacks run on the forwarder thread.
  void submit(std::string key, std::vector<config::upstream> servers,
              std::vector<uint8_t> wire, callback done);

  /// Thread-safe. Queries sent from now on (queued ones included) wait
  /// `timeout_ms` per try; queries already out finish with the timeout
  /// they started with.
  void set_timeout(int timeout_ms);
  int timeout() const;

  struct counters {
    uint64_t sent = 0;      ///< upstream exchanges started
    uint64_t coalesced = 0; ///< requests that joined one in flight
    uint64_t answered = 0;
    uint64_t failed = 0;
    uint64_t refused = 0; ///< over max_in_flight or max_waiters
    uint64_t latency_us_sum = 0; ///< over answered exchanges
  };
  counters stats() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace networkd::dns
