// SPDX-License-Identifier: MIT
// Issue 6, "never two owners": the VIP engine under faults, in a namespace
// lab built here — a bridge; etcd in namespaces on it (one member, or three);
// three networkd nodes, each with a "container" namespace behind it (TCP and
// UDP servers that name their node) and a lainlet stand-in; and a client
// sending real traffic to the VIP. Throughout every case a sampler thread
// dumps the addresses of every node namespace about every millisecond, and
// an ARP capture on the client records every "VIP is at MAC" claim: no two
// nodes may hold the VIP in the same round, and no MAC may claim it while
// its node does not hold it.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <signal.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <set>
#include <sstream>

#include "tests/support/daemon.hpp"
#include "tests/support/lainlet_server.hpp"
#include "tests/support/netns.hpp"
#include "tests/support/netns_etcd_cluster.hpp"
#include "tests/support/util.hpp"
#include "tests/support/vip_lab_node.hpp"
#include "tests/support/vip_watch.hpp"

using namespace networkd::test;

namespace {

const std::string vip = "10.88.0.50";
const std::string lock_key = "/lain/networkd/vips/" + vip + ".lock";

using ms = std::chrono::milliseconds;

double ms_since(lab_clock::time_point t0, lab_clock::time_point t) {
  return std::chrono::duration<double, std::milli>(t - t0).count();
}

std::string trim(std::string s) {
  while (!s.empty()
         && (s.back() == '\n' || s.back() == '\r' || s.back() == ' '))
    s.pop_back();
  return s;
}

/// What a node's /v1/vips says about the VIP.
struct vip_view {
  bool ok = false; ///< the admin endpoint answered and listed the VIP
  std::string state;
  std::string owner;
  bool address_on = false;
};

/// What a node's /v1/state says about its session lease.
struct lease_view {
  bool ok = false;
  int64_t id = 0;
  int64_t ttl = 0;
  std::string state;
  int64_t renewals = 0;
  int64_t keepalive_failures = 0;
};

/// One node: its namespace on the bridge, a container behind it, lainlet.
struct node : lab_node {
  using lab_node::lab_node;
  bool frozen = false; ///< SIGSTOPped: do not ask its admin endpoint

  std::string mac() const { return up->mac_a(); }

  /// The VIP's line of `ip -4 -o addr show dev eth0` ("" when absent).
  std::string vip_line() const {
    std::string out;
    ns.sh("ip -4 -o addr show dev eth0", &out);
    std::istringstream lines(out);
    std::string line;
    while (std::getline(lines, line))
      if (line.find(" " + vip + "/32 ") != std::string::npos)
        return line;
    return {};
  }

  vip_view vip_state() const {
    vip_view v;
    if (!networkd || frozen)
      return v;
    auto r = networkd->get("/v1/vips");
    rapidjson::Document doc;
    if (r.status != 200 || doc.Parse(r.body.c_str()).HasParseError()
        || !doc.IsObject() || !doc.HasMember("vips") || !doc["vips"].IsArray())
      return v;
    for (auto& h : doc["vips"].GetArray()) {
      if (!h.IsObject() || !h.HasMember("key") || !h["key"].IsString()
          || h["key"].GetString() != "/lain/config/vips/" + vip)
        continue;
      v.ok = true;
      if (h.HasMember("state") && h["state"].IsString())
        v.state = h["state"].GetString();
      if (h.HasMember("owner") && h["owner"].IsString())
        v.owner = h["owner"].GetString();
      if (h.HasMember("address_on") && h["address_on"].IsBool())
        v.address_on = h["address_on"].GetBool();
    }
    return v;
  }

  lease_view lease() const {
    lease_view l;
    if (!networkd || frozen)
      return l;
    auto r = networkd->get("/v1/state");
    rapidjson::Document doc;
    if (r.status != 200 || doc.Parse(r.body.c_str()).HasParseError()
        || !doc.IsObject() || !doc.HasMember("actors")
        || !doc["actors"].IsArray())
      return l;
    for (auto& a : doc["actors"].GetArray()) {
      if (!a.IsObject() || !a.HasMember("name") || !a["name"].IsString()
          || std::string{a["name"].GetString()} != "supervisor"
          || !a.HasMember("lease") || !a["lease"].IsObject())
        continue;
      auto& o = a["lease"];
      auto num = [&](const char* k) -> int64_t {
        return o.HasMember(k) && o[k].IsInt64() ? o[k].GetInt64() : 0;
      };
      l.ok = true;
      // The id is hex text, as etcdctl prints it.
      l.id = o.HasMember("id") && o["id"].IsString()
               ? std::stoll(o["id"].GetString(), nullptr, 16)
               : 0;
      l.ttl = num("ttl");
      l.renewals = num("renewals");
      l.keepalive_failures = num("keepalive_failures");
      if (o.HasMember("state") && o["state"].IsString())
        l.state = o["state"].GetString();
    }
    return l;
  }

