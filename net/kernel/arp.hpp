// SPDX-License-Identifier: MIT
// Gratuitous ARP and ARP sightings over AF_PACKET sockets.
#pragma once

#include "net/base/result.hpp"

#include <array>
#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_set>
#include <vector>

namespace networkd::arp {

using mac_address = std::array<uint8_t, 6>;

/// "aa:bb:cc:dd:ee:ff".
std::string to_string(const mac_address& mac);

/// Tells the segment who has an address. The effect behind a VIP's
/// announcement; one real implementation (packet_announcer). Scheduling of
/// repeats is the caller's: every call sends at once.
class announcer {
public:
  virtual ~announcer() = default;

  /// Sends `count` gratuitous ARP requests and `count` gratuitous ARP
  /// replies for `ip` (alternating), broadcast from the MAC of `ifname`.
  /// Request: sender = target = ip, target MAC 0 (RFC 5227 announcement).
  /// Reply: sender = target = ip, target MAC = own MAC (what Linux takes
  /// as a gratuitous reply).
  virtual result<unit> announce(const std::string& ifname,
                                const std::string& ip, int count)
    = 0;

  /// Sends one ARP probe for `ip` (sender IP 0.0.0.0, RFC 5227): whoever
  /// holds `ip` answers to our MAC, which an arp_watch on `ifname` sees.
  virtual result<unit> probe(const std::string& ifname, const std::string& ip)
    = 0;
};

/// announcer over an AF_PACKET socket opened in the network namespace of
/// the thread that calls open(). Calls are serialised.
class packet_announcer final : public announcer {
public:
  static result<std::unique_ptr<packet_announcer>> open();
  ~packet_announcer() override;

  result<unit> announce(const std::string& ifname, const std::string& ip,
                        int count) override;
  result<unit> probe(const std::string& ifname, const std::string& ip) override;

  /// The hardware address of `ifname`.
  result<mac_address> mac_of(const std::string& ifname);

private:
  explicit packet_announcer(int fd) : fd_(fd) {}
  std::mutex mtx_;
  int fd_ = -1;
};

/// One ARP packet seen on the wire.
struct sighting {
  std::string sender_ip;
  mac_address sender_mac{};
  std::string target_ip;
  uint16_t op = 0; ///< 1 request, 2 reply
};

/// Reports ARP packets arriving on an interface (our own outgoing packets
/// are skipped) whose sender IP is one of a set: who claims our VIPs. Poll
/// fd() and call read(0ms), or read() with a timeout on a thread of its
/// own. Opened in the calling thread's network namespace.
class arp_watch {
public:
  static result<std::unique_ptr<arp_watch>> open(const std::string& ifname);
  ~arp_watch();
  arp_watch(const arp_watch&) = delete;
  arp_watch& operator=(const arp_watch&) = delete;

  /// Only packets whose sender IP is in `ips` are reported; an empty set
  /// (the start) reports every ARP packet. Safe from any thread.
  void set_filter(const std::vector<std::string>& ips);
  /// Adds one address to the filter (a filter of only it, at the start).
  void filter_add(const std::string& ip);
  /// Removes one address from the filter; once none is left, no packet
  /// passes.
  void filter_remove(const std::string& ip);

  int fd() const { return fd_; }

  /// Waits up to `timeout` for packets and returns those already queued
  /// that pass the filter (empty on timeout).
  result<std::vector<sighting>> read(std::chrono::milliseconds timeout);

private:
  explicit arp_watch(int fd) : fd_(fd) {}
  int fd_ = -1;
  /// Guards the filter only, held per packet: a filter change never waits
  /// for a burst of packets being drained.
  std::mutex mtx_;
  bool filtering_ = false; ///< false: every packet passes
  std::unordered_set<uint32_t> filter_;
};

} // namespace networkd::arp
