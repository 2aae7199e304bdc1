// SPDX-License-Identifier: MIT
// Internals of the etcd client shared by etcd_client.cpp and etcd_watcher.cpp.
#pragma once

#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "net/etcd/etcd.hpp"
#include "rpc.grpc.pb.h"

namespace networkd::etcd {

using steady = std::chrono::steady_clock;

/// The end of the key range holding every key that starts with `key`.
std::string prefix_end(const std::string& key);

key_value to_key_value(const mvccpb::KeyValue& kv);

/// Lets another thread abort the gRPC call a worker thread is blocked in.
/// Once cancelled it stays cancelled: later calls are refused at once.
class cancel_slot {
public:
  /// Registers ctx as the running call; false when already cancelled.
  bool attach(grpc::ClientContext* ctx);
  void detach();
  void cancel();
  /// Cancels the running call only; later calls go ahead.
  void interrupt();
  bool cancelled() const;

private:
  mutable std::mutex mtx_;
  grpc::ClientContext* ctx_ = nullptr;
  bool cancelled_ = false;
};

/// Detaches the context from the slot when the call ends.
class slot_guard {
public:
  slot_guard(cancel_slot* slot, grpc::ClientContext* ctx);
  ~slot_guard();
  slot_guard(const slot_guard&) = delete;
  slot_guard& operator=(const slot_guard&) = delete;
  bool ok() const { return ok_; }

private:
  cancel_slot* slot_;
  bool ok_ = true;
};

struct member {
  std::string target; ///< "host:port"
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<etcdserverpb::KV::Stub> kv;
  std::unique_ptr<etcdserverpb::Watch::Stub> watch;
  std::unique_ptr<etcdserverpb::Lease::Stub> lease;
  std::unique_ptr<etcdserverpb::Maintenance::Stub> maintenance;
  std::unique_ptr<etcdserverpb::Auth::Stub> auth;
  // Guarded by client::impl's mutex.
  std::string reason; ///< why the last connect failed; empty when unknown
  steady::time_point probed_at{}; ///< last probe() start
};

/// Connects to target ("host:port") with TCP and, when `tls`, does one TLS
/// handshake with the given files checking the server as gRPC does (CA,
/// host name or IP). Returns why it failed ("certificate verify failed:
/// unable to get local issuer certificate", "connect: Connection refused"),
/// or empty when it worked. Blocks at most `timeout`.
std::string probe(const std::string& target, bool tls, const client_config& cfg,
                  std::chrono::milliseconds timeout);

struct keepalive_stream;

struct client::impl {
  explicit impl(client_config config);
  ~impl();

  client_config cfg;
  /// Set when the configuration is unusable; every call returns it.
  std::optional<failure> config_error;
  bool tls = false;
  std::vector<member> members;

  /// A unary call attempt: fills the response it captured and returns the
  /// gRPC status. Called once per tried member.
  using attempt_fn = std::function<grpc::Status(member&, grpc::ClientContext&)>;

  /// Runs one unary call with the client's deadline and member failover
  /// (see the comment at its definition). Returns the index of the member
  /// that answered.
  result<size_t> unary(const char* what, const attempt_fn& fn,
                       cancel_slot* slot = nullptr);

  /// Waits (until `deadline`) for a connected member, starting with the
  /// current one; the first pass skips members that are failing.
  std::optional<size_t> pick(steady::time_point deadline,
                             const std::function<bool()>& stop = {});

  /// Adds the deadline and the auth token to a call; returns the token.
  std::string prepare(grpc::ClientContext& ctx, steady::time_point deadline);
  /// Makes sure a token exists when auth is configured. Logins go one at a
  /// time; after refused ones they wait out login_backoff, and calls in the
  /// meantime fail at once with the last reason.
  result<unit> ensure_token(member& m, steady::time_point deadline);
  void drop_token(const std::string& token);
  std::string token() const;
  client_stats stats() const;

  /// "host:port not connected[: why]" for member idx.
  std::string not_connected(size_t idx) const;
  /// Why no member is reachable, for every member with a known reason.
  std::string unreachable() const;
  /// Logs a failure of `topic` when its reason changed since the last one
  /// logged (empty reason: it works again, logged at info when it was
  /// failing).
  void report(const std::string& topic, const std::string& reason);

  size_t current() const;
  /// The member failed: move on to the next one unless another thread
  /// already did.
  void mark_failed(size_t idx);
  void mark_ok(size_t idx);

  result<range_result> range(const std::string& key, const range_options& opts,
                             cancel_slot* slot);
  result<lease_keepalive_result> keepalive(int64_t id);

private:
  bool wait_ready(size_t idx, steady::time_point deadline, bool fail_fast,
                  const std::function<bool()>& stop);
  /// The member's channel failed to connect: probe() it (at most every
  /// probe_interval, within deadline) and remember and log the reason.
  void diagnose(size_t idx, steady::time_point deadline);
  void connected(size_t idx);

  mutable std::mutex mtx_;
  size_t current_ = 0;
  std::string token_;
  bool auth_disabled_logged_ = false;
  login_gate gate_;
  client_stats stats_;
  std::mt19937 rng_{std::random_device{}()};
  std::map<std::string, std::string> reported_; ///< topic -> last reason

  /// Held while a login runs, so that threads finding no token wait for
  /// one login instead of sending their own.
  std::timed_mutex login_mtx_;

  std::mutex keepalive_mtx_;
  std::unique_ptr<keepalive_stream> keepalive_;
};

/// Whether a failed call says the token is no longer good.
bool is_token_error(const grpc::Status& st);

/// Maps a failed gRPC status to the client's failure codes.
failure to_failure(const grpc::Status& st, const std::string& what,
                   const std::string& target);

} // namespace networkd::etcd
