// SPDX-License-Identifier: MIT
#include "actors/leader.hpp"

#include <caf/all.hpp>

#include <cstdio>

#include "actors/json.hpp"
#include "net/log.hpp"

namespace networkd {

namespace {

constexpr const char* who = "leader";
using leader_pointer = leader_actor::stateful_pointer<leader_state>;

std::string domain_value(const std::string& ip) {
  return "{\"ips\":[\"" + ip + "\"],\"type\":\"\"}";
}

void publish(leader_pointer self);

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
    // Recompute from scratch: everything we want is compared again.
    st.in_flight.clear();
    publish(self);
  } else {
    auto l = st.votes.leader();
    NWD_LOG_INFO(who, "leader is {}", l ? l->name : std::string{"nobody"});
  }
}

void publish(leader_pointer self) {
  auto& st = self->state;
  if (!st.leading())
    return;
  auto me = st.votes.find(st.my_key);
  if (!me)
    return;
  for (auto& [domain, ip] : st.wanted) {
    if (ip.empty() || st.current[domain] == ip || st.in_flight[domain])
      continue;
    st.in_flight[domain] = true;
    auto key = std::string{config::domains_prefix} + domain;
    auto d = domain;
    auto value = ip;
    self
      ->request(st.cfg.etcd, std::chrono::seconds(10), atom::publish_v, key,
                domain_value(ip), st.my_key, me->create_revision)
      .then(
        [self, d, value](bool ok) {
          auto& st = self->state;
          st.in_flight[d] = false;
          if (ok) {
            ++st.writes;
            st.current[d] = value;
            NWD_LOG_INFO(who, "published {} = {}", d, value);
          } else {
            ++st.refused;
            NWD_LOG_WARN(who, "write of {} refused: no longer the leader", d);
          }
        },
        [self, d](caf::error& err) {
          auto& st = self->state;
          st.in_flight[d] = false;
          st.last_error = self->system().render(err);
          self->delayed_send(self, std::chrono::seconds(1), atom::tick_v);
        });
  }
}

} // namespace

std::string leader_state::render() const {
  json_writer j;
  j.begin_object();
  j.kv("name", "leader");
  auto l = votes.leader();
  j.kv("state", leading()      ? "leader"
                : my_key.empty() ? "waiting for a lease"
                                 : "follower");
  j.kv("leader", l ? l->name : std::string{});
  j.kv("term", l ? l->create_revision : int64_t{0});
  j.kv("candidates", static_cast<uint64_t>(votes.size()));
  j.kv("candidate_key", my_key);
  j.kv("last_error", last_error);
  j.object("publishing");
  for (auto& [domain, ip] : wanted)
    j.kv(domain.c_str(), ip);
  j.end_object();
  j.object("counters");
  j.kv("terms", terms);
  j.kv("writes", writes);
  j.kv("refused", refused);
  j.end_object();
  j.end_object();
  return j.str();
}

leader_actor::behavior_type
leader_duties(leader_actor::stateful_pointer<leader_state> self,
              leader_config cfg) {
  self->state.cfg = std::move(cfg);
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
    [self](key_change& c) {
      auto& st = self->state;
      switch (c.fam) {
        case config::family::leader_candidate:
          if (c.deleted)
            st.votes.erase(c.key);
          else
            st.votes.put(c.key, c.text, c.create_revision);
          leadership_changed(self);
          if (c.deleted && c.key == st.my_key) {
            st.my_key.clear();
            campaign(self);
          }
          return;
        case config::family::swarm_leader:
          if (st.cfg.swarm)
            st.wanted["swarm.lain"] = c.deleted ? "" : c.leader->ip;
          break;
        case config::family::deployd_leader:
          if (st.cfg.deployd)
            st.wanted["deployd.lain"] = c.deleted ? "" : c.leader->ip;
          break;
        case config::family::domain: {
          auto name = c.key.substr(config::domains_prefix.size());
          if (name != "swarm.lain" && name != "deployd.lain")
            return;
          st.current[name] = !c.deleted && c.domain && c.domain->ips.size() == 1
                               ? c.domain->ips[0]
                               : "";
          break;
        }
        default:
          return;
      }
      publish(self);
    },
    [](atom::ready) {},
    [self](atom::tick) {
      campaign(self);
      publish(self);
    },
  };
}

} // namespace networkd
