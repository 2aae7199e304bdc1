// SPDX-License-Identifier: MIT
#include "actors/resolv_guardian.hpp"

#include <caf/all.hpp>

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>

#include "actors/json.hpp"
#include "dns/resolv_conf.hpp"
#include "net/base/file.hpp"
#include "net/base/log.hpp"
#include "net/base/text.hpp"

namespace networkd {

namespace {

constexpr const char* who = "resolv-guardian";

using guardian_pointer
  = resolv_guardian_actor::stateful_pointer<resolv_guardian_state>;

/// Identity of a file's content version: a rewrite in place or by rename
/// changes at least one of these.
struct file_version {
  ino_t inode = 0;
  off_t size = -1;
  int64_t mtime_ns = 0;
  bool operator==(const file_version& o) const {
    return inode == o.inode && size == o.size && mtime_ns == o.mtime_ns;
  }
};

file_version version_of(const std::string& path) {
  struct stat sb {};
  if (::stat(path.c_str(), &sb) != 0)
    return {};
  return {sb.st_ino, sb.st_size,
          static_cast<int64_t>(sb.st_mtim.tv_sec) * 1000000000
            + sb.st_mtim.tv_nsec};
}

/// resolv.conf is a few lines; a larger file is not ours to rewrite.
constexpr size_t max_resolv_conf = 64 * 1024;

bool read_file(const std::string& path, std::string& out, int& err) {
  err = read_file_bounded(path, max_resolv_conf, out);
  return err == 0;
}

void set_mode(guardian_pointer self, std::string mode, std::string error) {
  auto& st = self->state;
  if (st.mode != mode || st.last_error != error) {
    if (error.empty())
      NWD_LOG_INFO(who, "{}: {}", st.cfg.path, mode);
    else
      NWD_LOG_WARN(who, "{}: {} ({}){}", st.cfg.path, mode, error,
                   log::field("reason", error));
  }
  st.mode = std::move(mode);
  st.last_error = std::move(error);
}

void send_upstreams(guardian_pointer self, std::vector<config::upstream> ups) {
  auto& st = self->state;
  if (ups == st.upstreams && st.checks > 1)
    return;
  st.upstreams = ups;
  if (st.cfg.responder)
    self->send(st.cfg.responder, atom::upstream_v, std::move(ups));
}

void check(guardian_pointer self) {
  auto& st = self->state;
  ++st.checks;
  auto now = self->clock().now();
  std::error_code ec;
  namespace fs = std::filesystem;
  if (fs::is_symlink(st.cfg.path, ec)) {
    // Managed elsewhere: read through the link, never write through it.
    st.symlink_target = fs::read_symlink(st.cfg.path, ec).string();
    std::string text;
    int err = 0;
    if (!read_file(st.cfg.path, text, err)) {
      set_mode(self, "managed-elsewhere",
               "symlink to " + st.symlink_target
                 + " unreadable: " + std::strerror(err));
      return;
    }
    set_mode(self, "managed-elsewhere", "");
    send_upstreams(self, dns::resolv_upstreams(text, st.cfg.own_ips));
    return;
  }
  st.symlink_target.clear();
  std::string text;
  int err = 0;
  bool missing = false;
  auto before = version_of(st.cfg.path);
  if (!read_file(st.cfg.path, text, err)) {
    if (err != ENOENT) {
      set_mode(self, "error",
               std::string{"cannot read: "} + std::strerror(err));
      return;
    }
    // Deleted: write it again with our server and the upstreams we knew.
    missing = true;
    text.clear();
    for (auto& u : st.upstreams)
      if (u.port == 53)
        text += "nameserver " + u.ip + "\n";
  }
  auto fix = dns::fix_resolv_conf(text, st.cfg.our_ip, st.cfg.own_ips);
  if (!missing)
    send_upstreams(self, fix.upstreams);
  if (!fix.rewrite_needed && !missing) {
    st.fights.calm(now);
    set_mode(self, "managed", "");
    return;
  }
  if (!st.fights.try_write(now)) {
    if (st.fights.started_fight())
      NWD_LOG_WARN(who,
                   "{} is rewritten by another program again and again: "
                   "backing off",
                   st.cfg.path);
    set_mode(
      self, "fighting",
      "another program keeps rewriting it; next try in "
        + std::to_string(std::chrono::duration_cast<std::chrono::seconds>(
                           st.fights.quiet_until() - now)
                           .count())
        + " s");
    if (!st.backoff_timer) {
      st.backoff_timer = true;
      self->delayed_send(self, st.fights.quiet_until() - now, atom::reload_v);
    }
    return;
  }
  if (!missing && !(version_of(st.cfg.path) == before)) {
    // Someone is writing it right now: look again once they are done (the
    // watcher reports their write).
    NWD_LOG_DEBUG(who, "{} changed while being read; checking again",
                  st.cfg.path);
    return;
  }
  if (auto r = write_atomically(st.cfg.path, fix.text); !r) {
    set_mode(self, "error", r.error().message);
    return;
  }
  ++st.rewrites;
  NWD_LOG_INFO(who, "{} {}: nameserver {} first",
               missing ? "recreated" : "rewrote", st.cfg.path, st.cfg.our_ip);
  set_mode(self, "managed", "");
}

} // namespace

bool fight_detector::try_write(time_point now) {
  if (now < quiet_until_)
    return false;
  while (!writes_.empty() && now - writes_.front() > window_)
    writes_.pop_front();
  if (writes_.size() < max_writes_) {
    writes_.push_back(now);
    return true;
  }
  ++fights_;
  started_ = true;
  quiet_until_ = now + backoff_;
  backoff_ = std::min(backoff_ * 2, max_backoff_);
  writes_.clear();
  return false;
}

void fight_detector::calm(time_point now) {
  if (!writes_.empty() && now - writes_.back() > window_)
    backoff_ = first_backoff_;
}

result<unit> write_atomically(const std::string& path,
                              const std::string& text) {
  namespace fs = std::filesystem;
  auto dir = fs::path(path).parent_path();
  std::string tmpl = (dir.empty() ? std::string{"."} : dir.string())
                     + "/.networkd-resolv-XXXXXX";
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  int fd = ::mkstemp(name.data());
  if (fd < 0)
    return make_failure("io", "cannot create a temp file next to " + path + ": "
                                + std::strerror(errno));
  struct stat old {};
  if (::stat(path.c_str(), &old) == 0) {
    if (::fchmod(fd, old.st_mode & 07777) != 0
        || ::fchown(fd, old.st_uid, old.st_gid) != 0) {
      // Not fatal: the content matters more than the metadata.
    }
  } else {
    ::fchmod(fd, 0644);
  }
  size_t done = 0;
  while (done < text.size()) {
    auto n = ::write(fd, text.data() + done, text.size() - done);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      auto err = errno;
      ::close(fd);
      ::unlink(name.data());
      return make_failure("io",
                          "cannot write " + path + ": " + std::strerror(err));
    }
    done += static_cast<size_t>(n);
  }
  ::fsync(fd);
  ::close(fd);
  if (::rename(name.data(), path.c_str()) != 0) {
    auto err = errno;
    ::unlink(name.data());
    return make_failure("io", "cannot rename over " + path + ": "
                                + std::strerror(err));
  }
  return unit{};
}

