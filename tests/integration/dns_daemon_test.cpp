// SPDX-License-Identifier: MIT
// The DNS side of the running daemon, black-box: etcd domains appear in
// answers as soon as they are written, the hosts file is reloaded on
// change, resolv.conf servers become upstreams (a real dnsmasq on a
// loopback address), per-domain servers from etcd, the admin views.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <sstream>

#include "tests/support/daemon.hpp"
#include "tests/support/dnsmasq.hpp"
#include "tests/support/etcd_fixture.hpp"

using namespace networkd::test;

namespace {

/// `dig +short` against the daemon; one line per answer record.
std::string dig(const daemon_process& d, const std::string& args) {
  std::string out;
  sh("dig @127.0.0.1 -p " + std::to_string(d.dns_port()) + " +tries=1 +time=2 "
       + args,
     &out);
  return out;
}

rapidjson::Document json_of(const http_reply& r) {
  rapidjson::Document doc;
  doc.Parse(r.body.c_str());
  INFO(r.body);
  CHECK(r.status == 200);
  return doc;
}

std::string text(const rapidjson::Value& v, const char* key) {
  if (!v.IsObject() || !v.HasMember(key) || !v[key].IsString())
    return "(no " + std::string{key} + ")";
  return v[key].GetString();
}

std::string short_answer(const daemon_process& d, const std::string& name,
                         const std::string& type = "A") {
  return dig(d, "+short " + name + " " + type);
}

/// Lets the guardian's first rewrite of resolv.conf happen before a test
/// writes it: a writer that opened the file before a rename writes into the
/// replaced file.
void wait_for_guardian(const daemon_process& d) {
  REQUIRE(wait_until(
    [&] {
      return read_file(d.resolv_conf()).rfind("nameserver 127.0.0.1\n", 0) == 0;
    },
    10s));
}

} // namespace

TEST_CASE("an etcd domain write is answered at once, a delete removes it",
          "[dns][daemon]") {
  etcd_server etcd;
  daemon_process d{etcd.endpoint()};
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 10s));
  auto t0 = std::chrono::steady_clock::now();
  REQUIRE(etcd.etcdctl("put /lain/config/domains/fresh.lain "
                       "'{\"ips\":[\"10.4.4.4\"],\"type\":\"\"}'")
          == 0);
  REQUIRE(wait_until(
    [&] { return short_answer(d, "fresh.lain") == "10.4.4.4\n"; }, 3s, 1ms));
  auto took = std::chrono::duration_cast<std::chrono::milliseconds>(
    std::chrono::steady_clock::now() - t0);
  WARN("etcd put to answered (incl. etcdctl and dig start-up): " << took.count()
                                                                 << " ms");
  // Wildcard with the node type answers the node address at any depth.
  REQUIRE(etcd.etcdctl("put /lain/config/domains/*.svc.lain "
                       "'{\"ips\":[],\"type\":\"node\"}'")
          == 0);
  REQUIRE(wait_until(
    [&] { return short_answer(d, "a.b.svc.lain") == "127.0.0.1\n"; }, 3s));
  CHECK(short_answer(d, "svc.lain") == "127.0.0.1\n");
  REQUIRE(etcd.etcdctl("del /lain/config/domains/fresh.lain") == 0);
  REQUIRE(
    wait_until([&] { return short_answer(d, "fresh.lain").empty(); }, 3s));
  // A bad domain value is rejected; the good ones keep answering.
  REQUIRE(etcd.etcdctl("put /lain/config/domains/bad.lain "
                       "'{\"ips\":[\"999.1.1.1\"]}'")
          == 0);
  REQUIRE(wait_until(
    [&] {
      return d.get("/v1/state").body.find("/lain/config/domains/bad.lain")
             != std::string::npos;
    },
    3s));
  CHECK(short_answer(d, "x.svc.lain") == "127.0.0.1\n");
}

