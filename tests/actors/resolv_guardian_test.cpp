// SPDX-License-Identifier: MIT
// The resolv.conf guardian against real files (threaded actor system: the
// file watcher's thread sends into the actor), with a stand-in for the dns
// responder that records the upstreams it is sent.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <rapidjson/document.h>

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <mutex>
#include <stdexcept>

#include "actors/errors.hpp"
#include "actors/resolv_guardian.hpp"
#include "tests/support/util.hpp"

using namespace networkd;
using namespace networkd::test;

namespace {

class threaded_config : public caf::actor_system_config {
public:
  threaded_config() {
    register_networkd(*this);
    set("logger.verbosity", caf::atom("quiet"));
  }
};

/// What the stand-in responder heard.
struct heard {
  std::mutex mtx;
  std::vector<std::vector<config::upstream>> lists;
  std::vector<config::upstream> last() {
    std::lock_guard<std::mutex> g{mtx};
    return lists.empty() ? std::vector<config::upstream>{} : lists.back();
  }
  size_t count() {
    std::lock_guard<std::mutex> g{mtx};
    return lists.size();
  }
};

dns_responder_actor::behavior_type fake_responder(dns_responder_actor::pointer,
                                                  std::shared_ptr<heard> h) {
  return {
    [](atom::status) { return std::string{"{}"}; },
    [](keys::event<config::family::domain>&) {},
    [](keys::event<config::family::domain_servers>&) {},
    [](config::knob_values&) {},
    [](atom::ready) {},
    [h](atom::upstream, std::vector<config::upstream>& ups) {
      std::lock_guard<std::mutex> g{h->mtx};
      h->lists.push_back(ups);
    },
    [](atom::reload) {},
    [](atom::publish) {},
    [](atom::tidy) {},
    [](atom::dynamic, std::string&, std::vector<std::string>&) {},
    [](atom::webrouter, std::vector<std::string>&) {},
    [](atom::lookup, std::string&, std::string&) { return std::string{}; },
  };
}

std::vector<std::string> ips(const std::vector<config::upstream>& ups) {
  std::vector<std::string> out;
  for (auto& u : ups)
    out.push_back(u.ip);
  return out;
}

/// A tmpfs mounted at `dir` that can be made read-only (a read-only /etc:
/// root cannot write there either); unmounted with the object.
class tmpfs_dir {
public:
  explicit tmpfs_dir(std::string dir) : dir_(std::move(dir)) {
    std::filesystem::create_directory(dir_);
    if (sh("mount -t tmpfs -o size=1m tmpfs '" + dir_ + "'") != 0)
      throw std::runtime_error("cannot mount a tmpfs on " + dir_);
  }
  ~tmpfs_dir() { sh("umount -l '" + dir_ + "'"); }
  tmpfs_dir(const tmpfs_dir&) = delete;
  tmpfs_dir& operator=(const tmpfs_dir&) = delete;
  bool remount(const std::string& mode) {
    return sh("mount -o remount," + mode + " '" + dir_ + "'") == 0;
  }

private:
  std::string dir_;
};

struct fixture {
  threaded_config cfg;
  caf::actor_system sys{cfg};
  temp_dir dir{"networkd-resolv"};
  std::string path = dir.file("resolv.conf");
  std::shared_ptr<heard> h = std::make_shared<heard>();
  resolv_guardian_actor guardian;

  void start(const std::string& our_ip = "127.0.0.1") {
    resolv_guardian_config gc;
    gc.path = path;
    gc.our_ip = our_ip;
    gc.own_ips = {our_ip, "172.17.0.1"};
    gc.responder = sys.spawn(fake_responder, h);
    guardian = sys.spawn(resolv_guardian, gc);
  }

  ~fixture() { caf::anon_send_exit(guardian, caf::exit_reason::user_shutdown); }

  rapidjson::Document status() {
    caf::scoped_actor self{sys};
    rapidjson::Document doc;
    self->request(guardian, std::chrono::seconds(5), atom::status_v)
      .receive([&](std::string& s) { doc.Parse(s.c_str()); },
               [&](caf::error&) {});
    return doc;
  }

  std::string state() {
    auto doc = status();
    return doc.IsObject() ? doc["state"].GetString() : "";
  }

