// SPDX-License-Identifier: MIT
// etcd TLS end to end (README, "Command line": --etcd-ca, --etcd-cert,
// --etcd-key; TLS failures logged with their real reason): a real etcd
// that serves only TLS and wants client certificates, certificates made
// with openssl at test time, the networkd binary with the TLS flags.
#include <catch2/catch.hpp>

#include "tests/support/daemon.hpp"
#include "tests/support/etcd_fixture.hpp"
#include "tests/support/pki.hpp"

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

} // namespace

TEST_CASE("networkd works over etcd TLS with a client certificate and says "
          "why when the CA or the certificate is wrong",
          "[daemon][tls]") {
  test_pki pki;
  etcd_server etcd{{}, pki.server(true)};
  auto endpoint = "https://" + etcd.endpoint();
  // The three daemons start together: their start-ups overlap.
  daemon_process good{endpoint,
                      {"--etcd-ca=" + pki.ca(),
                       "--etcd-cert=" + pki.client_cert(),
                       "--etcd-key=" + pki.client_key()},
                      "tls-node"};
  daemon_process wrong_ca{endpoint,
                          {"--etcd-ca=" + pki.other_ca(),
                           "--etcd-cert=" + pki.client_cert(),
                           "--etcd-key=" + pki.client_key()},
                          "wrong-ca-node"};
  daemon_process no_cert{endpoint, {"--etcd-ca=" + pki.ca()}, "no-cert-node"};

  // Good: ready, its lease granted over TLS, and a key written after the
  // first read reaches DNS through the watch.
  REQUIRE(wait_until([&] { return good.get("/readyz").status == 200; }, 15s));
  std::string leases;
  REQUIRE(etcd.etcdctl("lease list", &leases) == 0);
  CHECK(contains(leases, "found 1 leases"));
  REQUIRE(etcd.etcdctl("put /lain/config/domains/tls.lain "
                       "'{\"ips\":[\"10.4.4.9\"]}'")
          == 0);
  CHECK(wait_until(
    [&] { return short_answer(good, "tls.lain") == "10.4.4.9\n"; }, 5s, 20ms));
  // It writes over TLS too: its leader candidate key, on its lease.
  std::string candidates;
  REQUIRE(wait_until(
    [&] {
      etcd.etcdctl("get --prefix --print-value-only /lain/networkd/leader/",
                   &candidates);
      return contains(candidates, "tls-node");
    },
    5s, 50ms));

  // A CA that did not sign etcd's certificate: never ready, and the log
  // and the state say why.
  REQUIRE(wait_until(
    [&] {
      return contains(wrong_ca.log(), "cannot connect to " + etcd.endpoint()
                                        + ": certificate verify failed");
    },
    10s, 50ms));
  auto r = wrong_ca.get("/readyz");
  CHECK(r.status == 503);
  CHECK(contains(r.body, "first etcd read pending"));
  // /readyz says why, once a read failed.
  CHECK(wait_until(
    [&] {
      return contains(wrong_ca.get("/readyz").body,
                      "certificate verify failed");
    },
    10s, 50ms));
  // The watches show it as their last error in /v1/state once a read
  // failed.
  CHECK(wait_until(
    [&] {
      return contains(wrong_ca.get("/v1/state").body,
                      "certificate verify failed: unable to get local issuer");
    },
    10s, 50ms));

  // No client certificate where etcd wants one: the same, with the
  // handshake's reason.
  REQUIRE(
    wait_until([&] { return contains(no_cert.log(), "TLS handshake failed"); },
               10s, 50ms));
  CHECK(no_cert.get("/readyz").status == 503);

  // Neither wrote anything: etcd holds the good node's lease only.
  REQUIRE(etcd.etcdctl("lease list", &leases) == 0);
  CHECK(contains(leases, "found 1 leases"));
  CHECK(good.get("/readyz").status == 200);
}
