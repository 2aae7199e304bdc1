// SPDX-License-Identifier: MIT
// Sockets and threads of the DNS server.
#include "dns/server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <charconv>
#include <cstring>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>

#include "dns/acl.hpp"
#include "dns/engine.hpp"
#include "dns/query_log.hpp"
#include "net/base/host_port.hpp"
#include "net/base/log.hpp"

namespace networkd::dns {

namespace {

constexpr const char* component = "dns-server";
constexpr size_t batch_size = 32;
/// How often open TCP connections are checked against their limits.
constexpr uint64_t sweep_every_ms = 200;
constexpr size_t udp_buffer = 4096; ///< largest query read over UDP
/// recvmmsg scatters each datagram over a small head, which holds nearly
/// every query, and a tail used only by larger ones: the tails' pages stay
/// untouched, so a worker's resident buffers are 16 KiB instead of 128 KiB.
constexpr size_t udp_head = 512;
constexpr size_t udp_tail = udp_buffer - udp_head;
/// Largest TCP input kept for a connection: one message of the largest
/// size and its length prefix. A full buffer always holds a whole query.
constexpr size_t tcp_input_cap = 2 + 65535;
/// The kernel's send buffer of a TCP connection (it doubles the value).
/// Without it the kernel grows it up to tcp_wmem's maximum (4 MiB) for a
/// client that does not read, before our own output cap is reached.
constexpr int tcp_kernel_sndbuf = 64 * 1024;
/// An emptied connection buffer larger than this gives its memory back.
constexpr size_t tcp_buffer_keep = 4096;

uint64_t steady_ms() {
  return static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now().time_since_epoch())
      .count());
}

/// The query log's name of how a query was answered.
const char* source_name(disposition d) {
  switch (d) {
    case disposition::local:
      return "local";
    case disposition::cached:
      return "cache";
    case disposition::refused:
      return "refused";
    case disposition::error:
      return "error";
    default:
      return "upstream";
  }
}

struct endpoint {
  sockaddr_storage addr{};
  socklen_t len = 0;
  std::string ip;
  uint16_t port = 0;
};

result<endpoint> parse_endpoint(const std::string& text) {
  auto hp = split_host_port(text);
  if (!hp)
    return make_failure("bad_option",
                        "listen address '" + text + "': " + hp.error().message);
  const auto& host = hp->host;
  int port = hp->port;
  auto addr = parse_ip(host);
  if (!addr)
    return make_failure("bad_option", "bad address in '" + text + "'");
  endpoint ep;
  ep.ip = to_string(*addr);
  ep.port = static_cast<uint16_t>(port);
  if (addr->family == AF_INET) {
    auto sin = reinterpret_cast<sockaddr_in*>(&ep.addr);
    sin->sin_family = AF_INET;
    sin->sin_port = htons(ep.port);
    std::memcpy(&sin->sin_addr, addr->bytes.data(), 4);
    ep.len = sizeof(sockaddr_in);
  } else {
    auto sin6 = reinterpret_cast<sockaddr_in6*>(&ep.addr);
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(ep.port);
    std::memcpy(&sin6->sin6_addr, addr->bytes.data(), 16);
    ep.len = sizeof(sockaddr_in6);
  }
  return ep;
}

/// Counters owned by one thread (relaxed atomics: one writer, readers in
/// stats()).
struct alignas(64) thread_counters {
  std::array<std::atomic<uint64_t>, 257> types{}; // [256] = other
  std::array<std::atomic<uint64_t>, 25> rcodes{}; // [24] = other
  std::atomic<uint64_t> queries{0}, local{0}, cached{0}, forwarded{0},
    refused{0}, errors{0}, dropped{0};
  /// Request durations by source: local, cache, upstream (server_stats).
  std::array<prom::duration_histogram, 3> durations;
  static void bump(std::atomic<uint64_t>& c) {
    c.store(c.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
  }
  void count_query(uint16_t qtype) {
    bump(queries);
    bump(types[qtype < 256 ? qtype : 256]);
  }
  void count_rcode(uint16_t rcode) { bump(rcodes[rcode < 24 ? rcode : 24]); }
  /// Counts a query; a local or cached answer's duration goes in with
  /// observe().
  void count(const query_result& r) {
    count_query(r.qtype);
    switch (r.what) {
      case disposition::local:
        bump(local);
        break;
      case disposition::cached:
        bump(cached);
        break;
      case disposition::error:
        bump(errors);
        break;
      case disposition::refused:
        bump(refused);
        break;
      case disposition::forward:
        bump(forwarded);
        break;
      case disposition::drop:
        bump(dropped);
        break;
    }
    if (r.what != disposition::forward && r.what != disposition::drop)
      count_rcode(r.rcode);
  }
  /// Records how long `n` local or cached answers took.
  void observe(disposition d, uint64_t ns, size_t n = 1) {
    if (d != disposition::local && d != disposition::cached)
      return;
    auto& h = durations[d == disposition::local ? 0 : 1];
    for (size_t i = 0; i < n; ++i)
      h.observe_single_writer(ns);
  }
};

int make_socket(const endpoint& ep, int type, bool reuseport,
                std::string& error) {
  int fd = ::socket(ep.addr.ss_family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    error = std::strerror(errno);
    return -1;
  }
  int one = 1;
  if (reuseport)
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof(one));
  if (type == SOCK_STREAM)
    ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (ep.addr.ss_family == AF_INET6)
    ::setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  if (::bind(fd, reinterpret_cast<const sockaddr*>(&ep.addr), ep.len) != 0) {
    error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  if (type == SOCK_STREAM && ::listen(fd, 128) != 0) {
    error = std::strerror(errno);
    ::close(fd);
    return -1;
  }
  return fd;
}

/// The address of a peer without its port: the key of the per-client cap.
std::string address_key(const sockaddr_storage& peer) {
  if (peer.ss_family == AF_INET) {
    auto sin = reinterpret_cast<const sockaddr_in*>(&peer);
    return std::string(reinterpret_cast<const char*>(&sin->sin_addr), 4);
  }
  auto sin6 = reinterpret_cast<const sockaddr_in6*>(&peer);
  return std::string(reinterpret_cast<const char*>(&sin6->sin6_addr), 16);
}

void release_if_empty(std::vector<uint8_t>& buf) {
  if (buf.empty() && buf.capacity() > tcp_buffer_keep)
    std::vector<uint8_t>{}.swap(buf);
}

void wake(int fd) {
  uint64_t one = 1;
  [[maybe_unused]] auto n = ::write(fd, &one, sizeof(one));
}

} // namespace

