// SPDX-License-Identifier: MIT
// DNAT rules for VIPs in chains lain-PREROUTING and lain-OUTPUT of the nat
// table: pure render/parse/diff, and one executor (iptables-restore batches).
#include "net/kernel/nat.hpp"

#include "net/base/log.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <thread>
#include <unordered_map>

extern char** environ;

#include "net/base/text.hpp"

namespace networkd::nat {

namespace {

bool valid_ipv4(const std::string& ip) {
  in_addr a{};
  return ::inet_pton(AF_INET, ip.c_str(), &a) == 1;
}

std::optional<uint16_t> parse_port(std::string_view s) {
  if (s.empty() || s.size() > 5)
    return std::nullopt;
  unsigned v = 0;
  for (char c : s) {
    if (c < '0' || c > '9')
      return std::nullopt;
    v = v * 10 + static_cast<unsigned>(c - '0');
  }
  if (v == 0 || v > 65535)
    return std::nullopt;
  return static_cast<uint16_t>(v);
}

/// A double-quoted iptables-restore argument (backslash escapes " and \).
std::string quote(const std::string& s) {
  std::string out = "\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      out += '\\';
    out += c;
  }
  return out + "\"";
}

/// Fills e.vip and, when the arguments have exactly our shape, e.rule.
void parse_rule(const std::vector<std::string>& args, entry& e) {
  std::optional<std::string> dst, out_if, proto, dport, comment, target, to;
  std::vector<std::string> matches;
  bool foreign = false;
  for (size_t i = 2; i < args.size(); i += 2) {
    if (i + 1 >= args.size()) {
      foreign = true;
      break;
    }
    const auto& opt = args[i];
    const auto& val = args[i + 1];
    std::optional<std::string>* slot = nullptr;
    if (opt == "-d")
      slot = &dst;
    else if (opt == "-o")
      slot = &out_if;
    else if (opt == "-p")
      slot = &proto;
    else if (opt == "--dport")
      slot = &dport;
    else if (opt == "--comment")
      slot = &comment;
    else if (opt == "-j")
      slot = &target;
    else if (opt == "--to-destination")
      slot = &to;
    if (opt == "-m") {
      matches.push_back(val);
      continue;
    }
    if (slot == nullptr || *slot) {
      foreign = true; // unknown option, negation, or repeated option
      continue;
    }
    *slot = val;
  }
  if (dst && dst->size() > 3 && dst->compare(dst->size() - 3, 3, "/32") == 0) {
    auto ip = dst->substr(0, dst->size() - 3);
    if (valid_ipv4(ip))
      e.vip = ip;
  }
  if (foreign || e.vip.empty() || !proto || !dport || !target || !to
      || *target != "DNAT")
    return;
  dnat_rule r;
  r.vip = e.vip;
  if (*proto == "tcp")
    r.proto = protocol::tcp;
  else if (*proto == "udp")
    r.proto = protocol::udp;
  else
    return;
  auto want_out = e.where == chain::output ? std::optional<std::string>{"lo"}
                                           : std::nullopt;
  if (out_if != want_out)
    return;
  // Matches: the protocol's own (iptables-save adds it; optional when we
  // read our own rendering), comment iff a comment was given, nothing else.
  matches.erase(std::remove(matches.begin(), matches.end(), *proto),
                matches.end());
  if (matches
      != (comment ? std::vector<std::string>{"comment"}
                  : std::vector<std::string>{}))
    return;
  auto sport = parse_port(*dport);
  auto colon = to->rfind(':');
  if (!sport || colon == std::string::npos)
    return;
  auto cport = parse_port(std::string_view{*to}.substr(colon + 1));
  r.container_ip = to->substr(0, colon);
  if (!cport || !valid_ipv4(r.container_ip))
    return;
  r.src_port = *sport;
  r.dest_port = *cport;
  r.comment = comment.value_or("");
  e.rule = std::move(r);
}

/// Hash key of a rule line in one chain: the chain and every field, cheap
/// to build (no rendering).
std::string key_of(const dnat_rule& r, chain c) {
  std::string k;
  k.reserve(r.vip.size() + r.container_ip.size() + r.comment.size() + 10);
  k += c == chain::prerouting ? 'P' : 'O';
  k += r.proto == protocol::udp ? 'u' : 't';
  k += static_cast<char>(r.src_port >> 8);
  k += static_cast<char>(r.src_port & 0xff);
  k += static_cast<char>(r.dest_port >> 8);
  k += static_cast<char>(r.dest_port & 0xff);
  k += r.vip;
  k += '|';
  k += r.container_ip;
  k += '|';
  k += r.comment;
  return k;
}

std::string match_key(const dnat_rule& r) {
  return r.vip + " " + to_string(r.proto) + " " + std::to_string(r.src_port);
}

std::string describe(const dnat_rule& r) {
  return std::string(to_string(r.proto)) + " " + r.vip + ":"
         + std::to_string(r.src_port) + " -> " + r.container_ip + ":"
         + std::to_string(r.dest_port) + " (" + r.comment + ")";
}

/// Validates `desired`, drops duplicates and conflicting rules.
result<std::vector<dnat_rule>>
wanted_rules(const std::vector<dnat_rule>& desired, const scope& where,
             std::vector<std::string>& conflicts) {
  std::vector<dnat_rule> out;
  out.reserve(desired.size());
  std::unordered_map<std::string, size_t> by_match;
  by_match.reserve(desired.size());
  for (auto& r : desired) {
    if (auto ok = validate(r); !ok)
      return ok.error();
    if (!where.covers(r.vip))
      return make_failure("invalid",
                          "rule outside the reconciled VIPs: " + describe(r));
    auto [it, fresh] = by_match.emplace(match_key(r), out.size());
    if (fresh) {
      out.push_back(r);
    } else if (out[it->second] != r) {
      conflicts.push_back(describe(r) + " conflicts with "
                          + describe(out[it->second]) + ": dropped");
    }
  }
  return out;
}

/// Lines that create missing chains and leave exactly one hook each.
void ensure_chains(const state& actual, plan& p) {
  if (!actual.has_prerouting_chain)
    p.lines.push_back(std::string(":") + prerouting_chain + " - [0:0]");
  if (!actual.has_output_chain)
    p.lines.push_back(std::string(":") + output_chain + " - [0:0]");
  auto hook = [&](int count, const std::string& spec) {
    if (count == 0)
      p.lines.push_back("-A " + spec);
    for (int i = 1; i < count; ++i)
      p.lines.push_back("-D " + spec);
  };
  hook(actual.prerouting_hooks, std::string("PREROUTING ") + prerouting_hook);
  for (int i = 0; i < actual.legacy_prerouting_hooks; ++i)
    p.lines.push_back(std::string("-D PREROUTING -j ") + prerouting_chain);
  hook(actual.output_hooks, std::string("OUTPUT -j ") + output_chain);
}

/// Adds go to the head of the chain (-I): ahead of any stale line for the
/// same VIP and port, so they win the moment they land, even while the
/// stale line still waits for its delete. It costs iptables-nft no lookup.
void insert(plan& p, const dnat_rule& r, chain c) {
  auto spec = render(r, c);
  p.lines.push_back(std::string("-I ") + chain_name(c) + " " + spec);
  p.added.push_back(entry{c, std::move(spec), r.vip, r});
}

} // namespace