  /// Which etcd endpoints ("IP:2379") this node's namespace has TCP
  /// connections to, from `ss` inside it.
  std::set<std::string> etcd_peers() const {
    std::string out;
    ns.sh("ss -Htn state established", &out);
    std::set<std::string> peers;
    std::istringstream words(out);
    std::string w;
    while (words >> w) {
      if (w.size() <= 5 || w.compare(w.size() - 5, 5, ":2379") != 0)
        continue;
      // gRPC dials over IPv6 sockets: "[::ffff:10.88.0.2]:2379".
      if (w.rfind("[::ffff:", 0) == 0)
        w = w.substr(8, w.size() - 8 - 6) + ":2379";
      peers.insert(w);
    }
    return peers;
  }

  /// The last lines of its log.
  std::string log_tail(size_t lines = 60) const {
    if (!networkd)
      return {};
    auto text = networkd->log();
    size_t pos = text.size();
    for (size_t n = 0; n <= lines && pos > 0; ++n)
      pos = text.rfind('\n', pos - 1);
    return pos == std::string::npos ? text : text.substr(pos + 1);
  }
};

/// The lock key as etcd has it.
struct lock_view {
  bool ok = false;
  std::string holder;
  int64_t create_revision = 0;
  int64_t lease = 0;
};

struct lab {
  lab_clock::time_point t0 = lab_clock::now();
  int lease_ttl;
  netns sw{"sw"};
  std::unique_ptr<bridge> br;
  netns client{"cl"};
  std::unique_ptr<veth_pair> client_link;
  std::unique_ptr<ns_etcd_cluster> etcd;
  std::vector<std::unique_ptr<node>> nodes;
  std::vector<std::string> macs; ///< of each node's eth0
  std::unique_ptr<address_sampler> sampler;
  std::unique_ptr<arp_claims> arp;

  /// `members` etcd members on 10.88.0.2, .3, ...; lease_ttl set before
  /// any networkd starts; the sampler and the ARP capture run at once.
  lab(size_t members, int ttl) : lease_ttl(ttl) {
    br = std::make_unique<bridge>(sw, "br0");
    client_link = std::make_unique<veth_pair>(client, "eth0", sw, "p-cl");
    br->attach("p-cl");
    client.must("ip addr add 10.88.0.100/24 dev eth0");
    client.must("sysctl -qw net.ipv4.conf.all.arp_accept=1");
    client.must("sysctl -qw net.ipv4.conf.eth0.arp_accept=1");
    std::vector<std::string> ips;
    for (size_t i = 0; i < members; ++i)
      ips.push_back("10.88.0." + std::to_string(2 + i));
    etcd = std::make_unique<ns_etcd_cluster>(sw, *br, ips);
    REQUIRE(
      etcd->ctl("put /lain/networkd/config/lease_ttl " + std::to_string(ttl))
      == 0);
    for (int i = 1; i <= 3; ++i) {
      nodes.push_back(std::make_unique<node>(sw, "n" + std::to_string(i), i));
      br->attach("p-n" + std::to_string(i));
    }
    std::vector<const netns*> where;
    for (auto& n : nodes) {
      where.push_back(&n->ns);
      macs.push_back(n->mac());
    }
    sampler = std::make_unique<address_sampler>(where, vip);
    arp = std::make_unique<arp_claims>(client, "eth0", vip);
  }

  ~lab() {
    if (std::uncaught_exceptions() > 0)
      std::cerr << "---- lab state at failure\n" << report() << "----\n";
  }

  std::vector<std::string> names() const {
    std::vector<std::string> out;
    for (auto& n : nodes)
      out.push_back(n->name);
    return out;
  }

  size_t index_of(const std::string& name) const {
    for (size_t i = 0; i < nodes.size(); ++i)
      if (nodes[i]->name == name)
        return i;
    throw std::runtime_error("no node " + name);
  }

  /// Node name for a MAC claiming the VIP ("?MAC" when none has it).
  std::string owner_of_mac(const std::string& mac) const {
    for (size_t i = 0; i < nodes.size(); ++i)
      if (macs[i] == mac)
        return nodes[i]->name;
    return "?" + mac;
  }

