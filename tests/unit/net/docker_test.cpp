// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include "net/peers/docker.hpp"

using namespace networkd;

TEST_CASE("docker endpoints are unix sockets", "[docker]") {
  CHECK(*docker::socket_path("unix:///var/run/docker.sock")
        == "/var/run/docker.sock");
  CHECK(*docker::socket_path("/run/docker.sock") == "/run/docker.sock");
  CHECK_FALSE(docker::socket_path("tcp://127.0.0.1:2375"));
}

TEST_CASE("the running list comes from /containers/json", "[docker]") {
  auto r = docker::parse_running(
    R"([{"Id":"aaa","State":"running"},{"Id":"bbb","State":"exited"},
        {"Id":"ccc"},{"Names":["x"]},7])");
  REQUIRE(r);
  CHECK(*r == std::set<std::string>{"aaa", "ccc"});
  CHECK_FALSE(docker::parse_running("{}"));
  CHECK_FALSE(docker::parse_running("[broken"));
}

TEST_CASE("an empty or NUL-cut id does not make every container running",
          "[docker]") {
  // Found by fuzz_docker (fuzz/regressions/fuzz_docker/empty-id): an empty
  // id is a prefix of every id.
  auto r = docker::parse_running(
    R"([{"Id":""},{"Id":"\u0000abc"},{"Id":"aaa","State":"running\u0000x"},
        {"Id":"bbb"}])");
  REQUIRE(r);
  CHECK(*r == std::set<std::string>{"bbb"});
  CHECK_FALSE(docker::is_running(*r, "ccc"));
}

TEST_CASE("ids match by prefix either way", "[docker]") {
  std::set<std::string> running{"0123456789abcdef00", "ffff"};
  CHECK(docker::is_running(running, "0123456789ab"));
  CHECK(docker::is_running(running, "0123456789abcdef00"));
  CHECK(docker::is_running(running, "ffff0000"));
  CHECK_FALSE(docker::is_running(running, "1234"));
  CHECK_FALSE(docker::is_running(running, ""));
}

TEST_CASE("a missing socket is unavailable", "[docker]") {
  auto r = docker::running_containers("/nonexistent/docker.sock");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == "unavailable");
}

TEST_CASE("a whole reply needs an HTTP head and status 200", "[docker]") {
  auto ok = docker::parse_reply(
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n\r\n"
    R"([{"Id":"abc","State":"running"}])");
  REQUIRE(ok);
  CHECK(*ok == std::set<std::string>{"abc"});
  auto err = docker::parse_reply("HTTP/1.1 500 Oops\r\n\r\n{}");
  REQUIRE_FALSE(err);
  CHECK(err.error().message == "docker: HTTP 500");
  for (auto bad : {"", "HTTP/1.1 200", "HTTP/1.\r\n\r\n[]", "SSH-2.0\r\n\r\n"})
    CHECK_FALSE(docker::parse_reply(bad));
}
