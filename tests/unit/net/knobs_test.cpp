// SPDX-License-Identifier: MIT
// The knob model: every knob in the table reaches its slice of
// knob_values, a deleted knob returns to its default, and the README's knob
// table says what the code does.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "net/cluster/config.hpp"
#include "net/cluster/knobs.hpp"

using namespace networkd::config;

namespace {

/// A value of `spec` other than its default, as etcd would hold it.
knob other_value(const knob_spec& spec) {
  knob k;
  k.name = spec.name;
  if (spec.numeric) {
    k.number = spec.default_number == spec.max ? spec.min : spec.max;
  } else {
    std::string choices = spec.choices;
    k.text = choices.substr(0, choices.find(' '));
  }
  return k;
}

/// The README's row of a knob: "| `name` | range | default | meaning |".
std::vector<std::string> readme_row(const std::string& readme,
                                    const std::string& name) {
  std::istringstream in(readme);
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("| `" + name + "` |", 0) != 0)
      continue;
    std::vector<std::string> cells;
    size_t at = 1;
    while (at < line.size()) {
      auto bar = line.find('|', at);
      if (bar == std::string::npos)
        break;
      auto cell = line.substr(at, bar - at);
      auto b = cell.find_first_not_of(' ');
      auto e = cell.find_last_not_of(' ');
      cells.push_back(b == std::string::npos ? "" : cell.substr(b, e - b + 1));
      at = bar + 1;
    }
    return cells;
  }
  return {};
}

} // namespace

TEST_CASE(
  "every knob moves its slice and returns to its default when deleted") {
  auto& defaults = default_knobs();
  CHECK(resolve_knobs({}) == defaults);
  for (auto& spec : known_knobs()) {
    INFO(spec.name);
    REQUIRE(spec.store != nullptr);
    CHECK(std::string(spec.consumer).size() > 0);
    auto k = other_value(spec);
    std::map<std::string, knob> set{{spec.name, k}};
    auto v = resolve_knobs(set);
    CHECK(v != defaults);
    // A parse of the same value resolves the same way.
    auto parsed
      = parse_knob(spec.name, spec.numeric ? std::to_string(k.number) : k.text);
    REQUIRE(parsed.ok());
    CHECK(resolve_knobs({{spec.name, *parsed}}) == v);
    set.erase(spec.name);
    CHECK(resolve_knobs(set) == defaults);
  }
}

TEST_CASE("the defaults in force are those of the table") {
  auto& v = default_knobs();
  CHECK(v.log_level.empty());
  CHECK(v.lease.ttl_s == 6);
  CHECK(v.lease.fencing_margin == std::chrono::milliseconds(1000));
  CHECK(v.arp.count == 4);
  CHECK(v.probe.interval == std::chrono::milliseconds(200));
  CHECK(v.dns.ttl == 60);
  CHECK(v.dns.cache_size == 20000);
  CHECK(v.dns.upstream_timeout == std::chrono::milliseconds(1500));
  CHECK(v.audit.nat == std::chrono::seconds(30));
}

TEST_CASE("two knobs of one slice are kept apart") {
  auto v = resolve_knobs({{"dns_min_ttl", knob{"dns_min_ttl", 30, ""}},
                          {"dns_max_ttl", knob{"dns_max_ttl", 600, ""}}});
  CHECK(v.dns.min_ttl == 30);
  CHECK(v.dns.max_ttl == 600);
  CHECK(v.dns.ttl == default_knobs().dns.ttl);
  // Names the table does not know are ignored, not stored anywhere.
  CHECK(resolve_knobs({{"nope", knob{"nope", 1, ""}}}) == default_knobs());
}

TEST_CASE(
  "the README lists every knob with the range and default of the table") {
  std::ifstream f(std::string(NETWORKD_SOURCE_DIR) + "/README.md");
  REQUIRE(f.good());
  std::stringstream ss;
  ss << f.rdbuf();
  auto readme = ss.str();
  for (auto& spec : known_knobs()) {
    INFO(spec.name);
    auto row = readme_row(readme, spec.name);
    REQUIRE(row.size() == 4);
    if (spec.numeric) {
      std::string unit = *spec.unit ? std::string(" ") + spec.unit : "";
      CHECK(row[1]
            == std::to_string(spec.min) + "–" + std::to_string(spec.max)
                 + unit);
      CHECK(row[2] == std::to_string(spec.default_number));
    } else {
      CHECK(row[1] == spec.choices);
    }
  }
}
