// SPDX-License-Identifier: MIT
// networkd ctl without a daemon: its command line, the endpoint each
// command asks, the tables and lines it prints from sample answers, and its
// exit codes (tests/integration/ctl_test.cpp runs it against a daemon).
#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>
#include <string>
#include <vector>

#include "actors/ctl.hpp"

using namespace networkd;
using namespace networkd::ctl;

namespace {

const std::string default_api = "127.0.0.1:3000";

command parsed(std::vector<std::string> args) {
  auto c = parse_args(args, default_api);
  REQUIRE(c);
  return *c;
}

std::string failed(std::vector<std::string> args) {
  auto c = parse_args(args, default_api);
  REQUIRE_FALSE(c);
  CHECK(c.error().code == "usage");
  return c.error().message;
}

command verb(std::string v, std::vector<std::string> args = {},
             bool json = false) {
  command c;
  c.api = default_api;
  c.verb = std::move(v);
  c.args = std::move(args);
  c.json = json;
  return c;
}

const std::string vips_sample = R"({"vips":[
  {"name":"vip-holder","key":"/lain/config/vips/10.0.0.5","state":"serving",
   "kind":"address","app":"web","proc":"main","owner":"node-1",
   "lock_revision":12,"address_on":true,
   "ports":[{"src":80,"proto":"tcp","dest":8080}],
   "rules":["tcp 10.0.0.5:80 -> 172.20.0.2:8080"],
   "container":{"ip":"172.20.0.2","instance":1},"health":"healthy",
   "last_change":"2026-12-07T10:00:00Z acquired","last_error":""},
  {"name":"vip-holder","key":"/lain/config/vips/10.0.0.66:53","state":"standby",
   "kind":"port-only","app":"dns","proc":"worker","owner":"node-2",
   "ports":[{"src":53,"proto":"udp","dest":53}],"rules":[],"health":"",
   "last_change":"2026-12-07T10:00:01Z held by node-2","last_error":""}],
 "rejected":[{"key":"/lain/config/vips/10.0.0.7","code":"bad_json",
   "reason":"not JSON","revision":9}]})";

const std::string state_sample = R"({"actors":[
  {"name":"supervisor","state":"running","hostname":"node-1","ready":true,
   "not_ready":"","lease":{"id":"694d7e2a1c3b","ttl":10,"state":"alive",
   "expires_in_ms":8400,"renewals":3,"keepalive_failures":0,"last_error":""},
   "watches":[{"prefix":"/lain/config/vips/","phase":"watching",
     "revision":42,"synced":true,"last_error":"","reconnects":0,
     "resyncs":1}],
   "rejected":[{"key":"/lain/config/domains/bad","code":"bad_field",
     "reason":"ips: not a list","revision":7}],
   "children":[{"name":"vip-holder","state":"serving"},
               {"name":"vip-holder","state":"standby"}]},
  {"name":"leader","state":"leader","leader":"node-1","term":5,
   "candidates":2,"candidate_key":"/lain/networkd/leader/694d7e2a1c3b",
   "last_error":"","publishing":{"/lain/a":"1","/lain/b":null}},
  {"name":"dns-responder","state":"ok","last_error":""}],
 "node":{"hostname":"node-1","address":"10.0.0.1","version":"2.3.0"}})";

} // namespace

