// SPDX-License-Identifier: MIT
// The networkd binary against a real etcd: command line, lock file, admin
// endpoints, watches with revisions, a rejected key while it keeps running,
// graceful stop releasing the lease.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <algorithm>
#include <cstring>
#include <sstream>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/daemon.hpp"
#include "tests/support/etcd_fixture.hpp"
#include "tests/support/lainlet_server.hpp"

using namespace networkd::test;

namespace {

rapidjson::Document state_of(const daemon_process& d) {
  rapidjson::Document doc;
  auto r = d.get("/v1/state");
  doc.Parse(r.body.c_str());
  return doc;
}

/// The supervisor's JSON object inside /v1/state (or null).
const rapidjson::Value* supervisor_of(const rapidjson::Document& doc) {
  if (!doc.IsObject() || !doc.HasMember("actors"))
    return nullptr;
  for (auto& a : doc["actors"].GetArray())
    if (a.HasMember("name")
        && std::string{a["name"].GetString()} == "supervisor")
      return &a;
  return nullptr;
}

int run_networkd(const std::string& args, std::string* out = nullptr) {
  return sh(std::string{NETWORKD_BINARY} + " " + args + " 2>&1", out);
}

/// A socket of `type` bound to 127.0.0.1:port (listening for TCP), closed
/// with the object: another program holding a port.
class held_port {
public:
  held_port(int type, uint16_t port) : fd_(::socket(AF_INET, type, 0)) {
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd_ < 0 || ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0
        || (type == SOCK_STREAM && ::listen(fd_, 1) != 0))
      throw std::runtime_error("cannot hold port " + std::to_string(port));
  }
  ~held_port() {
    if (fd_ >= 0)
      ::close(fd_);
  }
  held_port(const held_port&) = delete;
  held_port& operator=(const held_port&) = delete;

private:
  int fd_;
};

} // namespace

TEST_CASE("bad flags exit 2 with a one-line message naming the flag",
          "[daemon]") {
  std::string out;
  CHECK(run_networkd("-no.such.flag", &out) == 2);
  CHECK(out.find("-no.such.flag") != std::string::npos);
  CHECK(std::count(out.begin(), out.end(), '\n') == 1);
  CHECK(run_networkd("-godns.addr=127.0.0.1:99999", &out) == 2);
  CHECK(out.find("godns.addr") != std::string::npos);
  CHECK(run_networkd("-etcd.endpoint=http://", &out) == 2);
  CHECK(run_networkd("--help", &out) == 0);
  CHECK(out.find("-etcd.endpoint") != std::string::npos);
  CHECK(run_networkd("-version", &out) == 0);
  CHECK(out.find("networkd Version") != std::string::npos);
}

TEST_CASE("networkd serves its state and becomes ready after the first read",
          "[daemon]") {
  etcd_server etcd;
  REQUIRE(etcd.etcdctl("put /lain/config/vips/10.0.0.5 "
                       "'{\"app\":\"web\",\"proc\":\"main\",\"ports\":"
                       "[{\"src\":\"80\"}]}'")
          == 0);
  daemon_process d{etcd.endpoint()};
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 10s));
  // The first lease is granted once the knobs are read: soon after ready.
  rapidjson::Document doc;
  const rapidjson::Value* sup = nullptr;
  REQUIRE(wait_until(
    [&] {
      doc = state_of(d);
      sup = supervisor_of(doc);
      return sup != nullptr
             && std::string{(*sup)["lease"]["state"].GetString()} == "alive";
    },
    10s));
  auto& watches = (*sup)["watches"];
  REQUIRE(watches.GetArray().Size() == 10);
  for (auto& w : watches.GetArray()) {
    CHECK(w["synced"].GetBool());
    CHECK(w["revision"].GetInt64() >= 2);
  }
  REQUIRE((*sup)["children"].GetArray().Size() == 1);
  CHECK(std::string{(*sup)["children"][0]["app"].GetString()} == "web");
  auto metrics = d.get("/metrics");
  CHECK(metrics.status == 200);
  CHECK(metrics.body.find("networkd_ready 1") != std::string::npos);
}