std::string
resolv_guardian_state::render(std::chrono::steady_clock::time_point now) const {
  json_writer j;
  j.begin_object();
  j.kv("name", "resolv-guardian");
  j.kv("path", cfg.path);
  j.kv("state", fights.fighting(now) ? std::string{"fighting"} : mode);
  j.kv("last_error", last_error);
  j.kv("symlink_target", symlink_target);
  j.kv("nameserver", cfg.our_ip);
  j.begin_array("upstreams");
  for (auto& u : upstreams)
    j.value(u.ip + "#" + std::to_string(u.port));
  j.end_array();
  j.object("counters");
  j.kv("checks", checks);
  j.kv("rewrites", rewrites);
  j.kv("fights", fights.fights());
  j.end_object();
  j.end_object();
  return j.str();
}

resolv_guardian_actor::behavior_type resolv_guardian(
  resolv_guardian_actor::stateful_pointer<resolv_guardian_state> self,
  resolv_guardian_config cfg) {
  auto& st = self->state;
  st.cfg = std::move(cfg);
  auto hdl = caf::actor_cast<resolv_guardian_actor>(self);
  st.watch = std::make_unique<file_watch>(
    st.cfg.path, [hdl] { caf::anon_send(hdl, atom::reload_v); });
  if (!st.watch->started())
    set_mode(self, "error", st.watch->started().error().message);
  self->send(self, atom::reload_v);
  return {
    [self](atom::status) { return self->state.render(self->clock().now()); },
    [self](atom::reload) {
      self->state.backoff_timer = false;
      check(self);
    },
  };
}

} // namespace networkd
