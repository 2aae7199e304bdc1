// SPDX-License-Identifier: MIT
// etcd v3 client: endpoints, failover, auth, unary calls and lease keep-alive.
#include <arpa/inet.h>
#include <grpcpp/grpcpp.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <exception>
#include <mutex>
#include <thread>

#include "net/base/file.hpp"
#include "net/base/host_port.hpp"
#include "net/base/log.hpp"
#include "net/etcd/etcd.hpp"
#include "net/etcd/etcd_impl.hpp"

namespace networkd::etcd {

namespace {

/// gRPC's own lines (handshake failures on every reconnect, ...) go to our
/// log at debug: the client logs each failure's real reason once itself.
void grpc_to_debug(gpr_log_func_args* args) {
  NWD_LOG_DEBUG("grpc", "{}:{}: {}", args->file, args->line, args->message);
}

constexpr const char* component = "etcd";

/// CA, certificate and key files are a few KB; a chain of many certificates
/// stays far below this.
constexpr size_t max_tls_file = 1 << 20;

std::chrono::system_clock::time_point to_system(steady::time_point t) {
  auto left = std::chrono::duration_cast<std::chrono::system_clock::duration>(
    t - steady::now());
  return std::chrono::system_clock::now() + left;
}

std::string trim(const std::string& s) {
  auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos)
    return {};
  auto e = s.find_last_not_of(" \t\r\n");
  return s.substr(b, e - b + 1);
}

struct endpoint_parts {
  std::string target; ///< host:port as gRPC dials it
  bool https = false;
};

/// Checks one endpoint and splits off its scheme. Empty on bad input.
std::optional<endpoint_parts> split_endpoint(std::string text) {
  endpoint_parts out;
  auto scheme_end = text.find("://");
  if (scheme_end != std::string::npos) {
    auto scheme = text.substr(0, scheme_end);
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (scheme == "https")
      out.https = true;
    else if (scheme != "http")
      return std::nullopt;
    text = text.substr(scheme_end + 3);
  }
  while (!text.empty() && text.back() == '/')
    text.pop_back();
  auto hp = split_host_port(text);
  if (!hp
      || (!hp->bracketed && hp->host.find_first_of(":/ ") != std::string::npos))
    return std::nullopt;
  out.target = hp->bracketed ? "[" + hp->host + "]" : hp->host;
  out.target += ":" + std::to_string(hp->port);
  return out;
}

/// Runs f, turning any exception into an "internal" failure.
template <class T, class F>
result<T> guarded(const char* what, F&& f) {
  try {
    return f();
  } catch (const std::exception& e) {
    return make_failure("internal", std::string(what) + ": " + e.what());
  } catch (...) {
    return make_failure("internal", std::string(what) + ": unknown error");
  }
}

etcdserverpb::RequestOp to_request_op(const txn_op& op) {
  etcdserverpb::RequestOp out;
  switch (op.what) {
    case txn_op::kind::put: {
      auto* put = out.mutable_request_put();
      put->set_key(op.key);
      put->set_value(op.value);
      put->set_lease(op.lease);
      break;
    }
    case txn_op::kind::erase: {
      auto* del = out.mutable_request_delete_range();
      del->set_key(op.key);
      if (op.prefix)
        del->set_range_end(prefix_end(op.key));
      break;
    }
    case txn_op::kind::range: {
      auto* range = out.mutable_request_range();
      range->set_key(op.key);
      if (op.prefix)
        range->set_range_end(prefix_end(op.key));
      break;
    }
  }
  return out;
}

etcdserverpb::Compare to_compare(const compare& c) {
  using pb = etcdserverpb::Compare;
  pb out;
  out.set_key(c.key);
  switch (c.how) {
    case compare::op::equal:
      out.set_result(pb::EQUAL);
      break;
    case compare::op::not_equal:
      out.set_result(pb::NOT_EQUAL);
      break;
    case compare::op::greater:
      out.set_result(pb::GREATER);
      break;
    case compare::op::less:
      out.set_result(pb::LESS);
      break;
  }
  switch (c.what) {
    case compare::target::value:
      out.set_target(pb::VALUE);
      out.set_value(c.value);
      break;
    case compare::target::create_revision:
      out.set_target(pb::CREATE);
      out.set_create_revision(c.number);
      break;
    case compare::target::mod_revision:
      out.set_target(pb::MOD);
      out.set_mod_revision(c.number);
      break;
    case compare::target::version:
      out.set_target(pb::VERSION);
      out.set_version(c.number);
      break;
    case compare::target::lease:
      out.set_target(pb::LEASE);
      out.set_lease(c.number);
      break;
  }
  return out;
}

// -- connection probe ---------------------------------------------------------

/// Closes a socket.
struct fd_guard {
  int fd = -1;
  ~fd_guard() {
    if (fd >= 0)
      ::close(fd);
  }
};

/// Blocks SIGPIPE in this thread while OpenSSL writes to a socket the peer
/// may have closed, and drops one raised meanwhile.
class sigpipe_guard {
public:
  sigpipe_guard() {
    sigemptyset(&pipe_);
    sigaddset(&pipe_, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_, &old_);
  }
  ~sigpipe_guard() {
    timespec zero{0, 0};
    while (sigtimedwait(&pipe_, nullptr, &zero) > 0) {
    }
    pthread_sigmask(SIG_SETMASK, &old_, nullptr);
  }
  sigpipe_guard(const sigpipe_guard&) = delete;
  sigpipe_guard& operator=(const sigpipe_guard&) = delete;

private:
  sigset_t pipe_;
  sigset_t old_;
};

/// Waits for `events` on fd until deadline; false on timeout or error.
bool wait_fd(int fd, short events, steady::time_point deadline) {
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      deadline - steady::now());
    if (left.count() <= 0)
      return false;
    pollfd p{fd, events, 0};
    auto n = ::poll(&p, 1, static_cast<int>(left.count()));
    if (n > 0)
      return true;
    if (n < 0 && errno != EINTR)
      return false;
  }
}