TEST_CASE("a bad value shows as a rejected key while networkd keeps going",
          "[daemon]") {
  etcd_server etcd;
  daemon_process d{etcd.endpoint()};
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 10s));
  REQUIRE(etcd.etcdctl("put /lain/config/vips/10.0.0.7 '{\"app\":'") == 0);
  REQUIRE(etcd.etcdctl("put /lain/config/vips/10.0.0.8 "
                       "'{\"app\":\"a\",\"proc\":\"p\",\"ports\":"
                       "[{\"src\":\"8080\",\"proto\":\"udp\"}]}'")
          == 0);
  REQUIRE(wait_until(
    [&] {
      auto doc = state_of(d);
      auto sup = supervisor_of(doc);
      return sup != nullptr && (*sup)["rejected"].GetArray().Size() == 1
             && (*sup)["children"].GetArray().Size() == 1;
    },
    5s));
  auto doc = state_of(d);
  auto& rej = (*supervisor_of(doc))["rejected"][0];
  CHECK(std::string{rej["key"].GetString()} == "/lain/config/vips/10.0.0.7");
  CHECK(std::string{rej["code"].GetString()} == "bad_json");
  CHECK(d.proc().running());
  // The watch revision follows etcd's: the knobs watch reaches the
  // revision of the put that etcd reports.
  std::string out;
  REQUIRE(
    etcd.etcdctl("put -w json /lain/networkd/config/log_level debug", &out)
    == 0);
  rapidjson::Document put;
  put.Parse(out.c_str());
  REQUIRE(put.IsObject());
  int64_t put_rev = put["header"]["revision"].GetInt64();
  REQUIRE(put_rev > 0);
  int64_t seen = 0;
  REQUIRE(wait_until(
    [&] {
      auto doc = state_of(d);
      auto sup = supervisor_of(doc);
      if (sup == nullptr)
        return false;
      for (auto& w : (*sup)["watches"].GetArray())
        if (std::string{w["prefix"].GetString()} == "/lain/networkd/config/")
          seen = w["revision"].GetInt64();
      return seen >= put_rev && (*sup)["knobs"].HasMember("log_level");
    },
    5s));
  CHECK(seen == put_rev);
}

TEST_CASE("with stderr on the journal every line carries its syslog "
          "priority so journalctl -p warning shows a rejected key",
          "[daemon]") {
  etcd_server etcd;
  // systemd names the stream it connects in JOURNAL_STREAM (device:inode);
  // here stderr is the log file, so the variable is made from that file.
  std::vector<std::string> as_journal
    = {"sh", "-c",
       "JOURNAL_STREAM=$(stat -L -c %d:%i /proc/self/fd/2) exec \"$0\" "
       "\"$@\""};
  daemon_process d{etcd.endpoint(), {}, "test-node", {}, nullptr, as_journal};
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 10s));
  REQUIRE(etcd.etcdctl("put /lain/config/vips/10.0.0.7 '{\"app\":'") == 0);
  std::string warning;
  REQUIRE(wait_until(
    [&] {
      std::istringstream lines{d.log()};
      for (std::string l; std::getline(lines, l);)
        if (l.find("/lain/config/vips/10.0.0.7") != std::string::npos)
          warning = l;
      return !warning.empty();
    },
    5s));
  CHECK(warning.rfind("<4>warning ", 0) == 0);
  // Stable fields an operator greps for.
  CHECK(warning.find(" key=/lain/config/vips/10.0.0.7 code=bad_json revision=")
        != std::string::npos);
  CHECK(warning.find(" reason=\"") != std::string::npos);
  // Every line of networkd's own has a prefix; info lines are <6>.
  std::istringstream lines{d.log()};
  int info = 0;
  for (std::string l; std::getline(lines, l);) {
    if (l.empty() || l.rfind("==", 0) == 0)
      continue;
    INFO(l);
    CHECK(l.size() > 3);
    CHECK(l[0] == '<');
    CHECK(l[2] == '>');
    info += l.rfind("<6>info ", 0) == 0;
  }
  CHECK(info > 0);
}