TEST_CASE("ctl reads its options anywhere and checks each command's operands") {
  auto c = parsed({"vips"});
  CHECK(c.verb == "vips");
  CHECK(c.api == default_api);
  CHECK_FALSE(c.json);
  c = parsed({"--json", "vip", "10.0.0.5", "--api", "[::1]:4000"});
  CHECK(c.json);
  CHECK(c.verb == "vip");
  CHECK(c.args == std::vector<std::string>{"10.0.0.5"});
  CHECK(c.api == "[::1]:4000");
  CHECK(parsed({"-api=127.0.0.2:1", "status", "-json"}).api == "127.0.0.2:1");
  c = parsed({"dns", "lookup", "www.example.com"});
  CHECK(c.args.size() == 2);
  CHECK(parsed({"dns", "lookup", "x", "AAAA"}).args.size() == 3);
  CHECK(parsed({"--help"}).help);
  CHECK(parsed({"help"}).help);

  CHECK(failed({}) == "a command is missing");
  CHECK(failed({"frobnicate"}) == "unknown command frobnicate");
  CHECK(failed({"vip"}) == "usage: networkd ctl vip IP");
  CHECK(failed({"vip", "a", "b"}) == "usage: networkd ctl vip IP");
  CHECK(failed({"status", "extra"}) == "usage: networkd ctl status");
  CHECK(failed({"dns", "resolve", "x"})
        == "usage: networkd ctl dns lookup NAME [TYPE]");
  CHECK(failed({"dns", "lookup"})
        == "usage: networkd ctl dns lookup NAME [TYPE]");
  CHECK(failed({"status", "--api"}) == "--api needs HOST:PORT");
  CHECK(failed({"status", "--api", "nohost"})
        == "--api nohost is not HOST:PORT");
  CHECK(failed({"status", "--verbose"}) == "unknown option --verbose");
}

TEST_CASE("each command asks its endpoint with its operands encoded") {
  CHECK(target_of(verb("status")) == "/v1/state");
  CHECK(target_of(verb("leader")) == "/v1/state");
  CHECK(target_of(verb("rejected")) == "/v1/state");
  CHECK(target_of(verb("vips")) == "/v1/vips");
  CHECK(target_of(verb("procs")) == "/v1/procs");
  CHECK(target_of(verb("acl")) == "/v1/acl");
  CHECK(target_of(verb("vip", {"10.0.0.5:8080"}))
        == "/v1/vips/10.0.0.5%3A8080");
  CHECK(target_of(verb("dns", {"lookup", "a b&c.example."}))
        == "/v1/dns/lookup?name=a%20b%26c.example.&type=A");
  CHECK(target_of(verb("dns", {"lookup", "x", "AAAA"}))
        == "/v1/dns/lookup?name=x&type=AAAA");
  CHECK(percent_encode("\xff/?") == "%FF%2F%3F");
}

TEST_CASE("tables align their columns and show control characters escaped") {
  CHECK(table({{"A", "BB", "C"}, {"xxx", "y", ""}, {"é", "z", "last"}})
        == "A    BB  C\n"
           "xxx  y\n"
           "é    z   last\n");
  CHECK(table({{"K"}, {"a\x1b[31mred\n"}}) == "K\na\\x1b[31mred\\x0a\n");
  CHECK(printable_cell("x\xc2\x9by\x7f") == "x\\x9by\\x7f");
  CHECK(printable_cell("→ ok") == "→ ok");
  CHECK(pairs({{"a", "1"}, {"long key", ""}}) == "a         1\nlong key  -\n");
}

TEST_CASE("vips print one row per VIP and the rejected VIP keys") {
  auto text = format_vips(vips_sample);
  REQUIRE(text);
  CHECK(*text
        == "VIP           STATE    OWNER   APP.PROC    PORTS         CONTAINER"
           "   HEALTH   LAST CHANGE\n"
           "10.0.0.5      serving  node-1  web.main    80/tcp->8080  "
           "172.20.0.2  healthy  2026-12-07T10:00:00Z acquired\n"
           "10.0.0.66:53  standby  node-2  dns.worker  53/udp->53    -"
           "           -        2026-12-07T10:00:01Z held by node-2\n"
           "\n"
           "REJECTED KEY                CODE      REASON\n"
           "/lain/config/vips/10.0.0.7  bad_json  not JSON\n");
  CHECK(*format_vips(R"({"vips":[],"rejected":[]})") == "no VIP keys\n");
  CHECK_FALSE(format_vips("[1]"));
  CHECK_FALSE(format_vips("not json"));
}

