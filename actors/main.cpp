// SPDX-License-Identifier: MIT
// networkd: parses flags, takes the lock file, starts the actor system, the
// supervisor and the admin endpoint; SIGTERM, SIGINT and SIGQUIT release
// and stop, SIGHUP reads everything again, SIGUSR1 logs the state.
#include <caf/all.hpp>

#include <arpa/inet.h>
#include <fcntl.h>
#include <ifaddrs.h>
#include <malloc.h>
#include <net/if.h>
#include <signal.h>
#include <sys/file.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iostream>
#include <mutex>
#include <thread>
#include <vector>

#include "actors/admin.hpp"
#include "actors/cli.hpp"
#include "actors/dns_responder.hpp"
#include "actors/health.hpp"
#include "actors/acl_keeper.hpp"
#include "actors/leader.hpp"
#include "actors/memory.hpp"
#include "actors/sd_notify.hpp"
#include "actors/resolv_guardian.hpp"
#include "actors/errors.hpp"
#include "actors/supervisor.hpp"
#include "actors/vip_engine.hpp"
#include "actors/vip_holder.hpp"
#include "net/docker.hpp"
#include "net/etcd.hpp"
#include "net/log.hpp"

using namespace networkd;

namespace {

constexpr const char* who = "main";

/// The first IPv4 address of `ifname`, or "" when it has none.
std::string interface_address(const std::string& ifname) {
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0)
    return {};
  std::string found;
  for (auto* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET)
      continue;
    if (ifname != i->ifa_name)
      continue;
    char buf[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    inet_ntop(AF_INET, &sin->sin_addr, buf, sizeof(buf));
    found = buf;
    break;
  }
  freeifaddrs(list);
  return found;
}

std::vector<std::string> split_list(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    auto end = text.find(',', start);
    if (end == std::string::npos)
      end = text.size();
    if (end > start)
      out.push_back(text.substr(start, end - start));
    start = end + 1;
  }
  return out;
}

/// The connected IPv4 networks (CIDR) of the interfaces that carry `ips`,
/// loopback excluded (always allowed).
std::vector<std::string> networks_of(const std::vector<std::string>& ips) {
  std::vector<std::string> out;
  ifaddrs* list = nullptr;
  if (getifaddrs(&list) != 0)
    return out;
  for (auto* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_netmask == nullptr
        || i->ifa_addr->sa_family != AF_INET)
      continue;
    auto addr = reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr.s_addr;
    auto mask
      = reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr;
    char buf[INET_ADDRSTRLEN];
    inet_ntop(AF_INET, &addr, buf, sizeof(buf));
    if (std::find(ips.begin(), ips.end(), buf) == ips.end())
      continue;
    if ((ntohl(addr) >> 24) == 127)
      continue;
    in_addr net{addr & mask};
    inet_ntop(AF_INET, &net, buf, sizeof(buf));
    out.push_back(std::string{buf} + "/"
                  + std::to_string(__builtin_popcount(ntohl(mask))));
  }
  freeifaddrs(list);
  return out;
}

/// Holds an exclusive flock on the lock file for the process's life.
int take_lock(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) {
    std::fprintf(stderr, "networkd: cannot open lock file %s: %s\n",
                 path.c_str(), std::strerror(errno));
    return -1;
  }
  if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
    std::fprintf(stderr,
                 "networkd: another networkd holds the lock file %s; "
                 "refusing to start\n",
                 path.c_str());
    ::close(fd);
    return -1;
  }
  auto pid = std::to_string(::getpid()) + "\n";
  if (::ftruncate(fd, 0) == 0 && ::write(fd, pid.data(), pid.size()) < 0)
    NWD_LOG_WARN(who, "cannot write pid to {}", path);
  return fd;
}

class system_config : public caf::actor_system_config {
public:
  system_config() {
    register_networkd(*this);
    set("logger.verbosity", caf::atom("quiet"));
  }
};

} // namespace