/// The reason of OpenSSL's first queued error, or `otherwise`.
std::string ssl_reason(const char* otherwise) {
  auto code = ERR_get_error();
  ERR_clear_error();
  if (code == 0)
    return otherwise;
  const char* reason = ERR_reason_error_string(code);
  return reason != nullptr ? reason : otherwise;
}

/// Why a handshake step failed: the verify result when the server's
/// certificate was rejected, else OpenSSL's reason (an alert from the
/// server, a bad protocol version, ...).
std::string handshake_failure(SSL* ssl, int rc) {
  auto verify = SSL_get_verify_result(ssl);
  if (verify != X509_V_OK) {
    ERR_clear_error();
    return std::string("certificate verify failed: ")
           + X509_verify_cert_error_string(verify);
  }
  if (SSL_get_error(ssl, rc) == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)
    return "TLS handshake failed: connection closed by the server";
  return "TLS handshake failed: " + ssl_reason("unknown error");
}

/// TCP connect to the first address of host:port within deadline; returns
/// the socket or -1 with *why set.
int connect_to(const std::string& host, const std::string& port,
               steady::time_point deadline, std::string* why) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = ::getaddrinfo(host.c_str(), port.c_str(), &hints, &res);
      rc != 0) {
    *why = "resolve " + host + ": " + ::gai_strerror(rc);
    return -1;
  }
  std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)> list{res,
                                                            ::freeaddrinfo};
  int fd
    = ::socket(res->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    *why = std::string("socket: ") + std::strerror(errno);
    return -1;
  }
  fd_guard guard{fd};
  if (::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    if (errno != EINPROGRESS) {
      *why = std::string("connect: ") + std::strerror(errno);
      return -1;
    }
    if (!wait_fd(fd, POLLOUT, deadline)) {
      *why = "connect: no answer in time";
      return -1;
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      *why = std::string("connect: ") + std::strerror(err);
      return -1;
    }
  }
  guard.fd = -1;
  return fd;
}

/// Loads the CA, certificate and key as gRPC does; empty or why not.
std::string load_tls_files(SSL_CTX* ctx, const client_config& cfg) {
  SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, nullptr);
  if (cfg.ca_file.empty())
    SSL_CTX_set_default_verify_paths(ctx);
  else if (SSL_CTX_load_verify_locations(ctx, cfg.ca_file.c_str(), nullptr)
           != 1)
    return "CA file " + cfg.ca_file + ": " + ssl_reason("unusable");
  if (!cfg.cert_file.empty()
      && SSL_CTX_use_certificate_chain_file(ctx, cfg.cert_file.c_str()) != 1)
    return "certificate file " + cfg.cert_file + ": " + ssl_reason("unusable");
  if (!cfg.key_file.empty()
      && SSL_CTX_use_PrivateKey_file(ctx, cfg.key_file.c_str(),
                                     SSL_FILETYPE_PEM)
           != 1)
    return "key file " + cfg.key_file + ": " + ssl_reason("unusable");
  static const unsigned char alpn[] = {2, 'h', '2'};
  SSL_CTX_set_alpn_protos(ctx, alpn, sizeof(alpn));
  return {};
}

/// Runs the handshake on fd (non-blocking) until deadline; empty or why not.
std::string handshake(SSL* ssl, int fd, steady::time_point deadline) {
  for (;;) {
    auto rc = SSL_connect(ssl);
    if (rc == 1)
      break;
    auto err = SSL_get_error(ssl, rc);
    short events = err == SSL_ERROR_WANT_READ    ? POLLIN
                   : err == SSL_ERROR_WANT_WRITE ? POLLOUT
                                                 : 0;
    if (events == 0)
      return handshake_failure(ssl, rc);
    if (!wait_fd(fd, events, deadline))
      return "TLS handshake: no answer in time";
  }
  // With TLS 1.3 the server checks our certificate after the client has
  // finished: its alert comes with the first read. A server that says
  // nothing for a moment has accepted us.
  auto quiet
    = std::min(deadline, steady::now() + std::chrono::milliseconds(300));
  for (;;) {
    char byte;
    auto rc = SSL_peek(ssl, &byte, 1);
    if (rc > 0)
      return {};
    auto err = SSL_get_error(ssl, rc);
    if (err == SSL_ERROR_WANT_READ) {
      if (!wait_fd(fd, POLLIN, quiet))
        return {};
      continue;
    }
    if (err == SSL_ERROR_ZERO_RETURN)
      return "TLS: the server closed the connection after the handshake";
    return handshake_failure(ssl, rc);
  }
}

} // namespace

// -- helpers shared with the watcher ------------------------------------------

std::chrono::milliseconds login_backoff(unsigned failures, double jitter) {
  using std::chrono::milliseconds;
  if (failures == 0)
    return milliseconds(0);
  auto pause = max_login_backoff;
  if (failures <= 5)
    pause = std::min(max_login_backoff,
                     milliseconds(1000) * (int64_t{1} << (failures - 1)));
  jitter = std::clamp(jitter, 0.0, 1.0);
  return pause
         + milliseconds(static_cast<int64_t>(static_cast<double>(pause.count())
                                             * jitter / 5));
}

bool is_token_reason(const std::string& message) {
  for (auto* text : {"invalid auth token", "auth store is old",
                     "user name is empty", "user name not found"})
    if (message.find(text) != std::string::npos)
      return true;
  return false;
}

