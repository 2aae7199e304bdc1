// SPDX-License-Identifier: MIT
#include "actors/supervisor.hpp"

#include <caf/all.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <functional>
#include <memory>

#include "actors/json.hpp"
#include "net/base/log.hpp"

namespace networkd {

namespace {

constexpr const char* who = "supervisor";

using clock = std::chrono::steady_clock;

/// How long the parts may take to answer. The registry asks every holder
/// (1 s each, in parallel).
constexpr auto part_timeout = std::chrono::seconds(2);

} // namespace

std::string merge_objects(const std::vector<std::string>& parts) {
  rapidjson::Document out;
  out.SetObject();
  auto& alloc = out.GetAllocator();
  for (auto& text : parts) {
    rapidjson::Document doc(&alloc);
    doc.Parse<rapidjson::kParseIterativeFlag>(text.c_str(), text.size());
    if (doc.HasParseError() || !doc.IsObject())
      continue;
    for (auto& m : doc.GetObject()) {
      auto have = out.FindMember(m.name);
      if (have == out.MemberEnd()) {
        rapidjson::Value name(m.name, alloc);
        rapidjson::Value value(m.value, alloc);
        out.AddMember(name, value, alloc);
      } else if (have->value.IsObject() && m.value.IsObject()) {
        for (auto& inner : m.value.GetObject())
          if (!have->value.HasMember(inner.name)) {
            rapidjson::Value name(inner.name, alloc);
            rapidjson::Value value(inner.value, alloc);
            have->value.AddMember(name, value, alloc);
          }
      }
    }
  }
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  out.Accept(w);
  return buf.GetString();
}

namespace {

using answer = std::function<void(std::string)>;

/// Asks `part` for a string; a part that does not answer gives `fallback`
/// (with the error appended when it ends in ": ").
template <class Handle, class... Ts>
void ask(supervisor_pointer self, const Handle& part, std::string fallback,
         answer k, Ts... xs) {
  if (!part) {
    k(fallback);
    return;
  }
  self->request(part, part_timeout, xs...)
    .then([k](std::string& s) { k(std::move(s)); },
          [self, k, fallback](caf::error& err) {
            bool with_error
              = fallback.size() >= 2
                && fallback.compare(fallback.size() - 2, 2, ": ") == 0;
            k(with_error ? fallback + self->system().render(err) : fallback);
          });
}

/// Collects n answers in their slots, then calls done with all of them.
struct gather {
  std::vector<std::string> slots;
  size_t pending;
  std::function<void(std::vector<std::string>&)> done;

  gather(size_t n, std::function<void(std::vector<std::string>&)> f)
      : slots(n), pending(n), done(std::move(f)) {}

