// SPDX-License-Identifier: MIT
// Parsers for the etcd key contract: key shapes, JSON values and knobs.

#include "net/cluster/config.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cstdio>
#include <optional>
#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "net/base/json_fields.hpp"
#include "net/base/text.hpp"

namespace networkd::config {

namespace {

using json = rapidjson::Value;

constexpr size_t max_key_in_message = 300;
constexpr size_t max_text_in_message = 64;

std::string quote(std::string_view text) {
  return "\"" + printable(text, max_text_in_message) + "\"";
}

failure bad(const char* code, std::string message) {
  return make_failure(code, std::move(message));
}

// Prefixes a failure's message with the full key.
failure with_key(std::string_view key, failure f) {
  f.message = printable(key, max_key_in_message) + ": " + f.message;
  return f;
}

// Prefixes a failure's message with a field path ("ports[1].src").
failure in_field(const std::string& path, failure f) {
  f.message = path + ": " + f.message;
  return f;
}

std::string full_key(std::string_view prefix, std::string_view suffix) {
  std::string k(prefix);
  k += suffix;
  return k;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v'
         || c == '\f';
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && is_space(s.front()))
    s.remove_prefix(1);
  while (!s.empty() && is_space(s.back()))
    s.remove_suffix(1);
  return s;
}

bool is_digit(char c) {
  return c >= '0' && c <= '9';
}

char to_lower(char c) {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    c = to_lower(c);
  return out;
}

std::optional<failure> parse_json_object(std::string_view value,
                                         rapidjson::Document& doc) {
  if (auto f = parse_json(value, doc))
    return f;
  if (!doc.IsObject())
    return bad("bad_json",
               std::string("expected a JSON object, got ") + type_name(doc));
  return std::nullopt;
}

std::optional<failure> parse_json_array(std::string_view value,
                                        rapidjson::Document& doc) {
  if (auto f = parse_json(value, doc))
    return f;
  if (!doc.IsArray())
    return bad("bad_json",
               std::string("expected a JSON array, got ") + type_name(doc));
  return std::nullopt;
}

// A member of an object, or nullptr when absent or null.
const json* member(const json& obj, const char* name) {
  auto i = obj.FindMember(name);
  if (i == obj.MemberEnd() || i->value.IsNull())
    return nullptr;
  return &i->value;
}

// A required non-empty string member.
result<std::string> required_string(const json& obj, const char* name) {
  auto v = member(obj, name);
  if (v == nullptr)
    return in_field(name, bad("bad_field", "missing"));
  if (!v->IsString())
    return in_field(name, wrong_type("a string", *v));
  if (v->GetStringLength() == 0)
    return in_field(name, bad("bad_field", "empty"));
  return std::string(view(*v));
}

// A required non-empty array member.
result<const json*> required_array(const json& obj, const char* name) {
  auto v = member(obj, name);
  if (v == nullptr)
    return in_field(name, bad("bad_field", "missing"));
  if (!v->IsArray())
    return in_field(name, wrong_type("an array", *v));
  if (v->Empty())
    return in_field(name, bad("bad_field", "empty"));
  return v;
}

// Whole numbers with an optional minus sign; nullopt on anything else or on
// overflow of int64.
std::optional<int64_t> parse_int(std::string_view s) {
  bool neg = false;
  if (!s.empty() && s.front() == '-') {
    neg = true;
    s.remove_prefix(1);
  }
  if (s.empty())
    return std::nullopt;
  uint64_t n = 0;
  constexpr uint64_t limit = static_cast<uint64_t>(INT64_MAX);
  for (auto c : s) {
    if (!is_digit(c))
      return std::nullopt;
    auto d = static_cast<uint64_t>(c - '0');
    if (n > (limit - d) / 10)
      return std::nullopt;
    n = n * 10 + d;
  }
  auto v = static_cast<int64_t>(n);
  return neg ? -v : v;
}

failure port_out_of_range(std::string_view shown) {
  return bad("bad_field", "port " + printable(shown, max_text_in_message)
                            + " out of range 1-65535");
}

// A port given as a JSON string or number.
result<uint16_t> port_from_json(const json& v) {
  if (v.IsString())
    return parse_port(view(v));
  if (v.IsInt64()) {
    auto n = v.GetInt64();
    if (n < 1 || n > 65535)
      return port_out_of_range(std::to_string(n));
    return static_cast<uint16_t>(n);
  }
  if (v.IsUint64())
    return port_out_of_range(std::to_string(v.GetUint64()));
  if (v.IsNumber()) {
    auto d = v.GetDouble();
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", d);
    // Accept 80.0 as 80, but not 80.5.
    if (!(d >= 1.0 && d <= 65535.0))
      return port_out_of_range(buf);
    auto n = static_cast<uint16_t>(d);
    if (static_cast<double>(n) != d)
      return bad("bad_field",
                 std::string("port ") + buf + " is not a whole number");
    return n;
  }
  return wrong_type("a port (string or number)", v);
}

bool is_ipv6(std::string_view text) {
  if (text.empty() || text.size() > 64
      || text.find('\0') != std::string_view::npos)
    return false;
  std::string s(text);
  in6_addr addr;
  return inet_pton(AF_INET6, s.c_str(), &addr) == 1;
}

bool is_label_char(char c) {
  return (c >= 'a' && c <= 'z') || is_digit(c) || c == '-' || c == '_';
}

// Checks a lower-cased name without trailing dot; returns the reason when bad.
std::optional<std::string> check_dns_name(std::string_view name) {
  if (name.empty())
    return std::string("empty domain name");
  if (name.size() > 253)
    return "domain name of " + std::to_string(name.size())
           + " characters is longer than 253";
  size_t start = 0;
  while (start <= name.size()) {
    auto end = name.find('.', start);
    if (end == std::string_view::npos)
      end = name.size();
    auto label = name.substr(start, end - start);
    if (label.empty())
      return std::string("empty label in domain name");
    if (label.size() > 63)
      return "label " + quote(label) + " is longer than 63 characters";
    for (auto c : label)
      if (!is_label_char(c)) {
        if (c == '*')
          return std::string("'*' is only allowed as the whole first label");
        return "invalid character " + quote(std::string_view(&c, 1))
               + " in domain name";
      }
    start = end + 1;
  }
  return std::nullopt;
}

// Lower-cases and strips one trailing dot.
std::string normalize_name(std::string_view name) {
  if (!name.empty() && name.back() == '.')
    name.remove_suffix(1);
  return lower(name);
}

bool in_choices(const char* choices, std::string_view word) {
  std::string_view all(choices);
  while (!all.empty()) {
    auto sp = all.find(' ');
    auto w = all.substr(0, sp);
    if (!w.empty() && w == word)
      return true;
    if (sp == std::string_view::npos)
      break;
    all.remove_prefix(sp + 1);
  }
  return false;
}

std::string known_knob_names() {
  std::string out;
  for (auto& k : known_knobs()) {
    if (!out.empty())
      out += ", ";
    out += k.name;
  }
  return out;
}

} // namespace

