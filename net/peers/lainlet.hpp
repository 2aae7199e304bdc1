// SPDX-License-Identifier: MIT
// lainlet client side without CAF: event-stream and containers parsers, a
// streaming client on its own thread, and the deployd pod-group parser.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "net/base/result.hpp"

namespace networkd::lainlet {

/// Default bound for one line, one event and one JSON payload (bytes).
constexpr size_t default_max_size = 4 * 1024 * 1024;

// -- event stream -------------------------------------------------------------

enum class event_kind : uint8_t {
  init,
  update,
  erase, ///< `event: delete`
  error,
  heartbeat,
  unknown, ///< any other name, or no `event:` line at all
};

const char* to_string(event_kind k);
event_kind event_kind_from(std::string_view name);

/// One complete event of lainlet's stream (see reference/lainlet.md).
struct event {
  uint64_t id = 0;
  event_kind kind = event_kind::unknown;
  std::string name; ///< the `event:` value as sent
  std::string data; ///< `data:` lines joined with '\n' (lainlet sends one)
};

/// What one feed() produced: complete events, and why input was dropped.
struct feed_result {
  std::vector<event> events;
  std::vector<std::string> errors;
};

/// Incremental parser of the event stream. Bytes may be split anywhere;
/// lines end in "\n" or "\r\n"; an empty line ends an event. A line that is
/// no `id:`, `event:` or `data:` field (nor a ':' comment) is garbage: it is
/// skipped and counted, the event around it is kept. A line longer than
/// max_line, or an event whose fields add up to more than max_event, is
/// discarded up to its end (never buffered) and the whole event it belongs
/// to is dropped with an error, so a truncated payload is never delivered.
/// The status and framing of an HTTP/1.x reply.
struct response_head {
  int status = 0;
  std::string reason;
  bool chunked = false;
  std::optional<uint64_t> content_length;
};

/// Parses "HTTP/1.x NNN reason" and the header lines, without the blank
/// line that ends them (the caller reads at most 64 KiB of head). Fails on
/// a bad status or header line, a bad content-length or a transfer-encoding
/// other than chunked or identity.
result<response_head> parse_head(std::string_view head);

class stream_parser {
public:
  explicit stream_parser(size_t max_line = default_max_size,
                         size_t max_event = default_max_size);

  feed_result feed(std::string_view bytes);
  /// Appends to `out` instead of returning a fresh result.
  void feed(std::string_view bytes, feed_result& out);
  /// Forgets any partial line or event (a new connection).
  void reset();

  uint64_t events() const { return events_; }
  uint64_t garbage_lines() const { return garbage_lines_; }
  uint64_t dropped_events() const { return dropped_events_; }

private:
  void on_line(std::string_view line, feed_result& out);
  void dispatch(feed_result& out);
  void poison(std::string why, feed_result& out);

  size_t max_line_;
  size_t max_event_;
  std::string line_;        // partial line
  bool discarding_ = false; // skipping the rest of an overlong line
  event cur_;
  bool cur_started_ = false;
  bool cur_has_data_ = false;
  bool cur_poisoned_ = false;
  size_t cur_size_ = 0;
  uint64_t events_ = 0;
  uint64_t garbage_lines_ = 0;
  uint64_t dropped_events_ = 0;
};

/// Incremental decoder of `Transfer-Encoding: chunked`. Bytes may be split
/// anywhere. After the last (zero-size) chunk, done() is true and further
/// bytes are ignored; malformed framing sets failed().
class chunked_decoder {
public:
  /// Appends decoded body bytes to `out`; returns false once failed().
  bool feed(std::string_view bytes, std::string& out);
  bool done() const { return state_ == state::done; }
  bool failed() const { return state_ == state::failed; }
  const std::string& error() const { return error_; }

private:
  enum class state {
    size,
    ext,
    size_lf,
    data,
    data_cr,
    data_lf,
    trailer,
    done,
    failed
  };
  state state_ = state::size;
  uint64_t remaining_ = 0;
  int size_digits_ = 0;
  size_t trailer_line_ = 0;
  std::string error_;
};

// -- containers data ----------------------------------------------------------

/// One container on a node, validated. `proc` is the last dot-separated part
/// of the `proc` field (which may be a pod name such as "app.web.main"); the
/// field as sent is kept in `pod`.
struct container {
  std::string app;
  std::string proc;
  uint32_t instance = 0;
  std::string ip;
  uint16_t port = 0; ///< 0: the container exposes no port
  std::string container_id;
  std::string node;    ///< nodename
  std::string node_ip; ///< nodeip
  std::string app_version;
  std::string pod;