bool is_token_error(const grpc::Status& st) {
  return st.error_code() == grpc::StatusCode::UNAUTHENTICATED
         || is_token_reason(st.error_message());
}

std::string probe(const std::string& target, bool tls, const client_config& cfg,
                  std::chrono::milliseconds timeout) {
  auto deadline = steady::now() + timeout;
  // Targets come from split_endpoint: always host:port.
  auto hp = split_host_port(target);
  auto host = hp ? hp->host : target;
  auto port = hp ? std::to_string(hp->port) : std::string{};
  std::string why;
  fd_guard fd{connect_to(host, port, deadline, &why)};
  if (fd.fd < 0 || !tls)
    return why;
  sigpipe_guard no_sigpipe;
  ERR_clear_error();
  std::unique_ptr<SSL_CTX, decltype(&SSL_CTX_free)> ctx{
    SSL_CTX_new(TLS_client_method()), SSL_CTX_free};
  if (!ctx)
    return "TLS: " + ssl_reason("out of memory");
  if (auto bad = load_tls_files(ctx.get(), cfg); !bad.empty())
    return bad;
  std::unique_ptr<SSL, decltype(&SSL_free)> ssl{SSL_new(ctx.get()), SSL_free};
  if (!ssl)
    return "TLS: " + ssl_reason("out of memory");
  SSL_set_fd(ssl.get(), fd.fd);
  // Check the name the way gRPC does: the IP address, or the host name.
  in6_addr ip;
  if (::inet_pton(AF_INET, host.c_str(), &ip) == 1
      || ::inet_pton(AF_INET6, host.c_str(), &ip) == 1) {
    X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host.c_str());
  } else {
    SSL_set_tlsext_host_name(ssl.get(), host.c_str());
    SSL_set1_host(ssl.get(), host.c_str());
  }
  auto out = handshake(ssl.get(), fd.fd, deadline);
  ERR_clear_error();
  return out;
}

std::string prefix_end(const std::string& key) {
  std::string end = key;
  while (!end.empty()) {
    auto last = static_cast<unsigned char>(end.back());
    if (last < 0xff) {
      end.back() = static_cast<char>(last + 1);
      return end;
    }
    end.pop_back();
  }
  // Every byte was 0xff (or the key was empty): the range is open-ended.
  return std::string(1, '\0');
}

key_value to_key_value(const mvccpb::KeyValue& kv) {
  key_value out;
  out.key = kv.key();
  out.value = kv.value();
  out.create_revision = kv.create_revision();
  out.mod_revision = kv.mod_revision();
  out.version = kv.version();
  out.lease = kv.lease();
  return out;
}

failure to_failure(const grpc::Status& st, const std::string& what,
                   const std::string& target) {
  const auto& msg = st.error_message();
  auto text = what + " on " + target + ": " + msg;
  auto has = [&](const char* s) { return msg.find(s) != std::string::npos; };
  switch (st.error_code()) {
    case grpc::StatusCode::UNAVAILABLE:
      return make_failure("unavailable", text);
    case grpc::StatusCode::CANCELLED:
      return make_failure("unavailable", text + " (cancelled)");
    case grpc::StatusCode::DEADLINE_EXCEEDED:
      return make_failure("timeout", text);
    case grpc::StatusCode::OUT_OF_RANGE:
      return make_failure(has("compacted") ? "compacted" : "invalid", text);
    case grpc::StatusCode::UNAUTHENTICATED:
    case grpc::StatusCode::PERMISSION_DENIED:
      return make_failure("auth", text);
    case grpc::StatusCode::INVALID_ARGUMENT:
    case grpc::StatusCode::FAILED_PRECONDITION:
      return make_failure(has("auth") || has("user") ? "auth" : "invalid",
                          text);
    case grpc::StatusCode::NOT_FOUND:
      return make_failure("not_found", text);
    default:
      return make_failure("internal", text);
  }
}

bool cancel_slot::attach(grpc::ClientContext* ctx) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (cancelled_)
    return false;
  ctx_ = ctx;
  return true;
}

void cancel_slot::detach() {
  std::lock_guard<std::mutex> guard{mtx_};
  ctx_ = nullptr;
}

void cancel_slot::cancel() {
  std::lock_guard<std::mutex> guard{mtx_};
  cancelled_ = true;
  if (ctx_ != nullptr)
    ctx_->TryCancel();
}

void cancel_slot::interrupt() {
  std::lock_guard<std::mutex> guard{mtx_};
  if (ctx_ != nullptr)
    ctx_->TryCancel();
}

bool cancel_slot::cancelled() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return cancelled_;
}

slot_guard::slot_guard(cancel_slot* slot, grpc::ClientContext* ctx)
    : slot_(slot) {
  if (slot_ != nullptr)
    ok_ = slot_->attach(ctx);
}

slot_guard::~slot_guard() {
  if (slot_ != nullptr && ok_)
    slot_->detach();
}

// -- endpoints ----------------------------------------------------------------

result<std::vector<std::string>> parse_endpoints(const std::string& text) {
  std::vector<std::string> out;
  std::string::size_type pos = 0;
  while (pos <= text.size()) {
    auto comma = text.find(',', pos);
    if (comma == std::string::npos)
      comma = text.size();
    auto entry = trim(text.substr(pos, comma - pos));
    pos = comma + 1;
    if (entry.empty())
      continue;
    while (entry.size() > 1 && entry.back() == '/')
      entry.pop_back();
    if (!split_endpoint(entry))
      return make_failure("invalid", "bad etcd endpoint '" + entry
                                       + "' (want [http[s]://]host:port)");
    out.push_back(entry);
  }
  if (out.empty())
    return make_failure("invalid", "no etcd endpoint given");
  return out;
}

