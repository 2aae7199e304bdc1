// SPDX-License-Identifier: MIT
#include "dns/query_log.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dns/wire.hpp"
#include "net/base/log.hpp"

namespace networkd::dns {

bool query_log::admit(uint64_t now_ms, uint64_t& skipped) {
  auto rate = rate_.load(std::memory_order_relaxed);
  if (rate == 0)
    return false;
  auto second = now_ms / 1000;
  auto seen = second_.load(std::memory_order_relaxed);
  // The first thread into a new second starts its count.
  if (seen != second
      && second_.compare_exchange_strong(seen, second,
                                         std::memory_order_relaxed))
    used_.store(0, std::memory_order_relaxed);
  if (used_.fetch_add(1, std::memory_order_relaxed) >= rate) {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    return false;
  }
  skipped = skipped_.exchange(0, std::memory_order_relaxed);
  return true;
}

std::string query_log::line(std::string_view client, std::string_view name,
                            uint16_t qtype, uint16_t rcode, const char* source,
                            uint64_t latency_us, uint64_t skipped) {
  std::string out = "dns-query client=";
  out += client;
  out += " name=";
  out += name.empty() ? "." : name;
  out += " type=" + type_name(qtype) + " rcode=" + rcode_name(rcode)
         + " source=" + source + " latency_us=" + std::to_string(latency_us);
  if (skipped > 0)
    out += " (" + std::to_string(skipped) + " lines left out over the rate)";
  return out;
}

void query_log::write(const sockaddr* client, std::string_view wire_name,
                      uint16_t qtype, uint16_t rcode, const char* source,
                      uint64_t latency_us, uint64_t now_ms) {
  uint64_t skipped = 0;
  if (!admit(now_ms, skipped))
    return;
  char addr[INET6_ADDRSTRLEN] = "?";
  if (client != nullptr && client->sa_family == AF_INET)
    inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(client)->sin_addr,
              addr, sizeof(addr));
  else if (client != nullptr && client->sa_family == AF_INET6)
    inet_ntop(AF_INET6,
              &reinterpret_cast<const sockaddr_in6*>(client)->sin6_addr, addr,
              sizeof(addr));
  std::string name;
  if (!wire_name.empty())
    name = text_name(wire_name);
  NWD_LOG_INFO("dns", "{}",
               line(addr, name, qtype, rcode, source, latency_us, skipped));
}

} // namespace networkd::dns
