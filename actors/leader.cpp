// SPDX-License-Identifier: MIT
#include "actors/leader.hpp"

#include <caf/all.hpp>

#include <cstdio>

#include "actors/json.hpp"
#include "net/base/log.hpp"

namespace networkd {

namespace {

constexpr const char* who = "leader";
using leader_pointer = leader_actor::stateful_pointer<leader_state>;

void publish_plan(leader_pointer self);

void campaign(leader_pointer self) {
  auto& st = self->state;
  if (st.lease_id == 0 || st.campaigning)
    return;
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%llx",
                static_cast<unsigned long long>(st.lease_id));
  auto key = std::string{config::leader_prefix} + buf;
  if (key == st.my_key && st.votes.has(key))
    return;
  st.my_key = key;
  st.campaigning = true;
  self
    ->request(st.cfg.etcd, std::chrono::seconds(10), atom::put_v, key,
              st.cfg.hostname, st.lease_id)
    .then([self](bool) { self->state.campaigning = false; },
          [self](caf::error& err) {
            auto& st = self->state;
            st.campaigning = false;
            st.last_error = self->system().render(err);
            self->delayed_send(self, std::chrono::seconds(1), atom::tick_v);
          });
}

void leadership_changed(leader_pointer self) {
  auto& st = self->state;
  bool now = st.leading();
  if (now == st.was_leader)
    return;
  st.was_leader = now;
  if (now) {
    ++st.terms;
    auto me = st.votes.find(st.my_key);
    NWD_LOG_INFO(who, "this node leads (term {})",
                 me ? me->create_revision : 0);
    // Recompute from scratch: everything we want is compared again (after
    // the transactions still in flight, if any, have answered).
    publish_plan(self);
  } else {
    auto l = st.votes.leader();
    NWD_LOG_INFO(who, "leader is {}", l ? l->name : std::string{"nobody"});
  }
}

/// "KEY" or "N keys, FIRST .. LAST", for the log.
std::string describe(const publish::plan& part) {
  if (part.size() == 1)
    return part.begin()->first;
  return std::to_string(part.size()) + " keys, " + part.begin()->first + " .. "
         + part.rbegin()->first;
}

/// A committed write (nullopt: delete) of the plan. VIP keys are inputs of
/// the plan too (the streamrouter's pool VIPs): they are taken at once, not
/// when the watch brings them back, so that the next plan (a pool move
/// right after) deletes in the same transaction what this one wrote.
void committed(leader_state& st, const std::string& key,
               const std::optional<std::string>& value) {
  if (value) {
    ++st.writes;
    st.current[key] = *value;
  } else {
    ++st.deletes;
    st.current.erase(key);
  }
  auto cls = config::classify(key);
  if (cls.fam != config::family::vip)
    return;
  auto v = value ? config::parse_vip(cls.suffix, *value)
                 : result<config::vip_config>{failure{"deleted", key}};
  if (v)
    st.in.vips[key] = std::move(*v);
  else
    st.in.vips.erase(key);
}

/// Writes and deletes one part of the plan in one etcd transaction, guarded
/// by the leadership (our candidate key's create revision `term`).
void apply(leader_pointer self, publish::plan part, int64_t term) {
  auto& st = self->state;
  std::vector<std::string> keys;
  std::vector<std::string> values;
  std::vector<std::string> erase;
  for (auto& [key, value] : part) {
    if (value) {
      keys.push_back(key);
      values.push_back(*value);
    } else {
      erase.push_back(key);
    }
  }
  ++st.in_flight;
  auto done = [self, part](bool ok) {
    auto& st = self->state;
    --st.in_flight;
    if (!ok) {
      // Our view of the election is behind etcd's: the watch will tell.
      // Sending again now would only be refused again, so look again later.
      ++st.refused;
      NWD_LOG_WARN(who, "write of {} refused: no longer the leader{}{}",
                   describe(part), log::field("key", part.begin()->first),
                   log::field("reason", "not_leader"));
      self->delayed_send(self, std::chrono::seconds(1), atom::tick_v);
      return;
    }
    ++st.transactions;
    for (auto& [key, value] : part) {
      committed(st, key, value);
      if (value)
        NWD_LOG_INFO(who, "published {} = {}", key, *value);
      else
        NWD_LOG_INFO(who, "deleted {}", key);
    }
    // The inputs may have moved on meanwhile.
    publish_plan(self);
  };
  auto failed = [self](caf::error& err) {
    auto& st = self->state;
    --st.in_flight;
    st.last_error = self->system().render(err);
    self->delayed_send(self, std::chrono::seconds(1), atom::tick_v);
  };
  self
    ->request(st.cfg.etcd, std::chrono::seconds(10), atom::publish_v,
              std::move(keys), std::move(values), std::move(erase), st.my_key,
              term)
    .then(done, failed);
}

void publish_plan(leader_pointer self) {
  auto& st = self->state;
  // Only the leader computes the plan: a value that breaks a publisher's
  // input must not reach every node.
  if (!st.ready || !st.leading()) {
    st.wanted.clear();
    return;
  }
  st.wanted = publish::desired(st.in, st.current);
  auto me = st.votes.find(st.my_key);
  // One plan at a time: the last answer computes the plan again and sends
  // what still differs.
  if (!me || st.in_flight > 0)
    return;
  for (auto& part :
       publish::transactions(publish::changes(st.wanted, st.current)))
    apply(self, std::move(part), me->create_revision);
}

// -- what the leader tracks, by key family -----------------------------------
// Each keeps `current` and the inputs up to date and says whether the plan
// may have changed.

using config::family;

/// `current` for a key: what etcd holds there now (nullopt: nothing).
void set_current(leader_state& st, const std::string& key,
                 std::optional<std::string> text) {
  if (text)
    st.current[key] = std::move(*text);
  else
    st.current.erase(key);
}

bool track(leader_state& st, const keys::event<family::swarm_leader>& c) {
  st.in.swarm_ip = c.deleted || !c.ok ? "" : c.value.ip;
  return st.cfg.swarm;
}

bool track(leader_state& st, const keys::event<family::deployd_leader>& c) {
  st.in.deployd_ip = c.deleted || !c.ok ? "" : c.value.ip;
  return st.cfg.deployd;
}

bool track(leader_state& st, const keys::event<family::domain>& c) {
  if (c.suffix != "swarm.lain" && c.suffix != "deployd.lain"
      && c.suffix != "webrouter.lain")
    return false;
  set_current(st, c.key,
              c.deleted || !c.ok
                ? std::nullopt
                : std::optional<std::string>{
                  publish::render_domain(c.value.ips, c.value.type)});
  return true;
}

bool track(leader_state& st, const keys::event<family::domain_servers>& c) {
  if (c.suffix != "lain" && c.suffix != st.cfg.cluster_domain)
    return false;
  set_current(st, c.key,
              c.deleted || !c.ok ? std::nullopt
                                 : std::optional<std::string>{
                                   publish::render_servers(c.value.servers)});
  return true;
}

bool track(leader_state& st, const keys::event<family::tinydns_fqdns>& c) {
  set_current(st, c.key,
              c.deleted || !c.ok ? std::nullopt
                                 : std::optional<std::string>{c.value});
  return true;
}

bool track(leader_state& st, const keys::event<family::app_endpoint>& c) {
  if (c.deleted || !c.ok)
    st.in.endpoints.erase(c.key);
  else
    st.in.endpoints[c.key] = c.value;
  return true;
}

bool track(leader_state& st, const keys::event<family::vip>& c) {
  if (c.deleted) {
    st.in.vips.erase(c.key);
    set_current(st, c.key, std::nullopt);
  } else if (!c.ok) {
    // A broken value is in etcd: a pool VIP gets rewritten.
    st.in.vips.erase(c.key);
    set_current(st, c.key, std::string{});
  } else {
    st.in.vips[c.key] = c.value;
    set_current(st, c.key, publish::render_vip(c.value));
  }
  return true;
}

bool track(leader_state& st, const keys::event<family::vippool>& c) {
  if (c.deleted || !c.ok)
    st.in.pool.clear();
  else
    st.in.pool = c.value;
  return st.cfg.streamrouter;
}

/// Tracks one key event; publishes the plan again when it may change.
template <class Event>
void tracked(leader_pointer self, const Event& c) {
  if (track(self->state, c))
    publish_plan(self);
}

} // namespace

