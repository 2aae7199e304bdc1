// SPDX-License-Identifier: MIT
// Tests of the etcd key contract parsers: good values, bad ones, and garbage.

#include "net/base/json_fields.hpp"
#include "net/cluster/config.hpp"

#include <catch2/catch.hpp>

#include <random>
#include <set>
#include <string>

using namespace networkd;
using namespace networkd::config;

namespace {

// Checks a failed result: its code, and that the message contains `part`.
template <class T>
void require_failure(const result<T>& r, const std::string& code,
                     const std::string& part = {}) {
  REQUIRE_FALSE(r.ok());
  INFO(r.error().to_string());
  CHECK(r.error().code == code);
  CHECK(r.error().message.find(part) != std::string::npos);
}

const char* simple_vip
  = R"({"app":"webrouter","proc":"haproxy","ports":[{"src":"80"}]})";

} // namespace

// -- classify ----------------------------------------------------------------

TEST_CASE("classify maps keys to families and suffixes") {
  auto c = classify("/lain/config/vips/10.0.0.5:80");
  CHECK(c.fam == family::vip);
  CHECK(c.suffix == "10.0.0.5:80");
  c = classify("/lain/config/domains/*.lain");
  CHECK(c.fam == family::domain);
  CHECK(c.suffix == "*.lain");
  c = classify("/lain/config/domain_servers/lain");
  CHECK(c.fam == family::domain_servers);
  CHECK(c.suffix == "lain");
  c = classify("/lain/networkd/config/lease_ttl");
  CHECK(c.fam == family::knob);
  CHECK(c.suffix == "lease_ttl");
  c = classify("/lain/config/streamrouter/vippool");
  CHECK(c.fam == family::vippool);
  CHECK(c.suffix.empty());
  CHECK(classify("/lain/swarm/docker/swarm/leader").fam
        == family::swarm_leader);
  CHECK(classify("/lain/deployd/leader").fam == family::deployd_leader);
}

TEST_CASE("classify returns unknown for other keys and empty suffixes") {
  CHECK(classify("").fam == family::unknown);
  CHECK(classify("/lain/config/vips/").fam == family::unknown);
  CHECK(classify("/lain/config/domains/").fam == family::unknown);
  CHECK(classify("/lain/config/domain_servers/").fam == family::unknown);
  CHECK(classify("/lain/networkd/config/").fam == family::unknown);
  CHECK(classify("/lain/config/vips").fam == family::unknown);
  CHECK(classify("/lain/config/streamrouter/vippool/").fam == family::unknown);
  CHECK(classify("/lain/deployd/leader2").fam == family::unknown);
  CHECK(classify("/lain/networkd/vips/10.0.0.1.lock").fam == family::vip_lock);
  CHECK(classify("/lain/networkd/vips/10.0.0.1.lock").suffix == "10.0.0.1");
  CHECK(classify("/lain/networkd/vips/nope.lock").fam == family::unknown);
  CHECK(classify("/lain/networkd/leader/7a").fam == family::leader_candidate);
  CHECK(classify("/lain/config/tinydns_fqdns/lain").fam
        == family::tinydns_fqdns);
  CHECK(classify("/lain/config/tinydns_fqdns/").fam == family::unknown);
  CHECK(classify("/lain/networkd/apps/web/worker/10.0.0.1:80").fam
        == family::app_endpoint);
  CHECK(classify("/lain/networkd/apps/web/worker/10.0.0.1:80").suffix
        == "web/worker/10.0.0.1:80");
  CHECK(classify("/lain/config/whitelist_ips/x").fam == family::unknown);
}

TEST_CASE("enums have names") {
  CHECK(std::string(to_string(family::vip)) == "vip");
  CHECK(std::string(to_string(family::domain_servers)) == "domain_servers");
  CHECK(std::string(to_string(family::vippool)) == "vippool");
  CHECK(std::string(to_string(family::swarm_leader)) == "swarm_leader");
  CHECK(std::string(to_string(family::deployd_leader)) == "deployd_leader");
  CHECK(std::string(to_string(family::knob)) == "knob");
  CHECK(std::string(to_string(family::domain)) == "domain");
  CHECK(std::string(to_string(family::unknown)) == "unknown");
  CHECK(std::string(to_string(proto::tcp)) == "tcp");
  CHECK(std::string(to_string(proto::udp)) == "udp");
  CHECK(std::string(to_string(domain_type::fixed)) == "fixed");
  CHECK(std::string(to_string(domain_type::node)) == "node");
  CHECK(std::string(to_string(domain_type::webrouter)) == "webrouter");
}

// -- IPv4 and ports ----------------------------------------------------------

TEST_CASE("is_ipv4 accepts strict dotted quads only") {
  for (auto good : {"0.0.0.0", "10.0.0.1", "255.255.255.255", "1.2.3.4",
                    "192.168.10.254", "100.20.3.0"})
    CHECK(is_ipv4(good));
  for (auto bad :
       {"",          "256.1.1.1",  "1.2.3",      "1.2.3.4.5",  "01.2.3.4",
        "010.0.0.1", "1.2.3.04",   " 1.2.3.4",   "1.2.3.4 ",   "1.2.3.4\n",
        "1..2.3",    ".1.2.3",     "1.2.3.",     "a.b.c.d",    "1.2.3.-4",
        "1.2.3.+4",  "1.2.3.4/32", "1.2.3.4:80", "1000.1.1.1", "1.2.3.2555",
        "::1",       "0x1.2.3.4",  "1.2.3.4444"})
    CHECK_FALSE(is_ipv4(bad));
  CHECK_FALSE(is_ipv4(std::string("1.2.3.4\0", 8)));
}

