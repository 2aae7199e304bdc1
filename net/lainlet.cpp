// SPDX-License-Identifier: MIT
// lainlet event-stream and containers parsers, the streaming client, and the
// deployd pod-group parser.

#include "net/lainlet.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <tuple>

#include <httplib.h>
#include <rapidjson/document.h>

#include "net/config.hpp"
#include "net/json_fields.hpp"
#include "net/log.hpp"

namespace networkd::lainlet {

namespace {

constexpr const char* component = "lainlet";

using json = rapidjson::Value;

// Text from the network in log lines and errors: one line, bounded.
std::string printable(std::string_view text, size_t max = 120) {
  std::string out;
  for (char ch : text.substr(0, max)) {
    auto u = static_cast<unsigned char>(ch);
    out += (u < 0x20 || u == 0x7f) ? '?' : ch;
  }
  if (text.size() > max)
    out += "...";
  return out;
}

bool parse_u64(std::string_view text, uint64_t& out) {
  if (text.empty() || text.size() > 19)
    return false;
  uint64_t n = 0;
  for (char ch : text) {
    if (ch < '0' || ch > '9')
      return false;
    n = n * 10 + static_cast<uint64_t>(ch - '0');
  }
  out = n;
  return true;
}

std::string last_dot_part(std::string_view pod) {
  auto dot = pod.rfind('.');
  return std::string(dot == std::string_view::npos ? pod : pod.substr(dot + 1));
}

// -- JSON field helpers -------------------------------------------------------

// Each returns an empty string on success, else the reason.

std::string get_string(const json& obj, const char* name, std::string& out,
                       bool required, bool non_empty) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd())
    return required ? std::string("missing \"") + name + "\"" : std::string{};
  if (!it->value.IsString())
    return std::string("\"") + name + "\" is not a string";
  out.assign(it->value.GetString(), it->value.GetStringLength());
  if (non_empty && out.empty())
    return std::string("\"") + name + "\" is empty";
  return {};
}

std::string get_int(const json& obj, const char* name, int64_t min, int64_t max,
                    int64_t& out) {
  auto it = obj.FindMember(name);
  if (it == obj.MemberEnd())
    return std::string("missing \"") + name + "\"";
  if (!it->value.IsInt64())
    return std::string("\"") + name + "\" is not an integer";
  auto v = it->value.GetInt64();
  if (v < min || v > max)
    return std::string("\"") + name + "\" out of range (" + std::to_string(v)
           + ")";
  out = v;
  return {};
}

// Checks the fields every source fills in and derives proc from pod.
std::string check(container& c) {
  if (c.app.empty())
    return "empty app";
  if (c.pod.empty())
    return "empty proc";
  c.proc = last_dot_part(c.pod);
  if (c.proc.empty())
    return "proc \"" + printable(c.pod) + "\" has an empty last part";
  if (c.node.empty())
    return "empty nodename";
  if (!config::is_ipv4(c.node_ip))
    return "nodeip \"" + printable(c.node_ip) + "\" is not an IPv4 address";
  if (c.ip.empty())
    return "container has no IP";
  if (!config::is_ipv4(c.ip))
    return "ip \"" + printable(c.ip) + "\" is not an IPv4 address";
  if (c.container_id.empty())
    return "empty container id";
  return {};
}

// One lainlet containers entry.
std::string entry_from_json(const json& v, container& c) {
  if (!v.IsObject())
    return "entry is not an object";
  std::string why;
  int64_t port = 0;
  int64_t instance = 0;
  if (!(why = get_string(v, "app", c.app, true, true)).empty()
      || !(why = get_string(v, "app_version", c.app_version, false, false))
            .empty()
      || !(why = get_string(v, "proc", c.pod, true, true)).empty()
      || !(why = get_string(v, "nodename", c.node, true, true)).empty()
      || !(why = get_string(v, "nodeip", c.node_ip, true, false)).empty()
      || !(why = get_string(v, "ip", c.ip, true, false)).empty()
      || !(why = get_int(v, "port", 0, 65535, port)).empty()
      || !(why = get_int(v, "instanceNo", 0, UINT32_MAX, instance)).empty())
    return why;
  c.port = static_cast<uint16_t>(port);
  c.instance = static_cast<uint32_t>(instance);
  return check(c);
}

struct candidate {
  std::string key;
  container c;
};

// De-duplicates by container id, applies the node filter and sorts.
containers_result finish(std::vector<candidate> good,
                         std::vector<entry_error> errors,
                         std::string_view node) {
  containers_result out;
  std::sort(
    good.begin(), good.end(),
    [](const candidate& a, const candidate& b) { return a.key < b.key; });
  std::map<std::string, const candidate*> by_id;
  for (auto& cand : good) {
    auto [it, fresh] = by_id.emplace(cand.c.container_id, &cand);
    if (fresh)
      continue;
    if (it->second->c != cand.c)
      errors.push_back({cand.key, cand.c.container_id,
                        "differs from the entry under \"" + it->second->key
                          + "\" for the same container"});
  }
  for (auto& [id, cand] : by_id) {
    if (!node.empty() && cand->c.node != node && cand->c.node_ip != node) {
      ++out.other_nodes;
      continue;
    }
    out.containers.push_back(cand->c);
  }
  std::sort(out.containers.begin(), out.containers.end());
  std::sort(
    errors.begin(), errors.end(),
    [](const entry_error& a, const entry_error& b) { return a.key < b.key; });
  out.errors = std::move(errors);
  return out;
}

} // namespace

