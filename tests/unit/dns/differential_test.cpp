// SPDX-License-Identifier: MIT
// Differential test: the same queries against our server and unbound loaded
// with the same local data must agree on rcode and answer set.
#include <catch2/catch.hpp>

#include <set>

#include "dns/client.hpp"
#include "dns/server.hpp"
#include "tests/support/util.hpp"

using namespace networkd;
using namespace networkd::dns;
using namespace std::chrono_literals;

namespace {

config::domain_config domain(std::string name, std::vector<std::string> ips) {
  config::domain_config d;
  d.wildcard = name.rfind("*.", 0) == 0;
  d.suffix = d.wildcard ? name.substr(2) : "";
  d.name = std::move(name);
  d.ips = std::move(ips);
  return d;
}

const char* unbound_data = R"(
  local-zone: "lain." redirect
  local-data: "lain. 60 IN A 10.0.0.1"
  local-zone: "web.lain." redirect
  local-data: "web.lain. 60 IN A 10.0.0.2"
  local-zone: "exact.lain." static
  local-data: "exact.lain. 60 IN A 10.0.0.3"
  local-data: "exact.lain. 60 IN A 10.0.0.33"
  local-zone: "six.lain." static
  local-data: "six.lain. 60 IN A 10.0.0.6"
  local-data: "six.lain. 60 IN AAAA fd00::6"
  local-zone: "h1.lain." static
  local-data: "h1.lain. 60 IN A 10.0.0.7"
  local-data-ptr: "10.0.0.3 60 exact.lain."
  local-data-ptr: "10.0.0.33 60 exact.lain."
  local-data-ptr: "10.0.0.6 60 six.lain."
  local-data-ptr: "fd00::6 60 six.lain."
  local-data-ptr: "10.0.0.7 60 h1.lain."
)";

table_input our_data() {
  table_input in;
  in.domains.push_back(domain("*.lain", {"10.0.0.1"}));
  in.domains.push_back(domain("*.web.lain", {"10.0.0.2"}));
  in.domains.push_back(domain("exact.lain", {"10.0.0.3", "10.0.0.33"}));
  in.dynamic_names["six.lain"] = {"10.0.0.6", "fd00::6"};
  in.hosts = parse_hosts("10.0.0.7 h1.lain\n");
  return in;
}

struct summary {
  uint16_t rcode = 0;
  std::multiset<std::string> answers;
  bool operator==(const summary& o) const {
    return rcode == o.rcode && answers == o.answers;
  }
};

std::ostream& operator<<(std::ostream& os, const summary& s) {
  os << "rcode " << s.rcode << " {";
  for (auto& a : s.answers)
    os << " " << a;
  return os << " }";
}

summary ask(uint16_t port, const std::string& name, uint16_t type) {
  query_spec spec;
  spec.name = name;
  spec.qtype = type;
  spec.id = 77;
  auto m = exchange_udp("127.0.0.1", port, make_query(spec), 2s);
  REQUIRE(m.ok());
  summary s;
  s.rcode = m->rcode;
  for (auto& rr : m->answer)
    s.answers.insert(std::to_string(rr.type) + " " + rr.data);
  return s;
}

} // namespace

TEST_CASE("local names get the same answers as from unbound") {
  test::temp_dir dir{"nwd-diff"};
  uint16_t ub_port = test::free_port();
  test::write_file(dir.file("unbound.conf"),
                   "server:\n  interface: 127.0.0.1@" + std::to_string(ub_port)
                     + "\n  do-daemonize: no\n  username: \"\"\n"
                       "  chroot: \"\"\n  use-syslog: no\n  directory: \""
                     + dir.path() + "\"\n  pidfile: \"" + dir.file("pid")
                     + "\"\n  num-threads: 1\n  do-ip6: no\n"
                       "  access-control: 127.0.0.0/8 allow\n"
                     + unbound_data);
  test::process ub{{"unbound", "-d", "-c", dir.file("unbound.conf")},
                   dir.file("out")};
  REQUIRE(test::wait_until([&] {
    query_spec spec;
    spec.name = "exact.lain";
    return exchange_udp("127.0.0.1", ub_port, make_query(spec), 200ms).ok();
  }));
  uint16_t port = test::free_port();
  server_options opts;
  opts.listen = {"127.0.0.1:" + std::to_string(port)};
  opts.workers = 1;
  server srv{opts};
  srv.publish(table::build(our_data()));
  REQUIRE(srv.start().ok());

  std::vector<std::string> names{
    "lain",         "a.lain",     "x.y.z.lain", "web.lain", "q.web.lain",
    "a.b.web.lain", "exact.lain", "EXACT.Lain", "six.lain", "h1.lain"};
  std::vector<uint16_t> types{KNOT_RRTYPE_A, KNOT_RRTYPE_AAAA, KNOT_RRTYPE_MX,
                              KNOT_RRTYPE_TXT};
  // Equal empty answers would prove nothing: count the comparisons where
  // unbound gave records. From the data: A for the 10 names, AAAA for
  // six.lain, and the 5 PTR names.
  int with_records = 0;
  for (auto& n : names)
    for (auto t : types) {
      INFO(n << " type " << t);
      auto theirs = ask(ub_port, n, t);
      CHECK(ask(port, n, t) == theirs);
      with_records += theirs.answers.empty() ? 0 : 1;
    }
  for (auto& rev : {"3.0.0.10.in-addr.arpa", "33.0.0.10.in-addr.arpa",
                    "6.0.0.10.in-addr.arpa", "7.0.0.10.in-addr.arpa",
                    "6.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0."
                    "0.0.d.f.ip6.arpa"}) {
    INFO(rev);
    auto theirs = ask(ub_port, rev, KNOT_RRTYPE_PTR);
    CHECK(ask(port, rev, KNOT_RRTYPE_PTR) == theirs);
    with_records += theirs.answers.empty() ? 0 : 1;
  }
  CHECK(with_records == 16);
}