  lock_view lock() const {
    lock_view v;
    std::string out;
    if (etcd->ctl("get -w json " + lock_key, &out) != 0)
      return v;
    rapidjson::Document doc;
    if (doc.Parse(out.c_str()).HasParseError() || !doc.IsObject())
      return v;
    v.ok = true;
    if (!doc.HasMember("kvs") || !doc["kvs"].IsArray() || doc["kvs"].Empty())
      return v;
    auto& kv = doc["kvs"][0];
    if (kv.HasMember("create_revision") && kv["create_revision"].IsInt64())
      v.create_revision = kv["create_revision"].GetInt64();
    if (kv.HasMember("lease") && kv["lease"].IsInt64())
      v.lease = kv["lease"].GetInt64();
    if (etcd->ctl("get --print-value-only " + lock_key, &out) == 0)
      v.holder = trim(out);
    else
      v.ok = false;
    return v;
  }

  /// Whether etcd still has lease `id` with time to live left.
  bool lease_alive_on_server(int64_t id) const {
    std::ostringstream hex;
    hex << std::hex << id;
    std::string out;
    if (etcd->ctl("lease timetolive " + hex.str(), &out) != 0)
      return false;
    return out.find("granted with TTL") != std::string::npos
           && out.find("remaining(-1s)") == std::string::npos
           && out.find("already expired") == std::string::npos;
  }

  /// The name of the node whose container answered the client on VIP:80
  /// ("" when none did within a second).
  std::string fetch() { return tcp_fetch(client, vip, 80, ms{1000}); }

  /// The MAC the client's neighbour table has for the VIP ("" if none).
  std::string client_neigh() const {
    std::string out;
    client.sh("ip neigh show " + vip + " dev eth0", &out);
    auto pos = out.find("lladdr ");
    if (pos == std::string::npos)
      return {};
    return out.substr(pos + 7, 17);
  }

  /// Puts the VIP, starts n1 and waits until it serves, then n2 and n3
  /// and waits until both stand by: the owner is n1. endpoints[i] is the
  /// -etcd.endpoint of node i.
  void start(const std::vector<std::string>& endpoints) {
    REQUIRE(etcd->ctl("put /lain/config/vips/" + vip
                      + " '{\"app\":\"web\",\"proc\":\"main\",\"ports\":["
                        "{\"src\":\"80\"},{\"src\":\"53\",\"proto\":"
                        "\"udp\"}]}'")
            == 0);
    for (size_t i = 0; i < nodes.size(); ++i) {
      auto& n = *nodes[i];
      n.start_networkd(endpoints.at(i));
      // The lease_ttl knob applies from the first lease on.
      REQUIRE(wait_until(
        [&] {
          auto l = n.lease();
          return l.state == "alive" && l.ttl == lease_ttl;
        },
        15s, 20ms));
      if (i == 0)
        REQUIRE(wait_until(
          [&] {
            return lock().holder == "n1" && fetch() == "n1"
                   && n.vip_state().state == "serving";
          },
          15s, 20ms));
    }
    for (size_t i = 1; i < nodes.size(); ++i)
      REQUIRE(wait_until(
        [&] {
          auto v = nodes[i]->vip_state();
          return v.state == "standby" && v.owner == "n1";
        },
        15s, 20ms));
    REQUIRE(sampler->held(0));
  }

  void start(const std::string& endpoint) {
    start(std::vector<std::string>(nodes.size(), endpoint));
  }

  /// Times at which node i started (held) or stopped holding the VIP
  /// after `from`.
  std::vector<address_sampler::change>
  changes_of(size_t i, lab_clock::time_point from) const {
    std::vector<address_sampler::change> out;
    for (auto& c : sampler->changes())
      if (c.node == i && c.at > from)
        out.push_back(c);
    return out;
  }

  std::string claims_text() const {
    std::ostringstream out;
    char line[160];
    for (auto& c : arp->claims()) {
      std::snprintf(line, sizeof(line), "  %+10.1f ms  %s %s (%s)\n",
                    ms_since(t0, c.at), c.reply ? "reply  " : "request",
                    c.mac.c_str(), owner_of_mac(c.mac).c_str());
      out << line;
    }
    return out.str();
  }

