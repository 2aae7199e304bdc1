// SPDX-License-Identifier: MIT
// libFuzzer target for the kernel's answer to a dump of our nftables map
// (net/kernel/nft.hpp detail::parse_counters: NEWSETELEM messages of map
// vip_dnat in table ip networkd, anything else skipped), the bytes every
// counters() read goes through; and the same bytes as a dump of each of the
// ACL's sets (net/kernel/nft_acl.hpp detail::parse_acl_elems, then
// render_elements as GET /v1/acl shows them).
//
// Input: the netlink messages as they are, no escapes (lengths, types and
// counters are binary; every byte value is meaningful). The seeds are real
// dumps captured from the kernel (see README.md). The same bytes are also
// parsed from an address that is not 4-byte aligned (both must agree).
#include <arpa/inet.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "fuzz_util.hpp"
#include "net/kernel/nft.hpp"
#include "net/kernel/nft_acl.hpp"

using namespace networkd;
using networkd::fuzz::broken;

namespace {

bool same(const std::vector<nft::nft_counter>& a,
          const std::vector<nft::nft_counter>& b) {
  if (a.size() != b.size())
    return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (a[i].vip != b[i].vip || a[i].proto != b[i].proto
        || a[i].port != b[i].port || a[i].packets != b[i].packets
        || a[i].bytes != b[i].bytes)
      return false;
  return true;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto counters = nft::detail::parse_counters(data, size);
  // An element is at least a list element nest holding a key nest holding
  // a 12-byte value: 4 + 4 + 4 + 12 bytes.
  if (counters.size() > size / 24)
    broken("parse_counters found more elements than the bytes can hold");
  for (auto& c : counters) {
    in_addr a{};
    if (::inet_pton(AF_INET, c.vip.c_str(), &a) != 1)
      broken("parse_counters returned a VIP that is not a dotted quad");
    if (c.proto != nat::protocol::tcp && c.proto != nat::protocol::udp)
      broken("parse_counters returned a protocol other than tcp or udp");
  }
  // A caller's buffer need not be aligned: the parser copies it.
  std::vector<uint8_t> shifted(size + 1);
  if (size > 0)
    std::memcpy(shifted.data() + 1, data, size);
  if (!same(counters, nft::detail::parse_counters(shifted.data() + 1, size)))
    broken("parse_counters depends on the buffer's alignment");
  using kind = nft::acl_set_kind;
  for (auto [k, set] :
       {std::pair{kind::sources, nft::acl_sources_set},
        std::pair{kind::tcp, nft::acl_tcp_set},
        std::pair{kind::udp, nft::acl_udp_set},
        std::pair{kind::source_ports, nft::acl_source_ports_set}}) {
    auto elems = nft::detail::parse_acl_elems(data, size, set);
    // A list element nest, a key nest, a value of at least one byte.
    if (elems.size() > size / 13)
      broken("parse_acl_elems found more elements than the bytes can hold");
    for (auto& e : elems)
      if (e.key.empty() || e.key.size() > 16 || e.key_end.size() > 16)
        broken("parse_acl_elems returned a key of a size it must refuse");
    auto text = nft::render_elements(k, elems);
    if (text.size() > elems.size())
      broken("render_elements made more entries than there are elements");
  }
  return 0;
}
