// SPDX-License-Identifier: MIT
// lainlet's event-stream parser, chunked decoder and containers parser:
// splits anywhere, CRLF, garbage, oversized input, bad entries.
#include <catch2/catch.hpp>

#include <random>
#include <string>
#include <vector>

#include "net/peers/lainlet.hpp"
#include "tests/support/lainlet_server.hpp"

using namespace networkd;
using namespace networkd::lainlet;
using networkd::test::lainlet_container;
using networkd::test::lainlet_server;

namespace {

const std::string sample_stream
  = "id: 1\nevent: init\ndata: {\"a\": 1}\n\n"
    "id: 0\nevent: heartbeat\n\n"
    "id: 2\nevent: update\ndata: {\"b\": [1, 2]}\n\n"
    "id: 3\nevent: delete\ndata: {}\n\n"
    "id: 0\nevent: error\ndata: etcd is gone\n\n";

void check_sample(const std::vector<event>& evs) {
  REQUIRE(evs.size() == 5);
  CHECK(evs[0].id == 1);
  CHECK(evs[0].kind == event_kind::init);
  CHECK(evs[0].data == "{\"a\": 1}");
  CHECK(evs[1].kind == event_kind::heartbeat);
  CHECK(evs[1].data.empty());
  CHECK(evs[2].id == 2);
  CHECK(evs[2].kind == event_kind::update);
  CHECK(evs[2].data == "{\"b\": [1, 2]}");
  CHECK(evs[3].kind == event_kind::erase);
  CHECK(evs[3].name == "delete");
  CHECK(evs[3].data == "{}");
  CHECK(evs[4].kind == event_kind::error);
  CHECK(evs[4].id == 0);
  CHECK(evs[4].data == "etcd is gone");
}

std::vector<event> feed_in_chunks(stream_parser& p, const std::string& text,
                                  std::mt19937& rng, size_t max_chunk) {
  std::vector<event> out;
  std::uniform_int_distribution<size_t> dist{1, max_chunk};
  size_t pos = 0;
  while (pos < text.size()) {
    auto n = std::min(dist(rng), text.size() - pos);
    auto r = p.feed(std::string_view(text).substr(pos, n));
    for (auto& e : r.events)
      out.push_back(std::move(e));
    pos += n;
  }
  return out;
}

std::string crlf(std::string text) {
  std::string out;
  for (char ch : text) {
    if (ch == '\n')
      out += '\r';
    out += ch;
  }
  return out;
}

std::string chunked(const std::string& body, size_t piece) {
  std::string out;
  for (size_t i = 0; i < body.size(); i += piece) {
    auto part = body.substr(i, piece);
    char size[32];
    std::snprintf(size, sizeof(size), "%zx", part.size());
    out += size;
    out += i == 0 ? ";ext=1\r\n" : "\r\n";
    out += part + "\r\n";
  }
  return out + "0\r\nX-Trailer: y\r\n\r\n";
}

std::string entry(const std::string& fields) {
  return "{" + fields + "}";
}

const std::string good_fields
  = "\"app\":\"hello\",\"app_version\":\"v1\",\"proc\":\"hello.web.web\","
    "\"nodename\":\"node1\",\"nodeip\":\"10.0.0.1\",\"ip\":\"172.20.0.2\","
    "\"port\":80,\"instanceNo\":1";

// Replaces "name":<old value> in good_fields.
std::string with_field(const std::string& name, const std::string& value) {
  auto f = good_fields;
  auto at = f.find("\"" + name + "\":");
  REQUIRE(at != std::string::npos);
  auto start = at + name.size() + 3;
  auto end = f.find(",\"", start);
  f.replace(start, end == std::string::npos ? std::string::npos : end - start,
            value);
  return f;
}

std::string without_field(const std::string& name) {
  auto f = good_fields;
  auto at = f.find("\"" + name + "\":");
  REQUIRE(at != std::string::npos);
  auto end = f.find(",\"", at);
  if (end == std::string::npos)
    f.erase(at > 0 ? at - 1 : at);
  else
    f.erase(at, end + 1 - at);
  return f;
}

containers_result parse_ok(const std::string& json,
                           std::string_view node = {}) {
  auto r = parse_containers(json, node);
  REQUIRE(r.ok());
  return *r;
}

} // namespace

// -- event stream -------------------------------------------------------------

