// SPDX-License-Identifier: MIT
// README claims of "VIP behaviour" that the main lab does not cover, in a
// namespace lab with real traffic (tests/support/vip_lab.hpp):
// - "Any number of VIP keys may share one address (... a VIP and
//   port-only keys of its IP): the NAT manager keeps each key's rules";
// - "If the session lease changes under a holder that owns its lock (the
//   old lease expired), the holder drops the VIP and competes again";
// - "a batch that fails makes it read and retry", and `nat_audit_s`
//   "applies at once";
// - leftovers of a VIP key "this node does not get (... this node is
//   excluded, or 10 s passed without it applying here) are removed by its
//   holder".
#include <catch2/catch.hpp>

#include <chrono>

#include "tests/support/dataplane.hpp"
#include "tests/support/vip_lab.hpp"

using namespace networkd::test;

namespace {

const std::string vip = "10.88.0.50";

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

/// A VIP value of app web, proc main (the lab nodes' container) with the
/// given "ports" entries (JSON).
std::string web_value(const std::string& ports,
                      const std::string& extra = std::string{}) {
  return "'{\"app\":\"web\",\"proc\":\"main\",\"ports\":[" + ports + "]" + extra
         + "}'";
}

} // namespace

TEST_CASE("a VIP key and port-only keys of its address keep each other's "
          "rules",
          "[vip][lab][readme]") {
  vip_lab l{1};
  auto& n = l.node(0);
  n.start_networkd(l.endpoint());
  REQUIRE(
    l.ctl("put /lain/config/vips/" + vip + " " + web_value("{\"src\":\"80\"}"))
    == 0);
  REQUIRE(l.ctl("put /lain/config/vips/" + vip + ":8080 "
                + web_value("{\"dest\":\"80\"}"))
          == 0);
  REQUIRE(l.ctl("put /lain/config/vips/" + vip + ":8081 "
                + web_value("{\"dest\":\"80\"}"))
          == 0);
  auto served = [&](uint16_t port) { return l.fetch(vip, port) == "n1"; };
  REQUIRE(wait_until([&] { return served(80) && served(8080) && served(8081); },
                     15s, 20ms));
  // The VIP's lock and address; the port-only keys publish their app keys.
  CHECK(l.value_of("/lain/networkd/vips/" + vip + ".lock") == "n1");
  CHECK(wait_until(
    [&] {
      return l.value_of("/lain/networkd/apps/web/main/" + vip + ":8080")
             == "n1";
    },
    5s, 20ms));

  // The VIP key changes its rules: the port-only keys' rules stay.
  REQUIRE(
    l.ctl("put /lain/config/vips/" + vip + " "
          + web_value("{\"src\":\"80\"},{\"src\":\"90\",\"dest\":\"80\"}"))
    == 0);
  REQUIRE(wait_until([&] { return served(90); }, 10s, 20ms));
  CHECK(served(80));
  CHECK(served(8080));
  CHECK(served(8081));

  // One port-only key goes: only its rules go.
  REQUIRE(l.ctl("del /lain/config/vips/" + vip + ":8081") == 0);
  REQUIRE(wait_until([&] { return !has_dnat(n.ns, vip, 8081); }, 10s, 20ms));
  CHECK(l.fetch(vip, 8081).empty());
  CHECK(served(80));
  CHECK(served(90));
  CHECK(served(8080));

  // The VIP key goes: its address, lock and rules go; the port-only key's
  // rule for the same address stays.
  REQUIRE(l.ctl("del /lain/config/vips/" + vip) == 0);
  REQUIRE(wait_until([&] { return !has_address(n.ns, vip); }, 10s, 20ms));
  REQUIRE(wait_until(
    [&] { return !has_dnat(n.ns, vip, 80) && !has_dnat(n.ns, vip, 90); }, 10s,
    20ms));
  CHECK(l.value_of("/lain/networkd/vips/" + vip + ".lock").empty());
  CHECK(has_dnat(n.ns, vip, 8080));
  CHECK(l.value_of("/lain/networkd/apps/web/main/" + vip + ":8080") == "n1");

  // Back again: all of it is served once more.
  REQUIRE(
    l.ctl("put /lain/config/vips/" + vip + " " + web_value("{\"src\":\"80\"}"))
    == 0);
  REQUIRE(wait_until([&] { return served(80) && served(8080); }, 15s, 20ms));
  // tcp 80 of the VIP key and tcp 8080 of the port-only key, nothing else:
  // an nft map element each, or a rule line per chain and port.
  INFO(dnat_text(n.ns));
  CHECK(dnat_entries(n.ns, vip) == (dataplane() == "nft" ? 2u : 4u));
}

