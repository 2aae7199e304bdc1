// SPDX-License-Identifier: MIT
// The forwarder thread: a socket per UDP try, c-ares for TCP retries, the
// health of every upstream (see forwarder.hpp).
#include "dns/forwarder.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <set>
#include <unordered_map>

#include "net/base/log.hpp"

namespace networkd::dns {

namespace {

constexpr const char* component = "dns-forwarder";
/// unbound's UNKNOWN_SERVER_NICENESS: the RTT assumed for a server that
/// never answered.
constexpr uint64_t unknown_rtt_us = 376000;
/// Servers not used by any query for this long are forgotten (and no
/// longer probed).
constexpr uint64_t forget_after_us = 600ull * 1000 * 1000;
/// How often idle TCP channels to upstreams are looked at, while any exist.
constexpr uint64_t reap_every_us = 10ull * 1000 * 1000;
constexpr uint16_t rcode_servfail = 2, rcode_notimp = 4, rcode_refused = 5;

uint64_t now_us() {
  return static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now().time_since_epoch())
      .count());
}

std::string server_id(const config::upstream& s) {
  return s.ip + "#" + std::to_string(s.port);
}

std::string servers_text(const std::vector<config::upstream>& servers) {
  std::string out;
  for (auto& s : servers)
    out += server_id(s) + ",";
  return out;
}

/// Random 16-bit query IDs from getrandom(2), fetched in blocks.
class id_source {
public:
  uint16_t next() {
    if (used_ == pool_.size()) {
      size_t got = 0;
      while (got < sizeof(pool_)) {
        auto n = ::getrandom(reinterpret_cast<char*>(pool_.data()) + got,
                             sizeof(pool_) - got, 0);
        if (n <= 0)
          break;
        got += static_cast<size_t>(n);
      }
      used_ = 0;
    }
    return pool_[used_++];
  }

private:
  std::array<uint16_t, 256> pool_{};
  size_t used_ = pool_.size();
};

/// End of the question of a DNS message (uncompressed name, type, class),
/// or 0 when malformed.
size_t question_end(const uint8_t* m, size_t len) {
  size_t pos = 12;
  while (pos < len) {
    uint8_t l = m[pos];
    if (l == 0) {
      pos += 1;
      return pos + 4 <= len ? pos + 4 : 0;
    }
    if (l & 0xc0)
      return 0;
    pos += 1 + l;
  }
  return 0;
}

uint8_t lower(uint8_t c) {
  return c >= 'A' && c <= 'Z' ? static_cast<uint8_t>(c + 32) : c;
}

enum class match { no, exact, other_case };

/// Whether `a` is a response to the query `q`: same ID, QR, opcode, one
/// question equal to q's; `other_case` when the name differs in case only.
match answers_query(const std::vector<uint8_t>& q, const uint8_t* a,
                    size_t alen) {
  if (alen < 12 || q.size() < 12 || a[0] != q[0] || a[1] != q[1])
    return match::no;
  if (!(a[2] & 0x80) || ((a[2] >> 3) & 0xf) != ((q[2] >> 3) & 0xf))
    return match::no;
  if (a[4] != 0 || a[5] != 1)
    return match::no;
  auto qend = question_end(q.data(), q.size());
  if (qend == 0 || question_end(a, alen) != qend)
    return match::no;
  bool exact = true;
  for (size_t i = 12; i < qend; ++i) {
    if (lower(a[i]) != lower(q[i]))
      return match::no;
    exact = exact && a[i] == q[i];
  }
  return exact ? match::exact : match::other_case;
}

/// 0x20: gives every letter of the question name a random case (the name
/// is lower-case before). True when some letter became upper-case.
bool randomise_case(std::vector<uint8_t>& q, id_source& random) {
  auto qend = question_end(q.data(), q.size());
  if (qend == 0)
    return false;
  bool changed = false;
  uint16_t bits = 0;
  int left = 0;
  for (size_t i = 12; i + 4 < qend;) {
    size_t len = q[i++];
    for (size_t k = 0; k < len; ++k, ++i) {
      q[i] = lower(q[i]);
      if (q[i] < 'a' || q[i] > 'z')
        continue;
      if (left == 0) {
        bits = random.next();
        left = 16;
      }
      if (bits & 1) {
        q[i] = static_cast<uint8_t>(q[i] - 32);
        changed = true;
      }
      bits >>= 1;
      --left;
    }
  }
  return changed;
}

