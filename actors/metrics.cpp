// SPDX-License-Identifier: MIT
#include "actors/metrics.hpp"

#include <cstdio>
#include <ctime>

#include <rapidjson/document.h>

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
