// SPDX-License-Identifier: MIT
// networkd: parses flags, takes the lock file, binds DNS, starts the actor
// system and the node (actors/node.hpp), and turns signals into messages:
// SIGTERM, SIGINT and SIGQUIT release and stop, SIGHUP reads everything
// again, SIGUSR1 logs the state. `networkd ctl ...` is the admin API's
// client instead (actors/ctl.hpp).
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
#include <cstdio>
#include <cstring>
#include <iostream>
#include <thread>
#include <vector>

#include "actors/cli.hpp"
#include "actors/ctl.hpp"
#include "actors/errors.hpp"
#include "actors/memory.hpp"
#include "actors/node.hpp"
#include "actors/sd_notify.hpp"
#include "dns/server.hpp"
#include "net/base/log.hpp"
#include "net/etcd/etcd.hpp"

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
    auto mask = reinterpret_cast<sockaddr_in*>(i->ifa_netmask)->sin_addr.s_addr;
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

/// The actor system's settings. The scheduler is CAF's work sharing: one
/// job queue and a condition variable, so an idle worker sleeps until a job
/// comes. CAF's default work stealing polls instead: after each job a worker
/// spins 100 times and sleeps 50 us 500 times, and then wakes every 10 ms to
/// look for work (about 400 wake-ups a second per idle worker, 1.9 % of a
/// core for the 4 default workers; bench/idle.sh). Our actors only decide:
/// DNS sockets, gRPC streams, netlink and the admin endpoint run on their
/// own threads or detached actors, so a queue shared by a few workers is
/// never contended. Workers: one per core, 4 to 8. Sleeping workers cost
/// nothing; with 2 (on 2 cores) networkd kept 1-2 MB more heap under the
/// DNS benchmark (bench/README.md).
class system_config : public caf::actor_system_config {
public:
  system_config() {
    register_networkd(*this);
    set("logger.verbosity", caf::atom("quiet"));
    set("scheduler.policy", caf::atom("sharing"));
    auto cores = static_cast<size_t>(std::thread::hardware_concurrency());
    set("scheduler.max-threads", std::clamp(cores, size_t{4}, size_t{8}));
  }
};

/// The etcd flags: TLS files and the password must be readable, the
/// endpoints well formed. Exit code 2 otherwise.
result<etcd::client_config> etcd_config(options& opts) {
  if (auto r = load_etcd_secrets(opts); !r)
    return r.error();
  auto endpoints = etcd::parse_endpoints(opts.etcd_endpoint);
  if (!endpoints)
    return make_failure(endpoints.error().code,
                        "-etcd.endpoint: " + endpoints.error().message);
  etcd::client_config ecfg;
  ecfg.endpoints = *endpoints;
  ecfg.ca_file = opts.etcd_ca;
  ecfg.cert_file = opts.etcd_cert;
  ecfg.key_file = opts.etcd_key;
  ecfg.user = opts.etcd_user;
  ecfg.password = opts.etcd_password;
  return ecfg;
}

/// The machine's hostname and the interface's address, unless given.
void fill_identity(options& opts) {
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
}

/// Binds and starts the DNS server: a port that cannot be bound stops the
/// start ("bad_option": a bad listen address or network).
result<std::shared_ptr<dns::server>> start_dns(const options& opts,
                                               std::vector<std::string>& ips) {
  dns::server_options dopts;
  dopts.listen = split_list(opts.godns_addr);
  for (auto& l : dopts.listen) {
    // A listener on every address answers on loopback: resolv.conf names
    // 127.0.0.1, and only loopback and --dns-allow clients are answered.
    auto host = split_host_port(l)->host;
    ips.push_back(host == "0.0.0.0" ? "127.0.0.1" : host);
  }
  dopts.allowed_networks = split_list(opts.dns_allow);
  for (auto& n : networks_of(ips))
    dopts.allowed_networks.push_back(n);
  auto server = std::make_shared<dns::server>(dopts);
  // Until the supervisor sends the dns_* knobs in force.
  server->tune(config::default_knobs().dns);
  if (auto r = server->start(); !r)
    return r.error();
  return server;
}