  /// Everything useful for a failure: holders over time, ARP claims, the
  /// lock, each node's view and the end of its log.
  std::string report() {
    std::ostringstream out;
    try {
      out << "VIP holders (sampler, " << sampler->rounds() << " rounds, "
          << "longest gap " << sampler->max_round_gap().count() << " us at "
          << ms_since(t0, sampler->max_round_gap_at()) << " ms):\n"
          << sampler->timeline(t0, names()) << "ARP claims for " << vip
          << " seen by the client:\n"
          << claims_text();
      auto l = lock();
      out << "lock: " << (l.ok ? l.holder : "(etcd unreachable)")
          << " create_revision " << l.create_revision << " lease " << std::hex
          << l.lease << std::dec << "\n";
      out << "client neighbour entry for the VIP: " << client_neigh() << "\n";
      for (auto& n : nodes) {
        out << "== " << n->name << " (" << macs[index_of(n->name)] << ")";
        if (n->networkd && !n->frozen) {
          out << "\n/v1/vips: " << n->networkd->get("/v1/vips").body;
          auto le = n->lease();
          out << "lease " << std::hex << le.id << std::dec << " ttl " << le.ttl
              << " " << le.state << " renewals " << le.renewals << "\n";
        } else {
          out << " (not asked)\n";
        }
        out << "log tail:\n" << n->log_tail() << "\n";
      }
    } catch (const std::exception& e) {
      out << "(report failed: " << e.what() << ")\n";
    }
    return out.str();
  }

  /// The invariants of issue 6 over everything recorded so far.
  void check_safety() {
    REQUIRE(sampler->sync());
    INFO(report());
    CHECK(sampler->error().empty());
    CHECK(arp->error().empty());
    // Never two holders in one sampling round. Rounds are about 1 ms apart;
    // on a loaded host the kernel stalls address dumps now and then (they
    // wait for rtnl while other tests add and delete namespaces), which can
    // hide a flap shorter than the stall but never orders two rounds wrong.
    WARN("sampler: " << sampler->rounds() << " rounds, longest gap "
                     << sampler->max_round_gap().count() / 1000 << " ms");
    CHECK(sampler->overlap_rounds() == 0);
    // Every MAC claiming the VIP belongs to a node that held it then, and
    // the claimants never alternate (A, B, A): two MACs never answer for
    // the VIP at the same time.
    std::string stale;
    std::vector<std::string> runs;
    for (auto& c : arp->claims()) {
      auto who = owner_of_mac(c.mac);
      bool held = who.front() != '?'
                  && sampler->held_between(index_of(who), c.at - ms{500},
                                           c.at + ms{500});
      if (!held) {
        char line[96];
        std::snprintf(line, sizeof(line), "  %+.1f ms: %s %s\n",
                      ms_since(t0, c.at), who.c_str(),
                      c.reply ? "reply" : "request");
        stale += line;
      }
      if (runs.empty() || runs.back() != who)
        runs.push_back(who);
    }
    INFO("ARP claims by a node that did not hold the VIP within 500 ms:\n"
         << stale);
    CHECK(stale.empty());
    std::set<std::string> seen;
    std::string sequence;
    std::string again;
    for (auto& r : runs) {
      sequence += r + " ";
      if (!seen.insert(r).second)
        again += r + " ";
    }
    INFO("MACs claiming the VIP, in order: " << sequence);
    CHECK(again.empty());
    // Sanitizer builds: no daemon reported a memory or UB error.
    for (auto& n : nodes) {
      if (!n->networkd)
        continue;
      auto log = n->networkd->log();
      INFO(n->name);
      CHECK(log.find("AddressSanitizer") == std::string::npos);
      CHECK(log.find("runtime error:") == std::string::npos);
    }
  }
};

/// Fetches from the client: how many reached the node expected, and when
/// (ms since the lab started) the others happened: answered by another node
/// (traffic served by a second owner) or not answered within a second.
struct fetch_tally {
  fetch_tally(lab_clock::time_point start, std::string expected)
      : t0(start), want(std::move(expected)) {}

  lab_clock::time_point t0;
  std::string want;
  int ok = 0;
  std::vector<std::string> wrong;
  std::vector<std::string> unanswered;

  void add(const std::string& got) {
    if (got == want) {
      ++ok;
      return;
    }
    char when[32];
    std::snprintf(when, sizeof(when), "%+.1f ms",
                  ms_since(t0, lab_clock::now()));
    if (got.empty())
      unanswered.push_back(when);
    else
      wrong.push_back(std::string{when} + ": " + got);
  }

