// SPDX-License-Identifier: MIT
// The nftables DNAT backend inside namespaces, with traffic.
#include "net/kernel/nft.hpp"

#include "tests/support/netns.hpp"
#include "tests/support/util.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <atomic>
#include <optional>
#include <string>
#include <thread>

using namespace networkd;
using namespace networkd::nat;
using namespace networkd::nft;
using namespace networkd::test;
using namespace std::chrono_literals;

namespace {

const std::string vip = "10.80.0.100";

/// client (vc 10.80.0.2) -- node (vn 10.80.0.1, VIP on vn)
/// node vb1 172.30.1.1 -- c1 (172.30.1.2), node vb2 172.30.2.1 -- c2
/// (172.30.2.2). The same lab as nat_apply_test.cpp.
struct lab {
  netns node{"nft"};
  netns client{"nftc"};
  netns c1{"nft1"};
  netns c2{"nft2"};
  veth_pair lc{client, "vc", node, "vn"};
  veth_pair l1{c1, "eth0", node, "vb1"};
  veth_pair l2{c2, "eth0", node, "vb2"};
  lab() {
    node.must("sysctl -qw net.ipv4.ip_forward=1");
    node.must("ip addr add 10.80.0.1/24 dev vn");
    node.must("ip addr add " + vip + "/32 dev vn");
    node.must("ip addr add 172.30.1.1/24 dev vb1");
    node.must("ip addr add 172.30.2.1/24 dev vb2");
    client.must("ip addr add 10.80.0.2/24 dev vc");
    client.must("ip route add default via 10.80.0.1");
    c1.must("ip addr add 172.30.1.2/24 dev eth0");
    c1.must("ip route add default via 172.30.1.1");
    c2.must("ip addr add 172.30.2.2/24 dev eth0");
    c2.must("ip route add default via 172.30.2.1");
  }
  nft_dnat_table::options opts() const {
    nft_dnat_table::options o;
    o.netns = node.name();
    return o;
  }
  std::string list() const {
    std::string out;
    node.sh("nft list table ip networkd", &out);
    return out;
  }
};

dnat_rule to_c1(uint16_t port = 80, protocol p = protocol::tcp) {
  return dnat_rule{vip,
                   p,
                   port,
                   "172.30.1.2",
                   p == protocol::tcp ? uint16_t{8080} : uint16_t{5353},
                   "app.web"};
}

dnat_rule to_c2(uint16_t port = 80, protocol p = protocol::tcp) {
  auto r = to_c1(port, p);
  r.container_ip = "172.30.2.2";
  return r;
}

/// 2000 VIPs x 4 ports x tcp/udp in 10.100.0.0/16.
std::vector<dnat_rule> many(int vips = 2000) {
  std::vector<dnat_rule> out;
  for (int v = 0; v < vips; ++v)
    for (uint16_t port = 0; port < 4; ++port)
      for (auto p : {protocol::tcp, protocol::udp})
        out.push_back(dnat_rule{"10.100." + std::to_string(v / 250) + "."
                                  + std::to_string(v % 250 + 1),
                                p, static_cast<uint16_t>(80 + port),
                                "172.20." + std::to_string(v / 250) + "."
                                  + std::to_string(v % 250 + 2),
                                static_cast<uint16_t>(8080 + port),
                                "app" + std::to_string(v) + ".web"});
  return out;
}

std::vector<dnat_rule> sorted(std::vector<dnat_rule> v) {
  auto key = [](const dnat_rule& r) {
    return std::tie(r.vip, r.proto, r.src_port, r.container_ip, r.dest_port,
                    r.comment);
  };
  std::sort(v.begin(), v.end(), [&](const dnat_rule& a, const dnat_rule& b) {
    return key(a) < key(b);
  });
  return v;
}

} // namespace

