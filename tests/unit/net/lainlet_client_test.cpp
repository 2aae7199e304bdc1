// SPDX-License-Identifier: MIT
// The lainlet streaming client against the lainlet stand-in: sets reported
// once, kept across drops, restarts, stalls, error events and garbage.
#include <catch2/catch.hpp>

#include <mutex>
#include <vector>

#include "net/peers/lainlet.hpp"
#include "tests/support/lainlet_server.hpp"
#include "tests/support/util.hpp"

using namespace networkd;
using namespace networkd::lainlet;
using namespace networkd::test;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

lainlet_container make(const std::string& id, int instance,
                       const std::string& proc = "hello.web.web") {
  lainlet_container c;
  c.app = "hello";
  c.proc = proc;
  c.id = id;
  c.instance = instance;
  c.ip = "172.20.0." + std::to_string(10 + instance);
  return c;
}

// What the client reported, in order.
struct recorder {
  mutable std::mutex mtx;
  std::vector<std::vector<container>> sets;
  std::vector<uint64_t> ids;
  std::vector<client_status> states;

  containers_handler on_containers() {
    return [this](const std::vector<container>& cs, uint64_t id) {
      std::lock_guard<std::mutex> guard{mtx};
      sets.push_back(cs);
      ids.push_back(id);
    };
  }
  state_handler on_state() {
    return [this](const client_status& st) {
      std::lock_guard<std::mutex> guard{mtx};
      states.push_back(st);
    };
  }
  size_t count() const {
    std::lock_guard<std::mutex> guard{mtx};
    return sets.size();
  }
  std::vector<container> last() const {
    std::lock_guard<std::mutex> guard{mtx};
    return sets.empty() ? std::vector<container>{} : sets.back();
  }
  size_t empty_reports() const {
    std::lock_guard<std::mutex> guard{mtx};
    return std::count_if(sets.begin(), sets.end(),
                         [](auto& s) { return s.empty(); });
  }
  bool saw_state(client_state s) const {
    std::lock_guard<std::mutex> guard{mtx};
    return std::any_of(states.begin(), states.end(),
                       [&](auto& st) { return st.state == s; });
  }
};

client_options options_for(const lainlet_server& srv) {
  client_options o;
  o.endpoint = srv.endpoint();
  o.nodename = "node1";
  o.heartbeat = 1s;
  o.backoff_initial = 20ms;
  o.backoff_max = 200ms;
  return o;
}

std::vector<std::string> ids_of(const std::vector<container>& cs) {
  std::vector<std::string> out;
  for (auto& c : cs)
    out.push_back(c.container_id);
  return out;
}

struct fixture {
  lainlet_server srv;
  recorder rec;

  std::unique_ptr<client> start(client_options o) {
    return std::make_unique<client>(std::move(o), rec.on_containers(),
                                    rec.on_state());
  }
  std::unique_ptr<client> start() { return start(options_for(srv)); }

