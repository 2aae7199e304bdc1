// SPDX-License-Identifier: MIT
// The node ACL with both backends, in a scratch namespace (numbers only):
// 4096 whitelisted sources (none adjacent, so none merge) and 1024 tcp ex
// ports (likewise) applied cold, one change (a source added), an audit with
// nothing committed since, an audit after someone else's commit, and
// remove_all; medians over the rounds.
//
// usage: acl_bench [ROUNDS]   (root; build: cmake --build DIR --target
// acl_bench). The namespace (networkd-aclbench-PID) is removed after each
// round, also when a step fails.
#include "net/kernel/acl.hpp"
#include "net/kernel/nft_acl.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

using namespace networkd;
using clock_type = std::chrono::steady_clock;

namespace {

double ms(clock_type::duration d) {
  return std::chrono::duration<double, std::milli>(d).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

bool run(const std::string& cmd) {
  return std::system(cmd.c_str()) == 0;
}

/// A namespace for one round, removed when the round ends.
struct scratch_ns {
  std::string name = "networkd-aclbench-" + std::to_string(::getpid());
  bool ok = run("ip netns add " + name);
  ~scratch_ns() { run("ip netns del " + name + " 2>/dev/null"); }
};

std::unique_ptr<acl::filter_table> make(const std::string& backend,
                                        const std::string& ns) {
  if (backend == "nft") {
    nft::nft_filter_table::options o;
    o.netns = ns;
    return std::make_unique<nft::nft_filter_table>(o);
  }
  acl::iptables_filter_table::options o;
  o.netns = ns;
  return std::make_unique<acl::iptables_filter_table>(o);
}

std::string json_list(int n, std::string (*item)(int)) {
  std::string out = "[";
  for (int i = 0; i < n; ++i)
    out += (i ? "," : "") + item(i);
  return out + "]";
}

} // namespace

int main(int argc, char** argv) {
  int rounds = argc > 1 ? std::max(1, std::atoi(argv[1])) : 5;
  acl::inputs in;
  auto ips = json_list(4096, [](int i) {
    return "\"10." + std::to_string(90 + i / 256) + "."
           + std::to_string(i % 256) + ".1\"";
  });
  auto ports
    = json_list(1024, [](int i) { return std::to_string(20000 + 2 * i); });
  if (!acl::put(in, "/lain/config/whitelist_ips/big", ips)
      || !acl::put(in, "/lain/config/whitelist_ex_ports/tcp", ports)) {
    std::fprintf(stderr, "bad inputs\n");
    return 1;
  }
  auto changed = in;
  (void)acl::put(changed, "/lain/config/whitelist_ips/one", R"(["10.82.2.2"])");
  int failures = 0;
  for (std::string backend : {"iptables", "nft"}) {
    std::vector<double> cold, one, quiet, foreign, removal;
    for (int r = 0; r < rounds; ++r) {
      scratch_ns ns;
      if (!ns.ok)
        return 1;
      auto t = make(backend, ns.name);
      auto step = [&](std::vector<double>& into, auto&& f) {
        auto t0 = clock_type::now();
        bool ok = f();
        into.push_back(ms(clock_type::now() - t0));
        failures += ok ? 0 : 1;
      };
      step(cold, [&] { return t->apply(in).ok(); });
      step(one, [&] {
        auto x = t->apply(changed);
        return x && x->changed;
      });
      (void)t->audit(changed); // the read that the next one may skip
      step(quiet, [&] {
        auto x = t->audit(changed);
        return x && !x->changed;
      });
      run("ip netns exec " + ns.name + " nft add table ip other");
      step(foreign, [&] {
        auto x = t->audit(changed);
        return x && !x->changed;
      });
      step(removal, [&] { return t->remove_all().ok(); });
    }
    std::printf("%-8s cold %.1f ms | one change %.2f ms | audit, nothing "
                "committed %.2f ms | audit after a foreign commit %.1f ms | "
                "remove_all %.1f ms\n",
                backend.c_str(), median(cold), median(one), median(quiet),
                median(foreign), median(removal));
  }
  if (failures > 0)
    std::fprintf(stderr, "%d steps failed\n", failures);
  return failures > 0 ? 1 : 0;
}
