// SPDX-License-Identifier: MIT
#include "dns/explain.hpp"

#include <cctype>

namespace networkd::dns {

namespace {

/// The local data for one type ("10.0.0.1", a PTR target name).
std::vector<std::string> records_of(const local_name& n, uint16_t qtype) {
  std::vector<std::string> out;
  auto addresses = [&](int family) {
    for (auto& a : n.addresses)
      if (a.family == family)
        out.push_back(to_string(a));
  };
  auto names = [&](const rdata_set& set) {
    auto* rd = set.get().rdata;
    for (uint16_t i = 0; i < set.count(); ++i) {
      out.push_back(text_name(rd->data));
      rd = knot_rdataset_next(rd);
    }
  };
  switch (qtype) {
    case KNOT_RRTYPE_A:
      addresses(AF_INET);
      break;
    case KNOT_RRTYPE_AAAA:
      addresses(AF_INET6);
      break;
    case KNOT_RRTYPE_PTR:
      names(n.ptr);
      break;
    case KNOT_RRTYPE_ANY:
      addresses(AF_INET);
      addresses(AF_INET6);
      names(n.ptr);
      break;
    default:
      break;
  }
  return out;
}

std::string revision_text(const key_origin& o) {
  return o.key + " (revision " + std::to_string(o.revision) + ")";
}

template <class T>
key_origin origin_of(std::string_view prefix, const std::string& stored,
                     const from_etcd<T>& e) {
  return {std::string{prefix} + (e.raw_suffix.empty() ? stored : e.raw_suffix),
          e.revision};
}

/// The key of an etcd-made table entry, and its type.
void etcd_origin(const lookup_facts& f, const std::string& stored,
                 lookup_answer& a) {
  if (f.domains == nullptr)
    return;
  if (auto i = f.domains->find(stored); i != f.domains->end()) {
    a.origin = origin_of(config::domains_prefix, stored, i->second);
    a.domain_type = config::to_string(i->second.value.type);
  }
}

std::string type_clause(const lookup_answer& a) {
  if (a.domain_type == "node")
    return ", type node: this node's address";
  if (a.domain_type == "webrouter")
    return ", type webrouter: the VIPs of the webrouter app";
  return "";
}

void explain_local(const lookup_question& q, const lookup_facts& f,
                   const local_name& n, lookup_answer& a) {
  a.verdict = "local";
  auto owner = text_name(n.owner);
  a.matched = n.source == name_source::wildcard ? "*." + owner : owner;
  a.records = records_of(n, q.qtype);
  switch (n.source) {
    case name_source::dynamic:
      a.rule = "dynamic name";
      a.why = "set by this cluster's leader publishers (swarm, deployd, "
              "...); a dynamic name wins over etcd domains and the hosts "
              "file";
      break;
    case name_source::domain:
      a.rule = "etcd domain";
      etcd_origin(f, a.matched, a);
      a.why = "the etcd key " + revision_text(a.origin) + type_clause(a);
      break;
    case name_source::wildcard:
      a.rule = "etcd wildcard";
      etcd_origin(f, a.matched, a);
      a.why = "no exact name; the longest wildcard is " + a.matched
              + ", the etcd key " + revision_text(a.origin) + type_clause(a);
      break;
    case name_source::hosts:
      a.rule = "hosts file";
      if (f.hosts != nullptr)
        for (auto& e : *f.hosts) {
          bool named = false;
          for (auto& name : e.names)
            named = named || name == owner;
          if (!named)
            continue;
          a.hosts_line
            = f.hosts_file + ":" + std::to_string(e.line) + ": " + e.address;
          for (auto& name : e.names)
            a.hosts_line += " " + name;
          break;
        }
      a.why = "the hosts file, " + a.hosts_line
              + " (no dynamic name or etcd domain of that name)";
      break;
    case name_source::reverse:
      a.rule = "reverse of local names";
      a.why = "the address of local names: every exact local name with it";
      break;
  }
  if (a.records.empty())
    a.why += "; it has no " + a.type + " data, so the answer is NOERROR "
             + "with no records (NODATA)";
}

void explain_forward(const lookup_question& q, const lookup_facts& f,
                     const server::forward_view& fwd, lookup_answer& a) {
  a.verdict = "forward";
  std::string domain;
  if (f.servers != nullptr)
    for_each_suffix(q.wire, [&](std::string_view s) {
      auto i = f.servers->find(text_name(s));
      if (i == f.servers->end())
        return false;
      domain = i->first;
      a.origin = origin_of(config::domain_servers_prefix, i->first, i->second);
      return true;
    });
  if (!domain.empty()) {
    a.rule = "domain servers";
    a.why = "not local; names under " + domain + " go to the servers of "
            + revision_text(a.origin);
  } else {
    a.rule = "default upstreams";
    a.why = "not local and no domain servers match; the resolv.conf "
            "upstreams";
  }
  for (auto& u : fwd.order)
    a.upstreams.push_back(u.ip + "#" + std::to_string(u.port));
  if (a.upstreams.empty())
    a.why += " (none usable: the answer is SERVFAIL)";
  else
    a.why += ", tried in this order (by health)";
  if (auto& e = fwd.cached) {
    auto& c = a.cache;
    c.present = true;
    c.rcode = rcode_name(e->rcode);
    c.negative = e->negative;
    c.failure = e->failure;
    c.ttl_left_s
      = (static_cast<int64_t>(e->expires_ms) - static_cast<int64_t>(fwd.now_ms))
        / 1000;
    c.stale_servable
      = !e->failure && fwd.now_ms >= e->expires_ms
        && fwd.now_ms - e->expires_ms < uint64_t{fwd.serve_stale_s} * 1000;
  }
}

} // namespace

result<lookup_question> parse_lookup_question(std::string_view name,
                                              std::string_view type) {
  if (name.empty() || name.size() > max_lookup_name)
    return make_failure("bad_name", "name: 1 to "
                                      + std::to_string(max_lookup_name)
                                      + " characters");
  lookup_question q;
  q.wire = wire_name(name);
  if (q.wire.empty())
    return make_failure("bad_name", "name: not a domain name");
  q.name = text_name(q.wire);
  if (type.empty())
    return q;
  if (type.size() > 16)
    return make_failure("bad_type", "type: unknown");
  std::string upper;
  for (char ch : type)
    upper += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
  if (knot_rrtype_from_string(upper.c_str(), &q.qtype) != 0)
    return make_failure("bad_type", "type: unknown \"" + upper + "\"");
  return q;
}

lookup_answer explain_lookup(const lookup_question& q, const lookup_facts& f,
                             const server::forward_view& fwd) {
  lookup_answer a;
  a.name = q.name;
  a.type = type_name(q.qtype);
  const local_name* n = f.tbl != nullptr ? f.tbl->find(q.wire) : nullptr;
  if (n != nullptr)
    explain_local(q, f, *n, a);
  else
    explain_forward(q, f, fwd, a);
  return a;
}

} // namespace networkd::dns
