// SPDX-License-Identifier: MIT
// A throwaway PKI for TLS tests, made with the openssl command at test
// time in a temp dir: a CA, a server certificate it signed for 127.0.0.1,
// a client certificate it signed, and a second CA that signed nothing.
#pragma once

#include <string>

#include "tests/support/etcd_fixture.hpp"
#include "tests/support/util.hpp"

namespace networkd::test {

class test_pki {
public:
  /// Makes every file (throws with openssl's output when it fails).
  test_pki();

  std::string file(const std::string& name) const { return dir_.file(name); }
  std::string ca() const { return file("ca.pem"); }
  std::string other_ca() const { return file("other-ca.pem"); }
  std::string client_cert() const { return file("client.pem"); }
  std::string client_key() const { return file("client-key.pem"); }

  /// etcd's TLS with this CA; with `client_certs`, etcd also wants a
  /// client certificate this CA signed.
  etcd_tls server(bool client_certs) const;

private:
  temp_dir dir_{"networkd-pki"};
};

} // namespace networkd::test