const char* to_string(protocol p) {
  return p == protocol::udp ? "udp" : "tcp";
}

const char* chain_name(chain c) {
  return c == chain::output ? output_chain : prerouting_chain;
}

result<unit> validate(const dnat_rule& r) {
  if (!valid_ipv4(r.vip))
    return make_failure("invalid", "bad VIP '" + r.vip + "'");
  if (!valid_ipv4(r.container_ip))
    return make_failure("invalid", "bad container IP '" + r.container_ip + "'");
  if (r.src_port == 0 || r.dest_port == 0)
    return make_failure("invalid", "port 0 in rule for " + r.vip);
  if (r.comment.size() > 255)
    return make_failure("invalid", "comment longer than 255 bytes");
  for (unsigned char c : r.comment)
    if (c < 0x20 || c == 0x7f)
      return make_failure("invalid", "control character in comment of rule "
                                     "for "
                                       + r.vip);
  return unit{};
}

std::string render(const dnat_rule& r, chain c) {
  std::string s = "-p ";
  s += to_string(r.proto);
  s += " -d " + r.vip + "/32";
  if (c == chain::output)
    s += " -o lo";
  s += " --dport " + std::to_string(r.src_port);
  if (!r.comment.empty())
    s += " -m comment --comment " + quote(r.comment);
  s += " -j DNAT --to-destination " + r.container_ip + ":"
       + std::to_string(r.dest_port);
  return s;
}

