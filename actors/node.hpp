// SPDX-License-Identifier: MIT
// The node: the root actor of the daemon. It starts every component in
// order (from the parsed flags), keeps the table of them, serves the admin
// API, pings the systemd watchdog, and stops everything with one request.
// main() only parses flags, binds DNS, starts the node and turns signals
// into messages.
#pragma once

#include <caf/typed_actor.hpp>

#include <memory>

#include "actors/cli.hpp"
#include "actors/fwd.hpp"
#include "net/base/result.hpp"

namespace networkd {

namespace dns {
class server;
}
namespace etcd {
class client;
}

struct node_config {
  options opts; ///< hostname and net_address filled in
  /// Bound and serving already: a DNS port that cannot be bound stops the
  /// start before anything else runs.
  std::shared_ptr<dns::server> dns;
  std::vector<std::string> own_ips; ///< the DNS listen addresses
  std::shared_ptr<etcd::client> client;
};

using node_actor = caf::typed_actor<
  // SIGHUP: read etcd, the hosts file and resolv.conf again.
  caf::reacts_to<atom::reload>,
  // SIGUSR1: log the whole /v1/state as one line.
  caf::reacts_to<atom::status>,
  // Watchdog timer: WATCHDOG=1 while the supervisor answers.
  caf::reacts_to<atom::tick>,
  // SIGTERM: release every VIP, stop every component, the admin API and
  // DNS; true once they are down. The node then quits.
  caf::replies_to<atom::shutdown>::with<bool>>;

/// Starts every component and the admin API. Fails (everything started is
/// stopped again) when the admin address cannot be bound.
result<node_actor> start_node(caf::actor_system& sys, node_config cfg);

} // namespace networkd
