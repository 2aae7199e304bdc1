// SPDX-License-Identifier: MIT
#include "tests/support/etcd_fixture.hpp"

#include <signal.h>

#include <filesystem>
#include <sstream>
#include <stdexcept>

namespace networkd::test {

namespace {

std::string url(uint16_t port, const char* scheme = "http") {
  return std::string(scheme) + "://127.0.0.1:" + std::to_string(port);
}

} // namespace

int etcdctl(const std::string& endpoints, const std::string& args,
            std::string* out) {
  return sh("ETCDCTL_API=3 etcdctl --dial-timeout=500ms "
            "--command-timeout=2s --endpoints="
              + endpoints + " " + args + " 2>&1",
            out);
}

// -- etcd_member --------------------------------------------------------------

etcd_member::etcd_member(std::string name, std::string dir,
                         uint16_t client_port, uint16_t peer_port,
                         std::string initial_cluster,
                         std::vector<std::string> extra_args, etcd_tls tls)
    : name_(std::move(name)), dir_(std::move(dir)), client_port_(client_port),
      peer_port_(peer_port), initial_cluster_(std::move(initial_cluster)),
      extra_args_(std::move(extra_args)), tls_(std::move(tls)) {
  std::filesystem::create_directories(dir_);
}

etcd_member::~etcd_member() {
  kill();
}

void etcd_member::launch() {
  if (proc_ && proc_->running())
    return;
  auto scheme = tls_.cert_file.empty() ? "http" : "https";
  std::vector<std::string> argv{
    "etcd",
    "--name=" + name_,
    "--data-dir=" + dir_ + "/data",
    "--listen-client-urls=" + url(client_port_, scheme),
    "--advertise-client-urls=" + url(client_port_, scheme),
    "--listen-peer-urls=" + url(peer_port_),
    "--initial-advertise-peer-urls=" + url(peer_port_),
    "--initial-cluster=" + initial_cluster_,
    "--initial-cluster-state=new",
    "--initial-cluster-token=networkd-test",
    // Fast elections on loopback.
    "--heartbeat-interval=50",
    "--election-timeout=500",
    "--logger=zap",
    "--log-level=error",
    "--log-outputs=stderr",
  };
  if (!tls_.cert_file.empty()) {
    argv.push_back("--cert-file=" + tls_.cert_file);
    argv.push_back("--key-file=" + tls_.key_file);
  }
  if (!tls_.client_ca_file.empty()) {
    argv.push_back("--client-cert-auth");
    argv.push_back("--trusted-ca-file=" + tls_.client_ca_file);
  }
  argv.insert(argv.end(), extra_args_.begin(), extra_args_.end());
  proc_ = std::make_unique<process>(argv, dir_ + "/etcd.log");
}

bool etcd_member::wait_healthy(std::chrono::milliseconds deadline) {
  return wait_until(
    [&] {
      if (!running())
        return false;
      // A member serves clients only once it has joined the cluster through
      // raft; Status needs no auth (unlike "endpoint health").
      return etcdctl(etcdctl_target(), "endpoint status") == 0;
    },
    deadline, 50ms);
}

void etcd_member::kill() {
  if (proc_)
    proc_->kill();
}

void etcd_member::pause() {
  if (proc_)
    proc_->signal(SIGSTOP);
}

void etcd_member::resume() {
  if (proc_)
    proc_->signal(SIGCONT);
}

bool etcd_member::running() {
  return proc_ && proc_->running();
}

std::string etcd_member::endpoint() const {
  return "127.0.0.1:" + std::to_string(client_port_);
}

std::string etcd_member::etcdctl_target() const {
  if (tls_.cert_file.empty())
    return endpoint();
  // With client certificates on, the server's own pair is one its CA
  // signed.
  auto out = "https://" + endpoint() + " --cacert=" + tls_.ca_file;
  if (!tls_.client_ca_file.empty())
    out += " --cert=" + tls_.cert_file + " --key=" + tls_.key_file;
  return out;
}

std::string etcd_member::log() const {
  return read_file(dir_ + "/etcd.log");
}

// -- etcd_server --------------------------------------------------------------

etcd_server::etcd_server(std::vector<std::string> extra_args)
    : etcd_server(std::move(extra_args), etcd_tls{}) {}

etcd_server::etcd_server(std::vector<std::string> extra_args, etcd_tls tls)
    : dir_("networkd-etcd") {
  auto client_port = free_port();
  auto peer_port = free_port();
  member_ = std::make_unique<etcd_member>(
    "solo", dir_.file("solo"), client_port, peer_port, "solo=" + url(peer_port),
    std::move(extra_args), std::move(tls));
  start();
}

etcd_server::~etcd_server() {
  member_.reset();
}

std::string etcd_server::endpoint() const {
  return member_->endpoint();
}

void etcd_server::stop() {
  member_->kill();
}

void etcd_server::pause() {
  member_->pause();
}

void etcd_server::resume() {
  member_->resume();
}

void etcd_server::start() {
  member_->launch();
  if (!member_->wait_healthy())
    throw std::runtime_error("etcd did not come up:\n" + member_->log());
}

bool etcd_server::running() {
  return member_->running();
}

int etcd_server::etcdctl(const std::string& args, std::string* out) const {
  return test::etcdctl(member_->etcdctl_target(), ctl_auth_ + args, out);
}

namespace {

void must(const etcd_server& srv, const std::string& args) {
  std::string out;
  if (srv.etcdctl(args, &out) != 0)
    throw std::runtime_error("etcdctl " + args + " failed: " + out);
}

} // namespace

void etcd_server::enable_auth(const std::string& root_password) {
  must(*this, "user add root:" + root_password);
  must(*this, "auth enable");
  ctl_auth_ = "--user=root:" + root_password + " ";
}

void etcd_server::add_user(const std::string& user, const std::string& password,
                           const std::string& read_prefix,
                           const std::string& write_prefix) {
  must(*this, "role add " + user);
  must(*this,
       "role grant-permission " + user + " --prefix=true read " + read_prefix);
  must(*this, "role grant-permission " + user + " --prefix=true readwrite "
                + write_prefix);
  must(*this, "user add " + user + ":" + password);
  must(*this, "user grant-role " + user + " " + user);
}

double etcd_server::metric(const std::string& name,
                           const std::vector<std::string>& labels) const {
  std::string text;
  if (sh("curl -sf --max-time 5 http://" + endpoint() + "/metrics", &text) != 0)
    return -1;
  double sum = 0;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind(name, 0) != 0)
      continue;
    bool all = true;
    for (auto& l : labels)
      all = all && line.find(l) != std::string::npos;
    auto space = line.rfind(' ');
    if (all && space != std::string::npos)
      sum += std::stod(line.substr(space + 1));
  }
  return sum;
}

