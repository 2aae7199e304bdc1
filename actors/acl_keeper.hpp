// SPDX-License-Identifier: MIT
// The ACL keeper (-acl): feeds the whitelist keys into the node ACL of the
// --dataplane backend (nft: chain and sets in table ip networkd,
// net/kernel/nft_acl.hpp; iptables: chains lain-INPUT / lain-ENTRY,
// net/kernel/acl.hpp), one transaction per change, and removes it when
// networkd stops.
#pragma once

#include <caf/stateful_actor.hpp>

#include <chrono>
#include <memory>
#include <mutex>
#include <string>

#include "actors/audit_timer.hpp"
#include "actors/interfaces.hpp"
#include "net/kernel/acl.hpp"

namespace networkd {

/// What the keeper last did, for GET /v1/acl (read on the admin's threads).
struct acl_board {
  mutable std::mutex mtx;
  bool ready = false;
  bool active = false;
  std::string last_error;
};

struct acl_keeper_state {
  static inline const char* name = "acl";

  std::shared_ptr<acl::filter_table> table;
  std::shared_ptr<acl_board> board;
  acl::inputs in;
  bool ready = false; ///< the first full etcd read is in
  bool pending = false;
  bool active = false; ///< our chains are installed
  uint64_t applies = 0;
  uint64_t failures = 0; ///< rule sets refused or not applied (/metrics)
  uint64_t changes = 0;
  std::string last_error;
  /// The audit: every acl_audit_s the chains are read again and put back
  /// when someone else changed them.
  audit_timer audit;
  uint64_t audits = 0;
  uint64_t repairs = 0;

  ~acl_keeper_state();
  std::string render() const;
};

/// Runs detached (its kernel calls block).
acl_keeper_actor::behavior_type
acl_keeper(acl_keeper_actor::stateful_pointer<acl_keeper_state> self,
           std::shared_ptr<acl::filter_table> table,
           std::shared_ptr<acl_board> board);

/// The ACL backend `dataplane` names ("nft" or "iptables"); the other
/// backend's ACL, left by an earlier run, is removed first (two ACLs would
/// both drop).
std::shared_ptr<acl::filter_table> make_acl_table(const std::string& dataplane);

/// GET /v1/acl: the keeper's state and our rules as read from the kernel
/// now.
std::string acl_json(acl::filter_table& table, const acl_board& board);

} // namespace networkd
