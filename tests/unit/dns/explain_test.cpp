// SPDX-License-Identifier: MIT
// The DNS "why" (/v1/dns/lookup): which rule answers a name, with its etcd
// key and revision or hosts line, and where a forwarded name would go.
#include <catch2/catch.hpp>

#include "dns/explain.hpp"

using namespace networkd;
using namespace networkd::dns;

namespace {

config::domain_config domain(std::string name, std::vector<std::string> ips,
                             config::domain_type type
                             = config::domain_type::fixed) {
  config::domain_config d;
  d.wildcard = name.rfind("*.", 0) == 0;
  d.suffix = d.wildcard ? name.substr(2) : "";
  d.name = std::move(name);
  d.type = type;
  d.ips = std::move(ips);
  return d;
}

struct world {
  std::map<std::string, from_etcd<config::domain_config>> domains;
  std::map<std::string, from_etcd<config::domain_servers_config>> servers;
  std::vector<hosts_entry> hosts = parse_hosts(
    "# comment\n127.0.0.1 localhost\n10.5.0.1 host1.example h1\n");
  std::shared_ptr<const table> tbl;

  world() {
    add(domain("*.lain", {"10.0.0.1"}), 7);
    add(domain("exact.lain", {"10.0.0.3"}), 9, "Exact.lain.");
    add(domain("node.lain", {}, config::domain_type::node), 11);
    add(domain("wr.lain", {}, config::domain_type::webrouter), 12);
    from_etcd<config::domain_servers_config> s;
    s.value.domain = "corp.example";
    s.value.servers = {{"127.0.0.8", 5353}, {"127.0.0.9", 53}};
    s.revision = 21;
    servers["corp.example"] = s;
    table_input in;
    for (auto& [n, d] : domains)
      in.domains.push_back(d.value);
    in.node_ip = "192.168.1.5";
    in.webrouter_ips = {"172.20.0.1"};
    in.hosts = hosts;
    in.dynamic_names["swarm.lain"] = {"10.7.7.7"};
    in.domain_servers.push_back(s.value);
    in.upstreams = {{"127.0.0.2", 53}};
    tbl = table::build(in);
  }
  void add(config::domain_config d, int64_t rev, std::string raw = "") {
    from_etcd<config::domain_config> e;
    e.revision = rev;
    e.raw_suffix = std::move(raw);
    auto name = d.name;
    e.value = std::move(d);
    domains[name] = std::move(e);
  }
  lookup_answer ask(const std::string& name, const std::string& type = "A",
                    server::forward_view fwd = {}) {
    auto q = parse_lookup_question(name, type);
    REQUIRE(q);
    lookup_facts f;
    f.tbl = tbl.get();
    f.domains = &domains;
    f.servers = &servers;
    f.hosts = &hosts;
    f.hosts_file = "/etc/hosts";
    return explain_lookup(*q, f, fwd);
  }
};

} // namespace

TEST_CASE("an exact etcd name names its key as written and its revision") {
  world w;
  auto a = w.ask("EXACT.lain.");
  CHECK(a.name == "exact.lain");
  CHECK(a.verdict == "local");
  CHECK(a.rule == "etcd domain");
  CHECK(a.origin.key == "/lain/config/domains/Exact.lain.");
  CHECK(a.origin.revision == 9);
  CHECK(a.domain_type == "fixed");
  CHECK(a.records == std::vector<std::string>{"10.0.0.3"});
  CHECK(a.why.find("revision 9") != std::string::npos);
}

TEST_CASE("a name under a wildcard names the wildcard key") {
  world w;
  auto a = w.ask("deep.below.lain");
  CHECK(a.rule == "etcd wildcard");
  CHECK(a.matched == "*.lain");
  CHECK(a.origin.key == "/lain/config/domains/*.lain");
  CHECK(a.origin.revision == 7);
  CHECK(a.records == std::vector<std::string>{"10.0.0.1"});
}

TEST_CASE("node and webrouter types say where their addresses come from") {
  world w;
  auto n = w.ask("node.lain");
  CHECK(n.domain_type == "node");
  CHECK(n.records == std::vector<std::string>{"192.168.1.5"});
  CHECK(n.why.find("this node's address") != std::string::npos);
  auto r = w.ask("wr.lain");
  CHECK(r.domain_type == "webrouter");
  CHECK(r.records == std::vector<std::string>{"172.20.0.1"});
  CHECK(r.why.find("webrouter") != std::string::npos);
}