/// Back to the lower-case name (0x20 off for the next try).
void lower_case(std::vector<uint8_t>& q) {
  auto qend = question_end(q.data(), q.size());
  for (size_t i = 12; qend != 0 && i + 4 < qend; ++i)
    q[i] = lower(q[i]); // length bytes are < 64: unchanged
}

/// The probe question: ". IN NS", RD, ID set later.
std::vector<uint8_t> probe_query() {
  return {0, 0, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 2, 0, 1};
}

bool to_sockaddr(const config::upstream& s, sockaddr_storage& ss,
                 socklen_t& len) {
  std::memset(&ss, 0, sizeof(ss));
  auto sin = reinterpret_cast<sockaddr_in*>(&ss);
  auto sin6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, s.ip.c_str(), &sin->sin_addr) == 1) {
    sin->sin_family = AF_INET;
    sin->sin_port = htons(s.port);
    len = sizeof(sockaddr_in);
    return true;
  }
  if (inet_pton(AF_INET6, s.ip.c_str(), &sin6->sin6_addr) == 1) {
    sin6->sin6_family = AF_INET6;
    sin6->sin6_port = htons(s.port);
    len = sizeof(sockaddr_in6);
    return true;
  }
  return false;
}

} // namespace

struct forwarder::impl {
  struct request {
    std::string key;
    std::vector<config::upstream> servers;
    std::vector<uint8_t> wire;
    callback done;
  };
  /// The health of one upstream ("infrastructure cache" entry).
  struct health_entry {
    uint64_t srtt_us = 0; ///< 0: never answered
    uint32_t failures = 0;
    uint64_t backoff_us = 0;
    uint64_t probe_at_us = 0; ///< next probe, while failures > 0
    bool probing = false;
    uint64_t last_used_us = 0;
    uint64_t answers = 0, timeouts = 0;
    /// Answers by rcode (the header's 4 bits), for /metrics.
    std::array<uint64_t, 16> rcodes{};
    /// 0x20: whether its answers keep the question's case. Unknown until
    /// an answer shows it; a probe answer makes it unknown again.
    enum class caps_state : uint8_t { unknown, keeps, lowers } caps =
      caps_state::unknown;
    config::upstream server;
  };
  using caps_state = health_entry::caps_state;
  /// One upstream exchange: the tries of one question over the servers.
  struct exchange {
    uint64_t serial = 0;
    std::string key;                     ///< in_flight key; empty for probes
    std::vector<config::upstream> order; ///< servers in the order tried
    std::vector<uint8_t> wire;
    std::vector<callback> waiters;
    uint64_t started_us = 0;
    int base_timeout_ms = 0;
    size_t round = 0, next = 0; ///< the next try
    // The try in progress.
    int fd = -1;
    size_t server = 0; ///< index in order
    uint64_t sent_us = 0;
    uint64_t deadline_us = 0;
    bool tcp = false;        ///< at c-ares
    bool mixed_case = false; ///< this try's name has 0x20 upper-case
    std::string error;
    bool probe = false;
  };
  struct tcp_ctx {
    impl* self;
    uint64_t serial;
  };

  forwarder_options opts;
  int wake_fd = -1;
  int epfd = -1;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::mutex mtx;
  std::vector<request> mailbox;
  std::atomic<int> timeout_ms{0};
  // Health: written by the forwarder thread, read by all_failed().
  mutable std::mutex health_mtx;
  std::unordered_map<std::string, health_entry> infra;
  // Owned by the forwarder thread.
  id_source ids;
  uint64_t next_serial = 1; // 0 is the wake fd's tag in epoll
  std::unordered_map<uint64_t, exchange> exchanges;
  std::unordered_map<std::string, uint64_t> in_flight; ///< key -> serial
  std::set<std::pair<uint64_t, uint64_t>> deadlines;   ///< (when, serial)
  /// TCP channels by "server|timeout".
  std::map<std::string, ares_channel> tcp_channels;
  std::atomic<uint64_t> sent{0}, coalesced{0}, answered{0}, failed{0},
    refused{0}, latency_sum{0}, mismatched{0}, probes{0}, tcp_retries{0};

