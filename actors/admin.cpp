// SPDX-License-Identifier: MIT
#include "actors/admin.hpp"

#include <caf/all.hpp>

#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <string_view>
#include <thread>

#include <rapidjson/document.h>
#include <rapidjson/writer.h>

#include "actors/json.hpp"
#include "net/base/log.hpp"
#include "net/cluster/config.hpp"
#include "net/peers/http_request.hpp"

namespace networkd {

namespace {

using http::head_parser;
using http::refusal;
using http::refusal_names;
using http::refusal_status;

constexpr auto ask_timeout = std::chrono::seconds(3);
/// After an error reply: how long the rest of the request is read and
/// dropped before close (closing on unread bytes sends a reset that can
/// destroy the reply before the client reads it).
constexpr auto linger = std::chrono::seconds(1);
/// Bytes read per recv; the request buffer grows by at most this much past
/// a limit before the limit is noticed.
constexpr size_t read_chunk = 4096;
/// Connections accepted per loop turn.
constexpr int accept_batch = 64;

using clock_type = std::chrono::steady_clock;

template <class Handle>
std::string ask_status(caf::actor_system& sys, const Handle& h) {
  caf::scoped_actor self{sys};
  std::string out;
  self->request(h, ask_timeout, atom::status_v)
    .receive(
      [&](std::string& s) { out = std::move(s); },
      [&](caf::error& err) {
        json_writer j;
        j.begin_object().kv("name", "unknown").kv("state", "unreachable");
        j.kv("last_error", sys.render(err)).end_object();
        out = j.str();
      });
  return out;
}

const char* reason_phrase(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 408:
      return "Request Timeout";
    case 413:
      return "Payload Too Large";
    case 414:
      return "URI Too Long";
    case 431:
      return "Request Header Fields Too Large";
    case 500:
      return "Internal Server Error";
    case 503:
      return "Service Unavailable";
    default:
      return "Unknown";
  }
}

std::string render(const admin_reply& r, bool head, bool close,
                   std::chrono::milliseconds keep_alive) {
  std::string s = "HTTP/1.1 " + std::to_string(r.status) + " "
                  + reason_phrase(r.status) + "\r\n";
  if (close)
    s += "Connection: close\r\n";
  s += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
  if (!r.type.empty())
    s += "Content-Type: " + r.type + "\r\n";
  if (!close)
    s += "Keep-Alive: timeout="
         + std::to_string((keep_alive.count() + 999) / 1000) + "\r\n";
  s += "\r\n";
  if (!head)
    s += r.body;
  return s;
}

} // namespace

/// Where a route is answered: on the poll loop (it must never block), or
/// on a worker thread. Probes (/readyz, /metrics) have their own worker, so
/// a slow /v1/state never delays them.
enum class lane { loop, probes, others };

/// GET `path` exactly, or with `prefix` every path below it.
struct http_route {
  std::string path;
  lane where;
  std::function<admin_reply(const admin_request&)> answer;
  bool prefix = false;
};

/// The route for `path`: the exact one, else the longest prefix route
/// with something after its prefix; nullptr when none.
const http_route* find_route(const std::vector<http_route>& routes,
                             const std::string& path) {
  const http_route* best = nullptr;
  for (auto& r : routes) {
    if (!r.prefix && r.path == path)
      return &r;
    bool below = r.prefix && path.size() > r.path.size()
                 && path.compare(0, r.path.size(), r.path) == 0;
    if (below && (best == nullptr || r.path.size() > best->path.size()))
      best = &r;
  }
  return best;
}

class admin_http {
public:
  admin_http(admin_limits lim, std::vector<http_route> routes)
      : lim_(lim), routes_(std::move(routes)) {}

  ~admin_http() { stop(); }

