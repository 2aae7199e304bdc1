// SPDX-License-Identifier: MIT
// libFuzzer target for resolv.conf as the guardian reads it
// (dns/resolv_conf.hpp): whatever DHCP clients, resolvconf or an operator
// wrote. Checks that the rewrite is stable (a rewritten file needs no
// second rewrite, or the guardian would fight itself), that our server
// comes first, and that the upstreams never include our own addresses.
//
// Input: byte 0 picks our address (and own addresses), then the file's text
// (fuzz_util.hpp run escapes).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "dns/resolv_conf.hpp"
#include "fuzz_util.hpp"

using namespace networkd;
using networkd::fuzz::broken;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1)
    return 0;
  static const char* ours[] = {"127.0.0.1", "10.0.0.1", "::1", "fd00::53"};
  std::string our_ip = ours[data[0] & 3];
  std::vector<std::string> own{our_ip};
  if (data[0] & 4)
    own.push_back("127.0.0.2");
  // resolv.conf files are small; 64 KiB keeps the runs fast.
  auto text = fuzz::expand({reinterpret_cast<const char*>(data) + 1, size - 1},
                           64 * 1024);
  auto fix = dns::fix_resolv_conf(text, our_ip, own);
  auto servers = dns::resolv_nameservers(fix.text);
  if (servers.empty() || servers.front() != our_ip)
    broken("our server is not the first nameserver of the rewrite");
  for (auto& u : fix.upstreams)
    for (auto& ip : own)
      if (u.ip == ip || u.ip == "127.0.0.53")
        broken("one of our own addresses became an upstream");
  auto again = dns::fix_resolv_conf(fix.text, our_ip, own);
  if (again.rewrite_needed || again.text != fix.text)
    broken("a rewritten resolv.conf needs another rewrite");
  if (!(again.upstreams == fix.upstreams))
    broken("the upstreams change with the rewrite");
  (void)dns::resolv_upstreams(text, own);
  return 0;
}
