// SPDX-License-Identifier: MIT
// Input helpers shared by the fuzz targets: fields split on a separator
// byte, and a run-length escape so that a short input can stand for a huge
// or deeply nested text (what a size or depth limit must stop).
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>
#include <vector>

namespace networkd::fuzz {

/// Separates fields. 0xff never occurs in UTF-8 text, so JSON, keys and
/// file text keep every other byte.
constexpr char sep = '\xff';
/// Separates a key from its value inside one field.
constexpr char kv_sep = '\xfe';
/// Run escape: 0xfc, count byte c, byte b stands for b repeated
/// (c + 1) * 2048 times ("\xfc\x7f[" is 262,144 '['; keep c and b clear of
/// the separators).
constexpr char run = '\xfc';
/// No expanded text grows past this (bytes) unless a target asks: enough
/// for the 256 KiB etcd value limit and for 260,000 nested brackets.
constexpr size_t max_expanded = 512 * 1024;

inline std::vector<std::string_view> split(std::string_view text, char by,
                                           size_t max_parts = SIZE_MAX) {
  std::vector<std::string_view> out;
  while (out.size() + 1 < max_parts) {
    auto at = text.find(by);
    if (at == std::string_view::npos)
      break;
    out.push_back(text.substr(0, at));
    text.remove_prefix(at + 1);
  }
  out.push_back(text);
  return out;
}

/// `text` with its run escapes expanded, at most `limit` bytes.
inline std::string expand(std::string_view text, size_t limit = max_expanded) {
  std::string out;
  size_t i = 0;
  while (i < text.size()) {
    if (text[i] == run && i + 2 < text.size()) {
      size_t n = (size_t{static_cast<uint8_t>(text[i + 1])} + 1) * 2048;
      if (out.size() + n > limit)
        n = limit - out.size();
      out.append(n, text[i + 2]);
      i += 3;
      continue;
    }
    if (out.size() >= limit)
      break;
    out.push_back(text[i++]);
  }
  return out;
}

/// A property the code promises does not hold: a finding, like a crash.
[[noreturn]] inline void broken(const char* what) {
  std::fprintf(stderr, "fuzz invariant violated: %s\n", what);
  std::abort();
}

} // namespace networkd::fuzz
