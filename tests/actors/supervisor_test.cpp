// SPDX-License-Identifier: MIT
// The supervisor without etcd (deterministic scheduler): routing of typed
// key events, spawn on first sight, stop on delete, rejected keys, restart
// of a crashing child with backoff, fan-out to listeners.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <atomic>
#include <memory>

#include "actors/supervisor.hpp"
#include "actors/vip_holder.hpp"
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

etcd::watch_event del(const std::string& key, int64_t rev) {
  etcd::watch_event ev;
  ev.what = etcd::watch_event::kind::erase;
  ev.kv.key = key;
  ev.kv.mod_revision = rev;
  return ev;
}

key_batch batch(const std::string& prefix,
                std::vector<etcd::watch_event> events, bool snapshot = false) {
  etcd::watch_batch b;
  b.snapshot = snapshot;
  for (auto& e : events)
    b.revision = std::max(b.revision, e.kv.mod_revision);
  b.events = std::move(events);
  return to_key_batch(prefix, b);
}

const std::string vips = "/lain/config/vips/";
const std::string good_vip
  = R"({"app":"web","proc":"main","ports":[{"src":"80"}]})";

/// A holder that quits with an error when told to serve app "crash".
struct crashy_state {
  static inline const char* name = "crashy-holder";
  std::string key;
  std::string app;
};

vip_holder_actor::behavior_type
crashy_holder(vip_holder_actor::stateful_pointer<crashy_state> self,
              std::string key) {
  self->state.key = std::move(key);
  return {
    [self](atom::status) {
      return "{\"name\":\"crashy\",\"key\":\"" + self->state.key
             + "\",\"app\":\"" + self->state.app + "\"}";
    },
    [self](config::vip_config& cfg) {
      self->state.app = cfg.app;
      if (cfg.app == "crash")
        self->quit(caf::make_error(errc::child_crashed, "told to crash"));
    },
    [](keys::event<config::family::vip_lock>&) {},
    [](keepalive_info&) {},
    [](proc_health&) {},
    [](atom::fence, uint64_t) {},
    [](atom::announce, uint64_t) {},
    [](atom::tick) {},
    [](atom::lost, std::string&) {},
    [](spread_report&) {},
    [](config::knob&) {},
    [](atom::refresh, uint64_t) {},
    [](atom::conflict, std::string&, std::string&) {},
    [](atom::shutdown) { return true; },
    [](atom::release) { return true; },
  };
}

struct listener_state {
  static inline const char* name = "test-listener";
};

/// Records the dns_ttl of every knob_values it is told.
config_listener_actor::behavior_type
listener(config_listener_actor::stateful_pointer<listener_state>,
         std::shared_ptr<std::vector<int64_t>> ttls) {
  return {
    [](atom::status) { return std::string{"{}"}; },
    [ttls](config::knob_values& v) { ttls->push_back(v.dns.ttl); },
    [](atom::ready) {},
  };
}

/// What the fake DNS responder and leader heard: "who family key" lines,
/// "+" for a parsed put, "-" for a delete, "!" for a rejected put.
using heard_log = std::shared_ptr<std::vector<std::string>>;

template <config::family F>
std::string line(const char* who, const keys::event<F>& e) {
  return std::string{who} + " " + config::to_string(F) + " "
         + (e.deleted ? "-"
            : e.ok    ? "+"
                      : "!")
         + e.key;
}

dns_responder_actor::behavior_type
fake_dns(dns_responder_actor::pointer, heard_log log,
         std::shared_ptr<config::domain_config> last) {
  using config::family;
  return {
    [](atom::status) { return std::string{"{}"}; },
    [log, last](keys::event<family::domain>& e) {
      log->push_back(line("dns", e));
      if (e.ok)
        *last = e.value;
    },
    [log](keys::event<family::domain_servers>& e) {
      log->push_back(line("dns", e));
    },
    [](config::knob_values&) {},
    [](atom::ready) {},
    [](atom::upstream, std::vector<config::upstream>&) {},
    [](atom::reload) {},
    [](atom::publish) {},
    [](atom::tidy) {},
    [](atom::dynamic, std::string&, std::vector<std::string>&) {},
    [](atom::webrouter, std::vector<std::string>&) {},
    [](atom::lookup, std::string&, std::string&) { return std::string{}; },
  };
}

