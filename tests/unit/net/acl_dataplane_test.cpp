// SPDX-License-Identifier: MIT
// The node ACL of either backend (NETWORKD_TEST_DATAPLANE: nft by default,
// or iptables; CTest runs both) inside namespaces, with real traffic; the
// kernel's state is read with `nft` / `iptables-save` (tests/support/
// dataplane.hpp), never with networkd's code.
#include "net/kernel/acl.hpp"
#include "net/kernel/nft.hpp"
#include "net/kernel/nft_acl.hpp"

#include "tests/support/dataplane.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/util.hpp"

#include <catch2/catch.hpp>

#include <iostream>
#include <memory>

using namespace networkd;
using namespace networkd::acl;
using namespace networkd::test;
using namespace std::chrono_literals;

namespace {

const std::string node_a = "10.82.1.1";
const std::string node_b = "10.82.2.1";
const std::string client_a = "10.82.1.2";
const std::string client_b = "10.82.2.2";
constexpr auto silence = 300ms;

bool with_nft() {
  return dataplane() == "nft";
}

/// client a -- node -- client b; the backend's tools run only in `node`.
struct lab {
  netns node{"acldp"};
  netns a{"acldpa"};
  netns b{"acldpb"};
  veth_pair la{a, "va", node, "na"};
  veth_pair lb{b, "vb", node, "nb"};
  lab() {
    node.must("ip addr add " + node_a + "/24 dev na");
    node.must("ip addr add " + node_b + "/24 dev nb");
    a.must("ip addr add " + client_a + "/24 dev va");
    b.must("ip addr add " + client_b + "/24 dev vb");
  }
  std::unique_ptr<filter_table> table() const {
    REQUIRE_FALSE(node.name().empty()); // never the host's tables
    if (with_nft()) {
      nft::nft_filter_table::options o;
      o.netns = node.name();
      return std::make_unique<nft::nft_filter_table>(o);
    }
    iptables_filter_table::options o;
    o.netns = node.name();
    return std::make_unique<iptables_filter_table>(o);
  }
  /// `nft -a list chain` (handles included) or our iptables lines.
  std::string rules_with_handles() const {
    std::string out;
    if (with_nft())
      node.sh("nft -a list chain ip networkd acl_input", &out);
    else
      out = acl_text(node);
    return out;
  }
};

struct servers {
  const netns& n;
  name_server ssh{n, name_server::kind::tcp, 22, "22"};
  name_server web{n, name_server::kind::tcp, 80, "80"};
  name_server db{n, name_server::kind::tcp, 3306, "3306"};
  name_server other{n, name_server::kind::tcp, 9000, "9000"};
  name_server dns{n, name_server::kind::udp, 53, "53"};
  name_server snmp{n, name_server::kind::udp, 161, "161"};
};

bool tcp_passes(const netns& from, const std::string& ip, uint16_t port) {
  return tcp_fetch(from, ip, port) == std::to_string(port);
}
bool tcp_dropped(const netns& from, const std::string& ip, uint16_t port) {
  return tcp_fetch(from, ip, port, silence).empty();
}
bool udp_passes(const netns& from, const std::string& ip, uint16_t port) {
  return udp_fetch(from, ip, port) == std::to_string(port);
}
bool udp_dropped(const netns& from, const std::string& ip, uint16_t port) {
  return udp_fetch(from, ip, port, silence).empty();
}

inputs keys(const std::vector<std::pair<std::string, std::string>>& kv) {
  inputs in;
  for (auto& [k, v] : kv) {
    INFO(k << " = " << v);
    REQUIRE(put(in, k, v).ok());
  }
  return in;
}

/// Removes the ACL when a test ends, also on failure (the namespaces go
/// with the lab, and the tables with them).
struct cleanup {
  filter_table& t;
  ~cleanup() { (void)t.remove_all(); }
};

} // namespace

