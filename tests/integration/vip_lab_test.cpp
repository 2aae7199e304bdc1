// SPDX-License-Identifier: MIT
// The VIP engine in a namespace lab built here: a bridge, an etcd node, two
// networkd nodes each with a "container" namespace behind it running TCP
// and UDP servers that name themselves, a lainlet-compatible test server
// per node (lainlet cannot run here), and a client. Real traffic through
// the real VIP and DNAT rules.
#include <catch2/catch.hpp>

#include <signal.h>

#include <atomic>
#include <cstdlib>
#include <map>
#include <memory>
#include <regex>
#include <thread>

#include "net/kernel/arp.hpp"
#include "tests/support/daemon.hpp"
#include "tests/support/dataplane.hpp"
#include "tests/support/lainlet_server.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/promtool.hpp"
#include "tests/support/util.hpp"
#include "tests/support/vip_lab_node.hpp"

using namespace networkd::test;

namespace {

const std::string vip = "10.88.0.50";

/// One node: its namespace on the bridge, a container behind it, lainlet.
struct node : lab_node {
  using lab_node::lab_node;

  bool has_vip() {
    std::string out;
    ns.sh("ip -4 -o addr show dev eth0", &out);
    return out.find(vip + "/32") != std::string::npos;
  }
};

struct lab {
  netns sw{"sw"};
  std::unique_ptr<bridge> br;
  netns etcd_ns{"etcd"};
  netns client{"cl"};
  std::unique_ptr<veth_pair> etcd_link;
  std::unique_ptr<veth_pair> client_link;
  temp_dir dir{"networkd-lab"};
  uint16_t etcd_port = free_port();
  std::unique_ptr<process> etcd;
  std::vector<std::unique_ptr<node>> nodes;

  lab() {
    br = std::make_unique<bridge>(sw, "br0");
    etcd_link = std::make_unique<veth_pair>(etcd_ns, "eth0", sw, "p-etcd");
    client_link = std::make_unique<veth_pair>(client, "eth0", sw, "p-cl");
    br->attach("p-etcd");
    br->attach("p-cl");
    etcd_ns.must("ip addr add 10.88.0.2/24 dev eth0");
    client.must("ip addr add 10.88.0.100/24 dev eth0");
    client.must("sysctl -qw net.ipv4.conf.all.arp_accept=1");
    client.must("sysctl -qw net.ipv4.conf.eth0.arp_accept=1");
    auto c = "http://10.88.0.2:" + std::to_string(etcd_port);
    auto peer = "http://127.0.0.1:" + std::to_string(free_port());
    etcd = std::make_unique<process>(
      std::vector<std::string>{"ip",
                               "netns",
                               "exec",
                               etcd_ns.name(),
                               "etcd",
                               "--name",
                               "lab",
                               "--data-dir",
                               dir.file("etcd"),
                               "--listen-client-urls",
                               c,
                               "--advertise-client-urls",
                               c,
                               "--listen-peer-urls",
                               peer,
                               "--initial-advertise-peer-urls",
                               peer,
                               "--initial-cluster",
                               "lab=" + peer,
                               "--logger=zap",
                               "--log-level=error"},
      dir.file("etcd.log"));
    REQUIRE(wait_until([&] { return ctl("endpoint status") == 0; }, 15s));
    // A short lease keeps the SIGKILL cases quick.
    REQUIRE(ctl("put /lain/networkd/config/lease_ttl 3") == 0);
    for (int i = 1; i <= 2; ++i) {
      nodes.push_back(std::make_unique<node>(sw, "n" + std::to_string(i), i));
      br->attach("p-n" + std::to_string(i));
    }
  }

  std::string endpoint() const {
    return "10.88.0.2:" + std::to_string(etcd_port);
  }

  int ctl(const std::string& args, std::string* out = nullptr) {
    return etcd_ns.sh(
      "ETCDCTL_API=3 etcdctl --endpoints=" + endpoint() + " " + args, out);
  }

  std::string lock_holder() {
    std::string out;
    ctl("get --print-value-only /lain/networkd/vips/" + vip + ".lock", &out);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
      out.pop_back();
    return out;
  }

  std::string fetch() { return tcp_fetch(client, vip, 80, 300ms); }

  node& by_name(const std::string& n) {
    for (auto& p : nodes)
      if (p->name == n)
        return *p;
    throw std::runtime_error("no node " + n);
  }

  /// Number of nodes that hold the VIP address right now.
  int owners() {
    int n = 0;
    for (auto& p : nodes)
      if (p->has_vip())
        ++n;
    return n;
  }
};

void put_vip(lab& l) {
  REQUIRE(l.ctl("put /lain/config/vips/" + vip
                + " '{\"app\":\"web\",\"proc\":\"main\",\"ports\":["
                  "{\"src\":\"80\"},{\"src\":\"53\",\"proto\":\"udp\"}]}'")
          == 0);
}

/// Waits until node `to` serves the VIP (10 s at most), noting whether two
/// nodes held its address at once meanwhile: the time since `t0`.
std::chrono::milliseconds served_by(lab& l, const std::string& to,
                                    std::chrono::steady_clock::time_point t0,
                                    bool& two) {
  REQUIRE(wait_until(
    [&] {
      if (l.owners() > 1)
        two = true;
      return l.fetch() == to;
    },
    10s, 10ms));
  return std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - t0);
}

