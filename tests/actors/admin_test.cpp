// SPDX-License-Identifier: MIT
// The admin HTTP endpoint in-process (threaded scheduler, a stand-in
// supervisor): its routes, its limits against many headers, slow clients
// and too many connections, and the JSON writer against ill-formed UTF-8.
#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include <rapidjson/document.h>

#include "actors/admin.hpp"
#include "actors/errors.hpp"
#include "actors/json.hpp"
#include "actors/messages.hpp"
#include "tests/support/util.hpp"

using namespace networkd;
using namespace networkd::test;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

class threaded_config : public caf::actor_system_config {
public:
  threaded_config() {
    register_networkd(*this);
    set("logger.verbosity", caf::atom("quiet"));
  }
};

/// True when text is one JSON value in valid UTF-8 (strict parser).
bool strict_json(const std::string& text) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(text.c_str(), text.size());
  return !doc.HasParseError();
}

/// What the stand-in supervisor answers.
struct supervisor_answers {
  std::atomic<bool> ready{false};
  std::string status;
  std::string vips;
};

caf::behavior fake_supervisor(caf::event_based_actor*,
                              std::shared_ptr<supervisor_answers> a) {
  return {
    [a](atom::status) { return a->status; },
    [a](atom::ready) { return a->ready.load(); },
    [a](atom::ready, atom::status) {
      return a->ready.load() ? std::string{} : std::string{"lease lost"};
    },
    [a](atom::vips) { return a->vips; },
    [](atom::tick, atom::status) {
      return std::string{"networkd_fake_supervisor 7\n"};
    },
  };
}

caf::behavior fake_child(caf::event_based_actor*, std::string status) {
  return {[status](atom::status) { return status; }};
}

/// Limits of the tests: short times so that the timeouts show quickly.
admin_limits test_limits() {
  admin_limits lim;
  lim.request_timeout = 1s;
  lim.response_timeout = 1s;
  return lim;
}

/// Connects to 127.0.0.1:port (blocking socket).
int connect_to(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  return fd;
}

bool send_all(int fd, const std::string& s) {
  size_t sent = 0;
  while (sent < s.size()) {
    auto n = ::send(fd, s.data() + sent, s.size() - sent, MSG_NOSIGNAL);
    if (n <= 0)
      return false;
    sent += static_cast<size_t>(n);
  }
  return true;
}

struct http_reply {
  int status = 0;
  std::string headers;
  std::string body;
};

/// Reads one response (status 0 when none came before the deadline).
http_reply read_reply(int fd, std::chrono::milliseconds deadline,
                      bool head = false) {
  auto until = clock_type::now() + deadline;
  std::string in;
  http_reply r;
  size_t want = std::string::npos;
  for (;;) {
    auto end = in.find("\r\n\r\n");
    if (end != std::string::npos && want == std::string::npos) {
      r.headers = in.substr(0, end + 2);
      auto cl = r.headers.find("Content-Length: ");
      want = end + 4;
      if (cl != std::string::npos && !head)
        want += std::stoul(r.headers.substr(cl + 16));
    }
    if (want != std::string::npos && in.size() >= want) {
      r.status = std::stoi(r.headers.substr(9, 3));
      r.body = in.substr(r.headers.size() + 2, want - r.headers.size() - 2);
      return r;
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - clock_type::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      return {};
    char buf[4096];
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n <= 0)
      return {};
    in.append(buf, static_cast<size_t>(n));
  }
}

/// True when the peer closes the connection before the deadline (bytes
/// that come first are dropped).
bool closed_within(int fd, std::chrono::milliseconds deadline) {
  auto until = clock_type::now() + deadline;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - clock_type::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      return false;
    char buf[4096];
    if (::recv(fd, buf, sizeof(buf), 0) <= 0)
      return true;
  }
}

/// One request on a fresh connection.
http_reply request(uint16_t port, const std::string& text,
                   std::chrono::milliseconds deadline = 3s, bool head = false) {
  int fd = connect_to(port);
  send_all(fd, text);
  auto r = read_reply(fd, deadline, head);
  ::close(fd);
  return r;
}

http_reply get(uint16_t port, const std::string& path,
               std::chrono::milliseconds deadline = 3s) {
  return request(port,
                 "GET " + path
                   + " HTTP/1.1\r\nHost: t\r\nConnection: close"
                     "\r\n\r\n",
                 deadline);
}

