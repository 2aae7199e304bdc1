// SPDX-License-Identifier: MIT
// Leader election among three networkd against one real etcd, and the
// swarm / deployd publishers that run only on the leader.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <signal.h>

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "tests/support/daemon.hpp"
#include "tests/support/etcd_fixture.hpp"
#include "tests/support/lainlet_server.hpp"
#include "tests/support/promtool.hpp"

using namespace networkd::test;
namespace etcd = networkd::etcd;

namespace {

/// What one node's leader actor says: {leader name, own state}.
std::pair<std::string, std::string> view(const daemon_process& d) {
  rapidjson::Document doc;
  doc.Parse(d.get("/v1/state").body.c_str());
  if (!doc.IsObject() || !doc.HasMember("actors"))
    return {};
  for (auto& a : doc["actors"].GetArray())
    if (a.HasMember("name") && std::string{a["name"].GetString()} == "leader")
      return {a["leader"].GetString(), a["state"].GetString()};
  return {};
}

struct cluster {
  etcd_server etcd;
  std::vector<std::unique_ptr<daemon_process>> nodes;

  explicit cluster(std::vector<std::string> flags = {"-swarm", "-deployd"}) {
    REQUIRE(etcd.etcdctl("put /lain/networkd/config/lease_ttl 2") == 0);
    for (int i = 1; i <= 3; ++i)
      nodes.push_back(std::make_unique<daemon_process>(
        etcd.endpoint(), flags, "node" + std::to_string(i)));
  }

  /// A number from the leader actor's counters on one node.
  static uint64_t counter(const daemon_process& d, const char* name) {
    rapidjson::Document doc;
    doc.Parse(d.get("/v1/state").body.c_str());
    if (!doc.IsObject() || !doc.HasMember("actors"))
      return 0;
    for (auto& a : doc["actors"].GetArray())
      if (a.HasMember("name") && std::string{a["name"].GetString()} == "leader")
        return a["counters"][name].GetUint64();
    return 0;
  }

  /// The leader every running node agrees on, or "".
  std::string agreed() {
    std::set<std::string> names;
    int leaders = 0;
    for (auto& n : nodes) {
      if (!n->proc().running())
        continue;
      auto [name, state] = view(*n);
      names.insert(name);
      if (state == "leader")
        ++leaders;
    }
    if (names.size() != 1 || leaders != 1)
      return {};
    return *names.begin();
  }

  daemon_process& by_name(const std::string& name) {
    for (auto& n : nodes)
      if (n->argv()[2] == "-hostname=" + name)
        return *n;
    throw std::runtime_error("no node " + name);
  }

  std::string get(const std::string& key, std::string* rev = nullptr) {
    std::string out;
    etcd.etcdctl("get --print-value-only " + key, &out);
    while (!out.empty() && out.back() == '\n')
      out.pop_back();
    if (rev != nullptr) {
      etcd.etcdctl("get -w json " + key, rev);
      auto p = rev->find("\"mod_revision\":");
      *rev = p == std::string::npos ? "" : rev->substr(p, 30);
    }
    return out;
  }
};

} // namespace