TEST_CASE("the hosts file is served and reloaded when replaced",
          "[dns][daemon]") {
  etcd_server etcd;
  daemon_process d{etcd.endpoint()};
  write_file(d.hosts_file(), "10.6.6.6 alpha alpha.example\n");
  REQUIRE(wait_until(
    [&] { return short_answer(d, "alpha.example") == "10.6.6.6\n"; }, 3s));
  write_file(d.dir().file("hosts.new"), "10.6.6.7 alpha\n");
  REQUIRE(std::rename(d.dir().file("hosts.new").c_str(), d.hosts_file().c_str())
          == 0);
  REQUIRE(
    wait_until([&] { return short_answer(d, "ALPHA") == "10.6.6.7\n"; }, 3s));
  CHECK(dig(d, "-x 10.6.6.7 +short") == "alpha.\n");
}

TEST_CASE("resolv.conf servers and etcd domain servers are the upstreams",
          "[dns][daemon]") {
  // Upstreams from resolv.conf always use port 53: a loopback address of
  // our own keeps it off every real resolver.
  dnsmasq_upstream general{"127.0.0.77", 53, "ext.test", "10.7.7.7"};
  dnsmasq_upstream corp{"127.0.0.78", free_port(), "corp", "10.8.8.8"};
  etcd_server etcd;
  daemon_process d{etcd.endpoint()};
  wait_for_guardian(d);
  write_file(d.resolv_conf(), "search example.com\nnameserver 127.0.0.77\n"
                              "options rotate ndots:2\n");
  bool fixed = wait_until(
    [&] {
      return read_file(d.resolv_conf())
             == "search example.com\nnameserver 127.0.0.1\n"
                "nameserver 127.0.0.77\noptions ndots:2\n";
    },
    10s);
  INFO(read_file(d.resolv_conf()) << "\n" << d.log());
  REQUIRE(fixed);
  REQUIRE(wait_until(
    [&] { return short_answer(d, "www.ext.test") == "10.7.7.7\n"; }, 15s));
  // Served from the cache now: the TTL counts down from dnsmasq's 300.
  auto full = dig(d, "www.ext.test A +noall +answer");
  CHECK(full.find("10.7.7.7") != std::string::npos);
  // Per-domain servers from etcd win for names under their domain.
  CHECK(short_answer(d, "host.corp").empty());
  REQUIRE(etcd.etcdctl("put /lain/config/domain_servers/corp "
                       "'{\"servers\":[\"127.0.0.78#"
                       + std::to_string(corp.port) + "\"]}'")
          == 0);
  REQUIRE(wait_until(
    [&] { return short_answer(d, "host.corp") == "10.8.8.8\n"; }, 15s));
  auto state = d.get("/v1/dns/config");
  CHECK(state.status == 200);
  CHECK(state.body.find("nameserver 127.0.0.77#53") != std::string::npos);
  CHECK(state.body.find("server=/corp/127.0.0.78#" + std::to_string(corp.port))
        != std::string::npos);
  auto metrics = d.get("/metrics");
  CHECK(metrics.body.find("networkd_dns_queries_total{type=\"A\"}")
        != std::string::npos);
  CHECK(metrics.body.find("networkd_dns_answers_total{source=\"forward\"}")
        != std::string::npos);
  // The why of forwarded names: which servers, and what the cache holds.
  auto corp_why = json_of(d.get("/v1/dns/lookup?name=host.corp"));
  REQUIRE(corp_why.IsObject());
  CHECK(text(corp_why, "verdict") == "forward");
  CHECK(text(corp_why, "rule") == "domain servers");
  CHECK(text(corp_why, "key") == "/lain/config/domain_servers/corp");
  CHECK(corp_why["revision"].GetInt64() > 0);
  REQUIRE(corp_why["upstreams"].Size() == 1);
  CHECK(std::string{corp_why["upstreams"][0].GetString()}
        == "127.0.0.78#" + std::to_string(corp.port));
  CHECK(corp_why["cache"]["present"].GetBool());
  CHECK(text(corp_why["cache"], "rcode") == "NOERROR");
  auto ttl_left = corp_why["cache"]["ttl_left_s"].GetInt64();
  CHECK(ttl_left > 0);
  CHECK(ttl_left <= 300);
  auto ext_why = json_of(d.get("/v1/dns/lookup?name=www.ext.test&type=a"));
  CHECK(text(ext_why, "rule") == "default upstreams");
  CHECK(text(ext_why, "type") == "A");
  REQUIRE(ext_why["upstreams"].Size() == 1);
  CHECK(std::string{ext_why["upstreams"][0].GetString()} == "127.0.0.77#53");
  auto never = json_of(d.get("/v1/dns/lookup?name=never.asked.test"));
  CHECK_FALSE(never["cache"]["present"].GetBool());
}