/// Resident set size of this process in KiB.
long rss_kib() {
  std::ifstream in{"/proc/self/status"};
  std::string line;
  while (std::getline(in, line))
    if (line.rfind("VmRSS:", 0) == 0)
      return std::stol(line.substr(6));
  return -1;
}

struct admin_fixture {
  threaded_config cfg;
  caf::actor_system sys{cfg};
  std::shared_ptr<supervisor_answers> answers
    = std::make_shared<supervisor_answers>();
  caf::actor sup;
  caf::actor child;
  std::unique_ptr<admin_server> admin;
  uint16_t port = 0;

  explicit admin_fixture(admin_limits lim = test_limits()) {
    json_writer j;
    j.begin_object().kv("name", "supervisor").kv("state", "ok");
    j.kv("rejected_key", std::string{"/lain/config/vips/\xff\xc0\xaf"});
    j.kv("\xed\xa0\x80"
         "key",
         "value")
      .end_object();
    answers->status = j.str();
    answers->vips = R"({"vips":[]})";
    sup = sys.spawn(fake_supervisor, answers);
    child = sys.spawn(fake_child, std::string{R"({"name":"child"})"});
    admin = std::make_unique<admin_server>(
      sys, caf::actor_cast<supervisor_actor>(sup), lim);
    admin->add_actor(caf::actor_cast<status_client_actor>(child));
    admin->add_actor_route("/v1/procs",
                           caf::actor_cast<status_client_actor>(child));
    admin->add_metrics([] { return std::string{"networkd_source 1\n"}; });
    admin->add_route({"/v1/dns/config", [] { return std::string{"x=1\n"}; }});
  }

  void start() {
    REQUIRE(admin->start("127.0.0.1", 0));
    port = admin->port();
    REQUIRE(port != 0);
  }

  ~admin_fixture() {
    admin->stop();
    caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(child, caf::exit_reason::user_shutdown);
  }
};

} // namespace

TEST_CASE("the admin routes answer as before") {
  admin_fixture f;
  f.start();

  auto r = get(f.port, "/healthz");
  CHECK(r.status == 200);
  CHECK(r.body == "ok\n");
  CHECK(r.headers.find("Content-Type: text/plain\r\n") != std::string::npos);

  r = request(f.port, "HEAD /healthz HTTP/1.1\r\nConnection: close\r\n\r\n", 3s,
              true);
  CHECK(r.status == 200);
  CHECK(r.headers.find("Content-Length: 3\r\n") != std::string::npos);

  r = get(f.port, "/readyz");
  CHECK(r.status == 503);
  CHECK(r.body == "not ready: lease lost\n");
  f.answers->ready = true;
  r = get(f.port, "/readyz");
  CHECK(r.status == 200);
  CHECK(r.body == "ready\n");

  r = get(f.port, "/v1/state");
  CHECK(r.status == 200);
  CHECK(r.headers.find("Content-Type: application/json\r\n")
        != std::string::npos);
  CHECK(strict_json(r.body));
  CHECK(r.body.find(R"("name":"child")") != std::string::npos);

  r = get(f.port, "/v1/vips");
  CHECK(r.status == 200);
  CHECK(r.body == "{\"vips\":[]}\n");

  r = get(f.port, "/metrics");
  CHECK(r.status == 200);
  CHECK(r.headers.find("Content-Type: text/plain; version=0.0.4\r\n")
        != std::string::npos);
  CHECK(r.body.find("networkd_up 1\n") != std::string::npos);
  CHECK(r.body.find("networkd_fake_supervisor 7\n") != std::string::npos);
  CHECK(r.body.find("networkd_source 1\n") != std::string::npos);

  CHECK(get(f.port, "/v1/dns/config").body == "x=1\n");
  r = get(f.port, "/v1/procs");
  CHECK(r.status == 200);
  CHECK(r.body == "{\"name\":\"child\"}\n");

  CHECK(get(f.port, "/nope").status == 404);
  CHECK(get(f.port, "/healthz?verbose=1").status == 200);
  CHECK(get(f.port, "/health%7a").status == 200);
  CHECK(request(f.port, "OPTIONS /healthz HTTP/1.1\r\n\r\n").status == 404);
  CHECK(request(f.port, "GET /healthz HTTP/1.0\r\n\r\n").status == 200);
  CHECK(request(f.port, "BREW /healthz HTTP/1.1\r\n\r\n").status == 400);

  SECTION("keep-alive and pipelined requests") {
    int fd = connect_to(f.port);
    REQUIRE(send_all(fd, "GET /healthz HTTP/1.1\r\n\r\n"));
    CHECK(read_reply(fd, 3s).status == 200);
    REQUIRE(send_all(fd, "GET /readyz HTTP/1.1\r\n\r\n"
                         "GET /v1/dns/config HTTP/1.1\r\n\r\n"));
    CHECK(read_reply(fd, 3s).body == "ready\n");
    CHECK(read_reply(fd, 3s).body == "x=1\n");
    ::close(fd);
  }
}

