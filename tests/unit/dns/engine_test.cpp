// SPDX-License-Identifier: MIT
// Table matching and local answer building, without sockets.
#include <catch2/catch.hpp>

#include <algorithm>
#include <set>

#include "dns/engine.hpp"
#include "dns/message.hpp"

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

table_input sample_input() {
  table_input in;
  in.domains.push_back(domain("*.lain", {"10.0.0.1"}));
  in.domains.push_back(domain("*.web.lain", {"10.0.0.2"}));
  in.domains.push_back(domain("exact.lain", {"10.0.0.3"}));
  in.domains.push_back(
    domain("multi.lain", {"10.1.0.1", "10.1.0.2", "10.1.0.3"}));
  in.domains.push_back(domain("node.lain", {}, config::domain_type::node));
  in.domains.push_back(domain("wr.lain", {}, config::domain_type::webrouter));
  in.domains.push_back(domain("swarm.lain", {"10.9.9.9"}));
  in.domains.push_back(domain("shadow.example", {"10.0.0.4"}));
  in.node_ip = "192.168.1.5";
  in.webrouter_ips = {"172.20.0.1", "172.20.0.2"};
  in.hosts = parse_hosts("10.5.0.1 host1.example h1\n"
                         "fd00::1 host1.example\n"
                         "10.5.0.9 shadow.example\n");
  in.dynamic_names["swarm.lain"] = {"10.7.7.7"};
  in.ttl = 60;
  return in;
}

struct fixture {
  std::shared_ptr<const table> tbl = table::build(sample_input());
  cache answers;
  uint64_t now = 1000000;

  message ask(query_spec spec, transport via = transport::udp,
              query_result* res = nullptr, uint32_t rotation = 0) {
    auto wire = make_query(spec);
    REQUIRE(!wire.empty());
    query_env env;
    env.tbl = tbl.get();
    env.answers = &answers;
    env.now_ms = now;
    env.via = via;
    env.rotation = rotation;
    query q;
    std::vector<uint8_t> out;
    auto r = handle_query(wire.data(), wire.size(), env, q, out);
    if (res)
      *res = r;
    REQUIRE(r.what != disposition::drop);
    REQUIRE(r.what != disposition::forward);
    auto m = parse_message(out);
    REQUIRE(m.ok());
    return *m;
  }

  std::set<std::string> answer_data(query_spec spec) {
    auto m = ask(std::move(spec));
    std::set<std::string> out;
    for (auto& rr : m.answer)
      out.insert(rr.data);
    return out;
  }
};

query_spec q(std::string name, uint16_t type = KNOT_RRTYPE_A) {
  query_spec s;
  s.name = std::move(name);
  s.qtype = type;
  s.id = 4242;
  return s;
}

} // namespace

TEST_CASE("an exact name wins over a wildcard") {
  fixture f;
  CHECK(f.answer_data(q("exact.lain")) == std::set<std::string>{"10.0.0.3"});
}

TEST_CASE("the longest wildcard suffix wins") {
  fixture f;
  CHECK(f.answer_data(q("a.web.lain")) == std::set<std::string>{"10.0.0.2"});
  CHECK(f.answer_data(q("x.y.web.lain")) == std::set<std::string>{"10.0.0.2"});
  CHECK(f.answer_data(q("other.lain")) == std::set<std::string>{"10.0.0.1"});
}

TEST_CASE("a wildcard answers its own suffix and deep names") {
  fixture f;
  CHECK(f.answer_data(q("lain")) == std::set<std::string>{"10.0.0.1"});
  CHECK(f.answer_data(q("a.b.c.d.lain")) == std::set<std::string>{"10.0.0.1"});
  CHECK(f.answer_data(q("web.lain")) == std::set<std::string>{"10.0.0.2"});
}

