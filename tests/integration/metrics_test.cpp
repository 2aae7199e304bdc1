// SPDX-License-Identifier: MIT
// /metrics of the networkd binary against a real etcd: promtool finds
// nothing wrong, every family the README lists is there with its labels,
// a DNS query lands in the duration histogram, a VIP's state set follows
// its key (the failover itself: vip_lab_test.cpp, two nodes).
#include <catch2/catch.hpp>

#include <memory>
#include <regex>
#include <stdexcept>

#include "tests/support/daemon.hpp"
#include "tests/support/dnsmasq.hpp"
#include "tests/support/etcd_fixture.hpp"
#include "tests/support/promtool.hpp"

using namespace networkd::test;

namespace {

/// The value of the first sample whose line starts with `series` + " ",
/// or -1.
double sample(const std::string& text, const std::string& series) {
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos)
    return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

size_t count_matches(const std::string& text, const std::string& re) {
  std::regex r(re);
  return static_cast<size_t>(std::distance(
    std::sregex_iterator(text.begin(), text.end(), r), std::sregex_iterator()));
}

} // namespace

TEST_CASE("metrics pass promtool and show lease watches leader DNS and VIPs",
          "[daemon][metrics]") {
  etcd_server etcd;
  REQUIRE(etcd.etcdctl("put /lain/config/vips/10.0.0.5 "
                       "'{\"app\":\"web\",\"proc\":\"main\",\"ports\":"
                       "[{\"src\":\"80\"}]}'")
          == 0);
  REQUIRE(etcd.etcdctl("put /lain/config/domains/m.lain "
                       "'{\"ips\":[\"10.4.4.4\"],\"type\":\"\"}'")
          == 0);
  dnsmasq_upstream corp{"127.0.0.81", free_port(), "corp", "10.8.8.8"};
  auto to = "127.0.0.81#" + std::to_string(corp.port);
  REQUIRE(etcd.etcdctl("put /lain/config/domain_servers/corp "
                       "'{\"servers\":[\""
                       + to + "\"]}'")
          == 0);
  daemon_process d{etcd.endpoint()};
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 10s));
  std::string text;
  // Lease granted and this single node elected.
  REQUIRE(wait_until(
    [&] {
      text = d.get("/metrics").body;
      return sample(text, "networkd_lease_alive") == 1
             && sample(text, "networkd_leader") == 1;
    },
    10s));
  std::string out;
  REQUIRE(sh("dig @127.0.0.1 -p " + std::to_string(d.dns_port())
               + " +tries=1 +time=2 +short m.lain A",
             &out)
          == 0);
  REQUIRE(out == "10.4.4.4\n");
  // Forwarded once, then from the cache.
  for (int i = 0; i < 2; ++i) {
    REQUIRE(sh("dig @127.0.0.1 -p " + std::to_string(d.dns_port())
                 + " +tries=1 +time=2 +short host.corp A",
               &out)
            == 0);
    REQUIRE(out == "10.8.8.8\n");
  }
  text = d.get("/metrics").body;
  INFO(text);

  auto verdict = promtool_check(text);
  INFO("promtool: " << verdict.output);
  CHECK(verdict.exit_code == 0);

  CHECK(sample(text, "networkd_lease_remaining_seconds") > 0);
  CHECK(sample(text, "networkd_leader_term") > 0);
  // Every watch is up.
  CHECK(count_matches(text, R"(\nnetworkd_etcd_watch_up\{prefix="[^"]+"\} 1)")
        == 10);
  CHECK(count_matches(text, R"(\nnetworkd_etcd_watch_up\{prefix="[^"]+"\} 0)")
        == 0);
  // The VIP: one state of the set is 1 (no container: idle).
  CHECK(count_matches(
          text, R"(\nnetworkd_vip_state\{vip="10\.0\.0\.5",state="[a-z]+"\} 1)")
        == 1);
  CHECK(count_matches(
          text, R"(\nnetworkd_vip_state\{vip="10\.0\.0\.5",state="[a-z]+"\} 0)")
        == 5);
  CHECK(sample(text, R"(networkd_vip_state{vip="10.0.0.5",state="idle"})")
        == 1);
  CHECK(
    sample(text, R"(networkd_vip_transitions_total{vip="10.0.0.5",to="idle"})")
    == 1);
  // DNS: the query above is a local answer in the histogram.
  CHECK(sample(text,
               R"(networkd_dns_request_duration_seconds_count{source="local"})")
        >= 1);
  CHECK(
    sample(
      text,
      R"(networkd_dns_request_duration_seconds_bucket{source="local",le="+Inf"})")
    >= 1);
  CHECK(sample(text, R"(networkd_dns_responses_total{rcode="NOERROR"})") >= 1);
  CHECK(
    sample(text,
           R"(networkd_dns_request_duration_seconds_count{source="upstream"})")
    == 1);
  CHECK(sample(text,
               R"(networkd_dns_request_duration_seconds_count{source="cache"})")
        == 1);
  CHECK(sample(text, "networkd_dns_upstream_answers_total{to=\"" + to
                       + "\",rcode=\"NOERROR\"}")
        == 1);
  CHECK(sample(text, "networkd_dns_upstream_timeouts_total{to=\"" + to + "\"}")
        == 0);
  CHECK(sample(text, "networkd_dns_cache_hits_total") >= 1);
  CHECK(sample(text, "networkd_dns_cache_misses_total") >= 1);
  // NAT counters from the NAT manager's status; build and process.
  CHECK(sample(text, "networkd_nat_batches_total") >= 0);
  CHECK(sample(text, "networkd_nat_repairs_total") == 0);
  CHECK(count_matches(text, R"(\nnetworkd_build_info\{version="[^"]+",)") == 1);
  for (auto name :
       {"process_cpu_seconds_total", "process_resident_memory_bytes",
        "process_virtual_memory_bytes", "process_open_fds", "process_max_fds",
        "process_start_time_seconds"}) {
    INFO(name);
    CHECK(sample(text, name) > 0);
  }

  // The VIP key deleted: its series leave.
  REQUIRE(etcd.etcdctl("del /lain/config/vips/10.0.0.5") == 0);
  CHECK(wait_until(
    [&] {
      return d.get("/metrics").body.find("vip=\"10.0.0.5\"")
             == std::string::npos;
    },
    10s));
}
