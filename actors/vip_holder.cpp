// SPDX-License-Identifier: MIT
#include "actors/vip_holder.hpp"

#include <caf/all.hpp>

#include <ctime>

#include "actors/json.hpp"
#include "net/log.hpp"

namespace networkd {

namespace {

constexpr const char* who = "vip-holder";
using clock_type = std::chrono::steady_clock;

std::string now_text() {
  auto t = std::time(nullptr);
  char buf[32];
  std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", std::gmtime(&t));
  return buf;
}

void set_phase(vip_holder_pointer self, std::string phase,
               const std::string& why) {
  auto& st = self->state;
  if (st.phase == phase)
    return;
  NWD_LOG_INFO(who, "{}: {} -> {} ({})", st.key, st.phase, phase, why);
  st.phase = std::move(phase);
  st.last_change = now_text() + " " + why;
  ++st.transitions;
}

std::vector<nat_rule> desired_rules(const vip_holder_state& st) {
  std::vector<nat_rule> out;
  if (!st.container)
    return out;
  for (auto& r : vip::rules(st.config, st.env.node_ip, *st.container))
    out.push_back(nat_rule{r.vip, r.proto == nat::protocol::udp, r.src_port,
                           r.container_ip, r.dest_port, r.comment});
  return out;
}

int64_t valid_seconds(const vip_holder_state& st) {
  auto left = std::chrono::duration_cast<std::chrono::seconds>(
                st.lease_deadline - clock_type::now())
                .count();
  return std::max<int64_t>(left, 1);
}

void reconcile(vip_holder_pointer self);

/// "" when this instance may take another VIP of its proc: its count stays
/// within one of the least loaded instance's. Otherwise why it may not.
std::string spread_block(const vip_holder_state& st) {
  if (!st.container)
    return {};
  auto me = st.container->instance;
  auto i = st.spread_used.find(me);
  int64_t mine = i == st.spread_used.end() ? 0 : i->second;
  int64_t least = mine;
  int64_t least_instance = me;
  for (auto& [instance, used] : st.spread_used)
    if (used < least) {
      least = used;
      least_instance = instance;
    }
  if (mine <= least)
    return {};
  return "spreading: instance " + std::to_string(me) + " holds "
         + std::to_string(mine) + " VIPs of " + st.config.app + "."
         + st.config.proc + ", instance " + std::to_string(least_instance)
         + " holds " + std::to_string(least);
}

/// Runs one effect; on its answer clears busy and reconciles again.
template <class Handle, class... Ts>
void step(vip_holder_pointer self, const Handle& h, std::function<void()> ok,
          Ts... xs) {
  auto& st = self->state;
  st.busy = true;
  self->request(h, std::chrono::seconds(15), xs...)
    .then(
      [self, ok](bool) {
        self->state.busy = false;
        self->state.last_error.clear();
        ok();
        reconcile(self);
      },
      [self](caf::error& err) {
        auto& st = self->state;
        st.busy = false;
        auto text = self->system().render(err);
        if (text != st.last_error)
          NWD_LOG_WARN(who, "{}: {} (retrying)", st.key, text);
        st.last_error = text;
        if (!st.retry_pending) {
          st.retry_pending = true;
          self->delayed_send(self, std::chrono::seconds(1), atom::tick_v);
        }
      });
}

/// Fires atom::fence at the lease deadline (none when it passed).
void arm_fence(vip_holder_pointer self, uint64_t gen) {
  auto& st = self->state;
  auto left = st.lease_deadline - clock_type::now();
  st.fence_armed = left > clock_type::duration::zero();
  if (!st.fence_armed)
    return; // passed already: reconcile sees it
  self->delayed_send(self,
                     std::chrono::duration_cast<std::chrono::nanoseconds>(
                       left),
                     atom::fence_v, gen);
}

/// One round of gratuitous ARP: `count` requests and `count` replies.
void announce_now(vip_holder_pointer self, int64_t count = 1) {
  auto& st = self->state;
  ++st.arp_rounds;
  self->request(st.env.link, std::chrono::seconds(5), atom::announce_v,
                st.config.ip, count)
    .then([](bool) {},
          [self](caf::error& err) {
            NWD_LOG_WARN(who, "{}: gratuitous ARP failed: {}", self->state.key,
                         self->system().render(err));
          });
}

void schedule_refresh(vip_holder_pointer self) {
  auto& st = self->state;
  auto gen = ++st.refresh_gen;
  if (st.env.arp_refresh.count() > 0)
    self->delayed_send(self, st.env.arp_refresh, atom::refresh_v, gen);
}

/// A burst at once (two of each form), then arp_count - 1 more rounds
/// arp_interval apart (Linux ignores ARP updates within 1 s of a change),
/// and a late round 5 s on for hosts that were busy; then the refresh.
void start_announcing(vip_holder_pointer self) {
  auto& st = self->state;
  auto gen = ++st.announce_gen;
  schedule_refresh(self);
  if (st.env.arp_count <= 0)
    return;
  announce_now(self, 2);
  for (int64_t k = 1; k < st.env.arp_count; ++k)
    self->delayed_send(self, st.env.arp_interval * k, atom::announce_v, gen);
  auto late = std::chrono::milliseconds(5000);
  if (st.env.arp_interval * (st.env.arp_count - 1) < late)
    self->delayed_send(self, late, atom::announce_v, gen);
}

void subscribe_health(vip_holder_pointer self) {
  auto& st = self->state;
  auto want = st.config.app + "." + st.config.proc;
  if (want == st.subscribed_to || !st.env.health)
    return;
  st.subscribed_to = want;
  st.container.reset();
  std::vector<uint16_t> tcp;
  for (auto& p : st.config.ports)
    if (p.protocol == config::proto::tcp)
      tcp.push_back(p.dest);
  caf::anon_send(st.env.health, atom::subscribe_v, st.config.app,
                 st.config.proc, std::move(tcp),
                 caf::actor_cast<caf::actor>(self));
}

void finish_shutdown(vip_holder_pointer self) {
  auto& st = self->state;
  if ((st.shutting_down || st.retiring) && st.shutdown_promise.pending())
    st.shutdown_promise.deliver(true);
  // A retired holder has nothing left to do: its key is gone.
  if (st.retiring && !st.busy)
    self->quit();
}

/// Keeps /lain/networkd/containers/{app}/{proc}/{instance}/{vip} = used or
/// unused (on the lease) while a healthy instance of app.proc runs here.
/// The spread writer batches the writes; nothing here waits for them.
void reconcile_spread(vip_holder_pointer self, vip::verdict verdict,
                      bool alive) {
  auto& st = self->state;
  if (st.shutting_down || !st.env.spread)
    return; // the lease revoke removes the key
  if (!alive) {
    st.spread_key.clear(); // it went with the lease
    return;
  }
  std::string key;
  std::string value;
  if (st.container && verdict == vip::verdict::applies && !st.retiring) {
    key = std::string{config::container_vips_prefix} + st.config.app + "/"
          + st.config.proc + "/" + std::to_string(st.container->instance)
          + "/" + st.config.ip;
    value = st.lock == vip_holder_state::lock_state::ours && st.address_on
              ? "used"
              : "unused";
  }
  if (!st.spread_key.empty() && st.spread_key != key) {
    self->send(st.env.spread, atom::put_v, st.spread_key, std::string{},
               st.lease_id);
    st.spread_key.clear();
    st.spread_value.clear();
  }
  if (key.empty() || (key == st.spread_key && value == st.spread_value))
    return;
  self->send(st.env.spread, atom::put_v, key, value, st.lease_id);
  st.spread_key = key;
  st.spread_value = value;
}

void reconcile_port_only(vip_holder_pointer self, bool want) {
  auto& st = self->state;
  st.leftover = vip_holder_state::leftovers::none;
  auto addr = vip::match_address(st.config, st.env.node_ip);
  auto desired = want ? desired_rules(st) : std::vector<nat_rule>{};
  if (desired != st.rules) {
    auto prev = st.rules_address;
    step(self, st.env.nat,
         [self, desired, addr] {
           self->state.rules = desired;
           self->state.rules_address = addr;
         },
         atom::publish_v, self->state.key, addr, desired);
    return;
  }
  auto path = "/lain/networkd/apps/" + st.config.app + "/" + st.config.proc
              + "/" + addr + ":" + std::to_string(st.config.key_port);
  if (want && !st.app_key) {
    step(self, st.env.etcd,
         [self, path] {
           self->state.app_key = true;
           self->state.app_key_path = path;
         },
         atom::put_v, path, st.env.hostname, st.lease_id);
    return;
  }
  if (!want && st.app_key) {
    // A lost lease took the key already; only delete it when alive (and
    // not on shutdown: the lease revoke takes it).
    if (!st.lease_alive(clock_type::now()) || st.shutting_down) {
      st.app_key = false;
    } else {
      step(self, st.env.etcd, [self] { self->state.app_key = false; },
           atom::erase_v, st.app_key_path);
      return;
    }
  }
  set_phase(self, want ? "serving" : "idle",
            want ? "port-only rules in place" : st.health_reason);
  finish_shutdown(self);
}

void reconcile(vip_holder_pointer self) {
  auto& st = self->state;
  if (st.busy)
    return;
  if (!st.configured) {
    finish_shutdown(self);
    return;
  }
  auto now = clock_type::now();
  auto verdict = vip::check(st.config, st.env.hostname, st.env.node_ip,
                            st.container);
  bool alive = st.lease_alive(now);
  bool want = verdict == vip::verdict::applies && alive && !st.shutting_down
              && !st.retiring;
  if (st.config.port_only()) {
    reconcile_port_only(self, want);
    return;
  }
  using ls = vip_holder_state::lock_state;
  using lo = vip_holder_state::leftovers;
  if (!want || st.lock != ls::ours) {
    // What a previous run left goes once it is clear the VIP is not ours:
    // another node holds it, this node is excluded, or the grace passed.
    bool settled = st.lock == ls::theirs || verdict == vip::verdict::excluded
                   || st.retiring
                   || now - st.started_at >= st.env.leftover_grace;
    if (st.leftover != lo::none && !st.address_on && st.rules.empty()
        && (!want || st.lock == ls::theirs) && settled) {
      if (st.leftover == lo::address) {
        step(self, st.env.link, [self] { self->state.leftover = lo::rules; },
             atom::erase_v, st.config.ip);
        return;
      }
      step(self, st.env.nat, [self] { self->state.leftover = lo::none; },
           atom::publish_v, self->state.key, st.config.ip, std::vector<nat_rule>{});
      return;
    }
    // Down, in order: address, rules, then the lock.
    if (st.address_on) {
      if (st.env.monitor)
        st.env.monitor->unwatch(st.config.ip);
      // Pending announcement timers are void from here on.
      ++st.announce_gen;
      ++st.refresh_gen;
      set_phase(self, "releasing", !alive ? "lease not alive"
                                   : st.shutting_down ? "shutting down"
                                   : st.retiring      ? "key deleted"
                                                      : vip::to_string(verdict));
      step(self, st.env.link, [self] { self->state.address_on = false; },
           atom::erase_v, st.config.ip);
      return;
    }
    if (!st.rules.empty()) {
      step(self, st.env.nat, [self] { self->state.rules.clear(); },
           atom::publish_v, self->state.key, st.config.ip, std::vector<nat_rule>{});
      return;
    }
    if (st.lock == ls::ours) {
      if (!alive) {
        st.lock = ls::none; // it went with the lease
      } else if (st.shutting_down) {
        // The lease revoke that ends the shutdown releases every lock at
        // once; a delete per VIP would only delay it.
        st.lock = ls::none;
      } else {
        step(self, st.env.etcd,
             [self] { self->state.lock = vip_holder_state::lock_state::none; },
             atom::release_v, st.config.ip.empty()
                                ? std::string{}
                                : std::string{config::vip_locks_prefix}
                                    + st.config.ip + ".lock",
             st.env.hostname);
        return;
      }
    }
    if (want && st.lock == ls::none) {
      st.spread_wait = spread_block(st);
      if (!st.spread_wait.empty()) {
        set_phase(self, "standby", st.spread_wait);
        reconcile_spread(self, verdict, alive);
        finish_shutdown(self);
        return;
      }
      st.lock = ls::acquiring;
      set_phase(self, "acquiring", "applies here");
      auto key = std::string{config::vip_locks_prefix} + st.config.ip
                 + ".lock";
      st.busy = true;
      self
        ->request(st.env.etcd, std::chrono::seconds(15), atom::lock_v, key,
                  st.env.hostname, st.lease_id)
        .then(
          [self](lock_result& r) {
            auto& st = self->state;
            st.busy = false;
            if (st.lock != ls::acquiring) {
              reconcile(self);
              return;
            }
            if (r.ours) {
              st.lock = ls::ours;
              st.holder = r.holder;
              st.lock_revision = r.revision;
            } else if (!r.holder.empty()) {
              st.lock = ls::theirs;
              st.holder = r.holder;
              set_phase(self, "standby", "lock held by " + r.holder);
            } else {
              st.lock = ls::none; // vanished meanwhile: try again
            }
            reconcile(self);
          },
          [self](caf::error& err) {
            auto& st = self->state;
            st.busy = false;
            st.lock = ls::none;
            st.last_error = self->system().render(err);
            if (!st.retry_pending) {
              st.retry_pending = true;
              self->delayed_send(self, std::chrono::seconds(1), atom::tick_v);
            }
          });
      return;
    }
    if (!want)
      set_phase(self, "idle", !alive ? "no live lease"
                              : st.shutting_down ? "shut down"
                              : st.retiring      ? "key deleted"
                                                 : vip::to_string(verdict));
    else if (st.lock == ls::theirs)
      set_phase(self, "standby", "lock held by " + st.holder);
    reconcile_spread(self, verdict, alive);
    finish_shutdown(self);
    return;
  }
  // Up, in order: rules, address, announce. Leftovers of a previous run
  // are taken over (the rules are diffed, the address re-added).
  st.leftover = lo::none;
  auto desired = desired_rules(st);
  if (desired != st.rules) {
    step(self, st.env.nat,
         [self, desired] {
           self->state.rules = desired;
           self->state.rules_address = self->state.config.ip;
         },
         atom::publish_v, self->state.key, st.config.ip, desired);
    return;
  }
  if (!st.address_on && st.expired_at_deadline == st.lease_deadline) {
    set_phase(self, "acquiring",
              "address expired: waiting for a lease renewal");
    return;
  }
  if (!st.address_on) {
    step(self, st.env.link,
         [self] {
           auto& st = self->state;
           st.address_on = true;
           if (st.env.monitor)
             st.env.monitor->watch(st.config.ip,
                                   caf::actor_cast<caf::actor>(self));
           start_announcing(self);
         },
         atom::add_v, st.config.ip, valid_seconds(st));
    return;
  }
  set_phase(self, "serving", "lock, rules and address in place");
  reconcile_spread(self, verdict, alive);
}

} // namespace

std::string vip_holder_state::render() const {
  json_writer j;
  j.begin_object();
  j.kv("name", "vip-holder");
  j.kv("key", key);
  j.kv("state", phase);
  j.kv("kind", config.port_only() ? "port-only" : "address");
  j.kv("app", config.app);
  j.kv("proc", config.proc);
  j.kv("owner", lock == lock_state::ours     ? env.hostname
                : lock == lock_state::theirs ? holder
                                             : std::string{});
  j.kv("lock_revision", lock_revision);
  j.kv("address_on", address_on);
  j.begin_array("ports");
  for (auto& p : config.ports) {
    j.begin_object();
    j.kv("src", static_cast<int64_t>(p.src));
    j.kv("proto", config::to_string(p.protocol));
    j.kv("dest", static_cast<int64_t>(p.dest));
    j.end_object();
  }
  j.end_array();
  j.begin_array("rules");
  for (auto& r : rules)
    j.value(std::string{r.udp ? "udp " : "tcp "} + r.vip + ":"
            + std::to_string(r.src) + " -> " + r.container_ip + ":"
            + std::to_string(r.dest));
  j.end_array();
  if (container) {
    j.object("container");
    j.kv("ip", container->ip);
    j.kv("instance", container->instance);
    j.end_object();
  }
  j.kv("health", health_reason);
  if (!config.port_only()) {
    j.object("spreading");
    j.kv("key", spread_key);
    j.kv("value", spread_value);
    j.kv("waiting", spread_wait);
    j.object("used_by_instance");
    for (auto& [instance, used] : spread_used)
      j.kv(std::to_string(instance).c_str(), used);
    j.end_object();
    j.end_object();
  }
  j.kv("excluded_nodes", config.excluded_nodes);
  j.kv("last_change", last_change);
  j.kv("last_error", last_error);
  j.object("counters")
    .kv("updates", updates)
    .kv("transitions", transitions)
    .kv("readds", readds)
    .kv("arp_conflicts", conflicts)
    .kv("stepped_down", stepped_down)
    .kv("arp_rounds", arp_rounds);
  j.end_object();
  j.end_object();
  return j.str();
}

vip_holder_actor::behavior_type vip_holder(vip_holder_pointer self,
                                           std::string key, vip_env env) {
  self->state.key = std::move(key);
  self->state.env = std::move(env);
  self->state.started_at = clock_type::now();
  // Leftovers of a previous run are looked at again when the grace ends.
  self->delayed_send(self, self->state.env.leftover_grace, atom::tick_v);
  return {
    [self](atom::status) { return self->state.render(); },
    [self](config::vip_config& cfg) {
      auto& st = self->state;
      st.config = std::move(cfg);
      st.configured = true;
      ++st.updates;
      subscribe_health(self);
      reconcile(self);
    },
    [self](key_change& c) {
      // Our lock key changed.
      auto& st = self->state;
      using ls = vip_holder_state::lock_state;
      if (c.deleted) {
        if (st.lock == ls::theirs) {
          NWD_LOG_INFO(who, "{}: lock released by {}: competing", st.key,
                       st.holder);
          st.lock = ls::none;
          st.holder.clear();
        }
      } else if (c.text != st.env.hostname) {
        st.holder = c.text;
        if (st.lock == ls::ours)
          NWD_LOG_ERROR(who, "{}: lock now held by {}: stepping down",
                        st.key, c.text);
        if (st.lock != ls::acquiring)
          st.lock = ls::theirs;
      }
      reconcile(self);
    },
    [self](keepalive_info& k) {
      auto& st = self->state;
      if (k.id == 0) {
        st.lease_id = 0;
        st.fence_armed = false;
        ++st.lease_gen;
        reconcile(self);
        return;
      }
      if (st.lease_id != 0 && k.id != st.lease_id
          && st.lock == vip_holder_state::lock_state::ours) {
        // The lock was bound to the old lease, which is gone: compete
        // again (the lock txn re-binds the key if it is still ours).
        NWD_LOG_WARN(who, "{}: session lease changed: the lock must be "
                          "taken again",
                     st.key);
        st.lock = vip_holder_state::lock_state::none;
      }
      if (k.id != st.lease_id)
        st.spread_key.clear(); // written with the old lease, gone with it
      bool same_lease = k.id == st.lease_id;
      st.lease_id = k.id;
      st.lease_deadline = clock_type::time_point(
        std::chrono::nanoseconds(k.sent_at_ns));
      // One fence timer per holder: a renewal of the same lease only moves
      // the deadline, and the timer, when it fires early, waits for the
      // rest (thousands of holders renew four times a second).
      if (same_lease && st.fence_armed)
        return reconcile(self);
      auto gen = ++st.lease_gen;
      arm_fence(self, gen);
      // Kernel-side fencing: the link worker extends the lifetime of every
      // address it added, in one go per renewal (the supervisor tells it).
      reconcile(self);
    },
    [self](atom::fence, uint64_t gen) {
      auto& st = self->state;
      if (gen != st.lease_gen)
        return; // another lease since
      st.fence_armed = false;
      if (st.lease_id == 0)
        return;
      if (clock_type::now() < st.lease_deadline) {
        arm_fence(self, gen); // renewed since
        return;
      }
      NWD_LOG_ERROR(who, "{}: lease deadline passed without renewal: fencing",
                    st.key);
      st.lease_id = 0;
      reconcile(self);
    },
    [self](proc_health& h) {
      auto& st = self->state;
      if (h.app != st.config.app || h.proc != st.config.proc)
        return;
      st.health_reason = h.reason;
      std::optional<vip::container> c;
      if (h.healthy)
        c = vip::container{h.ip, h.instance};
      if (c == st.container)
        return;
      st.container = c;
      reconcile(self);
    },
    [self](atom::announce, uint64_t gen) {
      auto& st = self->state;
      // Only while we own it: timers of an earlier burst may fire late
      // (after a freeze) while the address is on its way out.
      if (gen == st.announce_gen && st.address_on
          && st.lock == vip_holder_state::lock_state::ours
          && st.lease_alive(clock_type::now()) && !st.shutting_down)
        announce_now(self);
    },
    [self](atom::tick) {
      self->state.retry_pending = false;
      reconcile(self);
    },
    [self](config::knob& k) {
      auto& env = self->state.env;
      if (k.name == "arp_count") {
        env.arp_count = k.number;
      } else if (k.name == "arp_interval_ms") {
        env.arp_interval = std::chrono::milliseconds(k.number);
      } else if (k.name == "arp_refresh_s") {
        if (env.arp_refresh == std::chrono::seconds(k.number))
          return;
        env.arp_refresh = std::chrono::seconds(k.number);
        if (self->state.address_on)
          schedule_refresh(self);
      }
    },
    [self](atom::refresh, uint64_t gen) {
      auto& st = self->state;
      if (gen != st.refresh_gen || !st.address_on
          || st.lock != vip_holder_state::lock_state::ours
          || !st.lease_alive(clock_type::now()))
        return;
      announce_now(self);
      schedule_refresh(self);
    },
    [self](spread_report& r) {
      auto& st = self->state;
      if (r.app != st.config.app || r.proc != st.config.proc)
        return;
      std::map<int64_t, int64_t> used;
      for (size_t i = 0; i < r.instances.size() && i < r.used.size(); ++i)
        used[r.instances[i]] = r.used[i];
      if (used == st.spread_used)
        return;
      st.spread_used = std::move(used);
      reconcile(self);
    },
    [self](atom::lost, std::string& ip) {
      auto& st = self->state;
      if (ip != st.config.ip || !st.address_on)
        return;
      if (st.busy) {
        // Maybe our own step removed it: look again once it is done.
        self->delayed_send(self, std::chrono::milliseconds(50), atom::lost_v,
                           std::move(ip));
        return;
      }
      st.address_on = false;
      if (removal_is_expiry(clock_type::now(), st.lease_deadline)) {
        NWD_LOG_WARN(who, "{}: address {} expired (no lease renewal since "
                          "its lifetime was set): not put back before one",
                     st.key, ip);
        st.expired_at_deadline = st.lease_deadline;
      } else {
        NWD_LOG_WARN(who, "{}: address {} was removed by someone else: "
                          "putting it back",
                     st.key, ip);
        ++st.readds;
      }
      reconcile(self);
    },
    [self](atom::conflict, std::string& ip, std::string& mac) {
      auto& st = self->state;
      using ls = vip_holder_state::lock_state;
      if (ip != st.config.ip || st.lock != ls::ours || !st.address_on
          || st.lease_id == 0)
        return;
      ++st.conflicts;
      auto now = clock_type::now();
      if (st.conflict_check
          || now - st.last_conflict_check < std::chrono::seconds(1))
        return;
      st.conflict_check = true;
      st.last_conflict_check = now;
      NWD_LOG_WARN(who, "{}: {} claims {} by ARP: checking the lock", st.key,
                   mac, ip);
      auto key = std::string{config::vip_locks_prefix} + st.config.ip
                 + ".lock";
      self
        ->request(st.env.etcd, std::chrono::seconds(5), atom::lock_v, key,
                  st.env.hostname, st.lease_id)
        .then(
          [self, mac](lock_result& r) {
            auto& st = self->state;
            st.conflict_check = false;
            if (st.lock != ls::ours)
              return;
            if (r.ours) {
              NWD_LOG_WARN(who, "{}: the lock is ours: announcing again "
                                "against {}",
                           st.key, mac);
              st.lock_revision = r.revision;
              start_announcing(self);
              return;
            }
            NWD_LOG_ERROR(who, "{}: the lock is held by {}: stepping down",
                          st.key, r.holder);
            ++st.stepped_down;
            st.lock = r.holder.empty() ? ls::none : ls::theirs;
            st.holder = r.holder;
            reconcile(self);
          },
          [self](caf::error&) { self->state.conflict_check = false; });
    },
    [self](atom::shutdown) -> caf::result<bool> {
      auto& st = self->state;
      st.shutting_down = true;
      st.shutdown_promise = self->make_response_promise();
      reconcile(self);
      return caf::delegated<bool>{};
    },
    [self](atom::release) -> caf::result<bool> {
      auto& st = self->state;
      st.retiring = true;
      st.shutdown_promise = self->make_response_promise();
      reconcile(self);
      return caf::delegated<bool>{};
    },
  };
}

} // namespace networkd
