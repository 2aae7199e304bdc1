// SPDX-License-Identifier: MIT
// etcd prefix watcher: snapshot, resumable watch stream, resync after
// compaction, all on the watcher's own thread.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <condition_variable>
#include <exception>
#include <map>
#include <thread>
#include <utility>

#include "net/base/log.hpp"
#include "net/etcd/etcd.hpp"
#include "net/etcd/etcd_impl.hpp"

namespace networkd::etcd {

namespace {

constexpr const char* component = "etcd-watch";
constexpr auto min_backoff = std::chrono::milliseconds(50);
constexpr auto max_backoff = std::chrono::milliseconds(1000);

/// Why one watch stream ended.
enum class stream_end { stopped, compacted, failed, reauth };

} // namespace

struct watcher::impl {
  impl(client& c, std::string prefix, batch_handler on_batch,
       status_handler on_status)
      : c(c.internals()), prefix(std::move(prefix)),
        on_batch(std::move(on_batch)), on_status(std::move(on_status)) {}

  client::impl& c;
  const std::string prefix;
  const batch_handler on_batch;
  const status_handler on_status;

  mutable std::mutex mtx;
  std::condition_variable cv;
  bool stopping = false;
  bool resync_asked = false; ///< resync() was called
  watch_status st;
  cancel_slot slot;
  std::thread thread;

  // Owned by the watcher thread.
  std::map<std::string, int64_t> delivered; ///< key -> mod_revision
  int64_t revision = 0;                     ///< last revision delivered
  bool synced = false;
  bool resync = false;
  std::chrono::milliseconds backoff = min_backoff;
  std::string logged_error; ///< last error logged at warn level
  int reauths = 0;          ///< token rejections since the last good stream

  bool stopped() const {
    std::lock_guard<std::mutex> guard{mtx};
    return stopping;
  }

  bool resync_pending() const {
    std::lock_guard<std::mutex> guard{mtx};
    return resync_asked;
  }

  /// True once per resync() call.
  bool take_resync() {
    std::lock_guard<std::mutex> guard{mtx};
    return std::exchange(resync_asked, false);
  }

  /// Applies f to the status and reports it when something changed.
  template <class F>
  void update(F&& f) {
    watch_status copy;
    {
      std::lock_guard<std::mutex> guard{mtx};
      auto before = st;
      f(st);
      st.revision = revision;
      if (before.state == st.state && before.last_error == st.last_error
          && before.reconnects == st.reconnects && before.resyncs == st.resyncs)
        return;
      if (before.state != st.state)
        NWD_LOG_DEBUG(component, "{}: {} -> {}", prefix,
                      to_string(before.state), to_string(st.state));
      copy = st;
    }
    if (!on_status)
      return;
    try {
      on_status(copy);
    } catch (const std::exception& e) {
      NWD_LOG_ERROR(component, "{}: status handler threw: {}", prefix,
                    e.what());
    } catch (...) {
      NWD_LOG_ERROR(component, "{}: status handler threw", prefix);
    }
  }

  void set_phase(watch_status::phase p) {
    update([p](watch_status& s) { s.state = p; });
  }