TEST_CASE("the event stream is parsed into events", "[lainlet]") {
  stream_parser p;
  auto r = p.feed(sample_stream);
  CHECK(r.errors.empty());
  check_sample(r.events);
  CHECK(p.events() == 5);
  CHECK(p.garbage_lines() == 0);
}

TEST_CASE("events split at every byte are parsed the same", "[lainlet]") {
  stream_parser p;
  std::vector<event> out;
  for (char ch : sample_stream) {
    auto r = p.feed(std::string_view(&ch, 1));
    CHECK(r.errors.empty());
    for (auto& e : r.events)
      out.push_back(std::move(e));
  }
  check_sample(out);
}

TEST_CASE("events split at random offsets are parsed the same", "[lainlet]") {
  std::mt19937 rng{42};
  for (int round = 0; round < 300; ++round) {
    stream_parser p;
    auto text = round % 2 == 0 ? sample_stream : crlf(sample_stream);
    auto evs = feed_in_chunks(p, text, rng, 1 + round % 40);
    check_sample(evs);
  }
}

TEST_CASE("CRLF line ends are accepted", "[lainlet]") {
  stream_parser p;
  auto r = p.feed(crlf(sample_stream));
  check_sample(r.events);
  // A CR and its LF in different reads.
  stream_parser q;
  auto a = q.feed("id: 7\r\nevent: update\r\ndata: {}\r");
  CHECK(a.events.empty());
  auto b = q.feed("\n\r");
  CHECK(b.events.empty());
  auto c = q.feed("\n");
  REQUIRE(c.events.size() == 1);
  CHECK(c.events[0].id == 7);
  CHECK(c.events[0].data == "{}");
}

TEST_CASE("garbage lines are skipped and counted", "[lainlet]") {
  stream_parser p;
  auto r = p.feed("hello world\n"
                  "id: 1\nbogus line\nevent: init\nretry: 10\ndata: {}\n\n"
                  ": a comment\n"
                  "\x01\x02\xff\n\n"
                  "id: x1\nevent: update\ndata: {\"k\":1}\n\n");
  REQUIRE(r.events.size() == 2);
  CHECK(r.events[0].kind == event_kind::init);
  CHECK(r.events[0].id == 1);
  CHECK(r.events[0].data == "{}");
  CHECK(r.events[1].kind == event_kind::update);
  CHECK(r.events[1].id == 0); // the bad id is garbage
  CHECK(p.garbage_lines() == 5);
  CHECK(r.errors.empty());
}

TEST_CASE("unknown and missing event names are reported as unknown",
          "[lainlet]") {
  stream_parser p;
  auto r = p.feed("id: 4\nevent: surprise\ndata: 1\n\n"
                  "data: no name\n\n"
                  "event:\n\n"
                  "event:heartbeat\n\n");
  REQUIRE(r.events.size() == 4);
  CHECK(r.events[0].kind == event_kind::unknown);
  CHECK(r.events[0].name == "surprise");
  CHECK(r.events[1].kind == event_kind::unknown);
  CHECK(r.events[1].data == "no name");
  CHECK(r.events[2].kind == event_kind::unknown);
  CHECK(r.events[3].kind == event_kind::heartbeat);
}

TEST_CASE("several data lines are joined and blank runs ignored", "[lainlet]") {
  stream_parser p;
  auto r = p.feed("\n\n\nevent: update\ndata: {\"a\":\ndata: 1}\n\n\n\n");
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].data == "{\"a\":\n1}");
}

TEST_CASE("an event without its blank line is not delivered", "[lainlet]") {
  stream_parser p;
  auto r = p.feed("id: 1\nevent: init\ndata: {}\n");
  CHECK(r.events.empty());
  p.reset(); // a new connection
  auto s = p.feed("\nid: 2\nevent: update\ndata: {\"x\":1}\n\n");
  REQUIRE(s.events.size() == 1);
  CHECK(s.events[0].id == 2);
}

TEST_CASE("an overlong line drops its event with an error", "[lainlet]") {
  stream_parser p{1024, 4096};
  std::string big(5000, 'x');
  auto r = p.feed("id: 1\nevent: update\ndata: " + big
                  + "\n\nid: 2\nevent: update\ndata: {}\n\n");
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].id == 2);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].find("line longer than 1024") != std::string::npos);
  CHECK(p.dropped_events() == 1);
}