TEST_CASE("routes read query parameters and the rest of a prefix path") {
  admin_fixture f;
  std::mutex seen_mtx;
  std::vector<admin_request> seen;
  auto keep = [&](const admin_request& req) {
    std::lock_guard<std::mutex> guard{seen_mtx};
    seen.push_back(req);
    return admin_reply{200, "text/plain",
                       req.param("name", "none") + "|" + req.param("type") + "|"
                         + req.rest + "\n"};
  };
  f.admin->add_handler("/v1/lookup", keep);
  f.admin->add_handler("/v1/things/", keep, true);
  f.admin->add_handler("/v1/things/special/", keep, true);
  f.admin->add_handler("/v1/things/exact", keep);
  f.start();

  auto r = get(f.port, "/v1/lookup?name=www.example.com.&type=AAAA");
  CHECK(r.status == 200);
  CHECK(r.body == "www.example.com.|AAAA|\n");
  CHECK(get(f.port, "/v1/lookup?name=a%20b+c%2B&x").body == "a b c+||\n");
  CHECK(get(f.port, "/v1/lookup").body == "none||\n");
  CHECK(get(f.port, "/v1/lookup?type=A&name=x&name=y").body == "x|A|\n");
  CHECK(get(f.port, "/v1/things/10.0.0.5%3A8080?type=T").body
        == "none|T|10.0.0.5:8080\n");
  CHECK(get(f.port, "/v1/things/special/x").body == "none||x\n");
  CHECK(get(f.port, "/v1/things/exact").body == "none||\n");
  // The prefix itself (nothing after it) is not a prefix route's path.
  CHECK(get(f.port, "/v1/things/").status == 404);
  CHECK(get(f.port, "/v1/thingsx").status == 404);
  {
    std::lock_guard<std::mutex> guard{seen_mtx};
    REQUIRE(seen.size() == 7);
    CHECK(seen[0].path == "/v1/lookup");
    CHECK(seen[0].params.size() == 2);
    CHECK(seen[1].has("x"));
    CHECK_FALSE(seen[1].has("type"));
    CHECK(seen[4].path == "/v1/things/10.0.0.5:8080");
  }

  // Past the parameter limit: 400 with a JSON error; nothing is called.
  std::string many = "/v1/lookup?";
  for (size_t i = 0; i <= http::max_query_params; ++i)
    many += "p" + std::to_string(i) + "=1&";
  r = get(f.port, many);
  CHECK(r.status == 400);
  CHECK(strict_json(r.body));
  CHECK(r.body.find("query parameters") != std::string::npos);
  // The request line limit still holds for long queries.
  CHECK(get(f.port, "/v1/lookup?name=" + std::string(3000, 'a')).status == 414);
  std::lock_guard<std::mutex> guard{seen_mtx};
  CHECK(seen.size() == 7);
}

