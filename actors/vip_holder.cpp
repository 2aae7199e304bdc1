// SPDX-License-Identifier: MIT
#include "actors/vip_holder.hpp"

#include <caf/all.hpp>

#include <cstdlib>
#include <ctime>

#include "actors/json.hpp"
#include "net/base/log.hpp"

namespace networkd {

namespace {

constexpr const char* who = "vip-holder";
using vip::act;
using vip::lock_state;

/// The holder's only clock read: each handler takes the time once.
vip::seq_time now() {
  return vip::seq_clock::now();
}

/// The fields an operator greps for on a holder's line: vip= (the key's
/// name under the VIP prefix) and reason= (a word, or the error's text).
std::string fields(const std::string& key, std::string_view reason) {
  std::string_view vip = key;
  if (vip.rfind(config::vips_prefix, 0) == 0)
    vip.remove_prefix(config::vips_prefix.size());
  return log::field("vip", vip) + log::field("reason", reason);
}

void set_phase(vip_holder_pointer self, const std::string& phase,
               const std::string& why, vip::seq_time t) {
  auto& st = self->state;
  if (phase.empty() || st.phase == phase)
    return;
  NWD_LOG_INFO(who, "{}: {} -> {} ({}){}{}{}", st.key, st.phase, phase, why,
               fields(st.key, why), log::field("from", st.phase),
               log::field("to", phase));
  st.record_transition(phase, why, t);
}

/// Monotonic age in ms (the wall clock may step; this does not).
int64_t ms_between(vip::seq_time from, vip::seq_time to) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(to - from)
    .count();
}

std::vector<nat_rule> to_messages(const std::vector<nat::dnat_rule>& rules) {
  std::vector<nat_rule> out;
  for (auto& r : rules)
    out.push_back(nat_rule{r.vip, r.proto == nat::protocol::udp, r.src_port,
                           r.container_ip, r.dest_port, r.comment});
  return out;
}

void advance(vip_holder_pointer self, vip::seq_time t);

void retry_later(vip_holder_pointer self) {
  auto& st = self->state;
  if (st.retry_pending)
    return;
  st.retry_pending = true;
  self->delayed_send(self, std::chrono::seconds(1), atom::tick_v);
}

/// Runs effect `a`; on its answer records it (`ok`) and advances again. A
/// failed answer goes to vip::failed: a timed-out add may still happen.
template <class Handle, class... Ts>
void step(vip_holder_pointer self, const Handle& h, const vip::action& a,
          std::function<void()> ok, Ts... xs) {
  self->state.busy = true;
  self->request(h, std::chrono::seconds(15), xs...)
    .then(
      [self, ok](bool) {
        self->state.busy = false;
        self->state.last_error.clear();
        ok();
        advance(self, now());
      },
      [self, a](caf::error& err) {
        auto& st = self->state;
        st.busy = false;
        vip::failed(st.facts, a);
        auto text = self->system().render(err);
        if (text != st.last_error)
          NWD_LOG_WARN(who, "{}: {} failed: {} (retrying){}", st.key,
                       vip::to_string(a.what), text, fields(st.key, text));
        st.last_error = text;
        retry_later(self);
      });
}

/// One round of gratuitous ARP: `count` requests and `count` replies.
void announce_now(vip_holder_pointer self, int64_t count = 1) {
  auto& st = self->state;
  ++st.arp_rounds;
  self
    ->request(st.env.link, std::chrono::seconds(5), atom::announce_v,
              st.facts.config.ip, count)
    .then([](bool) {},
          [self](caf::error& err) {
            auto text = self->system().render(err);
            NWD_LOG_WARN(who, "{}: gratuitous ARP failed: {}{}",
                         self->state.key, text, fields(self->state.key, text));
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
  auto& cfg = st.facts.config;
  auto want = cfg.app + "." + cfg.proc;
  if (want == st.subscribed_to || !st.env.health)
    return;
  st.subscribed_to = want;
  st.facts.healthy.reset();
  std::vector<uint16_t> tcp;
  for (auto& p : cfg.ports)
    if (p.protocol == config::proto::tcp)
      tcp.push_back(p.dest);
  caf::anon_send(st.env.health, atom::subscribe_v, cfg.app, cfg.proc,
                 std::move(tcp), caf::actor_cast<caf::actor>(self));
}

void finish_shutdown(vip_holder_pointer self) {
  auto& st = self->state;
  auto& f = st.facts;
  if ((f.shutting_down || f.retiring) && st.shutdown_promise.pending())
    st.shutdown_promise.deliver(true);
  // A retired holder has nothing left to do: its key is gone.
  if (f.retiring && !st.busy)
    self->quit();
}

void take_lock(vip_holder_pointer self, const vip::action& a) {
  auto& st = self->state;
  vip::record(st.facts, a);
  st.spread_wait.clear();
  st.busy = true;
  self
    ->request(st.env.etcd, std::chrono::seconds(15), atom::lock_v, a.key,
              a.value, a.lease)
    .then(
      [self](lock_result& r) {
        auto& st = self->state;
        st.busy = false;
        if (r.ours && st.facts.lock == lock_state::acquiring)
          st.lock_revision = r.revision;
        vip::lock_answered(st.facts, r.ours, r.holder);
        advance(self, now());
      },
      [self](caf::error& err) {
        auto& st = self->state;
        st.busy = false;
        st.facts.lock = lock_state::none;
        st.last_error = self->system().render(err);
        retry_later(self);
      });
}

/// Does what the sequencer asked. True when that ends the round (an
/// effect is in flight, or there is nothing to do).
bool perform(vip_holder_pointer self, const vip::action& a) {
  auto& st = self->state;
  auto done = [self, a] { vip::record(self->state.facts, a); };
  switch (a.what) {
    case act::forget_leftovers:
    case act::forget_lock:
    case act::forget_app_key:
    case act::forget_spread:
      break;
    case act::write_spread:
      self->send(st.env.spread, atom::put_v, a.key, a.value, a.lease);
      break;
    case act::erase_spread:
      self->send(st.env.spread, atom::put_v, a.key, std::string{}, a.lease);
      break;
    case act::take_lock:
      take_lock(self, a);
      return true;
    case act::release_lock:
      step(self, st.env.etcd, a, done, atom::release_v, a.key, a.value);
      return true;
    case act::install_rules:
    case act::remove_rules:
    case act::remove_leftover_rules:
      step(self, st.env.nat, a, done, atom::publish_v, st.key, a.address,
           to_messages(a.rules));
      return true;
    case act::add_address:
      step(
        self, st.env.link, a,
        [self, done] {
          done();
          auto& st = self->state;
          if (st.env.monitor)
            st.env.monitor->watch(st.facts.config.ip,
                                  caf::actor_cast<caf::actor>(self));
          start_announcing(self);
        },
        atom::add_v, a.address, a.valid_s);
      return true;
    case act::remove_address:
      if (st.env.monitor)
        st.env.monitor->unwatch(a.address);
      // Pending announcement timers are void from here on.
      ++st.announce_gen;
      ++st.refresh_gen;
      step(self, st.env.link, a, done, atom::erase_v, a.address);
      return true;
    case act::remove_leftover_address:
      step(self, st.env.link, a, done, atom::erase_v, a.address);
      return true;
    case act::write_app_key:
      step(self, st.env.etcd, a, done, atom::put_v, a.key, a.value, a.lease);
      return true;
    case act::erase_app_key:
      step(self, st.env.etcd, a, done, atom::erase_v, a.key);
      return true;
    case act::rest:
      if (a.held_back)
        st.spread_wait = a.why;
      finish_shutdown(self);
      return true;
  }
  done(); // bookkeeping and fire-and-forget writes: ask again at once
  return false;
}

/// A renewal of our lease from the board: the deadline moves on.
void observe_lease(vip_holder_pointer self) {
  auto& st = self->state;
  if (!st.lease)
    return;
  auto k = st.lease->get();
  auto deadline = vip::seq_time(std::chrono::nanoseconds(k.sent_at_ns));
  if (k.id != 0 && k.id == st.facts.lease_id
      && deadline > st.facts.lease_deadline)
    vip::lease_changed(st.facts, k.id, deadline);
}

/// When the decision changes by time alone and no other timer tells us:
/// with a lease board the registry's one timer fences every holder at the
/// lease deadline, and only the end of the leftover grace is ours.
std::optional<vip::seq_time> own_wake_up(const vip_holder_state& st,
                                         vip::seq_time t) {
  auto& f = st.facts;
  if (!st.lease)
    return vip::wake_up(f, t);
  if (f.leftover != vip::leftovers::none && t < f.leftover_until)
    return f.leftover_until;
  return std::nullopt;
}

/// Keeps one wake-up timer for the earliest time the decision changes by
/// time alone; one that fires early (the deadline moved) is armed again.
void arm_wake_up(vip_holder_pointer self, vip::seq_time t) {
  auto& st = self->state;
  auto at = own_wake_up(st, t);
  if (!at || (st.wake_at && *st.wake_at <= *at))
    return;
  st.wake_at = at;
  self->delayed_send(
    self, std::chrono::duration_cast<std::chrono::nanoseconds>(*at - t),
    atom::fence_v, ++st.wake_gen);
}

/// Observe, act, observe: asks the sequencer and does what it says until
/// an effect is in flight or nothing is left to do.
void advance(vip_holder_pointer self, vip::seq_time t) {
  auto& st = self->state;
  if (st.busy)
    return;
  observe_lease(self);
  // The bookkeeping acts settle in a few rounds (leftovers, lock, app key,
  // two spreading writes); more would be a sequencer that loops.
  for (int round = 0; round < 16; ++round) {
    auto a = vip::next(st.facts, t);
    set_phase(self, a.phase, a.why, t);
    if (perform(self, a)) {
      arm_wake_up(self, t);
      return;
    }
  }
  NWD_LOG_ERROR(who, "{}: the sequencer did not settle", st.key);
  std::abort();
}

/// The lease deadline may have passed without renewal: fence, then act.
void fence_now(vip_holder_pointer self) {
  auto& st = self->state;
  observe_lease(self);
  auto t = now();
  auto& f = st.facts;
  bool held
    = f.address_on || !f.rules.empty() || f.lock == vip::lock_state::ours;
  // Only holders with something to drop say so: the session logs the
  // lease itself once (a node with thousands of VIP keys logged a line
  // for each).
  if (vip::fence(f, t) && held)
    NWD_LOG_ERROR(who, "{}: lease deadline passed without renewal: fencing{}",
                  st.key, fields(st.key, "fenced"));
  advance(self, t);
}

} // namespace

vip_holder_state::~vip_holder_state() {
  if (env.board)
    env.board->forget(vip_label());
}

std::string vip_holder_state::vip_label() const {
  std::string_view k = key;
  if (k.substr(0, config::vips_prefix.size()) == config::vips_prefix)
    k.remove_prefix(config::vips_prefix.size());
  return std::string{k};
}

void vip_holder_state::record_transition(const std::string& to,
                                         const std::string& why,
                                         vip::seq_time t) {
  vip_transition tr{std::chrono::system_clock::now(), t, phase, to, why};
  last_change = rfc3339(tr.at) + " " + why;
  phase = to;
  ++transitions;
  history.push_back(std::move(tr));
  if (history.size() > history_size)
    history.pop_front();
  if (env.board)
    env.board->set(vip_label(), phase, true);
}

std::string vip_holder_state::render(vip::seq_time now) const {
  auto& cfg = facts.config;
  json_writer j;
  j.begin_object();
  j.kv("name", "vip-holder");
  j.kv("key", key);
  j.kv("state", phase);
  j.kv("kind", cfg.port_only() ? "port-only" : "address");
  j.kv("app", cfg.app);
  j.kv("proc", cfg.proc);
  j.kv("owner", facts.lock == lock_state::ours     ? env.hostname
                : facts.lock == lock_state::theirs ? facts.holder
                                                   : std::string{});
  j.kv("lock_revision", lock_revision);
  j.kv("address_on", facts.address_on);
  j.begin_array("ports");
  for (auto& p : cfg.ports) {
    j.begin_object();
    j.kv("src", static_cast<int64_t>(p.src));
    j.kv("proto", config::to_string(p.protocol));
    j.kv("dest", static_cast<int64_t>(p.dest));
    j.end_object();
  }
  j.end_array();
  j.begin_array("rules");
  for (auto& r : facts.rules)
    j.value(std::string{r.proto == nat::protocol::udp ? "udp " : "tcp "} + r.vip
            + ":" + std::to_string(r.src_port) + " -> " + r.container_ip + ":"
            + std::to_string(r.dest_port));
  j.end_array();
  if (facts.healthy) {
    j.object("container");
    j.kv("ip", facts.healthy->ip);
    j.kv("instance", facts.healthy->instance);
    j.end_object();
  }
  j.kv("health", facts.health_reason);
  if (!cfg.port_only()) {
    j.object("spreading");
    j.kv("key", facts.spread_key);
    j.kv("value", facts.spread_value);
    j.kv("waiting", spread_wait);
    j.object("used_by_instance");
    for (auto& [instance, used] : facts.spread_used)
      j.kv(std::to_string(instance).c_str(), used);
    j.end_object();
    j.end_object();
  }
  j.kv("excluded_nodes", cfg.excluded_nodes);
  j.kv("last_change", last_change);
  if (!history.empty()) {
    auto& h = history.back();
    j.kv("last_change_at", rfc3339(h.at));
    j.kv("last_change_age_ms", ms_between(h.mono, now));
    j.kv("last_change_reason", h.reason);
  }
  j.begin_array("transitions");
  for (auto& h : history) {
    j.begin_object();
    j.kv("at", rfc3339(h.at));
    j.kv("age_ms", ms_between(h.mono, now));
    j.kv("from", h.from);
    j.kv("to", h.to);
    j.kv("reason", h.reason);
    j.end_object();
  }
  j.end_array();
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

vip_holder_actor::behavior_type
vip_holder(vip_holder_pointer self, std::string key, vip_env env,
           std::shared_ptr<const lease_board> lease) {
  auto& st = self->state;
  st.key = std::move(key);
  st.env = std::move(env);
  st.lease = std::move(lease);
  st.facts.hostname = st.env.hostname;
  st.facts.node_ip = st.env.node_ip;
  st.facts.spreading = static_cast<bool>(st.env.spread);
  if (st.env.board)
    st.env.board->set(st.vip_label(), st.phase, false);
  // Leftovers of a previous run are looked at again when the grace ends.
  st.facts.leftover_until = now() + st.env.leftover_grace;
  return {
    [self](atom::status) {
      observe_lease(self);
      return self->state.render(now());
    },
    [self](config::vip_config& cfg) {
      auto& st = self->state;
      st.facts.config = std::move(cfg);
      st.facts.configured = true;
      ++st.updates;
      subscribe_health(self);
      advance(self, now());
    },
    [self](keys::event<config::family::vip_lock>& c) {
      // Our lock key changed.
      auto& st = self->state;
      auto was = st.facts.holder;
      switch (vip::lock_key_changed(st.facts, c.deleted, c.value)) {
        case vip::lock_news::released:
          NWD_LOG_INFO(who, "{}: lock released by {}: competing", st.key, was);
          break;
        case vip::lock_news::stolen:
          NWD_LOG_ERROR(who, "{}: lock now held by {}: stepping down{}{}",
                        st.key, c.value, fields(st.key, "lock_stolen"),
                        log::field("holder", c.value));
          break;
        default:
          break;
      }
      advance(self, now());
    },
    [self](keepalive_info& k) {
      auto& st = self->state;
      auto deadline = vip::seq_time(std::chrono::nanoseconds(k.sent_at_ns));
      if (vip::lease_changed(st.facts, k.id, deadline))
        NWD_LOG_WARN(who,
                     "{}: session lease changed: the lock must be "
                     "taken again{}",
                     st.key, fields(st.key, "lease_changed"));
      // Kernel-side fencing: the link worker extends the lifetime of every
      // address it added, in one go per renewal (the supervisor tells it).
      advance(self, now());
    },
    [self](atom::fence) { fence_now(self); },
    [self](atom::fence, uint64_t gen) {
      auto& st = self->state;
      if (gen != st.wake_gen)
        return; // armed again since
      st.wake_at.reset();
      fence_now(self);
    },
    [self](proc_health& h) {
      auto& f = self->state.facts;
      if (h.app != f.config.app || h.proc != f.config.proc)
        return;
      f.health_reason = h.reason;
      std::optional<vip::container> c;
      if (h.healthy)
        c = vip::container{h.ip, h.instance};
      if (c == f.healthy)
        return;
      f.healthy = c;
      advance(self, now());
    },
    [self](atom::announce, uint64_t gen) {
      observe_lease(self);
      // Only while we own it: timers of an earlier burst may fire late
      // (after a freeze) while the address is on its way out.
      if (gen == self->state.announce_gen
          && vip::may_announce(self->state.facts, now()))
        announce_now(self);
    },
    [self](atom::tick) {
      self->state.retry_pending = false;
      advance(self, now());
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
        if (self->state.facts.address_on)
          schedule_refresh(self);
      }
    },
    [self](atom::refresh, uint64_t gen) {
      observe_lease(self);
      if (gen != self->state.refresh_gen
          || !vip::may_announce(self->state.facts, now()))
        return;
      announce_now(self);
      schedule_refresh(self);
    },
    [self](spread_report& r) {
      auto& f = self->state.facts;
      if (r.app != f.config.app || r.proc != f.config.proc)
        return;
      std::map<int64_t, int64_t> used;
      for (size_t i = 0; i < r.instances.size() && i < r.used.size(); ++i)
        used[r.instances[i]] = r.used[i];
      if (used == f.spread_used)
        return;
      f.spread_used = std::move(used);
      advance(self, now());
    },
    [self](atom::lost, std::string& ip) {
      auto& st = self->state;
      auto& f = st.facts;
      if (ip != f.config.ip || !f.address_on)
        return;
      if (st.busy) {
        // Maybe our own step removed it: look again once it is done.
        self->delayed_send(self, std::chrono::milliseconds(50), atom::lost_v,
                           std::move(ip));
        return;
      }
      auto t = now();
      if (vip::address_removed(f, t)) {
        NWD_LOG_WARN(who,
                     "{}: address {} expired (no lease renewal since "
                     "its lifetime was set): not put back before one{}",
                     st.key, ip, fields(st.key, "address_expired"));
      } else {
        NWD_LOG_WARN(who,
                     "{}: address {} was removed by someone else: "
                     "putting it back{}",
                     st.key, ip, fields(st.key, "address_removed"));
        ++st.readds;
      }
      advance(self, t);
    },
    [self](atom::conflict, std::string& ip, std::string& mac) {
      auto& st = self->state;
      auto& f = st.facts;
      if (ip != f.config.ip || f.lock != lock_state::ours || !f.address_on
          || f.lease_id == 0)
        return;
      ++st.conflicts;
      auto t = now();
      if (st.conflict_check
          || t - st.last_conflict_check < std::chrono::seconds(1))
        return;
      st.conflict_check = true;
      st.last_conflict_check = t;
      NWD_LOG_WARN(who, "{}: {} claims {} by ARP: checking the lock{}{}",
                   st.key, mac, ip, fields(st.key, "arp_conflict"),
                   log::field("mac", mac));
      self
        ->request(st.env.etcd, std::chrono::seconds(5), atom::lock_v,
                  vip::lock_key(f.config), f.hostname, f.lease_id)
        .then(
          [self, mac](lock_result& r) {
            auto& st = self->state;
            auto& f = st.facts;
            st.conflict_check = false;
            if (f.lock != lock_state::ours)
              return;
            if (r.ours) {
              NWD_LOG_WARN(who,
                           "{}: the lock is ours: announcing again "
                           "against {}{}",
                           st.key, mac, fields(st.key, "arp_conflict_ours"));
              st.lock_revision = r.revision;
              start_announcing(self);
              return;
            }
            NWD_LOG_ERROR(who, "{}: the lock is held by {}: stepping down{}{}",
                          st.key, r.holder,
                          fields(st.key, "arp_conflict_theirs"),
                          log::field("holder", r.holder));
            ++st.stepped_down;
            f.lock = r.holder.empty() ? lock_state::none : lock_state::theirs;
            f.holder = r.holder;
            advance(self, now());
          },
          [self](caf::error&) { self->state.conflict_check = false; });
    },
    [self](atom::shutdown) -> caf::result<bool> {
      auto& st = self->state;
      st.facts.shutting_down = true;
      st.shutdown_promise = self->make_response_promise();
      advance(self, now());
      return caf::delegated<bool>{};
    },
    [self](atom::release) -> caf::result<bool> {
      auto& st = self->state;
      st.facts.retiring = true;
      st.shutdown_promise = self->make_response_promise();
      advance(self, now());
      return caf::delegated<bool>{};
    },
  };
}

} // namespace networkd
