// SPDX-License-Identifier: MIT
// The etcd client's session: login backoff (pure), logging in again after
// etcd forgot the token, few logins with a wrong password, and the TLS
// reason when a connection fails.
#include <catch2/catch.hpp>

#include "net/etcd/etcd.hpp"
#include "tests/support/etcd_fixture.hpp"

using namespace networkd;
using namespace networkd::test;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;

etcd::client_config config_for(const std::string& endpoint) {
  etcd::client_config cfg;
  cfg.endpoints = {endpoint};
  // etcd checks passwords with bcrypt: slow on a loaded machine.
  cfg.call_timeout = 5000ms;
  cfg.dial_timeout = 300ms;
  return cfg;
}

bool contains(const std::string& text, const std::string& needle) {
  return text.find(needle) != std::string::npos;
}

/// Authenticate requests etcd has received (its gRPC server metrics).
double logins_seen_by(const etcd_server& srv) {
  return srv.metric("grpc_server_started_total{",
                    {"grpc_method=\"Authenticate\""});
}

/// A throwaway CA, a server certificate it signed for 127.0.0.1, and a
/// second CA that signed nothing, made with the openssl command.
struct test_pki {
  temp_dir dir{"networkd-pki"};

  test_pki() {
    auto key = [](const std::string& out) {
      return "openssl genpkey -algorithm EC -pkeyopt "
             "ec_paramgen_curve:prime256v1 -out "
             + out;
    };
    auto ca = [&](const std::string& name) {
      return key(file(name + "-key.pem")) + " && openssl req -x509 -new -key "
             + file(name + "-key.pem") + " -out " + file(name + ".pem")
             + " -days 2 -subj /CN=" + name;
    };
    write_file(file("san.ext"), "subjectAltName=IP:127.0.0.1\n");
    std::string out;
    auto cmd = "set -e; " + ca("ca") + " && " + ca("other-ca") + " && "
               + key(file("server-key.pem")) + " && openssl req -new -key "
               + file("server-key.pem") + " -out " + file("server.csr")
               + " -subj /CN=etcd && openssl x509 -req -in "
               + file("server.csr") + " -CA " + file("ca.pem") + " -CAkey "
               + file("ca-key.pem") + " -CAcreateserial -days 2 -extfile "
               + file("san.ext") + " -out " + file("server.pem");
    if (sh(cmd, &out) != 0)
      throw std::runtime_error("openssl failed: " + out);
  }

  std::string file(const std::string& name) const { return dir.file(name); }
  etcd_tls server() const {
    return {file("server.pem"), file("server-key.pem"), file("ca.pem"), ""};
  }
};

} // namespace

// -- pure policy --------------------------------------------------------------

TEST_CASE("login backoff doubles from 1 s and stops at 30 s plus jitter") {
  using ms = std::chrono::milliseconds;
  CHECK(etcd::login_backoff(0, 0.5) == ms(0));
  CHECK(etcd::login_backoff(1, 0.0) == ms(1000));
  CHECK(etcd::login_backoff(1, 0.999) < ms(1200));
  CHECK(etcd::login_backoff(2, 0.0) == ms(2000));
  CHECK(etcd::login_backoff(3, 0.0) == ms(4000));
  CHECK(etcd::login_backoff(5, 0.0) == ms(16000));
  CHECK(etcd::login_backoff(6, 0.0) == ms(30000));
  CHECK(etcd::login_backoff(1000, 0.0) == ms(30000));
  // Jitter only ever adds: never more than one login every 30 s.
  CHECK(etcd::login_backoff(6, 0.5) == ms(33000));
  CHECK(etcd::login_backoff(1000, 0.999) < ms(36000));
  CHECK(etcd::login_backoff(1000, 7.0) == ms(36000));
}