TEST_CASE("status shows the node the lease the leader and the watches") {
  auto text = format_status(state_sample);
  REQUIRE(text);
  CHECK(*text
        == "node      node-1  10.0.0.1  networkd 2.3.0\n"
           "state     running, ready\n"
           "lease     694d7e2a1c3b alive, ttl 10 s, expires in 8400 ms, "
           "renewals 3\n"
           "leader    node-1 (term 5), this node: leader\n"
           "vips      2 (1 serving here)\n"
           "rejected  1 key\n"
           "\n"
           "WATCH               PHASE     REVISION  SYNCED  RECONNECTS  "
           "RESYNCS  LAST ERROR\n"
           "/lain/config/vips/  watching  42        yes     0           1\n"
           "\n"
           "ACTOR          STATE    LAST ERROR\n"
           "supervisor     running\n"
           "leader         leader\n"
           "dns-responder  ok\n");
  CHECK_FALSE(format_status(R"({"actors":[]})"));
}

TEST_CASE("leader rejected and one VIP print key and value lines") {
  CHECK(*format_leader(state_sample)
        == "leader         node-1\n"
           "term           5\n"
           "this node      leader\n"
           "candidates     2\n"
           "candidate key  /lain/networkd/leader/694d7e2a1c3b\n"
           "publishing     2 keys\n"
           "last error     -\n");
  CHECK(*format_rejected(state_sample)
        == "KEY                       CODE       REVISION  REASON\n"
           "/lain/config/domains/bad  bad_field  7         ips: not a list\n");
  auto vip = format_vip(R"({"key":"/lain/config/vips/10.0.0.5",)"
                        R"("state":"serving","owner":"node-1",)"
                        R"("container":{"ip":"172.20.0.2","instance":1}})");
  REQUIRE(vip);
  CHECK(vip->find("serving here   yes\n") != std::string::npos);
  CHECK(vip->find("container      172.20.0.2 (instance 1)\n")
        != std::string::npos);
  CHECK(vip->rfind("vip            10.0.0.5\n", 0) == 0);
  CHECK(vip->find("\nAT") == std::string::npos); // no transitions, no table
  auto moved = format_vip(
    R"({"key":"/lain/config/vips/10.0.0.5","state":"serving",)"
    R"("transitions":[{"at":"2026-12-07T20:00:00.100Z","age_ms":900,)"
    R"("from":"standby","to":"acquiring","reason":"lock free"},)"
    R"({"at":"2026-12-07T20:00:00.140Z","age_ms":860,"from":"acquiring",)"
    R"("to":"serving","reason":"lock, rules and address in place"}]})");
  REQUIRE(moved);
  CHECK(
    moved->find("\nAT                        FROM       TO         REASON\n"
                "2026-12-07T20:00:00.100Z  standby    acquiring  lock free\n"
                "2026-12-07T20:00:00.140Z  acquiring  serving    lock, "
                "rules and address in place\n")
    != std::string::npos);
}

TEST_CASE("procs print the source and one row per proc") {
  auto text = format_procs(
    R"({"name":"health-hub","state":"ok","last_error":"","source":"lainlet",)"
    R"("containers":1,"procs":[{"name":"proc-tracker","proc":"web.main",)"
    R"("state":"healthy","reason":"probe ok","container":{"ip":"172.20.0.2",)"
    R"("instance":1,"id":"abc"},"probe_ports":["80","443"],"last_probe":)"
    R"({"port":80,"ok":true,"error":"","latency_us":120}}]})");
  REQUIRE(text);
  CHECK(*text
        == "source lainlet, ok, 1 containers\n"
           "\n"
           "PROC      HEALTH   CONTAINER   PROBE PORTS  LAST PROBE    "
           "REASON\n"
           "web.main  healthy  172.20.0.2  80 443       80 ok 120 us  "
           "probe ok\n");
}

TEST_CASE("a DNS lookup answer prints as flat key and value lines") {
  auto text = format_flat(
    R"({"name":"www.example.com.","type":"A","source":"forward",)"
    R"("upstream":{"address":"10.0.0.53:53","healthy":true},)"
    R"("cache":{"entries":[{"data":"93.184.216.34","ttl_left":42}]},)"
    R"("rule":null,"ips":["1.2.3.4","5.6.7.8"],"notes":[]})");
  REQUIRE(text);
  CHECK(*text
        == "name                       www.example.com.\n"
           "type                       A\n"
           "source                     forward\n"
           "upstream.address           10.0.0.53:53\n"
           "upstream.healthy           true\n"
           "cache.entries[0].data      93.184.216.34\n"
           "cache.entries[0].ttl_left  42\n"
           "rule                       null\n"
           "ips                        1.2.3.4, 5.6.7.8\n"
           "notes                      []\n");
  // Deep nesting is cut, not followed by recursion.
  std::string deep = std::string(1000, '[') + "1" + std::string(1000, ']');
  auto d = format_flat(deep);
  REQUIRE(d);
  CHECK(d->find("[...]") != std::string::npos);
  CHECK_FALSE(format_flat(std::string(100000, '[')));
}

