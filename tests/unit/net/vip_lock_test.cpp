// SPDX-License-Identifier: MIT
// The VIP lock txns and the batched taker, against a real single-member
// etcd (nested txns), plus what a lock txn's outcome means.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "net/etcd/etcd.hpp"
#include "net/etcd/vip_lock.hpp"
#include "tests/support/etcd_fixture.hpp"

using namespace networkd;
using namespace networkd::test;

namespace {

etcd::client_config config_for(const etcd_server& srv) {
  etcd::client_config cfg;
  cfg.endpoints = {"http://" + srv.endpoint()};
  return cfg;
}

std::string lock_key(int i) {
  return "/lain/networkd/vips/10.89.0." + std::to_string(i) + ".lock";
}

etcd::key_value stored(etcd::client& c, const std::string& key) {
  auto r = c.range(key);
  REQUIRE(r);
  REQUIRE(r->kvs.size() == 1);
  return r->kvs[0];
}

} // namespace

TEST_CASE("a lock txn's outcome: ours, theirs, vanished or to re-bind",
          "[vip_lock]") {
  vip::lock_ask a{"/k.lock", "n1", 7};
  etcd::txn_result won;
  won.succeeded = true;
  won.revision = 42;
  CHECK(vip::judge_lock(a, won).answer == vip::lock_answer{true, "n1", 42});

  etcd::txn_result lost;
  lost.ranges = {{etcd::key_value{"/k.lock", "n2", 5, 9, 1, 8}}};
  CHECK(vip::judge_lock(a, lost).answer == vip::lock_answer{false, "n2", 9});

  etcd::txn_result same;
  same.ranges = {{etcd::key_value{"/k.lock", "n1", 5, 9, 1, 7}}};
  CHECK(vip::judge_lock(a, same).answer == vip::lock_answer{true, "n1", 9});

  etcd::txn_result older;
  older.ranges = {{etcd::key_value{"/k.lock", "n1", 5, 9, 1, 3}}};
  auto v = vip::judge_lock(a, older);
  CHECK_FALSE(v.answer);
  CHECK(v.rebind_at == 9);

  etcd::txn_result gone;
  gone.ranges = {{}};
  CHECK(vip::judge_lock(a, gone).answer == vip::lock_answer{false, "", 0});
}

TEST_CASE("nested txns run in one round trip and keep their own branches",
          "[vip_lock]") {
  etcd_server srv;
  etcd::client c{config_for(srv)};
  REQUIRE(c.put(lock_key(2), "other"));
  std::vector<etcd::txn_request> reqs;
  for (int i = 1; i <= 3; ++i)
    reqs.push_back(vip::lock_txn({lock_key(i), "n1", 0}));
  auto r = c.txns(reqs);
  REQUIRE(r);
  REQUIRE(r->size() == 3);
  CHECK((*r)[0].succeeded);
  CHECK_FALSE((*r)[1].succeeded);
  REQUIRE((*r)[1].ranges.size() == 1);
  REQUIRE((*r)[1].ranges[0].size() == 1);
  CHECK((*r)[1].ranges[0][0].value == "other");
  CHECK((*r)[2].succeeded);
  // One commit: every result carries its revision, which is the keys'.
  CHECK((*r)[0].revision == (*r)[2].revision);
  CHECK(stored(c, lock_key(1)).mod_revision == (*r)[0].revision);
  CHECK(stored(c, lock_key(3)).mod_revision == (*r)[0].revision);

  std::vector<etcd::txn_request> too_many(etcd::client::max_nested_txns + 1,
                                          vip::lock_txn({"/x", "n1", 0}));
  auto refused = c.txns(too_many);
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == "invalid");
}

TEST_CASE("many locks are taken in few round trips, each judged alone",
          "[vip_lock]") {
  etcd_server srv;
  etcd::client c{config_for(srv)};
  auto lease = c.lease_grant(30);
  REQUIRE(lease);
  REQUIRE(c.put(lock_key(5), "n2"));
  auto theirs = stored(c, lock_key(5));
  auto before = c.status();
  REQUIRE(before);

  // Three rounds of nested txns (64 + 64 + 22), not 150 txns.
  std::vector<vip::lock_ask> asks;
  for (int i = 0; i < 150; ++i)
    asks.push_back({lock_key(i), "n1", lease->id});
  auto answers = vip::take_locks(c, asks);
  REQUIRE(answers.size() == asks.size());
  for (int i = 0; i < 150; ++i) {
    INFO("lock " << i);
    REQUIRE(answers[i]);
    if (i == 5) {
      CHECK(*answers[i] == vip::lock_answer{false, "n2", theirs.mod_revision});
      continue;
    }
    CHECK(answers[i]->ours);
    CHECK(answers[i]->holder == "n1");
    auto kv = stored(c, lock_key(i));
    CHECK(kv.value == "n1");
    CHECK(kv.lease == lease->id);
    CHECK(kv.mod_revision == answers[i]->revision);
  }
  auto after = c.status();
  REQUIRE(after);
  // Each round trip commits once: the store moved by three revisions.
  CHECK(after->revision - before->revision == 3);
  CHECK(stored(c, lock_key(5)).value == "n2");
}

TEST_CASE("a key asked twice stays in order and our old lock is re-bound",
          "[vip_lock]") {
  etcd_server srv;
  etcd::client c{config_for(srv)};
  auto old_lease = c.lease_grant(30);
  auto lease = c.lease_grant(30);
  REQUIRE(old_lease);
  REQUIRE(lease);
  // A previous run's lock: our value on another lease.
  REQUIRE(c.put(lock_key(1), "n1", old_lease->id));

  std::vector<vip::lock_ask> asks{{lock_key(1), "n1", lease->id},
                                  {lock_key(2), "n1", lease->id},
                                  {lock_key(2), "n1", lease->id}};
  auto answers = vip::take_locks(c, asks);
  REQUIRE(answers.size() == 3);
  for (auto& a : answers) {
    REQUIRE(a);
    CHECK(a->ours);
  }
  auto rebound = stored(c, lock_key(1));
  CHECK(rebound.lease == lease->id);
  CHECK(answers[0]->revision == rebound.mod_revision);
  // The second ask of key 2 found the first one's put.
  auto kv = stored(c, lock_key(2));
  CHECK(answers[1]->revision == kv.mod_revision);
  CHECK(answers[2]->revision == kv.mod_revision);
  CHECK(kv.version == 1);
}

TEST_CASE("a failed round trip fails the locks it carried", "[vip_lock]") {
  etcd::client_config cfg;
  cfg.endpoints = {"127.0.0.1:1"};
  cfg.call_timeout = std::chrono::milliseconds(300);
  cfg.dial_timeout = std::chrono::milliseconds(100);
  etcd::client c{cfg};
  auto answers
    = vip::take_locks(c, {{lock_key(1), "n1", 1}, {lock_key(2), "n1", 1}});
  REQUIRE(answers.size() == 2);
  for (auto& a : answers) {
    REQUIRE_FALSE(a);
    CHECK(a.error().code == "unavailable");
  }
}