// -- event stream -------------------------------------------------------------

const char* to_string(event_kind k) {
  switch (k) {
    case event_kind::init:
      return "init";
    case event_kind::update:
      return "update";
    case event_kind::erase:
      return "delete";
    case event_kind::error:
      return "error";
    case event_kind::heartbeat:
      return "heartbeat";
    case event_kind::unknown:
      break;
  }
  return "unknown";
}

event_kind event_kind_from(std::string_view name) {
  if (name == "init")
    return event_kind::init;
  if (name == "update")
    return event_kind::update;
  if (name == "delete")
    return event_kind::erase;
  if (name == "error")
    return event_kind::error;
  if (name == "heartbeat")
    return event_kind::heartbeat;
  return event_kind::unknown;
}

stream_parser::stream_parser(size_t max_line, size_t max_event)
    : max_line_(max_line), max_event_(max_event) {}

feed_result stream_parser::feed(std::string_view bytes) {
  feed_result out;
  feed(bytes, out);
  return out;
}

void stream_parser::feed(std::string_view bytes, feed_result& out) {
  size_t pos = 0;
  while (pos < bytes.size()) {
    auto nl = bytes.find('\n', pos);
    if (nl == std::string_view::npos) {
      auto rest = bytes.substr(pos);
      if (discarding_)
        return;
      if (line_.size() + rest.size() > max_line_) {
        std::string().swap(line_);
        discarding_ = true;
        poison("line longer than " + std::to_string(max_line_) + " bytes", out);
        return;
      }
      line_.append(rest);
      return;
    }
    auto piece = bytes.substr(pos, nl - pos);
    pos = nl + 1;
    if (discarding_) {
      discarding_ = false;
      continue;
    }
    if (line_.size() + piece.size() > max_line_) {
      std::string().swap(line_);
      poison("line longer than " + std::to_string(max_line_) + " bytes", out);
      continue;
    }
    if (line_.empty()) {
      on_line(piece, out);
    } else {
      line_.append(piece);
      on_line(line_, out);
      line_.clear();
    }
  }
}

void stream_parser::reset() {
  std::string().swap(line_);
  discarding_ = false;
  cur_ = event{};
  cur_started_ = false;
  cur_has_data_ = false;
  cur_poisoned_ = false;
  cur_size_ = 0;
}

void stream_parser::on_line(std::string_view line, feed_result& out) {
  if (!line.empty() && line.back() == '\r')
    line.remove_suffix(1);
  if (line.empty()) {
    dispatch(out);
    return;
  }
  if (line.front() == ':') // a comment in the event-stream format
    return;
  auto colon = line.find(':');
  if (colon == std::string_view::npos) {
    ++garbage_lines_;
    return;
  }
  auto field = line.substr(0, colon);
  auto value = line.substr(colon + 1);
  if (!value.empty() && value.front() == ' ')
    value.remove_prefix(1);
  if (field != "id" && field != "event" && field != "data") {
    ++garbage_lines_;
    return;
  }
  cur_started_ = true;
  if (cur_poisoned_)
    return;
  cur_size_ += line.size();
  if (cur_size_ > max_event_) {
    poison("event longer than " + std::to_string(max_event_) + " bytes", out);
    return;
  }
  if (field == "id") {
    uint64_t id = 0;
    if (parse_u64(value, id))
      cur_.id = id;
    else
      ++garbage_lines_;
  } else if (field == "event") {
    cur_.name.assign(value);
    cur_.kind = event_kind_from(value);
  } else {
    if (cur_has_data_)
      cur_.data += '\n';
    cur_.data.append(value);
    cur_has_data_ = true;
  }
}

void stream_parser::poison(std::string why, feed_result& out) {
  if (!cur_poisoned_)
    out.errors.push_back(std::move(why) + ": event dropped");
  cur_poisoned_ = true;
  cur_started_ = true;
  std::string().swap(cur_.data);
}

void stream_parser::dispatch(feed_result& out) {
  if (cur_started_) {
    if (cur_poisoned_) {
      ++dropped_events_;
    } else {
      ++events_;
      out.events.push_back(std::move(cur_));
    }
  }
  cur_ = event{};
  cur_started_ = false;
  cur_has_data_ = false;
  cur_poisoned_ = false;
  cur_size_ = 0;
}

// -- chunked ------------------------------------------------------------------

