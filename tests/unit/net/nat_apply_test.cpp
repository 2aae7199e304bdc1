// SPDX-License-Identifier: MIT
// DNAT rules applied with iptables-restore inside namespaces, with traffic.
#include "net/kernel/nat.hpp"

#include "tests/support/netns.hpp"
#include "tests/support/util.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <future>
#include <sstream>
#include <sys/stat.h>
#include <thread>
#include <unistd.h>

using namespace networkd;
using namespace networkd::nat;
using namespace networkd::test;
using namespace std::chrono_literals;

namespace {

const std::string vip = "10.80.0.100";

/// client (vc 10.80.0.2) -- node (vn 10.80.0.1, VIP on vn)
/// node vb1 172.30.1.1 -- c1 (172.30.1.2), node vb2 172.30.2.1 -- c2
/// (172.30.2.2). Each "container" serves TCP 8080 and UDP 5353 answering
/// with its name.
struct lab {
  netns node{"nat"};
  netns client{"natc"};
  netns c1{"nat1"};
  netns c2{"nat2"};
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
  iptables_dnat_table table(std::chrono::milliseconds trust = 30s) {
    iptables_dnat_table::options o;
    o.netns = node.name();
    o.trust_for = trust;
    return iptables_dnat_table{o};
  }
  std::string save(const std::string& args = "-t nat") {
    std::string out;
    node.sh("iptables-save " + args, &out);
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

/// Lines of `text` not about our chains, for comparing before and after.
std::string without_ours(const std::string& text) {
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);)
    if (line.rfind('#', 0) != 0 && line.find("lain-") == std::string::npos)
      out += line + "\n";
  return out;
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos;
       at = text.find(what, at + 1))
    ++n;
  return n;
}

} // namespace

TEST_CASE("DNAT rules carry client and local traffic to the container",
          "[nat_apply]") {
  lab l;
  name_server t1{l.c1, name_server::kind::tcp, 8080, "c1"};
  name_server u1{l.c1, name_server::kind::udp, 5353, "c1-udp"};
  name_server t2{l.c2, name_server::kind::tcp, 8080, "c2"};
  auto table = l.table();
  auto r = table.reconcile({to_c1(80), to_c1(53, protocol::udp)});
  REQUIRE(r.ok());
  CHECK(r->added == 4);
  CHECK(r->deleted == 0);
  auto saved = l.save();
  CHECK(count(saved, "-A PREROUTING -m addrtype --dst-type LOCAL -j "
                     "lain-PREROUTING")
        == 1);
  CHECK(count(saved, "-A PREROUTING -j lain-PREROUTING") == 0);
  CHECK(count(saved, "-A OUTPUT -j lain-OUTPUT") == 1);
  CHECK(saved.find("-A lain-PREROUTING -d 10.80.0.100/32 -p tcp -m tcp "
                   "--dport 80 -m comment --comment \"app.web\" -j DNAT "
                   "--to-destination 172.30.1.2:8080")
        != std::string::npos);
  CHECK(saved.find("-A lain-OUTPUT -d 10.80.0.100/32 -o lo -p udp -m udp "
                   "--dport 53")
        != std::string::npos);
  CHECK(tcp_fetch(l.client, vip, 80) == "c1");
  CHECK(udp_fetch(l.client, vip, 53) == "c1-udp");
  // The node itself reaches the VIP through lain-OUTPUT (VIP local: lo).
  CHECK(tcp_fetch(l.node, vip, 80) == "c1");
  CHECK(udp_fetch(l.node, vip, 53) == "c1-udp");

  // The container moves: only the tcp rules change, traffic follows.
  r = table.reconcile({to_c2(80), to_c1(53, protocol::udp)});
  REQUIRE(r.ok());
  CHECK(r->added == 2);
  CHECK(r->deleted == 2);
  CHECK(r->batches == 2); // inserts first, then the deletes
  CHECK(r->live_time <= r->apply_time);
  CHECK_FALSE(r->read_back); // trusted what it applied itself
  CHECK(tcp_fetch(l.client, vip, 80) == "c2");
  CHECK(tcp_fetch(l.node, vip, 80) == "c2");
  CHECK(udp_fetch(l.client, vip, 53) == "c1-udp");
  // Nothing to do: no batch at all.
  r = table.reconcile({to_c2(80), to_c1(53, protocol::udp)});
  REQUIRE(r.ok());
  CHECK(r->added + r->deleted == 0);
  CHECK(r->apply_time.count() == 0);
  // Read back, the kernel holds exactly what we wanted.
  auto s = table.read();
  REQUIRE(s.ok());
  CHECK(rules_in(*s, chain::prerouting).size() == 2);
  CHECK(rules_in(*s, chain::output).size() == 2);
  CHECK(diff(*s, {to_c2(80), to_c1(53, protocol::udp)})->empty());
}

