// SPDX-License-Identifier: MIT
// A stand-in for lainlet (which cannot run here), written from
// ../shared/reference/lainlet.md. Own sockets rather than cpp-httplib's
// server: the tests need byte-level control (split writes, stalls, drops).

#include "tests/support/lainlet_server.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <stdexcept>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "tests/support/util.hpp"

namespace networkd::test {

namespace {

using clock = std::chrono::steady_clock;

bool send_all(int fd, const char* p, size_t n) {
  while (n > 0) {
    auto w = ::send(fd, p, n, MSG_NOSIGNAL);
    if (w < 0 && errno == EINTR)
      continue;
    if (w <= 0)
      return false;
    p += w;
    n -= static_cast<size_t>(w);
  }
  return true;
}

// Reads the request head (up to the blank line); empty on error/timeout.
std::string read_head(int fd, int wake_fd) {
  std::string buf;
  auto deadline = clock::now() + std::chrono::seconds{5};
  char chunk[4096];
  while (buf.find("\r\n\r\n") == std::string::npos
         && buf.find("\n\n") == std::string::npos) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - clock::now());
    if (left.count() <= 0 || buf.size() > 16 * 1024)
      return {};
    pollfd fds[2] = {{fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    if (::poll(fds, 2, static_cast<int>(left.count())) <= 0)
      continue;
    if (fds[1].revents != 0)
      return {};
    auto n = ::recv(fd, chunk, sizeof(chunk), 0);
    if (n <= 0)
      return {};
    buf.append(chunk, static_cast<size_t>(n));
  }
  return buf;
}

std::string percent_decode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i] == '+' ? ' ' : s[i];
    }
  }
  return out;
}

std::map<std::string, std::string> query_of(const std::string& target) {
  std::map<std::string, std::string> out;
  auto q = target.find('?');
  if (q == std::string::npos)
    return out;
  auto rest = target.substr(q + 1);
  size_t pos = 0;
  while (pos <= rest.size()) {
    auto amp = rest.find('&', pos);
    auto part = rest.substr(pos, amp == std::string::npos ? std::string::npos
                                                          : amp - pos);
    auto eq = part.find('=');
    if (!part.empty())
      out[percent_decode(part.substr(0, eq))]
        = eq == std::string::npos ? "" : percent_decode(part.substr(eq + 1));
    if (amp == std::string::npos)
      break;
    pos = amp + 1;
  }
  return out;
}

bool truthy(const std::map<std::string, std::string>& q, const char* name) {
  auto it = q.find(name);
  return it != q.end() && it->second != "" && it->second != "0"
         && it->second != "false";
}

void plain_reply(int fd, int status, const char* reason,
                 const std::string& body) {
  auto head = "HTTP/1.1 " + std::to_string(status) + " " + reason
              + "\r\nContent-Type: text/plain\r\nContent-Length: "
              + std::to_string(body.size()) + "\r\nConnection: close\r\n\r\n";
  send_all(fd, head.data(), head.size());
  send_all(fd, body.data(), body.size());
}

} // namespace

lainlet_server::lainlet_server(uint16_t port, bool start_now) : port_(port) {
  if (port_ == 0 && !start_now)
    port_ = free_port();
  if (start_now)
    start();
}

lainlet_server::~lainlet_server() {
  stop();
}

std::string lainlet_server::endpoint() const {
  return "127.0.0.1:" + std::to_string(port_);
}

void lainlet_server::start() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (running_)
    return;
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0)
    throw std::runtime_error("lainlet_server: socket failed");
  int one = 1;
  ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = htons(port_);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0
      || ::listen(fd, 64) != 0) {
    ::close(fd);
    throw std::runtime_error("lainlet_server: bind/listen on port "
                             + std::to_string(port_) + ": "
                             + std::strerror(errno));
  }
  socklen_t len = sizeof(addr);
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  int p[2];
  if (::pipe2(p, O_CLOEXEC) != 0) {
    ::close(fd);
    throw std::runtime_error("lainlet_server: pipe failed");
  }
  listen_fd_ = fd;
  wake_rd_ = p[0];
  wake_wr_ = p[1];
  stopping_ = false;
  running_ = true;
  acceptor_ = std::thread{[this, fd, w = p[0]] { accept_loop(fd, w); }};
}

void lainlet_server::stop() {
  std::list<conn> conns;
  std::thread acceptor;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!running_)
      return;
    stopping_ = true;
    running_ = false;
    char x = 1;
    [[maybe_unused]] auto n = ::write(wake_wr_, &x, 1);
    for (auto& c : conns_)
      if (c.fd >= 0)
        ::shutdown(c.fd, SHUT_RDWR);
    acceptor = std::move(acceptor_);
  }
  cv_.notify_all();
  if (acceptor.joinable())
    acceptor.join();
  {
    // The acceptor is gone: no new connections are added.
    std::lock_guard<std::mutex> guard{mtx_};
    conns.splice(conns.end(), conns_);
  }
  for (auto& c : conns)
    if (c.thread.joinable())
      c.thread.join();
  std::lock_guard<std::mutex> guard{mtx_};
  ::close(listen_fd_);
  ::close(wake_rd_);
  ::close(wake_wr_);
  listen_fd_ = wake_rd_ = wake_wr_ = -1;
}

