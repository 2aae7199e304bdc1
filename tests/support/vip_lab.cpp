// SPDX-License-Identifier: MIT
#include "tests/support/vip_lab.hpp"

#include <rapidjson/document.h>

#include <stdexcept>

namespace networkd::test {

namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == '\r'))
    s.pop_back();
  return s;
}

} // namespace

vip_lab::vip_lab(int nodes) {
  br_ = std::make_unique<bridge>(sw_, "br0");
  etcd_link_ = std::make_unique<veth_pair>(etcd_ns_, "eth0", sw_, "p-etcd");
  client_link_ = std::make_unique<veth_pair>(client_, "eth0", sw_, "p-cl");
  br_->attach("p-etcd");
  br_->attach("p-cl");
  etcd_ns_.must("ip addr add 10.88.0.2/24 dev eth0");
  client_.must("ip addr add 10.88.0.100/24 dev eth0");
  client_.must("sysctl -qw net.ipv4.conf.all.arp_accept=1");
  client_.must("sysctl -qw net.ipv4.conf.eth0.arp_accept=1");
  auto c = "http://" + endpoint();
  auto peer = "http://127.0.0.1:" + std::to_string(free_port());
  etcd_ = std::make_unique<process>(
    std::vector<std::string>{"ip",
                             "netns",
                             "exec",
                             etcd_ns_.name(),
                             "etcd",
                             "--name",
                             "lab",
                             "--data-dir",
                             dir_.file("etcd"),
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
    dir_.file("etcd.log"));
  if (!wait_until([&] { return ctl("endpoint status") == 0; }, 15s, 50ms))
    throw std::runtime_error("lab etcd did not come up: " + etcd_->log());
  for (int i = 1; i <= nodes; ++i) {
    auto name = "n" + std::to_string(i);
    nodes_.push_back(std::make_unique<lab_node>(sw_, name, i));
    br_->attach("p-" + name);
  }
}

vip_lab::~vip_lab() {
  // networkd first (it releases into etcd), then the rest.
  for (auto& n : nodes_)
    n->networkd.reset();
  nodes_.clear();
  etcd_.reset();
}

std::string vip_lab::endpoint() const {
  return "10.88.0.2:" + std::to_string(etcd_port_);
}

int vip_lab::ctl(const std::string& args, std::string* out) const {
  return etcd_ns_.sh("ETCDCTL_API=3 etcdctl --dial-timeout=1s "
                     "--command-timeout=3s --endpoints="
                       + endpoint() + " " + args + " 2>&1",
                     out);
}

std::string vip_lab::value_of(const std::string& key) const {
  std::string out;
  if (ctl("get --print-value-only " + key, &out) != 0)
    return {};
  return trimmed(out);
}

std::string vip_lab::lease_of(const std::string& key) const {
  std::string out;
  if (ctl("get -w json " + key, &out) != 0)
    return {};
  rapidjson::Document doc;
  doc.Parse(out.c_str());
  if (!doc.IsObject() || !doc.HasMember("kvs") || !doc["kvs"].IsArray()
      || doc["kvs"].Empty())
    return {};
  auto& kv = doc["kvs"][0];
  char buf[32];
  auto lease = kv.HasMember("lease") ? kv["lease"].GetInt64() : 0;
  std::snprintf(buf, sizeof(buf), "%llx", static_cast<long long>(lease));
  return buf;
}

std::string vip_lab::fetch(const std::string& ip, uint16_t port) const {
  return tcp_fetch(client_, ip, port, std::chrono::milliseconds(300));
}

std::vector<std::string> vip_lab::holders(const std::string& ip) const {
  std::vector<std::string> out;
  for (auto& n : nodes_)
    if (has_address(n->ns, ip))
      out.push_back(n->name);
  return out;
}

bool has_address(const netns& ns, const std::string& ip) {
  std::string out;
  ns.sh("ip -4 -o addr show dev eth0", &out);
  return out.find(" " + ip + "/32 ") != std::string::npos;
}

std::string session_lease(const daemon_process& d) {
  rapidjson::Document doc;
  auto body = d.get("/v1/state").body;
  doc.Parse(body.c_str());
  if (!doc.IsObject() || !doc.HasMember("actors"))
    return {};
  for (auto& a : doc["actors"].GetArray())
    if (a.HasMember("name")
        && std::string{a["name"].GetString()} == "supervisor"
        && a.HasMember("lease") && a["lease"].HasMember("id")
        && a["lease"]["id"].IsString())
      return a["lease"]["id"].GetString();
  return {};
}

} // namespace networkd::test
