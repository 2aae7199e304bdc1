// SPDX-License-Identifier: MIT
// README claims about bad values, end to end against the networkd binary
// and a real etcd: "A bad value for a key that had a good one keeps the
// last good one" for domain_servers keys, and for knobs beyond the DNS
// ones (nat_audit_s: applied at once; lease_ttl: used at the next grant).
// Each rejection shows in /v1/state under the supervisor's `rejected` and
// networkd stays ready.
#include <catch2/catch.hpp>

#include <memory>

#include "tests/support/daemon.hpp"
#include "tests/support/dnsmasq.hpp"
#include "tests/support/etcd_fixture.hpp"

using namespace networkd::test;

namespace {

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

std::string short_answer(const daemon_process& d, const std::string& name) {
  std::string out;
  sh("dig @127.0.0.1 -p " + std::to_string(d.dns_port())
       + " +tries=1 +time=2 +short " + name + " A",
     &out);
  return out;
}

/// The value of `"name":` in a JSON text after `from` (the first match),
/// as raw text up to the next ',' or '}'; "" when absent.
std::string field_after(const std::string& json, const std::string& from,
                        const std::string& name) {
  auto at = json.find(from);
  if (at == std::string::npos)
    return {};
  at = json.find("\"" + name + "\":", at);
  if (at == std::string::npos)
    return {};
  at += name.size() + 3;
  auto end = json.find_first_of(",}", at);
  return json.substr(at, end - at);
}

/// The rejected entry of `key` in /v1/state ("" when not rejected).
std::string rejection(const daemon_process& d, const std::string& key) {
  auto body = d.get("/v1/state").body;
  auto at = body.find("{\"key\":\"" + key + "\",\"code\":");
  if (at == std::string::npos)
    return {};
  return body.substr(at, body.find('}', at) - at + 1);
}

} // namespace

TEST_CASE("a bad domain_servers or knob value keeps the last good one in "
          "force while networkd stays ready",
          "[daemon][readme]") {
  // Answers every name under corp; reached only through the etcd domain
  // server (resolv.conf names 127.0.0.53 only, which is never used).
  auto corp_port = free_port();
  dnsmasq_upstream corp{"127.0.0.81", corp_port, "corp", "10.8.1.1", 0};
  etcd_server etcd;
  REQUIRE(etcd.etcdctl("put /lain/networkd/config/nat_audit_s 7") == 0);
  REQUIRE(etcd.etcdctl("put /lain/networkd/config/lease_ttl 4") == 0);
  daemon_process d{etcd.endpoint()};
  auto ready = [&] { return d.get("/readyz").status == 200; };
  REQUIRE(wait_until(ready, 10s));
  auto state = [&] { return d.get("/v1/state").body; };

  // -- domain_servers: good, then bad ----------------------------------------
  const std::string servers_key = "/lain/config/domain_servers/corp";
  REQUIRE(etcd.etcdctl("put " + servers_key + " '{\"servers\":[\"127.0.0.81#"
                       + std::to_string(corp_port) + "\"]}'")
          == 0);
  REQUIRE(wait_until([&] { return short_answer(d, "a.corp") == "10.8.1.1\n"; },
                     10s, 50ms));
  REQUIRE(
    etcd.etcdctl("put " + servers_key + " '{\"servers\":[\"not-an-address\"]}'")
    == 0);
  REQUIRE(wait_until([&] { return !rejection(d, servers_key).empty(); }, 5s));
  CHECK(contains(rejection(d, servers_key), "not-an-address"));
  // A name never asked before (not from the cache): still forwarded to the
  // last good server.
  CHECK(short_answer(d, "b.corp") == "10.8.1.1\n");
  CHECK(contains(d.get("/v1/dns/config").body,
                 "server=/corp/127.0.0.81#" + std::to_string(corp_port)));
  CHECK(ready());

  // -- nat_audit_s: in force in the NAT manager at once ----------------------
  const std::string audit_key = "/lain/networkd/config/nat_audit_s";
  auto audit_every
    = [&] { return field_after(state(), "\"name\":\"nat\"", "audit_every_s"); };
  REQUIRE(wait_until([&] { return audit_every() == "7"; }, 5s));
  REQUIRE(etcd.etcdctl("put " + audit_key + " 9999") == 0); // over 3600
  REQUIRE(wait_until([&] { return !rejection(d, audit_key).empty(); }, 5s));
  CHECK(audit_every() == "7");
  CHECK(contains(state(), "\"nat_audit_s\":7"));
  CHECK(ready());
  // A good value again is applied and clears the rejection.
  REQUIRE(etcd.etcdctl("put " + audit_key + " 11") == 0);
  REQUIRE(wait_until([&] { return audit_every() == "11"; }, 5s));
  CHECK(rejection(d, audit_key).empty());

  // -- lease_ttl: the last good value is the one the next grant uses ---------
  const std::string ttl_key = "/lain/networkd/config/lease_ttl";
  auto lease = [&] { return field_after(state(), "\"lease\":{", "id"); };
  auto ttl = [&] { return field_after(state(), "\"lease\":{", "ttl"); };
  REQUIRE(wait_until([&] { return ttl() == "4"; }, 5s));
  REQUIRE(etcd.etcdctl("put " + ttl_key + " 1") == 0); // under 2
  REQUIRE(wait_until([&] { return !rejection(d, ttl_key).empty(); }, 5s));
  CHECK(ready());
  // The lease goes (revoked by hand): the new grant takes the TTL in force.
  auto first = lease();
  REQUIRE(first.size() > 2);
  REQUIRE(etcd.etcdctl("lease revoke " + first.substr(1, first.size() - 2))
          == 0);
  REQUIRE(wait_until(
    [&] {
      auto now = lease();
      return now.size() > 2 && now != first && now != "\"0\"" && ready();
    },
    15s, 50ms));
  CHECK(ttl() == "4");
  std::string out;
  etcd.etcdctl("lease list", &out);
  INFO(out);
  auto id = lease();
  std::string ttl_out;
  REQUIRE(
    etcd.etcdctl("lease timetolive " + id.substr(1, id.size() - 2), &ttl_out)
    == 0);
  INFO(ttl_out);
  CHECK(contains(ttl_out, "granted with TTL(4s)"));
  // Every rejection stayed visible meanwhile, and networkd is ready.
  CHECK_FALSE(rejection(d, servers_key).empty());
  CHECK_FALSE(rejection(d, ttl_key).empty());
  CHECK(short_answer(d, "c.corp") == "10.8.1.1\n");
  CHECK(ready());
}