TEST_CASE("names outside local data are forwarded") {
  fixture f;
  auto wire = make_query(q("www.example.com"));
  query_env env;
  env.tbl = f.tbl.get();
  query qq;
  std::vector<uint8_t> out;
  auto r = handle_query(wire.data(), wire.size(), env, qq, out);
  CHECK(r.what == disposition::forward);
  CHECK(out.empty());
  CHECK(text_name(qq.lower) == "www.example.com");
  // "nolain" is not below "lain".
  wire = make_query(q("nolain"));
  CHECK(handle_query(wire.data(), wire.size(), env, qq, out).what
        == disposition::forward);
}

TEST_CASE("sources have a fixed precedence") {
  fixture f;
  // dynamic > etcd exact
  CHECK(f.answer_data(q("swarm.lain")) == std::set<std::string>{"10.7.7.7"});
  // etcd exact > hosts
  CHECK(f.answer_data(q("shadow.example"))
        == std::set<std::string>{"10.0.0.4"});
  // hosts: all names of a line, several addresses per name
  CHECK(f.answer_data(q("h1")) == std::set<std::string>{"10.5.0.1"});
  CHECK(f.answer_data(q("host1.example", KNOT_RRTYPE_AAAA))
        == std::set<std::string>{"fd00::1"});
  // node and webrouter types
  CHECK(f.answer_data(q("node.lain")) == std::set<std::string>{"192.168.1.5"});
  CHECK(f.answer_data(q("wr.lain"))
        == std::set<std::string>{"172.20.0.1", "172.20.0.2"});
}

TEST_CASE("local answers are authoritative, keep the case and the TTL") {
  fixture f;
  auto m = f.ask(q("WwW.ExAmPlE.lain"));
  CHECK(m.rcode == KNOT_RCODE_NOERROR);
  CHECK(m.aa);
  CHECK(m.qr);
  CHECK(m.rd);
  CHECK(m.id == 4242);
  CHECK(m.qname == "WwW.ExAmPlE.lain");
  REQUIRE(m.answer.size() == 1);
  CHECK(m.answer[0].owner == "WwW.ExAmPlE.lain");
  CHECK(m.answer[0].ttl == 60);
  CHECK_FALSE(m.edns);
  auto in = sample_input();
  in.ttl = 7;
  f.tbl = table::build(in);
  CHECK(f.ask(q("exact.lain")).answer.at(0).ttl == 7);
}

TEST_CASE("A and AAAA get the right family only") {
  fixture f;
  auto m = f.ask(q("exact.lain", KNOT_RRTYPE_AAAA));
  CHECK(m.rcode == KNOT_RCODE_NOERROR);
  CHECK(m.answer.empty());
  auto in = sample_input();
  in.domains.push_back(domain("mapped.lain", {"::ffff:10.3.3.3"}));
  f.tbl = table::build(in);
  CHECK(f.answer_data(q("mapped.lain")) == std::set<std::string>{"10.3.3.3"});
  CHECK(f.ask(q("mapped.lain", KNOT_RRTYPE_AAAA)).answer.empty());
  CHECK(f.answer_data(q("host1.example")) == std::set<std::string>{"10.5.0.1"});
}

TEST_CASE("a local name without the type is NODATA with an SOA") {
  fixture f;
  for (uint16_t type : {KNOT_RRTYPE_AAAA, KNOT_RRTYPE_MX, KNOT_RRTYPE_TXT}) {
    query_result r;
    auto m = f.ask(q("a.web.lain", type), transport::udp, &r);
    CHECK(r.what == disposition::local);
    CHECK(m.rcode == KNOT_RCODE_NOERROR);
    CHECK(m.aa);
    CHECK(m.answer.empty());
    REQUIRE(m.authority.size() == 1);
    CHECK(m.authority[0].type == KNOT_RRTYPE_SOA);
    CHECK(m.authority[0].owner == "web.lain");
    CHECK(m.authority[0].ttl == 60);
    CHECK(m.authority[0].data.find(" 60") != std::string::npos);
  }
  // A name without any address (node type, no node IP) is NODATA too.
  auto in = sample_input();
  in.node_ip.clear();
  f.tbl = table::build(in);
  auto m = f.ask(q("node.lain"));
  CHECK(m.rcode == KNOT_RCODE_NOERROR);
  CHECK(m.answer.empty());
  CHECK(m.authority.size() == 1);
}

