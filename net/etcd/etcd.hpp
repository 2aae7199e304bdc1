// SPDX-License-Identifier: MIT
// etcd v3 client over gRPC (code generated from proto/). Blocking calls, safe
// to use from several threads; call them from detached actors or own threads,
// never from a CAF scheduler worker. Every unary call has a deadline.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "net/base/result.hpp"

namespace networkd::etcd {

/// How to reach the cluster.
struct client_config {
  /// Members, tried in order; on failure the client moves to the next one.
  /// Accepts "http://host:port", "https://host:port" and "host:port".
  std::vector<std::string> endpoints;
  std::string ca_file;   ///< PEM CA bundle; enables TLS when set
  std::string cert_file; ///< client certificate (PEM), optional
  std::string key_file;  ///< client key (PEM), optional
  std::string user;      ///< etcd auth user; empty: no auth
  std::string password;
  std::chrono::milliseconds call_timeout{2000};
  std::chrono::milliseconds dial_timeout{1000};
};

/// Splits the original's "-etcd.endpoint" value ("http://a:2379,b:2379").
/// Fails on an empty list or an entry without a port.
result<std::vector<std::string>> parse_endpoints(const std::string& text);

struct key_value {
  std::string key;
  std::string value;
  int64_t create_revision = 0;
  int64_t mod_revision = 0;
  int64_t version = 0;
  int64_t lease = 0;
};

struct range_options {
  bool prefix = false;  ///< every key starting with the given key
  int64_t revision = 0; ///< 0: latest
  bool keys_only = false;
  int64_t limit = 0; ///< 0: no limit
};

struct range_result {
  int64_t revision = 0; ///< store revision the read saw
  std::vector<key_value> kvs;
  bool more = false;
  int64_t count = 0;
};

struct put_result {
  int64_t revision = 0;
  std::optional<key_value> prev; ///< only when asked for
};

struct delete_result {
  int64_t revision = 0;
  int64_t deleted = 0;
};

/// One comparison of a transaction.
struct compare {
  enum class target { value, create_revision, mod_revision, version, lease };
  enum class op { equal, not_equal, greater, less };
  std::string key;
  target what = target::value;
  op how = op::equal;
  std::string value;  ///< for target::value
  int64_t number = 0; ///< for the revision / version / lease targets
};

/// One operation of a transaction branch.
struct txn_op {
  enum class kind { put, erase, range };
  kind what = kind::range;
  std::string key;
  std::string value;   ///< put only
  int64_t lease = 0;   ///< put only
  bool prefix = false; ///< erase / range
};

struct txn_request {
  std::vector<compare> compares;
  std::vector<txn_op> success;
  std::vector<txn_op> failure;
};

struct txn_result {
  bool succeeded = false;
  int64_t revision = 0;
  /// For each range op of the branch that ran, in order: what it read.
  std::vector<std::vector<key_value>> ranges;
};

struct lease_grant_result {
  int64_t id = 0;
  int64_t ttl = 0; ///< seconds, as granted by the server
};

struct lease_keepalive_result {
  int64_t ttl = 0; ///< seconds; 0 means the lease is gone
  /// Monotonic time at which the request was sent: the lease lives on the
  /// server at least until sent_at + ttl.
  std::chrono::steady_clock::time_point sent_at;
};

struct lease_ttl_result {
  int64_t ttl = -1; ///< remaining seconds; -1: lease not found
  int64_t granted_ttl = 0;
  std::vector<std::string> keys;
};

struct status_result {
  std::string endpoint; ///< the member that answered
  std::string version;
  int64_t db_size = 0;
  uint64_t leader = 0;
  uint64_t member_id = 0;
  int64_t raft_term = 0;
  int64_t revision = 0;
};

/// What the client did with its auth session, for tests and the admin state.
struct client_stats {
  uint64_t logins = 0;          ///< Authenticate requests sent
  uint64_t login_failures = 0;  ///< of which etcd refused (bad user/password)
  uint64_t logins_deferred = 0; ///< calls refused at once by the login backoff
};

// -- session policy: pure functions, time passed in ---------------------------

/// Longest pause between two logins after failed ones.
constexpr std::chrono::milliseconds max_login_backoff{30000};

/// Pause before the next login after `failures` refused ones in a row: none
/// for 0, then 1 s, 2 s, 4 s, ... up to max_login_backoff, each plus up to a
/// fifth more (jitter in [0, 1) picks how much) so that nodes spread out.
std::chrono::milliseconds login_backoff(unsigned failures, double jitter);

/// Refused logins in a row and when the next one may be sent.
struct login_gate {
  unsigned failures = 0;
  std::chrono::steady_clock::time_point next_try{};
  std::string last_error; ///< why the last login was refused