std::string leader_state::render() const {
  json_writer j;
  j.begin_object();
  j.kv("name", "leader");
  auto l = votes.leader();
  j.kv("state", leading()        ? "leader"
                : my_key.empty() ? "waiting for a lease"
                                 : "follower");
  j.kv("leader", l ? l->name : std::string{});
  j.kv("term", l ? l->create_revision : int64_t{0});
  j.kv("candidates", static_cast<uint64_t>(votes.size()));
  j.kv("candidate_key", my_key);
  j.kv("last_error", last_error);
  // What this node publishes while it leads (empty on followers): key →
  // value, null for a key to delete.
  j.object("publishing");
  for (auto& [key, value] : wanted) {
    j.key(key.c_str());
    if (value)
      j.value(*value);
    else
      j.null();
  }
  j.end_object();
  if (ports) {
    auto s = ports->status();
    j.object("streamrouter_ports");
    j.kv("known", s.have);
    j.begin_array("ports");
    for (auto p : s.ports)
      j.value(static_cast<uint64_t>(p));
    j.end_array();
    j.kv("polls", s.polls);
    j.kv("failures", s.failures);
    j.kv("last_error", s.last_error);
    j.end_object();
  }
  j.object("counters");
  j.kv("terms", terms);
  j.kv("transactions", transactions);
  j.kv("writes", writes);
  j.kv("deletes", deletes);
  j.kv("refused", refused);
  j.end_object();
  j.end_object();
  return j.str();
}

