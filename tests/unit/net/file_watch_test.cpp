// SPDX-License-Identifier: MIT
#include <catch2/catch.hpp>

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <filesystem>

#include "net/kernel/file_watch.hpp"
#include "tests/support/util.hpp"

using namespace networkd;
using namespace networkd::test;

namespace {

struct fixture {
  temp_dir dir{"networkd-fw"};
  std::string path = dir.file("resolv.conf");
  std::atomic<int> changes{0};

  bool changed_since(int before) {
    return wait_until([&] { return changes.load() > before; }, 5s, 5ms);
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "an in-place write is seen", "[file_watch]") {
  write_file(path, "nameserver 10.0.0.1\n");
  file_watch w{path, [this] { ++changes; }};
  REQUIRE(w.started());
  int before = changes;
  write_file(path, "nameserver 10.0.0.2\n");
  CHECK(changed_since(before));
}

TEST_CASE_METHOD(fixture, "a rename over the file is seen", "[file_watch]") {
  write_file(path, "nameserver 10.0.0.1\n");
  file_watch w{path, [this] { ++changes; }};
  int before = changes;
  write_file(dir.file("tmp"), "nameserver 10.0.0.3\n");
  REQUIRE(std::rename(dir.file("tmp").c_str(), path.c_str()) == 0);
  CHECK(changed_since(before));
}

TEST_CASE_METHOD(fixture, "deletion and re-creation are seen", "[file_watch]") {
  write_file(path, "x\n");
  file_watch w{path, [this] { ++changes; }};
  int before = changes;
  REQUIRE(::unlink(path.c_str()) == 0);
  CHECK(changed_since(before));
  before = changes;
  write_file(path, "y\n");
  CHECK(changed_since(before));
}

TEST_CASE_METHOD(fixture, "other files in the directory are ignored",
                 "[file_watch]") {
  write_file(path, "x\n");
  file_watch w{path, [this] { ++changes; }};
  int before = changes;
  // Fifty writes to a neighbour, then one to the file: were neighbours not
  // filtered, most of the fifty would be reported as changes.
  for (int i = 0; i < 50; ++i)
    write_file(dir.file("other"), "noise " + std::to_string(i) + "\n");
  write_file(path, "z\n");
  REQUIRE(changed_since(before));
  CHECK(changes.load() - before <= 3);
}

TEST_CASE_METHOD(fixture, "a change of a symlink's target is seen",
                 "[file_watch]") {
  temp_dir other{"networkd-fw-target"};
  auto target = other.file("stub-resolv.conf");
  write_file(target, "nameserver 127.0.0.53\n");
  std::filesystem::create_symlink(target, path);
  file_watch w{path, [this] { ++changes; }};
  int before = changes;
  write_file(target, "nameserver 10.1.1.1\n");
  CHECK(changed_since(before));
}

TEST_CASE("a missing directory is reported", "[file_watch]") {
  file_watch w{"/nonexistent-dir-networkd/resolv.conf", [] {}};
  CHECK_FALSE(w.started());
}