// -- key families -------------------------------------------------------------

const char* to_string(family f) {
  switch (f) {
    case family::vip:
      return "vip";
    case family::domain:
      return "domain";
    case family::domain_servers:
      return "domain_servers";
    case family::vippool:
      return "vippool";
    case family::swarm_leader:
      return "swarm_leader";
    case family::deployd_leader:
      return "deployd_leader";
    case family::knob:
      return "knob";
    case family::vip_lock:
      return "vip_lock";
    case family::leader_candidate:
      return "leader_candidate";
    case family::app_endpoint:
      return "app_endpoint";
    case family::tinydns_fqdns:
      return "tinydns_fqdns";
    case family::container_vip:
      return "container_vip";
    case family::acl:
      return "acl";
    case family::unknown:
      return "unknown";
  }
  return "unknown";
}

classified classify(std::string_view full_key) {
  if (full_key == vippool_key)
    return {family::vippool, {}};
  if (full_key == swarm_leader_key)
    return {family::swarm_leader, {}};
  if (full_key == deployd_leader_key)
    return {family::deployd_leader, {}};
  struct by_prefix {
    std::string_view prefix;
    family fam;
  };
  static constexpr by_prefix prefixes[] = {
    {vips_prefix, family::vip},
    {domains_prefix, family::domain},
    {domain_servers_prefix, family::domain_servers},
    {knobs_prefix, family::knob},
    {leader_prefix, family::leader_candidate},
    {app_endpoints_prefix, family::app_endpoint},
    {tinydns_fqdns_prefix, family::tinydns_fqdns},
    {container_vips_prefix, family::container_vip},
  };
  constexpr std::string_view lock_suffix = ".lock";
  if (full_key.size() > vip_locks_prefix.size() + lock_suffix.size()
      && full_key.substr(0, vip_locks_prefix.size()) == vip_locks_prefix
      && full_key.substr(full_key.size() - lock_suffix.size()) == lock_suffix) {
    auto ip = full_key.substr(vip_locks_prefix.size(),
                              full_key.size() - vip_locks_prefix.size()
                                - lock_suffix.size());
    if (is_ipv4(ip))
      return {family::vip_lock, std::string(ip)};
  }
  for (auto& p : prefixes) {
    if (full_key.size() > p.prefix.size()
        && full_key.substr(0, p.prefix.size()) == p.prefix)
      return {p.fam, std::string(full_key.substr(p.prefix.size()))};
  }
  return {};
}

