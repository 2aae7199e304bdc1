// SPDX-License-Identifier: MIT
// Address add/remove/list and address events over rtnetlink, in namespaces.
#include "net/kernel/netlink.hpp"

#include "tests/support/netns.hpp"
#include "tests/support/util.hpp"

#include <linux/if_addr.h>

#include <catch2/catch.hpp>

#include <algorithm>
#include <optional>

using namespace networkd;
using namespace networkd::netlink;
using namespace networkd::test;
using namespace std::chrono_literals;

namespace {

/// Two namespaces joined by a veth pair: "node" (end va, 10.77.0.1/24) and
/// "peer" (end vb, 10.77.0.2/24).
struct lab {
  netns node{"nl"};
  netns peer{"nlp"};
  veth_pair link{node, "va", peer, "vb"};
  lab() {
    node.must("ip addr add 10.77.0.1/24 dev va");
    peer.must("ip addr add 10.77.0.2/24 dev vb");
  }
  std::unique_ptr<rtnl_address_manager> manager() {
    auto mgr = node.run([] { return rtnl_address_manager::open(); });
    REQUIRE(mgr.ok());
    return std::move(*mgr);
  }
};

std::optional<address_info> find(address_manager& mgr, const std::string& ip) {
  auto all = mgr.list("va");
  REQUIRE(all.ok());
  for (auto& a : *all)
    if (a.address == ip)
      return a;
  return std::nullopt;
}

bool has_event(const std::vector<address_event>& evs, address_event::kind k,
               const std::string& ip) {
  return std::any_of(evs.begin(), evs.end(), [&](const address_event& e) {
    return e.what == k && e.address.address == ip;
  });
}

} // namespace

TEST_CASE("an address with a valid lifetime is listed and expires by itself",
          "[netlink]") {
  lab l;
  auto mgr = l.manager(); // used from this thread, acts in l.node
  REQUIRE(mgr->add("va", "10.77.0.100", 2).ok());
  auto a = find(*mgr, "10.77.0.100");
  REQUIRE(a);
  CHECK(a->prefix == 32);
  CHECK(a->preferred_lft == 0);
  CHECK((a->flags & IFA_F_DEPRECATED) != 0);
  CHECK(a->valid_lft <= 2);
  CHECK_FALSE(a->permanent());
  std::string out;
  l.node.sh("ip -4 addr show dev va", &out);
  CHECK(out.find("10.77.0.100/32") != std::string::npos);
  // The node's own address is listed too, permanent.
  auto own = find(*mgr, "10.77.0.1");
  REQUIRE(own);
  CHECK(own->prefix == 24);
  CHECK(own->permanent());
  // Nobody touches it: the kernel removes it.
  CHECK(wait_until([&] { return !find(*mgr, "10.77.0.100"); }, 6s, 100ms));
  CHECK(find(*mgr, "10.77.0.1"));
}

TEST_CASE("adding an address again replaces its lifetime", "[netlink]") {
  lab l;
  auto mgr = l.manager();
  REQUIRE(mgr->add("va", "10.77.0.100", 3).ok());
  REQUIRE(find(*mgr, "10.77.0.100")->valid_lft <= 3);
  REQUIRE(mgr->add("va", "10.77.0.100", 100).ok());
  auto a = find(*mgr, "10.77.0.100");
  REQUIRE(a);
  CHECK(a->valid_lft > 90);
  CHECK(a->preferred_lft == 0);
  REQUIRE(mgr->add("va", "10.77.0.100", infinite_lifetime).ok());
  CHECK(find(*mgr, "10.77.0.100")->permanent());
  // Still one entry, not two.
  auto all = mgr->list("va");
  REQUIRE(all.ok());
  CHECK(std::count_if(
          all->begin(), all->end(),
          [](const address_info& x) { return x.address == "10.77.0.100"; })
        == 1);
  auto removed = mgr->remove("va", "10.77.0.100");
  REQUIRE(removed.ok());
  CHECK(*removed);
  CHECK_FALSE(find(*mgr, "10.77.0.100"));
  auto again = mgr->remove("va", "10.77.0.100");
  REQUIRE(again.ok());
  CHECK_FALSE(*again);
}