  std::string text() const {
    std::string out = std::to_string(ok) + " fetches reached " + want + ", "
                      + std::to_string(wrong.size()) + " reached another node, "
                      + std::to_string(unanswered.size()) + " got no answer";
    for (auto& w : wrong)
      out += "\n  " + w;
    for (auto& u : unanswered)
      out += "\n  " + u + ": no answer";
    return out;
  }
};

/// Waits (20 s at most) until `owner` stands by for `next` with a live
/// lease renewed twice since, counting the client's fetches meanwhile.
void wait_standby(lab& l, node& owner, const std::string& next,
                  fetch_tally& tally) {
  int64_t renewals_at_standby = -1;
  REQUIRE(wait_until(
    [&] {
      tally.add(l.fetch());
      auto v = owner.vip_state();
      if (!(v.state == "standby" && v.owner == next))
        return false;
      auto le = owner.lease();
      if (le.state != "alive")
        return false;
      if (renewals_at_standby < 0)
        renewals_at_standby = le.renewals;
      return le.renewals >= renewals_at_standby + 2;
    },
    20s, 50ms));
}

/// After an etcd fault shorter than the lease: n1 still holds the VIP with
/// the same lock on the same lease, nobody else added or dropped it since
/// `since`, every fetch reached n1, and nothing fenced.
void check_nothing_moved(lab& l, node& owner, const lock_view& lock0,
                         const lease_view& lease0, lab_clock::time_point since,
                         const fetch_tally& tally, const std::string& what) {
  auto lock1 = l.lock();
  CHECK(lock1.holder == "n1");
  CHECK(lock1.create_revision == lock0.create_revision);
  CHECK(lock1.lease == lease0.id);
  REQUIRE(l.sampler->sync());
  CHECK(l.changes_of(0, since).empty());
  CHECK(l.sampler->held(0));
  for (size_t i = 1; i < l.nodes.size(); ++i) {
    CHECK(l.changes_of(i, since).empty());
    auto v = l.nodes[i]->vip_state();
    CHECK(v.state == "standby");
    CHECK(v.owner == "n1");
  }
  WARN(what << ": " << tally.text());
  CHECK(tally.wrong.empty());
  CHECK(tally.unanswered.empty());
  CHECK(owner.networkd->log().find("fencing") == std::string::npos);
  l.check_safety();
}

} // namespace

TEST_CASE("a frozen owner loses the VIP by itself and stays out after "
          "SIGCONT",
          "[vip][lab][safety]") {
  lab l{1, 2};
  l.start(l.etcd->endpoint(0));
  auto& owner = *l.nodes[0];
  auto lease_before = owner.lease();
  auto taken = l.changes_of(0, l.t0).front().at;
  {
    // Kernel-side fencing: the address carries a finite valid lifetime.
    auto line = owner.vip_line();
    INFO("owner's VIP line: " << line);
    CHECK(line.find("valid_lft") != std::string::npos);
    CHECK(line.find("valid_lft forever") == std::string::npos);
  }

  auto stopped = lab_clock::now();
  owner.frozen = true;
  owner.networkd->proc().signal(SIGSTOP);
  WARN("SIGSTOP " << ms_since(taken, stopped) << " ms after n1 took the VIP");
  // A frozen networkd does nothing; the kernel drops the address when its
  // valid lifetime ends, before the lease can expire on the server.
  REQUIRE(wait_until([&] { return !l.sampler->held(0); }, 10s, 5ms));
  auto drops = l.changes_of(0, stopped);
  REQUIRE(!drops.empty());
  auto gone = drops.front().at;
  WARN("frozen owner: VIP gone from it " << ms_since(stopped, gone)
                                         << " ms after SIGSTOP");
  CHECK(gone - stopped < std::chrono::seconds{l.lease_ttl});

  // Another node takes over once the lease is gone on the server.
  std::string next;
  REQUIRE(wait_until(
    [&] {
      next = l.lock().holder;
      return next == "n2" || next == "n3";
    },
    15s, 20ms));
  REQUIRE(wait_until([&] { return l.fetch() == next; }, 10s, 20ms));
  // The client may be answered before the sampler's next round sees the
  // address: wait for a round that started after the answer.
  REQUIRE(l.sampler->sync());
  auto adds = l.changes_of(l.index_of(next), stopped);
  REQUIRE(!adds.empty());
  auto added = adds.front().at;
  WARN("frozen owner: " << next << " holds the VIP " << ms_since(stopped, added)
                        << " ms after SIGSTOP, " << ms_since(gone, added)
                        << " ms after it left the frozen node");
  CHECK(added > gone);

  // n1 stays frozen until the new owner's last gratuitous ARP burst (README:
  // at once, after 1.1 s and after 5 s) has been seen: then every burst n1
  // had scheduled as owner is overdue too, and nothing but the resumed n1
  // can change what the client's ARP cache says about the VIP.
  auto mac = l.macs[l.index_of(next)];
  fetch_tally tally{l.t0, next};
  REQUIRE(wait_until(
    [&] {
      tally.add(l.fetch());
      for (auto& c : l.arp->claims())
        if (c.mac == mac && c.at > added + 4500ms)
          return true;
      return false;
    },
    15s, 50ms));
  REQUIRE(l.client_neigh() == mac);
  // The client's kernel ignores ARP updates within `locktime` of the last
  // one; let that pass, so that any claim n1 makes now would show.
  lab_clock::time_point last_claim{};
  for (auto& c : l.arp->claims())
    if (c.mac == mac)
      last_claim = std::max(last_claim, c.at);
  std::string locktime;
  l.client.sh("cat /proc/sys/net/ipv4/neigh/eth0/locktime", &locktime);
  auto lock_ms = ms{std::atoi(locktime.c_str()) * 10}; // in 1/100 s
  while (lab_clock::now() < last_claim + lock_ms + 200ms) {
    tally.add(l.fetch());
    std::this_thread::sleep_for(ms{50});
  }

  // SIGCONT: the node finds its lease gone and the lock taken, and stands
  // by: watched until its new lease was renewed twice.
  auto resumed = lab_clock::now();
  owner.networkd->proc().signal(SIGCONT);
  owner.frozen = false;
  wait_standby(l, owner, next, tally);
  auto lease_after = owner.lease();
  CHECK(lease_after.id != lease_before.id);
  CHECK(l.lock().holder == next);
  // It never held the VIP again, the client still reaches the new owner,
  // and the client's neighbour table still has the new owner's MAC for the
  // VIP (nobody else claimed it).
  REQUIRE(l.sampler->sync());
  CHECK(l.changes_of(0, resumed).empty());
  CHECK_FALSE(l.sampler->held(0));
  for (int i = 0; i < 10; ++i)
    tally.add(l.fetch());
  WARN("frozen owner, from the takeover on: " << tally.text());
  CHECK(tally.wrong.empty());
  CHECK(tally.ok > 0);
  CHECK(l.client_neigh() == mac);
  l.check_safety();
}