TEST_CASE("the OUTPUT rule captures the node's traffic only while the VIP "
          "is local",
          "[nat_apply]") {
  lab l;
  name_server t1{l.c1, name_server::kind::tcp, 8080, "c1"};
  auto table = l.table();
  REQUIRE(table.reconcile({to_c1(80)}).ok());
  CHECK(tcp_fetch(l.node, vip, 80) == "c1");
  // The kernel dropped the VIP (valid lifetime ran out), the rules stayed:
  // the node's own traffic is no longer captured (it would go to whoever
  // owns the VIP now; here nobody answers).
  l.node.must("ip addr del " + vip + "/32 dev vn");
  CHECK(tcp_fetch(l.node, vip, 80, 500ms).empty());
  l.node.must("ip addr add " + vip + "/32 dev vn");
  CHECK(tcp_fetch(l.node, vip, 80) == "c1");
}

TEST_CASE("rules outside our chains are never touched", "[nat_apply]") {
  lab l;
  l.node.must("iptables -t nat -A POSTROUTING -s 172.30.0.0/16 -j MASQUERADE");
  l.node.must("iptables -t nat -N other");
  l.node.must("iptables -t nat -A PREROUTING -p tcp --dport 9 -j other");
  l.node.must("iptables -t nat -A other -d 10.80.0.100/32 -p tcp --dport 9 "
              "-j DNAT --to-destination 172.30.1.2:9");
  l.node.must("iptables -A INPUT -p tcp --dport 22 -j ACCEPT");
  auto before = without_ours(l.save(""));
  auto table = l.table();
  REQUIRE(table.reconcile({to_c1(80), to_c1(443)}).ok());
  REQUIRE(table.reconcile({to_c2(80)}).ok());
  // A line someone put in our chain goes on the next full reconcile.
  l.node.must("iptables -t nat -A lain-PREROUTING -d 10.80.0.7/32 -j ACCEPT");
  table.invalidate();
  auto r = table.reconcile({to_c2(80)});
  REQUIRE(r.ok());
  CHECK(r->read_back);
  CHECK(r->deleted == 1);
  CHECK(l.save().find("10.80.0.7") == std::string::npos);
  // Hooked once, however often we reconcile.
  auto fresh = l.table(0ms);
  REQUIRE(fresh.reconcile({to_c2(80)}).ok());
  CHECK(count(l.save(), "-j lain-PREROUTING") == 1);
  CHECK(count(l.save(), "-j lain-OUTPUT") == 1);
  CHECK(without_ours(l.save("")) == before);
  REQUIRE(table.remove_all().ok());
  CHECK(without_ours(l.save("")) == before);
}

TEST_CASE("a reconcile of some VIPs leaves the other VIPs alone",
          "[nat_apply]") {
  lab l;
  auto other = to_c1(80);
  other.vip = "10.80.0.101";
  auto table = l.table();
  REQUIRE(table.reconcile({to_c1(80), other}).ok());
  auto r = table.reconcile_vips({vip}, {to_c2(80), to_c2(443)});
  REQUIRE(r.ok());
  CHECK(r->deleted == 2);
  CHECK(r->added == 4);
  r = table.reconcile_vips({"10.80.0.102"}, {});
  REQUIRE(r.ok());
  CHECK(r->added + r->deleted == 0);
  auto s = table.read();
  REQUIRE(s.ok());
  auto pre = rules_in(*s, chain::prerouting);
  CHECK(pre.size() == 3);
  CHECK(std::count(pre.begin(), pre.end(), other) == 1);
  // A rule for a VIP not named is refused, nothing applied.
  auto bad = table.reconcile_vips({"10.80.0.102"}, {to_c1(80)});
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().code == "invalid");
}

