// SPDX-License-Identifier: MIT
#include "tests/support/util.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>
#include <stdexcept>

namespace networkd::test {

bool wait_until(const std::function<bool()>& pred,
                std::chrono::milliseconds deadline,
                std::chrono::milliseconds step) {
  auto until = std::chrono::steady_clock::now() + deadline;
  for (;;) {
    if (pred())
      return true;
    if (std::chrono::steady_clock::now() >= until)
      return pred();
    std::this_thread::sleep_for(step);
  }
}

temp_dir::temp_dir(const std::string& tag) {
  std::string tmpl = "/tmp/" + tag + "-XXXXXX";
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr)
    throw std::runtime_error("mkdtemp failed: " + std::string(strerror(errno)));
  path_ = buf.data();
}

temp_dir::~temp_dir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

uint16_t free_port() {
  static std::mutex mtx;
  static std::set<uint16_t> given;
  std::lock_guard<std::mutex> guard{mtx};
  for (int attempt = 0; attempt < 100; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
      throw std::runtime_error("socket failed");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
      ::close(fd);
      continue;
    }
    socklen_t len = sizeof(addr);
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
    ::close(fd);
    auto port = ntohs(addr.sin_port);
    if (given.insert(port).second)
      return port;
  }
  throw std::runtime_error("no free port");
}

process::process(std::vector<std::string> argv, std::string log_file,
                 std::vector<std::string> extra_env)
    : log_file_(std::move(log_file)) {
  pid_ = ::fork();
  if (pid_ < 0)
    throw std::runtime_error("fork failed");
  if (pid_ == 0) {
    ::setpgid(0, 0);
    if (!log_file_.empty()) {
      int fd = ::open(log_file_.c_str(), O_WRONLY | O_CREAT | O_APPEND, 0644);
      if (fd >= 0) {
        ::dup2(fd, 1);
        ::dup2(fd, 2);
        ::close(fd);
      }
    }
    int devnull = ::open("/dev/null", O_RDONLY);
    if (devnull >= 0)
      ::dup2(devnull, 0);
    for (auto& kv : extra_env)
      ::putenv(const_cast<char*>(kv.c_str()));
    std::vector<char*> args;
    for (auto& a : argv)
      args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    ::execvp(args[0], args.data());
    std::fprintf(stderr, "exec %s: %s\n", args[0], strerror(errno));
    ::_exit(127);
  }
  ::setpgid(pid_, pid_);
}

process::~process() {
  kill();
}

bool process::running() {
  if (pid_ <= 0)
    return false;
  int st = 0;
  auto r = ::waitpid(pid_, &st, WNOHANG);
  if (r == pid_) {
    status_ = st;
    pid_ = -1;
    return false;
  }
  return r == 0;
}

void process::signal(int sig) {
  if (pid_ > 0)
    ::kill(-pid_, sig);
}

int process::wait(std::chrono::milliseconds deadline) {
  if (pid_ <= 0)
    return status_;
  auto until = std::chrono::steady_clock::now() + deadline;
  while (std::chrono::steady_clock::now() < until) {
    if (!running())
      return status_;
    std::this_thread::sleep_for(5ms);
  }
  return -1;
}

void process::kill() {
  if (pid_ <= 0)
    return;
  ::kill(-pid_, SIGKILL);
  ::kill(pid_, SIGKILL);
  int st = 0;
  ::waitpid(pid_, &st, 0);
  status_ = st;
  pid_ = -1;
}

std::string process::log() const {
  return log_file_.empty() ? std::string{} : read_file(log_file_);
}

int sh(const std::string& cmd, std::string* out) {
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr)
    return -1;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), p)) > 0)
    text.append(buf, n);
  int st = ::pclose(p);
  if (out != nullptr)
    *out = std::move(text);
  return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return {};
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
}

} // namespace networkd::test