  bool streaming(const client& c) {
    return wait_until(
      [&] { return c.status().state == client_state::streaming; });
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "init reports the set and an update a new one",
                 "[lainlet_client]") {
  srv.set_containers({make("a", 1)});
  auto c = start();
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  auto first = rec.last();
  REQUIRE(first.size() == 1);
  CHECK(first[0].container_id == "a");
  CHECK(first[0].proc == "web");
  CHECK(first[0].instance == 1);
  CHECK(c->containers() == first);

  srv.set_containers({make("a", 1), make("b", 2)});
  REQUIRE(wait_until([&] { return rec.count() == 2; }));
  CHECK(ids_of(rec.last()) == std::vector<std::string>{"a", "b"});
  CHECK(c->status().counters.updates == 2);
  CHECK(c->status().have_set);
  CHECK(rec.saw_state(client_state::streaming));
  auto targets = srv.targets();
  REQUIRE_FALSE(targets.empty());
  CHECK(targets[0] == "/v2/containers?nodename=node1&watch=1&heartbeat=1");
}

TEST_CASE_METHOD(fixture, "the same data again reports nothing",
                 "[lainlet_client]") {
  srv.set_containers({make("a", 1)});
  auto c = start();
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  srv.repeat_data();
  srv.set_containers({make("a", 1)});
  REQUIRE(wait_until([&] { return c->status().counters.unchanged >= 2; }));
  CHECK(rec.count() == 1);
}

TEST_CASE_METHOD(fixture, "an update with empty data empties the set",
                 "[lainlet_client]") {
  srv.set_containers({make("a", 1)});
  auto c = start();
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  srv.set_data("{}");
  REQUIRE(wait_until([&] { return rec.count() == 2; }));
  CHECK(rec.last().empty());
  srv.send_delete(lainlet_server::containers_json({make("d", 4)}));
  REQUIRE(wait_until([&] { return rec.count() == 3; }));
  CHECK(ids_of(rec.last()) == std::vector<std::string>{"d"});
}

TEST_CASE_METHOD(fixture, "an empty first init is reported",
                 "[lainlet_client]") {
  auto c = start();
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  CHECK(rec.last().empty());
  CHECK(c->status().have_set);
}

TEST_CASE_METHOD(fixture, "a dropped connection reconnects and keeps the set",
                 "[lainlet_client]") {
  srv.set_containers({make("a", 1)});
  auto c = start();
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  auto before = c->containers();
  for (int round = 0; round < 3; ++round) {
    auto opened = srv.streams_opened();
    srv.drop_connections();
    REQUIRE(wait_until([&] { return srv.streams_opened() > opened; }));
    CHECK(c->containers() == before);
  }
  REQUIRE(streaming(*c));
  CHECK(rec.count() == 1); // the fresh inits carried the same data
  CHECK(rec.empty_reports() == 0);
  CHECK(c->status().counters.disconnects >= 3);
  // Data changed while the connection was down arrives with the next init.
  srv.stop();
  REQUIRE(wait_until(
    [&] { return c->status().state == client_state::disconnected; }));
  CHECK(c->containers() == before);
  srv.set_containers({make("b", 2)});
  srv.start();
  REQUIRE(wait_until([&] { return rec.count() == 2; }));
  CHECK(ids_of(rec.last()) == std::vector<std::string>{"b"});
  CHECK(rec.empty_reports() == 0);
}

TEST_CASE_METHOD(fixture, "a lainlet restart keeps the set meanwhile",
                 "[lainlet_client]") {
  srv.set_containers({make("a", 1), make("b", 2)});
  auto c = start();
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  auto before = c->containers();
  srv.stop();
  REQUIRE(wait_until([&] {
    return c->status().counters.disconnects >= 1
           && c->status().state == client_state::disconnected;
  }));
  // Several failed attempts while lainlet is down.
  auto connects = c->status().counters.connects;
  std::this_thread::sleep_for(300ms);
  CHECK(c->status().counters.connects == connects);
  CHECK(c->containers() == before);
  srv.start();
  REQUIRE(wait_until([&] {
    return c->status().counters.streams >= 2
           && c->status().state == client_state::streaming;
  }));
  CHECK(rec.count() == 1);
  CHECK(c->containers() == before);
  CHECK(rec.empty_reports() == 0);
}

TEST_CASE_METHOD(fixture,
                 "stalled heartbeats are detected within three "
                 "intervals",
                 "[lainlet_client]") {
  srv.set_containers({make("a", 1)});
  auto c = start();
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  // Heartbeats keep a quiet stream alive past the dead timeout.
  REQUIRE(wait_until([&] { return c->status().counters.heartbeats >= 3; }));
  CHECK(c->status().counters.dead_streams == 0);
  CHECK(srv.streams_opened() == 1);

  auto t0 = steady::now();
  srv.set_stalled(true);
  REQUIRE(
    wait_until([&] { return c->status().counters.dead_streams >= 1; }, 6s));
  auto took = steady::now() - t0;
  CHECK(took < 3500ms);
  CHECK(took > 1500ms);
  CHECK(c->containers().size() == 1);
  srv.set_stalled(false);
  REQUIRE(wait_until([&] { return srv.streams_opened() >= 2; }));
  REQUIRE(streaming(*c));
  CHECK(rec.count() == 1);
  CHECK(rec.empty_reports() == 0);
}

TEST_CASE_METHOD(fixture, "an error event is logged and the stream retried",
                 "[lainlet_client]") {
  srv.set_containers({make("a", 1)});
  auto c = start();
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  srv.send_error("etcd is unreachable");
  REQUIRE(wait_until([&] {
    return c->status().counters.error_events == 1 && srv.streams_opened() >= 2
           && c->status().state == client_state::streaming;
  }));
  CHECK(rec.saw_state(client_state::error));
  CHECK(rec.count() == 1);
  CHECK(c->containers().size() == 1);
}

TEST_CASE_METHOD(fixture, "an unprivileged caller is retried until served",
                 "[lainlet_client]") {
  srv.set_containers({make("a", 1)});
  srv.set_privileged(false);
  auto c = start();
  REQUIRE(wait_until([&] { return c->status().counters.error_events >= 2; }));
  CHECK(c->status().state != client_state::streaming);
  CHECK(rec.count() == 0);
  CHECK(c->status().message.find("super required") != std::string::npos);
  srv.set_privileged(true);
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
}

TEST_CASE_METHOD(fixture, "garbage is skipped and the set kept",
                 "[lainlet_client]") {
  srv.set_containers({make("a", 1), make("b", 2)});
  auto o = options_for(srv);
  o.max_size = 64 * 1024;
  auto c = start(o);
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  auto before = c->containers();
  REQUIRE(before.size() == 2);

  srv.send_raw("complete garbage\n\x01\x02\xff\n\n");
  srv.send_raw("id: 90\nevent: update\ndata: {broken json\n\n");
  srv.send_raw("id: 91\nevent: update\ndata: [1,2,3]\n\n");
  srv.send_raw("id: 92\nevent: update\n\n"); // no data at all
  srv.send_raw("id: 93\nevent: update\ndata: " + std::string(100000, 'x')
               + "\n\n");
  srv.send_raw("id: 94\nevent: whatever\ndata: {}\n\n");
  srv.send_raw("id: 0\nevent: heartbeat\n\n");
  REQUIRE(wait_until([&] {
    auto n = c->status().counters;
    return n.garbage_lines >= 2 && n.bad_events >= 3 && n.dropped_events >= 1;
  }));
  CHECK(c->containers() == before);
  CHECK(rec.count() == 1);

  // A bad entry for a known container keeps its last good form; a bad
  // entry for a new one is skipped.
  auto bad_b = make("b", 2);
  bad_b.ip = "not-an-ip";
  auto bad_c = make("c", 3);
  bad_c.port = 70000;
  srv.set_containers({make("a", 1), bad_b, bad_c});
  REQUIRE(wait_until([&] { return c->status().counters.bad_entries >= 4; }));
  CHECK(c->containers() == before);
  CHECK(rec.count() == 1);
  CHECK_FALSE(c->status().entry_errors.empty());

  // A good update still goes through.
  srv.set_containers({make("a", 1)});
  REQUIRE(wait_until([&] { return rec.count() == 2; }));
  CHECK(ids_of(rec.last()) == std::vector<std::string>{"a"});
  CHECK(c->status().state == client_state::streaming);

  // Counters add up over reconnects.
  auto counted = c->status().counters;
  auto opened = srv.streams_opened();
  srv.drop_connections();
  REQUIRE(wait_until([&] { return srv.streams_opened() > opened; }));
  CHECK(c->status().counters.garbage_lines == counted.garbage_lines);
  CHECK(c->status().counters.dropped_events == counted.dropped_events);
}

TEST_CASE_METHOD(fixture, "events split byte by byte over chunked framing",
                 "[lainlet_client]") {
  srv.set_split(1, 50us);
  srv.set_containers({make("a", 1)});
  auto c = start();
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  srv.set_containers({make("a", 1), make("b", 2, "hello.worker")});
  REQUIRE(wait_until([&] { return rec.count() == 2; }));
  auto last = rec.last();
  REQUIRE(last.size() == 2);
  CHECK(last[1].proc == "worker");
  CHECK(c->status().counters.garbage_lines == 0);
  CHECK(c->status().counters.http_errors == 0);
}

TEST_CASE_METHOD(fixture, "an unframed body with CRLF lines split in pieces",
                 "[lainlet_client]") {
  srv.set_chunked(false);
  srv.set_crlf(true);
  srv.set_split(7, 100us);
  srv.set_containers({make("a", 1)});
  auto c = start();
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  srv.set_containers({make("b", 2)});
  REQUIRE(wait_until([&] { return rec.count() == 2; }));
  CHECK(ids_of(rec.last()) == std::vector<std::string>{"b"});
  REQUIRE(wait_until([&] { return c->status().counters.heartbeats >= 1; }));
  CHECK(c->status().counters.garbage_lines == 0);
  // The end of an unframed body is a disconnect, then a fresh stream.
  srv.drop_connections();
  REQUIRE(wait_until([&] { return srv.streams_opened() >= 2; }));
  REQUIRE(streaming(*c));
  CHECK(rec.count() == 2);
}

TEST_CASE_METHOD(fixture, "the node filter drops other nodes' containers",
                 "[lainlet_client]") {
  auto other = make("x", 1);
  other.nodename = "node2";
  other.nodeip = "10.0.0.2";
  srv.set_containers({make("a", 1), other});
  auto c = start();
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  CHECK(ids_of(rec.last()) == std::vector<std::string>{"a"});
}

TEST_CASE("a client started before lainlet retries until it comes up",
          "[lainlet_client]") {
  lainlet_server srv{0, false};
  srv.set_containers({make("a", 1)});
  recorder rec;
  client c{options_for(srv), rec.on_containers(), rec.on_state()};
  REQUIRE(
    wait_until([&] { return c.status().state == client_state::disconnected; }));
  std::this_thread::sleep_for(300ms);
  CHECK(c.status().counters.connects == 0);
  CHECK(rec.count() == 0);
  srv.start();
  REQUIRE(wait_until([&] { return rec.count() == 1; }));
  CHECK(ids_of(rec.last()) == std::vector<std::string>{"a"});
}

TEST_CASE("stopping the client is prompt", "[lainlet_client]") {
  lainlet_server srv;
  recorder rec;
  {
    // Waiting on an open but silent stream.
    srv.set_stalled(true);
    auto c = std::make_unique<client>(options_for(srv), rec.on_containers());
    REQUIRE(
      wait_until([&] { return c->status().state == client_state::connected; }));
    auto t0 = steady::now();
    c.reset();
    CHECK(steady::now() - t0 < 500ms);
  }
  {
    // Waiting in a long backoff.
    lainlet_server down{0, false};
    auto o = options_for(down);
    o.backoff_initial = 10s;
    o.backoff_max = 10s;
    auto c = std::make_unique<client>(o, rec.on_containers());
    REQUIRE(wait_until(
      [&] { return c->status().state == client_state::disconnected; }));
    auto t0 = steady::now();
    c.reset();
    CHECK(steady::now() - t0 < 500ms);
  }
}

TEST_CASE("plain GETs return the body or a failure", "[lainlet_client]") {
  lainlet_server srv;
  srv.set_containers({make("a", 1), make("b", 2)});
  auto v = get(srv.endpoint(), "/version");
  REQUIRE(v.ok());
  CHECK(*v == "2.4.0-test");
  auto cs = get_containers("http://" + srv.endpoint(), "node1");
  REQUIRE(cs.ok());
  CHECK(ids_of(cs->containers) == std::vector<std::string>{"a", "b"});
  auto missing = get(srv.endpoint(), "/nope");
  REQUIRE_FALSE(missing.ok());
  CHECK(missing.error().code == "http_status");
  srv.set_privileged(false);
  auto denied = get_containers(srv.endpoint(), "node1");
  REQUIRE_FALSE(denied.ok());
  CHECK(denied.error().message.find("super required") != std::string::npos);
  lainlet_server down{0, false};
  auto unreachable = get(down.endpoint(), "/version", 500ms);
  REQUIRE_FALSE(unreachable.ok());
  CHECK(unreachable.error().code == "unavailable");
  CHECK_FALSE(get("no-port", "/version").ok());
}

TEST_CASE("a plain GET answer over 4 MiB is refused unbuffered",
          "[lainlet_client]") {
  lainlet_server srv;
  srv.set_streamrouter_ports(std::string(default_max_size + 1, ' '));
  auto r = get(srv.endpoint(), "/v2/streamrouter/ports");
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == "too_large");
  srv.set_streamrouter_ports("[80]");
  auto ok = get(srv.endpoint(), "/v2/streamrouter/ports");
  REQUIRE(ok.ok());
  CHECK(*ok == "[80]");
}
