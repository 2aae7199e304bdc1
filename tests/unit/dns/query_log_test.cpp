// SPDX-License-Identifier: MIT
// The query log's line and its rate limit (knob dns_log_queries).
#include <catch2/catch.hpp>

#include "dns/query_log.hpp"
#include "dns/wire.hpp"

using namespace networkd::dns;

TEST_CASE("a query log line names client name type rcode source and latency") {
  auto l = query_log::line("127.0.0.1", "a.lain", KNOT_RRTYPE_AAAA,
                           KNOT_RCODE_NXDOMAIN, "cache", 17, 0);
  CHECK(l
        == "dns-query client=127.0.0.1 name=a.lain type=AAAA rcode=NXDOMAIN "
           "source=cache latency_us=17");
  auto root = query_log::line("::1", "", KNOT_RRTYPE_NS, 0, "upstream", 900, 3);
  CHECK(root.find("name=. type=NS rcode=NOERROR") != std::string::npos);
  CHECK(root.find("(3 lines left out over the rate)") != std::string::npos);
}

TEST_CASE("the query log writes at most its rate per second and counts the "
          "rest") {
  query_log log;
  uint64_t skipped = 0;
  CHECK_FALSE(log.on());
  CHECK_FALSE(log.admit(1000, skipped));
  log.set_rate(3);
  int written = 0;
  for (int i = 0; i < 10; ++i)
    written += log.admit(5000 + static_cast<uint64_t>(i), skipped);
  CHECK(written == 3);
  // The next second: the first line reports the 7 left out.
  REQUIRE(log.admit(6000, skipped));
  CHECK(skipped == 7);
  REQUIRE(log.admit(6001, skipped));
  CHECK(skipped == 0);
  log.set_rate(0);
  CHECK_FALSE(log.admit(7000, skipped));
}
