// SPDX-License-Identifier: MIT
// Leader election among three networkd against one real etcd, and the
// swarm / deployd publishers that run only on the leader.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <signal.h>

#include <map>
#include <memory>
#include <set>

#include "tests/support/daemon.hpp"
#include "tests/support/etcd_fixture.hpp"
#include "tests/support/lainlet_server.hpp"

using namespace networkd::test;

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
  // SIGKILL: the next one leads once the dead one's lease (2 s) expires.
  c.by_name(second).proc().signal(SIGKILL);
  c.by_name(second).proc().wait(5s);
  std::string third;
  REQUIRE(wait_until(
    [&] {
      return !(third = c.agreed()).empty() && third != first
             && third != second;
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
    {"/lain/config/tinydns_fqdns/hello.lain", R"(["+hello.lain:10.9.0.5:300"])"},
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

TEST_CASE("a deposed leader's guarded write is refused", "[leader][daemon]") {
  etcd_server etcd;
  // The guard: the candidate key's create revision, as the leader writes.
  REQUIRE(etcd.etcdctl("put /lain/networkd/leader/aa node1") == 0);
  std::string out;
  etcd.etcdctl("get -w json /lain/networkd/leader/aa", &out);
  auto p = out.find("\"create_revision\":");
  REQUIRE(p != std::string::npos);
  auto rev = std::stoll(out.substr(p + 18));
  auto txn = [&](int64_t r) {
    std::string res;
    etcd.etcdctl("txn <<'EOF'\ncreate(\"/lain/networkd/leader/aa\") = \""
                   + std::to_string(r)
                   + "\"\n\nput /lain/config/domains/x.lain v\n\n\nEOF",
                 &res);
    return res;
  };
  CHECK(txn(rev).find("SUCCESS") != std::string::npos);
  // Deposed: its key is gone (lease ended) and someone else campaigned.
  REQUIRE(etcd.etcdctl("del /lain/networkd/leader/aa") == 0);
  REQUIRE(etcd.etcdctl("put /lain/networkd/leader/aa node2") == 0);
  CHECK(txn(rev).find("FAILURE") != std::string::npos);
}
