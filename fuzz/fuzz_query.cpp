// SPDX-License-Identifier: MIT
// libFuzzer target for the whole query path: client packet in, answer out,
// including a forwarded miss answered by an (equally fuzzed) upstream.
//
// Input layout: byte 0 = mode bits (1: TCP, 2: client refused, 4: small
// cache clock jump), bytes 1-2 = length L of the client packet, then L
// bytes of client packet, then the upstream's response.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <vector>

#include "dns/engine.hpp"
#include "dns/message.hpp"

using namespace networkd;
using namespace networkd::dns;

namespace {

config::domain_config domain(std::string name, std::vector<std::string> ips) {
  config::domain_config d;
  d.wildcard = name.rfind("*.", 0) == 0;
  d.suffix = d.wildcard ? name.substr(2) : "";
  d.name = std::move(name);
  d.ips = std::move(ips);
  return d;
}

const table& fixed_table() {
  static auto t = [] {
    table_input in;
    in.domains.push_back(domain("*.lain", {"10.0.0.1"}));
    in.domains.push_back(domain("*.web.lain", {"10.0.0.2", "10.0.0.22"}));
    in.domains.push_back(domain("exact.lain", {"10.0.0.3"}));
    std::vector<std::string> many;
    for (int i = 1; i <= 80; ++i)
      many.push_back("10.9.0." + std::to_string(i));
    in.domains.push_back(domain("big.lain", many));
    in.hosts = parse_hosts("fd00::1 six.example\n10.5.0.1 h.example h\n");
    in.dynamic_names["swarm.lain"] = {"10.7.7.7"};
    return table::build(in);
  }();
  return *t;
}

/// Every response we produce must be a valid DNS message.
void check(const std::vector<uint8_t>& out) {
  if (!out.empty() && !parse_message(out).ok())
    std::abort();
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 3)
    return 0;
  static cache answers{cache_options{64, 2, 0, 86400, 3600, 2}};
  static uint64_t clock = 1000;
  uint8_t mode = data[0];
  size_t len = (size_t{data[1]} << 8) | data[2];
  data += 3;
  size -= 3;
  if (len > size)
    len = size;
  // The engine must not depend on bytes past `len`: copy to an exact buffer.
  std::vector<uint8_t> packet(data, data + len);
  const uint8_t* upstream = data + len;
  size_t upstream_len = size - len;
  clock += (mode & 4) ? 7000 : 1;

  query_env env;
  env.tbl = &fixed_table();
  env.answers = &answers;
  env.now_ms = clock;
  env.via = (mode & 1) ? transport::tcp : transport::udp;
  env.client_allowed = (mode & 2) == 0;
  env.rotation = mode;
  query q;
  std::vector<uint8_t> out;
  auto r = handle_query(packet.data(), packet.size(), env, q, out);
  check(out);
  if (r.what != disposition::forward)
    return 0;
  auto wire = upstream_query(q, 1232);
  if (!parse_message(wire).ok())
    std::abort();
  auto e = make_cache_entry(q.lower, q.qtype, q.qclass, upstream, upstream_len,
                            clock, answers.options());
  if (!e)
    e = make_failure_entry(q.lower, q.qtype, q.qclass, clock,
                           answers.options());
  if (!e)
    return 0;
  answers.put(q.cache_key(), e);
  respond_from_entry(q, *e, clock + 1500, 1232, out);
  check(out);
  respond_error(q, KNOT_RCODE_SERVFAIL, 1232, out);
  check(out);
  return 0;
}