void lainlet_server::accept_loop(int listen_fd, int wake_fd) {
  for (;;) {
    pollfd fds[2] = {{listen_fd, POLLIN, 0}, {wake_fd, POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0 && errno != EINTR)
      return;
    if (fds[1].revents != 0)
      return;
    if ((fds[0].revents & POLLIN) == 0)
      continue;
    int fd = ::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0)
      continue;
    int one = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    std::lock_guard<std::mutex> guard{mtx_};
    if (stopping_) {
      ::close(fd);
      return;
    }
    ++connections_;
    conns_.emplace_back();
    auto* c = &conns_.back();
    c->fd = fd;
    c->thread = std::thread{[this, c, wake_fd] { serve(c, wake_fd); }};
  }
}

void lainlet_server::serve(conn* c, int wake_fd) {
  int fd = c->fd;
  auto head = read_head(fd, wake_fd);
  auto sp1 = head.find(' ');
  auto sp2 = sp1 == std::string::npos ? sp1 : head.find(' ', sp1 + 1);
  if (sp2 != std::string::npos && head.compare(0, sp1, "GET") == 0) {
    auto target = head.substr(sp1 + 1, sp2 - sp1 - 1);
    auto path = target.substr(0, target.find('?'));
    auto q = query_of(target);
    bool privileged;
    std::string data;
    std::string ports;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      targets_.push_back(target);
      privileged = privileged_;
      data = data_;
      ports = streamrouter_ports_;
    }
    if (path == "/v2/containers") {
      if (truthy(q, "watch")) {
        int hb = 0;
        if (auto it = q.find("heartbeat"); it != q.end())
          hb = std::atoi(it->second.c_str());
        serve_stream(fd, privileged ? target : std::string{}, hb);
      } else if (!privileged) {
        plain_reply(fd, 400, "Bad Request", "authorize failed, super required");
      } else {
        plain_reply(fd, 200, "OK", data);
      }
    } else if (path == "/v2/streamrouter/ports" && !ports.empty()) {
      plain_reply(fd, 200, "OK", ports);
    } else if (path == "/version") {
      plain_reply(fd, 200, "OK", "2.4.0-test");
    } else if (path == "/debug") {
      plain_reply(fd, 200, "OK", "{\"connections\":1}");
    } else {
      plain_reply(fd, 404, "Not Found", "404 not found");
    }
  } else if (!head.empty()) {
    plain_reply(fd, 400, "Bad Request", "bad request");
  }
  std::lock_guard<std::mutex> guard{mtx_};
  ::shutdown(fd, SHUT_RDWR);
  ::close(fd);
  c->fd = -1;
}

std::string lainlet_server::format(const queued& q) const {
  if (q.raw)
    return q.data;
  const char* nl = crlf_ ? "\r\n" : "\n";
  std::string out
    = "id: " + std::to_string(q.id) + nl + "event: " + q.name + nl;
  if (q.has_data)
    out += "data: " + q.data + nl;
  out += nl;
  return out;
}

void lainlet_server::write_stream(int fd, const std::string& bytes,
                                  bool chunked) {
  std::string framed;
  if (chunked) {
    char size[32];
    std::snprintf(size, sizeof(size), "%zx\r\n", bytes.size());
    framed = size + bytes + "\r\n";
  } else {
    framed = bytes;
  }
  size_t split;
  std::chrono::microseconds pause;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    split = split_;
    pause = pause_;
  }
  if (split == 0) {
    send_all(fd, framed.data(), framed.size());
    return;
  }
  for (size_t i = 0; i < framed.size(); i += split) {
    if (!send_all(fd, framed.data() + i, std::min(split, framed.size() - i)))
      return;
    std::this_thread::sleep_for(pause);
  }
}