  bool file_becomes(const std::string& text) {
    return wait_until([&] { return read_file(path) == text; }, 5s);
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "the first nameserver becomes ours and rotate goes",
                 "[resolv]") {
  write_file(path, "# from dhcp\nsearch example.com\nnameserver 10.0.0.2\n"
                   "nameserver 10.0.0.3\noptions rotate ndots:2\n");
  ::chmod(path.c_str(), 0640);
  start();
  REQUIRE(file_becomes("# from dhcp\nsearch example.com\n"
                       "nameserver 127.0.0.1\nnameserver 10.0.0.2\n"
                       "nameserver 10.0.0.3\noptions ndots:2\n"));
  REQUIRE(wait_until([&] { return ips(h->last()).size() == 2; }));
  CHECK(ips(h->last()) == std::vector<std::string>{"10.0.0.2", "10.0.0.3"});
  struct stat sb {};
  REQUIRE(::stat(path.c_str(), &sb) == 0);
  CHECK((sb.st_mode & 07777) == 0640);
  CHECK(state() == "managed");
}

TEST_CASE_METHOD(fixture, "a file replaced by rename is fixed again",
                 "[resolv]") {
  write_file(path, "nameserver 10.0.0.2\n");
  start();
  REQUIRE(file_becomes("nameserver 127.0.0.1\nnameserver 10.0.0.2\n"));
  write_file(dir.file("new"), "nameserver 10.9.9.9\n");
  REQUIRE(std::rename(dir.file("new").c_str(), path.c_str()) == 0);
  REQUIRE(file_becomes("nameserver 127.0.0.1\nnameserver 10.9.9.9\n"));
  REQUIRE(wait_until(
    [&] { return ips(h->last()) == std::vector<std::string>{"10.9.9.9"}; }));
}

TEST_CASE_METHOD(fixture, "an in-place write is fixed again", "[resolv]") {
  write_file(path, "nameserver 10.0.0.2\n");
  start();
  REQUIRE(file_becomes("nameserver 127.0.0.1\nnameserver 10.0.0.2\n"));
  write_file(path, "nameserver 10.0.0.4\noptions rotate\n");
  REQUIRE(file_becomes("nameserver 127.0.0.1\nnameserver 10.0.0.4\n"));
}

TEST_CASE_METHOD(fixture, "a deleted file is written again with the upstreams",
                 "[resolv]") {
  write_file(path, "nameserver 10.0.0.2\n");
  start();
  REQUIRE(file_becomes("nameserver 127.0.0.1\nnameserver 10.0.0.2\n"));
  REQUIRE(::unlink(path.c_str()) == 0);
  REQUIRE(file_becomes("nameserver 127.0.0.1\nnameserver 10.0.0.2\n"));
  CHECK(ips(h->last()) == std::vector<std::string>{"10.0.0.2"});
}

TEST_CASE_METHOD(fixture, "a file with only comments gets our nameserver",
                 "[resolv]") {
  write_file(path, "# nothing here\n# really\n");
  start();
  REQUIRE(file_becomes("# nothing here\n# really\nnameserver 127.0.0.1\n"));
  REQUIRE(wait_until([&] { return h->count() >= 1; }));
  CHECK(h->last().empty());
}

TEST_CASE_METHOD(fixture, "a symlinked file is read and left alone",
                 "[resolv]") {
  temp_dir run{"networkd-resolved"};
  auto target = run.file("stub-resolv.conf");
  write_file(target, "nameserver 127.0.0.53\nnameserver 10.0.0.8\n");
  std::filesystem::create_symlink(target, path);
  start();
  REQUIRE(wait_until([&] { return state() == "managed-elsewhere"; }));
  CHECK(read_file(target) == "nameserver 127.0.0.53\nnameserver 10.0.0.8\n");
  CHECK(std::filesystem::is_symlink(path));
  REQUIRE(wait_until(
    [&] { return ips(h->last()) == std::vector<std::string>{"10.0.0.8"}; }));
  // A change of the target is followed.
  write_file(target, "nameserver 10.0.0.9\n");
  REQUIRE(wait_until(
    [&] { return ips(h->last()) == std::vector<std::string>{"10.0.0.9"}; }));
  CHECK(read_file(target) == "nameserver 10.0.0.9\n");
  auto doc = status();
  CHECK(std::string{doc["symlink_target"].GetString()} == target);
}

TEST_CASE_METHOD(fixture,
                 "a program that keeps rewriting the file is not "
                 "fought in a loop",
                 "[resolv]") {
  write_file(path, "nameserver 10.0.0.2\n");
  start();
  REQUIRE(file_becomes("nameserver 127.0.0.1\nnameserver 10.0.0.2\n"));
  // Another program rewrites it each time we fix it.
  bool fighting = false;
  for (int i = 0; i < 20 && !fighting; ++i) {
    REQUIRE(wait_until(
      [&] { return read_file(path).rfind("nameserver 127.0.0.1", 0) == 0; }));
    write_file(path, "nameserver 10.0.0.2\n");
    fighting = wait_until([&] { return state() == "fighting"; }, 200ms);
  }
  REQUIRE(fighting);
  auto doc = status();
  CHECK(doc["counters"]["fights"].GetUint64() == 1);
  CHECK(doc["counters"]["rewrites"].GetUint64() <= 6);
  // While backing off, the other program's version stays.
  CHECK(read_file(path) == "nameserver 10.0.0.2\n");
}

TEST_CASE("the fight detector backs off and doubles", "[resolv]") {
  using ms = std::chrono::milliseconds;
  fight_detector f{3, ms{1000}, ms{500}, ms{1500}};
  fight_detector::time_point t{std::chrono::seconds(100)};
  CHECK(f.try_write(t));
  CHECK(f.try_write(t + ms{10}));
  CHECK(f.try_write(t + ms{20}));
  CHECK_FALSE(f.try_write(t + ms{30}));
  CHECK(f.started_fight());
  CHECK_FALSE(f.started_fight());
  CHECK(f.fighting(t + ms{100}));
  CHECK_FALSE(f.try_write(t + ms{100}));
  CHECK_FALSE(f.started_fight());
  CHECK(f.try_write(t + ms{530}));
  // The next fight waits twice as long.
  auto t2 = t + ms{540};
  CHECK(f.try_write(t2));
  CHECK(f.try_write(t2 + ms{1}));
  CHECK_FALSE(f.try_write(t2 + ms{2}));
  CHECK(f.started_fight());
  CHECK_FALSE(f.try_write(t2 + ms{900}));
  CHECK(f.try_write(t2 + ms{1003}));
  CHECK(f.fights() == 2);
  // Writes spread wider than the window are no fight.
  fight_detector g{2, ms{1000}};
  for (int i = 0; i < 10; ++i)
    CHECK(g.try_write(t + ms{1100} * i));
  CHECK(g.fights() == 0);
}

TEST_CASE_METHOD(fixture,
                 "a resolv.conf over 64 KiB is refused and left as it is",
                 "[resolv]") {
  std::string big = "nameserver 10.0.0.2\n";
  while (big.size() <= 64 * 1024)
    big += "# padding padding padding padding padding padding padding\n";
  write_file(path, big);
  start();
  REQUIRE(wait_until([&] { return state() == "error"; }, 5s));
  auto doc = status();
  CHECK(std::string{doc["last_error"].GetString()}.find("File too large")
        != std::string::npos);
  CHECK(read_file(path) == big);
}

TEST_CASE_METHOD(fixture,
                 "a resolv.conf that cannot be written is an error in the "
                 "state and is fixed on its next change",
                 "[resolv]") {
  tmpfs_dir etc{dir.file("etc")};
  path = dir.file("etc") + "/resolv.conf";
  write_file(path, "nameserver 10.0.0.2\n");
  REQUIRE(etc.remount("ro"));
  start();
  REQUIRE(wait_until([&] { return state() == "error"; }, 5s));
  auto doc = status();
  CHECK(std::string{doc["last_error"].GetString()}.find(
          "cannot create a temp file next to " + path)
        != std::string::npos);
  CHECK(read_file(path) == "nameserver 10.0.0.2\n");
  // The upstreams it read still reach the responder.
  CHECK(wait_until(
    [&] { return ips(h->last()) == std::vector<std::string>{"10.0.0.2"}; },
    5s));
  // Writable again: the next change is fixed as usual.
  REQUIRE(etc.remount("rw"));
  write_file(path, "nameserver 10.0.0.3\n");
  CHECK(file_becomes("nameserver 127.0.0.1\nnameserver 10.0.0.3\n"));
  CHECK(wait_until([&] { return state() == "managed"; }, 5s));
}