TEST_CASE("a cut link makes the owner drop the VIP before another node adds "
          "it",
          "[vip][lab][safety]") {
  // The owner loses etcd and the client alike, and cannot tell anyone.
  std::string how;
  int ttl = 2;
  SECTION("the switch port of the owner goes down") {
    how = "switch port down";
  }
  SECTION("the owner's eth0 goes down") {
    how = "eth0 down";
  }
  SECTION("the switch port goes down, with the default 6 s lease") {
    // The kernel drops the address (whole seconds of valid lifetime)
    // before networkd's own deadline here.
    how = "switch port down";
    ttl = 6;
  }
  lab l{1, ttl};
  l.start(l.etcd->endpoint(0));
  auto& owner = *l.nodes[0];
  auto cut = lab_clock::now();
  if (how == "eth0 down")
    owner.ns.must("ip link set eth0 down");
  else
    l.sw.must("ip link set p-n1 down");
  std::string next;
  REQUIRE(wait_until(
    [&] {
      next = l.lock().holder;
      return next == "n2" || next == "n3";
    },
    15s + std::chrono::seconds{ttl}, 20ms));
  REQUIRE(wait_until([&] { return l.fetch() == next; }, 10s, 20ms));
  REQUIRE(l.sampler->sync());
  auto adds = l.changes_of(l.index_of(next), cut);
  INFO(l.sampler->timeline(l.t0, l.names()));
  REQUIRE(!adds.empty());
  auto added = adds.front();
  REQUIRE(added.held);
  // The cut owner's last drop before that add (it may have put the address
  // back once while its lease still counted as alive).
  std::vector<address_sampler::change> before;
  for (auto& c : l.changes_of(0, cut))
    if (c.round < added.round)
      before.push_back(c);
  REQUIRE(!before.empty());
  auto dropped = before.back();
  // The cut owner dropped it strictly before the new owner added it.
  CHECK_FALSE(dropped.held);
  CHECK(dropped.round < added.round);
  CHECK(dropped.at < added.at);
  auto fenced = owner.networkd->log().find(
                  "lease deadline passed without renewal: fencing")
                != std::string::npos;
  WARN("link cut (" << how << ", " << ttl << " s lease): the owner dropped "
                    << "the VIP after " << ms_since(cut, dropped.at) << " ms ("
                    << (fenced ? "networkd fenced itself"
                               : "no fencing line in its log")
                    << "; " << before.size() << " changes before), " << next
                    << " added it after " << ms_since(cut, added.at) << " ms: "
                    << ms_since(dropped.at, added.at) << " ms with no holder");

  // The link comes back: the node stands by and does not take it back.
  auto restored = lab_clock::now();
  if (how == "eth0 down")
    owner.ns.must("ip link set eth0 up");
  else
    l.sw.must("ip link set p-n1 up");
  fetch_tally tally{l.t0, next};
  wait_standby(l, owner, next, tally);
  REQUIRE(l.sampler->sync());
  CHECK(l.changes_of(0, restored).empty());
  CHECK(l.lock().holder == next);
  for (int i = 0; i < 10; ++i)
    tally.add(l.fetch());
  // Only traffic served by a second owner is a failure here: with a 2 s
  // lease a very loaded host can make the new owner fence itself for a
  // moment (shown in the report).
  WARN("link cut (" << how << ", " << ttl
                    << " s lease), after the link came back: " << tally.text());
  CHECK(tally.wrong.empty());
  CHECK(tally.ok > 0);
  l.check_safety();
}