TEST_CASE("without JOURNAL_STREAM of its own stderr lines start with the "
          "time",
          "[daemon]") {
  etcd_server etcd;
  // A variable inherited from a parent whose stderr was the journal.
  daemon_process d{etcd.endpoint(), {}, "test-node", {"JOURNAL_STREAM=1:2"}};
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 10s));
  std::istringstream lines{d.log()};
  std::string first;
  std::getline(lines, first);
  INFO(first);
  CHECK(first.rfind("20", 0) == 0);
  CHECK(first.find('<') != 0);
}

TEST_CASE("a second instance with the same lock file refuses to start",
          "[daemon]") {
  etcd_server etcd;
  daemon_process d{etcd.endpoint()};
  std::string args;
  for (size_t i = 1; i < d.argv().size(); ++i)
    args += "'" + d.argv()[i] + "' ";
  std::string out;
  CHECK(run_networkd(args, &out) == 1);
  CHECK(out.find("lock file") != std::string::npos);
  CHECK(d.proc().running());
}

TEST_CASE("networkd exits 1 naming the cause when its DNS port is taken or "
          "its lock file cannot be opened",
          "[daemon]") {
  // Both stop networkd before it asks etcd (nothing listens on the etcd
  // port). `timeout`: a networkd that starts anyway is stopped and fails
  // the exit code check instead of hanging the test.
  temp_dir dir{"networkd-start"};
  write_file(dir.file("resolv.conf"), "nameserver 127.0.0.53\n");
  write_file(dir.file("hosts"), "127.0.0.1 localhost\n");
  auto flags = [&](uint16_t dns_port, const std::string& lock) {
    return "-etcd.endpoint=127.0.0.1:" + std::to_string(free_port())
           + " -hostname=t -net.interface=lo -net.address=127.0.0.1"
           + " -godns.addr=127.0.0.1:" + std::to_string(dns_port)
           + " -api.addr=127.0.0.1:" + std::to_string(free_port())
           + " -lock.filename=" + lock + " --resolv-conf="
           + dir.file("resolv.conf") + " --hosts-file=" + dir.file("hosts")
           + " -docker.endpoint=unix://" + dir.file("no-docker.sock");
  };
  auto run = [](const std::string& args, std::string* out) {
    return sh("timeout -s KILL 20 " + std::string{NETWORKD_BINARY} + " " + args
                + " 2>&1",
              out);
  };
  std::string out;
  // Another resolver on the DNS port (TCP and UDP, as dnsmasq holds it).
  auto port = free_port();
  {
    held_port tcp{SOCK_STREAM, port};
    held_port udp{SOCK_DGRAM, port};
    CHECK(run(flags(port, dir.file("a.lock")), &out) == 1);
    INFO(out);
    CHECK(out.find("DNS server: ") != std::string::npos);
    CHECK(out.find("127.0.0.1:" + std::to_string(port)) != std::string::npos);
  }
  // A lock file in a directory that does not exist.
  CHECK(run(flags(free_port(), dir.file("no-such-dir/networkd.lock")), &out)
        == 1);
  INFO(out);
  CHECK(out.find("cannot open lock file " + dir.file("no-such-dir"))
        != std::string::npos);
}

TEST_CASE("SIGTERM SIGINT and SIGQUIT revoke the lease and exit cleanly",
          "[daemon]") {
  int sig = GENERATE(SIGTERM, SIGINT, SIGQUIT);
  INFO(strsignal(sig));
  etcd_server etcd;
  daemon_process d{etcd.endpoint()};
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 10s));
  std::string leases;
  REQUIRE(wait_until(
    [&] {
      etcd.etcdctl("lease list", &leases);
      return leases.find("found 1 leases") != std::string::npos;
    },
    5s));
  d.proc().signal(sig);
  auto st = d.proc().wait(10s);
  REQUIRE(st != -1);
  CHECK(WIFEXITED(st));
  CHECK(WEXITSTATUS(st) == 0);
  etcd.etcdctl("lease list", &leases);
  CHECK(leases.find("found 0 leases") != std::string::npos);
}

