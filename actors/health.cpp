// SPDX-License-Identifier: MIT
#include "actors/health.hpp"

#include <caf/all.hpp>

#include <set>

#include <condition_variable>
#include <mutex>
#include <thread>

#include "actors/json.hpp"
#include "actors/metrics.hpp"
#include "net/base/log.hpp"
#include "net/peers/docker.hpp"
#include "net/peers/lainlet.hpp"

namespace networkd {

namespace {

using tracker_pointer
  = proc_tracker_actor::stateful_pointer<proc_tracker_state>;
using hub_pointer = health_hub_actor::stateful_pointer<health_hub_state>;

container_info convert(const lainlet::container& c) {
  container_info i;
  i.app = c.app;
  i.proc = c.proc;
  i.instance = c.instance;
  i.ip = c.ip;
  i.port = c.port;
  i.id = c.container_id;
  return i;
}

std::vector<container_info> convert(const std::vector<lainlet::container>& cs) {
  std::vector<container_info> out;
  out.reserve(cs.size());
  for (auto& c : cs)
    out.push_back(convert(c));
  return out;
}

} // namespace

/// The running container source: a lainlet client or a pod-group watcher.
/// Its callbacks run on its own thread and only anon_send to the hub.
struct container_source {
  std::unique_ptr<lainlet::client> lainlet;
  std::unique_ptr<etcd::watcher> pod_groups;
  // deployd source: the pod-group keys as last seen (watcher thread only).
  std::map<std::string, std::string> kvs;
  std::vector<lainlet::container> last;
  bool sent = false;
  // Docker cross-check poller.
  std::thread docker;
  std::mutex mtx;
  std::condition_variable cv;
  bool stopping = false;