TEST_CASE("a hosts-file name gives the file and line") {
  world w;
  auto a = w.ask("h1");
  CHECK(a.rule == "hosts file");
  CHECK(a.hosts_line == "/etc/hosts:3: 10.5.0.1 host1.example h1");
  CHECK(a.records == std::vector<std::string>{"10.5.0.1"});
}

TEST_CASE("a dynamic name wins and says so") {
  world w;
  auto a = w.ask("swarm.lain");
  CHECK(a.rule == "dynamic name");
  CHECK(a.records == std::vector<std::string>{"10.7.7.7"});
  CHECK(a.origin.key.empty());
}

TEST_CASE("a local name without data of the type is NODATA") {
  world w;
  auto a = w.ask("exact.lain", "txt");
  CHECK(a.type == "TXT");
  CHECK(a.verdict == "local");
  CHECK(a.records.empty());
  CHECK(a.why.find("NODATA") != std::string::npos);
}

TEST_CASE("the reverse name of a local address lists its names") {
  world w;
  auto a = w.ask("3.0.0.10.in-addr.arpa", "PTR");
  CHECK(a.rule == "reverse of local names");
  CHECK(a.records == std::vector<std::string>{"exact.lain"});
}

TEST_CASE("a forwarded name shows its domain servers and the cache") {
  world w;
  server::forward_view fwd;
  fwd.order = {{"127.0.0.9", 53}, {"127.0.0.8", 5353}};
  fwd.now_ms = 100000;
  fwd.serve_stale_s = 86400;
  auto e = make_failure_entry(wire_name("www.corp.example"), KNOT_RRTYPE_A,
                              KNOT_CLASS_IN, 90000, cache_options{});
  REQUIRE(e);
  fwd.cached = e;
  auto a = w.ask("www.corp.example", "A", fwd);
  CHECK(a.verdict == "forward");
  CHECK(a.rule == "domain servers");
  CHECK(a.origin.key == "/lain/config/domain_servers/corp.example");
  CHECK(a.origin.revision == 21);
  CHECK(a.upstreams
        == std::vector<std::string>{"127.0.0.9#53", "127.0.0.8#5353"});
  CHECK(a.cache.present);
  CHECK(a.cache.failure);
  CHECK(a.cache.rcode == "SERVFAIL");
  // Stored at 90 s for failure_ttl (2 s): expired 8 s ago.
  CHECK(a.cache.ttl_left_s == -8);
  CHECK_FALSE(a.cache.stale_servable);
}

TEST_CASE("other names go to the default upstreams and may be stale") {
  world w;
  server::forward_view fwd;
  fwd.order = {{"127.0.0.2", 53}};
  fwd.now_ms = 1000000;
  fwd.serve_stale_s = 3600;
  // An upstream answer: one A record with TTL 60, stored at 900 s.
  std::vector<uint8_t> wire
    = {0,   0,   0x81, 0x80, 0,   1,   0,  1, 0, 0,  0, 0,    3,  'w',
       'w', 'w', 3,    'o',  'r', 'g', 0,  0, 1, 0,  1, 0xc0, 12, 0,
       1,   0,   1,    0,    0,   0,   60, 0, 4, 10, 0, 0,    1};
  auto e = make_cache_entry(wire_name("www.org"), KNOT_RRTYPE_A, KNOT_CLASS_IN,
                            wire.data(), wire.size(), 900000, cache_options{});
  REQUIRE(e);
  fwd.cached = e;
  auto a = w.ask("www.org", "A", fwd);
  CHECK(a.rule == "default upstreams");
  CHECK(a.origin.key.empty());
  CHECK(a.upstreams == std::vector<std::string>{"127.0.0.2#53"});
  CHECK(a.cache.rcode == "NOERROR");
  CHECK(a.cache.ttl_left_s == -40);
  CHECK(a.cache.stale_servable);
  auto none = w.ask("nothing.org");
  CHECK_FALSE(none.cache.present);
}

TEST_CASE("bad lookup questions are refused with a reason") {
  CHECK(parse_lookup_question("", "A").error().code == "bad_name");
  CHECK(parse_lookup_question(std::string(300, 'a'), "A").error().code
        == "bad_name");
  CHECK(parse_lookup_question("a..b", "A").error().code == "bad_name");
  CHECK(parse_lookup_question("a.lain", "NOPE").error().code == "bad_type");
  auto t = parse_lookup_question("a.lain", "type65");
  REQUIRE(t);
  CHECK(t->qtype == 65);
  auto d = parse_lookup_question("a.lain", "");
  REQUIRE(d);
  CHECK(d->qtype == KNOT_RRTYPE_A);
}
