// SPDX-License-Identifier: MIT
// The leader's publish plan: keys and values exactly as the original wrote
// them, sorted and stable, deletions only of keys the publisher owns, and
// how a plan is cut into etcd transactions.
#include <catch2/catch.hpp>

#include "net/cluster/publish.hpp"

using namespace networkd;
using publish::desired;
using publish::inputs;

namespace {

config::app_endpoint ep(std::string app, std::string ip, uint16_t port) {
  return {std::move(app), "worker", std::move(ip), port};
}

void add_endpoint(inputs& in, const config::app_endpoint& e) {
  in.endpoints["/lain/networkd/apps/" + e.app + "/" + e.proc + "/" + e.ip + ":"
               + std::to_string(e.port)]
    = e;
}

config::vip_config vip(std::string ip, std::string app,
                       std::vector<uint16_t> ports = {80}) {
  config::vip_config v;
  v.key = ip;
  v.ip = std::move(ip);
  v.app = std::move(app);
  v.proc = "web";
  for (auto p : ports)
    v.ports.push_back({p, config::proto::tcp, p});
  return v;
}

void add_vip(inputs& in, const config::vip_config& v) {
  in.vips["/lain/config/vips/" + v.key] = v;
}

} // namespace

TEST_CASE("app endpoint keys and streamrouter ports parse strictly",
          "[publish]") {
  auto e = config::parse_app_endpoint("webrouter/worker/10.0.0.1:8080");
  REQUIRE(e);
  CHECK(e->app == "webrouter");
  CHECK(e->proc == "worker");
  CHECK(e->ip == "10.0.0.1");
  CHECK(e->port == 8080);
  for (auto bad :
       {"webrouter/worker", "webrouter/worker/10.0.0.1",
        "webrouter/worker/host:80", "webrouter/worker/10.0.0.1:0",
        "/worker/10.0.0.1:80", "a/b/c/10.0.0.1:80", "webrouter//10.0.0.1:80"}) {
    INFO(bad);
    auto r = config::parse_app_endpoint(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "bad_key");
  }
  auto p = config::parse_streamrouter_ports(R"([9000, "80", 9000, 443])");
  REQUIRE(p);
  CHECK(*p == std::vector<uint16_t>{80, 443, 9000});
  CHECK(config::parse_streamrouter_ports("[]"));
  for (auto bad : {"", "{}", "[0]", "[70000]", "[\"x\"]", "[1.5]", "[null]"}) {
    INFO(bad);
    CHECK_FALSE(config::parse_streamrouter_ports(bad));
  }
}

TEST_CASE("swarm and deployd publish one fixed IP each", "[publish]") {
  inputs in;
  in.swarm = true;
  in.swarm_ip = "10.1.1.1";
  in.deployd_ip = "10.2.2.2"; // -deployd not given
  auto plan = desired(in, {});
  REQUIRE(plan.size() == 1);
  CHECK(plan.at("/lain/config/domains/swarm.lain")
        == R"({"ips":["10.1.1.1"],"type":""})");
  in.deployd = true;
  in.swarm_ip.clear(); // the key went away: nothing to publish
  plan = desired(in, {});
  REQUIRE(plan.size() == 1);
  CHECK(plan.at("/lain/config/domains/deployd.lain")
        == R"({"ips":["10.2.2.2"],"type":""})");
}

TEST_CASE("webrouter: tinydns lines for webrouter.lain, lain and the cluster "
          "domain",
          "[publish]") {
  inputs in;
  in.webrouter = true;
  in.cluster_domain = "example.com";
  CHECK(desired(in, {}).empty()); // no nodes yet: nothing is written
  add_endpoint(in, ep("webrouter", "10.0.0.2", 80));
  add_endpoint(in, ep("webrouter", "10.0.0.1", 80));
  add_endpoint(in, ep("webrouter", "10.0.0.1", 443)); // same node twice
  add_endpoint(in, ep("tinydns", "10.0.0.9", 53));    // not a webrouter
  auto plan = desired(in, {});
  CHECK(plan.at("/lain/config/domains/webrouter.lain")
        == R"({"ips":["10.0.0.1","10.0.0.2"],"type":""})");
  CHECK(
    plan.at("/lain/config/tinydns_fqdns/webrouter.lain")
    == R"(["+webrouter.lain:10.0.0.1:300","+webrouter.lain:10.0.0.2:300"])");
  CHECK(plan.at("/lain/config/tinydns_fqdns/lain")
        == R"(["+*.lain:10.0.0.1:300",".lain:10.0.0.1:a:300",)"
           R"("+*.lain:10.0.0.2:300",".lain:10.0.0.2:a:300"])");
  CHECK(plan.at("/lain/config/tinydns_fqdns/example.com")
        == R"(["+*.example.com:10.0.0.1:300",".example.com:10.0.0.1:a:300",)"
           R"("+*.example.com:10.0.0.2:300",".example.com:10.0.0.2:a:300"])");
  CHECK(plan.size() == 4);
  // With address VIPs of app webrouter, webrouter.lain follows them on every
  // node (type webrouter) instead of naming nodes.
  add_vip(in, vip("10.0.0.100", "webrouter"));
  CHECK(desired(in, {}).at("/lain/config/domains/webrouter.lain")
        == R"({"ips":[],"type":"webrouter"})");
  // The cluster domain "lain" is not written twice.
  in.cluster_domain = "lain";
  CHECK(desired(in, {}).size() == 3);
}

