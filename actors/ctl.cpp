// SPDX-License-Identifier: MIT
#include "actors/ctl.hpp"

#include <httplib.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <map>
#include <ostream>

#include "net/base/host_port.hpp"

namespace networkd::ctl {

namespace {

using json = rapidjson::Value;

/// Nesting the flat formatter follows; deeper values print as "{...}".
constexpr size_t max_depth = 32;

/// The verbs and their operand counts (min, max).
struct verb_info {
  std::string_view name;
  size_t min_args;
  size_t max_args;
  std::string_view synopsis;
};

constexpr verb_info verbs[] = {
  {"status", 0, 0, "status"},
  {"vips", 0, 0, "vips"},
  {"vip", 1, 1, "vip IP"},
  {"procs", 0, 0, "procs"},
  {"dns", 2, 3, "dns lookup NAME [TYPE]"},
  {"acl", 0, 0, "acl"},
  {"leader", 0, 0, "leader"},
  {"rejected", 0, 0, "rejected"},
};

const verb_info* find_verb(std::string_view name) {
  for (auto& v : verbs)
    if (v.name == name)
      return &v;
  return nullptr;
}

failure usage_error(std::string message) {
  return make_failure("usage", std::move(message));
}

bool parse_json(const std::string& text, rapidjson::Document& doc) {
  doc.Parse<rapidjson::kParseIterativeFlag>(text.c_str(), text.size());
  return !doc.HasParseError();
}

failure not_expected(const char* what) {
  return make_failure("bad_json", std::string{"the answer is not "} + what);
}

/// A member as text: strings as they are, numbers and booleans written
/// out, anything else (or missing) "".
std::string text_of(const json& v, const char* name) {
  if (!v.IsObject())
    return {};
  auto m = v.FindMember(name);
  if (m == v.MemberEnd())
    return {};
  auto& x = m->value;
  if (x.IsString())
    return {x.GetString(), x.GetStringLength()};
  if (x.IsBool())
    return x.GetBool() ? "yes" : "no";
  if (x.IsInt64())
    return std::to_string(x.GetInt64());
  if (x.IsUint64())
    return std::to_string(x.GetUint64());
  if (x.IsDouble()) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", x.GetDouble());
    return buf;
  }
  return {};
}

const json* member(const json& v, const char* name) {
  if (!v.IsObject())
    return nullptr;
  auto m = v.FindMember(name);
  return m == v.MemberEnd() ? nullptr : &m->value;
}

/// The array member `name` (empty when missing or not an array).
std::vector<const json*> items(const json& v, const char* name) {
  std::vector<const json*> out;
  auto a = member(v, name);
  if (a != nullptr && a->IsArray())
    for (auto& x : a->GetArray())
      out.push_back(&x);
  return out;
}

/// The actor called `name` in a /v1/state document, or nullptr.
const json* actor(const json& state, std::string_view name) {
  for (auto a : items(state, "actors"))
    if (text_of(*a, "name") == name)
      return a;
  return nullptr;
}

std::string dash(std::string s) {
  return s.empty() ? "-" : s;
}

/// "80/tcp->8080 53/udp->53".
std::string ports_of(const json& vip) {
  std::string out;
  for (auto p : items(vip, "ports")) {
    if (!out.empty())
      out += ' ';
    out += text_of(*p, "src") + "/" + text_of(*p, "proto") + "->"
           + text_of(*p, "dest");
  }
  return out;
}

std::string vip_name(const json& vip) {
  auto key = text_of(vip, "key");
  auto slash = key.rfind('/');
  return slash == std::string::npos ? key : key.substr(slash + 1);
}

std::string container_of(const json& v) {
  auto c = member(v, "container");
  return c == nullptr ? std::string{} : text_of(*c, "ip");
}

/// Width of `s` on a terminal: its UTF-8 code points.
size_t width(std::string_view s) {
  size_t n = 0;
  for (unsigned char c : s)
    n += (c & 0xC0) != 0x80 ? 1 : 0;
  return n;
}

void append_hex(std::string& out, unsigned char c) {
  char buf[8];
  std::snprintf(buf, sizeof(buf), "\\x%02x", c);
  out += buf;
}

/// One line of the flat listing per scalar; the stack replaces recursion.
struct flat_frame {
  std::string prefix;
  const json* value;
  size_t next = 0;
  size_t depth = 0;
};

std::string scalar_text(const json& v) {
  if (v.IsString())
    return {v.GetString(), v.GetStringLength()};
  if (v.IsNull())
    return "null";
  if (v.IsBool())
    return v.GetBool() ? "true" : "false";
  if (v.IsInt64())
    return std::to_string(v.GetInt64());
  if (v.IsUint64())
    return std::to_string(v.GetUint64());
  if (v.IsDouble()) {
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%g", v.GetDouble());
    return buf;
  }
  return v.IsArray() ? (v.Empty() ? "[]" : "[...]")
                     : (v.ObjectEmpty() ? "{}" : "{...}");
}

bool all_scalars(const json& a) {
  for (auto& x : a.GetArray())
    if (x.IsObject() || x.IsArray())
      return false;
  return true;
}

} // namespace

