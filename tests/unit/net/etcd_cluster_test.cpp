// SPDX-License-Identifier: MIT
// The etcd client and watcher against a real three-member cluster.
#include <catch2/catch.hpp>

#include "net/etcd/etcd.hpp"
#include "tests/support/etcd_fixture.hpp"

using namespace networkd;
using namespace networkd::test;
using namespace std::chrono_literals;

TEST_CASE("calls and watches move on when the member in use dies") {
  etcd_cluster cluster;
  etcd::client_config cfg;
  for (auto& e : cluster.endpoints())
    cfg.endpoints.push_back("http://" + e);
  cfg.call_timeout = 2000ms;
  cfg.dial_timeout = 300ms;
  etcd::client c{cfg};
  REQUIRE(c.put("/w/a", "1"));
  auto lease = c.lease_grant(30);
  REQUIRE(lease);
  REQUIRE(c.lease_keepalive(lease->id));

  watch_recorder rec;
  etcd::watcher w{c, "/w/", rec.handler()};
  REQUIRE(wait_until(
    [&] { return w.status().state == etcd::watch_status::phase::watching; }));

  auto used = cluster.index_of(c.current_endpoint());
  REQUIRE(used < etcd_cluster::size);
  cluster.stop(used);

  // When the dead member was the leader, writes wait for a new election;
  // otherwise the first put already lands on another member.
  std::vector<int64_t> revisions;
  REQUIRE(wait_until(
    [&] {
      auto p = c.put("/w/b", "2");
      if (p)
        revisions.push_back(p->revision);
      return p.ok();
    },
    10s, 50ms));
  CHECK(c.current_endpoint() != cluster.endpoint(used));
  auto r = c.range("/w/b");
  REQUIRE(r);
  CHECK(r->kvs.at(0).value == "2");
  auto ka = c.lease_keepalive(lease->id);
  REQUIRE(ka);
  CHECK(ka->ttl == 30);
  auto st = c.status();
  REQUIRE(st);
  CHECK(st->endpoint != cluster.endpoint(used));

  auto last = c.put("/w/c", "3");
  REQUIRE(last);
  REQUIRE(wait_until([&] { return rec.revision() == last->revision; }));
  CHECK(rec.check() == "");
  for (auto rev : revisions)
    CHECK(rec.times_delivered("/w/b", rev) == 1);
  CHECK(rec.state() == store_state(c, "/w/"));
  CHECK(w.status().reconnects >= 1);

  // The member comes back and the cluster is whole again.
  cluster.start(used);
  // The rejoining member may briefly disturb the cluster: retry until a
  // write goes through.
  etcd::put_result again_put;
  REQUIRE(wait_until(
    [&] {
      auto p = c.put("/w/d", "4");
      if (p)
        again_put = *p;
      return p.ok();
    },
    15s, 100ms));
  auto again = &again_put;
  REQUIRE(wait_until([&] { return rec.revision() == again->revision; }));
  CHECK(rec.check() == "");
}
