// SPDX-License-Identifier: MIT
#include "net/kernel/file_watch.hpp"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cstring>
#include <filesystem>
#include <set>
#include <thread>
#include <vector>

#include "net/base/log.hpp"

namespace networkd {

namespace fs = std::filesystem;

struct file_watch::impl {
  std::string path;
  handler on_change;
  std::chrono::milliseconds settle{50};
  int ino = -1;
  int stop_fd = -1;
  /// Watch descriptor → file names in that directory we care about.
  std::vector<std::pair<int, std::set<std::string>>> watches;
  std::thread thread;

  ~impl() {
    if (stop_fd >= 0) {
      uint64_t one = 1;
      if (::write(stop_fd, &one, sizeof(one)) < 0) {
        // Nothing else to do: the join below still ends the thread at the
        // next poll timeout.
      }
    }
    if (thread.joinable())
      thread.join();
    if (ino >= 0)
      ::close(ino);
    if (stop_fd >= 0)
      ::close(stop_fd);
  }

  bool add_dir_watch(const fs::path& file) {
    auto dir = file.parent_path();
    if (dir.empty())
      dir = ".";
    int wd = inotify_add_watch(ino, dir.c_str(),
                               IN_CLOSE_WRITE | IN_MODIFY | IN_MOVED_TO
                                 | IN_MOVED_FROM | IN_CREATE | IN_DELETE
                                 | IN_ATTRIB | IN_DELETE_SELF);
    if (wd < 0)
      return false;
    for (auto& [w, names] : watches) {
      if (w == wd) {
        names.insert(file.filename().string());
        return true;
      }
    }
    watches.push_back({wd, {file.filename().string()}});
    return true;
  }

  /// (Re)arms the watches for the path and, for a symlink, its target.
  void arm() {
    for (auto& w : watches)
      inotify_rm_watch(ino, w.first);
    watches.clear();
    fs::path p{path};
    add_dir_watch(p);
    std::error_code ec;
    if (fs::is_symlink(p, ec)) {
      auto target = fs::read_symlink(p, ec);
      if (!ec) {
        if (target.is_relative())
          target = p.parent_path() / target;
        add_dir_watch(target);
      }
    }
  }

  bool relevant(const inotify_event* ev) const {
    for (auto& [wd, names] : watches) {
      if (wd != ev->wd)
        continue;
      if (ev->mask & (IN_DELETE_SELF | IN_IGNORED))
        return true;
      if (ev->len > 0 && names.count(ev->name) > 0)
        return true;
    }
    return false;
  }

  /// Reads every queued event; true when one concerns our file.
  bool drain(char* buf, size_t size) {
    bool changed = false;
    for (;;) {
      auto len = ::read(ino, buf, size);
      if (len <= 0)
        break;
      for (char* p = buf; p < buf + len;) {
        auto* ev = reinterpret_cast<inotify_event*>(p);
        if (relevant(ev))
          changed = true;
        p += sizeof(inotify_event) + ev->len;
      }
    }
    return changed;
  }

  void run() {
    alignas(
      inotify_event) char buf[16 * (sizeof(inotify_event) + NAME_MAX + 1)];
    pollfd fds[2] = {{ino, POLLIN, 0}, {stop_fd, POLLIN, 0}};
    bool pending = false;
    for (;;) {
      // While a change is pending, wait only `settle` for more events.
      int n = ::poll(fds, 2, pending ? static_cast<int>(settle.count()) : -1);
      if (n < 0 && errno == EINTR)
        continue;
      if (n < 0 || (fds[1].revents & POLLIN))
        return;
      if (n == 0) {
        pending = false;
        // A symlink may now point elsewhere.
        arm();
        on_change();
        continue;
      }
      if (drain(buf, sizeof(buf)))
        pending = true;
    }
  }
};

file_watch::file_watch(std::string path, handler on_change,
                       std::chrono::milliseconds settle)
    : impl_(std::make_unique<impl>()) {
  impl_->settle = settle;
  impl_->path = std::move(path);
  impl_->on_change = std::move(on_change);
  impl_->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
  impl_->stop_fd = eventfd(0, EFD_CLOEXEC);
  if (impl_->ino < 0 || impl_->stop_fd < 0) {
    started_ = make_failure("inotify", std::strerror(errno));
    return;
  }
  impl_->arm();
  if (impl_->watches.empty()) {
    started_
      = make_failure("inotify", "cannot watch the directory of " + impl_->path);
    return;
  }
  impl_->thread = std::thread([p = impl_.get()] { p->run(); });
}

file_watch::~file_watch() = default;

} // namespace networkd