TEST_CASE("one VIP answers by its key and an unknown one is a JSON 404") {
  admin_fixture f;
  f.answers->vips
    = R"({"vips":[{"name":"vip-holder","key":"/lain/config/vips/10.0.0.5",)"
      R"("state":"serving","owner":"n1"},{"name":"vip-holder","key":)"
      R"("/lain/config/vips/10.0.0.5:8080","state":"standby"}],)"
      R"("rejected":[{"key":"/lain/config/vips/10.0.0.9","code":"bad_json",)"
      R"("reason":"not JSON","revision":4}]})";
  f.start();
  auto r = get(f.port, "/v1/vips/10.0.0.5");
  CHECK(r.status == 200);
  CHECK(r.headers.find("Content-Type: application/json\r\n")
        != std::string::npos);
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  REQUIRE(doc.IsObject());
  CHECK(std::string{doc["state"].GetString()} == "serving");
  CHECK(std::string{doc["owner"].GetString()} == "n1");
  r = get(f.port, "/v1/vips/10.0.0.5%3A8080");
  CHECK(r.status == 200);
  CHECK(r.body.find(R"("state":"standby")") != std::string::npos);
  r = get(f.port, "/v1/vips/10.0.0.6");
  CHECK(r.status == 404);
  CHECK(strict_json(r.body));
  CHECK(r.body.find("no VIP 10.0.0.6") != std::string::npos);
  r = get(f.port, "/v1/vips/10.0.0.9");
  CHECK(r.status == 404);
  CHECK(r.body.find(R"("code":"bad_json")") != std::string::npos);
  CHECK(get(f.port, "/v1/vips").status == 200);

  // The pure part: a reply for every shape of input, never a crash.
  CHECK(vip_reply("not json", "x").status == 500);
  CHECK(vip_reply(R"({"error":"timeout"})", "x").status == 503);
  CHECK(vip_reply(R"({"vips":[1,"a",{"key":2}]})", "x").status == 404);
  CHECK(vip_reply(std::string(100000, '['), "x").status == 500);
}

TEST_CASE("the status page is served at the root as self-contained HTML") {
  admin_fixture f;
  f.start();
  auto r = get(f.port, "/");
  CHECK(r.status == 200);
  CHECK(r.headers.find("Content-Type: text/html; charset=utf-8\r\n")
        != std::string::npos);
  CHECK(r.body.rfind("<!DOCTYPE html>", 0) == 0);
  CHECK(r.body.find("name=\"viewport\"") != std::string::npos);
  CHECK(r.body.find("</html>") != std::string::npos);
  // No external assets and no markup built from data.
  CHECK(r.body.find("src=\"http") == std::string::npos);
  CHECK(r.body.find("href=\"http") == std::string::npos);
  CHECK(r.body.find("innerHTML") == std::string::npos);
  CHECK(r.body == status_page_html);
  // /v1/state says which node this is.
  f.admin->stop();
  admin_fixture g;
  g.admin->set_identity({"node-7", "10.1.2.3"});
  g.start();
  auto st = get(g.port, "/v1/state").body;
  CHECK(st.find(R"("node":{"hostname":"node-7","address":"10.1.2.3",)"
                R"("version":")" NETWORKD_VERSION "\"}")
        != std::string::npos);
  CHECK(st.rfind(R"({"actors":[)", 0) == 0);
}

TEST_CASE("requests past a limit are refused and counted") {
  admin_fixture f;
  f.start();
  CHECK(request(f.port, "GET /" + std::string(3000, 'a') + " HTTP/1.1\r\n\r\n")
          .status
        == 414);
  std::string many = "GET /healthz HTTP/1.1\r\n";
  for (int i = 0; i < 65; ++i)
    many += "X-" + std::to_string(i) + ": 1\r\n";
  CHECK(request(f.port, many + "\r\n").status == 431);
  CHECK(request(f.port, "GET /healthz HTTP/1.1\r\nX-Big: "
                          + std::string(9000, 'b') + "\r\n\r\n")
          .status
        == 431);
  CHECK(
    request(f.port, "GET /healthz HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello")
      .status
    == 413);
  CHECK(request(f.port, "GET /healthz HTTP/1.1\r\nTransfer-Encoding: "
                        "chunked\r\n\r\n0\r\n\r\n")
          .status
        == 413);
  CHECK(request(f.port, "garbage\r\n\r\n").status == 400);
  CHECK(
    request(f.port, "GET /healthz HTTP/1.1\r\nContent-Length: 0\r\n\r\n").status
    == 200);
  auto m = get(f.port, "/metrics").body;
  CHECK(m.find("networkd_admin_refused_total{reason=\"request_line\"} 1\n")
        != std::string::npos);
  CHECK(m.find("networkd_admin_refused_total{reason=\"header_count\"} 1\n")
        != std::string::npos);
  CHECK(m.find("networkd_admin_refused_total{reason=\"header_bytes\"} 1\n")
        != std::string::npos);
  CHECK(m.find("networkd_admin_refused_total{reason=\"body\"} 2\n")
        != std::string::npos);
  CHECK(m.find("networkd_admin_refused_total{reason=\"bad_request\"} 1\n")
        != std::string::npos);
}