TEST_CASE("whitelisted sources reach every port and others only ssh ex "
          "ports and their in ports",
          "[acl_dataplane]") {
  lab l;
  servers s{l.node};
  auto table = l.table();
  cleanup c{*table};
  REQUIRE(tcp_passes(l.b, node_b, 9000)); // open before
  auto r = table->apply(keys({
    {"/lain/config/whitelist_ips/office", R"(["10.82.1.2"])"},
    {"/lain/config/whitelist_ex_ports/tcp", R"(["80"])"},
    {"/lain/config/whitelist_ex_ports/udp", R"([53])"},
    // Two in-ports sources that overlap (b is in both).
    {"/lain/config/whitelist_in_ports/10.82.2.0/24",
     R"({"ports":{"tcp":["3306"],"udp":["161"]}})"},
    {"/lain/config/whitelist_in_ports/10.82.2.2-10.82.2.2",
     R"({"ports":{"tcp":["8990:9005", 3306]}})"},
  }));
  REQUIRE(r.ok());
  CHECK(r->changed);
  CHECK(acl_active(l.node));
  INFO(acl_text(l.node));
  // a is whitelisted: every port.
  CHECK(tcp_passes(l.a, node_a, 9000));
  CHECK(tcp_passes(l.a, node_a, 3306));
  CHECK(udp_passes(l.a, node_a, 161));
  // b: ssh, the ex ports, its in ports; nothing else.
  CHECK(tcp_passes(l.b, node_b, 22));
  CHECK(tcp_passes(l.b, node_b, 80));
  CHECK(udp_passes(l.b, node_b, 53));
  CHECK(tcp_passes(l.b, node_b, 3306));
  CHECK(udp_passes(l.b, node_b, 161));
  CHECK(tcp_passes(l.b, node_b, 9000));
  // Loopback, and replies to the node's own connections.
  CHECK(tcp_passes(l.node, "127.0.0.1", 9000));
  name_server out{l.b, name_server::kind::tcp, 8080, "8080"};
  CHECK(tcp_passes(l.node, client_b, 8080));
  // Without b's in ports: dropped.
  r = table->apply(keys({
    {"/lain/config/whitelist_ips/office", R"(["10.82.1.2"])"},
    {"/lain/config/whitelist_ex_ports/tcp", R"(["80"])"},
  }));
  REQUIRE(r.ok());
  CHECK(tcp_dropped(l.b, node_b, 3306));
  CHECK(tcp_dropped(l.b, node_b, 9000));
  CHECK(udp_dropped(l.b, node_b, 161));
  CHECK(udp_dropped(l.b, node_b, 53));
  CHECK(tcp_passes(l.b, node_b, 80));
  CHECK(tcp_passes(l.b, node_b, 22));
}

TEST_CASE("a whitelist change is an element update and the same inputs "
          "change nothing",
          "[acl_dataplane]") {
  lab l;
  servers s{l.node};
  auto table = l.table();
  cleanup c{*table};
  auto first
    = keys({{"/lain/config/whitelist_ips/office",
             R"(["10.82.1.2","10.82.9.0/24","10.82.8.1-10.82.8.9"])"}});
  REQUIRE(table->apply(first).ok());
  auto before = l.rules_with_handles();
  auto again = table->apply(first);
  REQUIRE(again.ok());
  CHECK_FALSE(again->changed);
  CHECK(l.rules_with_handles() == before);
  CHECK(acl_sources(l.node)
        == std::vector<std::string>{"10.82.1.2", "10.82.8.1-10.82.8.9",
                                    "10.82.9.0/24"});
  REQUIRE(tcp_dropped(l.b, node_b, 9000));
  // b's network joins (overlapping the /24 given twice: merged).
  auto second = first;
  merge(second, keys({{"/lain/config/whitelist_ips/lab",
                       R"(["10.82.2.0/24","10.82.2.7"])"}}));
  auto r = table->apply(second);
  REQUIRE(r.ok());
  CHECK(r->changed);
  if (with_nft()) {
    // The rules are untouched (same handles), one element went in.
    CHECK_FALSE(r->rewrote_chains);
    CHECK(r->elements_added == 2); // start and end of 10.82.2.0/24
    CHECK(r->elements_removed == 0);
    CHECK(l.rules_with_handles() == before);
  }
  CHECK(tcp_passes(l.b, node_b, 9000));
  std::vector<std::string> now{"10.82.1.2", "10.82.2.0/24",
                               "10.82.8.1-10.82.8.9", "10.82.9.0/24"};
  if (!with_nft()) // a rule per source: nothing merged
    now.insert(now.begin() + 2, "10.82.2.7");
  CHECK(acl_sources(l.node) == now);
  // And out again.
  r = table->apply(first);
  REQUIRE(r.ok());
  if (with_nft()) {
    CHECK_FALSE(r->rewrote_chains);
    CHECK(r->elements_removed == 2);
  }
  CHECK(tcp_dropped(l.b, node_b, 9000));
  CHECK(tcp_passes(l.a, node_a, 9000));
  // The kernel's view, as /v1/acl shows it.
  auto shown = table->show();
  REQUIRE(shown.ok());
  CHECK(shown->present);
  CHECK(shown->backend == dataplane());
  CHECK(shown->base.size() == base_rules().size());
  if (with_nft()) {
    CHECK(shown->policy == "drop");
    REQUIRE(shown->sets.size() == 4);
    CHECK(shown->sets[0].name == "acl_sources");
    CHECK(shown->sets[0].elements
          == std::vector<std::string>{"10.82.1.2", "10.82.8.1-10.82.8.9",
                                      "10.82.9.0/24"});
  } else {
    CHECK(shown->policy == "DROP");
  }
}

