// SPDX-License-Identifier: MIT
#include "actors/watch_router.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <sstream>

#include "actors/json.hpp"
#include "net/base/log.hpp"

namespace networkd {

namespace {

constexpr const char* who = "watch-router";

using clock = std::chrono::steady_clock;

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

bool watch_router_state::synced_all() const {
  if (!cfg.client)
    return true;
  return synced.size() >= cfg.prefixes.size();
}

std::string watch_router_state::not_ready_reason(clock::time_point now) const {
  if (!cfg.client)
    return {};
  if (shutting_down)
    return "stopping";
  if (!synced_all()) {
    // The last error of a watch that has not read yet says why (a TLS or
    // auth failure would otherwise only be in the log).
    std::string why;
    for (auto& [prefix, w] : watches)
      if (synced.count(prefix) == 0 && !w.last_error.empty()) {
        why = ": " + prefix + ": " + w.last_error;
        break;
      }
    return "first etcd read pending (" + std::to_string(synced.size()) + " of "
           + std::to_string(cfg.prefixes.size()) + " watches synced)" + why;
  }
  for (auto& [prefix, since] : stalled)
    if (now - since >= watch_grace) {
      auto w = watches.find(prefix);
      std::string why = w == watches.end() ? "" : w->second.last_error;
      auto ms
        = std::chrono::duration_cast<std::chrono::milliseconds>(now - since);
      return "watch " + prefix + " not watching for "
             + std::to_string(ms.count()) + " ms"
             + (why.empty() ? "" : ": " + why);
    }
  return {};
}

bool watch_router_state::count_key(const keys::common& c) {
  auto fam = config::to_string(c.fam);
  auto& keys = live[fam];
  std::string key{c.key};
  if (c.deleted) {
    keys.erase(key);
    return true;
  }
  if (keys.size() < cfg.max_keys_per_family || keys.count(key) > 0) {
    keys.insert(std::move(key));
    return true;
  }
  if (over_limit[fam]++ == 0)
    NWD_LOG_ERROR(who,
                  "family {} has {} keys (limit {}): {} and any further "
                  "new key of it are ignored",
                  fam, keys.size(), cfg.max_keys_per_family, c.key);
  return false;
}

bool watch_router_state::reject(const keys::common& c, int64_t revision) {
  auto& e = rejected[std::string{c.key}];
  bool changed = e.reason != c.error || e.code != c.error_code;
  e.fam = c.fam;
  e.code = c.error_code;
  e.reason = c.error;
  e.revision = revision;
  return changed;
}

void watch_router_state::accept(const std::string& key) {
  rejected.erase(key);
}

namespace {

void write_rejected(json_writer& j, const rejected_entry& r,
                    const std::string& key) {
  j.begin_object();
  j.kv("key", key);
  j.kv("code", r.code);
  j.kv("reason", r.reason);
  j.kv("revision", r.revision);
  j.end_object();
}

} // namespace

std::string watch_router_state::render() const {
  json_writer j;
  j.begin_object();
  j.kv("name", name);
  j.kv("state", shutting_down  ? "stopping"
                : synced_all() ? "running"
                               : "syncing");
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
  for (auto& [key, r] : rejected)
    write_rejected(j, r, key);
  j.end_array();
  j.object("keys");
  for (auto& [fam, keys] : live)
    j.kv(fam.c_str(), static_cast<int64_t>(keys.size()));
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
  j.end_object();
  j.end_object();
  return j.str();
}

std::string watch_router_state::rejected_vips() const {
  json_writer j;
  j.begin_array();
  for (auto& [key, r] : rejected)
    if (r.fam == config::family::vip)
      write_rejected(j, r, key);
  j.end_array();
  return j.str();
}

std::string watch_router_state::metrics() const {
  std::ostringstream out;
  out << "# HELP networkd_etcd_events_total Key events applied\n"
      << "# TYPE networkd_etcd_events_total counter\n"
      << "networkd_etcd_events_total " << events << "\n"
      << "# HELP networkd_rejected_keys Keys whose value was rejected\n"
      << "# TYPE networkd_rejected_keys gauge\n"
      << "networkd_rejected_keys " << rejected.size() << "\n"
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

/// Resolves the knobs set into the values in force, acts on the router's
/// own slices and hands the whole to every listener (each reads its
/// slice). Also sent once when the knobs are first read.
void apply_knob_values(watch_router_pointer self) {
  auto& st = self->state;
  auto v = config::resolve_knobs(st.knobs);
  auto old = std::exchange(st.knob_values, v);
  if (v.log_level != old.log_level)
    log::set_level(v.log_level.empty() ? st.cfg.log_level : v.log_level);
  if (v.audit.nat != old.audit.nat && st.cfg.nat)
    self->send(st.cfg.nat, atom::audit_v,
               static_cast<int64_t>(v.audit.nat.count()));
  for (auto& l : st.cfg.listeners)
    self->send(l, v);
}

void apply_knob(watch_router_pointer self,
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
  // The first values in force go out once the whole first read of the
  // knobs is applied (the session grants its lease with them).
  if (!st.cfg.client || st.synced.count(std::string{config::knobs_prefix}))
    apply_knob_values(self);
}

// -- routing: each family to the actors that take it ------------------------

using config::family;

/// The families the VIP registry takes.
template <family F>
void to_registry(watch_router_pointer self, keys::event<F>& c) {
  if (self->state.cfg.registry)
    self->send(self->state.cfg.registry, std::move(c));
}

void route(watch_router_pointer self, keys::event<family::vip>& c) {
  auto& st = self->state;
  if (c.deleted)
    st.good_vips.erase(c.key);
  else
    st.good_vips.insert(c.key);
  to_registry(self, c);
}

void route(watch_router_pointer self, keys::event<family::vip_lock>& c) {
  to_registry(self, c);
}

void route(watch_router_pointer self, keys::event<family::container_vip>& c) {
  to_registry(self, c);
}

void route(watch_router_pointer self, keys::event<family::knob>& c) {
  apply_knob(self, c);
}

void route(watch_router_pointer self, keys::event<family::acl>& c) {
  if (self->state.cfg.acl)
    self->send(self->state.cfg.acl, std::move(c));
}

/// Domains and domain servers: the DNS tables, and the leader (it mirrors
/// the cluster's own names).
template <family F>
void to_dns_and_leader(watch_router_pointer self, keys::event<F>& c) {
  auto& st = self->state;
  if (st.cfg.leader)
    self->send(st.cfg.leader, c);
  if (st.cfg.dns)
    self->send(st.cfg.dns, std::move(c));
}

void route(watch_router_pointer self, keys::event<family::domain>& c) {
  to_dns_and_leader(self, c);
}

void route(watch_router_pointer self, keys::event<family::domain_servers>& c) {
  to_dns_and_leader(self, c);
}

/// The families only the leader reads.
template <family F>
void route(watch_router_pointer self, keys::event<F>& c) {
  if (self->state.cfg.leader)
    self->send(self->state.cfg.leader, std::move(c));
}

void route(watch_router_pointer, keys::unknown_event&) {
  // Rejected before routing (a delete of such a key changes nothing).
}

void apply_change(watch_router_pointer self, keys::any_event& e,
                  int64_t revision) {
  auto& st = self->state;
  ++st.events;
  auto c = keys::common_of(e);
  // The leader's streamrouter and tinydns publishers read rejected VIP
  // keys too (a pool VIP with a broken value is rewritten).
  if (auto* v = std::get_if<keys::event<family::vip>>(&e);
      v != nullptr && st.cfg.leader)
    self->send(st.cfg.leader, *v);
  if (c.rejected) {
    if (st.reject(c, revision)) {
      bool kept
        = c.fam == family::vip && st.good_vips.count(std::string{c.key}) > 0;
      NWD_LOG_WARN(who, "rejected key: {}{}{}{}{}{}", c.error,
                   kept ? " (its last good value stays in force)" : "",
                   log::field("key", c.key), log::field("code", c.error_code),
                   log::field("revision", std::to_string(revision)),
                   log::field("reason", c.error));
    }
    return;
  }
  st.accept(std::string{c.key});
  std::visit([self](auto& ev) { route(self, ev); }, e);
}

void on_batch(watch_router_pointer self, key_batch& b) {
  auto& st = self->state;
  for (auto& raw : b.events) {
    // An exact-key watch is a prefix watch: drop longer keys it sees.
    if (!keys::belongs_to_watch(b.prefix, raw.key))
      continue;
    auto e = keys::parse(raw);
    if (st.count_key(keys::common_of(e)))
      apply_change(self, e, raw.revision);
  }
  auto& w = st.watches[b.prefix];
  w.prefix = b.prefix;
  w.revision = std::max(w.revision, b.revision);
  if (!b.snapshot || !st.synced.insert(b.prefix).second)
    return;
  // The listeners' first knob_values (the session grants its lease then,
  // so that a lease_ttl knob applies from the start).
  if (b.prefix == config::knobs_prefix)
    apply_knob_values(self);
  NWD_LOG_INFO(who, "watch {} synced at revision {} ({} keys)", b.prefix,
               b.revision, b.events.size());
  if (st.synced_all() && st.cfg.client) {
    NWD_LOG_INFO(who, "first full read applied: ready");
    for (auto& l : st.cfg.listeners)
      self->send(l, atom::ready_v);
  }
}

void on_report(watch_router_pointer self, watch_report& r) {
  auto& st = self->state;
  auto& w = st.watches[r.prefix];
  if (w.phase != r.phase) {
    if (r.phase == "retrying")
      NWD_LOG_WARN(who, "watch {}: retrying ({}){}{}", r.prefix, r.last_error,
                   log::field("prefix", r.prefix),
                   log::field("reason", r.last_error));
    else if (w.phase == "retrying" && r.phase == "watching")
      NWD_LOG_INFO(who, "watch {}: watching again from revision {}", r.prefix,
                   r.revision);
    else
      NWD_LOG_DEBUG(who, "watch {}: {}", r.prefix, r.phase);
  }
  if (r.phase == "watching")
    st.stalled.erase(r.prefix);
  else
    st.stalled.emplace(r.prefix, clock::now());
  auto rev = std::max(w.revision, r.revision);
  w = std::move(r);
  w.revision = rev;
}

void start_watches(watch_router_pointer self) {
  auto& st = self->state;
  auto hdl = caf::actor_cast<watch_router_actor>(self);
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

} // namespace

watch_router_actor::behavior_type watch_router(watch_router_pointer self,
                                               watch_router_config cfg) {
  self->state.cfg = std::move(cfg);
  if (self->state.cfg.registry)
    self->state.cfg.listeners.push_back(self->state.cfg.registry);
  if (self->state.cfg.client)
    start_watches(self);
  return {
    [self](atom::status) { return self->state.render(); },
    [self](atom::ready, atom::status) {
      return self->state.not_ready_reason(clock::now());
    },
    [self](atom::tick, atom::status) { return self->state.metrics(); },
    [self](atom::vips) { return self->state.rejected_vips(); },
    [self](atom::reload) {
      for (auto& w : self->state.watchers)
        w->resync();
    },
    [self](key_batch& b) { on_batch(self, b); },
    [self](watch_report& r) { on_report(self, r); },
    [self](atom::shutdown) { self->state.shutting_down = true; },
  };
}

} // namespace networkd
