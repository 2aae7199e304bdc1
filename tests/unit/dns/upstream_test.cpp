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

using namespace networkd;
using namespace networkd::dns;
using namespace std::chrono_literals;

namespace {

/// dnsmasq answering x.test names with fixed TTLs; logs every query.
struct dnsmasq {
  test::temp_dir dir{"nwd-dnsmasq"};
  uint16_t port = test::free_port();
  std::unique_ptr<test::process> proc;
  explicit dnsmasq(const std::string& address = "/x.test/10.1.2.3",
                   int ttl = 100) {
    proc = std::make_unique<test::process>(
      std::vector<std::string>{
        "dnsmasq", "--no-daemon", "--port=" + std::to_string(port),
        "--listen-address=127.0.0.1", "--bind-interfaces", "--no-resolv",
        "--no-hosts", "--conf-file=/dev/null", "--user=root",
        "--address=" + address, "--local-ttl=" + std::to_string(ttl),
        "--log-queries", "--log-facility=" + dir.file("log"),
        "--pid-file=" + dir.file("pid")},
      dir.file("out"));
    REQUIRE(test::wait_until([&] {
      auto r = exchange_udp("127.0.0.1", port, make_query({"probe.x.test"}),
                            200ms);
      return r.ok();
    }));
  }
  /// Queries dnsmasq logged for `name` (excluding the readiness probe).
  int logged(const std::string& name) {
    auto log = test::read_file(dir.file("log"));
    int count = 0;
    for (size_t p = 0; (p = log.find("] " + name + " from", p))
                       != std::string::npos;
         ++p)
      ++count;
    return count;
  }
};

/// unbound serving local zones from its own config.
struct unbound {
  test::temp_dir dir{"nwd-unbound"};
  uint16_t port = test::free_port();
  std::unique_ptr<test::process> proc;
  explicit unbound(const std::string& body, bool refuse = false) {
    std::string conf = "server:\n"
                       "  interface: 127.0.0.1@"
                       + std::to_string(port)
                       + "\n"
                         "  do-daemonize: no\n  username: \"\"\n"
                         "  chroot: \"\"\n  use-syslog: no\n"
                         "  directory: \""
                       + dir.path()
                       + "\"\n"
                         "  pidfile: \""
                       + dir.file("pid")
                       + "\"\n"
                         "  num-threads: 1\n  do-ip6: no\n"
                         "  verbosity: 0\n"
                         "  access-control: 127.0.0.0/8 "
                       + (refuse ? "refuse" : "allow") + "\n" + body;
    test::write_file(dir.file("unbound.conf"), conf);
    proc = std::make_unique<test::process>(
      std::vector<std::string>{"unbound", "-d", "-c",
                               dir.file("unbound.conf")},
      dir.file("out"));
    REQUIRE(test::wait_until([&] {
      auto r = exchange_udp("127.0.0.1", port, make_query({"probe.test"}),
                            200ms);
      return r.ok();
    }));
  }
};

/// A UDP upstream that counts queries and answers each one (with `rcode`,
/// no records) after a delay.
struct counting_upstream {
  uint16_t port = test::free_port();
  int fd = -1;
  std::atomic<int> count{0};
  std::atomic<bool> done{false};
  std::thread thread;
  explicit counting_upstream(std::chrono::milliseconds delay,
                             uint8_t rcode = 0) {
    fd = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    thread = std::thread([this, delay, rcode] {
      while (!done) {
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 50) <= 0)
          continue;
        uint8_t buf[1500];
        sockaddr_storage from{};
        socklen_t len = sizeof(from);
        auto n = ::recvfrom(fd, buf, sizeof(buf), 0,
                            reinterpret_cast<sockaddr*>(&from), &len);
        if (n < 12)
          continue;
        ++count;
        std::this_thread::sleep_for(delay);
        buf[2] |= 0x80; // QR
        buf[3] = static_cast<uint8_t>(0x80 | rcode); // RA, rcode
        ::sendto(fd, buf, static_cast<size_t>(n), 0,
                 reinterpret_cast<sockaddr*>(&from), len);
      }
    });
  }
  ~counting_upstream() {
    done = true;
    thread.join();
    ::close(fd);
  }
};

struct forwarding_server {
  uint16_t port = test::free_port();
  std::unique_ptr<server> srv;
  forwarding_server(std::vector<config::upstream> upstreams,
                    std::vector<config::domain_servers_config> per_domain = {},
                    int timeout_ms = 400) {
    server_options opts;
    opts.listen = {"127.0.0.1:" + std::to_string(port)};
    opts.workers = 2;
    opts.upstream.timeout_ms = timeout_ms;
    opts.upstream.tries = 1;
    srv = std::make_unique<server>(opts);
    table_input in;
    config::domain_config d;
    d.name = "local.lain";
    d.ips = {"10.0.0.3"};
    in.domains.push_back(d);
    in.upstreams = std::move(upstreams);
    in.domain_servers = std::move(per_domain);
    srv->publish(table::build(in));
    REQUIRE(srv->start().ok());
  }
  result<message> ask(const std::string& name, uint16_t type = 1,
                      uint16_t id = 7) {
    query_spec spec;
    spec.name = name;
    spec.qtype = type;
    spec.id = id;
    return exchange_udp("127.0.0.1", port, make_query(spec), 3s);
  }
};

config::upstream at(uint16_t port) {
  return config::upstream{"127.0.0.1", port};
}

/// An upstream that takes queries and never answers.
struct silent_upstream {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  config::upstream at;
  silent_upstream() {
    REQUIRE(fd >= 0);
    sockaddr_in sin{};
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&sin), sizeof(sin)) == 0);
    socklen_t len = sizeof(sin);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&sin), &len);
    at = config::upstream{"127.0.0.1", ntohs(sin.sin_port)};
  }
  ~silent_upstream() { ::close(fd); }
};

} // namespace

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
  in.upstreams = {config::upstream{"127.0.0.1", port},
                  config::upstream{"127.0.0.53", 53},
                  config::upstream{"10.0.0.1", 53},
                  config::upstream{"127.0.0.1", 5353}};
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
