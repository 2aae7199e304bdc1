// SPDX-License-Identifier: MIT
// libFuzzer target for the hosts file served by DNS (dns/hosts.hpp
// parse_hosts; --hosts-file, default /etc/hosts, written by anyone with
// root or by container tooling).
//
// Input: the file's text (fuzz_util.hpp run escapes).
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "dns/hosts.hpp"
#include "dns/wire.hpp"
#include "fuzz_util.hpp"

using namespace networkd;
using networkd::fuzz::broken;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Hosts files are small; 64 KiB keeps the runs fast.
  auto text
    = fuzz::expand({reinterpret_cast<const char*>(data), size}, 64 * 1024);
  for (auto& e : dns::parse_hosts(text)) {
    auto addr = dns::parse_ip(e.address);
    if (!addr || dns::to_string(*addr) != e.address)
      broken("a hosts entry's address is not canonical");
    if (e.names.empty())
      broken("a hosts entry without names");
    for (auto& n : e.names) {
      if (n.empty())
        broken("an empty hosts name");
      for (char c : n)
        if (std::isupper(static_cast<unsigned char>(c)))
          broken("a hosts name not lower-cased");
      // The table turns every name into its wire form again ("\\." is a
      // label holding a dot: the text may end in an escaped dot).
      auto wire = dns::wire_name(n);
      if (wire.size() <= 1 || dns::text_name(wire) != n)
        broken("a hosts name that does not survive a wire round trip");
    }
  }
  return 0;
}
