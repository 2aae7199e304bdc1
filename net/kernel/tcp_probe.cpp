// SPDX-License-Identifier: MIT
#include "net/kernel/tcp_probe.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <map>
#include <mutex>
#include <thread>

namespace networkd {

namespace {

using clock = std::chrono::steady_clock;

struct pending {
  int fd = -1;
  clock::time_point started;
  clock::time_point deadline;
  tcp_prober::callback done;
};

struct request {
  std::string ip;
  uint16_t port;
  std::chrono::milliseconds timeout;
  tcp_prober::callback done;
  clock::time_point not_before;
};

} // namespace

struct tcp_prober::impl {
  int ep = -1;
  int wake = -1;
  std::mutex mtx;
  std::deque<request> queue;
  bool stopping = false;
  std::map<int, pending> active;                   // by fd
  std::multimap<clock::time_point, request> later; // by start time
  std::thread thread;

  void finish(int fd, bool ok, std::string error) {
    auto i = active.find(fd);
    if (i == active.end())
      return;
    auto p = std::move(i->second);
    active.erase(i);
    ::epoll_ctl(ep, EPOLL_CTL_DEL, fd, nullptr);
    // Closed with a reset, as load balancers close their health checks:
    // no FIN exchange with the container and no TIME_WAIT socket left for
    // each probe (ten a second per container at the default interval).
    linger reset{1, 0};
    ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
    ::close(fd);
    probe_outcome out;
    out.ok = ok;
    out.error = std::move(error);
    out.latency = std::chrono::duration_cast<std::chrono::microseconds>(
      clock::now() - p.started);
    p.done(out);
  }

  void start(request& r) {
    probe_outcome fail;
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(r.port);
    if (::inet_pton(AF_INET, r.ip.c_str(), &addr.sin_addr) != 1) {
      fail.error = "bad address " + r.ip;
      r.done(fail);
      return;
    }
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
      fail.error = std::strerror(errno);
      r.done(fail);
      return;
    }
    auto now = clock::now();
    active[fd] = pending{fd, now, now + r.timeout, std::move(r.done)};
    int rc = ::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
    if (rc == 0) {
      finish(fd, true, {});
      return;
    }
    if (errno != EINPROGRESS) {
      finish(fd, false,
             errno == ECONNREFUSED ? "refused" : std::strerror(errno));
      return;
    }
    epoll_event ev{};
    ev.events = EPOLLOUT | EPOLLERR | EPOLLHUP;
    ev.data.fd = fd;
    ::epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev);
  }

  void run() {
    epoll_event evs[64];
    for (;;) {
      // The nearest deadline or start bounds the wait.
      int wait_ms = -1;
      auto now = clock::now();
      auto bound = [&](clock::time_point at) {
        auto left
          = std::chrono::duration_cast<std::chrono::milliseconds>(at - now)
              .count();
        left = std::max<int64_t>(left, 0) + 1;
        if (wait_ms < 0 || left < wait_ms)
          wait_ms = static_cast<int>(left);
      };
      for (auto& [fd, p] : active)
        bound(p.deadline);
      if (!later.empty())
        bound(later.begin()->first);
      int n = ::epoll_wait(ep, evs, 64, wait_ms);
      if (n < 0 && errno != EINTR)
        break;
      for (int i = 0; i < n; ++i) {
        int fd = evs[i].data.fd;
        if (fd == wake) {
          uint64_t v;
          if (::read(wake, &v, sizeof(v)) < 0) {
            // Spurious wake-up: nothing to drain.
          }
          continue;
        }
        int err = 0;
        socklen_t len = sizeof(err);
        ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err == 0)
          finish(fd, true, {});
        else
          finish(fd, false,
                 err == ECONNREFUSED ? "refused" : std::strerror(err));
      }
      now = clock::now();
      for (auto i = active.begin(); i != active.end();) {
        auto fd = i->first;
        ++i;
        auto& p = active[fd];
        if (now >= p.deadline) {
          finish(fd, false, "timeout");
          i = active.upper_bound(fd);
        }
      }
      std::deque<request> todo;
      {
        std::lock_guard<std::mutex> g{mtx};
        if (stopping)
          break;
        todo.swap(queue);
      }
      for (auto& r : todo)
        later.emplace(r.not_before, std::move(r));
      while (!later.empty() && later.begin()->first <= now) {
        auto r = std::move(later.begin()->second);
        later.erase(later.begin());
        start(r);
      }
    }
    while (!active.empty())
      finish(active.begin()->first, false, "stopped");
    for (auto& [at, r] : later) {
      probe_outcome out;
      out.error = "stopped";
      r.done(out);
    }
    later.clear();
    std::lock_guard<std::mutex> g{mtx};
    for (auto& r : queue) {
      probe_outcome out;
      out.error = "stopped";
      r.done(out);
    }
    queue.clear();
  }
};

tcp_prober::tcp_prober() : impl_(std::make_unique<impl>()) {
  impl_->ep = ::epoll_create1(EPOLL_CLOEXEC);
  impl_->wake = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.fd = impl_->wake;
  ::epoll_ctl(impl_->ep, EPOLL_CTL_ADD, impl_->wake, &ev);
  impl_->thread = std::thread([p = impl_.get()] { p->run(); });
}

tcp_prober::~tcp_prober() {
  {
    std::lock_guard<std::mutex> g{impl_->mtx};
    impl_->stopping = true;
  }
  uint64_t one = 1;
  if (::write(impl_->wake, &one, sizeof(one)) < 0) {
    // The thread also wakes at its next deadline.
  }
  impl_->thread.join();
  ::close(impl_->wake);
  ::close(impl_->ep);
}

void tcp_prober::probe(const std::string& ip, uint16_t port,
                       std::chrono::milliseconds timeout, callback done,
                       std::chrono::milliseconds after) {
  {
    std::lock_guard<std::mutex> g{impl_->mtx};
    if (impl_->stopping) {
      probe_outcome out;
      out.error = "stopped";
      done(out);
      return;
    }
    impl_->queue.push_back(
      {ip, port, timeout, std::move(done), clock::now() + after});
  }
  uint64_t one = 1;
  if (::write(impl_->wake, &one, sizeof(one)) < 0) {
    // eventfd write fails only on overflow; the thread is awake then.
  }
}

} // namespace networkd