TEST_CASE("the why of local names names the etcd key and revision the "
          "wildcard and the hosts line and ctl prints it",
          "[dns][daemon]") {
  etcd_server etcd;
  daemon_process d{etcd.endpoint()};
  write_file(d.hosts_file(), "127.0.0.1 localhost\n# build hosts\n"
                             "10.5.0.1 build.example b1\n");
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 10s));
  std::string out;
  REQUIRE(etcd.etcdctl("put -w json /lain/config/domains/why.lain "
                       "'{\"ips\":[\"10.4.4.6\"],\"type\":\"\"}'",
                       &out)
          == 0);
  rapidjson::Document put;
  put.Parse(out.c_str());
  REQUIRE(put.IsObject());
  auto rev = put["header"]["revision"].GetInt64();
  REQUIRE(etcd.etcdctl("put /lain/config/domains/*.svc.lain "
                       "'{\"ips\":[],\"type\":\"node\"}'")
          == 0);
  REQUIRE(wait_until(
    [&] { return short_answer(d, "a.b.svc.lain") == "127.0.0.1\n"; }, 5s));
  REQUIRE(
    wait_until([&] { return short_answer(d, "b1") == "10.5.0.1\n"; }, 5s));
  auto exact = json_of(d.get("/v1/dns/lookup?name=WHY.lain."));
  CHECK(text(exact, "verdict") == "local");
  CHECK(text(exact, "rule") == "etcd domain");
  CHECK(text(exact, "key") == "/lain/config/domains/why.lain");
  CHECK(exact["revision"].GetInt64() == rev);
  REQUIRE(exact["records"].Size() == 1);
  CHECK(std::string{exact["records"][0].GetString()} == "10.4.4.6");
  auto wild = json_of(d.get("/v1/dns/lookup?name=a.b.svc.lain"));
  CHECK(text(wild, "rule") == "etcd wildcard");
  CHECK(text(wild, "key") == "/lain/config/domains/*.svc.lain");
  CHECK(text(wild, "domain_type") == "node");
  auto hosts = json_of(d.get("/v1/dns/lookup?name=b1"));
  CHECK(text(hosts, "rule") == "hosts file");
  CHECK(text(hosts, "hosts_line")
        == d.hosts_file() + ":3: 10.5.0.1 build.example b1");
  auto nodata = json_of(d.get("/v1/dns/lookup?name=why.lain&type=TXT"));
  CHECK(nodata["records"].Size() == 0);
  CHECK(text(nodata, "why").find("NODATA") != std::string::npos);
  auto bad = d.get("/v1/dns/lookup?name=a..b");
  CHECK(bad.status == 400);
  CHECK(bad.body.find("bad_name") != std::string::npos);
  CHECK(d.get("/v1/dns/lookup").status == 400);
  // networkd ctl dns lookup prints the same as key value lines.
  std::string ctl;
  REQUIRE(sh(std::string{NETWORKD_BINARY} + " ctl --api 127.0.0.1:"
               + std::to_string(d.api_port()) + " dns lookup why.lain A",
             &ctl)
          == 0);
  INFO(ctl);
  CHECK(ctl.find("/lain/config/domains/why.lain") != std::string::npos);
  CHECK(ctl.find("etcd domain") != std::string::npos);
  // The query log: off by default, one line per query once the knob is set.
  CHECK(d.log().find("dns-query ") == std::string::npos);
  REQUIRE(etcd.etcdctl("put /lain/networkd/config/dns_log_queries 100") == 0);
  std::string line;
  REQUIRE(wait_until(
    [&] {
      short_answer(d, "why.lain");
      std::istringstream lines{d.log()};
      for (std::string l; std::getline(lines, l);)
        if (l.find("dns-query ") != std::string::npos)
          line = l;
      return !line.empty();
    },
    5s, 50ms));
  CHECK(line.find("client=127.0.0.1 name=why.lain type=A rcode=NOERROR "
                  "source=local latency_us=")
        != std::string::npos);
}

