// SPDX-License-Identifier: MIT
// Network namespace lab for tests: namespaces, veth pairs, code run inside.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>

namespace networkd::test {

/// A network namespace made with `ip netns add` under a name unique to this
/// process; the destructor deletes it and with it every link inside.
class netns {
public:
  explicit netns(const std::string& tag);
  ~netns();
  netns(const netns&) = delete;
  netns& operator=(const netns&) = delete;

  const std::string& name() const { return name_; }

  /// Runs `sh -c cmd` inside the namespace (`ip netns exec`); returns the
  /// exit code, output (stdout and stderr) into *out when given.
  int sh(const std::string& cmd, std::string* out = nullptr) const;

  /// Like sh(), but throws with the command's output when it fails.
  void must(const std::string& cmd) const;

  /// Runs f on a fresh thread that joined this namespace and returns what f
  /// returns (exceptions are rethrown here). A thread's network namespace
  /// is its own, so the calling thread stays where it is.
  template <class F>
  auto run(F&& f) const -> std::invoke_result_t<F> {
    using T = std::invoke_result_t<F>;
    std::exception_ptr error;
    if constexpr (std::is_void_v<T>) {
      std::thread t{[&] {
        try {
          enter();
          f();
        } catch (...) {
          error = std::current_exception();
        }
      }};
      t.join();
      if (error)
        std::rethrow_exception(error);
    } else {
      std::optional<T> value;
      std::thread t{[&] {
        try {
          enter();
          value.emplace(f());
        } catch (...) {
          error = std::current_exception();
        }
      }};
      t.join();
      if (error)
        std::rethrow_exception(error);
      return std::move(*value);
    }
  }

  /// Moves the calling thread into this namespace (throws on failure).
  void enter() const;

private:
  std::string name_;
};

/// A veth pair with end `name_a` in `a` and `name_b` in `b`, both up. The
/// destructor deletes the pair (deleting a namespace also does).
class veth_pair {
public:
  veth_pair(const netns& a, std::string name_a, const netns& b,
            std::string name_b);
  ~veth_pair();
  veth_pair(const veth_pair&) = delete;
  veth_pair& operator=(const veth_pair&) = delete;

  /// MAC address of end a / end b ("aa:bb:...").
  std::string mac_a() const;
  std::string mac_b() const;

private:
  const netns& a_;
  std::string name_a_;
  const netns& b_;
  std::string name_b_;
};

/// A bridge in `ns`, up, without STP (ports forward at once). The
/// destructor deletes it.
class bridge {
public:
  bridge(const netns& ns, std::string name);
  ~bridge();
  bridge(const bridge&) = delete;
  bridge& operator=(const bridge&) = delete;

  /// Makes `port` (a link in the same namespace) a port of the bridge.
  void attach(const std::string& port) const;

private:
  const netns& ns_;
  std::string name_;
};

/// A TCP or UDP server on its own thread inside a namespace: every TCP
/// connection gets `reply` and is closed; every UDP datagram is answered
/// with `reply`. Stops and joins in the destructor.
class name_server {
public:
  enum class kind { tcp, udp };
  name_server(const netns& ns, kind k, uint16_t port, std::string reply);
  ~name_server();
  name_server(const name_server&) = delete;
  name_server& operator=(const name_server&) = delete;

  /// Connections (TCP) or datagrams (UDP) served so far.
  int served() const { return served_.load(); }

private:
  void loop(kind k, uint16_t port);

  const netns& ns_;
  std::string reply_;
  std::atomic<bool> stop_{false};
  std::atomic<bool> ready_{false};
  std::atomic<int> served_{0};
  std::exception_ptr error_;
  std::thread thread_;
};

/// From inside `ns`: connects to ip:port over TCP and returns everything
/// the server sent until it closed, or "" on failure or timeout.
std::string tcp_fetch(const netns& ns, const std::string& ip, uint16_t port,
                      std::chrono::milliseconds timeout
                      = std::chrono::milliseconds{1000});

/// From inside `ns`: sends one UDP datagram to ip:port and returns the
/// first answer, or "" on timeout.
std::string udp_fetch(const netns& ns, const std::string& ip, uint16_t port,
                      std::chrono::milliseconds timeout
                      = std::chrono::milliseconds{1000});

} // namespace networkd::test
