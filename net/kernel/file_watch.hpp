// SPDX-License-Identifier: MIT
// Watches one file for changes with inotify on its directory (editors and
// resolvers replace files by rename, which a watch on the file itself would
// miss) and, when the path is a symlink, on the target's directory too.
// Runs its own thread; the callback runs there.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>

#include "net/base/result.hpp"

namespace networkd {

class file_watch {
public:
  using handler = std::function<void()>;

  /// Starts watching `path`; `on_change` runs once per burst of events
  /// (created, written, renamed over, deleted, attributes changed), once
  /// the file has been quiet for `settle`: a writer that truncates and then
  /// writes is not caught half-way.
  file_watch(std::string path, handler on_change,
             std::chrono::milliseconds settle = std::chrono::milliseconds{50});
  /// Stops the thread; no callback runs after this returns.
  ~file_watch();
  file_watch(const file_watch&) = delete;
  file_watch& operator=(const file_watch&) = delete;

  /// Failure when inotify could not be set up (the directory is missing).
  const result<unit>& started() const { return started_; }

private:
  struct impl;
  std::unique_ptr<impl> impl_;
  result<unit> started_ = unit{};
};

} // namespace networkd