TEST_CASE("what someone else deleted is put back by the next audit",
          "[acl_dataplane]") {
  lab l;
  servers s{l.node};
  auto table = l.table();
  cleanup c{*table};
  auto in = keys(
    {{"/lain/config/whitelist_ips/office", R"(["10.82.1.2","10.82.2.0/24"])"}});
  REQUIRE(table->apply(in).ok());
  REQUIRE(tcp_passes(l.a, node_a, 9000));
  // An element (a rule with iptables) deleted with the backend's tool.
  acl_delete_source(l.node, "10.82.1.2");
  REQUIRE(tcp_dropped(l.a, node_a, 9000));
  auto r = table->audit(in);
  REQUIRE(r.ok());
  CHECK(r->changed);
  if (with_nft()) {
    CHECK_FALSE(r->rewrote_chains);
    CHECK(r->elements_added == 2); // the interval's start and end
  }
  CHECK(tcp_passes(l.a, node_a, 9000));
  // A base rule deleted: the rules are written anew.
  acl_delete_base_rule(l.node);
  r = table->audit(in);
  REQUIRE(r.ok());
  CHECK(r->changed);
  CHECK(r->rewrote_chains);
  CHECK(l.rules_with_handles().find(with_nft() ? "established,related"
                                               : "RELATED,ESTABLISHED")
        != std::string::npos);
  name_server out{l.b, name_server::kind::tcp, 8080, "8080"};
  CHECK(tcp_passes(l.node, client_b, 8080));
  CHECK(tcp_passes(l.b, node_b, 9000));
  CHECK(tcp_passes(l.a, node_a, 9000));
  if (!with_nft())
    return;
  // A table switched off (dormant): nothing is filtered; switched on again.
  l.node.must("nft add table ip networkd '{ flags dormant; }'");
  REQUIRE(tcp_passes(l.node, "127.0.0.1", 22)); // (the ssh server is up)
  r = table->audit(in);
  REQUIRE(r.ok());
  CHECK(r->rewrote_chains);
  CHECK(acl_active(l.node));
  CHECK(l.rules_with_handles().find("dormant") == std::string::npos);
  CHECK(tcp_passes(l.a, node_a, 9000));
}

TEST_CASE("remove_all leaves nothing of the ACL and everything passes",
          "[acl_dataplane]") {
  lab l;
  servers s{l.node};
  auto table = l.table();
  REQUIRE(table->apply(keys({})).ok());
  REQUIRE(acl_active(l.node));
  REQUIRE(tcp_dropped(l.b, node_b, 9000));
  REQUIRE(table->remove_all().ok());
  CHECK(acl_gone(l.node));
  CHECK(acl_text(l.node).empty());
  CHECK(tcp_passes(l.b, node_b, 9000));
  CHECK(udp_passes(l.a, node_a, 161));
  CHECK(table->remove_all().ok()); // nothing there: fine
  if (with_nft()) {
    std::string out;
    l.node.sh("nft list tables", &out);
    CHECK(out.find("networkd") == std::string::npos); // the table went too
  }
}

