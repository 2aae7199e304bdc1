// SPDX-License-Identifier: MIT
// The c-ares owner thread.
#include "dns/forwarder.hpp"

#include <ares.h>
#include <arpa/inet.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>

#include "net/base/log.hpp"

namespace networkd::dns {

namespace {

constexpr const char* component = "dns-forwarder";

uint64_t now_us() {
  return static_cast<uint64_t>(
    std::chrono::duration_cast<std::chrono::microseconds>(
      std::chrono::steady_clock::now().time_since_epoch())
      .count());
}

std::string servers_text(const std::vector<config::upstream>& servers) {
  std::string out;
  for (auto& s : servers)
    out += s.ip + "#" + std::to_string(s.port) + ",";
  return out;
}

} // namespace

struct forwarder::impl {
  struct request {
    std::string key;
    std::vector<config::upstream> servers;
    std::vector<uint8_t> wire;
    callback done;
  };
  struct pending {
    std::vector<callback> waiters;
    uint64_t started_us = 0;
  };
  struct send_ctx {
    impl* self;
    std::string key;
  };

  forwarder_options opts;
  int wake_fd = -1;
  std::thread thread;
  std::atomic<bool> stopping{false};
  std::mutex mtx;
  std::vector<request> mailbox;
  /// Per-try timeout for new channels (set_timeout).
  std::atomic<int> timeout_ms{0};
  // Owned by the forwarder thread.
  std::map<std::string, ares_channel> channels;
  int channels_timeout_ms = 0; ///< the timeout `channels` were made with
  /// Channels of an earlier timeout: no new queries; destroyed once their
  /// queries are done.
  std::vector<ares_channel> retiring;
  std::unordered_map<std::string, pending> in_flight;
  std::atomic<uint64_t> sent{0}, coalesced{0}, answered{0}, failed{0},
    refused{0}, latency_sum{0};

  ares_channel channel_for(const std::vector<config::upstream>& servers,
                           const std::string& id) {
    if (auto i = channels.find(id); i != channels.end())
      return i->second;
    ares_options o{};
    o.flags = ARES_FLAG_NOSEARCH | ARES_FLAG_NOALIASES;
    o.timeout = channels_timeout_ms;
    o.tries = opts.tries;
    int mask = ARES_OPT_FLAGS | ARES_OPT_TIMEOUTMS | ARES_OPT_TRIES
               | ARES_OPT_NOROTATE;
    ares_channel ch = nullptr;
    if (int rc = ares_init_options(&ch, &o, mask); rc != ARES_SUCCESS) {
      NWD_LOG_ERROR(component, "ares_init_options: {}", ares_strerror(rc));
      return nullptr;
    }
    std::vector<ares_addr_port_node> nodes(servers.size());
    size_t used = 0;
    for (auto& s : servers) {
      auto& n = nodes[used];
      std::memset(&n, 0, sizeof(n));
      if (inet_pton(AF_INET, s.ip.c_str(), &n.addr.addr4) == 1)
        n.family = AF_INET;
      else if (inet_pton(AF_INET6, s.ip.c_str(), &n.addr.addr6) == 1)
        n.family = AF_INET6;
      else
        continue;
      n.udp_port = n.tcp_port = s.port;
      if (used > 0)
        nodes[used - 1].next = &n;
      ++used;
    }
    if (used == 0
        || ares_set_servers_ports(ch, nodes.data()) != ARES_SUCCESS) {
      ares_destroy(ch);
      return nullptr;
    }
    channels.emplace(id, ch);
    return ch;
  }

  static void on_answer(void* arg, int status, int, unsigned char* abuf,
                        int alen) {
    std::unique_ptr<send_ctx> ctx{static_cast<send_ctx*>(arg)};
    ctx->self->finish(ctx->key, status, abuf, alen);
  }

  void finish(const std::string& key, int status, const unsigned char* abuf,
              int alen) {
    auto i = in_flight.find(key);
    if (i == in_flight.end())
      return;
    auto p = std::move(i->second);
    in_flight.erase(i);
    upstream_answer a;
    a.latency_us = now_us() - p.started_us;
    if (status == ARES_SUCCESS && abuf != nullptr && alen > 0) {
      a.ok = true;
      a.wire.assign(abuf, abuf + alen);
      ++answered;
      latency_sum += a.latency_us;
    } else {
      a.error = ares_strerror(status);
      ++failed;
    }
    for (auto& w : p.waiters)
      w(a);
  }