struct server::impl {
  server_options opts;
  std::vector<endpoint> endpoints;
  acl access;
  cache answers;
  forwarder fwd;
  std::shared_ptr<const table> tbl = table::build(table_input{});
  std::atomic<uint64_t> generation{0};
  std::atomic<bool> stopping{false};
  int stop_fd = -1;
  /// Written on each publish; every loop watches it edge-triggered (each
  /// write wakes each loop once; nobody reads it), so that an idle loop
  /// lets go of a replaced table at once instead of polling for it.
  int table_fd = -1;

  std::vector<std::vector<int>> udp_socks; // [worker][endpoint]
  std::vector<int> tcp_listeners;
  std::vector<std::thread> threads;
  std::deque<thread_counters> counters; // workers..., tcp, forwarder

  // TCP answers coming back from the forwarder.
  std::mutex tcp_mtx;
  std::vector<std::pair<uint64_t, std::vector<uint8_t>>> tcp_mailbox;
  int tcp_wake = -1;
  std::atomic<uint64_t> tcp_open{0}, tcp_rejected{0},
    tcp_rejected_per_client{0}, tcp_closed_idle{0}, tcp_closed_write_timeout{0},
    tcp_closed_output{0}, tcp_closed_lifetime{0}, tcp_out_bytes{0},
    tcp_out_peak{0};
  std::atomic<uint64_t> stale_answers{0}, prefetches{0};

  query_log qlog; ///< knob dns_log_queries

  explicit impl(const server_options& o)
      : opts(o), answers(o.cache), fwd(o.upstream) {}

  /// Logs a query answered at once, with the time handle_query took (a
  /// UDP batch's query: the time since the batch was read).
  void log_answer(const sockaddr* client, const query& q,
                  const query_result& r) {
    if (!qlog.on() || r.what == disposition::drop
        || r.what == disposition::forward)
      return;
    auto now = steady_ns();
    auto ns = r.duration_ns != 0 ? r.duration_ns : now - q.received_ns;
    qlog.write(client, q.qname, q.qtype, r.rcode, source_name(r.what),
               ns / 1000, now / 1000000);
  }

  /// With the query log on, `reply` logs the forwarded answer it sends,
  /// with the time since the query was read.
  std::function<void(std::vector<uint8_t>&&)>
  logged(const query& q, const sockaddr_storage& client,
         std::function<void(std::vector<uint8_t>&&)> reply) {
    if (!qlog.on())
      return reply;
    return [this, reply = std::move(reply), client, t0 = q.received_ns,
            name = q.qname, qtype = q.qtype](std::vector<uint8_t>&& bytes) {
      uint16_t rcode
        = bytes.size() > 3 ? bytes[3] & 0x0F : uint16_t{KNOT_RCODE_SERVFAIL};
      qlog.write(reinterpret_cast<const sockaddr*>(&client), name, qtype, rcode,
                 "upstream", (steady_ns() - t0) / 1000, steady_ms());
      reply(std::move(bytes));
    };
  }

  thread_counters& forwarder_counters() { return counters.back(); }
  /// Rcodes of forwarded and stale answers: written by the forwarder
  /// thread and (stale answers) by workers, hence fetch_add.
  void count_forwarded_rcode(const query& q, uint16_t rcode) {
    forwarder_counters().rcodes[rcode < 24 ? rcode : 24].fetch_add(
      1, std::memory_order_relaxed);
    forwarder_counters().durations[2].observe(steady_ns() - q.received_ns);
  }
  thread_counters& tcp_counters() { return counters[counters.size() - 2]; }

  std::vector<config::upstream>
  filter(const std::vector<config::upstream>& list) const {
    std::vector<config::upstream> out;
    for (auto& u : list) {
      auto addr = parse_ip(u.ip);
      if (!addr)
        continue;
      auto ip = to_string(*addr);
      bool ours = ip == "127.0.0.53";
      for (auto& ep : endpoints) {
        bool wildcard = ep.ip == "0.0.0.0" || ep.ip == "::";
        bool loopback
          = addr->family == AF_INET ? addr->bytes[0] == 127 : ip == "::1";
        bool same = ep.ip == ip || (wildcard && loopback);
        ours = ours || (ep.port == u.port && same);
      }
      if (!ours)
        out.push_back(config::upstream{ip, u.port});
    }
    return out;
  }