  /// May a login be sent at `now`?
  bool open(std::chrono::steady_clock::time_point now) const {
    return failures == 0 || now >= next_try;
  }
  /// A login was refused at `now`.
  void refused(std::chrono::steady_clock::time_point now, double jitter,
               std::string reason) {
    ++failures;
    next_try = now + login_backoff(failures, jitter);
    last_error = std::move(reason);
  }
  void succeeded() { *this = login_gate{}; }
};

/// Whether a refused call or a canceled watch (its status message or cancel
/// reason) says the auth token is no longer good, so that a new login may
/// help: invalid or expired token, old auth revision, no token, unknown
/// user. Not "permission denied": that is the role, a new token won't change
/// it.
bool is_token_reason(const std::string& message);

/// A failed connection to a member is looked into (TCP connect and TLS
/// handshake) at most this often.
constexpr std::chrono::milliseconds probe_interval{5000};

/// Failure codes used in networkd::failure::code by this client:
/// "unavailable" (no member reachable), "timeout" (deadline passed),
/// "compacted" (asked revision was compacted), "auth", "invalid" (bad
/// argument), "not_found" (lease), "internal".
class client {
public:
  explicit client(client_config cfg);
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  result<range_result> range(const std::string& key, range_options opts = {});
  result<put_result> put(const std::string& key, const std::string& value,
                         int64_t lease = 0, bool prev_kv = false);
  result<delete_result> erase(const std::string& key, bool prefix = false);
  result<txn_result> txn(const txn_request& req);
  /// Runs independent txns in one round trip, as the nested txns of one
  /// outer txn (etcd >= 3.3): each keeps its own compares and branches, all
  /// commit at one revision (every result's `revision`) or none does. At
  /// most max_nested_txns, each with one op per branch and no key written
  /// by two of them (etcd refuses both).
  result<std::vector<txn_result>> txns(const std::vector<txn_request>& reqs);
  static constexpr size_t max_nested_txns = 64;
  result<lease_grant_result> lease_grant(int64_t ttl_seconds);
  result<unit> lease_revoke(int64_t id);
  /// One keep-alive round trip over the LeaseKeepAlive stream.
  result<lease_keepalive_result> lease_keepalive(int64_t id);
  result<lease_ttl_result> lease_time_to_live(int64_t id, bool keys = false);
  /// Maintenance Status of the member currently in use.
  result<status_result> status();
  /// The member currently in use ("host:port").
  std::string current_endpoint() const;
  /// Compacts the store up to rev (tests use it to force watch resyncs).
  result<unit> compact(int64_t revision);
  /// Login counters.
  client_stats stats() const;

  struct impl;
  impl& internals() { return *impl_; }

private:
  std::unique_ptr<impl> impl_;
};

/// An event as the watcher delivers it.
struct watch_event {
  enum class kind { put, erase };
  kind what = kind::put;
  key_value kv;                  ///< for erase: key and mod_revision only
  std::optional<key_value> prev; ///< previous value when known
};

/// A batch of events at one revision, or the difference after a resync.
struct watch_batch {
  int64_t revision = 0;
  /// true for the first batch (the whole prefix, as puts) and for a resync
  /// after compaction (the difference between what was delivered and now).
  bool snapshot = false;
  std::vector<watch_event> events;
};

/// What the watcher is doing, for the admin state and logs.
struct watch_status {
  enum class phase { connecting, syncing, watching, retrying };
  phase state = phase::connecting;
  int64_t revision = 0; ///< last revision delivered
  std::string last_error;
  uint64_t reconnects = 0;
  uint64_t resyncs = 0;
};

/// "connecting", "syncing", "watching", "retrying": the names the admin
/// API and the logs show.
const char* to_string(watch_status::phase p);

/// Watches one key prefix on its own thread and delivers every change exactly
/// once, in order: first the whole prefix (a snapshot batch), then events.
/// On a broken stream or a member going away it resumes from the last
/// delivered revision + 1 on the next member; when that revision is compacted
/// it reads the prefix again and delivers the difference (snapshot = true).
/// Callbacks run on the watcher's thread; keep them short (anon_send).
class watcher {
public:
  using batch_handler = std::function<void(watch_batch)>;
  using status_handler = std::function<void(const watch_status&)>;

  watcher(client& c, std::string prefix, batch_handler on_batch,
          status_handler on_status = {});
  /// Stops the thread (joins it); no callback runs after this returns.
  ~watcher();
  watcher(const watcher&) = delete;
  watcher& operator=(const watcher&) = delete;

  const std::string& prefix() const;
  watch_status status() const;
  /// Reads the whole prefix again (what was deleted meanwhile is delivered
  /// as deletes, counted in resyncs) and watches on from there.
  void resync();

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

} // namespace networkd::etcd
