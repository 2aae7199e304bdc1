// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include "net/etcd/lease.hpp"

using namespace networkd;
using namespace std::chrono_literals;

TEST_CASE("the lease deadline is the send time plus TTL minus the margin",
          "[lease]") {
  lease_tracker t{500ms};
  lease_tracker::time_point t0{10s};
  CHECK_FALSE(t.alive(t0));
  t.renewed(7, 6, t0);
  CHECK(t.alive(t0));
  CHECK(t.deadline() == t0 + 6s - 500ms);
  CHECK(t.remaining(t0 + 1s) == 4500ms);
  CHECK(t.alive(t0 + 5499ms));
  CHECK_FALSE(t.alive(t0 + 5500ms));
  CHECK(t.remaining(t0 + 7s) == 0ms);
}

TEST_CASE("a late answer to an older keep-alive never shortens the deadline",
          "[lease]") {
  lease_tracker t{1s};
  lease_tracker::time_point t0{100s};
  t.renewed(1, 10, t0 + 5s);
  auto d = t.deadline();
  t.renewed(1, 10, t0 + 2s);
  CHECK(t.deadline() == d);
  CHECK(t.renewals() == 2);
}

TEST_CASE("keep-alives go well inside the TTL, sooner after a failure",
          "[lease]") {
  lease_tracker t{1s};
  t.renewed(1, 30, lease_tracker::time_point{});
  CHECK(t.next_keepalive(false) == 10s); // TTL / 3
  t.renewed(1, 6, lease_tracker::time_point{});
  // The address lives >= 6 - 1 - 1 = 4 s: renewed while half is left.
  CHECK(t.next_keepalive(false) == 2s);
  t.set_margin(2s);
  t.renewed(1, 6, lease_tracker::time_point{});
  CHECK(t.next_keepalive(false) == 1500ms); // (6 - 2 - 1 s) / 2
  CHECK(t.next_keepalive(true) == 600ms);
  t.set_margin(1s);
  t.renewed(1, 3, lease_tracker::time_point{});
  CHECK(t.next_keepalive(false) == 500ms); // (3 - 1 - 1 s) / 2
  t.renewed(1, 2, lease_tracker::time_point{});
  CHECK(t.next_keepalive(false) == 250ms);
  t.renewed(1, 1, lease_tracker::time_point{});
  CHECK(t.next_keepalive(true) == 100ms);
}

TEST_CASE("a lost lease is not alive whatever the clock says", "[lease]") {
  lease_tracker t;
  lease_tracker::time_point t0{1s};
  t.renewed(3, 60, t0);
  t.lost();
  CHECK_FALSE(t.alive(t0));
  CHECK(t.id() == 0);
  CHECK(t.remaining(t0) == 0ms);
  t.renewed(4, 0, t0);
  CHECK_FALSE(t.alive(t0));
}

TEST_CASE("a renewal answered late asks for another one at once", "[lease]") {
  lease_tracker t{1s};
  lease_tracker::time_point t0{50s};
  // TTL 6 s, margin 1 s: 5 s usable.
  t.renewed(9, 6, t0);
  CHECK_FALSE(t.late(t0 + 100ms));
  CHECK_FALSE(t.late(t0 + 2500ms)); // 2.5 s left: half
  CHECK(t.late(t0 + 2600ms));
  // A grant sent at t0 whose answer took 4 s.
  lease_tracker g{1s};
  g.renewed(10, 6, t0);
  CHECK(g.alive(t0 + 4s));
  CHECK(g.late(t0 + 4s));
  // Renewed from a fresh send: fine again.
  g.renewed(10, 6, t0 + 4s);
  CHECK_FALSE(g.late(t0 + 4100ms));
  g.lost();
  CHECK_FALSE(g.late(t0 + 4100ms));
}

TEST_CASE(
  "a new fencing margin moves the next deadline and is capped at half the TTL",
  "[lease]") {
  lease_tracker l{1000ms};
  auto t0 = lease_tracker::time_point{} + 100s;
  l.renewed(7, 6, t0);
  CHECK(l.deadline() == t0 + 5000ms);
  l.set_margin(2500ms);
  // The lease already granted keeps its deadline until the next renewal.
  CHECK(l.deadline() == t0 + 5000ms);
  l.renewed(7, 6, t0 + 2s);
  CHECK(l.deadline() == t0 + 2s + 3500ms);
  // A margin longer than half the TTL would leave (almost) no lease.
  l.set_margin(30000ms);
  CHECK(l.margin_for(6) == 3000ms);
  l.renewed(7, 6, t0 + 4s);
  CHECK(l.deadline() == t0 + 4s + 3000ms);
}
