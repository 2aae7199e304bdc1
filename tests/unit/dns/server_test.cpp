// SPDX-License-Identifier: MIT
// The server on loopback, queried with dig and a pipelining TCP client.
#include <catch2/catch.hpp>
#include <dirent.h>

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <set>
#include <sstream>

#include "dns/acl.hpp"
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

table_input sample() {
  table_input in;
  in.domains.push_back(domain("*.example.lain", {"10.0.0.1"}));
  in.domains.push_back(domain("exact.lain", {"10.0.0.3"}));
  std::vector<std::string> many;
  for (int i = 1; i <= 60; ++i)
    many.push_back("10.30.0." + std::to_string(i));
  in.domains.push_back(domain("big.lain", many));
  in.hosts = parse_hosts("fd00::5 six.lain\n");
  return in;
}

struct dig_result {
  int exit = -1;
  std::string status;
  std::string flags;
  std::vector<std::string> answer; ///< "name ttl class type data"
  std::vector<std::string> authority;
  std::string raw;
};

std::string squeeze(const std::string& line) {
  std::istringstream in(line);
  std::string word, out;
  while (in >> word)
    out += (out.empty() ? "" : " ") + word;
  return out;
}

dig_result dig(uint16_t port, const std::string& args,
               const std::string& at = "127.0.0.1") {
  dig_result r;
  r.exit = test::sh("dig @" + at + " -p " + std::to_string(port)
                      + " +tries=1 +time=2 +nocookie " + args + " 2>&1",
                    &r.raw);
  std::istringstream in(r.raw);
  std::string line;
  std::vector<std::string>* section = nullptr;
  while (std::getline(in, line)) {
    if (auto p = line.find("status: "); p != std::string::npos)
      r.status = line.substr(p + 8, line.find(',', p) - p - 8);
    if (auto p = line.find(";; flags: "); p == 0)
      r.flags = line.substr(10, line.find(';', 10) - 10);
    if (line.find(";; ANSWER SECTION") == 0)
      section = &r.answer;
    else if (line.find(";; AUTHORITY SECTION") == 0)
      section = &r.authority;
    else if (line.empty() || line[0] == ';')
      section = line.empty() ? nullptr : section;
    else if (section)
      section->push_back(squeeze(line));
  }
  return r;
}

bool has_flag(const dig_result& r, const std::string& flag) {
  std::istringstream in(r.flags);
  std::string f;
  while (in >> f)
    if (f == flag)
      return true;
  return false;
}

struct running_server {
  uint16_t port = test::free_port();
  std::unique_ptr<server> srv;
  explicit running_server(server_options opts = {}, table_input in = sample()) {
    opts.listen = {"127.0.0.1:" + std::to_string(port)};
    opts.workers = 2;
    srv = std::make_unique<server>(opts);
    srv->publish(table::build(in));
    auto r = srv->start();
    INFO((r ? "" : r.error().to_string()));
    REQUIRE(r.ok());
  }
};

/// Every thread of this process: tid -> voluntary + involuntary context
/// switches so far (a thread that sleeps and wakes is switched out once).
std::map<int, uint64_t> thread_switches() {
  std::map<int, uint64_t> out;
  DIR* d = ::opendir("/proc/self/task");
  if (!d)
    return out;
  while (auto* e = ::readdir(d)) {
    if (e->d_name[0] == '.')
      continue;
    std::istringstream in(
      test::read_file(std::string{"/proc/self/task/"} + e->d_name + "/status"));
    std::string line;
    uint64_t n = 0;
    while (std::getline(in, line))
      if (line.find("ctxt_switches:") != std::string::npos)
        n += std::stoull(line.substr(line.find(':') + 1));
    out[std::atoi(e->d_name)] = n;
  }
  ::closedir(d);
  return out;
}

} // namespace

