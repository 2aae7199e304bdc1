// SPDX-License-Identifier: MIT
#include "actors/node.hpp"

#include <caf/all.hpp>

#include <unistd.h>

#include <algorithm>
#include <functional>
#include <map>
#include <string>
#include <tuple>
#include <vector>

#include "actors/acl_keeper.hpp"
#include "actors/admin.hpp"
#include "actors/dns_responder.hpp"
#include "actors/health.hpp"
#include "actors/leader.hpp"
#include "actors/resolv_guardian.hpp"
#include "actors/sd_notify.hpp"
#include "actors/session.hpp"
#include "actors/supervisor.hpp"
#include "actors/vip_engine.hpp"
#include "actors/vip_holder.hpp"
#include "actors/vip_registry.hpp"
#include "actors/watch_router.hpp"
#include "dns/server.hpp"
#include "net/base/log.hpp"
#include "net/etcd/etcd.hpp"
#include "net/kernel/acl.hpp"
#include "net/kernel/arp.hpp"
#include "net/kernel/nat.hpp"
#include "net/kernel/netlink.hpp"
#include "net/kernel/nft.hpp"
#include "net/peers/docker.hpp"

namespace networkd {

namespace {

constexpr const char* who = "node";

/// One running component.
struct component {
  const char* name;
  caf::actor handle;
  /// Shutdown waits for it to be down (the effect workers are only told:
  /// the actor system's end waits for them).
  bool awaited;
};

/// What start_node made: the table and the handles the node talks to.
struct parts {
  std::vector<component> table;
  supervisor_actor sup;
  dns_responder_actor responder;
  resolv_guardian_actor guardian;
  std::shared_ptr<dns::server> dns;
  /// The DNAT backend (its counters feed /metrics with nft).
  std::shared_ptr<nat::dnat_table> dnat;
  /// With -acl: the ACL backend and what its keeper last did (/v1/acl).
  std::shared_ptr<acl::filter_table> acl_table;
  std::shared_ptr<acl_board> acl_status;
  std::unique_ptr<admin_server> admin;

  template <class Handle>
  Handle add(const char* name, Handle h, bool awaited = true) {
    table.push_back({name, caf::actor_cast<caf::actor>(h), awaited});
    return h;
  }