// -- lease keep-alive stream --------------------------------------------------

/// One LeaseKeepAlive stream, driven through a completion queue so that every
/// step has a deadline. At most one operation is in flight at a time.
struct keepalive_stream {
  using stream_type
    = grpc::ClientAsyncReaderWriter<etcdserverpb::LeaseKeepAliveRequest,
                                    etcdserverpb::LeaseKeepAliveResponse>;
  enum class outcome { ok, failed, timeout };

  size_t idx = 0;
  std::string token; ///< the one the stream was opened with
  grpc::ClientContext ctx;
  grpc::CompletionQueue cq;
  std::unique_ptr<stream_type> rw;
  bool pending = false;
  bool closed = false;

  void* tag() { return this; }

  outcome wait(steady::time_point deadline) {
    void* got = nullptr;
    bool ok = false;
    auto r = cq.AsyncNext(&got, &ok, to_system(deadline));
    if (r == grpc::CompletionQueue::TIMEOUT)
      return outcome::timeout;
    pending = false;
    if (r == grpc::CompletionQueue::SHUTDOWN)
      return outcome::failed;
    return ok ? outcome::ok : outcome::failed;
  }

  /// Cancels the call and collects its final status.
  grpc::Status close() {
    if (closed)
      return grpc::Status::CANCELLED;
    closed = true;
    void* got = nullptr;
    bool ok = false;
    grpc::Status st;
    // Cancel first: the pending step (after a timeout) and Finish then
    // complete at once instead of waiting for the server.
    ctx.TryCancel();
    if (pending) {
      cq.Next(&got, &ok);
      pending = false;
    }
    if (rw) {
      rw->Finish(&st, tag());
      cq.Next(&got, &ok);
    }
    cq.Shutdown();
    while (cq.Next(&got, &ok)) {
    }
    return st;
  }

  ~keepalive_stream() { close(); }
};

// -- client::impl -------------------------------------------------------------

client::impl::impl(client_config config) : cfg(std::move(config)) {
  std::vector<endpoint_parts> parts;
  bool https = false;
  for (auto& e : cfg.endpoints) {
    auto p = split_endpoint(trim(e));
    if (!p) {
      config_error = make_failure("invalid", "bad etcd endpoint '" + e + "'");
      return;
    }
    https = https || p->https;
    parts.push_back(*p);
  }
  if (parts.empty()) {
    config_error = make_failure("invalid", "no etcd endpoint configured");
    return;
  }
  // TLS is all or nothing: a CA file or any https:// endpoint turns it on.
  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (!cfg.ca_file.empty() || https) {
    grpc::SslCredentialsOptions opts;
    auto load = [&](const std::string& path, std::string& out) {
      if (path.empty())
        return true;
      auto text = read_file(path, max_tls_file);
      if (text) {
        out = std::move(*text);
        return true;
      }
      config_error = make_failure("invalid", "cannot read " + path + ": "
                                               + text.error().message);
      return false;
    };
    if (!load(cfg.ca_file, opts.pem_root_certs)
        || !load(cfg.cert_file, opts.pem_cert_chain)
        || !load(cfg.key_file, opts.pem_private_key))
      return;
    creds = grpc::SslCredentials(opts);
    tls = true;
  } else {
    creds = grpc::InsecureChannelCredentials();
  }
  grpc::ChannelArguments args;
  // Reconnect quickly after a member comes back, and give up a connect
  // attempt after the dial timeout.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 1000);
  args.SetInt(
    GRPC_ARG_MIN_RECONNECT_BACKOFF_MS,
    static_cast<int>(std::max<int64_t>(100, cfg.dial_timeout.count())));
  // Detect dead peers on long-lived streams; etcd refuses pings more often
  // than every 5 s.
  args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS, 10000);
  args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS, 5000);
  // No bandwidth-delay probes: they ping after received data to size the
  // flow-control window, which a connection carrying a keep-alive a second
  // and watch events never needs, and each ping and its answer re-arm
  // gRPC's timers (bench/idle.sh: wake-ups of an idle node).
  args.SetInt(GRPC_ARG_HTTP2_BDP_PROBE, 0);
  args.SetMaxReceiveMessageSize(-1);
  for (auto& p : parts) {
    member m;
    m.target = p.target;
    m.channel = grpc::CreateCustomChannel(p.target, creds, args);
    m.kv = etcdserverpb::KV::NewStub(m.channel);
    m.watch = etcdserverpb::Watch::NewStub(m.channel);
    m.lease = etcdserverpb::Lease::NewStub(m.channel);
    m.maintenance = etcdserverpb::Maintenance::NewStub(m.channel);
    m.auth = etcdserverpb::Auth::NewStub(m.channel);
    members.push_back(std::move(m));
  }
}

client::impl::~impl() {
  std::lock_guard<std::mutex> guard{keepalive_mtx_};
  keepalive_.reset();
}

size_t client::impl::current() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return current_;
}

void client::impl::mark_failed(size_t idx) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (current_ != idx || members.size() < 2)
    return;
  current_ = (idx + 1) % members.size();
  NWD_LOG_WARN(component, "member {} failed, trying {}", members[idx].target,
               members[current_].target);
}

void client::impl::mark_ok(size_t idx) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (current_ == idx)
    return;
  current_ = idx;
  NWD_LOG_INFO(component, "using member {}", members[idx].target);
}

std::string client::impl::token() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return token_;
}

client_stats client::impl::stats() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stats_;
}

void client::impl::drop_token(const std::string& token) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (token_ == token)
    token_.clear();
  auth_disabled_logged_ = false;
}

