// SPDX-License-Identifier: MIT
// The limits of DNS over TCP: clients that never read, hold many
// connections, trickle bytes or never hang up.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include "dns/message.hpp"
#include "dns/server.hpp"
#include "tests/support/util.hpp"

using namespace networkd;
using namespace networkd::dns;
using namespace std::chrono_literals;

namespace {

using clock_type = std::chrono::steady_clock;

table_input sample() {
  table_input in;
  config::domain_config exact;
  exact.name = "exact.lain";
  exact.ips = {"10.0.0.3"};
  in.domains.push_back(exact);
  config::domain_config big; // an answer of about 1 KB
  big.name = "big.lain";
  for (int i = 1; i <= 60; ++i)
    big.ips.push_back("10.30.0." + std::to_string(i));
  in.domains.push_back(big);
  return in;
}

struct running_server {
  uint16_t port = test::free_port();
  std::unique_ptr<server> srv;
  explicit running_server(server_options opts) {
    opts.listen = {"127.0.0.1:" + std::to_string(port)};
    opts.workers = 1;
    srv = std::make_unique<server>(opts);
    srv->publish(table::build(sample()));
    auto r = srv->start();
    INFO((r ? "" : r.error().to_string()));
    REQUIRE(r.ok());
  }
};

/// A TCP connection from `source` (a loopback address) to the server.
/// `rcvbuf` > 0 shrinks the client's receive buffer, so that answers the
/// client does not read pile up in the server rather than in the kernel.
int connect_from(uint16_t port, const char* source = "127.0.0.1",
                 int rcvbuf = 0) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (rcvbuf > 0)
    ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
  sockaddr_in from{};
  from.sin_family = AF_INET;
  ::inet_pton(AF_INET, source, &from.sin_addr);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&from), sizeof(from)) != 0
      || ::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

/// True once the server has closed fd: end of stream or a reset, after
/// whatever answers were still on their way.
bool closed_by_server(int fd) {
  for (;;) {
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 10) <= 0)
      return false;
    char buf[4096];
    auto n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK))
      return true;
    if (n < 0)
      return false;
  }
}

/// True once the server has closed fd, without reading from it (a client
/// that reads would let the server send on).
bool hung_up(int fd) {
  pollfd p{fd, POLLRDHUP, 0};
  return ::poll(&p, 1, 0) > 0
         && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)) != 0;
}

std::vector<uint8_t> framed_query(const std::string& name, uint16_t id) {
  query_spec spec;
  spec.name = name;
  spec.id = id;
  auto wire = make_query(spec);
  std::vector<uint8_t> out{static_cast<uint8_t>(wire.size() >> 8),
                           static_cast<uint8_t>(wire.size() & 0xff)};
  out.insert(out.end(), wire.begin(), wire.end());
  return out;
}

/// `count` pipelined queries for `name`, never reading an answer. Sends
/// what the connection takes within `deadline`; returns the bytes sent.
size_t flood(int fd, const std::string& name, size_t count,
             std::chrono::milliseconds deadline) {
  std::vector<uint8_t> bytes;
  for (size_t i = 0; i < count; ++i) {
    auto q = framed_query(name, static_cast<uint16_t>(i));
    bytes.insert(bytes.end(), q.begin(), q.end());
  }
  size_t sent = 0;
  auto until = clock_type::now() + deadline;
  while (sent < bytes.size() && clock_type::now() < until) {
    auto n = ::send(fd, bytes.data() + sent, bytes.size() - sent,
                    MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n > 0) {
      sent += static_cast<size_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
      break; // closed by the server
    pollfd p{fd, POLLOUT, 0};
    ::poll(&p, 1, 20);
  }
  return sent;
}

/// Reads exactly n bytes before `until`.
bool read_exact(int fd, uint8_t* buf, size_t n, clock_type::time_point until) {
  size_t got = 0;
  while (got < n) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - clock_type::now());
    pollfd p{fd, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&p, 1, static_cast<int>(left.count())) <= 0)
      return false;
    auto r = ::recv(fd, buf + got, n - got, MSG_DONTWAIT);
    if (r <= 0 && !(r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)))
      return false;
    if (r > 0)
      got += static_cast<size_t>(r);
  }
  return true;
}