std::string etcd_server::log() const {
  return member_->log();
}

// -- etcd_cluster -------------------------------------------------------------

etcd_cluster::etcd_cluster() : dir_("networkd-etcd-cluster") {
  std::vector<uint16_t> client_ports;
  std::vector<uint16_t> peer_ports;
  std::string initial;
  for (size_t i = 0; i < size; ++i) {
    client_ports.push_back(free_port());
    peer_ports.push_back(free_port());
    if (!initial.empty())
      initial += ",";
    initial += "m" + std::to_string(i) + "=" + url(peer_ports.back());
  }
  for (size_t i = 0; i < size; ++i) {
    auto name = "m" + std::to_string(i);
    members_.push_back(std::make_unique<etcd_member>(
      name, dir_.file(name), client_ports[i], peer_ports[i], initial));
  }
  // All members must run before any of them can elect a leader.
  for (auto& m : members_)
    m->launch();
  for (auto& m : members_)
    if (!m->wait_healthy())
      throw std::runtime_error("etcd cluster did not come up:\n" + m->log());
}

etcd_cluster::~etcd_cluster() {
  members_.clear();
}

std::vector<std::string> etcd_cluster::endpoints() const {
  std::vector<std::string> out;
  for (auto& m : members_)
    out.push_back(m->endpoint());
  return out;
}

