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

class admin_server {
public:
  /// Extra text for /metrics (e.g. the DNS counters), called per scrape.
  using metrics_source = std::function<std::string()>;
  /// A plain-text route (e.g. /v1/dns/config).
  struct text_route {
    std::string path;
    std::function<std::string()> body;
  };

  admin_server(caf::actor_system& sys, supervisor_actor sup,
               admin_limits limits = {});
  ~admin_server();

  /// Adds an actor whose status appears in /v1/state.
  void add_actor(status_client_actor a);
  void add_metrics(metrics_source src);
  void add_route(text_route r);
  /// A JSON route answered by one actor's status (e.g. /v1/procs).
  void add_actor_route(std::string path, status_client_actor a);

  /// Binds and starts serving; fails when the address cannot be bound.
  result<unit> start(const std::string& host, uint16_t port);
  void stop();
  /// The bound port (useful after start with port 0), 0 before start.
  uint16_t port() const;
  /// What /v1/state answers (asks every actor; blocks up to 3 s each).
  std::string state_json();

private:
  caf::actor_system& sys_;
  supervisor_actor sup_;
  admin_limits limits_;
  std::vector<status_client_actor> actors_;
  std::vector<metrics_source> metrics_;
  std::vector<text_route> routes_;
  std::vector<std::pair<std::string, status_client_actor>> actor_routes_;
  std::unique_ptr<admin_http> http_;
};

} // namespace networkd
