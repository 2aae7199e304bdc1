// SPDX-License-Identifier: MIT
// bench/nft.sh's helper: loads, changes, audits and removes VIP DNAT rules
// with either backend in a named namespace, and times new TCP connections.
//
//   nft_bench load   --backend nft|iptables --netns NS [--vips N] [--ports P]
//                    [--changes K] [--audits A] [--target IP]
//   nft_bench remove --backend nft|iptables --netns NS
//   nft_bench repair --backend nft --netns NS [--vips N] [--ports P]
//     (one reconcile of everything: puts back what was deleted)
//   nft_bench connect --netns NS --ip IP [--ip2 IP] --port PORT [--port2 PORT]
//                     [--count N]
//   nft_bench udpflood --netns NS --ip IP --port PORT [--count N] [--size B]
//     (N datagrams of B bytes on one connected socket, 64 per sendmmsg:
//     the sender's time per datagram, which includes the receiving side's
//     softirq work in these namespaces: veth delivers on the sending CPU)
//
// Prints key=value lines (times in ms or µs as the key says).
#include "net/kernel/nat.hpp"
#include "net/kernel/nft.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <string>
#include <vector>

using namespace networkd;
using clk = std::chrono::steady_clock;

namespace {

std::map<std::string, std::string> args;

std::string arg(const std::string& k, const std::string& dflt = "") {
  auto it = args.find(k);
  return it == args.end() ? dflt : it->second;
}

int iarg(const std::string& k, int dflt) {
  auto v = arg(k);
  return v.empty() ? dflt : std::stoi(v);
}

double ms_since(clk::time_point t0) {
  return std::chrono::duration<double, std::milli>(clk::now() - t0).count();
}

double median(std::vector<double> v) {
  if (v.empty())
    return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "nft_bench: %s\n", what.c_str());
  std::exit(1);
}

std::unique_ptr<nat::dnat_table> make_table() {
  auto backend = arg("backend");
  if (backend == "nft") {
    nft::nft_dnat_table::options o;
    o.netns = arg("netns");
    return std::make_unique<nft::nft_dnat_table>(o);
  }
  if (backend == "iptables") {
    nat::iptables_dnat_table::options o;
    o.netns = arg("netns");
    o.timeout = std::chrono::milliseconds{60000};
    return std::make_unique<nat::iptables_dnat_table>(o);
  }
  die("--backend nft|iptables");
}

std::string vip_of(int i) {
  return "10.100." + std::to_string(i / 250) + "."
         + std::to_string(i % 250 + 1);
}

std::vector<nat::dnat_rule> rules_of(int i, int ports,
                                     const std::string& target) {
  std::vector<nat::dnat_rule> out;
  for (int p = 0; p < ports; ++p)
    for (auto proto : {nat::protocol::tcp, nat::protocol::udp})
      out.push_back(nat::dnat_rule{
        vip_of(i), proto, static_cast<uint16_t>(80 + p), target,
        static_cast<uint16_t>(8080 + p), "app" + std::to_string(i) + ".web"});
  return out;
}

int load() {
  int vips = iarg("vips", 2000);
  int ports = iarg("ports", 4);
  auto target = arg("target", "172.20.0.2");
  auto table = make_table();
  std::vector<nat::dnat_rule> all;
  std::vector<std::string> names;
  for (int i = 0; i < vips; ++i) {
    auto r = rules_of(i, ports, target);
    all.insert(all.end(), r.begin(), r.end());
    names.push_back(vip_of(i));
  }
  auto t0 = clk::now();
  auto cold = table->reconcile_vips(names, all);
  auto cold_ms = ms_since(t0);
  if (!cold)
    die("cold load: " + cold.error().to_string());
  std::printf("entries=%zu\ncold_ms=%.1f\n", all.size(), cold_ms);
  // One VIP's container moves back and forth, as networkd's NAT worker
  // sends it: reconcile_vips of that address.
  int mid = vips / 2;
  std::vector<double> change;
  for (int k = 0; k < iarg("changes", 7); ++k) {
    auto moved = rules_of(mid, ports, k % 2 == 0 ? "172.20.0.3" : target);
    t0 = clk::now();
    auto r = table->reconcile_vips({vip_of(mid)}, moved);
    change.push_back(ms_since(t0));
    if (!r || r->added == 0)
      die("change failed");
  }
  if (iarg("changes", 7) % 2 == 1) // put it back
    if (!table->reconcile_vips({vip_of(mid)}, rules_of(mid, ports, target)))
      die("change back failed");
  std::printf("change_ms_median=%.2f\n", median(change));
  // The audit: read everything back, then the diff that finds nothing.
  // "quiet": nothing committed since the last read (nft skips the dump);
  // "full": someone committed something elsewhere first (a table of
  // their own created and deleted), so the map is dumped.
  auto audit = [&](bool touch) {
    std::vector<double> whole, read;
    for (int k = 0; k < iarg("audits", 3); ++k) {
      if (touch) {
        auto cmd = "ip netns exec " + arg("netns")
                   + " nft 'add table ip bench_other; delete table ip "
                     "bench_other'";
        if (std::system(cmd.c_str()) != 0)
          die("nft failed: " + cmd);
      }
      t0 = clk::now();
      auto f = table->refresh();
      read.push_back(ms_since(t0));
      auto r = table->reconcile_vips(names, all);
      whole.push_back(ms_since(t0));
      if (!f || !*f || !r || r->added + r->deleted != 0)
        die("audit failed");
    }
    std::printf("audit_%s_ms_median=%.1f\naudit_%s_read_ms_median=%.1f\n",
                touch ? "full" : "quiet", median(whole),
                touch ? "full" : "quiet", median(read));
  };
  audit(true);
  audit(false);
  // Chain order: with iptables the first line of lain-PREROUTING is
  // matched first; a map has no order.
  std::string first = vip_of(0);
  std::string last = vip_of(vips - 1);
  if (arg("backend") == "iptables") {
    auto s = table->read();
    if (!s)
      die("read: " + s.error().to_string());
    auto pre = nat::rules_in(*s, nat::chain::prerouting);
    if (!pre.empty()) {
      first = pre.front().vip;
      last = pre.back().vip;
    }
  }
  std::printf("first_vip=%s\nlast_vip=%s\n", first.c_str(), last.c_str());
  return 0;
}

