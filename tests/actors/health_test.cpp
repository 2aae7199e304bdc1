// SPDX-License-Identifier: MIT
// Proc health end to end at the actor level: the health hub reads a
// lainlet-compatible test server (lainlet itself cannot run here), a
// tracker probes the container's real TCP listener, a subscriber hears the
// transitions.
#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <regex>
#include <thread>

#include <mutex>

#include "actors/errors.hpp"
#include "actors/health.hpp"
#include "tests/support/lainlet_server.hpp"
#include "tests/support/util.hpp"

using namespace networkd;
using namespace networkd::test;

namespace {

class threaded_config : public caf::actor_system_config {
public:
  threaded_config() {
    register_networkd(*this);
    set("logger.verbosity", caf::atom("quiet"));
  }
};

/// A TCP listener standing in for the container's server.
struct container_server {
  int fd = -1;
  container_server(const std::string& ip, uint16_t port) {
    fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    int one = 1;
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    ::inet_pton(AF_INET, ip.c_str(), &a.sin_addr);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(::listen(fd, 1024) == 0);
  }
  ~container_server() { stop(); }
  void stop() {
    if (fd >= 0)
      ::close(fd);
    fd = -1;
  }
};

struct heard {
  std::mutex mtx;
  std::vector<proc_health> events;
  void add(const proc_health& h) {
    std::lock_guard<std::mutex> g{mtx};
    events.push_back(h);
  }
  std::vector<proc_health> all() {
    std::lock_guard<std::mutex> g{mtx};
    return events;
  }
  bool last_is(bool healthy, const std::string& ip) {
    std::lock_guard<std::mutex> g{mtx};
    return !events.empty() && events.back().healthy == healthy
           && events.back().ip == ip;
  }
};

/// A subscriber that records what it hears. (A spawned function always
/// takes an argument here: CAF 0.17 dereferences a null argument tuple for
/// argument-less function actors, which UBSan reports.)
caf::behavior recorder(caf::event_based_actor*, std::shared_ptr<heard> sink) {
  return {[sink](proc_health& p) { sink->add(p); }};
}

lainlet_container web(const std::string& ip, uint16_t port, int instance = 1) {
  lainlet_container c;
  c.app = "shop";
  c.proc = "shop.web.web";
  c.nodename = "node1";
  c.nodeip = "10.0.0.1";
  c.ip = ip;
  c.port = port;
  c.instance = instance;
  c.id = "id-" + ip;
  return c;
}

struct fixture {
  threaded_config cfg;
  caf::actor_system sys{cfg};
  lainlet_server lainlet;
  uint16_t port = free_port();
  std::shared_ptr<heard> h = std::make_shared<heard>();
  health_hub_actor hub;
  caf::actor subscriber;

  fixture() {
    health_hub_config hc;
    hc.from = health_hub_config::source::lainlet;
    hc.lainlet_endpoint = lainlet.endpoint();
    hc.nodename = "node1";
    hc.heartbeat = std::chrono::seconds(1);
    hub = sys.spawn(health_hub, hc);
    auto sink = h;
    subscriber = sys.spawn(recorder, sink);
  }