TEST_CASE("webrouter-typed domains answer the VIPs of app webrouter",
          "[dns][daemon]") {
  etcd_server etcd;
  daemon_process d{etcd.endpoint()};
  REQUIRE(etcd.etcdctl("put /lain/config/domains/*.web.lain "
                       "'{\"ips\":[],\"type\":\"webrouter\"}'")
          == 0);
  REQUIRE(etcd.etcdctl("put /lain/config/vips/10.9.0.2 "
                       "'{\"app\":\"webrouter\",\"proc\":\"worker\","
                       "\"ports\":[{\"src\":\"80\"}]}'")
          == 0);
  REQUIRE(etcd.etcdctl("put /lain/config/vips/10.9.0.1 "
                       "'{\"app\":\"webrouter\",\"proc\":\"worker\","
                       "\"ports\":[{\"src\":\"443\"}]}'")
          == 0);
  REQUIRE(etcd.etcdctl("put /lain/config/vips/10.9.0.3 "
                       "'{\"app\":\"other\",\"proc\":\"web\","
                       "\"ports\":[{\"src\":\"80\"}]}'")
          == 0);
  auto sorted = [](std::string text) {
    std::vector<std::string> lines;
    std::string line;
    std::istringstream in(text);
    while (std::getline(in, line))
      lines.push_back(line);
    std::sort(lines.begin(), lines.end());
    return lines;
  };
  REQUIRE(wait_until(
    [&] {
      return sorted(short_answer(d, "shop.web.lain"))
             == std::vector<std::string>{"10.9.0.1", "10.9.0.2"};
    },
    5s));
  REQUIRE(etcd.etcdctl("del /lain/config/vips/10.9.0.2") == 0);
  REQUIRE(wait_until(
    [&] { return short_answer(d, "shop.web.lain") == "10.9.0.1\n"; }, 5s));
}

namespace {

/// The TTL of the first answer record of `name` (-1: no answer).
long answer_ttl(const daemon_process& d, const std::string& name) {
  std::istringstream in(dig(d, "+noall +answer " + name + " A"));
  std::string owner;
  long ttl = -1;
  in >> owner >> ttl;
  return in ? ttl : -1;
}

} // namespace

TEST_CASE("the dns knobs reach the cache at once and a bad value keeps the "
          "last good one",
          "[dns][daemon]") {
  // An address of its own: the other upstream test uses 127.0.0.77:53.
  dnsmasq_upstream up{"127.0.0.79", 53, "knob.test", "10.7.7.9"};
  etcd_server etcd;
  daemon_process d{etcd.endpoint()};
  wait_for_guardian(d);
  write_file(d.resolv_conf(), "nameserver 127.0.0.79\n");
  REQUIRE(wait_until(
    [&] { return short_answer(d, "a.knob.test") == "10.7.7.9\n"; }, 15s));
  // dnsmasq's TTL (300) passes unchanged by default.
  CHECK(answer_ttl(d, "a.knob.test") > 200);
  auto state_has = [&](const std::string& text) {
    return wait_until(
      [&] { return d.get("/v1/state").body.find(text) != std::string::npos; },
      5s);
  };
  REQUIRE(etcd.etcdctl("put /lain/networkd/config/dns_max_ttl 5") == 0);
  REQUIRE(state_has("\"max_ttl\":5,"));
  CHECK(answer_ttl(d, "b.knob.test") == 5);
  // A bad value is rejected and the last good one stays in force.
  REQUIRE(etcd.etcdctl("put /lain/networkd/config/dns_max_ttl abc") == 0);
  REQUIRE(state_has("/lain/networkd/config/dns_max_ttl"));
  CHECK(answer_ttl(d, "c.knob.test") == 5);
  // No cache: the entries go at once and new answers are not kept.
  auto entries = [&] {
    auto m = d.get("/metrics").body;
    auto at = m.find("\nnetworkd_dns_cache_entries ");
    return at == std::string::npos
             ? -1L
             : std::stol(
               m.substr(at + sizeof("\nnetworkd_dns_cache_entries ") - 1));
  };
  CHECK(entries() >= 3);
  REQUIRE(etcd.etcdctl("put /lain/networkd/config/dns_cache_size 0") == 0);
  REQUIRE(state_has("\"cache_size\":0,"));
  CHECK(entries() == 0);
  CHECK(short_answer(d, "d.knob.test") == "10.7.7.9\n");
  CHECK(entries() == 0);
  // Deleted: both return to their defaults.
  REQUIRE(etcd.etcdctl("del /lain/networkd/config/dns_max_ttl") == 0);
  REQUIRE(etcd.etcdctl("del /lain/networkd/config/dns_cache_size") == 0);
  REQUIRE(state_has("\"cache_size\":20000,"));
  REQUIRE(state_has("\"max_ttl\":86400,"));
  CHECK(answer_ttl(d, "e.knob.test") > 200);
  CHECK(entries() >= 1);
}