TEST_CASE("a changed session lease makes the holder drop the VIP and take "
          "its lock again",
          "[vip][lab][readme]") {
  vip_lab l{1};
  auto& n = l.node(0);
  REQUIRE(l.ctl("put /lain/networkd/config/lease_ttl 3") == 0);
  // Address events on the node, as the kernel reports them.
  temp_dir dir{"networkd-monitor"};
  process monitor{{"ip", "netns", "exec", n.ns.name(), "ip", "-o", "monitor",
                   "address", "dev", "eth0"},
                  dir.file("monitor.log")};
  n.start_networkd(l.endpoint());
  REQUIRE(
    l.ctl("put /lain/config/vips/" + vip + " " + web_value("{\"src\":\"80\"}"))
    == 0);
  REQUIRE(wait_until([&] { return l.fetch(vip, 80) == "n1"; }, 15s, 20ms));
  const std::string lock = "/lain/networkd/vips/" + vip + ".lock";
  auto old_lease = session_lease(*n.networkd);
  REQUIRE_FALSE(old_lease.empty());
  REQUIRE(l.lease_of(lock) == old_lease);
  // The monitor saw the address come: it listens.
  REQUIRE(
    wait_until([&] { return contains(monitor.log(), vip + "/32"); }, 5s, 20ms));
  auto seen_before = monitor.log().size();

  // The lease ends under the holder (what its expiry in etcd does: the
  // lock key goes with it).
  REQUIRE(l.ctl("lease revoke " + old_lease) == 0);
  std::string new_lease;
  bool retaken = wait_until(
    [&] {
      new_lease = session_lease(*n.networkd);
      return !new_lease.empty() && new_lease != "0" && new_lease != old_lease
             && l.lease_of(lock) == new_lease && l.value_of(lock) == "n1"
             && l.fetch(vip, 80) == "n1";
    },
    15s, 50ms);
  INFO("old lease " << old_lease << ", new " << new_lease << ", lock on "
                    << l.lease_of(lock));
  INFO(n.networkd->log());
  REQUIRE(retaken);
  // The address was dropped and added again in between.
  auto events = monitor.log().substr(seen_before);
  INFO(events);
  auto deleted = events.find("Deleted");
  CHECK(deleted != std::string::npos);
  CHECK(contains(events.substr(0, events.find('\n', deleted)), vip + "/32"));
  CHECK(events.find(vip + "/32", events.find('\n', deleted))
        != std::string::npos);
  CHECK(has_address(n.ns, vip));
}

TEST_CASE("a failed DNAT batch reads the chains again and retries and the "
          "audit period changes at runtime",
          "[vip][lab][readme][both]") {
  vip_lab l{1};
  auto& n = l.node(0);
  // No audit: only a failed batch can show what changed behind our back.
  REQUIRE(l.ctl("put /lain/networkd/config/nat_audit_s 0") == 0);
  n.start_networkd(l.endpoint());
  REQUIRE(l.ctl("put /lain/config/vips/" + vip + " "
                + web_value("{\"src\":\"80\"},{\"src\":\"53\",\"proto\":"
                            "\"udp\"}"))
          == 0);
  auto tcp = [&](uint16_t port) { return l.fetch(vip, port); };
  auto udp = [&] {
    return udp_fetch(l.client(), vip, 53, std::chrono::milliseconds(300));
  };
  REQUIRE(
    wait_until([&] { return tcp(80) == "n1" && udp() == "n1"; }, 15s, 20ms));
  // Someone empties our DNAT: the NAT manager still believes it is there.
  flush_dnat(n.ns);
  REQUIRE(tcp(80).empty());
  REQUIRE(udp().empty());
  // A change that removes the tcp 80 entry it believes in: that batch
  // fails, the chains are read, and the retry puts back what is missing
  // (udp 53 too, which no batch was asked to touch).
  REQUIRE(l.ctl("put /lain/config/vips/" + vip + " "
                + web_value("{\"src\":\"81\",\"dest\":\"80\"},{\"src\":\"53\","
                            "\"proto\":\"udp\"}"))
          == 0);
  REQUIRE(wait_until([&] { return tcp(81) == "n1"; }, 10s, 20ms));
  INFO(dnat_text(n.ns));
  CHECK(wait_until([&] { return udp() == "n1"; }, 3s, 20ms));
  CHECK_FALSE(has_dnat(n.ns, vip, 80));
  CHECK(tcp(80).empty());
  auto state = n.networkd->get("/v1/state").body;
  CHECK(contains(state, "\"audit_every_s\":0"));
  // Read and retried within the change: neither the NAT manager nor the
  // holder saw a failure (a holder would retry a second later).
  auto nat = state.substr(state.find("\"name\":\"nat\""));
  CHECK(contains(nat.substr(0, nat.find("\"name\":", 1)), "\"failures\":0,"));
  CHECK_FALSE(contains(n.networkd->log(), "install_rules failed"));

  // The audit, off so far, is turned on at runtime: a flush is put back
  // within the new period (and not before it is on).
  flush_dnat(n.ns);
  CHECK_FALSE(wait_until([&] { return tcp(81) == "n1"; }, 1500ms, 50ms));
  REQUIRE(l.ctl("put /lain/networkd/config/nat_audit_s 1") == 0);
  CHECK(wait_until(
    [&] {
      return contains(n.networkd->get("/v1/state").body, "\"audit_every_s\":1");
    },
    5s, 20ms));
  CHECK(wait_until([&] { return tcp(81) == "n1" && udp() == "n1"; }, 5s, 20ms));
  CHECK(wait_until(
    [&] { return contains(n.networkd->log(), "changed outside networkd"); }, 5s,
    20ms));
}