state parse_save(std::string_view text) {
  state s;
  bool in_nat = false;
  size_t pos = 0;
  const std::string pre_hook = prerouting_hook;
  const std::string legacy_pre_hook = std::string("-j ") + prerouting_chain;
  const std::string out_hook = std::string("-j ") + output_chain;
  while (pos < text.size()) {
    auto end = text.find('\n', pos);
    if (end == std::string_view::npos)
      end = text.size();
    auto line = text.substr(pos, end - pos);
    pos = end + 1;
    if (!line.empty() && line.back() == '\r')
      line.remove_suffix(1);
    if (line.empty() || line[0] == '#')
      continue;
    if (line[0] == '*') {
      in_nat = line == "*nat";
      continue;
    }
    if (!in_nat)
      continue;
    if (line == "COMMIT") {
      in_nat = false;
      continue;
    }
    if (line[0] == ':') {
      auto name = line.substr(1, line.find(' ') - 1);
      if (name == prerouting_chain)
        s.has_prerouting_chain = true;
      else if (name == output_chain)
        s.has_output_chain = true;
      continue;
    }
    if (line.substr(0, 3) != "-A ")
      continue;
    auto rest = line.substr(3);
    auto sp = rest.find(' ');
    if (sp == std::string_view::npos)
      continue;
    auto name = rest.substr(0, sp);
    auto spec = rest.substr(sp + 1);
    if (name == "PREROUTING" || name == "OUTPUT") {
      if (name == "PREROUTING" && spec == pre_hook)
        ++s.prerouting_hooks;
      else if (name == "PREROUTING" && spec == legacy_pre_hook)
        ++s.legacy_prerouting_hooks;
      else if (name == "OUTPUT" && spec == out_hook)
        ++s.output_hooks;
      continue;
    }
    entry e;
    if (name == prerouting_chain)
      e.where = chain::prerouting;
    else if (name == output_chain)
      e.where = chain::output;
    else
      continue;
    e.spec = std::string(spec);
    parse_rule(split_args(line), e);
    s.entries.push_back(std::move(e));
  }
  return s;
}

std::vector<dnat_rule> rules_in(const state& s, chain c) {
  std::vector<dnat_rule> out;
  for (auto& e : s.entries)
    if (e.where == c && e.rule)
      out.push_back(*e.rule);
  return out;
}

result<plan> diff(const state& actual, const std::vector<dnat_rule>& desired,
                  const scope& where) {
  plan p;
  auto wanted = wanted_rules(desired, where, p.conflicts);
  if (!wanted)
    return wanted.error();
  ensure_chains(actual, p);
  // want: key -> still missing. Every actual line that is wanted and not
  // seen yet flips it; everything else in scope is deleted.
  std::unordered_map<std::string, bool> want;
  want.reserve(wanted->size() * 2);
  for (auto& r : *wanted) {
    want.emplace(key_of(r, chain::prerouting), true);
    want.emplace(key_of(r, chain::output), true);
  }
  for (auto& e : actual.entries) {
    // Lines without a VIP of their own belong to nobody's scope but "all".
    if (where.vips && (e.vip.empty() || !where.covers(e.vip)))
      continue;
    if (e.rule) {
      auto it = want.find(key_of(*e.rule, e.where));
      if (it != want.end() && it->second) {
        it->second = false;
        continue;
      }
    }
    p.removed.push_back(e);
  }
  for (auto& r : *wanted)
    for (auto c : {chain::prerouting, chain::output})
      if (want[key_of(r, c)])
        insert(p, r, c);
  p.split = p.lines.size();
  for (auto& e : p.removed)
    p.lines.push_back(std::string("-D ") + chain_name(e.where) + " " + e.spec);
  return p;
}

