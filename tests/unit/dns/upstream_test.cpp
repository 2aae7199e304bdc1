// SPDX-License-Identifier: MIT
// Forwarding and caching against real upstreams (dnsmasq, unbound) and a
// counting UDP upstream written here, all on loopback.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <thread>

#include "dns/client.hpp"
#include "dns/server.hpp"
#include "tests/support/util.hpp"
#include "tests/unit/dns/upstream_fixtures.hpp"

using namespace networkd;
using namespace networkd::dns;
using namespace networkd::dns::fixtures;
using namespace std::chrono_literals;

TEST_CASE("forwarded answers come from dnsmasq and then from the cache") {
  dnsmasq up;
  forwarding_server s{{at(up.port)}};
  auto m = s.ask("a.x.test");
  REQUIRE(m.ok());
  CHECK(m->rcode == KNOT_RCODE_NOERROR);
  CHECK_FALSE(m->aa);
  REQUIRE(m->answer.size() == 1);
  CHECK(m->answer[0].data == "10.1.2.3");
  CHECK(m->answer[0].ttl == 100);
  CHECK(m->id == 7);
  // The TTL goes down while the answer is served from the cache.
  REQUIRE(test::wait_until(
    [&] {
      auto again = s.ask("A.X.test", 1, 8);
      return again.ok() && again->answer.size() == 1
             && again->answer[0].ttl < 100;
    },
    3s, 100ms));
  auto again = s.ask("A.X.test", 1, 9);
  REQUIRE(again.ok());
  CHECK(again->qname == "A.X.test");
  CHECK(again->answer.at(0).owner == "A.X.test");
  CHECK(again->answer.at(0).ttl >= 97);
  CHECK(up.logged("a.x.test") == 1);
  auto st = s.srv->stats();
  CHECK(st.forwarded == 1);
  CHECK(st.cached >= 2);
  CHECK(st.cache_stats.size == 1);
  CHECK(st.upstream.answered == 1);
  CHECK(st.upstream.latency_us_sum > 0);
}

TEST_CASE("NXDOMAIN with an SOA is cached negatively") {
  unbound up{"  local-zone: \"neg.test.\" static\n"
             "  local-data: \"neg.test. 300 IN SOA ns.neg.test. "
             "h.neg.test. 1 3600 600 86400 30\"\n"
             "  local-data: \"yes.neg.test. 300 IN A 10.2.2.2\"\n"};
  forwarding_server s{{at(up.port)}};
  auto m = s.ask("no.neg.test");
  REQUIRE(m.ok());
  CHECK(m->rcode == KNOT_RCODE_NXDOMAIN);
  REQUIRE(m->authority.size() == 1);
  CHECK(m->authority[0].ttl <= 30);
  m = s.ask("no.neg.test", 1, 11);
  REQUIRE(m.ok());
  CHECK(m->rcode == KNOT_RCODE_NXDOMAIN);
  CHECK(s.srv->stats().cached == 1);
  // NODATA is cached as well.
  m = s.ask("yes.neg.test", KNOT_RRTYPE_AAAA);
  REQUIRE(m.ok());
  CHECK(m->rcode == KNOT_RCODE_NOERROR);
  CHECK(m->answer.empty());
  m = s.ask("yes.neg.test", KNOT_RRTYPE_AAAA, 12);
  CHECK(s.srv->stats().cached == 2);
  CHECK(s.srv->stats().upstream.sent == 2);
}

TEST_CASE("a closed first upstream fails over to the next one") {
  dnsmasq up;
  uint16_t closed = test::free_port();
  forwarding_server s{{at(closed), at(up.port)}};
  auto m = s.ask("b.x.test");
  REQUIRE(m.ok());
  CHECK(m->rcode == KNOT_RCODE_NOERROR);
  REQUIRE(m->answer.size() == 1);
  CHECK(m->answer[0].data == "10.1.2.3");
}