TEST_CASE("SIGUSR1 logs the state and SIGHUP reads everything again while "
          "networkd keeps running",
          "[daemon]") {
  etcd_server etcd;
  daemon_process d{etcd.endpoint()};
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 10s));
  d.proc().signal(SIGUSR1);
  REQUIRE(wait_until(
    [&] {
      return d.log().find("SIGUSR1: state {\"actors\":[") != std::string::npos;
    },
    5s));
  CHECK(d.proc().running());
  // SIGHUP: every watch reads its prefix again, the hosts file too.
  auto resyncs = [&] {
    auto doc = state_of(d);
    auto sup = supervisor_of(doc);
    int64_t n = 0;
    if (sup != nullptr)
      for (auto& w : (*sup)["watches"].GetArray())
        n += w["resyncs"].GetInt64();
    return n;
  };
  // And the hosts file and resolv.conf: their actors' read counters.
  auto reads = [&] {
    auto doc = state_of(d);
    uint64_t hosts = 0;
    uint64_t resolv = 0;
    for (auto& a : doc["actors"].GetArray()) {
      std::string name = a["name"].GetString();
      if (name == "dns-responder")
        hosts = a["counters"]["hosts_reloads"].GetUint64();
      else if (name == "resolv-guardian")
        resolv = a["counters"]["checks"].GetUint64();
    }
    return std::pair{hosts, resolv};
  };
  auto before = resyncs();
  auto [hosts0, resolv0] = reads();
  d.proc().signal(SIGHUP);
  REQUIRE(wait_until(
    [&] {
      return resyncs()
             >= before
                  + static_cast<int64_t>(
                    (*supervisor_of(state_of(d)))["watches"].GetArray().Size());
    },
    5s));
  CHECK(d.log().find("SIGHUP: reading etcd") != std::string::npos);
  REQUIRE(wait_until(
    [&, hosts0 = hosts0, resolv0 = resolv0] {
      auto [hosts, resolv] = reads();
      return hosts > hosts0 && resolv > resolv0;
    },
    5s));
  CHECK(d.proc().running());
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 5s));
}

TEST_CASE("260000 nested brackets under tinydns_fqdns crash no tinydns node",
          "[daemon]") {
  // Issue 12: RapidJSON's recursive parser overflowed the stack on it, on
  // every -tinydns node and again after every restart.
  etcd_server etcd;
  temp_dir values;
  // Too long for one command-line argument: etcdctl reads it from stdin.
  auto put_file = [&](const std::string& key, const std::string& value) {
    write_file(values.file("v"), value);
    return etcd.etcdctl("put " + key + " < " + values.file("v"));
  };
  REQUIRE(
    put_file("/lain/config/tinydns_fqdns/x.lain", std::string(260000, '['))
    == 0);
  daemon_process d{etcd.endpoint(), {"-tinydns"}};
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 10s));
  // It leads (alone) and computes its plan over the value.
  REQUIRE(wait_until(
    [&] {
      return d.get("/v1/state").body.find("\"state\":\"leader\"")
             != std::string::npos;
    },
    10s));
  REQUIRE(
    put_file("/lain/config/tinydns_fqdns/y.lain", std::string(200000, '{'))
    == 0);
  REQUIRE(etcd.etcdctl("put /lain/networkd/config/log_level debug") == 0);
  REQUIRE(wait_until(
    [&] {
      return d.get("/v1/state").body.find("\"log_level\":\"debug\"")
             != std::string::npos;
    },
    5s));
  CHECK(d.proc().running());
  CHECK(d.get("/readyz").status == 200);
}

namespace {

/// The supervisor's lease: {id, state}.
std::pair<int64_t, std::string> lease_of(const daemon_process& d) {
  auto doc = state_of(d);
  auto sup = supervisor_of(doc);
  if (sup == nullptr || !sup->HasMember("lease"))
    return {0, ""};
  auto& l = (*sup)["lease"];
  // The id is hex text, as etcdctl prints it.
  return {l.HasMember("id") && l["id"].IsString()
            ? std::stoll(l["id"].GetString(), nullptr, 16)
            : 0,
          l.HasMember("state") && l["state"].IsString() ? l["state"].GetString()
                                                        : ""};
}

} // namespace

