// SPDX-License-Identifier: MIT
// IPv4 addresses of an interface over rtnetlink (libmnl): add, remove, list.
#pragma once

#include "net/base/result.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace networkd::netlink {

namespace detail {
struct rtnl_socket;
} // namespace detail

/// The kernel's "forever" for address lifetimes.
inline constexpr uint32_t infinite_lifetime = 0xffffffffu;

/// One IPv4 address of an interface as the kernel reports it.
struct address_info {
  std::string address; ///< dotted quad
  uint8_t prefix = 0;
  int ifindex = 0;
  uint32_t valid_lft = infinite_lifetime;     ///< seconds left
  uint32_t preferred_lft = infinite_lifetime; ///< seconds left
  uint32_t flags = 0;                         ///< IFA_F_* bits
  bool permanent() const { return valid_lft == infinite_lifetime; }
};

/// Adds, removes and lists the addresses of an interface. The effect behind
/// a VIP's address; one real implementation (rtnl_address_manager).
class address_manager {
public:
  virtual ~address_manager() = default;

  /// Puts `ip`/32 on `ifname` with preferred lifetime 0 (never chosen as a
  /// source address) and a valid lifetime of `valid_lft` seconds (>= 1, or
  /// infinite_lifetime), after which the kernel removes it by itself. When
  /// the address is already there its lifetimes are replaced: call again
  /// to extend.
  virtual result<unit> add(const std::string& ifname, const std::string& ip,
                           uint32_t valid_lft)
    = 0;

  /// add() for each of `ips`; returns the ones that failed, each with its
  /// failure. The rtnetlink manager sends them as batches of requests, a
  /// few system calls for all (the lifetimes of every held VIP are renewed
  /// together, with each lease renewal).
  virtual std::vector<std::pair<std::string, failure>>
  add_all(const std::string& ifname, const std::vector<std::string>& ips,
          uint32_t valid_lft) {
    std::vector<std::pair<std::string, failure>> failed;
    for (auto& ip : ips)
      if (auto r = add(ifname, ip, valid_lft); !r)
        failed.emplace_back(ip, r.error());
    return failed;
  }

  /// Removes `ip`/32 from `ifname`: true when it was there, false when not.
  virtual result<bool> remove(const std::string& ifname, const std::string& ip)
    = 0;

  /// remove() for each of `ips`, the results in their order; batched like
  /// add_all (a SIGTERM with thousands of VIPs, or as many released at
  /// once, costs a few system calls).
  virtual std::vector<result<bool>>
  remove_all(const std::string& ifname, const std::vector<std::string>& ips) {
    std::vector<result<bool>> out;
    out.reserve(ips.size());
    for (auto& ip : ips)
      out.push_back(remove(ifname, ip));
    return out;
  }

  /// Every IPv4 address of `ifname`.
  virtual result<std::vector<address_info>> list(const std::string& ifname) = 0;
};

/// address_manager over an rtnetlink socket. The socket belongs to the
/// network namespace of the thread that called open(); every call acts in
/// that namespace, whatever thread makes it. Calls are serialised.
class rtnl_address_manager final : public address_manager {
public:
  static result<std::unique_ptr<rtnl_address_manager>> open();
  ~rtnl_address_manager() override;

  result<unit> add(const std::string& ifname, const std::string& ip,
                   uint32_t valid_lft) override;
  std::vector<std::pair<std::string, failure>>
  add_all(const std::string& ifname, const std::vector<std::string>& ips,
          uint32_t valid_lft) override;
  result<bool> remove(const std::string& ifname,
                      const std::string& ip) override;
  std::vector<result<bool>>
  remove_all(const std::string& ifname,
             const std::vector<std::string>& ips) override;
  result<std::vector<address_info>> list(const std::string& ifname) override;

  /// The index of `ifname` (failure "no_device" when there is none).
  result<int> index_of(const std::string& ifname);

private:
  explicit rtnl_address_manager(std::unique_ptr<detail::rtnl_socket> sock);
  result<int> index_locked(const std::string& ifname);
  /// add_all (`add`, with `valid_lft`) or remove_all: one request per
  /// address, 64 to a datagram; each address's outcome in its place.
  std::vector<result<bool>> each(const std::string& ifname,
                                 const std::vector<std::string>& ips, bool add,
                                 uint32_t valid_lft);
  std::mutex mtx_;
  std::unique_ptr<detail::rtnl_socket> sock_;
};

/// What address_watch reports.
struct address_event {
  enum class kind {
    added,   ///< added, or its lifetimes or flags changed
    removed, ///< deleted by anyone, or expired
    overrun, ///< the kernel dropped events: list again to resync
  };
  kind what = kind::added;
  address_info address; ///< empty for overrun
};

/// A socket joined to RTNLGRP_IPV4_IFADDR that reports address changes of
/// one interface (or of all). Poll fd() and call read(0ms), or call read()
/// with a timeout on a thread of its own. Like rtnl_address_manager, it
/// watches the namespace of the thread that opened it.
class address_watch {
public:
  /// `ifname` empty: every interface.
  static result<std::unique_ptr<address_watch>> open(const std::string& ifname
                                                     = {});
  ~address_watch();
  address_watch(const address_watch&) = delete;
  address_watch& operator=(const address_watch&) = delete;

  /// Readable when events are waiting.
  int fd() const;

  /// Waits up to `timeout` for events and returns every event already
  /// queued (empty on timeout).
  result<std::vector<address_event>> read(std::chrono::milliseconds timeout);

private:
  address_watch(std::unique_ptr<detail::rtnl_socket> sock, int ifindex);
  std::unique_ptr<detail::rtnl_socket> sock_;
  int ifindex_ = 0;
};

} // namespace networkd::netlink