std::string etcd_cluster::endpoint_list() const {
  std::string out;
  for (auto& m : members_) {
    if (!out.empty())
      out += ",";
    out += m->endpoint();
  }
  return out;
}

std::string etcd_cluster::endpoint(size_t i) const {
  return members_.at(i)->endpoint();
}

size_t etcd_cluster::index_of(const std::string& endpoint) const {
  for (size_t i = 0; i < members_.size(); ++i)
    if (members_[i]->endpoint() == endpoint)
      return i;
  return size;
}

void etcd_cluster::stop(size_t i) {
  members_.at(i)->kill();
}

void etcd_cluster::start(size_t i) {
  auto& m = *members_.at(i);
  m.launch();
  if (!m.wait_healthy())
    throw std::runtime_error("etcd member did not come back:\n" + m.log());
}

bool etcd_cluster::running(size_t i) {
  return members_.at(i)->running();
}

int etcd_cluster::etcdctl(const std::string& args, std::string* out) const {
  return test::etcdctl(endpoint_list(), args, out);
}

} // namespace networkd::test

namespace networkd::test {

// -- watch_recorder -----------------------------------------------------------

etcd::watcher::batch_handler watch_recorder::handler() {
  return [this](etcd::watch_batch batch) {
    std::lock_guard<std::mutex> guard{mtx_};
    for (auto& ev : batch.events) {
      if (ev.what == etcd::watch_event::kind::put)
        state_[ev.kv.key] = ev.kv.value;
      else
        state_.erase(ev.kv.key);
    }
    batches_.push_back(std::move(batch));
  };
}

std::vector<etcd::watch_batch> watch_recorder::batches() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return batches_;
}

size_t watch_recorder::batch_count() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return batches_.size();
}

std::map<std::string, std::string> watch_recorder::state() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return state_;
}

int64_t watch_recorder::revision() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return batches_.empty() ? 0 : batches_.back().revision;
}

size_t watch_recorder::times_delivered(const std::string& key,
                                       int64_t mod_revision) const {
  std::lock_guard<std::mutex> guard{mtx_};
  size_t n = 0;
  for (auto& b : batches_)
    for (auto& ev : b.events)
      if (ev.kv.key == key && ev.kv.mod_revision == mod_revision)
        ++n;
  return n;
}

std::string watch_recorder::check() const {
  std::lock_guard<std::mutex> guard{mtx_};
  std::map<std::pair<std::string, int64_t>, int> seen;
  int64_t last = 0;
  for (size_t i = 0; i < batches_.size(); ++i) {
    auto& b = batches_[i];
    auto where = "batch " + std::to_string(i) + " (revision "
                 + std::to_string(b.revision) + ")";
    if (i > 0 && b.revision <= last)
      return where + ": revision does not grow past " + std::to_string(last);
    if (i == 0 && !b.snapshot)
      return where + ": the first batch is not a snapshot";
    int64_t in_batch = 0;
    for (auto& ev : b.events) {
      if (!b.snapshot) {
        if (ev.kv.mod_revision <= last || ev.kv.mod_revision < in_batch)
          return where + ": event for " + ev.kv.key + " at "
                 + std::to_string(ev.kv.mod_revision) + " out of order";
        in_batch = ev.kv.mod_revision;
      }
      if (ev.what == etcd::watch_event::kind::put
          && ++seen[{ev.kv.key, ev.kv.mod_revision}] > 1)
        return where + ": " + ev.kv.key + " at "
               + std::to_string(ev.kv.mod_revision) + " delivered twice";
    }
    last = b.revision;
  }
  return {};
}

std::map<std::string, std::string> store_state(etcd::client& c,
                                               const std::string& prefix) {
  etcd::range_options opts;
  opts.prefix = true;
  auto r = c.range(prefix, opts);
  if (!r)
    throw std::runtime_error("range failed: " + r.error().to_string());
  std::map<std::string, std::string> out;
  for (auto& kv : r->kvs)
    out[kv.key] = kv.value;
  return out;
}

} // namespace networkd::test