std::string client::impl::prepare(grpc::ClientContext& ctx,
                                  steady::time_point deadline) {
  ctx.set_deadline(to_system(deadline));
  auto tok = token();
  if (!tok.empty())
    ctx.AddMetadata("token", tok);
  return tok;
}

void client::impl::report(const std::string& topic, const std::string& reason) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (reason.empty() && reported_.empty())
    return;
  auto& last = reported_[topic];
  if (last == reason)
    return;
  if (reason.empty())
    NWD_LOG_INFO(component, "{}: works again", topic);
  else
    NWD_LOG_WARN(component, "{}", reason);
  last = reason;
}

result<unit> client::impl::ensure_token(member& m,
                                        steady::time_point deadline) {
  if (cfg.user.empty())
    return unit{};
  auto have_token = [this] { return !token_.empty() || auth_disabled_logged_; };
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (have_token())
      return unit{};
  }
  // One login at a time: the others wait for its token.
  std::unique_lock<std::timed_mutex> login{login_mtx_, std::defer_lock};
  if (!login.try_lock_until(deadline))
    return make_failure("timeout", "authenticate as " + cfg.user
                                     + ": another login is still running");
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (have_token())
      return unit{};
    if (!gate_.open(steady::now())) {
      ++stats_.logins_deferred;
      // The same text as the refusal itself: callers that log once per
      // change of reason stay quiet.
      return make_failure("auth", gate_.last_error);
    }
    ++stats_.logins;
  }
  grpc::ClientContext ctx;
  ctx.set_deadline(to_system(deadline));
  etcdserverpb::AuthenticateRequest req;
  req.set_name(cfg.user);
  req.set_password(cfg.password);
  etcdserverpb::AuthenticateResponse resp;
  auto st = m.auth->Authenticate(&ctx, req, &resp);
  std::lock_guard<std::mutex> guard{mtx_};
  if (st.ok()) {
    token_ = resp.token();
    gate_.succeeded();
    NWD_LOG_INFO(component, "authenticated as {} on {}", cfg.user, m.target);
    return unit{};
  }
  if (st.error_message().find("not enabled") != std::string::npos) {
    // A user is configured but the cluster has auth off: go on without a
    // token (until an auth error says otherwise).
    if (!auth_disabled_logged_)
      NWD_LOG_WARN(component, "auth is not enabled on {}; ignoring user {}",
                   m.target, cfg.user);
    auth_disabled_logged_ = true;
    gate_.succeeded();
    return unit{};
  }
  auto f = to_failure(st, "authenticate as " + cfg.user, m.target);
  if (f.code == "unavailable" || f.code == "timeout")
    return f;
  // Refused (bad password, unknown user): each try costs etcd a bcrypt
  // hash, so wait longer and longer before the next one.
  f.code = "auth";
  ++stats_.login_failures;
  bool changed = f.message != gate_.last_error;
  std::uniform_real_distribution<double> jitter{0.0, 1.0};
  gate_.refused(steady::now(), jitter(rng_), f.message);
  auto pause = std::chrono::duration_cast<std::chrono::milliseconds>(
    gate_.next_try - steady::now());
  if (changed)
    NWD_LOG_WARN(component, "{}; next login in {} ms", f.message,
                 pause.count());
  else
    NWD_LOG_DEBUG(component, "{}; next login in {} ms", f.message,
                  pause.count());
  return f;
}

void client::impl::connected(size_t idx) {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& m = members[idx];
  if (m.reason.empty())
    return;
  NWD_LOG_INFO(component, "connected to {}", m.target);
  m.reason.clear();
}

void client::impl::diagnose(size_t idx, steady::time_point deadline) {
  auto& m = members[idx];
  auto now = steady::now();
  auto budget = std::min<steady::duration>(cfg.dial_timeout, deadline - now);
  if (budget < std::chrono::milliseconds(50))
    return;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (m.probed_at != steady::time_point{}
        && now - m.probed_at < probe_interval)
      return;
    m.probed_at = now;
  }
  auto why
    = probe(m.target, tls, cfg,
            std::chrono::duration_cast<std::chrono::milliseconds>(budget));
  std::lock_guard<std::mutex> guard{mtx_};
  if (why == m.reason)
    return;
  // A probe that got through says nothing about gRPC's failure: forget the
  // old reason rather than show a stale one.
  if (!why.empty())
    NWD_LOG_WARN(component, "cannot connect to {}: {}", m.target, why);
  m.reason = std::move(why);
}

std::string client::impl::not_connected(size_t idx) const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto& m = members[idx];
  auto out = m.target + " not connected";
  if (!m.reason.empty())
    out += ": " + m.reason;
  return out;
}

std::string client::impl::unreachable() const {
  std::string out = "no etcd member reachable";
  std::lock_guard<std::mutex> guard{mtx_};
  for (auto& m : members)
    if (!m.reason.empty())
      out += "; " + m.target + ": " + m.reason;
  return out;
}

bool client::impl::wait_ready(size_t idx, steady::time_point deadline,
                              bool fail_fast,
                              const std::function<bool()>& stop) {
  auto& ch = *members[idx].channel;
  auto st = ch.GetState(true);
  for (;;) {
    if (st == GRPC_CHANNEL_READY) {
      connected(idx);
      return true;
    }
    if (st == GRPC_CHANNEL_SHUTDOWN)
      return false;
    if (st == GRPC_CHANNEL_TRANSIENT_FAILURE) {
      // gRPC keeps the reason to itself: find it out ourselves.
      diagnose(idx, deadline);
      if (fail_fast)
        return false;
    }
    auto now = steady::now();
    if (now >= deadline || (stop && stop()))
      return false;
    // With a stop condition, wake up regularly to check it.
    auto until = stop ? std::min(deadline, now + std::chrono::milliseconds(100))
                      : deadline;
    ch.WaitForStateChange(st, to_system(until));
    st = ch.GetState(true);
  }
}

