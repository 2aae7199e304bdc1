// SPDX-License-Identifier: MIT
// keys::parse: every family of the contract, classified once, parsed by its
// own parser into its own event type.
#include <catch2/catch.hpp>

#include "net/cluster/keys.hpp"

using namespace networkd;
using config::family;

namespace {

keys::raw_event put(std::string key, std::string value) {
  keys::raw_event r;
  r.key = std::move(key);
  r.value = std::move(value);
  r.revision = 7;
  return r;
}

keys::raw_event del(std::string key) {
  keys::raw_event r;
  r.key = std::move(key);
  r.deleted = true;
  return r;
}

} // namespace

TEST_CASE("each key family parses into its own event type") {
  struct row {
    std::string key;
    std::string value;
    family fam;
  };
  const std::vector<row> rows{
    {"/lain/config/vips/10.0.0.5",
     R"({"app":"a","proc":"p","ports":[{"src":"80"}]})", family::vip},
    {"/lain/config/domains/*.lain", R"({"ips":["10.0.0.1"]})", family::domain},
    {"/lain/config/domain_servers/corp", R"({"servers":["10.0.0.2#53"]})",
     family::domain_servers},
    {"/lain/config/streamrouter/vippool", R"(["10.0.0.3"])", family::vippool},
    {"/lain/swarm/docker/swarm/leader", "10.0.0.4:2376", family::swarm_leader},
    {"/lain/deployd/leader", "10.0.0.4:9003", family::deployd_leader},
    {"/lain/networkd/config/dns_ttl", "30", family::knob},
    {"/lain/networkd/vips/10.0.0.5.lock", "node1", family::vip_lock},
    {"/lain/networkd/leader/694d7a3c1b2e", "node1", family::leader_candidate},
    {"/lain/networkd/apps/a/p/10.0.0.6:80", "node1", family::app_endpoint},
    {"/lain/config/tinydns_fqdns/x.lain", "[]", family::tinydns_fqdns},
    {"/lain/networkd/containers/a/p/1/10.0.0.5", "used", family::container_vip},
    {"/lain/config/whitelist_ips/office", R"(["10.1.0.0/16"])", family::acl},
  };
  for (auto& r : rows) {
    INFO(r.key);
    auto e = keys::parse(put(r.key, r.value));
    auto c = keys::common_of(e);
    CHECK(c.fam == r.fam);
    CHECK(c.key == r.key);
    INFO(c.error);
    CHECK_FALSE(c.rejected);
  }
}

TEST_CASE("a parsed event carries the value its family's parser made") {
  auto e = keys::parse(put("/lain/config/vips/10.0.0.9:8080",
                           R"({"app":"a","proc":"p","ports":[{}]})"));
  auto* v = std::get_if<keys::event<family::vip>>(&e);
  REQUIRE(v != nullptr);
  REQUIRE(v->ok);
  CHECK(v->suffix == "10.0.0.9:8080");
  CHECK(v->revision == 7);
  CHECK(v->value.port_only());
  REQUIRE(v->value.ports.size() == 1);
  CHECK(v->value.ports[0].src == 8080);
  auto lock = keys::parse(put("/lain/networkd/vips/10.0.0.5.lock", "n2"));
  auto* l = std::get_if<keys::event<family::vip_lock>>(&lock);
  REQUIRE(l != nullptr);
  CHECK(l->suffix == "10.0.0.5");
  CHECK(l->value == "n2");
  auto acl
    = keys::parse(put("/lain/config/whitelist_ips/office", R"(["10.1.2.3"])"));
  auto* a = std::get_if<keys::event<family::acl>>(&acl);
  REQUIRE(a != nullptr);
  REQUIRE(a->value.whitelists.count("office") == 1);
  CHECK(a->value.whitelists.at("office").sources.size() == 1);
}

TEST_CASE("bad values and unknown keys are rejected with the reason") {
  auto bad = keys::parse(put("/lain/config/vips/10.0.0.5", "{"));
  auto c = keys::common_of(bad);
  CHECK(c.fam == family::vip);
  CHECK(c.rejected);
  CHECK(c.error_code == "bad_json");
  CHECK(c.error.find("/lain/config/vips/10.0.0.5") != std::string_view::npos);
  auto shape = keys::parse(put("/lain/config/vips/not-an-ip", "{}"));
  CHECK(keys::common_of(shape).error_code == "bad_key");
  auto unknown = keys::parse(put("/lain/elsewhere", "x"));
  CHECK(std::holds_alternative<keys::unknown_event>(unknown));
  CHECK(keys::common_of(unknown).rejected);
  CHECK(keys::common_of(unknown).error_code == "bad_key");
  // A delete of an unknown key is nothing to reject.
  CHECK_FALSE(keys::common_of(keys::parse(del("/lain/elsewhere"))).rejected);
}

TEST_CASE("a delete carries no value and is never rejected") {
  auto e = keys::parse(del("/lain/config/domains/web.lain"));
  auto* d = std::get_if<keys::event<family::domain>>(&e);
  REQUIRE(d != nullptr);
  CHECK(d->deleted);
  CHECK_FALSE(d->ok);
  CHECK_FALSE(d->rejected());
  CHECK(d->suffix == "web.lain");
}

TEST_CASE("an exact-key watch keeps only its key and known longer keys") {
  const std::string exact{config::vippool_key};
  CHECK(keys::belongs_to_watch(exact, exact));
  CHECK_FALSE(keys::belongs_to_watch(exact, exact + "2"));
  CHECK(
    keys::belongs_to_watch("/lain/config/vips/", "/lain/config/vips/whatever"));
}
