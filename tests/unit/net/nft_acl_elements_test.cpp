// SPDX-License-Identifier: MIT
// The nft ACL's set elements from the ACL keys (pure: no kernel).
#include "net/kernel/nft_acl.hpp"

#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>

using namespace networkd;
using namespace networkd::nft;

namespace {

acl::inputs keys(const std::vector<std::pair<std::string, std::string>>& kv) {
  acl::inputs in;
  for (auto& [k, v] : kv) {
    INFO(k << " = " << v);
    REQUIRE(acl::put(in, k, v).ok());
  }
  return in;
}

std::vector<std::string> shown(const acl_sets& s, acl_set_kind k) {
  return render_elements(k, s[k]);
}

} // namespace

TEST_CASE("overlapping and adjacent sources merge into disjoint intervals",
          "[nft_acl]") {
  auto s = acl_elements(keys({
    {"/lain/config/whitelist_ips/a",
     R"(["10.0.0.0/24","10.0.0.7","10.0.1.0-10.0.1.255","10.9.0.1"])"},
    {"/lain/config/whitelist_ips/b", R"(["10.0.0.128/25","10.9.0.3"])"},
  }));
  CHECK(shown(s, acl_set_kind::sources)
        == std::vector<std::string>{"10.0.0.0/23", "10.9.0.1", "10.9.0.3"});
  // A start and an end element per interval.
  CHECK(s[acl_set_kind::sources].size() == 6);
}

TEST_CASE("an interval that runs to the top has no end element", "[nft_acl]") {
  auto s = acl_elements(keys({
    {"/lain/config/whitelist_ips/all", R"(["0.0.0.0/0"])"},
    {"/lain/config/whitelist_ex_ports/tcp", R"(["65000:65535", 80, "81"])"},
  }));
  REQUIRE(s[acl_set_kind::sources].size() == 1);
  CHECK_FALSE(s[acl_set_kind::sources][0].end);
  CHECK(shown(s, acl_set_kind::sources)
        == std::vector<std::string>{"0.0.0.0/0"});
  CHECK(shown(s, acl_set_kind::tcp)
        == std::vector<std::string>{"80-81", "65000-65535"});
  CHECK(s[acl_set_kind::tcp].size() == 3);
  CHECK(s[acl_set_kind::udp].empty());
}

TEST_CASE("in ports of overlapping sources become disjoint boxes",
          "[nft_acl]") {
  auto s = acl_elements(keys({
    {"/lain/config/whitelist_in_ports/10.0.0.0/24",
     R"({"ports":{"tcp":[3306],"udp":[53]}})"},
    {"/lain/config/whitelist_in_ports/10.0.0.7",
     R"({"ports":{"tcp":["3300:3310", 22]}})"},
    {"/lain/config/whitelist_in_ports/10.0.0.8",
     R"({"ports":{"tcp":["3300:3310", 22]}})"},
  }));
  CHECK(shown(s, acl_set_kind::source_ports)
        == std::vector<std::string>{
          "10.0.0.0-10.0.0.6 . tcp . 3306", "10.0.0.0/24 . udp . 53",
          "10.0.0.7-10.0.0.8 . tcp . 22", "10.0.0.7-10.0.0.8 . tcp . 3300-3310",
          "10.0.0.9-10.0.0.255 . tcp . 3306"});
}

TEST_CASE("the element parser takes only our set's elements and bounds keys",
          "[nft_acl]") {
  CHECK(detail::parse_acl_elems(nullptr, 0, acl_sources_set).empty());
  std::string junk(100, '\xff');
  CHECK(
    detail::parse_acl_elems(junk.data(), junk.size(), acl_sources_set).empty());
}

TEST_CASE("kernel dumps of the ACL sets parse back to what nft was given",
          "[nft_acl]") {
  // fuzz/corpus/fuzz_nft/seed-04..06: the kernel's answers (fuzz/README.md).
  auto dumped = [](const char* seed, const char* set, acl_set_kind k) {
    std::ifstream f(std::string(NETWORKD_SOURCE_DIR) + "/fuzz/corpus/fuzz_nft/"
                      + seed,
                    std::ios::binary);
    REQUIRE(f.good());
    std::string bytes((std::istreambuf_iterator<char>(f)),
                      std::istreambuf_iterator<char>());
    return render_elements(
      k, detail::parse_acl_elems(bytes.data(), bytes.size(), set));
  };
  CHECK(dumped("seed-04", acl_sources_set, acl_set_kind::sources)
        == std::vector<std::string>{"10.0.0.0/9", "10.200.1.2",
                                    "10.201.4.1-10.201.4.9",
                                    "192.168.0.0-255.255.255.255"});
  CHECK(dumped("seed-05", acl_tcp_set, acl_set_kind::tcp)
        == std::vector<std::string>{"22", "80", "8000-8100", "65000-65535"});
  CHECK(dumped("seed-06", acl_source_ports_set, acl_set_kind::source_ports)
        == std::vector<std::string>{"10.81.2.0/24 . tcp . 3306",
                                    "10.81.5.1-10.81.5.4 . udp . 5000-5010"});
  // Another set's name finds nothing in them.
  CHECK(dumped("seed-04", acl_tcp_set, acl_set_kind::tcp).empty());
}