TEST_CASE("nft map elements carry client and local traffic to the container",
          "[nft_apply]") {
  lab l;
  name_server t1{l.c1, name_server::kind::tcp, 8080, "c1"};
  name_server u1{l.c1, name_server::kind::udp, 5353, "c1-udp"};
  name_server t2{l.c2, name_server::kind::tcp, 8080, "c2"};
  nft_dnat_table table{l.opts()};
  auto r = table.reconcile({to_c1(80), to_c1(53, protocol::udp)});
  REQUIRE(r.ok());
  CHECK(r->added == 2);
  CHECK(r->deleted == 0);
  CHECK(r->batches == 1);
  CHECK(r->read_back); // the first one reads the table
  auto listed = l.list();
  INFO(listed);
  CHECK(listed.find("type ipv4_addr . inet_proto . inet_service : ipv4_addr "
                    ". inet_service")
        != std::string::npos);
  CHECK(listed.find("10.80.0.100 . tcp . 80 counter packets 0 bytes 0 "
                    "comment \"app.web\" : 172.30.1.2 . 8080")
        != std::string::npos);
  CHECK(listed.find("type nat hook prerouting priority dstnat - 10;")
        != std::string::npos);
  CHECK(listed.find("fib daddr type local dnat ip to ip daddr . meta l4proto "
                    ". th dport map @vip_dnat")
        != std::string::npos);
  CHECK(listed.find("type nat hook output priority -110;")
        != std::string::npos);
  CHECK(listed.find("oif \"lo\" dnat ip to") != std::string::npos);
  CHECK(tcp_fetch(l.client, vip, 80) == "c1");
  CHECK(udp_fetch(l.client, vip, 53) == "c1-udp");
  CHECK(tcp_fetch(l.node, vip, 80) == "c1");
  CHECK(udp_fetch(l.node, vip, 53) == "c1-udp");

  // The container moves: one element out, one in, one transaction.
  r = table.reconcile({to_c2(80), to_c1(53, protocol::udp)});
  REQUIRE(r.ok());
  CHECK(r->added == 1);
  CHECK(r->deleted == 1);
  CHECK(r->batches == 1);
  CHECK_FALSE(r->read_back);
  CHECK_FALSE(r->retried);
  CHECK(r->live_time == r->apply_time);
  CHECK(tcp_fetch(l.client, vip, 80) == "c2");
  CHECK(tcp_fetch(l.node, vip, 80) == "c2");
  CHECK(udp_fetch(l.client, vip, 53) == "c1-udp");
  // Nothing to do: no transaction.
  r = table.reconcile({to_c2(80), to_c1(53, protocol::udp)});
  REQUIRE(r.ok());
  CHECK(r->batches == 0);
  CHECK(r->apply_time.count() == 0);
  auto s = table.read();
  REQUIRE(s.ok());
  CHECK(s->prerouting_hooks == 1);
  CHECK(s->output_hooks == 1);
  CHECK(rules_in(*s, chain::prerouting).size() == 2);
  CHECK(rules_in(*s, chain::output).size() == 2);
  CHECK(diff(*s, {to_c2(80), to_c1(53, protocol::udp)})->lines.size() == 0);
}

TEST_CASE("the OUTPUT rule of the nft table captures the node's traffic only "
          "while the VIP is local",
          "[nft_apply]") {
  lab l;
  name_server t1{l.c1, name_server::kind::tcp, 8080, "c1"};
  nft_dnat_table table{l.opts()};
  REQUIRE(table.reconcile({to_c1(80)}).ok());
  CHECK(tcp_fetch(l.node, vip, 80) == "c1");
  l.node.must("ip addr del " + vip + "/32 dev vn");
  CHECK(tcp_fetch(l.node, vip, 80, 500ms).empty());
  CHECK(tcp_fetch(l.client, vip, 80, 500ms).empty());
  l.node.must("ip addr add " + vip + "/32 dev vn");
  CHECK(tcp_fetch(l.node, vip, 80) == "c1");
  CHECK(tcp_fetch(l.client, vip, 80) == "c1");
}