bool chunked_decoder::feed(std::string_view bytes, std::string& out) {
  constexpr size_t max_line = 4096;
  auto fail = [this](std::string why) {
    state_ = state::failed;
    error_ = std::move(why);
    return false;
  };
  size_t i = 0;
  while (i < bytes.size()) {
    char ch = bytes[i];
    switch (state_) {
      case state::done:
        return true;
      case state::failed:
        return false;
      case state::size: {
        int digit = -1;
        if (ch >= '0' && ch <= '9')
          digit = ch - '0';
        else if (ch >= 'a' && ch <= 'f')
          digit = ch - 'a' + 10;
        else if (ch >= 'A' && ch <= 'F')
          digit = ch - 'A' + 10;
        if (digit >= 0) {
          if (++size_digits_ > 15)
            return fail("chunk size too large");
          remaining_ = remaining_ * 16 + static_cast<uint64_t>(digit);
        } else if (size_digits_ == 0) {
          return fail("bad chunk size");
        } else if (ch == ';' || ch == ' ' || ch == '\t') {
          state_ = state::ext;
          trailer_line_ = 0;
        } else if (ch == '\r') {
          state_ = state::size_lf;
        } else if (ch == '\n') {
          size_digits_ = 0;
          state_ = remaining_ == 0 ? state::trailer : state::data;
          trailer_line_ = 0;
        } else {
          return fail("bad chunk size");
        }
        ++i;
        break;
      }
      case state::ext:
        if (ch == '\n') {
          size_digits_ = 0;
          state_ = remaining_ == 0 ? state::trailer : state::data;
          trailer_line_ = 0;
        } else if (++trailer_line_ > max_line) {
          return fail("chunk extension too long");
        }
        ++i;
        break;
      case state::size_lf:
        if (ch != '\n')
          return fail("bad chunk size line");
        size_digits_ = 0;
        state_ = remaining_ == 0 ? state::trailer : state::data;
        trailer_line_ = 0;
        ++i;
        break;
      case state::data: {
        auto n = static_cast<size_t>(
          std::min<uint64_t>(remaining_, bytes.size() - i));
        out.append(bytes.substr(i, n));
        remaining_ -= n;
        i += n;
        if (remaining_ == 0)
          state_ = state::data_cr;
        break;
      }
      case state::data_cr:
        if (ch == '\r')
          state_ = state::data_lf;
        else if (ch == '\n')
          state_ = state::size;
        else
          return fail("missing CRLF after chunk data");
        ++i;
        break;
      case state::data_lf:
        if (ch != '\n')
          return fail("missing LF after chunk data");
        state_ = state::size;
        ++i;
        break;
      case state::trailer:
        if (ch == '\n') {
          if (trailer_line_ == 0) {
            state_ = state::done;
            return true;
          }
          trailer_line_ = 0;
        } else if (ch != '\r' && ++trailer_line_ > max_line) {
          return fail("trailer line too long");
        }
        ++i;
        break;
    }
  }
  return state_ != state::failed;
}

// -- containers ---------------------------------------------------------------

bool operator==(const container& a, const container& b) {
  return a.app == b.app && a.proc == b.proc && a.instance == b.instance
         && a.ip == b.ip && a.port == b.port && a.container_id == b.container_id
         && a.node == b.node && a.node_ip == b.node_ip
         && a.app_version == b.app_version && a.pod == b.pod;
}

bool operator<(const container& a, const container& b) {
  return std::tie(a.app, a.proc, a.instance, a.container_id, a.node, a.ip,
                  a.port, a.node_ip, a.app_version, a.pod)
         < std::tie(b.app, b.proc, b.instance, b.container_id, b.node, b.ip,
                    b.port, b.node_ip, b.app_version, b.pod);
}

result<containers_result> parse_containers(std::string_view text,
                                           std::string_view node,
                                           size_t max_size) {
  if (text.size() > max_size)
    return make_failure("too_large",
                        "containers data of " + std::to_string(text.size())
                          + " bytes (limit " + std::to_string(max_size) + ")");
  rapidjson::Document doc;
  if (auto why = config::parse_flat(text, doc))
    return make_failure("bad_json", "containers data: " + *why);
  if (!doc.IsObject())
    return make_failure("bad_json", "containers data is not a JSON object");
  std::vector<candidate> good;
  std::vector<entry_error> errors;
  for (auto& m : doc.GetObject()) {
    std::string key(m.name.GetString(), m.name.GetStringLength());
    auto slash = key.find('/');
    std::string key_node = key.substr(0, slash);
    std::string id = slash == std::string::npos ? "" : key.substr(slash + 1);
    if (slash == std::string::npos || key_node.empty() || id.empty()
        || id.find('/') != std::string::npos) {
      errors.push_back({printable(key), "", "key is not NODE/CONTAINER_ID"});
      continue;
    }
    candidate cand{key, {}};
    cand.c.container_id = id;
    auto why = entry_from_json(m.value, cand.c);
    if (why.empty() && key_node != cand.c.node && key_node != cand.c.node_ip)
      why = "key node \"" + printable(key_node)
            + "\" is neither the entry's nodename nor its nodeip";
    if (!why.empty()) {
      errors.push_back({printable(key), id, std::move(why)});
      continue;
    }
    good.push_back(std::move(cand));
  }
  return finish(std::move(good), std::move(errors), node);
}

// -- deployd pod groups -------------------------------------------------------

