// SPDX-License-Identifier: MIT
// Blocking UDP/TCP DNS exchanges.
#include "dns/client.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>

#include "dns/wire.hpp"

namespace networkd::dns {

namespace {

using clock = std::chrono::steady_clock;

struct fd_guard {
  int fd;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

bool make_addr(const std::string& ip, uint16_t port, sockaddr_storage& ss,
               socklen_t& len) {
  auto addr = parse_ip(ip);
  if (!addr)
    return false;
  std::memset(&ss, 0, sizeof(ss));
  if (addr->family == AF_INET) {
    auto sin = reinterpret_cast<sockaddr_in*>(&ss);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(port);
    std::memcpy(&sin->sin_addr, addr->bytes.data(), 4);
    len = sizeof(sockaddr_in);
  } else {
    auto sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(port);
    std::memcpy(&sin6->sin6_addr, addr->bytes.data(), 16);
    len = sizeof(sockaddr_in6);
  }
  return true;
}

int remaining_ms(clock::time_point until) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
    until - clock::now());
  return left.count() > 0 ? static_cast<int>(left.count()) : 0;
}

failure io_failure(const char* what) {
  return make_failure("io", std::string(what) + ": " + std::strerror(errno));
}

} // namespace

result<message> exchange_udp(const std::string& server_ip, uint16_t port,
                             const std::vector<uint8_t>& query,
                             std::chrono::milliseconds timeout,
                             const std::string& source_ip) {
  sockaddr_storage to;
  socklen_t to_len = 0;
  if (query.size() < 2 || !make_addr(server_ip, port, to, to_len))
    return make_failure("bad_option", "bad server address or query");
  fd_guard s{::socket(to.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0)
    return io_failure("socket");
  if (!source_ip.empty()) {
    sockaddr_storage from;
    socklen_t from_len = 0;
    if (!make_addr(source_ip, 0, from, from_len)
        || ::bind(s.fd, reinterpret_cast<sockaddr*>(&from), from_len) != 0)
      return io_failure("bind");
  }
  if (::sendto(s.fd, query.data(), query.size(), 0,
               reinterpret_cast<sockaddr*>(&to), to_len)
      < 0)
    return io_failure("sendto");
  auto until = clock::now() + timeout;
  std::vector<uint8_t> buf(65535);
  for (;;) {
    pollfd p{s.fd, POLLIN, 0};
    int ms = remaining_ms(until);
    if (ms == 0 || ::poll(&p, 1, ms) <= 0)
      return make_failure("timeout", "no answer from " + server_ip);
    auto n = ::recv(s.fd, buf.data(), buf.size(), 0);
    if (n < 0)
      return io_failure("recv");
    if (n >= 2 && buf[0] == query[0] && buf[1] == query[1])
      return parse_message(buf.data(), static_cast<size_t>(n));
  }
}

result<std::vector<message>>
exchange_tcp(const std::string& server_ip, uint16_t port,
             const std::vector<std::vector<uint8_t>>& queries,
             std::chrono::milliseconds timeout) {
  sockaddr_storage to;
  socklen_t to_len = 0;
  if (!make_addr(server_ip, port, to, to_len))
    return make_failure("bad_option", "bad server address");
  fd_guard s{::socket(to.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  if (s.fd < 0)
    return io_failure("socket");
  if (::connect(s.fd, reinterpret_cast<sockaddr*>(&to), to_len) != 0)
    return io_failure("connect");
  std::vector<uint8_t> out;
  for (auto& q : queries) {
    out.push_back(static_cast<uint8_t>(q.size() >> 8));
    out.push_back(static_cast<uint8_t>(q.size() & 0xff));
    out.insert(out.end(), q.begin(), q.end());
  }
  size_t sent = 0;
  while (sent < out.size()) {
    auto n = ::send(s.fd, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
    if (n < 0)
      return io_failure("send");
    sent += static_cast<size_t>(n);
  }
  auto until = clock::now() + timeout;
  std::vector<uint8_t> in;
  std::vector<message> answers;
  uint8_t buf[16384];
  while (answers.size() < queries.size()) {
    while (in.size() >= 2) {
      size_t len = (size_t{in[0]} << 8) | in[1];
      if (in.size() < 2 + len)
        break;
      auto m = parse_message(in.data() + 2, len);
      if (!m)
        return m.error();
      answers.push_back(std::move(*m));
      in.erase(in.begin(), in.begin() + static_cast<long>(2 + len));
    }
    if (answers.size() == queries.size())
      break;
    pollfd p{s.fd, POLLIN, 0};
    int ms = remaining_ms(until);
    if (ms == 0 || ::poll(&p, 1, ms) <= 0)
      return make_failure("timeout", "missing TCP answers");
    auto n = ::recv(s.fd, buf, sizeof(buf), 0);
    if (n <= 0)
      return make_failure("io", "connection closed early");
    in.insert(in.end(), buf, buf + n);
  }
  return answers;
}

} // namespace networkd::dns