  friend bool operator==(const container& a, const container& b);
  friend bool operator!=(const container& a, const container& b) {
    return !(a == b);
  }
  /// Order of the sorted output: app, proc, instance, container_id.
  friend bool operator<(const container& a, const container& b);
};

/// An entry that was skipped: its key (lainlet's "NODE/ID" or an etcd key),
/// the container id when known, and why.
struct entry_error {
  std::string key;
  std::string container_id;
  std::string reason;
  friend bool operator==(const entry_error& a, const entry_error& b) {
    return a.key == b.key && a.container_id == b.container_id
           && a.reason == b.reason;
  }
};

/// A sorted, de-duplicated set of containers plus the entries skipped.
struct containers_result {
  std::vector<container> containers;
  std::vector<entry_error> errors;
  size_t other_nodes = 0; ///< valid entries dropped by the node filter
};

/// Parses lainlet's /v2/containers data: a JSON object mapping
/// "NODE/CONTAINER_ID" to {app, app_version, proc, nodename, nodeip, ip,
/// port, instanceNo}. Rules:
/// - the key is NODE/ID with both parts non-empty; NODE must be the entry's
///   nodename or nodeip;
/// - app, proc, nodename: non-empty strings; the last dot part of proc must
///   be non-empty; app_version: a string, may be empty or missing;
/// - nodeip and ip: dotted-quad IPv4 (a container without an IP, as deployd
///   records while a pod has lost it, is an error: it cannot be served);
/// - port: a JSON integer 0..65535 (0 = no exposed port, as deployd stores
///   for a proc without `expose`); instanceNo: a JSON integer >= 0;
/// - the same container under the node name and the node IP is counted
///   once; two differing entries for one id keep the first key in sorted
///   order and report the other.
/// When `node` is not empty only entries whose nodename or nodeip equals it
/// are kept (the others are counted in other_nodes, not errors). Fails
/// ("bad_json") when the text is not JSON or not an object, or ("too_large")
/// when bigger than max_size: then nothing is returned.
result<containers_result> parse_containers(std::string_view json,
                                           std::string_view node = {},
                                           size_t max_size = default_max_size);

// -- deployd pod groups in etcd -----------------------------------------------

/// Where deployd keeps its pod groups: one key per group,
/// `/lain/deployd/pod_groups/{namespace}/{name}` (engine/podgroup.go,
/// engine/specs.go: kLainDeploydRootKey + kLainPodGroupKey), whose value is
/// encoding/json of engine.PodGroupWithSpec (storage/etcd/store.go). Go's
/// default field names, no json tags; embedded structs are flattened:
///
///   {"Spec": {"Name": "app.web.main", "Namespace": "app", "Version": 3,
///             "Pod": {"Containers": [{"Env": ["LAIN_APP_RELEASE_VERSION=v",
///                                             ...], ...}], ...},
///             "NumInstances": 2, "RestartPolicy": 0, ...},
///    "PrevState": [...],
///    "Pods": [{"InstanceNo": 1, "State": 2, "Healthst": 2, ...,
///              "Containers": [{"Id": "abc...", "NodeName": "node1",
///                              "NodeIp": "10.0.0.1",
///                              "ContainerIp": "172.20.0.5",
///                              "NodePort": 0, "ContainerPort": 80,
///                              "Protocol": "tcp", "Runtime": {...}}]}],
///    "State": 2, "LastError": "", ...}
///
/// lainlet's container watcher (laincloud/lainlet watcher/container/
/// container.go) turns every container of every pod into one containers
/// entry: app = Spec.Namespace, proc = Spec.Name, app_version = the value of
/// LAIN_APP_RELEASE_VERSION in the first container spec's Env, nodename =
/// NodeName, nodeip = NodeIp, ip = ContainerIp, port = ContainerPort,
/// instanceNo = InstanceNo; pod run state is not looked at. This parser does
/// the same and then applies the parse_containers rules (validation, node
/// filter, de-duplication); errors carry the etcd key. Field names are
/// matched exactly (deployd writes them so; Go would also accept other
/// cases). Note: deployd and lainlet use the etcd v2 keys API; this source
/// sees the groups only where they live in the v3 keyspace.
constexpr std::string_view pod_groups_prefix = "/lain/deployd/pod_groups/";

/// Parses the (key, value) pairs read under pod_groups_prefix. A value that
/// is not a pod group (bad JSON, wrong shape) is one error for its key; a
/// bad container inside a good group is one error for that container.
containers_result
parse_pod_groups(const std::vector<std::pair<std::string, std::string>>& kvs,
                 std::string_view node = {},
                 size_t max_value_size = default_max_size);

// -- client -------------------------------------------------------------------

struct client_options {
  /// lainlet's address, "host:port" (an "http://" prefix is accepted).
  std::string endpoint;
  /// This node's name, sent as ?nodename= and used as the node filter.
  std::string nodename;
  /// Heartbeat interval asked from lainlet; 0: none (no dead detection).
  std::chrono::seconds heartbeat{5};
  /// A stream without any event (heartbeats included) for this many
  /// heartbeat intervals is dead and reopened.
  unsigned dead_after = 3;
  /// Reconnect delay: doubles from backoff_initial up to backoff_max; each
  /// wait is drawn uniformly from [delay/2, delay] (jitter).
  std::chrono::milliseconds backoff_initial{100};
  std::chrono::milliseconds backoff_max{10000};
  std::chrono::milliseconds connect_timeout{2000};
  /// Keep only containers whose nodename/nodeip is `nodename` (lainlet
  /// filters already; this guards against a misconfigured one).
  bool filter_node = true;
  size_t max_size = default_max_size;
};

enum class client_state : uint8_t {
  connecting,   ///< before the first connection attempt completes
  connected,    ///< TCP up, request sent, waiting for the reply headers
  streaming,    ///< 200 received, events flowing
  disconnected, ///< connection lost or refused; retrying after a backoff
  error,        ///< lainlet answered with an error (status or event)
};

const char* to_string(client_state s);

struct client_counters {
  uint64_t connects = 0;    ///< TCP connections established
  uint64_t streams = 0;     ///< 200 replies (streams opened)
  uint64_t disconnects = 0; ///< streams/connections lost or closed
  uint64_t events = 0;      ///< events received (heartbeats included)
  uint64_t heartbeats = 0;
  uint64_t updates = 0;   ///< on_containers calls
  uint64_t unchanged = 0; ///< data events equal to the current set
  uint64_t error_events = 0;
  uint64_t bad_events = 0;  ///< data not JSON / not an object / too big
  uint64_t bad_entries = 0; ///< entries skipped (sum over data events)
  uint64_t garbage_lines = 0;
  uint64_t dropped_events = 0; ///< overlong lines/events dropped
  uint64_t dead_streams = 0;   ///< streams closed for lack of events
  uint64_t http_errors = 0;    ///< non-200 replies, bad headers or framing
};

struct client_status {
  client_state state = client_state::connecting;
  std::string message; ///< why, for disconnected/error
  client_counters counters;
  uint64_t last_event_id = 0;
  bool have_set = false; ///< a first init/update has been applied
  std::vector<entry_error> entry_errors; ///< of the last data event
};

/// Called with the whole validated set and the id of the event that carried
/// it, only when the set differs from the last one reported (the first
/// successfully parsed init is always reported, even when empty).
using containers_handler
  = std::function<void(const std::vector<container>&, uint64_t event_id)>;
/// Called on every state change and with fresh counters.
using state_handler = std::function<void(const client_status&)>;

/// Watches GET /v2/containers?nodename=NAME&watch=1&heartbeat=N on its own
/// thread and reports through the handlers (called on that thread; keep
/// them short). The last known set is kept across disconnects, restarts of
/// lainlet and bad input: only an init/update/delete carrying a valid JSON
/// object changes it. Bad entries are skipped; when a skipped entry names a
/// container of the current set, its last good version is kept. An `error`
/// event closes the stream and the client reconnects after a backoff.
/// Construction starts the thread; destruction stops it promptly (a wake-up
/// pipe interrupts any wait) and joins.
class client {
public:
  client(client_options opts, containers_handler on_containers,
         state_handler on_state = {});
  ~client();
  client(const client&) = delete;
  client& operator=(const client&) = delete;

  /// A copy of the current status (thread-safe).
  client_status status() const;
  /// A copy of the last reported set (thread-safe).
  std::vector<container> containers() const;

  struct impl;

private:
  std::unique_ptr<impl> impl_;
};

/// Plain (non-watch) GET of lainlet `target` (e.g. "/version"): the body of
/// a 200 reply, or a failure ("unavailable", "timeout", "http_status" with
/// the status and body in the message).
result<std::string> get(const std::string& endpoint, const std::string& target,
                        std::chrono::milliseconds timeout
                        = std::chrono::milliseconds{2000});

/// Plain GET of /v2/containers?nodename=NAME, parsed and node-filtered.
result<containers_result> get_containers(const std::string& endpoint,
                                         const std::string& nodename,
                                         std::chrono::milliseconds timeout
                                         = std::chrono::milliseconds{2000});

/// "/v2/containers?nodename=NAME&watch=1&heartbeat=N" with NAME
/// percent-encoded; heartbeat omitted when 0, watch omitted when false.
std::string containers_target(std::string_view nodename, bool watch,
                              std::chrono::seconds heartbeat);

} // namespace networkd::lainlet
