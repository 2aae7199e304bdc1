// SPDX-License-Identifier: MIT
// Command line: the original daemon's flags (one or two dashes, "-f=v" or
// "-f v") plus networkd's own. Pure parsing; main() acts on the result.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "net/base/result.hpp"

namespace networkd {

struct options {
  std::string etcd_endpoint = "http://127.0.0.1:4001";
  std::string lainlet_endpoint = "127.0.0.1:9001";
  std::string docker_endpoint = "unix:///var/run/docker.sock";
  std::string net_interface = "eth0";
  std::string net_address; ///< empty: the interface's first IPv4 address
  std::string hostname;    ///< empty: the machine's hostname
  std::string domain;      ///< cluster domain (e.g. "lain.local")
  std::string godns_addr = "127.0.0.1:53";
  std::string api_addr = "127.0.0.1:3000";
  std::string lock_filename = "/var/run/lain-networkd.pid";
  bool tinydns = false;
  bool swarm = false;
  bool webrouter = false;
  bool deployd = false;
  bool streamrouter = false;
  bool acl = false;
  bool libnetwork = false; ///< accepted for compatibility, ignored
  bool verbose = false;
  bool version = false;
  bool help = false;
  std::string resolv_conf = "/etc/resolv.conf";
  std::string hosts_file = "/etc/hosts";
  /// Extra networks (CIDRs, comma-separated) whose clients may query DNS;
  /// loopback and the networks of the listen addresses always may.
  std::string dns_allow;
  /// Where the containers of this node come from: lainlet | deployd.
  std::string containers_from = "lainlet";
  /// How VIP DNAT reaches the kernel: nft (one nftables map, netlink) |
  /// iptables (chains lain-PREROUTING/lain-OUTPUT, iptables-restore).
  std::string dataplane = "nft";
  std::string etcd_ca;
  std::string etcd_cert;
  std::string etcd_key;
  std::string etcd_user;
  /// Filled by load_etcd_secrets() from, in this order: --etcd-password,
  /// --etcd-password-file (the two exclude each other),
  /// NETWORKD_ETCD_PASSWORD.
  std::string etcd_password;
  std::string etcd_password_file;
  /// Old forms seen (ignored flags, old names, ":53"), each with what it
  /// now means: one warning each at start.
  std::vector<std::string> ignored;
};

/// Parses argv (without argv[0]). A failure names the flag and the reason;
/// main() prints it in one line and exits with code 2.
result<options> parse_options(const std::vector<std::string>& args);

/// The environment variable read for the etcd password when no password
/// flag is given.
constexpr const char* etcd_password_env = "NETWORKD_ETCD_PASSWORD";

/// Reads the files the etcd flags name, before anything runs: checks that
/// --etcd-ca, --etcd-cert and --etcd-key are readable and not empty, and
/// sets opts.etcd_password from --etcd-password-file (its contents, trailing
/// newlines stripped) or, when neither password flag is given, from
/// NETWORKD_ETCD_PASSWORD. Unsets NETWORKD_ETCD_PASSWORD either way so
/// that child processes do not inherit it. A failure names the flag and the
/// file; main() prints it in one line and exits with code 2.
result<unit> load_etcd_secrets(options& opts);

/// The --help text: every flag with its default.
std::string usage();

} // namespace networkd
