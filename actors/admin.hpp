// SPDX-License-Identifier: MIT
// Admin HTTP endpoint (cpp-httplib on its own threads): health, readiness,
// the JSON state of every actor, Prometheus metrics. Handlers ask actors
// with a blocking request from a scoped actor; nothing blocks the scheduler.
#pragma once

#include <caf/fwd.hpp>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "actors/interfaces.hpp"
#include "net/result.hpp"

namespace httplib {
class Server;
}

namespace networkd {

class admin_server {
public:
  /// Extra text for /metrics (e.g. the DNS counters), called per scrape.
  using metrics_source = std::function<std::string()>;
  /// A plain-text route (e.g. /v1/dns/config).
  struct text_route {
    std::string path;
    std::function<std::string()> body;
  };

  admin_server(caf::actor_system& sys, supervisor_actor sup);
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

private:
  std::string state_json();
  caf::actor_system& sys_;
  supervisor_actor sup_;
  std::vector<status_client_actor> actors_;
  std::vector<metrics_source> metrics_;
  std::vector<text_route> routes_;
  std::vector<std::pair<std::string, status_client_actor>> actor_routes_;
  std::unique_ptr<httplib::Server> http_;
  std::thread thread_;
};

} // namespace networkd