TEST_CASE("a stale trusted state is repaired by reading the chains again",
          "[nat_apply]") {
  lab l;
  auto table = l.table();
  REQUIRE(table.reconcile({to_c1(80), to_c1(443)}).ok());
  // Someone deletes one of our lines behind our back; our next batch
  // would delete it again and fails.
  l.node.must("iptables -t nat -D lain-PREROUTING "
              + render(to_c1(443), chain::prerouting));
  auto r = table.reconcile({to_c1(80)});
  REQUIRE(r.ok());
  CHECK(r->retried);
  CHECK(r->read_back);
  CHECK_FALSE(r->rebuilt);
  auto s = table.read();
  REQUIRE(s.ok());
  CHECK(diff(*s, {to_c1(80)})->empty());
}

TEST_CASE("a change never waits for a read and refresh() re-reads off the "
          "change path",
          "[nat_apply]") {
  lab l;
  auto table = l.table(std::chrono::milliseconds::max());
  REQUIRE(table.reconcile({to_c1(80), to_c1(443)}).ok());
  // Someone flushes one of our chains.
  l.node.must("iptables -t nat -F lain-PREROUTING");
  // A change trusts what it knows: no read, and the flushed lines stay
  // missing (they are not in its diff).
  auto r = table.reconcile({to_c1(80), to_c1(443), to_c1(8443)});
  REQUIRE(r.ok());
  CHECK_FALSE(r->read_back);
  CHECK(r->added == 2);
  // The audit's read shows the diff what is really there.
  auto fresh = table.refresh();
  REQUIRE(fresh.ok());
  CHECK(*fresh);
  r = table.reconcile({to_c1(80), to_c1(443), to_c1(8443)});
  REQUIRE(r.ok());
  CHECK_FALSE(r->read_back);
  CHECK(r->added == 2); // 80 and 443 in lain-PREROUTING
  CHECK(r->deleted == 0);
  auto s = table.read();
  REQUIRE(s.ok());
  CHECK(diff(*s, {to_c1(80), to_c1(443), to_c1(8443)})->empty());
}

TEST_CASE("a refresh() that overlaps a batch is dropped", "[nat_apply]") {
  lab l;
  // iptables-save that takes its time, so that a batch runs meanwhile.
  temp_dir dir;
  auto slow = dir.file("slow-save");
  auto started = dir.file("started");
  write_file(slow, "#!/bin/sh\ntouch " + started
                     + "\nsleep 2\nexec iptables-save \"$@\"\n");
  REQUIRE(::chmod(slow.c_str(), 0755) == 0);
  iptables_dnat_table::options o;
  o.netns = l.node.name();
  o.save_command = slow;
  iptables_dnat_table table{o};
  REQUIRE(table.reconcile({to_c1(80)}).ok()); // the first read
  REQUIRE(::unlink(started.c_str()) == 0);
  auto pending
    = std::async(std::launch::async, [&] { return table.refresh(); });
  // The read is under way (the tool sleeps first); the batch runs
  // meanwhile, without waiting for it.
  REQUIRE(
    wait_until([&] { return ::access(started.c_str(), F_OK) == 0; }, 10s, 5ms));
  auto r = table.reconcile({to_c2(80)});
  REQUIRE(r.ok());
  CHECK(pending.wait_for(0s) == std::future_status::timeout);
  auto fresh = pending.get();
  REQUIRE(fresh.ok());
  CHECK_FALSE(*fresh); // it may have read the chains before the batch
  // What the batch left is what the table knows: nothing to do.
  r = table.reconcile({to_c2(80)});
  REQUIRE(r.ok());
  CHECK(r->added + r->deleted == 0);
}

