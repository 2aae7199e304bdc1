// SPDX-License-Identifier: MIT
// table::update against table::build: after every change of one etcd
// domain, the updated table answers every name exactly as a table built
// from the whole changed input.
#include <catch2/catch.hpp>

#include <map>
#include <optional>
#include <random>
#include <set>

#include "dns/table.hpp"

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

/// The responder's inputs: domains by name (its map), the rest fixed.
struct inputs {
  std::map<std::string, config::domain_config> domains;
  table_input rest;
  table_input get() const {
    auto in = rest;
    for (auto& [name, d] : domains)
      in.domains.push_back(d);
    return in;
  }
};

inputs sample() {
  inputs s;
  s.rest.node_ip = "192.168.1.5";
  s.rest.webrouter_ips = {"172.20.0.1", "172.20.0.2"};
  s.rest.dynamic_names["swarm.lain"] = {"10.7.7.7"};
  s.rest.hosts = parse_hosts("10.5.0.1 host1.example h1\n"
                             "10.0.0.3 shared.example\n"
                             "10.5.0.9 shadow.example\n");
  for (auto& d :
       {domain("*.lain", {"10.0.0.1"}), domain("exact.lain", {"10.0.0.3"}),
        domain("multi.lain", {"10.1.0.1", "10.1.0.2", "fd00::5"}),
        domain("node.lain", {}, config::domain_type::node),
        domain("wr.lain", {}, config::domain_type::webrouter),
        domain("swarm.lain", {"10.9.9.9"}),
        domain("shadow.example", {"10.0.0.4"})})
    s.domains[d.name] = d;
  return s;
}

std::set<std::string> rdata_of(const rdata_set& set) {
  std::set<std::string> out;
  auto rd = set.get().rdata;
  for (uint16_t i = 0; i < set.count(); ++i, rd = knot_rdataset_next(rd))
    out.emplace(reinterpret_cast<const char*>(rd->data), rd->len);
  return out;
}

/// Everything a query can see of one name's entry.
std::string describe(const local_name* n) {
  if (n == nullptr)
    return "-";
  std::string out = text_name(n->owner) + " " + to_string(n->source);
  for (auto& a : n->addresses)
    out += " " + to_string(a);
  for (auto* set : {&n->a, &n->aaaa, &n->ptr}) {
    out += " |";
    for (auto& rd : rdata_of(*set))
      out += " " + std::to_string(rd.size()) + ":" + rd;
  }
  return out;
}

/// Names worth asking: every owner the inputs can make, reverse names of
/// every address they use, and names under the wildcards.
std::vector<std::string> probes(const std::vector<std::string>& names,
                                const std::vector<std::string>& ips) {
  std::vector<std::string> out;
  for (auto& n : names) {
    auto text = n.rfind("*.", 0) == 0 ? n.substr(2) : n;
    out.push_back(wire_name(text));
    out.push_back(wire_name("deep.x." + text));
  }
  for (auto& ip : ips)
    if (auto a = parse_ip(ip))
      out.push_back(reverse_wire_name(*a));
  return out;
}

void require_same(const table& got, const table& want,
                  const std::vector<std::string>& probe) {
  REQUIRE(got.config_text() == want.config_text());
  REQUIRE(got.size() == want.size());
  for (auto& wire : probe)
    REQUIRE(describe(got.find(wire)) == describe(want.find(wire)));
}

} // namespace