  /// Starts forwarding q; `reply` sends the finished response. Without
  /// `reply` (a prefetch) the answer only refreshes the cache.
  void forward(const query& q, const table& t,
               std::function<void(std::vector<uint8_t>&&)> reply) {
    auto servers = filter(t.upstreams_for(q.lower));
    auto key = q.cache_key();
    if (reply && fwd.all_failed(servers)) {
      // Every upstream failed its last exchange or probe: a stale answer
      // at once (RFC 8767's client response timer, taken as 0 when the
      // upstreams are known to be down); the query below still goes out
      // and refreshes the entry when an upstream is back.
      if (auto old = answers.find_fallback(key, steady_ms())) {
        send_fallback(q, *old, reply);
        reply = nullptr;
      }
    }
    auto wire = upstream_query(q, opts.max_udp_payload);
    fwd.submit(
      key, std::move(servers), std::move(wire),
      [this, q, key, reply = std::move(reply)](const upstream_answer& a) {
        auto now = steady_ms();
        std::shared_ptr<const cache_entry> e;
        if (a.ok)
          e = make_cache_entry(q.lower, q.qtype, q.qclass, a.wire.data(),
                               a.wire.size(), now, answers.options());
        if (!e || e->failure) {
          // Every upstream failed: the entry in the cache, live
          // (a failed prefetch) or expired (serve-stale), beats
          // SERVFAIL and stays cached instead of the failure.
          if (auto old = answers.find_fallback(key, now)) {
            if (reply)
              send_fallback(q, *old, reply);
            return;
          }
        }
        if (!e)
          e = make_failure_entry(q.lower, q.qtype, q.qclass, now,
                                 answers.options());
        if (!e)
          return;
        answers.put(key, e);
        if (!reply)
          return;
        std::vector<uint8_t> out;
        respond_from_entry(q, *e, now, opts.max_udp_payload, out);
        count_forwarded_rcode(q, e->rcode);
        reply(std::move(out));
      });
  }

  /// Answers from a cache entry after an upstream failure: a live one as
  /// usual, an expired one with TTL 30 (RFC 8767) and counted.
  void send_fallback(const query& q, const cache_entry& e,
                     const std::function<void(std::vector<uint8_t>&&)>& reply) {
    std::vector<uint8_t> out;
    auto now = steady_ms();
    bool stale = now >= e.expires_ms;
    respond_from_entry(q, e, now, opts.max_udp_payload, out, stale ? 30 : 0);
    if (stale)
      stale_answers.fetch_add(1, std::memory_order_relaxed);
    count_forwarded_rcode(q, e.rcode);
    reply(std::move(out));
  }

  /// Refreshes q's cache entry in the background (prefetch).
  void prefetch(const query& q, const table& t) {
    prefetches.fetch_add(1, std::memory_order_relaxed);
    forward(q, t, {});
  }

  // -- UDP ------------------------------------------------------------------