TEST_CASE("16000 nft elements load cold and read back equal and one change "
          "among them is one small transaction",
          "[nft_apply]") {
  netns ns{"nftscale"};
  nft_dnat_table::options o;
  o.netns = ns.name();
  nft_dnat_table table{o};
  auto desired = many();
  auto t0 = std::chrono::steady_clock::now();
  auto cold = table.reconcile(desired);
  auto cold_us = std::chrono::duration_cast<std::chrono::microseconds>(
    std::chrono::steady_clock::now() - t0);
  REQUIRE(cold.ok());
  CHECK(cold->added == 16000);
  CHECK(cold->batches == 1);
  // A second table object reads everything back.
  nft_dnat_table fresh{o};
  auto s = fresh.read();
  REQUIRE(s.ok());
  REQUIRE(s->entries.size() == 32000); // each element in both chains
  CHECK(sorted(rules_in(*s, chain::prerouting)) == sorted(desired));
  CHECK(sorted(rules_in(*s, chain::output)) == sorted(desired));
  // One VIP's container moves: its 8 elements, one transaction.
  for (size_t i = 4000; i < 4008; ++i)
    desired[i].container_ip = "172.31.0.1";
  auto one = table.reconcile(desired);
  REQUIRE(one.ok());
  CHECK(one->batches == 1);
  CHECK(one->added == 8);
  CHECK(one->deleted == 8);
  CHECK_FALSE(one->read_back);
  s = fresh.read();
  REQUIRE(s.ok());
  CHECK(sorted(rules_in(*s, chain::prerouting)) == sorted(desired));
  WARN("16000 elements cold: " << cold_us.count() / 1000 << " ms (read "
                               << cold->read_time.count() / 1000 << " ms)"
                               << "; one VIP changed: "
                               << one->apply_time.count() << " us");
  REQUIRE(table.remove_all().ok());
}

TEST_CASE("a reconcile of some VIPs leaves the other VIPs' elements alone",
          "[nft_apply]") {
  netns ns{"nftvips"};
  nft_dnat_table::options o;
  o.netns = ns.name();
  nft_dnat_table table{o};
  auto other = to_c1(80);
  other.vip = "10.80.0.101";
  REQUIRE(table.reconcile({to_c1(80), other}).ok());
  auto r = table.reconcile_vips({vip}, {to_c2(80), to_c2(443)});
  REQUIRE(r.ok());
  CHECK(r->deleted == 1);
  CHECK(r->added == 2);
  r = table.reconcile_vips({"10.80.0.102"}, {});
  REQUIRE(r.ok());
  CHECK(r->batches == 0);
  auto s = table.read();
  REQUIRE(s.ok());
  CHECK(sorted(rules_in(*s, chain::prerouting))
        == sorted({other, to_c2(80), to_c2(443)}));
  auto bad = table.reconcile_vips({"10.80.0.102"}, {to_c1(80)});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == "invalid");
  // Two targets for one VIP port: the first wins, the other is reported.
  r = table.reconcile_vips({vip}, {to_c1(80), to_c2(80)});
  REQUIRE(r.ok());
  CHECK(r->conflicts.size() == 1);
  s = table.read();
  REQUIRE(s.ok());
  CHECK(sorted(rules_in(*s, chain::prerouting)) == sorted({other, to_c1(80)}));
}

TEST_CASE("a map flushed behind our back is repaired by refresh and "
          "reconcile",
          "[nft_apply]") {
  netns ns{"nftflush"};
  nft_dnat_table::options o;
  o.netns = ns.name();
  nft_dnat_table table{o};
  auto desired = many(100);
  REQUIRE(table.reconcile(desired).ok());
  ns.must("nft flush map ip networkd vip_dnat");
  // A change trusts what it knows: only its own element goes in.
  desired[0].dest_port = 9999;
  auto r = table.reconcile(desired);
  REQUIRE(r.ok());
  // The delete of the old element found nothing: re-read, retried.
  CHECK(r->retried);
  CHECK(r->read_back);
  CHECK(r->added == 800);
  ns.must("nft flush map ip networkd vip_dnat");
  auto fresh = table.refresh();
  REQUIRE(fresh.ok());
  CHECK(*fresh);
  r = table.reconcile(desired);
  REQUIRE(r.ok());
  CHECK_FALSE(r->read_back);
  CHECK_FALSE(r->retried);
  CHECK(r->added == 800);
  CHECK(r->batches == 1);
  auto s = table.read();
  REQUIRE(s.ok());
  CHECK(sorted(rules_in(*s, chain::prerouting)) == sorted(desired));
  // Right after a read (the audit's shortcut: nothing committed since, no
  // dump) a flush still shows: it moved the ruleset's generation on.
  REQUIRE(table.refresh().ok());
  ns.must("nft flush map ip networkd vip_dnat");
  fresh = table.refresh();
  REQUIRE(fresh.ok());
  CHECK(*fresh);
  r = table.reconcile(desired);
  REQUIRE(r.ok());
  CHECK(r->added == 800);
}

