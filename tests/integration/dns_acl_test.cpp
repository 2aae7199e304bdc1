// SPDX-License-Identifier: MIT
// No open resolver: networkd (and its etcd) run inside a server namespace
// listening on loopback and on a veth address; a client on that network is
// answered, a client routed in from another network gets REFUSED, until
// --dns-allow admits its network.
#include <catch2/catch.hpp>

#include "tests/support/daemon.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/util.hpp"

using namespace networkd::test;

namespace {

/// A single etcd member inside `ns` on 127.0.0.1.
struct ns_etcd {
  temp_dir dir{"networkd-ns-etcd"};
  uint16_t client = free_port();
  uint16_t peer = free_port();
  std::unique_ptr<process> proc;

  explicit ns_etcd(const netns& ns) {
    auto c = "http://127.0.0.1:" + std::to_string(client);
    auto p = "http://127.0.0.1:" + std::to_string(peer);
    proc = std::make_unique<process>(
      std::vector<std::string>{"ip", "netns", "exec", ns.name(), "etcd",
                               "--name", "ns", "--data-dir",
                               dir.file("data"), "--listen-client-urls", c,
                               "--advertise-client-urls", c,
                               "--listen-peer-urls", p,
                               "--initial-advertise-peer-urls", p,
                               "--initial-cluster", "ns=" + p,
                               "--logger=zap", "--log-level=error"},
      dir.file("etcd.log"));
    bool up = wait_until(
      [&] { return ns.sh(ctl("endpoint status")) == 0; }, 15s, 50ms);
    if (!up)
      throw std::runtime_error("etcd in namespace did not start: "
                               + proc->log());
  }

  std::string endpoint() const {
    return "127.0.0.1:" + std::to_string(client);
  }
  std::string ctl(const std::string& args) const {
    return "ETCDCTL_API=3 etcdctl --endpoints=" + endpoint() + " " + args;
  }
};

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
        return d.get("/metrics").body.find(
                 "networkd_dns_refused_clients_total 1")
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
