// SPDX-License-Identifier: MIT
#include "tests/support/promtool.hpp"

#include "tests/support/util.hpp"

namespace networkd::test {

promtool_verdict promtool_check(const std::string& exposition) {
  temp_dir dir{"networkd-promtool"};
  auto file = dir.file("metrics.txt");
  write_file(file, exposition);
  promtool_verdict v;
  v.exit_code = sh("promtool check metrics < " + file + " 2>&1", &v.output);
  return v;
}

} // namespace networkd::test