  void udp_worker(size_t index) {
    auto& socks = udp_socks[index];
    auto& ctr = counters[index];
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.fd = stop_fd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, stop_fd, &ev);
    ev.events = EPOLLIN | EPOLLET;
    ev.data.fd = table_fd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, table_fd, &ev);
    ev.events = EPOLLIN;
    for (int fd : socks) {
      ev.data.fd = fd;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    }
    std::vector<std::array<uint8_t, udp_head>> heads(batch_size);
    // Not value-initialised: zeroing would touch every page.
    std::unique_ptr<uint8_t[]> tails{new uint8_t[batch_size * udp_tail]};
    std::array<uint8_t, udp_buffer> joined; // a query longer than its head
    std::vector<sockaddr_storage> addrs(batch_size);
    std::vector<iovec> iov(2 * batch_size);
    std::vector<mmsghdr> msgs(batch_size);
    std::vector<std::vector<uint8_t>> outs(batch_size);
    std::vector<iovec> out_iov(batch_size);
    std::vector<mmsghdr> out_msgs(batch_size);
    std::shared_ptr<const table> snapshot = std::atomic_load(&tbl);
    uint64_t seen = generation.load(std::memory_order_acquire);
    uint32_t rotation = static_cast<uint32_t>(index * 7919);
    query q;
    epoll_event events[8];
    auto refresh = [&] {
      if (auto g = generation.load(std::memory_order_acquire); g != seen) {
        snapshot = std::atomic_load(&tbl);
        seen = g;
      }
    };
    // Answers one batch from fd; returns how many packets it read.
    auto serve_batch = [&](int fd) -> int {
      for (size_t i = 0; i < batch_size; ++i) {
        iov[2 * i] = iovec{heads[i].data(), udp_head};
        iov[2 * i + 1] = iovec{tails.get() + i * udp_tail, udp_tail};
        std::memset(&msgs[i], 0, sizeof(mmsghdr));
        msgs[i].msg_hdr.msg_name = &addrs[i];
        msgs[i].msg_hdr.msg_namelen = sizeof(sockaddr_storage);
        msgs[i].msg_hdr.msg_iov = &iov[2 * i];
        msgs[i].msg_hdr.msg_iovlen = 2;
      }
      int got = ::recvmmsg(fd, msgs.data(), batch_size, MSG_DONTWAIT, nullptr);
      if (got <= 0)
        return 0;
      refresh();
      query_env env;
      env.tbl = snapshot.get();
      env.answers = &answers;
      // One clock read for the batch: every query in it arrived then.
      env.received_ns = steady_ns();
      env.now_ms = env.received_ns / 1000000;
      env.via = transport::udp;
      env.max_udp_payload = opts.max_udp_payload;
      size_t replies = 0;
      size_t local_answers = 0;
      size_t cached_answers = 0;
      for (int i = 0; i < got; ++i) {
        auto sa = reinterpret_cast<const sockaddr*>(&addrs[i]);
        if (msgs[i].msg_hdr.msg_flags & MSG_TRUNC) {
          thread_counters::bump(ctr.dropped);
          continue;
        }
        env.client_allowed = access.allows(sa);
        env.rotation = rotation++;
        auto& out = outs[replies];
        const uint8_t* data = heads[i].data();
        size_t len = msgs[i].msg_len;
        if (len > udp_head) {
          std::memcpy(joined.data(), heads[i].data(), udp_head);
          std::memcpy(joined.data() + udp_head, tails.get() + i * udp_tail,
                      len - udp_head);
          data = joined.data();
        }
        auto r = handle_query(data, len, env, q, out);
        ctr.count(r);
        local_answers += r.what == disposition::local;
        cached_answers += r.what == disposition::cached;
        log_answer(sa, q, r);
        if (r.prefetch)
          prefetch(q, *snapshot);
        if (r.what == disposition::forward) {
          auto client = addrs[i];
          auto client_len = msgs[i].msg_hdr.msg_namelen;
          forward(
            q, *snapshot,
            logged(q, client,
                   [fd, client, client_len](std::vector<uint8_t>&& bytes) {
                     ::sendto(fd, bytes.data(), bytes.size(), MSG_DONTWAIT,
                              reinterpret_cast<const sockaddr*>(&client),
                              client_len);
                   }));
          continue;
        }
        if (out.empty())
          continue;
        out_iov[replies] = iovec{out.data(), out.size()};
        std::memset(&out_msgs[replies], 0, sizeof(mmsghdr));
        out_msgs[replies].msg_hdr.msg_name = &addrs[i];
        out_msgs[replies].msg_hdr.msg_namelen = msgs[i].msg_hdr.msg_namelen;
        out_msgs[replies].msg_hdr.msg_iov = &out_iov[replies];
        out_msgs[replies].msg_hdr.msg_iovlen = 1;
        ++replies;
      }
      size_t done = 0;
      while (done < replies) {
        int sent
          = ::sendmmsg(fd, out_msgs.data() + done,
                       static_cast<unsigned>(replies - done), MSG_DONTWAIT);
        if (sent <= 0) {
          ++done; // skip the one that failed (e.g. ICMP error pending)
          continue;
        }
        done += static_cast<size_t>(sent);
      }
      // And one when its answers are out: their durations (a histogram's
      // resolution needs no more).
      if (local_answers + cached_answers > 0) {
        auto took = steady_ns() - env.received_ns;
        ctr.observe(disposition::local, took, local_answers);
        ctr.observe(disposition::cached, took, cached_answers);
      }
      return got;
    };
    while (!stopping.load(std::memory_order_relaxed)) {
      int n = ::epoll_wait(ep, events, 8, -1);
      for (int e = 0; e < n; ++e) {
        int fd = events[e].data.fd;
        if (fd == stop_fd)
          continue;
        if (fd == table_fd) {
          refresh(); // also without queries: let go of a replaced table
          continue;
        }
        // A full batch means more is probably waiting: read again without
        // another epoll_wait, a few times, then give the other sockets a
        // turn (epoll is level-triggered).
        for (int round = 0; round < 4; ++round)
          if (serve_batch(fd) < static_cast<int>(batch_size))
            break;
      }
    }
    ::close(ep);
  }

  // -- TCP ------------------------------------------------------------------

  struct connection {
    int fd = -1;
    uint64_t id = 0;
    std::string client;       ///< source address, key of the per-client cap
    std::vector<uint8_t> in;  ///< at most tcp_input_cap bytes
    std::vector<uint8_t> out; ///< answers the kernel has not taken yet
    uint64_t opened_ms = 0;
    uint64_t last_active_ms = 0; ///< last complete query or forwarded answer
    uint64_t last_sent_ms = 0;   ///< output last moved, or began to wait
    size_t pending = 0;          ///< queries at the forwarder
    uint32_t events = 0;         ///< epoll interest now
    bool eof = false;
    bool draining = false; ///< past its lifetime: no new queries
    sockaddr_storage peer{};
  };

  void tcp_thread() {
    auto& ctr = tcp_counters();
    int ep = ::epoll_create1(EPOLL_CLOEXEC);
    // data.u64: 0 = stop or a new table, 1 = mailbox, 2.. = listeners,
    // then conn ids.
    auto add = [&](int fd, uint64_t tag, uint32_t events) {
      epoll_event ev{};
      ev.events = events;
      ev.data.u64 = tag;
      ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
    };
    add(stop_fd, 0, EPOLLIN);
    add(table_fd, 0, EPOLLIN | EPOLLET);
    add(tcp_wake, 1, EPOLLIN);
    const uint64_t first_conn = 2 + tcp_listeners.size();
    for (size_t i = 0; i < tcp_listeners.size(); ++i)
      add(tcp_listeners[i], 2 + i, EPOLLIN);
    std::unordered_map<uint64_t, connection> conns;
    std::unordered_map<std::string, size_t> per_client;
    size_t total_out = 0; // sum of every connection's out.size()
    size_t peak_out = 0;
    uint64_t next_id = first_conn;
    std::shared_ptr<const table> snapshot = std::atomic_load(&tbl);
    uint64_t seen = generation.load(std::memory_order_acquire);
    uint32_t rotation = 0;
    query q;
    std::vector<uint8_t> out;

    auto close_conn = [&](uint64_t id) {
      auto i = conns.find(id);
      if (i == conns.end())
        return;
      auto& c = i->second;
      ::epoll_ctl(ep, EPOLL_CTL_DEL, c.fd, nullptr);
      ::close(c.fd);
      total_out -= c.out.size();
      if (--per_client[c.client] == 0)
        per_client.erase(c.client);
      conns.erase(i);
      tcp_open = conns.size();
    };
    // True while c may start another query.
    auto can_take = [&](const connection& c) {
      return !c.draining && c.out.size() < opts.tcp_output_cap
             && c.pending < opts.tcp_max_inflight;
    };
    auto wants_input = [&](const connection& c) {
      return !c.eof && can_take(c) && c.in.size() < tcp_input_cap;
    };
    // Nothing left to do: the client is done (or c is past its lifetime)
    // and every answer is out.
    auto finished = [](const connection& c) {
      return (c.eof || c.draining) && c.pending == 0 && c.out.empty();
    };
    auto set_interest = [&](connection& c) {
      uint32_t want
        = (wants_input(c) ? EPOLLIN : 0u) | (c.out.empty() ? 0u : EPOLLOUT);
      if (want == c.events)
        return;
      epoll_event ev{};
      ev.events = want;
      ev.data.u64 = c.id;
      ::epoll_ctl(ep, EPOLL_CTL_MOD, c.fd, &ev);
      c.events = want;
    };
    auto flush = [&](connection& c) {
      size_t sent = 0;
      while (sent < c.out.size()) {
        auto n = ::send(c.fd, c.out.data() + sent, c.out.size() - sent,
                        MSG_NOSIGNAL | MSG_DONTWAIT);
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          return false;
        }
        sent += static_cast<size_t>(n);
      }
      if (sent > 0) {
        c.out.erase(c.out.begin(), c.out.begin() + static_cast<long>(sent));
        total_out -= sent;
        c.last_sent_ms = steady_ms();
      }
      release_if_empty(c.out);
      return true;
    };
    auto queue = [&](connection& c, const std::vector<uint8_t>& msg) {
      if (c.out.empty())
        c.last_sent_ms = steady_ms();
      c.out.push_back(static_cast<uint8_t>(msg.size() >> 8));
      c.out.push_back(static_cast<uint8_t>(msg.size() & 0xff));
      c.out.insert(c.out.end(), msg.begin(), msg.end());
      total_out += 2 + msg.size();
      if (c.out.size() > peak_out) {
        peak_out = c.out.size();
        tcp_out_peak = peak_out;
      }
    };
    auto refresh = [&] {
      if (auto g = generation.load(std::memory_order_acquire); g != seen) {
        snapshot = std::atomic_load(&tbl);
        seen = g;
      }
    };
    auto handle = [&](connection& c, const uint8_t* data, size_t len) {
      refresh();
      query_env env;
      env.tbl = snapshot.get();
      env.answers = &answers;
      env.now_ms = steady_ms();
      env.via = transport::tcp;
      env.max_udp_payload = opts.max_udp_payload;
      env.client_allowed
        = access.allows(reinterpret_cast<const sockaddr*>(&c.peer));
      env.rotation = rotation++;
      auto r = handle_query(data, len, env, q, out);
      ctr.count(r);
      ctr.observe(r.what, r.duration_ns);
      log_answer(reinterpret_cast<const sockaddr*>(&c.peer), q, r);
      if (r.prefetch)
        prefetch(q, *snapshot);
      if (r.what == disposition::forward) {
        ++c.pending;
        auto id = c.id;
        forward(q, *snapshot,
                logged(q, c.peer, [this, id](std::vector<uint8_t>&& bytes) {
                  {
                    std::lock_guard<std::mutex> guard{tcp_mtx};
                    tcp_mailbox.emplace_back(id, std::move(bytes));
                  }
                  wake(tcp_wake);
                }));
      } else if (!out.empty()) {
        queue(c, out);
      }
    };
    // Answers the complete queries in c.in while c may take more.
    auto process = [&](connection& c) {
      size_t pos = 0;
      while (can_take(c) && c.in.size() - pos >= 2) {
        size_t len = (size_t{c.in[pos]} << 8) | c.in[pos + 1];
        if (c.in.size() - pos - 2 < len)
          break;
        handle(c, c.in.data() + pos + 2, len);
        pos += 2 + len;
      }
      if (pos == 0)
        return;
      c.last_active_ms = steady_ms();
      c.in.erase(c.in.begin(), c.in.begin() + static_cast<long>(pos));
      release_if_empty(c.in);
    };
    auto on_readable = [&](connection& c) {
      uint8_t buf[16384];
      // A few rounds, then the other connections get a turn (epoll is
      // level-triggered).
      for (int round = 0; round < 4 && wants_input(c); ++round) {
        size_t room = std::min(sizeof(buf), tcp_input_cap - c.in.size());
        auto n = ::recv(c.fd, buf, room, MSG_DONTWAIT);
        if (n == 0) {
          c.eof = true;
          break;
        }
        if (n < 0) {
          if (errno == EAGAIN || errno == EWOULDBLOCK)
            break;
          return false;
        }
        c.in.insert(c.in.end(), buf, buf + n);
        process(c);
        if (static_cast<size_t>(n) < room)
          break;
      }
      return true;
    };
    auto has_query = [](const connection& c) {
      return c.in.size() >= 2
             && c.in.size() - 2 >= ((size_t{c.in[0]} << 8) | c.in[1]);
    };
    // Sends what it can and answers the queries that waited for that (at
    // most tcp_input_cap bytes of them); reads on only while c is under its
    // limits. False on a socket error.
    auto advance = [&](connection& c) {
      for (;;) {
        if (!flush(c))
          return false;
        if (!can_take(c) || !has_query(c))
          break;
        process(c);
      }
      set_interest(c);
      return true;
    };
    // Over the total output cap: the connection with the most queued goes.
    auto enforce_total = [&] {
      while (total_out > opts.tcp_total_output_cap && !conns.empty()) {
        auto worst = std::max_element(
          conns.begin(), conns.end(), [](const auto& a, const auto& b) {
            return a.second.out.size() < b.second.out.size();
          });
        ++tcp_closed_output;
        NWD_LOG_DEBUG(component,
                      "tcp: closing a connection with {} bytes "
                      "queued: all connections hold {}",
                      worst->second.out.size(), total_out);
        close_conn(worst->first);
      }
      tcp_out_bytes = total_out;
    };
    auto accept_all = [&](int lfd) {
      for (;;) {
        sockaddr_storage peer{};
        socklen_t plen = sizeof(peer);
        int fd = ::accept4(lfd, reinterpret_cast<sockaddr*>(&peer), &plen,
                           SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0)
          break;
        auto client = address_key(peer);
        auto same = per_client.find(client);
        if (conns.size() >= opts.max_tcp_connections) {
          ++tcp_rejected; // before the client can see the close
          ::close(fd);
          continue;
        }
        if (same != per_client.end()
            && same->second >= opts.max_tcp_per_client) {
          ++tcp_rejected_per_client; // before the client can see the close
          ::close(fd);
          continue;
        }
        int one = 1;
        ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        int sndbuf = tcp_kernel_sndbuf;
        ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
        auto id = next_id++;
        auto& c = conns[id];
        c.fd = fd;
        c.id = id;
        c.client = std::move(client);
        c.peer = peer;
        c.opened_ms = c.last_active_ms = steady_ms();
        c.events = EPOLLIN;
        add(fd, id, EPOLLIN);
        ++per_client[c.client];
        tcp_open = conns.size();
      }
    };
    // Idle, stuck and old connections.
    auto sweep = [&](uint64_t now) {
      auto idle = static_cast<uint64_t>(opts.tcp_idle_timeout.count());
      auto write = static_cast<uint64_t>(opts.tcp_write_timeout.count());
      auto lifetime = static_cast<uint64_t>(opts.tcp_max_lifetime.count());
      std::vector<uint64_t> expired;
      for (auto& [id, c] : conns) {
        auto quiet = now - c.last_active_ms;
        if (!c.out.empty() && now - c.last_sent_ms >= write) {
          ++tcp_closed_write_timeout;
          expired.push_back(id);
        } else if (quiet >= idle && (c.pending == 0 || quiet >= 4 * idle)) {
          ++tcp_closed_idle;
          expired.push_back(id);
        } else if (!c.draining && now - c.opened_ms >= lifetime) {
          ++tcp_closed_lifetime;
          c.draining = true;
          set_interest(c);
          if (finished(c))
            expired.push_back(id);
        }
      }
      for (auto id : expired)
        close_conn(id);
      tcp_out_bytes = total_out;
    };

    epoll_event events[64];
    uint64_t last_sweep = steady_ms();
    while (!stopping.load(std::memory_order_relaxed)) {
      // Without connections nothing is due: asleep until an event.
      int wait_ms = -1;
      if (!conns.empty()) {
        auto since = steady_ms() - last_sweep;
        wait_ms = since >= sweep_every_ms
                    ? 0
                    : static_cast<int>(sweep_every_ms - since);
      }
      int n = ::epoll_wait(ep, events, 64, wait_ms);
      refresh(); // also without queries: let go of a replaced table
      for (int e = 0; e < n; ++e) {
        uint64_t tag = events[e].data.u64;
        if (tag == 0)
          continue;
        if (tag == 1) {
          uint64_t v;
          [[maybe_unused]] auto rd = ::read(tcp_wake, &v, sizeof(v));
          std::vector<std::pair<uint64_t, std::vector<uint8_t>>> batch;
          {
            std::lock_guard<std::mutex> guard{tcp_mtx};
            batch.swap(tcp_mailbox);
          }
          for (auto& [id, bytes] : batch) {
            auto i = conns.find(id);
            if (i == conns.end())
              continue;
            auto& c = i->second;
            if (c.pending > 0)
              --c.pending;
            c.last_active_ms = steady_ms();
            queue(c, bytes);
            if (!advance(c) || finished(c))
              close_conn(id);
          }
          continue;
        }
        if (tag < first_conn) {
          accept_all(tcp_listeners[tag - 2]);
          continue;
        }
        auto i = conns.find(tag);
        if (i == conns.end())
          continue;
        auto& c = i->second;
        auto got = events[e].events;
        bool ok = true;
        if (got & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
          // A peer that is gone while we do not read from it: nobody
          // would take its answers.
          ok = wants_input(c) ? on_readable(c) : !(got & (EPOLLHUP | EPOLLERR));
        }
        if (!ok || !advance(c) || finished(c))
          close_conn(tag);
      }
      enforce_total();
      auto now = steady_ms();
      if (now - last_sweep >= sweep_every_ms) {
        last_sweep = now;
        sweep(now);
      }
    }
    for (auto& [id, c] : conns)
      ::close(c.fd);
    conns.clear();
    tcp_open = 0;
    tcp_out_bytes = 0;
    ::close(ep);
  }

  void close_all() {
    for (auto& socks : udp_socks)
      for (int fd : socks)
        ::close(fd);
    udp_socks.clear();
    for (int fd : tcp_listeners)
      ::close(fd);
    tcp_listeners.clear();
    for (int fd : {stop_fd, table_fd, tcp_wake})
      if (fd >= 0)
        ::close(fd);
    stop_fd = table_fd = tcp_wake = -1;
  }
};

