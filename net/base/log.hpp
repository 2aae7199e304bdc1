// SPDX-License-Identifier: MIT
// Project log macros: one line per event, with level and component name, to
// stderr (journald picks it up). spdlog underneath; header-only so dns/ and
// net/ use it without linking CAF.
#pragma once

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

#include <sys/stat.h>
#include <unistd.h>

#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>

namespace networkd::log {

/// The syslog priority of a level (sd-daemon(3) prefixes): error 3,
/// warning 4, info 6, debug and trace 7, critical 2.
constexpr int syslog_priority(spdlog::level::level_enum l) {
  switch (l) {
    case spdlog::level::critical:
      return 2;
    case spdlog::level::err:
      return 3;
    case spdlog::level::warn:
      return 4;
    case spdlog::level::info:
      return 6;
    default:
      return 7;
  }
}

/// " name=value": a field an operator greps for (vip=, key=, reason=). A
/// value that is empty or holds a space, a quote, a backslash or '=' is
/// quoted, with quotes and backslashes escaped; control bytes become '?'
/// so one event stays one line.
inline std::string field(std::string_view name, std::string_view value) {
  bool quote = value.empty();
  for (unsigned char c : value)
    quote = quote || c == ' ' || c == '"' || c == '\\' || c == '=';
  std::string out;
  out.reserve(name.size() + value.size() + 4);
  out.append(" ").append(name).append("=");
  if (quote)
    out += '"';
  for (unsigned char c : value) {
    if (quote && (c == '"' || c == '\\'))
      out += '\\';
    out += c < 0x20 || c == 0x7f ? '?' : static_cast<char>(c);
  }
  if (quote)
    out += '"';
  return out;
}

/// Whether stderr is the journal: systemd sets JOURNAL_STREAM to
/// "DEVICE:INODE" of the stream it connects, and a child that redirected
/// stderr elsewhere must not take the variable as its own.
inline bool stderr_is_journal(const char* journal_stream, int fd = 2) {
  if (journal_stream == nullptr)
    return false;
  uintmax_t dev = 0, ino = 0;
  if (std::sscanf(journal_stream, "%" SCNuMAX ":%" SCNuMAX, &dev, &ino) != 2)
    return false;
  struct stat st {};
  return ::fstat(fd, &st) == 0 && static_cast<uintmax_t>(st.st_dev) == dev
         && static_cast<uintmax_t>(st.st_ino) == ino;
}

/// `%*` in a pattern: the line's "<N>" priority prefix.
class priority_flag final : public spdlog::custom_flag_formatter {
public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    char p[4]
      = {'<', static_cast<char>('0' + syslog_priority(msg.level)), '>', 0};
    dest.append(p, p + 3);
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<priority_flag>();
  }
};

/// The line layout: for the journal "<N>level component: message" (the
/// journal keeps the time itself), else the time first.
inline std::unique_ptr<spdlog::formatter> make_formatter(bool journal) {
  auto f = std::make_unique<spdlog::pattern_formatter>();
  if (journal)
    f->add_flag<priority_flag>('*').set_pattern("%*%l %v");
  else
    f->set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");
  return f;
}

/// Sets up the global logger once: stderr, "LEVEL component: message",
/// with "<N>" priority prefixes when stderr is the journal.
inline void init(bool verbose) {
  auto logger = spdlog::stderr_logger_mt("networkd");
  logger->set_formatter(
    make_formatter(stderr_is_journal(std::getenv("JOURNAL_STREAM"))));
  logger->set_level(verbose ? spdlog::level::debug : spdlog::level::info);
  spdlog::set_default_logger(logger);
  spdlog::flush_on(spdlog::level::info);
}

inline void set_level(const std::string& name) {
  spdlog::set_level(spdlog::level::from_str(name));
}

} // namespace networkd::log

#define NWD_LOG_DEBUG(component, ...)                                          \
  spdlog::debug("{}: {}", component, fmt::format(__VA_ARGS__))
#define NWD_LOG_INFO(component, ...)                                           \
  spdlog::info("{}: {}", component, fmt::format(__VA_ARGS__))
#define NWD_LOG_WARN(component, ...)                                           \
  spdlog::warn("{}: {}", component, fmt::format(__VA_ARGS__))
#define NWD_LOG_ERROR(component, ...)                                          \
  spdlog::error("{}: {}", component, fmt::format(__VA_ARGS__))
