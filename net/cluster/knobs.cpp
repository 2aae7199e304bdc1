// SPDX-License-Identifier: MIT
#include "net/cluster/knobs.hpp"

namespace networkd::config {

namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

uint32_t u32(const knob& k) {
  return static_cast<uint32_t>(k.number);
}

// The one table of knobs. A row: name, numeric, min, max, unit, help,
// default (number, text), text choices, consumer, and where the value goes.
// Captureless lambdas: the `store` column is a plain function pointer.
// A function-local static: safe to use from other translation units' static
// initialisers.
const std::vector<knob_spec>& knob_table() {
  static const std::vector<knob_spec> table = {
    {"log_level", false, 0, 0, "",
     "log level of the daemon (unset: info, or debug with -verbose)", 0, "",
     "trace debug info warn error", "daemon",
     [](knob_values& v, const knob& k) { v.log_level = k.text; }},
    {"lease_ttl", true, 2, 300, "s",
     "TTL of this node's etcd lease (VIP locks, leader key); used at the "
     "next grant",
     6, "", "", "etcd session",
     [](knob_values& v, const knob& k) { v.lease.ttl_s = k.number; }},
    {"fencing_margin_ms", true, 100, 30000, "ms",
     "the node treats its lease as lost this long before etcd could expire "
     "it: VIPs are dropped and address lifetimes end that much earlier",
     1000, "", "", "etcd session",
     [](knob_values& v, const knob& k) {
       v.lease.fencing_margin = milliseconds(k.number);
     }},
    {"arp_count", true, 0, 20, "",
     "gratuitous ARP rounds when a VIP is taken (0: none)", 4, "", "",
     "VIP holders",
     [](knob_values& v, const knob& k) { v.arp.count = k.number; }},
    {"arp_interval_ms", true, 100, 10000, "ms",
     "pause between gratuitous ARP rounds (Linux ignores a second update "
     "within 1 s)",
     1100, "", "", "VIP holders",
     [](knob_values& v, const knob& k) {
       v.arp.interval = milliseconds(k.number);
     }},
    {"arp_refresh_s", true, 0, 3600, "s",
     "resend gratuitous ARP for held VIPs this often (0: off)", 0, "", "",
     "VIP holders",
     [](knob_values& v, const knob& k) { v.arp.refresh = seconds(k.number); }},
    {"nat_audit_s", true, 0, 3600, "s",
     "re-read our DNAT chains this often and put back what someone else "
     "changed (0: off)",
     30, "", "", "NAT worker",
     [](knob_values& v, const knob& k) { v.audit.nat = seconds(k.number); }},
    {"acl_audit_s", true, 0, 3600, "s",
     "with -acl: re-read our filter chains this often and put back what "
     "someone else changed (0: off)",
     30, "", "", "ACL keeper",
     [](knob_values& v, const knob& k) { v.audit.acl = seconds(k.number); }},
    {"probe_interval_ms", true, 50, 60000, "ms",
     "time between health probes of a local container", 200, "", "",
     "health trackers",
     [](knob_values& v, const knob& k) {
       v.probe.interval = milliseconds(k.number);
     }},
    {"probe_timeout_ms", true, 10, 10000, "ms",
     "a health probe without answer in this time fails", 200, "", "",
     "health trackers",
     [](knob_values& v, const knob& k) {
       v.probe.timeout = milliseconds(k.number);
     }},
    {"probe_failures", true, 1, 20, "",
     "consecutive failed probes before a container counts as unhealthy", 2, "",
     "", "health trackers",
     [](knob_values& v, const knob& k) { v.probe.failures = k.number; }},
    {"dns_ttl", true, 0, 86400, "s", "TTL of answers from cluster data", 60, "",
     "", "DNS responder",
     [](knob_values& v, const knob& k) { v.dns.ttl = u32(k); }},
    {"dns_cache_size", true, 0, 10000000, "",
     "entries in the forwarding cache (0: no cache)", 20000, "", "",
     "DNS responder",
     [](knob_values& v, const knob& k) {
       v.dns.cache_size = static_cast<uint64_t>(k.number);
     }},
    {"dns_neg_ttl_max", true, 0, 86400, "s",
     "longest time a negative upstream answer is cached", 3600, "", "",
     "DNS responder",
     [](knob_values& v, const knob& k) { v.dns.neg_ttl_max = u32(k); }},
    {"dns_min_ttl", true, 0, 86400, "s",
     "cached upstream answers live at least this long", 0, "", "",
     "DNS responder",
     [](knob_values& v, const knob& k) { v.dns.min_ttl = u32(k); }},
    {"dns_max_ttl", true, 0, 604800, "s",
     "cached upstream answers live at most this long", 86400, "", "",
     "DNS responder",
     [](knob_values& v, const knob& k) { v.dns.max_ttl = u32(k); }},
    {"dns_upstream_timeout_ms", true, 50, 30000, "ms",
     "wait this long for an upstream's answer before the next try (it "
     "doubles each round over the servers; 2 rounds)",
     1500, "", "", "DNS responder",
     [](knob_values& v, const knob& k) {
       v.dns.upstream_timeout = milliseconds(k.number);
     }},
    {"dns_serve_stale_s", true, 0, 604800, "s",
     "when every upstream fails, answer from cache entries expired at most "
     "this long ago, with TTL 30 (RFC 8767; 0: off)",
     86400, "", "", "DNS responder",
     [](knob_values& v, const knob& k) { v.dns.serve_stale_s = u32(k); }},
    {"dns_log_queries", true, 0, 100000, "/s",
     "log one line per DNS query (client, name, type, rcode, source, "
     "latency), at most this many lines per second (0: off)",
     0, "", "", "DNS server",
     [](knob_values& v, const knob& k) { v.dns.log_queries = u32(k); }},
  };
  return table;
}

knob_values make_defaults() {
  knob_values v;
  for (auto& spec : knob_table()) {
    knob k;
    k.name = spec.name;
    k.number = spec.default_number;
    k.text = spec.default_text;
    spec.store(v, k);
  }
  return v;
}

} // namespace

const std::vector<knob_spec>& known_knobs() {
  return knob_table();
}

const knob_spec* find_knob(std::string_view name) {
  for (auto& k : knob_table())
    if (name == k.name)
      return &k;
  return nullptr;
}

const knob_values& default_knobs() {
  static const knob_values v = make_defaults();
  return v;
}

knob_values resolve_knobs(const std::map<std::string, knob>& set) {
  auto v = default_knobs();
  for (auto& [name, k] : set)
    if (auto spec = find_knob(name))
      spec->store(v, k);
  return v;
}

} // namespace networkd::config
