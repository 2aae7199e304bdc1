// SPDX-License-Identifier: MIT
// libFuzzer target for every etcd key family networkd reads: the key and
// its value together, through the calls the supervisor makes on a key change
// (actors/supervisor.cpp parse_change: config::classify, then the family's
// parser; the ACL keys through acl::classify and acl::put), then what a
// good value is used for: ACL rules (acl::build must pass acl::validate)
// and the publisher's renderings (a value the leader writes back must parse
// again to the same thing). The same key and value also go through
// keys::parse (net/cluster/keys.hpp: the typed events the actors route), as
// a put and as a delete: its verdict must be the family parser's, and
// keys::common_of must agree with the event (a rejected put has an error
// code and an error; a delete is never rejected).
//
// Input: records separated by 0xff. A record is one selector byte (the
// key's prefix, below; 0xff-free), the rest of the key, 0xfe, the value
// (with fuzz_util.hpp run escapes, so a value may be up to 512 KiB).
// Selector 'X', a byte choosing the ACL family, and a key suffix erase
// that ACL key.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <type_traits>
#include <variant>

#include "fuzz_util.hpp"
#include "net/cluster/config.hpp"
#include "net/cluster/keys.hpp"
#include "net/cluster/publish.hpp"
#include "net/kernel/acl.hpp"

using namespace networkd;
using networkd::fuzz::broken;