  ~fixture() {
    caf::anon_send_exit(subscriber, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(hub, caf::exit_reason::user_shutdown);
  }

  void subscribe() {
    caf::anon_send(hub, atom::subscribe_v, std::string{"shop"},
                   std::string{"web"}, std::vector<uint16_t>{port}, subscriber);
  }

  /// The hub's admin state (every tracker's with it).
  std::string status() {
    caf::scoped_actor self{sys};
    std::string s;
    self->request(hub, std::chrono::seconds(2), atom::status_v)
      .receive([&](std::string& r) { s = r; }, [](caf::error&) {});
    return s;
  }

  /// The probes shop.web's tracker has sent (-1: none in the state).
  int probes_sent() {
    std::smatch m;
    auto s = status();
    if (!std::regex_search(s, m, std::regex{"\"probes\":([0-9]+)"}))
      return -1;
    return std::stoi(m[1]);
  }
};

} // namespace

TEST_CASE_METHOD(fixture,
                 "a stopped container server turns the proc "
                 "unhealthy fast",
                 "[health]") {
  container_server srv{"127.0.0.5", port};
  lainlet.set_containers({web("127.0.0.5", port)});
  subscribe();
  REQUIRE(wait_until([&] { return h->last_is(true, "127.0.0.5"); }, 5s));
  auto t0 = std::chrono::steady_clock::now();
  srv.stop();
  REQUIRE(wait_until([&] { return h->last_is(false, "127.0.0.5"); }, 5s, 1ms));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - t0);
  WARN("server stopped to unhealthy: " << took.count() << " ms");
  CHECK(took < 2s);
  // Back up: healthy again.
  container_server again{"127.0.0.5", port};
  REQUIRE(wait_until([&] { return h->last_is(true, "127.0.0.5"); }, 5s));
}

TEST_CASE_METHOD(fixture, "a lainlet restart moves nothing", "[health]") {
  container_server srv{"127.0.0.5", port};
  lainlet.set_containers({web("127.0.0.5", port)});
  subscribe();
  REQUIRE(wait_until([&] { return h->last_is(true, "127.0.0.5"); }, 5s));
  auto before = h->all().size();
  auto opened = lainlet.streams_opened();
  lainlet.stop();
  lainlet.start();
  REQUIRE(wait_until([&] { return lainlet.streams_opened() > opened; }, 10s));
  // The new stream's init carried the same set; let the hub apply it by
  // asking for its status (handled after the set in its mailbox).
  caf::scoped_actor self{sys};
  std::string status;
  REQUIRE(wait_until(
    [&] {
      self->request(hub, std::chrono::seconds(2), atom::status_v)
        .receive([&](std::string& s) { status = s; }, [](caf::error&) {});
      return status.find("\"state\":\"streaming\"") != std::string::npos;
    },
    5s));
  CHECK(h->all().size() == before);
  CHECK(h->last_is(true, "127.0.0.5"));
}

TEST_CASE_METHOD(fixture, "a container IP change is a transition", "[health]") {
  container_server a{"127.0.0.5", port};
  container_server b{"127.0.0.6", port};
  lainlet.set_containers({web("127.0.0.5", port)});
  subscribe();
  REQUIRE(wait_until([&] { return h->last_is(true, "127.0.0.5"); }, 5s));
  lainlet.set_containers({web("127.0.0.6", port)});
  REQUIRE(wait_until([&] { return h->last_is(true, "127.0.0.6"); }, 5s));
  // The lowest instance serves when several run here.
  lainlet.set_containers(
    {web("127.0.0.6", port, 2), web("127.0.0.5", port, 1)});
  REQUIRE(wait_until([&] { return h->last_is(true, "127.0.0.5"); }, 5s));
  // Gone from the node: unhealthy at once.
  lainlet.set_containers({});
  REQUIRE(wait_until([&] { return h->last_is(false, ""); }, 5s));
  // Every transition in the status starts with its time (RFC 3339 UTC).
  caf::scoped_actor self{sys};
  std::string status;
  self->request(hub, std::chrono::seconds(2), atom::status_v)
    .receive([&](std::string& s) { status = s; }, [](caf::error&) {});
  INFO(status);
  const std::regex timed(
    R"re("\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z (healthy|unhealthy)[^"]*")re");
  CHECK(std::distance(std::sregex_iterator(status.begin(), status.end(), timed),
                      std::sregex_iterator())
        >= 4);
}

TEST_CASE_METHOD(fixture, "a UDP-only proc is healthy by presence",
                 "[health]") {
  lainlet.set_containers({web("127.0.0.7", 53)});
  caf::anon_send(hub, atom::subscribe_v, std::string{"shop"},
                 std::string{"web"}, std::vector<uint16_t>{}, subscriber);
  REQUIRE(wait_until([&] { return h->last_is(true, "127.0.0.7"); }, 5s));
}

namespace {

/// Stands in for the Docker daemon's API socket (Docker cannot run here):
/// answers GET /containers/json with the ids the test sets, as Docker's
/// Engine API does (a JSON array of objects with "Id" and "State").
struct docker_stub {
  temp_dir dir{"networkd-docker"};
  std::string path = dir.file("docker.sock");
  int fd = -1;
  std::mutex mtx;
  std::vector<std::string> running;
  std::atomic<bool> stop{false};
  std::atomic<int> requests{0};
  std::thread thread;

  docker_stub() {
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un a{};
    a.sun_family = AF_UNIX;
    std::snprintf(a.sun_path, sizeof(a.sun_path), "%s", path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(::listen(fd, 16) == 0);
    thread = std::thread([this] {
      while (!stop) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0)
          continue;
        int c = ::accept(fd, nullptr, nullptr);
        if (c < 0)
          continue;
        char buf[4096];
        ::recv(c, buf, sizeof(buf), 0); // the request; content not needed
        std::string body = "[";
        {
          std::lock_guard<std::mutex> g{mtx};
          for (size_t i = 0; i < running.size(); ++i)
            body += std::string{i ? "," : ""} + "{\"Id\":\"" + running[i]
                    + "\",\"State\":\"running\"}";
        }
        body += "]";
        auto reply = "HTTP/1.0 200 OK\r\nContent-Type: application/json\r\n"
                     "Content-Length: "
                     + std::to_string(body.size()) + "\r\n\r\n" + body;
        ::send(c, reply.data(), reply.size(), MSG_NOSIGNAL);
        ::close(c);
        ++requests;
      }
    });
  }
  ~docker_stub() {
    stop = true;
    thread.join();
    ::close(fd);
  }
  void set(std::vector<std::string> ids) {
    std::lock_guard<std::mutex> g{mtx};
    running = std::move(ids);
  }
};

} // namespace