TEST_CASE("parse_port accepts 1 to 65535") {
  CHECK(*parse_port("1") == 1);
  CHECK(*parse_port("80") == 80);
  CHECK(*parse_port("65535") == 65535);
}

TEST_CASE("parse_port rejects everything else with bad_field") {
  require_failure(parse_port(""), "bad_field", "empty");
  require_failure(parse_port("0"), "bad_field", "port 0 out of range 1-65535");
  require_failure(parse_port("65536"), "bad_field",
                  "port 65536 out of range 1-65535");
  require_failure(parse_port("99999999999999999999999"), "bad_field",
                  "out of range");
  require_failure(parse_port("-1"), "bad_field", "out of range");
  require_failure(parse_port("abc"), "bad_field", "not a number");
  require_failure(parse_port("80x"), "bad_field", "not a number");
  require_failure(parse_port(" 80"), "bad_field", "not a number");
  require_failure(parse_port("8.0"), "bad_field", "not a number");
  require_failure(parse_port("+80"), "bad_field", "not a number");
  require_failure(parse_port("-"), "bad_field", "not a number");
}

// -- VIPs --------------------------------------------------------------------

TEST_CASE("a VIP with an IP key parses with defaults") {
  auto r = parse_vip("192.168.10.254", R"({
    "app": "resource.elb.webrouter", "proc": "haproxy",
    "ports": [{"src": "80", "proto": "tcp"}, {"src": "443"},
              {"src": "5555", "proto": "udp", "dest": "53"}]})");
  REQUIRE(r.ok());
  CHECK(r->key == "192.168.10.254");
  CHECK(r->ip == "192.168.10.254");
  CHECK(r->key_port == 0);
  CHECK_FALSE(r->port_only());
  CHECK(r->app == "resource.elb.webrouter");
  CHECK(r->proc == "haproxy");
  REQUIRE(r->ports.size() == 3);
  CHECK(r->ports[0] == port_mapping{80, proto::tcp, 80});
  CHECK(r->ports[1] == port_mapping{443, proto::tcp, 443});
  CHECK(r->ports[2] == port_mapping{5555, proto::udp, 53});
  CHECK(r->excluded_nodes.empty());
}

TEST_CASE("VIP ports may be numbers and proto is case-insensitive") {
  auto r = parse_vip("10.0.0.5", R"({"app":"a","proc":"p","ports":[
    {"src":80,"dest":8080,"proto":"UDP"},{"src":80,"proto":"Tcp"},
    {"src":"81","proto":"","dest":""},{"src":82.0}]})");
  REQUIRE(r.ok());
  REQUIRE(r->ports.size() == 4);
  CHECK(r->ports[0] == port_mapping{80, proto::udp, 8080});
  CHECK(r->ports[1] == port_mapping{80, proto::tcp, 80});
  CHECK(r->ports[2] == port_mapping{81, proto::tcp, 81});
  CHECK(r->ports[3] == port_mapping{82, proto::tcp, 82});
}

TEST_CASE("VIP with IP:PORT key takes src from the key and dest from src") {
  auto r = parse_vip("10.0.0.5:8080", R"({"app":"a","proc":"p",
    "ports":[{"proto":"udp"},{"dest":"9090"},{"src":"81","dest":"82"}]})");
  REQUIRE(r.ok());
  CHECK(r->port_only());
  CHECK(r->key_port == 8080);
  CHECK(r->ip == "10.0.0.5");
  CHECK(r->key == "10.0.0.5:8080");
  REQUIRE(r->ports.size() == 3);
  CHECK(r->ports[0] == port_mapping{8080, proto::udp, 8080});
  CHECK(r->ports[1] == port_mapping{8080, proto::tcp, 9090});
  CHECK(r->ports[2] == port_mapping{81, proto::tcp, 82});
}

TEST_CASE("0.0.0.0 is only valid with a port") {
  auto r = parse_vip("0.0.0.0:8080",
                     R"({"app":"a","proc":"p","ports":[{"dest":80}]})");
  REQUIRE(r.ok());
  CHECK(r->ip == "0.0.0.0");
  CHECK(r->ports[0] == port_mapping{8080, proto::tcp, 80});
  require_failure(parse_vip("0.0.0.0", simple_vip), "bad_key",
                  "/lain/config/vips/0.0.0.0: 0.0.0.0 needs a port");
  require_failure(parse_vip("0.0.0.0:0", simple_vip), "bad_key",
                  "out of range");
  require_failure(parse_vip("0.0.0.0:", simple_vip), "bad_key", "empty");
}

TEST_CASE("VIP keys with bad shapes are bad_key") {
  require_failure(parse_vip("10.0.0.5:80:90", simple_vip), "bad_key",
                  "/lain/config/vips/10.0.0.5:80:90: expected IP or IP:PORT");
  require_failure(parse_vip("::1", simple_vip), "bad_key", "more than one");
  require_failure(parse_vip("fe80::1", simple_vip), "bad_key");
  require_failure(parse_vip("10.0.0.256", simple_vip), "bad_key",
                  "not an IPv4 address");
  require_failure(parse_vip("010.0.0.1", simple_vip), "bad_key");
  require_failure(parse_vip("", simple_vip), "bad_key");
  require_failure(parse_vip(":80", simple_vip), "bad_key");
  require_failure(parse_vip("10.0.0.5:abc", simple_vip), "bad_key",
                  "not a number");
  require_failure(parse_vip("10.0.0.5:65536", simple_vip), "bad_key",
                  "port 65536 out of range 1-65535");
  require_failure(parse_vip("10.0.0.5/32", simple_vip), "bad_key");
  require_failure(parse_vip("a/b", simple_vip), "bad_key");
}

