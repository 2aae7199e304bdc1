// SPDX-License-Identifier: MIT
#include "tests/support/dataplane.hpp"

#include <algorithm>
#include <cstdlib>
#include <sstream>
#include <stdexcept>

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

namespace {

/// The DNAT entries alone: with nft the map (the table also lists the
/// same keys in the traffic set, docs/nftables.md).
std::string dnat_entries_text(const netns& ns) {
  if (!nft())
    return dnat_text(ns);
  std::string out;
  ns.sh("nft list map ip networkd vip_dnat 2>/dev/null", &out);
  return out;
}

} // namespace

bool has_dnat(const netns& ns, const std::string& vip, uint16_t port) {
  auto text = dnat_entries_text(ns);
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
  auto text = dnat_entries_text(ns);
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

std::string acl_text(const netns& ns) {
  std::string out;
  if (nft()) {
    ns.sh("nft list table ip networkd 2>/dev/null", &out);
    return out.find("chain acl_input") == std::string::npos ? "" : out;
  }
  std::string save;
  ns.sh("iptables-save -t filter", &save);
  std::istringstream in(save);
  for (std::string line; std::getline(in, line);)
    if (line.find("lain-") != std::string::npos
        || line.rfind(":INPUT ", 0) == 0)
      out += line + "\n";
  return out.find("lain-") == std::string::npos ? "" : out;
}

bool acl_active(const netns& ns) {
  auto text = acl_text(ns);
  if (nft())
    return text.find("hook input priority filter; policy drop;")
           != std::string::npos;
  return text.find(":INPUT DROP") != std::string::npos
         && text.find("-A INPUT -j lain-INPUT") != std::string::npos;
}

bool acl_gone(const netns& ns) {
  if (nft()) {
    std::string out;
    ns.sh("nft list ruleset", &out);
    return out.find("acl_") == std::string::npos;
  }
  std::string save;
  ns.sh("iptables-save -t filter", &save);
  return save.find("lain-") == std::string::npos
         && save.find(":INPUT DROP") == std::string::npos;
}

std::vector<std::string> acl_sources(const netns& ns) {
  std::vector<std::string> out;
  std::string text;
  if (nft()) {
    ns.sh("nft list set ip networkd acl_sources 2>/dev/null", &text);
    auto at = text.find("elements = {");
    if (at == std::string::npos)
      return out;
    auto end = text.find('}', at);
    std::string list = text.substr(at + 12, end - at - 12);
    std::string tok;
    for (char c : list + ",") {
      if (c == ',') {
        if (!tok.empty())
          out.push_back(tok);
        tok.clear();
      } else if (c != ' ' && c != '\n' && c != '\t') {
        tok += c;
      }
    }
  } else {
    ns.sh("iptables-save -t filter", &text);
    std::istringstream in(text);
    for (std::string line; std::getline(in, line);) {
      if (line.rfind("-A lain-INPUT ", 0) != 0
          || line.find("-j lain-ENTRY") == std::string::npos
          || line.find(" -p ") != std::string::npos)
        continue;
      std::istringstream w(line);
      std::vector<std::string> t;
      for (std::string x; w >> x;)
        t.push_back(x);
      for (size_t i = 0; i + 1 < t.size(); ++i)
        if (t[i] == "-s" || t[i] == "--src-range") {
          auto v = t[i + 1];
          if (v.size() > 3 && v.compare(v.size() - 3, 3, "/32") == 0)
            v.resize(v.size() - 3);
          out.push_back(v);
        }
    }
  }
  std::sort(out.begin(), out.end());
  return out;
}

void acl_delete_source(const netns& ns, const std::string& source) {
  if (nft()) {
    ns.must("nft delete element ip networkd acl_sources '{ " + source + " }'");
    return;
  }
  auto spec
    = source.find('-') != std::string::npos
        ? "-m iprange --src-range " + source
        : "-s "
            + (source.find('/') != std::string::npos ? source : source + "/32");
  ns.must("iptables -D lain-INPUT " + spec + " -j lain-ENTRY");
}

void acl_delete_base_rule(const netns& ns) {
  if (nft()) {
    std::string out;
    ns.sh("nft -a list chain ip networkd acl_input", &out);
    std::istringstream in(out);
    for (std::string line; std::getline(in, line);) {
      if (line.find("ct state established,related accept") == std::string::npos)
        continue;
      auto h = line.find("# handle ");
      if (h != std::string::npos) {
        ns.must("nft delete rule ip networkd acl_input handle "
                + line.substr(h + 9));
        return;
      }
    }
    throw std::runtime_error("no established,related rule in:\n" + out);
  }
  ns.must("iptables -D lain-INPUT -m state --state RELATED,ESTABLISHED -j "
          "ACCEPT");
}

void leave_other_acl(const netns& ns) {
  if (nft()) {
    ns.must("iptables -N lain-INPUT && iptables -A lain-INPUT -i lo -j ACCEPT"
            " && iptables -A INPUT -j lain-INPUT && iptables -P INPUT DROP");
  } else {
    ns.must("nft 'add table ip networkd'");
    ns.must("nft 'add chain ip networkd acl_input { type filter hook input "
            "priority filter; policy drop; }'");
    ns.must("nft 'add rule ip networkd acl_input iifname \"lo\" accept'");
  }
}

bool other_acl_gone(const netns& ns) {
  std::string out;
  if (nft()) {
    ns.sh("iptables-save -t filter", &out);
    return out.find("lain-") == std::string::npos
           && out.find(":INPUT DROP") == std::string::npos;
  }
  ns.sh("nft list ruleset", &out);
  return out.find("acl_input") == std::string::npos;
}

} // namespace networkd::test