namespace {

std::string_view prefix_of(uint8_t selector) {
  static constexpr std::string_view prefixes[] = {
    config::vips_prefix,
    config::domains_prefix,
    config::domain_servers_prefix,
    config::vippool_key,
    config::swarm_leader_key,
    config::deployd_leader_key,
    config::knobs_prefix,
    config::leader_prefix,
    config::vip_locks_prefix,
    config::app_endpoints_prefix,
    config::container_vips_prefix,
    config::tinydns_fqdns_prefix,
    acl::whitelist_ips_prefix,
    acl::ex_ports_prefix,
    acl::in_ports_prefix,
    "", // the key as given
  };
  return prefixes[selector % (sizeof(prefixes) / sizeof(prefixes[0]))];
}

void check_vip(std::string_view suffix, const config::vip_config& v) {
  if (v.app.empty() || v.proc.empty() || v.ports.empty())
    broken("parse_vip accepted a VIP without app, proc or ports");
  for (auto& p : v.ports)
    if (p.src == 0 || p.dest == 0)
      broken("parse_vip accepted port 0");
  // What the streamrouter publisher writes must read back the same.
  auto again = config::parse_vip(suffix, publish::render_vip(v));
  if (!again || again->app != v.app || again->proc != v.proc
      || !(again->ports == v.ports)
      || again->excluded_nodes != v.excluded_nodes)
    broken("render_vip of a parsed VIP does not parse back the same");
}

void check_domain(std::string_view name, const config::domain_config& d) {
  auto again
    = config::parse_domain(name, publish::render_domain(d.ips, d.type));
  if (!again || again->ips != d.ips || again->type != d.type)
    broken("render_domain of a parsed domain does not parse back the same");
}

void check_servers(std::string_view domain,
                   const config::domain_servers_config& s) {
  auto again
    = config::parse_domain_servers(domain, publish::render_servers(s.servers));
  if (!again || !(again->servers == s.servers))
    broken("render_servers of parsed servers does not parse back the same");
}

/// keys::parse of the same key and value, as a put (`accepted`: what the
/// family's parser said, for `fam`) and as a delete.
void check_event(const std::string& key, std::string_view value,
                 config::family fam, bool accepted) {
  keys::raw_event ev;
  ev.key = key;
  ev.value = std::string{value};
  auto e = keys::parse(ev);
  auto c = keys::common_of(e);
  if (c.fam != fam || c.key != key || c.deleted)
    broken("keys::parse gave a put another family, key or a delete");
  if (c.rejected && (c.error_code.empty() || c.error.empty()))
    broken("keys::parse rejected a put without error_code or error");
  bool ok = std::visit(
    [](const auto& x) {
      if constexpr (std::is_same_v<std::decay_t<decltype(x)>,
                                   keys::unknown_event>)
        return false;
      else
        return x.ok;
    },
    e);
  if (ok == c.rejected)
    broken("keys::parse: a put neither parsed nor rejected, or both");
  if (ok != accepted)
    broken("keys::parse and the family's parser disagree on a put");

  ev.deleted = true;
  auto d = keys::parse(ev);
  auto dc = keys::common_of(d);
  if (dc.fam != fam || dc.key != key || !dc.deleted)
    broken("keys::parse gave a delete another family, key or a put");
  if (dc.rejected)
    broken("keys::parse rejected a delete");
}

/// One put, as supervisor.cpp parse_change does it.
void put(std::string key, std::string_view value, acl::inputs& acls) {
  auto cls = config::classify(key);
  auto fam = cls.fam;
  bool accepted = true; // what the family's parser said
  switch (cls.fam) {
    case config::family::vip:
      if (auto r = config::parse_vip(cls.suffix, value))
        check_vip(cls.suffix, *r);
      else
        accepted = false;
      break;
    case config::family::domain:
      if (auto r = config::parse_domain(cls.suffix, value))
        check_domain(cls.suffix, *r);
      else
        accepted = false;
      break;
    case config::family::domain_servers:
      if (auto r = config::parse_domain_servers(cls.suffix, value))
        check_servers(cls.suffix, *r);
      else
        accepted = false;
      break;
    case config::family::swarm_leader:
    case config::family::deployd_leader:
      if (auto r = config::parse_leader(key, value); r && r->port == 0)
        broken("parse_leader accepted port 0");
      else
        accepted = r.ok();
      break;
    case config::family::vippool:
      if (auto r = config::parse_vippool(value)) {
        for (auto& ip : *r)
          if (!config::is_ipv4(ip))
            broken("parse_vippool accepted a non-IPv4 entry");
      } else {
        accepted = false;
      }
      break;
    case config::family::knob:
      if (auto r = config::parse_knob(cls.suffix, value)) {
        auto spec = config::find_knob(cls.suffix);
        if (spec == nullptr)
          broken("parse_knob accepted an unknown knob");
        if (spec->numeric && (r->number < spec->min || r->number > spec->max))
          broken("parse_knob accepted a number out of range");
      } else {
        accepted = false;
      }
      break;
    case config::family::app_endpoint:
      accepted = config::parse_app_endpoint(cls.suffix).ok();
      break;
    case config::family::container_vip:
      accepted = config::parse_container_vip(cls.suffix, value).ok();
      break;
    case config::family::vip_lock:
    case config::family::leader_candidate:
    case config::family::tinydns_fqdns:
    case config::family::acl:
      break;
    case config::family::unknown:
      if (acl::classify(key).kind != acl::key_kind::unknown) {
        acl::inputs probe;
        auto r = acl::put(probe, key, value);
        auto r2 = acl::put(acls, key, value);
        if (r.ok() != r2.ok())
          broken("acl::put depends on the other keys");
        fam = config::family::acl;
        accepted = r.ok();
      } else {
        accepted = false; // "bad_key"
      }
      break;
  }
  (void)config::to_string(cls.fam);
  check_event(key, value, fam, accepted);
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view in{reinterpret_cast<const char*>(data), size};
  acl::inputs acls;
  for (auto record : fuzz::split(in, fuzz::sep)) {
    if (record.empty())
      continue;
    uint8_t selector = static_cast<uint8_t>(record[0]);
    record.remove_prefix(1);
    if (selector == 'X' && !record.empty()) {
      // An ACL key deleted: the next byte picks the family.
      static constexpr std::string_view acl_prefixes[] = {
        acl::whitelist_ips_prefix, acl::ex_ports_prefix, acl::in_ports_prefix};
      auto which = static_cast<uint8_t>(record[0]) % 3;
      record.remove_prefix(1);
      acl::erase(acls, std::string{acl_prefixes[which]} + std::string{record});
      continue;
    }
    auto kv = fuzz::split(record, fuzz::kv_sep, 2);
    std::string key = std::string{prefix_of(selector)} + std::string{kv[0]};
    auto value = fuzz::expand(kv.size() > 1 ? kv[1] : std::string_view{});
    put(std::move(key), value, acls);
  }
  // Rules from good ACL values are always installable.
  auto rules = acl::build(acls);
  if (auto ok = acl::validate(rules); !ok)
    broken("acl::build made rules that acl::validate refuses");
  for (auto& spec : rules.input)
    (void)acl::normalize(spec);
  return 0;
}