leader_actor::behavior_type
leader_duties(leader_actor::stateful_pointer<leader_state> self,
              leader_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.in.cluster_domain = st.cfg.cluster_domain;
  st.in.swarm = st.cfg.swarm;
  st.in.deployd = st.cfg.deployd;
  st.in.webrouter = st.cfg.webrouter;
  st.in.tinydns = st.cfg.tinydns;
  st.in.streamrouter = st.cfg.streamrouter;
  if (st.cfg.streamrouter && !st.cfg.lainlet_endpoint.empty()) {
    // A weak handle: the poller lives in the state and must not keep the
    // actor alive.
    caf::weak_actor_ptr me = self->ctrl();
    st.ports = std::make_shared<lainlet::ports_poller>(
      st.cfg.lainlet_endpoint, st.cfg.ports_interval,
      [me](const std::vector<uint16_t>& p) {
        if (auto strong = me.lock())
          caf::anon_send(caf::actor_cast<leader_actor>(strong), atom::ports_v,
                         p);
      });
  }
  return {
    [self](atom::status) { return self->state.render(); },
    [self](keepalive_info& k) {
      auto& st = self->state;
      if (k.id == st.lease_id)
        return;
      st.lease_id = k.id;
      if (k.id == 0) {
        // Our candidate key went with the lease.
        st.votes.erase(st.my_key);
        st.my_key.clear();
        leadership_changed(self);
        return;
      }
      campaign(self);
    },
    [self](keys::event<family::leader_candidate>& c) {
      auto& st = self->state;
      if (c.deleted)
        st.votes.erase(c.key);
      else
        st.votes.put(c.key, c.value, c.create_revision);
      leadership_changed(self);
      if (c.deleted && c.key == st.my_key) {
        st.my_key.clear();
        campaign(self);
      }
    },
    [self](keys::event<family::vip>& c) { tracked(self, c); },
    [self](keys::event<family::domain>& c) { tracked(self, c); },
    [self](keys::event<family::domain_servers>& c) { tracked(self, c); },
    [self](keys::event<family::vippool>& c) { tracked(self, c); },
    [self](keys::event<family::swarm_leader>& c) { tracked(self, c); },
    [self](keys::event<family::deployd_leader>& c) { tracked(self, c); },
    [self](keys::event<family::app_endpoint>& c) { tracked(self, c); },
    [self](keys::event<family::tinydns_fqdns>& c) { tracked(self, c); },
    [self](atom::ready) {
      self->state.ready = true;
      publish_plan(self);
    },
    [](config::knob_values&) {}, // no knob is the leader's
    [self](atom::ports, std::vector<uint16_t>& p) {
      NWD_LOG_INFO(who, "streamrouter ports from lainlet: {} ports", p.size());
      self->state.in.ports = std::move(p);
      publish_plan(self);
    },
    [self](atom::tick) {
      campaign(self);
      publish_plan(self);
    },
  };
}

} // namespace networkd
