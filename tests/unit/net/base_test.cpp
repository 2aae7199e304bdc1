// SPDX-License-Identifier: MIT
// net/base: the one host:port parser and the bounded file reader every
// flag, key and endpoint goes through.
#include <catch2/catch.hpp>

#include "net/base/file.hpp"
#include "net/base/host_port.hpp"
#include "tests/support/util.hpp"

using namespace networkd;

TEST_CASE("host and port split from plain and bracketed forms") {
  auto a = split_host_port("10.0.0.1:80");
  REQUIRE(a);
  CHECK(a->host == "10.0.0.1");
  CHECK(a->port == 80);
  CHECK_FALSE(a->bracketed);
  auto b = split_host_port("[::1]:53");
  REQUIRE(b);
  CHECK(b->host == "::1");
  CHECK(b->port == 53);
  CHECK(b->bracketed);
  auto c = split_host_port("etcd.example:2379");
  REQUIRE(c);
  CHECK(c->host == "etcd.example");
  CHECK(c->port == 2379);
}

TEST_CASE("host and port text that is not host:port is refused with why") {
  struct bad_case {
    const char* text;
    const char* why;
  };
  for (auto bc :
       {bad_case{"10.0.0.1", "no :port"}, bad_case{":53", "no host"},
        bad_case{"[::1]53", "no :port after"},
        bad_case{"[::1:53", "no closing"}, bad_case{"h:0", "out of range"},
        bad_case{"h:65536", "out of range"}, bad_case{"h:-1", "out of range"},
        bad_case{"h:8o", "not a number"}, bad_case{"h:", "port is empty"}}) {
    INFO(bc.text);
    auto r = split_host_port(bc.text);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "bad_addr");
    CHECK(r.error().message.find(bc.why) != std::string::npos);
  }
}

TEST_CASE("ports are decimal digits from 1 to 65535") {
  CHECK(*parse_port("1") == 1);
  CHECK(*parse_port("65535") == 65535);
  CHECK_FALSE(parse_port("0"));
  CHECK_FALSE(parse_port("99999999999999999999"));
  CHECK_FALSE(parse_port("+80"));
  CHECK_FALSE(parse_port(" 80"));
}

TEST_CASE("a file read as a result names the reason and keeps the limit") {
  test::temp_dir dir;
  auto path = dir.file("f");
  test::write_file(path, std::string(10, 'x'));
  auto ok = read_file(path, 10);
  REQUIRE(ok);
  CHECK(ok->size() == 10);
  auto big = read_file(path, 9);
  REQUIRE_FALSE(big);
  CHECK(big.error().message == "larger than 9 bytes");
  auto none = read_file(dir.file("none"), 10);
  REQUIRE_FALSE(none);
  CHECK(none.error().message == "No such file or directory");
}