TEST_CASE("etcd down for less than the lease moves nothing",
          "[vip][lab][safety]") {
  lab l{1, 6};
  l.start(l.etcd->endpoint(0));
  auto& owner = *l.nodes[0];
  auto lease0 = owner.lease();
  auto lock0 = l.lock();
  REQUIRE(lock0.holder == "n1");
  REQUIRE(lock0.lease == lease0.id);
  // Stop etcd right after a keep-alive of the owner: the outage is then
  // measured from its last renewal (networkd fences at that renewal's send
  // time + TTL - 1 s).
  REQUIRE(wait_until([&] { return owner.lease().renewals > lease0.renewals; },
                     5s, 5ms));
  auto renewals0 = owner.lease().renewals;
  auto stopped = lab_clock::now();
  l.etcd->stop(0);
  fetch_tally tally{l.t0, "n1"};
  while (lab_clock::now() < stopped + 2s) {
    tally.add(l.fetch());
    std::this_thread::sleep_for(ms{20});
  }
  l.etcd->start(0);
  auto back = lab_clock::now();
  WARN("etcd unreachable for " << ms_since(stopped, back) << " ms");
  // Until the owner has renewed the same lease twice after etcd came back,
  // and etcd shows that lease alive with the lock still on it: the client
  // keeps reaching n1's container.
  REQUIRE(wait_until(
    [&] {
      tally.add(l.fetch());
      auto le = owner.lease();
      return le.state == "alive" && le.id == lease0.id
             && le.renewals >= renewals0 + 2
             && l.lease_alive_on_server(lease0.id);
    },
    20s, 50ms));
  check_nothing_moved(l, owner, lock0, lease0, stopped, tally, "etcd outage");
}

TEST_CASE("killing the etcd member the owner uses moves nothing",
          "[vip][lab][safety]") {
  lab l{3, 6};
  auto leader = l.etcd->leader();
  REQUIRE(leader < l.etcd->size());
  // The owner's networkd tries the members in list order: it starts with
  // `first`; the other nodes start from the other members.
  size_t first = leader;
  std::string role;
  SECTION("the member is the raft leader") {
    // The harder case: an election follows.
    role = "raft leader";
  }
  SECTION("the member is a follower") {
    first = (leader + 1) % l.etcd->size();
    role = "follower";
  }
  std::vector<std::string> endpoints;
  for (size_t i = 0; i < l.nodes.size(); ++i)
    endpoints.push_back(l.etcd->endpoint_list((first + i) % l.etcd->size()));
  l.start(endpoints);
  auto& owner = *l.nodes[0];
  auto used = l.etcd->endpoint(first);
  // Everything the owner's networkd asks goes to that one member.
  std::string peers_seen;
  bool only_used = wait_until(
    [&] {
      auto peers = owner.etcd_peers();
      peers_seen.clear();
      for (auto& p : peers)
        peers_seen += p + " ";
      return peers == std::set<std::string>{used};
    },
    10s, 50ms);
  INFO("the owner is connected to " << peers_seen << "; uses " << used);
  REQUIRE(only_used);
  auto lease0 = owner.lease();
  auto lock0 = l.lock();
  REQUIRE(lock0.holder == "n1");
  REQUIRE(lock0.lease == lease0.id);

  auto leader_at_kill = l.etcd->leader();
  auto killed = lab_clock::now();
  l.etcd->stop(first);
  fetch_tally tally{l.t0, "n1"};
  lab_clock::time_point renewed{};
  // Until the owner has renewed the same lease twice through the other
  // members and etcd shows that lease alive with the lock on it.
  REQUIRE(wait_until(
    [&] {
      tally.add(l.fetch());
      auto le = owner.lease();
      if (le.id == lease0.id && le.renewals > lease0.renewals
          && renewed == lab_clock::time_point{})
        renewed = lab_clock::now();
      auto peers = owner.etcd_peers();
      return le.state == "alive" && le.id == lease0.id
             && le.renewals >= lease0.renewals + 2 && !peers.empty()
             && peers.count(used) == 0 && l.lease_alive_on_server(lease0.id);
    },
    30s, 50ms));
  auto new_leader = l.etcd->leader();
  std::string now_used;
  for (auto& p : owner.etcd_peers())
    now_used += p + " ";
  WARN("killed etcd member "
       << used << " (" << role << ", "
       << (leader_at_kill == first ? "leader" : "not leader")
       << " at the kill): first renewal of the owner's lease "
       << ms_since(killed, renewed) << " ms later, it now talks to " << now_used
       << "; raft leader "
       << (new_leader < l.etcd->size() ? l.etcd->endpoint(new_leader)
                                       : std::string{"unknown"}));
  check_nothing_moved(l, owner, lock0, lease0, killed, tally, "member kill");
}

