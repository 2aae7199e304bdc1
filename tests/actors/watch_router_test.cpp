// SPDX-License-Identifier: MIT
// The watch router without etcd (deterministic scheduler): each family
// reaches only the actors that take it, typed and parsed once; rejected
// keys with their reasons; the per-family key limit; the knobs resolved
// and told to the listeners; readiness of the watches.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <memory>

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

/// A registry that records the keys it is told, like the fakes above.
vip_registry_actor::behavior_type fake_registry(vip_registry_actor::pointer,
                                                heard_log log) {
  using config::family;
  return {
    [](atom::status) { return std::string{"{}"}; },
    [](config::knob_values&) {},
    [](atom::ready) {},
    [log](keys::event<family::vip>& e) { log->push_back(line("registry", e)); },
    [log](keys::event<family::vip_lock>& e) {
      log->push_back(line("registry", e));
    },
    [log](keys::event<family::container_vip>& e) {
      log->push_back(line("registry", e));
    },
    [](keepalive_info&) {},
    [](atom::vips) { return std::string{"[]"}; },
    [](atom::tick, atom::status) { return std::string{}; },
    [](atom::publish) {},
    [](atom::fence, uint64_t) {},
    [](atom::restart, std::string&) {},
    [](atom::shutdown) { return true; },
  };
}

struct fixture : test::actor_fixture {
  std::shared_ptr<std::vector<int64_t>> ttls
    = std::make_shared<std::vector<int64_t>>();
  heard_log heard = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<config::domain_config> last_domain
    = std::make_shared<config::domain_config>();
  std::shared_ptr<std::string> swarm = std::make_shared<std::string>();
  watch_router_config rc;
  watch_router_actor router;

  /// What one fake heard, in its order (they run interleaved).
  std::vector<std::string> heard_by(const std::string& who) const {
    std::vector<std::string> out;
    for (auto& l : *heard)
      if (l.rfind(who + " ", 0) == 0)
        out.push_back(l);
    return out;
  }

  explicit fixture(size_t max_keys = config::max_keys_per_family) {
    rc.max_keys_per_family = max_keys;
    rc.listeners.push_back(sys.spawn(listener, ttls));
    rc.dns = sys.spawn(fake_dns, heard, last_domain);
    rc.leader = sys.spawn(fake_leader, heard, swarm);
    rc.registry = sys.spawn(fake_registry, heard);
    router = sys.spawn(watch_router, rc);
    run();
  }

