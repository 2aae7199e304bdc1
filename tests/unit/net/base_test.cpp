// SPDX-License-Identifier: MIT
// net/base: the one host:port parser and the bounded file reader every
// flag, key and endpoint goes through.
#include <catch2/catch.hpp>

#include "net/base/file.hpp"
#include "net/base/host_port.hpp"
#include "net/base/log.hpp"
#include "tests/support/util.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

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

TEST_CASE("log levels map to the syslog priorities journald reads") {
  CHECK(log::syslog_priority(spdlog::level::critical) == 2);
  CHECK(log::syslog_priority(spdlog::level::err) == 3);
  CHECK(log::syslog_priority(spdlog::level::warn) == 4);
  CHECK(log::syslog_priority(spdlog::level::info) == 6);
  CHECK(log::syslog_priority(spdlog::level::debug) == 7);
  CHECK(log::syslog_priority(spdlog::level::trace) == 7);
}

TEST_CASE("grep fields are name=value and quote what would split them") {
  CHECK(log::field("vip", "10.0.0.5") == " vip=10.0.0.5");
  CHECK(log::field("reason", "lock free") == " reason=\"lock free\"");
  CHECK(log::field("key", "") == " key=\"\"");
  CHECK(log::field("reason", "a=\"b\" \\") == " reason=\"a=\\\"b\\\" \\\\\"");
  CHECK(log::field("key", "/x\n/y") == " key=/x?/y");
}

TEST_CASE("JOURNAL_STREAM counts only when it names this stderr") {
  test::temp_dir dir;
  int fd = ::open(dir.file("err").c_str(), O_CREAT | O_WRONLY, 0600);
  REQUIRE(fd >= 0);
  struct stat st {};
  REQUIRE(::fstat(fd, &st) == 0);
  auto mine = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino);
  CHECK(log::stderr_is_journal(mine.c_str(), fd));
  auto other = std::to_string(st.st_dev) + ":" + std::to_string(st.st_ino + 1);
  CHECK_FALSE(log::stderr_is_journal(other.c_str(), fd));
  CHECK_FALSE(log::stderr_is_journal(nullptr, fd));
  CHECK_FALSE(log::stderr_is_journal("", fd));
  CHECK_FALSE(log::stderr_is_journal("garbage", fd));
  ::close(fd);
}

TEST_CASE("journal lines start with the priority and carry no time") {
  auto format = [](bool journal, spdlog::level::level_enum l) {
    auto f = log::make_formatter(journal);
    spdlog::details::log_msg msg{"networkd", l, "holder: x"};
    spdlog::memory_buf_t out;
    f->format(msg, out);
    return std::string{out.data(), out.size()};
  };
  CHECK(format(true, spdlog::level::warn).rfind("<4>warning holder: x", 0)
        == 0);
  CHECK(format(true, spdlog::level::err).rfind("<3>error holder: x", 0) == 0);
  CHECK(format(true, spdlog::level::info).rfind("<6>info holder: x", 0) == 0);
  auto plain = format(false, spdlog::level::warn);
  CHECK(plain.rfind("20", 0) == 0);
  CHECK(plain.find("warning") != std::string::npos);
  CHECK(plain.find('<') == std::string::npos);
}
