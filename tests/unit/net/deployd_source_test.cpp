// SPDX-License-Identifier: MIT
// deployd's pod groups (as stored under /lain/deployd/pod_groups) turned
// into the containers lainlet would report; also read from a real etcd.
#include <catch2/catch.hpp>

#include <string>
#include <utility>
#include <vector>

#include "net/etcd/etcd.hpp"
#include "net/peers/lainlet.hpp"
#include "tests/support/etcd_fixture.hpp"
#include "tests/support/lainlet_server.hpp"

using namespace networkd;
using namespace networkd::lainlet;
using networkd::test::lainlet_container;
using networkd::test::lainlet_server;

namespace {

using kv_list = std::vector<std::pair<std::string, std::string>>;

struct pod_container {
  std::string id;
  std::string node = "node1";
  std::string node_ip = "10.0.0.1";
  std::string ip;
  int port = 80;
};

struct pod {
  int instance = 1;
  std::vector<pod_container> containers;
};

// A pod group value shaped like encoding/json of deployd's
// engine.PodGroupWithSpec (Go field names, embedded structs flattened).
std::string pod_group_json(const std::string& ns, const std::string& name,
                           const std::vector<pod>& pods,
                           const std::string& version = "1.0.3") {
  std::string cs;
  std::string out
    = "{\"Spec\":{\"Name\":\"" + name + "\",\"Namespace\":\"" + ns
      + "\",\"Version\":2,\"CreatedAt\":\"2017-01-01T00:00:00Z\","
        "\"UpdatedAt\":\"2017-01-02T00:00:00Z\",\"Pod\":{\"Name\":\""
      + name + "\",\"Namespace\":\"" + ns + "\",\"Version\":2,\"Network\":\""
      + ns
      + "\",\"Containers\":[{\"Name\":\"\",\"Image\":\"registry.lain.local/"
      + ns
      + ":release-1\",\"Env\":[\"TZ=UTC\",\"LAIN_APP_RELEASE_VERSION=" + version
      + "\",\"A=b=c\"],\"Command\":null,\"CpuLimit\":0,\"MemoryLimit\":"
        "268435456,\"Expose\":80,\"LogConfig\":{\"Type\":\"\",\"Config\":"
        "null}}],\"Filters\":null,\"Labels\":null,\"Dependencies\":[],"
        "\"Annotation\":\"{}\",\"Stateful\":false,\"SetupTime\":0,"
        "\"KillTimeout\":10,\"PrevState\":{\"NodeName\":\"\",\"IPs\":null},"
        "\"HealthConfig\":{\"cmd\":\"\",\"options\":{\"interval\":0,"
        "\"timeout\":0,\"retries\":0}}},\"NumInstances\":"
      + std::to_string(pods.size())
      + ",\"RestartPolicy\":1},\"PrevState\":[],\"Pods\":[";
  for (size_t i = 0; i < pods.size(); ++i) {
    if (i > 0)
      out += ",";
    out += "{\"InstanceNo\":" + std::to_string(pods[i].instance)
           + ",\"Containers\":[";
    for (size_t j = 0; j < pods[i].containers.size(); ++j) {
      auto& c = pods[i].containers[j];
      if (j > 0)
        out += ",";
      out += "{\"Id\":\"" + c.id + "\",\"Runtime\":{\"Id\":\"" + c.id
             + "\",\"State\":{\"Running\":true,\"Pid\":1234}},"
               "\"NodeName\":\""
             + c.node + "\",\"NodeIp\":\"" + c.node_ip + "\",\"ContainerIp\":\""
             + c.ip + "\",\"NodePort\":0,\"ContainerPort\":"
             + std::to_string(c.port) + ",\"Protocol\":\"tcp\"}";
    }
    out += "],\"Healthst\":2,\"State\":2,\"OOMkilled\":false,"
           "\"LastError\":\"\",\"UpdatedAt\":\"2017-01-02T00:00:00Z\","
           "\"TargetState\":0,\"DriftCount\":0,\"RestartCount\":0,"
           "\"RestartAt\":\"0001-01-01T00:00:00Z\"}";
  }
  out += "],\"Healthst\":0,\"State\":2,\"OOMkilled\":false,\"LastError\":\"\","
         "\"UpdatedAt\":\"2017-01-02T00:00:00Z\"}";
  return out;
}

std::string key_of(const std::string& ns, const std::string& name) {
  return std::string(pod_groups_prefix) + ns + "/" + name;
}

// Two apps, three groups, containers on node1 and node2.
kv_list sample_groups() {
  return {
    {key_of("hello", "hello.web.web"),
     pod_group_json("hello", "hello.web.web",
                    {{1, {{"c1", "node1", "10.0.0.1", "172.20.0.11", 80}}},
                     {2, {{"c2", "node2", "10.0.0.2", "172.20.0.12", 80}}}})},
    {key_of("hello", "hello.worker.main"),
     pod_group_json("hello", "hello.worker.main",
                    {{1, {{"c3", "node1", "10.0.0.1", "172.20.0.13", 0}}}})},
    {key_of("other", "other.web.web"),
     pod_group_json("other", "other.web.web",
                    {{3, {{"c4", "node1", "10.0.0.1", "172.20.0.14", 8080}}}},
                    "2.0")},
  };
}

// The same containers as lainlet's /v2/containers would serve them.
std::string sample_as_lainlet() {
  auto mk = [](std::string app, std::string proc, std::string version,
               std::string node, std::string node_ip, std::string ip, int port,
               int instance, std::string id) {
    lainlet_container c;
    c.app = std::move(app);
    c.proc = std::move(proc);
    c.app_version = std::move(version);
    c.nodename = std::move(node);
    c.nodeip = std::move(node_ip);
    c.ip = std::move(ip);
    c.port = port;
    c.instance = instance;
    c.id = std::move(id);
    return c;
  };
  return lainlet_server::containers_json(
    {mk("hello", "hello.web.web", "1.0.3", "node1", "10.0.0.1", "172.20.0.11",
        80, 1, "c1"),
     mk("hello", "hello.web.web", "1.0.3", "node2", "10.0.0.2", "172.20.0.12",
        80, 2, "c2"),
     mk("hello", "hello.worker.main", "1.0.3", "node1", "10.0.0.1",
        "172.20.0.13", 0, 1, "c3"),
     mk("other", "other.web.web", "2.0", "node1", "10.0.0.1", "172.20.0.14",
        8080, 3, "c4")});
}

std::vector<std::string> ids_of(const std::vector<container>& cs) {
  std::vector<std::string> out;
  for (auto& c : cs)
    out.push_back(c.container_id);
  return out;
}

} // namespace

