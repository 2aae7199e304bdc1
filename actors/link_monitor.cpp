// SPDX-License-Identifier: MIT
#include "actors/link_monitor.hpp"

#include <caf/all.hpp>

#include <fcntl.h>
#include <poll.h>
#include <unistd.h>

#include <vector>

#include "actors/fwd.hpp"
#include "net/base/log.hpp"

namespace networkd {

namespace {
constexpr const char* who = "link-monitor";
} // namespace

std::shared_ptr<link_monitor> link_monitor::start(const std::string& ifname) {
  std::shared_ptr<link_monitor> m{new link_monitor};
  if (auto a = netlink::address_watch::open(ifname))
    m->addresses_ = std::move(*a);
  else
    NWD_LOG_ERROR(who,
                  "address watch on {}: {} (a VIP address removed by "
                  "someone else is not put back)",
                  ifname, a.error().message);
  if (auto a = arp::arp_watch::open(ifname))
    m->arp_ = std::move(*a);
  else
    NWD_LOG_ERROR(who, "ARP watch on {}: {} (ARP conflicts are not seen)",
                  ifname, a.error().message);
  if (!m->addresses_ && !m->arp_)
    return nullptr;
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC | O_NONBLOCK) != 0) {
    NWD_LOG_ERROR(who, "pipe: {}", std::strerror(errno));
    return nullptr;
  }
  m->wake_rd_ = fds[0];
  m->wake_wr_ = fds[1];
  // Until a VIP is served, no ARP packet is of interest.
  if (m->arp_)
    m->arp_->set_filter({"0.0.0.0"});
  m->thread_ = std::thread{[raw = m.get()] { raw->run(); }};
  return m;
}

link_monitor::~link_monitor() {
  stopping_ = true;
  char x = 1;
  [[maybe_unused]] auto n = ::write(wake_wr_, &x, 1);
  if (thread_.joinable())
    thread_.join();
  ::close(wake_rd_);
  ::close(wake_wr_);
}

// One address in or out of the ARP filter per call: thousands of holders
// call these at a cold start or shutdown.
void link_monitor::watch(const std::string& ip, const caf::actor& holder) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    watched_[ip] = caf::actor_cast<caf::weak_actor_ptr>(holder);
  }
  if (arp_)
    arp_->filter_add(ip);
}

void link_monitor::unwatch(const std::string& ip) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    watched_.erase(ip);
  }
  if (arp_)
    arp_->filter_remove(ip);
}

link_monitor::counters link_monitor::stats() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return counters_;
}

void link_monitor::report_removed(const std::string& ip) {
  caf::strong_actor_ptr to;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = watched_.find(ip);
    if (i == watched_.end())
      return;
    to = i->second.lock();
    ++counters_.removals;
  }
  if (to)
    caf::anon_send(caf::actor_cast<caf::actor>(to), atom::lost_v, ip);
}

void link_monitor::report_all_removed() {
  std::vector<std::pair<std::string, caf::strong_actor_ptr>> all;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    ++counters_.overruns;
    for (auto& [ip, h] : watched_)
      all.emplace_back(ip, h.lock());
  }
  // Events were lost: every holder checks its address (a re-add of a
  // present address only renews it).
  for (auto& [ip, to] : all)
    if (to)
      caf::anon_send(caf::actor_cast<caf::actor>(to), atom::lost_v, ip);
}

void link_monitor::report_conflict(const arp::sighting& s) {
  caf::strong_actor_ptr to;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    auto i = watched_.find(s.sender_ip);
    if (i == watched_.end())
      return;
    to = i->second.lock();
    ++counters_.conflicts;
  }
  if (to)
    caf::anon_send(caf::actor_cast<caf::actor>(to), atom::conflict_v,
                   s.sender_ip, arp::to_string(s.sender_mac));
}

void link_monitor::run() {
  std::vector<pollfd> fds;
  fds.push_back({wake_rd_, POLLIN, 0});
  if (addresses_)
    fds.push_back({addresses_->fd(), POLLIN, 0});
  if (arp_)
    fds.push_back({arp_->fd(), POLLIN, 0});
  while (!stopping_) {
    for (auto& p : fds)
      p.revents = 0;
    // No timeout: stop() writes to the wake pipe.
    int n = ::poll(fds.data(), fds.size(), -1);
    if (n < 0 && errno != EINTR) {
      NWD_LOG_ERROR(who, "poll: {}", std::strerror(errno));
      return;
    }
    if (stopping_)
      return;
    for (size_t i = 1; i < fds.size(); ++i) {
      if ((fds[i].revents & (POLLIN | POLLERR)) == 0)
        continue;
      if (addresses_ && fds[i].fd == addresses_->fd()) {
        auto evs = addresses_->read(std::chrono::milliseconds{0});
        if (!evs) {
          NWD_LOG_WARN(who, "address events: {}", evs.error().message);
          report_all_removed();
          continue;
        }
        for (auto& ev : *evs) {
          if (ev.what == netlink::address_event::kind::overrun)
            report_all_removed();
          else if (ev.what == netlink::address_event::kind::removed
                   && ev.address.prefix == 32)
            report_removed(ev.address.address);
        }
      } else if (arp_ && fds[i].fd == arp_->fd()) {
        auto seen = arp_->read(std::chrono::milliseconds{0});
        if (!seen) {
          NWD_LOG_WARN(who, "ARP watch: {}", seen.error().message);
          continue;
        }
        for (auto& s : *seen)
          report_conflict(s);
      }
    }
  }
}

} // namespace networkd
