// SPDX-License-Identifier: MIT
#include "actors/acl_keeper.hpp"

#include <caf/all.hpp>

#include "actors/json.hpp"
#include "net/base/log.hpp"
#include "net/kernel/nft.hpp"
#include "net/kernel/nft_acl.hpp"

namespace networkd {

namespace {

constexpr const char* who = "acl";

void post(acl_keeper_state& st) {
  if (!st.board)
    return;
  std::lock_guard<std::mutex> guard{st.board->mtx};
  st.board->ready = st.ready;
  st.board->active = st.active;
  st.board->last_error = st.last_error;
}

/// Installs the rules the inputs make; true when the kernel's rules had
/// to change. On a failure the rules in the kernel stay as they were.
bool apply(acl_keeper_state& st, bool audit = false) {
  auto r = audit ? st.table->audit(st.in) : st.table->apply(st.in);
  if (!r) {
    st.last_error = r.error().to_string();
    ++st.failures;
    NWD_LOG_ERROR(who, "apply failed: {}{}", st.last_error,
                  log::field("reason", st.last_error));
    post(st);
    return false;
  }
  st.last_error.clear();
  st.active = true;
  ++st.applies;
  if (r->changed)
    NWD_LOG_INFO(who,
                 "rules applied with {} ({} sources; {} elements added, {} "
                 "removed{})",
                 st.table->backend(),
                 st.in.whitelists.size() + st.in.source_ports.size(),
                 r->elements_added, r->elements_removed,
                 r->rewrote_chains ? ", chains written anew" : "");
  post(st);
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
    NWD_LOG_INFO(who, "ACL removed ({})", table->backend());
  if (board) {
    std::lock_guard<std::mutex> guard{board->mtx};
    board->active = false;
  }
}

std::string acl_keeper_state::render() const {
  json_writer j;
  j.begin_object();
  j.kv("name", "acl");
  j.kv("backend", table ? table->backend() : "");
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
acl_keeper(acl_keeper_pointer self, std::shared_ptr<acl::filter_table> table,
           std::shared_ptr<acl_board> board) {
  self->state.table = std::move(table);
  self->state.board = std::move(board);
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
        if (apply(st, true)) {
          ++st.repairs;
          NWD_LOG_WARN(who,
                       "our ACL rules were changed outside networkd; put "
                       "back{}",
                       log::field("reason", "outside_change"));
        }
      }
      st.audit.arm(self);
    },
  };
}

std::shared_ptr<acl::filter_table>
make_acl_table(const std::string& dataplane) {
  if (dataplane == "iptables") {
    nft::nft_filter_table old;
    if (auto r = old.remove_all(); !r)
      NWD_LOG_WARN(who, "nftables: cannot remove the ACL of table ip {}: {}",
                   nft::table_name, r.error().message);
    return std::make_shared<acl::iptables_filter_table>();
  }
  acl::iptables_filter_table old;
  if (auto st = old.read();
      st && (st->has_input_chain || st->has_entry_chain || st->hooks > 0)) {
    if (auto r = old.remove_all(); !r)
      NWD_LOG_WARN(who,
                   "cannot remove chains {} and {} (--dataplane=iptables "
                   "before): {}",
                   acl::input_chain, acl::entry_chain, r.error().message);
    else
      NWD_LOG_INFO(who,
                   "removed chains {} and {}, INPUT policy ACCEPT "
                   "(--dataplane=iptables before)",
                   acl::input_chain, acl::entry_chain);
  }
  return std::make_shared<nft::nft_filter_table>();
}

std::string acl_json(acl::filter_table& table, const acl_board& board) {
  json_writer j;
  j.begin_object();
  j.kv("backend", table.backend());
  {
    std::lock_guard<std::mutex> guard{board.mtx};
    j.kv("state", !board.ready   ? "waiting for etcd"
                  : board.active ? "active"
                                 : "inactive");
    j.kv("last_error", board.last_error);
  }
  auto k = table.show();
  if (!k) {
    j.kv("read_error", k.error().to_string());
    j.end_object();
    return j.str();
  }
  j.object("kernel");
  j.kv("present", k->present);
  j.kv("policy", k->policy);
  j.kv("base_rules", k->base);
  j.kv("rules", k->rules);
  j.begin_array("sets");
  for (auto& s : k->sets) {
    j.begin_object();
    j.kv("name", s.name);
    j.kv("type", s.type);
    j.kv("count", static_cast<uint64_t>(s.elements.size()));
    j.kv("elements", s.elements);
    j.end_object();
  }
  j.end_array();
  j.end_object();
  j.end_object();
  return j.str();
}

} // namespace networkd
