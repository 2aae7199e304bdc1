// SPDX-License-Identifier: MIT
#include "tests/support/vip_lab_node.hpp"

#include "tests/support/dataplane.hpp"

namespace networkd::test {

lainlet_container lab_container(const std::string& node,
                                const std::string& node_ip,
                                const std::string& ip, int instance,
                                const std::string& id) {
  lainlet_container c;
  c.app = "web";
  c.proc = "web.main";
  c.nodename = node;
  c.nodeip = node_ip;
  c.ip = ip;
  c.port = 80;
  c.instance = instance;
  c.id = id;
  return c;
}

lab_node::lab_node(const netns& sw, const std::string& n, int idx)
    : name(n), ip("10.88.0." + std::to_string(10 + idx)), ns(n), ct(n + "c") {
  up = std::make_unique<veth_pair>(ns, "eth0", sw, "p-" + n);
  down = std::make_unique<veth_pair>(ns, "ct0", ct, "eth0");
  ns.must("ip addr add " + ip + "/24 dev eth0");
  auto net = "172.20." + std::to_string(idx);
  ns.must("ip addr add " + net + ".1/24 dev ct0");
  ns.must("sysctl -qw net.ipv4.ip_forward=1");
  ct.must("ip addr add " + net + ".2/24 dev eth0");
  ct.must("ip route add default via " + net + ".1");
  start_container();
  // A port from free_port(), not the namespace's own pick: the daemon's
  // ports come from free_port() and must not meet it (a DNS port once
  // collided with the stand-in's in a node's namespace).
  auto port = free_port();
  ns.run([&] { lainlet = std::make_unique<lainlet_server>(port); });
  lainlet->set_containers({lab_container(n, ip, net + ".2", idx, "ct-" + n)});
}

void lab_node::start_container() {
  tcp = std::make_unique<name_server>(ct, name_server::kind::tcp, 80, name);
  udp = std::make_unique<name_server>(ct, name_server::kind::udp, 53, name);
}

void lab_node::start_networkd(const std::string& etcd,
                              const std::vector<std::string>& extra) {
  std::vector<std::string> flags{"-net.interface=eth0", "-net.address=" + ip,
                                 "-lainlet.endpoint=" + lainlet->endpoint(),
                                 dataplane_flag()};
  flags.insert(flags.end(), extra.begin(), extra.end());
  networkd = std::make_unique<daemon_process>(
    etcd, flags, name, std::vector<std::string>{}, &ns, wrapper);
}

} // namespace networkd::test