result<plan> rebuild(const state& actual, const std::vector<dnat_rule>& desired,
                     const scope& where) {
  plan p;
  auto wanted = wanted_rules(desired, where, p.conflicts);
  if (!wanted)
    return wanted.error();
  ensure_chains(actual, p);
  p.lines.push_back(std::string("-F ") + prerouting_chain);
  p.lines.push_back(std::string("-F ") + output_chain);
  p.removed = actual.entries;
  std::unordered_set<std::string> added;
  for (auto& e : actual.entries)
    if (e.rule && !where.covers(e.vip)
        && added.insert(key_of(*e.rule, e.where)).second)
      insert(p, *e.rule, e.where);
  for (auto& r : *wanted)
    for (auto c : {chain::prerouting, chain::output})
      if (added.insert(key_of(r, c)).second)
        insert(p, r, c);
  p.split = p.lines.size();
  return p;
}

bool prefer_rebuild(const state& actual, const plan& p) {
  // Below this many deletes the diff is cheap enough whatever stays.
  constexpr size_t min_deletes = 4;
  if (p.removed.size() < min_deletes)
    return false;
  size_t pre = 0;
  size_t out = 0;
  for (auto& e : actual.entries)
    ++(e.where == chain::prerouting ? pre : out);
  // Costs in inserted lines (see the header).
  auto longest = static_cast<double>(std::max(pre, out));
  auto lines = static_cast<double>(actual.entries.size());
  double by_diff = 0.55 * lines
                   + static_cast<double>(p.removed.size()) * longest / 34.0
                   + static_cast<double>(p.added.size());
  auto stays = actual.entries.size() > p.removed.size()
                 ? actual.entries.size() - p.removed.size()
                 : 0;
  return by_diff > static_cast<double>(stays + p.added.size());
}

plan teardown(const state& actual) {
  plan p;
  for (int i = 0; i < actual.prerouting_hooks; ++i)
    p.lines.push_back(std::string("-D PREROUTING ") + prerouting_hook);
  for (int i = 0; i < actual.legacy_prerouting_hooks; ++i)
    p.lines.push_back(std::string("-D PREROUTING -j ") + prerouting_chain);
  for (int i = 0; i < actual.output_hooks; ++i)
    p.lines.push_back(std::string("-D OUTPUT -j ") + output_chain);
  for (auto [has, name] :
       {std::pair{actual.has_prerouting_chain, prerouting_chain},
        std::pair{actual.has_output_chain, output_chain}}) {
    if (!has)
      continue;
    p.lines.push_back(std::string("-F ") + name);
    p.lines.push_back(std::string("-X ") + name);
  }
  p.removed = actual.entries;
  p.split = p.lines.size();
  return p;
}

plan plan::head() const {
  plan h;
  h.lines.assign(lines.begin(), lines.begin() + static_cast<long>(split));
  h.split = h.lines.size();
  h.added = added;
  h.conflicts = conflicts;
  return h;
}

plan plan::tail() const {
  plan t;
  t.lines.assign(lines.begin() + static_cast<long>(split), lines.end());
  t.removed = removed;
  return t;
}

std::string batch(const plan& p) {
  size_t size = 16;
  for (auto& l : p.lines)
    size += l.size() + 1;
  std::string out;
  out.reserve(size);
  out += "*nat\n";
  for (auto& l : p.lines) {
    out += l;
    out += '\n';
  }
  out += "COMMIT\n";
  return out;
}

void apply(state& s, const plan& p) {
  bool flushed = false;
  bool torn_down = false;
  for (auto& l : p.lines) {
    if (l.rfind("-F ", 0) == 0)
      flushed = true;
    if (l.rfind("-X ", 0) == 0)
      torn_down = true;
  }
  if (torn_down) {
    s = state{};
    return;
  }
  if (flushed) {
    s.entries.clear();
  } else if (!p.removed.empty()) {
    std::unordered_map<std::string, size_t> gone;
    for (auto& e : p.removed)
      ++gone[std::string(chain_name(e.where)) + " " + e.spec];
    auto& v = s.entries;
    v.erase(std::remove_if(v.begin(), v.end(),
                           [&](const entry& e) {
                             auto it = gone.find(
                               std::string(chain_name(e.where)) + " " + e.spec);
                             if (it == gone.end() || it->second == 0)
                               return false;
                             --it->second;
                             return true;
                           }),
            v.end());
  }
  s.entries.insert(s.entries.end(), p.added.begin(), p.added.end());
  if (!p.lines.empty()) {
    // Every diff/rebuild plan makes sure both chains exist, hooked once.
    s.has_prerouting_chain = s.has_output_chain = true;
    s.prerouting_hooks = s.output_hooks = 1;
    s.legacy_prerouting_hooks = 0;
  }
}

