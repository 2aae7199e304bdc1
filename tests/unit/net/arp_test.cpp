// SPDX-License-Identifier: MIT
// Gratuitous ARP, probes and ARP sightings on a bridged namespace lab.
#include "net/kernel/arp.hpp"

#include "tests/support/netns.hpp"
#include "tests/support/util.hpp"

#include <catch2/catch.hpp>

#include <algorithm>

using namespace networkd;
using namespace networkd::arp;
using namespace networkd::test;
using namespace std::chrono_literals;

namespace {

const std::string vip = "10.78.0.100";

/// Two nodes and a client on one bridge (in a "switch" namespace):
/// n1 e1 10.78.0.1, n2 e2 10.78.0.2, client ec 10.78.0.3, all /24.
struct lab {
  netns sw{"sw"};
  netns n1{"n1"};
  netns n2{"n2"};
  netns client{"cl"};
  bridge br{sw, "br0"};
  veth_pair l1{n1, "e1", sw, "s1"};
  veth_pair l2{n2, "e2", sw, "s2"};
  veth_pair lc{client, "ec", sw, "sc"};
  lab() {
    br.attach("s1");
    br.attach("s2");
    br.attach("sc");
    n1.must("ip addr add 10.78.0.1/24 dev e1");
    n2.must("ip addr add 10.78.0.2/24 dev e2");
    client.must("ip addr add 10.78.0.3/24 dev ec");
  }
  std::unique_ptr<packet_announcer> announcer_in(const netns& ns) {
    auto a = ns.run([] { return packet_announcer::open(); });
    REQUIRE(a.ok());
    return std::move(*a);
  }
  std::unique_ptr<arp_watch> watch_in(const netns& ns, const std::string& dev) {
    auto w = ns.run([&] { return arp_watch::open(dev); });
    REQUIRE(w.ok());
    return std::move(*w);
  }
};

/// Reads from `w` until `pred(all seen so far)` holds or 3 s pass.
template <class Pred>
std::vector<sighting> collect(arp_watch& w, Pred pred) {
  std::vector<sighting> seen;
  wait_until(
    [&] {
      auto got = w.read(50ms);
      REQUIRE(got.ok());
      seen.insert(seen.end(), got->begin(), got->end());
      return pred(seen);
    },
    3s, 1ms);
  return seen;
}

std::string neigh_mac(const netns& ns, const std::string& ip) {
  std::string out;
  ns.sh("ip neigh show " + ip, &out);
  auto at = out.find("lladdr ");
  return at == std::string::npos ? std::string{} : out.substr(at + 7, 17);
}

} // namespace

TEST_CASE("a gratuitous ARP burst goes out in both forms from the "
          "interface's MAC",
          "[arp]") {
  lab l;
  auto watch = l.watch_in(l.client, "ec");
  watch->set_filter({vip});
  auto ann = l.announcer_in(l.n1);
  auto mac = ann->mac_of("e1");
  REQUIRE(mac.ok());
  CHECK(to_string(*mac) == l.l1.mac_a());
  REQUIRE(ann->announce("e1", vip, 3).ok());
  auto count = [](const std::vector<sighting>& s, uint16_t op) {
    return std::count_if(s.begin(), s.end(),
                         [&](const sighting& x) { return x.op == op; });
  };
  auto seen = collect(*watch, [&](const std::vector<sighting>& s) {
    return count(s, 1) >= 3 && count(s, 2) >= 3;
  });
  CHECK(count(seen, 1) == 3);
  CHECK(count(seen, 2) == 3);
  for (auto& s : seen) {
    CHECK(s.sender_ip == vip);
    CHECK(s.target_ip == vip);
    CHECK(to_string(s.sender_mac) == l.l1.mac_a());
  }
  // The filter drops what does not claim a watched address.
  watch->set_filter({"10.78.0.200"});
  REQUIRE(ann->announce("e1", vip, 1).ok());
  std::this_thread::sleep_for(200ms);
  CHECK(watch->read(0ms)->empty());
}