  static answer slot(const std::shared_ptr<gather>& g, size_t i) {
    return [g, i](std::string s) {
      g->slots[i] = std::move(s);
      if (--g->pending == 0)
        g->done(g->slots);
    };
  }
};

/// Why not ready, "" when ready: stopping or the first read pending (the
/// router), then the lease (the session), then a stalled watch (the
/// router's "watch ..." reason): a lost lease is named even while the
/// watches retry.
void ready_reason(supervisor_pointer self, answer k) {
  auto& cfg = self->state.cfg;
  auto g = std::make_shared<gather>(2, [k](std::vector<std::string>& r) {
    bool stalled_watch = r[0].rfind("watch ", 0) == 0;
    k(!r[0].empty() && !stalled_watch ? r[0] : !r[1].empty() ? r[1] : r[0]);
  });
  ask(self, cfg.router, "watch-router does not answer: ", gather::slot(g, 0),
      atom::ready_v, atom::status_v);
  ask(self, cfg.session, "session does not answer: ", gather::slot(g, 1),
      atom::ready_v, atom::status_v);
}

/// The supervisor's object in /v1/state: its own head, then the members
/// of the router's, the session's and the registry's states.
void status(supervisor_pointer self, answer k) {
  auto& st = self->state;
  auto g = std::make_shared<gather>(4, [self, k](std::vector<std::string>& r) {
    json_writer j;
    j.begin_object();
    j.kv("name", supervisor_state::name);
    j.kv("hostname", self->state.cfg.hostname);
    j.kv("ready", r[0].empty());
    j.kv("not_ready", r[0]);
    j.end_object();
    k(merge_objects({j.str(), r[1], r[2], r[3]}));
  });
  ready_reason(self, gather::slot(g, 0));
  ask(self, st.cfg.router, "", gather::slot(g, 1), atom::status_v);
  ask(self, st.cfg.session, "", gather::slot(g, 2), atom::status_v);
  ask(self, st.cfg.registry, "", gather::slot(g, 3), atom::status_v);
}

void metrics(supervisor_pointer self, answer k) {
  auto& st = self->state;
  auto g = std::make_shared<gather>(4, [k](std::vector<std::string>& r) {
    k("# HELP networkd_ready 1 while /readyz answers 200 (first read "
      "applied, lease alive, watches watching)\n"
      "# TYPE networkd_ready gauge\n"
      "networkd_ready "
      + std::string{r[0].empty() ? "1" : "0"} + "\n" + r[1] + r[2] + r[3]);
  });
  ready_reason(self, gather::slot(g, 0));
  ask(self, st.cfg.router, "", gather::slot(g, 1), atom::tick_v,
      atom::status_v);
  ask(self, st.cfg.session, "", gather::slot(g, 2), atom::tick_v,
      atom::status_v);
  ask(self, st.cfg.registry, "", gather::slot(g, 3), atom::tick_v,
      atom::status_v);
}

/// /v1/vips: the holders' states and the rejected VIP keys.
void vips(supervisor_pointer self, answer k) {
  auto& st = self->state;
  auto g = std::make_shared<gather>(2, [k](std::vector<std::string>& r) {
    json_writer j;
    j.begin_object();
    j.key("vips").raw(r[0].empty() ? "[]" : r[0]);
    j.key("rejected").raw(r[1].empty() ? "[]" : r[1]);
    j.end_object();
    k(j.str());
  });
  ask(self, st.cfg.registry, "", gather::slot(g, 0), atom::vips_v);
  ask(self, st.cfg.router, "", gather::slot(g, 1), atom::vips_v);
}

/// SIGTERM: not ready at once; every holder removes its address and rules
/// under the live lease; the revoke then releases every lock (and app key)
/// in one step, and the other nodes take over the moment they see the
/// deletes.
caf::result<bool> shutdown(supervisor_pointer self) {
  auto& st = self->state;
  st.shutting_down = true;
  self->send(st.cfg.router, atom::shutdown_v);
  self->send(st.cfg.session, atom::shutdown_v);
  auto rp = self->make_response_promise<bool>();
  auto revoke = [self, rp]() mutable {
    self
      ->request(self->state.cfg.session, std::chrono::seconds(4),
                atom::revoke_v)
      .then(
        [self, rp](bool ok) mutable {
          rp.deliver(ok);
          self->quit();
        },
        [self, rp](caf::error& err) mutable {
          NWD_LOG_WARN(who, "session: {}", self->system().render(err));
          rp.deliver(false);
          self->quit();
        });
  };
  self->request(st.cfg.registry, std::chrono::seconds(12), atom::shutdown_v)
    .then([revoke](bool) mutable { revoke(); },
          [revoke](caf::error&) mutable { revoke(); });
  return rp;
}

/// Runs `f` with a promise of a string that `f` answers.
template <class F>
caf::result<std::string> answered(supervisor_pointer self, F f) {
  auto rp = self->make_response_promise<std::string>();
  f(self, [rp](std::string s) mutable { rp.deliver(std::move(s)); });
  return rp;
}

} // namespace

supervisor_actor::behavior_type supervisor(supervisor_pointer self,
                                           supervisor_config cfg) {
  self->state.cfg = std::move(cfg);
  return {
    [self](atom::status) { return answered(self, status); },
    [self](atom::vips) { return answered(self, vips); },
    [self](atom::ready) -> caf::result<bool> {
      auto rp = self->make_response_promise<bool>();
      ready_reason(self,
                   [rp](std::string why) mutable { rp.deliver(why.empty()); });
      return rp;
    },
    [self](atom::ready, atom::status) { return answered(self, ready_reason); },
    [self](atom::tick, atom::status) { return answered(self, metrics); },
    [self](atom::reload) {
      self->send(self->state.cfg.router, atom::reload_v);
    },
    [self](atom::shutdown) { return shutdown(self); },
  };
}

} // namespace networkd