TEST_CASE("an overlong line fed byte by byte is not buffered", "[lainlet]") {
  stream_parser p{64, 256};
  std::string text = "id: 1\nevent: update\ndata: " + std::string(100000, 'y')
                     + "\n\nid: 2\nevent: update\ndata: {}\n\n";
  std::vector<event> evs;
  size_t errors = 0;
  for (char ch : text) {
    auto r = p.feed(std::string_view(&ch, 1));
    errors += r.errors.size();
    for (auto& e : r.events)
      evs.push_back(std::move(e));
  }
  CHECK(errors == 1);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].id == 2);
}

TEST_CASE("an overlong event of short lines is dropped", "[lainlet]") {
  stream_parser p{100, 500};
  std::string text = "id: 1\nevent: update\n";
  for (int i = 0; i < 50; ++i)
    text += "data: 0123456789\n";
  text += "\nid: 2\nevent: update\ndata: {}\n\n";
  auto r = p.feed(text);
  REQUIRE(r.events.size() == 1);
  CHECK(r.events[0].id == 2);
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].find("event longer than 500") != std::string::npos);
}

TEST_CASE("a huge payload under the default limit is delivered", "[lainlet]") {
  stream_parser p;
  std::string big(3 * 1024 * 1024, 'z');
  std::mt19937 rng{7};
  auto evs
    = feed_in_chunks(p, "event: update\ndata: " + big + "\n\n", rng, 70000);
  REQUIRE(evs.size() == 1);
  CHECK(evs[0].data.size() == big.size());
}

// -- chunked ------------------------------------------------------------------

TEST_CASE("chunked framing is decoded across any split", "[lainlet]") {
  std::mt19937 rng{1};
  std::string body = sample_stream + std::string(300, 'q');
  for (size_t piece : {1, 7, 64, 1000}) {
    auto wire = chunked(body, piece);
    for (size_t max_read : {1, 3, 17, 4096}) {
      chunked_decoder dec;
      std::string out;
      std::uniform_int_distribution<size_t> dist{1, max_read};
      for (size_t pos = 0; pos < wire.size();) {
        auto n = std::min(dist(rng), wire.size() - pos);
        REQUIRE(dec.feed(std::string_view(wire).substr(pos, n), out));
        pos += n;
      }
      CHECK(dec.done());
      CHECK(out == body);
    }
  }
}

TEST_CASE("bad chunked framing fails", "[lainlet]") {
  for (std::string wire :
       {"zz\r\nabc", "3\r\nabcX", "\r\n", "1234567890abcdef0\r\n"}) {
    chunked_decoder dec;
    std::string out;
    CHECK_FALSE(dec.feed(wire, out));
    CHECK(dec.failed());
    CHECK_FALSE(dec.error().empty());
  }
}

// -- containers ---------------------------------------------------------------

TEST_CASE("containers data is parsed, one entry per container", "[lainlet]") {
  lainlet_container a;
  a.id = "aaa";
  a.proc = "hello.web.web";
  a.app = "hello";
  a.instance = 2;
  lainlet_container b;
  b.id = "bbb";
  b.proc = "worker";
  b.app = "hello";
  b.ip = "172.20.0.3";
  b.port = 0;
  b.instance = 0;
  auto r = parse_ok(lainlet_server::containers_json({b, a}));
  CHECK(r.errors.empty());
  REQUIRE(r.containers.size() == 2);
  auto& c0 = r.containers[0];
  CHECK(c0.app == "hello");
  CHECK(c0.proc == "web");
  CHECK(c0.pod == "hello.web.web");
  CHECK(c0.instance == 2);
  CHECK(c0.container_id == "aaa");
  CHECK(c0.node == "node1");
  CHECK(c0.node_ip == "10.0.0.1");
  CHECK(c0.ip == "172.20.0.2");
  CHECK(c0.port == 80);
  CHECK(c0.app_version == "v1");
  auto& c1 = r.containers[1];
  CHECK(c1.proc == "worker");
  CHECK(c1.port == 0);
  CHECK(c1.instance == 0);
}

TEST_CASE("an empty object is an empty set", "[lainlet]") {
  auto r = parse_ok("{}");
  CHECK(r.containers.empty());
  CHECK(r.errors.empty());
}