TEST_CASE("an updated table equals a table built from the changed input") {
  auto in = sample();
  std::vector<std::string> names{
    "exact.lain",     "multi.lain",     "new1.lain",
    "new2.lain",      "node.lain",      "wr.lain",
    "swarm.lain",     "shadow.example", "host1.example",
    "*.lain",         "*.web.lain",     "*.other.test",
    "shared.example", "Mixed.Lain.",    "3.0.0.10.in-addr.arpa",
    "*.deep.web.lain"};
  std::vector<std::string> ips{
    "10.0.0.1", "10.0.0.3", "10.0.0.4",  "10.1.0.1",   "10.1.0.2",   "fd00::5",
    "10.7.7.7", "10.5.0.1", "not-an-ip", "172.20.0.1", "192.168.1.5"};
  auto probe = probes(names, ips);
  std::mt19937 rng{1616};
  auto pick = [&](const std::vector<std::string>& v) {
    return v[std::uniform_int_distribution<size_t>(0, v.size() - 1)(rng)];
  };
  std::shared_ptr<const table> t = table::build(in.get());
  size_t updated = 0;
  size_t changes = 2000;
  for (size_t step = 0; step < changes; ++step) {
    auto name = pick(names);
    // What the responder's map holds is keyed by the stored name.
    auto key = name;
    for (auto& ch : key)
      ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
    if (!key.empty() && key.back() == '.')
      key.pop_back();
    std::optional<config::domain_config> before;
    if (auto i = in.domains.find(key); i != in.domains.end())
      before = i->second;
    if (std::uniform_int_distribution<int>(0, 3)(rng) == 0) {
      in.domains.erase(key);
    } else {
      std::vector<std::string> list;
      auto count = std::uniform_int_distribution<int>(0, 3)(rng);
      for (int i = 0; i < count; ++i)
        list.push_back(pick(ips));
      auto type = static_cast<config::domain_type>(
        std::uniform_int_distribution<int>(0, 5)(rng) % 3 == 0
          ? std::uniform_int_distribution<int>(0, 2)(rng)
          : 0);
      auto d = domain(key, list, type);
      d.name = key;
      in.domains[key] = d;
    }
    auto i = in.domains.find(key);
    const config::domain_config* after
      = i == in.domains.end() ? nullptr : &i->second;
    auto want = table::build(in.get());
    auto got = table::update(*t, before ? &*before : nullptr, after,
                             in.rest.node_ip, in.rest.webrouter_ips);
    if (got) {
      ++updated;
      INFO("step " << step << ": " << key);
      require_same(*got, *want, probe);
      t = got;
    } else {
      t = want;
    }
  }
  // Most changes are single names: the update must be the common path.
  CHECK(updated > changes / 3);
}

TEST_CASE("an update shares the table and leaves the old one as it was") {
  auto in = sample();
  auto old = table::build(in.get());
  auto before_text = old->config_text();
  auto before = in.domains.at("exact.lain");
  in.domains["exact.lain"] = domain("exact.lain", {"10.0.0.8"});
  auto t = table::update(*old, &before, &in.domains.at("exact.lain"),
                         in.rest.node_ip, in.rest.webrouter_ips);
  REQUIRE(t);
  CHECK(old->config_text() == before_text);
  CHECK(describe(old->find(wire_name("exact.lain")))
        != describe(t->find(wire_name("exact.lain"))));
  auto rev = [](const char* ip) { return reverse_wire_name(*parse_ip(ip)); };
  // 10.0.0.3 is still shared.example's (hosts); 10.0.0.8 is new.
  CHECK(rdata_of(t->find(rev("10.0.0.3"))->ptr).size() == 1);
  CHECK(rdata_of(old->find(rev("10.0.0.3"))->ptr).size() == 2);
  REQUIRE(t->find(rev("10.0.0.8")) != nullptr);
  CHECK(old->find(rev("10.0.0.8")) == nullptr);
}

TEST_CASE("changes beyond one name are left to a whole build") {
  auto in = sample();
  auto t = table::build(in.get());
  auto& rest = in.rest;
  // The dynamic name shadows the etcd one.
  auto swarm = in.domains.at("swarm.lain");
  CHECK(table::update(*t, &swarm, nullptr, rest.node_ip, rest.webrouter_ips)
        == nullptr);
  // The hosts file has the name too.
  auto shadow = in.domains.at("shadow.example");
  CHECK(table::update(*t, &shadow, nullptr, rest.node_ip, rest.webrouter_ips)
        == nullptr);
  auto hosts_name = domain("host1.example", {"10.0.0.9"});
  CHECK(
    table::update(*t, nullptr, &hosts_name, rest.node_ip, rest.webrouter_ips)
    == nullptr);
  // A bad address makes a warning, which only a build gives.
  auto bad = domain("fresh.lain", {"10.0.0.300"});
  CHECK(table::update(*t, nullptr, &bad, rest.node_ip, rest.webrouter_ips)
        == nullptr);
  // A forward name under in-addr.arpa can hide a reverse name.
  auto rev = domain("4.0.0.10.in-addr.arpa", {"10.0.0.5"});
  CHECK(table::update(*t, nullptr, &rev, rest.node_ip, rest.webrouter_ips)
        == nullptr);
  auto good = domain("fresh.lain", {"10.0.0.30"});
  CHECK(table::update(*t, nullptr, &good, rest.node_ip, rest.webrouter_ips)
        != nullptr);
}
