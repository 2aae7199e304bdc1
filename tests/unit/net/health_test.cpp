// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include "net/cluster/health.hpp"

using namespace networkd;

TEST_CASE("presence is health when there is no TCP port", "[health]") {
  health_machine h;
  CHECK_FALSE(h.healthy());
  CHECK(h.set_containers({{"172.20.0.2", 1, "a"}}));
  CHECK(h.healthy());
  CHECK(h.set_containers({}));
  CHECK_FALSE(h.healthy());
}

TEST_CASE("a new container is healthy after its first good probe", "[health]") {
  health_machine h{2};
  h.set_probe_ports({80, 80, 443});
  CHECK(h.probe_ports() == std::vector<uint16_t>{80, 443});
  h.set_containers({{"172.20.0.2", 1, "a"}});
  CHECK(h.starting());
  CHECK_FALSE(h.healthy());
  CHECK_FALSE(h.probe_result("172.20.0.2", 80, false, "refused"));
  CHECK_FALSE(h.healthy());
  CHECK(h.probe_result("172.20.0.2", 80, true, ""));
  CHECK(h.healthy());
  CHECK_FALSE(h.starting());
}

TEST_CASE("consecutive failures make it unhealthy, one success heals",
          "[health]") {
  health_machine h{2};
  h.set_probe_ports({80});
  h.set_containers({{"172.20.0.2", 1, "a"}});
  h.probe_result("172.20.0.2", 80, true, "");
  CHECK_FALSE(h.probe_result("172.20.0.2", 80, false, "refused"));
  CHECK(h.healthy());
  CHECK(h.probe_result("172.20.0.2", 80, false, "timeout"));
  CHECK_FALSE(h.healthy());
  CHECK(h.reason().find("timeout") != std::string::npos);
  CHECK(h.probe_result("172.20.0.2", 80, true, ""));
  CHECK(h.healthy());
}

TEST_CASE("the lowest instance serves, an IP change is a new container",
          "[health]") {
  health_machine h;
  h.set_probe_ports({80});
  h.set_containers({{"172.20.0.3", 2, "b"}, {"172.20.0.2", 1, "a"}});
  REQUIRE(h.current());
  CHECK(h.current()->instance == 1);
  h.probe_result("172.20.0.2", 80, true, "");
  CHECK(h.healthy());
  CHECK_FALSE(
    h.set_containers({{"172.20.0.2", 1, "a"}, {"172.20.0.3", 2, "b"}}));
  CHECK(h.set_containers({{"172.20.0.9", 1, "a2"}}));
  CHECK(h.current()->ip == "172.20.0.9");
  CHECK_FALSE(h.healthy());
  // A late result for the old IP changes nothing.
  CHECK_FALSE(h.probe_result("172.20.0.2", 80, true, ""));
  CHECK_FALSE(h.healthy());
  CHECK(h.probe_result("172.20.0.9", 80, true, ""));
  CHECK(h.healthy());
}
