// SPDX-License-Identifier: MIT
#include "actors/vip_holder.hpp"

#include "actors/json.hpp"
#include "net/log.hpp"

namespace networkd {

std::string vip_holder_state::render() const {
  json_writer j;
  j.begin_object();
  j.kv("name", "vip-holder");
  j.kv("key", key);
  j.kv("state", updates == 0 ? "created" : "configured");
  j.kv("kind", config.port_only() ? "port-only" : "address");
  j.kv("app", config.app);
  j.kv("proc", config.proc);
  j.begin_array("ports");
  for (auto& p : config.ports) {
    j.begin_object();
    j.kv("src", static_cast<int64_t>(p.src));
    j.kv("proto", config::to_string(p.protocol));
    j.kv("dest", static_cast<int64_t>(p.dest));
    j.end_object();
  }
  j.end_array();
  j.kv("excluded_nodes", config.excluded_nodes);
  j.object("counters").kv("updates", updates).end_object();
  j.end_object();
  return j.str();
}

vip_holder_actor::behavior_type
vip_holder(vip_holder_actor::stateful_pointer<vip_holder_state> self,
           std::string key) {
  self->state.key = std::move(key);
  return {
    [self](atom::status) { return self->state.render(); },
    [self](config::vip_config& cfg) {
      auto& st = self->state;
      NWD_LOG_DEBUG("vip-holder", "{}: config app={} proc={} ports={}", st.key,
                    cfg.app, cfg.proc, cfg.ports.size());
      st.config = std::move(cfg);
      ++st.updates;
    },
  };
}

} // namespace networkd
