// SPDX-License-Identifier: MIT
#include "net/peers/docker.hpp"

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <rapidjson/document.h>

#include <cerrno>
#include <cstring>

#include "net/base/json_fields.hpp"
#include "net/base/text.hpp"

namespace networkd::docker {

result<std::string> socket_path(const std::string& endpoint) {
  const std::string unix_scheme = "unix://";
  if (endpoint.rfind(unix_scheme, 0) == 0)
    return endpoint.substr(unix_scheme.size());
  if (!endpoint.empty() && endpoint[0] == '/')
    return endpoint;
  return make_failure("bad_endpoint", "docker endpoint \"" + endpoint
                                        + "\" is not a unix socket");
}

result<std::set<std::string>> parse_running(const std::string& body) {
  rapidjson::Document doc;
  if (config::parse_flat(body, doc) || !doc.IsArray())
    return make_failure("bad_json", "/containers/json: not a JSON array");
  std::set<std::string> out;
  for (auto& c : doc.GetArray()) {
    if (!c.IsObject() || !c.HasMember("Id") || !c["Id"].IsString())
      continue;
    // The list holds running containers only, unless asked for all; check
    // the state when it is there.
    if (c.HasMember("State") && c["State"].IsString()
        && config::view(c["State"]) != "running")
      continue;
    // An empty id, or one holding a NUL ("\u0000"), is no Docker id; an
    // empty one would be a prefix of every id in is_running(): skipped.
    auto id = config::view(c["Id"]);
    if (!id.empty() && id.find('\0') == std::string_view::npos)
      out.emplace(id);
  }
  return out;
}

result<std::set<std::string>>
running_containers(const std::string& socket,
                   std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0)
    return make_failure("unavailable", std::strerror(errno));
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  if (socket.size() >= sizeof(addr.sun_path)) {
    ::close(fd);
    return make_failure("unavailable", "socket path too long");
  }
  std::memcpy(addr.sun_path, socket.c_str(), socket.size() + 1);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      && errno != EINPROGRESS) {
    auto err = std::string{std::strerror(errno)};
    ::close(fd);
    return make_failure("unavailable", socket + ": " + err);
  }
  auto wait = [&](short events) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                  deadline - std::chrono::steady_clock::now())
                  .count();
    if (left <= 0)
      return false;
    pollfd p{fd, events, 0};
    return ::poll(&p, 1, static_cast<int>(left)) > 0;
  };
  // HTTP/1.0: the daemon closes after the body, no chunked framing.
  std::string req = "GET /containers/json HTTP/1.0\r\nHost: docker\r\n\r\n";
  size_t sent = 0;
  while (sent < req.size()) {
    if (!wait(POLLOUT)) {
      ::close(fd);
      return make_failure("timeout", "docker: request not sent in time");
    }
    auto n = ::send(fd, req.data() + sent, req.size() - sent, MSG_NOSIGNAL);
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
      auto err = std::string{std::strerror(errno)};
      ::close(fd);
      return make_failure("unavailable", err);
    }
    if (n > 0)
      sent += static_cast<size_t>(n);
  }
  std::string reply;
  char buf[16384];
  for (;;) {
    if (!wait(POLLIN)) {
      ::close(fd);
      return make_failure("timeout", "docker: no complete answer in time");
    }
    auto n = ::recv(fd, buf, sizeof(buf), 0);
    if (n == 0)
      break;
    if (n < 0) {
      if (errno == EAGAIN || errno == EINTR)
        continue;
      auto err = std::string{std::strerror(errno)};
      ::close(fd);
      return make_failure("unavailable", err);
    }
    reply.append(buf, static_cast<size_t>(n));
    if (reply.size() > 64 * 1024 * 1024) {
      ::close(fd);
      return make_failure("bad_json", "docker: answer too large");
    }
  }
  ::close(fd);
  return parse_reply(reply);
}

result<std::set<std::string>> parse_reply(const std::string& reply) {
  auto head_end = reply.find("\r\n\r\n");
  if (reply.rfind("HTTP/1.", 0) != 0 || head_end == std::string::npos
      || head_end < 12)
    return make_failure("http_status", "docker: not an HTTP answer");
  auto status = reply.substr(9, 3);
  if (status != "200")
    return make_failure("http_status", "docker: HTTP " + printable(status, 3));
  return parse_running(reply.substr(head_end + 4));
}

bool is_running(const std::set<std::string>& running, const std::string& id) {
  if (id.empty())
    return false;
  auto i = running.lower_bound(id);
  if (i != running.end() && i->rfind(id, 0) == 0)
    return true; // id is a prefix of a full id
  // A full id given while Docker reports it in full too is found above; a
  // short id from Docker (never the case) would be a prefix of ours.
  for (auto& r : running)
    if (id.rfind(r, 0) == 0)
      return true;
  return false;
}

} // namespace networkd::docker
