// SPDX-License-Identifier: MIT
// The etcd client against a real single-member etcd.
#include <catch2/catch.hpp>

#include <thread>

#include "net/etcd/etcd.hpp"
#include "tests/support/etcd_fixture.hpp"

using namespace networkd;
using namespace networkd::test;
using namespace std::chrono_literals;

namespace {

etcd::client_config config_for(const etcd_server& srv) {
  etcd::client_config cfg;
  cfg.endpoints = {"http://" + srv.endpoint()};
  return cfg;
}

std::vector<std::string> keys_of(const std::vector<etcd::key_value>& kvs) {
  std::vector<std::string> out;
  for (auto& kv : kvs)
    out.push_back(kv.key);
  return out;
}

bool key_exists(etcd::client& c, const std::string& key) {
  auto r = c.range(key);
  return r && !r->kvs.empty();
}

} // namespace

TEST_CASE("put, get and delete one key") {
  etcd_server srv;
  etcd::client c{config_for(srv)};

  auto p = c.put("/t/a", "one");
  REQUIRE(p);
  CHECK(p->revision > 1);
  CHECK_FALSE(p->prev);

  auto r = c.range("/t/a");
  REQUIRE(r);
  REQUIRE(r->kvs.size() == 1);
  CHECK(r->kvs[0].key == "/t/a");
  CHECK(r->kvs[0].value == "one");
  CHECK(r->kvs[0].mod_revision == p->revision);
  CHECK(r->kvs[0].create_revision == p->revision);
  CHECK(r->kvs[0].version == 1);
  CHECK(r->revision == p->revision);

  auto p2 = c.put("/t/a", "two", 0, true);
  REQUIRE(p2);
  REQUIRE(p2->prev);
  CHECK(p2->prev->value == "one");
  CHECK(p2->prev->mod_revision == p->revision);
  CHECK(p2->revision == p->revision + 1);

  auto d = c.erase("/t/a");
  REQUIRE(d);
  CHECK(d->deleted == 1);
  CHECK(d->revision == p2->revision + 1);
  auto gone = c.range("/t/a");
  REQUIRE(gone);
  CHECK(gone->kvs.empty());
  auto again = c.erase("/t/a");
  REQUIRE(again);
  CHECK(again->deleted == 0);
  CHECK(c.current_endpoint() == srv.endpoint());
}

TEST_CASE("prefix ranges honour keys_only and limit") {
  etcd_server srv;
  etcd::client c{config_for(srv)};
  for (auto k : {"/p/b", "/p/a", "/p/c", "/pz", "/o"})
    REQUIRE(c.put(k, std::string("v") + k));

  etcd::range_options all;
  all.prefix = true;
  auto r = c.range("/p/", all);
  REQUIRE(r);
  CHECK(keys_of(r->kvs) == std::vector<std::string>{"/p/a", "/p/b", "/p/c"});
  CHECK(r->kvs[1].value == "v/p/b");
  CHECK(r->count == 3);
  CHECK_FALSE(r->more);

  auto keys = all;
  keys.keys_only = true;
  auto k = c.range("/p/", keys);
  REQUIRE(k);
  REQUIRE(k->kvs.size() == 3);
  CHECK(k->kvs[0].value.empty());

  auto limited = all;
  limited.limit = 2;
  auto l = c.range("/p/", limited);
  REQUIRE(l);
  CHECK(keys_of(l->kvs) == std::vector<std::string>{"/p/a", "/p/b"});
  CHECK(l->more);
  CHECK(l->count == 3);

  auto d = c.erase("/p/", true);
  REQUIRE(d);
  CHECK(d->deleted == 3);
  CHECK(key_exists(c, "/pz"));
  CHECK(key_exists(c, "/o"));
}

TEST_CASE("reads at an old revision and compaction") {
  etcd_server srv;
  etcd::client c{config_for(srv)};
  auto first = c.put("/r/k", "old");
  REQUIRE(first);
  auto second = c.put("/r/k", "new");
  REQUIRE(second);
  etcd::range_options at;
  at.revision = first->revision;
  auto r = c.range("/r/k", at);
  REQUIRE(r);
  REQUIRE(r->kvs.size() == 1);
  CHECK(r->kvs[0].value == "old");

  REQUIRE(c.compact(second->revision));
  auto compacted = c.range("/r/k", at);
  REQUIRE_FALSE(compacted);
  CHECK(compacted.error().code == "compacted");
}

