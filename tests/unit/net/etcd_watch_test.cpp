// SPDX-License-Identifier: MIT
// The etcd prefix watcher against real etcd: snapshot, order, resume after
// a restart, resync after compaction.
#include <catch2/catch.hpp>

#include <atomic>

#include "net/etcd/etcd.hpp"
#include "tests/support/etcd_fixture.hpp"

using namespace networkd;
using namespace networkd::test;
using namespace std::chrono_literals;

namespace {

etcd::client_config config_for(const std::string& endpoint) {
  etcd::client_config cfg;
  cfg.endpoints = {endpoint};
  cfg.call_timeout = 1000ms;
  cfg.dial_timeout = 300ms;
  return cfg;
}

/// After killing a member: a linearizable read succeeds only once the
/// others have a leader again (the dead one may have been it).
bool has_leader(etcd::client& c) {
  return wait_until([&] { return c.range("/").ok(); }, 10s, 50ms);
}

bool phase_is(const etcd::watcher& w, etcd::watch_status::phase p) {
  return w.status().state == p;
}

} // namespace

TEST_CASE("the watcher delivers a snapshot, then every change in order") {
  etcd_server srv;
  etcd::client c{config_for(srv.endpoint())};
  REQUIRE(c.put("/w/a", "1"));
  auto b = c.put("/w/b", "2");
  REQUIRE(b);
  REQUIRE(c.put("/x/outside", "no"));

  watch_recorder rec;
  std::atomic<int> status_calls{0};
  etcd::watcher w{c, "/w/", rec.handler(),
                  [&](const etcd::watch_status&) { ++status_calls; }};
  CHECK(w.prefix() == "/w/");
  REQUIRE(wait_until([&] { return rec.batch_count() >= 1; }));
  auto first = rec.batches().front();
  CHECK(first.snapshot);
  CHECK(first.revision >= b->revision);
  REQUIRE(first.events.size() == 2);
  CHECK(first.events[0].kv.key == "/w/a");
  CHECK(first.events[1].kv.value == "2");
  REQUIRE(wait_until(
    [&] { return phase_is(w, etcd::watch_status::phase::watching); }));

  auto c1 = c.put("/w/c", "3");
  REQUIRE(c1);
  REQUIRE(c.put("/w/a", "1b"));
  REQUIRE(c.erase("/w/b"));
  REQUIRE(c.put("/x/outside", "still no"));
  etcd::txn_request two;
  two.success.push_back({etcd::txn_op::kind::put, "/w/t1", "x", 0, false});
  two.success.push_back({etcd::txn_op::kind::put, "/w/t2", "y", 0, false});
  auto t = c.txn(two);
  REQUIRE(t);

  REQUIRE(wait_until([&] { return rec.revision() == t->revision; }));
  CHECK(rec.check() == "");
  CHECK(rec.state() == store_state(c, "/w/"));
  auto batches = rec.batches();
  // The txn's two puts share one revision and come as one batch.
  auto& last = batches.back();
  CHECK_FALSE(last.snapshot);
  REQUIRE(last.events.size() == 2);
  CHECK(last.events[0].kv.key == "/w/t1");
  CHECK(last.events[1].kv.key == "/w/t2");
  // A delete carries the previous value.
  bool saw_erase = false;
  for (auto& batch : batches)
    for (auto& ev : batch.events)
      if (ev.what == etcd::watch_event::kind::erase) {
        saw_erase = true;
        CHECK(ev.kv.key == "/w/b");
        REQUIRE(ev.prev);
        CHECK(ev.prev->value == "2");
      }
  CHECK(saw_erase);
  auto st = w.status();
  CHECK(st.revision == t->revision);
  CHECK(st.reconnects == 0);
  CHECK(st.resyncs == 0);
  CHECK(status_calls > 0);
}

TEST_CASE(
  "the watcher resumes after an etcd restart, nothing lost or doubled") {
  etcd_server srv;
  etcd::client c{config_for(srv.endpoint())};
  REQUIRE(c.put("/w/a", "1"));
  watch_recorder rec;
  etcd::watcher w{c, "/w/", rec.handler()};
  REQUIRE(wait_until(
    [&] { return phase_is(w, etcd::watch_status::phase::watching); }));
  auto before = c.put("/w/b", "1");
  REQUIRE(before);
  REQUIRE(wait_until([&] { return rec.revision() == before->revision; }));

  srv.stop();
  REQUIRE(wait_until(
    [&] { return phase_is(w, etcd::watch_status::phase::retrying); }));
  srv.start();
  // A second client writes while the watcher is likely still backing off.
  etcd::client writer{config_for(srv.endpoint())};
  std::vector<std::pair<std::string, int64_t>> written;
  for (int i = 0; i < 5; ++i) {
    auto key = "/w/k" + std::to_string(i);
    auto p = writer.put(key, "v" + std::to_string(i));
    REQUIRE(p);
    written.emplace_back(key, p->revision);
  }
  auto d = writer.erase("/w/a");
  REQUIRE(d);
  REQUIRE(wait_until([&] { return rec.revision() == d->revision; }));
  CHECK(rec.check() == "");
  for (auto& [key, rev] : written)
    CHECK(rec.times_delivered(key, rev) == 1);
  CHECK(rec.state() == store_state(c, "/w/"));
  CHECK(w.status().reconnects >= 1);
  CHECK(w.status().resyncs == 0);
}

