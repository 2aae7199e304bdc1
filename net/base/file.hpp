// SPDX-License-Identifier: MIT
// Reading files networkd does not write (resolv.conf, hosts files, TLS
// material, password files): whole, and never more than a stated size.
#pragma once

#include "net/base/result.hpp"

#include <string>

namespace networkd {

/// Reads the whole file at `path` into `out` if it holds at most `max`
/// bytes. 0 on success, else the errno: EFBIG when it is larger (nothing
/// past max + 1 bytes is read).
int read_file_bounded(const std::string& path, size_t max, std::string& out);

/// The same as a result: the contents, or a failure with code "io" whose
/// message is the reason alone ("No such file or directory", "larger than
/// N bytes"); the caller names the file and why it was read.
result<std::string> read_file(const std::string& path, size_t max);

} // namespace networkd