TEST_CASE("txn create_revision == 0 puts a key only once") {
  etcd_server srv;
  etcd::client c{config_for(srv)};
  etcd::txn_request lock;
  lock.compares.push_back({"/lock", etcd::compare::target::create_revision,
                           etcd::compare::op::equal, "", 0});
  lock.success.push_back(
    {etcd::txn_op::kind::put, "/lock", "node-a", 0, false});
  lock.failure.push_back({etcd::txn_op::kind::range, "/lock", "", 0, false});

  auto won = c.txn(lock);
  REQUIRE(won);
  CHECK(won->succeeded);
  CHECK(won->ranges.empty());

  lock.success[0].value = "node-b";
  auto lost = c.txn(lock);
  REQUIRE(lost);
  CHECK_FALSE(lost->succeeded);
  REQUIRE(lost->ranges.size() == 1);
  REQUIRE(lost->ranges[0].size() == 1);
  CHECK(lost->ranges[0][0].value == "node-a");
  CHECK(lost->ranges[0][0].mod_revision == won->revision);
  CHECK(lost->revision == won->revision);
}

TEST_CASE("txn compares on value and mod_revision") {
  etcd_server srv;
  etcd::client c{config_for(srv)};
  auto p = c.put("/v", "mine");
  REQUIRE(p);

  // Release guarded by the value: a stranger's value does not match.
  etcd::txn_request release;
  release.compares.push_back(
    {"/v", etcd::compare::target::value, etcd::compare::op::equal, "other", 0});
  release.success.push_back({etcd::txn_op::kind::erase, "/v", "", 0, false});
  auto no = c.txn(release);
  REQUIRE(no);
  CHECK_FALSE(no->succeeded);
  CHECK(key_exists(c, "/v"));
  release.compares[0].value = "mine";
  auto yes = c.txn(release);
  REQUIRE(yes);
  CHECK(yes->succeeded);
  CHECK_FALSE(key_exists(c, "/v"));

  auto q = c.put("/m", "1");
  REQUIRE(q);
  etcd::txn_request update;
  update.compares.push_back({"/m", etcd::compare::target::mod_revision,
                             etcd::compare::op::equal, "", q->revision});
  update.success.push_back({etcd::txn_op::kind::put, "/m", "2", 0, false});
  update.success.push_back({etcd::txn_op::kind::range, "/m", "", 0, false});
  auto first = c.txn(update);
  REQUIRE(first);
  CHECK(first->succeeded);
  REQUIRE(first->ranges.size() == 1);
  CHECK(first->ranges[0].at(0).value == "2");
  auto stale = c.txn(update);
  REQUIRE(stale);
  CHECK_FALSE(stale->succeeded);

  etcd::txn_request newer;
  newer.compares.push_back({"/m", etcd::compare::target::mod_revision,
                            etcd::compare::op::greater, "", q->revision});
  newer.compares.push_back(
    {"/m", etcd::compare::target::version, etcd::compare::op::equal, "", 2});
  auto g = c.txn(newer);
  REQUIRE(g);
  CHECK(g->succeeded);
}

TEST_CASE("an expired lease removes its keys") {
  etcd_server srv;
  etcd::client c{config_for(srv)};
  auto lease = c.lease_grant(2);
  REQUIRE(lease);
  CHECK(lease->id != 0);
  CHECK(lease->ttl == 2);
  auto p = c.put("/l/k", "v", lease->id);
  REQUIRE(p);
  auto r = c.range("/l/k");
  REQUIRE(r);
  REQUIRE(r->kvs.size() == 1);
  CHECK(r->kvs[0].lease == lease->id);
  auto granted = std::chrono::steady_clock::now();
  REQUIRE(wait_until([&] { return !key_exists(c, "/l/k"); }, 8s, 50ms));
  CHECK(std::chrono::steady_clock::now() - granted > 1500ms);
  auto ka = c.lease_keepalive(lease->id);
  REQUIRE(ka);
  CHECK(ka->ttl == 0);
}

TEST_CASE("keep-alives keep a lease past its TTL") {
  etcd_server srv;
  etcd::client c{config_for(srv)};
  auto lease = c.lease_grant(2);
  REQUIRE(lease);
  REQUIRE(c.put("/l/k", "v", lease->id));
  auto until = std::chrono::steady_clock::now() + 3500ms;
  int rounds = 0;
  while (std::chrono::steady_clock::now() < until) {
    auto before = std::chrono::steady_clock::now();
    auto ka = c.lease_keepalive(lease->id);
    REQUIRE(ka);
    CHECK(ka->ttl == 2);
    CHECK(ka->sent_at >= before);
    CHECK(ka->sent_at <= std::chrono::steady_clock::now());
    ++rounds;
    std::this_thread::sleep_for(400ms);
  }
  CHECK(rounds >= 5);
  CHECK(key_exists(c, "/l/k"));
  auto ttl = c.lease_time_to_live(lease->id, true);
  REQUIRE(ttl);
  CHECK(ttl->ttl > 0);
  CHECK(ttl->granted_ttl == 2);
  CHECK(ttl->keys == std::vector<std::string>{"/l/k"});
}