// -- values -------------------------------------------------------------------

bool is_ipv4(std::string_view text) {
  if (text.size() < 7 || text.size() > 15)
    return false;
  int parts = 0;
  size_t i = 0;
  while (true) {
    size_t start = i;
    int n = 0;
    while (i < text.size() && is_digit(text[i]) && i - start < 3) {
      n = n * 10 + (text[i] - '0');
      ++i;
    }
    auto len = i - start;
    if (len == 0 || n > 255 || (len > 1 && text[start] == '0'))
      return false;
    ++parts;
    if (i == text.size())
      return parts == 4;
    if (text[i] != '.' || parts == 4)
      return false;
    ++i;
  }
}

const char* to_string(proto p) {
  switch (p) {
    case proto::tcp:
      return "tcp";
    case proto::udp:
      return "udp";
  }
  return "unknown";
}

namespace {

// One entry of "ports"; key_port is 0 for an IP key. Failures name the field
// below `path` ("ports[1].src").
result<port_mapping> parse_port_entry(const json& entry, uint16_t key_port,
                                      const std::string& path) {
  if (!entry.IsObject())
    return in_field(path, wrong_type("an object", entry));
  port_mapping pm;
  auto src = member(entry, "src");
  if (src != nullptr && !(src->IsString() && src->GetStringLength() == 0)) {
    auto p = port_from_json(*src);
    if (!p)
      return in_field(path + ".src", p.error());
    pm.src = *p;
  } else if (key_port != 0) {
    pm.src = key_port;
  } else {
    return in_field(path + ".src", bad("bad_field", "missing or empty"));
  }
  if (auto pr = member(entry, "proto")) {
    if (!pr->IsString())
      return in_field(path + ".proto", wrong_type("\"tcp\" or \"udp\"", *pr));
    auto name = lower(view(*pr));
    if (name == "udp")
      pm.protocol = proto::udp;
    else if (name.empty() || name == "tcp")
      pm.protocol = proto::tcp;
    else
      return in_field(path + ".proto",
                      bad("bad_field", "unknown protocol " + quote(view(*pr))
                                         + " (tcp or udp)"));
  }
  pm.dest = pm.src;
  auto dest = member(entry, "dest");
  if (dest != nullptr && !(dest->IsString() && dest->GetStringLength() == 0)) {
    auto p = port_from_json(*dest);
    if (!p)
      return in_field(path + ".dest", p.error());
    pm.dest = *p;
  }
  return pm;
}

result<vip_config> parse_vip_key(std::string_view suffix) {
  vip_config cfg;
  cfg.key = std::string(suffix);
  auto colon = suffix.find(':');
  auto ip = suffix.substr(0, colon);
  if (colon != std::string_view::npos) {
    if (suffix.find(':', colon + 1) != std::string_view::npos)
      return bad("bad_key", "expected IP or IP:PORT, found more than one ':'");
    auto port = parse_port(suffix.substr(colon + 1));
    if (!port)
      return bad("bad_key", port.error().message);
    cfg.key_port = *port;
  }
  if (!is_ipv4(ip))
    return bad("bad_key", quote(ip) + " is not an IPv4 address");
  if (ip == "0.0.0.0" && cfg.key_port == 0)
    return bad("bad_key", "0.0.0.0 needs a port (0.0.0.0:PORT)");
  cfg.ip = std::string(ip);
  return cfg;
}

result<vip_config> parse_vip_impl(std::string_view suffix,
                                  std::string_view value) {
  auto key = parse_vip_key(suffix);
  if (!key)
    return key.error();
  auto cfg = std::move(*key);
  rapidjson::Document doc;
  if (auto f = parse_json_object(value, doc))
    return *f;
  auto app = required_string(doc, "app");
  if (!app)
    return app.error();
  cfg.app = std::move(*app);
  auto proc = required_string(doc, "proc");
  if (!proc)
    return proc.error();
  cfg.proc = std::move(*proc);
  auto ports_or = required_array(doc, "ports");
  if (!ports_or)
    return ports_or.error();
  const json* ports = *ports_or;
  if (auto f = over_limit("ports", *ports, max_vip_ports))
    return *f;
  for (rapidjson::SizeType i = 0; i < ports->Size(); ++i) {
    auto path = "ports[" + std::to_string(i) + "]";
    auto pm = parse_port_entry((*ports)[i], cfg.key_port, path);
    if (!pm)
      return pm.error();
    for (auto& other : cfg.ports)
      if (other.src == pm->src && other.protocol == pm->protocol)
        return in_field(path, bad("bad_field", "duplicate port "
                                                 + std::to_string(pm->src) + "/"
                                                 + to_string(pm->protocol)));
    cfg.ports.push_back(*pm);
  }
  if (auto ex = member(doc, "excluded_nodes")) {
    if (!ex->IsArray())
      return in_field("excluded_nodes", wrong_type("an array", *ex));
    if (auto f = over_limit("excluded_nodes", *ex, max_excluded_nodes))
      return *f;
    for (rapidjson::SizeType i = 0; i < ex->Size(); ++i) {
      auto& node = (*ex)[i];
      if (!node.IsString())
        return in_field("excluded_nodes[" + std::to_string(i) + "]",
                        wrong_type("a string", node));
      if (node.GetStringLength() > 0)
        cfg.excluded_nodes.emplace_back(view(node));
    }
  }
  return cfg;
}

// Validates a domain key suffix; fills name, wildcard and suffix.
std::optional<failure> parse_domain_name(std::string_view raw,
                                         domain_config& cfg) {
  cfg.name = normalize_name(raw);
  std::string_view name = cfg.name;
  if (name.size() >= 2 && name.substr(0, 2) == "*.") {
    cfg.wildcard = true;
    name.remove_prefix(2);
    cfg.suffix = std::string(name);
  } else if (name == "*") {
    return bad("bad_key", "a wildcard needs a suffix (*.domain)");
  }
  if (auto why = check_dns_name(name))
    return bad("bad_key", *why);
  return std::nullopt;
}

result<domain_config> parse_domain_impl(std::string_view name,
                                        std::string_view value) {
  domain_config cfg;
  if (auto f = parse_domain_name(name, cfg))
    return *f;
  rapidjson::Document doc;
  if (auto f = parse_json_object(value, doc))
    return *f;
  if (auto t = member(doc, "type")) {
    if (!t->IsString())
      return in_field("type", wrong_type("a string", *t));
    auto type = view(*t);
    if (type == "node")
      cfg.type = domain_type::node;
    else if (type == "webrouter")
      cfg.type = domain_type::webrouter;
    else if (!type.empty())
      return in_field("type", bad("bad_field", "unknown type " + quote(type)
                                                 + " (\"\", node, webrouter)"));
  }
  if (cfg.type != domain_type::fixed)
    return cfg;
  auto ips = member(doc, "ips");
  if (ips == nullptr)
    return in_field("ips", bad("bad_field", "missing (needed for type \"\")"));
  if (!ips->IsArray())
    return in_field("ips", wrong_type("an array", *ips));
  if (auto f = over_limit("ips", *ips, max_domain_ips))
    return *f;
  for (rapidjson::SizeType i = 0; i < ips->Size(); ++i) {
    auto& ip = (*ips)[i];
    auto path = "ips[" + std::to_string(i) + "]";
    if (!ip.IsString())
      return in_field(path, wrong_type("a string", ip));
    auto text = view(ip);
    if (!is_ipv4(text) && !is_ipv6(text))
      return in_field(path,
                      bad("bad_field", quote(text) + " is not an IP address"));
    bool seen = false;
    for (auto& have : cfg.ips)
      seen = seen || have == text;
    if (!seen)
      cfg.ips.emplace_back(text);
  }
  if (cfg.ips.empty())
    return in_field("ips", bad("bad_field", "empty (type \"\" needs at least "
                                            "one address)"));
  return cfg;
}

result<domain_servers_config>
parse_domain_servers_impl(std::string_view domain, std::string_view value) {
  domain_servers_config cfg;
  cfg.domain = normalize_name(domain);
  if (auto why = check_dns_name(cfg.domain))
    return bad("bad_key", *why);
  rapidjson::Document doc;
  if (auto f = parse_json_object(value, doc))
    return *f;
  auto servers_or = required_array(doc, "servers");
  if (!servers_or)
    return servers_or.error();
  const json* servers = *servers_or;
  if (auto f = over_limit("servers", *servers, max_domain_servers))
    return *f;
  for (rapidjson::SizeType i = 0; i < servers->Size(); ++i) {
    auto& s = (*servers)[i];
    auto path = "servers[" + std::to_string(i) + "]";
    if (!s.IsString())
      return in_field(path, wrong_type("a string", s));
    auto up = parse_upstream(view(s));
    if (!up)
      return in_field(path, up.error());
    bool seen = false;
    for (auto& have : cfg.servers)
      seen = seen || have == *up;
    if (!seen)
      cfg.servers.push_back(std::move(*up));
  }
  return cfg;
}

result<leader_addr> parse_leader_impl(std::string_view value) {
  if (value.size() > max_value_size)
    return bad("too_large", "value of " + std::to_string(value.size())
                              + " bytes exceeds the limit of "
                              + std::to_string(max_value_size));
  auto text = trim(value);
  if (text.empty())
    return bad("bad_field", "empty value (expected ip:port)");
  auto colon = text.find(':');
  if (colon == std::string_view::npos
      || text.find(':', colon + 1) != std::string_view::npos)
    return bad("bad_field", quote(text) + " is not ip:port");
  auto ip = text.substr(0, colon);
  if (!is_ipv4(ip))
    return bad("bad_field", quote(ip) + " is not an IPv4 address");
  auto port = parse_port(text.substr(colon + 1));
  if (!port)
    return port.error();
  return leader_addr{std::string(ip), *port};
}

result<std::vector<std::string>> parse_vippool_impl(std::string_view value) {
  rapidjson::Document doc;
  if (auto f = parse_json_array(value, doc))
    return *f;
  if (auto f = over_limit("pool", doc, max_vippool))
    return *f;
  std::vector<std::string> out;
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    auto& v = doc[i];
    auto path = "[" + std::to_string(i) + "]";
    if (!v.IsString())
      return in_field(path, wrong_type("a string", v));
    auto ip = view(v);
    if (!is_ipv4(ip))
      return in_field(path,
                      bad("bad_field", quote(ip) + " is not an IPv4 address"));
    bool seen = false;
    for (auto& have : out)
      seen = seen || have == ip;
    if (!seen)
      out.emplace_back(ip);
  }
  return out;
}