std::string usage() {
  std::string s = "usage: networkd ctl [--api HOST:PORT] [--json] COMMAND\n"
                  "commands:\n";
  const char* what[] = {
    "this node: lease, leader, watches, actors (/v1/state)",
    "every VIP: state, owner, ports, container, health (/v1/vips)",
    "one VIP (/v1/vips/IP); exit 0 only when this node serves it",
    "the procs and their health (/v1/procs)",
    "why NAME resolves as it does (/v1/dns/lookup; TYPE default A)",
    "the ACL rules as applied (/v1/acl)",
    "the leader, its term and this node's role (/v1/state)",
    "the rejected etcd keys and why (/v1/state)",
  };
  size_t i = 0;
  for (auto& v : verbs) {
    std::string syn{v.synopsis};
    s += "  " + syn + std::string(24 - syn.size(), ' ') + what[i++] + "\n";
  }
  s += "options:\n"
       "  --api HOST:PORT         the admin API (default: -api.addr's "
       "default)\n"
       "  --json                  print the endpoint's JSON as it is\n"
       "exit codes: 0 ok (vip: serving here), 1 vip not served here or the "
       "API\n"
       "answered an error, 2 usage, 3 the API cannot be reached\n";
  return s;
}

result<command> parse_args(const std::vector<std::string>& args,
                           const std::string& default_api) {
  command c;
  c.api = default_api;
  std::vector<std::string> words;
  for (size_t i = 0; i < args.size(); ++i) {
    auto a = args[i];
    if (a.rfind("--", 0) == 0)
      a.erase(0, 1);
    if (a == "-json") {
      c.json = true;
    } else if (a == "-help" || a == "-h" || a == "help") {
      c.help = true;
    } else if (a == "-api") {
      if (i + 1 == args.size())
        return usage_error("--api needs HOST:PORT");
      c.api = args[++i];
    } else if (a.rfind("-api=", 0) == 0) {
      c.api = a.substr(5);
    } else if (a.size() > 1 && a[0] == '-') {
      return usage_error("unknown option " + args[i]);
    } else {
      words.push_back(args[i]);
    }
  }
  if (c.help)
    return c;
  if (words.empty())
    return usage_error("a command is missing");
  auto v = find_verb(words[0]);
  if (v == nullptr)
    return usage_error("unknown command " + words[0]);
  c.verb = words[0];
  c.args.assign(words.begin() + 1, words.end());
  if (c.args.size() < v->min_args || c.args.size() > v->max_args)
    return usage_error("usage: networkd ctl " + std::string{v->synopsis});
  if (c.verb == "dns" && c.args[0] != "lookup")
    return usage_error("usage: networkd ctl dns lookup NAME [TYPE]");
  if (!split_host_port(c.api))
    return usage_error("--api " + c.api + " is not HOST:PORT");
  return c;
}

std::string percent_encode(std::string_view text) {
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char ch : text) {
    if (std::isalnum(ch) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += static_cast<char>(ch);
    } else {
      out += '%';
      out += hex[ch >> 4];
      out += hex[ch & 15];
    }
  }
  return out;
}

std::string target_of(const command& c) {
  if (c.verb == "status" || c.verb == "leader" || c.verb == "rejected")
    return "/v1/state";
  if (c.verb == "vips")
    return "/v1/vips";
  if (c.verb == "vip")
    return "/v1/vips/" + percent_encode(c.args[0]);
  if (c.verb == "procs")
    return "/v1/procs";
  if (c.verb == "dns")
    return "/v1/dns/lookup?name=" + percent_encode(c.args[1])
           + "&type=" + percent_encode(c.args.size() > 2 ? c.args[2] : "A");
  return "/v1/" + c.verb;
}