TEST_CASE("pod groups give this node's containers", "[deployd]") {
  auto r = parse_pod_groups(sample_groups(), "node1");
  CHECK(r.errors.empty());
  CHECK(r.other_nodes == 1);
  REQUIRE(r.containers.size() == 3);
  CHECK(ids_of(r.containers) == std::vector<std::string>{"c3", "c1", "c4"});
  auto& web = r.containers[1];
  CHECK(web.app == "hello");
  CHECK(web.proc == "web");
  CHECK(web.pod == "hello.web.web");
  CHECK(web.instance == 1);
  CHECK(web.container_id == "c1");
  CHECK(web.ip == "172.20.0.11");
  CHECK(web.port == 80);
  CHECK(web.node == "node1");
  CHECK(web.node_ip == "10.0.0.1");
  CHECK(web.app_version == "1.0.3");
  CHECK(r.containers[0].proc == "main");
  CHECK(r.containers[0].port == 0);
  CHECK(r.containers[2].app == "other");
  CHECK(r.containers[2].app_version == "2.0");
}

TEST_CASE("pod groups and lainlet's data give the same containers",
          "[deployd]") {
  for (std::string node : {"", "node1", "node2", "10.0.0.1"}) {
    INFO(node);
    auto from_deployd = parse_pod_groups(sample_groups(), node);
    auto from_lainlet = parse_containers(sample_as_lainlet(), node);
    REQUIRE(from_lainlet.ok());
    CHECK(from_deployd.errors.empty());
    CHECK(from_lainlet->errors.empty());
    CHECK(from_deployd.containers == from_lainlet->containers);
  }
}

