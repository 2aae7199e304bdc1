// SPDX-License-Identifier: MIT
// The session without etcd (deterministic scheduler, a scripted lease
// worker): first grant after the knobs, renewals on the timer, a lease
// gone on the server, shutdown and revoke, and what readiness says.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <memory>
#include <vector>

#include "actors/session.hpp"
#include "tests/support/actor_fixture.hpp"

using namespace networkd;
using namespace std::chrono_literals;

namespace {

/// What the scripted worker was asked and answers.
struct script {
  std::vector<int64_t> grants;     ///< TTLs asked
  std::vector<int64_t> keepalives; ///< lease ids renewed
  std::vector<int64_t> revokes;    ///< lease ids revoked
  int64_t next_id = 0x42;
  int64_t keepalive_ttl = 6; ///< TTL a keep-alive answers (0: gone)
};

session_worker_actor::behavior_type
scripted_worker(session_worker_actor::pointer, std::shared_ptr<script> s) {
  return {
    [s](atom::grant, int64_t ttl) {
      s->grants.push_back(ttl);
      return lease_info{s->next_id++, ttl};
    },
    [s](atom::keepalive, int64_t id) {
      s->keepalives.push_back(id);
      keepalive_info k;
      k.id = id;
      k.ttl = s->keepalive_ttl;
      k.sent_at_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                       .count();
      return k;
    },
    [s](atom::revoke, int64_t id) {
      s->revokes.push_back(id);
      return true;
    },
  };
}

/// A registry that records the lease views it is told.
vip_registry_actor::behavior_type
lease_recorder(vip_registry_actor::pointer,
               std::shared_ptr<std::vector<keepalive_info>> heard) {
  using config::family;
  return {
    [](atom::status) { return std::string{"{}"}; },
    [](config::knob_values&) {},
    [](atom::ready) {},
    [](keys::event<family::vip>&) {},
    [](keys::event<family::vip_lock>&) {},
    [](keys::event<family::container_vip>&) {},
    [heard](keepalive_info& k) { heard->push_back(k); },
    [](atom::vips) { return std::string{"[]"}; },
    [](atom::tick, atom::status) { return std::string{}; },
    [](atom::publish) {},
    [](atom::fence, uint64_t) {},
    [](atom::restart, std::string&) {},
    [](atom::shutdown) { return true; },
  };
}

struct fixture : test::actor_fixture {
  std::shared_ptr<script> worker_script = std::make_shared<script>();
  std::shared_ptr<std::vector<keepalive_info>> heard
    = std::make_shared<std::vector<keepalive_info>>();
  session_actor session;

  fixture() {
    session_config sc;
    sc.worker = sys.spawn(scripted_worker, worker_script);
    sc.registry = sys.spawn(lease_recorder, heard);
    session = sys.spawn(networkd::session, sc);
    run();
  }

  ~fixture() {
    caf::anon_send_exit(session, caf::exit_reason::user_shutdown);
    run();
  }

  template <class... Ts>
  std::string ask(Ts... xs) {
    self->send(session, xs...);
    run();
    std::string out;
    self->receive([&](std::string& s) { out = std::move(s); });
    return out;
  }

  void knobs(int64_t ttl_s) {
    auto v = config::default_knobs();
    v.lease.ttl_s = ttl_s;
    self->send(session, v);
    run();
  }
};

} // namespace

TEST_CASE_METHOD(fixture,
                 "the lease is granted once the knobs are read with their TTL",
                 "[session]") {
  CHECK(worker_script->grants.empty());
  CHECK(ask(atom::ready_v, atom::status_v) == "etcd lease none");
  knobs(7);
  REQUIRE(worker_script->grants == std::vector<int64_t>{7});
  REQUIRE(heard->size() == 1);
  CHECK(heard->back().id == 0x42);
  CHECK(heard->back().ttl == 7);
  CHECK(ask(atom::ready_v, atom::status_v).empty());
  // Later knobs change the TTL of the next grant only.
  knobs(9);
  CHECK(worker_script->grants.size() == 1);
  rapidjson::Document doc;
  doc.Parse(ask(atom::status_v).c_str());
  REQUIRE(doc.IsObject());
  CHECK(std::string{doc["lease"]["id"].GetString()} == "42");
  CHECK(std::string{doc["lease"]["state"].GetString()} == "alive");
}

TEST_CASE_METHOD(fixture, "the keep-alive timer renews and tells the registry",
                 "[session]") {
  knobs(6);
  REQUIRE(heard->size() == 1);
  // TTL 6 s, margin 500 ms: a renewal every TTL / 3.
  advance(1500ms);
  CHECK(worker_script->keepalives.empty());
  advance(500ms);
  REQUIRE(worker_script->keepalives == std::vector<int64_t>{0x42});
  REQUIRE(heard->size() == 2);
  CHECK(heard->back().id == 0x42);
  advance(2s);
  CHECK(worker_script->keepalives.size() == 2);
}

TEST_CASE_METHOD(fixture,
                 "a lease gone on the server is lost at once and granted anew",
                 "[session]") {
  knobs(6);
  worker_script->keepalive_ttl = 0;
  advance(2500ms);
  REQUIRE(worker_script->keepalives.size() == 1);
  // The registry hears the loss (id 0), then the new lease.
  REQUIRE(heard->size() == 3);
  CHECK(heard->at(1).id == 0);
  CHECK(heard->at(2).id == 0x43);
  CHECK(worker_script->grants.size() == 2);
}

TEST_CASE_METHOD(fixture, "shutdown revokes the lease and grants no other",
                 "[session]") {
  knobs(6);
  self->send(session, atom::shutdown_v);
  self->send(session, atom::revoke_v);
  run();
  bool revoked = false;
  self->receive([&](bool ok) { revoked = ok; });
  CHECK(revoked);
  CHECK(worker_script->revokes == std::vector<int64_t>{0x42});
  advance(10s);
  CHECK(worker_script->grants.size() == 1);
  CHECK(worker_script->keepalives.empty());
}

TEST_CASE("the lease's readiness: granted and inside its local deadline",
          "[session]") {
  session_state st;
  CHECK(st.not_ready_reason({}).empty()); // no session: nothing to wait for
  test::actor_fixture f;
  st.cfg.worker = f.sys.spawn(scripted_worker, std::make_shared<script>());
  auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  CHECK(st.not_ready_reason(t0).rfind("etcd lease none", 0) == 0);
  st.lease_state = "alive";
  st.lease.renewed(0x42, 6, t0);
  CHECK(st.not_ready_reason(t0 + 1s).empty());
  CHECK(st.view(t0 + 1s).id == 0x42);
  // Past the local deadline (TTL 6 s less the margin) without a renewal:
  // etcd is unreachable or frozen.
  CHECK(st.not_ready_reason(t0 + 6s).rfind("etcd lease past", 0) == 0);
  CHECK(st.view(t0 + 6s).id == 0);
  st.lease_state = "lost";
  st.lease_error = "lease not found";
  CHECK(st.not_ready_reason(t0 + 7s) == "etcd lease lost: lease not found");
  caf::anon_send_exit(st.cfg.worker, caf::exit_reason::user_shutdown);
  f.run();
}
