// SPDX-License-Identifier: MIT
#include "tests/support/netns_etcd_cluster.hpp"

#include <filesystem>
#include <sstream>
#include <stdexcept>

namespace networkd::test {

struct ns_etcd_cluster::member {
  std::string name;
  std::string ip;
  std::string dir;
  std::unique_ptr<netns> ns;
  std::unique_ptr<veth_pair> link;
  std::unique_ptr<process> proc; // declared last: destroyed first
};

namespace {

std::string url(const std::string& ip, uint16_t port) {
  return "http://" + ip + ":" + std::to_string(port);
}

} // namespace

ns_etcd_cluster::ns_etcd_cluster(const netns& sw, const bridge& br,
                                 std::vector<std::string> ips, int prefix) {
  for (size_t i = 0; i < ips.size(); ++i) {
    auto m = std::make_unique<member>();
    m->name = "e" + std::to_string(i);
    m->ip = ips[i];
    m->dir = dir_.file(m->name);
    std::filesystem::create_directories(m->dir);
    m->ns = std::make_unique<netns>(m->name);
    // The switch-side port name is unique within the switch namespace.
    auto port = "p-" + m->name;
    m->link = std::make_unique<veth_pair>(*m->ns, "eth0", sw, port);
    br.attach(port);
    m->ns->must("ip addr add " + m->ip + "/" + std::to_string(prefix)
                + " dev eth0");
    if (!initial_cluster_.empty())
      initial_cluster_ += ",";
    initial_cluster_ += m->name + "=" + url(m->ip, peer_port);
    members_.push_back(std::move(m));
  }
  // Every member must run before any of them can elect a leader.
  for (auto& m : members_)
    launch(*m);
  for (auto& m : members_)
    if (!wait_serving(*m, std::chrono::seconds{20}))
      throw std::runtime_error("etcd member " + m->name + " did not come up:\n"
                               + read_file(m->dir + "/etcd.log"));
  // A member answers Status before the cluster has a leader.
  if (!wait_until([&] { return leader() < size(); }, std::chrono::seconds{20},
                  std::chrono::milliseconds{50}))
    throw std::runtime_error("etcd members elected no leader:\n"
                             + read_file(members_[0]->dir + "/etcd.log"));
}

ns_etcd_cluster::~ns_etcd_cluster() {
  for (auto& m : members_)
    if (m->proc)
      m->proc->kill();
  members_.clear();
}

void ns_etcd_cluster::launch(member& m) {
  if (m.proc && m.proc->running())
    return;
  m.proc = std::make_unique<process>(
    std::vector<std::string>{
      "ip", "netns", "exec", m.ns->name(), "etcd", "--name=" + m.name,
      "--data-dir=" + m.dir + "/data",
      "--listen-client-urls=" + url(m.ip, client_port),
      "--advertise-client-urls=" + url(m.ip, client_port),
      "--listen-peer-urls=" + url(m.ip, peer_port),
      "--initial-advertise-peer-urls=" + url(m.ip, peer_port),
      "--initial-cluster=" + initial_cluster_, "--initial-cluster-state=new",
      "--initial-cluster-token=networkd-lab", "--heartbeat-interval=50",
      "--election-timeout=500", "--logger=zap", "--log-level=error",
      "--log-outputs=stderr"},
    m.dir + "/etcd.log");
}

bool ns_etcd_cluster::wait_serving(const member& m,
                                   std::chrono::milliseconds deadline) {
  auto cmd = "ETCDCTL_API=3 etcdctl --dial-timeout=500ms "
             "--command-timeout=2s --endpoints="
             + m.ip + ":" + std::to_string(client_port) + " endpoint status";
  return wait_until([&] { return m.proc->running() && m.ns->sh(cmd) == 0; },
                    deadline, std::chrono::milliseconds{50});
}

std::string ns_etcd_cluster::endpoint(size_t i) const {
  return members_.at(i)->ip + ":" + std::to_string(client_port);
}

std::string ns_etcd_cluster::endpoint_list(size_t first) const {
  std::string out;
  for (size_t k = 0; k < members_.size(); ++k) {
    if (!out.empty())
      out += ",";
    out += endpoint((first + k) % members_.size());
  }
  return out;
}

const netns& ns_etcd_cluster::ns(size_t i) const {
  return *members_.at(i)->ns;
}

void ns_etcd_cluster::stop(size_t i) {
  auto& m = *members_.at(i);
  if (m.proc)
    m.proc->kill();
}

void ns_etcd_cluster::start(size_t i) {
  auto& m = *members_.at(i);
  launch(m);
  if (!wait_serving(m, std::chrono::seconds{20}))
    throw std::runtime_error("etcd member " + m.name + " did not come back:\n"
                             + read_file(m.dir + "/etcd.log"));
  if (!wait_until([&] { return leader() < size(); }, std::chrono::seconds{20},
                  std::chrono::milliseconds{50}))
    throw std::runtime_error("etcd has no leader after member " + m.name
                             + " came back");
}

bool ns_etcd_cluster::running(size_t i) {
  auto& m = *members_.at(i);
  return m.proc && m.proc->running();
}

int ns_etcd_cluster::ctl(const std::string& args, std::string* out) const {
  std::string endpoints;
  const netns* where = nullptr;
  for (size_t i = 0; i < members_.size(); ++i) {
    auto& m = *members_[i];
    if (!m.proc || !m.proc->running())
      continue;
    if (!endpoints.empty())
      endpoints += ",";
    endpoints += endpoint(i);
    if (where == nullptr)
      where = m.ns.get();
  }
  if (where == nullptr) {
    if (out != nullptr)
      *out = "no etcd member runs";
    return -1;
  }
  return where->sh("ETCDCTL_API=3 etcdctl --dial-timeout=500ms "
                   "--command-timeout=2s --endpoints="
                     + endpoints + " " + args,
                   out);
}

size_t ns_etcd_cluster::leader() const {
  std::string out;
  if (ctl("endpoint status", &out) != 0)
    return size();
  // "endpoint, ID, version, db size, is leader, is learner, ..."
  std::istringstream lines(out);
  std::string line;
  while (std::getline(lines, line)) {
    std::vector<std::string> fields;
    std::istringstream cells(line);
    std::string cell;
    while (std::getline(cells, cell, ',')) {
      auto b = cell.find_first_not_of(' ');
      fields.push_back(b == std::string::npos ? std::string{} : cell.substr(b));
    }
    if (fields.size() < 5 || fields[4] != "true")
      continue;
    for (size_t i = 0; i < members_.size(); ++i)
      if (fields[0] == endpoint(i))
        return i;
  }
  return size();
}

std::string ns_etcd_cluster::log(size_t i) const {
  return read_file(members_.at(i)->dir + "/etcd.log");
}

} // namespace networkd::test