  // -- health -----------------------------------------------------------

  /// The servers in the order to try them; `use` marks them as used
  /// (their health is kept while they are).
  std::vector<config::upstream>
  rank(const std::vector<config::upstream>& servers, bool use) {
    std::lock_guard<std::mutex> guard{health_mtx};
    auto now = now_us();
    std::vector<std::pair<uint64_t, size_t>> score(servers.size());
    for (size_t i = 0; i < servers.size(); ++i) {
      health_entry none;
      auto* h = &none;
      if (use) {
        h = &infra[server_id(servers[i])];
        h->server = servers[i];
        h->last_used_us = now;
      } else if (auto f = infra.find(server_id(servers[i])); f != infra.end()) {
        h = &f->second;
      }
      // Failed servers after every healthy one, in configured order.
      uint64_t s = h->failures > 0   ? (uint64_t{1} << 62) + i
                   : h->srtt_us == 0 ? unknown_rtt_us
                                     : h->srtt_us;
      score[i] = {s, i};
    }
    std::stable_sort(score.begin(), score.end(),
                     [](auto& a, auto& b) { return a.first < b.first; });
    std::vector<config::upstream> out;
    out.reserve(servers.size());
    for (auto& [s, i] : score)
      out.push_back(servers[i]);
    return out;
  }

  void record_answer(const config::upstream& s, uint64_t rtt_us) {
    std::lock_guard<std::mutex> guard{health_mtx};
    auto& h = infra[server_id(s)];
    h.server = s;
    rtt_us = std::max<uint64_t>(rtt_us, 1);
    h.srtt_us = h.srtt_us == 0 ? rtt_us : (7 * h.srtt_us + rtt_us) / 8;
    h.failures = 0;
    h.backoff_us = 0;
    ++h.answers;
  }

  /// Counts an answer of s by its rcode (the low 4 bits of header byte 3).
  void count_rcode(const config::upstream& s, const uint8_t* answer,
                   size_t len) {
    if (len < 4)
      return;
    std::lock_guard<std::mutex> guard{health_mtx};
    ++infra[server_id(s)].rcodes[answer[3] & 0x0f];
  }

  void record_failure(const config::upstream& s, bool timeout) {
    std::lock_guard<std::mutex> guard{health_mtx};
    auto& h = infra[server_id(s)];
    h.server = s;
    if (timeout)
      ++h.timeouts;
    if (h.failures++ == 0 || h.backoff_us == 0) {
      h.backoff_us = uint64_t(opts.probe_backoff_ms) * 1000;
      h.probe_at_us = now_us() + h.backoff_us;
    }
  }

  caps_state caps_of(const config::upstream& s) {
    std::lock_guard<std::mutex> guard{health_mtx};
    auto i = infra.find(server_id(s));
    return i == infra.end() ? caps_state::unknown : i->second.caps;
  }

  void set_caps(const config::upstream& s, caps_state c) {
    std::lock_guard<std::mutex> guard{health_mtx};
    auto& h = infra[server_id(s)];
    if (c == caps_state::lowers && h.caps != c)
      NWD_LOG_INFO(component,
                   "upstream {} does not keep the case of "
                   "questions: 0x20 off for it",
                   server_id(s));
    h.caps = c;
  }

