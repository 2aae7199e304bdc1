// SPDX-License-Identifier: MIT
// Small helpers every test uses: waiting on a condition with a deadline,
// temporary directories, free loopback ports, child processes that are
// always killed, shell commands.
#pragma once

#include <chrono>
#include <functional>
#include <string>
#include <thread>
#include <vector>

namespace networkd::test {

using namespace std::chrono_literals;

/// Polls pred every `step` until it returns true or `deadline` passes.
/// Returns the last value of pred. Use with REQUIRE.
bool wait_until(const std::function<bool()>& pred,
                std::chrono::milliseconds deadline = 10s,
                std::chrono::milliseconds step = 10ms);

/// A fresh directory under /tmp, removed (recursively) on destruction.
class temp_dir {
public:
  explicit temp_dir(const std::string& tag = "networkd-test");
  ~temp_dir();
  temp_dir(const temp_dir&) = delete;
  temp_dir& operator=(const temp_dir&) = delete;
  const std::string& path() const { return path_; }
  std::string file(const std::string& name) const { return path_ + "/" + name; }

private:
  std::string path_;
};

/// A TCP port on 127.0.0.1 that was free a moment ago (bound to 0, read,
/// closed). Ports handed out by one process are never handed out twice.
uint16_t free_port();

/// A child process (fork + execvp), in its own process group. The
/// destructor kills the group (SIGKILL) and reaps it, so a failing test
/// never leaves it behind. stdout/stderr go to `log_file` when set.
class process {
public:
  process(std::vector<std::string> argv, std::string log_file = {},
          std::vector<std::string> extra_env = {});
  ~process();
  process(const process&) = delete;
  process& operator=(const process&) = delete;
  pid_t pid() const { return pid_; }
  bool running();
  /// Sends sig to the child's process group.
  void signal(int sig);
  /// Waits up to `deadline` for exit; returns the exit status as from
  /// waitpid (or -1 on timeout).
  int wait(std::chrono::milliseconds deadline = 10s);
  /// SIGKILL and reap.
  void kill();
  /// Contents of the log file (empty when none).
  std::string log() const;

private:
  pid_t pid_ = -1;
  int status_ = -1;
  std::string log_file_;
};

/// Runs `sh -c cmd`, returns the exit code; output goes to *out when given.
int sh(const std::string& cmd, std::string* out = nullptr);

/// Reads a whole file ("" when missing).
std::string read_file(const std::string& path);
void write_file(const std::string& path, const std::string& text);

} // namespace networkd::test
