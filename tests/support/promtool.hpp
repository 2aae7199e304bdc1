// SPDX-License-Identifier: MIT
// Runs Prometheus' own checker (`promtool check metrics`, Debian package
// prometheus) on an exposition text, and reads one sample out of it.
#pragma once

#include <string>

namespace networkd::test {

struct promtool_verdict {
  int exit_code = -1; ///< 0: clean; 127: promtool missing
  std::string output; ///< what it printed (problems, one a line)
};

promtool_verdict promtool_check(const std::string& exposition);

/// The value of the sample line `series` (name and labels exactly as
/// exposed, e.g. `networkd_leader` or `x_total{a="b"}`) in an exposition
/// text; -1 when there is no such line.
double sample_value(const std::string& exposition, const std::string& series);

} // namespace networkd::test
