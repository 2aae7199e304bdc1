// SPDX-License-Identifier: MIT
// What the three parts of the lainlet client share (lainlet_wire.cpp,
// lainlet_content.cpp, lainlet_client.cpp); not for use outside them.
#pragma once

#include <string>
#include <string_view>

#include "net/base/text.hpp"

namespace networkd::lainlet::detail {

inline constexpr const char* component = "lainlet";

/// Text from the network in log lines and errors: one line, bounded.
inline std::string printable(std::string_view text, size_t max = 120) {
  return networkd::printable(text, max);
}

/// `s` without leading blanks and trailing blanks or CR.
inline std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
    s.remove_prefix(1);
  while (!s.empty()
         && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r'))
    s.remove_suffix(1);
  return s;
}

} // namespace networkd::lainlet::detail