TEST_CASE("the login gate closes after a refusal and opens after the pause") {
  etcd::login_gate gate;
  steady::time_point t0{std::chrono::seconds(100)};
  CHECK(gate.open(t0));
  gate.refused(t0, 0.0, "bad password");
  CHECK(gate.failures == 1);
  CHECK(gate.last_error == "bad password");
  CHECK_FALSE(gate.open(t0));
  CHECK_FALSE(gate.open(t0 + 999ms));
  CHECK(gate.open(t0 + 1000ms));
  gate.refused(t0 + 1000ms, 0.0, "bad password");
  CHECK_FALSE(gate.open(t0 + 2999ms));
  CHECK(gate.open(t0 + 3000ms));
  for (int i = 0; i < 10; ++i)
    gate.refused(t0, 0.0, "bad password");
  CHECK_FALSE(gate.open(t0 + 29s));
  CHECK(gate.open(t0 + 30s));
  gate.succeeded();
  CHECK(gate.failures == 0);
  CHECK(gate.last_error.empty());
  CHECK(gate.open(t0));
}

TEST_CASE("token reasons are told apart from permission denied") {
  CHECK(etcd::is_token_reason("etcdserver: invalid auth token"));
  CHECK(etcd::is_token_reason(
    "rpc error: code = Unauthenticated desc = etcdserver: invalid auth token"));
  CHECK(etcd::is_token_reason("etcdserver: revision of auth store is old"));
  CHECK(etcd::is_token_reason("etcdserver: user name is empty"));
  CHECK_FALSE(etcd::is_token_reason("etcdserver: permission denied"));
  CHECK_FALSE(etcd::is_token_reason("etcdserver: mvcc: required revision "
                                    "has been compacted"));
}

// -- against etcd
// --------------------------------------------------------------

TEST_CASE("with auth on a watch keeps delivering puts after etcd restarts") {
  etcd_server srv;
  srv.enable_auth("rootpw");
  srv.add_user("networkd", "nwpw", "/lain/", "/lain/networkd/");
  auto cfg = config_for(srv.endpoint());
  cfg.user = "networkd";
  cfg.password = "nwpw";
  etcd::client c{cfg};
  REQUIRE(c.put("/lain/networkd/before", "1"));
  auto denied = c.put("/lain/config/x", "1");
  REQUIRE_FALSE(denied);
  CHECK(denied.error().code == "auth");
  CHECK(contains(denied.error().message, "permission denied"));

  watch_recorder rec;
  etcd::watcher w{c, "/lain/", rec.handler()};
  REQUIRE(wait_until(
    [&] { return w.status().state == etcd::watch_status::phase::watching; }));
  REQUIRE(srv.etcdctl("put /lain/config/one 1") == 0);
  REQUIRE(wait_until([&] { return rec.state().count("/lain/config/one"); }));

  // etcd forgets its simple tokens when it restarts.
  srv.stop();
  REQUIRE(wait_until(
    [&] { return w.status().state == etcd::watch_status::phase::retrying; }));
  srv.start();
  // Written as root by etcdctl: nothing else renews the watcher's token.
  REQUIRE(srv.etcdctl("put /lain/config/two 2") == 0);
  REQUIRE(srv.etcdctl("put /lain/networkd/three 3") == 0);
  auto arrived = wait_until(
    [&] {
      auto s = rec.state();
      return s.count("/lain/config/two") && s.count("/lain/networkd/three");
    },
    20s, 50ms);
  INFO("watch status: " << w.status().last_error);
  REQUIRE(arrived);
  CHECK(rec.check() == "");
  CHECK(rec.state()
        == std::map<std::string, std::string>{{"/lain/networkd/before", "1"},
                                              {"/lain/config/one", "1"},
                                              {"/lain/config/two", "2"},
                                              {"/lain/networkd/three", "3"}});
  // The limited user still writes where it may.
  REQUIRE(c.put("/lain/networkd/after", "4"));
  CHECK(c.stats().login_failures == 0);
}