TEST_CASE("a chain or rule removed behind our back brings the whole table "
          "back",
          "[nft_apply]") {
  lab l;
  name_server t1{l.c1, name_server::kind::tcp, 8080, "c1"};
  nft_dnat_table table{l.opts()};
  REQUIRE(table.reconcile({to_c1(80), to_c1(443)}).ok());
  l.node.must("nft delete chain ip networkd output 2>/dev/null || "
              "(nft flush chain ip networkd output && nft delete chain ip "
              "networkd output)");
  CHECK(tcp_fetch(l.node, vip, 80, 500ms).empty());
  REQUIRE(table.refresh().ok());
  auto s = table.read();
  REQUIRE(s.ok());
  CHECK(s->output_hooks == 0);
  CHECK(rules_in(*s, chain::output).empty());
  auto r = table.reconcile({to_c1(80), to_c1(443)});
  REQUIRE(r.ok());
  CHECK(r->batches == 1);
  CHECK(r->added == 2); // the table anew, in one transaction
  CHECK(r->rebuilt);
  CHECK(tcp_fetch(l.node, vip, 80) == "c1");
  // Someone's own rule in our chain goes the same way.
  l.node.must("nft add rule ip networkd prerouting tcp dport 9 accept");
  REQUIRE(table.refresh().ok());
  r = table.reconcile({to_c1(80), to_c1(443)});
  REQUIRE(r.ok());
  CHECK(r->batches == 1);
  CHECK(l.list().find("dport 9") == std::string::npos);
  CHECK(tcp_fetch(l.client, vip, 80) == "c1");
  // A table switched off (dormant) is switched on again the same way.
  l.node.must("nft add table ip networkd '{ flags dormant; }'");
  CHECK(tcp_fetch(l.client, vip, 80, 500ms).empty());
  REQUIRE(table.refresh().ok());
  r = table.reconcile({to_c1(80), to_c1(443)});
  REQUIRE(r.ok());
  CHECK(r->batches == 1);
  CHECK(tcp_fetch(l.client, vip, 80) == "c1");
}

TEST_CASE("remove_all leaves no nft table behind", "[nft_apply]") {
  lab l;
  name_server t1{l.c1, name_server::kind::tcp, 8080, "c1"};
  nft_dnat_table table{l.opts()};
  REQUIRE(table.reconcile({to_c1(80)}).ok());
  CHECK(tcp_fetch(l.client, vip, 80) == "c1");
  REQUIRE(table.remove_all().ok());
  std::string out;
  l.node.sh("nft list tables", &out);
  CHECK(out.find("networkd") == std::string::npos);
  CHECK(tcp_fetch(l.client, vip, 80, 300ms).empty());
  REQUIRE(table.remove_all().ok()); // nothing there: fine
  auto gone = remove_table_if_present(l.node.name());
  REQUIRE(gone.ok());
  CHECK_FALSE(*gone);
  // And it comes back from nothing.
  auto r = table.reconcile({to_c1(80)});
  REQUIRE(r.ok());
  CHECK(r->added == 1);
  CHECK(tcp_fetch(l.client, vip, 80) == "c1");
  gone = remove_table_if_present(l.node.name());
  REQUIRE(gone.ok());
  CHECK(*gone);
  l.node.sh("nft list tables", &out);
  CHECK(out.find("networkd") == std::string::npos);
  auto bad = remove_table_if_present("no-such-namespace-here");
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == "netns");
}

