// SPDX-License-Identifier: MIT
#include "tests/support/dnsmasq.hpp"

#include <stdexcept>
#include <vector>

namespace networkd::test {

dnsmasq_upstream::dnsmasq_upstream(const std::string& ip, uint16_t port_,
                                   const std::string& domain,
                                   const std::string& addr, uint32_t ttl)
    : port(port_) {
  proc = std::make_unique<process>(
    std::vector<std::string>{"dnsmasq", "--keep-in-foreground", "--no-resolv",
                             "--no-hosts", "--conf-file=/dev/null",
                             "--bind-interfaces", "--listen-address=" + ip,
                             "--port=" + std::to_string(port), "--user=root",
                             "--pid-file=", "--address=/" + domain + "/" + addr,
                             "--local-ttl=" + std::to_string(ttl)},
    dir.file("dnsmasq.log"));
  std::string out;
  bool up = wait_until(
    [&] {
      sh("dig @" + ip + " -p " + std::to_string(port)
           + " +short +tries=1 +time=1 probe." + domain,
         &out);
      return out.find(addr) != std::string::npos;
    },
    std::chrono::seconds(10), std::chrono::milliseconds(50));
  if (!up)
    throw std::runtime_error("dnsmasq did not start: " + proc->log());
}

} // namespace networkd::test
