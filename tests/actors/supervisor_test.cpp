// SPDX-License-Identifier: MIT
// The supervisor, the front of the etcd side, over a real session (with a
// scripted lease worker), watch router and VIP registry (deterministic
// scheduler): its state holds theirs, /v1/vips, readiness, and the order
// of a shutdown (holders first, then the revoke).
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <memory>

#include "actors/session.hpp"
#include "actors/supervisor.hpp"
#include "actors/vip_registry.hpp"
#include "actors/watch_router.hpp"
#include "tests/support/actor_fixture.hpp"

using namespace networkd;
using namespace std::chrono_literals;

namespace {

etcd::watch_event put(const std::string& key, const std::string& value,
                      int64_t rev) {
  etcd::watch_event ev;
  ev.what = etcd::watch_event::kind::put;
  ev.kv.key = key;
  ev.kv.value = value;
  ev.kv.mod_revision = rev;
  return ev;
}

key_batch batch(const std::string& prefix,
                std::vector<etcd::watch_event> events) {
  etcd::watch_batch b;
  for (auto& e : events)
    b.revision = std::max(b.revision, e.kv.mod_revision);
  b.events = std::move(events);
  return to_key_batch(prefix, b);
}

const std::string vips = "/lain/config/vips/";
const std::string good_vip
  = R"({"app":"web","proc":"main","ports":[{"src":"80"}]})";

/// Who did what, in order ("holder shutdown", "revoke 42").
using journal = std::shared_ptr<std::vector<std::string>>;

struct quiet_state {
  static inline const char* name = "quiet-holder";
};

vip_holder_actor::behavior_type
quiet_holder(vip_holder_actor::stateful_pointer<quiet_state>, std::string key,
             journal log) {
  return {
    [key](atom::status) {
      return "{\"name\":\"vip-holder\",\"key\":\"" + key + "\"}";
    },
    [](config::vip_config&) {},
    [](keys::event<config::family::vip_lock>&) {},
    [](keepalive_info&) {},
    [](proc_health&) {},
    [](atom::fence) {},
    [](atom::fence, uint64_t) {},
    [](atom::announce, uint64_t) {},
    [](atom::tick) {},
    [](atom::lost, std::string&) {},
    [](spread_report&) {},
    [](config::knob&) {},
    [](atom::refresh, uint64_t) {},
    [](atom::conflict, std::string&, std::string&) {},
    [log](atom::shutdown) {
      log->push_back("holder shutdown");
      return true;
    },
    [](atom::release) { return true; },
  };
}

session_worker_actor::behavior_type lease_worker(session_worker_actor::pointer,
                                                 journal log) {
  return {
    [](atom::grant, int64_t ttl) {
      return lease_info{0x42, ttl};
    },
    [](atom::keepalive, int64_t id) {
      keepalive_info k;
      k.id = id;
      k.ttl = 6;
      k.sent_at_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                       std::chrono::steady_clock::now().time_since_epoch())
                       .count();
      return k;
    },
    [log](atom::revoke, int64_t id) {
      log->push_back("revoke " + std::to_string(id));
      return true;
    },
  };
}

struct fixture : test::actor_fixture {
  journal log = std::make_shared<std::vector<std::string>>();
  vip_registry_actor registry;
  session_actor session;
  watch_router_actor router;
  supervisor_actor sup;

  fixture() {
    vip_registry_config vc;
    vc.make_vip = [l = log](caf::actor_system& s, const std::string& key) {
      return s.spawn(quiet_holder, key, l);
    };
    registry = sys.spawn(vip_registry, vc);
    session_config sc;
    sc.worker = sys.spawn(lease_worker, log);
    sc.registry = registry;
    session = sys.spawn(networkd::session, sc);
    watch_router_config wc;
    wc.registry = registry;
    wc.listeners.push_back(session);
    router = sys.spawn(watch_router, wc);
    sup = sys.spawn(supervisor,
                    supervisor_config{"node1", session, router, registry});
    run();
  }

  ~fixture() {
    for (auto a :
         {caf::actor_cast<caf::actor>(sup), caf::actor_cast<caf::actor>(router),
          caf::actor_cast<caf::actor>(session),
          caf::actor_cast<caf::actor>(registry)})
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    run();
  }