TEST_CASE("a refusing first upstream fails over to the next one") {
  unbound refusing{"", true};
  dnsmasq up;
  forwarding_server s{{at(refusing.port), at(up.port)}};
  auto m = s.ask("c.x.test");
  REQUIRE(m.ok());
  CHECK(m->rcode == KNOT_RCODE_NOERROR);
  REQUIRE(m->answer.size() == 1);
  CHECK(up.logged("c.x.test") == 1);
}

TEST_CASE("a first upstream answering SERVFAIL fails over to the next one") {
  counting_upstream failing{0ms, KNOT_RCODE_SERVFAIL};
  dnsmasq up;
  forwarding_server s{{at(failing.port), at(up.port)}};
  auto m = s.ask("f.x.test");
  REQUIRE(m.ok());
  CHECK(m->rcode == KNOT_RCODE_NOERROR);
  REQUIRE(m->answer.size() == 1);
  CHECK(failing.count >= 1);
  CHECK(up.logged("f.x.test") == 1);
}

TEST_CASE("SERVFAIL goes to the client when every upstream fails") {
  unbound refusing{"", true};
  uint16_t closed = test::free_port();
  forwarding_server s{{at(refusing.port), at(closed)}};
  auto m = s.ask("d.x.test");
  REQUIRE(m.ok());
  CHECK(m->rcode == KNOT_RCODE_SERVFAIL);
  // No upstream at all: SERVFAIL as well.
  forwarding_server none{{}};
  m = none.ask("e.x.test");
  REQUIRE(m.ok());
  CHECK(m->rcode == KNOT_RCODE_SERVFAIL);
}

TEST_CASE("per-domain servers are used for names under their domain") {
  dnsmasq general{"/#/10.1.1.1"};
  dnsmasq special{"/per.test/10.9.9.9"};
  config::domain_servers_config ds{"per.test", {at(special.port)}};
  forwarding_server s{{at(general.port)}, {ds}};
  auto m = s.ask("host.per.test");
  REQUIRE(m.ok());
  REQUIRE(m->answer.size() == 1);
  CHECK(m->answer[0].data == "10.9.9.9");
  m = s.ask("host.other.test");
  REQUIRE(m.ok());
  REQUIRE(m->answer.size() == 1);
  CHECK(m->answer[0].data == "10.1.1.1");
}

TEST_CASE("identical queries in flight are coalesced into one") {
  counting_upstream up{300ms};
  forwarding_server s{{at(up.port)}, {}, 2000};
  std::vector<std::future<result<message>>> answers;
  for (uint16_t i = 0; i < 8; ++i)
    answers.push_back(std::async(std::launch::async, [&s, i] {
      return s.ask("same.name.test", 1, static_cast<uint16_t>(200 + i));
    }));
  for (uint16_t i = 0; i < 8; ++i) {
    auto m = answers[i].get();
    REQUIRE(m.ok());
    CHECK(m->id == 200 + i);
    CHECK(m->rcode == KNOT_RCODE_NOERROR);
  }
  CHECK(up.count == 1);
  CHECK(s.srv->stats().upstream.coalesced == 7);
}

TEST_CASE("we never forward to ourselves") {
  uint16_t port = test::free_port();
  server_options opts;
  opts.listen = {"127.0.0.1:" + std::to_string(port)};
  opts.workers = 1;
  server srv{opts};
  table_input in;
  in.upstreams
    = {config::upstream{"127.0.0.1", port}, config::upstream{"127.0.0.53", 53},
       config::upstream{"10.0.0.1", 53}, config::upstream{"127.0.0.1", 5353}};
  srv.publish(table::build(in));
  REQUIRE(srv.start().ok());
  auto list = srv.upstreams_for("example.com");
  REQUIRE(list.size() == 2);
  CHECK(list[0] == config::upstream{"10.0.0.1", 53});
  CHECK(list[1] == config::upstream{"127.0.0.1", 5353});
}

