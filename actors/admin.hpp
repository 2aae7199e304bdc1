// SPDX-License-Identifier: MIT
// Admin HTTP endpoint: health, readiness, the JSON state of every actor,
// Prometheus metrics. A small HTTP/1.1 server of our own: one poll() loop
// reads and writes every connection (never blocking on one client) under
// written limits; handlers that ask actors run on two worker threads with
// a blocking request from a scoped actor, so nothing blocks the scheduler.
#pragma once

#include <caf/fwd.hpp>

#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "actors/interfaces.hpp"
#include "actors/metrics.hpp"
#include "net/base/result.hpp"
#include "net/peers/http_request.hpp"

namespace networkd {

class admin_http;

/// Limits of the admin HTTP server. Past one, the request is answered
/// (414, 431, 413, 408 or 503, counted in /metrics) and the connection
/// closed. Requests never have a body.
struct admin_limits {
  /// Connections open at once. A newcomer past it displaces the oldest
  /// connection that is still sending its request; when every connection
  /// is being answered, the newcomer gets 503.
  size_t max_connections = 16;
  /// Request line and header limits (414, 431 past them).
  http::head_limits head;
  /// Time to send a whole request, counted from the connection's accept
  /// or the end of its previous response: 408 past it (an idle connection
  /// is closed without a word).
  std::chrono::milliseconds request_timeout{5000};
  /// Time the client has to read a response before it is dropped.
  std::chrono::milliseconds response_timeout{5000};
};

/// A request as a route sees it.
struct admin_request {
  /// The decoded path ("/v1/vips/10.0.0.5").
  std::string path;
  /// For a prefix route: what follows its prefix ("10.0.0.5").
  std::string rest;
  /// The decoded query parameters (at most http::max_query_params).
  http::query_params params;
  /// The first value of parameter `name`, or `fallback`.
  std::string param(const std::string& name,
                    const std::string& fallback = {}) const;
  bool has(const std::string& name) const;
};

/// What a route answers.
struct admin_reply {
  int status = 200;
  std::string type;
  std::string body;
};

/// A JSON error reply: {"error": message} with `status`.
admin_reply json_error(int status, const std::string& message);

/// The one VIP of a /v1/vips body whose key is the VIP key named `name`
/// (the part after /lain/config/vips/, e.g. "10.0.0.5" or "10.0.0.5:8080"):
/// 200 with the holder's JSON, or 404 with a JSON error (which says when
/// the key was rejected). Parsed iteratively (no recursion).
admin_reply vip_reply(const std::string& vips_json, const std::string& name);

/// The status page served at "/" (actors/status_page.html, embedded).
extern const char* const status_page_html;

/// What /v1/state says about this node besides its actors.
struct node_identity {
  std::string hostname;
  std::string address;
  std::string version = NETWORKD_VERSION;
};

class admin_server {
public:
  /// Extra text for /metrics (e.g. the DNS counters), called per scrape.
  using metrics_source = std::function<std::string()>;
  /// A plain-text route (e.g. /v1/dns/config), or of another type.
  struct text_route {
    std::string path;
    std::function<std::string()> body;
    std::string content_type = "text/plain";
  };

  admin_server(caf::actor_system& sys, supervisor_actor sup,
               admin_limits limits = {});
  ~admin_server();

  /// Adds an actor whose status appears in /v1/state.
  void add_actor(status_client_actor a);
  void add_metrics(metrics_source src);
  /// Samples read from an actor's status on each scrape (metrics.hpp).
  void add_status_metrics(status_client_actor a,
                          const std::vector<status_metric>& table);
  void add_route(text_route r);
  /// A JSON route answered by one actor's status (e.g. /v1/procs).
  void add_actor_route(std::string path, status_client_actor a);
  /// A route that reads the request (query parameters, the rest of the
  /// path), answered on a worker thread: GET `path` exactly, or with
  /// `prefix` (a path ending in '/') every path below it, most specific
  /// prefix first; an exact route wins over a prefix.
  using handler = std::function<admin_reply(const admin_request&)>;
  void add_handler(std::string path, handler h, bool prefix = false);
  /// Shown in /v1/state under "node" (and on the status page).
  void set_identity(node_identity id);
  /// The data plane's per-VIP counters, read per request of /v1/vips and
  /// /v1/vips/{ip}: each VIP gets a "traffic" array (vips_with_traffic).
  /// Not set (the iptables data plane): no "traffic".
  using traffic_source = std::function<std::vector<vip_port_traffic>()>;
  void set_vip_traffic(traffic_source src);

  /// Binds and starts serving; fails when the address cannot be bound.
  result<unit> start(const std::string& host, uint16_t port);
  void stop();
  /// The bound port (useful after start with port 0), 0 before start.
  uint16_t port() const;
  /// What /v1/state answers (asks every actor; blocks up to 3 s each).
  std::string state_json();

private:
  /// What /v1/vips answers (asks the supervisor; blocks up to 3 s).
  std::string vips_json();

  caf::actor_system& sys_;
  supervisor_actor sup_;
  admin_limits limits_;
  std::vector<status_client_actor> actors_;
  std::vector<metrics_source> metrics_;
  traffic_source traffic_;
  std::vector<text_route> routes_;
  std::vector<std::pair<std::string, status_client_actor>> actor_routes_;
  struct handler_route {
    std::string path;
    handler answer;
    bool prefix = false;
  };
  std::vector<handler_route> handlers_;
  node_identity identity_;
  std::unique_ptr<admin_http> http_;
};

} // namespace networkd
