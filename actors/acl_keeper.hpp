// SPDX-License-Identifier: MIT
// The ACL keeper (-acl): feeds the whitelist keys into the filter-table
// chains lain-INPUT / lain-ENTRY (net/kernel/acl.hpp), one batch per change,
// and removes them (INPUT policy back to ACCEPT) when networkd stops.
#pragma once

#include <caf/stateful_actor.hpp>

#include <chrono>
#include <memory>
#include <string>

#include "actors/audit_timer.hpp"
#include "actors/interfaces.hpp"
#include "net/kernel/acl.hpp"

namespace networkd {

struct acl_keeper_state {
  static inline const char* name = "acl";

  std::shared_ptr<acl::filter_table> table;
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

/// Runs detached (its iptables calls block).
acl_keeper_actor::behavior_type
acl_keeper(acl_keeper_actor::stateful_pointer<acl_keeper_state> self,
           std::shared_ptr<acl::filter_table> table);

} // namespace networkd
