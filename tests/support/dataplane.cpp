// SPDX-License-Identifier: MIT
#include "tests/support/dataplane.hpp"

#include <cstdlib>
#include <sstream>

namespace networkd::test {

namespace {

bool nft() {
  return dataplane() == "nft";
}

/// Lines of `text` that contain `what`.
size_t count_lines(const std::string& text, const std::string& what) {
  std::istringstream in(text);
  size_t n = 0;
  for (std::string line; std::getline(in, line);)
    n += line.find(what) != std::string::npos ? 1 : 0;
  return n;
}

} // namespace

const std::string& dataplane() {
  static const std::string which = [] {
    const char* v = std::getenv("NETWORKD_TEST_DATAPLANE");
    return std::string{v != nullptr && *v != '\0' ? v : "nft"};
  }();
  return which;
}

std::string dataplane_flag() {
  return "-dataplane=" + dataplane();
}

std::string dnat_text(const netns& ns) {
  std::string out;
  if (nft())
    ns.sh("nft list table ip networkd 2>/dev/null", &out);
  else
    ns.sh("iptables-save -t nat", &out);
  return out;
}

bool has_dnat(const netns& ns, const std::string& vip, uint16_t port) {
  auto text = dnat_text(ns);
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) {
    if (nft()) {
      // Elements: "10.88.0.10 . tcp . 80 counter ... : 172.20.1.2 . 80"
      for (const char* proto : {" . tcp . ", " . udp . "}) {
        auto key = vip + proto + (port ? std::to_string(port) + " " : "");
        if (line.find(key) != std::string::npos)
          return true;
      }
    } else if (line.find("-d " + vip + "/32") != std::string::npos
               && (port == 0
                   || line.find("--dport " + std::to_string(port) + " ")
                        != std::string::npos)) {
      return true;
    }
  }
  return false;
}

bool has_target(const netns& ns, const std::string& ip, uint16_t port) {
  auto p = std::to_string(port);
  auto text = dnat_text(ns);
  return nft()
           ? text.find(": " + ip + " . " + p) != std::string::npos
           : text.find("--to-destination " + ip + ":" + p) != std::string::npos;
}

size_t dnat_entries(const netns& ns, const std::string& vip) {
  auto text = dnat_text(ns);
  return nft() ? count_lines(text, vip + " . ")
               : count_lines(text, "-d " + vip + "/32");
}

void flush_dnat(const netns& ns) {
  if (nft())
    ns.must("nft flush map ip networkd vip_dnat");
  else
    ns.must("printf '*nat\\n-F lain-PREROUTING\\n-F lain-OUTPUT\\nCOMMIT\\n' "
            "| iptables-restore --noflush");
}

void leave_dnat(const netns& ns, const std::string& ip) {
  if (nft()) {
    // The table networkd writes (docs/nftables.md), with one element.
    ns.must("nft add table ip networkd");
    ns.must("nft 'add map ip networkd vip_dnat { type ipv4_addr . inet_proto "
            ". inet_service : ipv4_addr . inet_service; counter; }'");
    const std::string dnat = " dnat ip to ip daddr . meta l4proto . th dport "
                             "map @vip_dnat comment \"networkd vip dnat\"'";
    if (ns.sh("nft list chain ip networkd prerouting >/dev/null 2>&1") != 0) {
      ns.must("nft 'add chain ip networkd prerouting { type nat hook "
              "prerouting priority -110; }'");
      ns.must("nft 'add rule ip networkd prerouting fib daddr type local"
              + dnat);
      ns.must("nft 'add chain ip networkd output { type nat hook output "
              "priority -110; }'");
      ns.must("nft 'add rule ip networkd output oif \"lo\"" + dnat);
    }
    ns.must("nft 'add element ip networkd vip_dnat { " + ip
            + " . tcp . 80 : 172.20.1.2 . 80 }'");
  } else {
    ns.sh("iptables -t nat -N lain-PREROUTING 2>/dev/null");
    ns.must("iptables -t nat -A lain-PREROUTING -p tcp -d " + ip
            + "/32 --dport 80 -m comment --comment web.main -j DNAT "
              "--to-destination 172.20.1.2:80");
  }
}

} // namespace networkd::test