TEST_CASE("an idle server sleeps and lets go of a replaced table at once") {
  auto before = thread_switches();
  running_server s;
  // The server's threads: the ones that were not there before.
  std::set<int> mine;
  for (auto& [tid, n] : thread_switches())
    if (!before.count(tid))
      mine.insert(tid);
  REQUIRE(mine.size() >= 3);          // two UDP workers, TCP, the forwarder
  std::this_thread::sleep_for(100ms); // the threads are in their loops
  auto sum = [&] {
    uint64_t n = 0;
    for (auto& [tid, c] : thread_switches())
      if (mine.count(tid))
        n += c;
    return n;
  };
  auto start = sum();
  std::this_thread::sleep_for(1500ms);
  // Nothing was asked, nothing timed out: no thread woke. (Polling loops
  // woke 25 times here: every 100, 200 and 1000 ms.)
  CHECK(sum() - start <= 2);

  // A publish wakes the loops, and the table they held goes at once.
  std::atomic<bool> freed{false};
  s.srv->publish(table::build(sample()), [&freed] { freed = true; });
  s.srv->publish(table::build(sample()));
  CHECK(test::wait_until([&] { return freed.load(); }, 300ms, 5ms));
}

TEST_CASE("dig gets local answers with AA and the configured TTL") {
  running_server s;
  auto r = dig(s.port, "exact.lain A");
  INFO(r.raw);
  CHECK(r.status == "NOERROR");
  CHECK(has_flag(r, "aa"));
  REQUIRE(r.answer.size() == 1);
  CHECK(r.answer[0] == "exact.lain. 60 IN A 10.0.0.3");
  r = dig(s.port, "deep.down.example.lain A");
  REQUIRE(r.answer.size() == 1);
  CHECK(r.answer[0] == "deep.down.example.lain. 60 IN A 10.0.0.1");
  r = dig(s.port, "six.lain AAAA");
  REQUIRE(r.answer.size() == 1);
  CHECK(r.answer[0] == "six.lain. 60 IN AAAA fd00::5");
}

TEST_CASE("dig gets NODATA with an SOA for a local name without the type") {
  running_server s;
  auto r = dig(s.port, "exact.lain AAAA");
  INFO(r.raw);
  CHECK(r.status == "NOERROR");
  CHECK(has_flag(r, "aa"));
  CHECK(r.answer.empty());
  REQUIRE(r.authority.size() == 1);
  CHECK(r.authority[0].find("exact.lain. 60 IN SOA exact.lain. "
                            "hostmaster.exact.lain.")
        == 0);
  r = dig(s.port, "x.example.lain MX");
  REQUIRE(r.authority.size() == 1);
  CHECK(r.authority[0].find("example.lain. 60 IN SOA") == 0);
}

TEST_CASE("dig gets PTR answers for local addresses") {
  running_server s;
  auto r = dig(s.port, "-x 10.0.0.3");
  INFO(r.raw);
  CHECK(r.status == "NOERROR");
  REQUIRE(r.answer.size() == 1);
  CHECK(r.answer[0] == "3.0.0.10.in-addr.arpa. 60 IN PTR exact.lain.");
  r = dig(s.port, "-x fd00::5");
  REQUIRE(r.answer.size() == 1);
  CHECK(r.answer[0].find("IN PTR six.lain.") != std::string::npos);
}

TEST_CASE("dig sees the question's case kept in the answer") {
  running_server s;
  auto r = dig(s.port, "WwW.ExAmPlE.lain A");
  INFO(r.raw);
  REQUIRE(r.answer.size() == 1);
  CHECK(r.answer[0] == "WwW.ExAmPlE.lain. 60 IN A 10.0.0.1");
}

TEST_CASE("a truncated UDP answer is complete over TCP") {
  running_server s;
  auto r = dig(s.port, "big.lain A +ignore +noedns");
  INFO(r.raw);
  CHECK(r.status == "NOERROR");
  CHECK(has_flag(r, "tc"));
  CHECK(r.answer.size() < 60);
  r = dig(s.port, "big.lain A +tcp");
  CHECK_FALSE(has_flag(r, "tc"));
  CHECK(r.answer.size() == 60);
  // dig retries over TCP by itself after TC.
  r = dig(s.port, "big.lain A +noedns");
  CHECK(r.answer.size() == 60);
}

