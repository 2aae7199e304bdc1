// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include "actors/cli.hpp"

#include <cstdlib>

#include "tests/support/util.hpp"

using namespace networkd;

TEST_CASE("the original flags parse with one or two dashes", "[cli]") {
  auto r = parse_options(
    {"-etcd.endpoint=http://10.0.0.1:4001", "--lainlet.endpoint",
     "10.0.0.1:9001", "-net.interface", "eth1", "-hostname=node1",
     "-godns.addr", "127.0.0.1:53,172.17.0.1:53", "--api.addr=127.0.0.1:3001",
     "-swarm", "-deployd=true", "-webrouter=false", "-acl", "-verbose",
     "-domain", "lain.local", "--resolv-conf", "/tmp/r",
     "--hosts-file=/tmp/h"});
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
  REQUIRE(r->ignored.size() == 1);
  CHECK(r->ignored[0].rfind("-libnetwork ", 0) == 0);
}

TEST_CASE("the old forms of deployment templates are read as today's flags "
          "with one note each",
          "[cli]") {
  auto r = parse_options({"--dnsmasq", "--resolv.conf=/tmp/r.conf",
                          "-godns.addr=:53,127.0.0.2:5353"});
  REQUIRE(r);
  CHECK(r->resolv_conf == "/tmp/r.conf");
  CHECK(r->godns_addr == "0.0.0.0:53,127.0.0.2:5353");
  REQUIRE(r->ignored.size() == 3);
  CHECK(r->ignored[0].rfind("-dnsmasq ignored", 0) == 0);
  CHECK(r->ignored[1].rfind("-resolv.conf is the old name of --resolv-conf", 0)
        == 0);
  CHECK(r->ignored[2].find("0.0.0.0:53") != std::string::npos);
  CHECK(r->ignored[2].find("--dns-allow") != std::string::npos);
  // The space form and the boolean values of the ignored flag.
  auto s = parse_options({"-resolv.conf", "/x", "-dnsmasq=false"});
  REQUIRE(s);
  CHECK(s->resolv_conf == "/x");
  CHECK(s->ignored.size() == 2);
  auto bad = parse_options({"-dnsmasq=maybe"});
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("-dnsmasq") != std::string::npos);
  // Today's defaults give no note.
  auto plain = parse_options({});
  REQUIRE(plain);
  CHECK(plain->ignored.empty());
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
  for (auto f : {"-etcd.endpoint",
                 "-lainlet.endpoint",
                 "-docker.endpoint",
                 "-net.interface",
                 "-net.address",
                 "-hostname",
                 "-domain",
                 "-godns.addr",
                 "-api.addr",
                 "-tinydns",
                 "-swarm",
                 "-webrouter",
                 "-deployd",
                 "-streamrouter",
                 "-acl",
                 "-libnetwork",
                 "-lock.filename",
                 "-verbose",
                 "-version",
                 "-resolv-conf",
                 "-hosts-file",
                 "-etcd-ca",
                 "-etcd-cert",
                 "-etcd-key",
                 "-etcd-user",
                 "-etcd-password",
                 "-etcd-password-file"})
    CHECK(text.find(f) != std::string::npos);
  // The admin client is named beside the flags.
  CHECK(text.find("networkd ctl COMMAND") != std::string::npos);
}

TEST_CASE("a missing or unreadable etcd TLS file is named at start", "[cli]") {
  test::temp_dir dir;
  test::write_file(dir.file("ca.pem"), "-----BEGIN CERTIFICATE-----\n");
  auto check = [](std::vector<std::string> args, const std::string& flag,
                  const std::string& file) {
    auto r = parse_options(args);
    REQUIRE(r);
    auto loaded = load_etcd_secrets(*r);
    REQUIRE_FALSE(loaded);
    INFO(loaded.error().message);
    CHECK(loaded.error().code == "bad_flag");
    CHECK(loaded.error().message.find(flag) != std::string::npos);
    CHECK(loaded.error().message.find(file) != std::string::npos);
  };
  check({"--etcd-ca=" + dir.file("nope.pem")}, "--etcd-ca",
        dir.file("nope.pem"));
  check({"--etcd-ca", dir.file("ca.pem"), "--etcd-cert", dir.file("c.pem"),
         "--etcd-key", dir.file("ca.pem")},
        "--etcd-cert", dir.file("c.pem"));
  check({"--etcd-cert", dir.file("ca.pem"), "--etcd-key", dir.file("k.pem")},
        "--etcd-key", dir.file("k.pem"));
  // A directory opens but does not read.
  check({"--etcd-ca", dir.path()}, "--etcd-ca", dir.path());
  test::write_file(dir.file("empty.pem"), "");
  check({"--etcd-ca", dir.file("empty.pem")}, "--etcd-ca",
        dir.file("empty.pem"));
  check({"--etcd-password-file", dir.file("pw")}, "--etcd-password-file",
        dir.file("pw"));

  auto ok = parse_options({"--etcd-ca", dir.file("ca.pem")});
  REQUIRE(ok);
  CHECK(load_etcd_secrets(*ok));
}

TEST_CASE("the etcd password comes from a file or the environment", "[cli]") {
  test::temp_dir dir;
  test::write_file(dir.file("pw"), "s3cret\r\n");
  ::unsetenv(etcd_password_env);

  auto from_file = parse_options(
    {"--etcd-user=networkd", "--etcd-password-file", dir.file("pw")});
  REQUIRE(from_file);
  REQUIRE(load_etcd_secrets(*from_file));
  CHECK(from_file->etcd_password == "s3cret");

  // Only the trailing newline goes: inner spaces are part of the password.
  test::write_file(dir.file("pw2"), " a b \n");
  auto spaces = parse_options({"--etcd-password-file=" + dir.file("pw2")});
  REQUIRE(spaces);
  REQUIRE(load_etcd_secrets(*spaces));
  CHECK(spaces->etcd_password == " a b ");

  ::setenv(etcd_password_env, "from-env", 1);
  auto from_env = parse_options({"--etcd-user=networkd"});
  REQUIRE(from_env);
  REQUIRE(load_etcd_secrets(*from_env));
  CHECK(from_env->etcd_password == "from-env");
  // Read once and removed: child processes do not inherit it.
  CHECK(std::getenv(etcd_password_env) == nullptr);

  // A flag wins over the environment, which is still removed.
  ::setenv(etcd_password_env, "from-env", 1);
  auto file_wins = parse_options({"--etcd-password-file", dir.file("pw")});
  REQUIRE(file_wins);
  REQUIRE(load_etcd_secrets(*file_wins));
  CHECK(file_wins->etcd_password == "s3cret");
  CHECK(std::getenv(etcd_password_env) == nullptr);

  ::setenv(etcd_password_env, "from-env", 1);
  auto flag_wins = parse_options({"--etcd-password=on-the-command-line"});
  REQUIRE(flag_wins);
  REQUIRE(load_etcd_secrets(*flag_wins));
  CHECK(flag_wins->etcd_password == "on-the-command-line");
  CHECK(std::getenv(etcd_password_env) == nullptr);

  auto both = parse_options(
    {"--etcd-password=x", "--etcd-password-file", dir.file("pw")});
  REQUIRE_FALSE(both);
  CHECK(both.error().message.find("--etcd-password-file") != std::string::npos);
}
