// SPDX-License-Identifier: MIT
// etcd v3 client: endpoints, failover, auth, unary calls and lease keep-alive.
#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <cctype>
#include <exception>
#include <fstream>
#include <sstream>
#include <thread>

#include "net/etcd.hpp"
#include "net/etcd_impl.hpp"
#include "net/log.hpp"

namespace networkd::etcd {

namespace {

constexpr const char* component = "etcd";

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
  std::string host;
  std::string port;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size()
        || text[close + 1] != ':')
      return std::nullopt;
    host = text.substr(0, close + 1);
    port = text.substr(close + 2);
    if (host.size() <= 2)
      return std::nullopt;
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos)
      return std::nullopt;
    host = text.substr(0, colon);
    port = text.substr(colon + 1);
    if (host.empty() || host.find_first_of(":/ ") != std::string::npos)
      return std::nullopt;
  }
  if (port.empty() || port.size() > 5
      || !std::all_of(port.begin(), port.end(),
                      [](unsigned char c) { return std::isdigit(c); }))
    return std::nullopt;
  auto number = std::stoi(port);
  if (number < 1 || number > 65535)
    return std::nullopt;
  out.target = host + ":" + port;
  return out;
}

bool read_whole_file(const std::string& path, std::string& out) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return false;
  std::ostringstream ss;
  ss << in.rdbuf();
  out = ss.str();
  return true;
}

bool is_token_error(const grpc::Status& st) {
  const auto& msg = st.error_message();
  return st.error_code() == grpc::StatusCode::UNAUTHENTICATED
         || msg.find("invalid auth token") != std::string::npos
         || msg.find("auth store is old") != std::string::npos;
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

} // namespace

// -- helpers shared with the watcher ------------------------------------------

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
      if (path.empty() || read_whole_file(path, out))
        return true;
      config_error = make_failure("invalid", "cannot read " + path);
      return false;
    };
    if (!load(cfg.ca_file, opts.pem_root_certs)
        || !load(cfg.cert_file, opts.pem_cert_chain)
        || !load(cfg.key_file, opts.pem_private_key))
      return;
    creds = grpc::SslCredentials(opts);
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

void client::impl::drop_token(const std::string& token) {
  std::lock_guard<std::mutex> guard{mtx_};
  if (token_ == token)
    token_.clear();
  auth_disabled_logged_ = false;
}

void client::impl::prepare(grpc::ClientContext& ctx,
                           steady::time_point deadline) {
  ctx.set_deadline(to_system(deadline));
  auto tok = token();
  if (!tok.empty())
    ctx.AddMetadata("token", tok);
}

result<unit> client::impl::ensure_token(member& m,
                                        steady::time_point deadline) {
  if (cfg.user.empty())
    return unit{};
  {
    std::lock_guard<std::mutex> guard{mtx_};
    if (!token_.empty() || auth_disabled_logged_)
      return unit{};
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
    return unit{};
  }
  auto f = to_failure(st, "authenticate", m.target);
  if (f.code != "unavailable" && f.code != "timeout")
    f.code = "auth";
  return f;
}

bool client::impl::wait_ready(size_t idx, steady::time_point deadline,
                              bool fail_fast,
                              const std::function<bool()>& stop) {
  auto& ch = *members[idx].channel;
  auto st = ch.GetState(true);
  for (;;) {
    if (st == GRPC_CHANNEL_READY)
      return true;
    if (st == GRPC_CHANNEL_SHUTDOWN)
      return false;
    if (fail_fast && st == GRPC_CHANNEL_TRANSIENT_FAILURE)
      return false;
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
        last = make_failure("unavailable", std::string(what) + ": " + m.target
                                             + " not connected");
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
      prepare(ctx, deadline);
      slot_guard guard{slot, &ctx};
      if (!guard.ok())
        return make_failure("unavailable", std::string(what) + ": cancelled");
      auto st = fn(m, ctx);
      if (st.ok()) {
        mark_ok(idx);
        return idx;
      }
      if (!cfg.user.empty() && !reauthed && is_token_error(st)) {
        NWD_LOG_INFO(component, "auth token rejected by {}, authenticating",
                     m.target);
        drop_token(token());
        reauthed = true;
        --k; // the same member again, with a fresh token
        continue;
      }
      auto f = to_failure(st, what, m.target);
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
      drop_token(token());
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
    keepalive_.reset();
  };
  // A keep-alive is idempotent: one more try on a fresh stream (the next
  // member when this one failed) if the deadline allows.
  for (int attempt = 0; attempt < 2 && steady::now() < deadline; ++attempt) {
    if (!keepalive_) {
      auto idx = pick(deadline);
      if (!idx)
        break;
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
      auto t = token();
      if (!t.empty())
        keepalive_->ctx.AddMetadata("token", t);
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

client::client(client_config cfg)
    : impl_(std::make_unique<impl>(std::move(cfg))) {}

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
                            + " answers to "
                            + std::to_string(requests.size())
                            + " nested txns (etcd older than 3.3?)");
    out_type out;
    out.reserve(requests.size());
    for (auto& op : resp.responses()) {
      if (!op.has_response_txn())
        return make_failure("internal",
                            "txns: an answer is not a txn (etcd older "
                            "than 3.3?)");
      out.push_back(to_txn_result(op.response_txn(),
                                  resp.header().revision()));
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
