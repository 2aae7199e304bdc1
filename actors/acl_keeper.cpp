// SPDX-License-Identifier: MIT
#include "actors/acl_keeper.hpp"

#include <caf/all.hpp>

#include "actors/json.hpp"
#include "net/base/log.hpp"

namespace networkd {

namespace {

constexpr const char* who = "acl";

/// Installs the rules the inputs make; true when the kernel's chains had
/// to change.
bool apply(acl_keeper_state& st) {
  auto rules = acl::build(st.in);
  if (auto v = acl::validate(rules); !v) {
    // Never install a set that could lock the node out: keep the last.
    st.last_error = v.error().to_string();
    ++st.failures;
    NWD_LOG_ERROR(who, "refusing rules: {} (last good rules stay)",
                  st.last_error);
    return false;
  }
  auto r = st.table->apply(rules);
  if (!r) {
    st.last_error = r.error().to_string();
    ++st.failures;
    NWD_LOG_ERROR(who, "apply failed: {}", st.last_error);
    return false;
  }
  st.last_error.clear();
  st.active = true;
  ++st.applies;
  if (r->changed)
    NWD_LOG_INFO(who, "rules applied ({} sources, INPUT policy DROP)",
                 st.in.whitelists.size() + st.in.source_ports.size());
  return r->changed;
}

using acl_keeper_pointer = acl_keeper_actor::stateful_pointer<acl_keeper_state>;

} // namespace

acl_keeper_state::~acl_keeper_state() {
  if (!active || !table)
    return;
  if (auto r = table->remove_all(); !r)
    NWD_LOG_ERROR(who, "removing the ACL failed: {}", r.error().to_string());
  else
    NWD_LOG_INFO(who, "ACL removed, INPUT policy ACCEPT");
}

std::string acl_keeper_state::render() const {
  json_writer j;
  j.begin_object();
  j.kv("name", "acl");
  j.kv("state", !ready ? "waiting for etcd" : active ? "active" : "inactive");
  j.kv("last_error", last_error);
  j.kv("whitelists", static_cast<uint64_t>(in.whitelists.size()));
  j.kv("open_ports", static_cast<uint64_t>(in.open_ports.size()));
  j.kv("source_ports", static_cast<uint64_t>(in.source_ports.size()));
  j.kv("audit_every_s", static_cast<int64_t>(audit.every.count()));
  j.object("counters")
    .kv("changes", changes)
    .kv("applies", applies)
    .kv("failures", failures)
    .kv("audits", audits)
    .kv("repairs", repairs);
  j.end_object();
  j.end_object();
  return j.str();
}

acl_keeper_actor::behavior_type
acl_keeper(acl_keeper_pointer self, std::shared_ptr<acl::filter_table> table) {
  self->state.table = std::move(table);
  self->state.audit.every = config::default_knobs().audit.acl;
  self->state.audit.arm(self);
  return {
    [self](atom::status) { return self->state.render(); },
    [self](config::knob_values& v) {
      self->state.audit.set(self, v.audit.acl);
    },
    [self](keys::event<config::family::acl>& c) {
      auto& st = self->state;
      ++st.changes;
      if (!c.deleted && !c.ok) // rejected: the last good value stays
        return;
      acl::erase(st.in, c.key);
      if (!c.deleted)
        acl::merge(st.in, std::move(c.value));
      if (st.ready)
        apply(st);
    },
    [self](atom::ready) {
      // Only the whole whitelist is installed: never a partial one.
      self->state.ready = true;
      apply(self->state);
    },
    [self](atom::audit, uint64_t generation) {
      auto& st = self->state;
      if (!st.audit.current(generation))
        return;
      if (st.ready && st.active) {
        ++st.audits;
        if (apply(st)) {
          ++st.repairs;
          NWD_LOG_WARN(who, "our filter chains were changed outside "
                            "networkd; put back");
        }
      }
      st.audit.arm(self);
    },
  };
}

} // namespace networkd
