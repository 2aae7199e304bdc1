// SPDX-License-Identifier: MIT
#include "actors/dns_responder.hpp"

#include <caf/all.hpp>

#include <array>
#include <cerrno>
#include <cstring>
#include <sstream>

#include "actors/json.hpp"
#include "actors/memory.hpp"
#include "dns/hosts.hpp"
#include "dns/wire.hpp"
#include "net/base/file.hpp"
#include "net/base/log.hpp"
#include "net/base/prom.hpp"
#include "net/base/text.hpp"

namespace networkd {

namespace {

constexpr const char* who = "dns-responder";

/// A domain key's name as the tables store it: lower-case, without a
/// trailing dot (how a deleted key finds its entry).
std::string stored_name(std::string name) {
  for (auto& ch : name)
    ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  if (!name.empty() && name.back() == '.')
    name.pop_back();
  return name;
}

void schedule_publish(
  dns_responder_actor::stateful_pointer<dns_responder_state> self) {
  if (self->state.publish_pending)
    return;
  self->state.publish_pending = true;
  // Queued behind the changes already in the mailbox: a burst of key
  // events yields one table, with no timer in the way.
  self->send(self, atom::publish_v);
}

/// What the responder keeps of a parsed put: the key's suffix only when it
/// differs from the stored name.
template <config::family F>
auto from_etcd(keys::event<F>&& c) {
  dns::from_etcd<typename keys::event<F>::value_type> e;
  auto stored = stored_name(c.suffix);
  if (stored != c.suffix)
    e.raw_suffix = std::move(c.suffix);
  e.revision = c.revision;
  e.value = std::move(c.value);
  return e;
}

/// Domains changed between two publishes that are applied one by one to
/// the last table; more make a whole new build.
constexpr size_t max_updates = 64;

/// How long after a publish the cache is swept and memory trimmed.
constexpr auto tidy_delay = std::chrono::seconds(1);

/// Hosts files of blocking lists reach a few MiB; past this one is refused
/// and the last good entries stay.
constexpr size_t max_hosts_file = 16 * 1024 * 1024;

} // namespace

dns::table_input dns_responder_state::input() const {
  dns::table_input in;
  for (auto& [name, d] : domains)
    in.domains.push_back(d.value);
  in.node_ip = cfg.node_ip;
  in.webrouter_ips = webrouter_ips;
  in.hosts = hosts;
  in.dynamic_names = dynamic_names;
  in.ttl = knobs.ttl;
  for (auto& [name, s] : servers)
    in.domain_servers.push_back(s.value);
  in.upstreams = upstreams;
  return in;
}

void dns_responder_state::domain_changing(const std::string& key) {
  if (rebuild || changed.count(key) > 0)
    return;
  if (changed.size() >= max_updates) {
    rebuild = true;
    changed.clear();
    return;
  }
  auto i = domains.find(key);
  changed.emplace(key, i == domains.end() ? std::nullopt
                                          : std::optional{i->second.value});
}

std::shared_ptr<const dns::table> dns_responder_state::next_table() {
  std::shared_ptr<const dns::table> t = rebuild ? nullptr : table;
  for (auto& [key, before] : changed) {
    if (!t)
      break;
    auto i = domains.find(key);
    t = dns::table::update(*t, before ? &*before : nullptr,
                           i == domains.end() ? nullptr : &i->second.value,
                           cfg.node_ip, webrouter_ips);
  }
  bool updated = t && !changed.empty();
  changed.clear();
  rebuild = false;
  if (updated)
    ++table_updates;
  if (t)
    return t;
  warnings.clear();
  t = dns::table::build(input(), &warnings);
  for (auto& w : warnings)
    NWD_LOG_DEBUG(who, "table: {}", w);
  return t;
}

void dns_responder_state::compact() {
  // A full etcd read arrives as thousands of key messages at once, and the
  // entries made while they were queued sit between them in the heap, so
  // the freed messages leave holes that no trim can return. Copies made
  // now fill those holes instead; the old entries are freed next to them
  // and everything coalesces (release_free_memory after the publish).
  auto fresh_domains = domains;
  domains.swap(fresh_domains);
  auto fresh_servers = servers;
  servers.swap(fresh_servers);
}

void dns_responder_state::read_hosts() {
  if (cfg.hosts_file.empty())
    return;
  std::string text;
  int rc = read_file_bounded(cfg.hosts_file, max_hosts_file, text);
  ++hosts_reloads;
  if (rc != 0) {
    auto err = "cannot read " + cfg.hosts_file + ": " + std::strerror(rc)
               + (rc == EFBIG ? " (limit 16 MiB)" : "");
    if (err != hosts_error)
      NWD_LOG_WARN(who, "{} (keeping {} entries)", err, hosts.size());
    hosts_error = err;
    return;
  }
  hosts_error.clear();
  hosts = dns::parse_hosts(text);
  NWD_LOG_DEBUG(who, "hosts file {}: {} entries", cfg.hosts_file, hosts.size());
}

std::string dns_responder_state::lookup(const std::string& name,
                                        const std::string& type) const {
  json_writer j;
  j.begin_object();
  auto q = dns::parse_lookup_question(name, type);
  if (!q) {
    j.kv("error", q.error().message);
    j.kv("code", q.error().code);
    j.end_object();
    return j.str();
  }
  auto tbl = cfg.server ? cfg.server->current() : nullptr;
  dns::lookup_facts f;
  f.tbl = tbl.get();
  f.domains = &domains;
  f.servers = &servers;
  f.hosts = &hosts;
  f.hosts_file = cfg.hosts_file;
  auto fwd = cfg.server ? cfg.server->forward_view_of(q->wire, q->qtype)
                        : dns::server::forward_view{};
  auto a = dns::explain_lookup(*q, f, fwd);
  j.kv("name", a.name);
  j.kv("type", a.type);
  j.kv("verdict", a.verdict);
  j.kv("rule", a.rule);
  j.kv("why", a.why);
  if (!a.origin.key.empty()) {
    j.kv("key", a.origin.key);
    j.kv("revision", a.origin.revision);
  }
  if (!a.hosts_line.empty())
    j.kv("hosts_line", a.hosts_line);
  if (!a.domain_type.empty())
    j.kv("domain_type", a.domain_type);
  if (a.verdict == "local") {
    j.kv("matched", a.matched);
    j.kv("records", a.records);
    j.kv("ttl", static_cast<uint64_t>(knobs.ttl));
  } else {
    j.kv("upstreams", a.upstreams);
    j.object("cache");
    j.kv("present", a.cache.present);
    if (a.cache.present) {
      j.kv("rcode", a.cache.rcode);
      j.kv("negative", a.cache.negative);
      j.kv("failure", a.cache.failure);
      j.kv("ttl_left_s", a.cache.ttl_left_s);
      j.kv("stale_servable", a.cache.stale_servable);
    }
    j.end_object();
  }
  j.end_object();
  return j.str();
}

std::string dns_responder_state::render() const {
  auto st = cfg.server ? cfg.server->stats() : dns::server_stats{};
  auto tbl = cfg.server ? cfg.server->current() : nullptr;
  json_writer j;
  j.begin_object();
  j.kv("name", "dns-responder");
  j.kv("state", hosts_error.empty() ? "serving" : "degraded");
  j.kv("last_error", hosts_error);
  j.kv("listen",
       cfg.server ? cfg.server->options().listen : std::vector<std::string>{});
  if (cfg.server) {
    auto c = cfg.server->cache_settings();
    j.object("settings");
    j.kv("cache_size", static_cast<uint64_t>(c.capacity));
    j.kv("min_ttl", static_cast<uint64_t>(c.min_ttl));
    j.kv("max_ttl", static_cast<uint64_t>(c.max_ttl));
    j.kv("neg_ttl_max", static_cast<uint64_t>(c.max_negative_ttl));
    j.kv("upstream_timeout_ms",
         static_cast<uint64_t>(cfg.server->upstream_timeout_ms()));
    j.end_object();
  }
  j.object("table");
  j.kv("names", static_cast<uint64_t>(tbl ? tbl->size() : 0));
  j.kv("serial", static_cast<uint64_t>(tbl ? tbl->serial() : 0));
  j.kv("ttl", static_cast<uint64_t>(knobs.ttl));
  j.kv("domains", static_cast<uint64_t>(domains.size()));
  j.kv("domain_servers", static_cast<uint64_t>(servers.size()));
  j.kv("hosts_entries", static_cast<uint64_t>(hosts.size()));
  j.kv("dynamic_names", static_cast<uint64_t>(dynamic_names.size()));
  j.kv("webrouter_ips", webrouter_ips);
  j.kv("warnings", warnings);
  j.end_object();
  j.begin_array("upstreams");
  for (auto& u : upstreams)
    j.value(u.ip + "#" + std::to_string(u.port));
  j.end_array();
  j.object("counters");
  j.kv("queries", st.queries);
  j.kv("local", st.local);
  j.kv("cached", st.cached);
  j.kv("forwarded", st.forwarded);
  j.kv("refused", st.refused);
  j.kv("errors", st.errors);
  j.kv("dropped", st.dropped);
  j.kv("publishes", publishes);
  j.kv("table_updates", table_updates);
  j.kv("tidies", tidies);
  j.kv("hosts_reloads", hosts_reloads);
  j.object("by_type");
  for (auto& [t, n] : st.by_type)
    j.kv(t.c_str(), n);
  j.end_object();
  j.object("by_rcode");
  for (auto& [r, n] : st.by_rcode)
    j.kv(r.c_str(), n);
  j.end_object();
  j.end_object();
  j.object("cache");
  j.kv("size", static_cast<uint64_t>(st.cache_stats.size));
  j.kv("hits", st.cache_stats.hits);
  j.kv("misses", st.cache_stats.misses);
  j.kv("evictions", st.cache_stats.evictions);
  j.end_object();
  j.object("upstream");
  j.kv("sent", st.upstream.sent);
  j.kv("coalesced", st.upstream.coalesced);
  j.kv("answered", st.upstream.answered);
  j.kv("failed", st.upstream.failed);
  j.kv("refused", st.upstream.refused);
  j.kv("latency_avg_us", st.upstream.answered
                           ? st.upstream.latency_us_sum / st.upstream.answered
                           : uint64_t{0});
  j.end_object();
  j.object("tcp");
  j.kv("connections", st.tcp_connections);
  j.kv("rejected", st.tcp_rejected);
  j.kv("rejected_per_client", st.tcp_rejected_per_client);
  j.kv("closed_idle", st.tcp_closed_idle);
  j.kv("closed_write_timeout", st.tcp_closed_write_timeout);
  j.kv("closed_output", st.tcp_closed_output);
  j.kv("closed_lifetime", st.tcp_closed_lifetime);
  j.kv("output_bytes", st.tcp_output_bytes);
  j.kv("output_peak", st.tcp_output_peak);
  j.end_object();
  j.end_object();
  return j.str();
}

namespace {

/// The request-duration histogram and the per-upstream answers.
std::string dns_request_metrics(
  const dns::server_stats& s,
  const std::vector<dns::forwarder::upstream_health>& upstreams) {
  prom::writer w;
  w.family("networkd_dns_request_duration_seconds", "histogram",
           "Time from a query's arrival to its answer, by where the answer "
           "came from");
  static constexpr std::array<const char*, 3> sources{"local", "cache",
                                                      "upstream"};
  for (size_t i = 0; i < sources.size(); ++i)
    prom::write_histogram(w, "networkd_dns_request_duration_seconds",
                          {{"source", sources[i]}}, s.durations[i]);
  w.family("networkd_dns_upstream_answers_total", "counter",
           "Answers received from each upstream, by rcode");
  for (auto& u : upstreams)
    for (size_t r = 0; r < u.rcodes.size(); ++r)
      if (u.rcodes[r] > 0)
        w.sample("networkd_dns_upstream_answers_total",
                 {{"to", u.server},
                  {"rcode", dns::rcode_name(static_cast<uint16_t>(r))}},
                 u.rcodes[r]);
  w.family("networkd_dns_upstream_timeouts_total", "counter",
           "Tries that each upstream left unanswered");
  for (auto& u : upstreams)
    w.sample("networkd_dns_upstream_timeouts_total", {{"to", u.server}},
             u.timeouts);
  return w.take();
}

} // namespace

std::string
dns_metrics(const dns::server_stats& s,
            const std::vector<dns::forwarder::upstream_health>& upstreams) {
  std::ostringstream out;
  out << dns_request_metrics(s, upstreams);
  auto counter = [&](const char* name, const char* help, uint64_t v) {
    out << "# HELP " << name << " " << help << "\n# TYPE " << name
        << " counter\n"
        << name << " " << v << "\n";
  };
  out << "# HELP networkd_dns_queries_total DNS queries by type\n"
      << "# TYPE networkd_dns_queries_total counter\n";
  for (auto& [t, n] : s.by_type)
    out << "networkd_dns_queries_total{type=\"" << t << "\"} " << n << "\n";
  out << "# HELP networkd_dns_responses_total DNS responses by rcode\n"
      << "# TYPE networkd_dns_responses_total counter\n";
  for (auto& [r, n] : s.by_rcode)
    out << "networkd_dns_responses_total{rcode=\"" << r << "\"} " << n << "\n";
  out << "# HELP networkd_dns_answers_total Queries by how they were "
         "answered\n"
      << "# TYPE networkd_dns_answers_total counter\n"
      << "networkd_dns_answers_total{source=\"local\"} " << s.local << "\n"
      << "networkd_dns_answers_total{source=\"cache\"} " << s.cached << "\n"
      << "networkd_dns_answers_total{source=\"forward\"} " << s.forwarded
      << "\n";
  counter("networkd_dns_refused_clients_total",
          "Queries refused because of the source ACL", s.refused);
  counter("networkd_dns_errors_total", "FORMERR/NOTIMP/BADVERS answers",
          s.errors);
  counter("networkd_dns_dropped_total", "Packets not answered", s.dropped);
  out << "# HELP networkd_dns_cache_entries Entries in the answer cache\n"
      << "# TYPE networkd_dns_cache_entries gauge\n"
      << "networkd_dns_cache_entries " << s.cache_stats.size << "\n";
  counter("networkd_dns_cache_hits_total", "Cache hits", s.cache_stats.hits);
  counter("networkd_dns_cache_misses_total", "Cache misses",
          s.cache_stats.misses);
  counter("networkd_dns_cache_evictions_total", "LRU evictions",
          s.cache_stats.evictions);
  counter("networkd_dns_upstream_queries_total", "Upstream exchanges",
          s.upstream.sent);
  counter("networkd_dns_upstream_coalesced_total",
          "Queries joined to one in flight", s.upstream.coalesced);
  counter("networkd_dns_upstream_failures_total",
          "Upstream exchanges without a usable answer", s.upstream.failed);
  counter("networkd_dns_upstream_refused_total",
          "Queries failed at once: too many upstream exchanges in flight",
          s.upstream.refused);
  counter("networkd_dns_upstream_mismatched_total",
          "Datagrams on an upstream query socket dropped: wrong ID or "
          "question",
          s.upstream.mismatched);
  counter("networkd_dns_upstream_probes_total",
          "Background probes of failed upstreams", s.upstream.probes);
  counter("networkd_dns_stale_answers_total",
          "Expired cache entries served because every upstream failed "
          "(RFC 8767)",
          s.stale);
  counter("networkd_dns_prefetches_total",
          "Cache entries refreshed in the background before expiry",
          s.prefetches);
  out << "# HELP networkd_dns_upstream_latency_seconds Upstream answer "
         "latency\n"
      << "# TYPE networkd_dns_upstream_latency_seconds summary\n"
      << "networkd_dns_upstream_latency_seconds_sum "
      << static_cast<double>(s.upstream.latency_us_sum) / 1e6 << "\n"
      << "networkd_dns_upstream_latency_seconds_count " << s.upstream.answered
      << "\n";
  out << "# HELP networkd_dns_tcp_connections Open DNS TCP connections\n"
      << "# TYPE networkd_dns_tcp_connections gauge\n"
      << "networkd_dns_tcp_connections " << s.tcp_connections << "\n"
      << "# HELP networkd_dns_tcp_rejected_total DNS TCP connections closed "
         "at once, by the cap they were over\n"
      << "# TYPE networkd_dns_tcp_rejected_total counter\n"
      << "networkd_dns_tcp_rejected_total{reason=\"total\"} " << s.tcp_rejected
      << "\n"
      << "networkd_dns_tcp_rejected_total{reason=\"per_client\"} "
      << s.tcp_rejected_per_client << "\n"
      << "# HELP networkd_dns_tcp_closed_total DNS TCP connections closed by "
         "the server, by limit\n"
      << "# TYPE networkd_dns_tcp_closed_total counter\n"
      << "networkd_dns_tcp_closed_total{reason=\"idle\"} " << s.tcp_closed_idle
      << "\n"
      << "networkd_dns_tcp_closed_total{reason=\"write_timeout\"} "
      << s.tcp_closed_write_timeout << "\n"
      << "networkd_dns_tcp_closed_total{reason=\"output_total\"} "
      << s.tcp_closed_output << "\n"
      << "networkd_dns_tcp_closed_total{reason=\"lifetime\"} "
      << s.tcp_closed_lifetime << "\n"
      << "# HELP networkd_dns_tcp_output_bytes Answers queued for DNS TCP "
         "clients\n"
      << "# TYPE networkd_dns_tcp_output_bytes gauge\n"
      << "networkd_dns_tcp_output_bytes " << s.tcp_output_bytes << "\n"
      << "# HELP networkd_dns_tcp_output_peak_bytes Most answer bytes ever "
         "queued for one DNS TCP connection\n"
      << "# TYPE networkd_dns_tcp_output_peak_bytes gauge\n"
      << "networkd_dns_tcp_output_peak_bytes " << s.tcp_output_peak << "\n";
  return out.str();
}

dns_responder_actor::behavior_type
dns_responder(dns_responder_actor::stateful_pointer<dns_responder_state> self,
              dns_responder_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  if (!st.cfg.hosts_file.empty()) {
    auto hdl = caf::actor_cast<dns_responder_actor>(self);
    st.hosts_watch = std::make_unique<file_watch>(
      st.cfg.hosts_file, [hdl] { caf::anon_send(hdl, atom::reload_v); });
    if (!st.hosts_watch->started())
      NWD_LOG_WARN(who, "cannot watch {}: {}", st.cfg.hosts_file,
                   st.hosts_watch->started().error().message);
  }
  st.read_hosts();
  schedule_publish(self);
  return {
    [self](atom::status) { return self->state.render(); },
    [self](keys::event<config::family::domain>& c) {
      auto& st = self->state;
      if (c.deleted) {
        auto key = stored_name(c.suffix);
        st.domain_changing(key);
        st.domains.erase(key);
      } else if (c.ok) {
        // The name first: the right side of = runs before the left.
        auto name = c.value.name;
        st.domain_changing(name);
        st.domains[name] = from_etcd(std::move(c));
      }
      ++st.changes_since_publish;
      schedule_publish(self);
    },
    [self](keys::event<config::family::domain_servers>& c) {
      auto& st = self->state;
      if (c.deleted)
        st.servers.erase(stored_name(c.suffix));
      else if (c.ok) {
        auto domain = c.value.domain;
        st.servers[domain] = from_etcd(std::move(c));
      }
      st.rebuild = true;
      ++st.changes_since_publish;
      schedule_publish(self);
    },
    [self](config::knob_values& v) {
      auto& st = self->state;
      if (v.dns == st.knobs)
        return;
      bool ttl = v.dns.ttl != st.knobs.ttl;
      st.knobs = v.dns;
      if (st.cfg.server)
        st.cfg.server->tune(v.dns);
      if (ttl) {
        st.rebuild = true;
        schedule_publish(self);
      }
    },
    [self](atom::ready) {
      // The first full etcd read is in: its keys went through every
      // listener as thousands of messages at once. Once the others have
      // handled theirs too, rebuild the maps and the table into the holes
      // they left, and give the rest back to the kernel (see compact()).
      self->state.compact_next = true;
      self->state.rebuild = true;
      self->delayed_send(self, std::chrono::seconds(1), atom::publish_v);
    },
    [self](atom::upstream, std::vector<config::upstream>& ups) {
      if (ups == self->state.upstreams)
        return;
      NWD_LOG_INFO(who, "upstreams from resolv.conf: {}", ups.size());
      self->state.upstreams = std::move(ups);
      self->state.rebuild = true;
      schedule_publish(self);
    },
    [self](atom::reload) {
      self->state.read_hosts();
      self->state.rebuild = true;
      schedule_publish(self);
    },
    [self](atom::publish) {
      auto& st = self->state;
      st.publish_pending = false;
      if (st.compact_next
          || (st.changes_since_publish >= 64
              && 2 * st.changes_since_publish >= st.domains.size())) {
        st.compact();
        st.rebuild = true;
      }
      st.compact_next = false;
      st.changes_since_publish = 0;
      auto tbl = st.next_table();
      st.table = tbl;
      // Nothing else on the way from a key to its answer: sweeping the
      // cache of names that became local (the table is asked first, so
      // this only frees memory) and giving freed memory back to the kernel
      // cost more than the build itself and wait for the tidy-up.
      if (st.cfg.server)
        st.cfg.server->publish(tbl, nullptr, false);
      ++st.publishes;
      NWD_LOG_DEBUG(who, "published table serial {} ({} names)", tbl->serial(),
                    tbl->size());
      if (!st.tidy_pending) {
        st.tidy_pending = true;
        self->delayed_send(self, tidy_delay, atom::tidy_v);
      }
    },
    [self](atom::tidy) {
      // A second after a publish (coalesced over bursts): the workers have
      // let go of the old table by now (a publish wakes each of them).
      auto& st = self->state;
      st.tidy_pending = false;
      if (st.cfg.server)
        st.cfg.server->sweep_cache();
      release_free_memory();
      ++st.tidies;
    },
    [self](atom::dynamic, std::string& name, std::vector<std::string>& ips) {
      auto& st = self->state;
      if (ips.empty())
        st.dynamic_names.erase(name);
      else
        st.dynamic_names[name] = std::move(ips);
      st.rebuild = true;
      schedule_publish(self);
    },
    [self](atom::webrouter, std::vector<std::string>& ips) {
      self->state.webrouter_ips = std::move(ips);
      self->state.rebuild = true;
      schedule_publish(self);
    },
    [self](atom::lookup, const std::string& name, const std::string& type) {
      return self->state.lookup(name, type);
    },
  };
}

} // namespace networkd
