// SPDX-License-Identifier: MIT
// Lease bookkeeping for the node's etcd session: when to send the next
// keep-alive and the latest moment the lease may still be alive on the
// server. Pure logic; the caller passes the time in.
#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>

namespace networkd {

class lease_tracker {
public:
  using clock = std::chrono::steady_clock;
  using time_point = clock::time_point;
  using duration = std::chrono::milliseconds;

  /// `margin` is subtracted from every deadline: the node treats its lease
  /// as gone that much before the server could expire it. It is used up to
  /// half the TTL (a margin as long as the TTL would leave no lease).
  explicit lease_tracker(duration margin = duration{500}) : margin_(margin) {}

  /// A new margin (the fencing_margin_ms knob), used from the next renewal.
  void set_margin(duration margin) { margin_ = margin; }
  /// The margin in use for a lease of `ttl_s` seconds.
  duration margin_for(int64_t ttl_s) const {
    return std::min(
      margin_,
      std::chrono::duration_cast<duration>(std::chrono::seconds(ttl_s)) / 2);
  }

  /// A grant (or keep-alive) sent at `sent_at` came back with `ttl_s`
  /// seconds: the server keeps the lease at least until sent_at + ttl.
  void renewed(int64_t id, int64_t ttl_s, time_point sent_at) {
    id_ = id;
    ttl_s_ = ttl_s;
    auto until = sent_at + std::chrono::seconds(ttl_s) - margin_for(ttl_s);
    // A late answer to an older request never shortens the deadline.
    if (!alive_ || until > deadline_)
      deadline_ = until;
    alive_ = ttl_s > 0;
    ++renewals_;
  }

  /// The lease is known to be gone (revoked, TTL 0, or past the deadline).
  void lost() {
    alive_ = false;
    id_ = 0;
  }

  bool alive(time_point now) const { return alive_ && now < deadline_; }
  int64_t id() const { return id_; }
  int64_t ttl() const { return ttl_s_; }
  time_point deadline() const { return deadline_; }
  uint64_t renewals() const { return renewals_; }

  /// Time left before the local deadline (zero when past or dead).
  duration remaining(time_point now) const {
    if (!alive_ || now >= deadline_)
      return duration{0};
    return std::chrono::duration_cast<duration>(deadline_ - now);
  }

  /// True when the last renewal came back so late that less than half of
  /// the usable lease (TTL minus the margin) is left: a grant or keep-alive
  /// answered after a long stall (etcd unreachable, elections). Renew at
  /// once instead of acting on a lease about to pass its deadline.
  bool late(time_point now) const {
    auto usable
      = std::chrono::duration_cast<duration>(std::chrono::seconds(ttl_s_))
        - margin_for(ttl_s_);
    return alive_ && remaining(now) * 2 < usable;
  }

  /// Delay until the next keep-alive: TTL/3 (the rate of etcd's own
  /// clients), but at most half of what a VIP address is sure to live after
  /// a renewal, and at least 250 ms. An address lives in the kernel for the
  /// whole seconds left before the deadline, at least TTL - margin - 1 s
  /// (as little as 1 s for short TTLs), and the next renewal must land
  /// while half of that is still left: one lost round trip then costs no
  /// address. With the default 6 s TTL and 500 ms margin: every 2 s.
  /// After a failure, retry sooner (a tenth of the TTL, at least 100 ms).
  duration next_keepalive(bool last_failed) const {
    auto ttl = std::chrono::duration_cast<duration>(
      std::chrono::seconds(std::max<int64_t>(ttl_s_, 1)));
    if (last_failed)
      return std::max(duration{100}, ttl / 10);
    auto sure_life = ttl - margin_for(ttl_s_) - duration{1000};
    auto half_life = std::max(duration{250}, sure_life / 2);
    return std::min(ttl / 3, half_life);
  }

private:
  duration margin_;
  int64_t id_ = 0;
  int64_t ttl_s_ = 0;
  bool alive_ = false;
  time_point deadline_{};
  uint64_t renewals_ = 0;
};

} // namespace networkd
