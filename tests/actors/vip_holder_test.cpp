// SPDX-License-Identifier: MIT
// The VIP holder actor with stand-ins for its workers (deterministic
// scheduler): it takes the lock, the rules and the address and serves. An
// ARP conflict makes it ask etcd for the lock again: it announces again
// when the lock is still its own, and steps down when another node holds
// it (address first, then rules, and no release of a lock that is not
// ours).
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "actors/vip_holder.hpp"
#include "tests/support/actor_fixture.hpp"

using namespace networkd;
using namespace std::chrono_literals;

namespace {

const std::string the_vip = "10.0.0.5";
const std::string key = "/lain/config/vips/" + the_vip;

/// What the workers were asked, one line each: "verb detail".
using journal = std::shared_ptr<std::vector<std::string>>;

/// The answer the etcd stand-in gives to a lock request.
struct lock_owner {
  std::string holder = "n1"; ///< "n1": ours
};

etcd_worker_actor::behavior_type fake_etcd(journal log,
                                           std::shared_ptr<lock_owner> owner) {
  return {
    [log, owner](atom::lock, std::string& k, std::string& value,
                 int64_t) -> lock_result {
      log->push_back("lock " + k);
      if (owner->holder == value)
        return lock_result{true, value, 7};
      return lock_result{false, owner->holder, 0};
    },
    [](atom::tick) {},
    [log](atom::release, std::string& k, std::string&) {
      log->push_back("release " + k);
      return true;
    },
    [log](atom::put, std::string& k, std::string&, int64_t) {
      log->push_back("put " + k);
      return true;
    },
    [log](atom::erase, std::string& k) {
      log->push_back("erase " + k);
      return true;
    },
    [](atom::put, std::vector<std::string>&, std::vector<std::string>&,
       int64_t) { return true; },
    [](atom::publish, std::vector<std::string>&, std::vector<std::string>&,
       std::vector<std::string>&, std::string&, int64_t) { return true; },
  };
}

link_worker_actor::behavior_type fake_link(journal log) {
  return {
    [log](atom::add, std::string& ip, int64_t) {
      log->push_back("add " + ip);
      return true;
    },
    [log](atom::erase, std::string& ip) {
      log->push_back("remove " + ip);
      return true;
    },
    [log](atom::announce, std::string& ip, int64_t) {
      log->push_back("announce " + ip);
      return true;
    },
    [](atom::keepalive, int64_t) {},
    [](atom::prune, std::vector<std::string>&) { return true; },
    [](atom::tick) {},
  };
}

nat_manager_actor::behavior_type fake_nat(journal log) {
  return {
    [](atom::status) { return std::string{"{}"}; },
    [log](atom::publish, std::string&, std::string&,
          std::vector<nat_rule>& rules) {
      log->push_back("rules " + std::to_string(rules.size()));
      return true;
    },
    [](atom::tick) {},
    [](atom::prune, std::vector<std::string>&) { return true; },
    [](atom::audit, int64_t) {},
    [](atom::audit, uint64_t) {},
  };
}

struct holder_lab : test::actor_fixture {
  journal log = std::make_shared<std::vector<std::string>>();
  std::shared_ptr<lock_owner> owner = std::make_shared<lock_owner>();
  vip_env env;
  vip_holder_actor holder;

  holder_lab() {
    env.hostname = "n1";
    env.node_ip = "10.0.0.1";
    env.interface = "eth0";
    env.etcd = sys.spawn(fake_etcd, log, owner);
    env.link = sys.spawn(fake_link, log);
    env.nat = sys.spawn(fake_nat, log);
    env.arp_count = 1;
    holder
      = sys.spawn(vip_holder, key, env, std::shared_ptr<const lease_board>{});
    run();
    auto deadline = std::chrono::steady_clock::now() + 1h;
    self->send(holder, keepalive_info{
                         0x10, 60,
                         std::chrono::duration_cast<std::chrono::nanoseconds>(
                           deadline.time_since_epoch())
                           .count()});
    run();
    auto cfg = config::parse_vip(
      the_vip, R"({"app":"web","proc":"main","ports":[{"src":"80"}]})");
    REQUIRE(cfg);
    self->send(holder, *cfg);
    run();
    self->send(holder,
               proc_health{"web", "main", true, "172.20.0.2", 1, "probe ok"});
    run();
  }

  ~holder_lab() {
    for (auto a : {caf::actor_cast<caf::actor>(holder),
                   caf::actor_cast<caf::actor>(env.etcd),
                   caf::actor_cast<caf::actor>(env.link),
                   caf::actor_cast<caf::actor>(env.nat)})
      self->send_exit(a, caf::exit_reason::user_shutdown);
    run();
  }

  /// A field of the holder's status object.
  std::string status(const char* field) {
    self->send(holder, atom::status_v);
    run();
    std::string text;
    self->receive([&](std::string& s) { text = s; });
    rapidjson::Document doc;
    doc.Parse(text.c_str());
    if (!doc.IsObject() || !doc.HasMember(field))
      return {};
    auto& v = doc[field];
    return v.IsString() ? v.GetString() : std::to_string(v.GetInt64());
  }

  /// The lines of the journal from `from` on.
  std::vector<std::string> since(size_t from) const {
    return {log->begin() + static_cast<std::ptrdiff_t>(from), log->end()};
  }
};

} // namespace

TEST_CASE("an ARP conflict while the lock is ours announces again",
          "[vip_holder]") {
  holder_lab l;
  REQUIRE(l.status("state") == "serving");
  auto before = l.log->size();
  l.self->send(l.holder, atom::conflict_v, the_vip,
               std::string{"02:00:00:00:00:02"});
  l.run();
  CHECK(l.status("state") == "serving");
  CHECK(
    l.since(before)
    == std::vector<std::string>{"lock /lain/networkd/vips/" + the_vip + ".lock",
                                "announce " + the_vip});
}

TEST_CASE("an ARP conflict while another node holds the lock steps down",
          "[vip_holder]") {
  holder_lab l;
  REQUIRE(l.status("state") == "serving");
  auto before = l.log->size();
  l.owner->holder = "n2"; // what etcd now says
  l.self->send(l.holder, atom::conflict_v, the_vip,
               std::string{"02:00:00:00:00:02"});
  l.run();
  auto after = l.since(before);
  INFO(Catch::Detail::stringify(after));
  CHECK(l.status("state") != "serving");
  CHECK(l.status("owner") == "n2");
  // Asked for the lock, then gave up the address, then the rules; the
  // lock is n2's: never released by us.
  REQUIRE(after.size() >= 3);
  CHECK(after[0] == "lock /lain/networkd/vips/" + the_vip + ".lock");
  CHECK(after[1] == "remove " + the_vip);
  CHECK(after[2] == "rules 0");
  CHECK(std::none_of(after.begin(), after.end(), [](const std::string& s) {
    return s.rfind("release ", 0) == 0;
  }));
  // A conflict with the lock not ours is not looked into again.
  before = l.log->size();
  l.self->send(l.holder, atom::conflict_v, the_vip,
               std::string{"02:00:00:00:00:02"});
  l.run();
  CHECK(l.since(before).empty());
}