  void stop_all() {
    for (auto& c : table)
      caf::anon_send_exit(c.handle, caf::exit_reason::user_shutdown);
  }
};

health_hub_config hub_config(const node_config& cfg) {
  auto& opts = cfg.opts;
  health_hub_config h;
  h.from = opts.containers_from == "deployd"
             ? health_hub_config::source::deployd
             : health_hub_config::source::lainlet;
  h.lainlet_endpoint = opts.lainlet_endpoint;
  h.nodename = opts.hostname;
  h.etcd = cfg.client;
  if (auto sock = docker::socket_path(opts.docker_endpoint)) {
    if (::access(sock->c_str(), F_OK) == 0)
      h.docker_socket = *sock;
    else
      NWD_LOG_INFO(who,
                   "no Docker socket at {}: containers are not "
                   "cross-checked with Docker",
                   *sock);
  } else {
    NWD_LOG_WARN(who, "-docker.endpoint: {}", sock.error().message);
  }
  return h;
}

leader_config leader_cfg(const options& opts, etcd_worker_actor etcd) {
  leader_config lc;
  lc.hostname = opts.hostname;
  lc.etcd = std::move(etcd);
  lc.swarm = opts.swarm;
  lc.deployd = opts.deployd;
  lc.webrouter = opts.webrouter;
  lc.tinydns = opts.tinydns;
  lc.streamrouter = opts.streamrouter;
  lc.cluster_domain = opts.domain;
  lc.lainlet_endpoint = opts.lainlet_endpoint;
  return lc;
}

/// The prefixes the watch router watches for these flags.
std::vector<std::string> watched_prefixes(const options& opts) {
  auto prefixes = default_prefixes();
  // What the publishers read beyond the default prefixes.
  if (opts.webrouter)
    prefixes.push_back(std::string{config::app_endpoints_prefix}
                       + "webrouter/worker/");
  if (opts.tinydns)
    prefixes.push_back(std::string{config::app_endpoints_prefix}
                       + "tinydns/worker/");
  if (opts.webrouter || opts.tinydns)
    prefixes.emplace_back(config::tinydns_fqdns_prefix);
  if (opts.acl)
    for (auto p : {acl::whitelist_ips_prefix, acl::ex_ports_prefix,
                   acl::in_ports_prefix})
      prefixes.emplace_back(p);
  return prefixes;
}

/// The nft data plane's counters per VIP, protocol and port: new
/// connections from the DNAT map's elements (nat hooks see a connection's
/// first packet only), packets and bytes of both directions from the
/// traffic set's. Two dumps, read per call (docs/nftables.md: their cost).
std::vector<vip_port_traffic> read_vip_traffic(nft::nft_dnat_table& table) {
  std::map<std::tuple<std::string, nat::protocol, uint16_t>, vip_port_traffic>
    by_key;
  auto entry = [&](const nft::nft_counter& c) -> vip_port_traffic& {
    auto& e = by_key[{c.vip, c.proto, c.port}];
    e.vip = c.vip;
    e.proto = nat::to_string(c.proto);
    e.port = c.port;
    return e;
  };
  if (auto conns = table.counters())
    for (auto& c : *conns)
      entry(c).connections = c.packets;
  if (auto traffic = table.traffic())
    for (auto& c : *traffic) {
      auto& e = entry(c);
      e.packets = c.packets;
      e.bytes = c.bytes;
    }
  std::vector<vip_port_traffic> out;
  out.reserve(by_key.size());
  for (auto& kv : by_key)
    out.push_back(std::move(kv.second));
  return out;
}

/// The DNAT backend the --dataplane flag names. The other backend's rules,
/// left by a previous run with the other flag, are removed first: two sets
/// of DNAT for one VIP would disagree after the next change.
std::shared_ptr<nat::dnat_table> make_dnat_table(const std::string& which) {
  if (which == "iptables") {
    if (auto r = nft::remove_table_if_present(""); !r)
      NWD_LOG_WARN(who, "nftables: cannot check for table ip {}: {}",
                   nft::table_name, r.error().message);
    else if (*r)
      NWD_LOG_INFO(who, "removed table ip {} (--dataplane=nft before)",
                   nft::table_name);
    return std::make_shared<nat::iptables_dnat_table>();
  }
  nat::iptables_dnat_table old;
  if (auto st = old.read();
      st && (st->has_prerouting_chain || st->has_output_chain)) {
    if (auto r = old.remove_all(); !r)
      NWD_LOG_WARN(who, "cannot remove the chains of --dataplane=iptables: {}",
                   r.error().message);
    else
      NWD_LOG_INFO(who,
                   "removed chains {} and {} (--dataplane=iptables "
                   "before)",
                   nat::prerouting_chain, nat::output_chain);
  }
  return std::make_shared<nft::nft_dnat_table>();
}

/// The VIP engine's effect workers, each on its own thread; the holders
/// (one per VIP key) are spawned by the VIP registry through make_vip.
vip_env start_vip_engine(caf::actor_system& sys, parts& p,
                         const node_config& cfg, health_hub_actor hub) {
  auto& opts = cfg.opts;
  vip_env venv;
  venv.hostname = opts.hostname;
  venv.node_ip = opts.net_address;
  venv.interface = opts.net_interface;
  venv.health = std::move(hub);
  // The holders' etcd calls: one worker. With four (concurrent lock txns
  // committed together, a faster cold start) a SIGTERM of a node with
  // thousands of VIPs hung in the scale benchmark, not understood yet.
  venv.etcd = p.add("etcd-worker",
                    sys.spawn<caf::detached>(etcd_worker, cfg.client), false);
  venv.spread
    = p.add("spread-writer", sys.spawn(spread_writer, venv.etcd), false);
  link_config lcfg;
  lcfg.interface = opts.net_interface;
  if (auto a = netlink::rtnl_address_manager::open())
    lcfg.addresses = std::shared_ptr<netlink::address_manager>(std::move(*a));
  else
    NWD_LOG_ERROR(who, "netlink: {} (VIP addresses cannot be managed)",
                  a.error().message);
  if (auto a = arp::packet_announcer::open())
    lcfg.announcer = std::shared_ptr<arp::announcer>(std::move(*a));
  else
    NWD_LOG_ERROR(who, "ARP: {} (no gratuitous ARP)", a.error().message);
  venv.link
    = p.add("link-worker", sys.spawn<caf::detached>(link_worker, lcfg), false);
  p.dnat = make_dnat_table(opts.dataplane);
  venv.nat = p.add(
    "nat-manager",
    sys.spawn<caf::detached>(nat_manager, p.dnat,
                             // Until the nat_audit_s knob says otherwise.
                             config::default_knobs().audit.nat),
    false);
  venv.monitor = link_monitor::start(opts.net_interface);
  venv.board = std::make_shared<vip_board>();
  return venv;
}

/// Starts every component in order; the table lists them.
void start_components(caf::actor_system& sys, parts& p,
                      const node_config& cfg) {
  auto& opts = cfg.opts;
  dns_responder_config rcfg;
  rcfg.server = cfg.dns;
  rcfg.node_ip = opts.net_address;
  rcfg.hosts_file = opts.hosts_file;
  p.responder = p.add("dns-responder", sys.spawn(dns_responder, rcfg));
  resolv_guardian_config gcfg;
  gcfg.path = opts.resolv_conf;
  gcfg.our_ip = cfg.own_ips.front();
  gcfg.own_ips = cfg.own_ips;
  gcfg.responder = p.responder;
  p.guardian = p.add("resolv-guardian", sys.spawn(resolv_guardian, gcfg));
  auto hub = p.add("health-hub", sys.spawn(health_hub, hub_config(cfg)));
  auto venv = start_vip_engine(sys, p, cfg, hub);

  // The etcd side: the registry of VIP holders, the session (its lease
  // goes to the registry, the leader and the link worker), the watch
  // router (typed keys to each family's actors, knobs to every listener)
  // and their front.
  vip_registry_config vcfg;
  vcfg.board = std::make_shared<lease_board>();
  vcfg.make_vip
    = [venv, board = vcfg.board](caf::actor_system& s, const std::string& key) {
        return s.spawn(vip_holder, key, venv,
                       std::shared_ptr<const lease_board>{board});
      };
  vcfg.dns = p.responder;
  vcfg.link = venv.link;
  vcfg.nat = venv.nat;
  vcfg.node_ip = opts.net_address;
  auto registry = p.add("vip-registry", sys.spawn(vip_registry, vcfg));
  auto leader
    = p.add("leader", sys.spawn(leader_duties, leader_cfg(opts, venv.etcd)));
  session_config scfg;
  scfg.client = cfg.client;
  if (cfg.client)
    scfg.worker = sys.spawn<caf::detached>(session_worker, cfg.client);
  scfg.registry = registry;
  scfg.leader = leader;
  scfg.link = venv.link;
  auto session = p.add("session", sys.spawn(networkd::session, scfg));
  watch_router_config wcfg;
  wcfg.client = cfg.client;
  wcfg.prefixes = watched_prefixes(opts);
  wcfg.log_level = opts.verbose ? "debug" : "info";
  wcfg.nat = venv.nat;
  wcfg.registry = registry;
  wcfg.dns = p.responder;
  wcfg.leader = leader;
  wcfg.listeners = {p.responder, hub, leader, session};
  if (opts.acl) {
    p.acl_table = make_acl_table(opts.dataplane);
    p.acl_status = std::make_shared<acl_board>();
    wcfg.acl
      = p.add("acl-keeper",
              sys.spawn<caf::detached>(acl_keeper, p.acl_table, p.acl_status));
    wcfg.listeners.push_back(wcfg.acl);
  }
  auto router = p.add("watch-router", sys.spawn(watch_router, wcfg));
  p.sup = p.add("supervisor",
                sys.spawn(supervisor, supervisor_config{opts.hostname, session,
                                                        router, registry}));
  // Their states are in the supervisor's (/v1/state).
  std::vector<caf::actor> fronted{
    caf::actor_cast<caf::actor>(registry), caf::actor_cast<caf::actor>(session),
    caf::actor_cast<caf::actor>(router), caf::actor_cast<caf::actor>(p.sup)};

  p.admin = std::make_unique<admin_server>(sys, p.sup);
  p.admin->set_identity({cfg.opts.hostname, cfg.opts.net_address});
  for (auto& c : p.table)
    if (c.awaited
        && std::find(fronted.begin(), fronted.end(), c.handle) == fronted.end())
      p.admin->add_actor(caf::actor_cast<status_client_actor>(c.handle));
  p.admin->add_actor(venv.nat);
  p.admin->add_actor_route("/v1/procs", hub);
  p.admin->add_metrics(process_metrics);
  p.admin->add_status_metrics(venv.nat, nat_status_metrics());
  p.admin->add_status_metrics(caf::actor_cast<status_client_actor>(leader),
                              leader_status_metrics());
  if (wcfg.acl)
    p.admin->add_status_metrics(caf::actor_cast<status_client_actor>(wcfg.acl),
                                acl_status_metrics());
  p.admin->add_metrics(
    [board = venv.board] { return vip_metrics(board->snapshot()); });
  p.admin->add_metrics([dns = cfg.dns] {
    return dns_metrics(dns->stats(), dns->upstream_health());
  });
  if (auto nft = std::dynamic_pointer_cast<nft::nft_dnat_table>(p.dnat)) {
    p.admin->add_metrics(
      [nft] { return vip_traffic_metrics(read_vip_traffic(*nft)); });
    p.admin->set_vip_traffic([nft] { return read_vip_traffic(*nft); });
  }
  p.admin->add_route(
    {"/v1/dns/config", [dns = cfg.dns] { return dns->config_text(); }});
  p.admin->add_handler(
    "/v1/dns/lookup", [&sys, dns = p.responder](const admin_request& r) {
      if (!r.has("name"))
        return json_error(400, "name: missing (/v1/dns/lookup?name=N&type=T)");
      admin_reply out = json_error(503, "dns-responder: no answer");
      caf::scoped_actor self{sys};
      self
        ->request(dns, std::chrono::seconds(3), atom::lookup_v, r.param("name"),
                  r.param("type"))
        .receive(
          [&](std::string& body) {
            bool bad = body.rfind("{\"error\"", 0) == 0;
            out = {bad ? 400 : 200, "application/json", std::move(body) + "\n"};
          },
          [&](caf::error& e) {
            out = json_error(503, "dns-responder: " + caf::to_string(e));
          });
      return out;
    });
  if (p.acl_table)
    p.admin->add_route(
      {"/v1/acl",
       [t = p.acl_table, b = p.acl_status] { return acl_json(*t, *b) + "\n"; },
       "application/json"});
}

struct node_state {
  static inline const char* name = "node";
  std::shared_ptr<parts> p;
  std::chrono::microseconds watchdog{0};
  size_t awaiting = 0; ///< components not down yet during shutdown
  caf::response_promise stopped;
  bool stopping = false;
};

using node_pointer = node_actor::stateful_pointer<node_state>;

void finish(node_pointer self) {
  auto& p = *self->state.p;
  p.admin->stop();
  p.dns->stop();
  self->state.stopped.deliver(true);
  self->quit();
}

node_actor::behavior_type node(node_pointer self, std::shared_ptr<parts> p) {
  self->state.p = std::move(p);
  for (auto& c : self->state.p->table)
    self->monitor(c.handle);
  self->set_down_handler([self](caf::down_msg& msg) {
    auto& st = self->state;
    for (auto& c : st.p->table) {
      if (c.handle.address() != msg.source)
        continue;
      if (!st.stopping)
        NWD_LOG_ERROR(who, "{} stopped: {}", c.name,
                      self->system().render(msg.reason));
      else if (c.awaited && --st.awaiting == 0)
        finish(self);
    }
  });
  if (auto wd = sd_watchdog_period()) {
    self->state.watchdog = *wd / 2;
    self->send(self, atom::tick_v);
  }
  return {
    [self](atom::reload) {
      auto& p = *self->state.p;
      self->send(p.sup, atom::reload_v);
      self->send(p.responder, atom::reload_v);
      self->send(p.guardian, atom::reload_v);
    },
    [self](atom::status) {
      // Asks every component in turn: the node is detached.
      NWD_LOG_INFO(who, "SIGUSR1: state {}",
                   self->state.p->admin->state_json());
    },
    [self](atom::tick) {
      auto& st = self->state;
      if (st.stopping)
        return;
      self->request(st.p->sup, std::chrono::seconds(2), atom::ready_v)
        .then([](bool) { sd_notify_state("WATCHDOG=1"); }, [](caf::error&) {});
      self->delayed_send(self, st.watchdog, atom::tick_v);
    },
    [self](atom::shutdown) -> caf::result<bool> {
      auto& st = self->state;
      if (st.stopping)
        return st.stopped;
      st.stopping = true;
      st.stopped = self->make_response_promise();
      for (auto& c : st.p->table)
        st.awaiting += c.awaited ? 1 : 0;
      // The supervisor releases every VIP first; then all stop.
      auto stop_all = [self] { self->state.p->stop_all(); };
      self->request(st.p->sup, std::chrono::seconds(5), atom::shutdown_v)
        .then([stop_all](bool) { stop_all(); },
              [stop_all](caf::error&) { stop_all(); });
      return st.stopped;
    },
  };
}

} // namespace

result<node_actor> start_node(caf::actor_system& sys, node_config cfg) {
  auto p = std::make_shared<parts>();
  p->dns = cfg.dns;
  start_components(sys, *p, cfg);
  auto api = split_host_port(cfg.opts.api_addr);
  if (auto r = p->admin->start(api->host, api->port); !r) {
    p->stop_all();
    return r.error();
  }
  return sys.spawn<caf::detached>(node, p);
}

} // namespace networkd