result<std::vector<uint16_t>>
parse_streamrouter_ports_impl(std::string_view value) {
  rapidjson::Document doc;
  if (auto f = parse_json_array(value, doc))
    return *f;
  if (auto f = over_limit("ports", doc, max_streamrouter_ports))
    return *f;
  std::vector<uint16_t> out;
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    auto p = port_from_json(doc[i]);
    if (!p)
      return in_field("[" + std::to_string(i) + "]", p.error());
    out.push_back(*p);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

result<knob> parse_knob_impl(std::string_view name, std::string_view value) {
  auto spec = find_knob(name);
  if (spec == nullptr)
    return bad("unknown_knob", "unknown knob " + quote(name)
                                 + " (known: " + known_knob_names() + ")");
  if (value.size() > max_value_size)
    return bad("too_large", "value of " + std::to_string(value.size())
                              + " bytes exceeds the limit of "
                              + std::to_string(max_value_size));
  auto text = trim(value);
  rapidjson::Document doc;
  if (!text.empty() && text.front() == '"') {
    if (auto f = parse_json(text, doc))
      return *f;
    if (!doc.IsString())
      return bad("bad_json", "expected a JSON string");
    text = trim(view(doc));
  }
  if (text.empty())
    return bad("bad_field", "empty value");
  knob k;
  k.name = spec->name;
  if (!spec->numeric) {
    auto word = lower(text);
    if (!in_choices(spec->choices, word))
      return bad("bad_field", quote(text) + " is not one of: " + spec->choices);
    k.text = std::move(word);
    return k;
  }
  auto n = parse_int(text);
  if (!n)
    return bad("bad_field", quote(text) + " is not a whole number");
  if (*n < spec->min || *n > spec->max) {
    std::string unit
      = *spec->unit != '\0' ? std::string(" ") + spec->unit : std::string();
    return bad("bad_field", "value " + std::to_string(*n) + " out of range "
                              + std::to_string(spec->min) + "-"
                              + std::to_string(spec->max) + unit);
  }
  k.number = *n;
  return k;
}

} // namespace

