// SPDX-License-Identifier: MIT
// Runs Prometheus' own checker (`promtool check metrics`, Debian package
// prometheus) on an exposition text.
#pragma once

#include <string>

namespace networkd::test {

struct promtool_verdict {
  int exit_code = -1; ///< 0: clean; 127: promtool missing
  std::string output; ///< what it printed (problems, one a line)
};

promtool_verdict promtool_check(const std::string& exposition);

} // namespace networkd::test
