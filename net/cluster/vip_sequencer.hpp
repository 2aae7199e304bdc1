// SPDX-License-Identifier: MIT
// The decisions of one VIP holder as a pure function: from what the holder
// knows (its facts) and the time, the one thing to do next. The holder
// actor only observes, does that one thing, and observes again.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "net/cluster/config.hpp"
#include "net/cluster/vip_plan.hpp"
#include "net/kernel/nat.hpp"

namespace networkd::vip {

using seq_clock = std::chrono::steady_clock;
using seq_time = seq_clock::time_point;

/// The lock key of an address VIP, as this node sees it.
enum class lock_state { none, acquiring, ours, theirs };

/// What a previous run may have left of this VIP and is still to be
/// removed once it is clear the VIP is not ours: the address, then the
/// rules, then nothing.
enum class leftovers { address, rules, none };

/// The address's valid lifetime is set to the whole seconds left before
/// the lease deadline (at least 1), so the kernel expires it in the last
/// second before that deadline when no renewal came (within the fencing
/// margin, 1 s, that the server keeps the lease past the local deadline). A
/// removal seen this close to the deadline is taken for that expiry (a removal
/// by someone else there is put back after the next renewal).
constexpr std::chrono::milliseconds expiry_window{1200};

/// True when an address removal seen at `now` is the kernel's expiry.
inline bool removal_is_expiry(seq_time now, seq_time deadline) {
  return now + expiry_window >= deadline;
}

/// Everything the holder of one VIP key knows. The holder keeps one of
/// these and updates it from messages and replies; nothing here changes
/// on its own but the time.
struct holder_facts {
  // -- this node ----------------------------------------------------------
  std::string hostname;
  std::string node_ip;
  bool spreading = false; ///< a spread writer takes our spreading keys

  // -- the key ------------------------------------------------------------
  bool configured = false;
  config::vip_config config;
  bool shutting_down = false; ///< SIGTERM: release all, keep nothing
  bool retiring = false;      ///< the key was deleted: release all, stop

  // -- the session lease (the local deadline, margin included) ------------
  int64_t lease_id = 0;
  seq_time lease_deadline{};

  // -- health and spreading -----------------------------------------------
  std::optional<container> healthy; ///< app.proc's healthy container here
  std::string health_reason = "waiting for health";
  std::map<int64_t, int64_t> spread_used; ///< instance → VIPs it holds

  // -- the lock -------------------------------------------------------------
  lock_state lock = lock_state::none;
  std::string holder; ///< the lock's value (hostname) when known

  // -- what is applied (kernel, etcd) ----------------------------------------
  std::vector<nat::dnat_rule> rules; ///< our DNAT rules as installed
  bool address_on = false;           ///< our address is on the interface
  /// An add_address or install_rules whose answer failed (a timeout) may
  /// still have happened: taken off again before anything else.
  bool address_unsure = false;
  bool rules_unsure = false;
  /// The lease deadline in force when the kernel expired our address: it
  /// is not added again before a renewal moves the deadline.
  seq_time expired_at_deadline{};
  bool app_key = false; ///< port-only: the app key is written
  std::string app_key_path;
  std::string spread_key;   ///< our spreading key as written ("": none)
  std::string spread_value; ///< "used" / "unused" as written

  // -- leftovers of a previous run ----------------------------------------
  leftovers leftover = leftovers::address;
  /// Leftovers of a VIP still not ours by then go even when nobody else
  /// holds it.
  seq_time leftover_until{};

