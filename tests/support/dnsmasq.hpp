// SPDX-License-Identifier: MIT
// A real dnsmasq as an upstream DNS server for tests: on ip:port, it
// answers every name under `domain` with `addr` (TTL `ttl`); stopped and
// its directory removed when the object goes.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "tests/support/util.hpp"

namespace networkd::test {

struct dnsmasq_upstream {
  /// Starts it and waits until it answers (throws after 10 s).
  dnsmasq_upstream(const std::string& ip, uint16_t port,
                   const std::string& domain, const std::string& addr,
                   uint32_t ttl = 300);

  temp_dir dir{"networkd-dnsmasq"};
  std::unique_ptr<process> proc;
  uint16_t port;
};

} // namespace networkd::test