  ~fixture() {
    caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
    for (auto& l : rc.listeners)
      caf::anon_send_exit(l, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rc.dns, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rc.leader, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(rc.registry, caf::exit_reason::user_shutdown);
    run();
  }

  rapidjson::Document status() {
    self->send(router, atom::status_v);
    run();
    rapidjson::Document doc;
    self->receive([&](std::string& s) { doc.Parse(s.c_str()); });
    REQUIRE(doc.IsObject());
    return doc;
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "VIP, lock and spreading keys go to the registry",
                 "[watch_router]") {
  const std::string locks = std::string{config::vip_locks_prefix};
  self->send(router, batch(vips, {put(vips + "10.0.0.5", good_vip, 5),
                                  put(vips + "10.0.0.5", good_vip, 6),
                                  del(vips + "10.0.0.6", 7)}));
  self->send(router, batch(locks, {put(locks + "10.0.0.5.lock", "node1", 8)}));
  run();
  CHECK(heard_by("registry")
        == std::vector<std::string>{"registry vip +" + vips + "10.0.0.5",
                                    "registry vip +" + vips + "10.0.0.5",
                                    "registry vip -" + vips + "10.0.0.6",
                                    "registry vip_lock +" + locks
                                      + "10.0.0.5.lock"});
  auto doc = status();
  CHECK(doc["counters"]["events"].GetUint64() == 4);
  CHECK(doc["keys"]["vip"].GetInt64() == 1);
}

TEST_CASE_METHOD(fixture,
                 "a bad value is rejected with its reason and the rest flows",
                 "[watch_router]") {
  self->send(router, batch(vips, {put(vips + "10.0.0.5", "{broken", 5),
                                  put(vips + "10.0.0.6", good_vip, 6),
                                  put(vips + "1.2.3.4:5:6", good_vip, 7)}));
  run();
  CHECK(heard_by("registry")
        == std::vector<std::string>{"registry vip +" + vips + "10.0.0.6"});
  auto doc = status();
  auto& rej = doc["rejected"];
  REQUIRE(rej.GetArray().Size() == 2);
  CHECK(std::string{rej[0]["key"].GetString()} == vips + "1.2.3.4:5:6");
  CHECK(std::string{rej[0]["code"].GetString()} == "bad_key");
  CHECK(std::string{rej[1]["key"].GetString()} == vips + "10.0.0.5");
  CHECK(std::string{rej[1]["code"].GetString()} == "bad_json");
  CHECK(std::string{rej[1]["reason"].GetString()}.find("10.0.0.5")
        != std::string::npos);
  // A good value for the rejected key clears the rejection.
  self->send(router, batch(vips, {put(vips + "10.0.0.5", good_vip, 8)}));
  run();
  doc = status();
  CHECK(doc["rejected"].GetArray().Size() == 1);
  CHECK(heard_by("registry").size() == 2);
  // /v1/vips lists the rejected VIP keys only.
  self->send(router, batch(std::string{config::domains_prefix},
                           {put(std::string{config::domains_prefix} + "x.lain",
                                "{", 9)}));
  self->send(router, atom::vips_v);
  run();
  rapidjson::Document list;
  self->receive([&](std::string& s) { list.Parse(s.c_str()); });
  REQUIRE(list.IsArray());
  REQUIRE(list.Size() == 1);
  CHECK(std::string{list[0]["key"].GetString()} == vips + "1.2.3.4:5:6");
}

TEST_CASE_METHOD(fixture,
                 "a bad value for a served key leaves the registry its last "
                 "good config",
                 "[watch_router]") {
  self->send(router, batch(vips, {put(vips + "10.0.0.5", good_vip, 5)}));
  self->send(router, batch(vips, {put(vips + "10.0.0.5",
                                      R"({"app":"web","proc":"main",
                                          "ports":[{"src":"0"}]})",
                                      6)}));
  run();
  CHECK(heard_by("registry")
        == std::vector<std::string>{"registry vip +" + vips + "10.0.0.5"});
  CHECK(status()["rejected"].GetArray().Size() == 1);
}