leader_actor::behavior_type fake_leader(leader_actor::pointer, heard_log log,
                                        std::shared_ptr<std::string> swarm) {
  using config::family;
  return {
    [](atom::status) { return std::string{"{}"}; },
    [log](keys::event<family::vip>& e) { log->push_back(line("leader", e)); },
    [log](keys::event<family::domain>& e) {
      log->push_back(line("leader", e));
    },
    [log](keys::event<family::domain_servers>& e) {
      log->push_back(line("leader", e));
    },
    [log](keys::event<family::vippool>& e) {
      log->push_back(line("leader", e));
    },
    [log, swarm](keys::event<family::swarm_leader>& e) {
      log->push_back(line("leader", e));
      *swarm = e.value.ip;
    },
    [log](keys::event<family::deployd_leader>& e) {
      log->push_back(line("leader", e));
    },
    [log](keys::event<family::leader_candidate>& e) {
      log->push_back(line("leader", e));
    },
    [log](keys::event<family::app_endpoint>& e) {
      log->push_back(line("leader", e));
    },
    [log](keys::event<family::tinydns_fqdns>& e) {
      log->push_back(line("leader", e));
    },
    [](config::knob_values&) {},
    [](atom::ready) {},
    [](keepalive_info&) {},
    [](atom::tick) {},
    [](atom::ports, std::vector<uint16_t>&) {},
  };
}

struct fixture : test::actor_fixture {
  std::shared_ptr<std::atomic<int>> spawned
    = std::make_shared<std::atomic<int>>(0);
  std::shared_ptr<std::vector<int64_t>> ttls
    = std::make_shared<std::vector<int64_t>>();
  heard_log heard = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<config::domain_config> last_domain
    = std::make_shared<config::domain_config>();
  std::shared_ptr<std::string> swarm = std::make_shared<std::string>();
  supervisor_actor sup;

  /// What one fake heard, in its order (the two run interleaved).
  std::vector<std::string> heard_by(const std::string& who) const {
    std::vector<std::string> out;
    for (auto& l : *heard)
      if (l.rfind(who + " ", 0) == 0)
        out.push_back(l);
    return out;
  }

  explicit fixture(size_t max_keys = config::max_keys_per_family) {
    supervisor_config sc;
    sc.hostname = "node1";
    sc.max_keys_per_family = max_keys;
    auto counter = spawned;
    sc.make_vip = [counter](caf::actor_system& s, const std::string& key) {
      ++*counter;
      return s.spawn(crashy_holder, key);
    };
    sc.listeners.push_back(sys.spawn(listener, ttls));
    sc.dns = sys.spawn(fake_dns, heard, last_domain);
    sc.leader = sys.spawn(fake_leader, heard, swarm);
    sup = sys.spawn(supervisor, sc);
    run();
  }

  ~fixture() {
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
    run();
  }

  rapidjson::Document status() {
    self->send(sup, atom::status_v);
    run();
    rapidjson::Document doc;
    self->receive([&](std::string& s) { doc.Parse(s.c_str()); });
    REQUIRE(doc.IsObject());
    return doc;
  }

