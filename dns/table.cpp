// SPDX-License-Identifier: MIT
// Record table construction, matching and the config dump.
#include "dns/table.hpp"

#include <algorithm>
#include <ctime>
#include <vector>

namespace networkd::dns {

const char* to_string(name_source s) {
  switch (s) {
    case name_source::dynamic:
      return "dynamic";
    case name_source::domain:
      return "domain";
    case name_source::hosts:
      return "hosts";
    case name_source::wildcard:
      return "wildcard";
    case name_source::reverse:
      return "reverse";
  }
  return "?";
}

bool rdata_set::add(const uint8_t* data, uint16_t len) {
  std::vector<uint8_t> buf(knot_rdata_size(len));
  auto rd = reinterpret_cast<knot_rdata_t*>(buf.data());
  knot_rdata_init(rd, len, data);
  return knot_rdataset_add(&rrs_, rd, nullptr) == KNOT_EOK;
}

namespace {

void add_address(local_name& n, const ip_address& addr) {
  if (std::find(n.addresses.begin(), n.addresses.end(), addr)
      != n.addresses.end())
    return;
  n.addresses.push_back(addr);
  if (addr.family == AF_INET)
    n.a.add(addr.bytes.data(), 4);
  else
    n.aaaa.add(addr.bytes.data(), 16);
}

void add_addresses(local_name& n, const std::vector<std::string>& ips,
                   const std::string& what, std::vector<std::string>* warn) {
  for (auto& ip : ips) {
    if (auto addr = parse_ip(ip))
      add_address(n, *addr);
    else if (warn)
      warn->push_back(what + ": bad address '" + ip + "'");
  }
}

} // namespace

local_name& table::add_name(std::string owner, name_source src) {
  auto& n = names_.emplace_back();
  n.owner = std::move(owner);
  n.source = src;
  return n;
}

std::shared_ptr<const table> table::build(const table_input& in,
                                          std::vector<std::string>* warn) {
  std::shared_ptr<table> t{new table};
  t->upstreams_ = in.upstreams;
  t->ttl_ = in.ttl;
  t->serial_ = static_cast<uint32_t>(std::time(nullptr));
  auto bad_name = [&](const std::string& what, const std::string& name) {
    if (warn)
      warn->push_back(what + ": bad name '" + name + "'");
  };
  // 1. Dynamic names.
  for (auto& [name, ips] : in.dynamic_names) {
    auto wire = wire_name(name);
    if (wire.size() <= 1) {
      bad_name("dynamic", name);
      continue;
    }
    if (t->exact_.count(wire))
      continue;
    auto& n = t->add_name(std::move(wire), name_source::dynamic);
    t->exact_.emplace(n.owner, &n);
    add_addresses(n, ips, "dynamic " + name, warn);
  }
  // 2. etcd domains, exact and wildcard.
  for (auto& d : in.domains) {
    std::vector<std::string> ips;
    switch (d.type) {
      case config::domain_type::fixed:
        ips = d.ips;
        break;
      case config::domain_type::node:
        if (!in.node_ip.empty())
          ips.push_back(in.node_ip);
        break;
      case config::domain_type::webrouter:
        ips = in.webrouter_ips;
        break;
    }
    std::string text = d.name;
    if (d.wildcard)
      text = d.suffix.empty() && d.name.rfind("*.", 0) == 0 ? d.name.substr(2)
                                                            : d.suffix;
    auto wire = wire_name(text);
    if (wire.size() <= 1) {
      bad_name("domain", d.name);
      continue;
    }
    auto& map = d.wildcard ? t->wildcard_ : t->exact_;
    if (auto i = map.find(wire); i != map.end()) {
      // The same wildcard given twice (e.g. "*.a" and "*.A."): merge.
      if (d.wildcard)
        add_addresses(const_cast<local_name&>(*i->second), ips,
                      "domain " + d.name, warn);
      continue;
    }
    auto& n = t->add_name(std::move(wire), d.wildcard ? name_source::wildcard
                                                      : name_source::domain);
    map.emplace(n.owner, &n);
    add_addresses(n, ips, "domain " + d.name, warn);
  }
  // 3. Hosts file: lines with the same name add up.
  for (auto& h : in.hosts) {
    auto addr = parse_ip(h.address);
    if (!addr) {
      if (warn)
        warn->push_back("hosts: bad address '" + h.address + "'");
      continue;
    }
    for (auto& name : h.names) {
      auto wire = wire_name(name);
      if (wire.size() <= 1) {
        bad_name("hosts", name);
        continue;
      }
      if (auto i = t->exact_.find(wire); i != t->exact_.end()) {
        if (i->second->source == name_source::hosts)
          add_address(const_cast<local_name&>(*i->second), *addr);
        continue;
      }
      auto& n = t->add_name(std::move(wire), name_source::hosts);
      t->exact_.emplace(n.owner, &n);
      add_address(n, *addr);
    }
  }
  // 4. Reverse names for the addresses of exact names, in precedence order
  // (names_ holds dynamic, then etcd, then hosts entries).
  std::unordered_map<std::string, local_name*> reverse;
  size_t forward_count = t->names_.size();
  for (size_t i = 0; i < forward_count; ++i) {
    auto& n = t->names_[i];
    if (n.source == name_source::wildcard)
      continue;
    for (auto& addr : n.addresses) {
      auto rev = reverse_wire_name(addr);
      auto r = reverse.find(rev);
      if (r == reverse.end()) {
        if (t->exact_.count(rev))
          continue;
        auto& rn = t->add_name(rev, name_source::reverse);
        r = reverse.emplace(rev, &rn).first;
        t->exact_.emplace(rn.owner, &rn);
      }
      r->second->ptr.add(reinterpret_cast<const uint8_t*>(n.owner.data()),
                         static_cast<uint16_t>(n.owner.size()));
    }
  }
  // 5. Per-domain upstreams.
  for (auto& ds : in.domain_servers) {
    auto wire = wire_name(ds.domain);
    if (wire.empty()) {
      bad_name("domain_servers", ds.domain);
      continue;
    }
    t->servers_[wire] = ds.servers;
  }
  return t;
}

const local_name* table::find(std::string_view lower_wire) const {
  if (auto i = exact_.find(lower_wire); i != exact_.end())
    return i->second;
  if (wildcard_.empty())
    return nullptr;
  const local_name* found = nullptr;
  for_each_suffix(lower_wire, [&](std::string_view s) {
    auto i = wildcard_.find(s);
    if (i == wildcard_.end())
      return false;
    found = i->second;
    return true;
  });
  return found;
}

const std::vector<config::upstream>&
table::upstreams_for(std::string_view lower_wire) const {
  if (!servers_.empty()) {
    const std::vector<config::upstream>* found = nullptr;
    for_each_suffix(lower_wire, [&](std::string_view s) {
      auto i = servers_.find(std::string(s));
      if (i == servers_.end())
        return false;
      found = &i->second;
      return true;
    });
    if (found)
      return *found;
  }
  return upstreams_;
}

table_input table::input() const {
  table_input in;
  in.ttl = ttl_;
  for (auto& [wire, list] : servers_)
    in.domain_servers.push_back(
      config::domain_servers_config{text_name(wire), list});
  in.upstreams = upstreams_;
  return in;
}

std::string table::config_text() const {
  std::map<std::string, const local_name*> exact;
  std::map<std::string, const local_name*> wild;
  for (auto& n : names_) {
    if (n.source == name_source::dynamic || n.source == name_source::domain)
      exact.emplace(text_name(n.owner), &n);
    else if (n.source == name_source::wildcard)
      wild.emplace(text_name(n.owner), &n);
  }
  std::string out;
  for (auto& [name, n] : exact) {
    out += "host-record=" + name;
    for (auto& a : n->addresses)
      out += "," + to_string(a);
    out += '\n';
  }
  for (auto& [name, n] : wild)
    for (auto& a : n->addresses)
      out += "address=/" + name + "/" + to_string(a) + "\n";
  std::map<std::string, std::vector<config::upstream>> servers;
  for (auto& [wire, list] : servers_)
    servers.emplace(text_name(wire), list);
  for (auto& [name, list] : servers)
    for (auto& u : list)
      out
        += "server=/" + name + "/" + u.ip + "#" + std::to_string(u.port) + "\n";
  for (auto& u : upstreams_)
    out += "nameserver " + u.ip + "#" + std::to_string(u.port) + "\n";
  return out;
}

} // namespace networkd::dns