containers_result
parse_pod_groups(const std::vector<std::pair<std::string, std::string>>& kvs,
                 std::string_view node, size_t max_value_size) {
  std::vector<candidate> good;
  std::vector<entry_error> errors;
  for (auto& [key, value] : kvs) {
    auto bad = [&, &k = key](std::string why) {
      errors.push_back({printable(k, 300), "", std::move(why)});
    };
    std::string_view rest = key;
    if (rest.substr(0, pod_groups_prefix.size()) != pod_groups_prefix) {
      bad("not under " + std::string(pod_groups_prefix));
      continue;
    }
    rest.remove_prefix(pod_groups_prefix.size());
    auto slash = rest.find('/');
    if (slash == 0 || slash == std::string_view::npos
        || slash + 1 == rest.size()
        || rest.find('/', slash + 1) != std::string_view::npos) {
      bad("key is not " + std::string(pod_groups_prefix) + "NAMESPACE/NAME");
      continue;
    }
    if (value.size() > max_value_size) {
      bad("value of " + std::to_string(value.size()) + " bytes (limit "
          + std::to_string(max_value_size) + ")");
      continue;
    }
    rapidjson::Document doc;
    if (auto why = config::parse_flat(value, doc)) {
      bad("bad JSON: " + *why);
      continue;
    }
    if (!doc.IsObject()) {
      bad("pod group is not a JSON object");
      continue;
    }
    auto spec_it = doc.FindMember("Spec");
    if (spec_it == doc.MemberEnd() || !spec_it->value.IsObject()) {
      bad("missing or bad \"Spec\"");
      continue;
    }
    auto& spec = spec_it->value;
    container base;
    std::string why;
    if (!(why = get_string(spec, "Namespace", base.app, true, true)).empty()
        || !(why = get_string(spec, "Name", base.pod, true, true)).empty()) {
      bad("Spec: " + why);
      continue;
    }
    // The release version, as lainlet finds it: the first container spec's
    // LAIN_APP_RELEASE_VERSION=... (exactly one '=').
    auto pod_it = spec.FindMember("Pod");
    if (pod_it != spec.MemberEnd() && pod_it->value.IsObject()) {
      auto cs = pod_it->value.FindMember("Containers");
      if (cs != pod_it->value.MemberEnd() && cs->value.IsArray()
          && !cs->value.Empty() && cs->value[0].IsObject()) {
        auto env = cs->value[0].FindMember("Env");
        if (env != cs->value[0].MemberEnd() && env->value.IsArray()) {
          for (auto& e : env->value.GetArray()) {
            if (!e.IsString())
              continue;
            std::string_view s{e.GetString(), e.GetStringLength()};
            constexpr std::string_view name = "LAIN_APP_RELEASE_VERSION=";
            if (s.substr(0, name.size()) == name
                && s.find('=', name.size()) == std::string_view::npos) {
              base.app_version.assign(s.substr(name.size()));
              break;
            }
          }
        }
      }
    }
    auto pods_it = doc.FindMember("Pods");
    if (pods_it == doc.MemberEnd() || pods_it->value.IsNull())
      continue; // a group without pods (Go's nil slice)
    if (!pods_it->value.IsArray()) {
      bad("\"Pods\" is not an array");
      continue;
    }
    size_t pod_index = 0;
    for (auto& pod : pods_it->value.GetArray()) {
      auto where = "Pods[" + std::to_string(pod_index++) + "]";
      if (!pod.IsObject()) {
        bad(where + " is not an object");
        continue;
      }
      int64_t instance = 0;
      if (!(why = get_int(pod, "InstanceNo", 0, UINT32_MAX, instance))
             .empty()) {
        bad(where + ": " + why);
        continue;
      }
      auto cs = pod.FindMember("Containers");
      if (cs == pod.MemberEnd() || cs->value.IsNull())
        continue;
      if (!cs->value.IsArray()) {
        bad(where + ": \"Containers\" is not an array");
        continue;
      }
      size_t c_index = 0;
      for (auto& cv : cs->value.GetArray()) {
        auto here = where + ".Containers[" + std::to_string(c_index++) + "]";
        if (!cv.IsObject()) {
          bad(here + " is not an object");
          continue;
        }
        candidate cand{key, base};
        cand.c.instance = static_cast<uint32_t>(instance);
        int64_t port = 0;
        if (!(why = get_string(cv, "Id", cand.c.container_id, true, true))
               .empty()
            || !(why = get_string(cv, "NodeName", cand.c.node, true, true))
                  .empty()
            || !(why = get_string(cv, "NodeIp", cand.c.node_ip, true, false))
                  .empty()
            || !(why = get_string(cv, "ContainerIp", cand.c.ip, true, false))
                  .empty()
            || !(why = get_int(cv, "ContainerPort", 0, 65535, port)).empty()
            || !(why = check(cand.c)).empty()) {
          errors.push_back(
            {printable(key, 300) + " " + here, cand.c.container_id, why});
          continue;
        }
        cand.c.port = static_cast<uint16_t>(port);
        cand.key = key + " " + here;
        good.push_back(std::move(cand));
      }
    }
  }
  return finish(std::move(good), std::move(errors), node);
}

// -- HTTP helpers -------------------------------------------------------------