/// One query over fd and its answer, within a second.
result<message> ask(int fd, const std::string& name, uint16_t id) {
  auto q = framed_query(name, id);
  if (::send(fd, q.data(), q.size(), MSG_NOSIGNAL)
      != static_cast<ssize_t>(q.size()))
    return make_failure("io", "send failed");
  auto until = clock_type::now() + 1s;
  uint8_t head[2];
  if (!read_exact(fd, head, 2, until))
    return make_failure("io", "no answer");
  std::vector<uint8_t> body((size_t{head[0]} << 8) | head[1]);
  if (!read_exact(fd, body.data(), body.size(), until))
    return make_failure("io", "short answer");
  return parse_message(body);
}

/// The largest answer in these tests (big.lain) is below this.
constexpr size_t largest_answer = 2048;

} // namespace

TEST_CASE("a client that never reads is held at the output cap and closed") {
  server_options opts;
  opts.tcp_output_cap = 16 * 1024;
  opts.tcp_write_timeout = 500ms;
  running_server s{opts};
  int fd = connect_from(s.port, "127.0.0.1", 4096);
  REQUIRE(fd >= 0);
  // 5000 queries of 30 bytes ask for about 5 MB of answers.
  auto sent = flood(fd, "big.lain", 5000, 2s);
  INFO("sent " << sent << " bytes");
  auto t0 = clock_type::now();
  CHECK(test::wait_until([&] { return hung_up(fd); }, 5s, 1ms));
  CHECK(clock_type::now() - t0 < 3s);
  auto st = s.srv->stats();
  INFO("peak " << st.tcp_output_peak);
  CHECK(st.tcp_closed_write_timeout == 1);
  // Back-pressure set in (the cap was reached) and held the buffer there.
  CHECK(st.tcp_output_peak >= opts.tcp_output_cap);
  CHECK(st.tcp_output_peak <= opts.tcp_output_cap + largest_answer);
  REQUIRE(
    test::wait_until([&] { return s.srv->stats().tcp_connections == 0; }, 3s));
  CHECK(s.srv->stats().tcp_output_bytes == 0);
  ::close(fd);
}

TEST_CASE("connections over the per-client and total caps are closed at once") {
  server_options opts;
  opts.max_tcp_per_client = 2;
  opts.max_tcp_connections = 3;
  running_server s{opts};
  int a = connect_from(s.port, "127.0.0.1");
  int b = connect_from(s.port, "127.0.0.1");
  REQUIRE(a >= 0);
  REQUIRE(b >= 0);
  REQUIRE(
    test::wait_until([&] { return s.srv->stats().tcp_connections == 2; }, 3s));
  int c = connect_from(s.port, "127.0.0.1");
  REQUIRE(c >= 0);
  CHECK(test::wait_until([&] { return closed_by_server(c); }, 3s, 1ms));
  CHECK(s.srv->stats().tcp_rejected_per_client == 1);
  // Another address still gets in, up to the total.
  int d = connect_from(s.port, "127.0.0.2");
  REQUIRE(d >= 0);
  auto r = ask(d, "exact.lain", 7);
  INFO((r ? "" : r.error().to_string()));
  CHECK(r.ok());
  int e = connect_from(s.port, "127.0.0.3");
  REQUIRE(e >= 0);
  CHECK(test::wait_until([&] { return closed_by_server(e); }, 3s, 1ms));
  auto st = s.srv->stats();
  INFO("open " << st.tcp_connections << ", per client "
               << st.tcp_rejected_per_client << ", idle "
               << st.tcp_closed_idle);
  CHECK(st.tcp_rejected == 1);
  CHECK(s.srv->stats().tcp_connections == 3);
  // The first two still work.
  CHECK(ask(a, "exact.lain", 8).ok());
  CHECK(ask(b, "exact.lain", 9).ok());
  for (int fd : {a, b, c, d, e})
    ::close(fd);
}