std::string printable_cell(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    auto c = static_cast<unsigned char>(text[i]);
    auto next
      = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
    if (c < 0x20 || c == 0x7F) {
      append_hex(out, c);
    } else if (c == 0xC2 && next >= 0x80 && next <= 0x9F) {
      // A C1 control character (U+0080..U+009F) in UTF-8.
      append_hex(out, next);
      ++i;
    } else {
      out += static_cast<char>(c);
    }
  }
  return out;
}

std::string table(const std::vector<std::vector<std::string>>& rows) {
  std::vector<std::vector<std::string>> cells;
  std::vector<size_t> widths;
  for (auto& r : rows) {
    auto& line = cells.emplace_back();
    for (size_t i = 0; i < r.size(); ++i) {
      line.push_back(printable_cell(r[i]));
      if (widths.size() <= i)
        widths.push_back(0);
      widths[i] = std::max(widths[i], width(line.back()));
    }
  }
  std::string out;
  for (auto& line : cells) {
    std::string text;
    for (size_t i = 0; i < line.size(); ++i) {
      text += line[i];
      if (i + 1 < line.size())
        text += std::string(widths[i] - width(line[i]) + 2, ' ');
    }
    while (!text.empty() && text.back() == ' ')
      text.pop_back();
    out += text + "\n";
  }
  return out;
}

std::string
pairs(const std::vector<std::pair<std::string, std::string>>& rows) {
  size_t w = 0;
  for (auto& [k, v] : rows)
    w = std::max(w, width(k));
  std::string out;
  for (auto& [k, v] : rows)
    out += printable_cell(k) + std::string(w - width(k) + 2, ' ')
           + printable_cell(dash(v)) + "\n";
  return out;
}

result<std::string> format_status(const std::string& state_json) {
  rapidjson::Document doc;
  if (!parse_json(state_json, doc) || !doc.IsObject())
    return not_expected("a /v1/state object");
  auto sup = actor(doc, "supervisor");
  if (sup == nullptr)
    return not_expected("a /v1/state with a supervisor");
  auto node = member(doc, "node");
  std::string hostname = node ? text_of(*node, "hostname") : "";
  if (hostname.empty())
    hostname = text_of(*sup, "hostname");
  std::string ident = hostname;
  if (node != nullptr && !text_of(*node, "address").empty())
    ident += "  " + text_of(*node, "address");
  if (node != nullptr && !text_of(*node, "version").empty())
    ident += "  networkd " + text_of(*node, "version");
  bool ready = text_of(*sup, "ready") == "yes";
  std::string lease;
  if (auto l = member(*sup, "lease")) {
    lease = text_of(*l, "id") + " " + text_of(*l, "state") + ", ttl "
            + text_of(*l, "ttl") + " s, expires in "
            + text_of(*l, "expires_in_ms") + " ms, renewals "
            + text_of(*l, "renewals");
    if (!text_of(*l, "last_error").empty())
      lease += ", last error: " + text_of(*l, "last_error");
  }
  std::string leader = "-";
  if (auto ld = actor(doc, "leader"))
    leader = dash(text_of(*ld, "leader")) + " (term " + text_of(*ld, "term")
             + "), this node: " + text_of(*ld, "state");
  size_t vips = 0;
  size_t serving = 0;
  for (auto c : items(*sup, "children")) {
    if (text_of(*c, "name") != "vip-holder")
      continue;
    ++vips;
    serving += text_of(*c, "state") == serving_state ? 1 : 0;
  }
  auto rejected = items(*sup, "rejected").size();
  std::string out = pairs({
    {"node", ident},
    {"state",
     text_of(*sup, "state")
       + (ready ? ", ready" : ", not ready: " + text_of(*sup, "not_ready"))},
    {"lease", lease},
    {"leader", leader},
    {"vips",
     std::to_string(vips) + " (" + std::to_string(serving) + " serving here)"},
    {"rejected", std::to_string(rejected) + (rejected == 1 ? " key" : " keys")},
  });
  std::vector<std::vector<std::string>> w{{"WATCH", "PHASE", "REVISION",
                                           "SYNCED", "RECONNECTS", "RESYNCS",
                                           "LAST ERROR"}};
  for (auto x : items(*sup, "watches"))
    w.push_back({text_of(*x, "prefix"), text_of(*x, "phase"),
                 text_of(*x, "revision"), text_of(*x, "synced"),
                 text_of(*x, "reconnects"), text_of(*x, "resyncs"),
                 text_of(*x, "last_error")});
  out += "\n" + table(w);
  std::vector<std::vector<std::string>> a{{"ACTOR", "STATE", "LAST ERROR"}};
  for (auto x : items(doc, "actors"))
    a.push_back(
      {text_of(*x, "name"), text_of(*x, "state"), text_of(*x, "last_error")});
  out += "\n" + table(a);
  return out;
}