TEST_CASE("a bad pod group is one error and the rest is kept", "[deployd]") {
  auto kvs = sample_groups();
  kvs.push_back({key_of("bad", "json"), "{not json"});
  kvs.push_back({key_of("bad", "array"), "[]"});
  kvs.push_back({key_of("bad", "nospec"), "{\"Pods\":[]}"});
  kvs.push_back({key_of("bad", "nons"),
                 "{\"Spec\":{\"Name\":\"x\",\"Namespace\":\"\"},\"Pods\":[]}"});
  kvs.push_back({key_of("bad", "pods"),
                 "{\"Spec\":{\"Name\":\"x\",\"Namespace\":\"y\"},"
                 "\"Pods\":{}}"});
  kvs.push_back({key_of("bad", "big"), std::string(5000, ' ') + "{}"});
  kvs.push_back({"/lain/deployd/pod_groups/onlyone", "{}"});
  kvs.push_back({"/lain/deployd/pod_groups/a/b/c", "{}"});
  kvs.push_back({"/lain/elsewhere/x/y", "{}"});
  auto r = parse_pod_groups(kvs, "node1", 4000);
  CHECK(r.containers.size() == 3);
  CHECK(r.errors.size() == 9);
  for (auto& e : r.errors)
    CHECK_FALSE(e.reason.empty());
}

TEST_CASE("bad containers inside a pod group are skipped one by one",
          "[deployd]") {
  auto value
    = pod_group_json("hello", "hello.web.web",
                     {{1, {{"c1", "node1", "10.0.0.1", "172.20.0.11", 80}}},
                      {2, {{"c2", "node1", "10.0.0.1", "", 80}}}, // lost its IP
                      {3, {{"c3", "node1", "10.0.0.1", "172.20.0.13", 99999}}},
                      {-1, {{"c4", "node1", "10.0.0.1", "172.20.0.14", 80}}},
                      {5, {{"", "node1", "10.0.0.1", "172.20.0.15", 80}}}});
  auto r
    = parse_pod_groups({{key_of("hello", "hello.web.web"), value}}, "node1");
  CHECK(ids_of(r.containers) == std::vector<std::string>{"c1"});
  REQUIRE(r.errors.size() == 4);
  CHECK(r.errors[0].key.find(key_of("hello", "hello.web.web")) == 0);
}

TEST_CASE("a pod group without pods gives nothing", "[deployd]") {
  auto r = parse_pod_groups(
    {{key_of("a", "a.web.web"),
      "{\"Spec\":{\"Name\":\"a.web.web\",\"Namespace\":\"a\"},"
      "\"Pods\":null}"},
     {key_of("b", "b.web.web"), pod_group_json("b", "b.web.web", {})}});
  CHECK(r.containers.empty());
  CHECK(r.errors.empty());
}

TEST_CASE("pod groups read from etcd give the same containers", "[deployd]") {
  networkd::test::etcd_server srv;
  etcd::client_config cfg;
  cfg.endpoints = {srv.endpoint()};
  etcd::client c{cfg};
  for (auto& [k, v] : sample_groups())
    REQUIRE(c.put(k, v).ok());
  REQUIRE(c.put("/lain/deployd/other", "x").ok());
  etcd::range_options opts;
  opts.prefix = true;
  auto range = c.range(std::string(pod_groups_prefix), opts);
  REQUIRE(range.ok());
  kv_list kvs;
  for (auto& kv : range->kvs)
    kvs.emplace_back(kv.key, kv.value);
  CHECK(kvs.size() == 3);
  auto r = parse_pod_groups(kvs, "node1");
  CHECK(r.errors.empty());
  CHECK(r.containers == parse_pod_groups(sample_groups(), "node1").containers);
  CHECK(r.containers.size() == 3);
}
