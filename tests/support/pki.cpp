// SPDX-License-Identifier: MIT
#include "tests/support/pki.hpp"

#include <stdexcept>

namespace networkd::test {

namespace {

std::string new_key(const std::string& out) {
  return "openssl genpkey -algorithm EC -pkeyopt "
         "ec_paramgen_curve:prime256v1 -out "
         + out;
}

} // namespace

test_pki::test_pki() {
  auto ca = [&](const std::string& name) {
    return new_key(file(name + "-key.pem")) + " && openssl req -x509 -new -key "
           + file(name + "-key.pem") + " -out " + file(name + ".pem")
           + " -days 2 -subj /CN=" + name;
  };
  // A certificate for `name` signed by ca.pem with the extensions in
  // `ext` (a file).
  auto leaf = [&](const std::string& name, const std::string& ext) {
    return new_key(file(name + "-key.pem")) + " && openssl req -new -key "
           + file(name + "-key.pem") + " -out " + file(name + ".csr")
           + " -subj /CN=" + name + " && openssl x509 -req -in "
           + file(name + ".csr") + " -CA " + file("ca.pem") + " -CAkey "
           + file("ca-key.pem") + " -CAcreateserial -days 2 -extfile " + ext
           + " -out " + file(name + ".pem");
  };
  write_file(file("server.ext"), "subjectAltName=IP:127.0.0.1\n"
                                 "extendedKeyUsage=serverAuth,clientAuth\n");
  write_file(file("client.ext"), "extendedKeyUsage=clientAuth\n");
  std::string out;
  auto cmd = "set -e; " + ca("ca") + " && " + ca("other-ca") + " && "
             + leaf("server", file("server.ext")) + " && "
             + leaf("client", file("client.ext"));
  if (sh("( " + cmd + " ) 2>&1", &out) != 0)
    throw std::runtime_error("openssl failed: " + out);
}

etcd_tls test_pki::server(bool client_certs) const {
  return {file("server.pem"), file("server-key.pem"), ca(),
          client_certs ? ca() : std::string{}};
}

} // namespace networkd::test