TEST_CASE("the watcher resumes on its member from where it stopped") {
  // The watcher's client only knows member 0; the writes happen through the
  // others while member 0 is down, so they are certainly missed live.
  etcd_cluster cluster;
  etcd::client c{config_for(cluster.endpoint(0))};
  etcd::client other{config_for(cluster.endpoint(1))};
  REQUIRE(c.put("/w/a", "1"));
  watch_recorder rec;
  etcd::watcher w{c, "/w/", rec.handler()};
  REQUIRE(wait_until(
    [&] { return phase_is(w, etcd::watch_status::phase::watching); }));

  cluster.stop(0);
  REQUIRE(has_leader(other));
  auto b = other.put("/w/b", "2");
  REQUIRE(b);
  auto a = other.put("/w/a", "1b");
  REQUIRE(a);
  auto gone = other.erase("/w/b");
  REQUIRE(gone);
  cluster.start(0);

  REQUIRE(wait_until([&] { return rec.revision() == gone->revision; }));
  CHECK(rec.check() == "");
  CHECK(rec.times_delivered("/w/b", b->revision) == 1);
  CHECK(rec.times_delivered("/w/a", a->revision) == 1);
  CHECK(rec.state() == store_state(other, "/w/"));
  auto st = w.status();
  CHECK(st.reconnects >= 1);
  CHECK(st.resyncs == 0);
  // Everything after the snapshot came as live events.
  for (size_t i = 1; i < rec.batches().size(); ++i)
    CHECK_FALSE(rec.batches()[i].snapshot);
}

TEST_CASE("a compaction past the watch revision forces one resync") {
  etcd_cluster cluster;
  etcd::client c{config_for(cluster.endpoint(0))};
  etcd::client other{config_for(cluster.endpoint(1))};
  auto a = c.put("/w/a", "1");
  REQUIRE(a);
  REQUIRE(c.put("/w/b", "1"));
  REQUIRE(c.put("/w/c", "1"));
  watch_recorder rec;
  std::atomic<uint64_t> reported_resyncs{0};
  etcd::watcher w{c, "/w/", rec.handler(), [&](const etcd::watch_status& s) {
                    reported_resyncs = s.resyncs;
                  }};
  REQUIRE(wait_until(
    [&] { return phase_is(w, etcd::watch_status::phase::watching); }));
  auto seen = rec.revision();

  cluster.stop(0);
  REQUIRE(has_leader(other));
  REQUIRE(other.put("/w/b", "2"));
  auto b3 = other.put("/w/b", "3");
  REQUIRE(b3);
  REQUIRE(other.erase("/w/c"));
  auto d = other.put("/w/d", "1");
  REQUIRE(d);
  REQUIRE(other.put("/x/outside", "1"));
  REQUIRE(other.compact(d->revision));
  cluster.start(0);

  REQUIRE(wait_until([&] { return w.status().resyncs == 1; }));
  REQUIRE(wait_until([&] { return rec.revision() >= d->revision; }));
  CHECK(rec.check() == "");
  CHECK(rec.state() == store_state(other, "/w/"));
  auto batches = rec.batches();
  REQUIRE(batches.size() == 2);
  auto& resync = batches[1];
  CHECK(resync.snapshot);
  CHECK(resync.revision > seen);
  // Only the difference: b changed, c vanished, d is new; a is untouched.
  std::map<std::string, etcd::watch_event::kind> diff;
  for (auto& ev : resync.events)
    diff[ev.kv.key] = ev.what;
  CHECK(diff
        == std::map<std::string, etcd::watch_event::kind>{
          {"/w/b", etcd::watch_event::kind::put},
          {"/w/c", etcd::watch_event::kind::erase},
          {"/w/d", etcd::watch_event::kind::put}});
  CHECK(rec.times_delivered("/w/b", b3->revision) == 1);
  CHECK(rec.times_delivered("/w/a", a->revision) == 1);
  CHECK(reported_resyncs == 1);

  // Live events again after the resync.
  auto e = c.put("/w/e", "1");
  REQUIRE(e);
  REQUIRE(wait_until([&] { return rec.revision() == e->revision; }));
  CHECK_FALSE(rec.batches().back().snapshot);
  CHECK(rec.check() == "");
}

TEST_CASE("destroying a watcher stops it promptly, even while retrying") {
  etcd_server srv;
  etcd::client c{config_for(srv.endpoint())};
  std::atomic<bool> destroyed{false};
  std::atomic<int> late_calls{0};
  auto w = std::make_unique<etcd::watcher>(
    c, "/w/",
    [&](etcd::watch_batch) {
      if (destroyed)
        ++late_calls;
    },
    [&](const etcd::watch_status&) {
      if (destroyed)
        ++late_calls;
    });
  REQUIRE(wait_until(
    [&] { return phase_is(*w, etcd::watch_status::phase::watching); }));
  auto start = std::chrono::steady_clock::now();
  w.reset();
  destroyed = true;
  CHECK(std::chrono::steady_clock::now() - start < 300ms);

  w = std::make_unique<etcd::watcher>(c, "/w/", [](etcd::watch_batch) {});
  REQUIRE(wait_until(
    [&] { return phase_is(*w, etcd::watch_status::phase::watching); }));
  srv.stop();
  REQUIRE(wait_until(
    [&] { return phase_is(*w, etcd::watch_status::phase::retrying); }));
  start = std::chrono::steady_clock::now();
  w.reset();
  CHECK(std::chrono::steady_clock::now() - start < 500ms);
  CHECK(late_calls == 0);
}
