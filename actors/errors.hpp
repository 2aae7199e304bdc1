// SPDX-License-Identifier: MIT
// networkd's error codes inside the actor system.
#pragma once

#include <caf/actor_system_config.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/message.hpp>

#include <cstdint>
#include <string>

namespace networkd {

enum class errc : uint8_t {
  none = 0,
  etcd_unavailable, ///< no etcd member answered
  etcd_timeout,     ///< a call's deadline passed
  etcd_failure,     ///< etcd answered with an error
  bad_value,        ///< a key's value was rejected
  lease_lost,       ///< the session lease expired or was revoked
  child_crashed,    ///< a supervised child terminated abnormally
  shutting_down,
  link_failure, ///< netlink or ARP failed
  nat_failure,  ///< an iptables batch failed
};

const char* to_string(errc x);

/// Registers networkd's message types and error renderer with a config.
void register_networkd(caf::actor_system_config& cfg);

/// Maps a net/ failure code ("unavailable", "timeout", ...) to errc.
errc from_failure_code(const std::string& code);

} // namespace networkd

CAF_ERROR_CODE_ENUM(networkd::errc, "networkd")