TEST_CASE("a name that becomes local is no longer answered from the cache") {
  dnsmasq up;
  forwarding_server s{{at(up.port)}};
  REQUIRE(s.ask("f.x.test").ok());
  CHECK(s.srv->stats().cache_stats.size == 1);
  table_input in = s.srv->current()->input();
  config::domain_config d;
  d.name = "f.x.test";
  d.ips = {"10.6.6.6"};
  in.domains.push_back(d);
  s.srv->publish(table::build(in));
  CHECK(s.srv->stats().cache_stats.size == 0);
  auto m = s.ask("f.x.test");
  REQUIRE(m.ok());
  CHECK(m->aa);
  CHECK(m->answer.at(0).data == "10.6.6.6");
}

TEST_CASE("TC from the cache over UDP, the full answer over TCP") {
  std::string body = "  local-zone: \"big.test.\" static\n";
  for (int i = 1; i <= 60; ++i)
    body += "  local-data: \"many.big.test. 300 IN A 10.50.0."
            + std::to_string(i) + "\"\n";
  unbound up{body};
  forwarding_server s{{at(up.port)}};
  auto m = s.ask("many.big.test");
  REQUIRE(m.ok());
  CHECK(m->tc);
  CHECK(m->answer.empty());
  query_spec spec;
  spec.name = "many.big.test";
  auto tcp = exchange_tcp("127.0.0.1", s.port, {make_query(spec)}, 3s);
  REQUIRE(tcp.ok());
  CHECK_FALSE(tcp->at(0).tc);
  CHECK(tcp->at(0).answer.size() == 60);
}

TEST_CASE("upstream exchanges in flight are capped and the extra query "
          "fails at once") {
  silent_upstream silent;
  auto up = silent.at;
  forwarder_options o;
  o.max_in_flight = 2;
  o.max_waiters = 2;
  forwarder f{o};
  REQUIRE(f.start().ok());
  std::atomic<int> refused{0};
  auto done = [&](const upstream_answer& a) {
    if (a.error == "too many queries upstream")
      ++refused;
  };
  for (auto name : {"a.test", "b.test", "c.test"})
    f.submit(name, {up}, make_query({name}), done);
  // c.test is the third exchange: refused. a.test's exchange takes one
  // more waiter (two in all); the next two are refused.
  for (int i = 0; i < 3; ++i)
    f.submit("a.test", {up}, make_query({"a.test"}), done);
  REQUIRE(test::wait_until([&] { return refused.load() == 3; }, 1s));
  CHECK(f.stats().refused == 3);
  CHECK(f.stats().coalesced == 1);
  CHECK(f.stats().sent == 2);
  f.stop();
}

TEST_CASE("a new upstream timeout applies to the next queries and not to "
          "those already out") {
  silent_upstream silent;
  auto up = silent.at;
  forwarder_options o;
  o.timeout_ms = 2500;
  o.tries = 1;
  forwarder f{o};
  REQUIRE(f.start().ok());
  std::atomic<bool> first_done{false}, second_done{false};
  auto t0 = std::chrono::steady_clock::now();
  std::atomic<int64_t> second_ms{0};
  f.submit("slow.test", {up}, make_query({"slow.test"}),
           [&](const upstream_answer&) { first_done = true; });
  // Out on the wire (not only queued) before the change.
  REQUIRE(test::wait_until([&] { return f.stats().sent == 1; }, 2s));
  f.set_timeout(100);
  CHECK(f.timeout() == 100);
  f.submit("fast.test", {up}, make_query({"fast.test"}),
           [&](const upstream_answer& a) {
             CHECK_FALSE(a.ok);
             second_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                           std::chrono::steady_clock::now() - t0)
                           .count();
             second_done = true;
           });
  REQUIRE(test::wait_until([&] { return second_done.load(); }, 2s));
  CHECK(second_ms.load() < 1500);
  // The query sent before the change still waits out its own timeout.
  CHECK_FALSE(first_done.load());
  REQUIRE(test::wait_until([&] { return first_done.load(); }, 5s));
  f.stop();
}