TEST_CASE("per-element counters count real traffic", "[nft_apply]") {
  lab l;
  name_server t1{l.c1, name_server::kind::tcp, 8080, "c1"};
  nft_dnat_table table{l.opts()};
  auto none = table.counters();
  REQUIRE(none.ok());
  CHECK(none->empty());
  REQUIRE(table.reconcile({to_c1(80), to_c1(443)}).ok());
  for (int i = 0; i < 3; ++i)
    REQUIRE(tcp_fetch(l.client, vip, 80) == "c1");
  auto c = table.counters();
  REQUIRE(c.ok());
  REQUIRE(c->size() == 2);
  for (auto& e : *c) {
    CHECK(e.vip == vip);
    CHECK(e.proto == protocol::tcp);
    INFO(e.port << ": " << e.packets << " packets, " << e.bytes << " bytes");
    if (e.port == 80) {
      // NAT chains see the first packet of each connection.
      CHECK(e.packets >= 3);
      CHECK(e.bytes > 0);
    } else {
      CHECK(e.port == 443);
      CHECK(e.packets == 0);
      CHECK(e.bytes == 0);
    }
  }
}

namespace {

/// The traffic set's counter of vip:port/proto (nullopt: no element).
std::optional<nft_counter> traffic_of(nft_dnat_table& table,
                                      const std::string& ip, uint16_t port,
                                      protocol p) {
  auto t = table.traffic();
  REQUIRE(t.ok());
  for (auto& e : *t)
    if (e.vip == ip && e.port == port && e.proto == p)
      return e;
  return std::nullopt;
}

/// An IPv4 UDP datagram's length with `payload` bytes.
constexpr uint64_t udp_len(uint64_t payload) {
  return 20 + 8 + payload;
}

} // namespace

