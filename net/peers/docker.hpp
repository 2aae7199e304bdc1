// SPDX-License-Identifier: MIT
// The one Docker Engine API call networkd makes: the running containers
// (GET /containers/json over the daemon's unix socket), to cross-check what
// lainlet reports.
#pragma once

#include <chrono>
#include <set>
#include <string>

#include "net/base/result.hpp"

namespace networkd::docker {

/// "unix:///var/run/docker.sock" or a plain path → the socket path; other
/// schemes fail ("bad_endpoint").
result<std::string> socket_path(const std::string& endpoint);

/// The ids of the running containers, from a /containers/json body.
result<std::set<std::string>> parse_running(const std::string& body);

/// A whole HTTP/1.x reply to GET /containers/json (the 64 MiB cap is the
/// reader's): a 200 status and parse_running of its body.
result<std::set<std::string>> parse_reply(const std::string& reply);

/// Asks the Docker daemon at `socket` (blocking, bounded by `timeout`).
/// Failure codes: "unavailable" (no socket / refused), "timeout",
/// "http_status", "bad_json".
result<std::set<std::string>>
running_containers(const std::string& socket,
                   std::chrono::milliseconds timeout
                   = std::chrono::milliseconds{2000});

/// True when `id` (lainlet's, full or short) is in `running` (Docker's full
/// ids): one is a prefix of the other.
bool is_running(const std::set<std::string>& running, const std::string& id);

} // namespace networkd::docker
