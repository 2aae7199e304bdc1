// SPDX-License-Identifier: MIT
// libFuzzer target for the leader's publishers (net/cluster/publish.hpp): their
// inputs come from etcd values and lainlet's /v2/streamrouter/ports answer,
// parsed as the leader parses them, plus the raw tinydns_fqdns values that
// desired() reads itself (is_app_lines). Checks that what the leader would
// write is accepted by the followers' parsers, and that equal inputs give
// equal plans (writes happen only on change).
//
// Input: byte 0 = publishers on (bit 0 swarm, 1 deployd, 2 webrouter,
// 3 tinydns, 4 streamrouter) and the cluster domain (bits 5-6); then
// records separated by 0xff, each a type byte and its text, key and value
// split by 0xfe, values with fuzz_util.hpp run escapes:
//   'v' VIP key suffix, value      'e' app endpoint key suffix
//   'p' vippool value              'r' lainlet's ports answer
//   's' swarm leader value         'd' deployd leader value
//   'c' tinydns_fqdns key suffix, value (the `current` map)
//   'a' app, text: is_app_lines directly
#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "fuzz_util.hpp"
#include "net/cluster/config.hpp"
#include "net/cluster/publish.hpp"

using namespace networkd;
using networkd::fuzz::broken;

namespace {

bool starts_with(std::string_view s, std::string_view prefix) {
  return s.substr(0, prefix.size()) == prefix;
}

/// Every value the leader writes must be one the followers accept.
void check_plan(const publish::plan& p) {
  for (auto& [key, value] : p) {
    if (!value)
      continue;
    std::string_view k = key;
    if (starts_with(k, config::domains_prefix)) {
      if (!config::parse_domain(k.substr(config::domains_prefix.size()),
                                *value))
        broken("the leader writes a domain value parse_domain refuses");
    } else if (starts_with(k, config::domain_servers_prefix)) {
      if (!config::parse_domain_servers(
            k.substr(config::domain_servers_prefix.size()), *value))
        broken("the leader writes domain servers that do not parse");
    } else if (starts_with(k, config::vips_prefix)) {
      if (!config::parse_vip(k.substr(config::vips_prefix.size()), *value))
        broken("the leader writes a VIP value parse_vip refuses");
    } else if (!starts_with(k, config::tinydns_fqdns_prefix)) {
      broken("the leader writes a key outside its families");
    }
  }
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1)
    return 0;
  static const char* domains[] = {"", "lain", "lain.local", "example.com"};
  publish::inputs in;
  uint8_t flags = data[0];
  in.swarm = flags & 1;
  in.deployd = flags & 2;
  in.webrouter = flags & 4;
  in.tinydns = flags & 8;
  in.streamrouter = flags & 16;
  in.cluster_domain = domains[(flags >> 5) & 3];
  std::map<std::string, std::string> current;
  std::string_view rest{reinterpret_cast<const char*>(data) + 1, size - 1};
  for (auto record : fuzz::split(rest, fuzz::sep)) {
    if (record.empty())
      continue;
    char type = record[0];
    auto kv = fuzz::split(record.substr(1), fuzz::kv_sep, 2);
    std::string key{kv[0]};
    auto value = fuzz::expand(kv.size() > 1 ? kv[1] : kv[0]);
    switch (type) {
      case 'v':
        if (auto v = config::parse_vip(key, value))
          in.vips[std::string{config::vips_prefix} + key] = std::move(*v);
        break;
      case 'e':
        if (auto e = config::parse_app_endpoint(key))
          in.endpoints[std::string{config::app_endpoints_prefix} + key]
            = std::move(*e);
        break;
      case 'p':
        if (auto p = config::parse_vippool(value))
          in.pool = std::move(*p);
        break;
      case 'r':
        if (auto r = config::parse_streamrouter_ports(value)) {
          for (size_t i = 0; i < r->size(); ++i)
            if ((*r)[i] == 0 || (i > 0 && (*r)[i - 1] >= (*r)[i]))
              broken("streamrouter ports not sorted, unique and non-zero");
          in.ports = std::move(*r);
        }
        break;
      case 's':
      case 'd': {
        auto leader_key
          = type == 's' ? config::swarm_leader_key : config::deployd_leader_key;
        if (auto l = config::parse_leader(leader_key, value))
          (type == 's' ? in.swarm_ip : in.deployd_ip) = l->ip;
        break;
      }
      case 'c':
        current[std::string{config::tinydns_fqdns_prefix} + key] = value;
        break;
      case 'a':
        (void)publish::is_app_lines(key, value);
        break;
      default:
        break;
    }
  }
  auto p = publish::desired(in, current);
  check_plan(p);
  if (publish::desired(in, current) != p)
    broken("desired() differs for equal inputs");
  return 0;
}
