// SPDX-License-Identifier: MIT
#include "net/peers/streamrouter.hpp"

#include <condition_variable>
#include <mutex>
#include <thread>

#include "net/base/log.hpp"
#include "net/cluster/config.hpp"
#include "net/peers/lainlet.hpp"

namespace networkd::lainlet {

namespace {
constexpr const char* component = "streamrouter";
constexpr const char* target = "/v2/streamrouter/ports";
} // namespace

struct ports_poller::impl {
  std::string endpoint;
  std::chrono::milliseconds interval;
  handler on_ports;

  mutable std::mutex mtx; // guards status_ and stopping
  std::condition_variable wake;
  bool stopping = false;
  ports_status status_;
  std::thread thread;

  void poll_once() {
    auto body = get(endpoint, target,
                    std::min(interval * 2, std::chrono::milliseconds{2000}));
    result<std::vector<uint16_t>> ports
      = body ? config::parse_streamrouter_ports(*body)
             : result<std::vector<uint16_t>>{body.error()};
    bool changed = false;
    std::vector<uint16_t> report;
    {
      std::lock_guard<std::mutex> guard{mtx};
      ++status_.polls;
      if (!ports) {
        ++status_.failures;
        if (status_.last_error != ports.error().to_string())
          NWD_LOG_WARN(component, "{}: {} (last list kept)", endpoint,
                       ports.error().to_string());
        status_.last_error = ports.error().to_string();
        return;
      }
      status_.last_error.clear();
      changed = !status_.have || status_.ports != *ports;
      status_.have = true;
      status_.ports = *ports;
      report = *ports;
    }
    if (changed && on_ports)
      on_ports(report);
  }

  void run() {
    std::unique_lock<std::mutex> lock{mtx};
    while (!stopping) {
      lock.unlock();
      poll_once();
      lock.lock();
      wake.wait_for(lock, interval, [this] { return stopping; });
    }
  }
};

ports_poller::ports_poller(std::string endpoint,
                           std::chrono::milliseconds interval, handler on_ports)
    : impl_(std::make_unique<impl>()) {
  impl_->endpoint = std::move(endpoint);
  impl_->interval = interval;
  impl_->on_ports = std::move(on_ports);
  impl_->thread = std::thread{[this] { impl_->run(); }};
}

ports_poller::~ports_poller() {
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    impl_->stopping = true;
  }
  impl_->wake.notify_all();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

ports_status ports_poller::status() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->status_;
}

} // namespace networkd::lainlet