  size_t children() {
    auto doc = status();
    return doc["children"].GetArray().Size();
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "a VIP key spawns its holder on first sight only",
                 "[supervisor]") {
  self->send(sup, batch(vips, {put(vips + "10.0.0.5", good_vip, 5)}, true));
  run();
  CHECK(*spawned == 1);
  CHECK(children() == 1);
  self->send(sup, batch(vips, {put(vips + "10.0.0.5", good_vip, 6)}));
  self->send(sup, batch(vips, {put(vips + "10.0.0.6", good_vip, 7)}));
  run();
  CHECK(*spawned == 2);
  auto doc = status();
  REQUIRE(doc["children"].GetArray().Size() == 2);
  CHECK(std::string{doc["children"][0]["app"].GetString()} == "web");
  CHECK(doc["counters"]["events"].GetUint64() == 3);
}

TEST_CASE_METHOD(fixture, "deleting a VIP key stops its holder",
                 "[supervisor]") {
  self->send(sup, batch(vips, {put(vips + "10.0.0.5", good_vip, 5),
                               put(vips + "10.0.0.6", good_vip, 6)}));
  run();
  REQUIRE(children() == 2);
  self->send(sup, batch(vips, {del(vips + "10.0.0.5", 7)}));
  run();
  auto doc = status();
  REQUIRE(doc["children"].GetArray().Size() == 1);
  CHECK(std::string{doc["children"][0]["key"].GetString()}
        == vips + "10.0.0.6");
  CHECK(doc["counters"]["restarts"].GetUint64() == 0);
}

TEST_CASE_METHOD(fixture,
                 "a bad value is rejected with its reason and the rest flows",
                 "[supervisor]") {
  self->send(sup, batch(vips, {put(vips + "10.0.0.5", "{broken", 5),
                               put(vips + "10.0.0.6", good_vip, 6),
                               put(vips + "1.2.3.4:5:6", good_vip, 7)}));
  run();
  auto doc = status();
  CHECK(doc["children"].GetArray().Size() == 1);
  auto& rej = doc["rejected"];
  REQUIRE(rej.GetArray().Size() == 2);
  CHECK(std::string{rej[0]["key"].GetString()} == vips + "1.2.3.4:5:6");
  CHECK(std::string{rej[0]["code"].GetString()} == "bad_key");
  CHECK(std::string{rej[1]["key"].GetString()} == vips + "10.0.0.5");
  CHECK(std::string{rej[1]["code"].GetString()} == "bad_json");
  CHECK(std::string{rej[1]["reason"].GetString()}.find("10.0.0.5")
        != std::string::npos);
  // A good value for the rejected key clears the rejection.
  self->send(sup, batch(vips, {put(vips + "10.0.0.5", good_vip, 8)}));
  run();
  doc = status();
  CHECK(doc["rejected"].GetArray().Size() == 1);
  CHECK(doc["children"].GetArray().Size() == 2);
}

TEST_CASE_METHOD(fixture,
                 "a bad value for a served key keeps its last good config",
                 "[supervisor]") {
  self->send(sup, batch(vips, {put(vips + "10.0.0.5", good_vip, 5)}));
  self->send(sup, batch(vips, {put(vips + "10.0.0.5",
                                   R"({"app":"web","proc":"main",
                                       "ports":[{"src":"0"}]})",
                                   6)}));
  run();
  auto doc = status();
  REQUIRE(doc["children"].GetArray().Size() == 1);
  CHECK(std::string{doc["children"][0]["app"].GetString()} == "web");
  REQUIRE(doc["rejected"].GetArray().Size() == 1);
  CHECK(*spawned == 1);
}

TEST_CASE_METHOD(fixture, "a crashing holder is restarted with backoff",
                 "[supervisor]") {
  const std::string crash
    = R"({"app":"crash","proc":"main","ports":[{"src":"80"}]})";
  self->send(sup, batch(vips, {put(vips + "10.0.0.5", crash, 5)}));
  run();
  CHECK(*spawned == 1);
  auto doc = status();
  CHECK(doc["counters"]["restarts"].GetUint64() == 1);
  CHECK(std::string{doc["children"][0]["state"].GetString()} == "restarting");
  // First backoff is 100 ms: nothing before, a respawn after.
  advance(50ms);
  CHECK(*spawned == 1);
  advance(60ms);
  CHECK(*spawned == 2);
  // It crashes again (same config): the next delay doubles.
  CHECK(status()["counters"]["restarts"].GetUint64() == 2);
  // A good config while the restart is pending is what the new child gets.
  self->send(sup, batch(vips, {put(vips + "10.0.0.5", good_vip, 6)}));
  run();
  advance(150ms);
  CHECK(*spawned == 2);
  advance(60ms);
  CHECK(*spawned == 3);
  doc = status();
  CHECK(std::string{doc["children"][0]["app"].GetString()} == "web");
  CHECK(doc["counters"]["restarts"].GetUint64() == 2);
}