  template <class... Ts>
  rapidjson::Document ask(Ts... xs) {
    self->send(sup, xs...);
    run();
    rapidjson::Document doc;
    self->receive([&](std::string& s) { doc.Parse(s.c_str()); });
    return doc;
  }

  std::string not_ready() {
    self->send(sup, atom::ready_v, atom::status_v);
    run();
    std::string out;
    self->receive([&](std::string& s) { out = std::move(s); });
    return out;
  }
};

} // namespace

TEST_CASE("merged objects keep the first of a name and merge objects",
          "[supervisor]") {
  CHECK(merge_objects({R"({"name":"a","n":{"x":1}})",
                       R"({"name":"b","n":{"x":2,"y":3},"l":[1]})", "{broken",
                       R"([1])"})
        == R"({"name":"a","n":{"x":1,"y":3},"l":[1]})");
  CHECK(merge_objects({}) == "{}");
}

TEST_CASE_METHOD(fixture,
                 "the supervisor's state holds the lease, the watches' "
                 "rejected keys and the holders",
                 "[supervisor]") {
  CHECK(not_ready() == "etcd lease none");
  // Without etcd the router sends the knobs on the first knob key.
  self->send(router, batch("/lain/networkd/config/",
                           {put("/lain/networkd/config/lease_ttl", "6", 2)}));
  self->send(router, batch(vips, {put(vips + "10.0.0.5", good_vip, 3),
                                  put(vips + "10.0.0.6", "{", 4)}));
  run();
  CHECK(not_ready().empty());
  auto doc = ask(atom::status_v);
  REQUIRE(doc.IsObject());
  CHECK(std::string{doc["name"].GetString()} == "supervisor");
  CHECK(std::string{doc["hostname"].GetString()} == "node1");
  CHECK(std::string{doc["state"].GetString()} == "running");
  CHECK(doc["ready"].GetBool());
  CHECK(std::string{doc["lease"]["id"].GetString()} == "42");
  CHECK(doc["lease"]["ttl"].GetInt64() == 6);
  CHECK(doc["rejected"].GetArray().Size() == 1);
  REQUIRE(doc["children"].GetArray().Size() == 1);
  CHECK(doc["counters"]["events"].GetUint64() == 3);
  CHECK(doc["counters"]["children"].GetUint64() == 1);
  CHECK(doc["counters"]["restarts"].GetUint64() == 0);
  CHECK(doc["knobs"]["lease_ttl"].GetInt64() == 6);
  auto v = ask(atom::vips_v);
  REQUIRE(v.IsObject());
  REQUIRE(v["vips"].GetArray().Size() == 1);
  CHECK(std::string{v["vips"][0]["key"].GetString()} == vips + "10.0.0.5");
  REQUIRE(v["rejected"].GetArray().Size() == 1);
  CHECK(std::string{v["rejected"][0]["key"].GetString()} == vips + "10.0.0.6");
  self->send(sup, atom::tick_v, atom::status_v);
  run();
  std::string metrics;
  self->receive([&](std::string& s) { metrics = std::move(s); });
  CHECK(metrics.find("networkd_ready 1\n") != std::string::npos);
  CHECK(metrics.find("networkd_lease_alive 1\n") != std::string::npos);
  CHECK(metrics.find("networkd_etcd_events_total 3\n") != std::string::npos);
  CHECK(metrics.find("networkd_child_restarts_total 0\n") != std::string::npos);
}

TEST_CASE_METHOD(fixture,
                 "a shutdown releases every VIP before the lease is revoked",
                 "[supervisor]") {
  self->send(router, batch("/lain/networkd/config/",
                           {put("/lain/networkd/config/lease_ttl", "6", 2)}));
  self->send(router, batch(vips, {put(vips + "10.0.0.5", good_vip, 3),
                                  put(vips + "10.0.0.6", good_vip, 4)}));
  run();
  self->send(sup, atom::shutdown_v);
  run();
  bool ok = false;
  self->receive([&](bool b) { ok = b; });
  CHECK(ok);
  CHECK(*log
        == std::vector<std::string>{"holder shutdown", "holder shutdown",
                                    "revoke 66"});
  CHECK(caf::actor_cast<caf::abstract_actor*>(sup)->getf(
    caf::abstract_actor::is_terminated_flag));
}
