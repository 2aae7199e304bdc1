// SPDX-License-Identifier: MIT
// A small blocking DNS client (UDP and TCP) for health probes and tests.
// Not used on the server's query path.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "dns/message.hpp"
#include "net/base/result.hpp"

namespace networkd::dns {

/// Sends one query over UDP and waits for the response with the same ID.
/// `source_ip` binds the client socket (e.g. "127.0.0.2") when not empty.
result<message> exchange_udp(const std::string& server_ip, uint16_t port,
                             const std::vector<uint8_t>& query,
                             std::chrono::milliseconds timeout,
                             const std::string& source_ip = {});

/// Sends all queries on one TCP connection at once (pipelined) and reads
/// one response per query, in whatever order they arrive.
result<std::vector<message>>
exchange_tcp(const std::string& server_ip, uint16_t port,
             const std::vector<std::vector<uint8_t>>& queries,
             std::chrono::milliseconds timeout);

} // namespace networkd::dns
