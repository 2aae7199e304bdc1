// SPDX-License-Identifier: MIT
#include "actors/vip_registry.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <sstream>

#include "actors/errors.hpp"
#include "actors/json.hpp"
#include "net/base/log.hpp"

namespace networkd {

namespace {

constexpr const char* who = "vip-registry";

using clock = std::chrono::steady_clock;

std::string describe(const config::vip_config& v) {
  std::ostringstream out;
  out << "vip " << v.key << " app=" << v.app << " proc=" << v.proc << " ports=";
  for (size_t i = 0; i < v.ports.size(); ++i) {
    auto& p = v.ports[i];
    out << (i ? "," : "") << p.src << "/" << config::to_string(p.protocol)
        << "->" << p.dest;
  }
  return out.str();
}

bool is_webrouter(const config::vip_config& v) {
  return v.app == "webrouter" && !v.port_only();
}

} // namespace

// -- state --------------------------------------------------------------------

std::chrono::milliseconds vip_registry_state::backoff(uint64_t n) const {
  auto d = cfg.restart_backoff_min;
  for (uint64_t i = 0; i < n && d < cfg.restart_backoff_max; ++i)
    d *= 2;
  return std::min(d, cfg.restart_backoff_max);
}

keepalive_info vip_registry_state::lease_at(clock::time_point now) const {
  auto deadline = clock::time_point(std::chrono::nanoseconds(lease.sent_at_ns));
  if (lease.id == 0 || now >= deadline)
    return {};
  return lease;
}

spread_report vip_registry_state::spread_of(const std::string& app,
                                            const std::string& proc) const {
  spread_report r;
  r.app = app;
  r.proc = proc;
  auto i = spread.find(app + "/" + proc);
  if (i == spread.end())
    return r;
  for (auto& [instance, vips] : i->second) {
    int64_t used = 0;
    for (auto& [vip, u] : vips)
      used += u ? 1 : 0;
    r.instances.push_back(instance);
    r.used.push_back(used);
  }
  return r;
}

std::vector<std::string> vip_registry_state::webrouter() const {
  std::vector<std::string> ips;
  for (auto& [key, e] : children)
    if (is_webrouter(e.config))
      ips.push_back(e.config.ip);
  std::sort(ips.begin(), ips.end());
  return ips;
}

std::string
vip_registry_state::render(const std::vector<std::string>& child_states) const {
  json_writer j;
  j.begin_object();
  j.kv("name", name);
  j.kv("state", shutting_down ? "stopping" : "running");
  j.object("counters");
  j.kv("children", static_cast<uint64_t>(children.size()));
  j.kv("restarts", restarts);
  j.end_object();
  j.begin_array("children");
  for (auto& s : child_states)
    j.raw(s);
  j.end_array();
  j.end_object();
  return j.str();
}

std::string vip_registry_state::metrics() const {
  std::ostringstream out;
  out << "# HELP networkd_child_restarts_total Crashed children restarted\n"
      << "# TYPE networkd_child_restarts_total counter\n"
      << "networkd_child_restarts_total " << restarts << "\n";
  return out.str();
}

// -- behavior -----------------------------------------------------------------

namespace {

/// The ARP knobs in force, as every VIP holder is told them.
std::vector<config::knob> arp_knobs(const vip_registry_state& st) {
  auto& a = st.arp;
  return {config::knob{"arp_count", a.count, ""},
          config::knob{"arp_interval_ms", a.interval.count(), ""},
          config::knob{"arp_refresh_s", a.refresh.count(), ""}};
}

void update_webrouter(vip_registry_pointer self) {
  auto& st = self->state;
  if (!st.cfg.dns)
    return;
  auto ips = st.webrouter();
  if (ips == st.webrouter_ips)
    return;
  st.webrouter_ips = ips;
  self->send(st.cfg.dns, atom::webrouter_v, std::move(ips));
}

void spawn_child(vip_registry_pointer self, const std::string& key) {
  auto& st = self->state;
  auto& e = st.children[key];
  e.handle = st.cfg.make_vip(self->system(), key);
  self->monitor(e.handle);
  e.restart_pending = false;
  e.last_event = describe(e.config);
  self->send(e.handle, st.lease_at(clock::now()));
  for (auto& k : arp_knobs(st))
    self->send(e.handle, k);
  self->send(e.handle, e.config);
  if (!e.config.port_only())
    self->send(e.handle, st.spread_of(e.config.app, e.config.proc));
}

/// A spreading key changed: the holders of that app.proc hear the counts.
void apply_spread(vip_registry_pointer self,
                  const keys::event<config::family::container_vip>& c) {
  auto& st = self->state;
  // A delete carries no value: the key alone names the instance and VIP.
  auto parsed = c.deleted ? config::parse_container_vip(c.suffix, "unused")
                          : result<config::container_vip>{c.value};
  if (!parsed)
    return;
  auto& p = *parsed;
  auto group = p.app + "/" + p.proc;
  auto& instances = st.spread[group];
  if (c.deleted) {
    auto i = instances.find(p.instance);
    if (i != instances.end()) {
      i->second.erase(p.vip);
      if (i->second.empty())
        instances.erase(i);
    }
    if (instances.empty())
      st.spread.erase(group);
  } else {
    instances[p.instance][p.vip] = p.used;
  }
  st.spread_dirty.insert(group);
  if (!st.spread_flush_scheduled) {
    st.spread_flush_scheduled = true;
    self->delayed_send(self, std::chrono::milliseconds(50), atom::publish_v);
  }
}

void flush_spread(vip_registry_pointer self) {
  auto& st = self->state;
  st.spread_flush_scheduled = false;
  auto dirty = std::move(st.spread_dirty);
  st.spread_dirty.clear();
  std::map<std::string, spread_report> reports;
  for (auto& group : dirty) {
    auto slash = group.find('/');
    reports[group]
      = st.spread_of(group.substr(0, slash), group.substr(slash + 1));
  }
  for (auto& [key, e] : st.children) {
    if (!e.handle || e.config.port_only())
      continue;
    auto r = reports.find(e.config.app + "/" + e.config.proc);
    if (r != reports.end())
      self->send(e.handle, r->second);
  }
}

/// A deleted key: its holder releases address, rules, lock and spreading
/// key in its order and is stopped then. A release that cannot finish
/// (etcd down for long) ends with the holder stopped all the same: the
/// lock then goes with the lease at the latest.
void retire(vip_registry_pointer self, const std::string& key) {
  auto& st = self->state;
  auto i = st.children.find(key);
  if (i == st.children.end())
    return;
  NWD_LOG_INFO(who, "vip key {} deleted: its holder releases the VIP", key);
  auto h = i->second.handle;
  bool webrouter = is_webrouter(i->second.config);
  st.children.erase(i);
  if (h) {
    st.retiring[key] = h;
    auto stop = [self, h, key] {
      auto& st = self->state;
      st.retiring.erase(key);
      self->send_exit(h, caf::exit_reason::user_shutdown);
      auto j = st.children.find(key);
      if (j != st.children.end() && !j->second.handle
          && j->second.restart_pending && !st.shutting_down) {
        NWD_LOG_INFO(who, "{} released: its new holder starts", key);
        spawn_child(self, key);
      }
    };
    self->request(h, std::chrono::seconds(30), atom::release_v)
      .then([stop](bool) { stop(); }, [stop](caf::error&) { stop(); });
  }
  if (webrouter)
    update_webrouter(self);
}

void apply_vip(vip_registry_pointer self,
               const keys::event<config::family::vip>& c) {
  auto& st = self->state;
  if (c.deleted) {
    retire(self, c.key);
    return;
  }
  // update_webrouter walks every child: only when a webrouter VIP changed
  // (a cold start adds thousands of keys in one batch).
  auto i = st.children.find(c.key);
  if (i == st.children.end() && st.retiring.count(c.key) > 0) {
    // Put again while the holder of its deleted value still releases: two
    // holders of one VIP would race on its lock, rules and address.
    NWD_LOG_INFO(who,
                 "vip key {} put again: its holder starts once the "
                 "previous one has released",
                 c.key);
    auto& e = st.children[c.key];
    e.config = c.value;
    e.restart_pending = true;
    if (is_webrouter(c.value))
      update_webrouter(self);
    return;
  }
  if (i == st.children.end()) {
    NWD_LOG_INFO(who, "new vip key {}: spawning its holder", c.key);
    st.children[c.key].config = c.value;
    spawn_child(self, c.key);
    if (is_webrouter(c.value))
      update_webrouter(self);
    return;
  }
  bool webrouter = is_webrouter(i->second.config) || is_webrouter(c.value);
  i->second.config = c.value;
  if (webrouter)
    update_webrouter(self);
  if (i->second.restart_pending)
    return; // the restart sends the newest config
  i->second.last_event = describe(c.value);
  self->send(i->second.handle, c.value);
  if (!c.value.port_only())
    self->send(i->second.handle, st.spread_of(c.value.app, c.value.proc));
}

void apply_knobs(vip_registry_pointer self, const config::knob_values& v) {
  auto& st = self->state;
  if (v.arp == st.arp)
    return;
  st.arp = v.arp;
  auto arp = arp_knobs(st);
  for (auto& [key, e] : st.children)
    if (e.handle)
      for (auto& k : arp)
        self->send(e.handle, k);
}

clock::time_point deadline_of(const keepalive_info& k) {
  return clock::time_point(std::chrono::nanoseconds(k.sent_at_ns));
}

/// Arms the lease deadline timer unless one fires before it anyway.
void arm_fence(vip_registry_pointer self) {
  auto& st = self->state;
  if (!st.cfg.board || st.lease.id == 0)
    return;
  auto at = deadline_of(st.lease);
  if (st.fence_at && *st.fence_at <= at)
    return;
  st.fence_at = at;
  auto delay = std::max(at - clock::now(), clock::duration::zero());
  self->delayed_send(
    self, std::chrono::duration_cast<std::chrono::nanoseconds>(delay),
    atom::fence_v, ++st.fence_gen);
}

/// The deadline timer: past the deadline without renewal every holder
/// fences; a renewal since moved it, so the timer is armed again.
void on_fence(vip_registry_pointer self, uint64_t gen) {
  auto& st = self->state;
  if (gen != st.fence_gen)
    return;
  st.fence_at.reset();
  if (st.lease.id != 0 && clock::now() >= deadline_of(st.lease)) {
    st.fenced = true;
    for (auto& [key, e] : st.children)
      if (e.handle)
        self->send(e.handle, atom::fence_v);
    return;
  }
  arm_fence(self);
}

/// A grant, renewal or loss. A renewal (same lease, deadline moved) goes
/// on the board only; a new or lost lease, and the first renewal after a
/// fence, go to every holder.
void apply_lease(vip_registry_pointer self, const keepalive_info& k) {
  auto& st = self->state;
  bool tell = !st.cfg.board || k.id != st.lease.id || st.fenced;
  st.lease = k;
  if (st.cfg.board)
    st.cfg.board->set(k);
  if (tell) {
    st.fenced = false;
    for (auto& [key, e] : st.children)
      if (e.handle)
        self->send(e.handle, k);
  }
  arm_fence(self);
}

/// The first full read is applied: the workers drop what a previous run
/// left for addresses that are no VIP key now.
void prune(vip_registry_pointer self) {
  auto& st = self->state;
  if (!st.cfg.link || !st.cfg.nat)
    return;
  std::vector<std::string> keep{st.cfg.node_ip};
  for (auto& [key, e] : st.children)
    keep.push_back(e.config.ip);
  // Fire and forget: their answers only matter to tests.
  caf::anon_send(st.cfg.link, atom::prune_v, keep);
  caf::anon_send(st.cfg.nat, atom::prune_v, std::move(keep));
}

/// Asks every child for its status (1 s each; a child that does not answer
/// is reported as such) and calls `done` with all the answers, in the order
/// of the keys (whatever order the answers came in).
void collect_children(vip_registry_pointer self,
                      std::function<void(std::vector<std::string>)> done) {
  auto& st = self->state;
  auto pending = std::make_shared<size_t>(st.children.size());
  auto states = std::make_shared<std::vector<std::string>>(*pending);
  if (*pending == 0) {
    done({});
    return;
  }
  auto finish = [pending, states, done] {
    if (--*pending == 0)
      done(*states);
  };
  size_t at = 0;
  for (auto& [key, e] : st.children) {
    auto i = at++;
    if (!e.handle) {
      json_writer j;
      j.begin_object().kv("name", "vip-holder").kv("key", key);
      j.kv("state", "restarting").end_object();
      (*states)[i] = j.str();
      finish();
      continue;
    }
    auto k = key;
    self->request(e.handle, std::chrono::seconds(1), atom::status_v)
      .then(
        [states, finish, i](std::string& s) {
          (*states)[i] = std::move(s);
          finish();
        },
        [self, states, finish, k, i](caf::error& err) {
          json_writer j;
          j.begin_object().kv("name", "vip-holder").kv("key", k);
          j.kv("state", "unreachable");
          j.kv("last_error", self->system().render(err)).end_object();
          (*states)[i] = j.str();
          finish();
        });
  }
}

/// SIGTERM: every holder removes its address and rules; the session's
/// revoke then releases every lock (and app key) in one step, and the
/// other nodes take over the moment they see the deletes.
caf::result<bool> shutdown(vip_registry_pointer self) {
  auto& st = self->state;
  st.shutting_down = true;
  NWD_LOG_INFO(who, "shutting down: releasing {} VIPs", st.children.size());
  auto rp = self->make_response_promise<bool>();
  auto stop_all = [self, rp]() mutable {
    for (auto& [key, e] : self->state.children)
      if (e.handle)
        self->send_exit(e.handle, caf::exit_reason::user_shutdown);
    self->state.children.clear();
    rp.deliver(true);
  };
  auto pending = std::make_shared<size_t>(0);
  for (auto& [key, e] : st.children)
    if (e.handle)
      ++*pending;
  if (*pending == 0) {
    stop_all();
    return rp;
  }
  for (auto& [key, e] : st.children) {
    if (!e.handle)
      continue;
    self->request(e.handle, std::chrono::seconds(10), atom::shutdown_v)
      .then(
        [pending, stop_all](bool) mutable {
          if (--*pending == 0)
            stop_all();
        },
        [pending, stop_all](caf::error&) mutable {
          if (--*pending == 0)
            stop_all();
        });
  }
  return rp;
}

void on_down(vip_registry_pointer self, const caf::down_msg& dm) {
  auto& st = self->state;
  for (auto& [key, e] : st.children) {
    if (e.handle.address() != dm.source)
      continue;
    ++e.restarts;
    ++st.restarts;
    auto delay = st.backoff(e.restarts - 1);
    NWD_LOG_ERROR(who,
                  "holder of {} crashed ({}); last event: {}; restart #{} "
                  "in {} ms",
                  key, self->system().render(dm.reason), e.last_event,
                  e.restarts, delay.count());
    e.handle = nullptr;
    e.restart_pending = true;
    self->delayed_send(self, delay, atom::restart_v, key);
    return;
  }
}

} // namespace

vip_registry_actor::behavior_type vip_registry(vip_registry_pointer self,
                                               vip_registry_config cfg) {
  self->state.cfg = std::move(cfg);
  // Holders are monitored, not linked: an exit (the node's, when a
  // shutdown ran out of time) must take them along, or ~actor_system
  // waits for them.
  self->set_exit_handler([self](caf::exit_msg& msg) {
    for (auto& [key, e] : self->state.children)
      if (e.handle)
        self->send_exit(e.handle, msg.reason);
    self->state.children.clear();
    for (auto& [key, h] : self->state.retiring)
      self->send_exit(h, msg.reason);
    self->state.retiring.clear();
    self->quit(msg.reason);
  });
  self->set_down_handler([self](caf::down_msg& dm) { on_down(self, dm); });
  return {
    [self](atom::status) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      collect_children(self, [self, rp](std::vector<std::string> s) mutable {
        rp.deliver(self->state.render(s));
      });
      return rp;
    },
    [self](atom::vips) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      collect_children(self, [rp](std::vector<std::string> s) mutable {
        json_writer j;
        j.begin_array();
        for (auto& x : s)
          j.raw(x);
        j.end_array();
        rp.deliver(j.str());
      });
      return rp;
    },
    [self](atom::tick, atom::status) { return self->state.metrics(); },
    [self](config::knob_values& v) { apply_knobs(self, v); },
    [self](atom::ready) { prune(self); },
    [self](keys::event<config::family::vip>& c) { apply_vip(self, c); },
    [self](keys::event<config::family::vip_lock>& c) {
      auto& st = self->state;
      auto i = st.children.find(std::string{config::vips_prefix} + c.suffix);
      if (i != st.children.end() && i->second.handle)
        self->send(i->second.handle, std::move(c));
    },
    [self](keys::event<config::family::container_vip>& c) {
      apply_spread(self, c);
    },
    [self](keepalive_info& k) { apply_lease(self, k); },
    [self](atom::publish) { flush_spread(self); },
    [self](atom::fence, uint64_t gen) { on_fence(self, gen); },
    [self](atom::restart, const std::string& key) {
      auto& st = self->state;
      auto i = st.children.find(key);
      if (i == st.children.end() || !i->second.restart_pending)
        return;
      NWD_LOG_INFO(who, "restarting holder of {}", key);
      spawn_child(self, key);
    },
    [self](atom::shutdown) { return shutdown(self); },
  };
}

} // namespace networkd