TEST_CASE("a gratuitous ARP moves the VIP in a neighbour's table", "[arp]") {
  lab l;
  l.client.must("sysctl -qw net.ipv4.conf.ec.arp_accept=1");
  auto a1 = l.announcer_in(l.n1);
  auto a2 = l.announcer_in(l.n2);
  REQUIRE(a1->announce("e1", vip, 1).ok());
  CHECK(
    wait_until([&] { return neigh_mac(l.client, vip) == l.l1.mac_a(); }, 3s));
  // The new owner's announcement wins at once (no 1 s lock time for
  // gratuitous ARP).
  REQUIRE(a2->announce("e2", vip, 1).ok());
  CHECK(
    wait_until([&] { return neigh_mac(l.client, vip) == l.l2.mac_a(); }, 3s));
}

TEST_CASE("a probe finds another holder of the VIP", "[arp]") {
  lab l;
  auto watch = l.watch_in(l.n1, "e1");
  watch->set_filter({vip});
  auto ann = l.announcer_in(l.n1);
  // Nobody holds it: no answer.
  REQUIRE(ann->probe("e1", vip).ok());
  std::this_thread::sleep_for(200ms);
  CHECK(watch->read(0ms)->empty());
  // n2 holds it and answers our probe with its MAC.
  l.n2.must("ip addr add " + vip + "/32 dev e2");
  REQUIRE(ann->probe("e1", vip).ok());
  auto seen = collect(
    *watch, [](const std::vector<sighting>& s) { return !s.empty(); });
  REQUIRE_FALSE(seen.empty());
  CHECK(seen[0].op == 2);
  CHECK(seen[0].sender_ip == vip);
  CHECK(to_string(seen[0].sender_mac) == l.l2.mac_a());
  // Our own packets are not reported by our own watch.
  REQUIRE(ann->announce("e1", vip, 1).ok());
  std::this_thread::sleep_for(200ms);
  auto after = watch->read(0ms);
  REQUIRE(after.ok());
  for (auto& s : *after)
    CHECK(to_string(s.sender_mac) != l.l1.mac_a());
}

TEST_CASE("bad interfaces and addresses are clear ARP failures", "[arp]") {
  netns ns{"arpbad"};
  auto ann = ns.run([] { return packet_announcer::open(); });
  REQUIRE(ann.ok());
  auto r = (*ann)->announce("nope0", vip, 1);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == "no_device");
  CHECK(r.error().message.find("nope0") != std::string::npos);
  CHECK((*ann)->announce("lo", "10.78.0.999", 1).error().code == "invalid");
  auto w = ns.run([] { return arp_watch::open("nope0"); });
  REQUIRE_FALSE(w.ok());
  CHECK(w.error().code == "no_device");
}

TEST_CASE("addresses join and leave the filter one at a time", "[arp]") {
  lab l;
  auto watch = l.watch_in(l.client, "ec");
  const std::string marker = "10.78.0.201";
  watch->set_filter({"0.0.0.0"}); // what the link monitor starts with
  watch->filter_add(vip);
  auto ann = l.announcer_in(l.n1);
  REQUIRE(ann->announce("e1", vip, 1).ok());
  auto seen = collect(
    *watch, [&](const std::vector<sighting>& s) { return !s.empty(); });
  REQUIRE_FALSE(seen.empty());
  CHECK(seen.front().sender_ip == vip);
  // Out again: its packets are dropped, the marker's (sent after them on
  // the same link) still come.
  watch->filter_remove(vip);
  watch->filter_add(marker);
  REQUIRE(ann->announce("e1", vip, 1).ok());
  REQUIRE(ann->announce("e1", marker, 1).ok());
  seen = collect(*watch, [&](const std::vector<sighting>& s) {
    return std::any_of(s.begin(), s.end(), [&](const sighting& x) {
      return x.sender_ip == marker;
    });
  });
  for (auto& s : seen)
    CHECK(s.sender_ip == marker);
}