result<command_output> run_command(const std::vector<std::string>& argv,
                                   const std::string& input,
                                   std::chrono::milliseconds timeout) {
  if (argv.empty())
    return make_failure("invalid", "empty command");
  auto until = std::chrono::steady_clock::now() + timeout;
  // stdin is a socket so that writing to a child that quit early gives
  // EPIPE (MSG_NOSIGNAL) instead of SIGPIPE.
  int in[2];
  int out[2];
  int err[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in) != 0)
    return make_failure("exec",
                        std::string("socketpair: ") + std::strerror(errno));
  if (::pipe2(out, O_CLOEXEC) != 0) {
    ::close(in[0]);
    ::close(in[1]);
    return make_failure("exec", std::string("pipe: ") + std::strerror(errno));
  }
  if (::pipe2(err, O_CLOEXEC) != 0) {
    for (int fd : {in[0], in[1], out[0], out[1]})
      ::close(fd);
    return make_failure("exec", std::string("pipe: ") + std::strerror(errno));
  }
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_adddup2(&fa, in[1], 0);
  posix_spawn_file_actions_adddup2(&fa, out[1], 1);
  posix_spawn_file_actions_adddup2(&fa, err[1], 2);
  posix_spawn_file_actions_addclosefrom_np(&fa, 3);
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  sigset_t defaults;
  sigemptyset(&defaults);
  sigaddset(&defaults, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &defaults);
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK
                                    | POSIX_SPAWN_SETSIGDEF);
  std::vector<char*> args;
  for (auto& a : argv)
    args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawnp(&pid, args[0], &fa, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  ::close(in[1]);
  ::close(out[1]);
  ::close(err[1]);
  if (rc != 0) {
    for (int fd : {in[0], out[0], err[0]})
      ::close(fd);
    return make_failure("exec", argv[0] + ": " + std::strerror(rc));
  }
  int fds[3] = {in[0], out[0], err[0]};
  for (int fd : fds)
    ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  command_output res;
  size_t written = 0;
  if (input.empty()) {
    ::close(fds[0]);
    fds[0] = -1;
  }
  auto kill_child = [&] {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
    for (int& fd : fds)
      if (fd >= 0) {
        ::close(fd);
        fd = -1;
      }
  };
  char buf[65536];
  while (fds[1] >= 0 || fds[2] >= 0 || fds[0] >= 0) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
      until - std::chrono::steady_clock::now());
    if (left.count() <= 0) {
      kill_child();
      return make_failure("timeout", argv[0] + " did not finish within "
                                       + std::to_string(timeout.count())
                                       + " ms");
    }
    pollfd p[3];
    for (int i = 0; i < 3; ++i)
      p[i] = pollfd{fds[i], static_cast<short>(i == 0 ? POLLOUT : POLLIN), 0};
    int n = ::poll(p, 3, static_cast<int>(left.count()));
    if (n < 0 && errno != EINTR) {
      kill_child();
      return make_failure("exec", std::string("poll: ") + std::strerror(errno));
    }
    if (n <= 0)
      continue;
    if (fds[0] >= 0 && p[0].revents != 0) {
      auto chunk = std::min<size_t>(input.size() - written, sizeof(buf));
      auto w = ::send(fds[0], input.data() + written, chunk,
                      MSG_NOSIGNAL | MSG_DONTWAIT);
      if (w > 0)
        written += static_cast<size_t>(w);
      // Done, or the child stopped reading (it will say why on stderr).
      if (written == input.size()
          || (w < 0 && errno != EAGAIN && errno != EINTR)) {
        ::close(fds[0]);
        fds[0] = -1;
      }
    }
    for (int i = 1; i < 3; ++i) {
      if (fds[i] < 0 || p[i].revents == 0)
        continue;
      auto r = ::read(fds[i], buf, sizeof(buf));
      if (r > 0)
        (i == 1 ? res.out : res.err).append(buf, static_cast<size_t>(r));
      else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
        ::close(fds[i]);
        fds[i] = -1;
      }
    }
  }
  for (;;) {
    int st = 0;
    auto r = ::waitpid(pid, &st, WNOHANG);
    if (r == pid) {
      res.exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
      return res;
    }
    if (r < 0 && errno != EINTR)
      return make_failure("exec",
                          std::string("waitpid: ") + std::strerror(errno));
    if (std::chrono::steady_clock::now() >= until) {
      kill_child();
      return make_failure("timeout", argv[0] + " did not exit within "
                                       + std::to_string(timeout.count())
                                       + " ms");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds{1});
  }
}