  ~container_source() {
    {
      std::lock_guard<std::mutex> g{mtx};
      stopping = true;
    }
    cv.notify_all();
    if (docker.joinable())
      docker.join();
  }
};

// -- tracker ------------------------------------------------------------------

proc_health proc_tracker_state::snapshot() const {
  proc_health h;
  h.app = app;
  h.proc = proc;
  h.healthy = machine.healthy();
  if (machine.current()) {
    h.ip = machine.current()->ip;
    h.instance = machine.current()->instance;
  }
  h.reason = machine.reason();
  return h;
}

std::string proc_tracker_state::render() const {
  json_writer j;
  j.begin_object();
  j.kv("name", "proc-tracker");
  j.kv("proc", app + "." + proc);
  j.kv("state", machine.healthy()    ? "healthy"
                : machine.starting() ? "starting"
                : machine.current()  ? "unhealthy"
                                     : "absent");
  j.kv("reason", machine.reason());
  if (machine.current()) {
    j.object("container");
    j.kv("ip", machine.current()->ip);
    j.kv("instance", machine.current()->instance);
    j.kv("id", machine.current()->id);
    j.end_object();
  }
  std::vector<std::string> ports;
  for (auto p : machine.probe_ports())
    ports.push_back(std::to_string(p));
  j.kv("probe_ports", ports);
  j.object("probe");
  j.kv("interval_ms", static_cast<int64_t>(probes.interval.count()));
  j.kv("timeout_ms", static_cast<int64_t>(probes.timeout.count()));
  j.kv("failures", probes.failures);
  j.end_object();
  j.object("last_probe");
  j.kv("port", static_cast<int64_t>(last_probe.port));
  j.kv("ok", last_probe.ok);
  j.kv("error", last_probe.error);
  j.kv("latency_us", last_probe.latency_us);
  j.end_object();
  j.kv("transitions", history);
  j.object("counters");
  j.kv("probes", probes_sent);
  j.kv("transitions", transitions);
  j.kv("subscribers", static_cast<uint64_t>(subscribers.size()));
  j.kv("failures_in_a_row", machine.failures());
  j.end_object();
  j.end_object();
  return j.str();
}

namespace {

void notify(tracker_pointer self, bool force = false) {
  auto& st = self->state;
  auto now = st.snapshot();
  bool changed = !st.notified || now.healthy != st.last.healthy
                 || now.ip != st.last.ip || now.instance != st.last.instance;
  if (!changed && !force)
    return;
  if (changed) {
    ++st.transitions;
    auto line = std::string{now.healthy ? "healthy" : "unhealthy"}
                + (now.ip.empty() ? "" : " " + now.ip) + ": " + now.reason;
    NWD_LOG_INFO("proc-tracker", "{}.{} {}", st.app, st.proc, line);
    // Each entry starts with its time (RFC 3339 UTC).
    st.history.push_back(rfc3339(std::chrono::system_clock::now()) + " "
                         + line);
    if (st.history.size() > 10)
      st.history.erase(st.history.begin());
  }
  st.notified = true;
  st.last = now;
  for (auto& [addr, sub] : st.subscribers)
    caf::anon_send(sub.first, now);
}

/// Starts a round of probes (one per port) `after` from now; the prober
/// waits, so that a healthy container costs no timer here. Without `after`
/// the round is wanted at once (a new container, a new subscriber): it
/// replaces the round in flight, whose answers are then dropped.
void start_round(tracker_pointer self, std::chrono::milliseconds after = {}) {
  auto& st = self->state;
  auto& cur = st.machine.current();
  if (after.count() == 0 && st.pending > 0) {
    st.round->fetch_add(1);
    st.pending = 0;
  }
  if (st.pending > 0 || !cur || st.machine.probe_ports().empty())
    return;
  auto hdl = caf::actor_cast<proc_tracker_actor>(self);
  auto round = st.round->fetch_add(1) + 1;
  for (auto port : st.machine.probe_ports()) {
    ++st.pending;
    ++st.probes_sent;
    auto ip = cur->ip;
    st.prober->probe(
      ip, port, st.probes.timeout,
      [hdl, ip, port, current = st.round, round](const probe_outcome& o) {
        if (current->load() == round)
          caf::anon_send(
            hdl, probe_done{ip, port, o.ok, o.error, o.latency.count()});
      },
      after);
  }
}

/// Counts `ports` in (`delta` 1) or out (-1) of the probed ports; returns
/// true when a port started or stopped being probed.
bool count_ports(tracker_pointer self, const std::vector<uint16_t>& ports,
                 int delta) {
  auto& refs = self->state.port_refs;
  bool changed = false;
  for (auto port : ports) {
    if (delta > 0) {
      changed |= refs[port]++ == 0;
    } else if (auto i = refs.find(port); i != refs.end() && --i->second == 0) {
      refs.erase(i);
      changed = true;
    }
  }
  if (changed) {
    std::vector<uint16_t> probed;
    for (auto& [port, n] : refs)
      probed.push_back(port);
    self->state.machine.set_probe_ports(std::move(probed));
  }
  return changed;
}

} // namespace

proc_tracker_actor::behavior_type
proc_tracker(proc_tracker_actor::stateful_pointer<proc_tracker_state> self,
             std::string app, std::string proc,
             std::shared_ptr<tcp_prober> prober, config::probe_knobs probes) {
  auto& st = self->state;
  st.app = std::move(app);
  st.proc = std::move(proc);
  st.prober = std::move(prober);
  st.probes = probes;
  st.machine.set_threshold(static_cast<int>(probes.failures));
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& st = self->state;
    auto i = st.subscribers.find(dm.source);
    if (i == st.subscribers.end())
      return;
    auto ports = std::move(i->second.second);
    st.subscribers.erase(i);
    if (st.subscribers.empty()) {
      self->quit();
      return;
    }
    count_ports(self, ports, -1);
  });
  return {
    [self](atom::status) { return self->state.render(); },
    [self](std::vector<container_info>& cs) {
      std::vector<proc_container> pcs;
      for (auto& c : cs)
        pcs.push_back({c.ip, c.instance, c.id});
      if (self->state.machine.set_containers(pcs)) {
        notify(self);
        start_round(self);
      }
    },
    [self](atom::subscribe, std::vector<uint16_t>& ports, caf::actor& who) {
      auto& st = self->state;
      if (!who)
        return false;
      auto& sub = st.subscribers[who.address()];
      if (!sub.first)
        self->monitor(who);
      auto before = st.machine.healthy();
      // In before out: a subscriber that asks again keeps its counts.
      bool added = count_ports(self, ports, 1);
      bool removed = count_ports(self, sub.second, -1);
      sub = {who, std::move(ports)};
      if (st.machine.healthy() != before)
        notify(self);
      // The newcomer hears the current state at once; a round at once only
      // when a port is new to the probes (the others' results stand).
      caf::anon_send(who, st.snapshot());
      if (added || removed)
        start_round(self);
      return true;
    },
    [self](probe_done& p) {
      auto& st = self->state;
      if (st.pending > 0)
        --st.pending;
      st.last_probe = p;
      if (st.machine.probe_result(p.ip, p.port, p.ok, p.error))
        notify(self);
      // The round is over: the next one at the probe interval.
      if (st.pending == 0)
        start_round(self, st.probes.interval);
    },
    [self](config::probe_knobs& k) {
      auto& st = self->state;
      bool threshold = k.failures != st.probes.failures;
      st.probes = k;
      if (threshold) {
        st.machine.set_threshold(static_cast<int>(k.failures));
        notify(self);
      }
    },
  };
}

// -- hub ----------------------------------------------------------------------

health_hub_state::~health_hub_state() {
  // Stop the source's thread before the state goes away.
  source.reset();
}

