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

void rdata_set::remove(const uint8_t* data, uint16_t len) {
  std::vector<uint8_t> buf(knot_rdata_size(len));
  auto rd = reinterpret_cast<knot_rdata_t*>(buf.data());
  knot_rdata_init(rd, len, data);
  knot_rdataset_remove(&rrs_, rd, nullptr);
}

rdata_set rdata_set::copy_of(const rdata_set& other) {
  rdata_set out;
  knot_rdataset_copy(&out.rrs_, &other.rrs_, nullptr);
  return out;
}

name_index::name_index() {
  static const auto empty = std::make_shared<const shard>();
  shards_.fill(empty);
}

void name_index::shard::index() {
  slots.clear();
  if (names.empty())
    return;
  // At most 2/3 full: a miss (most lookups of wildcard suffixes) ends after
  // a few slots, compared by hash alone.
  size_t cap = 4;
  while (2 * cap < 3 * names.size())
    cap *= 2;
  slots.assign(cap, slot{});
  for (auto& n : names) {
    auto h = hash(n->owner);
    for (size_t i = (h >> shard_bits) & (cap - 1);; i = (i + 1) & (cap - 1))
      if (slots[i].name == nullptr) {
        slots[i] = slot{h, n.get()};
        break;
      }
  }
}

void name_index::set(std::string_view wire, name_ptr n) {
  auto& old = shards_[hash(wire) & (shard_count - 1)];
  auto fresh = std::make_shared<shard>();
  fresh->names.reserve(old->names.size() + 1);
  for (auto& m : old->names)
    if (m->owner != wire)
      fresh->names.push_back(m);
  if (n)
    fresh->names.push_back(std::move(n));
  fresh->index();
  old = std::move(fresh);
  set_view(hash(wire) & (shard_count - 1));
}

void name_index::set_view(size_t i) {
  auto& slots = shards_[i]->slots;
  views_[i] = slots.empty() ? view{} : view{slots.data(), slots.size() - 1};
}

void name_index::assign(std::vector<name_ptr> names) {
  std::array<std::shared_ptr<shard>, shard_count> fresh;
  for (auto& n : names) {
    auto& s = fresh[hash(n->owner) & (shard_count - 1)];
    if (!s)
      s = std::make_shared<shard>();
    s->names.push_back(std::move(n));
  }
  for (size_t i = 0; i < shard_count; ++i)
    if (fresh[i]) {
      fresh[i]->index();
      shards_[i] = std::move(fresh[i]);
      set_view(i);
    }
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

/// The addresses (as text) an etcd domain answers with.
std::vector<std::string> domain_ips(const config::domain_config& d,
                                    const std::string& node_ip,
                                    const std::vector<std::string>& webrouter) {
  switch (d.type) {
    case config::domain_type::fixed:
      return d.ips;
    case config::domain_type::node:
      if (!node_ip.empty())
        return {node_ip};
      return {};
    case config::domain_type::webrouter:
      return webrouter;
  }
  return {};
}

/// The text of a domain's owner: its name, or a wildcard's suffix.
std::string domain_owner(const config::domain_config& d) {
  if (!d.wildcard)
    return d.name;
  return d.suffix.empty() && d.name.rfind("*.", 0) == 0 ? d.name.substr(2)
                                                        : d.suffix;
}

/// True for a wire name at or under in-addr.arpa or ip6.arpa.
bool in_reverse_zone(std::string_view wire) {
  static constexpr std::string_view v4{"\x07in-addr\x04"
                                       "arpa\0",
                                       14};
  static constexpr std::string_view v6{"\x03ip6\x04"
                                       "arpa\0",
                                       10};
  auto ends = [&](std::string_view tail) {
    return wire.size() >= tail.size()
           && wire.compare(wire.size() - tail.size(), tail.size(), tail) == 0;
  };
  return ends(v4) || ends(v6);
}

using mutable_name = std::shared_ptr<local_name>;

mutable_name new_name(std::string owner, name_source src) {
  auto n = std::make_shared<local_name>();
  n->owner = std::move(owner);
  n->source = src;
  return n;
}

} // namespace

