// SPDX-License-Identifier: MIT
#include "actors/errors.hpp"

#include "actors/messages.hpp"

namespace networkd {

const char* to_string(errc x) {
  switch (x) {
    case errc::none:
      return "none";
    case errc::etcd_unavailable:
      return "etcd_unavailable";
    case errc::etcd_timeout:
      return "etcd_timeout";
    case errc::etcd_failure:
      return "etcd_failure";
    case errc::bad_value:
      return "bad_value";
    case errc::lease_lost:
      return "lease_lost";
    case errc::child_crashed:
      return "child_crashed";
    case errc::shutting_down:
      return "shutting_down";
    case errc::link_failure:
      return "link_failure";
    case errc::nat_failure:
      return "nat_failure";
  }
  return "unknown";
}

void register_networkd(caf::actor_system_config& cfg) {
  cfg.add_message_types<caf::id_block::networkd>();
  cfg.add_error_category(
    caf::atom("networkd"),
    [](uint8_t code, caf::atom_value, const caf::message& ctx) {
      std::string s = "networkd: ";
      s += to_string(static_cast<errc>(code));
      if (!ctx.empty() && ctx.match_element<std::string>(0)) {
        s += " ";
        s += ctx.get_as<std::string>(0);
      }
      return s;
    });
}

errc from_failure_code(const std::string& code) {
  if (code == "unavailable")
    return errc::etcd_unavailable;
  if (code == "timeout")
    return errc::etcd_timeout;
  if (code == "not_found") // etcd: "requested lease not found"
    return errc::lease_lost;
  return errc::etcd_failure;
}

} // namespace networkd