TEST_CASE("remove_all unhooks and deletes our chains", "[nat_apply]") {
  lab l;
  name_server t1{l.c1, name_server::kind::tcp, 8080, "c1"};
  auto table = l.table();
  REQUIRE(table.reconcile({to_c1(80)}).ok());
  CHECK(tcp_fetch(l.client, vip, 80) == "c1");
  REQUIRE(table.remove_all().ok());
  auto saved = l.save();
  CHECK(saved.find("lain-") == std::string::npos);
  CHECK(tcp_fetch(l.client, vip, 80, 300ms).empty());
  REQUIRE(table.remove_all().ok()); // nothing left: a no-op
  // And it comes back from nothing.
  REQUIRE(table.reconcile({to_c1(80)}).ok());
  CHECK(tcp_fetch(l.client, vip, 80) == "c1");
}

TEST_CASE("commands that fail or hang are clear failures", "[nat_apply]") {
  auto r = run_command({"/nonexistent/iptables-restore"}, "x", 1s);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == "exec");
  auto t0 = std::chrono::steady_clock::now();
  auto slow = run_command({"sleep", "5"}, "", 200ms);
  REQUIRE_FALSE(slow.ok());
  CHECK(slow.error().code == "timeout");
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  auto cat = run_command({"cat"}, std::string(1 << 20, 'x'), 5s);
  REQUIRE(cat.ok());
  CHECK(cat->out.size() == (1u << 20));
  CHECK(cat->exit_code == 0);
  auto quits = run_command({"true"}, std::string(1 << 20, 'x'), 5s);
  REQUIRE(quits.ok());
  netns ns{"natbad"};
  iptables_dnat_table::options o;
  o.netns = ns.name();
  o.restore_command = "false";
  iptables_dnat_table table{o};
  auto f = table.reconcile({to_c1(80)});
  REQUIRE_FALSE(f.ok());
  CHECK(f.error().code == "iptables");
}

TEST_CASE("16000 rules go in as one batch and one change among them is "
          "quick",
          "[nat_apply]") {
  netns ns{"natscale"};
  std::vector<dnat_rule> desired;
  for (int v = 0; v < 2000; ++v)
    for (uint16_t port = 0; port < 4; ++port)
      desired.push_back(dnat_rule{
        "10." + std::to_string(100 + v / 250) + "." + std::to_string(v % 250)
          + ".1",
        protocol::tcp, static_cast<uint16_t>(80 + port),
        "172.20." + std::to_string(v / 250) + "." + std::to_string(v % 250 + 2),
        static_cast<uint16_t>(8080 + port),
        "app" + std::to_string(v) + ".web"});
  iptables_dnat_table::options o;
  o.netns = ns.name();
  iptables_dnat_table table{o};
  using ms = std::chrono::milliseconds;
  auto since = [](auto t0) {
    return std::chrono::duration_cast<ms>(std::chrono::steady_clock::now() - t0)
      .count();
  };
  auto t0 = std::chrono::steady_clock::now();
  auto cold = table.reconcile(desired);
  auto cold_ms = since(t0);
  REQUIRE(cold.ok());
  CHECK(cold->added == 16000);
  // One VIP's container moves: all four ports, 8 lines out, 8 in.
  for (int i = 0; i < 4; ++i)
    desired[4000 + i].container_ip = "172.31.0.1";
  t0 = std::chrono::steady_clock::now();
  auto one = table.reconcile(desired);
  auto one_ms = since(t0);
  REQUIRE(one.ok());
  CHECK(one->added == 8);
  CHECK(one->deleted == 8);
  // The same as one atomic batch.
  for (int i = 0; i < 4; ++i)
    desired[4000 + i].container_ip = "172.31.0.2";
  o.inserts_first = false;
  iptables_dnat_table atomic{o};
  REQUIRE(atomic.read().ok()); // warm its trusted state
  t0 = std::chrono::steady_clock::now();
  auto single = atomic.reconcile(desired);
  auto single_ms = since(t0);
  REQUIRE(single.ok());
  CHECK(single->batches == 1);
  CHECK(single->added == 8);
  // One port changed, reading the chains back first (trust_for = 0).
  desired[4000].container_ip = "172.31.0.3";
  o.trust_for = ms{0};
  o.inserts_first = true;
  iptables_dnat_table reading{o};
  t0 = std::chrono::steady_clock::now();
  auto read_one = reading.reconcile(desired);
  auto read_one_ms = since(t0);
  REQUIRE(read_one.ok());
  CHECK(read_one->added == 2);
  auto in_ms = [](std::chrono::microseconds us) { return us.count() / 1000; };
  WARN("16000 rules cold: "
       << cold_ms << " ms (read " << in_ms(cold->read_time) << " ms, apply "
       << in_ms(cold->apply_time)
       << " ms)\none VIP (4 ports, 8 lines) changed: " << one_ms
       << " ms, new rules live after " << in_ms(one->live_time)
       << " ms (2 batches)\nsame as one atomic batch: " << single_ms
       << " ms\none port changed, chains read back first: " << read_one_ms
       << " ms (read " << in_ms(read_one->read_time) << " ms, live after "
       << in_ms(read_one->live_time) << " ms)");
  CHECK(cold_ms < 30000);
  CHECK(one_ms < 30000);
  auto s = table.read();
  REQUIRE(s.ok());
  CHECK(s->entries.size() == 16000);
  REQUIRE(table.remove_all().ok());
}

