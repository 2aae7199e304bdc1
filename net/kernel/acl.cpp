// SPDX-License-Identifier: MIT
// Node ACL in filter-table chains lain-INPUT/lain-ENTRY: key parsers, rules.
#include "net/kernel/acl.hpp"

#include "net/base/log.hpp"
#include "net/kernel/nat.hpp"

#include <algorithm>
#include <cstdio>
#include <optional>
#include <set>
#include <utility>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "net/base/json_fields.hpp"
#include "net/base/text.hpp"

namespace networkd::acl {

namespace {

using json = rapidjson::Value;
using config::parse_json;
using config::type_name;
using config::view;
using config::wrong_type;

constexpr size_t max_key_in_message = 300;
constexpr size_t max_text_in_message = 64;
constexpr size_t max_spec_size = 4096;
/// Ports per multiport match; a range takes two.
constexpr int multiport_slots = 15;

std::string quote(std::string_view text) {
  return "\"" + printable(text, max_text_in_message) + "\"";
}

failure bad(const char* code, std::string message) {
  return make_failure(code, std::move(message));
}

failure with_key(std::string_view prefix, std::string_view suffix, failure f) {
  std::string key(prefix);
  key += suffix;
  f.message = printable(key, max_key_in_message) + ": " + f.message;
  return f;
}

failure in_field(const std::string& path, failure f) {
  f.message = path + ": " + f.message;
  return f;
}

uint32_t to_u32(std::string_view ipv4) {
  uint32_t out = 0;
  uint32_t part = 0;
  for (char c : ipv4) {
    if (c == '.') {
      out = (out << 8) | part;
      part = 0;
    } else {
      part = part * 10 + static_cast<uint32_t>(c - '0');
    }
  }
  return (out << 8) | part;
}

std::string from_u32(uint32_t a) {
  return std::to_string(a >> 24) + "." + std::to_string((a >> 16) & 0xff) + "."
         + std::to_string((a >> 8) & 0xff) + "." + std::to_string(a & 0xff);
}

failure not_a_source(std::string_view text) {
  return bad("bad_field",
             quote(text) + " is not an IPv4 address, range (a-b) or CIDR");
}

// A port given as a JSON string ("80", "8000:8100") or number (80).
result<port_range> port_from_json(const json& v) {
  if (v.IsString())
    return parse_port_range(view(v));
  std::string digits;
  if (v.IsInt64()) {
    digits = std::to_string(v.GetInt64());
  } else if (v.IsUint64()) {
    digits = std::to_string(v.GetUint64());
  } else if (v.IsNumber()) {
    auto d = v.GetDouble();
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", d);
    // Accept 80.0 as 80, but not 80.5.
    if (!(d >= 1.0 && d <= 65535.0))
      return bad("bad_field",
                 std::string("port ") + buf + " out of range 1-65535");
    if (static_cast<double>(static_cast<uint16_t>(d)) != d)
      return bad("bad_field",
                 std::string("port ") + buf + " is not a whole number");
    digits = std::to_string(static_cast<uint16_t>(d));
  } else {
    return wrong_type("a port (string or number)", v);
  }
  auto p = config::parse_port(digits);
  if (!p)
    return p.error();
  return port_range{*p, *p};
}

// A JSON array of ports at `path`, sorted and without duplicates.
result<std::vector<port_range>> port_list(const json& v,
                                          const std::string& path) {
  if (!v.IsArray())
    return in_field(path, wrong_type("a list of ports", v));
  if (auto f = config::over_limit(path.c_str(), v, max_ports_per_list))
    return *f;
  std::vector<port_range> out;
  out.reserve(v.Size());
  for (rapidjson::SizeType i = 0; i < v.Size(); ++i) {
    auto p = port_from_json(v[i]);
    if (!p)
      return in_field(path + "[" + std::to_string(i) + "]", p.error());
    out.push_back(*p);
  }
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::string render_ports(const std::vector<port_range>& ports, size_t begin,
                         size_t end) {
  std::string out;
  for (auto i = begin; i < end; ++i) {
    if (!out.empty())
      out += ',';
    out += std::to_string(ports[i].first);
    if (ports[i].last != ports[i].first)
      out += ":" + std::to_string(ports[i].last);
  }
  return out;
}

// Port lists for multiport matches: at most 15 slots each (a range: two).
std::vector<std::string> port_chunks(const std::vector<port_range>& ports) {
  std::vector<std::string> out;
  size_t begin = 0;
  int used = 0;
  for (size_t i = 0; i < ports.size(); ++i) {
    int cost = ports[i].first == ports[i].last ? 1 : 2;
    if (used + cost > multiport_slots) {
      out.push_back(render_ports(ports, begin, i));
      begin = i;
      used = 0;
    }
    used += cost;
  }
  if (begin < ports.size())
    out.push_back(render_ports(ports, begin, ports.size()));
  return out;
}

// Source match before `-p` / after `-p`, as iptables-save orders them: an
// address match (`-s`) is printed before the protocol, a match module
// (`-m iprange`) after it. 0.0.0.0/0 matches everything and is not printed.
std::string source_before_proto(const source& s) {
  if (s.type != source::kind::cidr || s.text == "0.0.0.0/0")
    return {};
  return "-s " + s.text + " ";
}

std::string source_after_proto(const source& s) {
  if (s.type != source::kind::range)
    return {};
  return "-m iprange --src-range " + s.text + " ";
}

bool is_our_chain(std::string_view name) {
  return name == input_chain || name == entry_chain;
}

bool jumps_to_ours(const std::vector<std::string>& args) {
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if ((args[i] == "-j" || args[i] == "-g") && is_our_chain(args[i + 1]))
      return true;
  return false;
}

const std::string hook_spec = std::string("-j ") + input_chain;

} // namespace

// -- keys ---------------------------------------------------------------------

classified_key classify(std::string_view full_key) {
  for (auto [prefix, kind] :
       {std::pair{whitelist_ips_prefix, key_kind::whitelist_ips},
        std::pair{ex_ports_prefix, key_kind::ex_ports},
        std::pair{in_ports_prefix, key_kind::in_ports}}) {
    if (full_key.size() >= prefix.size()
        && full_key.substr(0, prefix.size()) == prefix)
      return {kind, std::string(full_key.substr(prefix.size()))};
  }
  return {};
}

result<source> parse_source(std::string_view text) {
  if (text.empty())
    return bad("bad_field", "empty source");
  if (text.size() > 40)
    return not_a_source(text);
  if (auto dash = text.find('-'); dash != std::string_view::npos) {
    auto a = text.substr(0, dash);
    auto b = text.substr(dash + 1);
    if (!config::is_ipv4(a) || !config::is_ipv4(b))
      return not_a_source(text);
    if (to_u32(a) > to_u32(b))
      return bad("bad_field", "range " + quote(text)
                                + " is reversed (first address after last)");
    return source{source::kind::range, std::string(text)};
  }
  if (auto slash = text.find('/'); slash != std::string_view::npos) {
    auto ip = text.substr(0, slash);
    auto len = text.substr(slash + 1);
    bool digits
      = !len.empty() && len.size() <= 2 && (len.size() == 1 || len[0] != '0');
    for (char c : len)
      digits = digits && c >= '0' && c <= '9';
    if (!config::is_ipv4(ip) || !digits)
      return not_a_source(text);
    int bits = std::stoi(std::string(len));
    if (bits > 32)
      return bad("bad_field",
                 "prefix length of " + quote(text) + " is over 32");
    uint32_t mask = bits == 0 ? 0 : ~uint32_t{0} << (32 - bits);
    return source{source::kind::cidr,
                  from_u32(to_u32(ip) & mask) + "/" + std::to_string(bits)};
  }
  if (!config::is_ipv4(text))
    return not_a_source(text);
  return source{source::kind::cidr, std::string(text) + "/32"};
}

result<port_range> parse_port_range(std::string_view text) {
  auto colon = text.find(':');
  if (colon == std::string_view::npos) {
    auto p = config::parse_port(text);
    if (!p)
      return p.error();
    return port_range{*p, *p};
  }
  auto a = config::parse_port(text.substr(0, colon));
  if (!a)
    return bad("bad_field",
               "port range " + quote(text) + ": " + a.error().message);
  auto b = config::parse_port(text.substr(colon + 1));
  if (!b)
    return bad("bad_field",
               "port range " + quote(text) + ": " + b.error().message);
  if (*a > *b)
    return bad("bad_field", "port range " + quote(text) + " is reversed");
  return port_range{*a, *b};
}

result<whitelist> parse_whitelist_ips(std::string_view name,
                                      std::string_view value) {
  auto fail = [&](failure f) {
    return with_key(whitelist_ips_prefix, name, std::move(f));
  };
  if (name.empty())
    return fail(bad("bad_key", "empty whitelist name"));
  rapidjson::Document doc;
  if (auto f = parse_json(value, doc))
    return fail(*f);
  if (!doc.IsArray())
    return fail(bad("bad_json", std::string("expected a JSON list, got ")
                                  + type_name(doc)));
  if (auto f = config::over_limit("list", doc, max_whitelist_sources))
    return fail(*f);
  whitelist out;
  out.name = std::string(name);
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    auto path = "[" + std::to_string(i) + "]";
    if (!doc[i].IsString())
      return fail(in_field(path, wrong_type("a string", doc[i])));
    auto s = parse_source(view(doc[i]));
    if (!s)
      return fail(in_field(path, s.error()));
    if (std::find(out.sources.begin(), out.sources.end(), *s)
        == out.sources.end())
      out.sources.push_back(std::move(*s));
  }
  return out;
}

result<ex_ports> parse_ex_ports(std::string_view proto,
                                std::string_view value) {
  auto fail
    = [&](failure f) { return with_key(ex_ports_prefix, proto, std::move(f)); };
  ex_ports out;
  if (proto == "tcp")
    out.protocol = config::proto::tcp;
  else if (proto == "udp")
    out.protocol = config::proto::udp;
  else
    return fail(
      bad("bad_key", "protocol " + quote(proto) + " is not tcp or udp"));
  rapidjson::Document doc;
  if (auto f = parse_json(value, doc))
    return fail(*f);
  if (!doc.IsArray())
    return fail(bad("bad_json", std::string("expected a JSON list, got ")
                                  + type_name(doc)));
  auto ports = port_list(doc, "");
  if (!ports) {
    // Drop the empty path's ": " prefix.
    auto f = ports.error();
    if (f.message.rfind(": ", 0) == 0)
      f.message.erase(0, 2);
    return fail(std::move(f));
  }
  out.ports = std::move(*ports);
  return out;
}

result<in_ports> parse_in_ports(std::string_view source_key,
                                std::string_view value) {
  auto fail = [&](failure f) {
    return with_key(in_ports_prefix, source_key, std::move(f));
  };
  auto from = parse_source(source_key);
  if (!from) {
    auto f = from.error();
    f.code = "bad_key";
    return fail(std::move(f));
  }
  rapidjson::Document doc;
  if (auto f = parse_json(value, doc))
    return fail(*f);
  if (!doc.IsObject())
    return fail(bad("bad_json", std::string("expected a JSON object, got ")
                                  + type_name(doc)));
  auto ports = doc.FindMember("ports");
  if (ports == doc.MemberEnd() || ports->value.IsNull())
    return fail(in_field("ports", bad("bad_field", "missing")));
  if (!ports->value.IsObject())
    return fail(in_field("ports", wrong_type("an object", ports->value)));
  in_ports out;
  out.key = std::string(source_key);
  out.from = std::move(*from);
  for (auto m = ports->value.MemberBegin(); m != ports->value.MemberEnd();
       ++m) {
    auto name = view(m->name);
    std::vector<port_range>* slot = nullptr;
    if (name == "tcp")
      slot = &out.tcp;
    else if (name == "udp")
      slot = &out.udp;
    else
      return fail(in_field(
        "ports",
        bad("bad_field", "protocol " + quote(name) + " is not tcp or udp")));
    if (m->value.IsNull())
      continue;
    auto list = port_list(m->value, "ports." + std::string(name));
    if (!list)
      return fail(list.error());
    slot->insert(slot->end(), list->begin(), list->end());
    std::sort(slot->begin(), slot->end());
    slot->erase(std::unique(slot->begin(), slot->end()), slot->end());
  }
  return out;
}

result<unit> put(inputs& in, std::string_view full_key,
                 std::string_view value) {
  auto k = classify(full_key);
  switch (k.kind) {
    case key_kind::whitelist_ips: {
      auto w = parse_whitelist_ips(k.suffix, value);
      if (!w)
        return w.error();
      in.whitelists[k.suffix] = std::move(*w);
      return unit{};
    }
    case key_kind::ex_ports: {
      auto e = parse_ex_ports(k.suffix, value);
      if (!e)
        return e.error();
      in.open_ports[e->protocol] = std::move(*e);
      return unit{};
    }
    case key_kind::in_ports: {
      auto p = parse_in_ports(k.suffix, value);
      if (!p)
        return p.error();
      in.source_ports[k.suffix] = std::move(*p);
      return unit{};
    }
    case key_kind::unknown:
      break;
  }
  return bad("bad_key",
             printable(full_key, max_key_in_message) + ": not an ACL key");
}

bool erase(inputs& in, std::string_view full_key) {
  auto k = classify(full_key);
  switch (k.kind) {
    case key_kind::whitelist_ips:
      return in.whitelists.erase(k.suffix) != 0;
    case key_kind::ex_ports:
      if (k.suffix == "tcp")
        return in.open_ports.erase(config::proto::tcp) != 0;
      if (k.suffix == "udp")
        return in.open_ports.erase(config::proto::udp) != 0;
      return false;
    case key_kind::in_ports:
      return in.source_ports.erase(k.suffix) != 0;
    case key_kind::unknown:
      break;
  }
  return false;
}

void merge(inputs& into, inputs from) {
  for (auto& [name, w] : from.whitelists)
    into.whitelists[name] = std::move(w);
  for (auto& [proto, e] : from.open_ports)
    into.open_ports[proto] = std::move(e);
  for (auto& [key, p] : from.source_ports)
    into.source_ports[key] = std::move(p);
}

// -- rules --------------------------------------------------------------------

const std::vector<std::string>& base_rules() {
  static const std::vector<std::string> rules{
    "-i lo -j ACCEPT",
    "-i docker0 -j ACCEPT",
    "-i cali+ -j ACCEPT",
    "-m state --state INVALID -j DROP",
    "-m state --state RELATED,ESTABLISHED -j ACCEPT",
    "-p tcp -m tcp --dport 22 -j ACCEPT",
  };
  return rules;
}

ruleset build(const inputs& in) {
  ruleset r;
  r.entry.push_back("-j ACCEPT");
  r.input = base_rules();
  std::set<std::string> seen(r.input.begin(), r.input.end());
  auto add = [&](std::string spec) {
    if (seen.insert(spec).second)
      r.input.push_back(std::move(spec));
  };
  const std::string to_entry = std::string("-j ") + entry_chain;
  for (auto& [name, wl] : in.whitelists)
    for (auto& s : wl.sources)
      add(source_before_proto(s) + source_after_proto(s) + to_entry);
  for (auto& [proto, ex] : in.open_ports)
    for (auto& ports : port_chunks(ex.ports))
      add(std::string("-p ") + config::to_string(proto)
          + " -m multiport --dports " + ports + " " + to_entry);
  for (auto& [key, ip] : in.source_ports) {
    for (auto proto : {config::proto::tcp, config::proto::udp}) {
      auto& list = proto == config::proto::tcp ? ip.tcp : ip.udp;
      for (auto& ports : port_chunks(list))
        add(source_before_proto(ip.from) + "-p " + config::to_string(proto)
            + " " + source_after_proto(ip.from) + "-m multiport --dports "
            + ports + " -j ACCEPT");
    }
  }
  return r;
}

result<unit> validate(const ruleset& r) {
  auto& base = base_rules();
  if (r.input.size() < base.size())
    return bad("unsafe", std::string(input_chain) + " has "
                           + std::to_string(r.input.size())
                           + " rules, fewer than the "
                           + std::to_string(base.size()) + " base rules");
  for (size_t i = 0; i < base.size(); ++i)
    if (normalize(r.input[i]) != normalize(base[i]))
      return bad("unsafe", std::string(input_chain) + " rule "
                             + std::to_string(i + 1) + " is "
                             + quote(r.input[i]) + ", expected base rule "
                             + quote(base[i]));
  for (auto [chain, specs] :
       {std::pair{input_chain, &r.input}, std::pair{entry_chain, &r.entry}}) {
    for (size_t i = 0; i < specs->size(); ++i) {
      auto& s = (*specs)[i];
      bool ok = !s.empty() && s.size() <= max_spec_size && s.front() != ' ';
      for (char c : s)
        ok = ok && c >= 0x20 && c < 0x7f;
      if (!ok)
        return bad("invalid", std::string(chain) + " rule "
                                + std::to_string(i + 1) + " " + quote(s)
                                + " is empty, too long or not printable");
    }
  }
  return unit{};
}

std::string normalize(std::string_view spec) {
  auto args = split_args(spec);
  std::string proto;
  for (size_t i = 0; i + 1 < args.size(); ++i)
    if (args[i] == "-p")
      proto = args[i + 1];
  std::string out;
  for (size_t i = 0; i < args.size(); ++i) {
    if (!proto.empty() && args[i] == "-m" && i + 1 < args.size()
        && args[i + 1] == proto) {
      ++i;
      continue;
    }
    if (!out.empty())
      out += ' ';
    auto& a = args[i];
    if (a.empty() || a.find_first_of(" \t\"\\") != std::string::npos) {
      out += '"';
      for (char c : a) {
        if (c == '"' || c == '\\')
          out += '\\';
        out += c;
      }
      out += '"';
    } else {
      out += a;
    }
  }
  return out;
}

state parse_save(std::string_view text) {
  state s;
  bool in_filter = false;
  while (!text.empty()) {
    auto nl = text.find('\n');
    auto line = text.substr(0, nl);
    text
      = nl == std::string_view::npos ? std::string_view{} : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (line.empty() || line.front() == '#')
      continue;
    if (line.front() == '*') {
      in_filter = line == "*filter";
      continue;
    }
    if (!in_filter)
      continue;
    if (line == "COMMIT") {
      in_filter = false;
      continue;
    }
    if (line.front() == ':') {
      auto args = split_args(line.substr(1));
      if (args.empty())
        continue;
      if (args[0] == "INPUT" && args.size() > 1)
        s.input_policy = args[1];
      else if (args[0] == input_chain)
        s.has_input_chain = true;
      else if (args[0] == entry_chain)
        s.has_entry_chain = true;
      continue;
    }
    if (line.substr(0, 3) != "-A ")
      continue;
    auto rest = line.substr(3);
    auto sp = rest.find(' ');
    auto chain = rest.substr(0, sp);
    auto spec
      = sp == std::string_view::npos ? std::string_view{} : rest.substr(sp + 1);
    if (chain == input_chain) {
      s.has_input_chain = true;
      s.input.emplace_back(spec);
    } else if (chain == entry_chain) {
      s.has_entry_chain = true;
      s.entry.emplace_back(spec);
    } else if (chain == "INPUT" && normalize(spec) == hook_spec) {
      ++s.hooks;
    } else if (jumps_to_ours(split_args(spec))) {
      s.foreign.push_back({std::string(chain), std::string(spec)});
    }
  }
  return s;
}

bool same_rules(const state& s, const ruleset& r) {
  auto same
    = [](const std::vector<std::string>& a, const std::vector<std::string>& b) {
        if (a.size() != b.size())
          return false;
        for (size_t i = 0; i < a.size(); ++i)
          if (normalize(a[i]) != normalize(b[i]))
            return false;
        return true;
      };
  return s.has_input_chain && s.has_entry_chain && same(s.input, r.input)
         && same(s.entry, r.entry);
}

plan diff(const state& actual, const ruleset& desired) {
  plan p;
  if (!same_rules(actual, desired)) {
    p.rewrites_chains = true;
    // lain-ENTRY first: lain-INPUT's rules jump to it.
    for (auto [has, name] : {std::pair{actual.has_entry_chain, entry_chain},
                             std::pair{actual.has_input_chain, input_chain}})
      p.lines.push_back(has ? std::string("-F ") + name
                            : std::string(":") + name + " - [0:0]");
    for (auto& spec : desired.entry)
      p.lines.push_back(std::string("-A ") + entry_chain + " " + spec);
    for (auto& spec : desired.input)
      p.lines.push_back(std::string("-A ") + input_chain + " " + spec);
  }
  if (actual.hooks == 0) {
    p.lines.push_back("-A INPUT " + hook_spec);
    p.hooks = true;
  }
  for (int i = 1; i < actual.hooks; ++i) {
    p.lines.push_back("-D INPUT " + hook_spec);
    p.hooks = true;
  }
  for (auto& f : actual.foreign)
    p.lines.push_back("-D " + f.chain + " " + f.spec);
  p.foreign_removed = actual.foreign.size();
  // Last: the accepting rules above are in place when DROP applies (the
  // whole batch is one transaction anyway).
  if (actual.input_policy != "DROP") {
    p.lines.push_back(":INPUT DROP [0:0]");
    p.sets_policy = true;
  }
  return p;
}

plan open_policy(const state& actual) {
  plan p;
  if (!actual.input_policy.empty() && actual.input_policy != "ACCEPT") {
    p.lines.push_back(":INPUT ACCEPT [0:0]");
    p.sets_policy = true;
  }
  return p;
}

plan teardown(const state& actual) {
  plan p;
  for (int i = 0; i < actual.hooks; ++i)
    p.lines.push_back("-D INPUT " + hook_spec);
  p.hooks = actual.hooks > 0;
  for (auto& f : actual.foreign)
    p.lines.push_back("-D " + f.chain + " " + f.spec);
  p.foreign_removed = actual.foreign.size();
  // Flush both before deleting either: lain-INPUT refers to lain-ENTRY.
  for (auto [has, name] : {std::pair{actual.has_input_chain, input_chain},
                           std::pair{actual.has_entry_chain, entry_chain}})
    if (has)
      p.lines.push_back(std::string("-F ") + name);
  for (auto [has, name] : {std::pair{actual.has_input_chain, input_chain},
                           std::pair{actual.has_entry_chain, entry_chain}})
    if (has)
      p.lines.push_back(std::string("-X ") + name);
  p.rewrites_chains = actual.has_input_chain || actual.has_entry_chain;
  return p;
}

std::string batch(const plan& p) {
  std::string out = "*filter\n";
  for (auto& l : p.lines) {
    out += l;
    out += '\n';
  }
  out += "COMMIT\n";
  return out;
}

// -- effect -------------------------------------------------------------------

iptables_filter_table::iptables_filter_table()
    : iptables_filter_table(options{}) {}

iptables_filter_table::iptables_filter_table(options opts)
    : opts_(std::move(opts)) {}

result<state> iptables_filter_table::read() {
  std::lock_guard<std::mutex> guard{mtx_};
  return read_locked();
}

result<state> iptables_filter_table::read_locked() {
  auto text
    = nat::save_table(opts_.netns, opts_.save_command, "filter", opts_.timeout);
  if (!text)
    return text.error();
  return parse_save(*text);
}

result<unit> iptables_filter_table::restore(const plan& p) {
  return nat::restore_noflush(opts_.netns, opts_.restore_command, batch(p),
                              opts_.timeout);
}

result<report> iptables_filter_table::apply(const ruleset& desired) {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  using clock = std::chrono::steady_clock;
  if (auto v = validate(desired); !v)
    return v.error();
  std::lock_guard<std::mutex> guard{mtx_};
  report rep;
  auto t0 = clock::now();
  auto actual = read_locked();
  rep.read_time = duration_cast<microseconds>(clock::now() - t0);
  if (!actual)
    return actual.error();
  auto p = diff(*actual, desired);
  if (p.empty())
    return rep;
  auto t1 = clock::now();
  auto r = restore(p);
  rep.apply_time = duration_cast<microseconds>(clock::now() - t1);
  if (!r)
    return r.error();
  rep.changed = true;
  rep.rewrote_chains = p.rewrites_chains;
  rep.hooked = p.hooks;
  rep.foreign_removed = p.foreign_removed;
  rep.set_policy = p.sets_policy;
  NWD_LOG_DEBUG("acl", "applied {} lines ({} rules in {})", p.lines.size(),
                desired.input.size(), input_chain);
  return rep;
}

result<report> iptables_filter_table::apply(const inputs& in) {
  return apply(build(in));
}

result<applied> iptables_filter_table::show() {
  auto s = read();
  if (!s)
    return s.error();
  applied a;
  a.backend = backend();
  a.present = s->has_input_chain && s->hooks > 0;
  a.policy = s->input_policy;
  auto n = std::min(base_rules().size(), s->input.size());
  a.base.assign(s->input.begin(), s->input.begin() + static_cast<long>(n));
  a.rules.assign(s->input.begin() + static_cast<long>(n), s->input.end());
  for (auto& e : s->entry)
    a.rules.push_back(std::string("(") + entry_chain + ") " + e);
  return a;
}

result<unit> iptables_filter_table::remove_all() {
  std::lock_guard<std::mutex> guard{mtx_};
  auto actual = read_locked();
  if (!actual)
    return actual.error();
  // Open first, in a batch of its own: if the teardown fails, the node is
  // still reachable.
  if (auto p = open_policy(*actual); !p.empty())
    if (auto r = restore(p); !r)
      return r.error();
  if (auto p = teardown(*actual); !p.empty())
    if (auto r = restore(p); !r)
      return r.error();
  return unit{};
}

} // namespace networkd::acl