result<vip_config> parse_vip(std::string_view key_suffix,
                             std::string_view value) {
  auto r = parse_vip_impl(key_suffix, value);
  if (!r)
    return with_key(full_key(vips_prefix, key_suffix), r.error());
  return r;
}

result<domain_config> parse_domain(std::string_view name,
                                   std::string_view value) {
  auto r = parse_domain_impl(name, value);
  if (!r)
    return with_key(full_key(domains_prefix, name), r.error());
  return r;
}

result<upstream> parse_upstream(std::string_view text) {
  auto hash = text.find('#');
  auto ip = text.substr(0, hash);
  upstream up;
  if (!is_ipv4(ip) && !is_ipv6(ip))
    return bad("bad_field",
               quote(text) + ": " + quote(ip) + " is not an IP address");
  up.ip = std::string(ip);
  if (hash != std::string_view::npos) {
    auto port = parse_port(text.substr(hash + 1));
    if (!port)
      return in_field(quote(text), port.error());
    up.port = *port;
  }
  return up;
}

result<domain_servers_config> parse_domain_servers(std::string_view domain,
                                                   std::string_view value) {
  auto r = parse_domain_servers_impl(domain, value);
  if (!r)
    return with_key(full_key(domain_servers_prefix, domain), r.error());
  return r;
}