TEST_CASE("the exit code says whether this node serves the VIP") {
  auto serving = answer{200, R"({"key":"/lain/config/vips/10.0.0.5",)"
                             R"("state":"serving"})"};
  auto standby = answer{200, R"({"key":"/lain/config/vips/10.0.0.5",)"
                             R"("state":"standby"})"};
  auto unknown = answer{404, R"({"key":"/lain/config/vips/10.0.0.5",)"
                             R"("error":"this node knows no VIP 10.0.0.5"})"};
  auto o = judge(verb("vip", {"10.0.0.5"}), serving);
  CHECK(o.code == exit_ok);
  CHECK(o.out.find("serving here   yes") != std::string::npos);
  o = judge(verb("vip", {"10.0.0.5"}), standby);
  CHECK(o.code == exit_no);
  CHECK(o.out.find("serving here   no") != std::string::npos);
  o = judge(verb("vip", {"10.0.0.5"}), unknown);
  CHECK(o.code == exit_no);
  CHECK(o.out == "VIP 10.0.0.5: this node knows no VIP 10.0.0.5\n");
  o = judge(verb("vip", {"10.0.0.5"}, true), serving);
  CHECK(o.code == exit_ok);
  CHECK(o.out == serving.body);
  CHECK(judge(verb("vip", {"10.0.0.5"}, true), unknown).code == exit_no);
  o = judge(verb("vip", {"10.0.0.5"}), answer{503, "{}"});
  CHECK(o.code == exit_no);
  CHECK(o.err == "networkd ctl: GET /v1/vips/10.0.0.5: HTTP 503\n");
}

TEST_CASE("other commands exit 0 on an answer 1 on an error status and 3 on "
          "an unreadable one") {
  CHECK(judge(verb("vips"), answer{200, vips_sample}).code == exit_ok);
  auto o = judge(verb("vips", {}, true), answer{200, vips_sample});
  CHECK(o.code == exit_ok);
  CHECK(o.out == vips_sample);
  o = judge(verb("acl"), answer{404, ""});
  CHECK(o.code == exit_no);
  CHECK(o.err
        == "networkd ctl: GET /v1/acl: HTTP 404 (this networkd has no such "
           "endpoint)\n");
  o = judge(verb("dns", {"lookup", "x"}),
            answer{400, R"({"error":"bad type"})"});
  CHECK(o.code == exit_no);
  CHECK(o.err.find(": HTTP 400: bad type\n") != std::string::npos);
  o = judge(verb("status"), answer{200, "<html>"});
  CHECK(o.code == exit_unreachable);
  CHECK(o.err.find("not a /v1/state object") != std::string::npos);
}

TEST_CASE("ctl exits 2 on a bad command line and 3 when the API is not "
          "there") {
  std::ostringstream out;
  std::ostringstream err;
  CHECK(run({"bogus"}, default_api, out, err) == exit_usage);
  CHECK(err.str()
        == "networkd ctl: unknown command bogus (see networkd ctl --help)\n");
  CHECK(run({"--help"}, default_api, out, err) == exit_ok);
  CHECK(out.str().find("dns lookup NAME [TYPE]") != std::string::npos);

  // A bound port nobody listens on: the connection is refused.
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
  socklen_t len = sizeof(a);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  auto api = "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
  err.str("");
  CHECK(run({"status", "--api", api}, default_api, out, err)
        == exit_unreachable);
  CHECK(err.str().rfind("networkd ctl: cannot reach the admin API: GET http://"
                          + api + "/v1/state: ",
                        0)
        == 0);
  CHECK(run({"vip", "10.0.0.5", "--api", api}, default_api, out, err)
        == exit_unreachable);
  ::close(fd);
}
