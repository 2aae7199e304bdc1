// SPDX-License-Identifier: MIT
// lainlet's content: the containers document and deployd's pod groups,
// parsed into containers within written limits.

#include "net/peers/lainlet.hpp"
#include "net/peers/lainlet_impl.hpp"

#include <algorithm>
#include <map>
#include <tuple>

#include <rapidjson/document.h>

#include "net/base/json_fields.hpp"
#include "net/cluster/config.hpp"

namespace networkd::lainlet {

using namespace detail;

namespace {

using json = rapidjson::Value;

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

} // namespace networkd::lainlet
