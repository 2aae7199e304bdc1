// SPDX-License-Identifier: MIT
// The ACL applied with iptables-restore inside namespaces, with traffic.
#include "net/kernel/acl.hpp"

#include "tests/support/netns.hpp"
#include "tests/support/util.hpp"

#include <catch2/catch.hpp>

#include <sstream>

using namespace networkd;
using namespace networkd::acl;
using namespace networkd::test;
using namespace std::chrono_literals;

namespace {

const std::string node_a = "10.81.1.1"; // the node as client a sees it
const std::string node_b = "10.81.2.1"; // the node as client b sees it
const std::string client_a = "10.81.1.2";
const std::string client_b = "10.81.2.2";

/// Dropped SYNs and datagrams get no answer: how long to wait for none.
constexpr auto silence = 300ms;

/// client a (va 10.81.1.2) -- node (na 10.81.1.1)
/// client b (vb 10.81.2.2) -- node (nb 10.81.2.1)
/// The node serves TCP 22 (standing in for ssh), 80, 3306, 9000 and UDP 53,
/// 161, each answering with its port. iptables runs only inside `node`.
struct lab {
  netns node{"acl"};
  netns a{"acla"};
  netns b{"aclb"};
  veth_pair la{a, "va", node, "na"};
  veth_pair lb{b, "vb", node, "nb"};
  lab() {
    node.must("ip addr add " + node_a + "/24 dev na");
    node.must("ip addr add " + node_b + "/24 dev nb");
    a.must("ip addr add " + client_a + "/24 dev va");
    b.must("ip addr add " + client_b + "/24 dev vb");
  }
  iptables_filter_table table() const {
    iptables_filter_table::options o;
    o.netns = node.name();
    REQUIRE_FALSE(o.netns.empty()); // never the host's tables
    return iptables_filter_table{o};
  }
  std::string save() const {
    std::string out;
    node.sh("iptables-save -t filter", &out);
    return out;
  }
  /// The filter table without comments and counters.
  std::string plain() const {
    std::istringstream in(save());
    std::string out;
    for (std::string line; std::getline(in, line);) {
      if (line.rfind('#', 0) == 0)
        continue;
      if (line.rfind(':', 0) == 0)
        line = line.substr(0, line.rfind(" ["));
      out += line + "\n";
    }
    return out;
  }
  /// Our lines and the INPUT policy, without comments and counters.
  std::string ours() const {
    std::istringstream in(save());
    std::string out;
    for (std::string line; std::getline(in, line);)
      if (line.find("lain-") != std::string::npos)
        out += line + "\n";
      else if (line.rfind(":INPUT ", 0) == 0)
        out += line.substr(0, line.rfind(" [")) + "\n";
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

ruleset rules(const std::vector<std::pair<std::string, std::string>>& keys) {
  inputs in;
  for (auto& [k, v] : keys) {
    auto r = put(in, k, v);
    INFO(k << " = " << v);
    REQUIRE(r.ok());
  }
  return build(in);
}

size_t count(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos;
       at = text.find(what, at + 1))
    ++n;
  return n;
}

/// Removes the ACL when a test ends, also on failure.
struct cleanup {
  iptables_filter_table& t;
  ~cleanup() { (void)t.remove_all(); }
};

} // namespace

TEST_CASE("Whitelisted sources pass and others are dropped", "[acl_apply]") {
  lab l;
  servers s{l.node};
  auto table = l.table();
  cleanup c{table};
  // Open before.
  REQUIRE(tcp_passes(l.b, node_b, 9000));
  auto r = table.apply(
    rules({{"/lain/config/whitelist_ips/office", R"(["10.81.1.2"])"}}));
  REQUIRE(r.ok());
  CHECK(r->changed);
  CHECK(r->rewrote_chains);
  CHECK(r->hooked);
  CHECK(r->set_policy);
  auto saved = l.save();
  CHECK(saved.find(":INPUT DROP") != std::string::npos);
  CHECK(count(saved, "-A INPUT -j lain-INPUT") == 1);
  CHECK(saved.find("-A lain-INPUT -s 10.81.1.2/32 -j lain-ENTRY")
        != std::string::npos);
  // Whitelisted: every port.
  CHECK(tcp_passes(l.a, node_a, 9000));
  CHECK(tcp_passes(l.a, node_a, 3306));
  CHECK(udp_passes(l.a, node_a, 161));
  // Others: only ssh.
  CHECK(tcp_dropped(l.b, node_b, 9000));
  CHECK(udp_dropped(l.b, node_b, 53));
  CHECK(tcp_passes(l.b, node_b, 22));
  // Loopback, and replies to the node's own connections (established).
  CHECK(tcp_passes(l.node, "127.0.0.1", 9000));
  name_server out{l.b, name_server::kind::tcp, 8080, "8080"};
  CHECK(tcp_passes(l.node, client_b, 8080));
}

TEST_CASE("Ranges and CIDRs whitelist their sources only", "[acl_apply]") {
  lab l;
  servers s{l.node};
  auto table = l.table();
  cleanup c{table};
  REQUIRE(table
            .apply(rules(
              {{"/lain/config/whitelist_ips/r", R"(["10.81.2.1-10.81.2.3"])"}}))
            .ok());
  CHECK(l.save().find("-m iprange --src-range 10.81.2.1-10.81.2.3 -j "
                      "lain-ENTRY")
        != std::string::npos);
  CHECK(tcp_passes(l.b, node_b, 9000));
  CHECK(tcp_dropped(l.a, node_a, 9000));
  REQUIRE(
    table
      .apply(rules({{"/lain/config/whitelist_ips/n", R"(["10.81.1.77/24"])"}}))
      .ok());
  CHECK(tcp_passes(l.a, node_a, 9000));
  CHECK(tcp_dropped(l.b, node_b, 9000));
}

TEST_CASE("Ex ports are open to everyone and in ports only to their source",
          "[acl_apply]") {
  lab l;
  servers s{l.node};
  auto table = l.table();
  cleanup c{table};
  auto r = table.apply(rules({
    {"/lain/config/whitelist_ex_ports/tcp", R"(["80"])"},
    {"/lain/config/whitelist_ex_ports/udp", R"([53])"},
    {"/lain/config/whitelist_in_ports/10.81.1.0/24",
     R"({"ports":{"tcp":["3306"],"udp":["161"]}})"},
    {"/lain/config/whitelist_in_ports/10.81.2.2-10.81.2.2",
     R"({"ports":{"tcp":[9000]}})"},
  }));
  REQUIRE(r.ok());
  CHECK(r->changed);
  // Ex ports: both clients.
  CHECK(tcp_passes(l.a, node_a, 80));
  CHECK(tcp_passes(l.b, node_b, 80));
  CHECK(udp_passes(l.a, node_a, 53));
  CHECK(udp_passes(l.b, node_b, 53));
  // In ports: a gets 3306/tcp and 161/udp, b gets 9000/tcp (a range).
  CHECK(tcp_passes(l.a, node_a, 3306));
  CHECK(udp_passes(l.a, node_a, 161));
  CHECK(tcp_dropped(l.b, node_b, 3306));
  CHECK(udp_dropped(l.b, node_b, 161));
  CHECK(tcp_passes(l.b, node_b, 9000));
  CHECK(tcp_dropped(l.a, node_a, 9000));
  // ssh stays open to both.
  CHECK(tcp_passes(l.a, node_a, 22));
  CHECK(tcp_passes(l.b, node_b, 22));
}

TEST_CASE("remove_all restores policy ACCEPT and everything passes",
          "[acl_apply]") {
  lab l;
  servers s{l.node};
  auto table = l.table();
  // Someone else's rule in INPUT survives us.
  l.node.must("iptables -A INPUT -p tcp --dport 7 -j ACCEPT");
  REQUIRE(table.apply(rules({})).ok());
  REQUIRE(tcp_dropped(l.b, node_b, 9000));
  auto r = table.remove_all();
  REQUIRE(r.ok());
  auto saved = l.plain();
  CHECK(saved.find(":INPUT ACCEPT") != std::string::npos);
  CHECK(saved.find("lain-") == std::string::npos);
  CHECK(saved.find("-A INPUT -p tcp -m tcp --dport 7 -j ACCEPT")
        != std::string::npos);
  CHECK(tcp_passes(l.b, node_b, 9000));
  CHECK(udp_passes(l.a, node_a, 161));
  // Nothing left to remove: still fine.
  CHECK(table.remove_all().ok());
  CHECK(l.plain() == saved);
}

TEST_CASE("Reapplying the same rules changes nothing", "[acl_apply]") {
  lab l;
  auto table = l.table();
  cleanup c{table};
  auto desired = rules({
    {"/lain/config/whitelist_ips/office",
     R"(["10.81.1.2","10.81.3.0/24","10.81.4.1-10.81.4.9","0.0.0.0/0"])"},
    {"/lain/config/whitelist_ex_ports/tcp", R"(["80",443,"8000:8100"])"},
    {"/lain/config/whitelist_in_ports/10.81.2.0/24",
     R"({"ports":{"tcp":[1,2,3,4,5,6,7,8,9,10,11,12,13,14,"20:30"]}})"},
    {"/lain/config/whitelist_in_ports/10.81.5.1-10.81.5.4",
     R"({"ports":{"tcp":[3306],"udp":["5000:5010"]}})"},
  });
  auto first = table.apply(desired);
  REQUIRE(first.ok());
  CHECK(first->changed);
  auto before = l.ours();
  auto again = table.apply(desired);
  REQUIRE(again.ok());
  CHECK_FALSE(again->changed);
  CHECK(l.ours() == before);
  // The kernel's view parses back to exactly the desired rules.
  auto read = table.read();
  REQUIRE(read.ok());
  CHECK(same_rules(*read, desired));
  CHECK(read->hooks == 1);
  CHECK(read->input_policy == "DROP");
  // A change rewrites the chains and touches nothing else.
  auto changed = desired;
  changed.input.push_back("-s 10.81.9.9/32 -j lain-ENTRY");
  auto third = table.apply(changed);
  REQUIRE(third.ok());
  CHECK(third->changed);
  CHECK(third->rewrote_chains);
  CHECK_FALSE(third->hooked);
  CHECK_FALSE(third->set_policy);
  CHECK(count(l.save(), "-A INPUT -j lain-INPUT") == 1);
  CHECK_FALSE(table.apply(changed)->changed);
}

TEST_CASE("A rule set without base rules is refused", "[acl_apply]") {
  lab l;
  servers s{l.node};
  auto table = l.table();
  cleanup c{table};
  auto unsafe
    = rules({{"/lain/config/whitelist_ips/office", R"(["10.81.1.2"])"}});
  unsafe.input.erase(unsafe.input.begin() + 5); // no ssh
  auto before = l.plain();
  auto r = table.apply(unsafe);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == "unsafe");
  CHECK(l.plain() == before);
  CHECK(tcp_passes(l.b, node_b, 9000));
  // With good rules in place, a refused set leaves them alone.
  auto good
    = rules({{"/lain/config/whitelist_ips/office", R"(["10.81.1.2"])"}});
  REQUIRE(table.apply(good).ok());
  auto installed = l.ours();
  CHECK(table.apply(ruleset{}).error().code == "unsafe");
  CHECK(l.ours() == installed);
  CHECK(tcp_passes(l.b, node_b, 22));
  CHECK(tcp_passes(l.a, node_a, 9000));
}

