// SPDX-License-Identifier: MIT
#include "actors/supervisor.hpp"

#include <caf/actor_system.hpp>
#include <caf/all.hpp>

#include <algorithm>
#include <sstream>

#include <fmt/format.h>

#include "actors/errors.hpp"
#include "actors/json.hpp"
#include "net/base/log.hpp"
#include "net/kernel/acl.hpp"

namespace networkd {

namespace {

constexpr const char* who = "supervisor";

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

} // namespace

std::vector<std::string> default_prefixes() {
  return {std::string{config::vips_prefix},
          std::string{config::domains_prefix},
          std::string{config::domain_servers_prefix},
          std::string{config::vippool_key},
          std::string{config::swarm_leader_key},
          std::string{config::deployd_leader_key},
          std::string{config::knobs_prefix},
          std::string{config::vip_locks_prefix},
          std::string{config::container_vips_prefix},
          std::string{config::leader_prefix}};
}

key_batch to_key_batch(const std::string& prefix, const etcd::watch_batch& b) {
  key_batch out;
  out.prefix = prefix;
  out.revision = b.revision;
  out.snapshot = b.snapshot;
  out.events.reserve(b.events.size());
  for (auto& ev : b.events) {
    keys::raw_event r;
    r.key = ev.kv.key;
    r.value = ev.kv.value;
    r.deleted = ev.what == etcd::watch_event::kind::erase;
    r.revision = ev.kv.mod_revision;
    r.create_revision = ev.kv.create_revision;
    r.lease = ev.kv.lease;
    out.events.push_back(std::move(r));
  }
  return out;
}

// -- state --------------------------------------------------------------------

bool supervisor_state::synced_all() const {
  if (!cfg.client)
    return true;
  return synced.size() >= cfg.prefixes.size();
}

std::string supervisor_state::not_ready_reason(
  std::chrono::steady_clock::time_point now) const {
  if (!cfg.client)
    return {};
  if (shutting_down)
    return "stopping";
  if (!synced_all())
    return "first etcd read pending (" + std::to_string(synced.size()) + " of "
           + std::to_string(cfg.prefixes.size()) + " watches synced)";
  if (lease_state != "alive")
    return "etcd lease " + lease_state
           + (lease_error.empty() ? "" : ": " + lease_error);
  if (!lease.alive(now))
    return "etcd lease past its local deadline (etcd unreachable)";
  for (auto& [prefix, since] : stalled)
    if (now - since >= watch_grace) {
      auto w = watches.find(prefix);
      std::string why = w == watches.end() ? "" : w->second.last_error;
      return "watch " + prefix + " not watching for "
             + std::to_string(
               std::chrono::duration_cast<std::chrono::milliseconds>(now
                                                                     - since)
                 .count())
             + " ms" + (why.empty() ? "" : ": " + why);
    }
  return {};
}

bool supervisor_state::reject(const keys::common& c, int64_t revision) {
  auto& e = rejected[std::string{c.key}];
  bool changed = e.reason != c.error || e.code != c.error_code;
  e.fam = c.fam;
  e.code = c.error_code;
  e.reason = c.error;
  e.revision = revision;
  return changed;
}

void supervisor_state::accept(const std::string& key) {
  rejected.erase(key);
}

std::chrono::milliseconds supervisor_state::backoff(uint64_t n) const {
  auto d = cfg.restart_backoff_min;
  for (uint64_t i = 0; i < n && d < cfg.restart_backoff_max; ++i)
    d *= 2;
  return std::min(d, cfg.restart_backoff_max);
}

std::string
supervisor_state::render(const std::vector<std::string>& child_states,
                         std::chrono::steady_clock::time_point now) const {
  json_writer j;
  j.begin_object();
  j.kv("name", "supervisor");
  auto why = not_ready_reason(now);
  j.kv("state", shutting_down  ? "stopping"
                : synced_all() ? "running"
                               : "syncing");
  j.kv("hostname", cfg.hostname);
  j.kv("ready", why.empty());
  j.kv("not_ready", why);
  j.object("lease");
  // In hex, as etcdctl and the logs print it (and jq would round a
  // decimal number above 2^53).
  j.kv("id", fmt::format("{:x}", lease.id()));
  j.kv("ttl", lease.ttl());
  j.kv("state", lease_state);
  j.kv("expires_in_ms", static_cast<int64_t>(lease.remaining(now).count()));
  j.kv("renewals", lease.renewals());
  j.kv("keepalive_failures", keepalive_failures);
  j.kv("last_error", lease_error);
  j.end_object();
  if (cfg.client) {
    auto cs = cfg.client->stats();
    j.object("etcd_auth");
    j.kv("logins", cs.logins);
    j.kv("login_failures", cs.login_failures);
    j.kv("logins_deferred", cs.logins_deferred);
    j.end_object();
  }
  j.begin_array("watches");
  for (auto& [prefix, w] : watches) {
    j.begin_object();
    j.kv("prefix", prefix);
    j.kv("phase", w.phase);
    j.kv("revision", w.revision);
    j.kv("synced", synced.count(prefix) > 0);
    j.kv("last_error", w.last_error);
    j.kv("reconnects", w.reconnects);
    j.kv("resyncs", w.resyncs);
    j.end_object();
  }
  j.end_array();
  j.begin_array("rejected");
  for (auto& [key, r] : rejected) {
    j.begin_object();
    j.kv("key", key);
    j.kv("code", r.code);
    j.kv("reason", r.reason);
    j.kv("revision", r.revision);
    j.end_object();
  }
  j.end_array();
  j.object("keys");
  for (auto& [fam, n] : family_keys)
    j.kv(fam.c_str(), n);
  j.end_object();
  j.object("keys_over_limit");
  for (auto& [fam, n] : over_limit)
    j.kv(fam.c_str(), n);
  j.end_object();
  j.object("knobs");
  for (auto& [name, k] : knobs) {
    if (k.text.empty())
      j.kv(name.c_str(), k.number);
    else
      j.kv(name.c_str(), k.text);
  }
  j.end_object();
  j.object("counters");
  j.kv("events", events);
  j.kv("rejected", static_cast<uint64_t>(rejected.size()));
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

std::string
supervisor_state::metrics(std::chrono::steady_clock::time_point now) const {
  std::ostringstream out;
  out << "# HELP networkd_ready 1 while /readyz answers 200 (first read "
         "applied, lease alive, watches watching)\n"
      << "# TYPE networkd_ready gauge\n"
      << "networkd_ready " << (not_ready_reason(now).empty() ? 1 : 0) << "\n"
      << "# HELP networkd_etcd_events_total Key events applied\n"
      << "# TYPE networkd_etcd_events_total counter\n"
      << "networkd_etcd_events_total " << events << "\n"
      << "# HELP networkd_rejected_keys Keys whose value was rejected\n"
      << "# TYPE networkd_rejected_keys gauge\n"
      << "networkd_rejected_keys " << rejected.size() << "\n"
      << "# HELP networkd_child_restarts_total Crashed children restarted\n"
      << "# TYPE networkd_child_restarts_total counter\n"
      << "networkd_child_restarts_total " << restarts << "\n"
      << "# HELP networkd_lease_remaining_seconds Time before the local "
         "lease deadline\n"
      << "# TYPE networkd_lease_remaining_seconds gauge\n"
      << "networkd_lease_remaining_seconds "
      << static_cast<double>(lease.remaining(now).count()) / 1000.0 << "\n"
      << "# HELP networkd_lease_alive 1 while the session lease is granted "
         "and its local deadline is ahead\n"
      << "# TYPE networkd_lease_alive gauge\n"
      << "networkd_lease_alive "
      << (lease_state == "alive" && lease.alive(now) ? 1 : 0) << "\n"
      << "# HELP networkd_lease_keepalive_failures_total Failed keep-alives\n"
      << "# TYPE networkd_lease_keepalive_failures_total counter\n"
      << "networkd_lease_keepalive_failures_total " << keepalive_failures
      << "\n"
      << "# HELP networkd_etcd_logins_total etcd Authenticate calls sent\n"
      << "# TYPE networkd_etcd_logins_total counter\n"
      << "networkd_etcd_logins_total "
      << (cfg.client ? cfg.client->stats().logins : 0) << "\n"
      << "# HELP networkd_etcd_login_failures_total Logins etcd refused\n"
      << "# TYPE networkd_etcd_login_failures_total counter\n"
      << "networkd_etcd_login_failures_total "
      << (cfg.client ? cfg.client->stats().login_failures : 0) << "\n"
      << "# HELP networkd_watch_revision Last revision applied per watch\n"
      << "# TYPE networkd_watch_revision gauge\n";
  for (auto& [prefix, w] : watches)
    out << "networkd_watch_revision{prefix=\"" << prefix << "\"} " << w.revision
        << "\n";
  out << "# HELP networkd_etcd_watch_up 1 while the watch of a prefix is "
         "watching (0: connecting, retrying or resyncing)\n"
      << "# TYPE networkd_etcd_watch_up gauge\n";
  for (auto& [prefix, w] : watches)
    out << "networkd_etcd_watch_up{prefix=\"" << prefix << "\"} "
        << (w.phase == "watching" ? 1 : 0) << "\n";
  out << "# HELP networkd_etcd_watch_reconnects_total Reconnects of the "
         "watch of a prefix\n"
      << "# TYPE networkd_etcd_watch_reconnects_total counter\n";
  for (auto& [prefix, w] : watches)
    out << "networkd_etcd_watch_reconnects_total{prefix=\"" << prefix << "\"} "
        << w.reconnects << "\n";
  return out.str();
}

// -- behavior -----------------------------------------------------------------

namespace {

/// The lease as VIP holders see it: id and local deadline, or zeros.
keepalive_info lease_view(supervisor_pointer self) {
  auto& st = self->state;
  keepalive_info k;
  auto now = std::chrono::steady_clock::now();
  if (st.lease_state == "alive" && st.lease.alive(now)) {
    k.id = st.lease.id();
    k.ttl = st.lease.ttl();
    k.sent_at_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     st.lease.deadline().time_since_epoch())
                     .count();
  }
  return k;
}

void broadcast_lease(supervisor_pointer self) {
  auto k = lease_view(self);
  if (k.id != 0 && self->state.cfg.link) {
    auto left
      = std::chrono::duration_cast<std::chrono::seconds>(
          self->state.lease.deadline() - std::chrono::steady_clock::now())
          .count();
    self->send(self->state.cfg.link, atom::keepalive_v,
               std::max<int64_t>(left, 1));
  }
  for (auto& [key, e] : self->state.children)
    if (e.handle)
      self->send(e.handle, k);
  if (self->state.cfg.leader)
    self->send(self->state.cfg.leader, k);
}

/// The ARP knobs in force, as every VIP holder is told them.
std::vector<config::knob> arp_knobs(const supervisor_state& st) {
  auto& a = st.knob_values.arp;
  return {config::knob{"arp_count", a.count, ""},
          config::knob{"arp_interval_ms", a.interval.count(), ""},
          config::knob{"arp_refresh_s", a.refresh.count(), ""}};
}

/// How many VIPs of app.proc each registered instance holds.
spread_report spread_of(const supervisor_state& st, const std::string& app,
                        const std::string& proc) {
  spread_report r;
  r.app = app;
  r.proc = proc;
  auto i = st.spread.find(app + "/" + proc);
  if (i == st.spread.end())
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

void spawn_child(supervisor_pointer self, const std::string& key);

/// A spreading key changed: the holders of that app.proc hear the counts.
void apply_spread(supervisor_pointer self,
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

void flush_spread(supervisor_pointer self) {
  auto& st = self->state;
  st.spread_flush_scheduled = false;
  auto dirty = std::move(st.spread_dirty);
  st.spread_dirty.clear();
  std::map<std::string, spread_report> reports;
  for (auto& group : dirty) {
    auto slash = group.find('/');
    reports[group]
      = spread_of(st, group.substr(0, slash), group.substr(slash + 1));
  }
  for (auto& [key, e] : st.children) {
    if (!e.handle || e.config.port_only())
      continue;
    auto r = reports.find(e.config.app + "/" + e.config.proc);
    if (r != reports.end())
      self->send(e.handle, r->second);
  }
}

void spawn_child(supervisor_pointer self, const std::string& key) {
  auto& st = self->state;
  auto arp = arp_knobs(st);
  auto& e = st.children[key];
  e.handle = st.cfg.make_vip(self->system(), key);
  self->monitor(e.handle);
  e.restart_pending = false;
  e.last_event = describe(e.config);
  self->send(e.handle, lease_view(self));
  for (auto& k : arp)
    self->send(e.handle, k);
  self->send(e.handle, e.config);
  if (!e.config.port_only())
    self->send(e.handle, spread_of(st, e.config.app, e.config.proc));
}

bool is_webrouter(const config::vip_config& v) {
  return v.app == "webrouter" && !v.port_only();
}

/// The address VIPs of app "webrouter", sorted: what "webrouter" typed
/// domains resolve to on every node.
void update_webrouter(supervisor_pointer self) {
  auto& st = self->state;
  if (!st.cfg.dns)
    return;
  std::vector<std::string> ips;
  for (auto& [key, e] : st.children)
    if (is_webrouter(e.config))
      ips.push_back(e.config.ip);
  std::sort(ips.begin(), ips.end());
  if (ips == st.webrouter_ips)
    return;
  st.webrouter_ips = ips;
  self->send(st.cfg.dns, atom::webrouter_v, std::move(ips));
}

void route_vip(supervisor_pointer self,
               const keys::event<config::family::vip>& c) {
  auto& st = self->state;
  if (c.deleted) {
    st.accept(c.key);
    auto i = st.children.find(c.key);
    if (i == st.children.end())
      return;
    NWD_LOG_INFO(who, "vip key {} deleted: its holder releases the VIP", c.key);
    auto h = i->second.handle;
    bool webrouter = is_webrouter(i->second.config);
    st.children.erase(i);
    if (h) {
      // Address, rules, lock and spreading key go in the holder's order;
      // it stops by itself then. A release that cannot finish (etcd down
      // for long) ends with the holder stopped all the same: the lock
      // then goes with the lease at the latest.
      st.retiring[c.key] = h;
      auto stop = [self, h, key = c.key] {
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
    self->send(i->second.handle, spread_of(st, c.value.app, c.value.proc));
}

/// Resolves the knobs set into the values in force, acts on the
/// supervisor's own slices and hands the whole to every listener (each reads
/// its slice). Also sent once when the knobs are first read.
void apply_knob_values(supervisor_pointer self) {
  auto& st = self->state;
  auto v = config::resolve_knobs(st.knobs);
  auto old = std::exchange(st.knob_values, v);
  if (v.log_level != old.log_level)
    log::set_level(v.log_level.empty() ? st.cfg.log_level : v.log_level);
  if (v.lease.fencing_margin != old.lease.fencing_margin)
    st.lease.set_margin(v.lease.fencing_margin); // from the next renewal
  if (v.audit.nat != old.audit.nat && st.cfg.nat)
    self->send(st.cfg.nat, atom::audit_v,
               static_cast<int64_t>(v.audit.nat.count()));
  if (!(v.arp == old.arp))
    self->send(self, atom::announce_v); // tells the holders
  for (auto& l : st.cfg.listeners)
    self->send(l, v);
}

void apply_knob(supervisor_pointer self,
                const keys::event<config::family::knob>& c) {
  auto& st = self->state;
  auto name = std::string{c.key.substr(config::knobs_prefix.size())};
  if (c.deleted) {
    if (st.knobs.erase(name) > 0)
      NWD_LOG_INFO(who, "knob {} deleted: back to its default", name);
  } else {
    st.knobs[name] = c.value;
    NWD_LOG_INFO(who, "knob {} = {}", name,
                 c.value.text.empty() ? std::to_string(c.value.number)
                                      : c.value.text);
  }
  apply_knob_values(self);
}

// -- routing: each family to the actors that take it ------------------------

using config::family;

void route(supervisor_pointer self, keys::event<family::vip>& c) {
  route_vip(self, c);
}

void route(supervisor_pointer self, keys::event<family::container_vip>& c) {
  apply_spread(self, c);
}

void route(supervisor_pointer self, keys::event<family::knob>& c) {
  apply_knob(self, c);
}

void route(supervisor_pointer self, keys::event<family::vip_lock>& c) {
  auto& st = self->state;
  auto i = st.children.find(std::string{config::vips_prefix} + c.suffix);
  if (i != st.children.end() && i->second.handle)
    self->send(i->second.handle, std::move(c));
}

void route(supervisor_pointer self, keys::event<family::acl>& c) {
  if (self->state.cfg.acl)
    self->send(self->state.cfg.acl, std::move(c));
}

/// Domains and domain servers: the DNS tables, and the leader (it mirrors
/// the cluster's own names).
template <family F>
void to_dns_and_leader(supervisor_pointer self, keys::event<F>& c) {
  auto& st = self->state;
  if (st.cfg.leader)
    self->send(st.cfg.leader, c);
  if (st.cfg.dns)
    self->send(st.cfg.dns, std::move(c));
}

void route(supervisor_pointer self, keys::event<family::domain>& c) {
  to_dns_and_leader(self, c);
}

void route(supervisor_pointer self, keys::event<family::domain_servers>& c) {
  to_dns_and_leader(self, c);
}

/// The families only the leader reads.
template <family F>
void route(supervisor_pointer self, keys::event<F>& c) {
  if (self->state.cfg.leader)
    self->send(self->state.cfg.leader, std::move(c));
}

void route(supervisor_pointer, keys::unknown_event&) {
  // Rejected before routing (a delete of such a key changes nothing).
}

void apply_change(supervisor_pointer self, keys::any_event& e,
                  int64_t revision) {
  auto& st = self->state;
  ++st.events;
  auto c = keys::common_of(e);
  if (c.rejected) {
    // The leader's streamrouter and tinydns publishers read rejected VIP
    // keys too (a pool VIP with a broken value is rewritten).
    if (auto* v = std::get_if<keys::event<family::vip>>(&e);
        v != nullptr && st.cfg.leader)
      self->send(st.cfg.leader, *v);
    if (st.reject(c, revision)) {
      bool kept
        = c.fam == family::vip && st.children.count(std::string{c.key}) > 0;
      NWD_LOG_WARN(who, "rejected key: {}{} key={} code={} revision={}",
                   c.error, kept ? " (its last good value stays in force)" : "",
                   c.key, c.error_code, revision);
    }
    return;
  }
  st.accept(std::string{c.key});
  if (auto* v = std::get_if<keys::event<family::vip>>(&e);
      v != nullptr && st.cfg.leader)
    self->send(st.cfg.leader, *v);
  std::visit([self](auto& ev) { route(self, ev); }, e);
}

/// Counts one change into the live keys of its family. A new key in a
/// family already at its limit is not counted and false is
/// returned: the change is dropped (logged once per family, counted).
bool count_key(supervisor_pointer self, const keys::common& c,
               std::map<std::string, std::set<std::string>>& live) {
  auto fam = config::to_string(c.fam);
  auto& keys = live[fam];
  std::string key{c.key};
  if (c.deleted) {
    keys.erase(key);
    return true;
  }
  auto limit = self->state.cfg.max_keys_per_family;
  if (keys.size() < limit || keys.count(key) > 0) {
    keys.insert(std::move(key));
    return true;
  }
  if (self->state.over_limit[fam]++ == 0)
    NWD_LOG_ERROR(who,
                  "family {} has {} keys (limit {}): {} and any further "
                  "new key of it are ignored",
                  fam, keys.size(), limit, c.key);
  return false;
}

void grant_lease(supervisor_pointer self);
void keepalive(supervisor_pointer self);

void schedule_keepalive(supervisor_pointer self, bool failed) {
  auto& lease = self->state.lease;
  // An answer that came back late renews again at once.
  auto delay = !failed && lease.late(std::chrono::steady_clock::now())
                 ? lease_tracker::duration{0}
                 : lease.next_keepalive(failed);
  self->delayed_send(self, delay, atom::tick_v);
}

void grant_lease(supervisor_pointer self) {
  auto& st = self->state;
  if (st.shutting_down)
    return;
  st.lease_state = "granting";
  auto sent_at = std::chrono::steady_clock::now();
  self
    ->request(st.worker, std::chrono::seconds(5), atom::grant_v,
              st.knob_values.lease.ttl_s)
    .then(
      [self, sent_at](lease_info& li) {
        auto& st = self->state;
        st.lease.renewed(li.id, li.ttl, sent_at);
        st.lease_state = "alive";
        st.lease_error.clear();
        auto now = std::chrono::steady_clock::now();
        if (st.lease.late(now)) {
          // Granted after a stall: the holders hear of it once a renewal
          // gave it a whole TTL (or it is lost and granted again).
          NWD_LOG_WARN(who,
                       "lease {:x} granted with {} ms left before its "
                       "deadline: renewing before use",
                       li.id, st.lease.remaining(now).count());
          keepalive(self);
          return;
        }
        NWD_LOG_INFO(who, "lease {:x} granted, ttl {}s", li.id, li.ttl);
        broadcast_lease(self);
        schedule_keepalive(self, false);
      },
      [self](caf::error& err) {
        auto& st = self->state;
        auto text = self->system().render(err);
        if (st.lease_error != text)
          NWD_LOG_WARN(who, "lease grant failed: {} (retrying)", text);
        st.lease_error = text;
        st.lease_state = "none";
        self->delayed_send(self, std::chrono::milliseconds(500), atom::tick_v);
      });
}

void keepalive(supervisor_pointer self) {
  auto& st = self->state;
  // Renewals go on while shutting down: the holders release their
  // addresses and rules under a live lease, and the revoke ends it.
  if (st.keepalive_in_flight || (st.shutting_down && st.lease.id() == 0))
    return;
  auto now = std::chrono::steady_clock::now();
  if (st.lease.id() == 0 || st.lease_state == "lost"
      || st.lease_state == "none") {
    grant_lease(self);
    return;
  }
  if (!st.lease.alive(now)) {
    NWD_LOG_ERROR(who, "lease {:x} passed its local deadline: treated as lost",
                  st.lease.id());
    st.lease.lost();
    st.lease_state = "lost";
    broadcast_lease(self);
    grant_lease(self);
    return;
  }
  st.keepalive_in_flight = true;
  auto ttl = std::chrono::seconds(std::max<int64_t>(st.lease.ttl(), 1));
  self->request(st.worker, ttl, atom::keepalive_v, st.lease.id())
    .then(
      [self](keepalive_info& k) {
        auto& st = self->state;
        st.keepalive_in_flight = false;
        if (st.shutting_down && (k.ttl <= 0 || st.lease.id() == 0))
          return; // revoked
        if (k.ttl <= 0) {
          NWD_LOG_ERROR(who, "lease {:x} is gone on the server", k.id);
          st.lease.lost();
          st.lease_state = "lost";
          broadcast_lease(self);
          grant_lease(self);
          return;
        }
        auto sent = std::chrono::steady_clock::time_point(
          std::chrono::nanoseconds(k.sent_at_ns));
        st.lease.renewed(k.id, k.ttl, sent);
        if (st.keepalive_failures > 0 && !st.lease_error.empty())
          NWD_LOG_INFO(who, "lease {:x} renewed again", k.id);
        st.lease_error.clear();
        st.lease_state = "alive";
        broadcast_lease(self);
        schedule_keepalive(self, false);
      },
      [self](caf::error& err) {
        auto& st = self->state;
        st.keepalive_in_flight = false;
        ++st.keepalive_failures;
        auto text = self->system().render(err);
        if (st.lease_error.empty())
          NWD_LOG_WARN(who, "lease keep-alive failed: {}", text);
        st.lease_error = text;
        schedule_keepalive(self, true);
      });
}

void start_watches(supervisor_pointer self) {
  auto& st = self->state;
  auto hdl = caf::actor_cast<supervisor_actor>(self);
  for (auto& prefix : st.cfg.prefixes) {
    st.watches[prefix].prefix = prefix;
    st.watches[prefix].phase = "connecting";
    st.watchers.push_back(std::make_unique<etcd::watcher>(
      *st.cfg.client, prefix,
      [hdl, prefix](etcd::watch_batch b) {
        caf::anon_send(hdl, to_key_batch(prefix, b));
      },
      [hdl, prefix](const etcd::watch_status& s) {
        watch_report r;
        r.prefix = prefix;
        r.phase = etcd::to_string(s.state);
        r.revision = s.revision;
        r.last_error = s.last_error;
        r.reconnects = s.reconnects;
        r.resyncs = s.resyncs;
        caf::anon_send(hdl, std::move(r));
      }));
  }
}

/// Asks every child for its status (1 s each; a child that does not answer
/// is reported as such) and calls `done` with all the answers.
void collect_children(supervisor_pointer self,
                      std::function<void(std::vector<std::string>)> done) {
  auto& st = self->state;
  auto pending = std::make_shared<size_t>(st.children.size());
  auto states = std::make_shared<std::vector<std::string>>();
  if (*pending == 0) {
    done({});
    return;
  }
  auto finish = [pending, states, done] {
    if (--*pending == 0)
      done(*states);
  };
  for (auto& [key, e] : st.children) {
    if (!e.handle) {
      json_writer j;
      j.begin_object().kv("name", "vip-holder").kv("key", key);
      j.kv("state", "restarting").end_object();
      states->push_back(j.str());
      finish();
      continue;
    }
    auto k = key;
    self->request(e.handle, std::chrono::seconds(1), atom::status_v)
      .then(
        [states, finish](std::string& s) {
          states->push_back(std::move(s));
          finish();
        },
        [self, states, finish, k](caf::error& err) {
          json_writer j;
          j.begin_object().kv("name", "vip-holder").kv("key", k);
          j.kv("state", "unreachable");
          j.kv("last_error", self->system().render(err)).end_object();
          states->push_back(j.str());
          finish();
        });
  }
}

} // namespace

supervisor_actor::behavior_type supervisor(supervisor_pointer self,
                                           supervisor_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.lease = lease_tracker{st.knob_values.lease.fencing_margin};
  auto live = std::make_shared<std::map<std::string, std::set<std::string>>>();
  // Children are monitored, not linked: an exit (main's, when a shutdown
  // ran out of time) must take them along, or ~actor_system waits for them.
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
  self->set_down_handler([self](caf::down_msg& dm) {
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
  });
  if (st.cfg.client) {
    st.worker
      = self->system().spawn<caf::detached>(session_worker, st.cfg.client);
    self->link_to(st.worker);
    // The first lease is granted once the knobs are read, so that a
    // lease_ttl knob applies from the start.
    start_watches(self);
  }
  return {
    [self](atom::status) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      collect_children(
        self, [self, rp](std::vector<std::string> states) mutable {
          rp.deliver(
            self->state.render(states, std::chrono::steady_clock::now()));
        });
      return rp;
    },
    [self](atom::vips) -> caf::result<std::string> {
      auto rp = self->make_response_promise<std::string>();
      collect_children(self,
                       [self, rp](std::vector<std::string> states) mutable {
                         json_writer j;
                         j.begin_object();
                         j.begin_array("vips");
                         for (auto& s : states)
                           j.raw(s);
                         j.end_array();
                         j.begin_array("rejected");
                         for (auto& [key, r] : self->state.rejected) {
                           if (r.fam != config::family::vip)
                             continue;
                           j.begin_object();
                           j.kv("key", key);
                           j.kv("code", r.code);
                           j.kv("reason", r.reason);
                           j.kv("revision", r.revision);
                           j.end_object();
                         }
                         j.end_array();
                         j.end_object();
                         rp.deliver(j.str());
                       });
      return rp;
    },
    [self](atom::ready) {
      return self->state.not_ready_reason(std::chrono::steady_clock::now())
        .empty();
    },
    [self](atom::reload) {
      for (auto& w : self->state.watchers)
        w->resync();
    },
    [self](atom::ready, atom::status) {
      return self->state.not_ready_reason(std::chrono::steady_clock::now());
    },
    [self](atom::tick, atom::status) {
      return self->state.metrics(std::chrono::steady_clock::now());
    },
    [self, live](key_batch& b) {
      auto& st = self->state;
      for (auto& raw : b.events) {
        // An exact-key watch is a prefix watch: drop longer keys it sees.
        if (!keys::belongs_to_watch(b.prefix, raw.key))
          continue;
        auto e = keys::parse(raw);
        if (count_key(self, keys::common_of(e), *live))
          apply_change(self, e, raw.revision);
      }
      st.family_keys.clear();
      for (auto& [fam, keys] : *live)
        st.family_keys[fam] = static_cast<int64_t>(keys.size());
      auto& w = st.watches[b.prefix];
      w.prefix = b.prefix;
      w.revision = std::max(w.revision, b.revision);
      bool first = b.snapshot && st.synced.count(b.prefix) == 0;
      if (first && b.prefix == config::knobs_prefix) {
        apply_knob_values(self); // the listeners' first knob_values
        if (st.cfg.client)
          grant_lease(self);
      }
      if (b.snapshot && st.synced.insert(b.prefix).second) {
        NWD_LOG_INFO(who, "watch {} synced at revision {} ({} keys)", b.prefix,
                     b.revision, b.events.size());
        if (st.synced_all() && st.cfg.client) {
          NWD_LOG_INFO(who, "first full read applied: ready");
          if (st.cfg.link && st.cfg.nat) {
            std::vector<std::string> keep{st.cfg.node_ip};
            for (auto& [key, e] : st.children)
              keep.push_back(e.config.ip);
            // Fire and forget: their answers only matter to tests.
            caf::anon_send(st.cfg.link, atom::prune_v, keep);
            caf::anon_send(st.cfg.nat, atom::prune_v, std::move(keep));
          }
          for (auto& l : st.cfg.listeners)
            self->send(l, atom::ready_v);
        }
      }
    },
    [self](watch_report& r) {
      auto& w = self->state.watches[r.prefix];
      if (w.phase != r.phase) {
        if (r.phase == "retrying")
          NWD_LOG_WARN(who, "watch {}: retrying ({})", r.prefix, r.last_error);
        else if (w.phase == "retrying" && r.phase == "watching")
          NWD_LOG_INFO(who, "watch {}: watching again from revision {}",
                       r.prefix, r.revision);
        else
          NWD_LOG_DEBUG(who, "watch {}: {}", r.prefix, r.phase);
      }
      if (r.phase == "watching")
        self->state.stalled.erase(r.prefix);
      else
        self->state.stalled.emplace(r.prefix, std::chrono::steady_clock::now());
      auto rev = std::max(w.revision, r.revision);
      w = std::move(r);
      w.revision = rev;
    },
    [self](atom::tick) { keepalive(self); },
    [self](atom::publish) { flush_spread(self); },
    [self](atom::announce) {
      auto arp = arp_knobs(self->state);
      for (auto& [key, e] : self->state.children)
        if (e.handle)
          for (auto& k : arp)
            self->send(e.handle, k);
    },
    [self](atom::restart, const std::string& key) {
      auto& st = self->state;
      auto i = st.children.find(key);
      if (i == st.children.end() || !i->second.restart_pending)
        return;
      NWD_LOG_INFO(who, "restarting holder of {}", key);
      spawn_child(self, key);
    },
    [self](atom::shutdown) -> caf::result<bool> {
      auto& st = self->state;
      st.shutting_down = true;
      NWD_LOG_INFO(who, "shutting down: releasing {} VIPs", st.children.size());
      auto rp = self->make_response_promise<bool>();
      auto revoke = [self, rp]() mutable {
        auto& st = self->state;
        for (auto& [key, e] : st.children)
          if (e.handle)
            self->send_exit(e.handle, caf::exit_reason::user_shutdown);
        st.children.clear();
        if (!st.cfg.client || st.lease.id() == 0) {
          rp.deliver(true);
          self->quit();
          return;
        }
        self
          ->request(st.worker, std::chrono::seconds(3), atom::revoke_v,
                    st.lease.id())
          .then(
            [self, rp](bool) mutable {
              NWD_LOG_INFO(who, "lease revoked");
              rp.deliver(true);
              self->quit();
            },
            [self, rp](caf::error& err) mutable {
              NWD_LOG_WARN(who, "lease revoke failed: {}",
                           self->system().render(err));
              rp.deliver(false);
              self->quit();
            });
      };
      // Every holder removes its address and rules first; then the lease
      // revoke releases every lock (and app key) in one step, and the
      // other nodes take over the moment they see the deletes.
      auto pending = std::make_shared<size_t>(0);
      for (auto& [key, e] : st.children)
        if (e.handle)
          ++*pending;
      if (*pending == 0) {
        revoke();
        return rp;
      }
      for (auto& [key, e] : st.children) {
        if (!e.handle)
          continue;
        self->request(e.handle, std::chrono::seconds(10), atom::shutdown_v)
          .then(
            [pending, revoke](bool) mutable {
              if (--*pending == 0)
                revoke();
            },
            [pending, revoke](caf::error&) mutable {
              if (--*pending == 0)
                revoke();
            });
      }
      return rp;
    },
  };
}

session_worker_actor::behavior_type
session_worker(session_worker_actor::pointer self,
               std::shared_ptr<etcd::client> client) {
  (void)self;
  auto to_error = [](const failure& f) {
    return caf::make_error(from_failure_code(f.code), f.to_string());
  };
  return {
    [client, to_error](atom::grant, int64_t ttl) -> caf::result<lease_info> {
      auto r = client->lease_grant(ttl);
      if (!r)
        return to_error(r.error());
      return lease_info{r->id, r->ttl};
    },
    [client, to_error](atom::keepalive,
                       int64_t id) -> caf::result<keepalive_info> {
      auto r = client->lease_keepalive(id);
      if (!r)
        return to_error(r.error());
      keepalive_info k;
      k.id = id;
      k.ttl = r->ttl;
      k.sent_at_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       r->sent_at.time_since_epoch())
                       .count();
      return k;
    },
    [client, to_error](atom::revoke, int64_t id) -> caf::result<bool> {
      auto r = client->lease_revoke(id);
      if (!r)
        return to_error(r.error());
      return true;
    },
  };
}

} // namespace networkd
