// SPDX-License-Identifier: MIT
// systemd's readiness and watchdog protocol, without libsystemd: a
// datagram to $NOTIFY_SOCKET (a path, or an abstract name written "@name")
// and the watchdog period from $WATCHDOG_USEC for the process named by
// $WATCHDOG_PID. libsystemd would load libgcrypt, liblzma, libzstd, liblz4
// and libcap (about 1 MB resident) for these two calls.
#pragma once

#include <chrono>
#include <optional>
#include <string_view>

namespace networkd {

/// Sends `state` ("READY=1", "WATCHDOG=1", ...) to the service manager.
/// False when networkd does not run under one ($NOTIFY_SOCKET unset) or
/// the datagram could not be sent.
bool sd_notify_state(std::string_view state);

/// The watchdog period the service manager expects pings within, when it
/// asked for them and meant this process.
std::optional<std::chrono::microseconds> sd_watchdog_period();

} // namespace networkd