std::vector<container_info>
health_hub_state::slice(const std::string& app, const std::string& proc) const {
  std::set<std::string> running(docker.running.begin(), docker.running.end());
  std::vector<container_info> out;
  for (auto& c : containers)
    if (c.app == app && c.proc == proc
        && (!docker.ok || docker::is_running(running, c.id)))
      out.push_back(c);
  return out;
}

std::string
health_hub_state::render(const std::vector<std::string>& states) const {
  json_writer j;
  j.begin_object();
  j.kv("name", "health-hub");
  j.kv("state", report.state);
  j.kv("last_error", report.message);
  j.kv("source", cfg.from == health_hub_config::source::lainlet   ? "lainlet"
                 : cfg.from == health_hub_config::source::deployd ? "deployd"
                                                                  : "none");
  j.kv("containers", static_cast<uint64_t>(containers.size()));
  j.kv("have_set", have_set);
  j.object("docker");
  j.kv("checked", !cfg.docker_socket.empty());
  j.kv("ok", docker.ok);
  j.kv("running", static_cast<uint64_t>(docker.running.size()));
  j.kv("last_error", docker.error);
  j.end_object();
  j.object("counters");
  j.kv("updates", report.updates);
  j.kv("events", report.events);
  j.kv("bad_entries", report.bad_entries);
  j.kv("disconnects", report.disconnects);
  j.end_object();
  j.begin_array("procs");
  for (auto& s : states)
    j.raw(s);
  j.end_array();
  j.end_object();
  return j.str();
}

namespace {

/// Gives a subscription to app.proc's tracker, spawning one when there is
/// none. A tracker ends when its last subscriber goes away, and the hub
/// hears of it only later: a subscription sent meanwhile bounces (the
/// receiver is down) and goes to a new tracker, or the subscriber would
/// never hear of its proc's health.
void subscribe_at_tracker(hub_pointer self, const std::string& app,
                          const std::string& proc, std::vector<uint16_t> ports,
                          caf::actor who) {
  auto& st = self->state;
  auto key = app + "." + proc;
  auto i = st.trackers.find(key);
  if (i == st.trackers.end()) {
    // Linked: trackers end with the hub; monitored: the hub forgets a
    // tracker that ended because its last subscriber went away.
    auto t = self->spawn<caf::monitored + caf::linked>(
      proc_tracker, app, proc, st.cfg.prober, st.cfg.probes);
    i = st.trackers.emplace(key, t).first;
    if (st.have_set)
      self->send(t, st.slice(app, proc));
  }
  auto t = i->second;
  self->request(t, std::chrono::seconds(10), atom::subscribe_v, ports, who)
    .then([](bool) {},
          [self, t, key, app, proc, ports, who](caf::error& err) {
            if (!(err == caf::sec::request_receiver_down)) {
              NWD_LOG_WARN("health-hub", "subscription to {} failed: {}", key,
                           self->system().render(err));
              return;
            }
            auto& trackers = self->state.trackers;
            auto j = trackers.find(key);
            if (j != trackers.end() && j->second == t)
              trackers.erase(j);
            subscribe_at_tracker(self, app, proc, ports, who);
          });
}

void start_source(hub_pointer self) {
  auto& st = self->state;
  auto hdl = caf::actor_cast<health_hub_actor>(self);
  auto src = std::make_shared<container_source>();
  if (st.cfg.from == health_hub_config::source::lainlet) {
    lainlet::client_options o;
    o.endpoint = st.cfg.lainlet_endpoint;
    o.nodename = st.cfg.nodename;
    o.heartbeat = st.cfg.heartbeat;
    src->lainlet = std::make_unique<lainlet::client>(
      o,
      [hdl](const std::vector<lainlet::container>& cs, uint64_t id) {
        caf::anon_send(hdl, container_set{convert(cs), id});
      },
      [hdl](const lainlet::client_status& s) {
        source_report r;
        r.state = lainlet::to_string(s.state);
        r.message = s.message;
        r.updates = s.counters.updates;
        r.events = s.counters.events;
        r.bad_entries = s.counters.bad_entries;
        r.disconnects = s.counters.disconnects;
        caf::anon_send(hdl, std::move(r));
      });
  } else if (st.cfg.from == health_hub_config::source::deployd) {
    auto raw = src.get();
    auto node = st.cfg.nodename;
    src->pod_groups = std::make_unique<etcd::watcher>(
      *st.cfg.etcd, std::string{lainlet::pod_groups_prefix},
      [hdl, raw, node](etcd::watch_batch b) {
        for (auto& ev : b.events) {
          if (ev.what == etcd::watch_event::kind::erase)
            raw->kvs.erase(ev.kv.key);
          else
            raw->kvs[ev.kv.key] = ev.kv.value;
        }
        std::vector<std::pair<std::string, std::string>> kvs(raw->kvs.begin(),
                                                             raw->kvs.end());
        auto res = lainlet::parse_pod_groups(kvs, node);
        if (raw->sent && res.containers == raw->last)
          return;
        raw->sent = true;
        raw->last = res.containers;
        caf::anon_send(hdl, container_set{convert(res.containers),
                                          static_cast<uint64_t>(b.revision)});
      },
      [hdl](const etcd::watch_status& s) {
        source_report r;
        // A source that watches is "streaming", as lainlet's is.
        using phase = etcd::watch_status::phase;
        r.state
          = s.state == phase::watching ? "streaming" : etcd::to_string(s.state);
        r.message = s.last_error;
        r.disconnects = s.reconnects;
        caf::anon_send(hdl, std::move(r));
      });
  } else {
    st.report.state = "none";
  }
  if (!st.cfg.docker_socket.empty()) {
    auto raw = src.get();
    auto path = st.cfg.docker_socket;
    auto every = st.cfg.docker_interval;
    src->docker = std::thread([raw, hdl, path, every] {
      std::unique_lock<std::mutex> lk{raw->mtx};
      while (!raw->stopping) {
        lk.unlock();
        docker_report r;
        if (auto ids = docker::running_containers(path)) {
          r.ok = true;
          r.running.assign(ids->begin(), ids->end());
        } else {
          r.error = ids.error().to_string();
        }
        caf::anon_send(hdl, std::move(r));
        lk.lock();
        raw->cv.wait_for(lk, every, [raw] { return raw->stopping; });
      }
    });
  }
  st.source = std::move(src);
}

} // namespace

