// SPDX-License-Identifier: MIT
#include "actors/metrics.hpp"

#include <cstdio>
#include <ctime>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <tuple>

#include "net/base/prom.hpp"

#ifndef NETWORKD_VERSION
#define NETWORKD_VERSION "unknown"
#endif
#ifndef NETWORKD_BUILD_TYPE
#define NETWORKD_BUILD_TYPE "unknown"
#endif

namespace networkd {

void vip_board::set(const std::string& vip, const std::string& phase,
                    bool transition) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& v = vips_[vip];
  v.phase = phase;
  if (transition)
    ++v.transitions[phase];
}

void vip_board::forget(const std::string& vip) {
  std::lock_guard<std::mutex> guard{mtx_};
  vips_.erase(vip);
}

std::map<std::string, vip_series> vip_board::snapshot() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return vips_;
}

std::string vip_metrics(const std::map<std::string, vip_series>& vips) {
  prom::writer w;
  w.family("networkd_vip_state", "gauge",
           "1 for the phase each VIP holder is in, 0 for the others");
  for (auto& [vip, v] : vips)
    w.state_set("networkd_vip_state", {{"vip", vip}}, vip_phases, v.phase);
  w.family("networkd_vip_transitions_total", "counter",
           "Changes of phase of each VIP holder, by the phase entered");
  for (auto& [vip, v] : vips)
    for (auto phase : vip_phases) {
      auto i = v.transitions.find(std::string{phase});
      w.sample("networkd_vip_transitions_total", {{"vip", vip}, {"to", phase}},
               i == v.transitions.end() ? uint64_t{0} : i->second);
    }
  return w.take();
}

std::string vip_traffic_metrics(const std::vector<vip_port_traffic>& t) {
  struct family {
    const char* name;
    const char* help;
    uint64_t vip_port_traffic::*value;
  };
  static const family families[] = {
    {"networkd_vip_connections_total",
     "New connections DNATed per VIP, protocol and port (nft data plane)",
     &vip_port_traffic::connections},
    {"networkd_vip_packets_total",
     "Packets of the DNATed connections per VIP, protocol and port, both "
     "directions (nft data plane)",
     &vip_port_traffic::packets},
    {"networkd_vip_bytes_total",
     "Bytes (IP packet lengths) of the DNATed connections per VIP, protocol "
     "and port, both directions (nft data plane)",
     &vip_port_traffic::bytes},
  };
  prom::writer w;
  for (auto& f : families) {
    w.family(f.name, "counter", f.help);
    for (auto& e : t)
      w.sample(
        f.name,
        {{"vip", e.vip}, {"proto", e.proto}, {"port", std::to_string(e.port)}},
        e.*f.value);
  }
  return w.take();
}

namespace {

/// "tcp 10.0.0.5:80 -> 172.20.1.2:8080": protocol, VIP and port.
bool rule_key(std::string_view rule, std::string& proto, std::string& vip,
              uint16_t& port) {
  auto sp = rule.find(' ');
  if (sp == std::string_view::npos)
    return false;
  auto rest = rule.substr(sp + 1);
  auto end = rest.find(' ');
  auto addr = rest.substr(0, end);
  auto colon = addr.rfind(':');
  if (colon == std::string_view::npos || colon + 1 >= addr.size()
      || addr.size() - colon - 1 > 5)
    return false;
  uint32_t p = 0;
  for (char c : addr.substr(colon + 1)) {
    if (c < '0' || c > '9')
      return false;
    p = p * 10 + static_cast<uint32_t>(c - '0');
  }
  if (p == 0 || p > 65535)
    return false;
  proto = std::string{rule.substr(0, sp)};
  vip = std::string{addr.substr(0, colon)};
  port = static_cast<uint16_t>(p);
  return true;
}

} // namespace

std::string vips_with_traffic(const std::string& vips_json,
                              const std::vector<vip_port_traffic>& t) {
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseIterativeFlag>(vips_json.c_str(),
                                            vips_json.size());
  if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("vips")
      || !doc["vips"].IsArray())
    return vips_json;
  std::map<std::tuple<std::string, std::string, uint16_t>,
           const vip_port_traffic*>
    by_key;
  for (auto& e : t)
    by_key[{e.vip, e.proto, e.port}] = &e;
  auto& a = doc.GetAllocator();
  for (auto& v : doc["vips"].GetArray()) {
    if (!v.IsObject() || !v.HasMember("rules") || !v["rules"].IsArray()
        || v.HasMember("traffic"))
      continue;
    rapidjson::Value list{rapidjson::kArrayType};
    for (auto& r : v["rules"].GetArray()) {
      std::string proto;
      std::string vip;
      uint16_t port = 0;
      if (!r.IsString() || !rule_key(r.GetString(), proto, vip, port))
        continue;
      auto it = by_key.find({vip, proto, port});
      if (it == by_key.end())
        continue;
      auto& e = *it->second;
      rapidjson::Value o{rapidjson::kObjectType};
      o.AddMember("vip", rapidjson::Value{e.vip.c_str(), a}, a);
      o.AddMember("proto", rapidjson::Value{e.proto.c_str(), a}, a);
      o.AddMember("port", static_cast<unsigned>(e.port), a);
      o.AddMember("connections", e.connections, a);
      o.AddMember("packets", e.packets, a);
      o.AddMember("bytes", e.bytes, a);
      list.PushBack(o, a);
    }
    v.AddMember("traffic", list, a);
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w{buf};
  doc.Accept(w);
  return buf.GetString();
}