/// What networkd's audit does after someone deleted part of the table:
/// one reconcile of everything, from a fresh read.
int repair() {
  auto table = make_table();
  int vips = iarg("vips", 2000);
  std::vector<nat::dnat_rule> all;
  std::vector<std::string> names;
  for (int i = 0; i < vips; ++i) {
    auto r = rules_of(i, iarg("ports", 4), arg("target", "172.20.0.2"));
    all.insert(all.end(), r.begin(), r.end());
    names.push_back(vip_of(i));
  }
  auto r = table->reconcile_vips(names, all);
  if (!r)
    die("repair: " + r.error().to_string());
  std::printf("repair_rebuilt=%d\n", r->rebuilt ? 1 : 0);
  return 0;
}

int remove_rules() {
  auto table = make_table();
  auto t0 = clk::now();
  auto r = table->remove_all();
  auto took = ms_since(t0);
  if (!r)
    die("remove_all: " + r.error().to_string());
  std::printf("remove_ms=%.1f\n", took);
  return 0;
}

void enter_netns() {
  auto path = "/run/netns/" + arg("netns");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0 || ::setns(fd, CLONE_NEWNET) != 0)
    die("cannot enter " + path);
  ::close(fd);
}

int udp_flood() {
  enter_netns();
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(iarg("port", 80)));
  if (::inet_pton(AF_INET, arg("ip").c_str(), &to.sin_addr) != 1)
    die("bad address " + arg("ip"));
  int s = ::socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (s < 0 || ::connect(s, reinterpret_cast<sockaddr*>(&to), sizeof to) != 0)
    die(std::string{"udp socket: "} + std::strerror(errno));
  constexpr int batch = 64;
  int count = iarg("count", 200000);
  std::vector<char> payload(static_cast<size_t>(iarg("size", 32)), 'x');
  std::vector<iovec> iov(batch);
  std::vector<mmsghdr> msgs(batch);
  for (int k = 0; k < batch; ++k) {
    iov[k] = {payload.data(), payload.size()};
    msgs[k] = {};
    msgs[k].msg_hdr.msg_iov = &iov[k];
    msgs[k].msg_hdr.msg_iovlen = 1;
  }
  auto t0 = clk::now();
  int sent = 0;
  while (sent < count) {
    int n = ::sendmmsg(s, msgs.data(), static_cast<unsigned>(batch), 0);
    if (n < 0) {
      if (errno == EINTR || errno == ENOBUFS || errno == ECONNREFUSED)
        continue;
      die(std::string{"sendmmsg: "} + std::strerror(errno));
    }
    sent += n;
  }
  auto ms = ms_since(t0);
  ::close(s);
  std::printf("udp_ns_per_packet=%.1f\n", ms * 1e6 / sent);
  return 0;
}

int connect_loop() {
  enter_netns();
  // One or two addresses; with two, connections alternate between them so
  // that both see the same moments of a busy machine.
  std::vector<std::string> ips{arg("ip")};
  if (!arg("ip2").empty())
    ips.push_back(arg("ip2"));
  std::vector<sockaddr_in> to(ips.size());
  for (size_t k = 0; k < ips.size(); ++k) {
    to[k].sin_family = AF_INET;
    int port = iarg("port", 80);
    to[k].sin_port
      = htons(static_cast<uint16_t>(k == 0 ? port : iarg("port2", port)));
    if (::inet_pton(AF_INET, ips[k].c_str(), &to[k].sin_addr) != 1)
      die("bad address " + ips[k]);
  }
  int count = iarg("count", 200);
  std::vector<std::vector<double>> us(ips.size());
  for (int i = 0; i < count + 20; ++i) {
    for (size_t k = 0; k < ips.size(); ++k) {
      int s = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
      linger lg{1, 0}; // RST on close: no TIME_WAIT pile-up
      ::setsockopt(s, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      auto t0 = clk::now();
      int rc = ::connect(s, reinterpret_cast<sockaddr*>(&to[k]), sizeof to[k]);
      auto took = ms_since(t0) * 1000;
      ::close(s);
      if (rc != 0)
        die("connect " + ips[k] + ": " + std::strerror(errno));
      if (i >= 20) // the first ones warm caches
        us[k].push_back(took);
    }
  }
  std::printf("connect_us_median=%.1f\n", median(us[0]));
  if (ips.size() > 1)
    std::printf("connect2_us_median=%.1f\n", median(us[1]));
  return 0;
}

} // namespace

int main(int argc, char** argv) {
  if (argc < 2)
    die("usage: nft_bench load|remove|connect --key value ...");
  std::string mode = argv[1];
  for (int i = 2; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    if (k.rfind("--", 0) != 0)
      die("bad argument " + k);
    args[k.substr(2)] = argv[i + 1];
  }
  if (mode == "load")
    return load();
  if (mode == "remove")
    return remove_rules();
  if (mode == "repair")
    return repair();
  if (mode == "connect")
    return connect_loop();
  if (mode == "udpflood")
    return udp_flood();
  die("unknown mode " + mode);
}
