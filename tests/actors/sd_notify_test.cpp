// SPDX-License-Identifier: MIT
// The service manager protocol without libsystemd: datagrams to a path or
// an abstract socket, and the watchdog period only for the named process.
#include <catch2/catch.hpp>

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "actors/sd_notify.hpp"
#include "tests/support/util.hpp"

using namespace networkd;

namespace {

/// A datagram socket bound to `name` (a path, or "@abstract").
struct listener {
  int fd = -1;
  explicit listener(const std::string& name) {
    fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, name.data(), name.size());
    if (name[0] == '@')
      addr.sun_path[0] = '\0';
    auto len
      = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path) + name.size());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), len) == 0);
    timeval tv{2, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  }
  ~listener() { ::close(fd); }
  std::string receive() const {
    char buf[256];
    auto n = ::recv(fd, buf, sizeof buf, 0);
    return n < 0 ? std::string{} : std::string(buf, static_cast<size_t>(n));
  }
};

/// Sets an environment variable for one scope.
struct env_var {
  std::string name;
  env_var(std::string n, const std::string& value) : name(std::move(n)) {
    ::setenv(name.c_str(), value.c_str(), 1);
  }
  ~env_var() { ::unsetenv(name.c_str()); }
};

} // namespace

TEST_CASE("states reach a socket given by path or abstract name") {
  ::unsetenv("NOTIFY_SOCKET");
  CHECK_FALSE(sd_notify_state("READY=1"));
  test::temp_dir dir;
  auto path = dir.path() + "/notify";
  {
    listener l{path};
    env_var e{"NOTIFY_SOCKET", path};
    REQUIRE(sd_notify_state("READY=1"));
    CHECK(l.receive() == "READY=1");
  }
  {
    std::string name = "@networkd-test-" + std::to_string(::getpid());
    listener l{name};
    env_var e{"NOTIFY_SOCKET", name};
    REQUIRE(sd_notify_state("WATCHDOG=1"));
    CHECK(l.receive() == "WATCHDOG=1");
  }
  // A relative path or nobody listening: false, no crash.
  {
    env_var e{"NOTIFY_SOCKET", "relative/notify"};
    CHECK_FALSE(sd_notify_state("READY=1"));
  }
  {
    env_var e{"NOTIFY_SOCKET", dir.path() + "/nobody"};
    CHECK_FALSE(sd_notify_state("READY=1"));
  }
}

TEST_CASE("the watchdog period is for this process only") {
  ::unsetenv("WATCHDOG_PID");
  ::unsetenv("WATCHDOG_USEC");
  CHECK_FALSE(sd_watchdog_period());
  env_var usec{"WATCHDOG_USEC", "400000"};
  REQUIRE(sd_watchdog_period());
  CHECK(sd_watchdog_period()->count() == 400000);
  {
    env_var pid{"WATCHDOG_PID", std::to_string(::getpid())};
    CHECK(sd_watchdog_period());
  }
  {
    env_var pid{"WATCHDOG_PID", std::to_string(::getpid() + 1)};
    CHECK_FALSE(sd_watchdog_period());
  }
  env_var zero{"WATCHDOG_USEC", "0"};
  CHECK_FALSE(sd_watchdog_period());
  env_var junk{"WATCHDOG_USEC", "12x"};
  CHECK_FALSE(sd_watchdog_period());
}