  /// Starts due probes and forgets servers nobody uses. Returns when the
  /// next of these is due (UINT64_MAX: nothing is), so that the loop sleeps
  /// until then and not a moment more often.
  uint64_t probe_due() {
    std::vector<config::upstream> due;
    uint64_t next = UINT64_MAX;
    {
      std::lock_guard<std::mutex> guard{health_mtx};
      auto now = now_us();
      for (auto i = infra.begin(); i != infra.end();) {
        auto& h = i->second;
        if (now - h.last_used_us > forget_after_us && !h.probing) {
          i = infra.erase(i);
          continue;
        }
        if (h.failures > 0 && !h.probing && now >= h.probe_at_us) {
          h.probing = true;
          due.push_back(h.server);
        }
        if (h.failures > 0 && !h.probing)
          next = std::min(next, h.probe_at_us);
        if (!h.probing)
          next = std::min(next, h.last_used_us + forget_after_us + 1);
        ++i;
      }
    }
    for (auto& s : due) {
      ++probes;
      auto serial = next_serial++;
      auto& ex = exchanges[serial];
      ex.serial = serial;
      ex.probe = true;
      ex.order = {s};
      ex.wire = probe_query();
      ex.started_us = now_us();
      ex.base_timeout_ms = timeout_ms.load();
      next_try(ex);
    }
    return next;
  }

  void probe_done(const config::upstream& s, bool ok, uint64_t rtt_us) {
    if (ok) {
      record_answer(s, rtt_us);
      set_caps(s, caps_state::unknown);
    } else {
      std::lock_guard<std::mutex> guard{health_mtx};
      auto& h = infra[server_id(s)];
      h.failures = std::max<uint32_t>(h.failures, 1) + 1;
      h.backoff_us
        = std::min<uint64_t>(std::max<uint64_t>(h.backoff_us, 1000) * 2,
                             uint64_t(opts.max_probe_backoff_ms) * 1000);
      h.probe_at_us = now_us() + h.backoff_us;
    }
    std::lock_guard<std::mutex> guard{health_mtx};
    if (auto i = infra.find(server_id(s)); i != infra.end())
      i->second.probing = false;
  }

  // -- exchanges --------------------------------------------------------

  void close_try(exchange& ex) {
    if (ex.fd >= 0) {
      ::epoll_ctl(epfd, EPOLL_CTL_DEL, ex.fd, nullptr);
      ::close(ex.fd);
      ex.fd = -1;
    }
    if (ex.deadline_us != 0) {
      deadlines.erase({ex.deadline_us, ex.serial});
      ex.deadline_us = 0;
    }
  }

  /// Ends ex (erases it): its waiters get the answer or the failure.
  void finish(exchange& ex, const uint8_t* answer, size_t len) {
    close_try(ex);
    upstream_answer a;
    a.latency_us = now_us() - ex.started_us;
    if (answer != nullptr && len > 0) {
      a.ok = true;
      a.wire.assign(answer, answer + len);
    } else {
      a.error = ex.error.empty() ? "no upstream answered" : ex.error;
    }
    if (ex.probe) {
      probe_done(ex.order.at(0), a.ok, a.latency_us);
      exchanges.erase(ex.serial);
      return;
    }
    if (a.ok) {
      ++answered;
      latency_sum += a.latency_us;
    } else {
      ++failed;
    }
    auto waiters = std::move(ex.waiters);
    in_flight.erase(ex.key);
    exchanges.erase(ex.serial); // ex is gone
    for (auto& w : waiters)
      w(a);
  }

  /// Starts the next UDP try of ex, or ends it when none is left.
  void next_try(exchange& ex) {
    close_try(ex);
    int tries = ex.probe ? 1 : std::max(opts.tries, 1);
    while (true) {
      if (ex.next >= ex.order.size()) {
        ex.next = 0;
        ++ex.round;
      }
      if (ex.order.empty() || ex.round >= static_cast<size_t>(tries)) {
        finish(ex, nullptr, 0);
        return;
      }
      ex.server = ex.next++;
      auto& s = ex.order[ex.server];
      if (send_udp(ex, s))
        return;
      if (!ex.probe)
        record_failure(s, false);
    }
  }