TEST_CASE("VIP values that are not JSON objects are bad_json") {
  require_failure(parse_vip("10.0.0.5", "{"), "bad_json",
                  "/lain/config/vips/10.0.0.5: invalid JSON");
  require_failure(parse_vip("10.0.0.5", ""), "bad_json");
  require_failure(parse_vip("10.0.0.5", "   "), "bad_json");
  require_failure(parse_vip("10.0.0.5", "[]"), "bad_json", "got array");
  require_failure(parse_vip("10.0.0.5", "\"x\""), "bad_json", "got string");
  require_failure(parse_vip("10.0.0.5", "null"), "bad_json", "got null");
  require_failure(parse_vip("10.0.0.5", "42"), "bad_json", "got number");
  require_failure(parse_vip("10.0.0.5", std::string(simple_vip) + "x"),
                  "bad_json");
  require_failure(parse_vip("10.0.0.5", "{'app':'a'}"), "bad_json");
}

TEST_CASE("VIP values with missing or wrong fields are bad_field") {
  auto key = "10.0.0.5";
  require_failure(parse_vip(key, "{}"), "bad_field", "app: missing");
  require_failure(parse_vip(key, R"({"app":1,"proc":"p","ports":[]})"),
                  "bad_field", "app: expected a string, got number");
  require_failure(parse_vip(key, R"({"app":"","proc":"p","ports":[]})"),
                  "bad_field", "app: empty");
  require_failure(parse_vip(key, R"({"app":"a","ports":[{"src":1}]})"),
                  "bad_field", "proc: missing");
  require_failure(parse_vip(key, R"({"app":"a","proc":["p"],"ports":[]})"),
                  "bad_field", "proc: expected a string, got array");
  require_failure(parse_vip(key, R"({"app":"a","proc":"p"})"), "bad_field",
                  "ports: missing");
  require_failure(parse_vip(key, R"({"app":"a","proc":"p","ports":null})"),
                  "bad_field", "ports: missing");
  require_failure(parse_vip(key, R"({"app":"a","proc":"p","ports":[]})"),
                  "bad_field", "ports: empty");
  require_failure(
    parse_vip(key, R"({"app":"a","proc":"p","ports":{"src":80}})"), "bad_field",
    "ports: expected an array, got object");
  require_failure(parse_vip(key, R"({"app":"a","proc":"p","ports":["80"]})"),
                  "bad_field", "ports[0]: expected an object, got string");
  require_failure(parse_vip(key, R"({"app":"a","proc":"p","ports":[{}]})"),
                  "bad_field", "ports[0].src: missing");
  require_failure(
    parse_vip(key, R"({"app":"a","proc":"p","ports":[{"src":""}]})"),
    "bad_field", "ports[0].src: missing");
}

TEST_CASE("VIP ports out of range or malformed are bad_field") {
  auto vip = [](const std::string& port_entry) {
    return parse_vip("10.0.0.5", R"({"app":"a","proc":"p","ports":[)"
                                 R"({"src":"80"},)"
                                   + port_entry + "]}");
  };
  require_failure(vip(R"({"src":"65536"})"), "bad_field",
                  "/lain/config/vips/10.0.0.5: ports[1].src: port 65536 out "
                  "of range 1-65535");
  require_failure(vip(R"({"src":0})"), "bad_field",
                  "ports[1].src: port 0 out of range");
  require_failure(vip(R"({"src":"0"})"), "bad_field", "port 0 out of range");
  require_failure(vip(R"({"src":65536})"), "bad_field", "65536 out of range");
  require_failure(vip(R"({"src":-1})"), "bad_field", "-1 out of range");
  require_failure(vip(R"({"src":"-1"})"), "bad_field", "out of range");
  require_failure(vip(R"({"src":18446744073709551615})"), "bad_field",
                  "out of range");
  require_failure(vip(R"({"src":1e300})"), "bad_field", "out of range");
  require_failure(vip(R"({"src":"abc"})"), "bad_field", "not a number");
  require_failure(vip(R"({"src":"80x"})"), "bad_field", "not a number");
  require_failure(vip(R"({"src":80.5})"), "bad_field",
                  "port 80.5 is not a whole number");
  require_failure(vip(R"({"src":true})"), "bad_field",
                  "ports[1].src: expected a port (string or number), got "
                  "bool");
  require_failure(vip(R"({"src":[81]})"), "bad_field", "got array");
  require_failure(vip(R"({"src":81,"dest":"0"})"), "bad_field",
                  "ports[1].dest: port 0 out of range");
  require_failure(vip(R"({"src":81,"dest":{}})"), "bad_field",
                  "ports[1].dest: expected a port");
  require_failure(vip(R"({"src":81,"proto":"sctp"})"), "bad_field",
                  "ports[1].proto: unknown protocol \"sctp\"");
  require_failure(vip(R"({"src":81,"proto":6})"), "bad_field",
                  "ports[1].proto: expected \"tcp\" or \"udp\", got number");
}