void lainlet_server::serve_stream(int fd, const std::string& target,
                                  int heartbeat) {
  std::unique_lock<std::mutex> lock{mtx_};
  uint64_t gen = drop_gen_;
  bool chunked = chunked_;
  bool headers_sent = false;
  bool counted = false;
  size_t next = queue_.size();
  auto interval = std::chrono::seconds{heartbeat};
  auto next_hb = clock::now() + interval;
  for (;;) {
    cv_.wait_for(lock, std::chrono::milliseconds{20});
    if (stopping_ || drop_gen_ != gen)
      break;
    std::string out;
    if (!stalled_) {
      if (!headers_sent) {
        out = std::string("HTTP/1.1 200 OK\r\n")
              + "Content-Type: text/event-stream\r\n"
              + "Cache-Control: no-cache\r\n"
              + (chunked ? "Transfer-Encoding: chunked\r\n" : "") + "\r\n";
        headers_sent = true;
        next = queue_.size();
        lock.unlock();
        write_stream(fd, out, false);
        lock.lock();
        out.clear();
        if (target.empty()) { // unprivileged: an error event, then close
          out = format(
            {0, "error", "authorize failed, super required", true, false});
          lock.unlock();
          write_stream(fd, out, chunked);
          break;
        }
        ++streams_opened_;
        ++open_streams_;
        counted = true;
        out = format({id_, "init", data_, true, false});
        next_hb = clock::now() + interval;
      }
      for (; next < queue_.size(); ++next)
        out += format(queue_[next]);
      if (heartbeat > 0 && clock::now() >= next_hb) {
        out += format({0, "heartbeat", "", false, false});
        next_hb = clock::now() + interval;
      }
    } else {
      next_hb = clock::now() + interval;
    }
    lock.unlock();
    if (!out.empty())
      write_stream(fd, out, chunked);
    // The client closing its end shows as a readable EOF (or an error).
    pollfd pfd{fd, POLLIN, 0};
    bool gone = false;
    if (::poll(&pfd, 1, 0) > 0) {
      char buf[256];
      auto n = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
      gone = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
    }
    lock.lock();
    if (gone)
      break;
  }
  if (!lock.owns_lock())
    lock.lock();
  if (counted)
    --open_streams_;
}

std::string
lainlet_server::containers_json(const std::vector<lainlet_container>& cs) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w{sb};
  w.StartObject();
  for (auto& c : cs) {
    for (auto* node : {&c.nodename, &c.nodeip}) {
      auto key = *node + "/" + c.id;
      w.Key(key.c_str());
      w.StartObject();
      w.Key("app");
      w.String(c.app.c_str());
      w.Key("app_version");
      w.String(c.app_version.c_str());
      w.Key("proc");
      w.String(c.proc.c_str());
      w.Key("nodename");
      w.String(c.nodename.c_str());
      w.Key("nodeip");
      w.String(c.nodeip.c_str());
      w.Key("ip");
      w.String(c.ip.c_str());
      w.Key("port");
      w.Int(c.port);
      w.Key("instanceNo");
      w.Int(c.instance);
      w.EndObject();
    }
  }
  w.EndObject();
  return sb.GetString();
}

void lainlet_server::broadcast(queued q) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    queue_.push_back(std::move(q));
  }
  cv_.notify_all();
}

void lainlet_server::set_data(std::string json) {
  queued q;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    data_ = std::move(json);
    q = {++id_, "update", data_, true, false};
  }
  broadcast(std::move(q));
}

void lainlet_server::set_containers(const std::vector<lainlet_container>& cs) {
  set_data(containers_json(cs));
}

void lainlet_server::repeat_data() {
  queued q;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    q = {++id_, "update", data_, true, false};
  }
  broadcast(std::move(q));
}

void lainlet_server::send_delete(std::string json) {
  queued q;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    data_ = std::move(json);
    q = {++id_, "delete", data_, true, false};
  }
  broadcast(std::move(q));
}

void lainlet_server::send_error(const std::string& message) {
  broadcast({0, "error", message, true, false});
}

void lainlet_server::send_raw(std::string bytes) {
  broadcast({0, "", std::move(bytes), true, true});
}

void lainlet_server::drop_connections() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    ++drop_gen_;
    for (auto& c : conns_)
      if (c.fd >= 0)
        ::shutdown(c.fd, SHUT_RDWR);
  }
  cv_.notify_all();
}

void lainlet_server::set_stalled(bool stalled) {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stalled_ = stalled;
  }
  cv_.notify_all();
}

void lainlet_server::set_split(size_t bytes, std::chrono::microseconds pause) {
  std::lock_guard<std::mutex> guard{mtx_};
  split_ = bytes;
  pause_ = pause;
}

void lainlet_server::set_chunked(bool chunked) {
  std::lock_guard<std::mutex> guard{mtx_};
  chunked_ = chunked;
}

void lainlet_server::set_crlf(bool crlf) {
  std::lock_guard<std::mutex> guard{mtx_};
  crlf_ = crlf;
}

void lainlet_server::set_privileged(bool privileged) {
  std::lock_guard<std::mutex> guard{mtx_};
  privileged_ = privileged;
}

size_t lainlet_server::connections() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return connections_;
}

size_t lainlet_server::streams_opened() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return streams_opened_;
}

size_t lainlet_server::open_streams() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return open_streams_;
}

void lainlet_server::set_streamrouter_ports(std::string body) {
  std::lock_guard<std::mutex> guard{mtx_};
  streamrouter_ports_ = std::move(body);
}

std::vector<std::string> lainlet_server::targets() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return targets_;
}

} // namespace networkd::test
