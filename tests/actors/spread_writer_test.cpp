// SPDX-License-Identifier: MIT
// The spread writer against a real etcd: keys on a lease etcd no longer
// has are dropped after the first refusal instead of being sent again
// every second (the fleet benchmark saw one node do that for minutes).
#include <catch2/catch.hpp>

#include <caf/all.hpp>

#include <sstream>

#include "actors/errors.hpp"
#include "actors/vip_engine.hpp"
#include "net/etcd/etcd.hpp"
#include "tests/support/etcd_fixture.hpp"
#include "tests/support/util.hpp"

using namespace networkd;
using namespace networkd::test;
using namespace std::chrono_literals;

namespace {

class threaded_config : public caf::actor_system_config {
public:
  threaded_config() {
    register_networkd(*this);
    set("logger.verbosity", caf::atom("quiet"));
  }
};

/// Transactions etcd refused with NotFound (a lease it does not have),
/// from its /metrics.
long refused_txns(const etcd_server& etcd) {
  std::string out;
  sh("curl -s http://" + etcd.endpoint() + "/metrics", &out);
  std::istringstream in(out);
  std::string line;
  long n = 0;
  while (std::getline(in, line))
    if (line.rfind("grpc_server_handled_total{", 0) == 0
        && line.find("grpc_code=\"NotFound\"") != std::string::npos
        && line.find("grpc_method=\"Txn\"") != std::string::npos)
      n += std::stol(line.substr(line.rfind(' ') + 1));
  return n;
}

/// A lease granted and revoked again: etcd no longer has it.
int64_t dead_lease(const etcd_server& etcd) {
  std::string out;
  REQUIRE(etcd.etcdctl("lease grant 60", &out) == 0);
  auto at = out.find("lease ");
  REQUIRE(at != std::string::npos);
  auto hex = out.substr(at + 6, out.find(' ', at + 6) - at - 6);
  REQUIRE(etcd.etcdctl("lease revoke " + hex) == 0);
  return static_cast<int64_t>(std::stoull(hex, nullptr, 16));
}

} // namespace

TEST_CASE("spreading keys on a lease etcd no longer has are dropped",
          "[spread-writer]") {
  etcd_server etcd;
  etcd::client_config cc;
  cc.endpoints = {"http://" + etcd.endpoint()};
  auto client = std::make_shared<etcd::client>(cc);
  threaded_config cfg;
  caf::actor_system sys{cfg};
  auto worker = sys.spawn<caf::detached>(etcd_worker, client);
  auto writer = sys.spawn(spread_writer, worker);
  auto lease = dead_lease(etcd);
  auto before = refused_txns(etcd);
  const std::string key = "/lain/networkd/containers/a/web/1/";
  caf::anon_send(writer, atom::put_v, key + "10.0.0.5", std::string{"used"},
                 lease);
  REQUIRE(wait_until([&] { return refused_txns(etcd) > before; }, 5s));
  // Retries came every second before: three seconds would show three more.
  // Nothing is to happen here, so this waits out a window.
  std::this_thread::sleep_for(3500ms);
  CHECK(refused_txns(etcd) == before + 1);
  // A live lease is written as before.
  std::string out;
  REQUIRE(etcd.etcdctl("lease grant 60", &out) == 0);
  auto at = out.find("lease ") + 6;
  auto live = static_cast<int64_t>(
    std::stoull(out.substr(at, out.find(' ', at) - at), nullptr, 16));
  caf::anon_send(writer, atom::put_v, key + "10.0.0.6", std::string{"used"},
                 live);
  REQUIRE(wait_until(
    [&] {
      std::string v;
      etcd.etcdctl("get --print-value-only " + key + "10.0.0.6", &v);
      return v.find("used") != std::string::npos;
    },
    5s));
  caf::anon_send_exit(writer, caf::exit_reason::user_shutdown);
  caf::anon_send_exit(worker, caf::exit_reason::user_shutdown);
}
