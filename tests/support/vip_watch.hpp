// SPDX-License-Identifier: MIT
// Observers for floating addresses in a namespace lab: which namespaces hold
// an address (netlink dumps in every namespace, about every millisecond) and
// who claims it over ARP (an AF_PACKET capture in an observer namespace).
// Both record with timestamps on their own threads, independent of networkd.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/netns.hpp"

namespace networkd::test {

using lab_clock = std::chrono::steady_clock;

/// Samples on its own thread whether each namespace holds the IPv4 address
/// `ip` on any interface: one RTM_GETADDR dump per namespace per round, a
/// round every `period`. A round looks at every namespace within a fraction
/// of a millisecond; "two holders at once" means two in one round.
class address_sampler {
public:
  address_sampler(std::vector<const netns*> nodes, std::string ip,
                  std::chrono::microseconds period
                  = std::chrono::microseconds{1000});
  ~address_sampler();
  address_sampler(const address_sampler&) = delete;
  address_sampler& operator=(const address_sampler&) = delete;

  /// A node started or stopped holding the address (the first round
  /// reports every node that holds it).
  struct change {
    lab_clock::time_point at; ///< when that node's dump was taken
    uint64_t round = 0;
    size_t node = 0;
    bool held = false;
  };
  /// A round in which more than one node held the address.
  struct overlap {
    lab_clock::time_point at;
    uint64_t round = 0;
    std::vector<size_t> holders;
  };

  std::vector<change> changes() const;
  /// The first overlapping rounds (at most 20 kept) and how many there were.
  std::vector<overlap> overlaps() const;
  uint64_t overlap_rounds() const;
  uint64_t rounds() const;
  /// Whether node i held the address in the last round.
  bool held(size_t i) const;
  /// Whether node i held it at any round with time in [from, to].
  bool held_between(size_t i, lab_clock::time_point from,
                    lab_clock::time_point to) const;
  /// Longest time between the starts of two consecutive rounds, and when
  /// the later of the two started. The kernel serialises address dumps with
  /// link changes and namespace teardown (rtnl), so a busy host stalls
  /// rounds now and then.
  std::chrono::microseconds max_round_gap() const;
  lab_clock::time_point max_round_gap_at() const;
  /// Blocks until a round that started after this call has finished (so
  /// what the sampler says afterwards covers "now"); false on timeout.
  bool sync(std::chrono::milliseconds deadline
            = std::chrono::milliseconds{2000}) const;
  /// Failures of the sampling itself ("" when none).
  std::string error() const;
  /// The changes as text, times in ms relative to t0, nodes by `names`.
  std::string timeline(lab_clock::time_point t0,
                       const std::vector<std::string>& names) const;

private:
  void loop();

  std::string ip_;
  std::vector<int> fds_;
  std::chrono::microseconds period_;
  mutable std::mutex mtx_;
  std::vector<char> held_;
  std::vector<change> changes_;
  std::vector<overlap> overlaps_;
  uint64_t overlap_rounds_ = 0;
  std::atomic<uint64_t> rounds_{0};
  std::chrono::microseconds max_gap_{0};
  lab_clock::time_point max_gap_at_{};
  std::string error_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

/// Captures ARP on `ifname` inside `ns` and keeps every packet whose sender
/// protocol address is `ip`: each one tells the hosts on the segment "ip is
/// at this MAC" (gratuitous requests and replies, answers to requests).
class arp_claims {
public:
  arp_claims(const netns& ns, const std::string& ifname, std::string ip);
  ~arp_claims();
  arp_claims(const arp_claims&) = delete;
  arp_claims& operator=(const arp_claims&) = delete;

  struct claim {
    lab_clock::time_point at;
    std::string mac; ///< sender hardware address, "aa:bb:..."
    bool reply = false;
  };
  std::vector<claim> claims() const;
  /// Failures of the capture itself ("" when none).
  std::string error() const;

private:
  void loop();

  uint32_t ip_ = 0;
  int fd_ = -1;
  mutable std::mutex mtx_;
  std::vector<claim> claims_;
  std::string error_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
};

} // namespace networkd::test
