// SPDX-License-Identifier: MIT
// The query log (knob dns_log_queries): one info line per answered query,
// "dns-query client=... name=... type=... rcode=... source=...
// latency_us=...", at most N lines per second over all threads. Lines over
// the rate are counted, not written; the next written line says how many
// were left out. Off (N = 0) it costs one relaxed load per query.
#pragma once

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>

struct sockaddr;

namespace networkd::dns {

class query_log {
public:
  /// Lines per second; 0 turns the log off.
  void set_rate(uint32_t per_second) {
    rate_.store(per_second, std::memory_order_relaxed);
  }
  uint32_t rate() const { return rate_.load(std::memory_order_relaxed); }
  bool on() const { return rate() != 0; }

  /// Whether a line may be written at now_ms. When it may, `skipped` is
  /// the number of lines left out since the last written one.
  bool admit(uint64_t now_ms, uint64_t& skipped);

  /// Writes one line when admitted. `wire_name` is the question's name as
  /// sent; `source` is local, cache, upstream, stale, refused or error.
  void write(const sockaddr* client, std::string_view wire_name, uint16_t qtype,
             uint16_t rcode, const char* source, uint64_t latency_us,
             uint64_t now_ms);

  /// The line itself (without the log's prefix), for tests.
  static std::string line(std::string_view client, std::string_view name,
                          uint16_t qtype, uint16_t rcode, const char* source,
                          uint64_t latency_us, uint64_t skipped);

private:
  std::atomic<uint32_t> rate_{0};
  std::atomic<uint64_t> second_{0}; ///< the second lines are counted in
  std::atomic<uint32_t> used_{0};   ///< lines admitted in that second
  std::atomic<uint64_t> skipped_{0};
};

} // namespace networkd::dns
