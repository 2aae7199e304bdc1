// SPDX-License-Identifier: MIT
#include "net/text.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

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

int read_file_bounded(const std::string& path, size_t max, std::string& out) {
  out.clear();
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0)
    return errno;
  char buf[8192];
  int err = 0;
  for (;;) {
    auto n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0)
      err = errno;
    if (n <= 0)
      break;
    out.append(buf, static_cast<size_t>(n));
    if (out.size() > max) {
      err = EFBIG;
      break;
    }
  }
  ::close(fd);
  if (err != 0)
    out.clear();
  return err;
}

} // namespace networkd