TEST_CASE("Leftover hooks and jumps of an older daemon are adopted",
          "[acl_apply]") {
  lab l;
  servers s{l.node};
  auto table = l.table();
  cleanup c{table};
  // What the Go daemon left: base rules appended to INPUT, its chains, and
  // jumps into them; plus a duplicate of our hook.
  l.node.must("iptables -N lain-ENTRY && iptables -N lain-INPUT"
              " && iptables -A lain-ENTRY -j ACCEPT"
              " && iptables -A INPUT -s 10.81.2.2 -j lain-ENTRY"
              " && iptables -A INPUT -m iprange --src-range"
              " 10.81.2.1-10.81.2.9 -j lain-INPUT"
              " && iptables -A INPUT -j lain-INPUT"
              " && iptables -A INPUT -j lain-INPUT");
  auto r = table.apply(
    rules({{"/lain/config/whitelist_ips/office", R"(["10.81.1.2"])"}}));
  REQUIRE(r.ok());
  CHECK(r->foreign_removed == 2);
  CHECK(r->hooked);
  auto read = table.read();
  REQUIRE(read.ok());
  CHECK(read->hooks == 1);
  CHECK(read->foreign.empty());
  // The stale whitelist of 10.81.2.2 is gone.
  CHECK(tcp_dropped(l.b, node_b, 9000));
  CHECK(tcp_passes(l.a, node_a, 9000));
  REQUIRE(table.remove_all().ok());
  CHECK(l.save().find("lain-") == std::string::npos);
  CHECK(tcp_passes(l.b, node_b, 9000));
}
