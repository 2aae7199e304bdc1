// SPDX-License-Identifier: MIT
// The resolv.conf guardian: keeps the first nameserver of --resolv-conf
// pointing at networkd, drops "rotate", writes atomically, sends the other
// name servers to the dns responder as upstreams, leaves symlinked files
// (systemd-resolved, NetworkManager) alone, and backs off instead of
// fighting another program that keeps rewriting the file.
#pragma once

#include <caf/stateful_actor.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "net/kernel/file_watch.hpp"

namespace networkd {

/// Decides when rewriting the file has become a fight. Pure: time in.
class fight_detector {
public:
  using time_point = std::chrono::steady_clock::time_point;
  using duration = std::chrono::milliseconds;

  /// More than `max_writes` rewrites within `window` is a fight; the
  /// guardian then waits `backoff` (doubling per fight up to `max_backoff`).
  fight_detector(size_t max_writes = 5, duration window = duration{30000},
                 duration backoff = duration{30000},
                 duration max_backoff = duration{600000})
      : max_writes_(max_writes), window_(window), first_backoff_(backoff),
        max_backoff_(max_backoff), backoff_(backoff) {}

  /// Asks to rewrite at `now`. True: go ahead (the write is counted).
  /// False: backing off; when this call is the one that found the budget
  /// spent, a new fight starts and `started_fight()` turns true once.
  bool try_write(time_point now);
  /// True once after try_write started a fight (for a single log line).
  bool started_fight() {
    bool b = started_;
    started_ = false;
    return b;
  }
  /// The file was found right: a calm period resets the backoff growth.
  void calm(time_point now);
  bool fighting(time_point now) const { return now < quiet_until_; }
  time_point quiet_until() const { return quiet_until_; }
  uint64_t fights() const { return fights_; }

private:
  size_t max_writes_;
  duration window_;
  duration first_backoff_;
  duration max_backoff_;
  duration backoff_;
  std::deque<time_point> writes_;
  time_point quiet_until_{};
  uint64_t fights_ = 0;
  bool started_ = false;
};

struct resolv_guardian_config {
  std::string path;
  std::string our_ip;               ///< goes first
  std::vector<std::string> own_ips; ///< never upstreams
  dns_responder_actor responder;
};

struct resolv_guardian_state {
  static inline const char* name = "resolv-guardian";

  resolv_guardian_config cfg;
  std::unique_ptr<file_watch> watch;
  fight_detector fights;
  /// managed | managed-elsewhere (symlink) | missing | fighting | error
  std::string mode = "starting";
  std::string symlink_target;
  std::string last_error;
  std::vector<config::upstream> upstreams;
  uint64_t checks = 0;
  uint64_t rewrites = 0;
  bool backoff_timer = false;

  std::string render(std::chrono::steady_clock::time_point now) const;
};

resolv_guardian_actor::behavior_type resolv_guardian(
  resolv_guardian_actor::stateful_pointer<resolv_guardian_state> self,
  resolv_guardian_config cfg);

/// Replaces `path` with `text` atomically (temp file in the same directory,
/// fsync, rename), keeping the old file's mode and owner when it exists.
result<unit> write_atomically(const std::string& path, const std::string& text);

} // namespace networkd