std::shared_ptr<const table> table::build(const table_input& in,
                                          std::vector<std::string>* warn) {
  std::shared_ptr<table> t{new table};
  auto fx = std::make_shared<fixed>();
  fx->upstreams = in.upstreams;
  t->ttl_ = in.ttl;
  t->serial_ = static_cast<uint32_t>(std::time(nullptr));
  auto bad_name = [&](const std::string& what, const std::string& name) {
    if (warn)
      warn->push_back(what + ": bad name '" + name + "'");
  };
  // Forward names in precedence order (dynamic, etcd, hosts), then reverse
  // names; the maps' keys point into the names' owners.
  std::vector<mutable_name> forward;
  std::vector<mutable_name> wildcards;
  std::unordered_map<std::string_view, local_name*> exact;
  std::unordered_map<std::string_view, local_name*> wild;
  auto add = [&](std::vector<mutable_name>& to,
                 std::unordered_map<std::string_view, local_name*>& map,
                 std::string owner, name_source src) -> local_name& {
    to.push_back(new_name(std::move(owner), src));
    auto& n = *to.back();
    map.emplace(n.owner, &n);
    return n;
  };
  // 1. Dynamic names.
  for (auto& [name, ips] : in.dynamic_names) {
    auto wire = wire_name(name);
    if (wire.size() <= 1) {
      bad_name("dynamic", name);
      continue;
    }
    if (exact.count(wire)) {
      fx->contested.insert(wire);
      continue;
    }
    auto& n = add(forward, exact, std::move(wire), name_source::dynamic);
    add_addresses(n, ips, "dynamic " + name, warn);
  }
  // 2. etcd domains, exact and wildcard.
  for (auto& d : in.domains) {
    auto ips = domain_ips(d, in.node_ip, in.webrouter_ips);
    auto wire = wire_name(domain_owner(d));
    if (wire.size() <= 1) {
      bad_name("domain", d.name);
      continue;
    }
    auto& map = d.wildcard ? wild : exact;
    if (auto i = map.find(wire); i != map.end()) {
      fx->contested.insert(wire);
      // The same wildcard given twice (e.g. "*.a" and "*.A."): merge.
      if (d.wildcard)
        add_addresses(*i->second, ips, "domain " + d.name, warn);
      continue;
    }
    auto& n = d.wildcard
                ? add(wildcards, wild, std::move(wire), name_source::wildcard)
                : add(forward, exact, std::move(wire), name_source::domain);
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
      if (auto i = exact.find(wire); i != exact.end()) {
        if (i->second->source == name_source::hosts)
          add_address(*i->second, *addr);
        else
          fx->contested.insert(wire);
        continue;
      }
      auto& n = add(forward, exact, std::move(wire), name_source::hosts);
      add_address(n, *addr);
    }
  }
  // 4. Reverse names for the addresses of exact names, in precedence order.
  std::unordered_map<std::string, local_name*> reverse;
  size_t forward_count = forward.size();
  for (size_t i = 0; i < forward_count; ++i) {
    auto& n = *forward[i];
    for (auto& addr : n.addresses) {
      auto rev = reverse_wire_name(addr);
      auto r = reverse.find(rev);
      if (r == reverse.end()) {
        if (exact.count(rev))
          continue;
        auto& rn = add(forward, exact, rev, name_source::reverse);
        r = reverse.emplace(rev, &rn).first;
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
    fx->servers[wire] = ds.servers;
  }
  t->size_ = forward.size() + wildcards.size();
  t->wildcards_ = wildcards.size();
  t->exact_.assign(
    std::vector<name_index::name_ptr>(forward.begin(), forward.end()));
  t->wildcard_.assign(
    std::vector<name_index::name_ptr>(wildcards.begin(), wildcards.end()));
  t->fixed_ = std::move(fx);
  return t;
}

namespace {

/// Adds `owner` to (add) or removes it from the PTR set of addr's reverse
/// name, as build() would have it (no reverse name where a forward name has
/// that name; none without PTRs). Returns the change in the name count.
int change_reverse(name_index& exact, const ip_address& addr,
                   const std::string& owner, bool add) {
  auto rev = reverse_wire_name(addr);
  auto old = exact.find(rev);
  if (old != nullptr && old->source != name_source::reverse)
    return 0;
  auto n = new_name(rev, name_source::reverse);
  if (old != nullptr)
    n->ptr = rdata_set::copy_of(old->ptr);
  auto data = reinterpret_cast<const uint8_t*>(owner.data());
  auto len = static_cast<uint16_t>(owner.size());
  if (add)
    n->ptr.add(data, len);
  else
    n->ptr.remove(data, len);
  if (n->ptr.count() == 0) {
    exact.set(rev, nullptr);
    return old != nullptr ? -1 : 0;
  }
  exact.set(rev, std::move(n));
  return old != nullptr ? 0 : 1;
}

bool contains(const std::vector<ip_address>& list, const ip_address& a) {
  return std::find(list.begin(), list.end(), a) != list.end();
}

} // namespace

std::shared_ptr<const table>
table::update(const table& prev, const config::domain_config* before,
              const config::domain_config* after, const std::string& node_ip,
              const std::vector<std::string>& webrouter_ips) {
  auto d = after != nullptr ? after : before;
  if (d == nullptr || (before && after && before->wildcard != after->wildcard))
    return nullptr;
  auto wire = wire_name(domain_owner(*d));
  if (wire.size() <= 1 || in_reverse_zone(wire)
      || prev.fixed_->contested.count(wire) > 0
      || (before && after && wire_name(domain_owner(*before)) != wire))
    return nullptr;
  // Bad addresses make warnings: those come from build() alone.
  std::vector<ip_address> fresh;
  for (auto side : {before, after}) {
    if (side == nullptr)
      continue;
    for (auto& ip : domain_ips(*side, node_ip, webrouter_ips)) {
      auto addr = parse_ip(ip);
      if (!addr)
        return nullptr;
      if (side == after && !contains(fresh, *addr))
        fresh.push_back(*addr);
    }
  }
  auto src = d->wildcard ? name_source::wildcard : name_source::domain;
  const local_name* old
    = (d->wildcard ? prev.wildcard_ : prev.exact_).find(wire);
  // The name must have been this domain's alone, or nobody's.
  if ((before != nullptr) != (old != nullptr)
      || (old != nullptr && old->source != src))
    return nullptr;
  std::shared_ptr<table> t{new table(prev)};
  t->serial_ = static_cast<uint32_t>(std::time(nullptr));
  auto& index = d->wildcard ? t->wildcard_ : t->exact_;
  std::vector<ip_address> gone;
  if (old != nullptr) {
    for (auto& a : old->addresses)
      if (!contains(fresh, a))
        gone.push_back(a);
    --t->size_;
  }
  std::vector<ip_address> added;
  if (after != nullptr) {
    auto n = new_name(wire, src);
    for (auto& a : fresh) {
      add_address(*n, a);
      if (old == nullptr || !contains(old->addresses, a))
        added.push_back(a);
    }
    index.set(wire, std::move(n));
    ++t->size_;
  } else {
    index.set(wire, nullptr);
  }
  if (d->wildcard) {
    t->wildcards_ = t->wildcards_ + (after ? 1 : 0) - (before ? 1 : 0);
    return t;
  }
  // `old` stays valid: prev holds its shard.
  for (auto& a : gone)
    t->size_ += change_reverse(t->exact_, a, wire, false);
  for (auto& a : added)
    t->size_ += change_reverse(t->exact_, a, wire, true);
  return t;
}

const local_name* table::find(std::string_view lower_wire) const {
  if (auto n = exact_.find(lower_wire))
    return n;
  if (wildcards_ == 0)
    return nullptr;
  const local_name* found = nullptr;
  for_each_suffix(lower_wire, [&](std::string_view s) {
    found = wildcard_.find(s);
    return found != nullptr;
  });
  return found;
}

const std::vector<config::upstream>&
table::upstreams_for(std::string_view lower_wire) const {
  auto& servers = fixed_->servers;
  if (!servers.empty()) {
    const std::vector<config::upstream>* found = nullptr;
    for_each_suffix(lower_wire, [&](std::string_view s) {
      auto i = servers.find(std::string(s));
      if (i == servers.end())
        return false;
      found = &i->second;
      return true;
    });
    if (found)
      return *found;
  }
  return fixed_->upstreams;
}

table_input table::input() const {
  table_input in;
  in.ttl = ttl_;
  for (auto& [wire, list] : fixed_->servers)
    in.domain_servers.push_back(
      config::domain_servers_config{text_name(wire), list});
  in.upstreams = fixed_->upstreams;
  return in;
}

std::string table::config_text() const {
  std::map<std::string, const local_name*> exact;
  std::map<std::string, const local_name*> wild;
  exact_.each([&](const local_name& n) {
    if (n.source == name_source::dynamic || n.source == name_source::domain)
      exact.emplace(text_name(n.owner), &n);
  });
  wildcard_.each(
    [&](const local_name& n) { wild.emplace(text_name(n.owner), &n); });
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
  for (auto& [wire, list] : fixed_->servers)
    servers.emplace(text_name(wire), list);
  for (auto& [name, list] : servers)
    for (auto& u : list)
      out
        += "server=/" + name + "/" + u.ip + "#" + std::to_string(u.port) + "\n";
  for (auto& u : fixed_->upstreams)
    out += "nameserver " + u.ip + "#" + std::to_string(u.port) + "\n";
  return out;
}

} // namespace networkd::dns
