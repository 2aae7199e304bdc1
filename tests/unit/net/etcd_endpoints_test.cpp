// SPDX-License-Identifier: MIT
// Parsing of the etcd endpoint flag.
#include <catch2/catch.hpp>

#include "net/etcd/etcd.hpp"

using networkd::etcd::parse_endpoints;
using strings = std::vector<std::string>;

TEST_CASE("parse_endpoints accepts the original's endpoint lists") {
  auto one = parse_endpoints("http://127.0.0.1:2379");
  REQUIRE(one);
  CHECK(*one == strings{"http://127.0.0.1:2379"});

  auto several = parse_endpoints(" http://10.0.0.1:2379 ,etcd2:2380,"
                                 "https://etcd3.lain:4001/ ");
  REQUIRE(several);
  CHECK(*several
        == strings{"http://10.0.0.1:2379", "etcd2:2380",
                   "https://etcd3.lain:4001"});

  auto v6 = parse_endpoints("[::1]:2379,http://[fd00::2]:2379");
  REQUIRE(v6);
  CHECK(*v6 == strings{"[::1]:2379", "http://[fd00::2]:2379"});

  auto trailing = parse_endpoints("a:1,");
  REQUIRE(trailing);
  CHECK(*trailing == strings{"a:1"});
}

TEST_CASE("parse_endpoints rejects empty lists and entries without a port") {
  for (auto bad : {"", " ", ",", "etcd", "http://etcd", "etcd:", "etcd:port",
                   "etcd:0", "etcd:70000", "ftp://etcd:2379", "http://:2379",
                   "[::1]", "[]:2379", "a:1,b"}) {
    INFO("input: '" << bad << "'");
    auto r = parse_endpoints(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "invalid");
  }
}