TEST_CASE("add_all renews many lifetimes in batches and fails the bad ones "
          "alone",
          "[netlink]") {
  lab l;
  auto mgr = l.manager();
  // 150 addresses: three datagrams of requests.
  std::vector<std::string> ips;
  for (int i = 0; i < 150; ++i)
    ips.push_back("10.78." + std::to_string(i / 100) + "."
                  + std::to_string(i % 100 + 1));
  auto with_bad = ips;
  with_bad.insert(with_bad.begin() + 70, "10.78.0.300");
  auto failed = mgr->add_all("va", with_bad, 3);
  REQUIRE(failed.size() == 1);
  CHECK(failed[0].first == "10.78.0.300");
  CHECK(failed[0].second.code == "invalid");
  auto count = [&](uint32_t min_lft, uint32_t max_lft) {
    auto all = mgr->list("va");
    REQUIRE(all.ok());
    return std::count_if(all->begin(), all->end(), [&](auto& a) {
      return a.address.rfind("10.78.", 0) == 0 && a.prefix == 32
             && a.valid_lft >= min_lft && a.valid_lft <= max_lft
             && a.preferred_lft == 0;
    });
  };
  CHECK(count(1, 3) == 150);
  // Again, longer: every one is renewed, none is added twice.
  CHECK(mgr->add_all("va", ips, 100).empty());
  CHECK(count(90, 100) == 150);
  // A missing interface fails every address with its reason.
  auto none = mgr->add_all("nope0", ips, 10);
  REQUIRE(none.size() == ips.size());
  CHECK(none.back().second.code == "no_device");
  CHECK(mgr->add_all("va", {}, 10).empty());
}

TEST_CASE("remove_all removes many in batches and tells each outcome",
          "[netlink]") {
  lab l;
  auto mgr = l.manager();
  std::vector<std::string> ips;
  for (int i = 0; i < 150; ++i)
    ips.push_back("10.79." + std::to_string(i / 100) + "."
                  + std::to_string(i % 100 + 1));
  REQUIRE(mgr->add_all("va", ips, 100).empty());
  auto asked = ips;
  asked.insert(asked.begin() + 70, "10.79.0.300"); // not an address
  asked.push_back("10.79.9.9");                    // not there
  auto done = mgr->remove_all("va", asked);
  REQUIRE(done.size() == asked.size());
  CHECK(done[70].error().code == "invalid");
  REQUIRE(done.back().ok());
  CHECK_FALSE(*done.back());
  size_t removed = 0;
  for (size_t i = 0; i + 1 < done.size(); ++i)
    if (i != 70 && done[i].ok() && *done[i])
      ++removed;
  CHECK(removed == ips.size());
  auto all = mgr->list("va");
  REQUIRE(all.ok());
  CHECK(std::none_of(all->begin(), all->end(), [](auto& a) {
    return a.address.rfind("10.79.", 0) == 0;
  }));
  // A missing interface fails every address with its reason.
  auto none = mgr->remove_all("nope0", ips);
  REQUIRE(none.size() == ips.size());
  CHECK(none.front().error().code == "no_device");
  CHECK(mgr->remove_all("va", {}).empty());
}

TEST_CASE("bad interfaces and addresses are clear failures", "[netlink]") {
  lab l;
  auto mgr = l.manager();
  auto r = mgr->add("nope0", "10.77.0.100", 10);
  REQUIRE_FALSE(r.ok());
  CHECK(r.error().code == "no_device");
  CHECK(r.error().message.find("nope0") != std::string::npos);
  CHECK(mgr->list("nope0").error().code == "no_device");
  CHECK(mgr->remove("nope0", "10.77.0.100").error().code == "no_device");
  CHECK(mgr->add("va", "10.77.0.300", 10).error().code == "invalid");
  CHECK(mgr->add("va", "10.77.0.100", 0).error().code == "invalid");
  auto idx = mgr->index_of("va");
  REQUIRE(idx.ok());
  CHECK(*idx > 0);
  // The interface lives in the namespace, not where this thread is.
  CHECK(mgr->index_of("lo").ok());
}

TEST_CASE("the address watch reports changes made from outside", "[netlink]") {
  lab l;
  auto watch = l.node.run([] { return address_watch::open("va"); });
  REQUIRE(watch.ok());
  auto& w = **watch;
  CHECK(w.fd() >= 0);
  CHECK(w.read(0ms)->empty());

  std::vector<address_event> seen;
  auto collect_until = [&](address_event::kind k, const std::string& ip) {
    return wait_until(
      [&] {
        auto evs = w.read(100ms);
        REQUIRE(evs.ok());
        seen.insert(seen.end(), evs->begin(), evs->end());
        return has_event(seen, k, ip);
      },
      5s, 1ms);
  };
  l.node.must("ip addr add 10.77.0.101/32 dev va");
  CHECK(collect_until(address_event::kind::added, "10.77.0.101"));
  l.node.must("ip addr del 10.77.0.101/32 dev va");
  CHECK(collect_until(address_event::kind::removed, "10.77.0.101"));
  // Another interface of the namespace is not reported.
  l.node.must("ip addr add 127.0.0.9/32 dev lo");
  l.node.must("ip addr add 10.77.0.102/32 dev va valid_lft 1 "
              "preferred_lft 0");
  CHECK(collect_until(address_event::kind::added, "10.77.0.102"));
  CHECK_FALSE(has_event(seen, address_event::kind::added, "127.0.0.9"));
  // Expiry is an event too.
  CHECK(collect_until(address_event::kind::removed, "10.77.0.102"));
  for (auto& e : seen)
    CHECK(e.what != address_event::kind::overrun);
}