TEST_CASE("releasing most VIPs at once is one flush-and-refill batch",
          "[nat_apply]") {
  netns ns{"natmass"};
  std::vector<dnat_rule> desired;
  std::vector<std::string> vips;
  for (int v = 0; v < 500; ++v) {
    vips.push_back("10.90." + std::to_string(v / 250) + "."
                   + std::to_string(v % 250 + 1));
    for (uint16_t port = 0; port < 4; ++port)
      desired.push_back(dnat_rule{
        vips.back(), protocol::tcp, static_cast<uint16_t>(80 + port),
        "172.20.0.2", static_cast<uint16_t>(8080 + port), "scale.main"});
  }
  iptables_dnat_table::options o;
  o.netns = ns.name();
  iptables_dnat_table table{o};
  REQUIRE(table.reconcile(desired).ok());
  // A shutdown: every VIP but the last five lets go of its rules. Deleting
  // 3960 lines one by one would take iptables-nft minutes.
  std::vector<std::string> going(vips.begin(), vips.end() - 5);
  std::vector<dnat_rule> kept(desired.end() - 20, desired.end());
  auto r = table.reconcile_vips(going, {});
  REQUIRE(r.ok());
  CHECK(r->batches == 1);
  CHECK(r->deleted == 4000); // the chains were flushed...
  CHECK(r->added == 40);     // ...and what stays went in again
  iptables_dnat_table fresh{o};
  auto s = fresh.read();
  REQUIRE(s.ok());
  REQUIRE(s->entries.size() == 40);
  for (auto& e : s->entries) {
    REQUIRE(e.rule);
    CHECK(std::find(kept.begin(), kept.end(), *e.rule) != kept.end());
  }
  CHECK(s->prerouting_hooks == 1);
  CHECK(s->output_hooks == 1);
  // The five VIPs left move to another container: their 40 new lines go
  // in first (traffic moves), then the 40 stale ones go by one
  // flush-and-refill (cheaper than 40 deletes, see prefer_rebuild).
  std::vector<dnat_rule> moved(desired.end() - 20, desired.end());
  std::vector<std::string> five(vips.end() - 5, vips.end());
  for (auto& m : moved)
    m.container_ip = "172.20.0.3";
  auto mv = table.reconcile_vips(five, moved);
  REQUIRE(mv.ok());
  CHECK(mv->batches == 2);
  CHECK(mv->deleted == 40 + 40); // the flush, after 40 inserts
  CHECK(mv->added == 40 + 40);   // 40 first, then the refill of what stays
  {
    iptables_dnat_table check{o};
    auto now = check.read();
    REQUIRE(now.ok());
    CHECK(diff(*now, moved)->empty());
  }
  // A few deletes among many rules stay a diff.
  auto few = table.reconcile_vips({vips.back()}, {});
  REQUIRE(few.ok());
  CHECK(few->deleted == 8);
  CHECK(few->added == 0);
  REQUIRE(table.remove_all().ok());
}
