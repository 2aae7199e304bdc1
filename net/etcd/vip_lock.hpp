// SPDX-License-Identifier: MIT
// The VIP lock in etcd: /lain/networkd/vips/{IP}.lock holds the owner's
// hostname on the owner's lease. The txns and what their outcomes mean as
// plain functions, and a taker that sends many locks in few round trips.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "net/base/result.hpp"
#include "net/etcd/etcd.hpp"

namespace networkd::vip {

/// One lock to take: key = value (our hostname) on the lease.
struct lock_ask {
  std::string key;
  std::string value;
  int64_t lease = 0;
};

/// What the lock key holds after the attempt.
struct lock_answer {
  bool ours = false;
  std::string holder;   ///< its value; "" when it vanished meanwhile
  int64_t revision = 0; ///< mod revision of the key (ours or theirs)
  friend bool operator==(const lock_answer& a, const lock_answer& b) {
    return a.ours == b.ours && a.holder == b.holder && a.revision == b.revision;
  }
};

/// Puts value with the lease if the key does not exist (create_revision
/// 0); otherwise reads it.
etcd::txn_request lock_txn(const lock_ask& a);

/// The meaning of a lock txn's outcome: an answer, or (no answer) our own
/// value on another lease — a previous run's — to re-bind at rebind_at.
struct lock_verdict {
  std::optional<lock_answer> answer;
  int64_t rebind_at = 0; ///< mod revision the re-bind is guarded by
};

lock_verdict judge_lock(const lock_ask& a, const etcd::txn_result& r);

/// Binds the key to a's lease, guarded by our value and the mod revision
/// seen, so nobody can slip in between.
etcd::txn_request rebind_txn(const lock_ask& a, int64_t mod_revision);

lock_answer judge_rebind(const lock_ask& a, const etcd::txn_result& r);

/// Takes every lock asked, in order: up to etcd::client::max_nested_txns
/// lock txns per round trip, then the re-binds the same way. A key asked
/// twice goes into a later round trip. A failed round trip fails the locks
/// it carried (and only those). Falls back to one txn per lock when the
/// server does not run nested txns.
std::vector<result<lock_answer>> take_locks(etcd::client& c,
                                            const std::vector<lock_ask>& asks);

} // namespace networkd::vip