TEST_CASE("etcd down past the lease: the expired address stays gone and "
          "readyz says why until etcd is back",
          "[vip][lab][safety]") {
  lab l{1, 4};
  l.start(l.etcd->endpoint(0));
  auto& owner = *l.nodes[0];
  REQUIRE(owner.networkd->get("/readyz").status == 200);
  auto lease0 = owner.lease();
  REQUIRE(wait_until([&] { return owner.lease().renewals > lease0.renewals; },
                     5s, 5ms));
  auto stopped = lab_clock::now();
  l.etcd->stop(0);
  // The address goes by itself: the kernel expires its valid lifetime in
  // the last second before the local deadline (TTL 4 s less the 1 s
  // margin), or the holder fences at that deadline.
  REQUIRE(wait_until([&] { return !l.sampler->held(0); }, 6s, 5ms));
  auto gone = lab_clock::now();
  WARN("address gone " << ms_since(stopped, gone) << " ms after etcd stopped");
  // Readiness turns within 2 s of the lease's end and names the lease.
  http_reply r;
  REQUIRE(wait_until(
    [&] {
      r = owner.networkd->get("/readyz");
      return r.status == 503;
    },
    4s, 20ms));
  auto unready = lab_clock::now();
  WARN("/readyz 503 " << ms_since(stopped, unready)
                      << " ms after etcd stopped: " << r.body);
  // The broken watches say so first (after their 1 s grace); once the
  // local deadline passed (3 s after the last renewal), the lease does.
  CHECK(r.body.rfind("not ready: ", 0) == 0);
  CHECK(ms_since(stopped, unready) < 5000);
  REQUIRE(wait_until(
    [&] {
      r = owner.networkd->get("/readyz");
      return r.body.find("etcd lease past its local deadline")
             != std::string::npos;
    },
    5s, 20ms));
  auto metrics = owner.networkd->get("/metrics").body;
  CHECK(metrics.find("networkd_ready 0") != std::string::npos);
  // Until etcd is back, the address must not return: no renewal came.
  std::this_thread::sleep_until(gone + 2500ms);
  REQUIRE(l.sampler->sync());
  std::string back;
  for (auto& c : l.changes_of(0, gone))
    if (c.held)
      back += std::to_string(ms_since(stopped, c.at)) + " ms ";
  INFO(l.report());
  CHECK(back.empty());
  // The holder took the removal for the kernel's expiry, not for someone
  // else's (which it puts back at once, for up to a second before it fences:
  // too short for the sampler to be sure to see, so its decision is checked).
  auto log = owner.networkd->log();
  CHECK(log.find("was removed by someone else") == std::string::npos);
  CHECK(log.find("expired (no lease renewal since its lifetime was set)")
        != std::string::npos);
  l.etcd->start(0);
  // Back by itself once etcd answers: a new lease, the VIP served again.
  REQUIRE(wait_until(
    [&] { return owner.networkd->get("/readyz").status == 200; }, 20s, 50ms));
  REQUIRE(wait_until([&] { return !l.fetch().empty(); }, 20s, 50ms));
  l.check_safety();
}