namespace {

struct host_port {
  std::string host;
  uint16_t port = 0;
};

result<host_port> split_endpoint(std::string_view ep) {
  for (std::string_view scheme : {"http://", "HTTP://"})
    if (ep.substr(0, scheme.size()) == scheme)
      ep.remove_prefix(scheme.size());
  while (!ep.empty() && ep.back() == '/')
    ep.remove_suffix(1);
  auto colon = ep.rfind(':');
  if (colon == std::string_view::npos || colon == 0)
    return make_failure("invalid", "lainlet endpoint \"" + printable(ep)
                                     + "\" is not host:port");
  auto port = config::parse_port(ep.substr(colon + 1));
  if (!port)
    return make_failure("invalid", "lainlet endpoint \"" + printable(ep)
                                     + "\": " + port.error().message);
  host_port out;
  out.host.assign(ep.substr(0, colon));
  if (out.host.size() > 2 && out.host.front() == '[' && out.host.back() == ']')
    out.host = out.host.substr(1, out.host.size() - 2);
  out.port = *port;
  return out;
}

std::string percent_encode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    auto u = static_cast<unsigned char>(ch);
    if (std::isalnum(u) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += ch;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (auto& ch : out)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty()
         && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

} // namespace

result<response_head> parse_head(std::string_view head) {
  response_head out;
  auto eol = head.find('\n');
  auto status_line = trim(head.substr(0, eol));
  if (status_line.substr(0, 7) != "HTTP/1." || status_line.size() < 12
      || status_line[8] != ' ')
    return make_failure("http",
                        "bad status line \"" + printable(status_line) + "\"");
  uint64_t code = 0;
  if (!parse_u64(status_line.substr(9, 3), code) || code < 100 || code > 999)
    return make_failure("http",
                        "bad status line \"" + printable(status_line) + "\"");
  out.status = static_cast<int>(code);
  out.reason.assign(trim(status_line.substr(12)));
  while (eol != std::string_view::npos) {
    head.remove_prefix(eol + 1);
    eol = head.find('\n');
    auto line = trim(head.substr(0, eol));
    if (line.empty())
      continue;
    auto colon = line.find(':');
    if (colon == std::string_view::npos)
      return make_failure("http",
                          "bad header line \"" + printable(line) + "\"");
    auto name = lower(trim(line.substr(0, colon)));
    auto value = trim(line.substr(colon + 1));
    if (name == "transfer-encoding") {
      auto v = lower(value);
      if (v.find("chunked") != std::string::npos)
        out.chunked = true;
      else if (v != "identity")
        return make_failure("http", "unsupported transfer-encoding \""
                                      + printable(value) + "\"");
    } else if (name == "content-length") {
      uint64_t n = 0;
      if (!parse_u64(value, n))
        return make_failure("http",
                            "bad content-length \"" + printable(value) + "\"");
      out.content_length = n;
    }
  }
  if (out.chunked)
    out.content_length.reset();
  return out;
}

namespace {

using clock = std::chrono::steady_clock;

} // namespace

std::string containers_target(std::string_view nodename, bool watch,
                              std::chrono::seconds heartbeat) {
  std::string t = "/v2/containers?nodename=" + percent_encode(nodename);
  if (watch) {
    t += "&watch=1";
    if (heartbeat.count() > 0)
      t += "&heartbeat=" + std::to_string(heartbeat.count());
  }
  return t;
}

result<std::string> get(const std::string& endpoint, const std::string& target,
                        std::chrono::milliseconds timeout) {
  // A bounded request/response: cpp-httplib does it well. The stream below
  // uses its own socket so that stop and dead-stream detection are ours.
  auto hp = split_endpoint(endpoint);
  if (!hp)
    return hp.error();
  httplib::Client cli{hp->host, hp->port};
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  auto usecs
    = std::chrono::duration_cast<std::chrono::microseconds>(timeout - secs);
  cli.set_connection_timeout(secs.count(), usecs.count());
  cli.set_read_timeout(secs.count(), usecs.count());
  cli.set_write_timeout(secs.count(), usecs.count());
  cli.set_keep_alive(false);
  std::string body;
  bool too_large = false;
  auto res = cli.Get(target, [&](const char* data, size_t n) {
    too_large = body.size() + n > default_max_size;
    if (!too_large)
      body.append(data, n);
    return !too_large;
  });
  if (too_large)
    return make_failure("too_large", "GET " + target + " from " + endpoint
                                       + ": answer over "
                                       + std::to_string(default_max_size)
                                       + " bytes");
  if (!res) {
    auto err = res.error();
    auto code = (err == httplib::Error::ConnectionTimeout
                 || err == httplib::Error::Read)
                  ? "timeout"
                  : "unavailable";
    return make_failure(code, "GET " + target + " from " + endpoint + ": "
                                + httplib::to_string(err));
  }
  if (res->status != 200)
    return make_failure("http_status", "GET " + target + ": HTTP "
                                         + std::to_string(res->status) + ": "
                                         + printable(body));
  return body;
}

result<containers_result> get_containers(const std::string& endpoint,
                                         const std::string& nodename,
                                         std::chrono::milliseconds timeout) {
  auto body
    = get(endpoint, containers_target(nodename, false, std::chrono::seconds{0}),
          timeout);
  if (!body)
    return body.error();
  return parse_containers(*body, nodename);
}

// -- client -------------------------------------------------------------------

const char* to_string(client_state s) {
  switch (s) {
    case client_state::connecting:
      return "connecting";
    case client_state::connected:
      return "connected";
    case client_state::streaming:
      return "streaming";
    case client_state::disconnected:
      return "disconnected";
    case client_state::error:
      return "error";
  }
  return "unknown";
}

struct client::impl {
  client_options opts;
  containers_handler on_containers;
  state_handler on_state;

  mutable std::mutex mtx; // guards status_ and set_
  client_status status_;
  std::vector<container> set_;

  int wake_rd = -1;
  int wake_wr = -1;
  std::atomic<bool> stopping{false};
  std::thread thread;
  std::mt19937_64 rng{std::random_device{}()};
  unsigned attempt = 0;
  std::string last_errors_logged;
  stream_parser parser;

  // Why one connection ended.
  enum class outcome { stopped, retry, error };

  impl(client_options o, containers_handler c, state_handler s)
      : opts(std::move(o)), on_containers(std::move(c)), on_state(std::move(s)),
        parser(opts.max_size, opts.max_size) {}

  // -- status ---------------------------------------------------------------

