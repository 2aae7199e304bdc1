// SPDX-License-Identifier: MIT
// Hosts-file parsing and resolv.conf rewriting (pure functions).
#include <catch2/catch.hpp>

#include "dns/hosts.hpp"
#include "dns/resolv_conf.hpp"
#include "net/base/file.hpp"
#include "net/base/text.hpp"
#include "tests/support/util.hpp"

#include <cerrno>

using namespace networkd;
using namespace networkd::dns;

TEST_CASE("hosts lines give all names, several addresses, v4 and v6") {
  auto entries = parse_hosts("# comment line\n"
                             "127.0.0.1\tlocalhost\n"
                             "10.0.0.1  One.Example one  # trailing\n"
                             "\n"
                             "fd00::1 one.example\n"
                             "::ffff:10.0.0.2 mapped\n"
                             "not-an-ip name\n"
                             "fe80::1%eth0 zoned\n"
                             "10.0.0.3\n"
                             "10.0.0.4 bad..name good\r\n");
  REQUIRE(entries.size() == 5);
  CHECK(entries[0].address == "127.0.0.1");
  CHECK(entries[0].names == std::vector<std::string>{"localhost"});
  CHECK(entries[1].address == "10.0.0.1");
  CHECK(entries[1].names == std::vector<std::string>{"one.example", "one"});
  CHECK(entries[2].address == "fd00::1");
  CHECK(entries[3].address == "10.0.0.2");
  CHECK(entries[4].names == std::vector<std::string>{"good"});
  CHECK(parse_hosts("").empty());
  CHECK(parse_hosts("# only\n# comments").empty());
}

TEST_CASE("resolv.conf: our server goes first, the rest is kept") {
  auto fix = fix_resolv_conf("# generated\n"
                             "search corp.example\n"
                             "nameserver 10.0.0.2\n"
                             "nameserver 10.0.0.3\n"
                             "options ndots:2\n",
                             "127.0.0.1", {"127.0.0.1"});
  CHECK(fix.rewrite_needed);
  CHECK(fix.text
        == "# generated\n"
           "search corp.example\n"
           "nameserver 127.0.0.1\n"
           "nameserver 10.0.0.2\n"
           "nameserver 10.0.0.3\n"
           "options ndots:2\n");
  REQUIRE(fix.upstreams.size() == 2);
  CHECK(fix.upstreams[0] == config::upstream{"10.0.0.2", 53});
  CHECK(fix.upstreams[1] == config::upstream{"10.0.0.3", 53});
  // Applying the fix again changes nothing.
  auto again = fix_resolv_conf(fix.text, "127.0.0.1", {"127.0.0.1"});
  CHECK_FALSE(again.rewrite_needed);
  CHECK(again.text == fix.text);
}

TEST_CASE("resolv.conf: only comments, or empty") {
  auto fix = fix_resolv_conf("# nothing here\n", "127.0.0.1", {});
  CHECK(fix.rewrite_needed);
  CHECK(fix.text == "# nothing here\nnameserver 127.0.0.1\n");
  CHECK(fix.upstreams.empty());
  fix = fix_resolv_conf("", "127.0.0.1", {});
  CHECK(fix.rewrite_needed);
  CHECK(fix.text == "nameserver 127.0.0.1\n");
  CHECK(fix.upstreams.empty());
}

TEST_CASE("resolv.conf: rotate is dropped, other options kept") {
  auto fix = fix_resolv_conf("nameserver 8.8.8.8\n"
                             "options rotate ndots:2\n",
                             "127.0.0.1", {});
  CHECK(fix.text
        == "nameserver 127.0.0.1\nnameserver 8.8.8.8\n"
           "options ndots:2\n");
  fix = fix_resolv_conf("nameserver 127.0.0.1\noptions rotate\n", "127.0.0.1",
                        {});
  CHECK(fix.rewrite_needed);
  CHECK(fix.text == "nameserver 127.0.0.1\n");
}

TEST_CASE("resolv.conf: our address already first needs no rewrite") {
  std::string text = "nameserver 127.0.0.1\nnameserver 1.1.1.1\n";
  auto fix = fix_resolv_conf(text, "127.0.0.1", {"127.0.0.1"});
  CHECK_FALSE(fix.rewrite_needed);
  CHECK(fix.text == text);
  // A missing final newline alone is no reason to rewrite.
  fix = fix_resolv_conf("nameserver 127.0.0.1\nnameserver 1.1.1.1", "127.0.0.1",
                        {});
  CHECK_FALSE(fix.rewrite_needed);
}

TEST_CASE("resolv.conf: duplicates of our address are removed") {
  auto fix = fix_resolv_conf("nameserver 10.0.0.2\n"
                             "nameserver 127.0.0.1\n"
                             "nameserver 10.0.0.2\n"
                             "nameserver 127.0.0.1\n",
                             "127.0.0.1", {"127.0.0.1", "172.17.0.1"});
  CHECK(fix.text
        == "nameserver 127.0.0.1\n"
           "nameserver 10.0.0.2\n"
           "nameserver 10.0.0.2\n");
  REQUIRE(fix.upstreams.size() == 1);
  CHECK(fix.upstreams[0].ip == "10.0.0.2");
}

TEST_CASE("resolv.conf: our addresses and 127.0.0.53 are no upstreams") {
  auto ups = resolv_upstreams("nameserver 127.0.0.53\n"
                              "nameserver 172.17.0.1\n"
                              "nameserver 127.0.0.1\n"
                              "nameserver 2001:4860:4860::8888\n"
                              "nameserver bogus\n",
                              {"127.0.0.1", "172.17.0.1"});
  REQUIRE(ups.size() == 1);
  CHECK(ups[0].ip == "2001:4860:4860::8888");
  CHECK(resolv_nameservers("nameserver 1.2.3.4\n#nameserver 5.6.7.8\n")
        == std::vector<std::string>{"1.2.3.4"});
}

TEST_CASE("files are read whole up to their limit and refused past it") {
  test::temp_dir dir;
  auto path = dir.file("f");
  test::write_file(path, std::string(100, 'x'));
  std::string out;
  CHECK(read_file_bounded(path, 100, out) == 0);
  CHECK(out.size() == 100);
  CHECK(read_file_bounded(path, 99, out) == EFBIG);
  CHECK(out.empty());
  CHECK(read_file_bounded(dir.file("none"), 100, out) == ENOENT);
}