  void start_request(request& r) {
    auto id = servers_text(r.servers);
    auto key = r.key + "|" + id;
    auto i = in_flight.find(key);
    if (i != in_flight.end() ? i->second.waiters.size() >= opts.max_waiters
                             : in_flight.size() >= opts.max_in_flight) {
      ++refused;
      upstream_answer a;
      a.error = "too many queries upstream";
      r.done(a);
      return;
    }
    if (i != in_flight.end()) {
      i->second.waiters.push_back(std::move(r.done));
      ++coalesced;
      return;
    }
    auto& p = in_flight[key];
    p.waiters.push_back(std::move(r.done));
    p.started_us = now_us();
    ++sent;
    auto ch = r.servers.empty() ? nullptr : channel_for(r.servers, id);
    if (ch == nullptr || r.wire.empty()) {
      finish(key, ARES_ESERVFAIL, nullptr, 0);
      return;
    }
    // c-ares may call on_answer before returning.
    ares_send(ch, r.wire.data(), static_cast<int>(r.wire.size()), on_answer,
              new send_ctx{this, key});
  }

  /// A new timeout: the channels made with the old one take no new
  /// queries.
  void retire_channels() {
    int want = timeout_ms.load();
    if (want == channels_timeout_ms)
      return;
    channels_timeout_ms = want;
    for (auto& [id, ch] : channels)
      retiring.push_back(ch);
    channels.clear();
  }

  /// Destroys retired channels without queries (c-ares 1.18: ares_timeout
  /// returns the given maximum, here null, when a channel has none).
  void reap_retired() {
    for (size_t i = 0; i < retiring.size();) {
      timeval tv{};
      if (ares_timeout(retiring[i], nullptr, &tv) == nullptr) {
        ares_destroy(retiring[i]);
        retiring[i] = retiring.back();
        retiring.pop_back();
      } else {
        ++i;
      }
    }
  }

  void run() {
    std::vector<pollfd> fds;
    std::vector<ares_channel> owners;
    std::vector<ares_channel> all;
    while (!stopping.load()) {
      reap_retired();
      all.clear();
      for (auto& [id, ch] : channels)
        all.push_back(ch);
      all.insert(all.end(), retiring.begin(), retiring.end());
      fds.clear();
      owners.clear();
      fds.push_back(pollfd{wake_fd, POLLIN, 0});
      owners.push_back(nullptr);
      timeval tv{1, 0};
      for (auto ch : all) {
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
        timeval max = tv;
        ares_timeout(ch, &max, &tv);
      }
      int timeout_ms = static_cast<int>(tv.tv_sec * 1000 + tv.tv_usec / 1000);
      if (::poll(fds.data(), fds.size(), timeout_ms + 1) < 0 && errno != EINTR)
        NWD_LOG_ERROR(component, "poll: {}", std::strerror(errno));
      if (fds[0].revents & POLLIN) {
        uint64_t n;
        [[maybe_unused]] auto rd = ::read(wake_fd, &n, sizeof(n));
        std::vector<request> batch;
        {
          std::lock_guard<std::mutex> guard{mtx};
          batch.swap(mailbox);
        }
        retire_channels(); // before any new query takes a channel
        for (auto& r : batch)
          start_request(r);
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
      // Timeouts.
      for (auto ch : all)
        ares_process_fd(ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
    }
    // Fail whatever is left: destroying a channel ends its queries.
    for (auto& [id, ch] : channels)
      ares_destroy(ch);
    channels.clear();
    for (auto ch : retiring)
      ares_destroy(ch);
    retiring.clear();
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
  impl_->channels_timeout_ms = opts.timeout_ms;
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
  ::close(impl_->wake_fd);
  impl_->wake_fd = -1;
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
  if (impl_->timeout_ms.exchange(timeout_ms) == timeout_ms)
    return;
  uint64_t one = 1;
  if (impl_->wake_fd >= 0) {
    [[maybe_unused]] auto wr = ::write(impl_->wake_fd, &one, sizeof(one));
  }
}

int forwarder::timeout() const {
  return impl_->timeout_ms.load();
}

forwarder::counters forwarder::stats() const {
  counters c;
  c.sent = impl_->sent;
  c.coalesced = impl_->coalesced;
  c.answered = impl_->answered;
  c.failed = impl_->failed;
  c.refused = impl_->refused;
  c.latency_us_sum = impl_->latency_sum;
  return c;
}

} // namespace networkd::dns
