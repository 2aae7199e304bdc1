// SPDX-License-Identifier: MIT
// Key events of the etcd contract, typed by family: one table (keys.cpp)
// gives each family its parser, and parse() turns a raw watch event into
// the event type of its family, classifying the key once. The actors
// route each type to the actors that take that family. Pure: no I/O, no
// CAF.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "net/cluster/config.hpp"
#include "net/kernel/acl.hpp"

namespace networkd::keys {

using config::family;

/// One key event as a watch delivered it, before anything is parsed.
struct raw_event {
  std::string key;
  std::string value;
  bool deleted = false;
  int64_t revision = 0; ///< mod revision of the put, or the delete's
  int64_t create_revision = 0;
  int64_t lease = 0; ///< the lease the key is bound to
};

/// The value type of each family's events.
template <family F>
struct value_of;
template <>
struct value_of<family::vip> {
  using type = config::vip_config;
};
template <>
struct value_of<family::domain> {
  using type = config::domain_config;
};
template <>
struct value_of<family::domain_servers> {
  using type = config::domain_servers_config;
};
template <>
struct value_of<family::vippool> {
  using type = std::vector<std::string>; ///< the pool addresses
};
template <>
struct value_of<family::swarm_leader> {
  using type = config::leader_addr;
};
template <>
struct value_of<family::deployd_leader> {
  using type = config::leader_addr;
};
template <>
struct value_of<family::knob> {
  using type = config::knob;
};
template <>
struct value_of<family::vip_lock> {
  using type = std::string; ///< the holder's hostname
};
template <>
struct value_of<family::leader_candidate> {
  using type = std::string; ///< the candidate's hostname
};
template <>
struct value_of<family::app_endpoint> {
  using type = config::app_endpoint; ///< from the key; the value is a host
};
template <>
struct value_of<family::tinydns_fqdns> {
  using type = std::string; ///< the JSON list as written
};
template <>
struct value_of<family::container_vip> {
  using type = config::container_vip;
};
template <>
struct value_of<family::acl> {
  using type = acl::inputs; ///< holding this one key's entry
};

/// One key of family F changed: a parsed put, a rejected put, or a delete.
template <family F>
struct event {
  static constexpr family fam = F;
  using value_type = typename value_of<F>::type;
  std::string key;    ///< full etcd key
  std::string suffix; ///< what follows the family's prefix
  bool deleted = false;
  int64_t revision = 0;
  int64_t create_revision = 0;
  int64_t lease = 0;
  /// Set on a put that parsed: `value` holds it.
  bool ok = false;
  value_type value{};
  std::string error_code; ///< non-empty: the put was rejected
  std::string error;      ///< why, naming the key

  bool rejected() const { return !error_code.empty(); }
};

/// A key no family claims (rejected as "bad_key").
struct unknown_event {
  static constexpr family fam = family::unknown;
  std::string key;
  bool deleted = false;
  int64_t revision = 0;
  std::string error_code = "bad_key";
  std::string error;

  bool rejected() const { return !deleted; }
};

using any_event
  = std::variant<event<family::vip>, event<family::domain>,
                 event<family::domain_servers>, event<family::vippool>,
                 event<family::swarm_leader>, event<family::deployd_leader>,
                 event<family::knob>, event<family::vip_lock>,
                 event<family::leader_candidate>, event<family::app_endpoint>,
                 event<family::tinydns_fqdns>, event<family::container_vip>,
                 event<family::acl>, unknown_event>;

/// Classifies the key once and parses the value with its family's parser
/// (keys.cpp's table). Deletes carry no value.
any_event parse(const raw_event& ev);

/// The fields every event has, whatever its family.
struct common {
  family fam = family::unknown;
  std::string_view key;
  bool deleted = false;
  bool rejected = false;
  std::string_view error_code;
  std::string_view error;
};
common common_of(const any_event& e);

/// A watch of `prefix` sees every key under it, an exact-key watch
/// included; false for a key longer than an exact key that no family
/// claims (such a watch is not about it).
bool belongs_to_watch(const std::string& prefix, const std::string& key);

} // namespace networkd::keys
