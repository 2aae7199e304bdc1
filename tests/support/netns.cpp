// SPDX-License-Identifier: MIT
// Network namespace lab for tests: namespaces, veth pairs, code run inside.
#include "tests/support/netns.hpp"

#include "tests/support/util.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

namespace networkd::test {

namespace {

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'')
      out += "'\\''";
    else
      out += c;
  }
  return out + "'";
}

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
    s.pop_back();
  return s;
}

struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

sockaddr_in make_addr(const std::string& ip, uint16_t port) {
  sockaddr_in sa{};
  sa.sin_family = AF_INET;
  sa.sin_port = htons(port);
  if (::inet_pton(AF_INET, ip.c_str(), &sa.sin_addr) != 1)
    throw std::runtime_error("bad IPv4 address " + ip);
  return sa;
}

bool wait_fd(int fd, short events,
             std::chrono::steady_clock::time_point until) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
    if (left.count() <= 0)
      return false;
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, static_cast<int>(left.count()));
    if (r > 0)
      return true;
    if (r < 0 && errno != EINTR)
      return false;
  }
}

} // namespace

netns::netns(const std::string& tag) {
  static std::atomic<int> counter{0};
  name_ = "nwdt-" + tag + "-" + std::to_string(::getpid()) + "-"
          + std::to_string(counter++);
  std::string out;
  if (test::sh("ip netns add " + name_ + " 2>&1", &out) != 0)
    throw std::runtime_error("ip netns add " + name_ + ": " + out);
  // Loopback up: local traffic (and DNAT via OUTPUT) needs it.
  try {
    must("ip link set lo up");
  } catch (...) {
    test::sh("ip netns del " + name_ + " 2>/dev/null");
    throw;
  }
}

netns::~netns() {
  test::sh("ip netns del " + name_ + " 2>/dev/null");
}

int netns::sh(const std::string& cmd, std::string* out) const {
  return test::sh("ip netns exec " + name_ + " sh -c " + quote(cmd) + " 2>&1",
                  out);
}

void netns::must(const std::string& cmd) const {
  std::string out;
  if (sh(cmd, &out) != 0)
    throw std::runtime_error("in " + name_ + ": " + cmd + ": " + out);
}

void netns::enter() const {
  std::string path = "/run/netns/" + name_;
  fd_guard fd{::open(path.c_str(), O_RDONLY | O_CLOEXEC)};
  if (fd.fd < 0)
    throw std::runtime_error("open " + path + ": " + std::strerror(errno));
  if (::setns(fd.fd, CLONE_NEWNET) != 0)
    throw std::runtime_error("setns " + name_ + ": " + std::strerror(errno));
}

veth_pair::veth_pair(const netns& a, std::string name_a, const netns& b,
                     std::string name_b)
    : a_(a), name_a_(std::move(name_a)), b_(b), name_b_(std::move(name_b)) {
  std::string out;
  auto cmd = "ip -n " + a_.name() + " link add " + name_a_
             + " type veth peer name " + name_b_ + " netns " + b_.name()
             + " 2>&1";
  if (test::sh(cmd, &out) != 0)
    throw std::runtime_error(cmd + ": " + out);
  try {
    a_.must("ip link set " + name_a_ + " up");
    b_.must("ip link set " + name_b_ + " up");
  } catch (...) {
    test::sh("ip -n " + a_.name() + " link del " + name_a_ + " 2>/dev/null");
    throw;
  }
}

veth_pair::~veth_pair() {
  test::sh("ip -n " + a_.name() + " link del " + name_a_ + " 2>/dev/null");
}

std::string veth_pair::mac_a() const {
  std::string out;
  a_.sh("cat /sys/class/net/" + name_a_ + "/address", &out);
  return trim(out);
}

std::string veth_pair::mac_b() const {
  std::string out;
  b_.sh("cat /sys/class/net/" + name_b_ + "/address", &out);
  return trim(out);
}

bridge::bridge(const netns& ns, std::string name)
    : ns_(ns), name_(std::move(name)) {
  ns_.must("ip link add " + name_ + " type bridge stp_state 0");
  try {
    ns_.must("ip link set " + name_ + " up");
  } catch (...) {
    ns_.sh("ip link del " + name_);
    throw;
  }
}

bridge::~bridge() {
  ns_.sh("ip link del " + name_);
}