TEST_CASE("VIP ports may not repeat a (src, proto) pair") {
  auto key = "10.0.0.5";
  require_failure(parse_vip(key, R"({"app":"a","proc":"p","ports":[
    {"src":"80"},{"src":80,"dest":81}]})"),
                  "bad_field", "ports[1]: duplicate port 80/tcp");
  require_failure(parse_vip(key, R"({"app":"a","proc":"p","ports":[
    {"src":"53","proto":"udp"},{"src":"53","proto":"UDP"}]})"),
                  "bad_field", "ports[1]: duplicate port 53/udp");
  CHECK(parse_vip(key, R"({"app":"a","proc":"p","ports":[
    {"src":"53","proto":"udp"},{"src":"53","proto":"tcp"}]})")
          .ok());
  // Entries without src on a port key default to the same src.
  require_failure(parse_vip("10.0.0.5:8080", R"({"app":"a","proc":"p",
    "ports":[{"dest":"1"},{"src":""}]})"),
                  "bad_field", "ports[1]: duplicate port 8080/tcp");
}

TEST_CASE("VIP excluded_nodes is an optional list of strings") {
  auto r = parse_vip("10.0.0.5", R"({"app":"a","proc":"p",
    "ports":[{"src":"80"}],"excluded_nodes":["node1","node2",""]})");
  REQUIRE(r.ok());
  CHECK(r->excluded_nodes == std::vector<std::string>{"node1", "node2"});
  r = parse_vip("10.0.0.5", R"({"app":"a","proc":"p",
    "ports":[{"src":"80"}],"excluded_nodes":null})");
  REQUIRE(r.ok());
  CHECK(r->excluded_nodes.empty());
  require_failure(parse_vip("10.0.0.5", R"({"app":"a","proc":"p",
    "ports":[{"src":"80"}],"excluded_nodes":"node1"})"),
                  "bad_field", "excluded_nodes: expected an array");
  require_failure(parse_vip("10.0.0.5", R"({"app":"a","proc":"p",
    "ports":[{"src":"80"}],"excluded_nodes":["a",3]})"),
                  "bad_field", "excluded_nodes[1]: expected a string");
}

TEST_CASE("VIP values ignore unknown fields") {
  auto r = parse_vip("10.0.0.5", R"({"app":"a","proc":"p","extra":{"x":[1]},
    "ports":[{"src":"80","weight":3}]})");
  REQUIRE(r.ok());
  CHECK(r->ports.size() == 1);
}

TEST_CASE("values over max_value_size are too_large before parsing") {
  std::string big(1024 * 1024, 'x');
  require_failure(parse_vip("10.0.0.5", big), "too_large",
                  "/lain/config/vips/10.0.0.5: value of 1048576 bytes");
  require_failure(parse_domain("a.lain", big), "too_large");
  require_failure(parse_domain_servers("lain", big), "too_large");
  require_failure(parse_vippool(big), "too_large");
  require_failure(parse_leader(swarm_leader_key, big), "too_large");
  require_failure(parse_knob("lease_ttl", big), "too_large");
  // Just at the limit is parsed (and here fails as JSON, not as size).
  std::string edge(max_value_size, ' ');
  require_failure(parse_vip("10.0.0.5", edge), "bad_json");
  // Deep nesting within the limit neither crashes nor overflows the stack.
  std::string deep(max_value_size / 2, '[');
  deep += std::string(max_value_size / 2, ']');
  require_failure(parse_vippool(deep), "bad_json", "nested deeper than 64");
  require_failure(parse_vip("10.0.0.5", deep), "bad_json");
}

