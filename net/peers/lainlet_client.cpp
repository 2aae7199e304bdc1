// SPDX-License-Identifier: MIT
// The lainlet client: plain GETs and the streaming watch of one node's
// containers on a thread of its own, with reconnects and back-off.

#include "net/peers/lainlet.hpp"
#include "net/peers/lainlet_impl.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <random>
#include <stdexcept>
#include <thread>
#include <tuple>

#include <httplib.h>

#include "net/base/host_port.hpp"
#include "net/base/log.hpp"
#include "net/cluster/config.hpp"

namespace networkd::lainlet {

using namespace detail;

// -- HTTP helpers -------------------------------------------------------------

namespace {

result<host_port> split_endpoint(std::string_view ep) {
  for (std::string_view scheme : {"http://", "HTTP://"})
    if (ep.substr(0, scheme.size()) == scheme)
      ep.remove_prefix(scheme.size());
  while (!ep.empty() && ep.back() == '/')
    ep.remove_suffix(1);
  auto hp = split_host_port(ep);
  if (!hp)
    return make_failure("invalid", "lainlet endpoint \"" + printable(ep)
                                     + "\": " + hp.error().message);
  return hp;
}

std::string percent_encode(std::string_view text) {
  static const char* hex = "0123456789ABCDEF";
  std::string out;
  for (char ch : text) {
    auto u = static_cast<unsigned char>(ch);
    if (std::isalnum(u) || ch == '-' || ch == '.' || ch == '_' || ch == '~') {
      out += ch;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}
} // namespace

namespace {

using clock = std::chrono::steady_clock;

} // namespace

std::string containers_target(std::string_view nodename, bool watch,
                              std::chrono::seconds heartbeat) {
  std::string t = "/v2/containers?nodename=" + percent_encode(nodename);
  if (watch) {
    t += "&watch=1";
    if (heartbeat.count() > 0)
      t += "&heartbeat=" + std::to_string(heartbeat.count());
  }
  return t;
}

result<std::string> get(const std::string& endpoint, const std::string& target,
                        std::chrono::milliseconds timeout) {
  // A bounded request/response: cpp-httplib does it well. The stream below
  // uses its own socket so that stop and dead-stream detection are ours.
  auto hp = split_endpoint(endpoint);
  if (!hp)
    return hp.error();
  httplib::Client cli{hp->host, hp->port};
  auto secs = std::chrono::duration_cast<std::chrono::seconds>(timeout);
  auto usecs
    = std::chrono::duration_cast<std::chrono::microseconds>(timeout - secs);
  cli.set_connection_timeout(secs.count(), usecs.count());
  cli.set_read_timeout(secs.count(), usecs.count());
  cli.set_write_timeout(secs.count(), usecs.count());
  cli.set_keep_alive(false);
  std::string body;
  bool too_large = false;
  auto res = cli.Get(target, [&](const char* data, size_t n) {
    too_large = body.size() + n > default_max_size;
    if (!too_large)
      body.append(data, n);
    return !too_large;
  });
  if (too_large)
    return make_failure("too_large",
                        "GET " + target + " from " + endpoint + ": answer over "
                          + std::to_string(default_max_size) + " bytes");
  if (!res) {
    auto err = res.error();
    auto code = (err == httplib::Error::ConnectionTimeout
                 || err == httplib::Error::Read)
                  ? "timeout"
                  : "unavailable";
    return make_failure(code, "GET " + target + " from " + endpoint + ": "
                                + httplib::to_string(err));
  }
  if (res->status != 200)
    return make_failure("http_status", "GET " + target + ": HTTP "
                                         + std::to_string(res->status) + ": "
                                         + printable(body));
  return body;
}

result<containers_result> get_containers(const std::string& endpoint,
                                         const std::string& nodename,
                                         std::chrono::milliseconds timeout) {
  auto body
    = get(endpoint, containers_target(nodename, false, std::chrono::seconds{0}),
          timeout);
  if (!body)
    return body.error();
  return parse_containers(*body, nodename);
}

// -- client -------------------------------------------------------------------

const char* to_string(client_state s) {
  switch (s) {
    case client_state::connecting:
      return "connecting";
    case client_state::connected:
      return "connected";
    case client_state::streaming:
      return "streaming";
    case client_state::disconnected:
      return "disconnected";
    case client_state::error:
      return "error";
  }
  return "unknown";
}

struct client::impl {
  client_options opts;
  containers_handler on_containers;
  state_handler on_state;

  mutable std::mutex mtx; // guards status_ and set_
  client_status status_;
  std::vector<container> set_;

  int wake_rd = -1;
  int wake_wr = -1;
  std::atomic<bool> stopping{false};
  std::thread thread;
  std::mt19937_64 rng{std::random_device{}()};
  unsigned attempt = 0;
  std::string last_errors_logged;
  stream_parser parser;

  // Why one connection ended.
  enum class outcome { stopped, retry, error };

  impl(client_options o, containers_handler c, state_handler s)
      : opts(std::move(o)), on_containers(std::move(c)), on_state(std::move(s)),
        parser(opts.max_size, opts.max_size) {}

  // -- status ---------------------------------------------------------------

  template <class F>
  void update(F&& f, bool notify) {
    client_status copy;
    {
      std::lock_guard<std::mutex> guard{mtx};
      f(status_);
      if (!notify)
        return;
      copy = status_;
    }
    if (on_state)
      on_state(copy);
  }

  void set_state(client_state st, std::string message) {
    bool changed = false;
    client_status copy;
    {
      std::lock_guard<std::mutex> guard{mtx};
      changed = status_.state != st || status_.message != message;
      status_.state = st;
      status_.message = std::move(message);
      copy = status_;
    }
    if (!changed)
      return;
    if (st == client_state::disconnected || st == client_state::error)
      NWD_LOG_WARN(component, "{} {}: {}", opts.endpoint, to_string(st),
                   copy.message);
    else
      NWD_LOG_INFO(component, "{} {}{}{}", opts.endpoint, to_string(st),
                   copy.message.empty() ? "" : ": ", copy.message);
    if (on_state)
      on_state(copy);
  }

  // -- waiting --------------------------------------------------------------

  // Polls fd for `events` and the wake pipe until `deadline` (none when
  // nullopt). Returns 1 when fd is ready, 0 on timeout, -1 when stopping.
  int wait_fd(int fd, short events, std::optional<clock::time_point> deadline) {
    for (;;) {
      if (stopping)
        return -1;
      int timeout_ms = -1;
      if (deadline) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
          *deadline - clock::now());
        if (left.count() <= 0)
          return 0;
        timeout_ms
          = static_cast<int>(std::min<int64_t>(left.count() + 1, 60'000));
      }
      pollfd fds[2] = {{wake_rd, POLLIN, 0}, {fd, events, 0}};
      int n = ::poll(fds, fd >= 0 ? 2 : 1, timeout_ms);
      if (n < 0 && errno != EINTR)
        return -1;
      if (stopping || (fds[0].revents & POLLIN))
        return -1;
      if (n > 0 && fd >= 0 && fds[1].revents != 0)
        return 1;
    }
  }

  void backoff() {
    auto shift = std::min(attempt, 20u);
    auto delay = std::min<int64_t>(opts.backoff_max.count(),
                                   opts.backoff_initial.count() << shift);
    delay = std::max<int64_t>(delay, 1);
    std::uniform_int_distribution<int64_t> dist{delay / 2, delay};
    auto wait = std::chrono::milliseconds{dist(rng)};
    if (attempt < 64)
      ++attempt;
    wait_fd(-1, 0, clock::now() + wait);
  }

  // -- connection -----------------------------------------------------------

  // A connected socket, or -1 (state set) / -2 (stopping).
  int connect_socket() {
    auto hp = split_endpoint(opts.endpoint);
    if (!hp) {
      set_state(client_state::error, hp.error().message);
      return -1;
    }
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* res = nullptr;
    auto port = std::to_string(hp->port);
    if (int rc = ::getaddrinfo(hp->host.c_str(), port.c_str(), &hints, &res);
        rc != 0) {
      set_state(client_state::disconnected,
                "resolve " + hp->host + ": " + gai_strerror(rc));
      return -1;
    }
    std::string last_error = "no address";
    int fd = -1;
    for (auto* ai = res; ai != nullptr && fd < 0; ai = ai->ai_next) {
      int s = ::socket(ai->ai_family,
                       ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
                       ai->ai_protocol);
      if (s < 0) {
        last_error = std::strerror(errno);
        continue;
      }
      if (::connect(s, ai->ai_addr, ai->ai_addrlen) != 0
          && errno != EINPROGRESS) {
        last_error = std::strerror(errno);
        ::close(s);
        continue;
      }
      int w = wait_fd(s, POLLOUT, clock::now() + opts.connect_timeout);
      if (w < 0) {
        ::close(s);
        ::freeaddrinfo(res);
        return -2;
      }
      if (w == 0) {
        last_error = "connect timed out";
        ::close(s);
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(s, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err != 0) {
        last_error = std::strerror(err);
        ::close(s);
        continue;
      }
      fd = s;
    }
    ::freeaddrinfo(res);
    if (fd < 0) {
      set_state(client_state::disconnected,
                "connect " + opts.endpoint + ": " + last_error);
      return -1;
    }
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    ::setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
    return fd;
  }

  // Sends all of `data`; false on error or stop.
  bool send_all(int fd, std::string_view data) {
    auto deadline = clock::now() + opts.connect_timeout;
    while (!data.empty()) {
      auto n = ::send(fd, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<size_t>(n));
        continue;
      }
      if (n < 0
          && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) {
        if (wait_fd(fd, POLLOUT, deadline) != 1)
          return false;
        continue;
      }
      return false;
    }
    return true;
  }

  std::optional<clock::time_point> dead_deadline() const {
    if (opts.heartbeat.count() <= 0 || opts.dead_after == 0)
      return std::nullopt;
    return clock::now() + opts.heartbeat * opts.dead_after;
  }

  std::string dead_message() const {
    return "no event for "
           + std::to_string(opts.heartbeat.count() * opts.dead_after) + " s ("
           + std::to_string(opts.dead_after)
           + " heartbeat intervals): stream dead";
  }

  // Waits for the next bytes of the stream and reads up to `size` of them
  // into `chunk` (their count in `n`). An outcome instead when the stream
  // ends: stopped, silent past `deadline` (`dead_prefix` leads the state
  // message), closed by the peer (`closed_message`) or an error.
  std::optional<outcome> receive_some(int fd,
                                      std::optional<clock::time_point> deadline,
                                      char* chunk, size_t size, size_t& n,
                                      const char* dead_prefix,
                                      const char* closed_message) {
    for (;;) {
      int w = wait_fd(fd, POLLIN, deadline);
      if (w < 0)
        return outcome::stopped;
      if (w == 0) {
        update([](client_status& s) { ++s.counters.dead_streams; }, false);
        count_disconnect();
        set_state(client_state::disconnected, dead_prefix + dead_message());
        return outcome::retry;
      }
      auto got = ::recv(fd, chunk, size, 0);
      if (got < 0 && (errno == EAGAIN || errno == EINTR))
        continue;
      if (got <= 0) {
        count_disconnect();
        set_state(client_state::disconnected,
                  got == 0 ? std::string(closed_message)
                           : std::string("recv: ") + std::strerror(errno));
        return outcome::retry;
      }
      n = static_cast<size_t>(got);
      return std::nullopt;
    }
  }

  void count_disconnect() {
    update([](client_status& s) { ++s.counters.disconnects; }, false);
  }

  // One connection: connect, request, read the stream until it ends.
  outcome run_once() {
    int fd = connect_socket();
    if (fd == -2)
      return outcome::stopped;
    if (fd < 0)
      return outcome::retry;
    struct closer {
      int fd;
      ~closer() { ::close(fd); }
    } close_fd{fd};
    update([](client_status& s) { ++s.counters.connects; }, false);
    set_state(client_state::connected, "");

    auto hp = split_endpoint(opts.endpoint);
    std::string request
      = "GET " + containers_target(opts.nodename, true, opts.heartbeat)
        + " HTTP/1.1\r\nHost: " + hp->host + ":" + std::to_string(hp->port)
        + "\r\nAccept: text/event-stream\r\nUser-Agent: networkd\r\n\r\n";
    if (!send_all(fd, request)) {
      if (stopping)
        return outcome::stopped;
      count_disconnect();
      set_state(client_state::disconnected, "sending the request failed");
      return outcome::retry;
    }

    // Reply headers.
    constexpr size_t max_head = 64 * 1024;
    std::string buf;
    char chunk[64 * 1024];
    auto deadline = dead_deadline();
    size_t head_end = std::string::npos;
    size_t sep = 0;
    while (head_end == std::string::npos) {
      size_t n = 0;
      if (auto o = receive_some(
            fd, deadline, chunk, sizeof(chunk), n,
            "no reply headers: ", "closed before the reply headers"))
        return *o;
      buf.append(chunk, n);
      auto a = buf.find("\r\n\r\n");
      auto b = buf.find("\n\n");
      if (a != std::string::npos && (b == std::string::npos || a < b)) {
        head_end = a;
        sep = 4;
      } else if (b != std::string::npos) {
        head_end = b;
        sep = 2;
      } else if (buf.size() > max_head) {
        update([](client_status& s) { ++s.counters.http_errors; }, false);
        set_state(client_state::error, "reply headers too long");
        return outcome::error;
      }
    }
    auto head = parse_head(std::string_view(buf).substr(0, head_end));
    std::string rest = buf.substr(head_end + sep);
    if (!head) {
      update([](client_status& s) { ++s.counters.http_errors; }, false);
      set_state(client_state::error, head.error().message);
      return outcome::error;
    }
    if (head->status != 200)
      return http_error(fd, *head, std::move(rest));

    update([](client_status& s) { ++s.counters.streams; }, false);
    set_state(client_state::streaming, "");
    return stream(fd, *head, std::move(rest));
  }

  // A non-200 reply: read a little of the body for the message.
  outcome http_error(int fd, const response_head& head, std::string body) {
    auto deadline = clock::now() + std::chrono::milliseconds{500};
    char chunk[4096];
    while (body.size() < 4096) {
      if (head.content_length && body.size() >= *head.content_length)
        break;
      if (wait_fd(fd, POLLIN, deadline) != 1)
        break;
      auto n = ::recv(fd, chunk, sizeof(chunk), 0);
      if (n <= 0)
        break;
      body.append(chunk, static_cast<size_t>(n));
    }
    if (stopping)
      return outcome::stopped;
    if (head.chunked) {
      chunked_decoder dec;
      std::string decoded;
      dec.feed(body, decoded);
      body = std::move(decoded);
    }
    update([](client_status& s) { ++s.counters.http_errors; }, false);
    set_state(client_state::error, "HTTP " + std::to_string(head.status) + " "
                                     + printable(head.reason) + ": "
                                     + printable(trim(body), 200));
    return outcome::error;
  }

  outcome stream(int fd, const response_head& head, std::string first) {
    // One parser for the client's life: its counters add up over streams.
    parser.reset();
    chunked_decoder dec;
    uint64_t body_left = head.content_length.value_or(UINT64_MAX);
    bool applied_init = false;
    auto deadline = dead_deadline();
    char chunk[64 * 1024];
    std::string raw = std::move(first);
    for (;;) {
      if (!raw.empty()) {
        std::string body;
        std::string_view bytes = raw;
        if (head.content_length) {
          bytes = bytes.substr(
            0, static_cast<size_t>(std::min<uint64_t>(body_left, raw.size())));
          body_left -= bytes.size();
        }
        if (head.chunked) {
          if (!dec.feed(bytes, body)) {
            update([](client_status& s) { ++s.counters.http_errors; }, false);
            count_disconnect();
            set_state(client_state::error,
                      "bad chunked framing: " + dec.error());
            return outcome::error;
          }
        } else {
          body.assign(bytes);
        }
        raw.clear();
        auto fed = parser.feed(body);
        if (auto o = handle(fed, parser, applied_init, deadline))
          return *o;
        if (dec.done() || (head.content_length && body_left == 0)) {
          count_disconnect();
          set_state(client_state::disconnected, "stream ended");
          return outcome::retry;
        }
      }
      size_t n = 0;
      if (auto o = receive_some(fd, deadline, chunk, sizeof(chunk), n, "",
                                "stream closed by lainlet"))
        return *o;
      raw.assign(chunk, n);
    }
  }

  // Handles the events of one read; an outcome ends the stream.
  std::optional<outcome> handle(feed_result& fed, const stream_parser& parser,
                                bool& applied_init,
                                std::optional<clock::time_point>& deadline) {
    for (auto& why : fed.errors)
      NWD_LOG_WARN(component, "{}: {}", opts.endpoint, why);
    update(
      [&](client_status& s) {
        s.counters.garbage_lines = parser.garbage_lines();
        s.counters.dropped_events = parser.dropped_events();
      },
      false);
    for (auto& ev : fed.events) {
      deadline = dead_deadline();
      update(
        [&](client_status& s) {
          ++s.counters.events;
          if (ev.kind == event_kind::heartbeat)
            ++s.counters.heartbeats;
        },
        false);
      switch (ev.kind) {
        case event_kind::heartbeat:
          if (applied_init)
            attempt = 0; // the stream has proven itself
          break;
        case event_kind::init:
        case event_kind::update:
        case event_kind::erase:
          if (ev.kind == event_kind::erase && ev.data.empty()) {
            NWD_LOG_WARN(component,
                         "{}: delete event {} without data: "
                         "ignored",
                         opts.endpoint, ev.id);
            break;
          }
          if (apply(ev)) {
            if (applied_init)
              attempt = 0;
            applied_init = true;
          }
          break;
        case event_kind::error:
          update(
            [&](client_status& s) {
              ++s.counters.error_events;
              ++s.counters.disconnects;
            },
            false);
          set_state(client_state::error,
                    "error event: " + printable(ev.data, 200));
          return outcome::error;
        case event_kind::unknown:
          NWD_LOG_DEBUG(component, "{}: ignored event \"{}\"", opts.endpoint,
                        printable(ev.name));
          break;
      }
    }
    return std::nullopt;
  }

  // Applies one data event; true when it was valid.
  bool apply(const event& ev) {
    auto parsed = parse_containers(
      ev.data,
      opts.filter_node ? std::string_view{opts.nodename} : std::string_view{},
      opts.max_size);
    if (!parsed) {
      NWD_LOG_WARN(component, "{}: {} event {} rejected, set kept: {}",
                   opts.endpoint, to_string(ev.kind), ev.id,
                   parsed.error().to_string());
      update(
        [&](client_status& s) {
          ++s.counters.bad_events;
          s.last_event_id = ev.id;
        },
        true);
      return false;
    }
    auto& res = *parsed;
    std::string errors_text;
    for (auto& e : res.errors)
      errors_text += e.key + ": " + e.reason + "; ";
    if (errors_text != last_errors_logged) {
      if (!res.errors.empty())
        NWD_LOG_WARN(component, "{}: {} entries skipped: {}", opts.endpoint,
                     res.errors.size(), printable(errors_text, 2000));
      last_errors_logged = std::move(errors_text);
    }
    std::vector<container> next = std::move(res.containers);
    bool changed = false;
    std::vector<container> report;
    {
      std::lock_guard<std::mutex> guard{mtx};
      // An invalid entry for a container we know keeps its last good form.
      for (auto& e : res.errors) {
        if (e.container_id.empty())
          continue;
        auto known = std::find_if(set_.begin(), set_.end(), [&](auto& c) {
          return c.container_id == e.container_id;
        });
        auto present = std::find_if(next.begin(), next.end(), [&](auto& c) {
          return c.container_id == e.container_id;
        });
        if (known != set_.end() && present == next.end())
          next.push_back(*known);
      }
      std::sort(next.begin(), next.end());
      changed = !status_.have_set || next != set_;
      status_.have_set = true;
      status_.last_event_id = ev.id;
      status_.entry_errors = res.errors;
      status_.counters.bad_entries += res.errors.size();
      if (changed) {
        set_ = next;
        ++status_.counters.updates;
        report = set_;
      } else {
        ++status_.counters.unchanged;
      }
    }
    if (changed) {
      NWD_LOG_INFO(component, "{}: {} event {}: {} containers", opts.endpoint,
                   to_string(ev.kind), ev.id, report.size());
      if (on_containers)
        on_containers(report, ev.id);
    }
    update([](client_status&) {}, true);
    return true;
  }

  void run() {
    while (!stopping) {
      auto o = run_once();
      if (o == outcome::stopped || stopping)
        break;
      backoff();
    }
  }
};

client::client(client_options opts, containers_handler on_containers,
               state_handler on_state)
    : impl_(std::make_unique<impl>(std::move(opts), std::move(on_containers),
                                   std::move(on_state))) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0)
    throw std::runtime_error(std::string("lainlet client: pipe: ")
                             + std::strerror(errno));
  impl_->wake_rd = fds[0];
  impl_->wake_wr = fds[1];
  impl_->thread = std::thread{[this] { impl_->run(); }};
}

client::~client() {
  impl_->stopping = true;
  char x = 1;
  [[maybe_unused]] auto n = ::write(impl_->wake_wr, &x, 1);
  if (impl_->thread.joinable())
    impl_->thread.join();
  ::close(impl_->wake_rd);
  ::close(impl_->wake_wr);
}

client_status client::status() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->status_;
}

std::vector<container> client::containers() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->set_;
}

} // namespace networkd::lainlet