TEST_CASE("leftovers of a VIP whose node is excluded go at once and those "
          "of a VIP not applying here after 10 s",
          "[vip][lab][readme]") {
  vip_lab l{1};
  auto& n = l.node(0);
  // What an earlier run left: address and DNAT of two VIPs whose keys
  // still exist. This node is excluded from the first; the second is of
  // an app with no container here (it may come: not removed at once).
  const std::string excluded = "10.88.0.61";
  const std::string elsewhere = "10.88.0.62";
  for (auto& ip : {excluded, elsewhere}) {
    n.ns.must("ip addr add " + ip
              + "/32 dev eth0 valid_lft 300 preferred_lft 0");
    leave_dnat(n.ns, ip);
  }
  REQUIRE(l.ctl("put /lain/config/vips/" + excluded + " "
                + web_value("{\"src\":\"80\"}", ",\"excluded_nodes\":[\"n1\"]"))
          == 0);
  REQUIRE(l.ctl("put /lain/config/vips/" + elsewhere
                + " '{\"app\":\"other\",\"proc\":\"main\",\"ports\":["
                  "{\"src\":\"80\"}]}'")
          == 0);
  auto gone = [&](const std::string& ip) {
    return !has_address(n.ns, ip) && !has_dnat(n.ns, ip);
  };
  auto t0 = std::chrono::steady_clock::now();
  n.start_networkd(l.endpoint());
  auto ready = [&] { return n.networkd->get("/readyz").status == 200; };
  REQUIRE(wait_until(ready, 10s, 20ms));
  // Excluded: removed without waiting for the grace.
  REQUIRE(wait_until([&] { return gone(excluded); }, 5s, 20ms));
  auto excluded_after = std::chrono::steady_clock::now() - t0;
  CHECK(excluded_after < 7s);
  // Not applying here: kept through the grace, then removed.
  CHECK(has_address(n.ns, elsewhere));
  CHECK(has_dnat(n.ns, elsewhere));
  auto until_8s = 8s
                  - std::chrono::duration_cast<std::chrono::milliseconds>(
                    std::chrono::steady_clock::now() - t0);
  CHECK_FALSE(
    wait_until([&] { return !has_address(n.ns, elsewhere); }, until_8s, 100ms));
  REQUIRE(wait_until([&] { return gone(elsewhere); }, 8s, 50ms));
  auto elsewhere_after = std::chrono::steady_clock::now() - t0;
  WARN("leftovers removed after (from networkd's start): excluded "
       << std::chrono::duration_cast<std::chrono::milliseconds>(excluded_after)
            .count()
       << " ms, not applying here "
       << std::chrono::duration_cast<std::chrono::milliseconds>(elsewhere_after)
            .count()
       << " ms");
  CHECK(elsewhere_after >= 10s);
  // Nobody took the locks; the node's own address is untouched.
  CHECK(l.value_of("/lain/networkd/vips/" + excluded + ".lock").empty());
  CHECK(l.value_of("/lain/networkd/vips/" + elsewhere + ".lock").empty());
  std::string out;
  n.ns.sh("ip -4 -o addr show dev eth0", &out);
  CHECK(contains(out, n.ip + "/24"));
}