TEST_CASE_METHOD(fixture, "other key families go to the listeners typed",
                 "[supervisor]") {
  const std::string domains = "/lain/config/domains/";
  self->send(
    sup, batch(domains,
               {put(domains + "*.lain", R"({"ips":["10.1.1.1"]})", 3),
                put(domains + "bad.lain", R"({"ips":["300.1.1.1"]})", 4),
                put(std::string{config::swarm_leader_key}, "10.2.2.2:2376", 5),
                put("/lain/networkd/config/dns_ttl", "30", 6),
                del(domains + "old.lain", 7)}));
  run();
  // Each family reaches only the actors that take it, parsed once: the
  // domains go to the DNS tables and the leader, the swarm leader only to
  // the leader, the rejected domain to neither, the knob to no one as a
  // key (the listeners get the resolved knob_values instead).
  CHECK(heard_by("dns")
        == std::vector<std::string>{"dns domain +" + domains + "*.lain",
                                    "dns domain -" + domains + "old.lain"});
  CHECK(heard_by("leader")
        == std::vector<std::string>{"leader domain +" + domains + "*.lain",
                                    "leader swarm_leader +"
                                      + std::string{config::swarm_leader_key},
                                    "leader domain -" + domains + "old.lain"});
  CHECK(last_domain->wildcard);
  CHECK(last_domain->ips == std::vector<std::string>{"10.1.1.1"});
  CHECK(*swarm == "10.2.2.2");
  REQUIRE_FALSE(ttls->empty());
  CHECK(ttls->back() == 30);
  auto doc = status();
  CHECK(doc["rejected"].GetArray().Size() == 1);
  CHECK(doc["knobs"]["dns_ttl"].GetInt64() == 30);
  // A deleted knob: the listeners get the default back.
  ttls->clear();
  self->send(sup, batch("/lain/networkd/config/",
                        {del("/lain/networkd/config/dns_ttl", 8)}));
  run();
  REQUIRE(ttls->size() == 1);
  CHECK(ttls->back() == 60);
  CHECK_FALSE(status()["knobs"].HasMember("dns_ttl"));
}

TEST_CASE("watch batches reach the supervisor raw", "[supervisor]") {
  auto b = batch(
    vips,
    {put(vips + "10.0.0.9:8080", good_vip, 9), del(vips + "10.0.0.1", 11)},
    true);
  CHECK(b.snapshot);
  CHECK(b.revision == 11);
  REQUIRE(b.events.size() == 2);
  CHECK(b.events[0].key == vips + "10.0.0.9:8080");
  CHECK(b.events[0].value == good_vip);
  CHECK(b.events[0].revision == 9);
  CHECK_FALSE(b.events[0].deleted);
  CHECK(b.events[1].deleted);
}

TEST_CASE_METHOD(fixture, "a VIP key goes to the leader rejected or not",
                 "[supervisor]") {
  self->send(sup, batch(vips, {put(vips + "10.0.0.5", good_vip, 3),
                               put(vips + "10.0.0.6", "{", 4)}));
  run();
  CHECK(*heard
        == std::vector<std::string>{"leader vip +" + vips + "10.0.0.5",
                                    "leader vip !" + vips + "10.0.0.6"});
  CHECK(*spawned == 1);
}

TEST_CASE("an exit of the supervisor takes its holders along", "[supervisor]") {
  test::actor_fixture f;
  auto holders = std::make_shared<std::vector<vip_holder_actor>>();
  supervisor_config sc;
  sc.hostname = "node1";
  sc.make_vip = [holders](caf::actor_system& s, const std::string& key) {
    holders->push_back(s.spawn(crashy_holder, key));
    return holders->back();
  };
  auto sup = f.sys.spawn(supervisor, sc);
  f.run();
  f.self->send(sup, batch(vips, {put(vips + "10.0.0.5", good_vip, 5),
                                 put(vips + "10.0.0.6", good_vip, 6)}));
  f.run();
  REQUIRE(holders->size() == 2);
  // What main does when a shutdown runs out of time: the holders are
  // monitored, not linked, and would otherwise live on.
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  f.run();
  for (auto& h : *holders)
    CHECK(caf::actor_cast<caf::abstract_actor*>(h)->getf(
      caf::abstract_actor::is_terminated_flag));
}

