// SPDX-License-Identifier: MIT
// The query path without sockets: one client packet in, a verdict and the
// response bytes out. Local answers, cache hits, protocol errors and ACL
// refusals are answered here; misses are described for the forwarder.
// Everything is built and parsed with libknot.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "dns/cache.hpp"
#include "dns/table.hpp"

namespace networkd::dns {

enum class transport : uint8_t { udp, tcp };

/// How one client query was handled.
enum class disposition : uint8_t {
  local,   ///< answered from the table (incl. NODATA)
  cached,  ///< answered from the cache
  error,   ///< FORMERR / NOTIMP / BADVERS / REFUSED for a query type
  refused, ///< client not allowed by the ACL
  forward, ///< must be forwarded; `query` describes it, no response yet
  drop,    ///< not worth an answer (too short, a response, ...)
};

/// What the answer path needs to know about a query once its packet is
/// gone (kept while it waits for an upstream).
struct query {
  uint16_t id = 0;
  uint8_t flags1 = 0; ///< header byte 2 as sent (RD, opcode)
  uint8_t flags2 = 0; ///< header byte 3 as sent (CD, AD)
  std::string qname;  ///< wire name, case as sent
  std::string lower;  ///< lower-cased wire name
  uint16_t qtype = 0;
  uint16_t qclass = 0;
  bool edns = false;      ///< the client sent OPT
  bool dnssec_ok = false; ///< the client set DO
  uint16_t limit = 512;   ///< largest response size allowed to this client
  transport via = transport::udp;
  /// When handle_query began (steady clock, ns): the start of the
  /// request's duration (networkd_dns_request_duration_seconds).
  uint64_t received_ns = 0;
  bool checking_disabled() const { return (flags2 & 0x10) != 0; }
  /// Back to a default query, keeping the strings' buffers (the query path
  /// reuses one query per thread and must not allocate per packet).
  void reset(transport t) {
    id = 0;
    flags1 = flags2 = 0;
    qname.clear();
    lower.clear();
    qtype = qclass = 0;
    edns = dnssec_ok = false;
    limit = 512;
    via = t;
  }
  std::string cache_key() const {
    return dns::cache_key(lower, qtype, qclass, dnssec_ok, checking_disabled());
  }
};

/// What the query path reads.
struct query_env {
  const table* tbl = nullptr; ///< may be null: nothing is local
  cache* answers = nullptr;   ///< may be null: no cache
  uint64_t now_ms = 0;        ///< for cache expiry and TTL decrement
  transport via = transport::udp;
  bool client_allowed = true;      ///< ACL verdict for the source address
  uint16_t max_udp_payload = 1232; ///< our EDNS payload size
  uint32_t rotation = 0;           ///< varies the order of several addresses
  /// When the query was read (steady_ns), given by a caller that times the
  /// answers itself (a UDP batch: read once, sent once); 0: handle_query
  /// times itself.
  uint64_t received_ns = 0;
};

struct query_result {
  disposition what = disposition::drop;
  uint16_t rcode = 0;
  uint16_t qtype = 0;
  /// A cache hit in the last 10% of the entry's lifetime, the first such
  /// hit: the caller refreshes the entry in the background.
  bool prefetch = false;
  /// Time spent in handle_query, ns (a local or cached answer's duration);
  /// 0 when env.received_ns was given.
  uint64_t duration_ns = 0;
};

/// The steady clock in ns (what received_ns and duration_ns count).
uint64_t steady_ns();

/// Handles one client packet. Unless the result is `forward` or `drop`,
/// `out` holds the response. For `forward`, `q` describes the query.
query_result handle_query(const uint8_t* data, size_t len, const query_env& env,
                          query& q, std::vector<uint8_t>& out);

/// The response to `q` from a cache entry: the client's ID, question case,
/// RD/CD bits and EDNS, TTLs decremented by the time since it was stored.
/// A UDP answer that does not fit q.limit is sent empty with TC. With
/// `fixed_ttl` > 0 every TTL is that instead (serve-stale answers: 30).
void respond_from_entry(const query& q, const cache_entry& e, uint64_t now_ms,
                        uint16_t max_udp_payload, std::vector<uint8_t>& out,
                        uint32_t fixed_ttl = 0);

/// An empty response to `q` with `rcode` (e.g. SERVFAIL).
void respond_error(const query& q, uint16_t rcode, uint16_t max_udp_payload,
                   std::vector<uint8_t>& out);

/// The query to send upstream for `q`: lower-cased name, RD, the client's
/// CD, EDNS with our payload size and the client's DO bit. The ID is 0
/// (c-ares sets a random one).
std::vector<uint8_t> upstream_query(const query& q, uint16_t max_udp_payload);

} // namespace networkd::dns
