// SPDX-License-Identifier: MIT
// VIP DNAT as one nftables map in table `ip networkd`, written over netlink
// (libnftnl messages on libmnl): every change is one nftables transaction.
#pragma once

#include "net/base/result.hpp"
#include "net/kernel/nat.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

namespace networkd::nft {

/// The one table networkd owns (family ip) and what is in it; see
/// docs/nftables.md.
inline constexpr const char* table_name = "networkd";
inline constexpr const char* map_name = "vip_dnat";
inline constexpr const char* prerouting_chain = "prerouting";
inline constexpr const char* output_chain = "output";
/// Both chains: dstnat - 10, ahead of Docker's iptables-nft nat chains
/// (-100), so a VIP's port wins over a published port on any local address.
inline constexpr int32_t chain_priority = -110;
/// Comment on our two rules (how a read tells them from others').
inline constexpr const char* rule_comment = "networkd vip dnat";
/// The traffic counters: a set with the map's keys, a counter on each
/// element, looked up for every packet of a DNATed connection (both
/// directions) by a rule in each of two filter chains.
inline constexpr const char* traffic_set = "vip_traffic";
inline constexpr const char* traffic_pre_chain = "traffic_prerouting";
inline constexpr const char* traffic_out_chain = "traffic_output";
/// After every nat chain of these hooks (ours -110, iptables' -100), so
/// the first packet of a connection is already DNATed when it is counted.
inline constexpr int32_t traffic_priority = -90;
inline constexpr const char* traffic_comment = "networkd vip traffic";

/// Packets and bytes that went through one element of the map (nat
/// chains: new connections), or of the traffic set (every packet).
struct nft_counter {
  std::string vip;
  nat::protocol proto = nat::protocol::tcp;
  uint16_t port = 0;
  uint64_t packets = 0;
  uint64_t bytes = 0;
};

namespace detail {
struct nl_socket;
struct table_view;

/// The map elements in a buffer of netlink messages as the kernel answers
/// a dump of our map (NEWSETELEM; anything else skipped): the parser every
/// such answer goes through, open for tests and fuzzing. `set`: the map,
/// or traffic_set.
std::vector<nft_counter> parse_counters(const void* data, size_t size,
                                        const char* set = map_name);
} // namespace detail

/// nat::dnat_table over table `ip networkd`. Thread-safe: reconcile,
/// reconcile_vips, read and remove_all are serialised on one netlink
/// socket; refresh and counters use a second one, so an audit never holds
/// up a change. The sockets are opened (inside `options::netns` when set)
/// on first use and again after a transport error.
class nft_dnat_table final : public nat::dnat_table {
public:
  struct options {
    /// A named network namespace (/run/netns/NAME); empty: the namespace
    /// of the thread that makes the first call.
    std::string netns;
    /// How long to wait for the kernel's answer to one request.
    std::chrono::milliseconds timeout{10000};
  };

  nft_dnat_table();
  explicit nft_dnat_table(options opts);
  ~nft_dnat_table() override;
  nft_dnat_table(const nft_dnat_table&) = delete;
  nft_dnat_table& operator=(const nft_dnat_table&) = delete;

  /// Makes the map hold exactly `desired` (creating the table when
  /// missing, rebuilding it when its chains or map are not ours any more),
  /// in one transaction; a failed one is retried once after a read.
  /// report::added / deleted count map elements, rebuilt says the table
  /// was deleted and made anew.
  result<nat::report>
  reconcile(const std::vector<nat::dnat_rule>& desired) override;
  result<nat::report>
  reconcile_vips(const std::vector<std::string>& vips,
                 const std::vector<nat::dnat_rule>& desired) override;
  /// Our table as nat::state: each map element shows as one entry per
  /// chain whose rule is in place (spec rendered like iptables' rule).
  result<nat::state> read() override;
  result<bool> refresh() override;
  /// Deletes the table (one message); no table is no error.
  result<unit> remove_all() override;

  /// Per-element packet and byte counters of the map, read now (empty
  /// without the table): packets are new connections.
  result<std::vector<nft_counter>> counters();
  /// Packets and bytes of every DNATed connection per VIP, protocol and
  /// port, both directions (the traffic set's counters), read now.
  result<std::vector<nft_counter>> traffic();

  /// Forget the trusted state: the next reconcile reads the table.
  void invalidate();

private:
  result<std::vector<nft_counter>> dump_counters(const char* set);
  result<nat::report> run(const std::vector<nat::dnat_rule>& desired,
                          const nat::scope& where);
  result<detail::table_view> read_locked();

  options opts_;
  std::mutex mtx_; ///< changes: sock_, known_, generation_
  std::unique_ptr<detail::nl_socket> sock_;
  std::unique_ptr<detail::table_view> known_;
  uint64_t generation_ = 0;
  std::mutex read_mtx_; ///< refresh() and counters(): read_sock_
  std::unique_ptr<detail::nl_socket> read_sock_;
};

/// Deletes table `ip networkd` in `netns` (empty: here) when it exists:
/// true when it was there. For the iptables backend's start.
result<bool> remove_table_if_present(const std::string& netns);

} // namespace networkd::nft