  result<unit> bind(const std::string& host, uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE;
    addrinfo* ai = nullptr;
    auto service = std::to_string(port);
    if (::getaddrinfo(host.empty() ? nullptr : host.c_str(), service.c_str(),
                      &hints, &ai)
        != 0)
      return make_failure("bind", "admin: cannot resolve " + host);
    for (auto a = ai; a != nullptr && listen_fd_ < 0; a = a->ai_next) {
      int fd = ::socket(a->ai_family,
                        a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0)
        continue;
      int one = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (::bind(fd, a->ai_addr, a->ai_addrlen) == 0 && ::listen(fd, 128) == 0)
        listen_fd_ = fd;
      else
        ::close(fd);
    }
    ::freeaddrinfo(ai);
    if (listen_fd_ < 0)
      return make_failure("bind", "admin: cannot listen on " + host + ":"
                                    + std::to_string(port));
    sockaddr_storage ss{};
    socklen_t len = sizeof(ss);
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&ss), &len);
    if (ss.ss_family == AF_INET)
      port_ = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
    else
      port_ = ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port);
    return unit{};
  }

  void run() {
    wake_fd_ = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    loop_ = std::thread([this] { loop(); });
    probes_ = std::thread([this] { work(lane::probes); });
    others_ = std::thread([this] { work(lane::others); });
  }

  void stop() {
    {
      std::lock_guard<std::mutex> guard{mtx_};
      stopping_ = true;
    }
    cv_.notify_all();
    wake();
    for (auto t : {&loop_, &probes_, &others_})
      if (t->joinable())
        t->join();
    for (auto& [id, c] : conns_)
      ::close(c.fd);
    conns_.clear();
    for (auto fd : {&listen_fd_, &wake_fd_}) {
      if (*fd >= 0)
        ::close(*fd);
      *fd = -1;
    }
  }

  uint16_t port() const { return port_; }

  /// Prometheus lines of the server itself.
  std::string metrics() const {
    std::string s
      = "# HELP networkd_admin_refused_total admin HTTP requests and "
        "connections refused at a limit\n"
        "# TYPE networkd_admin_refused_total counter\n";
    for (size_t i = 0; i < refusal_names.size(); ++i)
      s += "networkd_admin_refused_total{reason=\""
           + std::string{refusal_names[i]} + "\"} "
           + std::to_string(refused_[i].load()) + "\n";
    s += "# HELP networkd_admin_connections open admin HTTP connections\n"
         "# TYPE networkd_admin_connections gauge\n"
         "networkd_admin_connections "
         + std::to_string(open_.load()) + "\n";
    return s;
  }