/// Signals are taken by sigwait in the main thread; every other thread
/// inherits the mask.
sigset_t block_signals() {
  sigset_t sigs;
  sigemptyset(&sigs);
  for (int sig : {SIGTERM, SIGINT, SIGQUIT, SIGHUP, SIGUSR1})
    sigaddset(&sigs, sig);
  pthread_sigmask(SIG_BLOCK, &sigs, nullptr);
  signal(SIGPIPE, SIG_IGN);
  return sigs;
}

/// Turns signals into messages to the node until a stopping one comes.
void serve_signals(const sigset_t& sigs, const node_actor& node,
                   const options& opts) {
  for (;;) {
    int sig = 0;
    sigwait(&sigs, &sig);
    if (sig == SIGUSR1) {
      caf::anon_send(node, atom::status_v);
    } else if (sig == SIGHUP) {
      NWD_LOG_INFO(who, "SIGHUP: reading etcd, the hosts file and {} again",
                   opts.resolv_conf);
      caf::anon_send(node, atom::reload_v);
    } else {
      NWD_LOG_INFO(who, "{}: releasing everything and stopping",
                   strsignal(sig));
      return;
    }
  }
}

} // namespace

int main(int argc, char** argv) {
  // `networkd ctl ...`: a client of a running daemon's admin API.
  if (argc > 1 && std::string{argv[1]} == "ctl")
    return ctl::run(std::vector<std::string>(argv + 2, argv + argc),
                    options{}.api_addr, std::cout, std::cerr);
  tune_malloc();
  auto parsed = parse_options(std::vector<std::string>(argv + 1, argv + argc));
  if (!parsed) {
    std::fprintf(stderr, "networkd: %s (see --help)\n",
                 parsed.error().message.c_str());
    return 2;
  }
  auto opts = std::move(*parsed);
  if (opts.help || opts.version) {
    std::cout << (opts.help ? usage()
                            : "networkd Version: " NETWORKD_VERSION "\n");
    return 0;
  }
  auto ecfg = etcd_config(opts);
  if (!ecfg) {
    std::fprintf(stderr, "networkd: %s\n", ecfg.error().message.c_str());
    return 2;
  }
  log::init(opts.verbose);
  for (auto& f : opts.ignored)
    NWD_LOG_WARN(who, "flag {}", f);
  int lock_fd = take_lock(opts.lock_filename);
  if (lock_fd < 0)
    return 1;
  fill_identity(opts);
  auto sigs = block_signals();
  NWD_LOG_INFO(who, "networkd {} starting: hostname {}, address {}, etcd {}",
               NETWORKD_VERSION, opts.hostname, opts.net_address,
               opts.etcd_endpoint);
  node_config ncfg;
  auto dns = start_dns(opts, ncfg.own_ips);
  if (!dns) {
    NWD_LOG_ERROR(who, "DNS server: {}", dns.error().message);
    return dns.error().code == "bad_option" ? 2 : 1;
  }
  ncfg.dns = *dns;
  ncfg.client = std::make_shared<etcd::client>(*ecfg);
  ncfg.opts = opts;
  int rc = 0;
  {
    system_config cfg;
    caf::actor_system sys{cfg};
    auto node = start_node(sys, std::move(ncfg));
    if (!node) {
      NWD_LOG_ERROR(who, "{}", node.error().message);
      rc = 1;
    } else {
      sd_notify_state("READY=1");
      serve_signals(sigs, *node, opts);
      sd_notify_state("STOPPING=1");
      caf::scoped_actor self{sys};
      self->request(*node, std::chrono::seconds(15), atom::shutdown_v)
        .receive([](bool) {}, [](caf::error&) {});
    }
  }
  ::close(lock_fd);
  NWD_LOG_INFO(who, "stopped");
  return rc;
}
