// SPDX-License-Identifier: MIT
// actors/metrics: the VIP board's state set and transition counters, the
// samples read from actors' status JSON, and the DNS families; promtool
// checks each text.
#include <catch2/catch.hpp>

#include <chrono>
#include <regex>

#include "actors/dns_responder.hpp"
#include "actors/metrics.hpp"
#include "tests/support/promtool.hpp"

using namespace networkd;
using namespace networkd::test;

namespace {

bool has(const std::string& text, const std::string& line) {
  return text.find(line + "\n") != std::string::npos;
}

void check_with_promtool(const std::string& text) {
  auto v = promtool_check(text);
  INFO(text << "\n--- promtool:\n" << v.output);
  CHECK(v.exit_code == 0);
}

} // namespace

TEST_CASE("a VIP's state set marks its phase and counts transitions by "
          "target") {
  vip_board b;
  b.set("10.0.0.1", "created", false);
  b.set("0.0.0.0:8080", "idle", true);
  auto t = vip_metrics(b.snapshot());
  CHECK(has(t, R"(networkd_vip_state{vip="10.0.0.1",state="created"} 1)"));
  CHECK(has(t, R"(networkd_vip_state{vip="10.0.0.1",state="serving"} 0)"));
  CHECK(
    has(t, R"(networkd_vip_transitions_total{vip="10.0.0.1",to="serving"} 0)"));
  b.set("10.0.0.1", "acquiring", true);
  b.set("10.0.0.1", "serving", true);
  b.set("10.0.0.1", "releasing", true);
  b.set("10.0.0.1", "standby", true);
  b.set("10.0.0.1", "acquiring", true);
  b.set("10.0.0.1", "serving", true);
  t = vip_metrics(b.snapshot());
  CHECK(has(t, R"(networkd_vip_state{vip="10.0.0.1",state="serving"} 1)"));
  CHECK(has(t, R"(networkd_vip_state{vip="10.0.0.1",state="created"} 0)"));
  CHECK(
    has(t, R"(networkd_vip_transitions_total{vip="10.0.0.1",to="serving"} 2)"));
  CHECK(
    has(t, R"(networkd_vip_transitions_total{vip="10.0.0.1",to="standby"} 1)"));
  CHECK(has(
    t, R"(networkd_vip_transitions_total{vip="0.0.0.0:8080",to="idle"} 1)"));
  // Exactly one state is 1 per VIP.
  std::regex one(R"(networkd_vip_state\{vip="10\.0\.0\.1",state="[a-z]+"\} 1)");
  CHECK(std::distance(std::sregex_iterator(t.begin(), t.end(), one),
                      std::sregex_iterator())
        == 1);
  check_with_promtool(t);
  b.forget("10.0.0.1");
  t = vip_metrics(b.snapshot());
  CHECK(t.find("10.0.0.1") == std::string::npos);
  CHECK(t.find("0.0.0.0:8080") != std::string::npos);
}

TEST_CASE("samples are read from status JSON and what is missing is left out") {
  std::string nat = R"({"name":"nat","rules":12,"counters":{"batches":7,)"
                    R"("failures":1,"audits":3,"repairs":2}})";
  auto t = metrics_from_status(nat, nat_status_metrics());
  CHECK(has(t, "networkd_nat_batches_total 7"));
  CHECK(has(t, "networkd_nat_batch_failures_total 1"));
  CHECK(has(t, "networkd_nat_repairs_total 2"));
  CHECK(has(t, "networkd_nat_rules 12"));
  check_with_promtool(t);

  auto leader = R"({"name":"leader","state":"leader","term":41,)"
                R"("counters":{"terms":2,"transactions":9,"refused":0}})";
  t = metrics_from_status(leader, leader_status_metrics());
  CHECK(has(t, "networkd_leader 1"));
  CHECK(has(t, "networkd_leader_term 41"));
  CHECK(has(t, "networkd_leader_terms_total 2"));
  check_with_promtool(t);
  t = metrics_from_status(R"({"state":"follower","term":41})",
                          leader_status_metrics());
  CHECK(has(t, "networkd_leader 0"));
  CHECK(t.find("\nnetworkd_leader_terms_total ") == std::string::npos);

  auto acl = R"({"name":"acl","state":"active","counters":{"applies":4,)"
             R"("failures":0,"audits":10,"repairs":1}})";
  t = metrics_from_status(acl, acl_status_metrics());
  CHECK(has(t, "networkd_acl_active 1"));
  CHECK(has(t, "networkd_acl_applies_total 4"));
  CHECK(has(t, "networkd_acl_repairs_total 1"));
  check_with_promtool(t);

  // Not JSON, or an actor that did not answer: family lines only.
  for (auto bad : {"", "{", "[1,2]", R"({"counters":"x"})"}) {
    INFO(bad);
    t = metrics_from_status(bad, nat_status_metrics());
    CHECK(t.find("\nnetworkd_nat_batches_total ") == std::string::npos);
    CHECK(t.find("# TYPE networkd_nat_batches_total counter")
          != std::string::npos);
  }
}

TEST_CASE("times are RFC 3339 UTC with milliseconds") {
  using namespace std::chrono;
  system_clock::time_point t{milliseconds{1'700'000'000'123}};
  CHECK(rfc3339(t) == "2023-11-14T22:13:20.123Z");
  CHECK(rfc3339(system_clock::time_point{}) == "1970-01-01T00:00:00.000Z");
}