TEST_CASE("a request with 100000 headers is refused without memory growth") {
  admin_fixture f;
  f.start();
  std::string chunk;
  for (int i = 0; i < 1000; ++i)
    chunk += "X-Header-" + std::to_string(i) + ": some value\r\n";
  auto before = rss_kib();
  int fd = connect_to(f.port);
  std::thread sender([&] {
    if (!send_all(fd, "GET /healthz HTTP/1.1\r\n"))
      return;
    for (int i = 0; i < 100; ++i)
      if (!send_all(fd, chunk))
        return;
    if (send_all(fd, "\r\n"))
      ::shutdown(fd, SHUT_WR);
  });
  auto r = read_reply(fd, 10s);
  CHECK(r.status == 431);
  CHECK(closed_within(fd, 5s));
  sender.join();
  ::close(fd);
  auto after = rss_kib();
  INFO("VmRSS before " << before << " KiB, after " << after << " KiB");
  CHECK(after - before < 4096);
  CHECK(get(f.port, "/healthz").status == 200);
}

TEST_CASE("stalled and dribbling clients do not delay health checks") {
  admin_fixture f;
  f.start();
  f.answers->ready = true;
  std::vector<int> slow;
  auto opened = clock_type::now();
  for (int i = 0; i < 8; ++i) {
    slow.push_back(connect_to(f.port));
    REQUIRE(send_all(slow.back(), "GET /healthz HTTP/1.1\r\nHost: t\r\n"));
  }
  std::atomic<bool> dribbling{true};
  int dribbler = connect_to(f.port);
  std::thread drip([&] {
    std::string req = "GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: ";
    req += std::string(100, 'x');
    for (size_t i = 0; dribbling && i < req.size(); ++i) {
      if (!send_all(dribbler, req.substr(i, 1)))
        return;
      std::this_thread::sleep_for(50ms);
    }
  });

  for (auto path : {"/healthz", "/readyz", "/metrics"}) {
    auto t0 = clock_type::now();
    auto r = get(f.port, path, 1s);
    CHECK(r.status == 200);
    CHECK(clock_type::now() - t0 < 1s);
  }

  // The stalled ones get 408 and are closed after the request time
  // (1 s here), counted from their accept.
  CHECK(read_reply(slow[0], 3s).status == 408);
  CHECK(clock_type::now() - opened >= 1s);
  for (auto fd : slow) {
    if (fd != slow[0])
      CHECK(read_reply(fd, 3s).status == 408);
    CHECK(closed_within(fd, 3s));
  }
  auto r = read_reply(dribbler, 3s);
  CHECK(r.status == 408);
  CHECK(clock_type::now() - opened < 3s);
  dribbling = false;
  drip.join();
  for (auto fd : slow)
    ::close(fd);
  ::close(dribbler);
  CHECK(get(f.port, "/metrics")
          .body.find("networkd_admin_refused_total{reason=\"timeout\"} 9\n")
        != std::string::npos);
}

TEST_CASE("many stalled clients past the connection cap do not delay health "
          "checks") {
  admin_limits lim;
  lim.max_connections = 16;
  admin_fixture f{lim};
  f.start();
  f.answers->ready = true;
  std::vector<int> slow;
  for (int i = 0; i < 50; ++i) {
    slow.push_back(connect_to(f.port));
    REQUIRE(send_all(slow.back(), "GET /healthz HTTP/1.1\r\n"));
  }
  for (auto path : {"/healthz", "/readyz", "/metrics"}) {
    auto t0 = clock_type::now();
    auto r = get(f.port, path, 1s);
    CHECK(r.status == 200);
    CHECK(clock_type::now() - t0 < 1s);
  }
  for (auto fd : slow)
    ::close(fd);
}