  void deliver(watch_batch batch) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      st.revision = revision;
    }
    if (!on_batch)
      return;
    // The batch counts as delivered even when the handler throws: handing it
    // over again would break the exactly-once promise.
    try {
      on_batch(std::move(batch));
    } catch (const std::exception& e) {
      NWD_LOG_ERROR(component, "{}: batch handler threw: {}", prefix, e.what());
    } catch (...) {
      NWD_LOG_ERROR(component, "{}: batch handler threw", prefix);
    }
  }

  /// Waits out the backoff (or until stopped) and doubles it. Logs the
  /// error at warn level once per change, not every retry.
  void pause(const std::string& error) {
    if (error != logged_error)
      NWD_LOG_WARN(component, "{}: {}; retrying", prefix, error);
    else
      NWD_LOG_DEBUG(component, "{}: {}; retrying in {} ms", prefix, error,
                    backoff.count());
    logged_error = error;
    update([&](watch_status& s) {
      s.state = watch_status::phase::retrying;
      s.last_error = error;
    });
    std::unique_lock<std::mutex> lock{mtx};
    cv.wait_for(lock, backoff, [this] { return stopping || resync_asked; });
    backoff = std::min(backoff * 2, max_backoff);
  }

  /// Reads the whole prefix. The first time it delivers everything as puts;
  /// after a compaction only what differs from what was delivered.
  bool sync() {
    set_phase(watch_status::phase::syncing);
    range_options opts;
    opts.prefix = true;
    auto r = c.range(prefix, opts, &slot);
    if (!r) {
      if (!stopped() && !resync_pending())
        pause("range: " + r.error().to_string());
      return false;
    }
    watch_batch batch;
    batch.revision = r->revision;
    batch.snapshot = true;
    std::map<std::string, int64_t> now;
    for (auto& kv : r->kvs) {
      now.emplace(kv.key, kv.mod_revision);
      auto it = delivered.find(kv.key);
      if (it != delivered.end() && it->second == kv.mod_revision)
        continue;
      watch_event ev;
      ev.what = watch_event::kind::put;
      ev.kv = std::move(kv);
      batch.events.push_back(std::move(ev));
    }
    for (auto& [key, mod] : delivered) {
      if (now.count(key) != 0)
        continue;
      watch_event ev;
      ev.what = watch_event::kind::erase;
      ev.kv.key = key;
      // The deletion revision is gone with the history: the read's revision
      // is the earliest at which the key is known to be absent.
      ev.kv.mod_revision = r->revision;
      batch.events.push_back(std::move(ev));
    }
    NWD_LOG_INFO(component, "{}: {} at revision {} ({} changes)", prefix,
                 synced ? "resynced" : "loaded", r->revision,
                 batch.events.size());
    delivered = std::move(now);
    revision = std::max(revision, r->revision);
    synced = true;
    resync = false;
    deliver(std::move(batch));
    return true;
  }

  /// Turns the events of one watch response into a batch, dropping what was
  /// delivered before.
  void handle_events(const std::vector<mvccpb::Event>& events) {
    watch_batch batch;
    for (auto& e : events) {
      if (e.kv().mod_revision() <= revision)
        continue;
      watch_event ev;
      ev.kv = to_key_value(e.kv());
      if (e.has_prev_kv())
        ev.prev = to_key_value(e.prev_kv());
      if (e.type() == mvccpb::Event::DELETE) {
        ev.what = watch_event::kind::erase;
        delivered.erase(ev.kv.key);
      } else {
        ev.what = watch_event::kind::put;
        delivered[ev.kv.key] = ev.kv.mod_revision;
      }
      batch.revision = std::max(batch.revision, ev.kv.mod_revision);
      batch.events.push_back(std::move(ev));
    }
    if (batch.events.empty())
      return;
    revision = batch.revision;
    deliver(std::move(batch));
  }

  /// One watch stream from revision + 1 until it breaks.
  stream_end watch_once(std::string& error) {
    set_phase(watch_status::phase::connecting);
    auto idx = c.pick(steady::now() + c.cfg.dial_timeout,
                      [this] { return slot.cancelled(); });
    if (slot.cancelled())
      return stream_end::stopped;
    if (!idx) {
      error = c.unreachable();
      return stream_end::failed;
    }
    auto& m = c.members[*idx];
    if (auto tok = c.ensure_token(m, steady::now() + c.cfg.call_timeout);
        !tok) {
      error = tok.error().to_string();
      if (tok.error().code == "unavailable")
        c.mark_failed(*idx);
      return stream_end::failed;
    }
    grpc::ClientContext ctx;
    auto token = c.token();
    if (!token.empty())
      ctx.AddMetadata("token", token);
    // Ask the member to end the stream when it loses its leader, so a
    // partitioned member does not keep us waiting for nothing.
    ctx.AddMetadata("hasleader", "true");
    slot_guard guard{&slot, &ctx};
    if (!guard.ok())
      return stream_end::stopped;
    // Asked before the stream could be interrupted.
    if (take_resync())
      return stream_end::compacted;
    auto stream = m.watch->Watch(&ctx);
    etcdserverpb::WatchRequest req;
    auto* create = req.mutable_create_request();
    create->set_key(prefix);
    create->set_range_end(prefix_end(prefix));
    create->set_start_revision(revision + 1);
    create->set_progress_notify(true);
    create->set_prev_kv(true);
    create->set_fragment(true);
    auto result = stream_end::failed;
    bool ended_by_us = false;
    if (stream->Write(req)) {
      etcdserverpb::WatchResponse resp;
      std::vector<mvccpb::Event> pending;
      while (stream->Read(&resp)) {
        if (resp.compact_revision() != 0) {
          NWD_LOG_WARN(component,
                       "{}: revision {} compacted (compact revision {})",
                       prefix, revision + 1, resp.compact_revision());
          result = stream_end::compacted;
          ended_by_us = true;
          break;
        }
        if (resp.canceled()) {
          error = "watch canceled by " + m.target + ": " + resp.cancel_reason();
          if (resp.cancel_reason().find("compacted") != std::string::npos)
            result = stream_end::compacted;
          // etcd says so when it forgot our token (it restarted): log in
          // again and watch on from the same revision.
          if (is_token_reason(resp.cancel_reason())) {
            c.drop_token(token);
            result = stream_end::reauth;
          }
          ended_by_us = true;
          break;
        }
        if (resp.created()) {
          c.mark_ok(*idx);
          backoff = min_backoff;
          reauths = 0;
          if (!logged_error.empty())
            NWD_LOG_INFO(component, "{}: watching again on {}", prefix,
                         m.target);
          logged_error.clear();
          set_phase(watch_status::phase::watching);
          NWD_LOG_DEBUG(component, "{}: watching from revision {} on {}",
                        prefix, revision + 1, m.target);
        }
        for (auto& e : resp.events())
          pending.push_back(e);
        if (resp.fragment())
          continue;
        if (!pending.empty()) {
          handle_events(pending);
          pending.clear();
        } else if (!resp.created() && resp.header().revision() > revision) {
          // A progress notification: nothing in the prefix up to this
          // revision is left to come.
          revision = resp.header().revision();
          update([](watch_status&) {});
        }
      }
    }
    // A stream that broke by itself has its status already; one we leave
    // open must be cancelled or Finish waits for the server.
    if (ended_by_us)
      ctx.TryCancel();
    auto st = stream->Finish();
    if (slot.cancelled())
      return stream_end::stopped;
    if (take_resync())
      return stream_end::compacted; // read everything again, as after one
    if (result == stream_end::failed && error.empty()) {
      error = to_failure(st.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE,
                                                "stream ended")
                                 : st,
                         "watch", m.target)
                .to_string();
      if (is_token_error(st))
        c.drop_token(token);
      c.mark_failed(*idx);
    }
    return result;
  }

  void run() {
    bool first = true;
    while (!stopped()) {
      if (take_resync()) {
        resync = true;
        update([](watch_status& s) { ++s.resyncs; });
      }
      if (!synced || resync) {
        if (!sync())
          continue;
      }
      if (!first) {
        update([](watch_status& s) { ++s.reconnects; });
      }
      first = false;
      std::string error;
      switch (watch_once(error)) {
        case stream_end::stopped:
          return;
        case stream_end::compacted:
          resync = true;
          update([](watch_status& s) { ++s.resyncs; });
          break;
        case stream_end::reauth:
          // The first time at once; a token rejected again and again (a
          // cluster being reconfigured) waits like any failure.
          if (reauths++ == 0) {
            NWD_LOG_INFO(component, "{}: {}; authenticating again", prefix,
                         error);
            break;
          }
          if (!stopped())
            pause(error);
          break;
        case stream_end::failed:
          if (!stopped())
            pause(error);
          break;
      }
    }
  }

  void run_guarded() {
    try {
      run();
    } catch (const std::exception& e) {
      NWD_LOG_ERROR(component, "{}: watcher thread ended: {}", prefix,
                    e.what());
      update([&](watch_status& s) {
        s.state = watch_status::phase::retrying;
        s.last_error = std::string("internal: ") + e.what();
      });
    } catch (...) {
      NWD_LOG_ERROR(component, "{}: watcher thread ended", prefix);
    }
  }
};

watcher::watcher(client& c, std::string prefix, batch_handler on_batch,
                 status_handler on_status)
    : impl_(std::make_unique<impl>(c, std::move(prefix), std::move(on_batch),
                                   std::move(on_status))) {
  impl_->thread = std::thread([this] { impl_->run_guarded(); });
}

watcher::~watcher() {
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    impl_->stopping = true;
  }
  impl_->cv.notify_all();
  impl_->slot.cancel();
  if (impl_->thread.joinable())
    impl_->thread.join();
}

void watcher::resync() {
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    impl_->resync_asked = true;
  }
  impl_->cv.notify_all();
  impl_->slot.interrupt();
}

const std::string& watcher::prefix() const {
  return impl_->prefix;
}

watch_status watcher::status() const {
  std::lock_guard<std::mutex> guard{impl_->mtx};
  return impl_->st;
}

const char* to_string(watch_status::phase p) {
  switch (p) {
    case watch_status::phase::connecting:
      return "connecting";
    case watch_status::phase::syncing:
      return "syncing";
    case watch_status::phase::watching:
      return "watching";
    case watch_status::phase::retrying:
      return "retrying";
  }
  return "?";
}

} // namespace networkd::etcd
