// SPDX-License-Identifier: MIT
#include "net/cluster/vip_sequencer.hpp"

#include <algorithm>

namespace networkd::vip {

namespace {

action make(act what, std::string phase = {}, std::string why = {}) {
  action a;
  a.what = what;
  a.phase = std::move(phase);
  a.why = std::move(why);
  return a;
}

/// Why a VIP that does not apply here any more is let go.
std::string why_not(const holder_facts& f, verdict v, bool alive,
                    const char* dead, const char* shutdown) {
  if (!alive)
    return dead;
  if (f.shutting_down)
    return shutdown;
  if (f.retiring)
    return "key deleted";
  return to_string(v);
}

/// Keeps /lain/networkd/containers/{app}/{proc}/{instance}/{vip} = used or
/// unused (on the lease) while a healthy instance of app.proc runs here:
/// the step that brings the written key closer to that, if any.
std::optional<action> spread_step(const holder_facts& f, verdict v,
                                  bool alive) {
  if (f.shutting_down || !f.spreading)
    return std::nullopt; // the lease revoke removes the key
  if (!alive) {
    if (f.spread_key.empty())
      return std::nullopt;
    return make(act::forget_spread); // it went with the lease
  }
  std::string key;
  std::string value;
  if (f.healthy && v == verdict::applies && !f.retiring) {
    key = std::string{config::container_vips_prefix} + f.config.app + "/"
          + f.config.proc + "/" + std::to_string(f.healthy->instance) + "/"
          + f.config.ip;
    value = f.lock == lock_state::ours && f.address_on ? "used" : "unused";
  }
  if (!f.spread_key.empty() && f.spread_key != key) {
    auto a = make(act::erase_spread);
    a.key = f.spread_key;
    a.lease = f.lease_id;
    return a;
  }
  if (key.empty() || (key == f.spread_key && value == f.spread_value))
    return std::nullopt;
  auto a = make(act::write_spread);
  a.key = std::move(key);
  a.value = std::move(value);
  a.lease = f.lease_id;
  return a;
}

action next_port_only(const holder_facts& f, bool want, bool alive) {
  if (f.leftover != leftovers::none)
    return make(act::forget_leftovers);
  auto addr = match_address(f.config, f.node_ip);
  auto desired = want ? desired_rules(f) : std::vector<nat::dnat_rule>{};
  if (desired != f.rules) {
    auto a = make(desired.empty() ? act::remove_rules : act::install_rules);
    a.address = addr;
    a.rules = std::move(desired);
    return a;
  }
  if (want && !f.app_key) {
    auto a = make(act::write_app_key);
    a.key = app_key(f.config, addr);
    a.value = f.hostname;
    a.lease = f.lease_id;
    return a;
  }
  if (!want && f.app_key) {
    // A lost lease took the key already; on shutdown its revoke does.
    if (!alive || f.shutting_down)
      return make(act::forget_app_key);
    auto a = make(act::erase_app_key);
    a.key = f.app_key_path;
    return a;
  }
  return want ? make(act::rest, "serving", "port-only rules in place")
              : make(act::rest, "idle", f.health_reason);
}

/// Not ours (or not wanted): leftovers, then down in order — address,
/// rules, lock — then compete when it applies here.
action next_down(const holder_facts& f, verdict v, bool want, bool alive,
                 seq_time now) {
  // What a previous run left goes once it is clear the VIP is not ours:
  // another node holds it, this node is excluded, or the grace passed.
  bool settled = f.lock == lock_state::theirs || v == verdict::excluded
                 || f.retiring || now >= f.leftover_until;
  if (f.leftover != leftovers::none && !f.address_on && f.rules.empty()
      && (!want || f.lock == lock_state::theirs) && settled) {
    auto a
      = make(f.leftover == leftovers::address ? act::remove_leftover_address
                                              : act::remove_leftover_rules);
    a.address = f.config.ip;
    return a;
  }
  if (f.address_on) {
    auto a = make(act::remove_address, "releasing",
                  why_not(f, v, alive, "lease not alive", "shutting down"));
    a.address = f.config.ip;
    return a;
  }
  if (!f.rules.empty()) {
    auto a = make(act::remove_rules);
    a.address = f.config.ip;
    return a;
  }
  if (f.lock == lock_state::ours) {
    // A dead lease took the lock; the revoke that ends a shutdown releases
    // every lock at once (a delete per VIP would only delay it).
    if (!alive || f.shutting_down)
      return make(act::forget_lock);
    auto a = make(act::release_lock);
    a.key = lock_key(f.config);
    a.value = f.hostname;
    return a;
  }
  if (want && f.lock == lock_state::none) {
    auto block = spread_block(f);
    if (block.empty()) {
      auto a = make(act::take_lock, "acquiring", "applies here");
      a.key = lock_key(f.config);
      a.value = f.hostname;
      a.lease = f.lease_id;
      return a;
    }
    if (auto s = spread_step(f, v, alive))
      return *s;
    auto a = make(act::rest, "standby", block);
    a.held_back = true;
    return a;
  }
  if (auto s = spread_step(f, v, alive))
    return *s;
  if (!want)
    return make(act::rest, "idle",
                why_not(f, v, alive, "no live lease", "shut down"));
  if (f.lock == lock_state::theirs)
    return make(act::rest, "standby", "lock held by " + f.holder);
  return make(act::rest);
}

/// Ours: up, in order — rules, address (announced) — then serve.
action next_up(const holder_facts& f, verdict v, seq_time now) {
  if (f.leftover != leftovers::none)
    return make(act::forget_leftovers); // taken over: diffed, re-added
  auto desired = desired_rules(f);
  if (desired != f.rules) {
    auto a = make(act::install_rules);
    a.address = f.config.ip;
    a.rules = std::move(desired);
    return a;
  }
  if (!f.address_on && f.expired_at_deadline == f.lease_deadline)
    return make(act::rest, "acquiring",
                "address expired: waiting for a lease renewal");
  if (!f.address_on) {
    // The kernel expires the address in the last second before the
    // deadline (at least 1 s on: inside the fencing margin, which the
    // server adds to the local deadline).
    auto left
      = std::chrono::duration_cast<std::chrono::seconds>(f.lease_deadline - now)
          .count();
    auto a = make(act::add_address);
    a.address = f.config.ip;
    a.valid_s = std::max<int64_t>(left, 1);
    return a;
  }
  if (auto s = spread_step(f, v, true))
    return *s;
  return make(act::rest, "serving", "lock, rules and address in place");
}

} // namespace

const char* to_string(act a) {
  switch (a) {
    case act::forget_leftovers:
      return "forget_leftovers";
    case act::forget_lock:
      return "forget_lock";
    case act::forget_app_key:
      return "forget_app_key";
    case act::forget_spread:
      return "forget_spread";
    case act::write_spread:
      return "write_spread";
    case act::erase_spread:
      return "erase_spread";
    case act::take_lock:
      return "take_lock";
    case act::release_lock:
      return "release_lock";
    case act::install_rules:
      return "install_rules";
    case act::remove_rules:
      return "remove_rules";
    case act::add_address:
      return "add_address";
    case act::remove_address:
      return "remove_address";
    case act::remove_leftover_address:
      return "remove_leftover_address";
    case act::remove_leftover_rules:
      return "remove_leftover_rules";
    case act::write_app_key:
      return "write_app_key";
    case act::erase_app_key:
      return "erase_app_key";
    case act::rest:
      return "rest";
  }
  return "?";
}

bool ends_round(act a) {
  switch (a) {
    case act::forget_leftovers:
    case act::forget_lock:
    case act::forget_app_key:
    case act::forget_spread:
    case act::write_spread:
    case act::erase_spread:
      return false;
    default:
      return true;
  }
}

action next(const holder_facts& f, seq_time now) {
  if (!f.configured)
    return make(act::rest);
  // What a failed add may have left goes first, address before rules.
  if (f.address_unsure) {
    auto a = make(act::remove_address, "", "an address add failed: unsure");
    a.address = f.config.ip;
    return a;
  }
  if (f.rules_unsure) {
    auto a = make(act::remove_rules, "", "a rules install failed: unsure");
    a.address = match_address(f.config, f.node_ip);
    return a;
  }
  auto v = check(f.config, f.hostname, f.node_ip, f.healthy);
  bool alive = f.lease_alive(now);
  bool want = v == verdict::applies && alive && !f.shutting_down && !f.retiring;
  if (f.config.port_only())
    return next_port_only(f, want, alive);
  if (!want || f.lock != lock_state::ours)
    return next_down(f, v, want, alive, now);
  return next_up(f, v, now);
}

void failed(holder_facts& f, const action& a) {
  if (a.what == act::add_address)
    f.address_unsure = true;
  else if (a.what == act::install_rules)
    f.rules_unsure = true;
}

void record(holder_facts& f, const action& a) {
  switch (a.what) {
    case act::forget_leftovers:
      f.leftover = leftovers::none;
      break;
    case act::forget_lock:
    case act::release_lock:
      f.lock = lock_state::none;
      break;
    case act::forget_app_key:
    case act::erase_app_key:
      f.app_key = false;
      break;
    case act::forget_spread:
    case act::erase_spread:
      f.spread_key.clear();
      f.spread_value.clear();
      break;
    case act::write_spread:
      f.spread_key = a.key;
      f.spread_value = a.value;
      break;
    case act::take_lock:
      f.lock = lock_state::acquiring;
      break;
    case act::install_rules:
      f.rules = a.rules;
      break;
    case act::remove_rules:
      f.rules.clear();
      f.rules_unsure = false;
      break;
    case act::add_address:
      f.address_on = true;
      break;
    case act::remove_address:
      f.address_on = false;
      f.address_unsure = false;
      break;
    case act::remove_leftover_address:
      f.leftover = leftovers::rules;
      break;
    case act::remove_leftover_rules:
      f.leftover = leftovers::none;
      break;
    case act::write_app_key:
      f.app_key = true;
      f.app_key_path = a.key;
      break;
    case act::rest:
      break;
  }
}

lock_news lock_key_changed(holder_facts& f, bool deleted,
                           const std::string& value) {
  if (deleted) {
    if (f.lock != lock_state::theirs)
      return lock_news::nothing;
    f.lock = lock_state::none;
    f.holder.clear();
    return lock_news::released;
  }
  if (value == f.hostname)
    return lock_news::nothing;
  f.holder = value;
  auto was = f.lock;
  if (f.lock != lock_state::acquiring)
    f.lock = lock_state::theirs;
  return was == lock_state::ours ? lock_news::stolen : lock_news::theirs;
}

void lock_answered(holder_facts& f, bool ours, const std::string& holder) {
  if (f.lock != lock_state::acquiring)
    return; // the key's watch said otherwise meanwhile
  f.lock = ours             ? lock_state::ours
           : holder.empty() ? lock_state::none // vanished: try again
                            : lock_state::theirs;
  f.holder = holder;
}

bool lease_changed(holder_facts& f, int64_t id, seq_time deadline) {
  if (id == 0) {
    // The lease our lock was bound to is gone: so is the lock (or it will
    // be, when etcd expires it). A new lease must take it again, even when
    // it comes before the way down has finished.
    if (f.lease_id != 0 && f.lock == lock_state::ours)
      f.lock = lock_state::none;
    f.lease_id = 0;
    return false;
  }
  bool retake
    = f.lease_id != 0 && id != f.lease_id && f.lock == lock_state::ours;
  if (retake)
    f.lock = lock_state::none; // the txn re-binds it if still ours
  if (id != f.lease_id)
    f.spread_key.clear(); // written with the old lease, gone with it
  f.lease_id = id;
  f.lease_deadline = deadline;
  return retake;
}

bool fence(holder_facts& f, seq_time now) {
  if (f.lease_id == 0 || now < f.lease_deadline)
    return false;
  f.lease_id = 0;
  return true;
}

bool address_removed(holder_facts& f, seq_time now) {
  f.address_on = false;
  if (!removal_is_expiry(now, f.lease_deadline))
    return false;
  f.expired_at_deadline = f.lease_deadline;
  return true;
}

std::optional<seq_time> wake_up(const holder_facts& f, seq_time now) {
  std::optional<seq_time> at;
  if (f.configured && f.lease_alive(now))
    at = f.lease_deadline;
  if (f.leftover != leftovers::none && now < f.leftover_until)
    at = at ? std::min(*at, f.leftover_until) : f.leftover_until;
  return at;
}

bool may_announce(const holder_facts& f, seq_time now) {
  return f.address_on && f.lock == lock_state::ours && f.lease_alive(now)
         && !f.shutting_down;
}

std::string spread_block(const holder_facts& f) {
  if (!f.healthy)
    return {};
  auto me = f.healthy->instance;
  auto i = f.spread_used.find(me);
  int64_t mine = i == f.spread_used.end() ? 0 : i->second;
  int64_t least = mine;
  int64_t least_instance = me;
  for (auto& [instance, used] : f.spread_used)
    if (used < least) {
      least = used;
      least_instance = instance;
    }
  if (mine <= least)
    return {};
  return "spreading: instance " + std::to_string(me) + " holds "
         + std::to_string(mine) + " VIPs of " + f.config.app + "."
         + f.config.proc + ", instance " + std::to_string(least_instance)
         + " holds " + std::to_string(least);
}

std::vector<nat::dnat_rule> desired_rules(const holder_facts& f) {
  if (!f.healthy)
    return {};
  return rules(f.config, f.node_ip, *f.healthy);
}

std::string lock_key(const config::vip_config& cfg) {
  if (cfg.ip.empty())
    return {};
  return std::string{config::vip_locks_prefix} + cfg.ip + ".lock";
}

std::string app_key(const config::vip_config& cfg, const std::string& addr) {
  return "/lain/networkd/apps/" + cfg.app + "/" + cfg.proc + "/" + addr + ":"
         + std::to_string(cfg.key_port);
}

} // namespace networkd::vip