server::server(server_options opts) : opts_(std::move(opts)) {}

server::~server() {
  stop();
}

result<unit> server::start() {
  if (impl_)
    return make_failure("io", "already started");
  auto p = std::make_unique<impl>(opts_);
  std::vector<cidr> nets;
  for (auto& text : opts_.allowed_networks) {
    auto c = parse_cidr(text);
    if (!c)
      return make_failure("bad_option", c.error().message);
    nets.push_back(*c);
  }
  p->access = acl{std::move(nets), opts_.allow_loopback};
  if (opts_.listen.empty())
    return make_failure("bad_option", "no listen address");
  for (auto& text : opts_.listen) {
    auto ep = parse_endpoint(text);
    if (!ep)
      return ep.error();
    p->endpoints.push_back(*ep);
  }
  unsigned workers = opts_.workers;
  if (workers == 0)
    workers = std::max(1u, std::thread::hardware_concurrency());
  p->stop_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  p->tcp_wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  p->table_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (p->stop_fd < 0 || p->tcp_wake < 0 || p->table_fd < 0) {
    p->close_all();
    return make_failure("io", std::string("eventfd: ") + std::strerror(errno));
  }
  // TCP listeners first, without SO_REUSEPORT: a port that is in use (by
  // anyone, including another networkd) fails here.
  std::string error;
  for (auto& ep : p->endpoints) {
    int fd = make_socket(ep, SOCK_STREAM, false, error);
    if (fd < 0) {
      p->close_all();
      return make_failure("bind", "tcp " + ep.ip + ":" + std::to_string(ep.port)
                                    + ": " + error);
    }
    p->tcp_listeners.push_back(fd);
  }
  for (unsigned w = 0; w < workers; ++w) {
    p->udp_socks.emplace_back();
    for (auto& ep : p->endpoints) {
      int fd = make_socket(ep, SOCK_DGRAM, true, error);
      if (fd < 0) {
        p->close_all();
        return make_failure("bind", "udp " + ep.ip + ":"
                                      + std::to_string(ep.port) + ": " + error);
      }
      p->udp_socks.back().push_back(fd);
    }
  }
  if (auto r = p->fwd.start(); !r) {
    p->close_all();
    return r.error();
  }
  for (unsigned w = 0; w < workers + 2; ++w)
    p->counters.emplace_back();
  if (initial_)
    p->tbl = initial_;
  impl_ = std::move(p);
  for (unsigned w = 0; w < workers; ++w)
    impl_->threads.emplace_back([this, w] { impl_->udp_worker(w); });
  impl_->threads.emplace_back([this] { impl_->tcp_thread(); });
  std::string where;
  for (auto& ep : impl_->endpoints)
    where += " " + ep.ip + ":" + std::to_string(ep.port);
  NWD_LOG_INFO(component, "listening on{} with {} workers", where, workers);
  return unit{};
}

