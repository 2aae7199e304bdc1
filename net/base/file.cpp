// SPDX-License-Identifier: MIT
#include "net/base/file.hpp"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <unistd.h>

namespace networkd {

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

result<std::string> read_file(const std::string& path, size_t max) {
  std::string out;
  int err = read_file_bounded(path, max, out);
  if (err == EFBIG)
    return make_failure("io", "larger than " + std::to_string(max) + " bytes");
  if (err != 0)
    return make_failure("io", std::strerror(err));
  return out;
}

} // namespace networkd