int main(int argc, char** argv) {
  tune_malloc();
  std::vector<std::string> args(argv + 1, argv + argc);
  auto parsed = parse_options(args);
  if (!parsed) {
    std::fprintf(stderr, "networkd: %s (see --help)\n",
                 parsed.error().message.c_str());
    return 2;
  }
  auto opts = std::move(*parsed);
  if (opts.help) {
    std::cout << usage();
    return 0;
  }
  if (opts.version) {
    std::cout << "networkd Version: " << NETWORKD_VERSION << "\n";
    return 0;
  }
  // TLS files and the password: unreadable ones stop the start here.
  if (auto r = load_etcd_secrets(opts); !r) {
    std::fprintf(stderr, "networkd: %s\n", r.error().message.c_str());
    return 2;
  }
  auto endpoints = etcd::parse_endpoints(opts.etcd_endpoint);
  if (!endpoints) {
    std::fprintf(stderr, "networkd: -etcd.endpoint: %s\n",
                 endpoints.error().message.c_str());
    return 2;
  }
  auto api = split_host_port(opts.api_addr);
  log::init(opts.verbose);
  for (auto& f : opts.ignored)
    NWD_LOG_WARN(who, "flag {} is accepted for compatibility and ignored", f);
  int lock_fd = take_lock(opts.lock_filename);
  if (lock_fd < 0)
    return 1;
  if (opts.hostname.empty()) {
    char buf[256] = {};
    ::gethostname(buf, sizeof(buf) - 1);
    opts.hostname = buf;
  }
  if (opts.net_address.empty()) {
    opts.net_address = interface_address(opts.net_interface);
    if (opts.net_address.empty())
      NWD_LOG_WARN(who,
                   "interface {} has no IPv4 address and -net.address is "
                   "not set: node-typed names and port-only VIPs have no "
                   "address",
                   opts.net_interface);
  }

  // Signals are taken by sigwait in this thread; every other thread
  // inherits the mask.
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1})
    sigaddset(&sigs, sig);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);

  NWD_LOG_INFO(who, "networkd {} starting: hostname {}, address {}, etcd {}",
               NETWORKD_VERSION, opts.hostname, opts.net_address,
               opts.etcd_endpoint);

  // DNS first: a port that cannot be bound is a start-up failure.
  auto listen = split_list(opts.godns_addr);
  std::vector<std::string> own_ips;
  for (auto& l : listen)
    own_ips.push_back(split_host_port(l)->first);
  dns::server_options dopts;
  dopts.listen = listen;
  dopts.allowed_networks = split_list(opts.dns_allow);
  for (auto& n : networks_of(own_ips))
    dopts.allowed_networks.push_back(n);
  auto dns_server = std::make_shared<dns::server>(dopts);
  if (auto r = dns_server->start(); !r) {
    NWD_LOG_ERROR(who, "DNS server: {}", r.error().message);
    return r.error().code == "bad_option" ? 2 : 1;
  }

  etcd::client_config ecfg;
  ecfg.endpoints = *endpoints;
  ecfg.ca_file = opts.etcd_ca;
  ecfg.cert_file = opts.etcd_cert;
  ecfg.key_file = opts.etcd_key;
  ecfg.user = opts.etcd_user;
  ecfg.password = opts.etcd_password;
  auto client = std::make_shared<etcd::client>(ecfg);

  int rc = 0;
  {
    system_config cfg;
    caf::actor_system sys{cfg};
    supervisor_config scfg;
    scfg.client = client;
    scfg.hostname = opts.hostname;
    scfg.prefixes = default_prefixes();
    scfg.log_level = opts.verbose ? "debug" : "info";
    dns_responder_config rcfg;
    rcfg.server = dns_server;
    rcfg.node_ip = opts.net_address;
    rcfg.hosts_file = opts.hosts_file;
    auto responder = sys.spawn(dns_responder, rcfg);
    resolv_guardian_config gcfg;
    gcfg.path = opts.resolv_conf;
    gcfg.our_ip = own_ips.front();
    gcfg.own_ips = own_ips;
    gcfg.responder = responder;
    auto guardian = sys.spawn(resolv_guardian, gcfg);
    health_hub_config hcfg;
    hcfg.from = opts.containers_from == "deployd"
                  ? health_hub_config::source::deployd
                  : health_hub_config::source::lainlet;
    hcfg.lainlet_endpoint = opts.lainlet_endpoint;
    hcfg.nodename = opts.hostname;
    hcfg.etcd = client;
    if (auto sock = docker::socket_path(opts.docker_endpoint)) {
      if (::access(sock->c_str(), F_OK) == 0)
        hcfg.docker_socket = *sock;
      else
        NWD_LOG_INFO(who, "no Docker socket at {}: containers are not "
                          "cross-checked with Docker",
                     *sock);
    } else {
      NWD_LOG_WARN(who, "-docker.endpoint: {}", sock.error().message);
    }
    auto hub = sys.spawn(health_hub, hcfg);

    // The VIP engine: effect workers on their own threads, one holder per
    // VIP key (spawned by the supervisor).
    vip_env venv;
    venv.hostname = opts.hostname;
    venv.node_ip = opts.net_address;
    venv.interface = opts.net_interface;
    venv.health = hub;
    // The holders' etcd calls. More workers would let etcd commit
    // concurrent lock txns together (a faster cold start), but with four a
    // SIGTERM of a node with thousands of VIPs hung in the scale benchmark
    // (not understood yet): one until that is found. One VIP always uses
    // the same worker, so its own steps stay in order.
    std::vector<etcd_worker_actor> etcd_pool;
    for (int i = 0; i < 1; ++i)
      etcd_pool.push_back(sys.spawn<caf::detached>(etcd_worker, client));
    venv.etcd = etcd_pool.front();
    venv.spread = sys.spawn(spread_writer, etcd_pool.back());
    link_config lcfg;
    lcfg.interface = opts.net_interface;
    if (auto a = netlink::rtnl_address_manager::open())
      lcfg.addresses = std::shared_ptr<netlink::address_manager>(
        std::move(*a));
    else
      NWD_LOG_ERROR(who, "netlink: {} (VIP addresses cannot be managed)",
                    a.error().message);
    if (auto a = arp::packet_announcer::open())
      lcfg.announcer = std::shared_ptr<arp::announcer>(std::move(*a));
    else
      NWD_LOG_ERROR(who, "ARP: {} (no gratuitous ARP)", a.error().message);
    venv.link = sys.spawn<caf::detached>(link_worker, lcfg);
    venv.nat = sys.spawn<caf::detached>(
      nat_manager,
      std::shared_ptr<nat::dnat_table>(
        std::make_shared<nat::iptables_dnat_table>()),
      // Until the nat_audit_s knob says otherwise.
      std::chrono::seconds{config::find_knob("nat_audit_s")->default_number});
    venv.monitor = link_monitor::start(opts.net_interface);
    scfg.extend_addresses = [link = venv.link](int64_t valid_s) {
      caf::anon_send(link, atom::keepalive_v, valid_s);
    };
    scfg.nat_audit = [nat = venv.nat](int64_t seconds) {
      caf::anon_send(nat, atom::audit_v, seconds);
    };
    scfg.prune_leftovers = [link = venv.link, nat = venv.nat,
                            node_ip = opts.net_address](
                             std::vector<std::string> keep) {
      // Port-only VIPs DNAT on the node's own address.
      keep.push_back(node_ip);
      caf::anon_send(link, atom::prune_v, keep);
      caf::anon_send(nat, atom::prune_v, std::move(keep));
    };
    scfg.make_vip = [venv, etcd_pool](caf::actor_system& s,
                                      const std::string& key) {
      auto env = venv;
      env.etcd = etcd_pool[std::hash<std::string>{}(key) % etcd_pool.size()];
      return s.spawn(vip_holder, key, env);
    };
    scfg.listeners.push_back(responder);
    scfg.listeners.push_back(hub);
    scfg.dns = responder;
    leader_config lc;
    lc.hostname = opts.hostname;
    lc.etcd = venv.etcd;
    lc.swarm = opts.swarm;
    lc.deployd = opts.deployd;
    lc.webrouter = opts.webrouter;
    lc.tinydns = opts.tinydns;
    lc.streamrouter = opts.streamrouter;
    lc.cluster_domain = opts.domain;
    lc.lainlet_endpoint = opts.lainlet_endpoint;
    // What the publishers read beyond the default prefixes.
    if (opts.webrouter)
      scfg.prefixes.push_back(std::string{config::app_endpoints_prefix}
                              + "webrouter/worker/");
    if (opts.tinydns)
      scfg.prefixes.push_back(std::string{config::app_endpoints_prefix}
                              + "tinydns/worker/");
    if (opts.webrouter || opts.tinydns)
      scfg.prefixes.emplace_back(config::tinydns_fqdns_prefix);
    auto leader = sys.spawn(leader_duties, lc);
    scfg.leader = leader;
    scfg.listeners.push_back(leader);
    acl_keeper_actor acl;
    if (opts.acl) {
      for (auto p : {acl::whitelist_ips_prefix, acl::ex_ports_prefix,
                     acl::in_ports_prefix})
        scfg.prefixes.emplace_back(p);
      acl = sys.spawn<caf::detached>(
        acl_keeper, std::shared_ptr<acl::filter_table>(
                      std::make_shared<acl::iptables_filter_table>()));
      scfg.listeners.push_back(acl);
    }
    auto sup = sys.spawn(supervisor, scfg);

    admin_server admin{sys, sup};
    admin.add_actor(responder);
    admin.add_actor(guardian);
    admin.add_actor(hub);
    admin.add_actor(leader);
    admin.add_actor(venv.nat);
    if (acl)
      admin.add_actor(acl);
    admin.add_actor_route("/v1/procs", hub);
    admin.add_metrics([dns_server] { return dns_metrics(dns_server->stats()); });
    admin.add_route({"/v1/dns/config",
                     [dns_server] { return dns_server->config_text(); }});
    if (auto r = admin.start(api->first, api->second); !r) {
      NWD_LOG_ERROR(who, "{}", r.error().message);
      caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(guardian, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(responder, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(hub, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(leader, caf::exit_reason::user_shutdown);
      for (auto& w : etcd_pool)
        caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(venv.link, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(venv.spread, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(venv.nat, caf::exit_reason::user_shutdown);
      if (acl)
        caf::anon_send_exit(acl, caf::exit_reason::user_shutdown);
      return 1;
    }
    sd_notify_state("READY=1");

    // Watchdog: ping only while the supervisor answers.
    std::atomic<bool> running{true};
    std::mutex mtx;
    std::condition_variable cv;
    std::thread watchdog;
    if (auto wd = sd_watchdog_period()) {
      watchdog = std::thread([&, wd] {
        auto period = *wd / 2;
        std::unique_lock<std::mutex> lk{mtx};
        while (running) {
          cv.wait_for(lk, period);
          if (!running)
            break;
          caf::scoped_actor self{sys};
          bool alive = false;
          self->request(sup, std::chrono::seconds(2), atom::ready_v)
            .receive([&](bool) { alive = true; }, [&](caf::error&) {});
          if (alive)
            sd_notify_state("WATCHDOG=1");
        }
      });
    }

    for (;;) {
      int sig = 0;
      sigwait(&sigs, &sig);
      if (sig == SIGUSR1) {
        NWD_LOG_INFO(who, "SIGUSR1: state {}", admin.state_json());
        continue;
      }
      if (sig == SIGHUP) {
        NWD_LOG_INFO(who, "SIGHUP: reading etcd, the hosts file and {} again",
                     opts.resolv_conf);
        caf::anon_send(sup, atom::reload_v);
        caf::anon_send(responder, atom::reload_v);
        caf::anon_send(guardian, atom::reload_v);
        continue;
      }
      NWD_LOG_INFO(who, "{}: releasing everything and stopping",
                   strsignal(sig));
      break;
    }
    sd_notify_state("STOPPING=1");
    {
      caf::scoped_actor self{sys};
      self->request(sup, std::chrono::seconds(5), atom::shutdown_v)
        .receive([](bool) {}, [](caf::error&) {});
      caf::anon_send_exit(sup, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(guardian, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(responder, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(hub, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(leader, caf::exit_reason::user_shutdown);
      for (auto& w : etcd_pool)
        caf::anon_send_exit(w, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(venv.link, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(venv.spread, caf::exit_reason::user_shutdown);
      caf::anon_send_exit(venv.nat, caf::exit_reason::user_shutdown);
      self->wait_for(sup, guardian, responder, hub, leader);
      if (acl) {
        caf::anon_send_exit(acl, caf::exit_reason::user_shutdown);
        self->wait_for(acl);
      }
    }
    dns_server->stop();
    running = false;
    cv.notify_all();
    if (watchdog.joinable())
      watchdog.join();
    admin.stop();
  }
  ::close(lock_fd);
  NWD_LOG_INFO(who, "stopped");
  return rc;
}
