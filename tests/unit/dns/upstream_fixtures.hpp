// SPDX-License-Identifier: MIT
// Upstreams for forwarding tests, all on loopback: dnsmasq and unbound
// started by the test, a counting UDP upstream, a silent one, and the
// forwarding server under test. Every one is stopped (and its files
// removed) by its destructor.
#pragma once

#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "dns/client.hpp"
#include "dns/server.hpp"
#include "tests/support/util.hpp"

namespace networkd::dns::fixtures {

using namespace std::chrono_literals;

/// dnsmasq answering x.test names with fixed TTLs; logs every query.
struct dnsmasq {
  test::temp_dir dir{"nwd-dnsmasq"};
  uint16_t port = 0;
  std::unique_ptr<test::process> proc;
  /// `at_port` 0: a free one.
  explicit dnsmasq(const std::string& address = "/x.test/10.1.2.3",
                   int ttl = 100, uint16_t at_port = 0)
      : port(at_port != 0 ? at_port : test::free_port()) {
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
      auto r
        = exchange_udp("127.0.0.1", port, make_query({"probe.x.test"}), 200ms);
      return r.ok();
    }));
  }
  /// Queries dnsmasq logged for `name` (excluding the readiness probe),
  /// in any case (0x20).
  int logged(const std::string& name) {
    auto log = test::read_file(dir.file("log"));
    for (auto& c : log)
      c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    int count = 0;
    for (size_t p = 0;
         (p = log.find("] " + name + " from", p)) != std::string::npos; ++p)
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
      std::vector<std::string>{"unbound", "-d", "-c", dir.file("unbound.conf")},
      dir.file("out"));
    REQUIRE(test::wait_until([&] {
      auto r
        = exchange_udp("127.0.0.1", port, make_query({"probe.test"}), 200ms);
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
        buf[2] |= 0x80;                              // QR
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

inline config::upstream at(uint16_t port) {
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

/// A scripted UDP upstream in python3 (what dnsmasq cannot do: record the
/// source port of every query, answer late, send forged answers). Answers
/// every A query after `delay_ms` with 10.9.9.9 (TTL 60) and logs
/// "q <source port> <queries pending> <name as received>" per query. Names
/// starting with "forge" first get forged answers: from another socket (wrong
/// source port), with the ID off by one, with another name, with another type;
/// names "forge-only..." get nothing else. Names starting with "upper" get
/// their question echoed in upper case.
struct scripted_upstream {
  test::temp_dir dir{"nwd-pyup"};
  uint16_t port = test::free_port();
  std::unique_ptr<test::process> proc;
  explicit scripted_upstream(int delay_ms = 0) {
    test::write_file(dir.file("up.py"), script());
    proc = std::make_unique<test::process>(
      std::vector<std::string>{"python3", dir.file("up.py"),
                               std::to_string(port), std::to_string(delay_ms),
                               dir.file("log")},
      dir.file("out"));
    REQUIRE(test::wait_until([&] {
      auto r
        = exchange_udp("127.0.0.1", port, make_query({"probe.py.test"}), 200ms);
      return r.ok();
    }));
  }
  std::vector<std::string> log_lines() const {
    std::vector<std::string> out;
    auto text = test::read_file(dir.file("log"));
    size_t at = 0;
    while (at < text.size()) {
      auto nl = text.find('\n', at);
      if (nl == std::string::npos)
        break; // a line being written
      auto line = text.substr(at, nl - at);
      if (line.rfind("probe ", 0) != 0)
        out.push_back(line);
      at = nl + 1;
    }
    return out;
  }
  static std::string script() {
    return R"PY(
import heapq, select, socket, sys, time
port, delay, log_path = int(sys.argv[1]), int(sys.argv[2]) / 1000.0, sys.argv[3]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
s.bind(("127.0.0.1", port))
other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
other.bind(("127.0.0.1", 0))
log = open(log_path, "a", buffering=1)
pending = []
seq = 0

def question(q):
    i = 12
    while q[i] != 0:
        i += 1 + q[i]
    return i + 5

def answer(q, ip, qd=None, ident=None):
    end = question(q)
    qd = qd if qd is not None else q[12:end]
    ident = ident if ident is not None else q[:2]
    return (ident + b"\x81\x80\x00\x01\x00\x01\x00\x00\x00\x00" + qd
            + b"\xc0\x0c\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04"
            + bytes(int(x) for x in ip.split(".")))

while True:
    timeout = None
    if pending:
        timeout = max(0.0, pending[0][0] - time.monotonic())
    r, _, _ = select.select([s], [], [], timeout)
    if r:
        while True:
            try:
                q, src = s.recvfrom(4096)
            except BlockingIOError:
                break
            s.setblocking(False)
            if len(q) < 17:
                continue
            end = question(q)
            name = q[13:13 + q[12]].decode(errors="replace")
            labels, i = [], 12
            while q[i] != 0:
                labels.append(q[i + 1:i + 1 + q[i]].decode(errors="replace"))
                i += 1 + q[i]
            log.write("%s %d %d %s\n" % (
                "probe" if name.lower() in ("probe", "") else "q", src[1],
                len(pending) + 1, ".".join(labels) or "."))
            name = name.lower()
            if name.startswith("forge"):
                other.sendto(answer(q, "6.6.6.1"), src)
                bad_id = bytes([q[0], q[1] ^ 1])
                s.sendto(answer(q, "6.6.6.2", ident=bad_id), src)
                qd = bytearray(q[12:end])
                qd[1] = ord("z") if qd[1] != ord("z") else ord("y")
                s.sendto(answer(q, "6.6.6.3", qd=bytes(qd)), src)
                qd = bytearray(q[12:end])
                qd[-3] = 28
                s.sendto(answer(q, "6.6.6.4", qd=bytes(qd)), src)
                if name.startswith("forge-only"):
                    continue
            qd = q[12:end]
            if name.startswith("upper"):
                qd = qd.upper()
            seq += 1
            heapq.heappush(pending, (time.monotonic() + delay, seq,
                                     answer(q, "10.9.9.9", qd=qd), src))
        s.setblocking(True)
    now = time.monotonic()
    while pending and pending[0][0] <= now:
        _, _, a, src = heapq.heappop(pending)
        s.sendto(a, src)
)PY";
  }
};

/// Forwarded queries for `names`, at most `window` out at once, from one
/// client socket. Returns how many got an answer.
inline size_t ask_many(uint16_t server_port,
                       const std::vector<std::string>& names, size_t window,
                       std::chrono::milliseconds deadline) {
  int fd = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(server_port);
  to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  size_t answered = 0;
  for (size_t first = 0; first < names.size(); first += window) {
    size_t n = std::min(window, names.size() - first);
    for (size_t i = 0; i < n; ++i) {
      query_spec spec;
      spec.name = names[first + i];
      spec.id = static_cast<uint16_t>(first + i);
      auto wire = make_query(spec);
      ::sendto(fd, wire.data(), wire.size(), 0,
               reinterpret_cast<sockaddr*>(&to), sizeof(to));
    }
    auto until = std::chrono::steady_clock::now() + deadline;
    size_t got = 0;
    while (got < n && std::chrono::steady_clock::now() < until) {
      pollfd p{fd, POLLIN, 0};
      if (::poll(&p, 1, 50) <= 0)
        continue;
      uint8_t buf[1500];
      if (::recv(fd, buf, sizeof(buf), 0) > 0)
        ++got;
    }
    answered += got;
  }
  ::close(fd);
  return answered;
}

} // namespace networkd::dns::fixtures
