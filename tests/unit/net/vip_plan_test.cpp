// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include "net/cluster/vip_plan.hpp"

using namespace networkd;

namespace {

config::vip_config parse(const std::string& key, const std::string& json) {
  auto r = config::parse_vip(key, json);
  REQUIRE(r);
  return *r;
}

} // namespace

TEST_CASE("a VIP applies only with a healthy container and not excluded",
          "[vip]") {
  auto cfg = parse("10.0.0.5", R"({"app":"a","proc":"web",
    "ports":[{"src":"80"}],"excluded_nodes":["n2"]})");
  vip::container c{"172.20.0.2", 1};
  CHECK(vip::check(cfg, "n1", "10.1.0.1", c) == vip::verdict::applies);
  CHECK(vip::check(cfg, "n1", "10.1.0.1", std::nullopt)
        == vip::verdict::no_container);
  CHECK(vip::check(cfg, "n2", "10.1.0.1", c) == vip::verdict::excluded);
  auto po = parse("0.0.0.0:8080", R"({"app":"a","proc":"web","ports":[{}]})");
  CHECK(vip::check(po, "n1", "", c) == vip::verdict::no_address);
  CHECK(vip::check(po, "n1", "10.1.0.1", c) == vip::verdict::applies);
}

TEST_CASE("rules map every port to the container, port-only on the node",
          "[vip]") {
  auto cfg = parse("10.0.0.5", R"({"app":"a","proc":"web","ports":[
    {"src":"80"},{"src":"5555","proto":"udp","dest":"53"}]})");
  auto rs = vip::rules(cfg, "10.1.0.1", {"172.20.0.2", 0});
  REQUIRE(rs.size() == 2);
  CHECK(rs[0].vip == "10.0.0.5");
  CHECK(rs[0].proto == nat::protocol::tcp);
  CHECK(rs[0].src_port == 80);
  CHECK(rs[0].dest_port == 80);
  CHECK(rs[0].container_ip == "172.20.0.2");
  CHECK(rs[0].comment == "a.web");
  CHECK(rs[1].proto == nat::protocol::udp);
  CHECK(rs[1].dest_port == 53);
  auto po = parse("0.0.0.0:8080", R"({"app":"a","proc":"web",
    "ports":[{"dest":"80"}]})");
  auto pr = vip::rules(po, "10.1.0.1", {"172.20.0.3", 0});
  REQUIRE(pr.size() == 1);
  CHECK(pr[0].vip == "10.1.0.1");
  CHECK(pr[0].src_port == 8080);
  CHECK(pr[0].dest_port == 80);
  auto ip_port = parse("10.0.0.9:9000", R"({"app":"a","proc":"web",
    "ports":[{}]})");
  CHECK(vip::rules(ip_port, "10.1.0.1", {"172.20.0.3", 0})[0].vip
        == "10.0.0.9");
}