TEST_CASE("the ACL and the DNAT map share table ip networkd and neither "
          "deletes the other",
          "[acl_dataplane][nft_only]") {
  REQUIRE(with_nft()); // one nft table: not run in the iptables pass
  lab l;
  servers s{l.node};
  auto table = l.table();
  cleanup c{*table};
  nft::nft_dnat_table::options o;
  o.netns = l.node.name();
  nft::nft_dnat_table dnat{o};
  nat::dnat_rule rule;
  rule.vip = "10.82.7.7";
  rule.proto = nat::protocol::tcp;
  rule.src_port = 80;
  rule.container_ip = "10.82.2.2";
  rule.dest_port = 8080;
  rule.comment = "web";
  REQUIRE(dnat.reconcile({rule}).ok());
  REQUIRE(
    table
      ->apply(keys({{"/lain/config/whitelist_ips/office", R"(["10.82.1.2"])"}}))
      .ok());
  // The DNAT's audit sees nothing foreign, its rebuild spares the ACL.
  REQUIRE(dnat.refresh().ok());
  auto r = dnat.reconcile({rule});
  REQUIRE(r.ok());
  CHECK(r->batches == 0);
  l.node.must("nft delete chain ip networkd output");
  REQUIRE(dnat.refresh().ok());
  r = dnat.reconcile({rule});
  REQUIRE(r.ok());
  CHECK(r->rebuilt);
  CHECK(acl_active(l.node));
  CHECK(tcp_passes(l.a, node_a, 9000));
  CHECK(tcp_dropped(l.b, node_b, 9000));
  // The ACL's rewrite spares the map.
  acl_delete_base_rule(l.node);
  auto a = table->audit(
    keys({{"/lain/config/whitelist_ips/office", R"(["10.82.1.2"])"}}));
  REQUIRE(a.ok());
  CHECK(a->rewrote_chains);
  CHECK(has_dnat(l.node, "10.82.7.7", 80));
  // Each removal leaves the other's part; the last takes the table.
  REQUIRE(table->remove_all().ok());
  CHECK(acl_gone(l.node));
  CHECK(has_dnat(l.node, "10.82.7.7", 80));
  REQUIRE(table->apply(keys({})).ok());
  REQUIRE(dnat.remove_all().ok());
  CHECK(acl_active(l.node));
  REQUIRE(table->remove_all().ok());
  std::string out;
  l.node.sh("nft list tables", &out);
  CHECK(out.find("networkd") == std::string::npos);
}

TEST_CASE("4096 sources and 1024 ports load cold and one change applies",
          "[acl_dataplane]") {
  lab l;
  auto table = l.table();
  cleanup c{*table};
  std::string ips = "[";
  // No two adjacent: none merge.
  for (int i = 0; i < 4096; ++i)
    ips += std::string(i ? "," : "") + "\"10." + std::to_string(90 + i / 256)
           + "." + std::to_string(i % 256) + ".1\"";
  ips += "]";
  // Every other port: no two adjacent, so none merge.
  std::string ports = "[";
  for (int i = 0; i < 1024; ++i)
    ports += std::string(i ? "," : "") + std::to_string(20000 + 2 * i);
  ports += "]";
  auto in = keys({{"/lain/config/whitelist_ips/big", ips},
                  {"/lain/config/whitelist_ex_ports/tcp", ports}});
  using clock = std::chrono::steady_clock;
  auto ms = [](clock::duration d) {
    return std::chrono::duration<double, std::milli>(d).count();
  };
  auto t0 = clock::now();
  auto r = table->apply(in);
  auto cold = clock::now() - t0;
  REQUIRE(r.ok());
  auto changed = in;
  merge(changed,
        keys({{"/lain/config/whitelist_ips/one", R"(["10.82.2.2"])"}}));
  t0 = clock::now();
  auto r2 = table->apply(changed);
  auto one = clock::now() - t0;
  REQUIRE(r2.ok());
  CHECK(r2->changed);
  t0 = clock::now();
  auto r3 = table->audit(changed);
  auto audit = clock::now() - t0;
  REQUIRE(r3.ok());
  CHECK(r3->changed == false);
  // Someone else's commit: the audit must read everything.
  l.node.must("nft add table ip other 2>/dev/null || iptables -N other");
  t0 = clock::now();
  auto r4 = table->audit(changed);
  auto full = clock::now() - t0;
  REQUIRE(r4.ok());
  CHECK_FALSE(r4->changed);
  std::cout << "acl " << dataplane() << ": cold " << ms(cold)
            << " ms, one change " << ms(one) << " ms (read "
            << r2->read_time.count() / 1000.0 << " ms), audit with nothing "
            << "committed " << ms(audit) << " ms, audit after a foreign "
            << "commit " << ms(full) << " ms (read "
            << r4->read_time.count() / 1000.0 << " ms)\n";
  servers s{l.node};
  CHECK(tcp_passes(l.b, node_b, 9000));
  CHECK(tcp_dropped(l.a, node_a, 9000));
}
