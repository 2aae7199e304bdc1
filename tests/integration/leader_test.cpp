// SPDX-License-Identifier: MIT
// Leader election among three networkd against one real etcd, and the
// swarm / deployd publishers that run only on the leader.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <signal.h>

#include <memory>
#include <set>

#include "tests/support/daemon.hpp"
#include "tests/support/etcd_fixture.hpp"

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

  cluster() {
    REQUIRE(etcd.etcdctl("put /lain/networkd/config/lease_ttl 2") == 0);
    for (int i = 1; i <= 3; ++i)
      nodes.push_back(std::make_unique<daemon_process>(
        etcd.endpoint(), std::vector<std::string>{"-swarm", "-deployd"},
        "node" + std::to_string(i)));
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

TEST_CASE("exactly one leader; a new one after SIGKILL and at once after "
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