TEST_CASE("the output is sorted by app, proc and instance", "[lainlet]") {
  std::vector<lainlet_container> cs;
  int n = 0;
  for (auto app : {"zeta", "alpha"})
    for (auto proc : {"worker", "web"})
      for (int inst : {3, 1, 2}) {
        lainlet_container c;
        c.app = app;
        c.proc = std::string(app) + "." + proc;
        c.instance = inst;
        c.id = "id" + std::to_string(n++);
        cs.push_back(c);
      }
  auto r = parse_ok(lainlet_server::containers_json(cs));
  REQUIRE(r.containers.size() == 12);
  CHECK(std::is_sorted(r.containers.begin(), r.containers.end()));
  CHECK(r.containers.front().app == "alpha");
  CHECK(r.containers.front().proc == "web");
  CHECK(r.containers.front().instance == 1);
}

TEST_CASE("duplicates under node name and IP count once", "[lainlet]") {
  auto e = entry(good_fields);
  auto r = parse_ok("{\"node1/abc\":" + e + ",\"10.0.0.1/abc\":" + e + "}");
  CHECK(r.errors.empty());
  REQUIRE(r.containers.size() == 1);
  CHECK(r.containers[0].container_id == "abc");
}

TEST_CASE("conflicting duplicates keep one and report the other", "[lainlet]") {
  auto r
    = parse_ok("{\"node1/abc\":" + entry(good_fields) + ",\"10.0.0.1/abc\":"
               + entry(with_field("ip", "\"172.20.0.9\"")) + "}");
  REQUIRE(r.containers.size() == 1);
  CHECK(r.containers[0].ip == "172.20.0.9"); // "10.0.0.1/abc" sorts first
  REQUIRE(r.errors.size() == 1);
  CHECK(r.errors[0].key == "node1/abc");
  CHECK(r.errors[0].container_id == "abc");
}

TEST_CASE("pod names and plain procs give the last dot part", "[lainlet]") {
  std::vector<std::pair<std::string, std::string>> cases
    = {{"web", "web"},
       {"hello.web", "web"},
       {"hello.web.main", "main"},
       {"a.b.c.d", "d"}};
  for (auto& [pod, proc] : cases) {
    auto r = parse_ok(
      "{\"node1/x\":" + entry(with_field("proc", "\"" + pod + "\"")) + "}");
    REQUIRE(r.containers.size() == 1);
    CHECK(r.containers[0].proc == proc);
    CHECK(r.containers[0].pod == pod);
  }
  auto bad
    = parse_ok("{\"node1/x\":" + entry(with_field("proc", "\"a.web.\"")) + "}");
  CHECK(bad.containers.empty());
  CHECK(bad.errors.size() == 1);
}

TEST_CASE("missing fields skip the entry and name it", "[lainlet]") {
  for (auto name :
       {"app", "proc", "nodename", "nodeip", "ip", "port", "instanceNo"}) {
    INFO(name);
    auto r = parse_ok("{\"node1/bad\":" + entry(without_field(name))
                      + ",\"node1/good\":" + entry(good_fields) + "}");
    REQUIRE(r.containers.size() == 1);
    CHECK(r.containers[0].container_id == "good");
    REQUIRE(r.errors.size() == 1);
    CHECK(r.errors[0].key == "node1/bad");
    CHECK(r.errors[0].container_id == "bad");
    CHECK(r.errors[0].reason.find(name) != std::string::npos);
  }
  // app_version is optional.
  auto r
    = parse_ok("{\"node1/x\":" + entry(without_field("app_version")) + "}");
  REQUIRE(r.containers.size() == 1);
  CHECK(r.containers[0].app_version.empty());
}

TEST_CASE("wrong types and bad values skip the entry", "[lainlet]") {
  std::vector<std::pair<std::string, std::string>> bad = {
    {"app", "1"},
    {"app", "\"\""},
    {"app", "null"},
    {"app_version", "2"},
    {"proc", "[\"web\"]"},
    {"proc", "\"\""},
    {"nodename", "\"\""},
    {"nodeip", "\"node1\""},
    {"ip", "\"\""},
    {"ip", "\"172.20.0\""},
    {"ip", "\"300.1.1.1\""},
    {"ip", "\"::1\""},
    {"port", "\"80\""},
    {"port", "80.5"},
    {"port", "-1"},
    {"port", "65536"},
    {"port", "true"},
    {"instanceNo", "-1"},
    {"instanceNo", "\"1\""},
    {"instanceNo", "1e3"},
    {"instanceNo", "99999999999"},
  };
  for (auto& [name, value] : bad) {
    INFO(name << " = " << value);
    auto r = parse_ok("{\"node1/x\":" + entry(with_field(name, value)) + "}");
    CHECK(r.containers.empty());
    CHECK(r.errors.size() == 1);
  }
  auto edge
    = parse_ok("{\"node1/x\":" + entry(with_field("port", "65535"))
               + ",\"node1/y\":" + entry(with_field("port", "0")) + "}");
  CHECK(edge.containers.size() == 2);
}

