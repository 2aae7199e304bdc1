// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <vector>

#include "net/kernel/tcp_probe.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/util.hpp"

using namespace networkd;
using namespace networkd::test;

namespace {

/// A listening socket on 127.0.0.1 (never accepts: the kernel completes
/// the handshake from the backlog).
struct listener {
  int fd = -1;
  uint16_t port = 0;
  listener() {
    fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0);
    REQUIRE(::listen(fd, 1024) == 0);
    socklen_t len = sizeof(a);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
  }
  ~listener() { ::close(fd); }
};

struct results {
  std::mutex mtx;
  std::vector<probe_outcome> seen;
  void add(const probe_outcome& o) {
    std::lock_guard<std::mutex> g{mtx};
    seen.push_back(o);
  }
  size_t size() {
    std::lock_guard<std::mutex> g{mtx};
    return seen.size();
  }
};

} // namespace

TEST_CASE("a listening port probes ok, a closed one is refused",
          "[tcp_probe]") {
  listener l;
  uint16_t closed = free_port();
  tcp_prober p;
  results r;
  p.probe("127.0.0.1", l.port, 1s, [&](auto& o) { r.add(o); });
  REQUIRE(wait_until([&] { return r.size() == 1; }, 5s));
  CHECK(r.seen[0].ok);
  p.probe("127.0.0.1", closed, 1s, [&](auto& o) { r.add(o); });
  REQUIRE(wait_until([&] { return r.size() == 2; }, 5s));
  CHECK_FALSE(r.seen[1].ok);
  CHECK(r.seen[1].error == "refused");
}

namespace {

/// A namespace where 10.77.0.1:9 never answers (its SYNs are dropped), and
/// a prober whose thread lives there (threads inherit their creator's
/// network namespace).
struct blackhole {
  netns ns{"probe"};
  std::unique_ptr<tcp_prober> prober;
  blackhole() {
    ns.must("ip addr add 10.77.0.1/32 dev lo");
    ns.must("iptables -A INPUT -p tcp --dport 9 -j DROP");
    ns.run([&] { prober = std::make_unique<tcp_prober>(); });
  }
};

} // namespace

TEST_CASE("an unanswered connect times out without delaying others",
          "[tcp_probe]") {
  blackhole b;
  results r;
  uint16_t closed = free_port();
  b.prober->probe("10.77.0.1", 9, 300ms, [&](auto& o) { r.add(o); });
  b.prober->probe("127.0.0.1", closed, 1s, [&](auto& o) { r.add(o); });
  REQUIRE(wait_until([&] { return r.size() == 2; }, 5s));
  // The refused probe finished first; the dropped one by its deadline.
  CHECK(r.seen[0].error == "refused");
  CHECK(r.seen[1].error == "timeout");
  CHECK(r.seen[1].latency >= 250ms);
  CHECK(r.seen[1].latency < 1s);
}

TEST_CASE("many probes run at once", "[tcp_probe]") {
  listener l;
  tcp_prober p;
  results r;
  for (int i = 0; i < 200; ++i)
    p.probe("127.0.0.1", l.port, 2s, [&](auto& o) { r.add(o); });
  REQUIRE(wait_until([&] { return r.size() == 200; }, 10s));
  for (auto& o : r.seen)
    CHECK(o.ok);
}

TEST_CASE("a bad address fails at once and stopping answers the rest",
          "[tcp_probe]") {
  blackhole b;
  results r;
  b.prober->probe("not-an-ip", 80, 1s, [&](auto& o) { r.add(o); });
  REQUIRE(wait_until([&] { return r.size() == 1; }, 5s));
  CHECK(r.seen[0].error.find("bad address") != std::string::npos);
  b.prober->probe("10.77.0.1", 9, 30s, [&](auto& o) { r.add(o); });
  b.prober.reset();
  REQUIRE(r.size() == 2);
  CHECK(r.seen[1].error == "stopped");
}

TEST_CASE("a probe asked for later starts then and stopping answers it",
          "[tcp_probe]") {
  listener l;
  auto p = std::make_unique<tcp_prober>();
  results r;
  auto asked = std::chrono::steady_clock::now();
  std::atomic<int64_t> took_ms{-1};
  p->probe(
    "127.0.0.1", l.port, 1s,
    [&](auto& o) {
      took_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                  std::chrono::steady_clock::now() - asked)
                  .count();
      r.add(o);
    },
    300ms);
  // One asked for now is not held up by the one waiting.
  p->probe("127.0.0.1", l.port, 1s, [&](auto& o) { r.add(o); });
  REQUIRE(wait_until([&] { return r.size() == 1; }, 5s));
  CHECK(took_ms.load() == -1);
  REQUIRE(wait_until([&] { return r.size() == 2; }, 5s));
  CHECK(r.seen[1].ok);
  CHECK(took_ms.load() >= 300);
  // A waiting probe is answered "stopped" when the prober goes.
  p->probe(
    "127.0.0.1", l.port, 1s, [&](auto& o) { r.add(o); }, 60s);
  p.reset();
  REQUIRE(r.size() == 3);
  CHECK(r.seen[2].error == "stopped");
}

TEST_CASE("a probe closes with a reset and leaves no socket behind",
          "[tcp_probe]") {
  // The listener never accepts: after a FIN close the prober's side would
  // wait in FIN-WAIT-2 for a close that never comes (TIME_WAIT with a peer
  // that closes); after a reset nothing of it is left.
  listener l;
  tcp_prober p;
  results r;
  for (int i = 0; i < 5; ++i)
    p.probe("127.0.0.1", l.port, 1s, [&](auto& o) { r.add(o); });
  REQUIRE(wait_until([&] { return r.size() == 5; }, 5s));
  for (auto& o : r.seen)
    CHECK(o.ok);
  std::string out;
  sh("ss -tanH 'dport = :" + std::to_string(l.port) + "'", &out);
  INFO(out);
  CHECK(out.empty());
}