namespace {

/// The member at path ("a" or "a.b") of a parsed object, or null.
const rapidjson::Value* member_at(const rapidjson::Value& root,
                                  std::string_view path) {
  const rapidjson::Value* v = &root;
  while (!path.empty()) {
    auto dot = path.find('.');
    auto part = path.substr(0, dot);
    if (!v->IsObject())
      return nullptr;
    // A Value key: FindMember(const char*) would read up to the NUL,
    // past the dot.
    rapidjson::Value key{rapidjson::StringRef(
      part.data(), static_cast<rapidjson::SizeType>(part.size()))};
    auto m = v->FindMember(key);
    if (m == v->MemberEnd())
      return nullptr;
    v = &m->value;
    path = dot == std::string_view::npos ? std::string_view{}
                                         : path.substr(dot + 1);
  }
  return v;
}

} // namespace

std::string metrics_from_status(std::string_view json,
                                const std::vector<status_metric>& table) {
  rapidjson::Document doc;
  // Our own actors' output, a few KB: still parsed iteratively.
  doc.Parse<rapidjson::kParseIterativeFlag>(json.data(), json.size());
  bool ok = !doc.HasParseError() && doc.IsObject();
  prom::writer w;
  for (auto& m : table) {
    w.family(m.name, m.type, m.help);
    auto v = ok ? member_at(doc, m.path) : nullptr;
    if (v == nullptr)
      continue;
    if (m.equals != nullptr) {
      bool same = v->IsString() && std::string_view{v->GetString()} == m.equals;
      w.sample(m.name, same ? 1.0 : 0.0);
    } else if (v->IsBool()) {
      w.sample(m.name, v->GetBool() ? 1.0 : 0.0);
    } else if (v->IsNumber()) {
      w.sample(m.name, v->GetDouble());
    }
  }
  return w.take();
}

const std::vector<status_metric>& nat_status_metrics() {
  static const std::vector<status_metric> t{
    {"counters.batches", "networkd_nat_batches_total", "counter",
     "DNAT batches applied to the kernel"},
    {"counters.failures", "networkd_nat_batch_failures_total", "counter",
     "DNAT batches that failed"},
    {"counters.audits", "networkd_nat_audits_total", "counter",
     "Audits of the DNAT rules against the kernel"},
    {"counters.repairs", "networkd_nat_repairs_total", "counter",
     "Audits that found the DNAT rules changed and put them back"},
    {"rules", "networkd_nat_rules", "gauge", "DNAT rules wanted"},
  };
  return t;
}

const std::vector<status_metric>& acl_status_metrics() {
  static const std::vector<status_metric> t{
    {"counters.applies", "networkd_acl_applies_total", "counter",
     "ACL rule sets applied (changes and audits)"},
    {"counters.failures", "networkd_acl_apply_failures_total", "counter",
     "ACL rule sets refused or not applied"},
    {"counters.audits", "networkd_acl_audits_total", "counter",
     "Audits of the ACL chains against the kernel"},
    {"counters.repairs", "networkd_acl_repairs_total", "counter",
     "Audits that found the ACL chains changed and put them back"},
    {"state", "networkd_acl_active", "gauge",
     "1 while networkd's ACL chains are installed", "active"},
  };
  return t;
}

const std::vector<status_metric>& leader_status_metrics() {
  static const std::vector<status_metric> t{
    {"state", "networkd_leader", "gauge", "1 while this node is the leader",
     "leader"},
    {"term", "networkd_leader_term", "gauge",
     "Create revision of the leading candidate key (changes with each new "
     "leadership, on every node)"},
    {"counters.terms", "networkd_leader_terms_total", "counter",
     "Times this node became the leader"},
    {"counters.transactions", "networkd_leader_transactions_total", "counter",
     "Publishing transactions committed while leading"},
    {"counters.refused", "networkd_leader_refused_total", "counter",
     "Publishing transactions refused by the leadership guard"},
  };
  return t;
}

std::string process_metrics() {
  prom::writer w;
  std::string_view build_type = NETWORKD_BUILD_TYPE;
  prom::write_build_info(w, NETWORKD_VERSION,
                         build_type.empty() ? "none" : build_type);
  prom::write_process_metrics(w);
  return w.take();
}

std::string rfc3339(std::chrono::system_clock::time_point t) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
              t.time_since_epoch())
              .count();
  auto secs = static_cast<std::time_t>(ms / 1000);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[40];
  auto n = std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%S", &tm);
  std::snprintf(buf + n, sizeof(buf) - n, ".%03dZ",
                static_cast<int>(ms % 1000));
  return buf;
}

} // namespace networkd