/// Starts networkd on every node and puts the VIP: the name of the node
/// that then holds its lock and serves it.
std::string serve_everywhere(lab& l) {
  for (auto& n : l.nodes)
    n->start_networkd(l.endpoint());
  put_vip(l);
  std::string owner;
  REQUIRE(wait_until(
    [&] {
      owner = l.lock_holder();
      return !owner.empty() && l.fetch() == owner;
    },
    15s, 20ms));
  return owner;
}

} // namespace

TEST_CASE("a VIP is served by one node and moves on SIGTERM and container "
          "death",
          "[vip][lab]") {
  lab l;
  auto owner = serve_everywhere(l);
  CHECK(l.owners() == 1);
  CHECK(udp_fetch(l.client, vip, 53) == owner);
  auto& first = l.by_name(owner);
  auto other = owner == "n1" ? std::string{"n2"} : std::string{"n1"};

  SECTION("SIGTERM hands the VIP over at once") {
    auto t0 = std::chrono::steady_clock::now();
    first.networkd->proc().signal(SIGTERM);
    bool two = false;
    auto took = served_by(l, other, t0, two);
    WARN("SIGTERM to served by the other node: " << took.count() << " ms");
    CHECK_FALSE(two);
    CHECK(first.networkd->proc().wait(10s) != -1);
    CHECK_FALSE(first.has_vip());
    CHECK(l.lock_holder() == other);
  }

  SECTION("the container's death moves the VIP") {
    auto t0 = std::chrono::steady_clock::now();
    first.tcp.reset();
    bool two = false;
    auto took = served_by(l, other, t0, two);
    WARN("container server stopped to served by the other node: "
         << took.count() << " ms");
    CHECK_FALSE(two);
    CHECK_FALSE(first.has_vip());
    CHECK(l.lock_holder() == other);
    CHECK(first.networkd->proc().running());
  }

  SECTION("SIGKILL: the address leaves the dead node by itself") {
    first.networkd->proc().signal(SIGKILL);
    REQUIRE(wait_until([&] { return !first.has_vip(); }, 10s, 20ms));
    REQUIRE(wait_until([&] { return l.fetch() == other; }, 10s, 20ms));
    CHECK(l.owners() == 1);
  }
}

TEST_CASE("a bad VIP value is rejected while a good one is served",
          "[vip][lab]") {
  lab l;
  l.nodes[0]->start_networkd(l.endpoint());
  REQUIRE(l.ctl("put /lain/config/vips/10.88.0.51 '{\"app\":'") == 0);
  put_vip(l);
  REQUIRE(wait_until([&] { return l.fetch() == "n1"; }, 15s, 20ms));
  auto state = l.nodes[0]->networkd->get("/v1/state").body;
  CHECK(state.find("/lain/config/vips/10.88.0.51") != std::string::npos);
  REQUIRE(wait_until(
    [&] {
      return l.nodes[0]
               ->networkd->get("/v1/vips")
               .body.find("\"state\":\"serving\"")
             != std::string::npos;
    },
    5s));
  auto vips = l.nodes[0]->networkd->get("/v1/vips").body;
  CHECK(vips.find("\"owner\":\"n1\"") != std::string::npos);
  CHECK(vips.find("\"rejected\":[{\"key\":\"/lain/config/vips/10.88.0.51\"")
        != std::string::npos);
  CHECK(vips.find("tcp 10.88.0.50:80 -> 172.20.1.2:80") != std::string::npos);
  // excluded_nodes is honoured: excluding n1 takes the VIP away.
  REQUIRE(l.ctl("put /lain/config/vips/" + vip
                + " '{\"app\":\"web\",\"proc\":\"main\",\"ports\":"
                  "[{\"src\":\"80\"}],\"excluded_nodes\":[\"n1\"]}'")
          == 0);
  REQUIRE(wait_until([&] { return !l.nodes[0]->has_vip(); }, 10s, 20ms));
  REQUIRE(wait_until([&] { return l.fetch().empty(); }, 5s, 20ms));
  CHECK(l.lock_holder().empty());
}

namespace {

/// The value of vip's series `family` for proto/port in a node's /metrics,
/// or -1 when absent.
int64_t vip_series(lab_node& n, const std::string& family,
                   const std::string& proto, int port) {
  auto text = n.networkd->get("/metrics").body;
  auto line = family + "{vip=\"" + vip + "\",proto=\"" + proto + "\",port=\""
              + std::to_string(port) + "\"} ";
  auto at = text.find(line);
  return at == std::string::npos ? int64_t{-1}
                                 : std::stoll(text.substr(at + line.size()));
}

/// An IPv4 UDP datagram's length with `payload` bytes.
constexpr int64_t udp_len(int64_t payload) {
  return 20 + 8 + payload;
}

} // namespace

