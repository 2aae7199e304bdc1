// SPDX-License-Identifier: MIT
// The VIP labs run networkd with either DNAT data plane. These read and
// disturb its rules with the backend's own tool (iptables-save / nft), not
// with networkd's code.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

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

} // namespace networkd::test
