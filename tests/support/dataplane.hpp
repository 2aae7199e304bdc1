// SPDX-License-Identifier: MIT
// The VIP labs run networkd with either DNAT data plane. These read and
// disturb its rules with the backend's own tool (iptables-save / nft), not
// with networkd's code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "tests/support/netns.hpp"

namespace networkd::test {

/// NETWORKD_TEST_DATAPLANE: "nft" (the default) or "iptables". CTest runs
/// the VIP labs once with each (tests/integration/CMakeLists.txt).
const std::string& dataplane();

/// The --dataplane flag for networkd.
std::string dataplane_flag();

/// Our DNAT as the backend's tool prints it in `ns`: `iptables-save -t
/// nat` or `nft list table ip networkd` ("" when there is none).
std::string dnat_text(const netns& ns);

/// `vip` has a DNAT entry (for `port`; 0: any port) in `ns`.
bool has_dnat(const netns& ns, const std::string& vip, uint16_t port = 0);

/// Some DNAT entry in `ns` sends traffic to ip:port.
bool has_target(const netns& ns, const std::string& ip, uint16_t port);

/// How many DNAT entries `vip` has: iptables rule lines (one per chain and
/// port) or nft map elements (one per port; both chains use the map).
size_t dnat_entries(const netns& ns, const std::string& vip);

/// What a firewall reload does to our rules: they are emptied (chains
/// flushed / map flushed); addresses stay.
void flush_dnat(const netns& ns);

/// Leaves what a networkd of an earlier run would have left for `ip`: a
/// DNAT of ip:80/tcp to 172.20.1.2:80 in this backend's form.
void leave_dnat(const netns& ns, const std::string& ip);

// -- the node ACL (tests/unit/net/acl_dataplane_test.cpp, the ACL daemon
// test), read and disturbed with `nft` / `iptables-save`.

/// Our ACL as the backend's tool prints it in `ns`: `nft list table ip
/// networkd` (only when it holds the ACL's chain) or `iptables-save -t
/// filter`'s lain-* lines and INPUT policy ("" when there is none).
std::string acl_text(const netns& ns);

/// Our ACL is in `ns` and drops by default (chain acl_input with policy
/// drop / INPUT policy DROP and chain lain-INPUT hooked).
bool acl_active(const netns& ns);

/// Nothing of our ACL is left in `ns`, and INPUT accepts.
bool acl_gone(const netns& ns);

/// The elements of an nft ACL set as `nft list set` prints them (sorted
/// tokens: "10.0.0.1", "10.0.0.0/24", "10.0.0.1-10.0.0.9", "80", ...);
/// iptables: the whitelisted sources (-s/--src-range) of lain-INPUT.
std::vector<std::string> acl_sources(const netns& ns);

/// Someone deletes one whitelisted source behind networkd's back: `nft
/// delete element` of `source` (as nft prints it), or the iptables rule
/// that jumps from lain-INPUT for it (`source` as iptables-save prints it
/// without "/32").
void acl_delete_source(const netns& ns, const std::string& source);

/// Someone deletes the rule that admits established traffic.
void acl_delete_base_rule(const netns& ns);

/// Leaves what a networkd run with the *other* backend would have left: an
/// ACL that admits only loopback (nft: chain acl_input in table ip
/// networkd; iptables: lain-INPUT hooked into INPUT, policy DROP).
void leave_other_acl(const netns& ns);

/// Nothing of the other backend's ACL is left in `ns`.
bool other_acl_gone(const netns& ns);

} // namespace networkd::test