TEST_CASE("metrics and v1/vips count the connections packets and bytes of "
          "each VIP and port against real traffic",
          "[vip][lab][metrics]") {
  lab l;
  auto& n = *l.nodes[0];
  n.start_networkd(l.endpoint());
  put_vip(l);
  REQUIRE(wait_until([&] { return l.fetch() == "n1"; }, 15s, 20ms));
  auto conns = [&] {
    return vip_series(n, "networkd_vip_connections_total", "tcp", 80);
  };
  {
    auto text = n.networkd->get("/metrics").body;
    auto v = promtool_check(text);
    INFO(v.output);
    CHECK(v.exit_code == 0);
  }
  if (dataplane() != "nft") {
    // Only the nft data plane counts per entry.
    CHECK(conns() == -1);
    CHECK(vip_series(n, "networkd_vip_packets_total", "udp", 53) == -1);
    CHECK(n.networkd->get("/v1/vips").body.find("\"traffic\"")
          == std::string::npos);
    return;
  }
  auto before = conns();
  REQUIRE(before >= 1); // the fetch above
  for (int i = 0; i < 5; ++i)
    REQUIRE(l.fetch() == "n1");
  CHECK(wait_until([&] { return conns() >= before + 5; }, 5s, 20ms));
  // Nothing went to the udp entry yet.
  CHECK(vip_series(n, "networkd_vip_connections_total", "udp", 53) == 0);
  CHECK(vip_series(n, "networkd_vip_packets_total", "udp", 53) == 0);
  CHECK(vip_series(n, "networkd_vip_bytes_total", "udp", 53) == 0);
  // UDP with a known size: the client sends "?" (1 byte), the container
  // answers "n1" (2 bytes); both directions are counted, each packet once.
  const int rounds = 7;
  for (int i = 0; i < rounds; ++i)
    REQUIRE(udp_fetch(l.client, vip, 53) == "n1");
  INFO(n.networkd->get("/metrics").body);
  CHECK(vip_series(n, "networkd_vip_packets_total", "udp", 53) == 2 * rounds);
  CHECK(vip_series(n, "networkd_vip_bytes_total", "udp", 53)
        == rounds * (udp_len(1) + udp_len(2)));
  CHECK(vip_series(n, "networkd_vip_connections_total", "udp", 53) == rounds);
  // TCP: every packet of the handshake, the answer and the close.
  auto tcp_packets = vip_series(n, "networkd_vip_packets_total", "tcp", 80);
  CHECK(tcp_packets >= 5 * (before + 5));
  CHECK(vip_series(n, "networkd_vip_bytes_total", "tcp", 80)
        >= 40 * tcp_packets);
  auto text = n.networkd->get("/metrics").body;
  auto v = promtool_check(text);
  INFO(v.output);
  CHECK(v.exit_code == 0);
  // The same counters in /v1/vips and /v1/vips/{ip}.
  auto udp_entry
    = "{\"vip\":\"" + vip + "\",\"proto\":\"udp\",\"port\":53,\"connections\":"
      + std::to_string(rounds) + ",\"packets\":" + std::to_string(2 * rounds)
      + ",\"bytes\":" + std::to_string(rounds * (udp_len(1) + udp_len(2)))
      + "}";
  auto vips = n.networkd->get("/v1/vips").body;
  INFO(vips);
  CHECK(vips.find("\"traffic\":[") != std::string::npos);
  CHECK(vips.find(udp_entry) != std::string::npos);
  auto one = n.networkd->get("/v1/vips/" + vip);
  CHECK(one.status == 200);
  CHECK(one.body.find(udp_entry) != std::string::npos);
}

namespace {

/// The value of one series in a node's /metrics, or -1.
double metric(node& n, const std::string& series) {
  return sample_value(n.networkd->get("/metrics").body, series);
}

/// The VIP's transitions on a node, summed over the target phases.
double transitions(node& n) {
  double sum = 0;
  for (auto to :
       {"created", "idle", "standby", "acquiring", "serving", "releasing"})
    sum += std::max(0.0, metric(n, "networkd_vip_transitions_total{vip=\"" + vip
                                     + "\",to=\"" + to + "\"}"));
  return sum;
}

double serving(node& n) {
  return metric(n, "networkd_vip_state{vip=\"" + vip + "\",state=\"serving\"}");
}

} // namespace