TEST_CASE("a wrong password is tried only a few times in 10 s") {
  etcd_server srv;
  srv.enable_auth("rootpw");
  srv.add_user("networkd", "nwpw", "/lain/", "/lain/networkd/");
  auto cfg = config_for(srv.endpoint());
  cfg.user = "networkd";
  cfg.password = "wrong";
  auto before = logins_seen_by(srv);
  REQUIRE(before >= 0);

  etcd::client c{cfg};
  // What a running daemon does: watches that retry, plus calls in a loop.
  etcd::watcher w1{c, "/lain/config/", {}};
  etcd::watcher w2{c, "/lain/networkd/", {}};
  auto start = steady::now();
  int calls = 0;
  std::string last_error;
  while (steady::now() - start < 10s) {
    auto r = c.range("/lain/config/x");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == "auth");
    last_error = r.error().message;
    ++calls;
    // Paces the caller like the supervisor's retries; not a wait for a
    // condition.
    std::this_thread::sleep_for(50ms);
  }
  auto logins = logins_seen_by(srv) - before;
  auto stats = c.stats();
  INFO("calls " << calls << ", logins seen by etcd " << logins
                << ", by the client " << stats.logins << ", deferred "
                << stats.logins_deferred);
  CHECK(contains(last_error, "authentication failed"));
  CHECK(contains(w1.status().last_error, "authentication failed"));
  // 1 s, 2 s, 4 s, 8 s apart (+ up to 20 %): 4 logins in 10 s, 5 at most.
  CHECK(logins >= 3);
  CHECK(logins <= 5);
  CHECK(stats.logins == static_cast<uint64_t>(logins));
  CHECK(stats.login_failures == stats.logins);
  CHECK(stats.logins_deferred > 50);
}

TEST_CASE("a wrong CA is reported as a certificate problem") {
  test_pki pki;
  etcd_server srv{{}, pki.server()};
  auto cfg = config_for(srv.endpoint());
  cfg.ca_file = pki.file("ca.pem");
  {
    etcd::client good{cfg};
    REQUIRE(good.put("/t", "1"));
  }

  cfg.ca_file = pki.file("other-ca.pem");
  etcd::client bad{cfg};
  auto r = bad.range("/t");
  REQUIRE_FALSE(r);
  INFO(r.error().message);
  CHECK(r.error().code == "unavailable");
  CHECK(contains(r.error().message, "certificate verify failed"));
  CHECK(contains(r.error().message, "unable to get local issuer certificate"));

  etcd::watcher w{bad, "/", {}};
  REQUIRE(wait_until(
    [&] {
      return contains(w.status().last_error, "certificate verify failed");
    },
    10s, 50ms));
}

TEST_CASE("a server name that does not match is reported") {
  test_pki pki;
  etcd_server srv{{}, pki.server()};
  auto cfg = config_for(srv.endpoint());
  cfg.ca_file = pki.file("ca.pem");
  // The certificate is for 127.0.0.1, not for localhost.
  cfg.endpoints
    = {"localhost:" + srv.endpoint().substr(srv.endpoint().rfind(':') + 1)};
  etcd::client c{cfg};
  auto r = c.range("/t");
  REQUIRE_FALSE(r);
  INFO(r.error().message);
  CHECK(contains(r.error().message, "certificate verify failed"));
}

TEST_CASE("a stopped etcd is reported as connection refused") {
  etcd_server srv;
  auto cfg = config_for(srv.endpoint());
  etcd::client c{cfg};
  REQUIRE(c.put("/t", "1"));
  srv.stop();
  auto r = c.range("/t");
  REQUIRE_FALSE(r);
  INFO(r.error().message);
  CHECK(contains(r.error().message, "not connected"));
  CHECK(contains(r.error().message, "Connection refused"));
}

TEST_CASE("a server that wants a client certificate says so") {
  test_pki pki;
  auto tls = pki.server();
  tls.client_ca_file = pki.file("ca.pem");
  etcd_server srv{{}, tls};
  auto cfg = config_for(srv.endpoint());
  cfg.ca_file = pki.file("ca.pem");
  etcd::client c{cfg};
  auto r = c.range("/t");
  REQUIRE_FALSE(r);
  INFO(r.error().message);
  CHECK(contains(r.error().message, "TLS handshake failed"));
  CHECK(contains(r.error().message, "certificate"));

  // The server's own pair is one the CA signed: good enough as a client's.
  cfg.cert_file = pki.file("server.pem");
  cfg.key_file = pki.file("server-key.pem");
  etcd::client with_cert{cfg};
  CHECK(with_cert.put("/t", "1"));
}
