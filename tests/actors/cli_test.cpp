// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include "actors/cli.hpp"

using namespace networkd;

TEST_CASE("the original flags parse with one or two dashes", "[cli]") {
  auto r = parse_options({"-etcd.endpoint=http://10.0.0.1:4001",
                          "--lainlet.endpoint", "10.0.0.1:9001",
                          "-net.interface", "eth1", "-hostname=node1",
                          "-godns.addr", "127.0.0.1:53,172.17.0.1:53",
                          "--api.addr=127.0.0.1:3001", "-swarm",
                          "-deployd=true", "-webrouter=false", "-acl",
                          "-verbose", "-domain", "lain.local",
                          "--resolv-conf", "/tmp/r", "--hosts-file=/tmp/h"});
  REQUIRE(r);
  CHECK(r->etcd_endpoint == "http://10.0.0.1:4001");
  CHECK(r->lainlet_endpoint == "10.0.0.1:9001");
  CHECK(r->net_interface == "eth1");
  CHECK(r->hostname == "node1");
  CHECK(r->godns_addr == "127.0.0.1:53,172.17.0.1:53");
  CHECK(r->api_addr == "127.0.0.1:3001");
  CHECK(r->swarm);
  CHECK(r->deployd);
  CHECK_FALSE(r->webrouter);
  CHECK(r->acl);
  CHECK(r->verbose);
  CHECK(r->domain == "lain.local");
  CHECK(r->resolv_conf == "/tmp/r");
  CHECK(r->hosts_file == "/tmp/h");
}

TEST_CASE("defaults are the original's", "[cli]") {
  auto r = parse_options({});
  REQUIRE(r);
  CHECK(r->etcd_endpoint == "http://127.0.0.1:4001");
  CHECK(r->godns_addr == "127.0.0.1:53");
  CHECK(r->api_addr == "127.0.0.1:3000");
  CHECK(r->lock_filename == "/var/run/lain-networkd.pid");
  CHECK(r->resolv_conf == "/etc/resolv.conf");
  CHECK(r->hosts_file == "/etc/hosts");
}

TEST_CASE("the libnetwork flag is accepted and reported as ignored", "[cli]") {
  auto r = parse_options({"-libnetwork"});
  REQUIRE(r);
  CHECK(r->ignored == std::vector<std::string>{"-libnetwork"});
}

TEST_CASE("unknown flags and bad values name the flag", "[cli]") {
  auto check = [](std::vector<std::string> args, const std::string& needle) {
    auto r = parse_options(args);
    REQUIRE_FALSE(r);
    INFO(r.error().message);
    CHECK(r.error().message.find(needle) != std::string::npos);
  };
  check({"-nope"}, "-nope");
  check({"--etcd.endpoint"}, "needs a value");
  check({"-godns.addr=127.0.0.1"}, "godns.addr");
  check({"-godns.addr=127.0.0.1:70000"}, "godns.addr");
  check({"-godns.addr=foo:53"}, "godns.addr");
  check({"-api.addr=1.2.3.4:0"}, "api.addr");
  check({"-swarm=maybe"}, "-swarm");
  check({"-net.address=10.0.0.300"}, "net.address");
  check({"--etcd-cert=/x"}, "etcd-key");
  check({"stray"}, "stray");
}

TEST_CASE("the help text lists every flag", "[cli]") {
  auto r = parse_options({"--help"});
  REQUIRE(r);
  CHECK(r->help);
  auto text = usage();
  for (auto f : {"-etcd.endpoint", "-lainlet.endpoint", "-docker.endpoint",
                 "-net.interface", "-net.address", "-hostname", "-domain",
                 "-godns.addr", "-api.addr", "-tinydns", "-swarm",
                 "-webrouter", "-deployd", "-streamrouter", "-acl",
                 "-libnetwork", "-lock.filename", "-verbose", "-version",
                 "-resolv-conf", "-hosts-file", "-etcd-ca", "-etcd-cert",
                 "-etcd-key", "-etcd-user", "-etcd-password"})
    CHECK(text.find(f) != std::string::npos);
}
