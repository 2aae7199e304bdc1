// SPDX-License-Identifier: MIT
// The dns responder (deterministic scheduler) in front of a real DNS server:
// every input kind ends up in the published table, bursts coalesce.
#include <catch2/catch.hpp>

#include "actors/dns_responder.hpp"
#include "dns/wire.hpp"
#include "tests/support/actor_fixture.hpp"
#include "tests/support/util.hpp"

using namespace networkd;

namespace {

using domain_event = keys::event<config::family::domain>;

domain_event domain(const std::string& name, std::vector<std::string> ips,
                    config::domain_type type = config::domain_type::fixed) {
  domain_event c;
  c.key = "/lain/config/domains/" + name;
  c.suffix = name;
  c.ok = true;
  config::domain_config d;
  d.name = name;
  d.wildcard = name.rfind("*.", 0) == 0;
  if (d.wildcard)
    d.suffix = name.substr(2);
  d.type = type;
  d.ips = std::move(ips);
  c.value = d;
  return c;
}

domain_event deleted_domain(const std::string& name) {
  domain_event c;
  c.key = "/lain/config/domains/" + name;
  c.suffix = name;
  c.deleted = true;
  return c;
}

struct fixture : test::actor_fixture {
  std::shared_ptr<dns::server> srv;
  dns_responder_actor responder;

  fixture() {
    dns::server_options opts;
    opts.listen = {"127.0.0.1:" + std::to_string(test::free_port())};
    opts.workers = 1;
    srv = std::make_shared<dns::server>(opts);
    REQUIRE(srv->start());
    dns_responder_config cfg;
    cfg.server = srv;
    cfg.node_ip = "10.0.0.1";
    responder = sys.spawn(dns_responder, cfg);
    run();
  }

  ~fixture() {
    caf::anon_send_exit(responder, caf::exit_reason::user_shutdown);
    run();
    srv->stop();
  }

  uint64_t counter(const std::string& name) {
    self->send(responder, atom::status_v);
    run();
    uint64_t n = 0;
    auto key = "\"" + name + "\":";
    self->receive([&](std::string& s) {
      auto pos = s.find(key);
      REQUIRE(pos != std::string::npos);
      n = std::stoull(s.substr(pos + key.size()));
    });
    return n;
  }
  uint64_t publishes() { return counter("publishes"); }

  /// The PTR names of addr's reverse name ("" when it is not local).
  std::string ptr_of(const char* addr) {
    auto n = srv->current()->find(dns::reverse_wire_name(*dns::parse_ip(addr)));
    std::string out;
    if (n == nullptr)
      return out;
    auto rd = n->ptr.get().rdata;
    for (uint16_t i = 0; i < n->ptr.count(); ++i, rd = knot_rdataset_next(rd))
      out += dns::text_name(rd->data) + " ";
    return out;
  }

  bool local(const std::string& name) {
    return srv->current()->is_local(dns::wire_name(name));
  }
};

} // namespace

TEST_CASE_METHOD(fixture, "domains, deletes and the TTL knob reach the table",
                 "[dns-responder]") {
  auto publishes0 = publishes();
  // Parsed names are lower-case; the delete below comes by the raw key.
  self->send(responder, domain("web.lain", {"10.1.1.1"}));
  self->send(responder, domain("*.apps.lain", {}, config::domain_type::node));
  run();
  CHECK(local("web.lain"));
  CHECK(local("x.y.apps.lain"));
  CHECK_FALSE(local("other.lain"));
  // Two changes sent together were published as one table.
  CHECK(publishes() == publishes0 + 1);
  self->send(responder, deleted_domain("WEB.lain."));
  auto knobs = config::resolve_knobs(
    {{"dns_ttl", config::knob{"dns_ttl", 5, ""}},
     {"dns_cache_size", config::knob{"dns_cache_size", 7, ""}},
     {"dns_upstream_timeout_ms",
      config::knob{"dns_upstream_timeout_ms", 300, ""}}});
  self->send(responder, knobs);
  run();
  CHECK_FALSE(local("web.lain"));
  CHECK(local("apps.lain"));
  CHECK(srv->current()->ttl() == 5);
  // The other dns_* knobs reach the server.
  CHECK(srv->cache_settings().capacity == 7);
  CHECK(srv->upstream_timeout_ms() == 300);
  // Deleted: the defaults return.
  self->send(responder, config::default_knobs());
  run();
  CHECK(srv->current()->ttl() == 60);
  CHECK(srv->cache_settings().capacity == 20000);
  CHECK(srv->upstream_timeout_ms() == 1500);
}

TEST_CASE_METHOD(fixture,
                 "upstreams, domain servers, dynamic names and "
                 "webrouter VIPs reach the table",
                 "[dns-responder]") {
  self->send(responder, atom::upstream_v,
             std::vector<config::upstream>{{"10.9.9.9", 53}});
  keys::event<config::family::domain_servers> servers;
  servers.key = "/lain/config/domain_servers/corp";
  servers.suffix = "corp";
  servers.ok = true;
  servers.value = config::domain_servers_config{"corp", {{"10.8.8.8", 5353}}};
  self->send(responder, servers);
  self->send(responder, atom::dynamic_v, std::string{"swarm.lain"},
             std::vector<std::string>{"10.2.2.2"});
  self->send(responder, domain("*.lain", {}, config::domain_type::webrouter));
  self->send(responder, atom::webrouter_v,
             std::vector<std::string>{"10.3.3.3", "10.3.3.4"});
  run();
  auto t = srv->current();
  REQUIRE(t->upstreams_for(dns::wire_name("www.example.com")).size() == 1);
  CHECK(t->upstreams_for(dns::wire_name("www.example.com"))[0].ip
        == "10.9.9.9");
  CHECK(t->upstreams_for(dns::wire_name("a.corp"))[0].port == 5353);
  CHECK(local("swarm.lain"));
  auto text = t->config_text();
  CHECK(text.find("address=/lain/10.3.3.3") != std::string::npos);
  CHECK(text.find("host-record=swarm.lain,10.2.2.2") != std::string::npos);
  // An empty list removes a dynamic name; the wildcard still answers it.
  self->send(responder, atom::dynamic_v, std::string{"swarm.lain"},
             std::vector<std::string>{});
  run();
  CHECK(srv->current()->config_text().find("host-record=swarm.lain")
        == std::string::npos);
}

TEST_CASE_METHOD(
  fixture, "a changed domain updates the last table with its reverse names",
  "[dns-responder]") {
  self->send(responder, domain("a.lain", {"10.5.5.5"}));
  self->send(responder, domain("b.lain", {"10.5.5.5"}));
  run();
  CHECK(ptr_of("10.5.5.5") == "a.lain b.lain ");
  auto updates0 = counter("table_updates");
  // One name at a time: the table is updated, not built again.
  self->send(responder, domain("a.lain", {"10.5.5.6"}));
  run();
  CHECK(ptr_of("10.5.5.5") == "b.lain ");
  CHECK(ptr_of("10.5.5.6") == "a.lain ");
  self->send(responder, deleted_domain("b.lain"));
  run();
  CHECK(ptr_of("10.5.5.5").empty());
  CHECK_FALSE(local("b.lain"));
  CHECK(local("a.lain"));
  CHECK(counter("table_updates") == updates0 + 2);
  CHECK(srv->current()->config_text() == "host-record=a.lain,10.5.5.6\n");
  // Another source's change builds the whole table.
  self->send(responder, atom::webrouter_v,
             std::vector<std::string>{"10.9.0.1"});
  run();
  CHECK(counter("table_updates") == updates0 + 2);
  CHECK(local("a.lain"));
}