result<leader_addr> parse_leader(std::string_view key, std::string_view value) {
  auto r = parse_leader_impl(value);
  if (!r)
    return with_key(key, r.error());
  return r;
}

result<app_endpoint> parse_app_endpoint(std::string_view suffix) {
  auto fail = [&](const char* why) -> result<app_endpoint> {
    return make_failure("bad_key", std::string{app_endpoints_prefix}
                                     + std::string{suffix} + ": " + why);
  };
  auto s1 = suffix.find('/');
  auto s2 = s1 == std::string_view::npos ? s1 : suffix.find('/', s1 + 1);
  if (s2 == std::string_view::npos || s1 == 0 || s2 == s1 + 1
      || suffix.find('/', s2 + 1) != std::string_view::npos)
    return fail("expected {app}/{proc}/{ip}:{port}");
  auto addr = suffix.substr(s2 + 1);
  auto colon = addr.rfind(':');
  if (colon == std::string_view::npos)
    return fail("expected {ip}:{port} after the proc");
  app_endpoint out;
  out.app = std::string{suffix.substr(0, s1)};
  out.proc = std::string{suffix.substr(s1 + 1, s2 - s1 - 1)};
  out.ip = std::string{addr.substr(0, colon)};
  if (!is_ipv4(out.ip))
    return fail("the address is not IPv4");
  auto port = parse_port(addr.substr(colon + 1));
  if (!port)
    return fail("bad port");
  out.port = *port;
  return out;
}