TEST_CASE("tinydns: domain servers and one fqdns key per app with VIPs",
          "[publish]") {
  inputs in;
  in.tinydns = true;
  in.cluster_domain = "example.com";
  add_endpoint(in, ep("tinydns", "10.0.0.9", 53));
  add_endpoint(in, ep("tinydns", "10.0.0.8", 5353));
  add_vip(in, vip("10.0.0.51", "hello"));
  add_vip(in, vip("10.0.0.50", "hello"));
  add_vip(in, vip("10.0.0.60", "webrouter")); // webrouter.lain is not ours
  auto port_only = vip("0.0.0.0", "api");
  port_only.key = "0.0.0.0:8080";
  port_only.key_port = 8080;
  add_vip(in, port_only); // no address: no line
  auto plan = desired(in, {});
  auto servers = R"({"servers":["10.0.0.8#5353","10.0.0.9#53"]})";
  CHECK(plan.at("/lain/config/domain_servers/lain") == servers);
  CHECK(plan.at("/lain/config/domain_servers/example.com") == servers);
  CHECK(plan.at("/lain/config/tinydns_fqdns/hello.lain")
        == R"(["+hello.lain:10.0.0.50:300","+hello.lain:10.0.0.51:300"])");
  CHECK(plan.size() == 3);
  // An app that lost its VIPs loses its key; keys that are not this
  // publisher's lines stay untouched.
  std::map<std::string, std::string> current{
    {"/lain/config/tinydns_fqdns/gone.lain", R"(["+gone.lain:10.0.0.7:300"])"},
    {"/lain/config/tinydns_fqdns/manual.lain", R"(["=manual.lain:1.2.3.4"])"},
    {"/lain/config/tinydns_fqdns/lain", R"(["+*.lain:10.0.0.1:300"])"},
  };
  plan = desired(in, current);
  REQUIRE(plan.count("/lain/config/tinydns_fqdns/gone.lain"));
  CHECK_FALSE(plan.at("/lain/config/tinydns_fqdns/gone.lain").has_value());
  CHECK(plan.count("/lain/config/tinydns_fqdns/manual.lain") == 0);
  CHECK(plan.count("/lain/config/tinydns_fqdns/lain") == 0);
  // No workers: the servers are left as they are.
  in.endpoints.clear();
  CHECK(desired(in, {}).count("/lain/config/domain_servers/lain") == 0);
}

TEST_CASE("streamrouter: one VIP per pool address, removed ones deleted",
          "[publish]") {
  inputs in;
  in.streamrouter = true;
  in.pool = {"10.0.0.71", "10.0.0.70"};
  add_vip(in, vip("10.0.0.72", "streamrouter"));
  in.vips["/lain/config/vips/10.0.0.72"].proc = "worker";
  add_vip(in, vip("10.0.0.73", "other"));
  // Ports unknown: nothing written, but the VIP out of the pool goes.
  auto plan = desired(in, {});
  REQUIRE(plan.size() == 1);
  CHECK_FALSE(plan.at("/lain/config/vips/10.0.0.72").has_value());
  in.ports = std::vector<uint16_t>{};
  CHECK(desired(in, {}).size() == 1); // a VIP needs ports
  in.ports = std::vector<uint16_t>{9000, 9001};
  plan = desired(in, {});
  auto value = R"({"app":"streamrouter","proc":"worker","ports":[)"
               R"({"src":"9000","proto":"tcp","dest":"9000"},)"
               R"({"src":"9001","proto":"tcp","dest":"9001"}],)"
               R"("excluded_nodes":[]})";
  CHECK(plan.at("/lain/config/vips/10.0.0.70") == value);
  CHECK(plan.at("/lain/config/vips/10.0.0.71") == value);
  CHECK(plan.size() == 3);
  // What we write parses back to the same rendering (no rewrite loop).
  auto parsed = config::parse_vip("10.0.0.70", value);
  REQUIRE(parsed);
  CHECK(publish::render_vip(*parsed) == value);
}