health_hub_actor::behavior_type
health_hub(health_hub_actor::stateful_pointer<health_hub_state> self,
           health_hub_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  st.report.state = "connecting";
  if (!st.cfg.prober)
    st.cfg.prober = std::make_shared<tcp_prober>();
  self->set_down_handler([self](caf::down_msg& dm) {
    auto& ts = self->state.trackers;
    for (auto i = ts.begin(); i != ts.end(); ++i) {
      if (i->second.address() == dm.source) {
        ts.erase(i);
        return;
      }
    }
  });
  start_source(self);
  return {
    [self](atom::status) -> caf::result<std::string> {
      auto& st = self->state;
      auto rp = self->make_response_promise<std::string>();
      auto pending = std::make_shared<size_t>(st.trackers.size());
      auto states = std::make_shared<std::vector<std::string>>();
      if (*pending == 0) {
        rp.deliver(st.render({}));
        return rp;
      }
      for (auto& [name, t] : st.trackers) {
        auto done = [self, rp, pending, states]() mutable {
          if (--*pending == 0)
            rp.deliver(self->state.render(*states));
        };
        self->request(t, std::chrono::seconds(1), atom::status_v)
          .then(
            [states, done](std::string& s) mutable {
              states->push_back(std::move(s));
              done();
            },
            [done](caf::error&) mutable { done(); });
      }
      return rp;
    },
    [self](config::knob_values& v) {
      // Kept for trackers spawned later, and told to the ones there are.
      auto& st = self->state;
      if (v.probe == st.cfg.probes)
        return;
      st.cfg.probes = v.probe;
      for (auto& [name, t] : st.trackers)
        self->send(t, v.probe);
    },
    [](atom::ready) {},
    [self](container_set& s) {
      auto& st = self->state;
      st.containers = std::move(s.containers);
      st.have_set = true;
      NWD_LOG_INFO("health-hub", "containers on this node: {} (event {})",
                   st.containers.size(), s.event_id);
      for (auto& [name, t] : st.trackers) {
        auto dot = name.rfind('.');
        self->send(t, st.slice(name.substr(0, dot), name.substr(dot + 1)));
      }
    },
    [self](docker_report& r) {
      auto& st = self->state;
      if (r.ok != st.docker.ok || r.error != st.docker.error)
        NWD_LOG_INFO("health-hub", "docker cross-check: {}",
                     r.ok ? "ok" : r.error + " (not filtering)");
      bool changed = r.ok != st.docker.ok || r.running != st.docker.running;
      st.docker = std::move(r);
      if (!changed)
        return;
      for (auto& [name, t] : st.trackers) {
        auto dot = name.rfind('.');
        self->send(t, st.slice(name.substr(0, dot), name.substr(dot + 1)));
      }
    },
    [self](source_report& r) {
      auto& st = self->state;
      if (r.state != st.report.state)
        NWD_LOG_INFO("health-hub", "container source: {}{}", r.state,
                     r.message.empty() ? "" : " (" + r.message + ")");
      st.report = std::move(r);
    },
    [self](atom::subscribe, std::string& app, std::string& proc,
           std::vector<uint16_t>& ports, caf::actor& who) {
      subscribe_at_tracker(self, app, proc, std::move(ports), std::move(who));
    },
  };
}

} // namespace networkd
