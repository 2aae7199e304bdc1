// SPDX-License-Identifier: MIT
#include "actors/admin.hpp"

#include <caf/all.hpp>
#include <httplib.h>

#include "actors/json.hpp"
#include "net/log.hpp"

namespace networkd {

namespace {

constexpr auto ask_timeout = std::chrono::seconds(3);

template <class Handle>
std::string ask_status(caf::actor_system& sys, const Handle& h) {
  caf::scoped_actor self{sys};
  std::string out;
  self->request(h, ask_timeout, atom::status_v)
    .receive([&](std::string& s) { out = std::move(s); },
             [&](caf::error& err) {
               json_writer j;
               j.begin_object().kv("name", "unknown").kv("state",
                                                         "unreachable");
               j.kv("last_error", sys.render(err)).end_object();
               out = j.str();
             });
  return out;
}

} // namespace

admin_server::admin_server(caf::actor_system& sys, supervisor_actor sup)
  : sys_(sys), sup_(std::move(sup)), http_(std::make_unique<httplib::Server>()) {
  // cpp-httplib's default pool has max(8, cores - 1) threads; an admin
  // endpoint asked by a scraper and an operator needs two (a third request
  // waits in the pool's queue).
  http_->new_task_queue = [] { return new httplib::ThreadPool(2); };
}

admin_server::~admin_server() {
  stop();
}

void admin_server::add_actor(status_client_actor a) {
  actors_.push_back(std::move(a));
}

void admin_server::add_metrics(metrics_source src) {
  metrics_.push_back(std::move(src));
}

void admin_server::add_route(text_route r) {
  routes_.push_back(std::move(r));
}

void admin_server::add_actor_route(std::string path, status_client_actor a) {
  actor_routes_.emplace_back(std::move(path), std::move(a));
}

std::string admin_server::state_json() {
  json_writer j;
  j.begin_object();
  j.begin_array("actors");
  j.raw(ask_status(sys_, sup_));
  for (auto& a : actors_)
    j.raw(ask_status(sys_, a));
  j.end_array();
  j.end_object();
  return j.str();
}

result<unit> admin_server::start(const std::string& host, uint16_t port) {
  auto& srv = *http_;
  srv.Get("/healthz", [](const httplib::Request&, httplib::Response& res) {
    res.set_content("ok\n", "text/plain");
  });
  srv.Get("/readyz", [this](const httplib::Request&, httplib::Response& res) {
    caf::scoped_actor self{sys_};
    bool ready = false;
    self->request(sup_, ask_timeout, atom::ready_v)
      .receive([&](bool r) { ready = r; }, [&](caf::error&) {});
    res.status = ready ? 200 : 503;
    res.set_content(ready ? "ready\n" : "not ready: first etcd read pending\n",
                    "text/plain");
  });
  srv.Get("/v1/state", [this](const httplib::Request&, httplib::Response& res) {
    res.set_content(state_json() + "\n", "application/json");
  });
  srv.Get("/v1/vips", [this](const httplib::Request&, httplib::Response& res) {
    caf::scoped_actor self{sys_};
    std::string body = "{}";
    self->request(sup_, ask_timeout, atom::vips_v)
      .receive([&](std::string& s) { body = std::move(s); },
               [&](caf::error& err) {
                 json_writer j;
                 j.begin_object().kv("error", sys_.render(err)).end_object();
                 body = j.str();
               });
    res.set_content(body + "\n", "application/json");
  });
  srv.Get("/metrics", [this](const httplib::Request&, httplib::Response& res) {
    caf::scoped_actor self{sys_};
    std::string text = "# HELP networkd_up 1 while the daemon runs\n"
                       "# TYPE networkd_up gauge\nnetworkd_up 1\n";
    self->request(sup_, ask_timeout, atom::tick_v, atom::status_v)
      .receive([&](std::string& s) { text += s; }, [&](caf::error&) {});
    for (auto& m : metrics_)
      text += m();
    res.set_content(text, "text/plain; version=0.0.4");
  });
  for (auto& r : routes_) {
    auto body = r.body;
    srv.Get(r.path, [body](const httplib::Request&, httplib::Response& res) {
      res.set_content(body(), "text/plain");
    });
  }
  for (auto& [path, a] : actor_routes_) {
    auto who = a;
    srv.Get(path, [this, who](const httplib::Request&, httplib::Response& res) {
      res.set_content(ask_status(sys_, who) + "\n", "application/json");
    });
  }
  if (!srv.bind_to_port(host, port))
    return make_failure("bind", "admin: cannot listen on " + host + ":"
                                  + std::to_string(port));
  thread_ = std::thread([this] { http_->listen_after_bind(); });
  NWD_LOG_INFO("admin", "listening on http://{}:{}", host, port);
  return unit{};
}

void admin_server::stop() {
  if (http_)
    http_->stop();
  if (thread_.joinable())
    thread_.join();
}

} // namespace networkd
