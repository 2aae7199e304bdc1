// SPDX-License-Identifier: MIT
// The etcd key contract as plain structs, and the parsers that turn a key and
// its raw value into them. Pure functions: no I/O, no CAF. A bad value yields
// a failure whose message names the key and the reason.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "net/base/host_port.hpp"
#include "net/base/result.hpp"
#include "net/cluster/knobs.hpp"

namespace networkd::config {

/// Largest value accepted for any key (bytes); bigger values are rejected
/// with code "too_large" before any JSON parsing.
constexpr size_t max_value_size = 256 * 1024;

/// How many entries one value may list; more is rejected as "too_many"
/// naming the field and the limit (README: limits).
constexpr size_t max_vip_ports = 256;       ///< ports of one VIP key
constexpr size_t max_excluded_nodes = 1024; ///< excluded_nodes of one VIP
constexpr size_t max_domain_ips = 64;       ///< ips of one domain
constexpr size_t max_domain_servers = 16;   ///< servers of one domain
constexpr size_t max_vippool = 1024;        ///< streamrouter pool addresses
constexpr size_t max_streamrouter_ports = max_vip_ports; ///< lainlet's list
/// Keys networkd acts on per family (VIPs, domains, ...); new keys past it
/// are ignored and counted.
constexpr size_t max_keys_per_family = 50000;

/// Failure codes: "bad_key" (key shape), "bad_json" (not JSON / wrong top
/// level type), "bad_field" (missing, wrong type or out of range),
/// "too_large", "too_many" (a list longer than its limit), "unknown_knob".

// -- key families -------------------------------------------------------------

inline constexpr std::string_view vips_prefix = "/lain/config/vips/";
inline constexpr std::string_view domains_prefix = "/lain/config/domains/";
inline constexpr std::string_view domain_servers_prefix
  = "/lain/config/domain_servers/";
inline constexpr std::string_view vippool_key
  = "/lain/config/streamrouter/vippool";
inline constexpr std::string_view swarm_leader_key
  = "/lain/swarm/docker/swarm/leader";
inline constexpr std::string_view deployd_leader_key = "/lain/deployd/leader";
inline constexpr std::string_view knobs_prefix = "/lain/networkd/config/";
/// Written by networkd: one key per candidate of the leader election,
/// /lain/networkd/leader/{lease id in hex} = hostname, on that lease.
inline constexpr std::string_view leader_prefix = "/lain/networkd/leader/";
/// Written by networkd: /lain/networkd/vips/{IP}.lock = holder's hostname.
inline constexpr std::string_view vip_locks_prefix = "/lain/networkd/vips/";
/// Written by networkd: /lain/networkd/apps/{app}/{proc}/{ip}:{port} = the
/// hostname serving a port-only VIP (on that node's lease).
inline constexpr std::string_view app_endpoints_prefix = "/lain/networkd/apps/";
/// Written by networkd: /lain/networkd/containers/{app}/{proc}/{instance}/{vip}
/// = "used" or "unused" (on the node's lease): how many VIPs of a proc each
/// instance holds, so that VIPs spread over the instances.
inline constexpr std::string_view container_vips_prefix
  = "/lain/networkd/containers/";
/// Written by the leader: /lain/config/tinydns_fqdns/{domain} = JSON list of
/// tinydns data lines.
inline constexpr std::string_view tinydns_fqdns_prefix
  = "/lain/config/tinydns_fqdns/";

enum class family : uint8_t {
  vip,
  domain,
  domain_servers,
  vippool,
  swarm_leader,
  deployd_leader,
  knob,
  vip_lock,         ///< suffix: the VIP's IP
  leader_candidate, ///< suffix: the candidate's lease id
  app_endpoint,     ///< suffix: "{app}/{proc}/{ip}:{port}"
  tinydns_fqdns,    ///< suffix: the domain
  container_vip,    ///< suffix: "{app}/{proc}/{instance}/{vip}"
  acl,              ///< /lain/config/whitelist_* (parsed by net/kernel/acl.hpp)
  unknown,
};

const char* to_string(family f);

/// Which family a full key belongs to, and its suffix after the prefix
/// (e.g. "10.0.0.5:80" for a VIP key). Exact keys have an empty suffix.
struct classified {
  family fam = family::unknown;
  std::string suffix;
};
classified classify(std::string_view full_key);

// -- values -------------------------------------------------------------------

/// True for a dotted-quad IPv4 address ("10.0.0.1"; no leading zeros, no
/// spaces, each part 0..255).
bool is_ipv4(std::string_view text);

/// A port from text: 1..65535 (net/base/host_port.hpp).
using networkd::parse_port;

enum class proto : uint8_t { tcp, udp };
const char* to_string(proto p);

struct port_mapping {
  uint16_t src = 0; ///< port on the VIP (or node)
  proto protocol = proto::tcp;
  uint16_t dest = 0; ///< port in the container; defaults to src
  friend bool operator==(const port_mapping& a, const port_mapping& b) {
    return a.src == b.src && a.protocol == b.protocol && a.dest == b.dest;
  }
};

/// /lain/config/vips/{IP} or /lain/config/vips/{IP}:{PORT}.
struct vip_config {
  std::string key;       ///< suffix as written: "10.0.0.5" or "0.0.0.0:8080"
  std::string ip;        ///< address part; "0.0.0.0" means the node's address
  uint16_t key_port = 0; ///< the PORT of an IP:PORT key, else 0
  std::string app;
  std::string proc;
  std::vector<port_mapping> ports;
  std::vector<std::string> excluded_nodes;
  bool port_only() const { return key_port != 0; }
};

/// Parses the VIP key suffix and its JSON value. Requires app, proc and a
/// non-empty ports list (an IP:PORT key may give ports entries without
/// "src", which then take PORT). Duplicate (src, proto) entries are rejected.
result<vip_config> parse_vip(std::string_view key_suffix,
                             std::string_view value);

enum class domain_type : uint8_t { fixed, node, webrouter };
/// Inline: dns/ (which does not link the cluster library) names them too.
inline const char* to_string(domain_type t) {
  switch (t) {
    case domain_type::fixed:
      return "fixed";
    case domain_type::node:
      return "node";
    case domain_type::webrouter:
      return "webrouter";
  }
  return "unknown";
}

/// /lain/config/domains/{name}.
struct domain_config {
  std::string name;      ///< lower-cased, without a trailing dot, as in the key
  bool wildcard = false; ///< key started with "*."
  std::string suffix;    ///< for wildcards: the name without "*." ("lain")
  domain_type type = domain_type::fixed;
  std::vector<std::string> ips; ///< IPv4 addresses for type fixed
};

result<domain_config> parse_domain(std::string_view name,
                                   std::string_view value);

struct upstream {
  std::string ip;
  uint16_t port = 53;
  friend bool operator==(const upstream& a, const upstream& b) {
    return a.ip == b.ip && a.port == b.port;
  }
};

/// "ip#port" or "ip" (port 53), as dnsmasq's server= lines.
result<upstream> parse_upstream(std::string_view text);

/// /lain/config/domain_servers/{domain}: {"servers":["ip#port",...]}.
struct domain_servers_config {
  std::string domain; ///< lower-cased, no trailing dot
  std::vector<upstream> servers;
};

result<domain_servers_config> parse_domain_servers(std::string_view domain,
                                                   std::string_view value);

/// "ip:port" values of the swarm and deployd leader keys.
struct leader_addr {
  std::string ip;
  uint16_t port = 0;
};

result<leader_addr> parse_leader(std::string_view key, std::string_view value);

/// The suffix of an app endpoint key, "{app}/{proc}/{ip}:{port}".
struct app_endpoint {
  std::string app;
  std::string proc;
  std::string ip;
  uint16_t port = 0;
};

result<app_endpoint> parse_app_endpoint(std::string_view suffix);

/// The suffix of a spreading key, "{app}/{proc}/{instance}/{vip}", and its
/// value ("used" or "unused").
struct container_vip {
  std::string app;
  std::string proc;
  int64_t instance = 0;
  std::string vip;
  bool used = false;
};

result<container_vip> parse_container_vip(std::string_view suffix,
                                          std::string_view value);

/// lainlet's /v2/streamrouter/ports: a JSON list of ports (numbers or
/// strings). Sorted, duplicates dropped.
result<std::vector<uint16_t>> parse_streamrouter_ports(std::string_view value);

/// /lain/config/streamrouter/vippool: JSON list of IPv4 strings.
result<std::vector<std::string>> parse_vippool(std::string_view value);

/// A knob: name and value checked against its spec (net/cluster/knobs.hpp).
result<knob> parse_knob(std::string_view name, std::string_view value);

} // namespace networkd::config