  /// Sends ex.wire with a fresh ID from a fresh socket to s.
  bool send_udp(exchange& ex, const config::upstream& s) {
    sockaddr_storage ss;
    socklen_t len = 0;
    if (!to_sockaddr(s, ss, len)) {
      ex.error = "bad upstream address " + s.ip;
      return false;
    }
    int fd
      = ::socket(ss.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      ex.error = std::string("socket: ") + std::strerror(errno);
      return false;
    }
    // connect() binds a random ephemeral port and makes the kernel drop
    // datagrams from any other source.
    if (::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
      ex.error = std::string("connect: ") + std::strerror(errno);
      ::close(fd);
      return false;
    }
    ex.mixed_case = false;
    if (caps_of(s) == caps_state::lowers)
      lower_case(ex.wire);
    else
      ex.mixed_case = randomise_case(ex.wire, ids);
    auto id = ids.next();
    ex.wire[0] = static_cast<uint8_t>(id >> 8);
    ex.wire[1] = static_cast<uint8_t>(id & 0xff);
    if (::send(fd, ex.wire.data(), ex.wire.size(), MSG_DONTWAIT)
        != static_cast<ssize_t>(ex.wire.size())) {
      ex.error = std::string("send: ") + std::strerror(errno);
      ::close(fd);
      return false;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = ex.serial;
    if (::epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
      ex.error = std::string("epoll: ") + std::strerror(errno);
      ::close(fd);
      return false;
    }
    ex.fd = fd;
    ex.sent_us = now_us();
    ex.deadline_us
      = ex.sent_us + uint64_t(ex.base_timeout_ms) * 1000 * (1ull << ex.round);
    deadlines.emplace(ex.deadline_us, ex.serial);
    return true;
  }

  void on_timeout(exchange& ex) {
    ex.error = "timeout";
    if (!ex.probe)
      record_failure(ex.order[ex.server], true);
    next_try(ex);
  }

  /// Reads what ex's socket holds.
  void on_readable(exchange& ex) {
    uint8_t buf[65536];
    while (ex.fd >= 0) {
      auto n = ::recv(ex.fd, buf, sizeof(buf), MSG_DONTWAIT);
      if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
          return;
        // ECONNREFUSED (ICMP port unreachable) and the like.
        ex.error = std::string("recv: ") + std::strerror(errno);
        if (!ex.probe)
          record_failure(ex.order[ex.server], false);
        next_try(ex);
        return;
      }
      auto len = static_cast<size_t>(n);
      auto m = answers_query(ex.wire, buf, len);
      auto& s = ex.order[ex.server];
      if (m == match::other_case && ex.mixed_case) {
        // 0x20: from a server known to keep the case, a forgery; from one
        // not known yet, proof that it lowers names (0x20 off for it).
        if (caps_of(s) == caps_state::keeps)
          m = match::no;
        else
          set_caps(s, caps_state::lowers);
      } else if (m == match::exact && ex.mixed_case) {
        set_caps(s, caps_state::keeps);
      }
      if (m == match::no) {
        ++mismatched;
        continue;
      }
      auto rtt = now_us() - ex.sent_us;
      if (ex.probe) {
        finish(ex, buf, len);
        return;
      }
      count_rcode(s, buf, len);
      uint16_t rcode = buf[3] & 0x0f;
      if (rcode == rcode_servfail || rcode == rcode_refused
          || rcode == rcode_notimp) {
        ex.error = rcode == rcode_servfail  ? "upstream answered SERVFAIL"
                   : rcode == rcode_refused ? "upstream answered REFUSED"
                                            : "upstream answered NOTIMP";
        record_failure(s, false);
        next_try(ex);
        return;
      }
      record_answer(s, rtt);
      if (buf[2] & 0x02) { // TC: ask the same server over TCP
        start_tcp(ex);
        return;
      }
      finish(ex, buf, len);
      return;
    }
  }

  // -- TCP retries (c-ares) -------------------------------------------