  bool lease_alive(seq_time now) const {
    return lease_id != 0 && now < lease_deadline;
  }
};

/// The next thing a holder does.
enum class act {
  // Bookkeeping: the holder updates its facts and asks again at once.
  forget_leftovers, ///< the VIP is ours: what a previous run left is taken
  forget_lock,      ///< the lease took the lock (or its revoke will)
  forget_app_key,   ///< the lease took the app key (or its revoke will)
  forget_spread,    ///< the lease took the spreading key
  // Fire and forget (the spread writer batches): then ask again at once.
  write_spread, ///< key = value on the lease
  erase_spread, ///< key
  // One effect; the holder asks again when it is done (or failed).
  take_lock,               ///< key = hostname on the lease
  release_lock,            ///< key, if it still holds our hostname
  install_rules,           ///< rules, matching address
  remove_rules,            ///< all of ours on address
  add_address,             ///< address with valid_s, then announce
  remove_address,          ///< address
  remove_leftover_address, ///< address (a previous run's)
  remove_leftover_rules,   ///< rules on address (a previous run's)
  write_app_key,           ///< key = hostname on the lease (port-only)
  erase_app_key,           ///< key (port-only)
  // Nothing to do until a fact changes (or wake_up's time comes).
  rest,
};

const char* to_string(act a);

/// True for the acts that end a round: an effect in flight or rest.
bool ends_round(act a);

struct action {
  act what = act::rest;
  /// The phase to show from now on ("" keeps the current one) and why.
  std::string phase;
  std::string why;
  std::string address; ///< address VIP or the rules' match address
  std::vector<nat::dnat_rule> rules;
  int64_t valid_s = 0; ///< add_address: whole seconds to the deadline, >= 1
  std::string key;     ///< lock, app or spreading key
  std::string value;   ///< its value
  int64_t lease = 0;   ///< the lease a key goes on
  /// rest because spreading holds this instance back (why says so).
  bool held_back = false;
};

/// The one thing to do next. Pure: the same facts and time give the same
/// action.
action next(const holder_facts& f, seq_time now);

/// Records that the holder did `a`: an effect that succeeded, bookkeeping,
/// or (take_lock) a lock asked for, whose answer comes to lock_answered.
void record(holder_facts& f, const action& a);

/// Records that effect `a` failed. A failed answer (a timeout) does not say
/// the effect did not happen: an address or rules it may have put in place
/// count as unsure and are removed before the next step.
void failed(holder_facts& f, const action& a);

// -- observations: what the holder learns, into its facts --------------------

/// What a change of the lock key meant.
enum class lock_news { nothing, released, stolen, theirs };

/// The lock key was deleted, or now holds `value`.
lock_news lock_key_changed(holder_facts& f, bool deleted,
                           const std::string& value);

/// The answer to take_lock: ours, or held by `holder` ("": vanished).
void lock_answered(holder_facts& f, bool ours, const std::string& holder);

/// The session lease was renewed (id, local deadline) or lost (id 0). True
/// when the lease changed under a lock of ours, which must be taken again.
bool lease_changed(holder_facts& f, int64_t id, seq_time deadline);

/// The wake-up came: true when it fenced (the deadline passed unrenewed).
bool fence(holder_facts& f, seq_time now);

/// Our address went from the interface at `now`: true when that is the
/// kernel's expiry (not put back before a renewal), false when someone
/// else removed it (put back).
bool address_removed(holder_facts& f, seq_time now);

/// When the decision changes by the passing of time alone (the lease
/// deadline, the end of the leftover grace), if ever.
std::optional<seq_time> wake_up(const holder_facts& f, seq_time now);

/// True while a gratuitous ARP round for our address may go out.
bool may_announce(const holder_facts& f, seq_time now);

/// "" when this instance may take another VIP of its proc: its count stays
/// within one of the least loaded instance's. Otherwise why it may not.
std::string spread_block(const holder_facts& f);

/// The DNAT rules that serve the VIP through the healthy container (none
/// without one).
std::vector<nat::dnat_rule> desired_rules(const holder_facts& f);

/// /lain/networkd/vips/{ip}.lock
std::string lock_key(const config::vip_config& cfg);

/// /lain/networkd/apps/{app}/{proc}/{address}:{port} (port-only VIPs).
std::string app_key(const config::vip_config& cfg, const std::string& addr);

} // namespace networkd::vip