TEST_CASE("a container Docker does not list as running is not healthy",
          "[health]") {
  threaded_config cfg;
  caf::actor_system sys{cfg};
  lainlet_server lainlet;
  docker_stub docker;
  uint16_t port = free_port();
  container_server srv{"127.0.0.5", port};
  auto h = std::make_shared<heard>();
  health_hub_config hc;
  hc.lainlet_endpoint = lainlet.endpoint();
  hc.nodename = "node1";
  hc.docker_socket = docker.path;
  hc.docker_interval = std::chrono::milliseconds(100);
  auto c = web("127.0.0.5", port);
  c.id = "0123456789abcdef";
  lainlet.set_containers({c});
  auto hub = sys.spawn(health_hub, hc);
  auto sink = h;
  auto subscriber = sys.spawn(recorder, sink);
  caf::anon_send(hub, atom::subscribe_v, std::string{"shop"},
                 std::string{"web"}, std::vector<uint16_t>{port}, subscriber);
  // Docker lists nothing: lainlet's container is not served.
  REQUIRE(wait_until([&] { return docker.requests >= 2; }, 5s));
  CHECK_FALSE(h->last_is(true, "127.0.0.5"));
  // Docker lists it (full id, lainlet's is a prefix): healthy.
  docker.set({"0123456789abcdef0000000000000000"});
  REQUIRE(wait_until([&] { return h->last_is(true, "127.0.0.5"); }, 5s));
  // It stops running in Docker: unhealthy, though lainlet still lists it.
  docker.set({});
  REQUIRE(wait_until([&] { return h->last_is(false, ""); }, 5s));
  caf::anon_send_exit(subscriber, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(hub, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture,
                 "a tracker spawned after the probe knobs changed "
                 "probes with them",
                 "[health]") {
  container_server srv{"127.0.0.5", port};
  lainlet.set_containers({web("127.0.0.5", port)});
  caf::anon_send(
    hub, config::resolve_knobs(
           {{"probe_interval_ms", config::knob{"probe_interval_ms", 1700, ""}},
            {"probe_failures", config::knob{"probe_failures", 7, ""}}}));
  subscribe(); // spawns the tracker of shop.web now
  REQUIRE(wait_until([&] { return h->last_is(true, "127.0.0.5"); }, 5s));
  auto s = status();
  INFO(s);
  CHECK(s.find("\"interval_ms\":1700") != std::string::npos);
  CHECK(s.find("\"failures\":7") != std::string::npos);
  // Deleted knobs: the defaults return to the running tracker.
  caf::anon_send(hub, config::default_knobs());
  REQUIRE(wait_until(
    [&] { return status().find("\"interval_ms\":200") != std::string::npos; },
    5s));
  CHECK(status().find("\"failures\":2") != std::string::npos);
}

TEST_CASE_METHOD(fixture,
                 "a subscriber that comes as the last one leaves "
                 "still hears its proc's health",
                 "[health]") {
  // The tracker ends when its last subscriber goes; a subscription that
  // reached it in between was lost (a VIP key deleted and put again at
  // once never heard of its container). Many rounds: the window is short.
  container_server srv{"127.0.0.5", port};
  lainlet.set_containers({web("127.0.0.5", port)});
  auto subscribe_new = [&](std::shared_ptr<heard> sink) {
    auto s = sys.spawn(recorder, sink);
    caf::anon_send(hub, atom::subscribe_v, std::string{"shop"},
                   std::string{"web"}, std::vector<uint16_t>{port}, s);
    return s;
  };
  auto first = std::make_shared<heard>();
  auto current = subscribe_new(first);
  REQUIRE(wait_until([&] { return first->last_is(true, "127.0.0.5"); }, 5s));
  for (int round = 0; round < 30; ++round) {
    INFO("round " << round);
    auto next = std::make_shared<heard>();
    caf::anon_send_exit(current, caf::exit_reason::user_shutdown);
    current = subscribe_new(next);
    REQUIRE(wait_until([&] { return next->last_is(true, "127.0.0.5"); }, 5s));
  }
  caf::anon_send_exit(current, caf::exit_reason::user_shutdown);
}

TEST_CASE_METHOD(fixture,
                 "subscribers of a proc whose ports are probed "
                 "already start no probe round",
                 "[health]") {
  // A cold start with 2000 VIPs of one proc: each subscription used to
  // start a round at once (and count every subscriber's ports again), so
  // the last VIPs waited seconds for their proc's state.
  container_server srv{"127.0.0.5", port};
  lainlet.set_containers({web("127.0.0.5", port)});
  caf::anon_send(hub, config::resolve_knobs(
                        {{"probe_interval_ms",
                          config::knob{"probe_interval_ms", 60000, ""}}}));
  subscribe();
  REQUIRE(wait_until([&] { return h->last_is(true, "127.0.0.5"); }, 5s));
  std::vector<std::shared_ptr<heard>> sinks;
  std::vector<caf::actor> subs;
  for (int i = 0; i < 200; ++i) {
    sinks.push_back(std::make_shared<heard>());
    subs.push_back(sys.spawn(recorder, sinks.back()));
    caf::anon_send(hub, atom::subscribe_v, std::string{"shop"},
                   std::string{"web"}, std::vector<uint16_t>{port},
                   subs.back());
  }
  for (auto& s : sinks)
    REQUIRE(wait_until([&] { return s->last_is(true, "127.0.0.5"); }, 5s));
  INFO(status());
  // The first subscriber's round (and the container's); the interval is a
  // minute, so no other round comes on its own.
  auto before = probes_sent();
  CHECK(before >= 1);
  CHECK(before <= 3);
  // A new port is probed at once.
  auto port2 = free_port();
  container_server other{"127.0.0.5", port2};
  caf::anon_send(hub, atom::subscribe_v, std::string{"shop"},
                 std::string{"web"}, std::vector<uint16_t>{port2},
                 subs.front());
  REQUIRE(wait_until([&] { return probes_sent() > before; }, 5s));
  for (auto& s : subs)
    caf::anon_send_exit(s, caf::exit_reason::user_shutdown);
}
