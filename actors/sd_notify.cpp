// SPDX-License-Identifier: MIT
#include "actors/sd_notify.hpp"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <cstdlib>
#include <cstring>
#include <string>

namespace networkd {

namespace {

/// A decimal number that is the whole of `text`.
std::optional<unsigned long long> whole_number(const char* text) {
  if (text == nullptr || *text == '\0')
    return std::nullopt;
  unsigned long long v = 0;
  auto end = text + std::strlen(text);
  auto [p, ec] = std::from_chars(text, end, v);
  if (ec != std::errc{} || p != end)
    return std::nullopt;
  return v;
}

} // namespace

bool sd_notify_state(std::string_view state) {
  const char* path = std::getenv("NOTIFY_SOCKET");
  if (path == nullptr)
    return false;
  size_t len = std::strlen(path);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  // An abstract name ("@name") fills sun_path after a NUL byte; a path
  // must be absolute. Either must fit sun_path.
  if (len < 2 || (path[0] != '/' && path[0] != '@')
      || len > sizeof(addr.sun_path) - (path[0] == '/' ? 1 : 0))
    return false;
  std::memcpy(addr.sun_path, path, len);
  if (path[0] == '@')
    addr.sun_path[0] = '\0';
  auto addr_len = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + len);
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    return false;
  ssize_t sent;
  do {
    sent = ::sendto(fd, state.data(), state.size(), MSG_NOSIGNAL,
                    reinterpret_cast<const sockaddr*>(&addr), addr_len);
  } while (sent < 0 && errno == EINTR);
  ::close(fd);
  return sent == static_cast<ssize_t>(state.size());
}

std::optional<std::chrono::microseconds> sd_watchdog_period() {
  auto usec = whole_number(std::getenv("WATCHDOG_USEC"));
  if (!usec || *usec == 0)
    return std::nullopt;
  // Without WATCHDOG_PID the request is for us; with it, only if it is us.
  if (const char* pid_text = std::getenv("WATCHDOG_PID")) {
    auto pid = whole_number(pid_text);
    if (!pid || *pid != static_cast<unsigned long long>(::getpid()))
      return std::nullopt;
  }
  return std::chrono::microseconds(*usec);
}

} // namespace networkd
