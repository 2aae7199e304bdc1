// SPDX-License-Identifier: MIT
// The VIP registry with recording holders (deterministic scheduler): a
// holder per key on first sight, a new config to the same holder, a
// deleted key's holder releases and stops, a key put again waits for that
// release, a crashing holder is restarted with backoff, the lease reaches
// every holder, and an exit takes the holders along.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <algorithm>
#include <map>
#include <memory>
#include <thread>

#include "actors/vip_registry.hpp"
#include "tests/support/actor_fixture.hpp"

using namespace networkd;
using namespace std::chrono_literals;
using config::family;

namespace {

const std::string vips = "/lain/config/vips/";
const std::string good_vip
  = R"({"app":"web","proc":"main","ports":[{"src":"80"}]})";
const std::string crash_vip
  = R"({"app":"crash","proc":"main","ports":[{"src":"80"}]})";

keys::event<family::vip> vip_event(const std::string& ip,
                                   const std::string& value, int64_t rev) {
  keys::raw_event r;
  r.key = vips + ip;
  r.value = value;
  r.deleted = value.empty();
  r.revision = rev;
  auto e = keys::parse(r);
  return std::get<keys::event<family::vip>>(e);
}

/// What the holders of one test did, one line each: "key verb detail".
using journal = std::shared_ptr<std::vector<std::string>>;

struct recorder_state {
  static inline const char* name = "recording-holder";
  std::string key;
  std::string app;
  int64_t lease = 0;
  caf::typed_response_promise<bool> release; ///< answered on the tick
};

/// A holder that records what it hears; quits with an error when told to
/// serve app "crash"; answers a release 100 ms later.
vip_holder_actor::behavior_type
recorder(vip_holder_actor::stateful_pointer<recorder_state> self,
         std::string key, journal log) {
  self->state.key = std::move(key);
  return {
    [self](atom::status) {
      return "{\"name\":\"recorder\",\"key\":\"" + self->state.key
             + "\",\"app\":\"" + self->state.app
             + "\",\"lease\":" + std::to_string(self->state.lease) + "}";
    },
    [self, log](config::vip_config& cfg) {
      self->state.app = cfg.app;
      log->push_back(self->state.key + " config " + cfg.app);
      if (cfg.app == "crash")
        self->quit(caf::make_error(errc::child_crashed, "told to crash"));
    },
    [](keys::event<family::vip_lock>&) {},
    [self, log](keepalive_info& k) {
      self->state.lease = k.id;
      log->push_back(self->state.key + " lease " + std::to_string(k.id));
    },
    [](proc_health&) {},
    [self, log](atom::fence) { log->push_back(self->state.key + " fence"); },
    [](atom::fence, uint64_t) {},
    [](atom::announce, uint64_t) {},
    [self](atom::tick) {
      if (self->state.release.pending())
        self->state.release.deliver(true);
    },
    [](atom::lost, std::string&) {},
    [](spread_report&) {},
    [](config::knob&) {},
    [](atom::refresh, uint64_t) {},
    [](atom::conflict, std::string&, std::string&) {},
    [](atom::shutdown) { return true; },
    [self, log](atom::release) -> caf::result<bool> {
      log->push_back(self->state.key + " release");
      // Answered a little later, as a real release (address, rules, lock).
      self->state.release = self->make_response_promise<bool>();
      self->delayed_send(self, 100ms, atom::tick_v);
      return self->state.release;
    },
  };
}

struct fixture : test::actor_fixture {
  journal log = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<std::vector<vip_holder_actor>> holders
    = std::make_shared<std::vector<vip_holder_actor>>();
  vip_registry_actor reg;

  explicit fixture(std::shared_ptr<lease_board> board = nullptr) {
    vip_registry_config rc;
    rc.board = std::move(board);
    rc.make_vip = [this](caf::actor_system& s, const std::string& key) {
      holders->push_back(s.spawn(recorder, key, log));
      return holders->back();
    };
    reg = sys.spawn(vip_registry, rc);
    run();
  }