TEST_CASE("revoking a lease removes its keys at once") {
  etcd_server srv;
  etcd::client c{config_for(srv)};
  auto lease = c.lease_grant(60);
  REQUIRE(lease);
  REQUIRE(c.put("/l/a", "1", lease->id));
  REQUIRE(c.put("/l/b", "2", lease->id));
  auto ttl = c.lease_time_to_live(lease->id);
  REQUIRE(ttl);
  CHECK(ttl->ttl > 50);
  CHECK(ttl->ttl <= 60);
  CHECK(ttl->keys.empty());
  REQUIRE(c.lease_revoke(lease->id));
  CHECK_FALSE(key_exists(c, "/l/a"));
  CHECK_FALSE(key_exists(c, "/l/b"));
  auto after = c.lease_time_to_live(lease->id);
  REQUIRE(after);
  CHECK(after->ttl == -1);
  auto again = c.lease_revoke(lease->id);
  REQUIRE_FALSE(again);
  CHECK(again.error().code == "not_found");
  auto ka = c.lease_keepalive(lease->id);
  REQUIRE(ka);
  CHECK(ka->ttl == 0);
}

TEST_CASE("status reports the member in use") {
  etcd_server srv;
  etcd::client c{config_for(srv)};
  auto p = c.put("/s", "x");
  REQUIRE(p);
  auto st = c.status();
  REQUIRE(st);
  CHECK(st->endpoint == srv.endpoint());
  CHECK(st->version.rfind("3.", 0) == 0);
  CHECK(st->member_id != 0);
  CHECK(st->leader == st->member_id);
  CHECK(st->raft_term >= 1);
  CHECK(st->db_size > 0);
  CHECK(st->revision == p->revision);
}

TEST_CASE("calls against a stopped etcd fail within the deadline") {
  etcd_server srv;
  auto cfg = config_for(srv);
  cfg.call_timeout = 1000ms;
  cfg.dial_timeout = 300ms;
  etcd::client c{cfg};
  auto lease = c.lease_grant(30);
  REQUIRE(lease);
  REQUIRE(c.lease_keepalive(lease->id));
  srv.stop();

  auto timed = [](auto&& call) {
    auto start = std::chrono::steady_clock::now();
    auto r = call();
    auto took = std::chrono::steady_clock::now() - start;
    CHECK(took < 1500ms);
    REQUIRE_FALSE(r);
    INFO(r.error().to_string());
    CHECK((r.error().code == "unavailable" || r.error().code == "timeout"));
  };
  timed([&] { return c.put("/x", "y"); });
  timed([&] { return c.range("/x"); });
  timed([&] { return c.lease_keepalive(lease->id); });
  timed([&] { return c.status(); });

  // Back on the same port: the client reconnects by itself.
  srv.start();
  REQUIRE(wait_until([&] { return c.put("/x", "y").ok(); }, 10s, 50ms));
  auto ka = c.lease_keepalive(lease->id);
  REQUIRE(ka);
  CHECK(ka->ttl == 30);
}

TEST_CASE("an unreachable endpoint is skipped for the next one") {
  etcd_server srv;
  etcd::client_config cfg;
  cfg.endpoints = {"127.0.0.1:" + std::to_string(free_port()), srv.endpoint()};
  etcd::client c{cfg};
  auto start = std::chrono::steady_clock::now();
  REQUIRE(c.put("/k", "v"));
  CHECK(std::chrono::steady_clock::now() - start < 1500ms);
  CHECK(c.current_endpoint() == srv.endpoint());

  etcd::client_config bad;
  bad.endpoints = {"no-port"};
  etcd::client broken{bad};
  auto r = broken.range("/k");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "invalid");
}

TEST_CASE("user and password authenticate, and an expired token is renewed") {
  // Tokens die after 1 s without use.
  etcd_server srv{{"--auth-token-ttl=1"}};
  REQUIRE(srv.etcdctl("user add root:secret") == 0);
  REQUIRE(srv.etcdctl("auth enable") == 0);

  auto cfg = config_for(srv);
  cfg.user = "root";
  cfg.password = "secret";
  // etcd checks passwords with bcrypt: slow on a loaded machine.
  cfg.call_timeout = 10000ms;
  etcd::client c{cfg};
  REQUIRE(c.put("/a", "1"));
  auto r = c.range("/a");
  REQUIRE(r);
  CHECK(r->kvs.size() == 1);
  auto lease = c.lease_grant(30);
  REQUIRE(lease);
  REQUIRE(c.lease_keepalive(lease->id));

  // Waiting for the token to expire is the point here: no condition to poll.
  std::this_thread::sleep_for(2500ms);
  auto again = c.range("/a");
  REQUIRE(again);
  CHECK(again->kvs.size() == 1);
  auto st = c.status();
  REQUIRE(st);
  auto ka = c.lease_keepalive(lease->id);
  REQUIRE(ka);
  CHECK(ka->ttl == 30);

  auto wrong = cfg;
  wrong.password = "nope";
  etcd::client w{wrong};
  auto denied = w.range("/a");
  REQUIRE_FALSE(denied);
  CHECK(denied.error().code == "auth");

  etcd::client anonymous{config_for(srv)};
  auto anon = anonymous.range("/a");
  REQUIRE_FALSE(anon);
  CHECK(anon.error().code == "auth");
}
