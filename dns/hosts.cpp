// SPDX-License-Identifier: MIT
// Hosts file parsing.
#include "dns/hosts.hpp"

#include "dns/wire.hpp"

namespace networkd::dns {

namespace {

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size()
           && (line[i] == ' ' || line[i] == '\t' || line[i] == '\r'))
      ++i;
    size_t start = i;
    while (i < line.size() && line[i] != ' ' && line[i] != '\t'
           && line[i] != '\r')
      ++i;
    if (i > start)
      out.push_back(line.substr(start, i - start));
  }
  return out;
}

} // namespace

std::vector<hosts_entry> parse_hosts(std::string_view text) {
  std::vector<hosts_entry> result;
  uint32_t number = 0;
  while (!text.empty()) {
    ++number;
    auto eol = text.find('\n');
    auto line = text.substr(0, eol);
    text = eol == std::string_view::npos ? std::string_view{}
                                         : text.substr(eol + 1);
    if (auto hash = line.find('#'); hash != std::string_view::npos)
      line = line.substr(0, hash);
    auto parts = fields(line);
    if (parts.size() < 2)
      continue;
    auto addr = parse_ip(parts[0]);
    if (!addr)
      continue;
    hosts_entry entry;
    entry.address = to_string(*addr);
    entry.line = number;
    for (size_t i = 1; i < parts.size(); ++i) {
      auto wire = wire_name(parts[i]);
      if (wire.size() <= 1)
        continue;
      auto name = text_name(wire);
      bool dup = false;
      for (auto& n : entry.names)
        dup = dup || n == name;
      if (!dup)
        entry.names.push_back(std::move(name));
    }
    if (!entry.names.empty())
      result.push_back(std::move(entry));
  }
  return result;
}

} // namespace networkd::dns
