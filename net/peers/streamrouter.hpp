// SPDX-License-Identifier: MIT
// The streamrouter's ports, read from lainlet's /v2/streamrouter/ports on a
// thread of their own (a plain GET every interval): the leader's
// streamrouter publisher writes one VIP key per pool address with them.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace networkd::lainlet {

struct ports_status {
  bool have = false;           ///< a valid list arrived at least once
  std::vector<uint16_t> ports; ///< the last valid list
  uint64_t polls = 0;
  uint64_t failures = 0;  ///< unreachable, HTTP errors, bad bodies
  std::string last_error; ///< of the latest failed poll ("" after a good one)
};

/// Polls `/v2/streamrouter/ports` at `endpoint` every `interval` and calls
/// `on_ports` (on the poller's thread) with the first valid list and then
/// whenever it changes. A failed poll or a bad body keeps the last list.
class ports_poller {
public:
  using handler = std::function<void(const std::vector<uint16_t>&)>;

  ports_poller(std::string endpoint, std::chrono::milliseconds interval,
               handler on_ports);
  ~ports_poller();
  ports_poller(const ports_poller&) = delete;
  ports_poller& operator=(const ports_poller&) = delete;

  ports_status status() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace networkd::lainlet