result<std::string> format_vips(const std::string& vips_json) {
  rapidjson::Document doc;
  if (!parse_json(vips_json, doc) || !doc.IsObject() || !member(doc, "vips"))
    return not_expected("a /v1/vips object");
  std::vector<std::vector<std::string>> t{{"VIP", "STATE", "OWNER", "APP.PROC",
                                           "PORTS", "CONTAINER", "HEALTH",
                                           "LAST CHANGE"}};
  for (auto v : items(doc, "vips"))
    t.push_back({vip_name(*v), text_of(*v, "state"), dash(text_of(*v, "owner")),
                 text_of(*v, "app") + "." + text_of(*v, "proc"), ports_of(*v),
                 dash(container_of(*v)), dash(text_of(*v, "health")),
                 text_of(*v, "last_change")});
  std::string out = t.size() == 1 ? "no VIP keys\n" : table(t);
  std::vector<std::vector<std::string>> r{{"REJECTED KEY", "CODE", "REASON"}};
  for (auto x : items(doc, "rejected"))
    r.push_back(
      {text_of(*x, "key"), text_of(*x, "code"), text_of(*x, "reason")});
  if (r.size() > 1)
    out += "\n" + table(r);
  return out;
}

result<std::string> format_vip(const std::string& vip_json) {
  rapidjson::Document doc;
  if (!parse_json(vip_json, doc) || !doc.IsObject() || !member(doc, "state"))
    return not_expected("a VIP object");
  std::string rules;
  for (auto r : items(doc, "rules"))
    if (r->IsString())
      rules += (rules.empty() ? "" : ", ") + std::string{r->GetString()};
  std::string container = container_of(doc);
  if (auto c = member(doc, "container"))
    container += " (instance " + text_of(*c, "instance") + ")";
  auto state = text_of(doc, "state");
  auto out = pairs({
    {"vip", vip_name(doc)},
    {"key", text_of(doc, "key")},
    {"state", state},
    {"serving here", state == serving_state ? "yes" : "no"},
    {"owner", text_of(doc, "owner")},
    {"kind", text_of(doc, "kind")},
    {"app.proc", text_of(doc, "app") + "." + text_of(doc, "proc")},
    {"ports", ports_of(doc)},
    {"rules", rules},
    {"container", member(doc, "container") ? container : ""},
    {"health", text_of(doc, "health")},
    {"address on", text_of(doc, "address_on")},
    {"lock revision", text_of(doc, "lock_revision")},
    {"last change", text_of(doc, "last_change")},
    {"last error", text_of(doc, "last_error")},
  });
  // The recent transitions, oldest first, as /v1/vips/{ip} lists them.
  std::vector<std::vector<std::string>> t{{"AT", "FROM", "TO", "REASON"}};
  for (auto x : items(doc, "transitions"))
    t.push_back({text_of(*x, "at"), text_of(*x, "from"), text_of(*x, "to"),
                 dash(text_of(*x, "reason"))});
  if (t.size() > 1)
    out += "\n" + table(t);
  return out;
}