TEST_CASE("a failover shows in both nodes' metrics and in v1/vips",
          "[vip][lab][metrics]") {
  lab l;
  auto owner = serve_everywhere(l);
  auto& first = l.by_name(owner);
  auto& second = l.by_name(owner == "n1" ? "n2" : "n1");
  REQUIRE(wait_until([&] { return serving(first) == 1; }, 5s, 20ms));
  CHECK(serving(second) == 0);
  for (auto* n : {&first, &second}) {
    auto text = n->networkd->get("/metrics").body;
    auto v = promtool_check(text);
    INFO(n->name << ": " << v.output);
    CHECK(v.exit_code == 0);
  }
  auto before_first = transitions(first);
  auto before_second = transitions(second);
  CHECK(metric(first, "networkd_vip_transitions_total{vip=\"" + vip
                        + "\",to=\"serving\"}")
        == 1);

  first.tcp.reset(); // the container's server dies: the VIP moves
  bool two = false;
  served_by(l, second.name, std::chrono::steady_clock::now(), two);
  CHECK(wait_until([&] { return serving(second) == 1; }, 5s, 20ms));
  CHECK(wait_until([&] { return serving(first) == 0; }, 5s, 20ms));
  CHECK(transitions(first) > before_first);
  CHECK(transitions(second) > before_second);
  CHECK(metric(second, "networkd_vip_transitions_total{vip=\"" + vip
                         + "\",to=\"serving\"}")
        == 1);
  CHECK(metric(first, "networkd_vip_transitions_total{vip=\"" + vip
                        + "\",to=\"releasing\"}")
        >= 1);

  // /v1/vips: the last change with its reason, RFC 3339 time and age;
  // every transition entry has its time.
  auto vips = second.networkd->get("/v1/vips").body;
  INFO(vips);
  std::smatch m;
  CHECK(std::regex_search(
    vips, m,
    std::regex(
      R"re("last_change_at":"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z")re")));
  CHECK(
    std::regex_search(vips, m, std::regex(R"re("last_change_age_ms":\d+)re")));
  CHECK(vips.find("\"last_change_reason\":\"lock, rules and address in place\"")
        != std::string::npos);
  const std::regex entry(
    R"re(\{"at":"\d{4}-[^"]+Z","age_ms":\d+,"from":"[a-z]+","to":"[a-z]+","reason":)re");
  auto entries
    = std::distance(std::sregex_iterator(vips.begin(), vips.end(), entry),
                    std::sregex_iterator());
  CHECK(entries >= 2);
  CHECK(std::regex_search(
    vips, m, std::regex(R"re("from":"acquiring","to":"serving")re")));
}

TEST_CASE("port-only VIPs DNAT on the node address and publish the app key",
          "[vip][lab]") {
  lab l;
  l.nodes[0]->start_networkd(l.endpoint());
  REQUIRE(l.ctl("put /lain/config/vips/0.0.0.0:8080 "
                "'{\"app\":\"web\",\"proc\":\"main\",\"ports\":"
                "[{\"dest\":\"80\"}]}'")
          == 0);
  REQUIRE(wait_until(
    [&] { return tcp_fetch(l.client, "10.88.0.11", 8080, 300ms) == "n1"; }, 15s,
    20ms));
  std::string out;
  REQUIRE(wait_until(
    [&] {
      l.ctl("get --print-value-only "
            "/lain/networkd/apps/web/main/10.88.0.11:8080",
            &out);
      return out.find("n1") != std::string::npos;
    },
    5s));
  CHECK_FALSE(l.nodes[0]->has_vip());
  // A second port-only VIP on the same address: each keeps its own rules.
  REQUIRE(l.ctl("put /lain/config/vips/0.0.0.0:8081 "
                "'{\"app\":\"web\",\"proc\":\"main\",\"ports\":"
                "[{\"dest\":\"80\"}]}'")
          == 0);
  REQUIRE(wait_until(
    [&] { return tcp_fetch(l.client, "10.88.0.11", 8081, 300ms) == "n1"; }, 15s,
    20ms));
  CHECK(tcp_fetch(l.client, "10.88.0.11", 8080, 300ms) == "n1");
  // Deleting one leaves the other.
  REQUIRE(l.ctl("del /lain/config/vips/0.0.0.0:8081") == 0);
  REQUIRE(wait_until(
    [&] { return tcp_fetch(l.client, "10.88.0.11", 8081, 300ms).empty(); }, 10s,
    20ms));
  CHECK(tcp_fetch(l.client, "10.88.0.11", 8080, 300ms) == "n1");
  // The key goes when the proc stops being served here.
  l.nodes[0]->lainlet->set_containers({});
  REQUIRE(wait_until(
    [&] {
      l.ctl("get --print-value-only "
            "/lain/networkd/apps/web/main/10.88.0.11:8080",
            &out);
      return out.empty();
    },
    5s));
  CHECK(tcp_fetch(l.client, "10.88.0.11", 8080, 300ms).empty());
}

TEST_CASE("a deleted VIP key takes its address, rules, lock and app key "
          "with it",
          "[vip][lab]") {
  lab l;
  auto& n1 = *l.nodes[0];
  n1.start_networkd(l.endpoint());
  put_vip(l);
  REQUIRE(l.ctl("put /lain/config/vips/0.0.0.0:8080 "
                "'{\"app\":\"web\",\"proc\":\"main\",\"ports\":"
                "[{\"dest\":\"80\"}]}'")
          == 0);
  REQUIRE(wait_until([&] { return l.fetch() == "n1"; }, 15s, 20ms));
  REQUIRE(wait_until(
    [&] { return tcp_fetch(l.client, "10.88.0.11", 8080, 300ms) == "n1"; }, 15s,
    20ms));
  auto app_key = [&] {
    std::string out;
    l.ctl("get --print-value-only "
          "/lain/networkd/apps/web/main/10.88.0.11:8080",
          &out);
    return out;
  };
  REQUIRE(has_dnat(n1.ns, vip));
  REQUIRE(l.lock_holder() == "n1");
  REQUIRE(app_key().find("n1") != std::string::npos);

  REQUIRE(l.ctl("del /lain/config/vips/" + vip) == 0);
  REQUIRE(l.ctl("del /lain/config/vips/0.0.0.0:8080") == 0);
  CHECK(wait_until([&] { return !n1.has_vip(); }, 5s, 20ms));
  CHECK(wait_until([&] { return l.lock_holder().empty(); }, 5s, 20ms));
  CHECK(wait_until(
    [&] {
      return !has_dnat(n1.ns, vip) && !has_dnat(n1.ns, "10.88.0.11", 8080);
    },
    5s, 20ms));
  CHECK(wait_until([&] { return app_key().empty(); }, 5s, 20ms));
  CHECK(l.fetch().empty());
  CHECK(tcp_fetch(l.client, "10.88.0.11", 8080, 300ms).empty());
  // Neither holder is left: /v1/vips lists no VIP.
  CHECK(wait_until(
    [&] {
      return n1.networkd->get("/v1/vips").body.find("\"vips\":[]")
             != std::string::npos;
    },
    5s, 20ms));

  // Deleted and put again at once: the new holder starts after the old one
  // released, and the VIP ends up served with its lock and rules.
  put_vip(l);
  REQUIRE(wait_until([&] { return l.fetch() == "n1"; }, 15s, 20ms));
  REQUIRE(l.ctl("del /lain/config/vips/" + vip) == 0);
  put_vip(l);
  CHECK(wait_until(
    [&] {
      return n1.networkd->get("/v1/vips").body.find("\"state\":\"serving\"")
             != std::string::npos;
    },
    10s, 20ms));
  CHECK(l.fetch() == "n1");
  CHECK(l.lock_holder() == "n1");
  CHECK(n1.has_vip());
  CHECK(has_dnat(n1.ns, vip));
}

TEST_CASE("a restart within the lease adopts the VIP without a gap",
          "[vip][lab]") {
  lab l;
  l.nodes[0]->start_networkd(l.endpoint());
  put_vip(l);
  REQUIRE(wait_until([&] { return l.fetch() == "n1"; }, 15s, 20ms));
  auto& n = *l.nodes[0];
  // Sampled from before the kill until the new process serves again: the
  // address and rules stay, the lock is re-bound to the new lease. As
  // below, a request is refused when it and one immediate retry both fail
  // (one lost attempt on a loaded machine is not a gap; a missing address
  // or rule fails both).
  std::atomic<bool> stop{false};
  std::atomic<int> samples{0};
  std::atomic<int> refused{0};
  std::thread sampler{[&] {
    while (!stop) {
      if (l.fetch() != "n1" && l.fetch() != "n1")
        ++refused;
      ++samples;
    }
  }};
  REQUIRE(wait_until([&] { return samples >= 5; }, 5s, 10ms));
  n.networkd->proc().signal(SIGKILL);
  n.networkd->proc().wait(5s);
  int before_start = samples;
  n.start_networkd(l.endpoint());
  bool serving = wait_until(
    [&] {
      return n.networkd->get("/v1/state").body.find("\"state\":\"serving\"")
             != std::string::npos;
    },
    10s, 20ms);
  int after_serving = samples;
  stop = true;
  sampler.join();
  REQUIRE(serving);
  INFO("samples: " << samples
                   << ", during the restart: " << after_serving - before_start);
  // The restart window itself was sampled, not only its ends.
  CHECK(after_serving - before_start >= 5);
  CHECK(refused == 0);
  CHECK(l.lock_holder() == "n1");
  CHECK(l.fetch() == "n1");
}

TEST_CASE("a lainlet restart or a container IP change leaves no gap",
          "[vip][lab]") {
  lab l;
  auto& n = *l.nodes[0];
  n.start_networkd(l.endpoint());
  put_vip(l);
  REQUIRE(wait_until([&] { return l.fetch() == "n1"; }, 15s, 20ms));
  // A request counts as failed when it and one immediate retry (what a
  // client's SYN retransmission does) both go unanswered: one attempt lost
  // on a loaded machine is not a gap, a missing address or rule fails both.
  auto served = [&] { return l.fetch() == "n1" || l.fetch() == "n1"; };
  // lainlet goes away and comes back: nothing moves, no failed request.
  auto opened = n.lainlet->streams_opened();
  n.lainlet->stop();
  int failed = 0;
  for (int i = 0; i < 20; ++i)
    if (!served())
      ++failed;
  n.ns.run([&] { n.lainlet->start(); });
  REQUIRE(wait_until(
    [&] {
      if (!served())
        ++failed;
      return n.lainlet->streams_opened() > opened;
    },
    15s, 20ms));
  CHECK(failed == 0);
  CHECK(l.lock_holder() == "n1");
  // The container gets a new IP: the rules follow, served throughout.
  n.ct.must("ip addr add 172.20.1.3/24 dev eth0");
  n.lainlet->set_containers(
    {lab_container("n1", n.ip, "172.20.1.3", 1, "ct-n1-new")});
  REQUIRE(wait_until(
    [&] {
      if (!served())
        ++failed;
      return has_target(n.ns, "172.20.1.3", 80)
             && !has_target(n.ns, "172.20.1.2", 80);
    },
    10s, 20ms));
  CHECK(failed == 0);
  // The old address goes, as with a real new container (a UDP server
  // bound to any address answers from the interface's first address).
  n.ct.must("sysctl -qw net.ipv4.conf.eth0.promote_secondaries=1");
  n.ct.must("ip addr del 172.20.1.2/24 dev eth0");
  CHECK(l.fetch() == "n1");
  CHECK(udp_fetch(l.client, vip, 53) == "n1");
}

TEST_CASE("deployd's pod groups in etcd serve like lainlet", "[vip][lab]") {
  lab l;
  auto& n = *l.nodes[0];
  REQUIRE(l.ctl("put /lain/deployd/pod_groups/web/web.main "
                "'{\"Spec\":{\"Name\":\"web.main\",\"Namespace\":"
                "\"web\",\"Pod\":{\"Containers\":[{\"Env\":["
                "\"LAIN_APP_RELEASE_VERSION=1\"]}]}},\"Pods\":[{"
                "\"InstanceNo\":1,\"Containers\":[{\"Id\":\"ct-n1\","
                "\"NodeName\":\"n1\",\"NodeIp\":\"10.88.0.11\","
                "\"ContainerIp\":\"172.20.1.2\",\"ContainerPort\":80}]}]}'")
          == 0);
  // lainlet knows nothing here: only the pod groups can make it serve.
  n.lainlet->set_containers({});
  n.start_networkd(l.endpoint(), {"--containers-from=deployd"});
  put_vip(l);
  REQUIRE(wait_until([&] { return l.fetch() == "n1"; }, 15s, 20ms));
  REQUIRE(l.ctl("del /lain/deployd/pod_groups/web/web.main") == 0);
  REQUIRE(wait_until([&] { return !n.has_vip(); }, 10s, 20ms));
  // The rules go right after the address (the client's ARP cache may
  // still point at n1 for a moment).
  REQUIRE(wait_until([&] { return l.fetch().empty(); }, 5s, 20ms));
}

namespace {

/// "aa:bb:..." of eth0 in `ns`.
std::string mac_of(const netns& ns) {
  std::string out;
  ns.sh("cat /sys/class/net/eth0/address", &out);
  while (!out.empty() && out.back() == '\n')
    out.pop_back();
  return out;
}

/// The client's neighbour entry for the VIP: the MAC it sends to, or "".
std::string client_sees(lab& l) {
  std::string out;
  l.client.sh("ip neigh show " + vip + " dev eth0", &out);
  auto p = out.find("lladdr ");
  return p == std::string::npos ? std::string{} : out.substr(p + 7, 17);
}

/// A number from the counters of the VIP's holder in /v1/vips.
uint64_t holder_counter(node& n, const std::string& name) {
  auto body = n.networkd->get("/v1/vips").body;
  auto p = body.find("\"" + name + "\":");
  return p == std::string::npos ? 0
                                : std::stoull(body.substr(p + name.size() + 3));
}

} // namespace

TEST_CASE("an address removed by someone else is put back and announced",
          "[vip][lab]") {
  lab l;
  auto& n = *l.nodes[0];
  n.start_networkd(l.endpoint());
  put_vip(l);
  REQUIRE(wait_until([&] { return l.fetch() == "n1"; }, 15s, 20ms));
  auto t0 = std::chrono::steady_clock::now();
  n.ns.must("ip addr del " + vip + "/32 dev eth0");
  REQUIRE(wait_until([&] { return n.has_vip(); }, 5s, 5ms));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - t0);
  WARN("address removed by hand to back on the interface: " << took.count()
                                                            << " ms");
  CHECK(took < 1s);
  CHECK(l.fetch() == "n1");
  CHECK(holder_counter(n, "readds") == 1);
  // Put back with a lease-bound lifetime again, never used as a source.
  std::string out;
  n.ns.sh("ip -4 -o addr show dev eth0 to " + vip + "/32", &out);
  CHECK(out.find(vip + "/32") != std::string::npos);
  CHECK(out.find("valid_lft forever") == std::string::npos);
  CHECK(out.find("preferred_lft 0sec") != std::string::npos);
}