TEST_CASE("PTR answers for local addresses") {
  fixture f;
  auto m = f.ask(q("3.0.0.10.in-addr.arpa", KNOT_RRTYPE_PTR));
  REQUIRE(m.answer.size() == 1);
  CHECK(m.answer[0].data == "exact.lain.");
  CHECK(f.answer_data(q("1.0.5.10.in-addr.arpa", KNOT_RRTYPE_PTR))
        == std::set<std::string>{"host1.example.", "h1."});
  auto v6 = f.answer_data(q("1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
                            "0.0.0.0.0.0.d.f.ip6.arpa",
                            KNOT_RRTYPE_PTR));
  CHECK(v6 == std::set<std::string>{"host1.example."});
  // Wildcard addresses have no PTR: forwarded.
  auto wire = make_query(q("1.0.0.10.in-addr.arpa", KNOT_RRTYPE_PTR));
  query_env env;
  env.tbl = f.tbl.get();
  query qq;
  std::vector<uint8_t> out;
  CHECK(handle_query(wire.data(), wire.size(), env, qq, out).what
        == disposition::forward);
}

TEST_CASE("ANY is answered per RFC 8482") {
  fixture f;
  auto m = f.ask(q("host1.example", KNOT_RRTYPE_ANY));
  std::set<uint16_t> types;
  for (auto& rr : m.answer)
    types.insert(rr.type);
  CHECK(types == std::set<uint16_t>{KNOT_RRTYPE_A, KNOT_RRTYPE_AAAA});
  auto in = sample_input();
  in.node_ip.clear();
  f.tbl = table::build(in);
  m = f.ask(q("node.lain", KNOT_RRTYPE_ANY));
  REQUIRE(m.answer.size() == 1);
  CHECK(m.answer[0].type == KNOT_RRTYPE_HINFO);
  CHECK(m.answer[0].data.find("RFC8482") != std::string::npos);
}

TEST_CASE("several addresses are rotated between answers") {
  fixture f;
  std::set<std::string> firsts;
  for (uint32_t i = 0; i < 3; ++i) {
    auto m = f.ask(q("multi.lain"), transport::udp, nullptr, i);
    REQUIRE(m.answer.size() == 3);
    firsts.insert(m.answer[0].data);
  }
  CHECK(firsts.size() == 3);
}

TEST_CASE("EDNS is echoed without DO unless the client set it") {
  fixture f;
  auto spec = q("exact.lain");
  spec.edns = true;
  spec.payload = 4096;
  auto m = f.ask(spec);
  CHECK(m.edns);
  CHECK(m.payload == 1232);
  CHECK_FALSE(m.dnssec_ok);
  spec.dnssec_ok = true;
  m = f.ask(spec);
  CHECK(m.edns);
  CHECK(m.dnssec_ok);
  spec.edns_version = 1;
  m = f.ask(spec);
  CHECK(m.rcode == KNOT_RCODE_BADVERS);
}

TEST_CASE("a large answer is truncated on UDP and complete on TCP") {
  table_input in;
  std::vector<std::string> ips;
  for (int i = 1; i <= 100; ++i)
    ips.push_back("10.20.0." + std::to_string(i));
  in.domains.push_back(domain("big.lain", ips));
  fixture f;
  f.tbl = table::build(in);
  auto m = f.ask(q("big.lain"));
  CHECK(m.tc);
  CHECK(m.answer.size() < 100);
  auto spec = q("big.lain");
  spec.edns = true;
  spec.payload = 4096;
  m = f.ask(spec);
  CHECK(m.tc); // our limit is 1232
  CHECK(m.edns);
  m = f.ask(q("big.lain"), transport::tcp);
  CHECK_FALSE(m.tc);
  CHECK(m.answer.size() == 100);
}

