// SPDX-License-Identifier: MIT
// A stand-in for lainlet in tests: lainlet cannot run on these machines, so
// this small HTTP server speaks its protocol as ../shared/reference/lainlet.md
// documents it, and can misbehave on demand.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace networkd::test {

/// One container as lainlet reports it.
struct lainlet_container {
  std::string app = "app";
  std::string app_version = "v1";
  std::string proc = "app.web.web";
  std::string nodename = "node1";
  std::string nodeip = "10.0.0.1";
  std::string ip = "172.20.0.2";
  int port = 80;
  int instance = 1;
  std::string id = "c0ffee";
};

/// Serves, on 127.0.0.1:
/// - GET /v2/containers?nodename=N[&watch=1][&heartbeat=S]: the data set by
///   the test (not filtered), as a plain body or as an event stream: `init`
///   with the current data on connect, then `update`/`delete`/`error` events
///   as the test sends them and a `heartbeat` every S seconds;
/// - GET /v2/streamrouter/ports: the body set by set_streamrouter_ports
///   (plain only; 404 until set);
/// - GET /version and /debug (plain only); anything else is a 404.
/// One accept thread and one thread per connection; the destructor stops
/// and joins them all.
class lainlet_server {
public:
  /// Listens on `port` (0: any free one). With start == false the port is
  /// reserved by number only and nothing listens until start().
  explicit lainlet_server(uint16_t port = 0, bool start = true);
  ~lainlet_server();
  lainlet_server(const lainlet_server&) = delete;
  lainlet_server& operator=(const lainlet_server&) = delete;

  uint16_t port() const { return port_; }
  /// "127.0.0.1:PORT"
  std::string endpoint() const;

  /// Starts listening (same port); no-op when running.
  void start();
  /// Closes the listener and every connection (lainlet going away).
  void stop();

  // -- data -----------------------------------------------------------------

  /// The containers data as lainlet builds it: each container under
  /// "NODENAME/ID" and "NODEIP/ID".
  static std::string containers_json(const std::vector<lainlet_container>& cs);
  /// Sets the data; open streams get an `update` event with a new id.
  void set_data(std::string json);
  void set_containers(const std::vector<lainlet_container>& cs);
  /// The body of /v2/streamrouter/ports (a JSON list of ports as lainlet
  /// gives it, or anything else to test bad bodies).
  void set_streamrouter_ports(std::string body);
  /// Sends the current data again as an `update` (lainlet repeats).
  void repeat_data();
  /// Sets the data and sends it as a `delete` event.
  void send_delete(std::string json);
  /// An `error` event (id 0) to every open stream; the stream stays open.
  void send_error(const std::string& message);
  /// Raw bytes to every open stream (garbage, partial events...).
  void send_raw(std::string bytes);

  // -- faults ---------------------------------------------------------------

  /// Closes every open connection now (new ones are served).
  void drop_connections();
  /// While stalled, streams get nothing (no headers, events or heartbeats)
  /// but stay open; what was queued is sent after.
  void set_stalled(bool stalled);
  /// Writes stream bytes in pieces of `bytes` with `pause` between them
  /// (TCP_NODELAY, so they leave as separate segments); 0: whole writes.
  void set_split(size_t bytes, std::chrono::microseconds pause
                               = std::chrono::microseconds{200});
  /// Transfer-Encoding: chunked (default) or an unframed body until close.
  void set_chunked(bool chunked);
  /// Lines end in "\r\n" instead of "\n".
  void set_crlf(bool crlf);
  /// When false, /v2/containers answers like lainlet to an unprivileged
  /// caller: an `error` event then close (watch), or a 400 body (plain).
  void set_privileged(bool privileged);

  // -- observations ---------------------------------------------------------

  /// Connections accepted so far.
  size_t connections() const;
  /// Streams that got their headers and init so far.
  size_t streams_opened() const;
  /// Streams open now.
  size_t open_streams() const;
  /// Request targets seen, in order.
  std::vector<std::string> targets() const;

private:
  struct queued {
    uint64_t id = 0;
    std::string name;
    std::string data;
    bool has_data = false;
    bool raw = false; ///< data is sent verbatim
  };
  struct conn {
    int fd = -1;
    std::thread thread;
  };

  void accept_loop(int listen_fd, int wake_fd);
  void serve(conn* c, int wake_fd);
  void serve_stream(int fd, const std::string& target, int heartbeat);
  std::string format(const queued& q) const;
  void write_stream(int fd, const std::string& bytes, bool chunked);
  void broadcast(queued q);

  uint16_t port_ = 0;
  mutable std::mutex mtx_;
  std::condition_variable cv_;
  bool running_ = false;
  bool stopping_ = false;
  int listen_fd_ = -1;
  int wake_rd_ = -1;
  int wake_wr_ = -1;
  std::thread acceptor_;
  std::list<conn> conns_;

  std::string data_ = "{}";
  std::string streamrouter_ports_; ///< "" → 404
  uint64_t id_ = 1;
  std::vector<queued> queue_;
  uint64_t drop_gen_ = 0;
  bool stalled_ = false;
  size_t split_ = 0;
  std::chrono::microseconds pause_{200};
  bool chunked_ = true;
  bool crlf_ = false;
  bool privileged_ = true;

  size_t connections_ = 0;
  size_t streams_opened_ = 0;
  size_t open_streams_ = 0;
  std::vector<std::string> targets_;
};

} // namespace networkd::test