TEST_CASE("DNAT rules flushed by someone else are put back by the audit",
          "[vip][lab]") {
  lab l;
  REQUIRE(l.ctl("put /lain/networkd/config/nat_audit_s 1") == 0);
  auto& n = *l.nodes[0];
  n.start_networkd(l.endpoint());
  put_vip(l);
  REQUIRE(wait_until([&] { return l.fetch() == "n1"; }, 15s, 20ms));
  // A firewall reload: our chains are emptied, the VIP stays on the node.
  // (Both at once: an audit in between would repair twice.)
  flush_dnat(n.ns);
  CHECK(n.has_vip());
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(wait_until([&] { return l.fetch() == "n1"; }, 10s, 20ms));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - t0);
  WARN("rules flushed by hand to served again: " << took.count() << " ms");
  CHECK(wait_until(
    [&] {
      return n.networkd->log().find("changed outside networkd")
             != std::string::npos;
    },
    5s, 20ms));
  // /v1/state shows it under the NAT manager.
  auto state = n.networkd->get("/v1/state").body;
  CHECK(state.find("\"name\":\"nat\"") != std::string::npos);
  CHECK(state.find("\"repairs\":1") != std::string::npos);
  // Two ports: an nft map element each, or a rule line per chain and port.
  size_t entries = dataplane() == "nft" ? 2 : 4;
  CHECK(state.find("\"last_repair\":\"put back " + std::to_string(entries)
                   + " entries, removed 0\"")
        != std::string::npos);
  CHECK(dnat_entries(n.ns, vip) == entries);
}