private:
  enum class phase { reading, answering, writing, draining, done };

  struct connection {
    uint64_t id = 0;
    int fd = -1;
    phase at = phase::reading;
    /// When the current phase began (the oldest reader is displaced).
    clock_type::time_point since;
    clock_type::time_point deadline;
    std::string in;
    head_parser parser;
    std::string out;
    size_t sent = 0;
    bool close_after = false;
  };

  struct job {
    uint64_t conn = 0;
    const http_route* route = nullptr;
    admin_request req;
  };

  void wake() {
    if (wake_fd_ >= 0) {
      uint64_t one = 1;
      [[maybe_unused]] auto n = ::write(wake_fd_, &one, sizeof(one));
    }
  }

  void count(refusal r) { refused_[static_cast<size_t>(r)]++; }

  void loop() {
    std::vector<pollfd> fds;
    std::vector<uint64_t> ids;
    for (;;) {
      {
        std::lock_guard<std::mutex> guard{mtx_};
        if (stopping_)
          return;
      }
      auto now = clock_type::now();
      expire(now);
      fds.clear();
      ids.clear();
      fds.push_back({listen_fd_, POLLIN, 0});
      fds.push_back({wake_fd_, POLLIN, 0});
      // Asleep until a connection's deadline, a socket or the wake fd
      // (replies, stop): without connections, until something happens.
      auto next = clock_type::time_point::max();
      for (auto& [id, c] : conns_) {
        short events = 0;
        if (c.at == phase::reading || c.at == phase::draining)
          events = POLLIN;
        else if (c.at == phase::writing)
          events = POLLOUT;
        else
          continue;
        fds.push_back({c.fd, events, 0});
        ids.push_back(id);
        next = std::min(next, c.deadline);
      }
      int wait_ms = -1;
      if (next != clock_type::time_point::max())
        wait_ms = static_cast<int>(std::clamp<int64_t>(
          std::chrono::ceil<std::chrono::milliseconds>(next - now).count(), 0,
          60'000));
      ::poll(fds.data(), fds.size(), wait_ms);
      now = clock_type::now();
      if (fds[1].revents != 0) {
        uint64_t n = 0;
        [[maybe_unused]] auto r = ::read(wake_fd_, &n, sizeof(n));
        collect_replies(now);
      }
      for (size_t i = 2; i < fds.size(); ++i) {
        if (fds[i].revents == 0)
          continue;
        auto& c = conns_.at(ids[i - 2]);
        if (c.at == phase::writing)
          on_writable(c, now);
        else if (c.at == phase::reading || c.at == phase::draining)
          on_readable(c, now);
      }
      if (fds[0].revents != 0)
        accept_some(now);
      for (auto i = conns_.begin(); i != conns_.end();) {
        if (i->second.at == phase::done) {
          ::close(i->second.fd);
          i = conns_.erase(i);
        } else {
          ++i;
        }
      }
      open_ = conns_.size();
    }
  }

  void accept_some(clock_type::time_point now) {
    for (int n = 0; n < accept_batch; ++n) {
      int fd
        = ::accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0)
        return;
      if (live() >= lim_.max_connections) {
        // Make room by dropping the connection that has been sending its
        // request for the longest; refuse the newcomer when none is.
        connection* oldest = nullptr;
        for (auto& [id, c] : conns_)
          if ((c.at == phase::reading || c.at == phase::draining)
              && (oldest == nullptr || c.since < oldest->since))
            oldest = &c;
        count(refusal::connections);
        if (oldest == nullptr) {
          refuse_now(fd);
          continue;
        }
        if (oldest->at == phase::reading)
          refuse_now(oldest->fd);
        oldest->at = phase::done;
      }
      auto id = next_id_++;
      auto& c = conns_[id];
      c.id = id;
      c.fd = fd;
      c.since = now;
      c.deadline = now + lim_.request_timeout;
    }
  }

  size_t live() const {
    size_t n = 0;
    for (auto& [id, c] : conns_)
      n += c.at != phase::done ? 1 : 0;
    return n;
  }

  /// Best effort 503 on a connection about to be closed: reads what is
  /// there (so that close sends no reset), one send.
  void refuse_now(int fd) {
    char buf[read_chunk];
    [[maybe_unused]] auto r = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    auto text = render({503, "text/plain", "too many admin connections\n"},
                       false, true, lim_.request_timeout);
    [[maybe_unused]] auto s
      = ::send(fd, text.data(), text.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    ::shutdown(fd, SHUT_WR);
  }

  void on_readable(connection& c, clock_type::time_point now) {
    char buf[read_chunk];
    auto n = ::recv(c.fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
      return;
    if (n <= 0) {
      c.at = phase::done;
      return;
    }
    if (c.at == phase::draining)
      return;
    c.in.append(buf, static_cast<size_t>(n));
    next_request(c, now);
  }

  /// Parses what arrived; a complete head is answered here or handed to
  /// a worker.
  void next_request(connection& c, clock_type::time_point now) {
    auto v = c.parser.parse(c.in, lim_.head);
    if (v == head_parser::verdict::more)
      return;
    if (v == head_parser::verdict::refused) {
      refuse(c, c.parser.why(), now);
      return;
    }
    auto& head = c.parser.head();
    const http_route* route = nullptr;
    if (head.method == "GET" || head.method == "HEAD")
      route = find_route(routes_, head.path);
    if (route == nullptr) {
      answer(c, {404, "", ""}, now);
      return;
    }
    admin_request req;
    req.path = head.path;
    if (route->prefix)
      req.rest = head.path.substr(route->path.size());
    if (!http::parse_query(head.query, req.params)) {
      answer(c,
             json_error(400, "more than "
                               + std::to_string(http::max_query_params)
                               + " query parameters"),
             now);
    } else if (route->where == lane::loop) {
      answer(c, route->answer(req), now);
    } else {
      c.at = phase::answering;
      c.since = now;
      std::lock_guard<std::mutex> guard{mtx_};
      (route->where == lane::probes ? probe_jobs_ : other_jobs_)
        .push_back({c.id, route, std::move(req)});
      cv_.notify_all();
    }
  }

  void answer(connection& c, const admin_reply& r, clock_type::time_point now) {
    auto& req = c.parser.head();
    c.close_after = req.close;
    c.out = render(r, req.head, c.close_after, lim_.request_timeout);
    c.sent = 0;
    c.at = phase::writing;
    c.since = now;
    c.deadline = now + lim_.response_timeout;
  }

  void refuse(connection& c, refusal why, clock_type::time_point now) {
    count(why);
    auto status = refusal_status(why);
    std::string text = reason_phrase(status);
    c.out = render({status, "text/plain", text + "\n"}, false, true,
                   lim_.request_timeout);
    c.sent = 0;
    c.close_after = true;
    c.at = phase::writing;
    c.since = now;
    c.deadline = now + lim_.response_timeout;
  }

  void on_writable(connection& c, clock_type::time_point now) {
    while (c.sent < c.out.size()) {
      auto n = ::send(c.fd, c.out.data() + c.sent, c.out.size() - c.sent,
                      MSG_DONTWAIT | MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
      if (n <= 0) {
        c.at = phase::done;
        return;
      }
      c.sent += static_cast<size_t>(n);
    }
    c.out = std::string{};
    c.since = now;
    if (c.close_after) {
      ::shutdown(c.fd, SHUT_WR);
      c.at = phase::draining;
      c.deadline = now + linger;
      return;
    }
    c.at = phase::reading;
    c.deadline = now + lim_.request_timeout;
    c.parser = head_parser{};
    // A pipelined request may be waiting in the buffer already.
    if (!c.in.empty())
      next_request(c, now);
  }

  void expire(clock_type::time_point now) {
    for (auto& [id, c] : conns_) {
      if (c.at == phase::answering || c.at == phase::done || c.deadline > now)
        continue;
      if (c.at == phase::reading && c.parser.started()) {
        refuse(c, refusal::timeout, now);
      } else {
        if (c.at == phase::writing && !c.close_after)
          count(refusal::slow_reader);
        c.at = phase::done;
      }
    }
  }

  void collect_replies(clock_type::time_point now) {
    std::vector<std::pair<uint64_t, admin_reply>> replies;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      replies.swap(replies_);
    }
    for (auto& [id, r] : replies) {
      auto i = conns_.find(id);
      if (i != conns_.end() && i->second.at == phase::answering)
        answer(i->second, r, now);
    }
  }

  void work(lane which) {
    auto& jobs = which == lane::probes ? probe_jobs_ : other_jobs_;
    for (;;) {
      job j;
      {
        std::unique_lock<std::mutex> guard{mtx_};
        cv_.wait(guard, [&] { return stopping_ || !jobs.empty(); });
        if (stopping_)
          return;
        j = std::move(jobs.front());
        jobs.pop_front();
      }
      admin_reply r;
      try {
        r = j.route->answer(j.req);
      } catch (const std::exception& e) {
        r = {500, "text/plain", std::string{e.what()} + "\n"};
      }
      {
        std::lock_guard<std::mutex> guard{mtx_};
        replies_.emplace_back(j.conn, std::move(r));
      }
      wake();
    }
  }

  const admin_limits lim_;
  const std::vector<http_route> routes_;
  int listen_fd_ = -1;
  int wake_fd_ = -1;
  uint16_t port_ = 0;
  std::thread loop_;
  std::thread probes_;
  std::thread others_;
  // Owned by the loop thread.
  std::map<uint64_t, connection> conns_;
  uint64_t next_id_ = 1;
  // Shared with the workers, under mtx_.
  std::mutex mtx_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::deque<job> probe_jobs_;
  std::deque<job> other_jobs_;
  std::vector<std::pair<uint64_t, admin_reply>> replies_;
  // Read by /metrics from a worker.
  std::array<std::atomic<uint64_t>, refusal_names.size()> refused_{};
  std::atomic<size_t> open_{0};
};

std::string admin_request::param(const std::string& name,
                                 const std::string& fallback) const {
  for (auto& [n, v] : params)
    if (n == name)
      return v;
  return fallback;
}

bool admin_request::has(const std::string& name) const {
  for (auto& p : params)
    if (p.first == name)
      return true;
  return false;
}

admin_reply json_error(int status, const std::string& message) {
  json_writer j;
  j.begin_object().kv("error", message).end_object();
  return {status, "application/json", j.str() + "\n"};
}

admin_reply vip_reply(const std::string& vips_json, const std::string& name) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(vips_json.c_str(),
                                            vips_json.size());
  if (doc.HasParseError() || !doc.IsObject())
    return json_error(500, "the VIP list is not JSON");
  if (doc.HasMember("error") && doc["error"].IsString())
    return json_error(503, doc["error"].GetString());
  auto key = std::string{config::vips_prefix} + name;
  auto named = [&](const rapidjson::Value& v) {
    return v.IsObject() && v.HasMember("key") && v["key"].IsString()
           && key == v["key"].GetString();
  };
  if (doc.HasMember("vips") && doc["vips"].IsArray())
    for (auto& v : doc["vips"].GetArray()) {
      if (!named(v))
        continue;
      rapidjson::StringBuffer buf;
      rapidjson::Writer<rapidjson::StringBuffer> w{buf};
      v.Accept(w);
      return {200, "application/json", std::string{buf.GetString()} + "\n"};
    }
  json_writer j;
  j.begin_object().kv("key", key);
  if (doc.HasMember("rejected") && doc["rejected"].IsArray())
    for (auto& r : doc["rejected"].GetArray()) {
      if (!named(r))
        continue;
      j.kv("error", "the VIP key was rejected");
      for (auto field : {"code", "reason"})
        if (r.HasMember(field) && r[field].IsString())
          j.kv(field, std::string{r[field].GetString()});
      j.end_object();
      return {404, "application/json", j.str() + "\n"};
    }
  j.kv("error", "this node knows no VIP " + name).end_object();
  return {404, "application/json", j.str() + "\n"};
}

admin_server::admin_server(caf::actor_system& sys, supervisor_actor sup,
                           admin_limits limits)
    : sys_(sys), sup_(std::move(sup)), limits_(limits) {}

admin_server::~admin_server() {
  stop();
}

void admin_server::add_actor(status_client_actor a) {
  actors_.push_back(std::move(a));
}

void admin_server::add_metrics(metrics_source src) {
  metrics_.push_back(std::move(src));
}

void admin_server::add_status_metrics(status_client_actor a,
                                      const std::vector<status_metric>& table) {
  add_metrics([this, a = std::move(a), &table] {
    return metrics_from_status(ask_status(sys_, a), table);
  });
}

void admin_server::add_route(text_route r) {
  routes_.push_back(std::move(r));
}

void admin_server::add_actor_route(std::string path, status_client_actor a) {
  actor_routes_.emplace_back(std::move(path), std::move(a));
}

void admin_server::add_handler(std::string path, handler h, bool prefix) {
  handlers_.push_back({std::move(path), std::move(h), prefix});
}

void admin_server::set_identity(node_identity id) {
  identity_ = std::move(id);
}

void admin_server::set_vip_traffic(traffic_source src) {
  traffic_ = std::move(src);
}

std::string admin_server::vips_json() {
  caf::scoped_actor self{sys_};
  std::string body = "{}";
  self->request(sup_, ask_timeout, atom::vips_v)
    .receive([&](std::string& s) { body = std::move(s); },
             [&](caf::error& err) {
               json_writer j;
               j.begin_object().kv("error", sys_.render(err)).end_object();
               body = j.str();
             });
  if (traffic_)
    body = vips_with_traffic(body, traffic_());
  return body;
}

std::string admin_server::state_json() {
  json_writer j;
  j.begin_object();
  j.begin_array("actors");
  j.raw(ask_status(sys_, sup_));
  for (auto& a : actors_)
    j.raw(ask_status(sys_, a));
  j.end_array();
  j.object("node");
  j.kv("hostname", identity_.hostname);
  j.kv("address", identity_.address);
  j.kv("version", identity_.version);
  j.end_object();
  j.end_object();
  return j.str();
}

result<unit> admin_server::start(const std::string& host, uint16_t port) {
  const std::string text = "text/plain";
  const std::string json = "application/json";
  std::vector<http_route> routes;
  routes.push_back(
    {"/", lane::loop, [](const admin_request&) {
       return admin_reply{200, "text/html; charset=utf-8", status_page_html};
     }});
  routes.push_back({"/healthz", lane::loop, [=](const admin_request&) {
                      return admin_reply{200, text, "ok\n"};
                    }});
  routes.push_back(
    {"/readyz", lane::probes, [this, text](const admin_request&) {
       caf::scoped_actor self{sys_};
       std::string why = "supervisor does not answer";
       self->request(sup_, ask_timeout, atom::ready_v, atom::status_v)
         .receive([&](std::string& r) { why = std::move(r); },
                  [&](caf::error&) {});
       if (why.empty())
         return admin_reply{200, text, "ready\n"};
       return admin_reply{503, text, "not ready: " + why + "\n"};
     }});
  routes.push_back(
    {"/v1/state", lane::others, [this, json](const admin_request&) {
       return admin_reply{200, json, state_json() + "\n"};
     }});
  routes.push_back(
    {"/v1/vips", lane::others, [this, json](const admin_request&) {
       return admin_reply{200, json, vips_json() + "\n"};
     }});
  routes.push_back({"/v1/vips/", lane::others,
                    [this](const admin_request& req) {
                      return vip_reply(vips_json(), req.rest);
                    },
                    true});
  routes.push_back(
    {"/metrics", lane::probes, [this](const admin_request&) {
       caf::scoped_actor self{sys_};
       std::string out = "# HELP networkd_up 1 while the daemon runs\n"
                         "# TYPE networkd_up gauge\nnetworkd_up 1\n";
       self->request(sup_, ask_timeout, atom::tick_v, atom::status_v)
         .receive([&](std::string& s) { out += s; }, [&](caf::error&) {});
       for (auto& m : metrics_)
         out += m();
       out += http_->metrics();
       return admin_reply{200, "text/plain; version=0.0.4", out};
     }});
  for (auto& r : routes_) {
    auto body = r.body;
    auto type = r.content_type;
    routes.push_back({r.path, lane::others, [body, type](const admin_request&) {
                        return admin_reply{200, type, body()};
                      }});
  }
  for (auto& [path, a] : actor_routes_) {
    auto who = a;
    routes.push_back(
      {path, lane::others, [this, who, json](const admin_request&) {
         return admin_reply{200, json, ask_status(sys_, who) + "\n"};
       }});
  }
  for (auto& h : handlers_)
    routes.push_back({h.path, lane::others, h.answer, h.prefix});
  http_ = std::make_unique<admin_http>(limits_, std::move(routes));
  if (auto r = http_->bind(host, port); !r) {
    http_.reset();
    return r;
  }
  http_->run();
  NWD_LOG_INFO("admin", "listening on http://{}:{}", host, http_->port());
  return unit{};
}

void admin_server::stop() {
  if (http_)
    http_->stop();
}

uint16_t admin_server::port() const {
  return http_ ? http_->port() : 0;
}

} // namespace networkd