TEST_CASE("bad keys and non-object entries are skipped", "[lainlet]") {
  auto e = entry(good_fields);
  auto r = parse_ok("{\"noslash\":" + e + ",\"/id\":" + e + ",\"node1/\":" + e
                    + ",\"node1/a/b\":" + e + ",\"othernode/id\":" + e
                    + ",\"node1/n\":null,\"node1/s\":\"str\",\"node1/ok\":" + e
                    + "}");
  REQUIRE(r.containers.size() == 1);
  CHECK(r.containers[0].container_id == "ok");
  CHECK(r.errors.size() == 7);
}

TEST_CASE("broken JSON and a wrong top level are failures", "[lainlet]") {
  std::vector<std::string> texts = {"",
                                    "{",
                                    "{\"node1/x\":",
                                    "nope",
                                    "[]",
                                    "null",
                                    "\"str\"",
                                    "42",
                                    "{\"a\":1} trailing",
                                    std::string(100000, '[')};
  for (auto& text : texts) {
    INFO(text.substr(0, 40));
    auto r = parse_containers(text);
    REQUIRE_FALSE(r.ok());
    CHECK(r.error().code == "bad_json");
  }
}

TEST_CASE("containers data over the limit is rejected unparsed", "[lainlet]") {
  auto r = parse_containers("{\"node1/x\":" + entry(good_fields) + "}", {}, 16);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == "too_large");
  std::vector<lainlet_container> many(600);
  for (size_t i = 0; i < many.size(); ++i) {
    many[i].id = "c" + std::to_string(i);
    many[i].app_version = std::string(4000, 'v');
  }
  auto json = lainlet_server::containers_json(many);
  REQUIRE(json.size() > 4 * 1024 * 1024);
  CHECK(parse_containers(json).error().code == "too_large");
  auto ok = parse_containers(json, {}, json.size());
  REQUIRE(ok.ok());
  CHECK(ok->containers.size() == many.size());
}

TEST_CASE("the node filter keeps this node's containers", "[lainlet]") {
  lainlet_container a;
  a.id = "a";
  lainlet_container b;
  b.id = "b";
  b.nodename = "node2";
  b.nodeip = "10.0.0.2";
  auto json = lainlet_server::containers_json({a, b});
  auto by_name = parse_ok(json, "node1");
  REQUIRE(by_name.containers.size() == 1);
  CHECK(by_name.containers[0].container_id == "a");
  CHECK(by_name.other_nodes == 1);
  auto by_ip = parse_ok(json, "10.0.0.2");
  REQUIRE(by_ip.containers.size() == 1);
  CHECK(by_ip.containers[0].container_id == "b");
  CHECK(parse_ok(json).containers.size() == 2);
}

TEST_CASE("the watch target encodes the node name", "[lainlet]") {
  using std::chrono::seconds;
  CHECK(containers_target("node1", true, seconds{5})
        == "/v2/containers?nodename=node1&watch=1&heartbeat=5");
  CHECK(containers_target("a b&c", false, seconds{5})
        == "/v2/containers?nodename=a%20b%26c");
  CHECK(containers_target("n", true, seconds{0})
        == "/v2/containers?nodename=n&watch=1");
}

TEST_CASE("reply heads give the status and the framing", "[lainlet]") {
  auto h = parse_head("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                      "Content-Length: 5\r\n");
  REQUIRE(h);
  CHECK(h->status == 200);
  CHECK(h->chunked);
  CHECK_FALSE(h->content_length);
  h = parse_head("HTTP/1.0 403 Forbidden\nContent-Length: 14\n");
  REQUIRE(h);
  CHECK(h->reason == "Forbidden");
  CHECK(*h->content_length == 14);
  for (auto bad :
       {"", "HTTP/2 200 OK", "HTTP/1.1 20 OK", "HTTP/1.1 200 OK\nno colon",
        "HTTP/1.1 200 OK\nTransfer-Encoding: gzip",
        "HTTP/1.1 200 OK\nContent-Length: -1"})
    CHECK_FALSE(parse_head(bad));
}