std::optional<size_t> client::impl::pick(steady::time_point deadline,
                                         const std::function<bool()>& stop) {
  if (members.empty())
    return std::nullopt;
  for (int pass = 0;; ++pass) {
    auto start = current();
    for (size_t k = 0; k < members.size(); ++k) {
      auto now = steady::now();
      if (now >= deadline || (stop && stop()))
        return std::nullopt;
      auto idx = (start + k) % members.size();
      auto dial = std::min(deadline, now + cfg.dial_timeout);
      if (wait_ready(idx, dial, pass == 0, stop))
        return idx;
      mark_failed(idx);
    }
  }
}

// Failover policy. One deadline (call_timeout) covers the whole call. A member
// that is not connected is skipped at once on the first pass (nothing was
// sent), then waited for up to dial_timeout on later passes, so a restarting
// single member is still reached within the deadline. A call that fails with
// UNAVAILABLE moves on to the next member and is sent again, reads and writes
// alike. For a write, UNAVAILABLE almost always means it never reached the
// raft log (connection refused or broken before the request, "no leader");
// in the rare case it did, sending it again is harmless for networkd: puts
// and deletes end in the same state, and every txn networkd sends is guarded
// by compares whose failure branch reads the key back, so the caller sees
// what is stored. Any other error (timeout, compacted, invalid, auth) ends the
// call. An invalid auth token is refreshed once and the attempt repeated.
result<size_t> client::impl::unary(const char* what, const attempt_fn& fn,
                                   cancel_slot* slot) {
  if (config_error)
    return *config_error;
  auto deadline = steady::now() + cfg.call_timeout;
  auto last = make_failure("unavailable",
                           std::string(what) + ": no etcd member reachable");
  std::function<bool()> stop;
  if (slot != nullptr)
    stop = [slot] { return slot->cancelled(); };
  bool reauthed = false;
  for (int pass = 0; steady::now() < deadline; ++pass) {
    if (pass > 1) {
      // Members answered UNAVAILABLE right away: do not spin.
      auto pause = std::min<steady::duration>(std::chrono::milliseconds(50),
                                              deadline - steady::now());
      std::this_thread::sleep_for(pause);
    }
    auto start = current();
    for (size_t k = 0; k < members.size(); ++k) {
      if (stop && stop())
        return make_failure("unavailable", std::string(what) + ": cancelled");
      auto now = steady::now();
      if (now >= deadline)
        break;
      auto idx = (start + k) % members.size();
      auto& m = members[idx];
      auto dial = std::min(deadline, now + cfg.dial_timeout);
      if (!wait_ready(idx, dial, pass == 0, stop)) {
        last = make_failure("unavailable",
                            std::string(what) + ": " + not_connected(idx));
        mark_failed(idx);
        continue;
      }
      auto tok = ensure_token(m, deadline);
      if (!tok) {
        if (tok.error().code != "unavailable")
          return tok.error();
        last = tok.error();
        mark_failed(idx);
        continue;
      }
      grpc::ClientContext ctx;
      auto sent = prepare(ctx, deadline);
      slot_guard guard{slot, &ctx};
      if (!guard.ok())
        return make_failure("unavailable", std::string(what) + ": cancelled");
      auto st = fn(m, ctx);
      if (st.ok()) {
        mark_ok(idx);
        report(what, {});
        return idx;
      }
      if (!cfg.user.empty() && !reauthed && is_token_error(st)) {
        NWD_LOG_INFO(component,
                     "auth token rejected by {} ({}), "
                     "authenticating",
                     m.target, st.error_message());
        drop_token(sent);
        reauthed = true;
        --k; // the same member again, with a fresh token
        continue;
      }
      auto f = to_failure(st, what, m.target);
      if (f.code == "auth")
        report(what, f.to_string());
      if (f.code != "unavailable")
        return f;
      last = std::move(f);
      mark_failed(idx);
    }
  }
  return last;
}

result<range_result> client::impl::range(const std::string& key,
                                         const range_options& opts,
                                         cancel_slot* slot) {
  etcdserverpb::RangeRequest req;
  req.set_key(key);
  if (opts.prefix)
    req.set_range_end(prefix_end(key));
  req.set_limit(opts.limit);
  req.set_revision(opts.revision);
  req.set_keys_only(opts.keys_only);
  etcdserverpb::RangeResponse resp;
  auto r = unary(
    "range",
    [&](member& m, grpc::ClientContext& ctx) {
      resp.Clear();
      return m.kv->Range(&ctx, req, &resp);
    },
    slot);
  if (!r)
    return r.error();
  range_result out;
  out.revision = resp.header().revision();
  out.more = resp.more();
  out.count = resp.count();
  out.kvs.reserve(resp.kvs_size());
  for (auto& kv : resp.kvs())
    out.kvs.push_back(to_key_value(kv));
  return out;
}