std::vector<std::string> tool_argv(const std::string& netns,
                                   const std::string& tool) {
  std::vector<std::string> out;
  if (!netns.empty())
    out = {"ip", "netns", "exec", netns};
  out.push_back(tool);
  return out;
}

result<std::string> save_table(const std::string& netns,
                               const std::string& save_command,
                               const std::string& table,
                               std::chrono::milliseconds timeout) {
  auto cmd = tool_argv(netns, save_command);
  cmd.insert(cmd.end(), {"-t", table});
  auto r = run_command(cmd, {}, timeout);
  if (!r)
    return r.error();
  if (r->exit_code != 0)
    return make_failure("iptables", save_command + " -t " + table + " failed ("
                                      + std::to_string(r->exit_code)
                                      + "): " + r->err);
  return std::move(r->out);
}

result<unit> restore_noflush(const std::string& netns,
                             const std::string& restore_command,
                             const std::string& text,
                             std::chrono::milliseconds timeout) {
  auto cmd = tool_argv(netns, restore_command);
  // iptables' own lock: wait for it up to half the time we give the tool.
  auto wait_s = std::max<long long>(1, timeout.count() / 2000);
  cmd.insert(cmd.end(), {"--noflush", "--wait=" + std::to_string(wait_s)});
  auto r = run_command(cmd, text, timeout);
  if (!r)
    return r.error();
  if (r->exit_code != 0) {
    auto msg = r->err;
    while (!msg.empty() && msg.back() == '\n')
      msg.pop_back();
    return make_failure("iptables", restore_command + " failed ("
                                      + std::to_string(r->exit_code)
                                      + "): " + msg);
  }
  return unit{};
}

iptables_dnat_table::iptables_dnat_table() : iptables_dnat_table(options{}) {}

iptables_dnat_table::iptables_dnat_table(options opts)
    : opts_(std::move(opts)) {}

void iptables_dnat_table::invalidate() {
  std::lock_guard<std::mutex> guard{mtx_};
  known_.reset();
}

result<state> iptables_dnat_table::read() {
  std::lock_guard<std::mutex> guard{mtx_};
  return read_locked();
}

result<bool> iptables_dnat_table::refresh() {
  uint64_t seen = 0;
  {
    std::lock_guard<std::mutex> guard{mtx_};
    seen = generation_;
  }
  // No lock while the tool runs: reconciles go on meanwhile.
  auto text = save_table(opts_.netns, opts_.save_command, "nat", opts_.timeout);
  if (!text)
    return text.error();
  auto now = parse_save(*text);
  std::lock_guard<std::mutex> guard{mtx_};
  if (generation_ != seen)
    return false;
  known_ = std::move(now);
  known_at_ = clock::now();
  return true;
}

result<state> iptables_dnat_table::read_locked() {
  ++generation_;
  auto text = save_table(opts_.netns, opts_.save_command, "nat", opts_.timeout);
  known_.reset(); // whatever we knew is no longer to be trusted
  if (!text)
    return text.error();
  known_ = parse_save(*text);
  known_at_ = clock::now();
  return *known_;
}

result<unit> iptables_dnat_table::restore(const std::string& text) {
  ++generation_;
  return restore_noflush(opts_.netns, opts_.restore_command, text,
                         opts_.timeout);
}

result<report>
iptables_dnat_table::reconcile(const std::vector<dnat_rule>& desired) {
  return run(desired, scope::all());
}

