// SPDX-License-Identifier: MIT
#include "actors/cli.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <sstream>

#include "net/base/file.hpp"
#include "net/base/host_port.hpp"
#include "net/cluster/config.hpp"

namespace networkd {

namespace {

struct flag_spec {
  const char* name;
  const char* help;
  // Exactly one of these is set.
  std::string options::*text = nullptr;
  bool options::*toggle = nullptr;
};

const std::vector<flag_spec>& flags() {
  static const std::vector<flag_spec> all = {
    {"etcd.endpoint", "etcd members, comma-separated (http://h:p or h:p)",
     &options::etcd_endpoint},
    {"lainlet.endpoint", "lainlet address host:port",
     &options::lainlet_endpoint},
    {"docker.endpoint", "Docker Engine API socket", &options::docker_endpoint},
    {"net.interface", "interface that carries the VIPs",
     &options::net_interface},
    {"net.address", "node IPv4 address (default: the interface's first)",
     &options::net_address},
    {"hostname", "node name (default: the machine's hostname)",
     &options::hostname},
    {"domain", "cluster domain, e.g. lain.local", &options::domain},
    {"godns.addr", "DNS listen addresses ip:port, comma-separated",
     &options::godns_addr},
    {"api.addr", "admin HTTP listen address ip:port", &options::api_addr},
    {"lock.filename", "lock file: a second instance refuses to start",
     &options::lock_filename},
    {"tinydns", "publish tinydns endpoints (leader)", nullptr,
     &options::tinydns},
    {"swarm", "publish swarm.lain (leader)", nullptr, &options::swarm},
    {"webrouter", "publish webrouter.lain (leader)", nullptr,
     &options::webrouter},
    {"deployd", "publish deployd.lain (leader)", nullptr, &options::deployd},
    {"streamrouter", "publish streamrouter VIPs (leader)", nullptr,
     &options::streamrouter},
    {"acl", "manage the lain-ENTRY/lain-INPUT ACL chains", nullptr,
     &options::acl},
    {"libnetwork", "accepted for compatibility; ignored", nullptr,
     &options::libnetwork},
    {"verbose", "debug logging", nullptr, &options::verbose},
    {"version", "print the version and exit", nullptr, &options::version},
    {"help", "print this help and exit", nullptr, &options::help},
    {"resolv-conf", "resolv.conf file to guard", &options::resolv_conf},
    {"hosts-file", "hosts file served by the DNS server", &options::hosts_file},
    {"dns-allow",
     "extra client networks (CIDRs, comma-separated) allowed to query DNS",
     &options::dns_allow},
    {"containers-from",
     "container source: lainlet (event stream) or deployd (pod groups in "
     "etcd)",
     &options::containers_from},
    {"dataplane",
     "VIP DNAT: nft (one nftables map over netlink) or iptables (chains "
     "lain-PREROUTING/lain-OUTPUT)",
     &options::dataplane},
    {"etcd-ca", "CA bundle for etcd TLS", &options::etcd_ca},
    {"etcd-cert", "client certificate for etcd TLS", &options::etcd_cert},
    {"etcd-key", "client key for etcd TLS", &options::etcd_key},
    {"etcd-user", "etcd user name (auth)", &options::etcd_user},
    {"etcd-password",
     "etcd password (auth); visible to every local user, prefer "
     "--etcd-password-file or NETWORKD_ETCD_PASSWORD",
     &options::etcd_password},
    {"etcd-password-file",
     "file holding the etcd password (trailing newline stripped)",
     &options::etcd_password_file},
  };
  return all;
}

/// Forms of the daemon before 2.3 that deployment templates still pass,
/// accepted with one warning each: `now` is today's flag of the same
/// meaning, or none when the flag is ignored (taken as a boolean).
struct old_flag {
  const char* name;
  const char* now;
  const char* note;
};

constexpr old_flag old_flags[] = {
  {"dnsmasq", nullptr,
   "ignored: networkd answers DNS itself, no dnsmasq is managed"},
  {"resolv.conf", "resolv-conf", "is the old name of --resolv-conf"},
};

const old_flag* find_old_flag(const std::string& name) {
  for (auto& f : old_flags)
    if (name == f.name)
      return &f;
  return nullptr;
}

/// ":53" (the old "every address" form) as 0.0.0.0:53, with a note.
std::string widen_listen_list(const std::string& list,
                              std::vector<std::string>& notes) {
  std::string out;
  std::stringstream ss(list);
  for (std::string item; std::getline(ss, item, ',');) {
    if (!out.empty())
      out += ',';
    if (!item.empty() && item[0] == ':') {
      notes.push_back("-godns.addr \"" + item + "\" is read as 0.0.0.0" + item
                      + ": every address; clients outside loopback and "
                        "--dns-allow get REFUSED");
      item = "0.0.0.0" + item;
    }
    out += item;
  }
  return out;
}

const flag_spec* find_flag(const std::string& name) {
  for (auto& f : flags())
    if (name == f.name)
      return &f;
  return nullptr;
}

result<bool> parse_bool(const std::string& flag, const std::string& v) {
  if (v == "true" || v == "1" || v == "t" || v == "T" || v == "TRUE"
      || v == "True")
    return true;
  if (v == "false" || v == "0" || v == "f" || v == "F" || v == "FALSE"
      || v == "False")
    return false;
  return make_failure("bad_flag",
                      "-" + flag + ": invalid boolean \"" + v + "\"");
}

result<unit> check_addr_list(const std::string& flag, const std::string& v) {
  std::stringstream ss(v);
  std::string item;
  bool any = false;
  while (std::getline(ss, item, ',')) {
    if (item.empty())
      continue;
    any = true;
    auto hp = split_host_port(item);
    if (!hp)
      return make_failure("bad_flag", "-" + flag + ": \"" + item
                                        + "\": " + hp.error().message);
    if (!config::is_ipv4(hp->host))
      return make_failure("bad_flag", "-" + flag + ": \"" + item
                                        + "\" is not an IPv4 ip:port");
  }
  if (!any)
    return make_failure("bad_flag", "-" + flag + ": empty address list");
  return unit{};
}

/// Largest TLS or password file read (a CA bundle is a few hundred KiB).
constexpr size_t max_flag_file = 1024 * 1024;

/// The whole contents of the file a flag names; fails naming both when it
/// cannot be read or is empty.
result<std::string> read_flag_file(const std::string& flag,
                                   const std::string& path) {
  auto fail = [&](const std::string& why) {
    return make_failure("bad_flag",
                        "--" + flag + ": cannot read \"" + path + "\": " + why);
  };
  auto out = read_file(path, max_flag_file);
  if (!out)
    return fail(out.error().message);
  if (out->empty())
    return fail("empty file");
  return out;
}

} // namespace

result<unit> load_etcd_secrets(options& opts) {
  const char* env = std::getenv(etcd_password_env);
  std::string from_env = env != nullptr ? env : "";
  ::unsetenv(etcd_password_env);
  for (auto [flag, path] : {std::pair{"etcd-ca", &options::etcd_ca},
                            std::pair{"etcd-cert", &options::etcd_cert},
                            std::pair{"etcd-key", &options::etcd_key}}) {
    if (opts.*path == "")
      continue;
    if (auto r = read_flag_file(flag, opts.*path); !r)
      return r.error();
  }
  if (!opts.etcd_password_file.empty()) {
    auto r = read_flag_file("etcd-password-file", opts.etcd_password_file);
    if (!r)
      return r.error();
    auto text = std::move(*r);
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r'))
      text.pop_back();
    if (text.empty())
      return make_failure("bad_flag", "--etcd-password-file: \""
                                        + opts.etcd_password_file
                                        + "\" holds no password");
    opts.etcd_password = std::move(text);
  } else if (opts.etcd_password.empty()) {
    opts.etcd_password = std::move(from_env);
  }
  return unit{};
}

result<options> parse_options(const std::vector<std::string>& args) {
  options opts;
  for (size_t i = 0; i < args.size(); ++i) {
    const auto& arg = args[i];
    if (arg.size() < 2 || arg[0] != '-')
      return make_failure("bad_flag", "unexpected argument \"" + arg + "\"");
    auto name = arg.substr(arg[1] == '-' ? 2 : 1);
    std::string value;
    bool has_value = false;
    if (auto eq = name.find('='); eq != std::string::npos) {
      value = name.substr(eq + 1);
      name = name.substr(0, eq);
      has_value = true;
    }
    if (name == "h")
      name = "help";
    if (auto old = find_old_flag(name); old != nullptr) {
      if (old->now == nullptr) {
        if (has_value) {
          if (auto b = parse_bool(name, value); !b)
            return b.error();
        }
        opts.ignored.push_back("-" + name + " " + old->note);
        continue;
      }
      opts.ignored.push_back("-" + name + " " + old->note);
      name = old->now;
    }
    auto spec = find_flag(name);
    if (spec == nullptr)
      return make_failure("bad_flag", "unknown flag -" + name);
    if (spec->toggle != nullptr) {
      // Like Go's flag package: a boolean takes a value only with "=".
      bool on = true;
      if (has_value) {
        auto b = parse_bool(name, value);
        if (!b)
          return b.error();
        on = *b;
      }
      opts.*(spec->toggle) = on;
      if (name == "libnetwork")
        opts.ignored.push_back("-libnetwork is accepted for compatibility "
                               "and ignored");
      continue;
    }
    if (!has_value) {
      if (i + 1 >= args.size())
        return make_failure("bad_flag", "-" + name + " needs a value");
      value = args[++i];
    }
    opts.*(spec->text) = value;
  }
  if (opts.help || opts.version)
    return opts;
  opts.godns_addr = widen_listen_list(opts.godns_addr, opts.ignored);
  if (auto r = check_addr_list("godns.addr", opts.godns_addr); !r)
    return r.error();
  auto api = split_host_port(opts.api_addr);
  if (!api || !config::is_ipv4(api->host))
    return make_failure("bad_flag", "-api.addr: \"" + opts.api_addr
                                      + "\" is not an IPv4 ip:port");
  if (!opts.net_address.empty() && !config::is_ipv4(opts.net_address))
    return make_failure("bad_flag", "-net.address: \"" + opts.net_address
                                      + "\" is not an IPv4 address");
  if (opts.etcd_endpoint.empty())
    return make_failure("bad_flag", "-etcd.endpoint: empty");
  if (!opts.etcd_password.empty() && !opts.etcd_password_file.empty())
    return make_failure("bad_flag", "--etcd-password and --etcd-password-file "
                                    "exclude each other");
  if (opts.etcd_cert.empty() != opts.etcd_key.empty())
    return make_failure("bad_flag", "--etcd-cert and --etcd-key go together");
  if (opts.containers_from != "lainlet" && opts.containers_from != "deployd")
    return make_failure("bad_flag", "--containers-from: \""
                                      + opts.containers_from
                                      + "\" is not lainlet or deployd");
  if (opts.dataplane != "nft" && opts.dataplane != "iptables")
    return make_failure("bad_flag", "--dataplane: \"" + opts.dataplane
                                      + "\" is not nft or iptables");
  if (opts.lock_filename.empty())
    return make_failure("bad_flag", "-lock.filename: empty");
  return opts;
}

std::string usage() {
  std::ostringstream out;
  out << "usage: networkd [flags]\n"
      << "       networkd ctl COMMAND [--json] [--api HOST:PORT]\n"
      << "                          (a running daemon's state: networkd ctl "
         "help)\n"
      << "Flags take one or two dashes, as -flag=value or -flag value;\n"
      << "booleans as -flag or -flag=false.\n\n";
  options defaults;
  for (auto& f : flags()) {
    out << "  -" << f.name;
    if (f.text != nullptr) {
      out << " string";
      auto& def = defaults.*(f.text);
      out << "\n      " << f.help;
      if (!def.empty())
        out << " (default \"" << def << "\")";
    } else {
      out << "\n      " << f.help;
    }
    out << "\n";
  }
  out << "\nOld forms, accepted with a warning:\n";
  for (auto& f : old_flags) {
    out << "  -" << f.name << (f.now != nullptr ? " string" : "") << "\n      "
        << f.note << "\n";
  }
  out << "  -godns.addr :PORT\n      read as 0.0.0.0:PORT\n";
  return out.str();
}

} // namespace networkd
