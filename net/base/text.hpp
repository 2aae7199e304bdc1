// SPDX-License-Identifier: MIT
// Small text helpers shared by the parsers in net/ and dns/.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace networkd {

/// `text` made safe for a one-line log message: control and non-ASCII
/// bytes as \xNN, cut after `limit` characters with "...". Keys and values
/// come from etcd and may hold anything.
std::string printable(std::string_view text, size_t limit);

/// Splits a line of iptables-save output (or a rule spec) into arguments:
/// blanks separate, double quotes group, a backslash inside quotes escapes
/// the next character.
std::vector<std::string> split_args(std::string_view line);

} // namespace networkd