TEST_CASE("pipelined TCP queries on one connection all get answers") {
  running_server s;
  std::vector<std::vector<uint8_t>> queries;
  std::vector<std::string> names{"exact.lain", "a.example.lain", "big.lain",
                                 "six.lain", "b.example.lain"};
  for (size_t i = 0; i < names.size(); ++i) {
    query_spec spec;
    spec.name = names[i];
    spec.id = static_cast<uint16_t>(100 + i);
    queries.push_back(make_query(spec));
  }
  auto answers = exchange_tcp("127.0.0.1", s.port, queries, 3s);
  INFO((answers ? "" : answers.error().to_string()));
  REQUIRE(answers.ok());
  REQUIRE(answers->size() == names.size());
  std::set<uint16_t> ids;
  for (auto& m : *answers) {
    ids.insert(m.id);
    REQUIRE(m.id >= 100);
    CHECK(m.qname == names[m.id - 100]);
    CHECK(m.rcode == KNOT_RCODE_NOERROR);
  }
  CHECK(ids.size() == names.size());
}

TEST_CASE("clients outside the allowed networks get REFUSED") {
  server_options opts;
  opts.allow_loopback = false;
  opts.allowed_networks = {"127.0.0.1/32"};
  running_server s{opts};
  auto r = dig(s.port, "-b 127.0.0.2 exact.lain A");
  INFO(r.raw);
  CHECK(r.status == "REFUSED");
  CHECK(r.answer.empty());
  r = dig(s.port, "-b 127.0.0.1 exact.lain A");
  CHECK(r.status == "NOERROR");
  CHECK(r.answer.size() == 1);
  CHECK(s.srv->stats().refused == 1);
  // Over TCP too.
  r = dig(s.port, "-b 127.0.0.2 exact.lain A +tcp");
  CHECK(r.status == "REFUSED");
}

TEST_CASE("clients over IPv6 are checked by the source ACL") {
  // A listen address of [::1]: the client's address is IPv6, and loopback
  // and the allowed networks hold for it as they do for IPv4 clients.
  auto ask = [](server_options opts) {
    auto port = test::free_port();
    opts.listen = {"[::1]:" + std::to_string(port)};
    opts.workers = 1;
    server srv{opts};
    srv.publish(table::build(sample()));
    auto started = srv.start();
    INFO((started ? "" : started.error().to_string()));
    REQUIRE(started.ok());
    auto r = dig(port, "exact.lain A", "::1");
    r.raw += "\nrefused " + std::to_string(srv.stats().refused);
    return r;
  };
  server_options loopback;
  auto r = ask(loopback);
  INFO(r.raw);
  CHECK(r.status == "NOERROR");
  CHECK(r.answer.size() == 1);
  server_options no_loopback;
  no_loopback.allow_loopback = false;
  no_loopback.allowed_networks = {"127.0.0.1/32"};
  r = ask(no_loopback);
  INFO(r.raw);
  CHECK(r.status == "REFUSED");
  CHECK(r.raw.find("\nrefused 1") != std::string::npos);
  server_options v6_network;
  v6_network.allow_loopback = false;
  v6_network.allowed_networks = {"::1/128"};
  r = ask(v6_network);
  INFO(r.raw);
  CHECK(r.status == "NOERROR");
}

TEST_CASE("the ACL matcher allows loopback and configured networks") {
  auto net = parse_cidr("172.17.0.0/16");
  REQUIRE(net.ok());
  acl a{{*net}, true};
  CHECK(a.allows(*parse_ip("127.0.0.9")));
  CHECK(a.allows(*parse_ip("::1")));
  CHECK(a.allows(*parse_ip("172.17.3.4")));
  CHECK(a.allows(*parse_ip("::ffff:172.17.3.4")));
  CHECK_FALSE(a.allows(*parse_ip("172.18.0.1")));
  CHECK_FALSE(a.allows(*parse_ip("8.8.8.8")));
  acl strict{{*net}, false};
  CHECK_FALSE(strict.allows(*parse_ip("127.0.0.1")));
  CHECK_FALSE(parse_cidr("10.0.0.0/33").ok());
  CHECK_FALSE(parse_cidr("10.0.0/8").ok());
  CHECK(parse_cidr("fd00::/8")->contains(*parse_ip("fd12::1")));
}