TEST_CASE("the traffic set counts every packet of a DNATed connection in "
          "both directions once",
          "[nft_apply]") {
  lab l;
  // udp_fetch sends "?" and the servers answer with their two-letter name.
  name_server u1{l.c1, name_server::kind::udp, 5353, "c1"};
  name_server un{l.node, name_server::kind::udp, 5454, "nd"};
  name_server t1{l.c1, name_server::kind::tcp, 8080, "c1"};
  nft_dnat_table table{l.opts()};
  // A server on the node itself; unconnected, it answers from the address
  // the route to the sender gives: 10.80.0.1 towards the client, the VIP
  // towards the node's own sockets (so one entry for each).
  auto to_node = to_c1(54, protocol::udp);
  to_node.container_ip = "10.80.0.1";
  to_node.dest_port = 5454;
  auto to_self = to_node;
  to_self.src_port = 55;
  to_self.container_ip = vip;
  REQUIRE(table
            .reconcile({to_c1(53, protocol::udp), to_c1(80), to_c1(443),
                        to_node, to_self})
            .ok());
  auto list = l.list();
  INFO(list);
  CHECK(list.find("ct original ip daddr . meta l4proto . ct original "
                  "proto-dst @vip_traffic")
        != std::string::npos);
  auto zero = traffic_of(table, vip, 443, protocol::tcp);
  REQUIRE(zero);
  CHECK(zero->packets == 0);
  CHECK(zero->bytes == 0);
  const uint64_t round = udp_len(1) + udp_len(2);
  // Forwarded (client -> container), sent by the node (output ->
  // container), and to a server on the node from the client and from the
  // node itself (over lo: counted in output, not again in prerouting).
  for (int i = 0; i < 5; ++i)
    REQUIRE(udp_fetch(l.client, vip, 53) == "c1");
  for (int i = 0; i < 3; ++i)
    REQUIRE(udp_fetch(l.node, vip, 53) == "c1");
  for (int i = 0; i < 2; ++i)
    REQUIRE(udp_fetch(l.client, vip, 54) == "nd");
  for (int i = 0; i < 4; ++i)
    REQUIRE(udp_fetch(l.node, vip, 55) == "nd");
  auto u = traffic_of(table, vip, 53, protocol::udp);
  REQUIRE(u);
  CHECK(u->packets == 2 * 8);
  CHECK(u->bytes == 8 * round);
  auto n = traffic_of(table, vip, 54, protocol::udp);
  REQUIRE(n);
  CHECK(n->packets == 2 * 2);
  CHECK(n->bytes == 2 * round);
  auto self = traffic_of(table, vip, 55, protocol::udp);
  REQUIRE(self);
  CHECK(self->packets == 2 * 4);
  CHECK(self->bytes == 4 * round);
  // New connections (the map's counters) stay one per flow: a connected
  // UDP socket per fetch.
  auto conns = table.counters();
  REQUIRE(conns.ok());
  for (auto& e : *conns)
    if (e.port == 53)
      CHECK(e.packets == 8);
  // TCP: a handshake, the answer, the close: more than 5 packets a
  // connection, every one counted.
  for (int i = 0; i < 3; ++i)
    REQUIRE(tcp_fetch(l.client, vip, 80) == "c1");
  auto t = traffic_of(table, vip, 80, protocol::tcp);
  REQUIRE(t);
  CHECK(t->packets >= 3 * 5);
  CHECK(t->bytes >= t->packets * 40);

  SECTION("a new container for the entry keeps its traffic counter") {
    name_server u2{l.c2, name_server::kind::udp, 5353, "c2"};
    auto r = table.reconcile(
      {to_c2(53, protocol::udp), to_c1(80), to_c1(443), to_node, to_self});
    REQUIRE(r.ok());
    CHECK(r->batches == 1);
    REQUIRE(udp_fetch(l.client, vip, 53) == "c2");
    auto after = traffic_of(table, vip, 53, protocol::udp);
    REQUIRE(after);
    CHECK(after->packets == 2 * 9);
    CHECK(after->bytes == 9 * round);
  }

  SECTION("an entry that goes takes its counter; one put back starts at 0") {
    REQUIRE(table.reconcile({to_c1(80), to_c1(443), to_node, to_self}).ok());
    CHECK_FALSE(traffic_of(table, vip, 53, protocol::udp));
    REQUIRE(table
              .reconcile({to_c1(53, protocol::udp), to_c1(80), to_c1(443),
                          to_node, to_self})
              .ok());
    auto back = traffic_of(table, vip, 53, protocol::udp);
    REQUIRE(back);
    CHECK(back->packets == 0);
  }

  SECTION("the audit puts back a traffic element or chain removed behind "
          "our back") {
    l.node.must("nft delete element ip networkd vip_traffic '{ " + vip
                + " . udp . 53 }'");
    REQUIRE(table.refresh().ok());
    auto r = table.reconcile(
      {to_c1(53, protocol::udp), to_c1(80), to_c1(443), to_node, to_self});
    REQUIRE(r.ok());
    CHECK(r->batches == 1);
    CHECK_FALSE(r->rebuilt);
    REQUIRE(traffic_of(table, vip, 53, protocol::udp));
    l.node.must("nft delete chain ip networkd traffic_output");
    REQUIRE(table.refresh().ok());
    r = table.reconcile(
      {to_c1(53, protocol::udp), to_c1(80), to_c1(443), to_node, to_self});
    REQUIRE(r.ok());
    CHECK(r->rebuilt);
    REQUIRE(udp_fetch(l.node, vip, 53) == "c1");
    auto again = traffic_of(table, vip, 53, protocol::udp);
    REQUIRE(again);
    CHECK(again->packets == 2);
  }

  REQUIRE(table.remove_all().ok());
  std::string out;
  l.node.sh("nft list tables", &out);
  CHECK(out.find("networkd") == std::string::npos);
}