TEST_CASE("readiness says why not: first read then lease then a stalled "
          "watch and comes back by itself") {
  supervisor_state st;
  etcd::client_config ecfg;
  ecfg.endpoints = *etcd::parse_endpoints("127.0.0.1:1");
  st.cfg.client = std::make_shared<etcd::client>(ecfg);
  st.cfg.prefixes = {"/a/", "/b/"};
  auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  CHECK(st.not_ready_reason(t0).rfind("first etcd read pending (0 of 2", 0)
        == 0);
  st.synced = {"/a/", "/b/"};
  CHECK(st.not_ready_reason(t0).rfind("etcd lease none", 0) == 0);
  st.lease_state = "alive";
  st.lease.renewed(0x42, 6, t0);
  CHECK(st.not_ready_reason(t0 + 1s).empty());
  // Past the local deadline (TTL 6 s less the margin) without a renewal:
  // etcd is unreachable or frozen.
  CHECK(st.not_ready_reason(t0 + 6s).rfind("etcd lease past", 0) == 0);
  st.lease.renewed(0x42, 6, t0 + 5s);
  // A watch out of "watching": ready during the grace, not after it.
  st.watches["/b/"].last_error = "watch canceled by x: invalid auth token";
  st.stalled["/b/"] = t0 + 5s;
  CHECK(st.not_ready_reason(t0 + 5s + 900ms).empty());
  auto why = st.not_ready_reason(t0 + 5s + supervisor_state::watch_grace);
  CHECK(why.rfind("watch /b/ not watching for 1000 ms", 0) == 0);
  CHECK(why.find("invalid auth token") != std::string::npos);
  st.stalled.clear();
  CHECK(st.not_ready_reason(t0 + 7s).empty());
  st.lease_state = "lost";
  st.lease_error = "lease not found";
  CHECK(st.not_ready_reason(t0 + 7s) == "etcd lease lost: lease not found");
}

TEST_CASE("new keys past a family's limit are ignored and counted while "
          "known keys keep flowing",
          "[supervisor]") {
  fixture f{2};
  f.self->send(f.sup, batch(vips,
                            {put(vips + "10.0.0.5", good_vip, 5),
                             put(vips + "10.0.0.6", good_vip, 6),
                             put(vips + "10.0.0.7", good_vip, 7)},
                            true));
  f.run();
  CHECK(*f.spawned == 2);
  auto doc = f.status();
  CHECK(doc["keys"]["vip"].GetInt64() == 2);
  CHECK(doc["keys_over_limit"]["vip"].GetUint64() == 1);
  // A known key still updates; a delete makes room for a new one.
  f.self->send(f.sup, batch(vips, {put(vips + "10.0.0.5", good_vip, 8),
                                   del(vips + "10.0.0.6", 9),
                                   put(vips + "10.0.0.7", good_vip, 10)}));
  f.run();
  CHECK(*f.spawned == 3);
  CHECK(f.children() == 2);
}

namespace {

/// A NAT manager that records the audit periods it is told.
nat_manager_actor::behavior_type
audit_recorder(nat_manager_actor::pointer,
               std::shared_ptr<std::vector<int64_t>> periods) {
  return {
    [](atom::status) { return std::string{"{}"}; },
    [](atom::publish, std::string&, std::string&, std::vector<nat_rule>&) {
      return true;
    },
    [](atom::tick) {},
    [](atom::prune, std::vector<std::string>&) { return true; },
    [periods](atom::audit, int64_t s) { periods->push_back(s); },
    [](atom::audit, uint64_t) {},
  };
}

} // namespace

TEST_CASE_METHOD(test::actor_fixture,
                 "the nat_audit_s knob reaches the NAT manager at runtime and "
                 "its default returns when it is deleted",
                 "[supervisor]") {
  auto periods = std::make_shared<std::vector<int64_t>>();
  supervisor_config sc;
  sc.hostname = "node1";
  sc.nat = sys.spawn(audit_recorder, periods);
  auto sup = sys.spawn(supervisor, sc);
  run();
  const std::string knobs = "/lain/networkd/config/";
  self->send(sup, batch(knobs, {put(knobs + "nat_audit_s", "120", 2)}));
  run();
  self->send(sup, batch(knobs, {put(knobs + "nat_audit_s", "0", 3)}));
  run();
  self->send(sup, batch(knobs, {del(knobs + "nat_audit_s", 4)}));
  run();
  // An unrelated knob tells it nothing.
  self->send(sup, batch(knobs, {put(knobs + "dns_ttl", "5", 5)}));
  run();
  CHECK(*periods == std::vector<int64_t>{120, 0, 30});
  caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(sc.nat, caf::exit_reason::user_shutdown);
  run();
}