  ares_channel tcp_channel(const config::upstream& s, int timeout) {
    auto id = server_id(s) + "|" + std::to_string(timeout);
    if (auto i = tcp_channels.find(id); i != tcp_channels.end())
      return i->second;
    ares_options o{};
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES | ARES_FLAG_USEVC;
    o.timeout = timeout;
    o.tries = 1;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES;
    ares_channel ch = nullptr;
    if (int rc = ares_init_options(&ch, &o, mask); rc != ARES_SUCCESS) {
      NWD_LOG_ERROR(component, "ares_init_options: {}", ares_strerror(rc));
      return nullptr;
    }
    ares_addr_port_node n;
    std::memset(&n, 0, sizeof(n));
    if (inet_pton(AF_INET, s.ip.c_str(), &n.addr.addr4) == 1)
      n.family = AF_INET;
    else if (inet_pton(AF_INET6, s.ip.c_str(), &n.addr.addr6) == 1)
      n.family = AF_INET6;
    n.udp_port = n.tcp_port = s.port;
    if (n.family == 0 || ares_set_servers_ports(ch, &n) != ARES_SUCCESS) {
      ares_destroy(ch);
      return nullptr;
    }
    tcp_channels.emplace(id, ch);
    return ch;
  }

  void start_tcp(exchange& ex) {
    close_try(ex);
    ++tcp_retries;
    auto ch = tcp_channel(ex.order[ex.server],
                          ex.base_timeout_ms << std::min<size_t>(ex.round, 8));
    if (ch == nullptr) {
      ex.error = "no TCP channel";
      next_try(ex);
      return;
    }
    ex.tcp = true;
    ares_send(ch, ex.wire.data(), static_cast<int>(ex.wire.size()), on_tcp,
              new tcp_ctx{this, ex.serial});
  }

  static void on_tcp(void* arg, int status, int, unsigned char* abuf,
                     int alen) {
    std::unique_ptr<tcp_ctx> ctx{static_cast<tcp_ctx*>(arg)};
    auto self = ctx->self;
    auto i = self->exchanges.find(ctx->serial);
    if (i == self->exchanges.end())
      return;
    auto& ex = i->second;
    ex.tcp = false;
    if (status == ARES_SUCCESS && abuf != nullptr && alen > 0) {
      self->count_rcode(ex.order[ex.server], abuf, static_cast<size_t>(alen));
      self->finish(ex, abuf, static_cast<size_t>(alen));
      return;
    }
    ex.error = ares_strerror(status);
    if (self->stopping.load()) {
      self->finish(ex, nullptr, 0);
      return;
    }
    self->next_try(ex);
  }

  /// Destroys TCP channels of another timeout once they are idle.
  void reap_tcp_channels() {
    for (auto i = tcp_channels.begin(); i != tcp_channels.end();) {
      timeval tv{};
      if (ares_timeout(i->second, nullptr, &tv) == nullptr) {
        ares_destroy(i->second);
        i = tcp_channels.erase(i);
      } else {
        ++i;
      }
    }
  }

  // -- requests ---------------------------------------------------------

  void start_request(request& r) {
    auto key = r.key + "|" + servers_text(r.servers);
    auto i = in_flight.find(key);
    if (i != in_flight.end()) {
      auto& ex = exchanges.at(i->second);
      if (ex.waiters.size() >= opts.max_waiters) {
        refuse(r);
        return;
      }
      ex.waiters.push_back(std::move(r.done));
      ++coalesced;
      return;
    }
    if (in_flight.size() >= opts.max_in_flight) {
      refuse(r);
      return;
    }
    ++sent;
    auto serial = next_serial++;
    auto& ex = exchanges[serial];
    ex.serial = serial;
    ex.key = key;
    ex.waiters.push_back(std::move(r.done));
    ex.started_us = now_us();
    ex.base_timeout_ms = timeout_ms.load();
    in_flight.emplace(key, serial);
    if (r.wire.size() < 12) {
      ex.error = "empty query";
      finish(ex, nullptr, 0);
      return;
    }
    ex.wire = std::move(r.wire);
    ex.order = rank(r.servers, true);
    next_try(ex);
  }

  void refuse(request& r) {
    ++refused;
    upstream_answer a;
    a.error = "too many queries upstream";
    r.done(a);
  }

