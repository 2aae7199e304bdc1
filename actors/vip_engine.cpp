// SPDX-License-Identifier: MIT
#include "actors/vip_engine.hpp"

#include <algorithm>
#include <map>
#include <set>

#include <caf/all.hpp>

#include "actors/errors.hpp"
#include "actors/json.hpp"
#include "net/base/log.hpp"
#include "net/etcd/vip_lock.hpp"

namespace networkd {

namespace {

caf::error to_error(const failure& f) {
  return caf::make_error(from_failure_code(f.code), f.to_string());
}

} // namespace

void etcd_worker_state::take_locks() {
  flush_scheduled = false;
  if (locks.empty())
    return;
  auto batch = std::move(locks);
  locks.clear();
  std::vector<vip::lock_ask> asks;
  asks.reserve(batch.size());
  for (auto& p : batch)
    asks.push_back(p.ask);
  auto answers = vip::take_locks(*client, asks);
  ++lock_batches;
  for (size_t i = 0; i < batch.size(); ++i) {
    if (answers[i])
      batch[i].rp.deliver(lock_result{answers[i]->ours, answers[i]->holder,
                                      answers[i]->revision});
    else
      batch[i].rp.deliver(to_error(answers[i].error()));
  }
}

etcd_worker_actor::behavior_type
etcd_worker(etcd_worker_actor::stateful_pointer<etcd_worker_state> self,
            std::shared_ptr<etcd::client> c) {
  self->state.client = c;
  // Lock requests wait for the tick queued behind the requests already in
  // the mailbox, so that locks asked together share round trips. Every
  // other request takes the waiting locks first: this worker's effects
  // stay in the order they were asked.
  return {
    [self](atom::lock, std::string& key, std::string& value,
           int64_t lease) -> caf::result<lock_result> {
      auto& st = self->state;
      st.locks.push_back(
        {vip::lock_ask{std::move(key), std::move(value), lease},
         self->make_response_promise<lock_result>()});
      if (!st.flush_scheduled) {
        st.flush_scheduled = true;
        self->send(self, atom::tick_v);
      }
      return st.locks.back().rp;
    },
    [self](atom::tick) { self->state.take_locks(); },
    [self, c](atom::release, const std::string& key,
              const std::string& value) -> caf::result<bool> {
      self->state.take_locks();
      etcd::txn_request req;
      req.compares.push_back({key, etcd::compare::target::value,
                              etcd::compare::op::equal, value, 0});
      req.success.push_back({etcd::txn_op::kind::erase, key, {}, 0});
      auto r = c->txn(req);
      if (!r)
        return to_error(r.error());
      return r->succeeded;
    },
    [self, c](atom::put, const std::string& key, const std::string& value,
              int64_t lease) -> caf::result<bool> {
      self->state.take_locks();
      auto r = c->put(key, value, lease);
      if (!r)
        return to_error(r.error());
      return true;
    },
    [self, c](atom::put, const std::vector<std::string>& keys,
              const std::vector<std::string>& values,
              int64_t lease) -> caf::result<bool> {
      self->state.take_locks();
      etcd::txn_request req;
      for (size_t i = 0; i < keys.size() && i < values.size(); ++i)
        if (values[i].empty())
          req.success.push_back({etcd::txn_op::kind::erase, keys[i], {}, 0});
        else
          req.success.push_back(
            {etcd::txn_op::kind::put, keys[i], values[i], lease});
      auto r = c->txn(req);
      if (!r)
        return to_error(r.error());
      return r->succeeded;
    },
    [self, c](atom::erase, const std::string& key) -> caf::result<bool> {
      self->state.take_locks();
      auto r = c->erase(key);
      if (!r)
        return to_error(r.error());
      return r->deleted > 0;
    },
    [self, c](atom::publish, const std::vector<std::string>& keys,
              const std::vector<std::string>& values,
              const std::vector<std::string>& erase, const std::string& guard,
              int64_t rev) -> caf::result<bool> {
      self->state.take_locks();
      etcd::txn_request req;
      req.compares.push_back({guard,
                              etcd::compare::target::create_revision,
                              etcd::compare::op::equal,
                              {},
                              rev});
      for (size_t i = 0; i < keys.size() && i < values.size(); ++i)
        req.success.push_back({etcd::txn_op::kind::put, keys[i], values[i], 0});
      for (auto& key : erase)
        req.success.push_back({etcd::txn_op::kind::erase, key, {}, 0});
      auto r = c->txn(req);
      if (!r)
        return to_error(r.error());
      return r->succeeded;
    },
  };
}

spread_writer_actor::behavior_type
spread_writer(spread_writer_actor::stateful_pointer<spread_writer_state> self,
              etcd_worker_actor etcd) {
  self->state.etcd = std::move(etcd);
  return {
    [self](atom::put, std::string& key, std::string& value, int64_t lease) {
      auto& st = self->state;
      if (lease != st.lease) {
        // Keys of an older lease are gone with it.
        st.pending.clear();
        st.lease = lease;
      }
      st.pending[key] = std::move(value);
      if (!st.flush_scheduled) {
        st.flush_scheduled = true;
        self->delayed_send(self, std::chrono::milliseconds(20), atom::tick_v);
      }
    },
    [self](atom::tick) {
      auto& st = self->state;
      st.flush_scheduled = false;
      if (st.in_flight || st.pending.empty())
        return;
      std::vector<std::string> keys;
      std::vector<std::string> values;
      while (!st.pending.empty() && keys.size() < 100) {
        auto i = st.pending.begin();
        keys.push_back(i->first);
        values.push_back(std::move(i->second));
        st.pending.erase(i);
      }
      st.in_flight = true;
      auto lease = st.lease;
      self
        ->request(st.etcd, std::chrono::seconds(10), atom::put_v, keys, values,
                  lease)
        .then(
          [self](bool) {
            auto& st = self->state;
            st.in_flight = false;
            ++st.batches;
            if (!st.pending.empty()) {
              st.flush_scheduled = true;
              self->send(self, atom::tick_v);
            }
          },
          [self, keys, values, lease](caf::error& err) {
            auto& st = self->state;
            st.in_flight = false;
            // Keys on a lease etcd no longer has can never be written: the
            // holders write theirs again on the next lease.
            bool gone = err == errc::lease_lost;
            NWD_LOG_WARN("vip-engine", "spreading keys not written: {}{}",
                         self->system().render(err),
                         gone ? " (dropped: their lease is gone)" : "");
            if (gone && lease == st.lease)
              st.pending.clear();
            // Retry what no newer value replaced, unless the lease moved on.
            if (lease == st.lease && !gone)
              for (size_t i = 0; i < keys.size(); ++i)
                st.pending.emplace(keys[i], values[i]);
            if (!st.flush_scheduled) {
              st.flush_scheduled = true;
              self->delayed_send(self, std::chrono::seconds(1), atom::tick_v);
            }
          });
    },
  };
}

void link_worker_state::flush() {
  flush_scheduled = false;
  auto all = std::move(queued);
  queued.clear();
  for (size_t at = 0; at < all.size();) {
    // One run: changes of the same kind (adds of the same lifetime).
    size_t end = at + 1;
    while (end < all.size() && all[end].add == all[at].add
           && (!all[at].add || all[end].valid_s == all[at].valid_s))
      ++end;
    std::vector<std::string> ips;
    for (size_t i = at; i < end; ++i)
      ips.push_back(all[i].ip);
    ++batches;
    if (!cfg.addresses) {
      for (size_t i = at; i < end; ++i)
        all[i].rp.deliver(
          caf::make_error(errc::link_failure, "netlink unavailable"));
    } else if (all[at].add) {
      auto failed = cfg.addresses->add_all(
        cfg.interface, ips,
        static_cast<uint32_t>(std::max<int64_t>(all[at].valid_s, 1)));
      std::map<std::string, std::string> why;
      for (auto& [ip, f] : failed)
        why.emplace(ip, f.to_string());
      for (size_t i = at; i < end; ++i) {
        if (auto w = why.find(all[i].ip); w != why.end()) {
          all[i].rp.deliver(caf::make_error(errc::link_failure, w->second));
        } else {
          added.insert(all[i].ip);
          all[i].rp.deliver(true);
        }
      }
    } else {
      for (auto& ip : ips)
        added.erase(ip);
      auto done = cfg.addresses->remove_all(cfg.interface, ips);
      for (size_t i = at; i < end; ++i) {
        auto& r = done[i - at];
        if (r)
          all[i].rp.deliver(*r);
        else
          all[i].rp.deliver(
            caf::make_error(errc::link_failure, r.error().to_string()));
      }
    }
    at = end;
  }
}

namespace {

/// Sends the gratuitous ARP bursts on a thread of its own: thousands of
/// VIPs taken at once (a cold start) announce each, and the addresses of
/// the next ones must not wait behind those packets.
arp_sender_actor::behavior_type arp_sender(arp_sender_actor::pointer,
                                           link_config cfg) {
  return {
    [cfg](atom::announce, const std::string& ip,
          int64_t count) -> caf::result<bool> {
      auto r
        = cfg.announcer->announce(cfg.interface, ip, static_cast<int>(count));
      if (!r)
        return caf::make_error(errc::link_failure, r.error().to_string());
      return true;
    },
  };
}

} // namespace

link_worker_actor::behavior_type
link_worker(link_worker_actor::stateful_pointer<link_worker_state> self,
            link_config cfg) {
  self->state.cfg = std::move(cfg);
  if (self->state.cfg.announcer)
    self->state.arp
      = self->spawn<caf::detached + caf::linked>(arp_sender, self->state.cfg);
  // Adds and removals wait for the tick queued behind the requests already
  // in the mailbox, so that those asked together share system calls. Every
  // other request applies the waiting ones first: effects stay in the order
  // they were asked.
  auto ask = [self](bool add, const std::string& ip, int64_t valid_s) {
    auto& st = self->state;
    st.queued.push_back(
      {add, ip, valid_s, self->make_response_promise<bool>()});
    if (!st.flush_scheduled) {
      st.flush_scheduled = true;
      self->send(self, atom::tick_v);
    }
    return st.queued.back().rp;
  };
  return {
    [ask](atom::add, const std::string& ip, int64_t valid_s)
      -> caf::result<bool> { return ask(true, ip, valid_s); },
    [ask](atom::erase, const std::string& ip) -> caf::result<bool> {
      return ask(false, ip, 0);
    },
    [self](atom::tick) { self->state.flush(); },
    [self](atom::keepalive, int64_t valid_s) {
      auto& st = self->state;
      st.flush();
      if (!st.cfg.addresses || st.added.empty())
        return;
      // Only addresses still on the interface are extended: one the kernel
      // expired (a frozen node) or someone removed must never come back
      // from here, since adding an IPv4 address creates it when absent. Its
      // holder decides whether it returns.
      auto now = st.cfg.addresses->list(st.cfg.interface);
      if (!now) {
        NWD_LOG_WARN("vip-engine", "lifetimes not extended: {}",
                     now.error().to_string());
        return;
      }
      std::set<std::string> present;
      for (auto& a : *now)
        if (a.prefix == 32)
          present.insert(a.address);
      for (auto i = st.added.begin(); i != st.added.end();)
        if (present.count(*i) == 0)
          i = st.added.erase(i);
        else
          ++i;
      // All in one batch: a few system calls for every held VIP.
      std::vector<std::string> ips(st.added.begin(), st.added.end());
      for (auto& [ip, why] : st.cfg.addresses->add_all(
             st.cfg.interface, ips,
             static_cast<uint32_t>(std::max<int64_t>(valid_s, 1))))
        NWD_LOG_WARN("vip-engine", "lifetime of {} not extended: {}", ip,
                     why.to_string());
    },
    [self](atom::announce, const std::string& ip,
           int64_t count) -> caf::result<bool> {
      auto& st = self->state;
      st.flush(); // the address first
      if (!st.arp)
        return false;
      return self->delegate(st.arp, atom::announce_v, ip, count);
    },
    [self](atom::prune,
           const std::vector<std::string>& keep) -> caf::result<bool> {
      auto& st = self->state;
      st.flush();
      if (!st.cfg.addresses)
        return caf::make_error(errc::link_failure, "netlink unavailable");
      auto list = st.cfg.addresses->list(st.cfg.interface);
      if (!list)
        return caf::make_error(errc::link_failure, list.error().to_string());
      for (auto& a : *list) {
        if (a.prefix != 32 || a.permanent() || a.preferred_lft != 0
            || std::find(keep.begin(), keep.end(), a.address) != keep.end())
          continue;
        NWD_LOG_INFO("vip-engine", "removing leftover address {}/32 from {}",
                     a.address, st.cfg.interface);
        if (auto r = st.cfg.addresses->remove(st.cfg.interface, a.address); !r)
          return caf::make_error(errc::link_failure, r.error().to_string());
      }
      return true;
    },
  };
}

std::vector<nat::dnat_rule>
nat_manager_state::desired_on(const std::set<std::string>* addrs) const {
  std::vector<nat::dnat_rule> out;
  for (auto& [owner, o] : owners)
    if (addrs == nullptr || addrs->count(o.addr) != 0)
      out.insert(out.end(), o.rules.begin(), o.rules.end());
  return out;
}

std::string nat_manager_state::render() const {
  size_t rules = 0;
  std::set<std::string> addrs;
  for (auto& [owner, o] : owners) {
    rules += o.rules.size();
    addrs.insert(o.addr);
  }
  json_writer j;
  j.begin_object();
  j.kv("name", "nat");
  j.kv("state", "chains " + std::string{nat::prerouting_chain} + " and "
                  + nat::output_chain);
  j.kv("last_error", last_error);
  j.kv("owners", static_cast<uint64_t>(owners.size()));
  j.kv("addresses", static_cast<uint64_t>(addrs.size()));
  j.kv("rules", static_cast<uint64_t>(rules));
  j.kv("audit_every_s", static_cast<int64_t>(audit.every.count()));
  j.kv("last_repair", last_repair);
  j.object("counters")
    .kv("batches", batches)
    .kv("failures", failures)
    .kv("audits", audits)
    .kv("repairs", repairs);
  j.end_object();
  j.end_object();
  return j.str();
}

namespace {

nat::dnat_rule to_dnat(const nat_rule& r) {
  nat::dnat_rule d;
  d.vip = r.vip;
  d.proto = r.udp ? nat::protocol::udp : nat::protocol::tcp;
  d.src_port = r.src;
  d.container_ip = r.container_ip;
  d.dest_port = r.dest;
  d.comment = r.comment;
  return d;
}

nat_reader_actor::behavior_type
nat_reader(nat_reader_actor::pointer, std::shared_ptr<nat::dnat_table> table) {
  return {
    [table](atom::audit) -> caf::result<bool> {
      auto r = table->refresh();
      if (!r)
        return caf::make_error(errc::nat_failure, r.error().to_string());
      return *r;
    },
  };
}

using nat_manager_pointer
  = nat_manager_actor::stateful_pointer<nat_manager_state>;

/// After the reader replaced the trusted state: one diff of everything
/// asked for puts back what someone else removed or changed in our chains.
void audit_diff(nat_manager_pointer self) {
  auto& st = self->state;
  std::set<std::string> addrs;
  for (auto& [owner, o] : st.owners)
    addrs.insert(o.addr);
  if (addrs.empty())
    return;
  auto rep = st.table->reconcile_vips({addrs.begin(), addrs.end()},
                                      st.desired_on(nullptr));
  if (!rep) {
    ++st.failures;
    st.last_error = "audit: " + rep.error().to_string();
    NWD_LOG_WARN("nat", "DNAT audit: could not restore our rules: {}{}",
                 rep.error().to_string(),
                 log::field("reason", rep.error().to_string()));
    return;
  }
  bool retried = !st.last_error.empty();
  st.last_error.clear();
  if (rep->added + rep->deleted > 0 && retried) {
    // What a failed batch left undone (the holders retry too).
    NWD_LOG_INFO("nat",
                 "DNAT audit: applied what a failed batch left: {} "
                 "entries in, {} out",
                 rep->added, rep->deleted);
  } else if (rep->added + rep->deleted > 0) {
    ++st.repairs;
    st.last_repair = "put back " + std::to_string(rep->added)
                     + " entries, removed " + std::to_string(rep->deleted);
    NWD_LOG_WARN("nat",
                 "DNAT audit: our rules were changed outside networkd; {}{}",
                 st.last_repair, log::field("reason", "outside_change"));
  }
}

} // namespace

nat_manager_actor::behavior_type
nat_manager(nat_manager_pointer self, std::shared_ptr<nat::dnat_table> table,
            std::chrono::seconds audit_every) {
  auto& st0 = self->state;
  st0.table = table;
  st0.audit.every = audit_every;
  st0.reader = self->spawn<caf::detached + caf::linked>(nat_reader, table);
  st0.audit.arm(self);
  return {
    [self](atom::status) { return self->state.render(); },
    [self](atom::publish, const std::string& owner, const std::string& addr,
           const std::vector<nat_rule>& rules) -> caf::result<bool> {
      auto& st = self->state;
      std::vector<nat::dnat_rule> mine;
      mine.reserve(rules.size());
      for (auto& r : rules) {
        mine.push_back(to_dnat(r));
        // A rule iptables would refuse fails its request alone and leaves
        // the owner's rules as they were; it never spoils the batch.
        if (auto v = nat::validate(mine.back()); !v)
          return caf::make_error(errc::nat_failure, v.error().to_string());
        if (mine.back().vip != addr)
          return caf::make_error(errc::nat_failure,
                                 "rule for " + mine.back().vip
                                   + " published for address " + addr);
      }
      auto it = st.owners.find(owner);
      if (it != st.owners.end() && it->second.addr != addr)
        st.dirty.insert(it->second.addr); // its old rules go
      st.dirty.insert(addr);
      if (mine.empty()) {
        if (it != st.owners.end())
          st.owners.erase(it);
      } else {
        st.owners[owner] = nat_manager_state::owned{addr, std::move(mine)};
      }
      st.waiting.push_back(self->make_response_promise<bool>());
      // The flush is queued behind the requests already in the mailbox:
      // VIPs that change together share one batch.
      if (!st.flush_scheduled) {
        st.flush_scheduled = true;
        self->send(self, atom::tick_v);
      }
      return st.waiting.back();
    },
    [self](atom::prune,
           const std::vector<std::string>& keep) -> caf::result<bool> {
      auto& st = self->state;
      auto now = st.table->read();
      if (!now)
        return caf::make_error(errc::nat_failure, now.error().to_string());
      std::vector<std::string> stale;
      for (auto& e : now->entries)
        if (!e.vip.empty()
            && std::find(keep.begin(), keep.end(), e.vip) == keep.end()
            && std::find(stale.begin(), stale.end(), e.vip) == stale.end())
          stale.push_back(e.vip);
      if (stale.empty())
        return true;
      for (auto& v : stale)
        NWD_LOG_INFO("vip-engine", "removing leftover DNAT rules for {}", v);
      auto rep = st.table->reconcile_vips(stale, {});
      if (!rep)
        return caf::make_error(errc::nat_failure, rep.error().to_string());
      return true;
    },
    [self](atom::tick) {
      auto& st = self->state;
      st.flush_scheduled = false;
      if (st.dirty.empty())
        return;
      auto addrs = std::move(st.dirty);
      st.dirty.clear();
      auto waiting = std::move(st.waiting);
      st.waiting.clear();
      auto desired = st.desired_on(&addrs);
      auto started = std::chrono::steady_clock::now();
      auto rep
        = st.table->reconcile_vips({addrs.begin(), addrs.end()}, desired);
      ++st.batches;
      auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
        std::chrono::steady_clock::now() - started);
      // Slow batches are worth an operator's eye (a cold start with
      // thousands of VIPs, a kernel under load).
      if (took >= std::chrono::milliseconds(100))
        NWD_LOG_INFO("nat", "DNAT batch for {} addresses ({} rules): {} ms{}",
                     addrs.size(), desired.size(), took.count(),
                     rep ? "" : " (failed)");
      if (rep && !rep->conflicts.empty())
        for (auto& c : rep->conflicts)
          NWD_LOG_WARN("nat", "conflicting DNAT rule: {}", c);
      if (!rep) {
        ++st.failures;
        st.last_error = rep.error().to_string();
      } else {
        st.last_error.clear();
      }
      for (auto& rp : waiting) {
        if (rep)
          rp.deliver(true);
        else
          rp.deliver(
            caf::make_error(errc::nat_failure, rep.error().to_string()));
      }
    },
    [self](atom::audit, int64_t seconds) {
      self->state.audit.set(self, std::chrono::seconds{seconds});
    },
    [self](atom::audit, uint64_t generation) {
      auto& st = self->state;
      if (!st.audit.current(generation))
        return;
      if (st.audit_running) {
        // Only a timer of a new period can fire meanwhile; the running
        // audit will not arm the next one.
        st.audit.arm(self);
        return;
      }
      st.audit_running = true;
      self->request(st.reader, caf::infinite, atom::audit_v)
        .then(
          [self, generation](bool adopted) {
            auto& st = self->state;
            st.audit_running = false;
            ++st.audits;
            if (adopted)
              audit_diff(self);
            if (st.audit.current(generation))
              st.audit.arm(self);
          },
          [self, generation](caf::error& err) {
            auto& st = self->state;
            st.audit_running = false;
            NWD_LOG_WARN("nat", "DNAT audit: reading the chains failed: {}",
                         caf::to_string(err));
            if (st.audit.current(generation))
              st.audit.arm(self);
          });
    },
  };
}

} // namespace networkd
