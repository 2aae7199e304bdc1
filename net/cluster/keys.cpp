// SPDX-License-Identifier: MIT
#include "net/cluster/keys.hpp"

#include "net/base/text.hpp"

namespace networkd::keys {

namespace {

/// Fills the fields every event has; the value when `parse` (suffix, raw
/// value) -> result<value_type> succeeds, else the failure.
template <family F, class Parse>
any_event make(const config::classified& cls, const raw_event& ev,
               Parse parse) {
  event<F> out;
  out.key = ev.key;
  out.suffix = cls.suffix;
  out.deleted = ev.deleted;
  out.revision = ev.revision;
  out.create_revision = ev.create_revision;
  out.lease = ev.lease;
  if (ev.deleted)
    return out;
  auto r = parse(cls.suffix, ev);
  if (r) {
    out.ok = true;
    out.value = std::move(*r);
  } else {
    out.error_code = r.error().code;
    out.error = r.error().message;
  }
  return out;
}

/// A value networkd takes as written (hostnames, tinydns lines).
result<std::string> as_text(const std::string&, const raw_event& ev) {
  return ev.value;
}

using parser = any_event (*)(const config::classified&, const raw_event&);

struct row {
  family fam;
  parser parse;
};

/// Each family and its parser: the one place a key family meets its
/// value's parser.
const row table[] = {
  {family::vip,
   [](const config::classified& c, const raw_event& e) {
     return make<family::vip>(
       c, e, [](auto& s, auto& ev) { return config::parse_vip(s, ev.value); });
   }},
  {family::domain,
   [](const config::classified& c, const raw_event& e) {
     return make<family::domain>(c, e, [](auto& s, auto& ev) {
       return config::parse_domain(s, ev.value);
     });
   }},
  {family::domain_servers,
   [](const config::classified& c, const raw_event& e) {
     return make<family::domain_servers>(c, e, [](auto& s, auto& ev) {
       return config::parse_domain_servers(s, ev.value);
     });
   }},
  {family::vippool,
   [](const config::classified& c, const raw_event& e) {
     return make<family::vippool>(
       c, e, [](auto&, auto& ev) { return config::parse_vippool(ev.value); });
   }},
  {family::swarm_leader,
   [](const config::classified& c, const raw_event& e) {
     return make<family::swarm_leader>(c, e, [](auto&, auto& ev) {
       return config::parse_leader(ev.key, ev.value);
     });
   }},
  {family::deployd_leader,
   [](const config::classified& c, const raw_event& e) {
     return make<family::deployd_leader>(c, e, [](auto&, auto& ev) {
       return config::parse_leader(ev.key, ev.value);
     });
   }},
  {family::knob,
   [](const config::classified& c, const raw_event& e) {
     return make<family::knob>(
       c, e, [](auto& s, auto& ev) { return config::parse_knob(s, ev.value); });
   }},
  {family::vip_lock,
   [](const config::classified& c, const raw_event& e) {
     return make<family::vip_lock>(c, e, as_text);
   }},
  {family::leader_candidate,
   [](const config::classified& c, const raw_event& e) {
     return make<family::leader_candidate>(c, e, as_text);
   }},
  {family::app_endpoint,
   [](const config::classified& c, const raw_event& e) {
     return make<family::app_endpoint>(
       c, e, [](auto& s, auto&) { return config::parse_app_endpoint(s); });
   }},
  {family::tinydns_fqdns,
   [](const config::classified& c, const raw_event& e) {
     return make<family::tinydns_fqdns>(c, e, as_text);
   }},
  {family::container_vip,
   [](const config::classified& c, const raw_event& e) {
     return make<family::container_vip>(c, e, [](auto& s, auto& ev) {
       return config::parse_container_vip(s, ev.value);
     });
   }},
  {family::acl,
   [](const config::classified& c, const raw_event& e) {
     return make<family::acl>(c, e, [](auto&, auto& ev) -> result<acl::inputs> {
       acl::inputs one;
       if (auto r = acl::put(one, ev.key, ev.value); !r)
         return r.error();
       return one;
     });
   }},
};

/// The family of a key: the contract's, else the ACL's, else unknown.
config::classified classify(const std::string& key) {
  auto cls = config::classify(key);
  if (cls.fam == family::unknown) {
    auto a = acl::classify(key);
    if (a.kind != acl::key_kind::unknown)
      return {family::acl, a.suffix};
  }
  return cls;
}

} // namespace

any_event parse(const raw_event& ev) {
  auto cls = classify(ev.key);
  for (auto& r : table)
    if (r.fam == cls.fam)
      return r.parse(cls, ev);
  unknown_event out;
  out.key = ev.key;
  out.deleted = ev.deleted;
  out.revision = ev.revision;
  out.error = printable(ev.key, 300) + ": not a key networkd understands";
  return out;
}

common common_of(const any_event& e) {
  return std::visit(
    [](const auto& x) {
      common c;
      c.fam = x.fam;
      c.key = x.key;
      c.deleted = x.deleted;
      c.rejected = x.rejected();
      c.error_code = x.error_code;
      c.error = x.error;
      return c;
    },
    e);
}

bool belongs_to_watch(const std::string& prefix, const std::string& key) {
  if (prefix.empty() || prefix.back() == '/' || key.size() <= prefix.size())
    return true;
  return classify(key).fam != family::unknown;
}

} // namespace networkd::keys
