// SPDX-License-Identifier: MIT
#include "net/cluster/publish.hpp"

#include <algorithm>
#include <set>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "net/base/json_fields.hpp"

namespace networkd::publish {

namespace {

using writer = rapidjson::Writer<rapidjson::StringBuffer>;

void put_string(writer& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

/// Sorted, unique IPs of the nodes serving app/worker port-only VIPs.
std::vector<std::string> serving_ips(const inputs& in, const char* app) {
  std::set<std::string> ips;
  for (auto& [key, e] : in.endpoints)
    if (e.app == app && e.proc == "worker")
      ips.insert(e.ip);
  return {ips.begin(), ips.end()};
}

/// "lain" and the cluster domain when it is another one.
std::vector<std::string> cluster_domains(const inputs& in) {
  std::vector<std::string> out;
  if (!in.cluster_domain.empty() && in.cluster_domain != "lain")
    out.push_back(in.cluster_domain);
  out.emplace_back("lain");
  return out;
}

std::string key_of(std::string_view prefix, const std::string& suffix) {
  return std::string{prefix} + suffix;
}

/// VIP key → config, as the plan leaves them.
using vip_map = std::map<std::string, config::vip_config>;

void plan_webrouter(const inputs& in, const vip_map& vips, plan& out) {
  auto ips = serving_ips(in, "webrouter");
  bool has_vips = std::any_of(vips.begin(), vips.end(), [](auto& kv) {
    return kv.second.app == "webrouter" && !kv.second.port_only();
  });
  auto domain = key_of(config::domains_prefix, "webrouter.lain");
  if (has_vips)
    out[domain] = render_domain({}, config::domain_type::webrouter);
  else if (!ips.empty())
    out[domain] = render_domain(ips, config::domain_type::fixed);
  if (ips.empty())
    return; // as the original: no nodes, the last lines stay
  std::vector<std::string> lines;
  for (auto& ip : ips)
    lines.push_back("+webrouter.lain:" + ip + ":300");
  out[key_of(config::tinydns_fqdns_prefix, "webrouter.lain")]
    = render_lines(lines);
  for (auto& d : cluster_domains(in)) {
    lines.clear();
    for (auto& ip : ips) {
      lines.push_back("+*." + d + ":" + ip + ":300");
      lines.push_back("." + d + ":" + ip + ":a:300");
    }
    out[key_of(config::tinydns_fqdns_prefix, d)] = render_lines(lines);
  }
}

void plan_tinydns(const inputs& in, const vip_map& vips,
                  const std::map<std::string, std::string>& current,
                  plan& out) {
  std::vector<config::upstream> servers;
  {
    std::set<std::pair<std::string, uint16_t>> seen;
    for (auto& [key, e] : in.endpoints)
      if (e.app == "tinydns" && e.proc == "worker")
        seen.insert({e.ip, e.port});
    for (auto& [ip, port] : seen)
      servers.push_back({ip, port});
  }
  // No workers: the last list stays (a lease hiccup of every tinydns node
  // must not leave the cluster domain without servers).
  if (!servers.empty())
    for (auto& d : cluster_domains(in))
      out[key_of(config::domain_servers_prefix, d)] = render_servers(servers);
  // +{app}.lain:VIP:300 for every app with address VIPs (webrouter.lain is
  // the webrouter publisher's).
  std::map<std::string, std::set<std::string>> by_app;
  for (auto& [key, v] : vips)
    if (!v.port_only() && v.app != "webrouter" && v.ip != "0.0.0.0")
      by_app[v.app].insert(v.ip);
  for (auto& [app, ips] : by_app) {
    std::vector<std::string> lines;
    for (auto& ip : ips)
      lines.push_back("+" + app + ".lain:" + ip + ":300");
    out[key_of(config::tinydns_fqdns_prefix, app + ".lain")]
      = render_lines(lines);
  }
  // Lines of apps that lost their VIPs go, but only keys written this way.
  constexpr std::string_view lain = ".lain";
  for (auto& [key, text] : current) {
    if (key.compare(0, config::tinydns_fqdns_prefix.size(),
                    config::tinydns_fqdns_prefix)
        != 0)
      continue;
    auto name = key.substr(config::tinydns_fqdns_prefix.size());
    if (name.size() <= lain.size()
        || name.compare(name.size() - lain.size(), lain.size(), lain) != 0)
      continue;
    auto app = name.substr(0, name.size() - lain.size());
    if (app == "webrouter" || by_app.count(app) || out.count(key))
      continue;
    if (is_app_lines(app, text))
      out[key] = std::nullopt;
  }
}

/// Writes the pool VIPs and deletes the streamrouter's VIPs out of the
/// pool, in `out` and in `vips`.
void plan_streamrouter(const inputs& in, vip_map& vips, plan& out) {
  std::set<std::string> pool(in.pool.begin(), in.pool.end());
  for (auto i = vips.begin(); i != vips.end();) {
    auto& v = i->second;
    if (v.app == "streamrouter" && v.proc == "worker" && !v.port_only()
        && pool.count(v.ip) == 0) {
      out[i->first] = std::nullopt;
      i = vips.erase(i);
    } else {
      ++i;
    }
  }
  // A VIP needs ports: with none known (or an empty list) nothing is
  // written, but VIPs dropped from the pool still go.
  if (!in.ports || in.ports->empty())
    return;
  config::vip_config v;
  v.app = "streamrouter";
  v.proc = "worker";
  for (auto p : *in.ports)
    v.ports.push_back({p, config::proto::tcp, p});
  auto value = render_vip(v);
  for (auto& ip : pool) {
    auto key = key_of(config::vips_prefix, ip);
    out[key] = value;
    v.key = ip;
    v.ip = ip;
    vips[key] = v;
  }
}

} // namespace

plan desired(const inputs& in,
             const std::map<std::string, std::string>& current) {
  plan out;
  if (in.swarm && !in.swarm_ip.empty())
    out[key_of(config::domains_prefix, "swarm.lain")]
      = render_domain({in.swarm_ip}, config::domain_type::fixed);
  if (in.deployd && !in.deployd_ip.empty())
    out[key_of(config::domains_prefix, "deployd.lain")]
      = render_domain({in.deployd_ip}, config::domain_type::fixed);
  // The streamrouter goes first: the others read the VIPs it leaves.
  auto vips = in.vips;
  if (in.streamrouter)
    plan_streamrouter(in, vips, out);
  if (in.webrouter)
    plan_webrouter(in, vips, out);
  if (in.tinydns)
    plan_tinydns(in, vips, current, out);
  return out;
}

plan changes(const plan& wanted,
             const std::map<std::string, std::string>& current) {
  plan out;
  for (auto& [key, value] : wanted) {
    auto cur = current.find(key);
    bool differs = value ? cur == current.end() || cur->second != *value
                         : cur != current.end();
    if (differs)
      out.emplace(key, value);
  }
  return out;
}

std::vector<plan> transactions(const plan& changes, size_t max_ops) {
  max_ops = std::max<size_t>(max_ops, 1);
  std::vector<plan> out;
  if (changes.size() <= max_ops) {
    if (!changes.empty())
      out.push_back(changes);
    return out;
  }
  auto add
    = [&](const std::string& key, const std::optional<std::string>& value) {
        if (out.empty() || out.back().size() >= max_ops)
          out.emplace_back();
        out.back().emplace(key, value);
      };
  for (auto& [key, value] : changes)
    if (value)
      add(key, value);
  for (auto& [key, value] : changes)
    if (!value)
      add(key, value);
  return out;
}

std::string render_domain(const std::vector<std::string>& ips,
                          config::domain_type type) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  w.Key("ips");
  w.StartArray();
  for (auto& ip : ips)
    put_string(w, ip);
  w.EndArray();
  w.Key("type");
  put_string(w, type == config::domain_type::fixed
                  ? std::string{}
                  : std::string{config::to_string(type)});
  w.EndObject();
  return buf.GetString();
}

std::string render_servers(const std::vector<config::upstream>& servers) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  w.Key("servers");
  w.StartArray();
  for (auto& s : servers)
    put_string(w, s.ip + "#" + std::to_string(s.port));
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

std::string render_vip(const config::vip_config& v) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartObject();
  w.Key("app");
  put_string(w, v.app);
  w.Key("proc");
  put_string(w, v.proc);
  w.Key("ports");
  w.StartArray();
  for (auto& p : v.ports) {
    w.StartObject();
    w.Key("src");
    put_string(w, std::to_string(p.src));
    w.Key("proto");
    put_string(w, config::to_string(p.protocol));
    w.Key("dest");
    put_string(w, std::to_string(p.dest));
    w.EndObject();
  }
  w.EndArray();
  w.Key("excluded_nodes");
  w.StartArray();
  for (auto& n : v.excluded_nodes)
    put_string(w, n);
  w.EndArray();
  w.EndObject();
  return buf.GetString();
}

std::string render_lines(const std::vector<std::string>& lines) {
  rapidjson::StringBuffer buf;
  writer w{buf};
  w.StartArray();
  for (auto& l : lines)
    put_string(w, l);
  w.EndArray();
  return buf.GetString();
}

bool is_app_lines(const std::string& app, const std::string& text) {
  rapidjson::Document doc;
  if (config::parse_flat(text, doc) || !doc.IsArray())
    return false;
  auto head = "+" + app + ".lain:";
  constexpr std::string_view tail = ":300";
  for (auto& v : doc.GetArray()) {
    if (!v.IsString())
      return false;
    std::string_view s{v.GetString(), v.GetStringLength()};
    if (s.size() <= head.size() + tail.size()
        || s.substr(0, head.size()) != head
        || s.substr(s.size() - tail.size()) != tail)
      return false;
    auto ip = s.substr(head.size(), s.size() - head.size() - tail.size());
    if (!config::is_ipv4(ip))
      return false;
  }
  return true;
}

} // namespace networkd::publish