  template <class F>
  void update(F&& f, bool notify) {
    client_status copy;
    {
      std::lock_guard<std::mutex> guard{mtx};
      f(status_);
      if (!notify)
        return;
      copy = status_;
    }
    if (on_state)
      on_state(copy);
  }

  void set_state(client_state st, std::string message) {
    bool changed = false;
    client_status copy;
    {
      std::lock_guard<std::mutex> guard{mtx};
      changed = status_.state != st || status_.message != message;
      status_.state = st;
      status_.message = std::move(message);
      copy = status_;
    }
    if (!changed)
      return;
    if (st == client_state::disconnected || st == client_state::error)
      NWD_LOG_WARN(component, "{} {}: {}", opts.endpoint, to_string(st),
                   copy.message);
    else
      NWD_LOG_INFO(component, "{} {}{}{}", opts.endpoint, to_string(st),
                   copy.message.empty() ? "" : ": ", copy.message);
    if (on_state)
      on_state(copy);
  }

  // -- waiting --------------------------------------------------------------

  // Polls fd for `events` and the wake pipe until `deadline` (none when
  // nullopt). Returns 1 when fd is ready, 0 on timeout, -1 when stopping.
  int wait_fd(int fd, short events, std::optional<clock::time_point> deadline) {
    for (;;) {
      if (stopping)
        return -1;
      int timeout_ms = -1;
      if (deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - clock::now());
        if (left.count() <= 0)
          return 0;
        timeout_ms
          = static_cast<int>(std::min<int64_t>(left.count() + 1, 60'000));
      }
      pollfd fds[2] = {{wake_rd, POLLIN, 0}, {fd, events, 0}};
      int n = ::poll(fds, fd >= 0 ? 2 : 1, timeout_ms);
      if (n < 0 && errno != EINTR)
        return -1;
      if (stopping || (fds[0].revents & POLLIN))
        return -1;
      if (n > 0 && fd >= 0 && fds[1].revents != 0)
        return 1;
    }
  }

  void backoff() {
    auto shift = std::min(attempt, 20u);
    auto delay = std::min<int64_t>(opts.backoff_max.count(),
                                   opts.backoff_initial.count() << shift);
    delay = std::max<int64_t>(delay, 1);
    std::uniform_int_distribution<int64_t> dist{delay / 2, delay};
    auto wait = std::chrono::milliseconds{dist(rng)};
    if (attempt < 64)
      ++attempt;
    wait_fd(-1, 0, clock::now() + wait);
  }

  // -- connection -----------------------------------------------------------

  // A connected socket, or -1 (state set) / -2 (stopping).
  int connect_socket() {
    auto hp = split_endpoint(opts.endpoint);
    if (!hp) {
      set_state(client_state::error, hp.error().message);
      return -1;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    auto port = std::to_string(hp->port);
    if (int rc = ::getaddrinfo(hp->host.c_str(), port.c_str(), &hints, &res);
        rc != 0) {
      set_state(client_state::disconnected,
                "resolve " + hp->host + ": " + gai_strerror(rc));
      return -1;
    }
    std::string last_error = "no address";
    int fd = -1;
    for (auto* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
      int s = ::socket(ai->ai_family,
                       ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       ai->ai_protocol);
      if (s < 0) {
        last_error = std::strerror(errno);
        continue;
      }
      if (::connect(s, ai->ai_addr, ai->ai_addrlen) != 0
          && errno != EINPROGRESS) {
        last_error = std::strerror(errno);
        ::close(s);
        continue;
      }
      int w = wait_fd(s, POLLOUT, clock::now() + opts.connect_timeout);
      if (w < 0) {
        ::close(s);
        ::freeaddrinfo(res);
        return -2;
      }
      if (w == 0) {
        last_error = "connect timed out";
        ::close(s);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last_error = std::strerror(err);
        ::close(s);
        continue;
      }
      fd = s;
    }
    ::freeaddrinfo(res);
    if (fd < 0) {
      set_state(client_state::disconnected,
                "connect " + opts.endpoint + ": " + last_error);
      return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    return fd;
  }

  // Sends all of `data`; false on error or stop.
  bool send_all(int fd, std::string_view data) {
    auto deadline = clock::now() + opts.connect_timeout;
    while (!data.empty()) {
      auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0
          && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (wait_fd(fd, POLLOUT, deadline) != 1)
          return false;
        continue;
      }
      return false;
    }
    return true;
  }

  std::optional<clock::time_point> dead_deadline() const {
    if (opts.heartbeat.count() <= 0 || opts.dead_after == 0)
      return std::nullopt;
    return clock::now() + opts.heartbeat * opts.dead_after;
  }

  std::string dead_message() const {
    return "no event for "
           + std::to_string(opts.heartbeat.count() * opts.dead_after) + " s ("
           + std::to_string(opts.dead_after)
           + " heartbeat intervals): stream dead";
  }

  // Waits for the next bytes of the stream and reads up to `size` of them
  // into `chunk` (their count in `n`). An outcome instead when the stream
  // ends: stopped, silent past `deadline` (`dead_prefix` leads the state
  // message), closed by the peer (`closed_message`) or an error.
  std::optional<outcome> receive_some(int fd,
                                      std::optional<clock::time_point> deadline,
                                      char* chunk, size_t size, size_t& n,
                                      const char* dead_prefix,
                                      const char* closed_message) {
    for (;;) {
      int w = wait_fd(fd, POLLIN, deadline);
      if (w < 0)
        return outcome::stopped;
      if (w == 0) {
        update([](client_status& s) { ++s.counters.dead_streams; }, false);
        count_disconnect();
        set_state(client_state::disconnected, dead_prefix + dead_message());
        return outcome::retry;
      }
      auto got = ::recv(fd, chunk, size, 0);
      if (got < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (got <= 0) {
        count_disconnect();
        set_state(client_state::disconnected,
                  got == 0 ? std::string(closed_message)
                           : std::string("recv: ") + std::strerror(errno));
        return outcome::retry;
      }
      n = static_cast<size_t>(got);
      return std::nullopt;
    }
  }


  void count_disconnect() {
    update([](client_status& s) { ++s.counters.disconnects; }, false);
  }

  // One connection: connect, request, read the stream until it ends.
  outcome run_once() {
    int fd = connect_socket();
    if (fd == -2)
      return outcome::stopped;
    if (fd < 0)
      return outcome::retry;
    struct closer {
      int fd;
      ~closer() { ::close(fd); }
    } close_fd{fd};
    update([](client_status& s) { ++s.counters.connects; }, false);
    set_state(client_state::connected, "");

    auto hp = split_endpoint(opts.endpoint);
    std::string request
      = "GET " + containers_target(opts.nodename, true, opts.heartbeat)
        + " HTTP/1.1\r\nHost: " + hp->host + ":" + std::to_string(hp->port)
        + "\r\nAccept: text/event-stream\r\nUser-Agent: networkd\r\n\r\n";
    if (!send_all(fd, request)) {
      if (stopping)
        return outcome::stopped;
      count_disconnect();
      set_state(client_state::disconnected, "sending the request failed");
      return outcome::retry;
    }

    // Reply headers.
    constexpr size_t max_head = 64 * 1024;
    std::string buf;
    char chunk[64 * 1024];
    auto deadline = dead_deadline();
    size_t head_end = std::string::npos;
    size_t sep = 0;
    while (head_end == std::string::npos) {
      size_t n = 0;
      if (auto o = receive_some(fd, deadline, chunk, sizeof(chunk), n,
                                "no reply headers: ",
                                "closed before the reply headers"))
        return *o;
      buf.append(chunk, n);
      auto a = buf.find("\r\n\r\n");
      auto b = buf.find("\n\n");
      if (a != std::string::npos && (b == std::string::npos || a < b)) {
        head_end = a;
        sep = 4;
      } else if (b != std::string::npos) {
        head_end = b;
        sep = 2;
      } else if (buf.size() > max_head) {
        update([](client_status& s) { ++s.counters.http_errors; }, false);
        set_state(client_state::error, "reply headers too long");
        return outcome::error;
      }
    }
    auto head = parse_head(std::string_view(buf).substr(0, head_end));
    std::string rest = buf.substr(head_end + sep);
    if (!head) {
      update([](client_status& s) { ++s.counters.http_errors; }, false);
      set_state(client_state::error, head.error().message);
      return outcome::error;
    }
    if (head->status != 200)
      return http_error(fd, *head, std::move(rest));

    update([](client_status& s) { ++s.counters.streams; }, false);
    set_state(client_state::streaming, "");
    return stream(fd, *head, std::move(rest));
  }

  // A non-200 reply: read a little of the body for the message.
  outcome http_error(int fd, const response_head& head, std::string body) {
    auto deadline = clock::now() + std::chrono::milliseconds{500};
    char chunk[4096];
    while (body.size() < 4096) {
      if (head.content_length && body.size() >= *head.content_length)
        break;
      if (wait_fd(fd, POLLIN, deadline) != 1)
        break;
      auto n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0)
        break;
      body.append(chunk, static_cast<size_t>(n));
    }
    if (stopping)
      return outcome::stopped;
    if (head.chunked) {
      chunked_decoder dec;
      std::string decoded;
      dec.feed(body, decoded);
      body = std::move(decoded);
    }
    update([](client_status& s) { ++s.counters.http_errors; }, false);
    set_state(client_state::error, "HTTP " + std::to_string(head.status) + " "
                                     + printable(head.reason) + ": "
                                     + printable(trim(body), 200));
    return outcome::error;
  }

  outcome stream(int fd, const response_head& head, std::string first) {
    // One parser for the client's life: its counters add up over streams.
    parser.reset();
    chunked_decoder dec;
    uint64_t body_left = head.content_length.value_or(UINT64_MAX);
    bool applied_init = false;
    auto deadline = dead_deadline();
    char chunk[64 * 1024];
    std::string raw = std::move(first);
    for (;;) {
      if (!raw.empty()) {
        std::string body;
        std::string_view bytes = raw;
        if (head.content_length) {
          bytes = bytes.substr(
            0, static_cast<size_t>(std::min<uint64_t>(body_left, raw.size())));
          body_left -= bytes.size();
        }
        if (head.chunked) {
          if (!dec.feed(bytes, body)) {
            update([](client_status& s) { ++s.counters.http_errors; }, false);
            count_disconnect();
            set_state(client_state::error,
                      "bad chunked framing: " + dec.error());
            return outcome::error;
          }
        } else {
          body.assign(bytes);
        }
        raw.clear();
        auto fed = parser.feed(body);
        if (auto o = handle(fed, parser, applied_init, deadline))
          return *o;
        if (dec.done() || (head.content_length && body_left == 0)) {
          count_disconnect();
          set_state(client_state::disconnected, "stream ended");
          return outcome::retry;
        }
      }
      size_t n = 0;
      if (auto o = receive_some(fd, deadline, chunk, sizeof(chunk), n, "",
                                "stream closed by lainlet"))
        return *o;
      raw.assign(chunk, n);
    }
  }

  // Handles the events of one read; an outcome ends the stream.
  std::optional<outcome> handle(feed_result& fed, const stream_parser& parser,
                                bool& applied_init,
                                std::optional<clock::time_point>& deadline) {
    for (auto& why : fed.errors)
      NWD_LOG_WARN(component, "{}: {}", opts.endpoint, why);
    update(
      [&](client_status& s) {
        s.counters.garbage_lines = parser.garbage_lines();
        s.counters.dropped_events = parser.dropped_events();
      },
      false);
    for (auto& ev : fed.events) {
      deadline = dead_deadline();
      update(
        [&](client_status& s) {
          ++s.counters.events;
          if (ev.kind == event_kind::heartbeat)
            ++s.counters.heartbeats;
        },
        false);
      switch (ev.kind) {
        case event_kind::heartbeat:
          if (applied_init)
            attempt = 0; // the stream has proven itself
          break;
        case event_kind::init:
        case event_kind::update:
        case event_kind::erase:
          if (ev.kind == event_kind::erase && ev.data.empty()) {
            NWD_LOG_WARN(component,
                         "{}: delete event {} without data: "
                         "ignored",
                         opts.endpoint, ev.id);
            break;
          }
          if (apply(ev)) {
            if (applied_init)
              attempt = 0;
            applied_init = true;
          }
          break;
        case event_kind::error:
          update(
            [&](client_status& s) {
              ++s.counters.error_events;
              ++s.counters.disconnects;
            },
            false);
          set_state(client_state::error,
                    "error event: " + printable(ev.data, 200));
          return outcome::error;
        case event_kind::unknown:
          NWD_LOG_DEBUG(component, "{}: ignored event \"{}\"", opts.endpoint,
                        printable(ev.name));
          break;
      }
    }
    return std::nullopt;
  }

  // Applies one data event; true when it was valid.
  bool apply(const event& ev) {
    auto parsed = parse_containers(
      ev.data,
      opts.filter_node ? std::string_view{opts.nodename} : std::string_view{},
      opts.max_size);
    if (!parsed) {
      NWD_LOG_WARN(component, "{}: {} event {} rejected, set kept: {}",
                   opts.endpoint, to_string(ev.kind), ev.id,
                   parsed.error().to_string());
      update(
        [&](client_status& s) {
          ++s.counters.bad_events;
          s.last_event_id = ev.id;
        },
        true);
      return false;
    }
    auto& res = *parsed;
    std::string errors_text;
    for (auto& e : res.errors)
      errors_text += e.key + ": " + e.reason + "; ";
    if (errors_text != last_errors_logged) {
      if (!res.errors.empty())
        NWD_LOG_WARN(component, "{}: {} entries skipped: {}", opts.endpoint,
                     res.errors.size(), printable(errors_text, 2000));
      last_errors_logged = std::move(errors_text);
    }
    std::vector<container> next = std::move(res.containers);
    bool changed = false;
    std::vector<container> report;
    {
      std::lock_guard<std::mutex> guard{mtx};
      // An invalid entry for a container we know keeps its last good form.
      for (auto& e : res.errors) {
        if (e.container_id.empty())
          continue;
        auto known = std::find_if(set_.begin(), set_.end(), [&](auto& c) {
          return c.container_id == e.container_id;
        });
        auto present = std::find_if(next.begin(), next.end(), [&](auto& c) {
          return c.container_id == e.container_id;
        });
        if (known != set_.end() && present == next.end())
          next.push_back(*known);
      }
      std::sort(next.begin(), next.end());
      changed = !status_.have_set || next != set_;
      status_.have_set = true;
      status_.last_event_id = ev.id;
      status_.entry_errors = res.errors;
      status_.counters.bad_entries += res.errors.size();
      if (changed) {
        set_ = next;
        ++status_.counters.updates;
        report = set_;
      } else {
        ++status_.counters.unchanged;
      }
    }
    if (changed) {
      NWD_LOG_INFO(component, "{}: {} event {}: {} containers", opts.endpoint,
                   to_string(ev.kind), ev.id, report.size());
      if (on_containers)
        on_containers(report, ev.id);
    }
    update([](client_status&) {}, true);
    return true;
  }

  void run() {
    while (!stopping) {
      auto o = run_once();
      if (o == outcome::stopped || stopping)
        break;
      backoff();
    }
  }
};

client::client(client_options opts, containers_handler on_containers,
               state_handler on_state)
    : impl_(std::make_unique<impl>(std::move(opts), std::move(on_containers),
                                   std::move(on_state))) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::runtime_error(std::string("lainlet client: pipe: ")
                             + std::strerror(errno));
  impl_->wake_rd = fds[0];
  impl_->wake_wr = fds[1];
  impl_->thread = std::thread{[this] { impl_->run(); }};
}

client::~client() {
  impl_->stopping = true;
  char x = 1;
  [[maybe_unused]] auto n = ::write(impl_->wake_wr, &x, 1);
  if (impl_->thread.joinable())
    impl_->thread.join();
  ::close(impl_->wake_rd);
  ::close(impl_->wake_wr);
}

client_status client::status() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->status_;
}

std::vector<container> client::containers() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->set_;
}

} // namespace networkd::lainlet