result<lease_keepalive_result> client::impl::keepalive(int64_t id) {
  if (config_error)
    return *config_error;
  std::lock_guard<std::mutex> guard{keepalive_mtx_};
  auto deadline = steady::now() + cfg.call_timeout;
  auto last = make_failure("unavailable", "lease keep-alive: no member");
  using outcome = keepalive_stream::outcome;
  auto fail = [&](outcome o, const char* step) {
    auto st = keepalive_->close();
    if (is_token_error(st))
      drop_token(keepalive_->token);
    auto target = members[keepalive_->idx].target;
    if (o == outcome::timeout)
      last = make_failure("timeout", std::string("lease keep-alive ") + step
                                       + " on " + target + ": no answer");
    else
      last = to_failure(
        st.ok() ? grpc::Status(grpc::StatusCode::UNAVAILABLE, "stream closed")
                : st,
        std::string("lease keep-alive ") + step, target);
    if (last.code == "unavailable")
      mark_failed(keepalive_->idx);
    if (last.code == "auth")
      report("lease keep-alive", last.to_string());
    keepalive_.reset();
  };
  // A keep-alive is idempotent: one more try on a fresh stream (the next
  // member when this one failed) if the deadline allows.
  for (int attempt = 0; attempt < 2 && steady::now() < deadline; ++attempt) {
    if (!keepalive_) {
      auto idx = pick(deadline);
      if (!idx) {
        if (attempt == 0)
          last
            = make_failure("unavailable", "lease keep-alive: " + unreachable());
        break;
      }
      auto tok = ensure_token(members[*idx], deadline);
      if (!tok) {
        last = tok.error();
        if (last.code != "unavailable")
          return last;
        mark_failed(*idx);
        continue;
      }
      keepalive_ = std::make_unique<keepalive_stream>();
      keepalive_->idx = *idx;
      keepalive_->token = token();
      if (!keepalive_->token.empty())
        keepalive_->ctx.AddMetadata("token", keepalive_->token);
      keepalive_->rw = members[*idx].lease->PrepareAsyncLeaseKeepAlive(
        &keepalive_->ctx, &keepalive_->cq);
      keepalive_->rw->StartCall(keepalive_->tag());
      keepalive_->pending = true;
      if (auto o = keepalive_->wait(deadline); o != outcome::ok) {
        fail(o, "open");
        continue;
      }
    }
    auto& s = *keepalive_;
    etcdserverpb::LeaseKeepAliveRequest req;
    req.set_id(id);
    auto sent_at = steady::now();
    s.rw->Write(req, s.tag());
    s.pending = true;
    if (auto o = s.wait(deadline); o != outcome::ok) {
      fail(o, "write");
      continue;
    }
    etcdserverpb::LeaseKeepAliveResponse resp;
    bool broken = false;
    do {
      resp.Clear();
      s.rw->Read(&resp, s.tag());
      s.pending = true;
      if (auto o = s.wait(deadline); o != outcome::ok) {
        fail(o, "read");
        broken = true;
        break;
      }
      // Only one request is in flight, so an answer for another lease can
      // only be a leftover; skip it.
    } while (resp.id() != id);
    if (broken)
      continue;
    mark_ok(s.idx);
    return lease_keepalive_result{resp.ttl(), sent_at};
  }
  return last;
}

// -- client -------------------------------------------------------------------

client::client(client_config cfg) {
  static std::once_flag routed;
  std::call_once(routed, [] { gpr_set_log_function(grpc_to_debug); });
  impl_ = std::make_unique<impl>(std::move(cfg));
}

client::~client() = default;

result<range_result> client::range(const std::string& key, range_options opts) {
  return guarded<range_result>(
    "range", [&] { return impl_->range(key, opts, nullptr); });
}

result<put_result> client::put(const std::string& key, const std::string& value,
                               int64_t lease, bool prev_kv) {
  return guarded<put_result>("put", [&]() -> result<put_result> {
    etcdserverpb::PutRequest req;
    req.set_key(key);
    req.set_value(value);
    req.set_lease(lease);
    req.set_prev_kv(prev_kv);
    etcdserverpb::PutResponse resp;
    auto r = impl_->unary("put", [&](member& m, grpc::ClientContext& ctx) {
      resp.Clear();
      return m.kv->Put(&ctx, req, &resp);
    });
    if (!r)
      return r.error();
    put_result out;
    out.revision = resp.header().revision();
    if (resp.has_prev_kv())
      out.prev = to_key_value(resp.prev_kv());
    return out;
  });
}

result<delete_result> client::erase(const std::string& key, bool prefix) {
  return guarded<delete_result>("delete", [&]() -> result<delete_result> {
    etcdserverpb::DeleteRangeRequest req;
    req.set_key(key);
    if (prefix)
      req.set_range_end(prefix_end(key));
    etcdserverpb::DeleteRangeResponse resp;
    auto r = impl_->unary("delete", [&](member& m, grpc::ClientContext& ctx) {
      resp.Clear();
      return m.kv->DeleteRange(&ctx, req, &resp);
    });
    if (!r)
      return r.error();
    return delete_result{resp.header().revision(), resp.deleted()};
  });
}

namespace {

etcdserverpb::TxnRequest to_txn_request(const txn_request& request) {
  etcdserverpb::TxnRequest req;
  for (auto& c : request.compares)
    *req.add_compare() = to_compare(c);
  for (auto& op : request.success)
    *req.add_success() = to_request_op(op);
  for (auto& op : request.failure)
    *req.add_failure() = to_request_op(op);
  return req;
}

txn_result to_txn_result(const etcdserverpb::TxnResponse& resp,
                         int64_t revision) {
  txn_result out;
  out.succeeded = resp.succeeded();
  out.revision = revision;
  for (auto& op : resp.responses()) {
    if (!op.has_response_range())
      continue;
    std::vector<key_value> kvs;
    for (auto& kv : op.response_range().kvs())
      kvs.push_back(to_key_value(kv));
    out.ranges.push_back(std::move(kvs));
  }
  return out;
}

} // namespace

result<txn_result> client::txn(const txn_request& request) {
  return guarded<txn_result>("txn", [&]() -> result<txn_result> {
    auto req = to_txn_request(request);
    etcdserverpb::TxnResponse resp;
    auto r = impl_->unary("txn", [&](member& m, grpc::ClientContext& ctx) {
      resp.Clear();
      return m.kv->Txn(&ctx, req, &resp);
    });
    if (!r)
      return r.error();
    return to_txn_result(resp, resp.header().revision());
  });
}