result<container_vip> parse_container_vip(std::string_view suffix,
                                          std::string_view value) {
  auto fail = [&](const std::string& why) -> result<container_vip> {
    return make_failure("bad_key", std::string{container_vips_prefix}
                                     + std::string{suffix} + ": " + why);
  };
  std::vector<std::string_view> parts;
  size_t start = 0;
  while (true) {
    auto slash = suffix.find('/', start);
    parts.push_back(suffix.substr(start, slash == std::string_view::npos
                                           ? std::string_view::npos
                                           : slash - start));
    if (slash == std::string_view::npos)
      break;
    start = slash + 1;
  }
  if (parts.size() != 4 || std::any_of(parts.begin(), parts.end(), [](auto p) {
        return p.empty();
      }))
    return fail("expected {app}/{proc}/{instance}/{vip}");
  container_vip out;
  out.app = std::string{parts[0]};
  out.proc = std::string{parts[1]};
  int64_t n = 0;
  for (auto ch : parts[2]) {
    if (ch < '0' || ch > '9' || n > 1000000000)
      return fail("the instance is not a number");
    n = n * 10 + (ch - '0');
  }
  out.instance = n;
  out.vip = std::string{parts[3]};
  if (!is_ipv4(out.vip))
    return fail("the VIP is not IPv4");
  if (value == "used")
    out.used = true;
  else if (value != "unused")
    return make_failure("bad_field",
                        std::string{container_vips_prefix} + std::string{suffix}
                          + ": expected \"used\" or \"unused\", got "
                          + quote(value));
  return out;
}

result<std::vector<uint16_t>> parse_streamrouter_ports(std::string_view value) {
  auto r = parse_streamrouter_ports_impl(value);
  if (!r)
    return failure{r.error().code, "streamrouter ports: " + r.error().message};
  return r;
}

result<std::vector<std::string>> parse_vippool(std::string_view value) {
  auto r = parse_vippool_impl(value);
  if (!r)
    return with_key(vippool_key, r.error());
  return r;
}

result<knob> parse_knob(std::string_view name, std::string_view value) {
  auto r = parse_knob_impl(name, value);
  if (!r)
    return with_key(full_key(knobs_prefix, name), r.error());
  return r;
}

} // namespace networkd::config