TEST_CASE("exactly one leader, a new one after SIGKILL and at once after "
          "SIGTERM",
          "[leader][daemon]") {
  cluster c;
  std::string first;
  REQUIRE(wait_until([&] { return !(first = c.agreed()).empty(); }, 15s));
  // /metrics of the running nodes: who leads (networkd_leader), and the
  // term every node agrees on. Empty when a node has no term yet.
  auto leaders = [&](std::map<std::string, double>& lead) {
    std::set<double> terms;
    lead.clear();
    for (auto& n : c.nodes) {
      if (!n->proc().running())
        continue;
      auto text = n->get("/metrics").body;
      lead[n->argv()[2].substr(sizeof "-hostname=" - 1)]
        = sample_value(text, "networkd_leader");
      terms.insert(sample_value(text, "networkd_leader_term"));
    }
    return terms.size() == 1 ? *terms.begin() : -1.0;
  };
  std::map<std::string, double> lead;
  double term1 = -1;
  REQUIRE(wait_until([&] { return (term1 = leaders(lead)) > 0; }, 5s));
  for (auto& [name, v] : lead)
    CHECK(v == (name == first ? 1 : 0));
  CHECK(sample_value(c.by_name(first).get("/metrics").body,
                     "networkd_leader_terms_total")
        == 1);
  // SIGTERM: the lease is revoked, the next candidate leads at once.
  auto t0 = std::chrono::steady_clock::now();
  c.by_name(first).proc().signal(SIGTERM);
  c.by_name(first).proc().wait(10s);
  std::string second;
  REQUIRE(wait_until(
    [&] { return !(second = c.agreed()).empty() && second != first; }, 10s));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - t0);
  WARN("SIGTERM of the leader to a new leader: " << took.count() << " ms");
  CHECK(took < 2s);
  // The metrics follow: the new leader shows 1, the other 0, and both
  // the same, newer term.
  double term2 = -1;
  CHECK(wait_until(
    [&] {
      term2 = leaders(lead);
      return term2 > term1 && lead.size() == 2 && lead.count(second) == 1
             && lead.at(second) == 1;
    },
    5s));
  for (auto& [name, v] : lead)
    CHECK(v == (name == second ? 1 : 0));
  CHECK(sample_value(c.by_name(second).get("/metrics").body,
                     "networkd_leader_terms_total")
        == 1);
  // SIGKILL: the next one leads once the dead one's lease (2 s) expires.
  c.by_name(second).proc().signal(SIGKILL);
  c.by_name(second).proc().wait(5s);
  std::string third;
  REQUIRE(wait_until(
    [&] {
      return !(third = c.agreed()).empty() && third != first && third != second;
    },
    10s));
}

TEST_CASE("the leader publishes swarm.lain and deployd.lain, only on change",
          "[leader][daemon]") {
  cluster c;
  std::string leader;
  REQUIRE(wait_until([&] { return !(leader = c.agreed()).empty(); }, 15s));
  REQUIRE(c.etcd.etcdctl("put /lain/swarm/docker/swarm/leader "
                         "10.1.1.1:2376")
          == 0);
  REQUIRE(c.etcd.etcdctl("put /lain/deployd/leader 10.2.2.2:9003") == 0);
  REQUIRE(wait_until(
    [&] {
      return c.get("/lain/config/domains/swarm.lain")
               == R"({"ips":["10.1.1.1"],"type":""})"
             && c.get("/lain/config/domains/deployd.lain")
                  == R"({"ips":["10.2.2.2"],"type":""})";
    },
    10s));
  std::string rev_before, rev_after;
  c.get("/lain/config/domains/swarm.lain", &rev_before);
  // The swarm key is rewritten with the same value: no write.
  for (int i = 0; i < 3; ++i)
    REQUIRE(c.etcd.etcdctl("put /lain/swarm/docker/swarm/leader "
                           "10.1.1.1:2377")
            == 0);
  // A later change is published, so the earlier rewrites were seen.
  REQUIRE(c.etcd.etcdctl("put /lain/deployd/leader 10.2.2.3:9003") == 0);
  REQUIRE(wait_until(
    [&] {
      return c.get("/lain/config/domains/deployd.lain")
             == R"({"ips":["10.2.2.3"],"type":""})";
    },
    10s));
  c.get("/lain/config/domains/swarm.lain", &rev_after);
  CHECK(rev_before == rev_after);
  // A new leader takes over publishing.
  c.by_name(leader).proc().signal(SIGTERM);
  c.by_name(leader).proc().wait(10s);
  REQUIRE(wait_until(
    [&] {
      auto l = c.agreed();
      return !l.empty() && l != leader;
    },
    10s));
  REQUIRE(c.etcd.etcdctl("put /lain/swarm/docker/swarm/leader "
                         "10.1.1.9:2376")
          == 0);
  REQUIRE(wait_until(
    [&] {
      return c.get("/lain/config/domains/swarm.lain")
             == R"({"ips":["10.1.1.9"],"type":""})";
    },
    10s));
  // Every node answers swarm.lain from the published domain.
  std::string out;
  auto& any = *c.nodes.back();
  REQUIRE(wait_until(
    [&] {
      sh("dig @127.0.0.1 -p " + std::to_string(any.dns_port())
           + " +short swarm.lain",
         &out);
      return out == "10.1.1.9\n";
    },
    5s));
}

