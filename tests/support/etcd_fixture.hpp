// SPDX-License-Identifier: MIT
// Real etcd servers for tests: one member, or a three-member cluster, on
// free loopback ports in a temp dir; always killed and removed.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "net/etcd/etcd.hpp"
#include "tests/support/util.hpp"

namespace networkd::test {

/// TLS on etcd's client port.
struct etcd_tls {
  std::string cert_file; ///< server certificate (PEM)
  std::string key_file;  ///< its key
  std::string ca_file;   ///< the CA that signed it (etcdctl checks with it)
  /// When set, clients must present a certificate signed by this CA.
  std::string client_ca_file;
};

/// One etcd member's command line and process; used by both fixtures.
class etcd_member {
public:
  etcd_member(std::string name, std::string dir, uint16_t client_port,
              uint16_t peer_port, std::string initial_cluster,
              std::vector<std::string> extra_args = {}, etcd_tls tls = {});
  ~etcd_member();
  etcd_member(const etcd_member&) = delete;
  etcd_member& operator=(const etcd_member&) = delete;

  /// Starts the process (no-op when running); does not wait.
  void launch();
  /// Waits until the member serves clients.
  bool wait_healthy(std::chrono::milliseconds deadline = 15s);
  /// SIGKILL: acknowledged writes are in the WAL already.
  void kill();
  /// SIGSTOP / SIGCONT: a stalled member (connections stay open, nothing
  /// is answered).
  void pause();
  void resume();
  bool running();
  std::string endpoint() const;
  /// What etcdctl needs to reach the member: endpoint and TLS flags.
  std::string etcdctl_target() const;
  std::string log() const;

private:
  std::string name_;
  std::string dir_;
  uint16_t client_port_;
  uint16_t peer_port_;
  std::string initial_cluster_;
  std::vector<std::string> extra_args_;
  etcd_tls tls_;
  std::unique_ptr<process> proc_;
};

/// Runs `etcdctl --endpoints=<endpoints> <args>`; returns the exit code and
/// puts stdout and stderr into *out when given.
int etcdctl(const std::string& endpoints, const std::string& args,
            std::string* out = nullptr);

/// A single-member etcd, started by the constructor (throws when it does not
/// come up within 15 s). extra_args go to etcd's command line.
class etcd_server {
public:
  explicit etcd_server(std::vector<std::string> extra_args = {});
  /// Serves clients over TLS (https) with the given files.
  etcd_server(std::vector<std::string> extra_args, etcd_tls tls);
  ~etcd_server();
  etcd_server(const etcd_server&) = delete;
  etcd_server& operator=(const etcd_server&) = delete;

  /// "127.0.0.1:PORT"
  std::string endpoint() const;
  /// Kills the process; ports and data stay.
  void stop();
  /// Restarts on the same ports and data dir and waits until it serves.
  void start();
  /// Stalls the server (SIGSTOP) / lets it go on (SIGCONT).
  void pause();
  void resume();
  bool running();
  /// Runs etcdctl against the server (as root once auth is on).
  int etcdctl(const std::string& args, std::string* out = nullptr) const;
  std::string log() const;

  /// Turns auth on with user root (password root_password); etcdctl() logs
  /// in as root from then on. Throws when etcdctl fails.
  void enable_auth(const std::string& root_password);
  /// Adds `user` with a role of the same name that may read every key
  /// under read_prefix and read and write every key under write_prefix.
  /// Throws when etcdctl fails.
  void add_user(const std::string& user, const std::string& password,
                const std::string& read_prefix,
                const std::string& write_prefix);
  /// The sum of the values of etcd's Prometheus metric lines (from its
  /// /metrics endpoint, plain http only) that start with `name` and contain
  /// every one of `labels`; -1 when the endpoint cannot be read.
  double metric(const std::string& name,
                const std::vector<std::string>& labels = {}) const;

private:
  temp_dir dir_;
  std::unique_ptr<etcd_member> member_;
  std::string ctl_auth_; ///< "--user=root:..." once auth is on
};

/// A three-member etcd cluster on loopback.
class etcd_cluster {
public:
  static constexpr size_t size = 3;

  etcd_cluster();
  ~etcd_cluster();
  etcd_cluster(const etcd_cluster&) = delete;
  etcd_cluster& operator=(const etcd_cluster&) = delete;

  std::vector<std::string> endpoints() const;
  /// The endpoints joined with commas, for etcdctl and the client flag.
  std::string endpoint_list() const;
  std::string endpoint(size_t i) const;
  /// Index of the member serving "127.0.0.1:PORT"; size when unknown.
  size_t index_of(const std::string& endpoint) const;
  void stop(size_t i);
  /// Restarts member i and waits until it is healthy again.
  void start(size_t i);
  bool running(size_t i);
  int etcdctl(const std::string& args, std::string* out = nullptr) const;

private:
  temp_dir dir_;
  std::vector<std::unique_ptr<etcd_member>> members_;
};

/// Collects what an etcd::watcher delivers and checks it.
class watch_recorder {
public:
  /// The batch handler to give the watcher; *this must outlive it.
  etcd::watcher::batch_handler handler();

  std::vector<etcd::watch_batch> batches() const;
  size_t batch_count() const;
  /// Key -> value after applying every batch in order.
  std::map<std::string, std::string> state() const;
  /// Revision of the last batch (0 before the first).
  int64_t revision() const;
  /// How many times (key, mod_revision) was delivered as an event.
  size_t times_delivered(const std::string& key, int64_t mod_revision) const;
  /// Empty when nothing was delivered twice and batch revisions only grow;
  /// otherwise what is wrong.
  std::string check() const;

private:
  mutable std::mutex mtx_;
  std::vector<etcd::watch_batch> batches_;
  std::map<std::string, std::string> state_;
};

/// Key -> value of everything under prefix, read with c.
std::map<std::string, std::string> store_state(etcd::client& c,
                                               const std::string& prefix);

} // namespace networkd::test
