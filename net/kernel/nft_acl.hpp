// SPDX-License-Identifier: MIT
// The node ACL in nftables: one input chain and four sets in table
// `ip networkd` (beside the DNAT map), written over netlink; a whitelist
// change is a set element update, every change one transaction.
#pragma once

#include "net/base/result.hpp"
#include "net/kernel/acl.hpp"

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

namespace networkd::nft {

/// The ACL's objects in table `ip networkd` (docs/nftables.md). The DNAT
/// code never touches them, nor this code the DNAT's.
inline constexpr const char* acl_chain = "acl_input";
inline constexpr const char* acl_sources_set = "acl_sources";
inline constexpr const char* acl_tcp_set = "acl_tcp_ports";
inline constexpr const char* acl_udp_set = "acl_udp_ports";
inline constexpr const char* acl_source_ports_set = "acl_source_ports";
/// Hook input, priority filter (0), policy drop.
inline constexpr int32_t acl_priority = 0;

/// One element of an ACL set as the kernel holds it: the key's bytes, the
/// closing key of a concatenated range (acl_source_ports), and whether it
/// is the end of an interval (the single-field interval sets).
struct acl_elem {
  std::string key;
  std::string key_end;
  bool end = false;
  friend bool operator<(const acl_elem& a, const acl_elem& b) {
    if (a.key != b.key)
      return a.key < b.key;
    if (a.end != b.end)
      return a.end; // an end sorts before a start at the same key
    return a.key_end < b.key_end;
  }
  friend bool operator==(const acl_elem& a, const acl_elem& b) {
    return a.key == b.key && a.key_end == b.key_end && a.end == b.end;
  }
};

/// Which ACL set: index into acl_sets::by_kind and the layout table.
enum class acl_set_kind : uint8_t { sources, tcp, udp, source_ports };
inline constexpr size_t acl_set_count = 4;

/// The elements of the four sets, each sorted, without duplicates.
struct acl_sets {
  std::vector<acl_elem> sets[acl_set_count];
  std::vector<acl_elem>& operator[](acl_set_kind k) {
    return sets[static_cast<size_t>(k)];
  }
  const std::vector<acl_elem>& operator[](acl_set_kind k) const {
    return sets[static_cast<size_t>(k)];
  }
};

/// What the ACL keys ask for, as set elements. Overlapping and adjacent
/// sources or ports are merged (an interval set takes no overlaps); the
/// in-ports of overlapping sources are split into disjoint boxes of
/// source range x port range per protocol.
acl_sets acl_elements(const acl::inputs& in);

/// A set's elements as text, sorted: "10.0.0.1", "10.0.0.0/8",
/// "10.0.0.1-10.0.0.9", "80", "8000-8100", "10.0.0.0/8 . tcp . 80-90".
std::vector<std::string> render_elements(acl_set_kind k,
                                         const std::vector<acl_elem>& elems);

/// The comments of our rules in chain acl_input, in order (the first six
/// are the base rules): how a read recognises them.
const std::vector<std::string>& acl_rule_comments();

namespace detail {
struct nl_socket;
struct acl_view;

/// The elements of ACL set `set` in a buffer of netlink messages as the
/// kernel answers a dump of it (NEWSETELEM of that set in table networkd;
/// anything else skipped): open for tests and fuzzing.
std::vector<acl_elem> parse_acl_elems(const void* data, size_t size,
                                      const char* set);
} // namespace detail

/// acl::filter_table over table `ip networkd`. Thread-safe (one mutex, one
/// netlink socket, opened in `options::netns` on first use).
class nft_filter_table final : public acl::filter_table {
public:
  struct options {
    /// A named network namespace (/run/netns/NAME); empty: here.
    std::string netns;
    std::chrono::milliseconds timeout{10000};
  };

  nft_filter_table();
  explicit nft_filter_table(options opts);
  ~nft_filter_table() override;
  nft_filter_table(const nft_filter_table&) = delete;
  nft_filter_table& operator=(const nft_filter_table&) = delete;

  const char* backend() const override { return "nft"; }
  /// Reads the chain and sets; when the chain, its rules or the sets'
  /// types are not as ours should be, deletes what is there of them and
  /// makes all anew (report::rewrote_chains), else adds and deletes only
  /// the elements that differ. One transaction; a failed one is retried
  /// once as a full rewrite.
  /// Trusts the state known from the last read or transaction of this
  /// object (reads when there is none): a change costs no dump.
  result<acl::report> apply(const acl::inputs& in) override;
  /// Asks the kernel for the ruleset generation first: when nobody
  /// committed anything since the last read, what is known is what is
  /// there (one round trip); else reads the chain and the sets.
  result<acl::report> audit(const acl::inputs& in) override;
  result<acl::applied> show() override;
  /// Deletes our chain and sets, and the table too when nothing else (the
  /// DNAT map) is in it.
  result<unit> remove_all() override;

private:
  result<acl::report> run(const acl::inputs& in, bool audit);
  result<detail::acl_view> read_locked();

  options opts_;
  std::mutex mtx_;
  std::unique_ptr<detail::nl_socket> sock_;
  std::unique_ptr<detail::acl_view> known_; ///< none: read before a change
};

} // namespace networkd::nft