result<std::string> format_procs(const std::string& procs_json) {
  rapidjson::Document doc;
  if (!parse_json(procs_json, doc) || !doc.IsObject() || !member(doc, "procs"))
    return not_expected("a /v1/procs object");
  std::string out = "source " + text_of(doc, "source") + ", "
                    + text_of(doc, "state") + ", " + text_of(doc, "containers")
                    + " containers";
  if (!text_of(doc, "last_error").empty())
    out += ", last error: " + text_of(doc, "last_error");
  out = printable_cell(out) + "\n";
  std::vector<std::vector<std::string>> t{
    {"PROC", "HEALTH", "CONTAINER", "PROBE PORTS", "LAST PROBE", "REASON"}};
  for (auto p : items(doc, "procs")) {
    std::string ports;
    for (auto x : items(*p, "probe_ports"))
      if (x->IsString())
        ports += (ports.empty() ? "" : " ") + std::string{x->GetString()};
    std::string probe;
    if (auto lp = member(*p, "last_probe"); lp && text_of(*lp, "port") != "0")
      probe = text_of(*lp, "port") + " "
              + (text_of(*lp, "ok") == "yes"
                   ? "ok " + text_of(*lp, "latency_us") + " us"
                   : "failed " + text_of(*lp, "error"));
    t.push_back({text_of(*p, "proc"), text_of(*p, "state"),
                 dash(container_of(*p)), dash(ports), dash(probe),
                 dash(text_of(*p, "reason"))});
  }
  out += t.size() == 1 ? "no procs tracked\n" : "\n" + table(t);
  return out;
}

result<std::string> format_leader(const std::string& state_json) {
  rapidjson::Document doc;
  if (!parse_json(state_json, doc) || !doc.IsObject())
    return not_expected("a /v1/state object");
  auto ld = actor(doc, "leader");
  if (ld == nullptr)
    return not_expected("a /v1/state with a leader");
  auto publishing = member(*ld, "publishing");
  auto n = publishing && publishing->IsObject() ? publishing->MemberCount() : 0;
  return pairs({
    {"leader", text_of(*ld, "leader")},
    {"term", text_of(*ld, "term")},
    {"this node", text_of(*ld, "state")},
    {"candidates", text_of(*ld, "candidates")},
    {"candidate key", text_of(*ld, "candidate_key")},
    {"publishing", std::to_string(n) + " keys"},
    {"last error", text_of(*ld, "last_error")},
  });
}

result<std::string> format_rejected(const std::string& state_json) {
  rapidjson::Document doc;
  if (!parse_json(state_json, doc) || !doc.IsObject())
    return not_expected("a /v1/state object");
  auto sup = actor(doc, "supervisor");
  if (sup == nullptr)
    return not_expected("a /v1/state with a supervisor");
  std::vector<std::vector<std::string>> t{
    {"KEY", "CODE", "REVISION", "REASON"}};
  for (auto r : items(*sup, "rejected"))
    t.push_back({text_of(*r, "key"), text_of(*r, "code"),
                 text_of(*r, "revision"), text_of(*r, "reason")});
  return t.size() == 1 ? std::string{"no rejected keys\n"} : table(t);
}

result<std::string> format_flat(const std::string& text) {
  rapidjson::Document doc;
  if (!parse_json(text, doc))
    return not_expected("JSON");
  std::vector<std::pair<std::string, std::string>> rows;
  std::vector<flat_frame> stack{{"", &doc, 0, 0}};
  while (!stack.empty()) {
    auto& f = stack.back();
    auto& v = *f.value;
    bool nested = (v.IsObject() && !v.ObjectEmpty())
                  || (v.IsArray() && !v.Empty() && !all_scalars(v));
    if (!nested || f.depth >= max_depth) {
      std::string value = scalar_text(v);
      if (v.IsArray() && !v.Empty() && all_scalars(v)) {
        value.clear();
        for (auto& x : v.GetArray())
          value += (value.empty() ? "" : ", ") + scalar_text(x);
      }
      rows.emplace_back(f.prefix.empty() ? "value" : f.prefix, value);
      stack.pop_back();
      continue;
    }
    size_t size = v.IsObject() ? v.MemberCount() : v.Size();
    if (f.next == size) {
      stack.pop_back();
      continue;
    }
    auto i = f.next++;
    flat_frame child;
    child.depth = f.depth + 1;
    if (v.IsObject()) {
      auto m = v.MemberBegin() + static_cast<rapidjson::SizeType>(i);
      std::string name{m->name.GetString(), m->name.GetStringLength()};
      child.prefix = f.prefix.empty() ? name : f.prefix + "." + name;
      child.value = &m->value;
    } else {
      child.prefix = f.prefix + "[" + std::to_string(i) + "]";
      child.value = &v[static_cast<rapidjson::SizeType>(i)];
    }
    stack.push_back(std::move(child)); // f is not used past this point
  }
  return pairs(rows);
}