void server::stop() {
  if (!impl_)
    return;
  impl_->stopping = true;
  wake(impl_->stop_fd);
  for (auto& t : impl_->threads)
    t.join();
  impl_->threads.clear();
  // Last: its callbacks may still send on the UDP sockets.
  impl_->fwd.stop();
  impl_->close_all();
  impl_.reset();
}

void server::publish(std::shared_ptr<const table> t,
                     std::function<void()> after_free, bool sweep) {
  if (!t)
    return;
  if (after_free) {
    // Every thread shares this pointer; its deleter runs on whichever lets
    // go of the table last.
    const table* raw = t.get();
    t = std::shared_ptr<const table>(
      raw, [held = std::move(t),
            after_free = std::move(after_free)](const table*) mutable {
        held.reset();
        after_free();
      });
  }
  if (!impl_) {
    initial_ = std::move(t);
    return;
  }
  std::atomic_store(&impl_->tbl, t);
  impl_->generation.fetch_add(1, std::memory_order_acq_rel);
  wake(impl_->table_fd);
  if (sweep)
    sweep_cache();
}

size_t server::sweep_cache() {
  auto t = current();
  if (!t)
    return 0;
  auto dropped = impl_->answers.drop_if(
    [&t](std::string_view name) { return t->is_local(name); });
  if (dropped > 0)
    NWD_LOG_DEBUG(component, "dropped {} cached answers for local names",
                  dropped);
  return dropped;
}

