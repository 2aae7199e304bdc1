// SPDX-License-Identifier: MIT
// No open resolver: networkd (and its etcd) run inside a server namespace
// listening on loopback and on a veth address; a client on that network is
// answered, a client routed in from another network gets REFUSED, until
// --dns-allow admits its network.
#include <catch2/catch.hpp>

#include "tests/support/daemon.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/netns_etcd.hpp"
#include "tests/support/util.hpp"

using namespace networkd::test;

namespace {

std::string dig_from(const netns& ns, uint16_t port, const std::string& name) {
  std::string out;
  ns.sh("dig @10.99.0.1 -p " + std::to_string(port)
          + " +tries=1 +time=2 +noall +comments +answer " + name,
        &out);
  return out;
}

} // namespace

TEST_CASE("clients outside loopback and allowed networks are refused",
          "[dns][acl][daemon]") {
  netns srv{"srv"};
  netns near{"near"};
  netns far{"far"};
  veth_pair l1{srv, "s-near", near, "near0"};
  veth_pair l2{srv, "s-far", far, "far0"};
  srv.must("ip addr add 10.99.0.1/24 dev s-near");
  srv.must("ip addr add 10.98.0.1/24 dev s-far");
  near.must("ip addr add 10.99.0.2/24 dev near0");
  far.must("ip addr add 10.98.0.2/24 dev far0");
  far.must("ip route add default via 10.98.0.1");
  ns_etcd etcd{srv};
  REQUIRE(srv.sh(etcd.ctl("put /lain/config/domains/web.lain "
                          "'{\"ips\":[\"10.1.1.1\"]}'"))
          == 0);
  SECTION("by default only the listen address's own network is allowed") {
    auto port = free_port();
    daemon_process d{etcd.endpoint(),
                     {"-godns.addr=127.0.0.1:" + std::to_string(port)
                      + ",10.99.0.1:" + std::to_string(port)},
                     "ns-node",
                     {},
                     &srv};
    REQUIRE(wait_until(
      [&] {
        return dig_from(near, port, "web.lain").find("10.1.1.1")
               != std::string::npos;
      },
      10s));
    auto refused = dig_from(far, port, "web.lain");
    CHECK(refused.find("status: REFUSED") != std::string::npos);
    CHECK(refused.find("10.1.1.1") == std::string::npos);
    REQUIRE(wait_until(
      [&] {
        return d.get("/metrics")
                 .body.find("networkd_dns_refused_clients_total 1")
               != std::string::npos;
      },
      3s));
  }
  SECTION("--dns-allow admits another network") {
    auto port = free_port();
    daemon_process d{etcd.endpoint(),
                     {"-godns.addr=127.0.0.1:" + std::to_string(port)
                        + ",10.99.0.1:" + std::to_string(port),
                      "--dns-allow=10.98.0.0/24"},
                     "ns-node",
                     {},
                     &srv};
    REQUIRE(wait_until(
      [&] {
        return dig_from(far, port, "web.lain").find("10.1.1.1")
               != std::string::npos;
      },
      10s));
  }
}