TEST_CASE("a lease granted after a stall is renewed at once and not lost again",
          "[daemon]") {
  etcd_server etcd;
  REQUIRE(etcd.etcdctl("put /lain/networkd/config/lease_ttl 2") == 0);
  daemon_process d{etcd.endpoint()};
  std::pair<int64_t, std::string> first;
  REQUIRE(wait_until(
    [&] {
      first = lease_of(d);
      return first.first != 0 && first.second == "alive";
    },
    10s));
  // etcd stalls: the lease passes its local deadline and a new grant waits
  // in the stalled server.
  etcd.pause();
  bool granting
    = wait_until([&] { return lease_of(d).second == "granting"; }, 10s, 5ms);
  // The grant's answer comes 0.8 s late: of the 1 s the new lease is good
  // for locally (TTL 2 s - 1 s margin), 0.2 s are left.
  std::this_thread::sleep_for(800ms);
  etcd.resume();
  REQUIRE(granting);
  std::pair<int64_t, std::string> second;
  REQUIRE(wait_until(
    [&] {
      second = lease_of(d);
      return second.first != 0 && second.first != first.first
             && second.second == "alive";
    },
    10s));
  // Renewed at once: it never passes its deadline. (Renewed on the usual
  // schedule, 250 ms on, it would have been lost and granted again.)
  auto until = std::chrono::steady_clock::now() + 1500ms;
  while (std::chrono::steady_clock::now() < until) {
    auto now = lease_of(d);
    REQUIRE(now.first == second.first);
    std::this_thread::sleep_for(50ms);
  }
  CHECK(d.log().find("renewing before use") != std::string::npos);
}

TEST_CASE("systemd hears READY and watchdog pings", "[daemon]") {
  temp_dir dir{"networkd-notify"};
  auto sock_path = dir.file("notify.sock");
  int fd = ::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  REQUIRE(fd >= 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", sock_path.c_str());
  REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
  timeval tv{0, 100000};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  etcd_server etcd;
  {
    daemon_process d{etcd.endpoint(),
                     {},
                     "test-node",
                     {"NOTIFY_SOCKET=" + sock_path, "WATCHDOG_USEC=400000"}};
    std::string seen;
    REQUIRE(wait_until(
      [&] {
        char buf[512];
        auto n = ::recv(fd, buf, sizeof(buf), 0);
        if (n > 0)
          seen.append(buf, static_cast<size_t>(n)).push_back('\n');
        return seen.find("READY=1") != std::string::npos
               && seen.find("WATCHDOG=1") != std::string::npos;
      },
      10s, 1ms));
    d.proc().signal(SIGTERM);
    REQUIRE(d.proc().wait(10s) != -1);
  }
  ::close(fd);
}

TEST_CASE("readyz answers 503 with its reason until the first etcd read",
          "[daemon]") {
  etcd_server etcd;
  etcd.stop();
  daemon_process d{etcd.endpoint()};
  // Alive (the constructor waited for /healthz) but not ready.
  auto r = d.get("/readyz");
  CHECK(r.status == 503);
  CHECK(r.body.find("first etcd read pending") != std::string::npos);
  CHECK(d.get("/metrics").body.find("networkd_ready 0") != std::string::npos);
  etcd.start();
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 20s));
}

TEST_CASE("v1/procs shows the container source and what it reports",
          "[daemon]") {
  etcd_server etcd;
  lainlet_server lainlet;
  lainlet_container c;
  c.app = "shop";
  c.proc = "shop.web.web";
  c.nodename = "test-node";
  lainlet.set_containers({c});
  daemon_process d{etcd.endpoint(),
                   {"-lainlet.endpoint=" + lainlet.endpoint()}};
  http_reply r;
  REQUIRE(wait_until(
    [&] {
      r = d.get("/v1/procs");
      return r.body.find("\"containers\":1,") != std::string::npos;
    },
    10s));
  CHECK(r.status == 200);
  CHECK(r.body.find("\"name\":\"health-hub\"") != std::string::npos);
  CHECK(r.body.find("\"source\":\"lainlet\"") != std::string::npos);
}