TEST_CASE("start fails when the port is in use") {
  running_server s;
  server_options opts;
  opts.listen = {"127.0.0.1:" + std::to_string(s.port)};
  opts.workers = 1;
  server other{opts};
  auto r = other.start();
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == "bind");
  server_options no_port;
  no_port.listen = {"127.0.0.1"};
  server bad{no_port};
  CHECK(bad.start().error().code == "bad_option");
}

TEST_CASE("a published table is answered at once") {
  running_server s;
  CHECK(dig(s.port, "new.lain A").status != "NOERROR");
  auto in = sample();
  in.domains.push_back(domain("new.lain", {"10.4.4.4"}));
  s.srv->publish(table::build(in));
  auto r = dig(s.port, "new.lain A");
  REQUIRE(r.answer.size() == 1);
  CHECK(r.answer[0] == "new.lain. 60 IN A 10.4.4.4");
  CHECK(s.srv->config_text().find("host-record=new.lain,10.4.4.4")
        != std::string::npos);
}

TEST_CASE("stats count queries by type, rcode and path") {
  running_server s;
  dig(s.port, "exact.lain A");
  dig(s.port, "exact.lain AAAA");
  dig(s.port, "a.example.lain A");
  auto st = s.srv->stats();
  CHECK(st.queries == 3);
  CHECK(st.local == 3);
  CHECK(st.by_type["A"] == 2);
  CHECK(st.by_type["AAAA"] == 1);
  CHECK(st.by_rcode["NOERROR"] == 3);
}

TEST_CASE("stop returns promptly and frees the port") {
  running_server s;
  auto t0 = std::chrono::steady_clock::now();
  s.srv->stop();
  CHECK(std::chrono::steady_clock::now() - t0 < 2s);
  server_options opts;
  opts.listen = {"127.0.0.1:" + std::to_string(s.port)};
  opts.workers = 1;
  server again{opts};
  CHECK(again.start().ok());
}

namespace {

/// A plain TCP connection to the server (blocking, with a receive timeout).
int tcp_connect(uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    ::close(fd);
    return -1;
  }
  timeval tv{0, 20000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  return fd;
}

/// True once the server closed the connection (read returns 0).
bool closed_by_server(int fd) {
  char c;
  return ::recv(fd, &c, 1, 0) == 0;
}

} // namespace

TEST_CASE("idle TCP connections are closed after the idle timeout") {
  server_options opts;
  opts.tcp_idle_timeout = 300ms;
  running_server s{opts};
  int fd = tcp_connect(s.port);
  REQUIRE(fd >= 0);
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(test::wait_until([&] { return closed_by_server(fd); }, 5s, 1ms));
  auto waited = std::chrono::steady_clock::now() - t0;
  CHECK(waited >= 250ms);
  ::close(fd);
}

TEST_CASE("TCP connections over the cap are closed at once") {
  server_options opts;
  opts.max_tcp_connections = 2;
  opts.tcp_idle_timeout = 10s;
  running_server s{opts};
  int a = tcp_connect(s.port);
  int b = tcp_connect(s.port);
  REQUIRE(a >= 0);
  REQUIRE(b >= 0);
  REQUIRE(
    test::wait_until([&] { return s.srv->stats().tcp_connections == 2; }, 3s));
  int c = tcp_connect(s.port);
  REQUIRE(c >= 0);
  CHECK(test::wait_until([&] { return closed_by_server(c); }, 3s, 1ms));
  CHECK(s.srv->stats().tcp_rejected == 1);
  // The first two still work.
  query_spec spec;
  spec.name = "exact.lain";
  CHECK_FALSE(closed_by_server(a));
  ::close(a);
  ::close(b);
  ::close(c);
  // Once they are gone, new connections are served again.
  REQUIRE(
    test::wait_until([&] { return s.srv->stats().tcp_connections == 0; }, 3s));
  auto answers = exchange_tcp("127.0.0.1", s.port, {make_query(spec)}, 3s);
  CHECK(answers.ok());
}