TEST_CASE("a Docker-shaped iptables nat ruleset and the nft table both "
          "answer",
          "[nft_apply]") {
  lab l;
  name_server t1{l.c1, name_server::kind::tcp, 8080, "c1"};
  name_server t2{l.c2, name_server::kind::tcp, 8080, "c2"};
  // What dockerd writes (iptables-nft, table ip nat, priority dstnat) for
  // `docker run -p 8000:8080` with its bridge on vb2.
  for (auto* cmd :
       {"iptables -t nat -N DOCKER",
        "iptables -t nat -A PREROUTING -m addrtype --dst-type LOCAL -j DOCKER",
        "iptables -t nat -A OUTPUT ! -d 127.0.0.0/8 -m addrtype --dst-type "
        "LOCAL -j DOCKER",
        "iptables -t nat -A POSTROUTING -s 172.30.2.0/24 ! -o vb2 -j "
        "MASQUERADE",
        "iptables -t nat -A DOCKER -i vb2 -j RETURN",
        "iptables -t nat -A DOCKER ! -i vb2 -p tcp -m tcp --dport 8000 -j "
        "DNAT --to-destination 172.30.2.2:8080"})
    l.node.must(cmd);
  nft_dnat_table table{l.opts()};
  REQUIRE(table.reconcile({to_c1(80)}).ok());
  CHECK(tcp_fetch(l.client, vip, 80) == "c1");
  CHECK(tcp_fetch(l.client, "10.80.0.1", 8000) == "c2");
  CHECK(tcp_fetch(l.client, vip, 8000) == "c2"); // Docker's on every address
  CHECK(tcp_fetch(l.node, vip, 80) == "c1");
  CHECK(tcp_fetch(l.node, "10.80.0.1", 8000) == "c2");
  // A VIP port that is also published by Docker: the VIP's wins (our
  // chains run first), Docker's stays on the node's other addresses.
  REQUIRE(table.reconcile({to_c1(80), to_c1(8000)}).ok());
  CHECK(tcp_fetch(l.client, vip, 8000) == "c1");
  CHECK(tcp_fetch(l.client, "10.80.0.1", 8000) == "c2");
  REQUIRE(table.remove_all().ok());
  CHECK(tcp_fetch(l.client, "10.80.0.1", 8000) == "c2");
  std::string saved;
  l.node.sh("iptables-save -t nat", &saved);
  CHECK(saved.find("-A DOCKER ! -i vb2 -p tcp -m tcp --dport 8000")
        != std::string::npos);
}

TEST_CASE("refresh runs beside reconciles and never adopts a stale read",
          "[nft_apply]") {
  netns ns{"nftrefresh"};
  nft_dnat_table::options o;
  o.netns = ns.name();
  nft_dnat_table table{o};
  auto desired = many(200);
  REQUIRE(table.reconcile(desired).ok());
  // Nothing committed since the last read: nothing to dump, still true.
  REQUIRE(table.read().ok());
  auto quiet = table.refresh();
  REQUIRE(quiet.ok());
  CHECK(*quiet);
  std::atomic<bool> stop{false};
  std::atomic<int> refreshed{0};
  std::atomic<int> failed{0};
  std::thread audit{[&] {
    while (!stop) {
      // "busy": the ruleset changed under every attempt to read it (a
      // transaction a millisecond here); anything else is a bug.
      auto r = table.refresh();
      if (r)
        ++refreshed;
      else if (r.error().code != "busy")
        ++failed;
    }
  }};
  for (int k = 0; k < 40; ++k) {
    desired[k % 8].dest_port = static_cast<uint16_t>(9000 + k);
    auto r = table.reconcile(desired);
    REQUIRE(r.ok());
    CHECK(r->batches == 1);
    CHECK(r->added == 1);
    CHECK_FALSE(r->retried);
  }
  stop = true;
  audit.join();
  CHECK(failed == 0);
  CHECK(refreshed > 0);
  auto r = table.reconcile(desired);
  REQUIRE(r.ok());
  CHECK(r->batches == 0);
  nft_dnat_table other{o};
  auto s = other.read();
  REQUIRE(s.ok());
  CHECK(sorted(rules_in(*s, chain::prerouting)) == sorted(desired));
}