TEST_CASE("the DNS text has the duration histogram by source and upstream "
          "answers by to and rcode") {
  dns::server_stats s;
  prom::duration_histogram local, upstream;
  local.observe(40'000);
  upstream.observe(3'000'000);
  s.durations[0] = local.counts();
  s.durations[2] = upstream.counts();
  s.by_rcode["NOERROR"] = 2;
  dns::forwarder::upstream_health u;
  u.server = "127.0.0.1#5353";
  u.rcodes[0] = 5;
  u.rcodes[3] = 2;
  u.timeouts = 1;
  auto t = dns_metrics(s, {u});
  CHECK(
    has(t, R"(networkd_dns_request_duration_seconds_count{source="local"} 1)"));
  CHECK(
    has(t, R"(networkd_dns_request_duration_seconds_count{source="cache"} 0)"));
  CHECK(has(
    t,
    R"(networkd_dns_request_duration_seconds_bucket{source="upstream",le="0.0025"} 0)"));
  CHECK(has(
    t,
    R"(networkd_dns_request_duration_seconds_bucket{source="upstream",le="0.005"} 1)"));
  CHECK(has(
    t,
    R"(networkd_dns_upstream_answers_total{to="127.0.0.1#5353",rcode="NOERROR"} 5)"));
  CHECK(has(
    t,
    R"(networkd_dns_upstream_answers_total{to="127.0.0.1#5353",rcode="NXDOMAIN"} 2)"));
  CHECK(
    has(t, R"(networkd_dns_upstream_timeouts_total{to="127.0.0.1#5353"} 1)"));
  CHECK(has(t, R"(networkd_dns_responses_total{rcode="NOERROR"} 2)"));
  check_with_promtool(t);
}

TEST_CASE("the nft traffic counters are three counter families by VIP "
          "protocol and port") {
  std::vector<vip_port_traffic> t{
    {"10.0.0.5", "tcp", 80, 3, 41, 2936},
    {"10.0.0.5", "udp", 53, 0, 0, 0},
  };
  auto text = vip_traffic_metrics(t);
  check_with_promtool(text);
  CHECK(has(text, "# TYPE networkd_vip_packets_total counter"));
  CHECK(has(
    text,
    R"(networkd_vip_connections_total{vip="10.0.0.5",proto="tcp",port="80"} 3)"));
  CHECK(has(
    text,
    R"(networkd_vip_packets_total{vip="10.0.0.5",proto="tcp",port="80"} 41)"));
  CHECK(has(
    text,
    R"(networkd_vip_bytes_total{vip="10.0.0.5",proto="tcp",port="80"} 2936)"));
  CHECK(
    has(text,
        R"(networkd_vip_bytes_total{vip="10.0.0.5",proto="udp",port="53"} 0)"));
  // No entries: the families alone, still valid.
  auto empty = vip_traffic_metrics({});
  check_with_promtool(empty);
  CHECK(has(empty, "# TYPE networkd_vip_bytes_total counter"));
  CHECK(empty.find("{vip=") == std::string::npos);
}

TEST_CASE("v1/vips gets each VIP's traffic by the VIP and ports of its "
          "rules") {
  std::vector<vip_port_traffic> t{
    {"10.0.0.5", "tcp", 80, 3, 41, 2936},
    {"10.0.0.5", "udp", 80, 1, 2, 60},
    {"10.0.0.9", "tcp", 8080, 7, 70, 7000}, // a port-only VIP on the node
    {"10.0.0.6", "tcp", 80, 9, 9, 9},       // nobody's rule here
  };
  std::string body
    = R"({"vips":[{"key":"/lain/config/vips/10.0.0.5","rules":["tcp 10.0.0.5:80 -> 172.20.1.2:80","udp 10.0.0.5:53 -> 172.20.1.2:53"]},)"
      R"({"key":"/lain/config/vips/10.0.0.9:8080","rules":["tcp 10.0.0.9:8080 -> 172.20.1.3:80"]},)"
      R"({"key":"/lain/config/vips/10.0.0.7","rules":[]},)"
      R"({"key":"/lain/config/vips/10.0.0.8","rules":["bad", "tcp 10.0.0.8:99999 -> x", 7]}],"rejected":[]})";
  auto out = vips_with_traffic(body, t);
  CHECK(
    out.find(
      R"("rules":["tcp 10.0.0.5:80 -> 172.20.1.2:80","udp 10.0.0.5:53 -> 172.20.1.2:53"],"traffic":[{"vip":"10.0.0.5","proto":"tcp","port":80,"connections":3,"packets":41,"bytes":2936}]})")
    != std::string::npos);
  CHECK(
    out.find(
      R"("traffic":[{"vip":"10.0.0.9","proto":"tcp","port":8080,"connections":7,"packets":70,"bytes":7000}])")
    != std::string::npos);
  CHECK(
    out.find(R"("key":"/lain/config/vips/10.0.0.7","rules":[],"traffic":[])")
    != std::string::npos);
  CHECK(out.find(R"("rules":["bad","tcp 10.0.0.8:99999 -> x",7],"traffic":[])")
        != std::string::npos);
  CHECK(out.find("10.0.0.6") == std::string::npos);
  CHECK(out.find(R"("rejected":[])") != std::string::npos);
  // Not a VIP list (an error from the supervisor, broken text): unchanged.
  for (std::string other : {std::string{R"({"error":"timeout"})"},
                            std::string{"{\"vips\":["}, std::string{}})
    CHECK(vips_with_traffic(other, t) == other);
}