TEST_CASE("other clients get answers while an abuser floods every slot") {
  server_options opts;
  opts.max_tcp_per_client = 4;
  opts.max_tcp_connections = 8;
  opts.tcp_output_cap = 16 * 1024;
  opts.tcp_total_output_cap = 48 * 1024;
  opts.tcp_write_timeout = 10s; // the abuser stays while we look
  running_server s{opts};
  // The abuser tries to take every slot and never reads.
  std::vector<int> abuser;
  for (size_t i = 0; i < opts.max_tcp_connections; ++i) {
    int fd = connect_from(s.port, "127.0.0.1", 4096);
    REQUIRE(fd >= 0);
    abuser.push_back(fd);
  }
  for (int fd : abuser)
    flood(fd, "big.lain", 2000, 200ms);
  int fd = connect_from(s.port, "127.0.0.2");
  REQUIRE(fd >= 0);
  for (uint16_t id = 1; id <= 20; ++id) {
    auto r = ask(fd, "exact.lain", id);
    INFO("query " << id << ": " << (r ? "" : r.error().to_string()));
    REQUIRE(r.ok());
    CHECK(r->id == id);
    REQUIRE(r->answer.size() == 1);
  }
  // Four abuser connections of 16 KiB each are over the total of 48 KiB:
  // the largest was cut.
  auto st = s.srv->stats();
  INFO("peak " << st.tcp_output_peak << ", queued " << st.tcp_output_bytes
               << ", open " << st.tcp_connections);
  REQUIRE(test::wait_until(
    [&] { return s.srv->stats().tcp_closed_output >= 1; }, 3s));
  st = s.srv->stats();
  CHECK(st.tcp_rejected_per_client == opts.max_tcp_connections - 4);
  CHECK(st.tcp_output_bytes <= opts.tcp_total_output_cap);
  ::close(fd);
  for (int a : abuser)
    ::close(a);
}

TEST_CASE("a client that trickles bytes is closed at the idle timeout") {
  server_options opts;
  opts.tcp_idle_timeout = 500ms;
  running_server s{opts};
  int fd = connect_from(s.port);
  REQUIRE(fd >= 0);
  // A length prefix promising a large query, then one byte at a time.
  uint8_t prefix[2] = {0xff, 0xff};
  REQUIRE(::send(fd, prefix, 2, MSG_NOSIGNAL) == 2);
  auto t0 = clock_type::now();
  bool closed = false;
  while (!closed && clock_type::now() - t0 < 5s) {
    uint8_t byte = 0;
    closed = ::send(fd, &byte, 1, MSG_NOSIGNAL) != 1;
    closed
      = closed
        || test::wait_until([&] { return closed_by_server(fd); }, 100ms, 1ms);
  }
  CHECK(closed);
  CHECK(clock_type::now() - t0 < 2s);
  CHECK(s.srv->stats().tcp_closed_idle == 1);
  ::close(fd);
}

TEST_CASE("a busy connection is closed after its maximum lifetime") {
  server_options opts;
  opts.tcp_idle_timeout = 10s;
  opts.tcp_max_lifetime = 500ms;
  running_server s{opts};
  int fd = connect_from(s.port);
  REQUIRE(fd >= 0);
  auto t0 = clock_type::now();
  uint16_t id = 0;
  bool closed = false;
  // A query every 50 ms, each answered, until the server hangs up.
  while (!closed && clock_type::now() - t0 < 5s) {
    closed = !ask(fd, "exact.lain", ++id).ok();
    closed
      = closed
        || test::wait_until([&] { return closed_by_server(fd); }, 50ms, 1ms);
  }
  CHECK(closed);
  CHECK(clock_type::now() - t0 >= 450ms);
  CHECK(clock_type::now() - t0 < 2s);
  CHECK(id > 3);
  CHECK(s.srv->stats().tcp_closed_lifetime == 1);
  ::close(fd);
}