result<std::vector<txn_result>>
client::txns(const std::vector<txn_request>& requests) {
  using out_type = std::vector<txn_result>;
  return guarded<out_type>("txns", [&]() -> result<out_type> {
    if (requests.size() > max_nested_txns)
      return make_failure("invalid", "txns: more than "
                                       + std::to_string(max_nested_txns)
                                       + " txns in one batch");
    if (requests.empty())
      return out_type{};
    // No compares: the outer success branch always runs, and with it
    // every nested txn, each deciding on its own compares.
    etcdserverpb::TxnRequest req;
    for (auto& r : requests)
      *req.add_success()->mutable_request_txn() = to_txn_request(r);
    etcdserverpb::TxnResponse resp;
    auto r = impl_->unary("txns", [&](member& m, grpc::ClientContext& ctx) {
      resp.Clear();
      return m.kv->Txn(&ctx, req, &resp);
    });
    if (!r)
      return r.error();
    if (!resp.succeeded()
        || static_cast<size_t>(resp.responses_size()) != requests.size())
      return make_failure("internal",
                          "txns: " + std::to_string(resp.responses_size())
                            + " answers to " + std::to_string(requests.size())
                            + " nested txns (etcd older than 3.3?)");
    out_type out;
    out.reserve(requests.size());
    for (auto& op : resp.responses()) {
      if (!op.has_response_txn())
        return make_failure("internal",
                            "txns: an answer is not a txn (etcd older "
                            "than 3.3?)");
      out.push_back(to_txn_result(op.response_txn(), resp.header().revision()));
    }
    return out;
  });
}

result<lease_grant_result> client::lease_grant(int64_t ttl_seconds) {
  return guarded<lease_grant_result>(
    "lease grant", [&]() -> result<lease_grant_result> {
      if (ttl_seconds <= 0)
        return make_failure("invalid", "lease grant: TTL must be positive");
      etcdserverpb::LeaseGrantRequest req;
      req.set_ttl(ttl_seconds);
      etcdserverpb::LeaseGrantResponse resp;
      auto r
        = impl_->unary("lease grant", [&](member& m, grpc::ClientContext& ctx) {
            resp.Clear();
            return m.lease->LeaseGrant(&ctx, req, &resp);
          });
      if (!r)
        return r.error();
      if (!resp.error().empty())
        return make_failure("internal", "lease grant: " + resp.error());
      return lease_grant_result{resp.id(), resp.ttl()};
    });
}

result<unit> client::lease_revoke(int64_t id) {
  return guarded<unit>("lease revoke", [&]() -> result<unit> {
    etcdserverpb::LeaseRevokeRequest req;
    req.set_id(id);
    etcdserverpb::LeaseRevokeResponse resp;
    auto r
      = impl_->unary("lease revoke", [&](member& m, grpc::ClientContext& ctx) {
          resp.Clear();
          return m.lease->LeaseRevoke(&ctx, req, &resp);
        });
    if (!r)
      return r.error();
    return unit{};
  });
}

result<lease_keepalive_result> client::lease_keepalive(int64_t id) {
  return guarded<lease_keepalive_result>("lease keep-alive",
                                         [&] { return impl_->keepalive(id); });
}

result<lease_ttl_result> client::lease_time_to_live(int64_t id, bool keys) {
  return guarded<lease_ttl_result>(
    "lease ttl", [&]() -> result<lease_ttl_result> {
      etcdserverpb::LeaseTimeToLiveRequest req;
      req.set_id(id);
      req.set_keys(keys);
      etcdserverpb::LeaseTimeToLiveResponse resp;
      auto r
        = impl_->unary("lease ttl", [&](member& m, grpc::ClientContext& ctx) {
            resp.Clear();
            return m.lease->LeaseTimeToLive(&ctx, req, &resp);
          });
      if (!r)
        return r.error();
      lease_ttl_result out;
      out.ttl = resp.ttl();
      out.granted_ttl = resp.grantedttl();
      for (auto& k : resp.keys())
        out.keys.push_back(k);
      return out;
    });
}

result<status_result> client::status() {
  return guarded<status_result>("status", [&]() -> result<status_result> {
    etcdserverpb::StatusRequest req;
    etcdserverpb::StatusResponse resp;
    auto r = impl_->unary("status", [&](member& m, grpc::ClientContext& ctx) {
      resp.Clear();
      return m.maintenance->Status(&ctx, req, &resp);
    });
    if (!r)
      return r.error();
    status_result out;
    out.endpoint = impl_->members[*r].target;
    out.version = resp.version();
    out.db_size = resp.dbsize();
    out.leader = resp.leader();
    out.member_id = resp.header().member_id();
    out.raft_term = static_cast<int64_t>(resp.raftterm());
    out.revision = resp.header().revision();
    return out;
  });
}

client_stats client::stats() const {
  return impl_->stats();
}

std::string client::current_endpoint() const {
  if (impl_->members.empty())
    return {};
  return impl_->members[impl_->current()].target;
}

result<unit> client::compact(int64_t revision) {
  return guarded<unit>("compact", [&]() -> result<unit> {
    etcdserverpb::CompactionRequest req;
    req.set_revision(revision);
    req.set_physical(true);
    etcdserverpb::CompactionResponse resp;
    auto r = impl_->unary("compact", [&](member& m, grpc::ClientContext& ctx) {
      resp.Clear();
      return m.kv->Compact(&ctx, req, &resp);
    });
    if (!r)
      return r.error();
    return unit{};
  });
}

} // namespace networkd::etcd