TEST_CASE("another host claiming the VIP by ARP: the owner checks its lock "
          "and announces again",
          "[vip][lab]") {
  lab l;
  auto& n = *l.nodes[0];
  auto& rogue = *l.nodes[1]; // no networkd: a host that grabs the address
  n.start_networkd(l.endpoint());
  put_vip(l);
  REQUIRE(wait_until([&] { return l.fetch() == "n1"; }, 15s, 20ms));
  REQUIRE(wait_until([&] { return client_sees(l) == mac_of(n.ns); }, 5s));
  // The rogue takes the address and announces it (an unsolicited reply
  // the client accepts: arp_accept is on), then lets it go again.
  rogue.ns.must("ip addr add " + vip + "/32 dev eth0");
  rogue.ns.must("arping -q -A -c 1 -I eth0 " + vip);
  rogue.ns.must("ip addr del " + vip + "/32 dev eth0");
  REQUIRE(wait_until([&] { return holder_counter(n, "arp_conflicts") > 0; }, 5s,
                     20ms));
  // The lock is ours: the owner announces again and the client comes back.
  REQUIRE(wait_until([&] { return client_sees(l) == mac_of(n.ns); }, 5s, 20ms));
  CHECK(l.fetch() == "n1");
  CHECK(holder_counter(n, "stepped_down") == 0);
  CHECK(l.lock_holder() == "n1");
}

