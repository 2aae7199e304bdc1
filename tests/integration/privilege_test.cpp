// SPDX-License-Identifier: MIT
// Least privilege: the systemd unit's exposure score (systemd-analyze
// security, offline: systemd need not be PID 1), and the real networkd run
// with only the unit's capabilities and no_new_privs (setpriv, the part of
// the unit's sandbox that works without systemd) in a namespace lab: it
// still takes a VIP (address, DNAT rules, traffic through it), binds DNS on
// port 53 and answers, and rewrites its resolv.conf.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <memory>
#include <regex>
#include <sstream>

#include "tests/support/daemon.hpp"
#include "tests/support/dataplane.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/netns_etcd_cluster.hpp"
#include "tests/support/util.hpp"
#include "tests/support/vip_lab_node.hpp"

using namespace networkd::test;

namespace {

const std::string unit_file
  = std::string{NETWORKD_SOURCE_DIR} + "/deploy/networkd.service";
const std::string vip = "10.88.0.50";

/// Every value of `key=` lines in the unit, in order, joined by spaces.
std::string unit_values(const std::string& text, const std::string& key) {
  std::istringstream lines(text);
  std::string line;
  std::string out;
  while (std::getline(lines, line))
    if (line.rfind(key + "=", 0) == 0)
      out += (out.empty() ? "" : " ") + line.substr(key.size() + 1);
  return out;
}

/// The capabilities of CapabilityBoundingSet= as setpriv names them
/// ("net_admin"), sorted.
std::vector<std::string> unit_caps(const std::string& text) {
  std::istringstream words(unit_values(text, "CapabilityBoundingSet"));
  std::vector<std::string> caps;
  std::string w;
  while (words >> w) {
    if (w.rfind("CAP_", 0) == 0)
      w = w.substr(4);
    std::transform(w.begin(), w.end(), w.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    caps.push_back(w);
  }
  std::sort(caps.begin(), caps.end());
  return caps;
}

/// A line "Name:\tvalue" of /proc/PID/status ("" when absent).
std::string status_field(pid_t pid, const std::string& name) {
  std::istringstream lines(
    read_file("/proc/" + std::to_string(pid) + "/status"));
  std::string line;
  while (std::getline(lines, line))
    if (line.rfind(name + ":", 0) == 0) {
      auto v = line.substr(name.size() + 1);
      v.erase(0, v.find_first_not_of(" \t"));
      return v;
    }
  return {};
}

} // namespace

TEST_CASE("the systemd unit is exposed 4.5 at most by systemd-analyze "
          "security",
          "[privilege][unit]") {
  std::string out;
  int rc = sh("systemd-analyze security --offline=true --no-pager '" + unit_file
                + "' 2>&1",
              &out);
  INFO(out);
  REQUIRE(rc == 0);
  std::smatch m;
  REQUIRE(std::regex_search(
    out, m, std::regex{"Overall exposure level for [^:]+: ([0-9]+\\.[0-9])"}));
  auto score = std::stod(m[1].str());
  WARN("systemd-analyze security: exposure " << score);
  CHECK(score <= 4.5);

  auto text = read_file(unit_file);
  CHECK(
    unit_caps(text)
    == std::vector<std::string>{"net_admin", "net_bind_service", "net_raw"});
  CHECK(unit_values(text, "NoNewPrivileges") == "yes");
  CHECK(unit_values(text, "ProtectSystem") == "strict");
  CHECK(unit_values(text, "ExecReload") == "/bin/kill -HUP $MAINPID");
  CHECK(unit_values(text, "RestartPreventExitStatus") == "2");
  CHECK(unit_values(text, "EnvironmentFile") == "-/etc/default/networkd");
  CHECK(unit_values(text, "Before").find("nss-lookup.target")
        != std::string::npos);
  CHECK(unit_values(text, "Wants").find("nss-lookup.target")
        != std::string::npos);
}

TEST_CASE("networkd with only the unit's capabilities and no_new_privs "
          "takes a VIP and answers DNS on port 53",
          "[privilege][lab]") {
  auto caps = unit_caps(read_file(unit_file));
  REQUIRE(caps.size() == 3);
  std::string bounding = "-all";
  for (auto& c : caps)
    bounding += ",+" + c;

  netns sw{"sw"};
  bridge br{sw, "br0"};
  netns client{"cl"};
  veth_pair client_link{client, "eth0", sw, "p-cl"};
  br.attach("p-cl");
  client.must("ip addr add 10.88.0.100/24 dev eth0");
  ns_etcd_cluster etcd{sw, br, {"10.88.0.2"}};
  REQUIRE(etcd.ctl("put /lain/networkd/config/lease_ttl 3") == 0);
  lab_node n{sw, "n1", 1};
  br.attach("p-n1");
  // What the unit keeps and what works without systemd: the bounding set,
  // nothing inheritable or ambient, no_new_privs. uid 0 stays (as in the
  // unit), so the capabilities left are the bounding set.
  n.wrapper = {"setpriv",    "--bounding-set", bounding,
               "--inh-caps", "-all",           "--ambient-caps",
               "-all",       "--no-new-privs", "--"};
  // Port 53 in the node's namespace: a privileged port (the namespace's
  // ip_unprivileged_port_start is 1024), so CAP_NET_BIND_SERVICE is used.
  n.start_networkd(etcd.endpoint(0), {"-godns.addr=127.0.0.1:53"});

  // The daemon itself runs with exactly those capabilities.
  auto pid = n.networkd->proc().pid();
  CHECK(status_field(pid, "CapEff") == "0000000000003400");
  CHECK(status_field(pid, "CapPrm") == "0000000000003400");
  CHECK(status_field(pid, "CapBnd") == "0000000000003400");
  CHECK(status_field(pid, "CapInh") == "0000000000000000");
  CHECK(status_field(pid, "CapAmb") == "0000000000000000");
  CHECK(status_field(pid, "NoNewPrivs") == "1");

  REQUIRE(etcd.ctl("put /lain/config/vips/" + vip
                   + " '{\"app\":\"web\",\"proc\":\"main\",\"ports\":["
                     "{\"src\":\"80\"},{\"src\":\"53\",\"proto\":\"udp\"}]}'")
          == 0);
  REQUIRE(etcd.ctl("put /lain/config/domains/priv.lain "
                   "'{\"ips\":[\"10.4.4.4\"],\"type\":\"\"}'")
          == 0);

  // The VIP: lock, address (netlink), DNAT rules (netlink or
  // iptables-restore, run by networkd under the same restrictions),
  // traffic through it.
  bool served = wait_until(
    [&] { return tcp_fetch(client, vip, 80, 300ms) == "n1"; }, 20s, 50ms);
  INFO("networkd log:\n" << n.networkd->log());
  REQUIRE(served);
  CHECK(udp_fetch(client, vip, 53) == "n1");
  std::string out;
  n.ns.sh("ip -4 -o addr show dev eth0", &out);
  CHECK(out.find(" " + vip + "/32 ") != std::string::npos);
  INFO(dnat_text(n.ns));
  CHECK(has_dnat(n.ns, vip, 80));
  CHECK(has_dnat(n.ns, vip, 53));
  etcd.ctl("get --print-value-only /lain/networkd/vips/" + vip + ".lock", &out);
  CHECK(out.rfind("n1", 0) == 0);

  // DNS on port 53: a name from etcd and the hosts file.
  auto dig = [&](const std::string& name) {
    std::string a;
    n.ns.sh("dig @127.0.0.1 -p 53 +short +time=1 +tries=1 " + name, &a);
    return a;
  };
  CHECK(
    wait_until([&] { return dig("priv.lain") == "10.4.4.4\n"; }, 10s, 50ms));
  CHECK(dig("localhost") == "127.0.0.1\n");

  // resolv.conf rewritten (temp file + rename) with our server first.
  CHECK(wait_until(
    [&] {
      return read_file(n.networkd->resolv_conf()).find("nameserver 127.0.0.1")
             == 0;
    },
    10s, 50ms));

  // Still the same process, with nothing gained since.
  CHECK(n.networkd->proc().running());
  CHECK(status_field(pid, "CapEff") == "0000000000003400");
  auto log = n.networkd->log();
  CHECK(log.find("Operation not permitted") == std::string::npos);
  CHECK(log.find("AddressSanitizer") == std::string::npos);
}