outcome judge(const command& c, const answer& a) {
  outcome o;
  auto target = target_of(c);
  if (c.verb == "vip") {
    rapidjson::Document doc;
    bool serving = a.status == 200 && parse_json(a.body, doc)
                   && text_of(doc, "state") == serving_state;
    o.code = serving ? exit_ok : exit_no;
    if (c.json) {
      o.out = a.body;
    } else if (a.status == 404) {
      rapidjson::Document e;
      o.out = "VIP " + printable_cell(c.args[0]) + ": "
              + (parse_json(a.body, e) ? printable_cell(text_of(e, "error"))
                                       : std::string{"not known on this node"})
              + "\n";
    } else if (a.status == 200) {
      auto text = format_vip(a.body);
      if (!text) {
        o.err
          = "networkd ctl: GET " + target + ": " + text.error().message + "\n";
        o.code = exit_unreachable;
      } else {
        o.out = *text;
      }
    }
    if (a.status != 200 && a.status != 404)
      o.err = "networkd ctl: GET " + target + ": HTTP "
              + std::to_string(a.status) + "\n";
    return o;
  }
  if (a.status != 200) {
    rapidjson::Document e;
    auto why = parse_json(a.body, e) ? text_of(e, "error") : "";
    o.code = exit_no;
    o.out = c.json ? a.body : "";
    o.err = "networkd ctl: GET " + target + ": HTTP " + std::to_string(a.status)
            + (a.status == 404 && why.empty()
                 ? " (this networkd has no such endpoint)"
                 : "")
            + (why.empty() ? "" : ": " + printable_cell(why)) + "\n";
    return o;
  }
  if (c.json) {
    o.out = a.body;
    return o;
  }
  using formatter = result<std::string> (*)(const std::string&);
  static const std::map<std::string, formatter> formatters{
    {"status", format_status},     {"vips", format_vips},
    {"procs", format_procs},       {"leader", format_leader},
    {"rejected", format_rejected}, {"dns", format_flat},
    {"acl", format_flat},
  };
  auto text = formatters.at(c.verb)(a.body);
  if (!text) {
    o.code = exit_unreachable;
    o.err = "networkd ctl: GET " + target + ": " + text.error().message + "\n";
  } else {
    o.out = *text;
  }
  return o;
}

result<answer> http_get(const std::string& api, const std::string& target,
                        const http_limits& lim) {
  auto hp = split_host_port(api);
  if (!hp)
    return make_failure("bad_api", api + ": " + hp.error().message);
  auto split = [](std::chrono::milliseconds t) {
    auto s = std::chrono::duration_cast<std::chrono::seconds>(t);
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(t - s);
    return std::make_pair(static_cast<time_t>(s.count()),
                          static_cast<time_t>(us.count()));
  };
  httplib::Client cli{hp->host, hp->port};
  auto [cs, cus] = split(lim.connect_timeout);
  auto [rs, rus] = split(lim.read_timeout);
  cli.set_connection_timeout(cs, cus);
  cli.set_read_timeout(rs, rus);
  cli.set_write_timeout(rs, rus);
  cli.set_keep_alive(false);
  answer a;
  bool too_large = false;
  auto res = cli.Get(target, [&](const char* data, size_t n) {
    too_large = a.body.size() + n > lim.max_body;
    if (!too_large)
      a.body.append(data, n);
    return !too_large;
  });
  auto where = "GET http://" + api + target;
  if (too_large)
    return make_failure("too_large", where + ": answer over "
                                       + std::to_string(lim.max_body)
                                       + " bytes");
  if (!res) {
    auto err = res.error();
    bool slow
      = err == httplib::Error::ConnectionTimeout || err == httplib::Error::Read;
    return make_failure(slow ? "timeout" : "unreachable",
                        where + ": " + httplib::to_string(err));
  }
  a.status = res->status;
  return a;
}

int run(const std::vector<std::string>& args, const std::string& default_api,
        std::ostream& out, std::ostream& err) {
  auto c = parse_args(args, default_api);
  if (!c) {
    err << "networkd ctl: " << c.error().message
        << " (see networkd ctl --help)\n";
    return exit_usage;
  }
  if (c->help) {
    out << usage();
    return exit_ok;
  }
  auto a = http_get(c->api, target_of(*c));
  if (!a) {
    err << "networkd ctl: cannot reach the admin API: " << a.error().message
        << "\n";
    return exit_unreachable;
  }
  auto o = judge(*c, *a);
  out << o.out;
  err << o.err;
  return o.code;
}

} // namespace networkd::ctl