result<report>
iptables_dnat_table::reconcile_vips(const std::vector<std::string>& vips,
                                    const std::vector<dnat_rule>& desired) {
  return run(desired, scope::only(vips));
}

result<report> iptables_dnat_table::run(const std::vector<dnat_rule>& desired,
                                        const scope& where) {
  using std::chrono::duration_cast;
  using std::chrono::microseconds;
  std::lock_guard<std::mutex> guard{mtx_};
  report rep;
  auto timed_read = [&]() -> result<unit> {
    auto t0 = clock::now();
    auto s = read_locked();
    rep.read_time += duration_cast<microseconds>(clock::now() - t0);
    rep.read_back = true;
    if (!s)
      return s.error();
    return unit{};
  };
  auto one_batch = [&](const plan& p) -> result<unit> {
    auto t0 = clock::now();
    auto r = restore(batch(p));
    rep.apply_time += duration_cast<microseconds>(clock::now() - t0);
    ++rep.batches;
    if (r) {
      apply(*known_, p);
      rep.added += p.added.size();
      rep.deleted += p.removed.size();
    }
    return r;
  };
  std::optional<clock::time_point> started;
  auto timed_apply = [&](const plan& p) -> result<unit> {
    if (!started)
      started = clock::now();
    auto t0 = *started;
    bool split = opts_.inserts_first && p.split > 0 && p.split < p.lines.size()
                 && !p.added.empty();
    if (!split) {
      auto r = one_batch(p);
      if (r)
        rep.live_time = duration_cast<microseconds>(clock::now() - t0);
      return r;
    }
    if (auto r = one_batch(p.head()); !r)
      return r;
    rep.live_time = duration_cast<microseconds>(clock::now() - t0);
    // Traffic has moved; the stale lines go the cheaper way.
    auto tail = p.tail();
    if (prefer_rebuild(*known_, tail)) {
      if (auto full = rebuild(*known_, desired, where))
        return one_batch(*full);
    }
    return one_batch(tail);
  };
  if (!known_ || opts_.trust_for.count() <= 0
      || std::chrono::duration_cast<std::chrono::milliseconds>(clock::now()
                                                               - known_at_)
           > opts_.trust_for) {
    if (auto r = timed_read(); !r)
      return r.error();
  }
  auto p = diff(*known_, desired, where);
  if (!p)
    return p.error();
  rep.conflicts = p->conflicts;
  // Returned in the report: the caller logs them once per change.
  for (auto& c : rep.conflicts)
    NWD_LOG_DEBUG("nat", "conflicting DNAT rule: {}", c);
  if (p->empty())
    return rep;
  // With inserts to run first, timed_apply decides for the deletes alone.
  bool inserts_ahead = opts_.inserts_first && !p->added.empty();
  if (!inserts_ahead && prefer_rebuild(*known_, *p)) {
    if (auto full = rebuild(*known_, desired, where))
      p = std::move(full);
  }
  auto applied = timed_apply(*p);
  if (applied)
    return rep;
  NWD_LOG_WARN("nat", "DNAT batch failed, reading the chains again: {}",
               applied.error().to_string());
  rep.retried = true;
  if (auto r = timed_read(); !r)
    return r.error();
  p = diff(*known_, desired, where);
  if (!p)
    return p.error();
  if (p->empty())
    return rep;
  applied = timed_apply(*p);
  if (applied)
    return rep;
  NWD_LOG_WARN("nat", "DNAT batch failed again, rebuilding both chains: {}",
               applied.error().to_string());
  if (auto r = timed_read(); !r)
    return r.error();
  auto full = rebuild(*known_, desired, where);
  if (!full)
    return full.error();
  applied = timed_apply(*full);
  if (!applied) {
    known_.reset();
    return applied.error();
  }
  rep.rebuilt = true;
  return rep;
}

result<unit> iptables_dnat_table::remove_all() {
  std::lock_guard<std::mutex> guard{mtx_};
  auto s = read_locked();
  if (!s)
    return s.error();
  auto p = teardown(*s);
  if (p.empty())
    return unit{};
  auto r = restore(batch(p));
  if (!r) {
    known_.reset();
    return r.error();
  }
  apply(*known_, p);
  return unit{};
}

} // namespace networkd::nat
