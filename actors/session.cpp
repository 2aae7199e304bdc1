// SPDX-License-Identifier: MIT
#include "actors/session.hpp"

#include <caf/all.hpp>

#include <algorithm>
#include <sstream>

#include <fmt/format.h>

#include "actors/errors.hpp"
#include "actors/json.hpp"
#include "net/base/log.hpp"

namespace networkd {

namespace {

constexpr const char* who = "session";

using clock = std::chrono::steady_clock;

} // namespace

// -- state --------------------------------------------------------------------

std::string session_state::not_ready_reason(clock::time_point now) const {
  if (!cfg.worker)
    return {};
  if (lease_state != "alive")
    return "etcd lease " + lease_state
           + (lease_error.empty() ? "" : ": " + lease_error);
  if (!lease.alive(now))
    return "etcd lease past its local deadline (etcd unreachable)";
  return {};
}

keepalive_info session_state::view(clock::time_point now) const {
  keepalive_info k;
  if (lease_state == "alive" && lease.alive(now)) {
    k.id = lease.id();
    k.ttl = lease.ttl();
    k.sent_at_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                     lease.deadline().time_since_epoch())
                     .count();
  }
  return k;
}

std::string session_state::render(clock::time_point now) const {
  json_writer j;
  j.begin_object();
  j.kv("name", name);
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
  j.end_object();
  return j.str();
}

std::string session_state::metrics(clock::time_point now) const {
  std::ostringstream out;
  out << "# HELP networkd_lease_remaining_seconds Time before the local "
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
      << (cfg.client ? cfg.client->stats().login_failures : 0) << "\n";
  return out.str();
}

// -- behavior -----------------------------------------------------------------

namespace {

void broadcast(session_pointer self) {
  auto& st = self->state;
  auto now = clock::now();
  auto k = st.view(now);
  if (k.id != 0 && st.cfg.link) {
    auto left = std::chrono::duration_cast<std::chrono::seconds>(
                  st.lease.deadline() - now)
                  .count();
    self->send(st.cfg.link, atom::keepalive_v, std::max<int64_t>(left, 1));
  }
  if (st.cfg.registry)
    self->send(st.cfg.registry, k);
  if (st.cfg.leader && k.id != st.leader_heard) {
    st.leader_heard = k.id;
    self->send(st.cfg.leader, k);
  }
}

void grant_lease(session_pointer self);
void keepalive(session_pointer self);

void schedule_keepalive(session_pointer self, bool failed) {
  auto& lease = self->state.lease;
  // An answer that came back late renews again at once.
  auto delay = !failed && lease.late(clock::now())
                 ? lease_tracker::duration{0}
                 : lease.next_keepalive(failed);
  self->delayed_send(self, delay, atom::tick_v);
}

/// The lease is gone (logged by the caller): tell everyone, grant anew.
void lose(session_pointer self) {
  auto& st = self->state;
  st.lease.lost();
  st.lease_state = "lost";
  broadcast(self);
  grant_lease(self);
}

void grant_lease(session_pointer self) {
  auto& st = self->state;
  if (st.shutting_down || !st.cfg.worker)
    return;
  st.lease_state = "granting";
  auto sent_at = clock::now();
  self->request(st.cfg.worker, std::chrono::seconds(5), atom::grant_v, st.ttl_s)
    .then(
      [self, sent_at](lease_info& li) {
        auto& st = self->state;
        st.lease.renewed(li.id, li.ttl, sent_at);
        st.lease_state = "alive";
        st.lease_error.clear();
        auto now = clock::now();
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
        broadcast(self);
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

void on_keepalive(session_pointer self, keepalive_info& k) {
  auto& st = self->state;
  st.keepalive_in_flight = false;
  if (st.shutting_down && (k.ttl <= 0 || st.lease.id() == 0))
    return; // revoked
  if (k.ttl <= 0) {
    NWD_LOG_ERROR(who, "lease {:x} is gone on the server{}", k.id,
                  log::field("reason", "lease_gone"));
    lose(self);
    return;
  }
  auto sent = clock::time_point(std::chrono::nanoseconds(k.sent_at_ns));
  st.lease.renewed(k.id, k.ttl, sent);
  if (st.keepalive_failures > 0 && !st.lease_error.empty())
    NWD_LOG_INFO(who, "lease {:x} renewed again", k.id);
  st.lease_error.clear();
  st.lease_state = "alive";
  broadcast(self);
  schedule_keepalive(self, false);
}

void keepalive(session_pointer self) {
  auto& st = self->state;
  // Renewals go on while shutting down: the holders release their
  // addresses and rules under a live lease, and the revoke ends it.
  if (st.keepalive_in_flight || (st.shutting_down && st.lease.id() == 0))
    return;
  if (st.lease.id() == 0 || st.lease_state == "lost"
      || st.lease_state == "none") {
    grant_lease(self);
    return;
  }
  if (!st.lease.alive(clock::now())) {
    NWD_LOG_ERROR(who,
                  "lease {:x} passed its local deadline: treated as lost{}",
                  st.lease.id(), log::field("reason", "lease_deadline"));
    lose(self);
    return;
  }
  st.keepalive_in_flight = true;
  // No timeout of our own: the worker's keep-alive ends by the etcd
  // client's call deadline (2 s), and a timer here would wake the clock
  // twice per renewal for nothing (bench/idle.sh).
  self->request(st.cfg.worker, caf::infinite, atom::keepalive_v, st.lease.id())
    .then([self](keepalive_info& k) { on_keepalive(self, k); },
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

/// The lease slice of the knobs: the TTL of the next grant and the
/// fencing margin of the next renewal. The first knobs start the session.
void apply_knobs(session_pointer self, const config::knob_values& v) {
  auto& st = self->state;
  bool first = st.ttl_s == 0;
  st.ttl_s = v.lease.ttl_s;
  st.lease.set_margin(v.lease.fencing_margin);
  if (first)
    grant_lease(self);
}

caf::result<bool> revoke(session_pointer self) {
  auto& st = self->state;
  st.shutting_down = true;
  if (!st.cfg.worker || st.lease.id() == 0)
    return true;
  auto rp = self->make_response_promise<bool>();
  self
    ->request(st.cfg.worker, std::chrono::seconds(3), atom::revoke_v,
              st.lease.id())
    .then(
      [self, rp](bool) mutable {
        NWD_LOG_INFO(who, "lease revoked");
        self->state.lease.lost();
        self->state.lease_state = "none";
        rp.deliver(true);
      },
      [self, rp](caf::error& err) mutable {
        NWD_LOG_WARN(who, "lease revoke failed: {}",
                     self->system().render(err));
        rp.deliver(false);
      });
  return rp;
}

} // namespace

session_actor::behavior_type session(session_pointer self, session_config cfg) {
  self->state.cfg = std::move(cfg);
  if (self->state.cfg.worker)
    self->link_to(self->state.cfg.worker);
  return {
    [self](atom::status) { return self->state.render(clock::now()); },
    [self](config::knob_values& v) { apply_knobs(self, v); },
    [](atom::ready) {},
    [self](atom::ready, atom::status) {
      return self->state.not_ready_reason(clock::now());
    },
    [self](atom::tick, atom::status) {
      return self->state.metrics(clock::now());
    },
    [self](atom::tick) { keepalive(self); },
    [self](atom::shutdown) { self->state.shutting_down = true; },
    [self](atom::revoke) { return revoke(self); },
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