  void run() {
    std::vector<pollfd> fds;
    std::vector<ares_channel> owners;
    epoll_event events[64];
    uint64_t last_reap = now_us();
    uint64_t next_probe = UINT64_MAX;
    while (!stopping.load()) {
      auto now = now_us();
      // Asleep until an exchange times out, a probe or a reap is due, or
      // a socket or the mailbox wakes the loop: nothing polls.
      uint64_t until = next_probe;
      if (!deadlines.empty())
        until = std::min(until, deadlines.begin()->first);
      if (!tcp_channels.empty())
        until = std::min(until, last_reap + reap_every_us);
      int wait_ms = -1;
      if (until != UINT64_MAX)
        wait_ms = until <= now ? 0
                               : static_cast<int>(std::min<uint64_t>(
                                 (until - now + 999) / 1000, 60'000));
      fds.clear();
      owners.clear();
      fds.push_back(pollfd{epfd, POLLIN, 0});
      owners.push_back(nullptr);
      for (auto& [id, ch] : tcp_channels) {
        ares_socket_t socks[ARES_GETSOCK_MAXNUM];
        int bits = ares_getsock(ch, socks, ARES_GETSOCK_MAXNUM);
        for (int i = 0; i < ARES_GETSOCK_MAXNUM; ++i) {
          short ev = 0;
          if (ARES_GETSOCK_READABLE(bits, i))
            ev |= POLLIN;
          if (ARES_GETSOCK_WRITABLE(bits, i))
            ev |= POLLOUT;
          if (ev != 0) {
            fds.push_back(pollfd{socks[i], ev, 0});
            owners.push_back(ch);
          }
        }
        timeval tv{};
        if (ares_timeout(ch, nullptr, &tv) != nullptr) {
          auto ms = static_cast<int>(tv.tv_sec * 1000 + tv.tv_usec / 1000);
          wait_ms = wait_ms < 0 ? ms : std::min(wait_ms, ms);
        }
      }
      if (::poll(fds.data(), fds.size(), wait_ms) < 0 && errno != EINTR)
        NWD_LOG_ERROR(component, "poll: {}", std::strerror(errno));
      if (fds[0].revents & POLLIN) {
        int n = ::epoll_wait(epfd, events, 64, 0);
        for (int e = 0; e < n; ++e) {
          auto serial = events[e].data.u64;
          if (serial == 0) {
            uint64_t v;
            [[maybe_unused]] auto rd = ::read(wake_fd, &v, sizeof(v));
            std::vector<request> batch;
            {
              std::lock_guard<std::mutex> guard{mtx};
              batch.swap(mailbox);
            }
            for (auto& r : batch)
              start_request(r);
            continue;
          }
          auto i = exchanges.find(serial);
          if (i != exchanges.end() && i->second.fd >= 0)
            on_readable(i->second);
        }
      }
      for (size_t i = 1; i < fds.size(); ++i) {
        if (fds[i].revents == 0)
          continue;
        auto rfd = fds[i].revents & (POLLIN | POLLERR | POLLHUP)
                     ? fds[i].fd
                     : ARES_SOCKET_BAD;
        auto wfd = fds[i].revents & POLLOUT ? fds[i].fd : ARES_SOCKET_BAD;
        ares_process_fd(owners[i], rfd, wfd);
      }
      for (auto& [id, ch] : tcp_channels)
        ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
      now = now_us();
      while (!deadlines.empty() && deadlines.begin()->first <= now) {
        auto serial = deadlines.begin()->second;
        deadlines.erase(deadlines.begin());
        auto i = exchanges.find(serial);
        if (i == exchanges.end())
          continue;
        i->second.deadline_us = 0;
        on_timeout(i->second);
      }
      next_probe = probe_due();
      if (now - last_reap >= reap_every_us) {
        last_reap = now;
        reap_tcp_channels();
      }
    }
    // Fail whatever is left: destroying a channel ends its queries.
    for (auto& [id, ch] : tcp_channels)
      ares_destroy(ch);
    tcp_channels.clear();
    while (!exchanges.empty()) {
      auto& ex = exchanges.begin()->second;
      ex.error = "stopped";
      finish(ex, nullptr, 0);
    }
    std::vector<request> batch;
    {
      std::lock_guard<std::mutex> guard{mtx};
      batch.swap(mailbox);
    }
    upstream_answer a;
    a.error = "stopped";
    for (auto& r : batch)
      r.done(a);
  }
};

forwarder::forwarder(forwarder_options opts) : impl_(new impl) {
  impl_->opts = opts;
  impl_->timeout_ms = opts.timeout_ms;
  static std::once_flag once;
  std::call_once(once, [] { ares_library_init(ARES_LIB_INIT_ALL); });
}

forwarder::~forwarder() {
  stop();
}

result<unit> forwarder::start() {
  if (impl_->thread.joinable())
    return unit{};
  impl_->wake_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl_->wake_fd < 0)
    return make_failure("io", std::string("eventfd: ") + std::strerror(errno));
  impl_->epfd = ::epoll_create1(EPOLL_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = 0;
  if (impl_->epfd < 0
      || ::epoll_ctl(impl_->epfd, EPOLL_CTL_ADD, impl_->wake_fd, &ev) != 0) {
    auto err = std::string("epoll: ") + std::strerror(errno);
    ::close(impl_->wake_fd);
    if (impl_->epfd >= 0)
      ::close(impl_->epfd);
    impl_->wake_fd = impl_->epfd = -1;
    return make_failure("io", err);
  }
  impl_->stopping = false;
  impl_->thread = std::thread([this] { impl_->run(); });
  return unit{};
}

void forwarder::stop() {
  if (!impl_->thread.joinable())
    return;
  impl_->stopping = true;
  uint64_t one = 1;
  [[maybe_unused]] auto wr = ::write(impl_->wake_fd, &one, sizeof(one));
  impl_->thread.join();
  ::close(impl_->epfd);
  ::close(impl_->wake_fd);
  impl_->wake_fd = impl_->epfd = -1;
}

void forwarder::submit(std::string key, std::vector<config::upstream> servers,
                       std::vector<uint8_t> wire, callback done) {
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    impl_->mailbox.push_back(impl::request{std::move(key), std::move(servers),
                                           std::move(wire), std::move(done)});
  }
  uint64_t one = 1;
  if (impl_->wake_fd >= 0) {
    [[maybe_unused]] auto wr = ::write(impl_->wake_fd, &one, sizeof(one));
  }
}

void forwarder::set_timeout(int timeout_ms) {
  impl_->timeout_ms.store(timeout_ms);
}

int forwarder::timeout() const {
  return impl_->timeout_ms.load();
}

bool forwarder::all_failed(const std::vector<config::upstream>& servers) const {
  std::lock_guard<std::mutex> guard{impl_->health_mtx};
  for (auto& s : servers) {
    auto i = impl_->infra.find(server_id(s));
    if (i == impl_->infra.end() || i->second.failures == 0)
      return false;
  }
  return !servers.empty();
}

std::vector<config::upstream>
forwarder::order(const std::vector<config::upstream>& servers) const {
  return impl_->rank(servers, false);
}

std::vector<forwarder::upstream_health> forwarder::health() const {
  std::lock_guard<std::mutex> guard{impl_->health_mtx};
  std::vector<upstream_health> out;
  for (auto& [id, h] : impl_->infra)
    out.push_back(upstream_health{id, h.srtt_us, h.failures, h.answers,
                                  h.timeouts, h.rcodes});
  std::sort(out.begin(), out.end(),
            [](auto& a, auto& b) { return a.server < b.server; });
  return out;
}

forwarder::counters forwarder::stats() const {
  counters c;
  c.sent = impl_->sent;
  c.coalesced = impl_->coalesced;
  c.answered = impl_->answered;
  c.failed = impl_->failed;
  c.refused = impl_->refused;
  c.latency_us_sum = impl_->latency_sum;
  c.mismatched = impl_->mismatched;
  c.probes = impl_->probes;
  c.tcp_retries = impl_->tcp_retries;
  return c;
}

} // namespace networkd::dns