TEST_CASE("leftovers of a previous run for VIPs not ours are removed at start",
          "[vip][lab]") {
  lab l;
  auto& n = *l.nodes[0];
  // What a networkd that died long ago left: the address and rules of a VIP
  // whose key was deleted since, and of one another node now holds.
  auto leave = [&](const std::string& ip) {
    n.ns.must("ip addr add " + ip
              + "/32 dev eth0 valid_lft 300 "
                "preferred_lft 0");
    leave_dnat(n.ns, ip);
  };
  leave("10.88.0.60");
  leave(vip);
  put_vip(l);
  REQUIRE(l.ctl("put /lain/networkd/vips/" + vip + ".lock n2") == 0);
  n.start_networkd(l.endpoint());
  auto has = [&](const std::string& what, const std::string& cmd) {
    std::string out;
    n.ns.sh(cmd, &out);
    return out.find(what) != std::string::npos;
  };
  bool cleaned = wait_until(
    [&] {
      return !has("10.88.0.60/32", "ip -4 -o addr show dev eth0")
             && !has_dnat(n.ns, "10.88.0.60")
             && !has(vip + "/32", "ip -4 -o addr show dev eth0")
             && !has_dnat(n.ns, vip);
    },
    10s, 50ms);
  INFO(dnat_text(n.ns));
  INFO(n.networkd->log());
  REQUIRE(cleaned);
  // The node's own addresses are untouched.
  CHECK(has(n.ip + "/24", "ip -4 -o addr show dev eth0"));
  CHECK(l.lock_holder() == "n2");
}

TEST_CASE("a frozen owner whose address expired no longer DNATs clients "
          "that still send to its MAC",
          "[vip][lab]") {
  lab l;
  auto owner = serve_everywhere(l);
  auto& first = l.by_name(owner);
  auto other = owner == "n1" ? std::string{"n2"} : std::string{"n1"};
  // The client keeps sending to the frozen owner's MAC whatever ARP says.
  l.client.must("ip neigh replace " + vip + " lladdr " + mac_of(first.ns)
                + " nud permanent dev eth0");
  first.networkd->proc().signal(SIGSTOP);
  // The kernel drops the address when its lease-bound lifetime ends; the
  // other node takes the VIP once the lease expired in etcd.
  REQUIRE(wait_until([&] { return !first.has_vip(); }, 10s, 20ms));
  REQUIRE(wait_until([&] { return l.by_name(other).has_vip(); }, 10s, 20ms));
  // The frozen node still has its DNAT rules, but they apply only to local
  // addresses: it routes the packet on to the new owner instead of handing
  // it to its own container.
  std::string got;
  REQUIRE(wait_until([&] { return (got = l.fetch()) == other; }, 5s, 50ms));
  for (int i = 0; i < 10; ++i)
    CHECK(l.fetch() != owner);
  first.networkd->proc().signal(SIGCONT);
  // Awake, it does not take the VIP back.
  CHECK_FALSE(wait_until([&] { return first.has_vip(); }, 2s, 20ms));
  CHECK(l.lock_holder() == other);
}