TEST_CASE("a deeply nested tinydns value is not an app's lines and does not "
          "crash",
          "[publish]") {
  // Issue 12: 260,000 '[' under tinydns_fqdns crashed every -tinydns node.
  CHECK_FALSE(publish::is_app_lines("x", std::string(260000, '[')));
  CHECK(publish::is_app_lines("x", R"(["+x.lain:10.0.0.1:300"])"));
}

TEST_CASE("a streamrouter pool move keeps the app's tinydns line whatever "
          "VIP keys the leader has seen",
          "[publish]") {
  inputs in;
  in.tinydns = true;
  in.streamrouter = true;
  in.ports = std::vector<uint16_t>{9000};
  in.pool = {"10.0.0.9"};
  auto sr = [](std::string ip) {
    auto v = vip(std::move(ip), "streamrouter", {9000});
    v.proc = "worker";
    return v;
  };
  const std::string fqdns = "/lain/config/tinydns_fqdns/streamrouter.lain";
  const std::string old_line = R"(["+streamrouter.lain:10.0.0.5:300"])";
  const std::string new_line = R"(["+streamrouter.lain:10.0.0.9:300"])";
  std::map<std::string, std::string> current{{fqdns, old_line}};
  // The pool moved 10.0.0.5 -> 10.0.0.9. Whichever VIP keys the leader
  // has seen on the way (the old one, both, none, the new one), the plan
  // gives the app the new line and never deletes its key.
  std::vector<std::vector<std::string>> seen{
    {"10.0.0.5"}, {"10.0.0.5", "10.0.0.9"}, {}, {"10.0.0.9"}};
  for (auto& ips : seen) {
    in.vips.clear();
    for (auto& ip : ips)
      add_vip(in, sr(ip));
    INFO(ips.size() << " VIP keys seen");
    auto plan = desired(in, current);
    REQUIRE(plan.count(fqdns));
    REQUIRE(plan.at(fqdns).has_value());
    CHECK(*plan.at(fqdns) == new_line);
    CHECK(plan.count("/lain/config/vips/10.0.0.9"));
    if (in.vips.count("/lain/config/vips/10.0.0.5"))
      CHECK_FALSE(plan.at("/lain/config/vips/10.0.0.5").has_value());
  }
  // The pool emptied: the app has no VIP left and its line goes.
  in.pool.clear();
  in.vips.clear();
  add_vip(in, sr("10.0.0.9"));
  auto plan = desired(in, {{fqdns, new_line}});
  REQUIRE(plan.count(fqdns));
  CHECK_FALSE(plan.at(fqdns).has_value());
}

TEST_CASE("changes are what etcd does not hold yet", "[publish]") {
  publish::plan wanted{{"/a", "1"},
                       {"/b", "2"},
                       {"/c", std::nullopt},
                       {"/d", std::nullopt},
                       {"/e", ""}};
  std::map<std::string, std::string> current{
    {"/a", "1"}, {"/b", "old"}, {"/c", "x"}, {"/z", "kept"}};
  publish::plan expected{{"/b", "2"}, {"/c", std::nullopt}, {"/e", ""}};
  CHECK(publish::changes(wanted, current) == expected);
  CHECK(
    publish::changes(wanted, {{"/a", "1"}, {"/b", "2"}, {"/e", ""}}).empty());
}

TEST_CASE("a plan is one transaction unless it exceeds the operations limit",
          "[publish]") {
  CHECK(publish::transactions({}).empty());
  publish::plan small{{"/k/b", std::nullopt}, {"/k/a", "1"}};
  auto one = publish::transactions(small, 2);
  REQUIRE(one.size() == 1);
  CHECK(one.front() == small);
  // Five writes and four deletes, at most four per transaction: writes
  // first, then deletes, each in key order.
  publish::plan big;
  for (char k : std::string{"acegi"})
    big[std::string{"/k/"} + k] = std::string{k};
  for (char k : std::string{"bdfh"})
    big[std::string{"/k/"} + k] = std::nullopt;
  auto parts = publish::transactions(big, 4);
  std::vector<publish::plan> expected{
    {{"/k/a", "a"}, {"/k/c", "c"}, {"/k/e", "e"}, {"/k/g", "g"}},
    {{"/k/i", "i"},
     {"/k/b", std::nullopt},
     {"/k/d", std::nullopt},
     {"/k/f", std::nullopt}},
    {{"/k/h", std::nullopt}}};
  CHECK(parts == expected);
  CHECK(publish::transactions(big, 4) == parts); // deterministic
  // The default is etcd's default limit.
  publish::plan many;
  for (int i = 0; i < 300; ++i)
    many["/k/" + std::to_string(1000 + i)] = "v";
  auto cut = publish::transactions(many);
  REQUIRE(cut.size() == 3);
  CHECK(cut[0].size() == publish::max_txn_ops);
  CHECK(cut[1].size() == publish::max_txn_ops);
  CHECK(cut[2].size() == 300 - 2 * publish::max_txn_ops);
}