std::shared_ptr<const table> server::current() const {
  if (!impl_)
    return nullptr;
  return std::atomic_load(&impl_->tbl);
}

std::string server::config_text() const {
  auto t = current();
  return t ? t->config_text() : std::string{};
}

std::vector<config::upstream>
server::upstreams_for(std::string_view name) const {
  auto t = current();
  if (!t)
    return {};
  return impl_->filter(t->upstreams_for(wire_name(name)));
}

server::forward_view server::forward_view_of(std::string_view lower_wire,
                                             uint16_t qtype) const {
  forward_view v;
  auto t = current();
  if (!impl_ || !t)
    return v;
  v.order = impl_->fwd.order(impl_->filter(t->upstreams_for(lower_wire)));
  v.cached = impl_->answers.peek(
    cache_key(lower_wire, qtype, KNOT_CLASS_IN, false, false));
  v.now_ms = steady_ms();
  v.serve_stale_s = impl_->answers.options().serve_stale_s;
  return v;
}

void server::tune(const config::dns_knobs& k) {
  if (!impl_) { // before start(): the options it will start with
    opts_.cache.capacity = static_cast<size_t>(k.cache_size);
    opts_.cache.min_ttl = k.min_ttl;
    opts_.cache.max_ttl = k.max_ttl;
    opts_.cache.max_negative_ttl = k.neg_ttl_max;
    opts_.cache.serve_stale_s = k.serve_stale_s;
    opts_.upstream.timeout_ms = static_cast<int>(k.upstream_timeout.count());
    return;
  }
  impl_->qlog.set_rate(k.log_queries);
  impl_->answers.set_serve_stale(k.serve_stale_s);
  impl_->answers.tune(static_cast<size_t>(k.cache_size), k.min_ttl, k.max_ttl,
                      k.neg_ttl_max);
  impl_->fwd.set_timeout(static_cast<int>(k.upstream_timeout.count()));
}