TEST_CASE("VIPs of one proc spread over its instances", "[vip][lab]") {
  lab l;
  auto holder_of = [&](const std::string& ip) {
    std::string out;
    l.ctl("get --print-value-only /lain/networkd/vips/" + ip + ".lock", &out);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
      out.pop_back();
    return out;
  };
  auto value = std::string{"'{\"app\":\"web\",\"proc\":\"main\","
                           "\"ports\":[{\"src\":\"80\"}]}'"};
  auto keys = [&] {
    std::string out;
    l.ctl("get --prefix /lain/networkd/containers/web/main/", &out);
    return out;
  };
  // n1 alone takes the first two.
  l.nodes[0]->start_networkd(l.endpoint());
  for (auto ip : {"10.88.0.50", "10.88.0.51"})
    REQUIRE(l.ctl(std::string("put /lain/config/vips/") + ip + " " + value)
            == 0);
  REQUIRE(wait_until(
    [&] {
      return holder_of("10.88.0.50") == "n1" && holder_of("10.88.0.51") == "n1"
             && keys().find("/1/10.88.0.51\nused") != std::string::npos;
    },
    15s, 20ms));
  // n2's instance registers (unused keys for the VIPs it does not hold).
  l.nodes[1]->start_networkd(l.endpoint());
  REQUIRE(wait_until(
    [&] {
      auto k = keys();
      return k.find("/2/10.88.0.50\nunused") != std::string::npos
             && k.find("/2/10.88.0.51\nunused") != std::string::npos;
    },
    15s, 20ms));
  // n1 has heard of instance 2 (the spreading keys come on another watch
  // stream than the VIP keys: a VIP put before they arrive would be
  // judged without them).
  REQUIRE(wait_until(
    [&] {
      return l.nodes[0]
               ->networkd->get("/v1/vips")
               .body.find("\"used_by_instance\":{\"1\":2,\"2\":0}")
             != std::string::npos;
    },
    15s, 20ms));
  // Two more: instance 1 holds two, instance 2 none, so only instance 2
  // competes until it holds as many.
  for (auto ip : {"10.88.0.52", "10.88.0.53"})
    REQUIRE(l.ctl(std::string("put /lain/config/vips/") + ip + " " + value)
            == 0);
  REQUIRE(wait_until(
    [&] {
      return holder_of("10.88.0.52") == "n2" && holder_of("10.88.0.53") == "n2"
             && tcp_fetch(l.client, "10.88.0.52", 80, 300ms) == "n2"
             && tcp_fetch(l.client, "10.88.0.53", 80, 300ms) == "n2";
    },
    15s, 20ms));
  CHECK(tcp_fetch(l.client, "10.88.0.50", 80, 300ms) == "n1");
  CHECK(tcp_fetch(l.client, "10.88.0.51", 80, 300ms) == "n1");
  // n1's holders say why they stand by.
  CHECK(l.nodes[0]->networkd->get("/v1/vips").body.find("spreading: instance")
        != std::string::npos);
}

TEST_CASE("gratuitous ARP follows the ARP knobs at runtime", "[vip][lab]") {
  lab l;
  auto& n = *l.nodes[0];
  // Three rounds 300 ms apart; no refresh yet.
  REQUIRE(l.ctl("put /lain/networkd/config/arp_count 3") == 0);
  REQUIRE(l.ctl("put /lain/networkd/config/arp_interval_ms 300") == 0);
  n.start_networkd(l.endpoint());
  // What the client hears claiming the VIP, on the wire.
  std::unique_ptr<networkd::arp::arp_watch> watch;
  l.client.run([&] {
    auto w = networkd::arp::arp_watch::open("eth0");
    REQUIRE(w);
    watch = std::move(*w);
  });
  watch->set_filter({vip});
  auto heard = [&](std::chrono::milliseconds for_how_long) {
    size_t count = 0;
    auto until = std::chrono::steady_clock::now() + for_how_long;
    while (std::chrono::steady_clock::now() < until) {
      auto got = watch->read(std::chrono::milliseconds(50));
      REQUIRE(got);
      for (auto& s : *got)
        // Gratuitous: sender = target (a plain reply targets the asker).
        if (networkd::arp::to_string(s.sender_mac) == mac_of(n.ns)
            && s.target_ip == vip)
          ++count;
    }
    return count;
  };
  put_vip(l);
  REQUIRE(wait_until([&] { return l.fetch() == "n1"; }, 15s, 20ms));
  // arp_count = 3 rounds 300 ms apart, all within 1.5 s: each round
  // announces the VIP by a request and by a reply (README, "gratuitous
  // ARP"), and none sends more than two of each. Then quiet until the late
  // round at 5 s.
  auto first = heard(1500ms);
  INFO("gratuitous ARP packets heard in the first 1.5 s: " << first);
  CHECK(first >= 2 * 3);
  CHECK(first <= 4 * 3);
  CHECK(heard(2000ms) == 0);
  // A refresh every second, applied to the VIP already served.
  REQUIRE(l.ctl("put /lain/networkd/config/arp_refresh_s 1") == 0);
  auto refreshed = heard(3500ms);
  INFO("gratuitous ARP packets heard in 3.5 s: " << refreshed);
  INFO("holder: " << n.networkd->get("/v1/vips").body);
  CHECK(refreshed >= 4); // >= 2 refresh rounds (+ maybe the late round)
  CHECK(refreshed <= 10);
  // The address never lapsed between keep-alives (no re-add was needed).
  CHECK(holder_counter(n, "readds") == 0);
}