TEST_CASE("a bad value for a domain keeps its last good answer",
          "[dns][daemon]") {
  etcd_server etcd;
  daemon_process d{etcd.endpoint()};
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 10s));
  REQUIRE(etcd.etcdctl("put /lain/config/domains/kept.lain "
                       "'{\"ips\":[\"10.5.5.5\"]}'")
          == 0);
  REQUIRE(wait_until(
    [&] { return short_answer(d, "kept.lain") == "10.5.5.5\n"; }, 5s));
  REQUIRE(etcd.etcdctl("put /lain/config/domains/kept.lain '{\"ips\":'") == 0);
  REQUIRE(wait_until(
    [&] {
      return d.get("/v1/state").body.find("/lain/config/domains/kept.lain")
             != std::string::npos;
    },
    5s));
  CHECK(short_answer(d, "kept.lain") == "10.5.5.5\n");
  // A good value again replaces it.
  REQUIRE(etcd.etcdctl("put /lain/config/domains/kept.lain "
                       "'{\"ips\":[\"10.5.5.6\"]}'")
          == 0);
  REQUIRE(wait_until(
    [&] { return short_answer(d, "kept.lain") == "10.5.5.6\n"; }, 5s));
}

TEST_CASE("old template flags start the daemon with their meaning of today "
          "and one warning each",
          "[dns][daemon]") {
  etcd_server etcd;
  temp_dir dir{"networkd-old-flags"};
  auto resolv = dir.file("resolv.conf");
  write_file(resolv, "nameserver 127.0.0.53\n");
  auto port = free_port();
  // The later flags win over the fixture's own -godns.addr/--resolv-conf.
  daemon_process d{etcd.endpoint(),
                   {"--dnsmasq", "--resolv.conf=" + resolv,
                    "-godns.addr=:" + std::to_string(port)}};
  REQUIRE(wait_until([&] { return d.get("/readyz").status == 200; }, 10s));
  REQUIRE(etcd.etcdctl("put /lain/config/domains/old.lain "
                       "'{\"ips\":[\"10.4.4.5\"],\"type\":\"\"}'")
          == 0);
  // ":PORT" listens on every address; loopback is answered.
  std::string out;
  REQUIRE(wait_until(
    [&] {
      sh("dig @127.0.0.1 -p " + std::to_string(port)
           + " +short +tries=1 +time=1 old.lain",
         &out);
      return out == "10.4.4.5\n";
    },
    5s, 20ms));
  CHECK(sh("ss -lnu | grep -q '0.0.0.0:" + std::to_string(port) + " '") == 0);
  // --resolv.conf names the file the guardian keeps, with 127.0.0.1 first.
  CHECK(wait_until(
    [&] { return read_file(resolv).rfind("nameserver 127.0.0.1\n", 0) == 0; },
    5s));
  auto log = d.log();
  CHECK(log.find("flag -dnsmasq ignored") != std::string::npos);
  CHECK(log.find("flag -resolv.conf is the old name of --resolv-conf")
        != std::string::npos);
  CHECK(log.find("is read as 0.0.0.0:" + std::to_string(port))
        != std::string::npos);
}
