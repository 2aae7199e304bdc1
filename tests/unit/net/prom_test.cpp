// SPDX-License-Identifier: MIT
// net/base/prom: the exposition writer, the duration histogram and the
// /proc parsers behind process_*; promtool checks what they write.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <limits>
#include <thread>
#include <vector>

#include "net/base/prom.hpp"
#include "tests/support/promtool.hpp"

using namespace networkd;
using namespace networkd::test;

TEST_CASE("label values are escaped and numbers written as the format wants") {
  CHECK(prom::escape(R"(a"b\c)") == R"(a\"b\\c)");
  CHECK(prom::escape("x\ny") == "x\\ny");
  CHECK(prom::number(3) == "3");
  CHECK(prom::number(0.25) == "0.25");
  constexpr auto inf = std::numeric_limits<double>::infinity();
  CHECK(prom::number(inf) == "+Inf");
  CHECK(prom::number(-inf) == "-Inf");
  CHECK(prom::number(std::numeric_limits<double>::quiet_NaN()) == "NaN");
}

TEST_CASE("a state set has one sample per state and 1 only for the current") {
  prom::writer w;
  std::vector<std::string> states{"idle", "serving", "standby"};
  w.family("x_state", "gauge", "help");
  w.state_set("x_state", {{"vip", "10.0.0.1"}}, states, "serving");
  CHECK(w.str()
        == "# HELP x_state help\n# TYPE x_state gauge\n"
           "x_state{vip=\"10.0.0.1\",state=\"idle\"} 0\n"
           "x_state{vip=\"10.0.0.1\",state=\"serving\"} 1\n"
           "x_state{vip=\"10.0.0.1\",state=\"standby\"} 0\n");
  auto v = promtool_check(w.str());
  INFO(v.output);
  CHECK(v.exit_code == 0);
}

TEST_CASE("durations fall in the first bucket whose bound they do not pass") {
  CHECK(prom::bucket_of(0) == 0);
  CHECK(prom::bucket_of(prom::duration_bounds_ns[0]) == 0);
  CHECK(prom::bucket_of(prom::duration_bounds_ns[0] + 1) == 1);
  CHECK(prom::bucket_of(prom::duration_bounds_ns.back())
        == prom::duration_bounds_ns.size() - 1);
  CHECK(prom::bucket_of(prom::duration_bounds_ns.back() + 1)
        == prom::duration_bounds_ns.size());
  CHECK(prom::bucket_of(UINT64_MAX) == prom::duration_bounds_ns.size());
}

TEST_CASE(
  "a histogram writes cumulative buckets and the sum in seconds and the "
  "count") {
  prom::duration_histogram h;
  h.observe_single_writer(10'000);    // 10 µs: first bucket
  h.observe_single_writer(2'000'000); // 2 ms: le 0.0025
  h.observe(7'000'000'000);           // 7 s: +Inf only
  auto c = h.counts();
  CHECK(c.count() == 3);
  CHECK(c.sum_ns == 7'002'010'000);
  prom::writer w;
  w.family("d_seconds", "histogram", "durations");
  prom::write_histogram(w, "d_seconds", {{"source", "local"}}, c);
  auto& t = w.str();
  CHECK(t.find("d_seconds_bucket{source=\"local\",le=\"2.5e-05\"} 1\n")
        != std::string::npos);
  CHECK(t.find("d_seconds_bucket{source=\"local\",le=\"0.001\"} 1\n")
        != std::string::npos);
  CHECK(t.find("d_seconds_bucket{source=\"local\",le=\"0.0025\"} 2\n")
        != std::string::npos);
  CHECK(t.find("d_seconds_bucket{source=\"local\",le=\"5\"} 2\n")
        != std::string::npos);
  CHECK(t.find("d_seconds_bucket{source=\"local\",le=\"+Inf\"} 3\n")
        != std::string::npos);
  CHECK(t.find("d_seconds_count{source=\"local\"} 3\n") != std::string::npos);
  CHECK(t.find("d_seconds_sum{source=\"local\"} 7.00201") != std::string::npos);
  auto v = promtool_check(t);
  INFO(t << v.output);
  CHECK(v.exit_code == 0);
}

TEST_CASE("observe from several threads loses no count") {
  prom::duration_histogram h;
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&] {
      for (int i = 0; i < 10000; ++i)
        h.observe(1000);
    });
  for (auto& t : threads)
    t.join();
  CHECK(h.counts().count() == 40000);
  CHECK(h.counts().sum_ns == 40'000'000);
}

TEST_CASE("proc stat fields are counted after the last parenthesis") {
  // A command with spaces and a ')' of its own.
  std::string text = "1234 (a b) c) S 1 1234 1234 0 -1 4194560 500 0 0 0 "
                     "250 125 0 0 20 0 7 0 98765 123456789 4321 "
                     "18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0\n";
  auto s = prom::parse_proc_stat(text);
  REQUIRE(s);
  CHECK(s->utime_ticks == 250);
  CHECK(s->stime_ticks == 125);
  CHECK(s->start_ticks == 98765);
  CHECK(s->vsize_bytes == 123456789);
  CHECK(s->rss_pages == 4321);
  CHECK_FALSE(prom::parse_proc_stat("1234 (x) S 1 2 3"));
  CHECK_FALSE(prom::parse_proc_stat("no parenthesis at all"));
  CHECK_FALSE(prom::parse_proc_stat(""));
  std::string huge = "1 (x) S";
  for (int i = 0; i < 30; ++i)
    huge += " 99999999999999999999999";
  CHECK_FALSE(prom::parse_proc_stat(huge)); // numbers past uint64
}

TEST_CASE("boot time and the open-files limit are read from their lines") {
  CHECK(prom::parse_boot_time("cpu  1 2 3\nintr 5\nbtime 1700000000\n")
        == uint64_t{1700000000});
  CHECK_FALSE(prom::parse_boot_time("cpu 1 2 3\n"));
  CHECK(prom::parse_max_fds("Limit                     Soft Limit           "
                            "Hard Limit           Units\n"
                            "Max open files            1024                 "
                            "524288               files\n")
        == uint64_t{1024});
  CHECK_FALSE(prom::parse_max_fds("Max open files   unlimited  unlimited  "
                                  "files\n"));
  CHECK_FALSE(prom::parse_max_fds(""));
}

TEST_CASE("the process set of this process is complete and passes promtool") {
  prom::writer w;
  prom::write_build_info(w, "1.2.3", "Debug");
  prom::write_process_metrics(w);
  auto& t = w.str();
  for (auto name :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ",
        "process_virtual_memory_bytes ", "process_open_fds ",
        "process_max_fds ", "process_start_time_seconds ",
        "networkd_build_info{version=\"1.2.3\",compiler=\""}) {
    INFO(name);
    CHECK(t.find(std::string{"\n"} + name) != std::string::npos);
  }
  auto start = t.find("\nprocess_start_time_seconds ");
  REQUIRE(start != std::string::npos);
  auto started = std::stod(t.substr(start + 28));
  auto now = static_cast<double>(::time(nullptr));
  CHECK(started <= now + 1);
  CHECK(started > now - 3600);
  auto v = promtool_check(t);
  INFO(t << v.output);
  CHECK(v.exit_code == 0);
}
