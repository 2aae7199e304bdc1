// SPDX-License-Identifier: MIT
// -acl in a node namespace, with either data plane (CTest runs both):
// whitelisted sources reach the node, others are dropped; a bad whitelist
// value keeps the last good rules; a change is an element update (nft);
// the audit puts back a deleted source; /v1/acl shows the kernel's rules;
// a graceful stop removes the ACL. Real traffic from two client namespaces;
// the rules are read with nft / iptables-save.
#include <catch2/catch.hpp>

#include <signal.h>

#include "tests/support/daemon.hpp"
#include "tests/support/dataplane.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/netns_etcd.hpp"

using namespace networkd::test;

TEST_CASE("the ACL admits whitelisted sources and is removed on stop",
          "[acl][daemon]") {
  netns node{"aclnode"};
  netns a{"acla"};
  netns b{"aclb"};
  veth_pair la{node, "n-a", a, "eth0"};
  veth_pair lb{node, "n-b", b, "eth0"};
  node.must("ip addr add 10.97.0.1/24 dev n-a");
  node.must("ip addr add 10.96.0.1/24 dev n-b");
  a.must("ip addr add 10.97.0.2/24 dev eth0");
  b.must("ip addr add 10.96.0.2/24 dev eth0");
  name_server web{node, name_server::kind::tcp, 9000, "node"};
  ns_etcd etcd{node};
  REQUIRE(node.sh(etcd.ctl("put /lain/config/whitelist_ips/office "
                           "'[\"10.97.0.2\"]'"))
          == 0);
  REQUIRE(node.sh(etcd.ctl("put /lain/networkd/config/acl_audit_s 1")) == 0);
  // What a run with the other backend left is removed at start.
  leave_other_acl(node);
  daemon_process d{
    etcd.endpoint(), {"-acl", dataplane_flag()}, "aclnode", {}, &node};
  auto from_a = [&] { return tcp_fetch(a, "10.97.0.1", 9000, 300ms); };
  auto from_b = [&] { return tcp_fetch(b, "10.96.0.1", 9000, 300ms); };
  REQUIRE(wait_until([&] { return from_b().empty(); }, 10s, 50ms));
  CHECK(from_a() == "node");
  CHECK(other_acl_gone(node));
  CHECK(acl_active(node));
  // A bad value is rejected; the last good rules stay.
  REQUIRE(node.sh(etcd.ctl("put /lain/config/whitelist_ips/bad "
                           "'[\"10.96.0.300\"]'"))
          == 0);
  REQUIRE(wait_until(
    [&] {
      return d.get("/v1/state").body.find("/lain/config/whitelist_ips/bad")
             != std::string::npos;
    },
    5s));
  CHECK(from_a() == "node");
  CHECK(from_b().empty());
  // Whitelisting b's network opens it.
  std::string handles_before;
  if (dataplane() == "nft")
    node.sh("nft -a list chain ip networkd acl_input", &handles_before);
  REQUIRE(node.sh(etcd.ctl("put /lain/config/whitelist_ips/lab "
                           "'[\"10.96.0.0/24\"]'"))
          == 0);
  REQUIRE(wait_until([&] { return from_b() == "node"; }, 10s, 50ms));
  if (dataplane() == "nft") {
    // An element update: the rules are the same (same handles).
    std::string handles_after;
    node.sh("nft -a list chain ip networkd acl_input", &handles_after);
    CHECK(handles_after == handles_before);
  }
  CHECK(acl_sources(node)
        == std::vector<std::string>{"10.96.0.0/24", "10.97.0.2"});
  // /v1/acl: what the kernel holds.
  auto shown = d.get("/v1/acl");
  CHECK(shown.status == 200);
  CHECK(shown.body.find("\"backend\":\"" + dataplane() + "\"")
        != std::string::npos);
  CHECK(shown.body.find("\"state\":\"active\"") != std::string::npos);
  CHECK(shown.body.find("10.96.0.0/24") != std::string::npos);
  REQUIRE(node.sh(etcd.ctl("del /lain/config/whitelist_ips/lab")) == 0);
  REQUIRE(wait_until([&] { return from_b().empty(); }, 10s, 50ms));
  CHECK(d.get("/v1/acl").body.find("10.96.0.0/24") == std::string::npos);
  // Someone deletes a's source: a is dropped until the audit
  // (acl_audit_s = 1) puts it back.
  acl_delete_source(node, "10.97.0.2");
  REQUIRE(wait_until([&] { return from_a() == "node"; }, 10s, 50ms));
  CHECK(from_b().empty());
  CHECK(wait_until(
    [&] {
      return d.get("/v1/state").body.find("\"repairs\":1") != std::string::npos;
    },
    5s, 50ms));
  CHECK(acl_active(node));
  // A graceful stop removes the ACL: policy ACCEPT, everyone passes.
  d.proc().signal(SIGTERM);
  REQUIRE(d.proc().wait(10s) != -1);
  CHECK(acl_gone(node));
  CHECK(from_b() == "node");
}