TEST_CASE("malformed packets get FORMERR or are dropped") {
  fixture f;
  query_env env;
  env.tbl = f.tbl.get();
  query qq;
  std::vector<uint8_t> out;
  // Too short: dropped.
  uint8_t tiny[5] = {1, 2, 3, 4, 5};
  CHECK(handle_query(tiny, sizeof(tiny), env, qq, out).what
        == disposition::drop);
  // A response: dropped.
  auto wire = make_query(q("exact.lain"));
  wire[2] |= 0x80;
  CHECK(handle_query(wire.data(), wire.size(), env, qq, out).what
        == disposition::drop);
  // A question cut short: FORMERR with the ID.
  wire = make_query(q("exact.lain"));
  wire.resize(wire.size() - 3);
  auto r = handle_query(wire.data(), wire.size(), env, qq, out);
  CHECK(r.what == disposition::error);
  auto mr = parse_message(out);
  REQUIRE(mr.ok());
  auto m = *mr;
  CHECK(m.rcode == KNOT_RCODE_FORMERR);
  CHECK(m.id == 4242);
  // No question at all.
  wire = make_query(q("exact.lain"));
  wire.resize(12);
  wire[5] = 0;
  r = handle_query(wire.data(), wire.size(), env, qq, out);
  REQUIRE(r.what == disposition::error);
  CHECK(parse_message(out)->rcode == KNOT_RCODE_FORMERR);
  // A bad label length in the name.
  wire = make_query(q("exact.lain"));
  wire[12] = 60;
  r = handle_query(wire.data(), wire.size(), env, qq, out);
  CHECK(r.what == disposition::error);
  // Another opcode: NOTIMP.
  wire = make_query(q("exact.lain"));
  wire[2] |= 0x10; // opcode 2 (status)
  r = handle_query(wire.data(), wire.size(), env, qq, out);
  CHECK(r.rcode == KNOT_RCODE_NOTIMPL);
}

TEST_CASE("clients outside the ACL are refused") {
  fixture f;
  auto wire = make_query(q("exact.lain"));
  query_env env;
  env.tbl = f.tbl.get();
  env.client_allowed = false;
  query qq;
  std::vector<uint8_t> out;
  auto r = handle_query(wire.data(), wire.size(), env, qq, out);
  CHECK(r.what == disposition::refused);
  auto mr = parse_message(out);
  REQUIRE(mr.ok());
  auto m = *mr;
  CHECK(m.rcode == KNOT_RCODE_REFUSED);
  CHECK(m.answer.empty());
  CHECK(m.qname == "exact.lain");
}

TEST_CASE("the config text has the old format") {
  auto in = sample_input();
  config::domain_servers_config ds;
  ds.domain = "lain";
  ds.servers = {config::upstream{"10.8.8.8", 5353}};
  in.domain_servers.push_back(ds);
  in.upstreams = {config::upstream{"8.8.8.8", 53}};
  auto text = table::build(in)->config_text();
  CHECK(text.find("host-record=exact.lain,10.0.0.3\n") != std::string::npos);
  CHECK(text.find("address=/lain/10.0.0.1\n") != std::string::npos);
  CHECK(text.find("address=/web.lain/10.0.0.2\n") != std::string::npos);
  CHECK(text.find("server=/lain/10.8.8.8#5353\n") != std::string::npos);
  CHECK(text.find("nameserver 8.8.8.8#53\n") != std::string::npos);
}

TEST_CASE("per-domain upstreams use the longest suffix") {
  auto in = sample_input();
  config::domain_servers_config a{"lain", {config::upstream{"10.8.0.1", 53}}};
  config::domain_servers_config b{"x.lain", {config::upstream{"10.8.0.2", 53}}};
  in.domain_servers = {a, b};
  in.upstreams = {config::upstream{"8.8.8.8", 53}};
  auto t = table::build(in);
  CHECK(t->upstreams_for(wire_name("a.x.lain")).at(0).ip == "10.8.0.2");
  CHECK(t->upstreams_for(wire_name("x.lain")).at(0).ip == "10.8.0.2");
  CHECK(t->upstreams_for(wire_name("y.lain")).at(0).ip == "10.8.0.1");
  CHECK(t->upstreams_for(wire_name("lain")).at(0).ip == "10.8.0.1");
  CHECK(t->upstreams_for(wire_name("example.com")).at(0).ip == "8.8.8.8");
}