  ~fixture() {
    caf::anon_send_exit(reg, caf::exit_reason::user_shutdown);
    run();
  }

  rapidjson::Document status() {
    self->send(reg, atom::status_v);
    run();
    rapidjson::Document doc;
    self->receive([&](std::string& s) { doc.Parse(s.c_str()); });
    REQUIRE(doc.IsObject());
    return doc;
  }

  bool terminated(const vip_holder_actor& h) {
    return caf::actor_cast<caf::abstract_actor*>(h)->getf(
      caf::abstract_actor::is_terminated_flag);
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "a VIP key gets one holder that hears its configs",
                 "[vip_registry]") {
  self->send(reg, vip_event("10.0.0.5", good_vip, 5));
  self->send(reg, vip_event("10.0.0.5", good_vip, 6));
  self->send(reg, vip_event("10.0.0.6", good_vip, 7));
  run();
  CHECK(holders->size() == 2);
  std::vector<std::string> configs;
  for (auto& l : *log)
    if (l.find(" config ") != std::string::npos)
      configs.push_back(l);
  CHECK(configs
        == std::vector<std::string>{vips + "10.0.0.5 config web",
                                    vips + "10.0.0.5 config web",
                                    vips + "10.0.0.6 config web"});
  auto doc = status();
  CHECK(doc["counters"]["children"].GetUint64() == 2);
  REQUIRE(doc["children"].GetArray().Size() == 2);
  CHECK(std::string{doc["children"][0]["app"].GetString()} == "web");
}

TEST_CASE_METHOD(fixture,
                 "a deleted key's holder releases then stops and a key put "
                 "again meanwhile waits for it",
                 "[vip_registry]") {
  self->send(reg, vip_event("10.0.0.5", good_vip, 5));
  run();
  REQUIRE(holders->size() == 1);
  self->send(reg, vip_event("10.0.0.5", "", 6));
  self->send(reg, vip_event("10.0.0.5", good_vip, 7));
  run();
  CHECK(log->back() == vips + "10.0.0.5 release");
  // Still releasing: no second holder of the same VIP yet.
  CHECK(holders->size() == 1);
  CHECK_FALSE(terminated(holders->at(0)));
  advance(100ms);
  CHECK(terminated(holders->at(0)));
  REQUIRE(holders->size() == 2);
  CHECK(log->back() == vips + "10.0.0.5 config web");
  CHECK(status()["counters"]["children"].GetUint64() == 1);
}

TEST_CASE_METHOD(fixture, "a crashing holder is restarted with backoff",
                 "[vip_registry]") {
  self->send(reg, vip_event("10.0.0.5", crash_vip, 5));
  run();
  CHECK(holders->size() == 1);
  auto doc = status();
  CHECK(doc["counters"]["restarts"].GetUint64() == 1);
  CHECK(std::string{doc["children"][0]["state"].GetString()} == "restarting");
  // First backoff is 100 ms: nothing before, a respawn after.
  advance(50ms);
  CHECK(holders->size() == 1);
  advance(60ms);
  CHECK(holders->size() == 2);
  // It crashes again (same config): the next delay doubles.
  CHECK(status()["counters"]["restarts"].GetUint64() == 2);
  // A good config while the restart is pending is what the new one gets.
  self->send(reg, vip_event("10.0.0.5", good_vip, 6));
  run();
  advance(150ms);
  CHECK(holders->size() == 2);
  advance(60ms);
  CHECK(holders->size() == 3);
  doc = status();
  CHECK(std::string{doc["children"][0]["app"].GetString()} == "web");
  CHECK(doc["counters"]["restarts"].GetUint64() == 2);
}

TEST_CASE_METHOD(fixture,
                 "the lease reaches every holder and a new one hears it",
                 "[vip_registry]") {
  self->send(reg, vip_event("10.0.0.5", good_vip, 5));
  run();
  keepalive_info k;
  k.id = 0x42;
  k.ttl = 6;
  k.sent_at_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   (std::chrono::steady_clock::now() + 1h).time_since_epoch())
                   .count();
  self->send(reg, k);
  self->send(reg, vip_event("10.0.0.6", good_vip, 6));
  run();
  auto doc = status();
  REQUIRE(doc["children"].GetArray().Size() == 2);
  CHECK(doc["children"][0]["lease"].GetInt64() == 0x42);
  CHECK(doc["children"][1]["lease"].GetInt64() == 0x42);
  // A lease whose deadline has passed is none to a new holder.
  k.sent_at_ns = 1;
  self->send(reg, k);
  self->send(reg, vip_event("10.0.0.7", good_vip, 7));
  run();
  CHECK(status()["children"][2]["lease"].GetInt64() == 0);
}

TEST_CASE_METHOD(fixture, "an exit of the registry takes its holders along",
                 "[vip_registry]") {
  self->send(reg, vip_event("10.0.0.5", good_vip, 5));
  self->send(reg, vip_event("10.0.0.6", good_vip, 6));
  run();
  REQUIRE(holders->size() == 2);
  // What the node does when a shutdown ran out of time: the holders are
  // monitored, not linked, and would otherwise live on.
  caf::anon_send_exit(reg, caf::exit_reason::user_shutdown);
  run();
  for (auto& h : *holders)
    CHECK(terminated(h));
}

TEST_CASE_METHOD(fixture, "shutdown stops every holder after it answered",
                 "[vip_registry]") {
  self->send(reg, vip_event("10.0.0.5", good_vip, 5));
  run();
  self->send(reg, atom::shutdown_v);
  run();
  bool done = false;
  self->receive([&](bool ok) { done = ok; });
  CHECK(done);
  CHECK(terminated(holders->at(0)));
  CHECK(status()["counters"]["children"].GetUint64() == 0);
}

namespace {

keepalive_info lease(int64_t id, std::chrono::steady_clock::duration left) {
  keepalive_info k;
  k.id = id;
  k.ttl = 6;
  k.sent_at_ns = std::chrono::duration_cast<std::chrono::nanoseconds>(
                   (std::chrono::steady_clock::now() + left).time_since_epoch())
                   .count();
  return k;
}

size_t count(const journal& log, const std::string& line) {
  return static_cast<size_t>(std::count(log->begin(), log->end(), line));
}

} // namespace

TEST_CASE("with a lease board renewals stay off the mailboxes and one timer "
          "fences every holder at the deadline",
          "[vip_registry]") {
  auto board = std::make_shared<lease_board>();
  fixture f{board};
  auto a = vips + "10.0.0.5";
  auto b = vips + "10.0.0.6";
  f.self->send(f.reg, vip_event("10.0.0.5", good_vip, 5));
  f.self->send(f.reg, vip_event("10.0.0.6", good_vip, 6));
  f.self->send(f.reg, lease(0x42, 1h));
  f.run();
  CHECK(count(f.log, a + " lease 66") == 1);
  CHECK(count(f.log, b + " lease 66") == 1);
  // A renewal moves the deadline on the board only.
  f.self->send(f.reg, lease(0x42, 2h));
  f.run();
  CHECK(count(f.log, a + " lease 66") == 1);
  CHECK(board->get().sent_at_ns > lease(0x42, 1h).sent_at_ns);
  // A deadline that passes without renewal: both holders fence, once.
  f.self->send(f.reg, lease(0x42, 20ms));
  f.run();
  auto until = std::chrono::steady_clock::now() + 5s;
  while (count(f.log, b + " fence") == 0
         && std::chrono::steady_clock::now() < until) {
    f.advance(5ms);
    std::this_thread::yield();
  }
  CHECK(count(f.log, a + " fence") == 1);
  CHECK(count(f.log, b + " fence") == 1);
  // The first renewal after a fence goes to every holder again.
  f.self->send(f.reg, lease(0x42, 1h));
  f.run();
  CHECK(count(f.log, a + " lease 66") == 2);
  CHECK(count(f.log, b + " lease 66") == 2);
  // A new lease always does.
  f.self->send(f.reg, lease(0x43, 1h));
  f.run();
  CHECK(count(f.log, a + " lease 67") == 1);
}
