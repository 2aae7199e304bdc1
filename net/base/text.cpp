// SPDX-License-Identifier: MIT
#include "net/base/text.hpp"

#include <cstdio>

namespace networkd {

std::string printable(std::string_view text, size_t limit) {
  std::string out;
  for (auto ch : text) {
    if (out.size() >= limit) {
      out += "...";
      break;
    }
    auto c = static_cast<unsigned char>(ch);
    if (c >= 0x20 && c < 0x7f) {
      out += ch;
    } else {
      char buf[8];
      std::snprintf(buf, sizeof(buf), "\\x%02x", c);
      out += buf;
    }
  }
  return out;
}

std::vector<std::string> split_args(std::string_view line) {
  std::vector<std::string> out;
  std::string cur;
  bool have = false;
  bool quoted = false;
  for (size_t i = 0; i < line.size(); ++i) {
    char c = line[i];
    if (quoted) {
      if (c == '\\' && i + 1 < line.size())
        cur += line[++i];
      else if (c == '"')
        quoted = false;
      else
        cur += c;
    } else if (c == ' ' || c == '\t') {
      if (have)
        out.push_back(std::move(cur));
      cur.clear();
      have = false;
    } else if (c == '"') {
      quoted = true;
      have = true;
    } else {
      cur += c;
      have = true;
    }
  }
  if (have)
    out.push_back(std::move(cur));
  return out;
}

} // namespace networkd