void bridge::attach(const std::string& port) const {
  ns_.must("ip link set " + port + " master " + name_);
}

name_server::name_server(const netns& ns, kind k, uint16_t port,
                         std::string reply)
    : ns_(ns), reply_(std::move(reply)) {
  thread_ = std::thread{[this, k, port] {
    try {
      ns_.enter();
      loop(k, port);
    } catch (...) {
      error_ = std::current_exception();
      ready_ = true;
    }
  }};
  if (!wait_until([this] { return ready_.load(); }, std::chrono::seconds{5}))
    throw std::runtime_error("name_server did not start");
  if (error_) {
    stop_ = true;
    thread_.join();
    std::rethrow_exception(error_);
  }
}

name_server::~name_server() {
  stop_ = true;
  if (thread_.joinable())
    thread_.join();
}

void name_server::loop(kind k, uint16_t port) {
  bool tcp = k == kind::tcp;
  fd_guard fd{
    ::socket(AF_INET, (tcp ? SOCK_STREAM : SOCK_DGRAM) | SOCK_CLOEXEC, 0)};
  if (fd.fd < 0)
    throw std::runtime_error("socket: " + std::string{std::strerror(errno)});
  int one = 1;
  ::setsockopt(fd.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  auto sa = make_addr("0.0.0.0", port);
  if (::bind(fd.fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
    throw std::runtime_error("bind: " + std::string{std::strerror(errno)});
  if (tcp && ::listen(fd.fd, 64) != 0)
    throw std::runtime_error("listen: " + std::string{std::strerror(errno)});
  ready_ = true;
  while (!stop_) {
    pollfd p{fd.fd, POLLIN, 0};
    if (::poll(&p, 1, 50) <= 0)
      continue;
    if (tcp) {
      fd_guard conn{::accept4(fd.fd, nullptr, nullptr, SOCK_CLOEXEC)};
      if (conn.fd < 0)
        continue;
      (void)!::send(conn.fd, reply_.data(), reply_.size(), MSG_NOSIGNAL);
      ++served_;
    } else {
      char buf[2048];
      sockaddr_in from{};
      socklen_t len = sizeof(from);
      auto n = ::recvfrom(fd.fd, buf, sizeof(buf), 0,
                          reinterpret_cast<sockaddr*>(&from), &len);
      if (n < 0)
        continue;
      ::sendto(fd.fd, reply_.data(), reply_.size(), 0,
               reinterpret_cast<sockaddr*>(&from), len);
      ++served_;
    }
  }
}

std::string tcp_fetch(const netns& ns, const std::string& ip, uint16_t port,
                      std::chrono::milliseconds timeout) {
  return ns.run([&]() -> std::string {
    auto until = std::chrono::steady_clock::now() + timeout;
    fd_guard fd{
      ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
    if (fd.fd < 0)
      return {};
    auto sa = make_addr(ip, port);
    if (::connect(fd.fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0) {
      if (errno != EINPROGRESS || !wait_fd(fd.fd, POLLOUT, until))
        return {};
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(fd.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0)
        return {};
    }
    std::string text;
    char buf[1024];
    while (wait_fd(fd.fd, POLLIN, until)) {
      auto n = ::recv(fd.fd, buf, sizeof(buf), 0);
      if (n > 0) {
        text.append(buf, static_cast<size_t>(n));
        continue;
      }
      if (n == 0)
        return text;
      if (errno != EAGAIN && errno != EINTR)
        return {};
    }
    return {};
  });
}

std::string udp_fetch(const netns& ns, const std::string& ip, uint16_t port,
                      std::chrono::milliseconds timeout) {
  return ns.run([&]() -> std::string {
    auto until = std::chrono::steady_clock::now() + timeout;
    fd_guard fd{::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
    if (fd.fd < 0)
      return {};
    auto sa = make_addr(ip, port);
    if (::connect(fd.fd, reinterpret_cast<sockaddr*>(&sa), sizeof(sa)) != 0)
      return {};
    if (::send(fd.fd, "?", 1, 0) != 1)
      return {};
    if (!wait_fd(fd.fd, POLLIN, until))
      return {};
    char buf[2048];
    auto n = ::recv(fd.fd, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, static_cast<size_t>(n)) : std::string{};
  });
}

} // namespace networkd::test