TEST_CASE("the connection cap displaces the oldest reader or answers 503") {
  auto lim = test_limits();
  lim.max_connections = 2;
  lim.request_timeout = 5s;
  // Declared before the fixture: its workers may still wait on them.
  std::promise<void> gate;
  auto open = gate.get_future().share();
  std::atomic<int> entered{0};
  admin_fixture f{lim};
  f.admin->add_route({"/v1/block", [&] {
                        entered++;
                        open.wait_for(10s);
                        return std::string{"done\n"};
                      }});
  f.admin->add_metrics([&] {
    entered++;
    open.wait_for(10s);
    return std::string{};
  });
  f.start();

  SECTION("a newcomer displaces the connection still sending the longest") {
    int first = connect_to(f.port);
    REQUIRE(send_all(first, "GET /healthz HTTP/1.1\r\n"));
    int second = connect_to(f.port);
    REQUIRE(send_all(second, "GET /healthz HTTP/1.1\r\n"));
    CHECK(get(f.port, "/healthz", 1s).status == 200);
    CHECK(read_reply(first, 3s).status == 503);
    CHECK(closed_within(first, 3s));
    REQUIRE(send_all(second, "\r\n"));
    CHECK(read_reply(second, 3s).status == 200);
    ::close(first);
    ::close(second);
    gate.set_value();
  }

  SECTION("when every connection is being answered a newcomer gets 503") {
    int a = connect_to(f.port);
    REQUIRE(send_all(a, "GET /v1/block HTTP/1.1\r\n\r\n"));
    int b = connect_to(f.port);
    REQUIRE(send_all(b, "GET /metrics HTTP/1.1\r\n\r\n"));
    REQUIRE(wait_until([&] { return entered == 2; }, 5s));
    int c = connect_to(f.port);
    CHECK(read_reply(c, 3s).status == 503);
    CHECK(closed_within(c, 3s));
    ::close(c);
    gate.set_value();
    CHECK(read_reply(a, 3s).body == "done\n");
    auto m = read_reply(b, 3s).body;
    CHECK(m.find("networkd_admin_refused_total{reason=\"connections\"} 1\n")
          != std::string::npos);
    ::close(a);
    ::close(b);
  }
}

TEST_CASE("the JSON writer emits valid UTF-8 whatever bytes come in") {
  const std::string bad[] = {
    "\xc0\xaf",                 // overlong '/'
    "\xe0\x80\xaf",             // overlong, three bytes
    "\xf0\x80\x80\xaf",         // overlong, four bytes
    "\xe2\x82",                 // truncated
    "abc\xf0\x9f\x98",          // truncated at the end
    "\x80",                     // lone continuation
    "a\xbf\x80z",               // continuations only
    "\xed\xa0\x80",             // surrogate D800
    "\xed\xbf\xbf",             // surrogate DFFF
    "\xed\xa0\xbd\xed\xb8\x80", // a surrogate pair in UTF-8
    "\xff",
    "\xfe\xff",
    "\xf4\x90\x80\x80", // above U+10FFFF
    "\xf5\x80\x80\x80",
    std::string{"nul\0ctl\x01\x1f\x7f\"\\", 12},
  };
  for (auto& s : bad) {
    json_writer j;
    j.begin_object().kv("value", s).kv(s.c_str(), s);
    j.begin_array(s.c_str()).value(s).end_array();
    j.object(s.c_str()).key(s.c_str()).value(s).end_object();
    j.end_object();
    INFO(j.str());
    CHECK(strict_json(j.str()));
  }
  const std::string fffd = "\xef\xbf\xbd";
  CHECK(valid_utf8("\xc0\xaf") == fffd + fffd);
  CHECK(valid_utf8("a\xe2\x82z") == "a" + fffd + "z");
  CHECK(valid_utf8("\xed\xa0\x80") == fffd + fffd + fffd);
  CHECK(valid_utf8("\xff") == fffd);
  CHECK(valid_utf8("\xf0\x9f\x98") == fffd);
  // Well-formed text passes unchanged, up to U+10FFFF.
  const std::string good = "ascii \xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 "
                           "\xf4\x8f\xbf\xbf \xed\x9f\xbf \xee\x80\x80";
  CHECK(valid_utf8(good) == good);
  json_writer j;
  j.begin_object().kv("s", good).end_object();
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseValidateEncodingFlag>(j.str().c_str());
  REQUIRE(!doc.HasParseError());
  CHECK(std::string{doc["s"].GetString()} == good);
  // Control characters are escaped.
  json_writer c;
  c.begin_object().kv("c", std::string{"\x01\n\0", 3}).end_object();
  CHECK(c.str() == R"({"c":"\u0001\n\u0000"})");
  // Ill-formed bytes inside raw JSON are replaced too.
  json_writer r;
  r.begin_array().raw("{\"k\":\"\xff\"}").end_array();
  CHECK(strict_json(r.str()));
}
