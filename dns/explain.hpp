// SPDX-License-Identifier: MIT
// The DNS "why" of GET /v1/dns/lookup: which rule answers a name (an etcd
// key and its revision, a hosts-file line, a dynamic name, a wildcard, the
// webrouter VIPs), or, for a forwarded name, the upstreams in the order
// they would be tried and what the cache holds. No query is sent. Pure:
// the responder passes in what it knows.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "dns/hosts.hpp"
#include "dns/server.hpp"
#include "dns/table.hpp"
#include "net/base/result.hpp"
#include "net/cluster/config.hpp"

namespace networkd::dns {

/// Longest name text taken (253 characters and a final dot).
constexpr size_t max_lookup_name = 254;

struct lookup_question {
  std::string name; ///< lower-case presentation form, no final dot
  std::string wire; ///< lower-case wire form
  uint16_t qtype = KNOT_RRTYPE_A;
};

/// The `name` and `type` parameters: a valid name, and a type mnemonic in
/// any case ("aaaa", "TYPE65"); an empty type is A. Failures: "bad_name",
/// "bad_type".
result<lookup_question> parse_lookup_question(std::string_view name,
                                              std::string_view type);

/// The etcd key a fact came from and the revision of its last put.
struct key_origin {
  std::string key;
  int64_t revision = 0;
};

/// A parsed etcd value as the responder keeps it: the revision of its last
/// put, and the key's suffix only when it differs from the stored name
/// (upper case, a final dot), so the common case costs no second string.
template <class T>
struct from_etcd {
  T value;
  int64_t revision = 0;
  std::string raw_suffix;
};

/// What the responder knows besides the table (every pointer may be null).
struct lookup_facts {
  const table* tbl = nullptr;
  /// By stored name ("a.lain", "*.lain").
  const std::map<std::string, from_etcd<config::domain_config>>* domains
    = nullptr;
  /// By domain ("lain").
  const std::map<std::string, from_etcd<config::domain_servers_config>>* servers
    = nullptr;
  const std::vector<hosts_entry>* hosts = nullptr;
  std::string hosts_file;
};

/// What the cache holds for the question.
struct cache_view {
  bool present = false;
  std::string rcode;           ///< "NOERROR", "NXDOMAIN", ...
  bool negative = false;       ///< NXDOMAIN or NODATA
  bool failure = false;        ///< a remembered SERVFAIL
  int64_t ttl_left_s = 0;      ///< negative: expired that long ago
  bool stale_servable = false; ///< expired, still inside serve-stale
};

struct lookup_answer {
  std::string name;
  std::string type;
  /// "local": the table answers; "forward": an upstream does.
  std::string verdict;
  /// "etcd domain", "etcd wildcard", "dynamic name", "hosts file",
  /// "reverse of local names", "domain servers", "default upstreams".
  std::string rule;
  std::string why;         ///< one sentence for people
  key_origin origin;       ///< the etcd key that decided, if one did
  std::string hosts_line;  ///< "FILE:LINE: ADDRESS NAME..." for hosts names
  std::string domain_type; ///< etcd names: fixed, node or webrouter
  std::string matched;     ///< the table entry's name ("*.lain" for wildcards)
  std::vector<std::string> records;   ///< the local data (empty: NODATA)
  std::vector<std::string> upstreams; ///< "ip#port", in the order tried
  cache_view cache;
};

lookup_answer explain_lookup(const lookup_question& q, const lookup_facts& f,
                             const server::forward_view& fwd);

} // namespace networkd::dns
