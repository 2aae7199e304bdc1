// SPDX-License-Identifier: MIT
// resolv.conf rewrite and upstream extraction.
#include "dns/resolv_conf.hpp"

#include "dns/wire.hpp"

namespace networkd::dns {

namespace {

std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  while (!text.empty()) {
    auto eol = text.find('\n');
    lines.push_back(text.substr(0, eol));
    if (eol == std::string_view::npos)
      break;
    text = text.substr(eol + 1);
  }
  return lines;
}

bool is_space(char c) {
  return c == ' ' || c == '\t' || c == '\r';
}

std::vector<std::string_view> fields(std::string_view line) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < line.size()) {
    while (i < line.size() && is_space(line[i]))
      ++i;
    size_t start = i;
    while (i < line.size() && !is_space(line[i]))
      ++i;
    if (i > start)
      out.push_back(line.substr(start, i - start));
  }
  return out;
}

bool is_comment(const std::vector<std::string_view>& f) {
  return f.empty() || f[0][0] == '#' || f[0][0] == ';';
}

/// The canonical address of a nameserver line, or "" for other lines.
std::string nameserver_of(std::string_view line) {
  auto f = fields(line);
  if (is_comment(f) || f[0] != "nameserver" || f.size() < 2)
    return {};
  auto addr = parse_ip(f[1]);
  return addr ? to_string(*addr) : std::string{};
}

std::string canonical(const std::string& ip) {
  auto addr = parse_ip(ip);
  return addr ? to_string(*addr) : ip;
}

} // namespace

std::vector<std::string> resolv_nameservers(std::string_view text) {
  std::vector<std::string> out;
  for (auto line : split_lines(text))
    if (auto ns = nameserver_of(line); !ns.empty())
      out.push_back(std::move(ns));
  return out;
}

std::vector<config::upstream>
resolv_upstreams(std::string_view text,
                 const std::vector<std::string>& own_ips) {
  std::vector<std::string> skip{"127.0.0.53"};
  for (auto& ip : own_ips)
    skip.push_back(canonical(ip));
  std::vector<config::upstream> out;
  for (auto& ns : resolv_nameservers(text)) {
    bool excluded = false;
    for (auto& s : skip)
      excluded = excluded || s == ns;
    for (auto& u : out)
      excluded = excluded || u.ip == ns;
    if (!excluded)
      out.push_back(config::upstream{ns, 53});
  }
  return out;
}

resolv_conf_fix fix_resolv_conf(std::string_view text,
                                const std::string& our_ip,
                                const std::vector<std::string>& own_ips) {
  auto ours = canonical(our_ip);
  auto old_lines = split_lines(text);
  std::vector<std::string> lines;
  bool placed = false;
  for (auto line : old_lines) {
    auto f = fields(line);
    if (!is_comment(f) && f[0] == "options") {
      std::string rebuilt = "options";
      bool had_rotate = false;
      size_t kept = 0;
      for (size_t i = 1; i < f.size(); ++i) {
        if (f[i] == "rotate") {
          had_rotate = true;
          continue;
        }
        rebuilt += ' ';
        rebuilt += f[i];
        ++kept;
      }
      if (!had_rotate)
        lines.emplace_back(line);
      else if (kept > 0)
        lines.push_back(std::move(rebuilt));
      continue;
    }
    auto ns = nameserver_of(line);
    if (ns.empty()) {
      lines.emplace_back(line);
      continue;
    }
    if (!placed) {
      // Our line already first: keep it as written.
      lines.push_back(ns == ours ? std::string(line) : "nameserver " + ours);
      placed = true;
      if (ns == ours)
        continue;
    }
    if (ns != ours)
      lines.emplace_back(line);
  }
  if (!placed)
    lines.push_back("nameserver " + ours);
  resolv_conf_fix fix;
  for (auto& l : lines) {
    fix.text += l;
    fix.text += '\n';
  }
  // An empty input splits into no lines; a final newline gives no extra line.
  fix.rewrite_needed = lines.size() != old_lines.size();
  for (size_t i = 0; !fix.rewrite_needed && i < lines.size(); ++i)
    fix.rewrite_needed = lines[i] != old_lines[i];
  auto own = own_ips;
  own.push_back(our_ip);
  fix.upstreams = resolv_upstreams(fix.text, own);
  return fix;
}

} // namespace networkd::dns