TEST_CASE("webrouter, tinydns and streamrouter publishers write the "
          "original's keys, only on the leader and on change",
          "[leader][daemon]") {
  // lainlet cannot run here: the stand-in serves /v2/streamrouter/ports.
  lainlet_server lainlet;
  lainlet.set_streamrouter_ports("[9001, 9000]");
  cluster c({"-webrouter", "-tinydns", "-streamrouter", "-domain=example.com",
             "-lainlet.endpoint=" + lainlet.endpoint()});
  std::string leader;
  REQUIRE(wait_until([&] { return !(leader = c.agreed()).empty(); }, 15s));
  auto put = [&](const std::string& k, const std::string& v) {
    REQUIRE(c.etcd.etcdctl("put " + k + " '" + v + "'") == 0);
  };
  // What nodes serving port-only VIPs of webrouter and tinydns write.
  put("/lain/networkd/apps/webrouter/worker/10.0.0.2:80", "node2");
  put("/lain/networkd/apps/webrouter/worker/10.0.0.1:80", "node1");
  put("/lain/networkd/apps/tinydns/worker/10.0.0.9:53", "node3");
  put("/lain/config/vips/10.9.0.5",
      R"({"app":"hello","proc":"web","ports":[{"src":"80"}]})");
  put("/lain/config/streamrouter/vippool", R"(["10.9.1.1","10.9.1.2"])");
  auto sr = R"({"app":"streamrouter","proc":"worker","ports":[)"
            R"({"src":"9000","proto":"tcp","dest":"9000"},)"
            R"({"src":"9001","proto":"tcp","dest":"9001"}],)"
            R"("excluded_nodes":[]})";
  std::map<std::string, std::string> expected{
    {"/lain/config/domains/webrouter.lain",
     R"({"ips":["10.0.0.1","10.0.0.2"],"type":""})"},
    {"/lain/config/tinydns_fqdns/webrouter.lain",
     R"(["+webrouter.lain:10.0.0.1:300","+webrouter.lain:10.0.0.2:300"])"},
    {"/lain/config/tinydns_fqdns/lain",
     R"(["+*.lain:10.0.0.1:300",".lain:10.0.0.1:a:300",)"
     R"("+*.lain:10.0.0.2:300",".lain:10.0.0.2:a:300"])"},
    {"/lain/config/tinydns_fqdns/example.com",
     R"(["+*.example.com:10.0.0.1:300",".example.com:10.0.0.1:a:300",)"
     R"("+*.example.com:10.0.0.2:300",".example.com:10.0.0.2:a:300"])"},
    {"/lain/config/domain_servers/lain", R"({"servers":["10.0.0.9#53"]})"},
    {"/lain/config/domain_servers/example.com",
     R"({"servers":["10.0.0.9#53"]})"},
    {"/lain/config/tinydns_fqdns/hello.lain",
     R"(["+hello.lain:10.9.0.5:300"])"},
    {"/lain/config/vips/10.9.1.1", sr},
    {"/lain/config/vips/10.9.1.2", sr},
  };
  auto all_there = [&] {
    for (auto& [k, v] : expected)
      if (c.get(k) != v)
        return false;
    return true;
  };
  REQUIRE(wait_until(all_there, 15s));
  for (auto& [k, v] : expected)
    CHECK(c.get(k) == v);
  // Only the leader wrote.
  for (auto& n : c.nodes) {
    if (n->argv()[2] == "-hostname=" + leader)
      CHECK(cluster::counter(*n, "writes") >= expected.size());
    else
      CHECK(cluster::counter(*n, "writes") == 0);
  }
  // Only on change: an input rewritten with the same value writes nothing;
  // a later change is published, so the rewrite was seen.
  std::string rev_before, rev_after;
  c.get("/lain/config/tinydns_fqdns/lain", &rev_before);
  put("/lain/networkd/apps/webrouter/worker/10.0.0.1:80", "node1");
  put("/lain/networkd/apps/tinydns/worker/10.0.0.8:53", "node4");
  REQUIRE(wait_until(
    [&] {
      return c.get("/lain/config/domain_servers/lain")
             == R"({"servers":["10.0.0.8#53","10.0.0.9#53"]})";
    },
    10s));
  c.get("/lain/config/tinydns_fqdns/lain", &rev_after);
  CHECK(rev_before == rev_after);
  // A VIP dropped from the pool is deleted; an app without VIPs loses its
  // lines; new streamrouter ports rewrite the pool VIPs.
  put("/lain/config/streamrouter/vippool", R"(["10.9.1.1"])");
  REQUIRE(c.etcd.etcdctl("del /lain/config/vips/10.9.0.5") == 0);
  lainlet.set_streamrouter_ports("[9000]");
  auto sr2 = R"({"app":"streamrouter","proc":"worker","ports":[)"
             R"({"src":"9000","proto":"tcp","dest":"9000"}],)"
             R"("excluded_nodes":[]})";
  REQUIRE(wait_until(
    [&] {
      return c.get("/lain/config/vips/10.9.1.2").empty()
             && c.get("/lain/config/tinydns_fqdns/hello.lain").empty()
             && c.get("/lain/config/vips/10.9.1.1") == sr2;
    },
    15s));
  // A new leader takes over: it recomputes everything and publishes what
  // changed while nobody led.
  c.by_name(leader).proc().signal(SIGTERM);
  c.by_name(leader).proc().wait(10s);
  REQUIRE(c.etcd.etcdctl("del /lain/networkd/apps/webrouter/worker/10.0.0.2:80")
          == 0);
  REQUIRE(wait_until(
    [&] {
      auto l = c.agreed();
      return !l.empty() && l != leader
             && c.get("/lain/config/tinydns_fqdns/webrouter.lain")
                  == R"(["+webrouter.lain:10.0.0.1:300"])"
             && c.get("/lain/config/domains/webrouter.lain")
                  == R"({"ips":["10.0.0.1"],"type":""})";
    },
    15s));
  // Every node answers webrouter.lain from the published domain.
  std::string out;
  auto& any = *c.nodes.back();
  REQUIRE(wait_until(
    [&] {
      sh("dig @127.0.0.1 -p " + std::to_string(any.dns_port())
           + " +short webrouter.lain",
         &out);
      return out == "10.0.0.1\n";
    },
    5s));
}

namespace {

/// One node's leader actor, as its admin state shows it ({} when unread).
struct leader_view {
  std::string state;
  std::string leader;
  std::string candidate_key;
  uint64_t writes = 0;
  uint64_t refused = 0;
};

leader_view leader_of(const daemon_process& d) {
  rapidjson::Document doc;
  doc.Parse(d.get("/v1/state").body.c_str());
  if (!doc.IsObject() || !doc.HasMember("actors"))
    return {};
  for (auto& a : doc["actors"].GetArray())
    if (a.HasMember("name") && std::string{a["name"].GetString()} == "leader")
      return {a["state"].GetString(), a["leader"].GetString(),
              a["candidate_key"].GetString(),
              a["counters"]["writes"].GetUint64(),
              a["counters"]["refused"].GetUint64()};
  return {};
}

/// True when every thread of pid is stopped (SIGSTOP took effect).
bool all_stopped(pid_t pid) {
  std::string out;
  if (sh("cat /proc/" + std::to_string(pid) + "/task/*/stat", &out) != 0)
    return false;
  // Each line: "tid (comm) S ...": the state follows the last ')'.
  size_t lines = 0;
  for (size_t p = out.find(") "); p != std::string::npos;
       p = out.find(") ", p + 2)) {
    ++lines;
    if (p + 2 >= out.size() || (out[p + 2] != 'T' && out[p + 2] != 't'))
      return false;
  }
  return lines > 0;
}

etcd::client_config client_for(const std::string& endpoint) {
  etcd::client_config cfg;
  cfg.endpoints = {endpoint};
  return cfg;
}

} // namespace

TEST_CASE("a streamrouter pool move reaches etcd as one transaction and the "
          "tinydns key of the app only sees puts",
          "[leader][daemon]") {
  lainlet_server lainlet;
  lainlet.set_streamrouter_ports("[9000]");
  etcd_server srv;
  daemon_process node(
    srv.endpoint(),
    {"-tinydns", "-streamrouter", "-lainlet.endpoint=" + lainlet.endpoint()},
    "node1");
  REQUIRE(wait_until([&] { return leader_of(node).state == "leader"; }, 15s));
  etcd::client c{client_for(srv.endpoint())};
  const std::string pool_key = "/lain/config/streamrouter/vippool";
  const std::string fqdns = "/lain/config/tinydns_fqdns/streamrouter.lain";
  const std::string vips = "/lain/config/vips/";
  auto value_of = [&](const std::string& key) -> std::string {
    auto r = c.range(key);
    return r && !r->kvs.empty() ? r->kvs.front().value : std::string{"-"};
  };
  auto line = [](const std::string& ip) {
    return "[\"+streamrouter.lain:" + ip + ":300\"]";
  };
  auto published = [&](const std::string& ip, const std::string& old) {
    return value_of(fqdns) == line(ip) && value_of(vips + ip) != "-"
           && (old.empty() || value_of(vips + old) == "-");
  };
  REQUIRE(c.put(pool_key, R"(["10.9.1.2"])"));
  REQUIRE(wait_until([&] { return published("10.9.1.2", ""); }, 15s));

  watch_recorder rec;
  etcd::watcher w{c, "/lain/config/", rec.handler()};
  REQUIRE(wait_until([&] { return rec.batch_count() >= 1; }));
  // Up and down, in the keys' order as in numbers (single digits).
  std::vector<std::string> moves{"10.9.1.8", "10.9.1.5", "10.9.1.9",
                                 "10.9.1.3", "10.9.1.7", "10.9.1.4"};
  std::string from = "10.9.1.2";
  for (auto& to : moves) {
    INFO("pool " << from << " -> " << to);
    REQUIRE(c.put(pool_key, "[\"" + to + "\"]"));
    REQUIRE(wait_until([&] { return published(to, from); }, 15s));
    from = to;
  }
  auto now = c.range("/lain/config/", {true, 0, true, 1});
  REQUIRE(now);
  REQUIRE(wait_until([&] { return rec.revision() >= now->revision; }));
  CHECK(rec.check() == "");

  // Every event after the snapshot, by key: {revision, put?, value}.
  struct seen {
    int64_t revision;
    bool put;
    std::string value;
  };
  std::map<std::string, std::vector<seen>> events;
  auto batches = rec.batches();
  for (auto& b : batches) {
    if (b.snapshot)
      continue;
    for (auto& e : b.events)
      events[e.kv.key].push_back(
        {b.revision, e.what == etcd::watch_event::kind::put, e.kv.value});
  }
  size_t deletes = 0;
  for (auto& e : events[fqdns])
    if (!e.put)
      ++deletes;
  CHECK(deletes == 0);
  // One move, one revision: the new VIP, the old VIP's delete and the new
  // line of the app land together, so no watcher sees half of it.
  from = "10.9.1.2";
  size_t together = 0;
  for (auto& to : moves) {
    auto& put_new = events[vips + to];
    auto& del_old = events[vips + from];
    int64_t put_rev = put_new.empty() ? -1 : put_new.front().revision;
    int64_t del_rev = -2;
    for (auto& e : del_old)
      if (!e.put)
        del_rev = e.revision;
    int64_t line_rev = -3;
    for (auto& e : events[fqdns])
      if (e.put && e.value == line(to))
        line_rev = e.revision;
    INFO("pool " << from << " -> " << to << ": put " << put_rev << ", delete "
                 << del_rev << ", line " << line_rev);
    CHECK(put_rev == del_rev);
    CHECK(put_rev == line_rev);
    if (put_rev == del_rev && put_rev == line_rev)
      ++together;
    from = to;
  }
  WARN("tinydns key: " << events[fqdns].size() << " events, " << deletes
                       << " deletes; " << together << " of " << moves.size()
                       << " moves in one revision");
}

TEST_CASE("a deposed leader's publisher write is refused and etcd keeps the "
          "value",
          "[leader][daemon]") {
  etcd_server srv;
  // Another candidate leads (an older key, no lease) and its value of
  // swarm.lain is in etcd; networkd would publish another one.
  const std::string ghost_value = R"({"ips":["10.7.7.7"],"type":""})";
  REQUIRE(srv.etcdctl("put /lain/networkd/leader/ghost1 ghost") == 0);
  REQUIRE(
    srv.etcdctl("put /lain/config/domains/swarm.lain '" + ghost_value + "'")
    == 0);
  REQUIRE(srv.etcdctl("put /lain/swarm/docker/swarm/leader 10.1.1.1:2376")
          == 0);
  daemon_process node(srv.endpoint(), {"-swarm"}, "node1");
  leader_view v;
  REQUIRE(wait_until(
    [&] {
      v = leader_of(node);
      return v.state == "follower" && v.leader == "ghost"
             && !v.candidate_key.empty();
    },
    15s));
  etcd::client c{client_for(srv.endpoint())};
  auto before = c.range("/lain/config/domains/swarm.lain");
  REQUIRE(before);
  REQUIRE(before->kvs.size() == 1);
  REQUIRE(c.range(v.candidate_key)->kvs.size() == 1);

  // networkd sees nothing while stopped. Meanwhile the ghost resigns (this
  // node would lead), then a newer ghost campaigns and this node's key is
  // taken away: in etcd it is deposed before it learns that it led.
  node.proc().signal(SIGSTOP);
  REQUIRE(wait_until([&] { return all_stopped(node.proc().pid()); }, 5s));
  // (A failed REQUIRE leaves it stopped: the fixture's SIGKILL ends it.)
  REQUIRE(c.erase("/lain/networkd/leader/ghost1"));
  REQUIRE(c.put("/lain/networkd/leader/ghost2", "ghost"));
  auto gone = c.erase(v.candidate_key);
  REQUIRE(gone);
  REQUIRE(gone->deleted == 1);
  node.proc().signal(SIGCONT);

  // It replays the events in order: it leads for a moment and publishes,
  // then learns it was deposed. etcd answers the publish (refused, or
  // written if the guard failed us), and the node follows the new ghost.
  REQUIRE(wait_until(
    [&] {
      v = leader_of(node);
      return v.refused + v.writes >= 1 && v.state == "follower"
             && v.leader == "ghost";
    },
    10s));
  CHECK(v.refused == 1);
  CHECK(v.writes == 0);
  auto after = c.range("/lain/config/domains/swarm.lain");
  REQUIRE(after);
  REQUIRE(after->kvs.size() == 1);
  CHECK(after->kvs.front().value == ghost_value);
  CHECK(after->kvs.front().mod_revision == before->kvs.front().mod_revision);
  CHECK(node.log().find("refused: no longer the leader") != std::string::npos);
}

TEST_CASE("a plan larger than etcd's operations per transaction is applied "
          "in parts",
          "[leader][daemon]") {
  etcd_server srv;
  etcd::client c{client_for(srv.endpoint())};
  // 150 apps with one VIP each: the first plan writes 150 tinydns keys,
  // more than etcd takes in one txn (--max-txn-ops, 128 by default).
  constexpr int apps = 150;
  for (int i = 1; i <= apps; ++i) {
    auto ip = "10.9." + std::to_string(2 + i / 100) + "."
              + std::to_string(i % 100 + 1);
    REQUIRE(c.put("/lain/config/vips/" + ip,
                  R"({"app":"a)" + std::to_string(i)
                    + R"(","proc":"web","ports":[{"src":"80"}]})"));
  }
  daemon_process node(srv.endpoint(), {"-tinydns"}, "node1");
  auto fqdns_keys = [&] {
    auto r = c.range("/lain/config/tinydns_fqdns/", {true, 0, true, 0});
    return r ? r->kvs.size() : 0;
  };
  REQUIRE(wait_until([&] { return fqdns_keys() == apps; }, 20s));
  rapidjson::Document doc;
  doc.Parse(node.get("/v1/state").body.c_str());
  REQUIRE(doc.IsObject());
  for (auto& a : doc["actors"].GetArray()) {
    if (!a.HasMember("name") || std::string{a["name"].GetString()} != "leader")
      continue;
    CHECK(a["counters"]["transactions"].GetUint64() == 2);
    CHECK(a["counters"]["writes"].GetUint64() == apps);
    CHECK(a["counters"]["refused"].GetUint64() == 0);
    CHECK(std::string{a["last_error"].GetString()}.empty());
  }
}