TEST_CASE("nesting is limited before parsing and brackets in strings do not "
          "count") {
  std::string at_limit(64, '[');
  at_limit += std::string(64, ']');
  CHECK(json_depth(at_limit) == 64);
  require_failure(parse_vippool(at_limit), "bad_field", "[0]");
  require_failure(parse_vippool("[" + at_limit + "]"), "bad_json",
                  "nested deeper than 64");
  // The crash of issue 12: 260,000 '[' (under the size limit).
  require_failure(parse_domain("a.lain", std::string(260000, '[')), "bad_json",
                  "nested deeper than 64");
  CHECK(json_depth(R"(["[[[[", "\"{{{{", {"a": "]]]"}])") == 2);
}

TEST_CASE("lists longer than their limit are too_many and name the limit") {
  auto list = [](size_t n, const std::string& item) {
    std::string out = "[";
    for (size_t i = 0; i < n; ++i)
      out += (i ? "," : "") + item;
    return out + "]";
  };
  auto ports = [&](size_t n) {
    std::string out = "[";
    for (size_t i = 0; i < n; ++i)
      out += (i ? "," : "") + std::string("{\"src\":") + std::to_string(1 + i)
             + "}";
    return out + "]";
  };
  auto vip_with = [&](size_t n) {
    return R"({"app":"a","proc":"p","ports":)" + ports(n) + "}";
  };
  CHECK(parse_vip("10.0.0.5", vip_with(max_vip_ports)).ok());
  require_failure(parse_vip("10.0.0.5", vip_with(10000)), "too_many",
                  "ports: 10000 entries (limit 256)");
  require_failure(
    parse_domain("a.lain",
                 R"({"ips":)" + list(max_domain_ips + 1, "\"10.0.0.1\"") + "}"),
    "too_many", "ips: 65 entries (limit 64)");
  require_failure(
    parse_domain_servers(
      "lain",
      R"({"servers":)" + list(max_domain_servers + 1, "\"10.0.0.1\"") + "}"),
    "too_many", "servers");
  require_failure(parse_vippool(list(max_vippool + 1, "\"10.0.0.1\"")),
                  "too_many", "(limit 1024)");
  require_failure(parse_streamrouter_ports(list(max_vip_ports + 1, "80")),
                  "too_many", "(limit 256)");
}

// -- domains -----------------------------------------------------------------

TEST_CASE("fixed domains need at least one IP address") {
  auto r = parse_domain("etcd.lain",
                        R"({"ips":["10.131.0.72","10.131.0.73"],"type":""})");
  REQUIRE(r.ok());
  CHECK(r->name == "etcd.lain");
  CHECK_FALSE(r->wildcard);
  CHECK(r->suffix.empty());
  CHECK(r->type == domain_type::fixed);
  CHECK(r->ips == std::vector<std::string>{"10.131.0.72", "10.131.0.73"});
  r = parse_domain("etcd.lain", R"({"ips":["10.0.0.1","10.0.0.1"]})");
  REQUIRE(r.ok());
  CHECK(r->ips == std::vector<std::string>{"10.0.0.1"});
  r = parse_domain("v6.lain", R"({"ips":["fd00::1","10.0.0.1"]})");
  REQUIRE(r.ok());
  CHECK(r->ips == std::vector<std::string>{"fd00::1", "10.0.0.1"});
}

TEST_CASE("domain names are lower-cased and lose a trailing dot") {
  auto r = parse_domain("Docker.LAIN.", R"({"ips":["10.0.0.1"]})");
  REQUIRE(r.ok());
  CHECK(r->name == "docker.lain");
  r = parse_domain("under_score.x-y.lain", R"({"ips":["10.0.0.1"]})");
  REQUIRE(r.ok());
  CHECK(r->name == "under_score.x-y.lain");
  CHECK(parse_domain("lain", R"({"ips":["10.0.0.1"]})").ok());
}

TEST_CASE("wildcard domains have a suffix") {
  auto r = parse_domain("*.Lain.Local.", R"({"ips":[],"type":"webrouter"})");
  REQUIRE(r.ok());
  CHECK(r->wildcard);
  CHECK(r->name == "*.lain.local");
  CHECK(r->suffix == "lain.local");
  CHECK(r->type == domain_type::webrouter);
  CHECK(r->ips.empty());
  require_failure(parse_domain("*", R"({"ips":["10.0.0.1"]})"), "bad_key",
                  "/lain/config/domains/*: a wildcard needs a suffix");
  require_failure(parse_domain("*.", R"({"ips":["10.0.0.1"]})"), "bad_key");
  require_failure(parse_domain("*.*.lain", R"({"ips":["10.0.0.1"]})"),
                  "bad_key", "'*'");
  require_failure(parse_domain("a.*.lain", R"({"ips":["10.0.0.1"]})"),
                  "bad_key", "'*'");
  require_failure(parse_domain("a*.lain", R"({"ips":["10.0.0.1"]})"), "bad_key",
                  "'*'");
  require_failure(parse_domain("lain.*", R"({"ips":["10.0.0.1"]})"), "bad_key",
                  "'*'");
}

TEST_CASE("bad domain names are bad_key") {
  auto v = R"({"ips":["10.0.0.1"]})";
  require_failure(parse_domain("", v), "bad_key", "empty");
  require_failure(parse_domain(".", v), "bad_key", "empty");
  require_failure(parse_domain("a..lain", v), "bad_key", "empty label");
  require_failure(parse_domain(".lain", v), "bad_key", "empty label");
  require_failure(parse_domain("a.lain..", v), "bad_key", "empty label");
  require_failure(parse_domain("a b.lain", v), "bad_key", "invalid character");
  require_failure(parse_domain("a/b", v), "bad_key", "invalid character");
  require_failure(parse_domain(std::string("a\nb"), v), "bad_key", "\\x0a");
  require_failure(parse_domain(std::string(64, 'a') + ".lain", v), "bad_key",
                  "longer than 63");
  CHECK(parse_domain(std::string(63, 'a') + ".lain", v).ok());
  std::string long_name;
  for (int i = 0; i < 4; ++i)
    long_name += std::string(63, 'a') + ".";
  long_name += "lain"; // 256 characters
  require_failure(parse_domain(long_name, v), "bad_key", "longer than 253");
}

TEST_CASE("node and webrouter domains ignore ips") {
  auto r = parse_domain("node.lain", R"({"type":"node"})");
  REQUIRE(r.ok());
  CHECK(r->type == domain_type::node);
  r = parse_domain("node.lain", R"({"ips":"junk","type":"node"})");
  REQUIRE(r.ok());
  CHECK(r->ips.empty());
  r = parse_domain("webrouter.lain",
                   R"({"ips":["1.2.3.4"],"type":"webrouter"})");
  REQUIRE(r.ok());
  CHECK(r->ips.empty());
}

TEST_CASE("bad domain values are bad_json or bad_field") {
  auto name = "x.lain";
  require_failure(parse_domain(name, "{\"ips\":["), "bad_json",
                  "/lain/config/domains/x.lain: invalid JSON");
  require_failure(parse_domain(name, R"(["10.0.0.1"])"), "bad_json");
  require_failure(parse_domain(name, "{}"), "bad_field", "ips: missing");
  require_failure(parse_domain(name, R"({"ips":[]})"), "bad_field",
                  "ips: empty");
  require_failure(parse_domain(name, R"({"ips":"10.0.0.1"})"), "bad_field",
                  "ips: expected an array, got string");
  require_failure(parse_domain(name, R"({"ips":[10]})"), "bad_field",
                  "ips[0]: expected a string");
  for (auto ip : {"256.1.1.1", "1.2.3", "01.2.3.4", "", " 1.2.3.4",
                  "fe80::1::2", "example.com"})
    require_failure(
      parse_domain(name, std::string(R"({"ips":["1.1.1.1",")") + ip + "\"]}"),
      "bad_field", "ips[1]:");
  require_failure(parse_domain(name, R"({"ips":["1.1.1.1"],"type":"cname"})"),
                  "bad_field", "type: unknown type \"cname\"");
  require_failure(parse_domain(name, R"({"ips":["1.1.1.1"],"type":1})"),
                  "bad_field", "type: expected a string");
}

// -- domain servers and upstreams --------------------------------------------

TEST_CASE("parse_upstream reads ip#port and ip") {
  auto u = parse_upstream("10.0.0.2#5353");
  REQUIRE(u.ok());
  CHECK(*u == upstream{"10.0.0.2", 5353});
  u = parse_upstream("10.0.0.2");
  REQUIRE(u.ok());
  CHECK(*u == upstream{"10.0.0.2", 53});
  u = parse_upstream("fd00::53#53");
  REQUIRE(u.ok());
  CHECK(u->ip == "fd00::53");
  require_failure(parse_upstream(""), "bad_field", "not an IP address");
  require_failure(parse_upstream("10.0.0.2#"), "bad_field", "empty");
  require_failure(parse_upstream("10.0.0.2#0"), "bad_field", "out of range");
  require_failure(parse_upstream("10.0.0.2#53#53"), "bad_field",
                  "not a number");
  require_failure(parse_upstream("10.0.0.2:53"), "bad_field",
                  "not an IP address");
  require_failure(parse_upstream("dns.lain#53"), "bad_field");
  require_failure(parse_upstream(" 10.0.0.2"), "bad_field");
}

TEST_CASE("domain servers are parsed with and without port") {
  auto r = parse_domain_servers("Lain.", R"({"servers":[
    "10.0.0.2#5353","10.0.0.3","10.0.0.3#53"]})");
  REQUIRE(r.ok());
  CHECK(r->domain == "lain");
  CHECK(r->servers
        == std::vector<upstream>{{"10.0.0.2", 5353}, {"10.0.0.3", 53}});
}

TEST_CASE("bad domain servers are rejected") {
  require_failure(parse_domain_servers("*.lain", R"({"servers":["1.1.1.1"]})"),
                  "bad_key", "/lain/config/domain_servers/*.lain: ");
  require_failure(parse_domain_servers("", R"({"servers":["1.1.1.1"]})"),
                  "bad_key");
  require_failure(parse_domain_servers("lain", "nope"), "bad_json");
  require_failure(parse_domain_servers("lain", "[]"), "bad_json");
  require_failure(parse_domain_servers("lain", "{}"), "bad_field",
                  "servers: missing");
  require_failure(parse_domain_servers("lain", R"({"servers":[]})"),
                  "bad_field", "servers: empty");
  require_failure(parse_domain_servers("lain", R"({"servers":"1.1.1.1"})"),
                  "bad_field", "servers: expected an array");
  require_failure(parse_domain_servers("lain", R"({"servers":[53]})"),
                  "bad_field", "servers[0]: expected a string");
  require_failure(
    parse_domain_servers("lain", R"({"servers":["1.1.1.1#99999"]})"),
    "bad_field",
    "/lain/config/domain_servers/lain: servers[0]: "
    "\"1.1.1.1#99999\": port 99999 out of range");
}

// -- leaders -----------------------------------------------------------------

TEST_CASE("leader values are ip:port, trimmed") {
  auto r = parse_leader(swarm_leader_key, "10.0.0.7:2376");
  REQUIRE(r.ok());
  CHECK(r->ip == "10.0.0.7");
  CHECK(r->port == 2376);
  r = parse_leader(deployd_leader_key, "  10.0.0.8:9003\n");
  REQUIRE(r.ok());
  CHECK(r->ip == "10.0.0.8");
  CHECK(r->port == 9003);
  r = parse_leader(deployd_leader_key, "\t10.0.0.8:9003\r\n");
  REQUIRE(r.ok());
}

TEST_CASE("bad leader values are bad_field") {
  require_failure(parse_leader(swarm_leader_key, ""), "bad_field",
                  "/lain/swarm/docker/swarm/leader: empty");
  require_failure(parse_leader(swarm_leader_key, " \n"), "bad_field", "empty");
  require_failure(parse_leader(swarm_leader_key, "10.0.0.7"), "bad_field",
                  "not ip:port");
  require_failure(parse_leader(swarm_leader_key, "10.0.0.7:1:2"), "bad_field",
                  "not ip:port");
  require_failure(parse_leader(swarm_leader_key, "10.0.0.7:0"), "bad_field",
                  "out of range");
  require_failure(parse_leader(swarm_leader_key, "10.0.0.7:"), "bad_field",
                  "empty");
  require_failure(parse_leader(swarm_leader_key, "host:2376"), "bad_field",
                  "not an IPv4 address");
  require_failure(parse_leader(swarm_leader_key, "10.0.0.7 :2376"), "bad_field",
                  "not an IPv4 address");
  require_failure(parse_leader(swarm_leader_key, "\"10.0.0.7:2376\""),
                  "bad_field");
}

// -- vippool -----------------------------------------------------------------

TEST_CASE("vippool is a list of IPv4 addresses without duplicates") {
  auto r = parse_vippool(R"(["10.0.0.9","10.0.0.8","10.0.0.9"])");
  REQUIRE(r.ok());
  CHECK(*r == std::vector<std::string>{"10.0.0.9", "10.0.0.8"});
  r = parse_vippool("[]");
  REQUIRE(r.ok());
  CHECK(r->empty());
  r = parse_vippool(" [ \"10.0.0.1\" ]\n");
  REQUIRE(r.ok());
  CHECK(r->size() == 1);
}

TEST_CASE("bad vippool values are rejected") {
  require_failure(parse_vippool(""), "bad_json",
                  "/lain/config/streamrouter/vippool: invalid JSON");
  require_failure(parse_vippool("[\"10.0.0.1\""), "bad_json");
  require_failure(parse_vippool("{}"), "bad_json", "expected a JSON array");
  require_failure(parse_vippool("\"10.0.0.1\""), "bad_json");
  require_failure(parse_vippool(R"(["10.0.0.1","10.0.0.256"])"), "bad_field",
                  "[1]: \"10.0.0.256\" is not an IPv4 address");
  require_failure(parse_vippool(R"(["10.0.0.1",7])"), "bad_field",
                  "[1]: expected a string, got number");
  require_failure(parse_vippool(R"([""])"), "bad_field", "[0]");
}

// -- knobs -------------------------------------------------------------------

TEST_CASE("the knob table is complete and consistent") {
  std::set<std::string> names;
  for (auto& k : known_knobs()) {
    INFO(k.name);
    CHECK(names.insert(k.name).second);
    CHECK(std::string(k.help).size() > 0);
    CHECK(find_knob(k.name) == &k);
    if (k.numeric) {
      CHECK(k.min <= k.max);
      CHECK(k.default_number >= k.min);
      CHECK(k.default_number <= k.max);
      auto r = parse_knob(k.name, std::to_string(k.default_number));
      REQUIRE(r.ok());
      CHECK(r->number == k.default_number);
    } else if (*k.default_text != '\0') {
      auto r = parse_knob(k.name, k.default_text);
      REQUIRE(r.ok());
      CHECK(r->text == k.default_text);
    }
  }
  for (auto n : {"log_level", "lease_ttl", "arp_count", "arp_interval_ms",
                 "arp_refresh_s", "nat_audit_s", "acl_audit_s",
                 "probe_interval_ms", "probe_timeout_ms", "probe_failures",
                 "dns_ttl", "dns_cache_size", "dns_neg_ttl_max", "dns_min_ttl",
                 "dns_max_ttl", "dns_upstream_timeout_ms", "fencing_margin_ms"})
    CHECK(names.count(n) == 1);
  CHECK(find_knob("nope") == nullptr);
  CHECK(find_knob("lease_ttl")->default_number == 6);
}

TEST_CASE("numeric knobs accept plain text, JSON numbers and JSON strings") {
  for (auto v : {"5", " 5\n", "\"5\"", " \"5\" ", "\" 5 \""}) {
    INFO(v);
    auto r = parse_knob("lease_ttl", v);
    REQUIRE(r.ok());
    CHECK(r->name == "lease_ttl");
    CHECK(r->number == 5);
  }
  CHECK(parse_knob("lease_ttl", "2")->number == 2);
  CHECK(parse_knob("lease_ttl", "300")->number == 300);
  CHECK(parse_knob("arp_refresh_s", "0")->number == 0);
  CHECK(parse_knob("dns_cache_size", "10000000")->number == 10000000);
}

TEST_CASE("numeric knobs out of range or not numbers are rejected") {
  require_failure(parse_knob("lease_ttl", "1"), "bad_field",
                  "/lain/networkd/config/lease_ttl: value 1 out of range "
                  "2-300 s");
  require_failure(parse_knob("lease_ttl", "301"), "bad_field", "out of range");
  require_failure(parse_knob("lease_ttl", "-5"), "bad_field", "out of range");
  require_failure(parse_knob("arp_count", "21"), "bad_field", "0-20");
  require_failure(parse_knob("lease_ttl", "5.5"), "bad_field",
                  "not a whole number");
  require_failure(parse_knob("lease_ttl", "five"), "bad_field",
                  "not a whole number");
  require_failure(parse_knob("lease_ttl", "99999999999999999999"), "bad_field",
                  "not a whole number");
  require_failure(parse_knob("lease_ttl", ""), "bad_field", "empty");
  require_failure(parse_knob("lease_ttl", "\"\""), "bad_field", "empty");
  require_failure(parse_knob("lease_ttl", "\"5"), "bad_json");
  require_failure(parse_knob("lease_ttl", "\"5\" x"), "bad_json");
  require_failure(parse_knob("lease_ttl", "true"), "bad_field");
  require_failure(parse_knob("lease_ttl", "[5]"), "bad_field");
}

TEST_CASE("log_level is a text knob") {
  for (auto v : {"debug", "\"debug\"", " DEBUG\n", "\"Debug\""}) {
    INFO(v);
    auto r = parse_knob("log_level", v);
    REQUIRE(r.ok());
    CHECK(r->text == "debug");
  }
  for (auto lvl : {"trace", "info", "warn", "error"})
    CHECK(parse_knob("log_level", lvl)->text == lvl);
  require_failure(parse_knob("log_level", "loud"), "bad_field",
                  "/lain/networkd/config/log_level: \"loud\" is not one of");
  require_failure(parse_knob("log_level", "5"), "bad_field");
}

TEST_CASE("unknown knobs are unknown_knob") {
  require_failure(parse_knob("nope", "5"), "unknown_knob",
                  "/lain/networkd/config/nope: unknown knob");
  require_failure(parse_knob("", "5"), "unknown_knob");
  require_failure(parse_knob("LEASE_TTL", "5"), "unknown_knob");
}

// -- garbage in, failure out -------------------------------------------------

namespace {

// Calls every parser on (key, value) and checks the result's shape.
/// How many parses check_all saw succeed and fail: a run where every
/// input fails (or none does) tests only one side of the parsers.
struct parse_counts {
  int ok = 0;
  int failed = 0;
};

void check_all(const std::string& key, const std::string& value,
               parse_counts& n) {
  static const std::set<std::string> codes{"bad_key", "bad_json", "bad_field",
                                           "too_large", "unknown_knob"};
  auto check = [&](const auto& r) {
    ++(r.ok() ? n.ok : n.failed);
    if (r.ok())
      return;
    if (codes.count(r.error().code) == 0 || r.error().message.empty()) {
      FAIL_CHECK("bad failure " << r.error().to_string() << " for key "
                                << key.size() << " bytes, value "
                                << value.size() << " bytes");
    }
  };
  check(parse_vip(key, value));
  check(parse_vip("10.0.0.5", value));
  check(parse_vip("10.0.0.5:80", value));
  check(parse_domain(key, value));
  check(parse_domain("*.lain", value));
  check(parse_domain_servers(key, value));
  check(parse_domain_servers("lain", value));
  check(parse_leader(swarm_leader_key, value));
  check(parse_vippool(value));
  check(parse_knob(key, value));
  check(parse_knob("lease_ttl", value));
  check(parse_knob("log_level", value));
  check(parse_upstream(value));
  check(parse_port(value));
  (void)is_ipv4(value);
  (void)classify(key);
  (void)classify(value);
}

std::string random_bytes(std::mt19937& rng, size_t max_len) {
  std::uniform_int_distribution<size_t> len(0, max_len);
  std::uniform_int_distribution<int> byte(0, 255);
  std::string s(len(rng), '\0');
  for (auto& c : s)
    c = static_cast<char>(byte(rng));
  return s;
}

// Flips, inserts, deletes or duplicates a few bytes, favouring JSON syntax.
std::string mutate(std::mt19937& rng, std::string s) {
  static const std::string alphabet = "{}[]\":,.-+0123456789eE \\tnulfasx#*:";
  std::uniform_int_distribution<int> op(0, 4);
  std::uniform_int_distribution<int> count(1, 4);
  auto pick = [&](size_t n) {
    return std::uniform_int_distribution<size_t>(0, n)(rng);
  };
  for (int i = count(rng); i > 0; --i) {
    switch (op(rng)) {
      case 0:
        if (!s.empty())
          s[pick(s.size() - 1)] = alphabet[pick(alphabet.size() - 1)];
        break;
      case 1:
        s.insert(pick(s.size()), 1, alphabet[pick(alphabet.size() - 1)]);
        break;
      case 2:
        if (!s.empty())
          s.erase(pick(s.size() - 1), 1);
        break;
      case 3:
        if (!s.empty()) {
          auto from = pick(s.size() - 1);
          auto n = pick(s.size() - from);
          s.insert(pick(s.size()), s.substr(from, n));
        }
        break;
      default:
        s.insert(pick(s.size()), 1, static_cast<char>(pick(255)));
        break;
    }
  }
  return s;
}

} // namespace

TEST_CASE("parsers never crash on random or mutated input") {
  std::mt19937 rng(20240611);
  const std::vector<std::string> seeds = {
    simple_vip,
    R"({"app":"a","proc":"p","ports":[{"src":"80","proto":"udp","dest":81},
       {"src":443}],"excluded_nodes":["n1"]})",
    R"({"ips":["10.0.0.1","fd00::1"],"type":""})",
    R"({"ips":[],"type":"node"})",
    R"({"servers":["10.0.0.2#5353","10.0.0.3"]})",
    R"(["10.0.0.1","10.0.0.2"])",
    "10.0.0.7:2376\n",
    "\"debug\"",
    "300",
  };
  const std::vector<std::string> keys = {
    "10.0.0.5",
    "0.0.0.0:8080",
    "*.lain",
    "etcd.lain",
    "lease_ttl",
    "log_level",
    "/lain/config/vips/1.2.3.4",
    "/lain/networkd/config/x",
  };
  parse_counts n;
  for (int i = 0; i < 2000; ++i)
    check_all(random_bytes(rng, 24), random_bytes(rng, 96), n);
  for (int i = 0; i < 4000; ++i) {
    auto& seed = seeds[static_cast<size_t>(i) % seeds.size()];
    auto& key = keys[static_cast<size_t>(i / 7) % keys.size()];
    check_all(i % 3 == 0 ? mutate(rng, key) : key, mutate(rng, seed), n);
  }
  // Mutated seeds must still reach the accepting paths now and then.
  CHECK(n.ok > 100);
  CHECK(n.failed > 100);
}

TEST_CASE("spreading keys parse strictly") {
  auto r = parse_container_vip("web/main/2/10.0.0.5", "used");
  REQUIRE(r);
  CHECK(r->app == "web");
  CHECK(r->proc == "main");
  CHECK(r->instance == 2);
  CHECK(r->vip == "10.0.0.5");
  CHECK(r->used);
  auto u = parse_container_vip("web/main/2/10.0.0.5", "unused");
  REQUIRE(u);
  CHECK_FALSE(u->used);
  CHECK(parse_container_vip("web/main/2/10.0.0.5", "yes").error().code
        == "bad_field");
  for (auto bad : {"web/main/2", "web/main/x/10.0.0.5", "web/main/2/host",
                   "web//2/10.0.0.5", "web/main/2/10.0.0.5/x"})
    CHECK(parse_container_vip(bad, "used").error().code == "bad_key");
  CHECK(classify("/lain/networkd/containers/web/main/2/10.0.0.5").fam
        == family::container_vip);
}
