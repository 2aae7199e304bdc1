// SPDX-License-Identifier: MIT
#include "tests/support/promtool.hpp"

#include "tests/support/util.hpp"

#include <exception>
#include <string>

namespace networkd::test {

promtool_verdict promtool_check(const std::string& exposition) {
  temp_dir dir{"networkd-promtool"};
  auto file = dir.file("metrics.txt");
  write_file(file, exposition);
  promtool_verdict v;
  v.exit_code = sh("promtool check metrics < " + file + " 2>&1", &v.output);
  return v;
}

double sample_value(const std::string& exposition, const std::string& series) {
  auto text = "\n" + exposition;
  auto at = text.find("\n" + series + " ");
  if (at == std::string::npos)
    return -1;
  try {
    return std::stod(text.substr(at + series.size() + 2));
  } catch (const std::exception&) {
    return -1;
  }
}

} // namespace networkd::test