TEST_CASE_METHOD(fixture, "other key families go to the listeners typed",
                 "[watch_router]") {
  const std::string domains = "/lain/config/domains/";
  self->send(
    router,
    batch(domains,
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
  self->send(router, batch("/lain/networkd/config/",
                           {del("/lain/networkd/config/dns_ttl", 8)}));
  run();
  REQUIRE(ttls->size() == 1);
  CHECK(ttls->back() == 60);
  CHECK_FALSE(status()["knobs"].HasMember("dns_ttl"));
}

TEST_CASE("watch batches reach the router raw", "[watch_router]") {
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
                 "[watch_router]") {
  self->send(router, batch(vips, {put(vips + "10.0.0.5", good_vip, 3),
                                  put(vips + "10.0.0.6", "{", 4)}));
  run();
  CHECK(heard_by("leader")
        == std::vector<std::string>{"leader vip +" + vips + "10.0.0.5",
                                    "leader vip !" + vips + "10.0.0.6"});
  CHECK(heard_by("registry")
        == std::vector<std::string>{"registry vip +" + vips + "10.0.0.5"});
}

TEST_CASE("readiness of the watches says why not: first read then a "
          "stalled watch and comes back by itself",
          "[watch_router]") {
  watch_router_state st;
  CHECK(st.not_ready_reason({}).empty()); // no etcd: nothing to wait for
  etcd::client_config ecfg;
  ecfg.endpoints = *etcd::parse_endpoints("127.0.0.1:1");
  st.cfg.client = std::make_shared<etcd::client>(ecfg);
  st.cfg.prefixes = {"/a/", "/b/"};
  auto t0 = std::chrono::steady_clock::time_point{} + 1h;
  CHECK(st.not_ready_reason(t0).rfind("first etcd read pending (0 of 2", 0)
        == 0);
  // A read that failed says why.
  st.watches["/a/"].last_error = "cannot connect: certificate verify failed";
  CHECK(st.not_ready_reason(t0)
        == "first etcd read pending (0 of 2 watches synced): /a/: cannot "
           "connect: certificate verify failed");
  st.watches.clear();
  st.synced = {"/a/", "/b/"};
  CHECK(st.not_ready_reason(t0).empty());
  // A watch out of "watching": ready during the grace, not after it.
  st.watches["/b/"].last_error = "watch canceled by x: invalid auth token";
  st.stalled["/b/"] = t0 + 5s;
  CHECK(st.not_ready_reason(t0 + 5s + 900ms).empty());
  auto why = st.not_ready_reason(t0 + 5s + watch_router_state::watch_grace);
  CHECK(why.rfind("watch /b/ not watching for 1000 ms", 0) == 0);
  CHECK(why.find("invalid auth token") != std::string::npos);
  st.stalled.clear();
  CHECK(st.not_ready_reason(t0 + 7s).empty());
  st.shutting_down = true;
  CHECK(st.not_ready_reason(t0 + 7s) == "stopping");
}

TEST_CASE("new keys past a family's limit are ignored and counted while "
          "known keys keep flowing",
          "[watch_router]") {
  fixture f{2};
  f.self->send(f.router, batch(vips,
                               {put(vips + "10.0.0.5", good_vip, 5),
                                put(vips + "10.0.0.6", good_vip, 6),
                                put(vips + "10.0.0.7", good_vip, 7)},
                               true));
  f.run();
  CHECK(f.heard_by("registry").size() == 2);
  auto doc = f.status();
  CHECK(doc["keys"]["vip"].GetInt64() == 2);
  CHECK(doc["keys_over_limit"]["vip"].GetUint64() == 1);
  // A known key still updates; a delete makes room for a new one.
  f.self->send(f.router, batch(vips, {put(vips + "10.0.0.5", good_vip, 8),
                                      del(vips + "10.0.0.6", 9),
                                      put(vips + "10.0.0.7", good_vip, 10)}));
  f.run();
  CHECK(f.heard_by("registry")
        == std::vector<std::string>{"registry vip +" + vips + "10.0.0.5",
                                    "registry vip +" + vips + "10.0.0.6",
                                    "registry vip +" + vips + "10.0.0.5",
                                    "registry vip -" + vips + "10.0.0.6",
                                    "registry vip +" + vips + "10.0.0.7"});
  CHECK(f.status()["keys"]["vip"].GetInt64() == 2);
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
                 "[watch_router]") {
  auto periods = std::make_shared<std::vector<int64_t>>();
  watch_router_config rc;
  rc.nat = sys.spawn(audit_recorder, periods);
  auto router = sys.spawn(watch_router, rc);
  run();
  const std::string knobs = "/lain/networkd/config/";
  self->send(router, batch(knobs, {put(knobs + "nat_audit_s", "120", 2)}));
  run();
  self->send(router, batch(knobs, {put(knobs + "nat_audit_s", "0", 3)}));
  run();
  self->send(router, batch(knobs, {del(knobs + "nat_audit_s", 4)}));
  run();
  // An unrelated knob tells it nothing.
  self->send(router, batch(knobs, {put(knobs + "dns_ttl", "5", 5)}));
  run();
  CHECK(*periods == std::vector<int64_t>{120, 0, 30});
  caf::anon_send_exit(router, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(rc.nat, caf::exit_reason::user_shutdown);
  run();
}