cache_options server::cache_settings() const {
  return impl_ ? impl_->answers.options() : opts_.cache;
}

std::vector<forwarder::upstream_health> server::upstream_health() const {
  return impl_ ? impl_->fwd.health()
               : std::vector<forwarder::upstream_health>{};
}

int server::upstream_timeout_ms() const {
  return impl_ ? impl_->fwd.timeout() : opts_.upstream.timeout_ms;
}

server_stats server::stats() const {
  server_stats s;
  if (!impl_)
    return s;
  std::array<uint64_t, 257> types{};
  std::array<uint64_t, 25> rcodes{};
  for (auto& c : impl_->counters) {
    s.queries += c.queries.load(std::memory_order_relaxed);
    s.local += c.local.load(std::memory_order_relaxed);
    s.cached += c.cached.load(std::memory_order_relaxed);
    s.forwarded += c.forwarded.load(std::memory_order_relaxed);
    s.refused += c.refused.load(std::memory_order_relaxed);
    s.errors += c.errors.load(std::memory_order_relaxed);
    s.dropped += c.dropped.load(std::memory_order_relaxed);
    for (size_t i = 0; i < types.size(); ++i)
      types[i] += c.types[i].load(std::memory_order_relaxed);
    for (size_t i = 0; i < rcodes.size(); ++i)
      rcodes[i] += c.rcodes[i].load(std::memory_order_relaxed);
    for (size_t i = 0; i < s.durations.size(); ++i)
      s.durations[i] += c.durations[i].counts();
  }
  for (size_t i = 0; i < types.size(); ++i)
    if (types[i] > 0)
      s.by_type[i == 256 ? "OTHER" : type_name(static_cast<uint16_t>(i))]
        += types[i];
  for (size_t i = 0; i < rcodes.size(); ++i)
    if (rcodes[i] > 0)
      s.by_rcode[i == 24 ? "OTHER" : rcode_name(static_cast<uint16_t>(i))]
        += rcodes[i];
  s.stale = impl_->stale_answers.load(std::memory_order_relaxed);
  s.prefetches = impl_->prefetches.load(std::memory_order_relaxed);
  s.cache_stats = impl_->answers.stats();
  s.upstream = impl_->fwd.stats();
  s.tcp_connections = impl_->tcp_open.load();
  s.tcp_rejected = impl_->tcp_rejected.load();
  s.tcp_rejected_per_client = impl_->tcp_rejected_per_client.load();
  s.tcp_closed_idle = impl_->tcp_closed_idle.load();
  s.tcp_closed_write_timeout = impl_->tcp_closed_write_timeout.load();
  s.tcp_closed_output = impl_->tcp_closed_output.load();
  s.tcp_closed_lifetime = impl_->tcp_closed_lifetime.load();
  s.tcp_output_bytes = impl_->tcp_out_bytes.load();
  s.tcp_output_peak = impl_->tcp_out_peak.load();
  return s;
}

} // namespace networkd::dns
